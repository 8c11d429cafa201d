/* test_grouplists.c: unit tests for src/ingest/grouplists.c without a store: the
 * group_lists setting (every shape PUT /settings must refuse, the canonical JSON of what
 * it accepts), the list id a group makes, and the pending subscriptions (what is kept,
 * what is skipped, truncation). The events job's use of them is in test_ingest.c. */
#include "../../../src/ingest/grouplists.h"
#include "../../../src/util/json.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* parse: the setting text into *l; returns grouplists_parse's rc (the reason into why,
 * cap bytes). */
static int parse(const char *text, struct grouplists_link *l, char *why, size_t cap)
{
    cJSON *v = cJSON_Parse(text);
    struct herr err;
    int rc;
    assert_non_null(v);
    herr_clear(&err);
    rc = grouplists_parse(v, l, &err);
    snprintf(why, cap, "%s", err.msg);
    cJSON_Delete(v);
    return rc;
}

static void test_parse_accepts(void **state)
{
    static const struct {
        const char *text, *prefix;
        bool allow;
    } ok[] = {
        {"{\"prefix\":\"groups.\"}", "groups.", false},
        {"{\"prefix\":\"g-\",\"allow_client\":true}", "g-", true},
        {"{\"prefix\":\"a.b.c.\",\"allow_client\":false}", "a.b.c.", false},
        {"{\"prefix\":\"org:acme@x+y_z.\"}", "org:acme@x+y_z.", false},
    };
    struct grouplists_link l;
    char why[256], *s;
    cJSON *j;
    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(parse(ok[i].text, &l, why, sizeof why), HR_OK);
        assert_true(l.on);
        assert_string_equal(l.prefix, ok[i].prefix);
        assert_int_equal(l.allow_client, ok[i].allow);
    }
    assert_int_equal(parse("null", &l, why, sizeof why), HR_OK);
    assert_false(l.on);
    j = grouplists_json(&l);
    assert_true(cJSON_IsNull(j));
    cJSON_Delete(j);
    assert_int_equal(parse("{\"prefix\":\"groups.\"}", &l, why, sizeof why), HR_OK);
    j = grouplists_json(&l);
    s = json_print(j);
    assert_string_equal(s, "{\"prefix\":\"groups.\",\"allow_client\":false}");
    free(s);
    cJSON_Delete(j);
}

static void test_parse_refuses(void **state)
{
    static const struct {
        const char *text, *why_has;
    } bad[] = {
        {"\"groups.\"", "must be an object"},
        {"true", "must be an object"},
        {"[]", "must be an object"},
        {"{}", "prefix is required"},
        {"{\"prefix\":\"\"}", "prefix is required"},
        {"{\"prefix\":null}", "prefix is required"},
        {"{\"prefix\":7}", "prefix is required"},
        {"{\"prefix\":\"my groups.\"}", "valid list id"},
        {"{\"prefix\":\".g\"}", "valid list id"},
        {"{\"prefix\":\"a..\"}", "valid list id"},
        {"{\"prefix\":\"a.b.c.d.\"}", "valid list id"},
        {"{\"prefix\":\"g.*.\"}", "valid list id"},
        {"{\"prefix\":\"g\\u00e9.\"}", "valid list id"},
        {"{\"prefix\":\"g.\",\"allow_client\":1}", "allow_client must be a boolean"},
        {"{\"prefix\":\"g.\",\"allow_client\":\"true\"}", "allow_client must be a boolean"},
        {"{\"prefix\":\"g.\",\"Prefix\":\"h.\"}", "unknown member Prefix"},
    };
    struct grouplists_link l;
    char why[256], long_prefix[200];
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(bad[i].text, &l, why, sizeof why), HR_INVAL);
        assert_false(l.on);
        if (!strstr(why, bad[i].why_has))
            fail_msg("%s: %s (wanted %s)", bad[i].text, why, bad[i].why_has);
        assert_non_null(strstr(why, "group_lists"));
    }
    /* GROUPLISTS_PREFIX_MAX bytes pass, one more does not */
    snprintf(long_prefix, sizeof long_prefix, "{\"prefix\":\"%0*d\"}", GROUPLISTS_PREFIX_MAX, 0);
    assert_int_equal(parse(long_prefix, &l, why, sizeof why), HR_OK);
    snprintf(long_prefix, sizeof long_prefix, "{\"prefix\":\"%0*d\"}", GROUPLISTS_PREFIX_MAX + 1,
             0);
    assert_int_equal(parse(long_prefix, &l, why, sizeof why), HR_INVAL);
}

static void test_list_id(void **state)
{
    static const struct {
        const char *prefix, *group, *want; /* want NULL: no list id */
    } cases[] = {
        {"groups.", "acme", "groups.acme"},
        {"groups.", "acme.eu", "groups.acme.eu"},
        {"groups.", "a.b.c", "groups.a.b.c"}, /* four parts: the most */
        {"groups.", "a.b.c.d", NULL},        /* five */
        {"a.b.c.", "x", "a.b.c.x"},
        {"a.b.c.", "x.y", NULL},
        {"groups.", "has space", NULL},
        {"groups.", "", NULL},
        {"groups.", ".lead", NULL},
        {"groups.", "trail.", NULL},
        {"groups.", "*", NULL},
        {"g-", "42", "g-42"},
        {"groups.", "user@example.com", "groups.user@example.com"},
    };
    struct grouplists_link l = {.on = true};
    char out[LIST_ID_MAX + 1], big[LIST_ID_MAX + 2];
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(l.prefix, sizeof l.prefix, "%s", cases[i].prefix);
        bool got = grouplists_list_id(&l, cases[i].group, out, sizeof out);
        if (cases[i].want) {
            assert_true(got);
            assert_string_equal(out, cases[i].want);
        } else {
            if (got)
                fail_msg("%s%s made list id %s", cases[i].prefix, cases[i].group, out);
            assert_string_equal(out, "");
        }
    }
    /* longer than a list id: refused, never cut */
    snprintf(l.prefix, sizeof l.prefix, "g.");
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_false(grouplists_list_id(&l, big + 2, out, sizeof out));
    big[LIST_ID_MAX - 2] = '\0'; /* "g." + 254 bytes: exactly LIST_ID_MAX */
    assert_true(grouplists_list_id(&l, big, out, sizeof out));
}

static void test_note_and_truncate(void **state)
{
    struct grouplists_link l = {.on = true};
    struct grouplists_pending p = {0};
    char long_name[GROUPLISTS_NAME_MAX + 2], long_user[LIST_USER_ID_MAX + 2];
    (void)state;
    snprintf(l.prefix, sizeof l.prefix, "groups.");
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    memset(long_user, 'u', sizeof long_user - 1);
    long_user[sizeof long_user - 1] = '\0';

    assert_true(grouplists_note(&l, &p, "acme", STR_LIT("u1"), "Acme", 1, 100));
    assert_true(grouplists_note(&l, &p, "acme", STR_LIT("u2"), long_name, 2, 200));
    assert_false(grouplists_note(&l, &p, "not valid", STR_LIT("u3"), NULL, 3, 300));
    assert_false(grouplists_note(&l, &p, "acme", str_c(long_user), NULL, 4, 400));
    long_user[LIST_USER_ID_MAX] = '\0'; /* exactly the cap: kept */
    assert_true(grouplists_note(&l, &p, "beta", str_c(long_user), "", 5, 500));
    assert_int_equal(p.n, 3);
    assert_string_equal(p.v[0].list_id, "groups.acme");
    assert_string_equal(p.v[0].user_id, "u1");
    assert_string_equal(p.v[0].name, "Acme");
    assert_null(p.v[1].name); /* too long for a list name: the list keeps its id */
    assert_int_equal(p.v[1].at_ms, 200);
    assert_null(p.v[2].name); /* empty */
    assert_int_equal(strlen(p.v[2].user_id), LIST_USER_ID_MAX);
    assert_true(p.v[0].seq < p.v[1].seq && p.v[1].seq < p.v[2].seq);

    grouplists_pending_truncate(&p, 1); /* a rolled-back event's entries go */
    assert_int_equal(p.n, 1);
    assert_string_equal(p.v[0].user_id, "u1");
    grouplists_pending_truncate(&p, 5); /* past the end: nothing */
    assert_int_equal(p.n, 1);
    grouplists_pending_cleanup(&p);
    assert_int_equal(p.n, 0);
    assert_null(p.v);
    grouplists_pending_cleanup(&p); /* twice is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_list_id),
        cmocka_unit_test(test_note_and_truncate),
    };
    json_use_xalloc();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
