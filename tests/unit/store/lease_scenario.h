/* lease_scenario.h: scenarios of the job store's leases (src/store/store.h) that
 * test_store_sqlite.c and test_store_pg.c both run on their own fixture, so the two
 * backends are held to the same behaviour. lease_scenario (job_lease's max_repeat): a
 * lease that ran out is taken over at once; one that ran out again after a takeover (a
 * suspected poison pill) comes at most max_repeat per lease, and every batch stays in
 * (run_at_ms, id) order. extend_scenario (job_extend): a renewed lease is not taken over
 * at its first end, only its own token renews it, and a lease taken over or acked cannot
 * be renewed. Include after cmocka.h. */
#ifndef HERALD_TEST_LEASE_SCENARIO_H
#define HERALD_TEST_LEASE_SCENARIO_H

#include "../../../src/store/store.h"
#include "../../../src/util/clock.h"

struct lr_op {
    int64_t now, run_at, lease_ms, id, token, until;
    size_t max, max_repeat, n;
    struct arena *a;
    struct job *jobs;
};

static int lr_insert_tx(struct store_txn *t, void *arg)
{
    struct lr_op *o = arg;
    struct job_spec js = {.kind = "email", .payload = STR_LIT("{\"x\":1}"),
                          .run_at_ms = o->run_at};
    return store_job_insert(t, &js, o->now, &o->id);
}

static int lr_lease_tx(struct store_txn *t, void *arg)
{
    struct lr_op *o = arg;
    return store_job_lease(t, o->now, o->lease_ms, o->max, o->max_repeat, NULL, o->a,
                           &o->jobs, &o->n);
}

static int lr_extend_tx(struct store_txn *t, void *arg)
{
    struct lr_op *o = arg;
    return store_job_extend(t, o->id, o->token, o->until);
}

static int lr_ack_tx(struct store_txn *t, void *arg)
{
    struct lr_op *o = arg;
    return store_job_ack(t, o->id, o->token);
}

/* lr_extend / lr_ack: the store_write's rc */
static int lr_extend(struct store *s, int64_t id, int64_t token, int64_t until)
{
    struct lr_op o = {.id = id, .token = token, .until = until};
    struct herr err;
    return store_write(s, lr_extend_tx, &o, &err);
}

static int lr_ack(struct store *s, int64_t id, int64_t token)
{
    struct lr_op o = {.id = id, .token = token};
    struct herr err;
    return store_write(s, lr_ack_tx, &o, &err);
}

/* lr_insert: a queued "email" job due at run_at; its id */
static int64_t lr_insert(struct store *s, struct hclock_manual *clock, int64_t run_at)
{
    struct lr_op o = {.now = hclock_now(&clock->base), .run_at = run_at};
    struct herr err;
    assert_int_equal(store_write(s, lr_insert_tx, &o, &err), HR_OK);
    return o.id;
}

/* lr_lease: lease up to max jobs for 1 s, at most max_repeat of them taken over again;
 * the batch (in a) and its size */
static struct job *lr_lease(struct store *s, struct hclock_manual *clock, struct arena *a,
                            size_t max, size_t max_repeat, size_t *n)
{
    struct lr_op o = {.now = hclock_now(&clock->base), .lease_ms = 1000, .max = max,
                      .max_repeat = max_repeat, .a = a};
    struct herr err;
    assert_int_equal(store_write(s, lr_lease_tx, &o, &err), HR_OK);
    *n = o.n;
    return o.jobs;
}

/* lease_scenario: on an empty jobs table whose clock (`clock`, read by the store too)
 * is at t0. */
static void lease_scenario(struct store *s, struct hclock_manual *clock, struct arena *a,
                           int64_t t0)
{
    struct job *js;
    size_t n;
    int64_t ja = lr_insert(s, clock, t0 - 40), jb = lr_insert(s, clock, t0 - 30),
            jc = lr_insert(s, clock, t0 - 20), jd;

    js = lr_lease(s, clock, a, 10, 10, &n);
    assert_int_equal(n, 3);
    hclock_manual_advance(clock, 1001); /* their holder died: all three expired */
    jd = lr_insert(s, clock, t0 - 10);

    /* first takeovers are not bounded by max_repeat */
    js = lr_lease(s, clock, a, 10, 0, &n);
    assert_int_equal(n, 4);
    assert_int_equal(js[0].id, ja);
    assert_int_equal(js[0].retaken, 1);
    assert_int_equal(js[2].id, jc);
    assert_int_equal(js[3].id, jd);
    assert_int_equal(js[3].retaken, 0);

    hclock_manual_advance(clock, 1001); /* and the taker died too */
    js = lr_lease(s, clock, a, 10, 0, &n);
    assert_int_equal(n, 1); /* no repeat: only d, on its first takeover */
    assert_int_equal(js[0].id, jd);
    assert_int_equal(js[0].retaken, 1);
    js = lr_lease(s, clock, a, 10, 1, &n);
    assert_int_equal(n, 1); /* one repeat, the oldest */
    assert_int_equal(js[0].id, ja);
    assert_int_equal(js[0].retaken, 2);
    assert_int_equal(js[0].attempts, 3);
    js = lr_lease(s, clock, a, 1, 5, &n);
    assert_int_equal(n, 1); /* max bounds the repeats too */
    assert_int_equal(js[0].id, jb);
    js = lr_lease(s, clock, a, 10, 5, &n);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, jc);
    assert_int_equal(js[0].retaken, 2);
}

/* extend_scenario: on an empty jobs table whose clock is at t0. */
static void extend_scenario(struct store *s, struct hclock_manual *clock, struct arena *a,
                            int64_t t0)
{
    struct job *js, j;
    size_t n;
    int64_t id = lr_insert(s, clock, t0 - 10), token, until;

    js = lr_lease(s, clock, a, 10, 0, &n); /* until t0 + 1000 */
    assert_int_equal(n, 1);
    token = js[0].lease_token;
    assert_int_equal(js[0].lease_until_ms, t0 + 1000);
    hclock_manual_advance(clock, 600);
    until = hclock_now(&clock->base) + 1000; /* t0 + 1600 */
    assert_int_equal(lr_extend(s, id, token ^ 1, until), HR_CONFLICT); /* not its token */
    assert_int_equal(lr_extend(s, id, token, until), HR_OK);
    assert_int_equal(store_job_get(s, id, a, &j), HR_OK);
    assert_int_equal(j.state, JOB_LEASED);
    assert_int_equal(j.lease_until_ms, until);
    assert_int_equal(j.lease_token, token); /* nothing else changed */
    assert_int_equal(j.attempts, 1);
    assert_int_equal(j.retaken, 0);

    hclock_manual_advance(clock, 600); /* past the first end, before the renewed one */
    js = lr_lease(s, clock, a, 10, 10, &n);
    assert_int_equal(n, 0);
    hclock_manual_advance(clock, 401); /* past the renewed end: taken over */
    js = lr_lease(s, clock, a, 10, 10, &n);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, id);
    assert_int_equal(js[0].retaken, 1);
    assert_true(js[0].lease_token != token);
    /* the first holder's lease is gone: it can neither renew nor ack */
    assert_int_equal(lr_extend(s, id, token, hclock_now(&clock->base) + 5000), HR_CONFLICT);
    assert_int_equal(lr_ack(s, id, token), HR_CONFLICT);
    assert_int_equal(store_job_get(s, id, a, &j), HR_OK);
    assert_int_equal(j.lease_until_ms, js[0].lease_until_ms);
    token = js[0].lease_token;
    assert_int_equal(lr_ack(s, id, token), HR_OK);
    assert_int_equal(lr_extend(s, id, token, hclock_now(&clock->base) + 5000), HR_CONFLICT);
}

/* ack_many_scenario: job_ack_many on a store that has it, on an empty jobs table whose
 * clock is at t0: a job acked with another job's token stays (tokens are checked pair
 * by pair), one lease not ours fails the whole call (the write is rolled back: nothing
 * acked), and with every token right each job is gone, the others untouched. */
struct am_op {
    const int64_t *ids, *toks;
    size_t n;
};

static inline int am_tx(struct store_txn *t, void *arg)
{
    struct am_op *o = arg;
    return store_job_ack_many(t, o->ids, o->toks, o->n);
}

static inline int am_ack(struct store *s, const int64_t *ids, const int64_t *toks, size_t n)
{
    struct am_op o = {ids, toks, n};
    struct herr err;
    return store_write(s, am_tx, &o, &err);
}

static inline void ack_many_scenario(struct store *s, struct hclock_manual *clock, struct arena *a,
                              int64_t t0)
{
    struct job *js, j;
    size_t n;
    int64_t id[4], tok[4], swapped[2];
    for (int i = 0; i < 4; i++)
        lr_insert(s, clock, t0 - 40 + i);
    js = lr_lease(s, clock, a, 10, 0, &n);
    assert_int_equal(n, 4);
    for (int i = 0; i < 4; i++) {
        id[i] = js[i].id;
        tok[i] = js[i].lease_token;
    }
    assert_true(tok[0] != tok[1]);
    swapped[0] = tok[1];
    swapped[1] = tok[0];
    assert_int_equal(am_ack(s, id, swapped, 2), HR_CONFLICT);
    tok[2] ^= 1;
    assert_int_equal(am_ack(s, id, tok, 3), HR_CONFLICT);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(store_job_get(s, id[i], a, &j), HR_OK);
        assert_int_equal(j.state, JOB_LEASED);
    }
    tok[2] ^= 1;
    assert_int_equal(am_ack(s, id, tok, 3), HR_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_job_get(s, id[i], a, &j), HR_NOTFOUND);
    assert_int_equal(store_job_get(s, id[3], a, &j), HR_OK);
    assert_int_equal(j.lease_token, tok[3]);
    assert_int_equal(am_ack(s, id, tok, 0), HR_OK);
    assert_int_equal(am_ack(s, id + 3, tok, 1), HR_CONFLICT); /* one, not its token */
    assert_int_equal(am_ack(s, id + 3, tok + 3, 1), HR_OK);
    assert_int_equal(store_job_get(s, id[3], a, &j), HR_NOTFOUND);
}

#endif
