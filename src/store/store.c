/* store.c: the backend-independent entry points of the store: pick a backend by the
 * DSN's scheme, own the backend's allocation, install the job listener. The backends
 * themselves live in src/store/<name>/. */
#include "store.h"

#include "postgres/pg.h"
#include "sqlite/sqlite.h"

#include "../util/json.h"
#include "../util/xalloc.h"

#include <stdlib.h>
#include <string.h>

int store_check_doc_id(const char *coll, struct str id)
{
    size_t n = strlen(coll);
    if (n == 0 || n > 64 || id.len == 0 || id.len > STORE_DOC_ID_MAX)
        return HR_INVAL;
    return HR_OK;
}

int store_check_create_many(const char *coll, const struct str *ids, size_t n, struct str body)
{
    if (n > STORE_CREATE_MANY_MAX)
        return HR_INVAL;
    if (body.len > STORE_PAYLOAD_MAX)
        return HR_TOOBIG;
    for (size_t i = 0; i < n; i++)
        if (store_check_doc_id(coll, ids[i]) < 0 || !utf8_valid(ids[i].p, ids[i].len) ||
            memchr(ids[i].p, 0, ids[i].len))
            return HR_INVAL;
    return HR_OK;
}

/* ---- history: several events in one row --------------------------------------------- */

/* A packed row's body: per event "<ts> <type bytes> <body bytes>\n", then the type and
 * the body, decimal numbers (ts may be negative), nothing between events. */

static bool hist_type_ok(struct str type)
{
    return type.len > 0 && type.len <= 64 && !str_eq_c(type, STORE_HISTORY_PACKED);
}

int store_history_append(struct store_txn *t, struct str message_id, int64_t ts,
                         struct str type, struct str body)
{
    if (!hist_type_ok(type))
        return HR_INVAL;
    return store_txn_store(t)->ops->history_append(t, message_id, ts, type, body);
}

/* put_dec: v in decimal at p (room for 21 bytes); returns the end */
static char *put_dec(char *p, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *p++ = '-';
    while (n)
        *p++ = tmp[--n];
    return p;
}

int store_history_append_many(struct store_txn *t, struct str message_id,
                              const struct history_row *rows, size_t n)
{
    size_t total = 0;
    char *packed = NULL, *w;
    int rc = HR_OK;
    for (size_t i = 0; i < n; i++) {
        if (!hist_type_ok(rows[i].type) || rows[i].body.len > STORE_PAYLOAD_MAX)
            return HR_INVAL;
        total += 3 * 21 + rows[i].type.len + rows[i].body.len;
    }
    if (n >= 2 && total <= STORE_PAYLOAD_MAX) {
        w = packed = xmalloc(total);
        for (size_t i = 0; i < n; i++) {
            w = put_dec(w, rows[i].ts);
            *w++ = ' ';
            w = put_dec(w, (int64_t)rows[i].type.len);
            *w++ = ' ';
            w = put_dec(w, (int64_t)rows[i].body.len);
            *w++ = '\n';
            memcpy(w, rows[i].type.p, rows[i].type.len);
            w += rows[i].type.len;
            if (rows[i].body.len)
                memcpy(w, rows[i].body.p, rows[i].body.len);
            w += rows[i].body.len;
        }
        rc = store_txn_store(t)->ops->history_append(t, message_id, rows[n - 1].ts,
                                                    STR_LIT(STORE_HISTORY_PACKED),
                                                    (struct str){packed, (size_t)(w - packed)});
        goto out;
    }
    for (size_t i = 0; i < n && rc == HR_OK; i++)
        rc = store_txn_store(t)->ops->history_append(t, message_id, rows[i].ts, rows[i].type,
                                                    rows[i].body);
out:
    free(packed);
    return rc;
}

/* get_dec: the decimal number (str_to_i64) at *p up to the first term before end, past
 * which *p moves; false when there is none, or it is outside [min, max] */
static bool get_dec(const char **p, const char *end, char term, int64_t min, int64_t max,
                    int64_t *out)
{
    const char *t = memchr(*p, term, (size_t)(end - *p));
    if (!t || str_to_i64((struct str){*p, (size_t)(t - *p)}, out) < 0 || *out < min ||
        *out > max)
        return false;
    *p = t + 1;
    return true;
}

/* unpack: the events of packed row r, those of type (when not empty): how many there are
 * (out NULL), or how many went into out (at most room); -1 when the body does not read
 * back */
static long unpack(const struct history_rec *r, struct str type, struct arena *a,
                   struct history_rec *out, size_t room)
{
    const char *p = r->body.p, *end = r->body.p + r->body.len;
    long k = 0;
    while (p < end) {
        int64_t ts, tl, bl;
        struct str ty, body;
        if (!get_dec(&p, end, ' ', INT64_MIN, INT64_MAX, &ts) ||
            !get_dec(&p, end, ' ', 1, 64, &tl) ||
            !get_dec(&p, end, '\n', 0, STORE_PAYLOAD_MAX, &bl) ||
            (size_t)(end - p) < (size_t)(tl + bl))
            return -1;
        ty = (struct str){p, (size_t)tl};
        body = (struct str){p + tl, (size_t)bl};
        p += tl + bl;
        if (type.len && !str_eq(type, ty))
            continue;
        if (out) {
            if ((size_t)k >= room)
                break;
            out[k] = (struct history_rec){r->seq, ts, arena_str(a, ty), arena_str(a, body)};
        }
        k++;
    }
    return k;
}

int store_history_list(struct store *s, struct str message_id, struct str type,
                       struct arena *a, struct history_rec **out, size_t *n)
{
    struct history_rec *raw = NULL, *res;
    size_t nraw = 0, total = 0, k = 0;
    int rc;
    *out = NULL;
    *n = 0;
    if (type.len > 64)
        return HR_INVAL;
    rc = s->ops->history_list(s, message_id, a, &raw, &nraw);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < nraw; i++) { /* every packed row is read: one that does not fails */
        long c = 1;
        if (str_eq_c(raw[i].type, STORE_HISTORY_PACKED))
            c = unpack(&raw[i], type, a, NULL, 0);
        else if (type.len && !str_eq(type, raw[i].type))
            c = 0;
        if (c < 0)
            return HR_IO;
        total += (size_t)c;
    }
    if (total > STORE_HISTORY_MAX)
        total = STORE_HISTORY_MAX;
    res = arena_zalloc(a, (total ? total : 1) * sizeof *res);
    for (size_t i = 0; i < nraw && k < total; i++) {
        if (str_eq_c(raw[i].type, STORE_HISTORY_PACKED))
            k += (size_t)unpack(&raw[i], type, a, res + k, total - k); /* read in the count */
        else if (!type.len || str_eq(type, raw[i].type))
            res[k++] = raw[i];
    }
    *out = res;
    *n = k;
    return HR_OK;
}

struct backend {
    const char *prefix; /* the DSN starts with this */
    const struct store_ops *ops;
};

/* Add a backend with one line here. */
static const struct backend backends[] = {
    {"sqlite:", &sqlite_store_ops},
    {"postgres://", &pg_store_ops},
    {"postgresql://", &pg_store_ops},
};

#define NBACKENDS (sizeof backends / sizeof backends[0])

/* scheme_name: dsn's scheme (the text before ':') into out, if it is short and plain;
 * otherwise "?" so that no part of a DSN that may hold a password reaches a message. */
static void scheme_name(const char *dsn, char *out, size_t cap)
{
    size_t i = 0;
    for (; dsn[i] && dsn[i] != ':' && i + 1 < cap; i++) {
        char ch = dsn[i];
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.';
        if (!plain)
            break;
        out[i] = ch;
    }
    if (dsn[i] != ':' || i == 0)
        i = str_copy(out, cap, STR_LIT("?"));
    out[i] = '\0';
}

static int open_dsn(const char *dsn, struct hclock *clock, bool claim, struct store **out,
                    struct herr *err)
{
    const struct store_ops *ops = NULL;
    struct store *s = NULL;
    char scheme[24];
    int rc = HR_OK;

    herr_clear(err);
    if (out)
        *out = NULL;
    if (!out || !dsn || !dsn[0]) {
        rc = herr_set(err, HR_INVAL,
                      "no store DSN given (expected sqlite:PATH or postgres://...)");
        goto out;
    }
    for (size_t i = 0; i < NBACKENDS && !ops; i++)
        if (strncmp(dsn, backends[i].prefix, strlen(backends[i].prefix)) == 0)
            ops = backends[i].ops;
    if (!ops) {
        scheme_name(dsn, scheme, sizeof scheme);
        rc = herr_set(err, HR_INVAL,
                      "unsupported store DSN scheme \"%s\" (expected sqlite:PATH or "
                      "postgres://...)",
                      scheme);
        goto out;
    }
    if (ops->version != 1 || ops->impl_size < sizeof(struct store)) {
        rc = herr_set(err, HR_INVAL, "store backend %s has an incompatible ops table",
                      ops->scheme);
        goto out;
    }
    s = xcalloc(1, ops->impl_size);
    s->ops = ops;
    s->clock = clock ? clock : hclock_system();
    s->claim = claim;
    rc = ops->open(s, dsn, err);
    if (rc < 0) {
        if (err && err->rc == HR_OK)
            herr_set(err, rc, "cannot open the %s store: %s", ops->scheme, hr_rc_str(rc));
        goto out;
    }
    *out = s;
    s = NULL;
out:
    if (s) {
        ops->close(s);
        free(s);
    }
    return rc;
}

int store_open(const char *dsn, struct hclock *clock, struct store **out, struct herr *err)
{
    return open_dsn(dsn, clock, false, out, err);
}

int store_open_claimed(const char *dsn, struct hclock *clock, struct store **out,
                       struct herr *err)
{
    return open_dsn(dsn, clock, true, out, err);
}

void store_close(struct store *s)
{
    if (!s)
        return;
    s->ops->close(s);
    free(s);
}

struct listener {
    void (*fn)(void *);
    void *arg;
    bool set;
};

/* set_listener: runs on the backend's writer, the only thread that calls on_jobs. */
static int set_listener(struct store_txn *t, void *arg)
{
    struct listener *l = arg;
    struct store *s = store_txn_store(t);
    s->on_jobs = l->fn;
    s->on_jobs_arg = l->arg;
    l->set = true;
    return HR_OK;
}

/* store_set_job_listener: the fields are swapped inside a write, so the swap is ordered
 * with the writer's calls: once this returns, the previous listener is not running and
 * will not be called again (its arg may be freed). Called on the writer thread itself
 * (from a listener or a write fn) or on a store whose writer is gone, it sets them
 * directly, which is then race-free too. */
void store_set_job_listener(struct store *s, void (*fn)(void *), void *arg)
{
    struct listener l = {fn, arg, false};
    struct herr err;
    if (!s)
        return;
    if (s->ops == &pg_store_ops) { /* on_jobs runs on many threads there: it has a lock */
        pg_set_job_listener(s, fn, arg);
        return;
    }
    if (store_write(s, set_listener, &l, &err) < 0 && !l.set) {
        s->on_jobs = fn;
        s->on_jobs_arg = arg;
    }
}

bool store_msgref_key_ok(struct str provider, struct str reference)
{
    return provider.len > 0 && provider.len <= MSGREF_PROVIDER_MAX && reference.len > 0 &&
           reference.len <= MSGREF_REFERENCE_MAX;
}

static _Thread_local bool t_ingress;

void store_ingress(bool on)
{
    t_ingress = on;
}

bool store_is_ingress(void)
{
    return t_ingress;
}

/* ---- bulk copy: the tables ------------------------------------------------------------ */

static const struct copy_table ct_meta = {
    "meta", "key, value", "key, value", "tb", NULL, "key", "key NOT LIKE 'migrate.%'"};
static const struct copy_table ct_keys = {
    "api_keys", "id, kind, prefix, name, hash, created_ms, revoked_ms, scope",
    "id, kind, prefix, name, hash, created_ms, revoked_ms, scope", "iittbiii", "id", NULL, NULL};
static const struct copy_table ct_docs = {
    "docs", "coll, id, body, version, created_ms, updated_ms",
    "coll, id, body, version, created_ms, updated_ms", "ttbiii", NULL, "coll, id", NULL};
static const struct copy_table ct_events = {
    "events", "id, source_id, message_id, type, user_id, body, received_ms",
    "id, source_id, message_id, type, user_id, body, received_ms", "iitttbi", "id", NULL, NULL};
static const struct copy_table ct_catalog = {
    "catalog", "name, count, first_seen_ms, last_seen_ms, sample",
    "name, count, first_seen_ms, last_seen_ms, sample", "tiiib", NULL, "name", NULL};
#define CT_MSG_COLS                                                                           \
    "seq, id, request_id, status, recipient, notification, event, trace_id, run_id, tags, " \
    "reason, error, spec, state, enqueued_ms, sent_ms, delivered_ms, canceled_ms, updated_ms"
static const struct copy_table ct_messages = {
    "messages", CT_MSG_COLS, CT_MSG_COLS, "itttttttttttbbiiiii", "seq", NULL, NULL};
static const struct copy_table ct_history = {
    "message_history", "seq, message_id, ts, type, body", "seq, message_id, ts, type, body",
    "ititb", "seq", NULL, NULL};
/* a leased job belongs to a process of the old installation: it arrives queued */
static const struct copy_table ct_jobs = {
    "jobs",
    "id, kind, payload, state, run_at_ms, lease_until_ms, lease_token, attempts, "
    "max_attempts, created_ms, last_error, dedup_key",
    "id, kind, payload, CASE WHEN state = 1 THEN 0 ELSE state END, run_at_ms, "
    "CASE WHEN state = 1 THEN 0 ELSE lease_until_ms END, "
    "CASE WHEN state = 1 THEN 0 ELSE lease_token END, attempts, max_attempts, created_ms, "
    "last_error, dedup_key",
    "itbiiiiiiitn", "id", NULL, NULL};

static const struct copy_table ct_lists = {
    "lists", "id, name, preferences, created_ms, updated_ms, deleted_ms",
    "id, name, preferences, created_ms, updated_ms, deleted_ms", "tttiii", NULL, "id", NULL};
static const struct copy_table ct_list_subs = {
    "list_subs", "list_id, user_id, preferences, created_ms",
    "list_id, user_id, preferences, created_ms", "ttti", NULL, "list_id, user_id", NULL};

static const struct copy_table ct_msgrefs = {
    "msgrefs", "provider, reference, message_id, channel, created_ms",
    "provider, reference, message_id, channel, created_ms", "tttti", NULL, "provider, reference",
    NULL};

const struct copy_table *const store_copy_tables[] = {
    &ct_meta, &ct_keys, &ct_docs, &ct_events, &ct_catalog, &ct_messages, &ct_history, &ct_jobs,
    &ct_lists, &ct_list_subs, &ct_msgrefs, NULL};

const struct copy_table *store_copy_table(const char *name)
{
    for (size_t i = 0; name && store_copy_tables[i]; i++)
        if (strcmp(store_copy_tables[i]->name, name) == 0)
            return store_copy_tables[i];
    return NULL;
}
