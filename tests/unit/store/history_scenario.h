/* history_scenario.h: a message's history (store_history_append, _append_many, _list in
 * src/store/store.c) held to one behaviour on both backends (test_store_sqlite.c,
 * test_store_pg.c run it on their own fixture): events listed in the order appended,
 * filtered by type; several appended together stored as one packed row and given back
 * one by one, exactly (empty bodies, newlines, digits); a bad row refusing them all; the
 * packed type refused from callers; events too large to pack together stored one per
 * row; at most STORE_HISTORY_MAX events listed; a packed row that does not read back
 * answered HR_IO. Include after cmocka.h. */
#ifndef HERALD_TEST_HISTORY_SCENARIO_H
#define HERALD_TEST_HISTORY_SCENARIO_H

#include "../../../src/store/store.h"
#include "../../../src/util/xalloc.h"

#include <stdlib.h>
#include <string.h>

enum hs_how {
    HS_MANY, /* store_history_append_many of rows[0..n) */
    HS_ONE,  /* store_history_append of rows[0] */
    HS_RAW,  /* rows[0] through the backend's own append (any type) */
};

struct hs_many {
    struct str id;
    struct history_row rows[3];
    size_t n;
    enum hs_how how;
    const struct history_row *many; /* HS_MANY: these instead of rows, when set */
};

static int hs_many_tx(struct store_txn *t, void *arg)
{
    struct hs_many *m = arg;
    const struct history_row *r = &m->rows[0];
    if (m->many)
        return store_history_append_many(t, m->id, m->many, m->n);
    if (m->how == HS_RAW)
        return store_txn_store(t)->ops->history_append(t, m->id, r->ts, r->type, r->body);
    if (m->how == HS_ONE)
        return store_history_append(t, m->id, r->ts, r->type, r->body);
    return store_history_append_many(t, m->id, m->rows, m->n);
}

/* hs_raw_rows: the rows the backend holds for id (packed ones as one) */
static size_t hs_raw_rows(struct store *s, struct arena *a, const char *id,
                          struct history_rec **raw)
{
    size_t n = 0;
    assert_int_equal(s->ops->history_list(s, str_c(id), a, raw, &n), HR_OK);
    return n;
}

static void history_scenario(struct store *s, struct arena *a)
{
    struct history_rec *h = NULL, *raw = NULL;
    size_t n = 0;
    struct herr err;
    struct hs_many one = {STR_LIT("h1"), {{1000, STR_LIT("ENQUEUED"), STR_LIT("{\"e\":0}")}}, 1,
                          HS_ONE, NULL};
    struct hs_many many = {STR_LIT("h1"),
                           {{1005, STR_LIT("ROUTED"), STR_LIT("{\"r\":1}")},
                            {INT64_MIN, STR_LIT("DELIVERING"), STR_LIT("")},
                            {-7, STR_LIT("SENT"), STR_LIT("12 3 4\n{\"s\":\n2}")}},
                           3, HS_MANY, NULL};
    struct hs_many bad = many;
    herr_clear(&err);

    /* one, then three together: five events in order, the three in one row */
    assert_int_equal(store_write(s, hs_many_tx, &one, &err), HR_OK);
    assert_int_equal(store_write(s, hs_many_tx, &many, &err), HR_OK);
    assert_int_equal(store_history_list(s, STR_LIT("h1"), STR_NULL, a, &h, &n), HR_OK);
    assert_int_equal(n, 4);
    assert_string_equal(h[0].type.p, "ENQUEUED");
    assert_int_equal(h[0].ts, 1000);
    assert_string_equal(h[1].type.p, "ROUTED");
    assert_int_equal(h[1].ts, 1005);
    assert_string_equal(h[1].body.p, "{\"r\":1}");
    assert_string_equal(h[2].type.p, "DELIVERING");
    assert_true(h[2].ts == INT64_MIN);
    assert_int_equal(h[2].body.len, 0);
    assert_string_equal(h[3].type.p, "SENT");
    assert_int_equal(h[3].ts, -7);
    assert_string_equal(h[3].body.p, "12 3 4\n{\"s\":\n2}");
    for (size_t i = 1; i < n; i++)
        assert_true(h[i - 1].seq <= h[i].seq);
    assert_true(h[0].seq < h[1].seq);
    assert_int_equal(hs_raw_rows(s, a, "h1", &raw), 2);
    assert_string_equal(raw[1].type.p, STORE_HISTORY_PACKED);

    /* by type: the plain rows and the packed ones' events alike */
    assert_int_equal(store_history_list(s, STR_LIT("h1"), STR_LIT("SENT"), a, &h, &n), HR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].ts, -7);
    assert_int_equal(store_history_list(s, STR_LIT("h1"), STR_LIT("ENQUEUED"), a, &h, &n),
                     HR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_history_list(s, STR_LIT("h1"), STR_LIT("OPENED"), a, &h, &n), HR_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_history_list(s, STR_LIT("h2"), STR_NULL, a, &h, &n), HR_OK);
    assert_int_equal(n, 0);

    /* one bad row refuses them all; the packed type is no caller's */
    bad.rows[1].type = STR_NULL;
    assert_int_equal(store_write(s, hs_many_tx, &bad, &err), HR_INVAL);
    bad = many;
    bad.rows[2].type = STR_LIT(STORE_HISTORY_PACKED);
    assert_int_equal(store_write(s, hs_many_tx, &bad, &err), HR_INVAL);
    bad = one;
    bad.rows[0].type = STR_LIT(STORE_HISTORY_PACKED);
    assert_int_equal(store_write(s, hs_many_tx, &bad, &err), HR_INVAL);
    assert_int_equal(hs_raw_rows(s, a, "h1", &raw), 2);

    /* one row alone is a plain row; none is nothing */
    many.n = 1;
    assert_int_equal(store_write(s, hs_many_tx, &many, &err), HR_OK);
    many.n = 0;
    assert_int_equal(store_write(s, hs_many_tx, &many, &err), HR_OK);
    assert_int_equal(hs_raw_rows(s, a, "h1", &raw), 3);
    assert_string_equal(raw[2].type.p, "ROUTED");
    assert_int_equal(store_history_list(s, STR_LIT("h1"), STR_NULL, a, &h, &n), HR_OK);
    assert_int_equal(n, 5);

    /* too large to pack together: one row each, in order */
    {
        size_t big = STORE_PAYLOAD_MAX / 2 + 16;
        char *b1 = xmalloc(big), *b2 = xmalloc(big);
        struct hs_many two = {STR_LIT("h3"),
                              {{1, STR_LIT("A"), {b1, big}}, {2, STR_LIT("B"), {b2, big}}},
                              2, HS_MANY, NULL};
        memset(b1, 'a', big);
        memset(b2, 'b', big);
        assert_int_equal(store_write(s, hs_many_tx, &two, &err), HR_OK);
        assert_int_equal(hs_raw_rows(s, a, "h3", &raw), 2);
        assert_int_equal(store_history_list(s, STR_LIT("h3"), STR_NULL, a, &h, &n), HR_OK);
        assert_int_equal(n, 2);
        assert_string_equal(h[1].type.p, "B");
        assert_int_equal(h[1].body.len, big);
        assert_memory_equal(h[1].body.p, b2, big);
        free(b1);
        free(b2);
    }

    /* at most STORE_HISTORY_MAX events, the first ones */
    {
        size_t n_many = STORE_HISTORY_MAX + 5;
        struct history_row *rows = xcalloc(n_many, sizeof *rows);
        struct hs_many lots = {STR_LIT("h4"), {{0}}, n_many, HS_MANY, rows};
        for (size_t i = 0; i < n_many; i++)
            rows[i] = (struct history_row){(int64_t)i, STR_LIT("A"), STR_NULL};
        assert_int_equal(store_write(s, hs_many_tx, &lots, &err), HR_OK);
        assert_int_equal(store_history_list(s, STR_LIT("h4"), STR_NULL, a, &h, &n), HR_OK);
        assert_int_equal(n, STORE_HISTORY_MAX);
        assert_int_equal(h[n - 1].ts, STORE_HISTORY_MAX - 1);
        free(rows);
    }

    /* a packed row that does not read back (lengths past its end, no type) */
    {
        const char *broken[] = {"5 4 100\nSENT{}", "5 0 2\n{}", "x 4 2\nSENT{}", "5 4 2 SENT{}"};
        for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
            char id[8];
            struct hs_many r = {{NULL, 0},
                                {{1, STR_LIT(STORE_HISTORY_PACKED), str_c(broken[i])}},
                                1, HS_RAW, NULL};
            snprintf(id, sizeof id, "hb%zu", i);
            r.id = str_c(id);
            assert_int_equal(store_write(s, hs_many_tx, &r, &err), HR_OK);
            assert_int_equal(store_history_list(s, str_c(id), STR_NULL, a, &h, &n), HR_IO);
        }
    }
}

#endif
