/* test_limit.c: per-provider limits (src/engine/limit.c): parsing and bounds, the
 * concurrency cap, the token bucket (burst, then per_second), waiters spread out,
 * bounded memory (idle entries reused), and many threads never exceeding the cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/engine/limit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000LL

static int parse(const char *json, struct limit_cfg *out, struct herr *err)
{
    cJSON *v = cJSON_Parse(json);
    int rc = limit_cfg_parse(v, out, err);
    cJSON_Delete(v);
    return rc;
}

static void test_parse(void **state)
{
    struct limit_cfg c;
    struct herr err;
    (void)state;

    assert_int_equal(limit_cfg_parse(NULL, &c, &err), 0);
    assert_int_equal(c.concurrency, 0);
    assert_int_equal(parse("null", &c, &err), 0);
    assert_int_equal(parse("{}", &c, &err), 0);
    assert_int_equal(parse("{\"concurrency\":3,\"per_second\":2.5,\"burst\":4}", &c, &err), 0);
    assert_int_equal(c.concurrency, 3);
    assert_true(c.per_second == 2.5);
    assert_int_equal(c.burst, 4);
    assert_int_equal(parse("{\"concurrency\":null}", &c, &err), 0);
    assert_int_equal(c.concurrency, 0);

    herr_clear(&err);
    assert_int_equal(parse("[]", &c, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "limits must be an object"));
    static const char *const bad[] = {
        "{\"concurrency\":0}",    "{\"concurrency\":10001}", "{\"concurrency\":1.5}",
        "{\"concurrency\":\"2\"}", "{\"per_second\":0}",     "{\"per_second\":-1}",
        "{\"per_second\":100001}", "{\"burst\":0}",          "{\"burst\":1001}",
        "{\"rate\":5}",
    };
    static const char *const field[] = {
        "limits.concurrency", "limits.concurrency", "limits.concurrency", "limits.concurrency",
        "limits.per_second",  "limits.per_second",  "limits.per_second",  "limits.burst",
        "limits.burst",       "limits.rate",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        herr_clear(&err);
        assert_int_equal(parse(bad[i], &c, &err), HR_INVAL);
        if (!strstr(err.msg, field[i]))
            fail_msg("%s: message \"%s\" does not name %s", bad[i], err.msg, field[i]);
    }
}

static void test_concurrency(void **state)
{
    struct limit_table *t = limit_table_new(0);
    struct limit_cfg c = {.concurrency = 2};
    int64_t at, at2;
    bool held, cap;
    (void)state;

    assert_int_equal(limit_acquire(t, "p1", &c, T0, &held, &at, NULL), 0);
    assert_true(held);
    assert_int_equal(limit_acquire(t, "p1", &c, T0, &held, &at, NULL), 0);
    assert_int_equal(limit_in_flight(t, "p1"), 2);
    /* full: HR_AGAIN with a time in the future; another key is not affected */
    assert_int_equal(limit_acquire(t, "p1", &c, T0 + 10, &held, &at, &cap), HR_AGAIN);
    assert_false(held);
    assert_true(cap); /* the concurrency cap: a release wakes the waiter */
    assert_true(at > T0 + 10);
    assert_int_equal(limit_acquire(t, "p2", &c, T0 + 10, &held, &at2, NULL), 0);
    limit_release(t, "p2", T0 + 10, T0 + 11);
    /* calls in flight for 10 ms at concurrency 2: a waiter comes back within 5..10 ms
     * (the 5 ms floor, plus as much jitter), however many wait */
    for (int i = 0; i < 100; i++) {
        assert_int_equal(limit_acquire(t, "p1", &c, T0 + 10, &held, &at2, NULL), HR_AGAIN);
        assert_true(at2 >= T0 + 10 + 5 && at2 <= T0 + 10 + 10);
    }
    /* a call that ended frees its slot */
    limit_release(t, "p1", T0, T0 + 4000);
    assert_int_equal(limit_in_flight(t, "p1"), 1);
    assert_int_equal(limit_acquire(t, "p1", &c, T0 + 4000, &held, &at, NULL), 0);
    assert_true(held);
    /* calls in flight for 96 s and more: a waiter comes back in 1 to 2 s */
    assert_int_equal(limit_acquire(t, "p1", &c, T0 + 100000, &held, &at, NULL), HR_AGAIN);
    assert_true(at >= T0 + 100000 + 1000 && at <= T0 + 100000 + 2000);
    /* no limits: allowed, not counted */
    c.concurrency = 0;
    assert_int_equal(limit_acquire(t, "p3", &c, T0, &held, &at, NULL), 0);
    assert_false(held);
    assert_int_equal(limit_in_flight(t, "p3"), 0);
    limit_table_free(t);
}

static void test_rate(void **state)
{
    struct limit_table *t = limit_table_new(0);
    struct limit_cfg c = {.per_second = 5, .burst = 2};
    int64_t at, now = T0;
    bool held, cap;
    int started = 0;
    (void)state;

    /* a full bucket: burst calls at once, then one every 200 ms */
    assert_int_equal(limit_acquire(t, "p", &c, now, &held, &at, NULL), 0);
    limit_release(t, "p", now, now);
    assert_int_equal(limit_acquire(t, "p", &c, now, &held, &at, NULL), 0);
    limit_release(t, "p", now, now);
    assert_int_equal(limit_acquire(t, "p", &c, now, &held, &at, &cap), HR_AGAIN);
    assert_false(cap); /* the rate limit: its token's time */
    assert_int_equal(at, now + 200);
    assert_int_equal(limit_acquire(t, "p", &c, now + 199, &held, &at, NULL), HR_AGAIN);
    assert_int_equal(limit_acquire(t, "p", &c, now + 200, &held, &at, NULL), 0);
    limit_release(t, "p", now + 200, now + 200);
    /* waiters for tokens are spread one token (200 ms) apart */
    {
        int64_t prev = 0;
        for (int i = 0; i < 5; i++) {
            assert_int_equal(limit_acquire(t, "p", &c, now + 200, &held, &at, NULL), HR_AGAIN);
            if (i == 0)
                assert_true(at >= now + 400); /* after the next token, and earlier waiters */
            else
                assert_int_equal(at, prev + 200);
            prev = at;
        }
    }

    /* over 10 s, called every 10 ms: at most burst + 5 * 10 starts */
    for (now = T0 + 1000; now < T0 + 11000; now += 10) {
        if (limit_acquire(t, "p", &c, now, &held, &at, NULL) == 0) {
            started++;
            limit_release(t, "p", now, now);
        } else {
            assert_true(at > now);
        }
    }
    assert_true(started <= 2 + 50);
    assert_true(started >= 50);
    limit_table_free(t);
}

/* a full table reuses the idle entry used least recently; busy entries stay */
static void test_bounded(void **state)
{
    struct limit_table *t = limit_table_new(4);
    struct limit_cfg c = {.concurrency = 1};
    char key[32];
    int64_t at;
    bool held;
    (void)state;

    assert_int_equal(limit_acquire(t, "busy", &c, T0, &held, &at, NULL), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "gone-%d", i);
        assert_int_equal(limit_acquire(t, key, &c, T0 + i, &held, &at, NULL), 0);
        assert_true(held);
        limit_release(t, key, T0 + i, T0 + i);
    }
    /* "busy" kept its count through all that churn */
    assert_int_equal(limit_in_flight(t, "busy"), 1);
    assert_int_equal(limit_acquire(t, "busy", &c, T0 + 200, &held, &at, NULL), HR_AGAIN);
    /* every entry busy: allowed, uncounted */
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "b-%d", i);
        assert_int_equal(limit_acquire(t, key, &c, T0 + 300, &held, &at, NULL), 0);
        assert_true(held);
    }
    assert_int_equal(limit_acquire(t, "one-too-many", &c, T0 + 300, &held, &at, NULL), 0);
    assert_false(held);
    limit_table_free(t);
}

/* many threads: the count in flight never passes the cap */
struct hammer {
    struct limit_table *t;
    atomic_int in, max, calls;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    struct limit_cfg c = {.concurrency = 3};
    int64_t at;
    bool held;
    for (int i = 0; i < 20000; i++) {
        if (limit_acquire(h->t, "p", &c, T0 + i, &held, &at, NULL) != 0)
            continue;
        int now = atomic_fetch_add(&h->in, 1) + 1, m = atomic_load(&h->max);
        while (now > m && !atomic_compare_exchange_weak(&h->max, &m, now))
            ;
        atomic_fetch_add(&h->calls, 1);
        atomic_fetch_sub(&h->in, 1);
        limit_release(h->t, "p", T0 + i, T0 + i);
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct hammer h = {.t = limit_table_new(0)};
    pthread_t th[8];
    (void)state;
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    assert_true(atomic_load(&h.max) <= 3);
    assert_true(atomic_load(&h.calls) > 0);
    assert_int_equal(limit_in_flight(h.t, "p"), 0);
    limit_table_free(h.t);
}

/* test_release_hook: a release that frees a slot tells the hook (the queue's unpark)
 * the key's wait key, after the table's lock is let go; a release of nothing held does
 * not */
struct hook_rec {
    int calls;
    uint64_t key;
    struct limit_table *t;
};

static void on_release(void *arg, uint64_t key)
{
    struct hook_rec *r = arg;
    r->calls++;
    r->key = key;
    assert_int_equal(limit_in_flight(r->t, "p1"), 0); /* the lock is free: no deadlock */
}

static void test_release_hook(void **state)
{
    struct limit_table *t = limit_table_new(0);
    struct limit_cfg c = {.concurrency = 1};
    struct hook_rec r = {.t = t};
    int64_t at;
    bool held;
    (void)state;

    assert_true(limit_wait_key("p1") != 0);
    assert_true(limit_wait_key("p1") != limit_wait_key("p2"));
    limit_on_release(t, on_release, &r);
    assert_int_equal(limit_acquire(t, "p1", &c, T0, &held, &at, NULL), 0);
    limit_release(t, "p1", T0, T0 + 5);
    assert_int_equal(r.calls, 1);
    assert_true(r.key == limit_wait_key("p1"));
    limit_release(t, "p1", T0, T0 + 6); /* nothing in flight: no slot freed */
    limit_release(t, "nope", T0, T0 + 6);
    assert_int_equal(r.calls, 1);
    limit_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),       cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_rate),        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_threads),     cmocka_unit_test(test_release_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
