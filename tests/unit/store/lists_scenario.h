/* lists_scenario.h: one scenario of the lists storage (src/store/store.h, "lists") that
 * test_store_sqlite.c and test_store_pg.c both run on their own fixture, so the two
 * backends are held to the same behaviour: ids and patterns, subscriptions and their
 * paging, and store_list_members (the recipients of a send to a list or a pattern)
 * paged to the end with no user skipped or repeated. Include after cmocka.h. */
#ifndef HERALD_TEST_LISTS_SCENARIO_H
#define HERALD_TEST_LISTS_SCENARIO_H

#include "../../../src/store/store.h"

#include <stdio.h>
#include <string.h>

struct ls_sub {
    const char *list, *user;
};

static int ls_tx(struct store_txn *t, void *arg)
{
    const struct ls_sub *subs = arg;
    int rc = HR_OK;
    for (size_t i = 0; subs[i].list && rc == HR_OK; i++) {
        rc = store_list_ensure(t, str_c(subs[i].list), 1000);
        if (rc == HR_OK)
            rc = store_list_sub_put(t, str_c(subs[i].list), str_c(subs[i].user),
                                    STR_LIT("{\"notifications\":{}}"), 1000);
    }
    return rc;
}

static int ls_delete_tx(struct store_txn *t, void *arg)
{
    return store_list_set_deleted(t, str_c(arg), 2000, 2000);
}

static int ls_sub_missing_tx(struct store_txn *t, void *arg)
{
    (void)arg;
    return store_list_sub_put(t, STR_LIT("never.made"), STR_LIT("u"), STR_NULL, 1);
}

/* ls_group_tx: the calls an events job makes for groups (store_list_create,
 * store_list_sub_add), each rc checked against what the scenario expects. */
static int ls_group_tx(struct store_txn *t, void *arg)
{
    int *bad = arg;
    *bad = 0;
    /* a new list, named; a second create leaves it (and its name) as it is */
    *bad += store_list_create(t, STR_LIT("groups.acme"), STR_LIT("Acme"), 3000) != HR_OK;
    *bad += store_list_create(t, STR_LIT("groups.acme"), STR_LIT("Other"), 3001) != HR_CONFLICT;
    /* an existing list, live (team.eng) or deleted (team.ops): untouched */
    *bad += store_list_create(t, STR_LIT("team.eng"), STR_LIT("X"), 3002) != HR_CONFLICT;
    *bad += store_list_create(t, STR_LIT("team.ops"), STR_LIT("X"), 3002) != HR_CONFLICT;
    *bad += store_list_create(t, STR_LIT("bad..id"), STR_LIT("X"), 3002) != HR_INVAL;
    *bad += store_list_create(t, STR_LIT("groups.x"), STR_NULL, 3002) != HR_INVAL;
    /* subscribe once; an existing subscription keeps its preferences; a deleted or an
     * absent list gets nobody */
    *bad += store_list_sub_add(t, STR_LIT("groups.acme"), STR_LIT("g1"), 3003) != HR_OK;
    *bad += store_list_sub_add(t, STR_LIT("groups.acme"), STR_LIT("g1"), 3004) != HR_CONFLICT;
    *bad += store_list_sub_add(t, STR_LIT("team.eng"), STR_LIT("u1"), 3005) != HR_CONFLICT;
    *bad += store_list_sub_add(t, STR_LIT("team.ops"), STR_LIT("g2"), 3005) != HR_CONFLICT;
    *bad += store_list_sub_add(t, STR_LIT("no.such"), STR_LIT("g2"), 3005) != HR_CONFLICT;
    *bad += store_list_sub_add(t, STR_LIT("groups.acme"), STR_NULL, 3005) != HR_INVAL;
    return HR_OK;
}

/* ls_members: every member of target paged `page` at a time, joined by ',' into out */
static int ls_members(struct store *s, struct arena *a, const char *target, size_t page,
                      char *out, size_t cap)
{
    struct str after = STR_NULL, *ids;
    size_t n, o = 0;
    int rc;
    out[0] = '\0';
    do {
        rc = store_list_members(s, str_c(target), after, page, a, &ids, &n);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(out + o, cap - o, "%s%.*s", o ? "," : "", STR_FMT(ids[i]));
        if (n)
            after = ids[n - 1];
    } while (n == page);
    return HR_OK;
}

static void lists_pure(void)
{
    assert_true(store_list_id_valid(STR_LIT("team")));
    assert_true(store_list_id_valid(STR_LIT("a.b-c.d_e.f:g")));
    assert_false(store_list_id_valid(STR_LIT("a.b.c.d.e")));
    assert_false(store_list_id_valid(STR_LIT("a..b")));
    assert_false(store_list_id_valid(STR_LIT("")));
    assert_false(store_list_id_valid(STR_LIT("a b")));
    assert_false(store_list_id_valid(STR_LIT("a.*")));
    assert_true(store_list_pattern_valid(STR_LIT("a.*")));
    assert_true(store_list_pattern_valid(STR_LIT("*.b.**")));
    assert_false(store_list_pattern_valid(STR_LIT("*.*")));
    assert_false(store_list_pattern_valid(STR_LIT("a.**.b")));
    assert_false(store_list_pattern_valid(STR_LIT("a.b*")));
    assert_true(store_list_match(STR_LIT("a.*"), STR_LIT("a.x")));
    assert_false(store_list_match(STR_LIT("a.*"), STR_LIT("a.x.y")));
    assert_false(store_list_match(STR_LIT("a.*"), STR_LIT("a")));
    assert_true(store_list_match(STR_LIT("a.**"), STR_LIT("a.x.y")));
    assert_false(store_list_match(STR_LIT("a.**"), STR_LIT("a")));
    assert_false(store_list_match(STR_LIT("a.**"), STR_LIT("ab.x")));
    assert_true(store_list_match(STR_LIT("*.b"), STR_LIT("z.b")));
    assert_true(store_list_match(STR_LIT("a.b"), STR_LIT("a.b")));
    assert_false(store_list_match(STR_LIT("a.b"), STR_LIT("a.bc")));
    assert_int_equal(store_list_pattern_prefix(STR_LIT("team.*.x")), 5);
    assert_int_equal(store_list_pattern_prefix(STR_LIT("*.x")), 0);
    assert_int_equal(store_list_pattern_prefix(STR_LIT("a.b")), 3);
}

static void lists_scenario(struct store *s, struct arena *a)
{
    static const struct ls_sub subs[] = {
        {"team.eng", "u3"}, {"team.eng", "u1"}, {"team.eng", "u2"}, {"team.ops", "u2"},
        {"team.ops", "u4"}, {"team.eng.oncall", "u5"}, {"teams.x", "u9"}, {"other", "u1"},
        {"team.ops", "u4"}, /* again: replaces, no second row */
        {NULL, NULL}};
    static const struct {
        const char *target;
        size_t page;
        int rc;
        const char *want;
    } cases[] = {
        {"team.eng", 1, HR_OK, "u1,u2,u3"},   {"team.eng", 1000, HR_OK, "u1,u2,u3"},
        {"team.*", 2, HR_OK, "u1,u2,u3,u4"},  {"team.**", 1, HR_OK, "u1,u2,u3,u4,u5"},
        {"*.ops", 3, HR_OK, "u2,u4"},         {"no.such", 10, HR_OK, ""},
        {"bad..id", 10, HR_INVAL, NULL},
    };
    struct list_sub_rec *rows;
    struct list_rec l;
    struct herr err;
    char got[512];
    size_t n;

    lists_pure();
    assert_int_equal(store_write(s, ls_tx, (void *)subs, &err), HR_OK);
    assert_int_equal(store_write(s, ls_sub_missing_tx, NULL, &err), HR_NOTFOUND);

    /* one list, paged one at a time and all at once; patterns: the unique users of
     * every matching list, in order */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(ls_members(s, a, cases[i].target, cases[i].page, got, sizeof got),
                         cases[i].rc);
        if (cases[i].rc == HR_OK)
            assert_string_equal(got, cases[i].want);
    }

    /* a deleted list sends to nobody, but keeps its rows for a restore */
    assert_int_equal(store_write(s, ls_delete_tx, "team.ops", &err), HR_OK);
    assert_int_equal(ls_members(s, a, "team.*", 10, got, sizeof got), HR_OK);
    assert_string_equal(got, "u1,u2,u3");
    assert_int_equal(store_list_get(s, STR_LIT("team.ops"), a, &l), HR_OK);
    assert_int_equal(l.deleted_ms, 2000);

    /* lists of a user, with the list's fields; subscriptions of a list, paged */
    assert_int_equal(store_list_sub_list(s, STR_NULL, STR_LIT("u1"), STR_NULL, 10, a, &rows, &n),
                     HR_OK);
    assert_int_equal(n, 2);
    assert_true(str_eq_c(rows[0].list.id, "other") && str_eq_c(rows[1].list.id, "team.eng"));
    assert_true(str_eq_c(rows[1].list.name, "team.eng"));
    assert_true(str_eq_c(rows[1].preferences, "{\"notifications\":{}}"));
    assert_int_equal(store_list_sub_list(s, STR_LIT("team.eng"), STR_NULL, STR_LIT("u1"), 1, a,
                                         &rows, &n),
                     HR_OK);
    assert_int_equal(n, 1);
    assert_true(str_eq_c(rows[0].user_id, "u2"));

    /* member counts: a re-subscribe is no second member; a deleted list keeps its count;
     * an unknown list has none; a malformed id is refused */
    int64_t cnt = -1;
    assert_int_equal(store_list_sub_count(s, STR_LIT("team.eng"), &cnt), HR_OK);
    assert_int_equal(cnt, 3);
    assert_int_equal(store_list_sub_count(s, STR_LIT("team.ops"), &cnt), HR_OK);
    assert_int_equal(cnt, 2);
    assert_int_equal(store_list_sub_count(s, STR_LIT("no.such"), &cnt), HR_OK);
    assert_int_equal(cnt, 0);
    assert_int_equal(store_list_sub_count(s, STR_LIT("bad..id"), &cnt), HR_INVAL);

    /* what an events job does for Segment groups (src/ingest/grouplists.c) */
    int bad = -1;
    assert_int_equal(store_write(s, ls_group_tx, &bad, &err), HR_OK);
    assert_int_equal(bad, 0);
    assert_int_equal(store_list_get(s, STR_LIT("groups.acme"), a, &l), HR_OK);
    assert_true(str_eq_c(l.name, "Acme") && l.created_ms == 3000 && l.deleted_ms == 0);
    assert_int_equal(store_list_get(s, STR_LIT("team.eng"), a, &l), HR_OK);
    assert_true(str_eq_c(l.name, "team.eng"));
    assert_int_equal(store_list_sub_list(s, STR_LIT("groups.acme"), STR_NULL, STR_NULL, 10, a,
                                         &rows, &n),
                     HR_OK);
    assert_int_equal(n, 1);
    assert_true(str_eq_c(rows[0].user_id, "g1") && rows[0].created_ms == 3003);
    assert_int_equal(rows[0].preferences.len, 0);
    assert_int_equal(store_list_sub_list(s, STR_NULL, STR_LIT("u1"), STR_NULL, 10, a, &rows, &n),
                     HR_OK);
    assert_true(n == 2 && str_eq_c(rows[1].list.id, "team.eng"));
    assert_true(str_eq_c(rows[1].preferences, "{\"notifications\":{}}"));
    assert_int_equal(store_list_sub_count(s, STR_LIT("team.ops"), &cnt), HR_OK);
    assert_int_equal(cnt, 2);
    assert_int_equal(store_list_get(s, STR_LIT("no.such"), a, &l), HR_NOTFOUND);
}

#endif
