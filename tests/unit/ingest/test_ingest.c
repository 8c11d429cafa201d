/* test_ingest.c: unit tests for the ingest fast path (src/ingest/ingest.c, evcache.c) on a
 * real SQLite store: the accept -> events job hand-over cache (hits, misses, bounds), the
 * catalog counted once per name per job (exact counts with several names in one job and
 * with a job whose first commit failed), profiles ensured without rewriting, and lists
 * kept in step with groups (the group_lists setting, src/ingest/grouplists.h); with
 * apply_at_accept, the same effects in the accept's own transaction and no events job;
 * with ensure_apart, new tracks' profiles created before the job's transaction. */
#include "../../../src/ingest/ingest.h"
#include "../../../src/util/clock.h"
#include "../../../src/util/json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define T0 1700000000000LL

struct fx {
    char dir[64];
    struct hclock_manual clk;
    struct store *s;
    struct arena *a;
    struct ingest ig;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct herr err;
    char dsn[128];
    snprintf(f->dir, sizeof f->dir, "/tmp/herald-ingest-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(dsn, sizeof dsn, "sqlite:%s/h.db", f->dir);
    hclock_manual_init(&f->clk, T0);
    assert_int_equal(store_open(dsn, &f->clk.base, &f->s, &err), HR_OK);
    f->a = arena_new(4096);
    f->ig.store = f->s;
    f->ig.clock = &f->clk.base;
    f->ig.dedup_window_ms = INGEST_DEDUP_WINDOW_DEFAULT_MS;
    f->ig.cache = evcache_new(64, 1 << 20, EVCACHE_STALE_MS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    evcache_free(f->ig.cache);
    arena_free(f->a);
    store_close(f->s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* accept_as: parse body as a /v1/batch and accept it as from a client-scope write key
 * (client) or not; returns the accepted count. */
static size_t accept_as(struct fx *f, const char *body, bool client)
{
    struct seg_result res;
    struct ingest_outcome out;
    struct herr err;
    size_t n;
    herr_clear(&err);
    assert_int_equal(seg_parse(body, strlen(body), SEG_BATCH, hclock_now(&f->clk.base), NULL,
                               &res, &err),
                     HR_OK);
    out.status = calloc(res.n_events + 1, 1);
    out.ids = calloc(res.n_events + 1, sizeof *out.ids);
    res.client = client;
    assert_int_equal(ingest_accept(&f->ig, 1, &res, &out, &err), HR_OK);
    n = out.accepted;
    free(out.status);
    free(out.ids);
    seg_result_cleanup(&res);
    return n;
}

/* accept: accept body as from a server-scope key (see accept_as). */
static size_t accept(struct fx *f, const char *body)
{
    return accept_as(f, body, false);
}

/* next_job: the newest queued events job (in f->a); run_job leaves jobs queued. */
static struct job *next_job(struct fx *f)
{
    struct job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(store_job_list(f->s, JOB_QUEUED, 100, f->a, &jobs, &n), HR_OK);
    assert_true(n > 0);
    assert_string_equal(jobs[0].kind, INGEST_JOB_KIND);
    return &jobs[0];
}

static int fail_after(struct store_txn *t, void *varg)
{
    struct job_result *r = varg;
    int rc = r->commit(t, r->commit_arg);
    return rc < 0 ? rc : HR_IO; /* everything it did is rolled back */
}

/* run_job: run the events job j's handler and commit its effects (fail: roll them back). */
static void run_job(struct fx *f, const struct job *j, bool fail)
{
    struct arena *a = arena_new(4096);
    struct job_result r = {0};
    struct herr err;
    herr_clear(&err);
    ingest_events_run(&f->ig, j, a, &r);
    assert_int_equal(r.outcome, JOB_OUT_DONE);
    assert_non_null(r.commit);
    if (fail)
        assert_int_equal(store_write(f->s, fail_after, &r, &err), HR_IO);
    else
        assert_int_equal(store_write(f->s, r.commit, r.commit_arg, &err), HR_OK);
    arena_free(a);
}

static void assert_catalog(struct fx *f, const char *name, int64_t count, int64_t first,
                           int64_t last, const char *sample_has)
{
    struct catalog_rec c;
    assert_int_equal(store_catalog_get(f->s, str_c(name), f->a, &c), HR_OK);
    assert_int_equal(c.count, count);
    assert_int_equal(c.first_seen_ms, first);
    assert_int_equal(c.last_seen_ms, last);
    if (sample_has)
        assert_non_null(strstr(c.sample.p, sample_has));
}

static void assert_no_catalog(struct fx *f, const char *name)
{
    struct catalog_rec c;
    assert_int_equal(store_catalog_get(f->s, str_c(name), f->a, &c), HR_NOTFOUND);
}

static const char BATCH_A[] =
    "{\"batch\":["
    "{\"type\":\"track\",\"event\":\"Paid\",\"userId\":\"u1\",\"messageId\":\"a1\","
    "\"properties\":{\"n\":1}},"
    "{\"type\":\"identify\",\"userId\":\"u1\",\"messageId\":\"a2\",\"traits\":{\"k\":1}},"
    "{\"type\":\"track\",\"event\":\"Paid\",\"userId\":\"u2\",\"messageId\":\"a3\","
    "\"properties\":{\"n\":2}},"
    "{\"type\":\"track\",\"event\":\"Left\",\"userId\":\"u2\",\"messageId\":\"a4\"},"
    "{\"type\":\"track\",\"event\":\"Paid\",\"userId\":\"u3\",\"messageId\":\"a5\","
    "\"properties\":{\"n\":3}}]}";

/* Several names in one job: one count per event, the sample is the name's last event. */
static void test_catalog_several_names_one_job(void **state)
{
    struct fx *f = *state;
    assert_int_equal(accept(f, BATCH_A), 5);
    assert_int_equal(evcache_count(f->ig.cache), 5); /* handed over once durable */
    run_job(f, next_job(f), false);
    assert_int_equal(evcache_count(f->ig.cache), 0); /* the job took them all */
    assert_catalog(f, "track/Paid", 3, T0, T0, "\"n\":3");
    assert_catalog(f, "track/Left", 1, T0, T0, "\"messageId\":\"a4\"");
    assert_catalog(f, "identify", 1, T0, T0, "\"messageId\":\"a2\"");

    /* a second job later: counts add up, first seen stays, last seen moves */
    hclock_manual_advance(&f->clk, 1000);
    assert_int_equal(accept(f, "{\"batch\":[{\"type\":\"track\",\"event\":\"Paid\","
                               "\"userId\":\"u1\",\"messageId\":\"b1\"},"
                               "{\"type\":\"track\",\"event\":\"Paid\",\"userId\":\"u9\","
                               "\"messageId\":\"b2\"}]}"),
                     2);
    run_job(f, next_job(f), false);
    assert_catalog(f, "track/Paid", 5, T0, T0 + 1000, "\"messageId\":\"b2\"");
}

/* A job whose first commit failed runs again (now from the store: the cache gave its
 * events away) and counts each event exactly once. */
static void test_catalog_exact_after_failed_commit(void **state)
{
    struct fx *f = *state;
    struct job *j;
    assert_int_equal(accept(f, BATCH_A), 5);
    j = next_job(f);
    run_job(f, j, true);
    assert_no_catalog(f, "track/Paid");
    assert_int_equal(evcache_count(f->ig.cache), 0);
    run_job(f, j, false); /* every event a miss: read back from the store */
    assert_catalog(f, "track/Paid", 3, T0, T0, "\"n\":3");
    assert_catalog(f, "track/Left", 1, T0, T0, NULL);
    assert_catalog(f, "identify", 1, T0, T0, NULL);
}

/* The same job from the cache and from the store stores the same sample bytes. */
static void test_cache_and_store_agree(void **state)
{
    struct fx *f = *state;
    struct catalog_rec c;
    char *hit;
    const char *one = "{\"batch\":[{\"type\":\"track\",\"event\":\"Same\",\"userId\":\"u\","
                      "\"messageId\":\"s1\",\"properties\":{\"x\":1.5,\"s\":\"\\u00e9\\n\"}}]}";
    struct job *j;
    assert_int_equal(accept(f, one), 1);
    j = next_job(f);
    run_job(f, j, false);
    assert_int_equal(store_catalog_get(f->s, STR_LIT("track/Same"), f->a, &c), HR_OK);
    hit = strdup(c.sample.p);
    run_job(f, j, false); /* again, now from the store (a second count, as a redelivery) */
    assert_int_equal(store_catalog_get(f->s, STR_LIT("track/Same"), f->a, &c), HR_OK);
    assert_int_equal(c.count, 2);
    assert_string_equal(c.sample.p, hit);
    free(hit);
}

/* A track ensures its profile: created when absent, an existing one is left as it is. */
static void test_track_ensures_profile_without_rewrite(void **state)
{
    struct fx *f = *state;
    struct doc_rec d;
    assert_int_equal(accept(f, "{\"batch\":[{\"type\":\"identify\",\"userId\":\"p1\","
                               "\"messageId\":\"i1\",\"traits\":{\"plan\":\"pro\"}}]}"),
                     1);
    run_job(f, next_job(f), false);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("p1"), f->a, &d), HR_OK);
    assert_int_equal(d.version, 1);
    assert_int_equal(accept(f, "{\"batch\":[{\"type\":\"track\",\"event\":\"E\",\"userId\":"
                               "\"p1\",\"messageId\":\"t1\"},{\"type\":\"track\",\"event\":"
                               "\"E\",\"userId\":\"p2\",\"messageId\":\"t2\"}]}"),
                     2);
    run_job(f, next_job(f), false);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("p1"), f->a, &d), HR_OK);
    assert_int_equal(d.version, 1);
    assert_non_null(strstr(d.body.p, "\"plan\":\"pro\""));
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("p2"), f->a, &d), HR_OK);
    assert_string_equal(d.body.p, "{}");
}

/* busy_trigger: a trigger that fails with a transient error while *busy (ctx) holds. */
static int busy_trigger(void *ctx, struct store_txn *t, const cJSON *event, bool stored,
                        ingest_data_fn d, const char *name, int64_t event_id,
                        int64_t received_ms)
{
    (void)t, (void)event, (void)stored, (void)d, (void)name, (void)event_id, (void)received_ms;
    return *(bool *)ctx ? HR_BUSY : HR_OK;
}

/* With apply_at_accept, an apply that fails with its own (transient) error is rolled
 * back alone: the accept still stores its events, queues their events job instead and
 * keeps them for it; none of the apply's effects stay. The job then applies them once. */
static void test_apply_at_accept_falls_back_to_job(void **state)
{
    struct fx *f = *state;
    struct doc_rec d;
    struct catalog_rec c;
    bool busy = true;
    f->ig.apply_at_accept = true;
    f->ig.trigger = busy_trigger;
    f->ig.trigger_ctx = &busy;
    assert_int_equal(accept(f, BATCH_A), 5);
    assert_int_equal(evcache_count(f->ig.cache), 5);
    assert_int_equal(store_catalog_get(f->s, STR_LIT("track/Paid"), f->a, &c), HR_NOTFOUND);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("u1"), f->a, &d), HR_NOTFOUND);
    busy = false;
    run_job(f, next_job(f), false);
    assert_catalog(f, "track/Paid", 3, T0, T0, "\"n\":3");
    assert_catalog(f, "identify", 1, T0, T0, "\"messageId\":\"a2\"");
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("u1"), f->a, &d), HR_OK);
    assert_non_null(strstr(d.body.p, "\"k\":1"));
    assert_int_equal(evcache_count(f->ig.cache), 0);
}

/* run_phase: run the events job j's handler without committing (in a); its result. */
static struct job_result run_phase(struct fx *f, const struct job *j, struct arena *a)
{
    struct job_result r = {0};
    ingest_events_run(&f->ig, j, a, &r);
    assert_int_equal(r.outcome, JOB_OUT_DONE);
    assert_non_null(r.commit);
    return r;
}

static int delete_n2_tx(struct store_txn *t, void *arg)
{
    (void)arg;
    return store_doc_delete(t, "profiles", STR_LIT("n2"));
}

/* With ensure_apart (a store shared by nodes) the job creates its tracks' new profiles
 * before its transaction, committed on their own: only the ones that tracks alone need
 * (not a user the job identifies), at the earliest track's time, leaving existing
 * profiles alone. The job's transaction then applies the rest, even after a failed try,
 * and still makes sure of each profile (one deleted in between is made again). */
static void test_ensure_apart(void **state)
{
    struct fx *f = *state;
    struct arena *a = arena_new(4096);
    struct job_result r;
    struct doc_rec d;
    struct herr err;
    const char *batch =
        "{\"batch\":["
        "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"n1\",\"messageId\":\"e1\"},"
        "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"u1\",\"messageId\":\"e2\"},"
        "{\"type\":\"identify\",\"userId\":\"u1\",\"messageId\":\"e3\",\"traits\":{\"k\":1}},"
        "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"p1\",\"messageId\":\"e4\"},"
        "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"n1\",\"messageId\":\"e5\"},"
        "{\"type\":\"track\",\"event\":\"E\",\"userId\":\"n2\",\"messageId\":\"e6\"}]}";

    herr_clear(&err);
    assert_int_equal(accept(f, "{\"batch\":[{\"type\":\"identify\",\"userId\":\"p1\","
                               "\"messageId\":\"i1\",\"traits\":{\"plan\":\"pro\"}}]}"),
                     1);
    run_job(f, next_job(f), false);
    hclock_manual_advance(&f->clk, 1000);
    assert_int_equal(accept(f, batch), 6);

    /* without it, the run phase writes nothing */
    r = run_phase(f, next_job(f), a);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("n1"), f->a, &d), HR_NOTFOUND);
    arena_reset(a);

    f->ig.ensure_apart = true;
    r = run_phase(f, next_job(f), a);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("n1"), f->a, &d), HR_OK);
    assert_string_equal(d.body.p, "{}");
    assert_int_equal(d.version, 1);
    assert_int_equal(d.created_ms, T0 + 1000);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("n2"), f->a, &d), HR_OK);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("u1"), f->a, &d), HR_NOTFOUND);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("p1"), f->a, &d), HR_OK);
    assert_int_equal(d.version, 1);
    /* the job's transaction fails: the profile made apart stays, nothing else happened */
    assert_int_equal(store_write(f->s, fail_after, &r, &err), HR_IO);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("n1"), f->a, &d), HR_OK);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("u1"), f->a, &d), HR_NOTFOUND);
    arena_reset(a);

    /* the retry: n1 is there already (not rewritten), the rest applies; n2, deleted
     * between the statement and the transaction, is made again by the transaction */
    r = run_phase(f, next_job(f), a);
    assert_int_equal(store_write(f->s, delete_n2_tx, NULL, &err), HR_OK);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("n2"), f->a, &d), HR_NOTFOUND);
    assert_int_equal(store_write(f->s, r.commit, r.commit_arg, &err), HR_OK);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("n2"), f->a, &d), HR_OK);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("n1"), f->a, &d), HR_OK);
    assert_int_equal(d.version, 1);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("u1"), f->a, &d), HR_OK);
    assert_non_null(strstr(d.body.p, "\"k\":1"));
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("p1"), f->a, &d), HR_OK);
    assert_non_null(strstr(d.body.p, "\"plan\":\"pro\""));
    assert_catalog(f, "track/E", 5, T0 + 1000, T0 + 1000, NULL);
    arena_free(a);
}

/* With ensure_apart, a job with fewer than 3 track-only profiles (a single track) makes
 * no write of its own: its transaction creates the profile, as without it. */
static void test_ensure_apart_not_for_one(void **state)
{
    struct fx *f = *state;
    struct arena *a = arena_new(4096);
    struct job_result r;
    struct doc_rec d;
    struct herr err;
    herr_clear(&err);
    f->ig.ensure_apart = true;
    assert_int_equal(accept(f, "{\"batch\":[{\"type\":\"track\",\"event\":\"E\","
                               "\"userId\":\"s1\",\"messageId\":\"s1\"}]}"),
                     1);
    r = run_phase(f, next_job(f), a);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("s1"), f->a, &d), HR_NOTFOUND);
    assert_int_equal(store_write(f->s, r.commit, r.commit_arg, &err), HR_OK);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("s1"), f->a, &d), HR_OK);
    assert_string_equal(d.body.p, "{}");
    arena_free(a);
}

/* no_jobs: nothing is queued (an accept that applied its events made no events job). */
static void assert_no_jobs(struct fx *f)
{
    struct job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(store_job_list(f->s, JOB_QUEUED, 100, f->a, &jobs, &n), HR_OK);
    assert_int_equal(n, 0);
}

/* With apply_at_accept (a store with one writer) the accept's transaction applies its
 * events as their job would have: the same catalog counts and profiles, no events job,
 * nothing left in the hand-over cache; a duplicate is not applied again. */
static void test_apply_at_accept(void **state)
{
    struct fx *f = *state;
    struct doc_rec d;
    f->ig.apply_at_accept = true;
    assert_int_equal(accept(f, BATCH_A), 5);
    assert_no_jobs(f);
    assert_int_equal(evcache_count(f->ig.cache), 0);
    assert_catalog(f, "track/Paid", 3, T0, T0, "\"n\":3");
    assert_catalog(f, "track/Left", 1, T0, T0, "\"messageId\":\"a4\"");
    assert_catalog(f, "identify", 1, T0, T0, "\"messageId\":\"a2\"");
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("u1"), f->a, &d), HR_OK);
    assert_non_null(strstr(d.body.p, "\"k\":1"));
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("u3"), f->a, &d), HR_OK);
    assert_string_equal(d.body.p, "{}");

    /* a re-sent event (a1) is acknowledged as a duplicate and not counted again */
    hclock_manual_advance(&f->clk, 1000);
    assert_int_equal(accept(f, "{\"batch\":[{\"type\":\"track\",\"event\":\"Paid\","
                               "\"userId\":\"u1\",\"messageId\":\"a1\"},"
                               "{\"type\":\"track\",\"event\":\"Paid\",\"userId\":\"u9\","
                               "\"messageId\":\"c2\"}]}"),
                     1);
    assert_no_jobs(f);
    assert_catalog(f, "track/Paid", 4, T0, T0 + 1000, "\"messageId\":\"c2\"");
}

/* ---- lists kept in step with groups --------------------------------------------------- */

static int meta_tx(struct store_txn *t, void *arg)
{
    return store_meta_set(t, "group_lists", str_c(arg));
}

/* link: store the group_lists setting text (NULL: unlinked). */
static void link_groups(struct fx *f, const char *text)
{
    struct herr err;
    assert_int_equal(store_write(f->s, meta_tx, (void *)text, &err), HR_OK);
}

/* subs: the users subscribed to list id, comma-separated, into out ("" when none). */
static const char *subs(struct fx *f, const char *id, char *out, size_t cap)
{
    struct list_sub_rec *rows = NULL;
    size_t n = 0, o = 0;
    out[0] = '\0';
    assert_int_equal(store_list_sub_list(f->s, str_c(id), STR_NULL, STR_NULL, 100, f->a, &rows,
                                         &n),
                     HR_OK);
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%.*s", i ? "," : "", STR_FMT(rows[i].user_id));
    return out;
}

static int prefs_tx(struct store_txn *t, void *arg)
{
    (void)arg;
    return store_list_sub_put(t, STR_LIT("groups.acme"), STR_LIT("u0"),
                              STR_LIT("{\"notifications\":{}}"), 1);
}

static int delete_tx(struct store_txn *t, void *arg)
{
    return store_list_set_deleted(t, str_c(arg), 5, 5);
}

#define GROUP(uid, gid, mid, traits)                                                        \
    "{\"type\":\"group\",\"userId\":\"" uid "\",\"groupId\":\"" gid "\",\"messageId\":\"" mid \
    "\",\"traits\":{" traits "}}"

/* A linked group call subscribes its user to <prefix><groupId> in the events job: the
 * list is created, named from traits.name; users are subscribed once, in any event order;
 * an existing subscription keeps its preferences; an unusable groupId is skipped while
 * its group is recorded; unlinked, nothing happens to lists. */
static void test_group_lists_server_key(void **state)
{
    struct fx *f = *state;
    struct list_rec l;
    struct doc_rec d;
    struct list_sub_rec *rows;
    size_t n;
    char got[256];

    /* unlinked (the default): the group is kept, lists are not touched */
    assert_int_equal(accept(f, "{\"batch\":[" GROUP("u1", "acme", "m0", "") "]}"), 1);
    run_job(f, next_job(f), false);
    assert_int_equal(store_list_get(f->s, STR_LIT("groups.acme"), f->a, &l), HR_NOTFOUND);

    link_groups(f, "{\"prefix\":\"groups.\",\"allow_client\":false}");
    assert_int_equal(accept(f, "{\"batch\":["
                               GROUP("u3", "acme", "m1", "\"name\":\"Acme Inc\"") ","
                               GROUP("u1", "acme", "m2", "") ","
                               GROUP("u1", "acme", "m4", "\"name\":\"Acme, Inc.\"") ","
                               GROUP("u2", "beta", "m5", "") ","
                               GROUP("u9", "no good", "m6", "\"x\":1") "]}"),
                     5);
    run_job(f, next_job(f), false);
    assert_string_equal(subs(f, "groups.acme", got, sizeof got), "u1,u3");
    assert_string_equal(subs(f, "groups.beta", got, sizeof got), "u2");
    assert_int_equal(store_list_get(f->s, STR_LIT("groups.acme"), f->a, &l), HR_OK);
    assert_true(str_eq_c(l.name, "Acme, Inc.")); /* the job's latest name */
    assert_int_equal(l.created_ms, T0);
    assert_int_equal(store_list_get(f->s, STR_LIT("groups.beta"), f->a, &l), HR_OK);
    assert_true(str_eq_c(l.name, "groups.beta"));
    assert_int_equal(store_doc_get(f->s, "groups", STR_LIT("no good"), f->a, &d), HR_OK);
    assert_int_equal(store_list_sub_list(f->s, STR_NULL, STR_LIT("u9"), STR_NULL, 10, f->a, &rows,
                                         &n),
                     HR_OK);
    assert_int_equal(n, 0);

    /* an existing list keeps its name, a subscription its preferences; a deleted list
     * gets nobody */
    assert_int_equal(store_write(f->s, prefs_tx, NULL, &(struct herr){0}), HR_OK);
    assert_int_equal(store_write(f->s, delete_tx, "groups.beta", &(struct herr){0}), HR_OK);
    assert_int_equal(accept(f, "{\"batch\":[" GROUP("u4", "acme", "m7", "\"name\":\"New\"") ","
                               GROUP("u0", "acme", "m3", "") ","
                               GROUP("u5", "beta", "m8", "") "]}"),
                     3);
    run_job(f, next_job(f), false);
    assert_int_equal(store_list_sub_list(f->s, STR_NULL, STR_LIT("u0"), STR_NULL, 10, f->a, &rows,
                                         &n),
                     HR_OK);
    assert_int_equal(n, 1);
    assert_true(str_eq_c(rows[0].preferences, "{\"notifications\":{}}"));
    assert_string_equal(subs(f, "groups.acme", got, sizeof got), "u0,u1,u3,u4");
    assert_string_equal(subs(f, "groups.beta", got, sizeof got), "u2");
    assert_int_equal(store_list_get(f->s, STR_LIT("groups.acme"), f->a, &l), HR_OK);
    assert_true(str_eq_c(l.name, "Acme, Inc."));

    /* unlinked again (null is stored as empty): nothing more */
    link_groups(f, NULL);
    assert_int_equal(accept(f, "{\"batch\":[" GROUP("u6", "acme", "m9", "") "]}"), 1);
    run_job(f, next_job(f), false);
    assert_string_equal(subs(f, "groups.acme", got, sizeof got), "u0,u1,u3,u4");
}

/* A client-scope key's group call records the group and subscribes nobody, unless the
 * link allows client keys. */
static void test_group_lists_client_key(void **state)
{
    struct fx *f = *state;
    struct doc_rec d;
    char got[256];
    link_groups(f, "{\"prefix\":\"g.\",\"allow_client\":false}");
    assert_int_equal(accept_as(f, "{\"batch\":[" GROUP("c1", "acme", "c1", "") "]}", true), 1);
    run_job(f, next_job(f), false);
    assert_int_equal(store_doc_get(f->s, "group_members", STR_LIT("[\"acme\",\"c1\"]"), f->a, &d),
                     HR_OK);
    assert_string_equal(subs(f, "g.acme", got, sizeof got), "");
    link_groups(f, "{\"prefix\":\"g.\",\"allow_client\":true}");
    assert_int_equal(accept_as(f, "{\"batch\":[" GROUP("c2", "acme", "c2", "") "]}", true), 1);
    run_job(f, next_job(f), false);
    assert_string_equal(subs(f, "g.acme", got, sizeof got), "c2");
}

/* apply_at_accept with the group_lists setting linked: read before the accept's write, so
 * a group call subscribes its user there (a client key's only when allowed). */
static void test_apply_at_accept_group_lists(void **state)
{
    struct fx *f = *state;
    char got[256];
    f->ig.apply_at_accept = true;
    link_groups(f, "{\"prefix\":\"g.\",\"allow_client\":false}");
    assert_int_equal(accept(f, "{\"batch\":[" GROUP("s1", "acme", "g1", "\"name\":\"Acme\"") "]}"), 1);
    assert_int_equal(accept_as(f, "{\"batch\":[" GROUP("c1", "acme", "g2", "") "]}", true), 1);
    assert_no_jobs(f);
    assert_string_equal(subs(f, "g.acme", got, sizeof got), "s1");
}

/* ---- the cache alone ---------------------------------------------------------------- */

static void put(struct evcache *c, int64_t id, const char *text)
{
    evcache_put(c, id, cJSON_Parse(text), strdup(text), strlen(text), id * 10);
}

/* taken: take id from c and check its text and received time (text NULL: a miss). */
static void taken(struct evcache *c, int64_t id, const char *text)
{
    cJSON *j = NULL;
    char *t = NULL;
    size_t len = 0;
    int64_t rcv = 0;
    bool hit = evcache_take(c, id, &j, &t, &len, &rcv);
    assert_int_equal(hit, text != NULL);
    if (!hit)
        return;
    assert_string_equal(t, text);
    assert_int_equal(len, strlen(text));
    assert_int_equal(rcv, id * 10);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(j, "a"));
    cJSON_Delete(j);
    free(t);
}

static void test_evcache_hand_over(void **state)
{
    struct evcache *c = evcache_new(4, 1000, EVCACHE_STALE_MS);
    (void)state;
    put(c, 1, "{\"a\":1}");
    put(c, 2, "{\"a\":2}");
    assert_int_equal(evcache_count(c), 2);
    taken(c, 3, NULL); /* never put */
    taken(c, 2, "{\"a\":2}");
    taken(c, 2, NULL); /* taken once only */
    /* 4 slots: id 5 lands where 1 waits; 1's job comes first, so 1 stays, 5 is dropped */
    put(c, 5, "{\"a\":5}");
    taken(c, 5, NULL);
    taken(c, 1, "{\"a\":1}");
    assert_int_equal(evcache_count(c), 0);
    put(c, 5, "{\"a\":5}"); /* the slot is free now */
    put(c, 6, "{\"a\":6}"); /* left in: evcache_free frees them */
    assert_int_equal(evcache_count(c), 2);
    evcache_free(c);
}

/* An entry nobody took (its job ran on another node) is replaced once stale. */
static void test_evcache_stale_replaced(void **state)
{
    struct evcache *c = evcache_new(4, 1000, 1);
    (void)state;
    put(c, 1, "{\"a\":1}");
    usleep(20 * 1000);
    put(c, 5, "{\"a\":5}");
    taken(c, 1, NULL);
    taken(c, 5, "{\"a\":5}");
    evcache_free(c);
}

static void test_evcache_byte_cap(void **state)
{
    struct evcache *c = evcache_new(8, 16, EVCACHE_STALE_MS);
    (void)state;
    put(c, 1, "{\"a\":1}"); /* 7 bytes */
    put(c, 2, "{\"a\":2}"); /* 14 */
    put(c, 3, "{\"a\":3}"); /* would be 21 > 16: not kept (freed) */
    assert_int_equal(evcache_count(c), 2);
    taken(c, 3, NULL);
    taken(c, 1, "{\"a\":1}");
    put(c, 4, "{\"a\":4}"); /* room again */
    assert_int_equal(evcache_count(c), 2);
    put(c, 0, "{}"); /* no id: freed, never kept */
    assert_int_equal(evcache_count(c), 2);
    evcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_catalog_several_names_one_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog_exact_after_failed_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_and_store_agree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_track_ensures_profile_without_rewrite, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ensure_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ensure_apart_not_for_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_at_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_at_accept_falls_back_to_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_at_accept_group_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_lists_server_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_lists_client_key, setup, teardown),
        cmocka_unit_test(test_evcache_hand_over),
        cmocka_unit_test(test_evcache_byte_cap),
        cmocka_unit_test(test_evcache_stale_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
