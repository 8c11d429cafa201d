/* docs_scenario.h: store_doc_create_many (src/store/store.h) held to one behaviour on
 * both backends (test_store_sqlite.c, test_store_pg.c run it on their own fixture): new
 * ids created with the shared body at their own times, existing documents left exactly
 * as they were, ids that need quoting in an array literal kept as they are, and the
 * bounds refused; and store_doc_put's versions, asked for or not. Include after cmocka.h. */
#ifndef HERALD_TEST_DOCS_SCENARIO_H
#define HERALD_TEST_DOCS_SCENARIO_H

#include "../../../src/store/store.h"

#include <string.h>

struct ds_many {
    const struct str *ids;
    const int64_t *now;
    size_t n, created;
};

static int ds_many_tx(struct store_txn *t, void *arg)
{
    struct ds_many *m = arg;
    return store_doc_create_many(t, "profiles", m->ids, m->now, m->n, STR_LIT("{}"),
                                 &m->created);
}

static int ds_put_tx(struct store_txn *t, void *arg)
{
    (void)arg;
    return store_doc_put(t, "profiles", STR_LIT("p1"), STR_LIT("{\"a\":1}"), 5, NULL);
}

struct ds_put {
    const char *id, *body;
    int64_t now;
    int64_t *version; /* NULL: not asked for (SQLite: the statement without RETURNING) */
};

static int ds_put_ver_tx(struct store_txn *t, void *arg)
{
    struct ds_put *p = arg;
    return store_doc_put(t, "profiles", str_c(p->id), str_c(p->body), p->now, p->version);
}

/* doc_put_scenario: store_doc_put creates at version 1 and each put adds one, whether
 * the caller asks for the version or not (both statements), and the version it answers
 * is the stored one. */
static void doc_put_scenario(struct store *s, struct arena *a)
{
    int64_t v = 0;
    struct ds_put p = {"vp", "{\"n\":1}", 10, &v};
    struct doc_rec d;
    struct herr err;
    herr_clear(&err);
    assert_int_equal(store_write(s, ds_put_ver_tx, &p, &err), HR_OK);
    assert_int_equal(v, 1);
    p = (struct ds_put){"vp", "{\"n\":2}", 20, NULL};
    assert_int_equal(store_write(s, ds_put_ver_tx, &p, &err), HR_OK);
    assert_int_equal(store_doc_get(s, "profiles", STR_LIT("vp"), a, &d), HR_OK);
    assert_int_equal(d.version, 2);
    assert_string_equal(d.body.p, "{\"n\":2}");
    assert_int_equal(d.created_ms, 10);
    assert_int_equal(d.updated_ms, 20);
    p = (struct ds_put){"vp", "{\"n\":3}", 30, &v};
    assert_int_equal(store_write(s, ds_put_ver_tx, &p, &err), HR_OK);
    assert_int_equal(v, 3);
    p = (struct ds_put){"vq", "{}", 40, NULL}; /* a new one, not asked */
    assert_int_equal(store_write(s, ds_put_ver_tx, &p, &err), HR_OK);
    assert_int_equal(store_doc_get(s, "profiles", STR_LIT("vq"), a, &d), HR_OK);
    assert_int_equal(d.version, 1);
}

static void docs_scenario(struct store *s, struct arena *a)
{
    static const struct str ids[] = {STR_LIT("z\"q"), STR_LIT("p1"), STR_LIT("a\\b{,}"),
                                     STR_LIT("\xc3\xa9t\xc3\xa9"), STR_LIT("p1")};
    static const int64_t now[] = {100, 200, 300, 400, 500};
    struct ds_many m = {ids, now, 5, 99};
    struct str bad[] = {STR_LIT("ok"), STR_LIT("")};
    struct doc_rec d;
    struct herr err;

    herr_clear(&err);
    assert_int_equal(store_write(s, ds_put_tx, NULL, &err), HR_OK);
    assert_int_equal(store_write(s, ds_many_tx, &m, &err), HR_OK);
    assert_int_equal(m.created, 3);
    assert_int_equal(store_doc_get(s, "profiles", STR_LIT("p1"), a, &d), HR_OK);
    assert_string_equal(d.body.p, "{\"a\":1}");
    assert_int_equal(d.version, 1);
    assert_int_equal(d.created_ms, 5);
    for (size_t i = 0; i < 4; i++) {
        if (i == 1)
            continue;
        assert_int_equal(store_doc_get(s, "profiles", ids[i], a, &d), HR_OK);
        assert_string_equal(d.body.p, "{}");
        assert_int_equal(d.version, 1);
        assert_int_equal(d.created_ms, now[i]);
        assert_int_equal(d.updated_ms, now[i]);
    }
    /* again: nothing new, nothing changed */
    m.created = 99;
    assert_int_equal(store_write(s, ds_many_tx, &m, &err), HR_OK);
    assert_int_equal(m.created, 0);
    assert_int_equal(store_doc_get(s, "profiles", ids[0], a, &d), HR_OK);
    assert_int_equal(d.version, 1);
    /* none, too many, an empty id, bytes that are not UTF-8 */
    m.n = 0;
    m.created = 99;
    assert_int_equal(store_write(s, ds_many_tx, &m, &err), HR_OK);
    assert_int_equal(m.created, 0);
    m.n = STORE_CREATE_MANY_MAX + 1; /* refused before any id is read */
    assert_int_equal(store_write(s, ds_many_tx, &m, &err), HR_INVAL);
    m = (struct ds_many){bad, now, 2, 0};
    assert_int_equal(store_write(s, ds_many_tx, &m, &err), HR_INVAL);
    bad[1] = STR_LIT("x\xff");
    assert_int_equal(store_write(s, ds_many_tx, &m, &err), HR_INVAL);
    assert_int_equal(store_doc_get(s, "profiles", STR_LIT("ok"), a, &d), HR_NOTFOUND);
}

#endif
