/* test_queue.c: the durable queue over a real SQLite store with a manual clock:
 * backoff, outbox enqueue, the job state machine (done, retry, defer, dead, lost lease,
 * lease expiry, scheduling), and the worker pool (exactly-once, wake, stop, a slow job
 * does not hold the rest of its batch). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/queue/queue.h"
#include "../../../src/store/store.h"
#include "../../../src/util/arena.h"
#include "../../../src/util/buf.h"
#include "../../../src/util/log.h"
#include "../../../src/util/metrics.h"
#include "../../../src/util/str.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T0 1700000000000LL

/* ---- fixture: a fresh store in a temp dir, on a manual clock ---------------------- */

struct fx {
    char dir[64];
    char path[128];
    struct hclock_manual clk;
    struct store *s;
    struct arena *a;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char dsn[160];
    struct herr err = {0};
    snprintf(f->dir, sizeof f->dir, "/tmp/herald-tq-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/q.db", f->dir);
    snprintf(dsn, sizeof dsn, "sqlite:%s", f->path);
    hclock_manual_init(&f->clk, T0);
    if (store_open(dsn, &f->clk.base, &f->s, &err) < 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    f->a = arena_new(4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[160];
    store_close(f->s);
    arena_free(f->a);
    unlink(f->path);
    snprintf(p, sizeof p, "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->path);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int64_t now_of(struct fx *f) { return hclock_now(&f->clk.base); }

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- helpers --------------------------------------------------------------------- */

struct enq {
    struct job_spec js;
    int64_t id;
    int fail_after; /* return this (< 0) after enqueueing: the caller's txn fails */
};

static int enq_fn(struct store_txn *t, void *arg)
{
    struct enq *e = arg;
    int rc = queue_enqueue(t, &e->js, &e->id);
    if (rc < 0)
        return rc;
    return e->fail_after;
}

static int64_t enqueue(struct fx *f, const char *kind, const char *payload, int64_t run_at,
                       uint32_t max_attempts)
{
    struct enq e = {.js = {.kind = kind, .payload = str_c(payload), .run_at_ms = run_at,
                           .max_attempts = max_attempts}};
    struct herr err = {0};
    assert_int_equal(store_write(f->s, enq_fn, &e, &err), 0);
    assert_true(e.id > 0);
    return e.id;
}

/* get: the job's row; returns the store's rc (HR_NOTFOUND once acked). */
static int get(struct fx *f, int64_t id, struct job *out)
{
    return store_job_get(f->s, id, f->a, out);
}

static int64_t count_jobs(struct fx *f, int state)
{
    struct job_count *c = NULL;
    size_t n = 0;
    int64_t total = 0;
    assert_int_equal(store_job_counts(f->s, f->a, &c, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (state < 0 || c[i].state == state)
            total += c[i].count;
    return total;
}

struct lease_req {
    int64_t now, lease_ms;
    const char *const *kinds;
    struct arena *a;
    struct job *jobs;
    size_t n;
};

static int lease_fn(struct store_txn *t, void *arg)
{
    struct lease_req *l = arg;
    return store_job_lease(t, l->now, l->lease_ms, 16, 16, l->kinds, l->a, &l->jobs, &l->n);
}

/* lease_direct: lease like another node would, outside the queue. */
static size_t lease_direct(struct store *s, int64_t now, int64_t lease_ms, const char *kind,
                           struct arena *a, struct job **out)
{
    const char *kinds[] = {kind, NULL};
    struct lease_req l = {now, lease_ms, kinds, a, NULL, 0};
    struct herr err = {0};
    assert_int_equal(store_write(s, lease_fn, &l, &err), 0);
    *out = l.jobs;
    return l.n;
}

struct ack_req {
    int64_t id, token;
};

static int ack_fn(struct store_txn *t, void *arg)
{
    struct ack_req *r = arg;
    return store_job_ack(t, r->id, r->token);
}

static int meta_fn(struct store_txn *t, void *arg)
{
    return store_meta_set(t, (const char *)arg, STR_LIT("yes"));
}

static int meta_then_fail_fn(struct store_txn *t, void *arg)
{
    int rc = store_meta_set(t, (const char *)arg, STR_LIT("yes"));
    return rc < 0 ? rc : HR_INVAL;
}

static bool meta_present(struct fx *f, const char *key)
{
    struct str v = STR_NULL;
    int rc = store_meta_get(f->s, key, f->a, &v);
    return rc == 0 && str_eq_c(v, "yes");
}

/* metric_has: the Prometheus text contains needle. */
static bool metric_has(const char *needle)
{
    struct buf b;
    bool ok;
    buf_init(&b, 1 << 20);
    ok = metrics_render(&b) == 0 && strstr(buf_cstr(&b), needle) != NULL;
    buf_cleanup(&b);
    return ok;
}

static struct queue_cfg test_cfg(void)
{
    struct queue_cfg c;
    queue_cfg_defaults(&c);
    c.workers = 1;
    c.lease_ms = 30000;
    c.backoff_base_ms = 1000;
    c.backoff_max_ms = 60000;
    c.idle_poll_ms = 20;
    return c;
}

/* A scriptable handler: the outcome, error, Retry-After and commit callback to give. */
struct th {
    struct fx *f;
    int outcome;
    int64_t retry_at_ms;
    store_txn_fn commit;
    void *commit_arg;
    bool steal_lease; /* take the lease away mid-run, as an expired lease would */
    int calls;
    uint32_t last_attempts;
    int64_t ran_ids[8];        /* the first jobs run, in order */
    uint32_t ran_retaken[8];
};

static void th_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct th *h = ctx;
    if (h->calls < 8) {
        h->ran_ids[h->calls] = j->id;
        h->ran_retaken[h->calls] = j->retaken;
    }
    h->calls++;
    h->last_attempts = j->attempts;
    assert_non_null(arena_strdup(a, "scratch"));
    r->outcome = h->outcome;
    r->retry_at_ms = h->retry_at_ms;
    snprintf(r->error, sizeof r->error, "boom %d", h->calls);
    r->commit = h->commit;
    r->commit_arg = h->commit_arg;
    if (h->steal_lease) {
        struct job *jobs;
        struct arena *la = arena_new(1024);
        int64_t later = now_of(h->f) + 30000 + 1; /* past the queue's lease */
        assert_int_equal(lease_direct(h->f->s, later, 30000, j->kind, la, &jobs), 1);
        assert_int_equal(jobs[0].id, j->id);
        assert_true(jobs[0].lease_token != j->lease_token);
        arena_free(la);
    }
}

static struct queue *q_with(struct fx *f, struct th *h, const struct queue_cfg *cfg)
{
    struct job_handler hs[] = {{"t", th_run, h}};
    h->f = f;
    return queue_new(f->s, NULL, cfg, hs, 1);
}

static size_t run_once(struct queue *q)
{
    size_t ran = 99;
    assert_int_equal(queue_run_once(q, 0, &ran), 0);
    return ran;
}

/* ---- backoff --------------------------------------------------------------------- */

static void test_backoff(void **state)
{
    struct queue_cfg c;
    int64_t prev = 0;
    (void)state;
    queue_cfg_defaults(&c);
    c.backoff_base_ms = 1000;
    c.backoff_max_ms = 60000;

    /* r = 1-: the top of each window; grows by doubling until the cap */
    for (uint32_t a = 1; a <= 10; a++) {
        int64_t d = queue_backoff_ms(&c, a, 0.999999);
        int64_t full = 1000LL << (a - 1);
        if (full > 60000)
            full = 60000;
        assert_true(d >= full / 2 && d <= full);
        assert_true(d >= prev);
        prev = d;
    }
    /* jitter bounds: [delay/2, delay] for any r, never 0 */
    assert_int_equal(queue_backoff_ms(&c, 1, 0.0), 500);
    assert_int_equal(queue_backoff_ms(&c, 3, 0.0), 2000);
    assert_int_equal(queue_backoff_ms(&c, 3, 0.5), 3000);
    for (int i = 0; i < 1000; i++) {
        double r = (double)i / 1000.0;
        int64_t d = queue_backoff_ms(&c, 4, r);
        assert_true(d >= 4000 && d <= 8000);
    }
    /* the cap holds, and huge attempt numbers do not overflow */
    assert_int_equal(queue_backoff_ms(&c, 7, 0.0), 30000);
    assert_true(queue_backoff_ms(&c, 7, 0.99) <= 60000);
    assert_int_equal(queue_backoff_ms(&c, 64, 0.0), 30000);
    assert_int_equal(queue_backoff_ms(&c, UINT32_MAX, 0.0), 30000);
    assert_true(queue_backoff_ms(&c, UINT32_MAX, 0.999) <= 60000);
    /* a huge cap: still no overflow and no negative delays */
    c.backoff_max_ms = INT64_MAX;
    assert_true(queue_backoff_ms(&c, UINT32_MAX, 0.999) > 0);
    assert_true(queue_backoff_ms(&c, 100, 0.0) > 0);
    /* attempt 0 is treated like 1; out-of-range r is clamped */
    c.backoff_max_ms = 60000;
    assert_int_equal(queue_backoff_ms(&c, 0, 0.0), 500);
    assert_int_equal(queue_backoff_ms(&c, 1, -3.0), 500);
    assert_int_equal(queue_backoff_ms(&c, 1, 7.0), 1000);
    /* max below base: the cap wins */
    c.backoff_base_ms = 5000;
    c.backoff_max_ms = 2000;
    assert_int_equal(queue_backoff_ms(&c, 1, 0.0), 1000);
}

static void test_cfg_defaults(void **state)
{
    struct queue_cfg c;
    (void)state;
    memset(&c, 0xff, sizeof c);
    queue_cfg_defaults(&c);
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.lease_ms, 60000);
    assert_int_equal(c.backoff_base_ms, 1000);
    assert_int_equal(c.backoff_max_ms, 3600000);
    assert_int_equal(c.max_attempts, 25);
    assert_int_equal(c.idle_poll_ms, 250);
    assert_int_equal(c.batch, 16);
    assert_int_equal(c.max_retaken, 5);
    assert_int_equal(c.renew_max_ms, 0); /* derived from the lease by queue_new */
}

/* ---- enqueue (outbox) ------------------------------------------------------------ */

static void test_enqueue_outbox(void **state)
{
    struct fx *f = *state;
    struct enq e = {.js = {.kind = "t", .payload = STR_LIT("{}")}, .fail_after = HR_INVAL};
    struct herr err = {0};
    struct job j;

    /* the caller's transaction fails after enqueueing: no job */
    assert_int_equal(store_write(f->s, enq_fn, &e, &err), HR_INVAL);
    assert_int_equal(count_jobs(f, -1), 0);

    /* it commits: exactly one job, run_at = the store's now */
    e.fail_after = 0;
    e.id = 0;
    assert_int_equal(store_write(f->s, enq_fn, &e, &err), 0);
    assert_int_equal(count_jobs(f, -1), 1);
    assert_int_equal(get(f, e.id, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.run_at_ms, T0);
    assert_int_equal(j.attempts, 0);
    assert_string_equal(j.kind, "t");
}

/* ---- the state machine, one job at a time ---------------------------------------- */

static void test_done_commits_with_ack(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_DONE, .commit = meta_fn, .commit_arg = "done.key"};
    struct queue *q = q_with(f, &h, &cfg);
    struct queue_stats st;
    struct job j;
    int64_t id = enqueue(f, "t", "{}", 0, 0);

    assert_int_equal(run_once(q), 1);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.last_attempts, 1);
    assert_int_equal(get(f, id, &j), HR_NOTFOUND);
    assert_true(meta_present(f, "done.key"));
    queue_get_stats(q, &st);
    assert_int_equal(st.done, 1);
    assert_int_equal(st.retried + st.failed + st.dead + st.lost_lease, 0);
    assert_int_equal(run_once(q), 0);
    queue_free(q);
}

static void test_lost_lease_rolls_back_commit(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_DONE, .commit = meta_fn, .commit_arg = "lost.key",
                   .steal_lease = true};
    struct queue *q = q_with(f, &h, &cfg);
    struct queue_stats st;
    struct job j;
    int64_t id = enqueue(f, "t", "{}", 0, 0);

    metrics_reset();

    assert_int_equal(run_once(q), 1);
    /* the ack conflicted: the handler's commit was undone with it */
    assert_false(meta_present(f, "lost.key"));
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_LEASED);
    assert_int_equal(j.attempts, 2);
    queue_get_stats(q, &st);
    assert_int_equal(st.lost_lease, 1);
    assert_int_equal(st.done, 0);
    assert_true(metric_has("herald_jobs_total{kind=\"t\",outcome=\"lost_lease\"} 1"));
    assert_false(metric_has("outcome=\"done\""));
    queue_free(q);
}

static void test_commit_failure_retries(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_DONE, .commit = meta_then_fail_fn,
                   .commit_arg = "cf.key"};
    struct queue *q = q_with(f, &h, &cfg);
    struct queue_stats st;
    struct job j;
    int64_t id = enqueue(f, "t", "{}", 0, 0);

    assert_int_equal(run_once(q), 1);
    assert_false(meta_present(f, "cf.key"));
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.attempts, 1);
    assert_true(j.run_at_ms >= T0 + 500 && j.run_at_ms <= T0 + 1000);
    assert_non_null(j.last_error.p);
    assert_non_null(strstr(j.last_error.p, "commit failed"));
    queue_get_stats(q, &st);
    assert_int_equal(st.retried, 1);
    assert_int_equal(st.done, 0);
    queue_free(q);
}

static void test_retry_backoff(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_RETRY, .commit = meta_fn, .commit_arg = "retry.key"};
    struct queue *q = q_with(f, &h, &cfg);
    struct queue_stats st;
    struct job j;
    int64_t id = enqueue(f, "t", "{}", 0, 0), run_at;

    assert_int_equal(run_once(q), 1);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.attempts, 1);
    assert_true(str_eq_c(j.last_error, "boom 1"));
    /* first retry: backoff within [base/2, base] */
    run_at = j.run_at_ms;
    assert_true(run_at >= T0 + 500 && run_at <= T0 + 1000);
    assert_true(meta_present(f, "retry.key")); /* RETRY commits the handler's writes too */
    queue_get_stats(q, &st);
    assert_int_equal(st.retried, 1);

    /* not runnable before run_at, runnable at it */
    assert_int_equal(run_once(q), 0);
    hclock_manual_advance(&f->clk, run_at - now_of(f) - 1);
    assert_int_equal(run_once(q), 0);
    hclock_manual_advance(&f->clk, 1);
    assert_int_equal(run_once(q), 1);
    assert_int_equal(h.last_attempts, 2);
    /* second retry: [base, 2*base] after now */
    assert_int_equal(get(f, id, &j), 0);
    assert_true(j.run_at_ms >= now_of(f) + 1000 && j.run_at_ms <= now_of(f) + 2000);
    queue_free(q);
}

static void test_retry_at_honoured(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_RETRY, .retry_at_ms = T0 + 123456};
    struct queue *q = q_with(f, &h, &cfg);
    struct job j;
    int64_t id = enqueue(f, "t", "{}", 0, 0);

    assert_int_equal(run_once(q), 1);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.run_at_ms, T0 + 123456);
    hclock_manual_advance(&f->clk, 123455);
    assert_int_equal(run_once(q), 0);
    hclock_manual_advance(&f->clk, 1);
    assert_int_equal(run_once(q), 1);
    queue_free(q);
}

/* DEFER: back to queued at the handler's time, no attempt counted, last_error untouched,
 * however often (more times than max_attempts). */
static void test_defer_not_an_attempt(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_DEFER};
    struct queue *q = q_with(f, &h, &cfg);
    struct queue_stats st;
    struct job j;
    int64_t id = enqueue(f, "t", "{}", 0, 2);

    metrics_reset();
    for (int i = 0; i < 5; i++) {
        h.retry_at_ms = now_of(f) + 700;
        assert_int_equal(run_once(q), 1);
        assert_int_equal(h.last_attempts, 1); /* each run is the first attempt */
        assert_int_equal(get(f, id, &j), 0);
        assert_int_equal(j.state, JOB_QUEUED);
        assert_int_equal(j.attempts, 0);
        assert_int_equal(j.run_at_ms, now_of(f) + 700);
        assert_int_equal(j.last_error.len, 0);
        assert_int_equal(run_once(q), 0); /* not before its time */
        hclock_manual_advance(&f->clk, 700);
    }
    queue_get_stats(q, &st);
    assert_int_equal(st.deferred, 5);
    assert_int_equal(st.retried + st.dead + st.failed, 0);
    assert_true(metric_has("herald_jobs_total{kind=\"t\",outcome=\"deferred\"} 5"));

    /* retry_at 0: soon (idle_poll_ms), not at once */
    h.retry_at_ms = 0;
    assert_int_equal(run_once(q), 1);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.run_at_ms, now_of(f) + cfg.idle_poll_ms);
    hclock_manual_advance(&f->clk, cfg.idle_poll_ms);

    h.outcome = JOB_OUT_DONE;
    assert_int_equal(run_once(q), 1);
    assert_int_equal(h.last_attempts, 1);
    assert_int_equal(get(f, id, &j), HR_NOTFOUND);
    queue_free(q);
}

static void test_attempts_exhausted_dead(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_RETRY};
    struct queue *q = q_with(f, &h, &cfg);
    struct queue_stats st;
    struct job j;
    int64_t id = enqueue(f, "t", "{}", 0, 3);

    for (int i = 0; i < 3; i++) {
        assert_int_equal(run_once(q), 1);
        hclock_manual_advance(&f->clk, cfg.backoff_max_ms);
    }
    assert_int_equal(h.calls, 3);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_DEAD);
    assert_int_equal(j.attempts, 3);
    assert_true(str_eq_c(j.last_error, "boom 3"));
    queue_get_stats(q, &st);
    assert_int_equal(st.retried, 2);
    assert_int_equal(st.dead, 1);
    /* dead jobs are never leased again */
    hclock_manual_advance(&f->clk, 10 * cfg.backoff_max_ms);
    assert_int_equal(run_once(q), 0);
    assert_int_equal(count_jobs(f, JOB_DEAD), 1);
    queue_free(q);
}

static void test_fail_dead_at_once(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_FAIL, .commit = meta_fn, .commit_arg = "fail.key"};
    struct queue *q = q_with(f, &h, &cfg);
    struct queue_stats st;
    struct job j;
    int64_t id = enqueue(f, "t", "{}", 0, 0);

    assert_int_equal(run_once(q), 1);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_DEAD);
    assert_int_equal(j.attempts, 1);
    assert_true(str_eq_c(j.last_error, "boom 1"));
    assert_true(meta_present(f, "fail.key"));
    queue_get_stats(q, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.dead + st.retried + st.done, 0);
    queue_free(q);
}

static void test_lease_expiry(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_DONE};
    struct queue *q = q_with(f, &h, &cfg);
    struct job *jobs;
    struct ack_req stale;
    struct herr err = {0};
    struct job j;
    int64_t id = enqueue(f, "t", "{}", 0, 0);

    /* another node leases it and dies */
    assert_int_equal(lease_direct(f->s, now_of(f), cfg.lease_ms, "t", f->a, &jobs), 1);
    stale.id = jobs[0].id;
    stale.token = jobs[0].lease_token;
    assert_int_equal(run_once(q), 0);
    hclock_manual_advance(&f->clk, cfg.lease_ms - 1);
    assert_int_equal(run_once(q), 0);
    hclock_manual_advance(&f->clk, 2);
    assert_int_equal(run_once(q), 1);
    assert_int_equal(h.last_attempts, 2);
    assert_int_equal(get(f, id, &j), HR_NOTFOUND);
    /* the stale lease cannot commit */
    assert_int_equal(store_write(f->s, ack_fn, &stale, &err), HR_CONFLICT);
    queue_free(q);
}

static void test_lease_expired_too_often(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_DONE};
    struct queue *q = q_with(f, &h, &cfg);
    struct queue_stats st;
    struct job *jobs;
    struct job j;
    int64_t id = enqueue(f, "t", "{}", 0, 2);

    for (int i = 0; i < 2; i++) {
        assert_int_equal(lease_direct(f->s, now_of(f), cfg.lease_ms, "t", f->a, &jobs), 1);
        hclock_manual_advance(&f->clk, cfg.lease_ms + 1);
    }
    assert_int_equal(run_once(q), 1);
    assert_int_equal(h.calls, 0); /* attempt 3 of 2: dead without running */
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_DEAD);
    assert_non_null(j.last_error.p);
    assert_non_null(strstr(j.last_error.p, "lease expired"));
    queue_get_stats(q, &st);
    assert_int_equal(st.dead, 1);
    queue_free(q);
}

/* test_poison_pill: a job whose lease was taken over max_retaken times (its process died
 * with it in hand, again and again) is dead-lettered without running; one taken over
 * fewer times still runs. Attempts left do not matter. */
static void test_poison_pill(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_DONE};
    struct queue *q;
    struct queue_stats st;
    struct job *jobs;
    struct job j;
    int64_t id = enqueue(f, "t", "{}", 0, 100), id2;

    cfg.max_retaken = 3;
    q = q_with(f, &h, &cfg);
    /* leased, and its holder died, four times */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(lease_direct(f->s, now_of(f), cfg.lease_ms, "t", f->a, &jobs), 1);
        assert_int_equal(jobs[0].retaken, (uint32_t)i);
        hclock_manual_advance(&f->clk, cfg.lease_ms + 1);
    }
    assert_int_equal(run_once(q), 1); /* the fifth lease: retaken 4 >= 3 */
    assert_int_equal(h.calls, 0);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_DEAD);
    assert_non_null(strstr(j.last_error.p, "poison pill"));
    queue_get_stats(q, &st);
    assert_int_equal(st.dead, 1);

    /* taken over twice: it still runs */
    id2 = enqueue(f, "t", "{}", 0, 100);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(lease_direct(f->s, now_of(f), cfg.lease_ms, "t", f->a, &jobs), 1);
        hclock_manual_advance(&f->clk, cfg.lease_ms + 1);
    }
    assert_int_equal(run_once(q), 1);
    assert_int_equal(h.calls, 1);
    assert_int_equal(get(f, id2, &j), HR_NOTFOUND);
    queue_free(q);
}

/* test_poison_pill_retry_not_counted: a retry the handler asked for is not a takeover. */
static void test_poison_pill_retry_not_counted(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_RETRY};
    struct queue *q = q_with(f, &h, &cfg);
    struct job j;
    int64_t id = enqueue(f, "t", "{}", 0, 100);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(run_once(q), 1);
        hclock_manual_advance(&f->clk, 3600000);
    }
    assert_int_equal(h.calls, 5);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.retaken, 0);
    queue_free(q);
}

/* test_poison_pill_counts_in_a_row: takeovers count only in a row. A job taken over
 * twice, then deferred (an outcome committed: it ran), then taken over twice again is
 * still run: a busy node killed several times leases innocent jobs at several crashes. */
static void test_poison_pill_counts_in_a_row(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_DEFER};
    struct queue *q = q_with(f, &h, &cfg);
    struct job j, *jobs;
    cfg.max_retaken = 3;
    queue_free(q);
    q = q_with(f, &h, &cfg);
    int64_t id = enqueue(f, "t", "{}", 0, 100);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 2; i++) {
            assert_int_equal(lease_direct(f->s, now_of(f), cfg.lease_ms, "t", f->a, &jobs), 1);
            hclock_manual_advance(&f->clk, cfg.lease_ms + 1);
        }
        assert_int_equal(run_once(q), 1); /* retaken 2 < 3: it runs, and defers */
        assert_int_equal(get(f, id, &j), 0);
        assert_int_equal(j.state, JOB_QUEUED);
        assert_int_equal(j.retaken, 0);
        hclock_manual_advance(&f->clk, 3600000);
    }
    assert_int_equal(h.calls, 2);
    queue_free(q);
}

/* test_suspects_one_at_a_time: jobs whose lease ran out again after a takeover (in hand
 * at two deaths in a row: suspected poison pills) are leased one at a time and run first
 * in their batch; the next comes once the first one's outcome is committed. Queued jobs
 * and first takeovers are not held back. */
static void test_suspects_one_at_a_time(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_DONE};
    struct queue *q = q_with(f, &h, &cfg);
    struct job *jobs;
    struct job j;
    size_t ran = 0;
    int64_t a = enqueue(f, "t", "{}", T0 - 30, 0), b = enqueue(f, "t", "{}", T0 - 20, 0);
    int64_t c, d;

    for (int i = 0; i < 2; i++) { /* leased, and the holder died; taken over, died again */
        assert_int_equal(lease_direct(f->s, now_of(f), cfg.lease_ms, "t", f->a, &jobs), 2);
        hclock_manual_advance(&f->clk, cfg.lease_ms + 1);
    }
    c = enqueue(f, "t", "{}", T0 - 100, 0); /* queued, older than both */
    d = enqueue(f, "t", "{}", T0 - 10, 0);
    assert_int_equal(lease_direct(f->s, now_of(f), cfg.lease_ms, "t", f->a, &jobs), 4);
    hclock_manual_advance(&f->clk, cfg.lease_ms + 1); /* c, d: taken over once from here */

    assert_int_equal(queue_run_once(q, 16, &ran), 0);
    assert_int_equal(ran, 3); /* one suspect (a), and the first takeovers c and d */
    assert_int_equal(h.ran_ids[0], a); /* the suspect first, though c is older */
    assert_int_equal(h.ran_retaken[0], 3);
    assert_int_equal(h.ran_ids[1], c);
    assert_int_equal(h.ran_retaken[1], 1);
    assert_int_equal(h.ran_ids[2], d);
    assert_int_equal(get(f, b, &j), 0); /* waited for a's outcome */
    assert_int_equal(j.retaken, 2);
    assert_int_equal(run_once(q), 1);
    assert_int_equal(h.ran_ids[3], b);
    assert_int_equal(h.ran_retaken[3], 3);
    assert_int_equal(count_jobs(f, -1), 0);
    queue_free(q);
}

/* slow_run: a handler that takes longer than the lease (on the manual clock). */
static void slow_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct th *h = ctx;
    h->calls++;
    hclock_manual_advance(&h->f->clk, 30000 + 1);
    r->outcome = JOB_OUT_DONE;
}

/* a batch whose first job outlasts the lease: the second is not run on a lease that
 * has run out (another runner may hold it), but given back untouched */
static void test_batch_skips_expired_lease(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.f = f};
    struct job_handler hs[] = {{"t", slow_run, &h}};
    struct queue *q = queue_new(f->s, NULL, &cfg, hs, 1);
    struct queue_stats st;
    struct job j;
    size_t ran = 0;
    int64_t id1 = enqueue(f, "t", "{}", 0, 0), id2 = enqueue(f, "t", "{}", 0, 0);

    assert_int_equal(queue_run_once(q, 2, &ran), 0);
    assert_int_equal(ran, 1);
    assert_int_equal(h.calls, 1);
    assert_int_equal(get(f, id1, &j), HR_NOTFOUND); /* the slow one still acked: no rival */
    assert_int_equal(get(f, id2, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.attempts, 0);
    queue_get_stats(q, &st);
    assert_int_equal(st.done, 1);
    assert_int_equal(run_once(q), 1);
    assert_int_equal(count_jobs(f, -1), 0);
    queue_free(q);
}

static void test_run_at_scheduling(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_DONE};
    struct queue *q = q_with(f, &h, &cfg);
    int64_t next = 0;

    enqueue(f, "t", "{}", T0 + 5000, 0);
    assert_int_equal(store_job_next_run_at(f->s, true, &next), 0);
    assert_int_equal(next, T0 + 5000);
    assert_int_equal(run_once(q), 0);
    hclock_manual_advance(&f->clk, 4999);
    assert_int_equal(run_once(q), 0);
    assert_int_equal(h.calls, 0);
    hclock_manual_advance(&f->clk, 1);
    assert_int_equal(run_once(q), 1);
    assert_int_equal(h.calls, 1);
    queue_free(q);
}

/* A store whose lease ignores the queue's kind filter (as if a job's kind was renamed
 * under it): the queue must dead-letter what it has no handler for. */
static const struct store_ops *g_real_ops;

static int lease_any_kind(struct store_txn *t, int64_t now, int64_t lease_ms, size_t max,
                          size_t max_repeat, const char *const *kinds, struct arena *a,
                          struct job **out, size_t *n)
{
    static const char *const all[] = {"t", "mystery", NULL};
    (void)kinds;
    return g_real_ops->job_lease(t, now, lease_ms, max, max_repeat, all, a, out, n);
}

static void test_unknown_kind_dead(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_DONE};
    struct queue *q = q_with(f, &h, &cfg);
    struct store_ops wrapped;
    struct queue_stats st;
    struct job j;
    int64_t id = enqueue(f, "mystery", "{}", 0, 0);

    /* the queue leases only kinds it has handlers for */
    assert_int_equal(run_once(q), 0);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);

    metrics_reset();
    g_real_ops = f->s->ops;
    wrapped = *f->s->ops;
    wrapped.job_lease = lease_any_kind;
    f->s->ops = &wrapped;
    assert_int_equal(queue_run_once(q, 0, NULL), 0);
    f->s->ops = g_real_ops;

    assert_int_equal(h.calls, 0);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_DEAD);
    assert_true(str_eq_c(j.last_error, "no handler for kind mystery"));
    queue_get_stats(q, &st);
    assert_int_equal(st.dead, 1);
    /* the job's kind is not a metrics label: labels stay bounded */
    assert_true(metric_has("herald_jobs_total{kind=\"unknown\",outcome=\"dead\"} 1"));
    assert_false(metric_has("mystery"));
    queue_free(q);
}

/* ---- the worker pool -------------------------------------------------------------- */

#define POOL_JOBS 500

struct pool_ctx {
    atomic_int seen[POOL_JOBS];
    atomic_int total;
    atomic_int bad;
};

static void pool_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct pool_ctx *p = ctx;
    int64_t i = -1;
    char *copy = arena_strndup(a, j->payload.p, j->payload.len);
    if (str_to_i64(str_c(copy), &i) < 0 || i < 0 || i >= POOL_JOBS) {
        atomic_fetch_add(&p->bad, 1);
        r->outcome = JOB_OUT_FAIL;
        return;
    }
    atomic_fetch_add(&p->seen[i], 1);
    atomic_fetch_add(&p->total, 1);
    r->outcome = JOB_OUT_DONE;
}

struct enq_many {
    int from, to;
};

static int enq_many_fn(struct store_txn *t, void *arg)
{
    struct enq_many *e = arg;
    char buf[16];
    int rc = HR_OK;
    for (int i = e->from; i < e->to; i++) {
        struct job_spec js = {.kind = (i % 2) ? "b" : "a"};
        int64_t id;
        snprintf(buf, sizeof buf, "%d", i);
        js.payload = str_c(buf);
        rc = queue_enqueue(t, &js, &id);
        if (rc < 0)
            break;
    }
    return rc;
}

static void wait_stats_done(struct queue *q, uint64_t want, int timeout_ms)
{
    struct queue_stats st;
    for (int waited = 0;; waited += 5) {
        queue_get_stats(q, &st);
        if (st.done >= want || waited >= timeout_ms)
            break;
        sleep_ms(5);
    }
    assert_int_equal(st.done, want);
}

static void test_pool_exactly_once(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct pool_ctx *p = calloc(1, sizeof *p);
    struct job_handler hs[] = {{"a", pool_run, p}, {"b", pool_run, p}};
    struct queue *q;
    struct queue_stats st;
    struct herr err = {0};

    cfg.workers = 4;
    cfg.batch = 16;
    q = queue_new(f->s, NULL, &cfg, hs, 2);
    /* half before start, half while running, in several transactions */
    for (int i = 0; i < POOL_JOBS / 2; i += 50) {
        struct enq_many e = {i, i + 50};
        assert_int_equal(store_write(f->s, enq_many_fn, &e, &err), 0);
    }
    assert_int_equal(queue_start(q), 0);
    assert_int_equal(queue_start(q), 0); /* already running: no-op */
    for (int i = POOL_JOBS / 2; i < POOL_JOBS; i += 25) {
        struct enq_many e = {i, i + 25};
        assert_int_equal(store_write(f->s, enq_many_fn, &e, &err), 0);
    }
    wait_stats_done(q, POOL_JOBS, 30000);
    queue_stop(q, 5000);
    queue_stop(q, 5000); /* twice is fine */

    assert_int_equal(atomic_load(&p->bad), 0);
    assert_int_equal(atomic_load(&p->total), POOL_JOBS);
    for (int i = 0; i < POOL_JOBS; i++)
        assert_int_equal(atomic_load(&p->seen[i]), 1);
    assert_int_equal(count_jobs(f, -1), 0);
    queue_get_stats(q, &st);
    assert_int_equal(st.done, POOL_JOBS);
    assert_int_equal(st.retried + st.failed + st.dead + st.lost_lease, 0);
    queue_free(q);
    free(p);
}

/* A slow job does not hold the rest of its batch: the other worker takes the unstarted
 * jobs and runs them while the slow one still runs. */
struct held_ctx {
    atomic_int fast_done;
    atomic_int slow_started, slow_release, slow_done;
    atomic_int fast_done_when_slow_ended;
};

static void held_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct held_ctx *c = ctx;
    if (str_eq_c(j->payload, "slow")) {
        atomic_store(&c->slow_started, 1);
        for (int waited = 0; !atomic_load(&c->slow_release) && waited < 20000; waited += 5)
            sleep_ms(5);
        atomic_store(&c->fast_done_when_slow_ended, atomic_load(&c->fast_done));
        atomic_store(&c->slow_done, 1);
    } else {
        atomic_fetch_add(&c->fast_done, 1);
    }
    r->outcome = JOB_OUT_DONE;
}

static int enq_slow_first_fn(struct store_txn *t, void *arg)
{
    int rc = HR_OK;
    int64_t id;
    (void)arg;
    for (int i = 0; i < 8 && rc == HR_OK; i++) {
        struct job_spec js = {.kind = "s", .payload = i == 0 ? STR_LIT("slow") : STR_LIT("fast")};
        rc = queue_enqueue(t, &js, &id);
    }
    return rc;
}

static void test_pool_slow_job_does_not_hold_batch(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct held_ctx *c = calloc(1, sizeof *c);
    struct job_handler hs[] = {{"s", held_run, c}};
    struct queue *q;
    struct queue_stats st;
    struct herr err = {0};

    cfg.workers = 2;
    cfg.batch = 8; /* one lease takes all eight jobs */
    q = queue_new(f->s, NULL, &cfg, hs, 1);
    assert_int_equal(store_write(f->s, enq_slow_first_fn, NULL, &err), 0);
    assert_int_equal(queue_start(q), 0);
    for (int waited = 0; atomic_load(&c->fast_done) < 7 && waited < 10000; waited += 5)
        sleep_ms(5);
    /* every fast job ran while the slow one was still running */
    assert_int_equal(atomic_load(&c->fast_done), 7);
    assert_int_equal(atomic_load(&c->slow_started), 1);
    assert_int_equal(atomic_load(&c->slow_done), 0);
    atomic_store(&c->slow_release, 1);
    wait_stats_done(q, 8, 10000);
    assert_int_equal(atomic_load(&c->fast_done_when_slow_ended), 7);
    queue_get_stats(q, &st);
    assert_true(st.taken >= 1);
    assert_int_equal(st.retried + st.failed + st.dead + st.lost_lease, 0);
    queue_stop(q, 5000);
    assert_int_equal(count_jobs(f, -1), 0);
    queue_free(q);
    free(c);
}

/* pool_a: a started pool of `workers` running kind "a" with pool_run over p. */
static struct queue *pool_a(struct fx *f, struct pool_ctx *p, int workers, int64_t idle_poll_ms)
{
    struct queue_cfg cfg = test_cfg();
    struct job_handler hs[] = {{"a", pool_run, p}};
    struct queue *q;

    cfg.workers = workers;
    cfg.idle_poll_ms = idle_poll_ms;
    q = queue_new(f->s, NULL, &cfg, hs, 1);
    assert_int_equal(queue_start(q), 0);
    return q;
}

/* queue_wake via the store's listener: idle workers wake long before idle_poll_ms. */
static void test_pool_wakes_on_commit(void **state)
{
    struct fx *f = *state;
    struct pool_ctx *p = calloc(1, sizeof *p);
    struct queue *q = pool_a(f, p, 2, 60000);
    int64_t t0;

    sleep_ms(100); /* let both workers find nothing and go idle */
    t0 = time_mono_ms();
    enqueue(f, "a", "7", 0, 0);
    wait_stats_done(q, 1, 5000);
    assert_true(time_mono_ms() - t0 < 5000);
    assert_int_equal(atomic_load(&p->seen[7]), 1);
    queue_free(q); /* stops first; must not wait out idle_poll_ms */
    free(p);
}

struct blocker {
    struct fx *f;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started, released;
    atomic_int fast_calls;
    int64_t fast_ids[5];
    int release_delay_ms; /* after the leases are back, before the blocker ends */
};

static void block_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct blocker *b = ctx;
    pthread_mutex_lock(&b->mu);
    b->started = true;
    pthread_cond_broadcast(&b->cv);
    while (!b->released)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    r->outcome = JOB_OUT_DONE;
}

static void fast_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct blocker *b = ctx;
    atomic_fetch_add(&b->fast_calls, 1);
    r->outcome = JOB_OUT_DONE;
}

/* releaser: once queue_stop has given the unstarted leases back, let the blocker end. */
static void *releaser(void *arg)
{
    struct blocker *b = arg;
    struct arena *a = arena_new(1024);
    for (int waited = 0; waited < 10000; waited += 5) {
        int queued = 0;
        for (int i = 0; i < 5; i++) {
            struct job j;
            arena_reset(a);
            if (store_job_get(b->f->s, b->fast_ids[i], a, &j) == 0 && j.state == JOB_QUEUED)
                queued++;
        }
        if (queued == 5)
            break;
        sleep_ms(5);
    }
    arena_free(a);
    sleep_ms(b->release_delay_ms);
    pthread_mutex_lock(&b->mu);
    b->released = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void stop_gives_back(struct fx *f, int stop_timeout_ms, int release_delay_ms)
{
    struct queue_cfg cfg = test_cfg();
    struct blocker *b = calloc(1, sizeof *b);
    struct job_handler hs[] = {{"block", block_run, b}, {"fast", fast_run, b}};
    struct queue *q;
    struct queue_stats st;
    pthread_t th;
    struct job j;
    int64_t block_id;

    b->f = f;
    b->release_delay_ms = release_delay_ms;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    cfg.workers = 1;
    cfg.batch = 8;
    block_id = enqueue(f, "block", "{}", T0 - 1000, 0); /* first in lease order */
    for (int i = 0; i < 5; i++)
        b->fast_ids[i] = enqueue(f, "fast", "{}", 0, 0);
    q = queue_new(f->s, NULL, &cfg, hs, 2);
    assert_int_equal(queue_start(q), 0);

    pthread_mutex_lock(&b->mu);
    while (!b->started)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    /* the one worker holds the whole batch: blocker running, five fast ones waiting */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(get(f, b->fast_ids[i], &j), 0);
        assert_int_equal(j.state, JOB_LEASED);
    }

    assert_int_equal(pthread_create(&th, NULL, releaser, b), 0);
    queue_stop(q, stop_timeout_ms);
    pthread_join(th, NULL);

    /* the running job finished and committed; the others are back, attempts unchanged */
    assert_int_equal(get(f, block_id, &j), HR_NOTFOUND);
    assert_int_equal(atomic_load(&b->fast_calls), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(get(f, b->fast_ids[i], &j), 0);
        assert_int_equal(j.state, JOB_QUEUED);
        assert_int_equal(j.attempts, 0);
        assert_int_equal(j.lease_until_ms, 0);
    }
    queue_get_stats(q, &st);
    assert_int_equal(st.done, 1);
    assert_int_equal(st.lost_lease + st.retried + st.dead + st.failed, 0);

    /* and they run normally afterwards */
    assert_int_equal(queue_run_once(q, 0, NULL), 0);
    assert_int_equal(atomic_load(&b->fast_calls), 5);
    assert_int_equal(count_jobs(f, -1), 0);

    queue_free(q);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static void test_stop_gives_back_leases(void **state) { stop_gives_back(*state, 10000, 0); }

/* a handler outlasting the stop timeout: logged, still joined, still committed */
static void test_stop_timeout_still_joins(void **state) { stop_gives_back(*state, 50, 200); }

static void test_stop_without_start(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct th h = {.outcome = JOB_OUT_DONE};
    struct queue *q = q_with(f, &h, &cfg);

    queue_stop(q, 100);
    queue_stop(q, 100);
    /* the queue stays usable: start again after a stop */
    assert_int_equal(queue_start(q), 0);
    queue_stop(q, 1000);
    assert_int_equal(queue_start(q), 0);
    enqueue(f, "t", "{}", 0, 0);
    for (int waited = 0; waited < 5000 && count_jobs(f, -1) > 0; waited += 5)
        sleep_ms(5);
    assert_int_equal(count_jobs(f, -1), 0);
    queue_free(q); /* running: free stops first */
    queue_free(NULL);
}

/* ---- ASYNC jobs: the handler starts the work, another thread ends it ---------------- */

struct async_ctx {
    _Atomic(struct job_ticket *) ticket;
    _Atomic(const char *) key; /* a string in the job's arena: the commit uses it */
    bool finish_inline;        /* end the job before the handler returns */
    int inline_outcome;
    atomic_int calls;
};

static void async_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct async_ctx *c = ctx;
    (void)j;
    atomic_fetch_add(&c->calls, 1);
    atomic_store(&c->key, arena_strdup(a, "async.key"));
    if (c->finish_inline) {
        struct job_result fin = {.outcome = c->inline_outcome};
        snprintf(fin.error, sizeof fin.error, "inline");
        queue_job_finish(NULL, r->ticket, &fin);
    } else {
        atomic_store(&c->ticket, r->ticket);
    }
    r->outcome = JOB_OUT_ASYNC;
}

static struct job_ticket *wait_ticket(struct async_ctx *c)
{
    struct job_ticket *t = NULL;
    for (int waited = 0; !(t = atomic_load(&c->ticket)) && waited < 10000; waited += 5)
        sleep_ms(5);
    assert_non_null(t);
    return t;
}

/* The job stays leased while its work is in flight, the worker is free (a second job
 * runs meanwhile), and queue_job_finish commits the real outcome with the handler's
 * commit callback, whose argument lives in the job's arena. */
static void test_async_pool_commit(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct async_ctx *c = calloc(1, sizeof *c);
    struct pool_ctx *p = calloc(1, sizeof *p);
    struct job_handler hs[] = {{"x", async_run, c}, {"a", pool_run, p}};
    struct job_result fin = {.outcome = JOB_OUT_DONE, .commit = meta_fn};
    struct queue_stats st;
    struct queue *q;
    struct job j;
    int64_t id = enqueue(f, "x", "{}", 0, 0);

    cfg.workers = 1; /* one worker: the second job runs only if the first freed it */
    q = queue_new(f->s, NULL, &cfg, hs, 2);
    assert_int_equal(queue_start(q), 0);
    struct job_ticket *t = wait_ticket(c);
    enqueue(f, "a", "3", 0, 0);
    wait_stats_done(q, 1, 10000);
    assert_int_equal(atomic_load(&p->seen[3]), 1);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_LEASED);
    queue_get_stats(q, &st);
    assert_int_equal(st.in_flight, 1);

    fin.commit_arg = (void *)atomic_load(&c->key);
    queue_job_finish(q, t, &fin);
    wait_stats_done(q, 2, 10000);
    assert_int_equal(get(f, id, &j), HR_NOTFOUND);
    assert_true(meta_present(f, "async.key"));
    queue_get_stats(q, &st);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(atomic_load(&c->calls), 1);
    queue_free(q);
    free(c);
    free(p);
}

/* wait_lease_until: poll the job's row until its lease ends at `want` (the completer
 * renewed it); false after timeout_ms */
static bool wait_lease_until(struct fx *f, int64_t id, int64_t want, int timeout_ms)
{
    struct job j;
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        if (get(f, id, &j) == 0 && j.lease_until_ms == want)
            return true;
        sleep_ms(5);
    }
    return false;
}

/* test_async_lease_renewed: a job whose async work outlasts half its lease is renewed
 * by the completer (one write, lease_ms from then), so at the lease's first end it is
 * not taken over; its outcome then commits as any other (not a lost lease). */
static void test_async_lease_renewed(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct async_ctx *c = calloc(1, sizeof *c);
    struct job_handler hs[] = {{"x", async_run, c}};
    struct job_result fin = {.outcome = JOB_OUT_DONE};
    struct queue_stats st;
    struct job *jobs, j;
    struct queue *q;
    struct job_ticket *t;
    int64_t id = enqueue(f, "x", "{}", 0, 0), token;

    metrics_reset();
    cfg.lease_ms = 400; /* the completer looks every 100 ms */
    q = queue_new(f->s, NULL, &cfg, hs, 1);
    assert_int_equal(queue_start(q), 0);
    t = wait_ticket(c);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.lease_until_ms, T0 + 400);
    token = j.lease_token;

    sleep_ms(250); /* more than two looks: with 3/4 of the lease left, none renews */
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.lease_until_ms, T0 + 400);
    hclock_manual_advance(&f->clk, 250); /* 150 ms left: under half */
    assert_true(wait_lease_until(f, id, T0 + 250 + 400, 5000));
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.lease_token, token);
    assert_int_equal(j.attempts, 1);

    hclock_manual_advance(&f->clk, 300); /* past the first end: not taken over */
    assert_int_equal(lease_direct(f->s, now_of(f), cfg.lease_ms, "x", f->a, &jobs), 0);
    queue_job_finish(q, t, &fin);
    wait_stats_done(q, 1, 10000);
    assert_int_equal(get(f, id, &j), HR_NOTFOUND);
    queue_get_stats(q, &st);
    assert_int_equal(st.done, 1);
    assert_int_equal(st.lost_lease, 0);
    assert_true(metric_has("herald_queue_lease_renewals_total{result=\"renewed\"}"));
    assert_false(metric_has("herald_queue_lease_renewals_total{result=\"lost\"}"));
    assert_int_equal(atomic_load(&c->calls), 1);
    queue_free(q);
    free(c);
}

/* test_renewal_capped: a job in hand longer than renew_max_ms is not renewed any more
 * (an async end that never comes must not hold its job for the life of the process):
 * its lease keeps its first end. */
static void test_renewal_capped(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct async_ctx *c = calloc(1, sizeof *c);
    struct job_handler hs[] = {{"x", async_run, c}};
    struct job_result fin = {.outcome = JOB_OUT_DONE};
    struct queue *q;
    struct job_ticket *t;
    struct job j;
    int64_t id = enqueue(f, "x", "{}", 0, 0);

    cfg.lease_ms = 400;
    cfg.renew_max_ms = 150;
    q = queue_new(f->s, NULL, &cfg, hs, 1);
    assert_int_equal(queue_start(q), 0);
    t = wait_ticket(c);
    sleep_ms(200);                         /* in hand past renew_max_ms */
    hclock_manual_advance(&f->clk, 250);   /* 150 ms left: under half */
    sleep_ms(400);                         /* four looks of the completer */
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.lease_until_ms, T0 + 400);
    queue_job_finish(q, t, &fin);
    wait_stats_done(q, 1, 10000);
    assert_int_equal(get(f, id, &j), HR_NOTFOUND);
    queue_free(q);
    free(c);
}

/* test_sync_handler_not_renewed: a handler stuck on its worker's thread keeps its first
 * lease only: once it runs out the job is taken over (what the poison-pill guard counts),
 * and the stuck run's late outcome is a lost lease. */
static void test_sync_handler_not_renewed(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct blocker c = {.f = f, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    struct job_handler hs[] = {{"x", block_run, &c}};
    struct queue_stats st;
    struct job *jobs, j;
    struct queue *q;
    int64_t id = enqueue(f, "x", "{}", 0, 0);

    cfg.lease_ms = 400;
    q = queue_new(f->s, NULL, &cfg, hs, 1);
    assert_int_equal(queue_start(q), 0);
    pthread_mutex_lock(&c.mu);
    while (!c.started)
        pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
    hclock_manual_advance(&f->clk, 300); /* 100 ms left */
    sleep_ms(350);                         /* three looks of the completer */
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.lease_until_ms, T0 + 400);
    hclock_manual_advance(&f->clk, 101);
    assert_int_equal(lease_direct(f->s, now_of(f), 60000, "x", f->a, &jobs), 1);
    assert_int_equal(jobs[0].retaken, 1);

    pthread_mutex_lock(&c.mu);
    c.released = true;
    pthread_cond_broadcast(&c.cv);
    pthread_mutex_unlock(&c.mu);
    for (int waited = 0; waited < 10000; waited += 5) {
        queue_get_stats(q, &st);
        if (st.lost_lease)
            break;
        sleep_ms(5);
    }
    assert_int_equal(st.lost_lease, 1);
    assert_int_equal(st.done, 0);
    queue_free(q);
}

/* test_suspect_held_while_async: while a suspect's async work is in flight, the node
 * leases no other suspect (a second lease round, woken by a new job, leaves it expired
 * and untouched); once the first one's outcome is committed, the next is leased without
 * another wake. */
static void test_suspect_held_while_async(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct async_ctx *c = calloc(1, sizeof *c);
    struct pool_ctx *p = calloc(1, sizeof *p);
    struct job_handler hs[] = {{"x", async_run, c}, {"a", pool_run, p}};
    struct job_result fin = {.outcome = JOB_OUT_DONE};
    struct job *jobs;
    struct job j;
    struct queue *q;
    struct job_ticket *t;
    int64_t a = enqueue(f, "x", "{}", T0 - 20, 0), b = enqueue(f, "x", "{}", T0 - 10, 0);
    int64_t first, second;

    for (int i = 0; i < 2; i++) { /* in hand at two deaths: both suspects from here */
        assert_int_equal(lease_direct(f->s, now_of(f), cfg.lease_ms, "x", f->a, &jobs), 2);
        hclock_manual_advance(&f->clk, cfg.lease_ms + 1);
    }
    cfg.workers = 1;
    q = queue_new(f->s, NULL, &cfg, hs, 2);
    assert_int_equal(queue_start(q), 0);
    t = wait_ticket(c);
    atomic_store(&c->ticket, NULL);
    assert_int_equal(get(f, a, &j), 0);
    first = j.retaken == 2 ? a : b;
    second = first == a ? b : a;
    assert_int_equal(first, a); /* the older one */

    enqueue(f, "a", "3", 0, 0); /* wakes the worker: it leases, but not the other suspect */
    wait_stats_done(q, 1, 10000);
    assert_int_equal(get(f, second, &j), 0);
    assert_int_equal(j.retaken, 1);
    assert_int_equal(atomic_load(&c->calls), 1);

    queue_job_finish(q, t, &fin); /* committed: the next suspect comes by itself */
    t = wait_ticket(c);
    assert_int_equal(get(f, second, &j), 0);
    assert_int_equal(j.state, JOB_LEASED);
    assert_int_equal(j.retaken, 2);
    queue_job_finish(q, t, &fin);
    wait_stats_done(q, 3, 10000);
    assert_int_equal(count_jobs(f, -1), 0);
    queue_free(q);
    free(c);
    free(p);
}

/* ---- a suspect's outcome is committed first, alone -------------------------------- */

/* hold_ctx: an async handler that keeps every ticket (by position in ids[]). */
#define HOLD_MAX 5

struct hold_ctx {
    int64_t ids[HOLD_MAX]; /* 0: an unused slot (job ids start at 1) */
    _Atomic(struct job_ticket *) t[HOLD_MAX];
};

static void hold_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct hold_ctx *c = ctx;
    (void)a;
    for (int i = 0; i < HOLD_MAX; i++)
        if (c->ids[i] == j->id)
            atomic_store(&c->t[i], r->ticket);
    r->outcome = JOB_OUT_ASYNC;
}

/* The store's job_ack, wrapped: records the order of acks, and holds the first one
 * until released (the completer stuck in a commit while other tickets finish). */
static const struct store_ops *g_ack_real;
static pthread_mutex_t g_ack_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_ack_cv = PTHREAD_COND_INITIALIZER;
static bool g_ack_held, g_ack_release;
static int64_t g_ack_order[8];
static int g_acks;

static int ack_held(struct store_txn *t, int64_t id, int64_t token)
{
    pthread_mutex_lock(&g_ack_mu);
    if (g_acks < 8)
        g_ack_order[g_acks] = id;
    if (g_acks++ == 0) {
        g_ack_held = true;
        pthread_cond_broadcast(&g_ack_cv);
        while (!g_ack_release)
            pthread_cond_wait(&g_ack_cv, &g_ack_mu);
    }
    pthread_mutex_unlock(&g_ack_mu);
    return g_ack_real->job_ack(t, id, token);
}

static void test_suspect_committed_first(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct hold_ctx *c = calloc(1, sizeof *c);
    struct job_handler hs[] = {{"x", hold_run, c}};
    struct job_result fin = {.outcome = JOB_OUT_DONE};
    struct store_ops wrapped;
    struct queue_stats st;
    struct job *jobs;
    struct queue *q;
    int64_t s = enqueue(f, "x", "{}", T0 - 40, 0);

    for (int i = 0; i < 2; i++) { /* in hand at two deaths: a suspect from here */
        assert_int_equal(lease_direct(f->s, now_of(f), cfg.lease_ms, "x", f->a, &jobs), 1);
        hclock_manual_advance(&f->clk, cfg.lease_ms + 1);
    }
    c->ids[0] = enqueue(f, "x", "{}", T0 - 30, 0);
    c->ids[1] = enqueue(f, "x", "{}", T0 - 20, 0);
    c->ids[2] = enqueue(f, "x", "{}", T0 - 10, 0);
    c->ids[3] = s;
    g_ack_real = f->s->ops;
    wrapped = *f->s->ops;
    wrapped.job_ack = ack_held;
    f->s->ops = &wrapped;

    cfg.workers = 1;
    q = queue_new(f->s, NULL, &cfg, hs, 1);
    assert_int_equal(queue_start(q), 0);
    for (int i = 0; i < 4; i++)
        for (int waited = 0; !atomic_load(&c->t[i]) && waited < 10000; waited += 5)
            sleep_ms(5);
    for (int i = 0; i < 4; i++)
        assert_non_null(atomic_load(&c->t[i])); /* one batch, all four in hand */

    queue_job_finish(q, atomic_load(&c->t[0]), &fin); /* the completer commits it, held */
    pthread_mutex_lock(&g_ack_mu);
    while (!g_ack_held)
        pthread_cond_wait(&g_ack_cv, &g_ack_mu);
    pthread_mutex_unlock(&g_ack_mu);
    queue_job_finish(q, atomic_load(&c->t[1]), &fin); /* these wait in the completer's */
    queue_job_finish(q, atomic_load(&c->t[2]), &fin); /* list; the suspect finishes last */
    queue_job_finish(q, atomic_load(&c->t[3]), &fin);
    pthread_mutex_lock(&g_ack_mu);
    g_ack_release = true;
    pthread_cond_broadcast(&g_ack_cv);
    pthread_mutex_unlock(&g_ack_mu);
    wait_stats_done(q, 4, 10000);

    assert_int_equal(g_acks, 4);
    assert_int_equal(g_ack_order[0], c->ids[0]);
    assert_int_equal(g_ack_order[1], s); /* first after the commit it waited behind */
    assert_int_equal(g_ack_order[2], c->ids[1]);
    assert_int_equal(g_ack_order[3], c->ids[2]);
    queue_get_stats(q, &st);
    assert_int_equal(st.commits, 3); /* [x1], [suspect] alone, [x2, x3] */
    queue_free(q);
    f->s->ops = g_ack_real;
    free(c);
}

/* A store whose acks come many to a statement (PostgreSQL's job_ack_many), played on
 * SQLite by acking each in turn: a batch's acks wait until after every commit, and one
 * lease found lost fails that pass, so each job is committed again in its own savepoint
 * (its commit with it: the lost one's is undone). The completer is held in the commit
 * of a first job (ack_held) while the four others finish, so they make one batch. */
static int g_am_calls, g_am_conflicts;
static size_t g_am_jobs;

static int loop_ack_many(struct store_txn *t, const int64_t *ids, const int64_t *toks, size_t n)
{
    g_am_calls++;
    g_am_jobs += n;
    for (size_t i = 0; i < n; i++) {
        int rc = store_job_ack(t, ids[i], toks[i]);
        if (rc < 0) {
            g_am_conflicts += rc == HR_CONFLICT;
            return rc;
        }
    }
    return HR_OK;
}

static void ack_many_batch(struct fx *f, bool steal)
{
    static struct store_ops wrapped; /* static: still valid if an assertion ends the test */
    static const char *const keys[5] = {"am.h", "am.x0", "am.x1", "am.x2", "am.t"};
    struct queue_cfg cfg = test_cfg();
    struct hold_ctx *c = calloc(1, sizeof *c);
    struct job_handler hs[] = {{"x", hold_run, c}, {"t", hold_run, c}};
    struct queue_stats st;
    struct job *jobs, j;
    struct queue *q;

    c->ids[0] = enqueue(f, "x", "{}", T0 - 50, 0); /* committed first, alone: held */
    for (int i = 1; i < 4; i++)
        c->ids[i] = enqueue(f, "x", "{}", T0 - 50 + 10 * i, 0);
    c->ids[4] = enqueue(f, "t", "{}", T0 - 5, 0);
    g_ack_real = f->s->ops;
    wrapped = *f->s->ops;
    wrapped.job_ack = ack_held;
    wrapped.job_ack_many = loop_ack_many;
    f->s->ops = &wrapped;
    g_acks = 0;
    g_ack_held = g_ack_release = false;
    g_am_calls = g_am_conflicts = 0;
    g_am_jobs = 0;

    cfg.workers = 1;
    q = queue_new(f->s, NULL, &cfg, hs, 2);
    assert_int_equal(queue_start(q), 0);
    for (int i = 0; i < 5; i++)
        for (int waited = 0; !atomic_load(&c->t[i]) && waited < 10000; waited += 5)
            sleep_ms(5);
    for (int i = 0; i < 5; i++)
        assert_non_null(atomic_load(&c->t[i]));
    if (steal) /* t's lease runs out and another holder takes it, as after a stall */
        assert_int_equal(lease_direct(f->s, now_of(f) + cfg.lease_ms + 1, cfg.lease_ms, "t",
                                      f->a, &jobs), 1);
    for (int i = 0; i < 5; i++) {
        struct job_result fin = {.outcome = JOB_OUT_DONE, .commit = meta_fn,
                                 .commit_arg = (void *)keys[i]};
        queue_job_finish(q, atomic_load(&c->t[i]), &fin);
        if (i == 0) { /* the completer is in its commit, held: the rest finish meanwhile */
            pthread_mutex_lock(&g_ack_mu);
            while (!g_ack_held)
                pthread_cond_wait(&g_ack_cv, &g_ack_mu);
            pthread_mutex_unlock(&g_ack_mu);
        }
    }
    pthread_mutex_lock(&g_ack_mu);
    g_ack_release = true;
    pthread_cond_broadcast(&g_ack_cv);
    pthread_mutex_unlock(&g_ack_mu);
    for (int waited = 0; waited < 10000; waited += 5) {
        queue_get_stats(q, &st);
        if (st.done + st.lost_lease == 5)
            break;
        sleep_ms(5);
    }
    queue_stop(q, 5000);
    queue_get_stats(q, &st);
    assert_int_equal(st.commits, 2); /* [h] alone, then the four in one batch */
    assert_int_equal(g_am_calls, 1);
    assert_int_equal(g_am_jobs, 4);
    for (int i = 0; i < 4; i++)
        assert_true(meta_present(f, keys[i]));
    if (steal) {
        assert_int_equal(g_am_conflicts, 1); /* the batch's ack found the lost lease */
        assert_int_equal(st.done, 4);
        assert_int_equal(st.lost_lease, 1);
        assert_false(meta_present(f, keys[4])); /* its commit undone with its savepoint */
        assert_int_equal(get(f, c->ids[4], &j), 0);
        assert_int_equal(j.state, JOB_LEASED); /* the taker's */
        assert_int_equal(count_jobs(f, -1), 1);
    } else {
        assert_int_equal(g_am_conflicts, 0);
        assert_int_equal(st.done, 5);
        assert_int_equal(st.lost_lease, 0);
        assert_true(meta_present(f, keys[4]));
        assert_int_equal(count_jobs(f, -1), 0);
    }
    queue_free(q);
    f->s->ops = g_ack_real;
    g_acks = 0; /* as test_suspect_committed_first expects to find them */
    g_ack_held = g_ack_release = false;
    free(c);
}

static void test_ack_many_batch(void **state)
{
    ack_many_batch(*state, false);
}

static void test_ack_many_batch_lost_lease(void **state)
{
    ack_many_batch(*state, true);
}

/* done may run on the handler's own thread before it answers ASYNC (a refused call):
 * run_once commits it like any other result. */
static void test_async_finish_inline(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct async_ctx c = {.finish_inline = true, .inline_outcome = JOB_OUT_RETRY};
    struct job_handler hs[] = {{"x", async_run, &c}};
    struct queue *q = queue_new(f->s, NULL, &cfg, hs, 1);
    struct queue_stats st;
    struct job j;
    int64_t id = enqueue(f, "x", "{}", 0, 0);

    assert_int_equal(run_once(q), 1);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.attempts, 1);
    assert_non_null(strstr(j.last_error.p, "inline"));
    queue_get_stats(q, &st);
    assert_int_equal(st.retried, 1);
    assert_int_equal(st.in_flight, 0);
    queue_free(q);
}

struct finisher {
    struct async_ctx *c;
    struct queue *q;
    int delay_ms;
};

static void *finisher_main(void *arg)
{
    struct finisher *fz = arg;
    struct job_ticket *t = wait_ticket(fz->c);
    struct job_result fin = {.outcome = JOB_OUT_DONE, .commit = meta_fn};
    sleep_ms(fz->delay_ms);
    fin.commit_arg = (void *)atomic_load(&fz->c->key);
    queue_job_finish(fz->q, t, &fin);
    return NULL;
}

/* queue_stop waits for an in-flight ASYNC job and commits its outcome, even past its
 * timeout (the ticket must not outlive the queue). */
static void test_async_stop_waits(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct async_ctx *c = calloc(1, sizeof *c);
    struct job_handler hs[] = {{"x", async_run, c}};
    struct queue *q = queue_new(f->s, NULL, &cfg, hs, 1);
    struct finisher fz = {c, q, 200};
    struct queue_stats st;
    pthread_t th;
    int64_t id = enqueue(f, "x", "{}", 0, 0);
    struct job j;

    assert_int_equal(queue_start(q), 0);
    wait_ticket(c);
    assert_int_equal(pthread_create(&th, NULL, finisher_main, &fz), 0);
    queue_stop(q, 50);
    queue_get_stats(q, &st);
    assert_int_equal(st.done, 1);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(get(f, id, &j), HR_NOTFOUND);
    assert_true(meta_present(f, "async.key"));
    pthread_join(th, NULL);
    queue_free(q);
    free(c);
}

/* In one batch, a job whose commit callback fails is retried (its lease kept, its
 * handler not run again) while the others are acked: one transaction, isolated jobs. */
static void test_async_batch_isolates_failed_commit(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct async_ctx c = {.finish_inline = true, .inline_outcome = JOB_OUT_DONE};
    struct th h = {.outcome = JOB_OUT_DONE, .commit = meta_then_fail_fn, .commit_arg = "bad.key"};
    struct job_handler hs[] = {{"x", async_run, &c}, {"t", th_run, &h}};
    struct queue *q;
    struct queue_stats st;
    int64_t bad;
    struct job j;

    h.f = f;
    cfg.workers = 2;
    for (int i = 0; i < 6; i++)
        enqueue(f, "x", "{}", 0, 0);
    bad = enqueue(f, "t", "{}", 0, 0);
    q = queue_new(f->s, NULL, &cfg, hs, 2);
    assert_int_equal(queue_start(q), 0);
    for (int waited = 0; waited < 10000; waited += 5) {
        queue_get_stats(q, &st);
        if (st.done == 6 && st.retried == 1)
            break;
        sleep_ms(5);
    }
    queue_stop(q, 5000);
    queue_get_stats(q, &st);
    assert_int_equal(st.done, 6);
    assert_int_equal(st.retried, 1);
    assert_int_equal(h.calls, 1);
    assert_false(meta_present(f, "bad.key"));
    assert_int_equal(get(f, bad, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_non_null(strstr(j.last_error.p, "commit failed"));
    assert_int_equal(count_jobs(f, -1), 1);
    queue_free(q);
}

/* settled runs once, after the commit (the outcome is durable when it runs). */
struct settled_ctx {
    struct fx *f;
    int calls;
    bool committed_then;
};

static void settled_fn(void *arg)
{
    struct settled_ctx *c = arg;
    c->calls++;
    c->committed_then = meta_present(c->f, "settled.key");
}

static void settled_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    (void)j;
    (void)a;
    r->outcome = JOB_OUT_DONE;
    r->commit = meta_fn;
    r->commit_arg = "settled.key";
    r->settled = settled_fn;
    r->settled_arg = ctx;
}

static void test_settled_after_commit(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct settled_ctx c = {.f = f};
    struct job_handler hs[] = {{"s", settled_run, &c}};
    struct queue *q = queue_new(f->s, NULL, &cfg, hs, 1);

    enqueue(f, "s", "{}", 0, 0);
    assert_int_equal(run_once(q), 1);
    assert_int_equal(c.calls, 1);
    assert_true(c.committed_then);
    queue_free(q);
}

/* committed runs once after the transaction that held the handler's commit committed,
 * before settled; not when that commit failed (the job is retried without it). Its arg
 * is commit_arg. */
struct committed_ctx {
    struct fx *f;
    store_txn_fn commit;
    int committed, settled;
    bool durable_then, settled_first;
    const char *arg;
};

static void committed_fn(void *arg)
{
    struct committed_ctx *c = *(struct committed_ctx **)arg;
    c->committed++;
    c->durable_then = meta_present(c->f, c->arg);
    c->settled_first = c->settled > 0;
}

static void committed_settled_fn(void *arg)
{
    ((struct committed_ctx *)arg)->settled++;
}

/* meta_fn / meta_then_fail_fn on the key in ctx->arg; commit_arg is &ctx */
static int committed_commit(struct store_txn *t, void *arg)
{
    struct committed_ctx *c = *(struct committed_ctx **)arg;
    return c->commit(t, (void *)c->arg);
}

static void committed_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct committed_ctx **box = arena_alloc(a, sizeof *box);
    (void)j;
    *box = ctx;
    r->outcome = JOB_OUT_DONE;
    r->commit = committed_commit;
    r->commit_arg = box;
    r->committed = committed_fn;
    r->settled = committed_settled_fn;
    r->settled_arg = ctx;
}

static void test_committed_only_after_commit(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct committed_ctx ok = {.f = f, .commit = meta_fn, .arg = "committed.ok"};
    struct committed_ctx bad = {.f = f, .commit = meta_then_fail_fn, .arg = "committed.bad"};
    struct job_handler hs[] = {{"ok", committed_run, &ok}, {"bad", committed_run, &bad}};
    struct queue *q = queue_new(f->s, NULL, &cfg, hs, 2);
    struct job j;
    int64_t bad_id;

    enqueue(f, "ok", "{}", 0, 0);
    assert_int_equal(run_once(q), 1);
    assert_int_equal(ok.committed, 1);
    assert_true(ok.durable_then);
    assert_false(ok.settled_first);
    assert_int_equal(ok.settled, 1);

    bad_id = enqueue(f, "bad", "{}", 0, 0);
    assert_int_equal(run_once(q), 1);
    assert_int_equal(bad.committed, 0); /* its commit was rolled back: never reported */
    assert_int_equal(bad.settled, 1);
    assert_false(meta_present(f, "committed.bad"));
    assert_int_equal(get(f, bad_id, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED); /* retried */
    queue_free(q);
}

/* An idle pool writes nothing: no periodic empty lease, no wake storm (the lease timer
 * is lease_ms/4 = 7.5 s here, far past this test). */
static void test_idle_writes_nothing(void **state)
{
    struct fx *f = *state;
    struct pool_ctx *p = calloc(1, sizeof *p);
    struct queue *q = pool_a(f, p, 4, 20);
    struct store_stats s0, s1;

    enqueue(f, "a", "1", 0, 0);
    wait_stats_done(q, 1, 10000);
    sleep_ms(100); /* every worker has gone idle */
    store_stats(f->s, &s0);
    sleep_ms(500); /* 25 idle_poll_ms periods: the old pool leased ~100 times here */
    store_stats(f->s, &s1);
    assert_int_equal(s1.txns - s0.txns, 0);
    /* still awake for new work */
    enqueue(f, "a", "2", 0, 0);
    wait_stats_done(q, 2, 10000);
    queue_free(q);
    free(p);
}


/* ---- the handoff: follow-up jobs a commit makes go to the workers without a lease ---- */

struct chain_ctx {
    atomic_int runs[64];
    atomic_int total;
    bool fail_commit; /* kind "f": its commit enqueues a "c" job, then fails */
};

struct chain_job {
    int next;
    bool fail;
};

static int chain_commit(struct store_txn *t, void *arg)
{
    struct chain_job *cj = arg;
    char buf[16];
    struct job_spec js = {.kind = "c"};
    int rc;
    if (cj->next < 0)
        return HR_OK;
    snprintf(buf, sizeof buf, "%d", cj->next);
    js.payload = str_c(buf);
    rc = queue_enqueue(t, &js, NULL);
    if (rc == HR_OK && cj->fail)
        rc = HR_INVAL; /* rolls back its savepoint, the enqueued job with it */
    return rc;
}

/* kind "c" with payload N: runs, then its commit enqueues "c" N-1 (down to 0). Kind "f":
 * its commit enqueues "c" 0 and fails. */
static void chain_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct chain_ctx *c = ctx;
    struct chain_job *cj = arena_alloc(a, sizeof *cj);
    int64_t i = 0;
    char *copy = arena_strndup(a, j->payload.p, j->payload.len);
    if (str_to_i64(str_c(copy), &i) < 0 || i < 0 || i >= 64) {
        r->outcome = JOB_OUT_FAIL;
        return;
    }
    cj->fail = strcmp(j->kind, "f") == 0;
    cj->next = cj->fail ? 0 : (int)i - 1;
    if (!cj->fail) {
        atomic_fetch_add(&c->runs[i], 1);
        atomic_fetch_add(&c->total, 1);
    }
    r->outcome = JOB_OUT_DONE;
    r->commit = chain_commit;
    r->commit_arg = cj;
}

static void test_handoff_chain(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct chain_ctx *c = calloc(1, sizeof *c);
    struct job_handler hs[] = {{"c", chain_run, c}};
    struct queue *q;
    struct queue_stats st;
    struct store_stats s0, s1;

    cfg.workers = 2;
    cfg.idle_poll_ms = 60000;
    q = queue_new(f->s, NULL, &cfg, hs, 1);
    assert_int_equal(queue_start(q), 0);
    sleep_ms(50);
    store_stats(f->s, &s0);
    enqueue(f, "c", "40", 0, 0); /* from outside a commit: queued, leased as usual */
    wait_stats_done(q, 41, 10000);
    store_stats(f->s, &s1);
    queue_get_stats(q, &st);
    /* 40 follow-ups, each inserted leased by its parent's commit and run from memory */
    assert_int_equal(st.handed_off, 40);
    assert_int_equal(atomic_load(&c->total), 41);
    for (int i = 0; i <= 40; i++)
        assert_int_equal(atomic_load(&c->runs[i]), 1);
    /* one write per stage (its commit) plus the first enqueue and lease, and at most a
     * few empty leases of workers woken meanwhile: no lease write per stage */
    assert_true(s1.txns - s0.txns <= 41 + 2 + 8);
    assert_int_equal(count_jobs(f, -1), 0);
    assert_int_equal(st.retried + st.failed + st.dead + st.lost_lease, 0);
    queue_free(q);
    free(c);
}

static void test_handoff_rolled_back_with_its_savepoint(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct chain_ctx *c = calloc(1, sizeof *c);
    struct job_handler hs[] = {{"c", chain_run, c}, {"f", chain_run, c}};
    struct queue *q;
    struct queue_stats st;

    cfg.workers = 2;
    q = queue_new(f->s, NULL, &cfg, hs, 2);
    assert_int_equal(queue_start(q), 0);
    enqueue(f, "f", "0", 0, 0);
    enqueue(f, "c", "1", 0, 0); /* a good one: its follow-up "c" 0 is handed off */
    for (int waited = 0; waited < 10000; waited += 5) {
        queue_get_stats(q, &st);
        if (st.retried >= 1 && st.done >= 2)
            break;
        sleep_ms(5);
    }
    sleep_ms(100);
    queue_get_stats(q, &st);
    assert_int_equal(st.retried, 1);    /* "f": its commit failed, retried (manual clock) */
    assert_int_equal(st.handed_off, 1); /* only the good commit's follow-up */
    assert_int_equal(atomic_load(&c->runs[0]), 1);
    assert_int_equal(atomic_load(&c->runs[1]), 1);
    assert_int_equal(count_jobs(f, -1), 1); /* the "f" job, queued for its retry */
    queue_free(q);
    free(c);
}

struct explicit_ho {
    struct queue_handoff *h;
    bool fail;
    int runs; /* times the fn ran: a second run must not hand over twice */
};

static int explicit_ho_fn(struct store_txn *t, void *arg)
{
    struct explicit_ho *e = arg;
    struct job_spec js = {.kind = "c", .payload = str_c("0")};
    int rc;
    queue_handoff_reset(e->h);
    e->runs++;
    rc = queue_enqueue_to(t, e->h, &js, NULL);
    if (rc == HR_OK)
        rc = queue_enqueue_to(t, e->h, &js, NULL); /* fn bodies may enqueue several */
    return rc == HR_OK && e->fail ? HR_INVAL : rc;
}

/* queue_enqueue_to from outside the queue (ingest's accept): published after a commit,
 * dropped after a rollback. */
static void test_handoff_explicit(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct chain_ctx *c = calloc(1, sizeof *c);
    struct job_handler hs[] = {{"c", chain_run, c}};
    struct queue *q;
    struct queue_stats st;
    struct queue_handoff h;
    struct explicit_ho e = {&h, true, 0};
    struct herr err = {0};

    cfg.workers = 2;
    q = queue_new(f->s, NULL, &cfg, hs, 1);
    assert_int_equal(queue_start(q), 0);
    queue_handoff_init(&h, q);
    assert_int_equal(store_write(f->s, explicit_ho_fn, &e, &err), HR_INVAL);
    queue_handoff_cleanup(&h); /* rolled back: nothing to hand over */
    assert_int_equal(count_jobs(f, -1), 0);

    e.fail = false;
    assert_int_equal(store_write(f->s, explicit_ho_fn, &e, &err), 0);
    queue_handoff_publish(&h);
    queue_handoff_cleanup(&h);
    wait_stats_done(q, 2, 10000);
    queue_get_stats(q, &st);
    assert_int_equal(st.handed_off, 2);
    assert_int_equal(atomic_load(&c->runs[0]), 2);
    assert_int_equal(count_jobs(f, -1), 0);

    /* a NULL queue queues as usual */
    queue_handoff_init(&h, NULL);
    assert_int_equal(store_write(f->s, explicit_ho_fn, &e, &err), 0);
    queue_handoff_publish(&h);
    queue_handoff_cleanup(&h);
    wait_stats_done(q, 4, 10000);
    queue_get_stats(q, &st);
    assert_int_equal(st.handed_off, 2);
    queue_free(q);
    free(c);
}

/* ---- the bulk lane: a fan-out's handed-over jobs yield to the others ---- */

struct lane_ctx {
    pthread_mutex_t mu;
    char order[700]; /* the kinds in the order they ran: 'b' bulk, 'n' normal */
    size_t n;
};

static void lane_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct lane_ctx *c = ctx;
    (void)a;
    pthread_mutex_lock(&c->mu);
    if (c->n < sizeof c->order - 1)
        c->order[c->n++] = j->kind[0];
    pthread_mutex_unlock(&c->mu);
    r->outcome = JOB_OUT_DONE;
}

struct lane_fill {
    struct queue_handoff *h;
    int bulk, normal; /* enqueued in this order, all in one transaction */
};

static int lane_fill_fn(struct store_txn *t, void *arg)
{
    struct lane_fill *lf = arg;
    int rc = HR_OK;
    queue_handoff_reset(lf->h);
    for (int i = 0; i < lf->bulk && rc == HR_OK; i++) {
        struct job_spec js = {.kind = "b", .payload = str_c("x"), .bulk = true};
        rc = queue_enqueue_to(t, lf->h, &js, NULL);
    }
    for (int i = 0; i < lf->normal && rc == HR_OK; i++) {
        struct job_spec js = {.kind = "n", .payload = str_c("x")};
        rc = queue_enqueue_to(t, lf->h, &js, NULL);
    }
    return rc;
}

/* Handed over in one commit, bulk jobs first: the normal ones still run first. The bulk
 * lane has its own cap; past it bulk jobs wait in the store and run too. */
static void test_bulk_lane(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct lane_ctx c = {.n = 0};
    struct job_handler hs[] = {{"b", lane_run, &c}, {"n", lane_run, &c}};
    struct queue *q;
    struct queue_stats st;
    struct queue_handoff h;
    struct lane_fill lf = {&h, 8, 2};
    struct herr err = {0};

    pthread_mutex_init(&c.mu, NULL);
    cfg.workers = 1;
    q = queue_new(f->s, NULL, &cfg, hs, 2);
    assert_int_equal(queue_start(q), 0);
    sleep_ms(50); /* the worker is idle */
    queue_handoff_init(&h, q);
    assert_int_equal(store_write(f->s, lane_fill_fn, &lf, &err), 0);
    queue_handoff_publish(&h);
    queue_handoff_cleanup(&h);
    wait_stats_done(q, 10, 10000);
    pthread_mutex_lock(&c.mu);
    c.order[c.n] = '\0';
    assert_string_equal(c.order, "nnbbbbbbbb");
    pthread_mutex_unlock(&c.mu);

    /* 2,100 bulk jobs in one commit: 2,048 (the bulk lane's cap, two fan-out pages)
     * handed over, 52 queued in the store */
    queue_get_stats(q, &st);
    lf.bulk = 2100;
    lf.normal = 0;
    queue_handoff_init(&h, q);
    assert_int_equal(store_write(f->s, lane_fill_fn, &lf, &err), 0);
    queue_handoff_publish(&h);
    queue_handoff_cleanup(&h);
    wait_stats_done(q, 2110, 30000);
    {
        struct queue_stats st2;
        queue_get_stats(q, &st2);
        assert_int_equal(st2.handed_off - st.handed_off, 2048);
    }
    assert_int_equal(count_jobs(f, -1), 0);
    queue_free(q);
    pthread_mutex_destroy(&c.mu);
}

/* A job queued in the store (a send accepted by an HTTP thread) runs before the bulk
 * lane's remaining jobs: a worker looks in the store before it takes bulk jobs. */
struct gate_ctx {
    struct lane_ctx lane;
    atomic_int open;    /* the first bulk job waits for it */
    atomic_int started; /* the first bulk job is running */
};

static void gate_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct gate_ctx *g = ctx;
    bool first;
    pthread_mutex_lock(&g->lane.mu);
    first = g->lane.n == 0;
    pthread_mutex_unlock(&g->lane.mu);
    if (first)
        atomic_store(&g->started, 1);
    for (int i = 0; first && !atomic_load(&g->open) && i < 2000; i++)
        sleep_ms(5);
    lane_run(&g->lane, j, a, r);
}

static void test_bulk_lane_yields_to_store(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct gate_ctx *g = calloc(1, sizeof *g);
    struct job_handler hs[] = {{"b", gate_run, g}, {"n", gate_run, g}};
    struct queue *q;
    struct queue_handoff h;
    struct lane_fill lf = {&h, 6, 0};
    struct herr err = {0};

    pthread_mutex_init(&g->lane.mu, NULL);
    cfg.workers = 1;
    cfg.batch = 4; /* a bulk take is 4/4 = 1 job */
    q = queue_new(f->s, NULL, &cfg, hs, 2);
    assert_int_equal(queue_start(q), 0);
    sleep_ms(50);
    queue_handoff_init(&h, q);
    assert_int_equal(store_write(f->s, lane_fill_fn, &lf, &err), 0);
    queue_handoff_publish(&h);
    queue_handoff_cleanup(&h);
    for (int i = 0; i < 2000 && !atomic_load(&g->started); i++)
        sleep_ms(5); /* the first bulk job runs, the other five wait in the bulk lane */
    enqueue(f, "n", "x", 0, 0); /* queued in the store, not handed over */
    atomic_store(&g->open, 1);
    wait_stats_done(q, 7, 10000);
    pthread_mutex_lock(&g->lane.mu);
    g->lane.order[g->lane.n] = '\0';
    assert_string_equal(g->lane.order, "bnbbbbb");
    pthread_mutex_unlock(&g->lane.mu);
    queue_free(q);
    pthread_mutex_destroy(&g->lane.mu);
    free(g);
}

/* A due job of a kind this process does not handle (left by another version) hides the
 * next run_at behind it: an idle worker must still look again, or a job due later (a
 * retry, a delayed send) would wait forever on a store no lease timer watches. */
static void test_idle_unknown_kind_does_not_hide_due_jobs(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct chain_ctx *c = calloc(1, sizeof *c);
    struct job_handler hs[] = {{"c", chain_run, c}};
    struct queue *q;

    cfg.workers = 1;
    cfg.lease_ms = 400; /* the fallback look: every 100 ms */
    enqueue(f, "zzz", "0", 0, 0); /* due now, no handler here */
    q = queue_new(f->s, NULL, &cfg, hs, 1);
    assert_int_equal(queue_start(q), 0);
    sleep_ms(50); /* the worker looked and went idle */
    enqueue(f, "c", "0", now_of(f) + 300, 0); /* due in 300 ms (the manual clock) */
    sleep_ms(50);                              /* the worker looked: not due yet */
    hclock_manual_advance(&f->clk, 300);       /* now it is; no wake-up tells it so */
    wait_stats_done(q, 1, 10000);
    assert_int_equal(atomic_load(&c->runs[0]), 1);
    queue_free(q);
    free(c);
}

/* A commit callback with its own nested savepoint that rolls back (as ingest's
 * events_commit: apply_all_fn, then apply_isolated): the jobs handed over inside it are
 * dropped with it (queue_txn_sub); a re-applied enqueue hands over once. */
static int inner_enq_fail(struct store_txn *t, void *arg)
{
    struct job_spec js = {.kind = "c", .payload = str_c("0")};
    (void)arg;
    if (queue_enqueue(t, &js, NULL) != HR_OK)
        return HR_IO;
    return HR_INVAL;
}
static int nested_commit(struct store_txn *t, void *arg)
{
    struct job_spec js = {.kind = "c", .payload = str_c("0")};
    int rc = queue_txn_sub(t, inner_enq_fail, NULL);
    assert_int_equal(rc, HR_INVAL);
    if (arg) /* re-apply, as apply_isolated does */
        return queue_enqueue(t, &js, NULL);
    return HR_OK;
}
static void nested_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    r->outcome = JOB_OUT_DONE;
    r->commit = nested_commit;
    r->commit_arg = j->payload.len && j->payload.p[0] == '1' ? (void *)1 : NULL;
}
static void nested_case(struct fx *f, const char *payload)
{
    struct queue_cfg cfg = test_cfg();
    struct chain_ctx *c = calloc(1, sizeof *c);
    struct job_handler hs[] = {{"c", chain_run, c}, {"n", nested_run, c}};
    struct queue *q;
    struct queue_stats st;
    cfg.workers = 2;
    q = queue_new(f->s, NULL, &cfg, hs, 2);
    assert_int_equal(queue_start(q), 0);
    enqueue(f, "n", payload, 0, 0);
    wait_stats_done(q, payload[0] == '1' ? 2 : 1, 10000);
    sleep_ms(100); /* a phantom job, if any, would have run by now */
    queue_get_stats(q, &st);
    assert_int_equal(st.handed_off, payload[0] == '1' ? 1 : 0);
    assert_int_equal(atomic_load(&c->runs[0]), payload[0] == '1' ? 1 : 0);
    assert_int_equal(st.lost_lease, 0);
    assert_int_equal(count_jobs(f, -1), 0);
    queue_free(q);
    free(c);
}
static void test_handoff_nested_rollback(void **state) { nested_case(*state, "0"); }
static void test_handoff_nested_rollback_reapply(void **state) { nested_case(*state, "1"); }

/* A run_at that comes due while the only worker runs handed-off jobs is not missed: the
 * retried job runs while the chain still runs (before, it waited for an unrelated wake or
 * the 15 s lease timer). */
static atomic_int g_r_runs;
static void r_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    int n = atomic_fetch_add(&g_r_runs, 1);
    r->outcome = n == 0 ? JOB_OUT_RETRY : JOB_OUT_DONE;
    r->retry_at_ms = n == 0 ? hclock_now(hclock_system()) + 300 : 0;
}
static int slowc_commit(struct store_txn *t, void *arg)
{
    struct job_spec js = {.kind = "s"};
    char buf[16];
    int n = (int)(intptr_t)arg;
    if (n <= 0)
        return HR_OK;
    snprintf(buf, sizeof buf, "%d", n - 1);
    js.payload = str_c(buf);
    return queue_enqueue(t, &js, NULL);
}
static void slowc_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    char *copy = arena_strndup(a, j->payload.p, j->payload.len);
    sleep_ms(50);
    r->outcome = JOB_OUT_DONE;
    r->commit = slowc_commit;
    r->commit_arg = (void *)(intptr_t)atoi(copy);
}
static void test_handoff_due_during_handoffs(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct job_handler hs[] = {{"r", r_run, NULL}, {"s", slowc_run, NULL}};
    struct queue *q;
    struct queue_stats st;
    cfg.workers = 1;
    cfg.lease_ms = 60000;
    q = queue_new(f->s, hclock_system(), &cfg, hs, 2);
    assert_int_equal(queue_start(q), 0);
    enqueue(f, "r", "x", 0, 0);
    sleep_ms(100); /* r ran once, re-queued for +300 ms */
    enqueue(f, "s", "40", 0, 0); /* ~2 s of handed-off work */
    for (int waited = 0; waited < 10000 && atomic_load(&g_r_runs) < 2; waited += 10)
        sleep_ms(10);
    queue_get_stats(q, &st);
    assert_int_equal(atomic_load(&g_r_runs), 2);
    assert_true(st.done < 1 + 41); /* the chain had not finished: it ran during it */
    queue_free(q);
}

/* An expired lease (its node died) is taken over while handed-off work trickles in more
 * often than the lease timer's period (lease_ms/4). */
static atomic_int g_x_runs;
static void x_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    atomic_fetch_add(&g_x_runs, 1);
    r->outcome = JOB_OUT_DONE;
}
static void h_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    r->outcome = JOB_OUT_DONE;
}
struct ho1 { struct queue_handoff *h; };
static int ho1_fn(struct store_txn *t, void *arg)
{
    struct ho1 *e = arg;
    struct job_spec js = {.kind = "h", .payload = str_c("0")};
    queue_handoff_reset(e->h);
    return queue_enqueue_to(t, e->h, &js, NULL);
}
static int dead_node_fn(struct store_txn *t, void *arg)
{
    struct job_spec js = {.kind = "x", .payload = str_c("0")};
    js.lease_until_ms = hclock_now(hclock_system()) - 1000; /* leased by a node that died */
    js.lease_token = 12345;
    return store_job_insert(t, &js, hclock_now(hclock_system()) - 70000, NULL);
}
static void test_handoff_expired_lease_not_starved(void **state)
{
    struct fx *f = *state;
    struct queue_cfg cfg = test_cfg();
    struct job_handler hs[] = {{"x", x_run, NULL}, {"h", h_run, NULL}};
    struct queue *q;
    struct queue_stats st;
    struct herr err = {0};
    cfg.workers = 1;
    cfg.lease_ms = 2000; /* lease timer every 500 ms */
    q = queue_new(f->s, hclock_system(), &cfg, hs, 2);
    assert_int_equal(queue_start(q), 0);
    sleep_ms(100);
    assert_int_equal(store_write(f->s, dead_node_fn, NULL, &err), 0);
    for (int i = 0; i < 20 && atomic_load(&g_x_runs) == 0; i++) { /* one every 150 ms */
        struct queue_handoff h;
        struct ho1 e = {&h};
        queue_handoff_init(&h, q);
        assert_int_equal(store_write(f->s, ho1_fn, &e, &err), 0);
        queue_handoff_publish(&h);
        queue_handoff_cleanup(&h);
        sleep_ms(150);
    }
    queue_get_stats(q, &st);
    assert_int_equal(atomic_load(&g_x_runs), 1); /* within the trickle */
    assert_true(st.handed_off < 20);
    queue_free(q);
}

/* ---- parked deferrals (queue.h, DEFER) ------------------------------------------- */

/* A handler whose first `defers` runs answer DEFER at now + `after` (queue clock) with
 * wait_key `key`, then DONE; it records each run's lease token and attempt count. */
struct park_h {
    struct fx *f;
    int defers;
    int64_t after;
    int64_t afters[8];  /* call n's own wait, when not 0 */
    uint64_t key;
    _Atomic int calls;
    int64_t ids[8], tokens[8];
    uint32_t attempts[8];
};

static void park_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct park_h *h = ctx;
    int n = atomic_fetch_add(&h->calls, 1);
    (void)a;
    if (n < 8) {
        h->ids[n] = j->id;
        h->tokens[n] = j->lease_token;
        h->attempts[n] = j->attempts;
    }
    if (n < h->defers) {
        r->outcome = JOB_OUT_DEFER;
        r->retry_at_ms = now_of(h->f) + (n < 8 && h->afters[n] ? h->afters[n] : h->after);
        r->wait_key = h->key;
    }
}

static struct queue *park_q(struct fx *f, struct park_h *h, int64_t lease_ms)
{
    struct queue_cfg cfg = test_cfg();
    struct job_handler hs[] = {{"p", park_run, h}};
    struct queue *q;
    h->f = f;
    cfg.lease_ms = lease_ms;
    q = queue_new(f->s, NULL, &cfg, hs, 1); /* the store's manual clock */
    assert_int_equal(queue_start(q), 0);
    return q;
}

/* wait_stats: poll until field (parked, deferred) of the stats reaches want, 10 s at most */
static struct queue_stats wait_stats(struct queue *q, size_t field_off, uint64_t want)
{
    struct queue_stats st;
    for (int waited = 0; waited < 10000; waited += 5) {
        queue_get_stats(q, &st);
        if (*(uint64_t *)((char *)&st + field_off) >= want)
            break;
        sleep_ms(5);
    }
    assert_int_equal(*(uint64_t *)((char *)&st + field_off), want);
    return st;
}

/* test_park_keeps_lease: a pool worker's deferral waits in memory: the job stays leased
 * with the same token (no store write), runs again only once its time has come on the
 * queue's clock, not as a new attempt, and is acked then */
static void test_park_keeps_lease(void **state)
{
    struct fx *f = *state;
    struct park_h *h = calloc(1, sizeof *h);
    struct queue *q;
    struct queue_stats st;
    struct job j;
    int64_t id = enqueue(f, "p", "{}", 0, 0);

    metrics_reset();
    h->defers = 1;
    h->after = 100;
    q = park_q(f, h, 30000);
    st = wait_stats(q, offsetof(struct queue_stats, parked), 1);
    assert_int_equal(st.deferred, 1);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_LEASED); /* the store path would have queued it */
    assert_int_equal(j.lease_token, h->tokens[0]);
    assert_int_equal(j.attempts, 1);
    sleep_ms(300); /* idle timers come and go: the clock has not reached its time */
    assert_int_equal(atomic_load(&h->calls), 1);

    hclock_manual_advance(&f->clk, 100);
    wait_stats_done(q, 1, 10000);
    assert_int_equal(atomic_load(&h->calls), 2);
    assert_int_equal(h->tokens[1], h->tokens[0]); /* the same lease: none taken anew */
    assert_int_equal(h->attempts[1], 1);
    assert_int_equal(get(f, id, &j), HR_NOTFOUND);
    assert_true(metric_has("herald_queue_parked_total{wait=\"time\"} 1"));
    assert_true(metric_has("herald_jobs_total{kind=\"p\",outcome=\"deferred\"} 1"));
    queue_free(q);
    free(h);
}

/* test_park_order: parked jobs run in due order, whatever order they were parked in
 * (the parked list appends at its tail when it can and must stay sorted otherwise) */
static void test_park_order(void **state)
{
    struct fx *f = *state;
    struct park_h *h = calloc(1, sizeof *h);
    static const int64_t afters[4] = {300, 100, 200, 400};
    static const int by_due[4] = {1, 2, 0, 3}; /* the first calls, by their due time */
    struct queue *q;

    for (int i = 0; i < 4; i++)
        enqueue(f, "p", "{}", 0, 0);
    h->defers = 4;
    memcpy(h->afters, afters, sizeof afters);
    q = park_q(f, h, 30000);
    wait_stats(q, offsetof(struct queue_stats, parked), 4);
    for (int k = 0; k < 4; k++) {
        hclock_manual_advance(&f->clk, 100);
        wait_stats_done(q, (uint64_t)k + 1, 10000);
        assert_int_equal(atomic_load(&h->calls), 4 + k + 1);
        assert_int_equal(h->ids[4 + k], h->ids[by_due[k]]);
    }
    queue_free(q);
    free(h);
}

/* test_park_unpark: a deferral waiting for a key runs when queue_unpark names that key
 * (another key does nothing), though its fallback time never comes on the queue's
 * clock; an unpark that finds nobody waiting lets the next deferral for that key run at
 * once (its slot freed between the handler's try and its park) */
static void test_park_unpark(void **state)
{
    struct fx *f = *state;
    struct park_h *h = calloc(1, sizeof *h);
    struct queue *q;
    struct queue_stats st;

    metrics_reset();
    h->defers = 1;
    h->after = 1; /* the fallback (QUEUE_PARK_KEYED_MS) applies */
    h->key = 42;
    enqueue(f, "p", "{}", 0, 0);
    q = park_q(f, h, 30000);
    wait_stats(q, offsetof(struct queue_stats, parked), 1);
    queue_unpark(q, 7);
    sleep_ms(300);
    queue_get_stats(q, &st);
    assert_int_equal(st.unparked, 0);
    assert_int_equal(atomic_load(&h->calls), 1);
    queue_unpark(q, 42);
    wait_stats_done(q, 1, 10000);
    queue_get_stats(q, &st);
    assert_int_equal(st.unparked, 1);
    assert_int_equal(atomic_load(&h->calls), 2);
    assert_true(metric_has("herald_queue_parked_total{wait=\"slot\"} 1"));
    assert_true(metric_has("herald_queue_unparked_total{wait=\"slot\"} 1"));

    queue_unpark(q, 42); /* nobody waits: a credit */
    h->defers = 3;       /* the next job's first run defers for key 42, then it is done */
    enqueue(f, "p", "{}", 0, 0);
    wait_stats_done(q, 2, 10000);
    queue_get_stats(q, &st);
    assert_int_equal(st.parked, 2);
    assert_int_equal(st.unparked, 1);
    assert_int_equal(atomic_load(&h->calls), 4);
    queue_free(q);
    free(h);
}

/* test_park_woken_retries: a job woken for its key that defers again (a fresh job took
 * the slot first) does not go back to the end of the line: it runs again at the
 * handler's time (the clock moving 1 ms is enough, no unpark), while the job behind it
 * waits for the next unpark */
static void test_park_woken_retries(void **state)
{
    struct fx *f = *state;
    struct park_h *h = calloc(1, sizeof *h);
    struct queue *q;
    struct queue_stats st;
    int64_t a = enqueue(f, "p", "{}", 0, 0), b = enqueue(f, "p", "{}", 0, 0);

    h->defers = 3; /* a, b, then a again once woken */
    h->after = 1;
    h->key = 42;
    q = park_q(f, h, 30000);
    wait_stats(q, offsetof(struct queue_stats, parked), 2);
    assert_int_equal(h->ids[0], a);
    assert_int_equal(h->ids[1], b);
    queue_unpark(q, 42);
    wait_stats(q, offsetof(struct queue_stats, parked), 3);
    assert_int_equal(h->ids[2], a);
    sleep_ms(100);
    assert_int_equal(atomic_load(&h->calls), 3); /* its time has not come on the clock */
    hclock_manual_advance(&f->clk, 1);
    wait_stats_done(q, 1, 10000);
    assert_int_equal(h->ids[3], a);
    queue_get_stats(q, &st);
    assert_int_equal(st.unparked, 1);
    assert_int_equal(atomic_load(&h->calls), 4); /* b still waits for its slot */
    queue_unpark(q, 42);
    wait_stats_done(q, 2, 10000);
    assert_int_equal(h->ids[4], b);
    queue_free(q);
    free(h);
}

/* test_park_within_lease: a wait the lease does not outlast by 6/10 of a lease goes
 * back to the store, queued at its time, as run_once's deferrals do */
static void test_park_within_lease(void **state)
{
    struct fx *f = *state;
    struct park_h *h = calloc(1, sizeof *h);
    struct queue *q;
    struct queue_stats st;
    struct job j;
    int64_t id = enqueue(f, "p", "{}", 0, 0), at = now_of(f) + 5000;

    h->defers = 1;
    h->after = 5000; /* a 10 s lease: 5 s + 5 s + 1 s is past it */
    q = park_q(f, h, 10000);
    st = wait_stats(q, offsetof(struct queue_stats, deferred), 1);
    for (int i = 0; i < 2000 && (get(f, id, &j) != 0 || j.state != JOB_QUEUED); i++)
        sleep_ms(5); /* committed by the completer */
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.run_at_ms, at);
    assert_int_equal(j.attempts, 0);
    queue_get_stats(q, &st);
    assert_int_equal(st.parked, 0);
    queue_free(q);
    free(h);
}

/* test_park_not_after_takeover: a job taken over after its holder died commits its
 * deferral (which sets retaken back to 0) instead of parking: parked at another death,
 * it would come back as a suspect */
static void test_park_not_after_takeover(void **state)
{
    struct fx *f = *state;
    struct park_h *h = calloc(1, sizeof *h);
    struct arena *la = arena_new(1024);
    struct queue *q;
    struct queue_stats st;
    struct job *jobs, j;
    int64_t id = enqueue(f, "p", "{}", 0, 0);

    assert_int_equal(lease_direct(f->s, now_of(f), 1000, "p", la, &jobs), 1);
    hclock_manual_advance(&f->clk, 1001); /* its holder died */
    h->defers = 1;
    h->after = 100;
    q = park_q(f, h, 30000);
    st = wait_stats(q, offsetof(struct queue_stats, deferred), 1);
    for (int i = 0; i < 2000 && (get(f, id, &j) != 0 || j.state != JOB_QUEUED); i++)
        sleep_ms(5); /* committed by the completer */
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.retaken, 0);
    queue_get_stats(q, &st);
    assert_int_equal(st.parked, 0);
    queue_free(q);
    arena_free(la);
    free(h);
}

/* test_full_batch_leases_on: a lease that comes back full leaves the store "not looked
 * at": the worker leases again, though nothing committed meanwhile (its jobs parked).
 * Here one job is due now and 40 at +100 ms: the first lease takes the one (and learns
 * the +100 ms), its run moves the clock there and parks; the next lease is full (16 of
 * the 40) and parks them; the rest must follow at once. Before the fix they waited for
 * the lease timer (lease_ms/4: 150 s here), the full lease having passed for a look at
 * that due time. */
static void adv_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct park_h *h = ctx;
    if (atomic_load(&h->calls) == 0)
        hclock_manual_advance(&h->f->clk, 100);
    park_run(ctx, j, a, r);
}

static void test_full_batch_leases_on(void **state)
{
    struct fx *f = *state;
    struct park_h *h = calloc(1, sizeof *h);
    struct queue_cfg cfg = test_cfg();
    struct job_handler hs[] = {{"p", adv_run, h}};
    struct queue *q;

    h->f = f;
    h->defers = 1000; /* every run parks, far off */
    h->after = 100000;
    enqueue(f, "p", "{}", 0, 0);
    for (int i = 0; i < 40; i++)
        enqueue(f, "p", "{}", now_of(f) + 100, 0);
    cfg.lease_ms = 600000;
    q = queue_new(f->s, NULL, &cfg, hs, 1);
    assert_int_equal(queue_start(q), 0);
    wait_stats(q, offsetof(struct queue_stats, parked), 41); /* 1, 16, 16, 8 */
    queue_free(q);
    free(h);
}

/* test_stop_releases_parked: queue_stop gives a parked job's lease back: queued, no
 * attempt counted, for this node or another to take */
static void test_stop_releases_parked(void **state)
{
    struct fx *f = *state;
    struct park_h *h = calloc(1, sizeof *h);
    struct queue *q;
    struct job j;
    int64_t id = enqueue(f, "p", "{}", 0, 0);

    h->defers = 1;
    h->after = 1000;
    q = park_q(f, h, 30000);
    wait_stats(q, offsetof(struct queue_stats, parked), 1);
    queue_stop(q, 5000);
    assert_int_equal(get(f, id, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.attempts, 0);
    assert_int_equal(j.lease_token, 0);
    assert_int_equal(atomic_load(&h->calls), 1);
    queue_free(q);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_cfg_defaults),
        cmocka_unit_test_setup_teardown(test_enqueue_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_commits_with_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_lease_rolls_back_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_many_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_many_batch_lost_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_failure_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_at_honoured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defer_not_an_attempt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_keeps_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_unpark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_woken_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_within_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_park_not_after_takeover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_batch_leases_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_releases_parked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempts_exhausted_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_dead_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expired_too_often, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_pill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_pill_counts_in_a_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suspects_one_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suspect_held_while_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suspect_committed_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_pill_retry_not_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_at_scheduling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_skips_expired_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_kind_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_lane, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_unknown_kind_does_not_hide_due_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_lane_yields_to_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_nested_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_expired_lease_not_starved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_due_during_handoffs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_nested_rollback_reapply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_explicit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_rolled_back_with_its_savepoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pool_wakes_on_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_slow_job_does_not_hold_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_gives_back_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_timeout_still_joins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_without_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_pool_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_lease_renewed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_handler_not_renewed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renewal_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_finish_inline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_stop_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_batch_isolates_failed_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settled_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_committed_only_after_commit, setup, teardown),
    };
    log_set_level(getenv("TEST_LOG") ? LOG_DEBUG : LOG_OFF);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
