/* seed.c: `herald seed`: realistic profiles and SENT messages with their five history
 * rows, shaped like the rows herald writes for a webhook send (see the bench's growth
 * run), written in large batches through store_copy_insert. */
#include "seed.h"

#include "../util/arena.h"
#include "../util/clock.h"
#include "../util/str.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>

#define PROGRESS_EVERY_MS 5000
#define FMT_MAX 2048 /* one formatted field; longer ones take arena_sprintf's two passes */
#define SPAN_MS (30LL * 86400 * 1000) /* messages spread over the 30 days before now */
#define PROVIDER_ID "pr_seed0000000000000000000000000"

static const char *const plans[] = {"free", "pro", "team", "enterprise"};
static const char *const locales[] = {"en-US", "en-GB", "de-DE", "fr-FR", "es-ES"};

/* splitmix64: a fixed pseudo-random stream from k, so a seed is reproducible. */
static uint64_t mix(uint64_t k)
{
    uint64_t z = k + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* fmt: arena_sprintf in one formatting pass for the short strings of a row. */
static char *fmt(struct arena *a, const char *f, ...) HR_PRINTF(2, 3);
static char *fmt(struct arena *a, const char *f, ...)
{
    char tmp[FMT_MAX];
    va_list ap;
    int n;
    va_start(ap, f);
    n = vsnprintf(tmp, sizeof tmp, f, ap);
    va_end(ap);
    if (n < 0)
        return arena_strdup(a, "");
    if ((size_t)n < sizeof tmp)
        return arena_strndup(a, tmp, (size_t)n);
    va_start(ap, f);
    {
        char *p = arena_alloc(a, (size_t)n + 1);
        vsnprintf(p, (size_t)n + 1, f, ap);
        va_end(ap);
        return p;
    }
}

static struct copy_val v_int(int64_t i)
{
    return (struct copy_val){.type = COPY_INT, .i = i};
}

static struct copy_val v_text(const char *s)
{
    return (struct copy_val){.type = COPY_TEXT, .s = str_c(s)};
}

static struct copy_val v_blob(const char *s)
{
    return (struct copy_val){.type = COPY_BLOB, .s = str_c(s)};
}

struct rows_arg {
    const char *table;
    const struct copy_row *rows;
    size_t n;
    const char *table2;          /* a second table in the same transaction, or NULL */
    const struct copy_row *rows2;
    size_t n2;
};

static int rows_tx(struct store_txn *t, void *varg)
{
    struct rows_arg *r = varg;
    int rc = store_copy_insert(t, r->table, r->rows, r->n);
    if (rc == HR_OK && r->table2 && r->n2 > 0)
        rc = store_copy_insert(t, r->table2, r->rows2, r->n2);
    return rc;
}

static void progress_line(const struct seed_opts *o, const char *what, int64_t done,
                          int64_t total, int64_t rows, int64_t started_ms, int64_t *last_ms,
                          bool end)
{
    int64_t now = time_mono_ms(), el = now - started_ms;
    if (!o->progress || (!end && now - *last_ms < PROGRESS_EVERY_MS))
        return;
    *last_ms = now;
    fprintf(o->progress, "seed: %s %" PRId64 "/%" PRId64 "%s, %.1f s, %.0f rows/s\n", what, done,
            total, end ? " done" : "", (double)el / 1000.0,
            el > 0 ? (double)rows * 1000.0 / (double)el : 0.0);
    fflush(o->progress);
}

/* profile_row: profile number i into r (strings in a). */
static void profile_row(struct arena *a, int64_t i, int64_t now_ms, struct copy_row *r)
{
    uint64_t h = mix((uint64_t)i);
    int64_t created = now_ms - SPAN_MS - (int64_t)(h % (uint64_t)SPAN_MS);
    r->seq = 0;
    r->ncols = 6;
    r->v[0] = v_text("profiles");
    r->v[1] = v_text(fmt(a, "u%" PRId64, i));
    r->v[2] = v_blob(fmt(
        a,
        "{\"email\":\"user%" PRId64 "@example.com\",\"name\":\"User %" PRId64 "\","
        "\"phone_number\":\"+1555%07" PRIu64 "\",\"locale\":\"%s\",\"plan\":\"%s\","
        "\"custom\":{\"signup_source\":\"web\",\"orders\":%" PRIu64 "}}",
        i, i, (h >> 8) % 10000000, locales[(h >> 40) % 5], plans[(h >> 48) % 4],
        (h >> 20) % 50));
    r->v[3] = v_int(1);
    r->v[4] = v_int(created);
    r->v[5] = v_int(created);
}

/* message_rows: message seq (1-based) into m and its history into h[0..4]. */
static void message_rows(struct arena *a, const struct seed_opts *o, int64_t seq,
                         struct copy_row *m, struct copy_row *h)
{
    uint64_t x = mix((uint64_t)seq ^ 0x5eedULL), y = mix(x);
    int64_t t = o->now_ms - SPAN_MS + (int64_t)((double)SPAN_MS * (double)(seq - 1) /
                                                (double)(o->messages > 0 ? o->messages : 1));
    int64_t users = o->profiles > 0 ? o->profiles : 1000000;
    int64_t r = (int64_t)(y % (uint64_t)users);
    char *id = fmt(a, "1-%08" PRIx64 "-%016" PRIx64 "%08" PRIx64,
                             (uint64_t)(t / 1000), x, y >> 32);
    char *uid = fmt(a, "u%" PRId64, r);
    const char *title = fmt(a, "Your order #%" PRId64 " has shipped", seq);
    const char *body = fmt(a, "Hi User %" PRId64 ", order %" PRId64
                                        " is on its way and should arrive within 3 days.",
                                     r, seq);
    const char *profile = fmt(a, "{\"email\":\"user%" PRId64 "@example.com\","
                                           "\"name\":\"User %" PRId64 "\"}", r, r);
    const char *integ = "\"channel\":{\"id\":\"webhook\"},\"integration\":{\"id\":\"" PROVIDER_ID
                        "\",\"provider\":\"webhook\"},\"attempt\":1";
    static const char *const types[SEED_HISTORY_PER_MESSAGE] = {
        "ENQUEUED", "PROFILE_LOADED", "RENDERED", "DELIVERING", "SENT"};
    int64_t ts[SEED_HISTORY_PER_MESSAGE] = {t, t + 3, t + 3, t + 4, t + 5};
    const char *hb[SEED_HISTORY_PER_MESSAGE];

    m->seq = seq;
    m->ncols = 19;
    m->v[0] = v_int(seq);
    m->v[1] = v_text(id);
    m->v[2] = v_text(id);
    m->v[3] = v_text("SENT");
    m->v[4] = v_text(uid);
    for (int k = 5; k <= 8; k++)
        m->v[k] = v_text(""); /* notification, event, trace_id, run_id */
    m->v[9] = v_text("[]");
    m->v[10] = v_text("");
    m->v[11] = v_text("");
    m->v[12] = v_blob(fmt(
        a, "{\"to\":{\"user_id\":\"%s\"},\"content\":{\"title\":\"%s\",\"body\":\"%s\"},"
           "\"routing\":{\"method\":\"single\",\"channels\":[\"webhook\"]}}",
        uid, title, body));
    m->v[13] = v_blob(fmt(
        a, "{\"routing\":\"single\",\"alt\":0,\"alts\":1,\"profile\":%s,\"channels\":"
           "{\"webhook\":{\"providers\":[\"" PROVIDER_ID "\"],\"status\":\"sent\",\"provider\":\""
           PROVIDER_ID "\",\"provider_key\":\"webhook\",\"reference\":\"%" PRId64 "\","
           "\"sent\":%" PRId64 "}}}",
        profile, seq, t + 5));
    m->v[14] = v_int(t);
    m->v[15] = v_int(t + 5);
    m->v[16] = v_int(0);
    m->v[17] = v_int(0);
    m->v[18] = v_int(t + 5);

    hb[0] = fmt(a, "{\"ts\":%" PRId64 ",\"type\":\"ENQUEUED\",\"event\":\"\","
                             "\"recipient\":\"%s\"}", ts[0], uid);
    hb[1] = fmt(a, "{\"ts\":%" PRId64 ",\"type\":\"PROFILE_LOADED\","
                             "\"received_profile\":{},\"stored_profile\":%s,"
                             "\"merged_profile\":%s}", ts[1], profile, profile);
    hb[2] = fmt(a, "{\"ts\":%" PRId64 ",\"type\":\"RENDERED\",\"channel\":{\"id\":"
                             "\"webhook\"},\"output\":{\"title\":\"%s\",\"body\":\"%s\","
                             "\"text\":\"%s\"}}", ts[2], title, body, body);
    hb[3] = fmt(a, "{\"ts\":%" PRId64 ",\"type\":\"DELIVERING\",%s}", ts[3], integ);
    hb[4] = fmt(a, "{\"ts\":%" PRId64 ",\"type\":\"SENT\",%s,\"reference\":"
                             "{\"id\":\"%" PRId64 "\"}}", ts[4], integ, seq);
    for (int k = 0; k < SEED_HISTORY_PER_MESSAGE; k++) {
        int64_t hs = (seq - 1) * SEED_HISTORY_PER_MESSAGE + k + 1;
        h[k].seq = hs;
        h[k].ncols = 5;
        h[k].v[0] = v_int(hs);
        h[k].v[1] = v_text(id);
        h[k].v[2] = v_int(ts[k]);
        h[k].v[3] = v_text(types[k]);
        h[k].v[4] = v_blob(hb[k]);
    }
}

/* One batch being written while the next is built: store_write runs on a helper thread
 * (the store's writer does the work), so building rows and committing them overlap. */
struct pipe {
    struct store *s;
    pthread_t th;
    bool busy;
    struct rows_arg ra;
    int rc;
    struct herr err;
};

static void *pipe_run(void *arg)
{
    struct pipe *p = arg;
    p->rc = store_write(p->s, rows_tx, &p->ra, &p->err);
    return NULL;
}

/* pipe_wait: the batch in flight is committed (or failed: its rc, err filled). */
static int pipe_wait(struct pipe *p, struct herr *err)
{
    if (!p->busy)
        return HR_OK;
    pthread_join(p->th, NULL);
    p->busy = false;
    if (p->rc < 0)
        herr_set(err, p->rc, "%s", p->err.msg[0] ? p->err.msg : hr_rc_str(p->rc));
    return p->rc;
}

/* pipe_start: write ra (its rows stay untouched until pipe_wait); inline when no thread
 * can be started. */
static int pipe_start(struct pipe *p, const struct rows_arg *ra, struct herr *err)
{
    p->ra = *ra;
    p->rc = HR_OK;
    herr_clear(&p->err);
    if (pthread_create(&p->th, NULL, pipe_run, p) != 0) {
        pipe_run(p);
        if (p->rc < 0)
            herr_set(err, p->rc, "%s", p->err.msg[0] ? p->err.msg : hr_rc_str(p->rc));
        return p->rc;
    }
    p->busy = true;
    return HR_OK;
}

static int seed_profiles(struct store *s, const struct seed_opts *o, struct arena *ar[2],
                         struct seed_result *res, struct herr *err)
{
    int64_t start = time_mono_ms(), last = start, queued = 0;
    struct pipe pp = {.s = s};
    int rc = HR_OK, k = 0;
    for (int64_t i = 0; i < o->profiles; k ^= 1) {
        struct arena *a = ar[k];
        size_t n = 0;
        struct copy_row *rows;
        struct rows_arg ra;
        arena_reset(a); /* its last batch was waited for before the one just started */
        rows = arena_alloc(a, o->batch * sizeof *rows);
        for (; n < o->batch && i < o->profiles; n++, i++)
            profile_row(a, i, o->now_ms, &rows[n]);
        ra = (struct rows_arg){"docs", rows, n, NULL, NULL, 0};
        rc = pipe_wait(&pp, err);
        if (rc < 0)
            goto out;
        res->profiles = queued;
        progress_line(o, "profiles", res->profiles, o->profiles, res->profiles, start, &last,
                      false);
        rc = pipe_start(&pp, &ra, err);
        if (rc < 0)
            goto out;
        queued = i;
    }
    rc = pipe_wait(&pp, err);
    if (rc < 0)
        goto out;
    res->profiles = queued;
    progress_line(o, "profiles", res->profiles, o->profiles, res->profiles, start, &last, true);
out:
    pipe_wait(&pp, err);
    if (rc < 0) {
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err->msg[0] ? err->msg : hr_rc_str(rc));
        herr_set(err, rc, "writing profiles: %s", m);
    }
    res->profiles_ms = time_mono_ms() - start;
    return rc;
}

static int seed_messages(struct store *s, const struct seed_opts *o, struct arena *ar[2],
                         struct seed_result *res, struct herr *err)
{
    int64_t start = time_mono_ms(), last = start, queued = 0;
    struct pipe pp = {.s = s};
    int rc = HR_OK, k = 0;
    for (int64_t seq = 1; seq <= o->messages; k ^= 1) {
        struct arena *a = ar[k];
        size_t n = 0;
        struct copy_row *msgs, *hist;
        struct rows_arg ra;
        arena_reset(a);
        msgs = arena_alloc(a, o->batch * sizeof *msgs);
        hist = arena_alloc(a, o->batch * SEED_HISTORY_PER_MESSAGE * sizeof *hist);
        for (; n < o->batch && seq <= o->messages; n++, seq++)
            message_rows(a, o, seq, &msgs[n], &hist[n * SEED_HISTORY_PER_MESSAGE]);
        ra = (struct rows_arg){"messages", msgs, n, "message_history", hist,
                               n * SEED_HISTORY_PER_MESSAGE};
        rc = pipe_wait(&pp, err);
        if (rc < 0)
            goto out;
        res->messages = queued;
        res->history = queued * SEED_HISTORY_PER_MESSAGE;
        progress_line(o, "messages", res->messages, o->messages, res->messages + res->history,
                      start, &last, false);
        rc = pipe_start(&pp, &ra, err);
        if (rc < 0)
            goto out;
        queued = seq - 1;
    }
    rc = pipe_wait(&pp, err);
    if (rc < 0)
        goto out;
    res->messages = queued;
    res->history = queued * SEED_HISTORY_PER_MESSAGE;
    progress_line(o, "messages", res->messages, o->messages, res->messages + res->history,
                  start, &last, true);
out:
    pipe_wait(&pp, err);
    if (rc < 0) {
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err->msg[0] ? err->msg : hr_rc_str(rc));
        herr_set(err, rc, "writing messages: %s", m);
    }
    res->messages_ms = time_mono_ms() - start;
    return rc;
}

int seed_store(struct store *s, const struct seed_opts *opts, struct seed_result *res,
               struct herr *err)
{
    struct arena *a[2] = {arena_new(1 << 22), arena_new(1 << 22)};
    int64_t nm = 0, nh = 0;
    int rc;

    herr_clear(err);
    memset(res, 0, sizeof *res);
    rc = store_copy_count(s, "messages", &nm);
    if (rc == HR_OK)
        rc = store_copy_count(s, "message_history", &nh);
    if (rc < 0) {
        rc = herr_set(err, rc, "cannot count the store's messages: %s", hr_rc_str(rc));
        goto out;
    }
    if (opts->messages > 0 && (nm > 0 || nh > 0)) {
        rc = herr_set(err, HR_CONFLICT,
                      "the store already holds %" PRId64 " messages and %" PRId64
                      " history rows; seed messages into an empty store",
                      nm, nh);
        goto out;
    }
    rc = seed_profiles(s, opts, a, res, err);
    if (rc == HR_OK)
        rc = seed_messages(s, opts, a, res, err);
out:
    arena_free(a[1]);
    arena_free(a[0]);
    return rc;
}
