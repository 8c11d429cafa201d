/* test_defcache.c: the event name -> linked automations cache: loaded once while fresh,
 * reloaded after its TTL or any defcache_changed (also one during the load), names that
 * share a slot do not see each other's sets, a load error is not cached, a NULL cache
 * always loads, and a set outlives its eviction while a caller holds it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/engine/defcache.h"

#include <stdio.h>
#include <string.h>

struct loader {
    int calls;
    int fail;         /* return this rc when non-zero */
    bool change_during;
};

static int load(void *ctx, const char *name, struct defset *out)
{
    struct loader *l = ctx;
    char id[64];
    l->calls++;
    if (l->change_during)
        defcache_changed();
    if (l->fail)
        return l->fail;
    snprintf(id, sizeof id, "auto-of-%s", name);
    defset_add(out, id, cJSON_CreateObject());
    defset_add(out, "deleted", NULL);
    return HR_OK;
}

static void get(struct defcache *c, const char *name, int64_t now, struct loader *l, int want_rc,
                struct defset **out)
{
    assert_int_equal(defcache_get(c, name, now, load, l, out), want_rc);
}

static void test_hit_ttl_and_change(void **state)
{
    struct defcache *c = defcache_new();
    struct loader l = {0};
    struct defset *a, *b;
    (void)state;
    get(c, "track/A", 1000, &l, HR_OK, &a);
    assert_int_equal(l.calls, 1);
    assert_int_equal(a->n, 2);
    assert_string_equal(a->ids[0], "auto-of-track/A");
    assert_null(a->defs[1]);
    get(c, "track/A", 1000 + DEFCACHE_TTL_MS - 1, &l, HR_OK, &b);
    assert_int_equal(l.calls, 1); /* fresh: the same set */
    assert_ptr_equal(a, b);
    defset_unref(b);
    get(c, "track/A", 1000 + DEFCACHE_TTL_MS, &l, HR_OK, &b);
    assert_int_equal(l.calls, 2); /* past the TTL */
    assert_ptr_not_equal(a, b);
    assert_string_equal(a->ids[0], "auto-of-track/A"); /* a still held: still valid */
    defset_unref(a);
    defset_unref(b);
    get(c, "track/A", 2500, &l, HR_OK, &a);
    assert_int_equal(l.calls, 2);
    defset_unref(a);
    defcache_changed();
    get(c, "track/A", 2500, &l, HR_OK, &a);
    assert_int_equal(l.calls, 3); /* a change drops it at once */
    defset_unref(a);
    /* a clock that went back is not fresh either */
    get(c, "track/A", 100, &l, HR_OK, &a);
    assert_int_equal(l.calls, 4);
    defset_unref(a);
    defcache_free(c);
}

static void test_change_during_load(void **state)
{
    struct defcache *c = defcache_new();
    struct loader l = {.change_during = true};
    struct defset *a;
    (void)state;
    get(c, "track/B", 1000, &l, HR_OK, &a);
    defset_unref(a);
    l.change_during = false;
    get(c, "track/B", 1000, &l, HR_OK, &a);
    assert_int_equal(l.calls, 2); /* loaded before a change it raced: stale */
    defset_unref(a);
    get(c, "track/B", 1000, &l, HR_OK, &a);
    assert_int_equal(l.calls, 2);
    defset_unref(a);
    defcache_free(c);
}

static void test_slots_errors_and_null_cache(void **state)
{
    struct defcache *c = defcache_new();
    struct loader l = {0};
    struct defset *a;
    char name[32];
    (void)state;
    /* more names than slots: each answer is its own name's set */
    for (int i = 0; i < 3 * DEFCACHE_SLOTS; i++) {
        snprintf(name, sizeof name, "track/e%d", i);
        get(c, name, 1000, &l, HR_OK, &a);
        assert_true(strstr(a->ids[0], name) != NULL);
        defset_unref(a);
    }
    l.calls = 0;
    l.fail = HR_UNAVAIL;
    get(c, "track/err", 1000, &l, HR_UNAVAIL, &a);
    assert_null(a);
    l.fail = 0;
    get(c, "track/err", 1000, &l, HR_OK, &a); /* the error was not cached */
    assert_int_equal(l.calls, 2);
    defset_unref(a);
    defcache_free(c);

    l.calls = 0;
    get(NULL, "track/A", 1000, &l, HR_OK, &a);
    defset_unref(a);
    get(NULL, "track/A", 1000, &l, HR_OK, &a);
    defset_unref(a);
    assert_int_equal(l.calls, 2);
    defset_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_ttl_and_change),
        cmocka_unit_test(test_change_during_load),
        cmocka_unit_test(test_slots_errors_and_null_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
