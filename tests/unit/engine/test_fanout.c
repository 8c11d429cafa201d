/* test_fanout.c: sends to lists and bulk jobs (src/engine/fanout.c): the input matrix of
 * list recipients, bulk messages and bulk users; and over a real SQLite store, a list
 * fan-out driven page by page with the "crashes" a kill -9 can cause: a page read but
 * never committed (read again from the saved cursor), and two runs of the same page both
 * reaching their commit (the second changes nothing). Every member ends with exactly one
 * message, its id derived from (request, user). The listing GET /bulk reads: jobs and list
 * sends apart, newest first, paged, whatever their ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../temp_store.h"
#include "../../../src/engine/fanout.h"
#include "../../../src/util/crypto.h"
#include "../../../src/util/id.h"
#include "../../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1700000000000LL

static int validate(const char *json)
{
    cJSON *m = cJSON_Parse(json);
    struct herr err;
    int rc;
    herr_clear(&err);
    assert_non_null(m);
    rc = engine_send_validate(m, &err);
    cJSON_Delete(m);
    return rc;
}

static void test_list_recipients(void **state)
{
    (void)state;
    assert_int_equal(validate("{\"to\":{\"list_id\":\"team.eng\"},\"template\":\"t\"}"), 0);
    assert_int_equal(validate("{\"to\":{\"list_id\":\"a\",\"data\":{\"x\":1}},\"template\":\"t\"}"), 0);
    assert_int_equal(validate("{\"to\":{\"list_pattern\":\"team.*\"},\"template\":\"t\"}"), 0);
    assert_int_equal(validate("{\"to\":{\"list_pattern\":\"team.**\"},\"template\":\"t\"}"), 0);
    assert_int_equal(validate("{\"to\":{\"list_pattern\":\"team\"},\"template\":\"t\"}"), 0);
    static const char *bad[] = {
        "{\"to\":{\"list_id\":\"a\",\"list_pattern\":\"a.*\"},\"template\":\"t\"}",
        "{\"to\":{\"list_id\":\"a.*\"},\"template\":\"t\"}",
        "{\"to\":{\"list_id\":\"\"},\"template\":\"t\"}",
        "{\"to\":{\"list_id\":\"a..b\"},\"template\":\"t\"}",
        "{\"to\":{\"list_id\":\"a.b.c.d.e\"},\"template\":\"t\"}",
        "{\"to\":{\"list_id\":7},\"template\":\"t\"}",
        "{\"to\":{\"list_pattern\":\"*.*\"},\"template\":\"t\"}",
        "{\"to\":{\"list_pattern\":\"**.a\"},\"template\":\"t\"}",
        "{\"to\":{\"list_pattern\":\"a b\"},\"template\":\"t\"}",
        "{\"to\":{\"list_id\":\"a\",\"email\":\"x@y.z\"},\"template\":\"t\"}",
        "{\"to\":{\"list_id\":\"a\",\"data\":[1]},\"template\":\"t\"}",
        "{\"to\":[{\"user_id\":\"u\"},{\"list_id\":\"a\"}],\"template\":\"t\"}",
        "{\"to\":[{\"list_id\":\"a\"}],\"template\":\"t\"}",
        "{\"to\":{\"list_id\":\"a\"}}",
        NULL,
    };
    for (int i = 0; bad[i]; i++) {
        if (validate(bad[i]) != HR_INVAL)
            fail_msg("accepted: %s", bad[i]);
    }
}

static void test_target(void **state)
{
    cJSON *m;
    (void)state;
    m = cJSON_Parse("{\"to\":{\"list_id\":\"a.b\"}}");
    assert_string_equal(engine_fanout_target(m), "a.b");
    cJSON_Delete(m);
    m = cJSON_Parse("{\"to\":{\"list_pattern\":\"a.*\"}}");
    assert_string_equal(engine_fanout_target(m), "a.*");
    cJSON_Delete(m);
    m = cJSON_Parse("{\"to\":{\"user_id\":\"u\"}}");
    assert_null(engine_fanout_target(m));
    cJSON_Delete(m);
    m = cJSON_Parse("{\"to\":[{\"list_id\":\"a\"}]}");
    assert_null(engine_fanout_target(m));
    cJSON_Delete(m);
}

static int bulk_msg(const char *json)
{
    cJSON *m = cJSON_Parse(json);
    struct herr err;
    int rc;
    herr_clear(&err);
    rc = engine_bulk_validate(m, &err);
    cJSON_Delete(m);
    return rc;
}

static void test_bulk_messages(void **state)
{
    (void)state;
    assert_int_equal(bulk_msg("{\"event\":\"welcome\"}"), 0);
    assert_int_equal(bulk_msg("{\"event\":\"e\",\"template\":\"t\",\"data\":{\"a\":1},\"brand\":"
                              "\"b\",\"override\":{},\"locale\":null}"),
                     0);
    assert_int_equal(bulk_msg("{\"event\":\"e\",\"content\":{\"title\":\"x\",\"body\":\"y\"}}"), 0);
    static const char *bad[] = {
        "null", "[]", "{}", "{\"event\":\"\"}", "{\"event\":5}",
        "{\"event\":\"e\",\"locale\":{\"fr\":{}}}", "{\"event\":\"e\",\"nope\":1}",
        "{\"event\":\"e\",\"template\":7}", "{\"event\":\"e\",\"override\":\"x\"}",
        "{\"event\":\"e\",\"data\":[1]}", "{\"event\":\"e\",\"content\":\"x\"}",
        NULL,
    };
    for (int i = 0; bad[i]; i++)
        if (bulk_msg(bad[i]) != HR_INVAL)
            fail_msg("accepted: %s", bad[i]);
}

static int bulk_users(const char *json)
{
    cJSON *m = cJSON_Parse(json);
    struct herr err;
    int rc;
    herr_clear(&err);
    rc = engine_bulk_users_validate(m, &err);
    cJSON_Delete(m);
    return rc;
}

static void test_bulk_users(void **state)
{
    cJSON *many = cJSON_CreateArray(), *big = cJSON_CreateArray(), *u;
    struct herr err;
    char *pad = malloc(BULK_USER_MAX_BYTES + 1);
    (void)state;
    assert_int_equal(bulk_users("[{\"recipient\":\"u1\"},{\"to\":{\"email\":\"a@b.c\"},\"profile\":"
                                "{\"x\":1},\"data\":{\"d\":2},\"preferences\":null}]"),
                     0);
    assert_int_equal(bulk_users("[{}]"), 0); /* no address: accepted, counted as a failure */
    static const char *bad[] = {
        "null", "{}", "[]", "[1]", "[{\"recipient\":5}]", "[{\"to\":\"x\"}]",
        "[{\"profile\":[1]}]", "[{\"preferences\":{\"a\":1}}]", "[{\"nope\":1}]",
        NULL,
    };
    for (int i = 0; bad[i]; i++)
        if (bulk_users(bad[i]) != HR_INVAL)
            fail_msg("accepted: %s", bad[i]);
    for (int i = 0; i < BULK_USERS_MAX + 1; i++)
        cJSON_AddItemToArray(many, cJSON_CreateObject());
    herr_clear(&err);
    assert_int_equal(engine_bulk_users_validate(many, &err), HR_TOOBIG);
    assert_non_null(strstr(err.msg, "at most 1000"));
    cJSON_DeleteItemFromArray(many, 0);
    assert_int_equal(engine_bulk_users_validate(many, &err), 0);
    memset(pad, 'x', BULK_USER_MAX_BYTES);
    pad[BULK_USER_MAX_BYTES] = '\0';
    u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "recipient", "u");
    cJSON_AddItemToObject(cJSON_AddObjectToObject(u, "data"), "pad", cJSON_CreateString(pad));
    cJSON_AddItemToArray(big, u);
    assert_int_equal(engine_bulk_users_validate(big, &err), HR_TOOBIG);
    free(pad);
    cJSON_Delete(many);
    cJSON_Delete(big);
}

/* ---- a list fan-out over a real store ------------------------------------------------ */

#define MEMBERS 2345 /* three pages */
#define RID "1-00000001-aaaaaaaaaaaaaaaaaaaaaaaa"

struct fx {
    struct temp_store ts;
    struct hclock_manual clk;
    struct store *s;
    struct engine e;
};

static int subscribe_tx(struct store_txn *t, void *arg)
{
    int rc = store_list_ensure(t, str_c("news.all"), T0);
    char u[32];
    (void)arg;
    for (int i = 0; i < MEMBERS && rc == HR_OK; i++) {
        snprintf(u, sizeof u, "user-%05d", i);
        rc = store_list_sub_put(t, str_c("news.all"), str_c(u), STR_NULL, T0);
    }
    return rc;
}

static int start_tx(struct store_txn *t, void *arg)
{
    struct fx *f = arg;
    cJSON *m = cJSON_Parse("{\"to\":{\"list_id\":\"news.all\"},\"content\":{\"title\":\"t\","
                           "\"body\":\"b\"}}");
    int rc = engine_send_enqueue(&f->e, t, m, RID, NULL, NULL);
    cJSON_Delete(m);
    return rc;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    hclock_manual_init(&f->clk, T0);
    if (temp_store_open(&f->ts, &f->clk.base, &f->s) < 0)
        return -1;
    f->e.store = f->s;
    f->e.clock = &f->clk.base;
    f->e.message_timeout_ms = SEND_TIMEOUT_DEFAULT_MS;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    temp_store_remove(&f->ts);
    free(f);
    return 0;
}

/* run_job: one run of the fan-out job into a (its result in *r, not committed) */
static void run_job(struct fx *f, struct arena *a, struct job_result *r)
{
    struct job j;
    memset(&j, 0, sizeof j);
    memset(r, 0, sizeof *r);
    snprintf(j.kind, sizeof j.kind, "%s", SEND_FANOUT_KIND);
    j.payload = str_c("{\"id\":\"" RID "\"}");
    engine_fanout_run(&f->e, &j, a, r);
}

/* run_page: run_job that reads a page */
static void run_page(struct fx *f, struct arena *a, struct job_result *r)
{
    run_job(f, a, r);
    assert_int_equal(r->outcome, JOB_OUT_DONE);
}

static void commit(struct fx *f, struct job_result *r)
{
    struct herr err;
    herr_clear(&err);
    assert_non_null(r->commit);
    assert_int_equal(store_write(f->s, r->commit, r->commit_arg, &err), 0);
}

/* progress: the fan-out document's enqueued count and status (into st, 16 bytes) */
static int64_t progress(struct fx *f, char *st)
{
    struct arena *a = arena_new(4096);
    struct doc_rec d;
    cJSON *v;
    int64_t n = -1;
    assert_int_equal(store_doc_get(f->s, "fanouts", str_c(RID), a, &d), 0);
    v = cJSON_Parse(d.body.p);
    json_i64(v, "enqueued", &n);
    snprintf(st, 16, "%s", json_str(v, "status"));
    cJSON_Delete(v);
    arena_free(a);
    return n;
}

static void test_list_fanout_resumes(void **state)
{
    struct fx *f = *state;
    struct herr err;
    struct job_result r1, r2;
    struct arena *a1 = arena_new(65536), *a2 = arena_new(65536), *a = arena_new(4096);
    char st[16];
    herr_clear(&err);
    assert_int_equal(store_write(f->s, subscribe_tx, NULL, &err), 0);
    assert_int_equal(store_write(f->s, start_tx, f, &err), 0);
    assert_int_equal(store_write(f->s, start_tx, f, &err), HR_CONFLICT); /* a replay */

    /* page 1 read, then "killed" before its commit: nothing of it is kept */
    run_page(f, a1, &r1);
    arena_reset(a1);
    assert_int_equal(progress(f, st), 0);
    /* read again from the saved cursor; two runs of it both reach their commit */
    run_page(f, a1, &r1);
    run_page(f, a2, &r2);
    commit(f, &r1);
    assert_int_equal(progress(f, st), FANOUT_PAGE);
    commit(f, &r2); /* stale: its cursor is no longer the saved one */
    assert_int_equal(progress(f, st), FANOUT_PAGE);
    assert_string_equal(st, "PROCESSING");
    arena_reset(a1);
    arena_reset(a2);
    /* pacing: the page's messages are not sent yet, so the next page waits... */
    run_job(f, a1, &r1);
    assert_int_equal(r1.outcome, JOB_OUT_DEFER);
    assert_true(r1.retry_at_ms > hclock_now(&f->clk.base));
    assert_null(r1.commit);
    arena_reset(a1);
    for (int i = 0; i < 5 && strcmp(st, "COMPLETED"); i++) {
        hclock_manual_advance(&f->clk, FANOUT_PACE_MAX_MS); /* ...at most this long */
        run_page(f, a1, &r1);
        commit(f, &r1);
        arena_reset(a1);
        progress(f, st);
    }
    assert_string_equal(st, "COMPLETED");
    assert_int_equal(progress(f, st), MEMBERS);
    /* after completion a run does nothing */
    run_page(f, a1, &r1);
    assert_null(r1.commit);

    /* every member has its one message, id derived from (request, user), with the
     * request's time (second 00000001; its "aaa" is no millisecond) so the fan-out's
     * ids sort together */
    for (int i = 0; i < MEMBERS; i++) {
        char seed[96], id[ID_LEN + 1], u[32];
        struct message_rec m;
        snprintf(u, sizeof u, "user-%05d", i);
        snprintf(seed, sizeof seed, "%s:to:%s", RID, u);
        uint8_t dig[32];
        char hex[65];
        crypto_sha256(seed, strlen(seed), dig);
        crypto_hex(dig, 11, hex);
        snprintf(id, sizeof id, "1-00000001-000%.21s", hex);
        assert_int_equal(store_message_get(f->s, str_c(id), a, &m), 0);
        assert_true(str_eq_c(m.recipient, u));
        assert_true(str_eq_c(m.request_id, RID));
        arena_reset(a);
    }
    arena_free(a);
    arena_free(a1);
    arena_free(a2);
}

/* ---- GET /bulk: fan-outs listed newest first ------------------------------------------ */

struct create_arg {
    struct fx *f;
    const char *id;
    const char *json; /* a bulk definition, or a message to a list */
};

static int create_job_tx(struct store_txn *t, void *varg)
{
    struct create_arg *c = varg;
    cJSON *m = cJSON_Parse(c->json);
    int rc = engine_bulk_create(&c->f->e, t, c->id, m);
    cJSON_Delete(m);
    return rc;
}

static int list_send_tx(struct store_txn *t, void *varg)
{
    struct create_arg *c = varg;
    cJSON *m = cJSON_Parse(c->json);
    int rc = store_list_ensure(t, str_c("small.list"), T0);
    if (rc == HR_OK)
        rc = store_list_sub_put(t, str_c("small.list"), str_c("s1"), STR_NULL, T0);
    if (rc == HR_OK)
        rc = engine_send_enqueue(&c->f->e, t, m, c->id, NULL, NULL);
    cJSON_Delete(m);
    return rc;
}

/* page_ids: the ids (key) of page `out`'s items joined by ',' into buf; the page's
 * cursor (or "") into cur (cap 128). Frees out. */
static void page_ids(cJSON *out, const char *key, char *buf, size_t cap, char *cur)
{
    const cJSON *it, *more = cJSON_GetObjectItemCaseSensitive(json_obj(out, "paging"), "more");
    const char *c = json_str(json_obj(out, "paging"), "cursor");
    buf[0] = '\0';
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(out, "items"))
    {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, "%s%s", n ? "," : "", json_str(it, key));
    }
    snprintf(cur, 128, "%s", c ? c : "");
    assert_true(cJSON_IsBool(more));
    assert_int_equal(cJSON_IsTrue(more), c != NULL); /* a cursor exactly when more follow */
    cJSON_Delete(out);
}

static void test_fanout_list(void **state)
{
    struct fx *f = *state;
    struct herr err;
    static const char *ids[] = {
        /* not in time order: an Idempotency-Key makes a hashed id */
        "1-ffffffff-000000000000000000000001", "1-00000000-000000000000000000000002",
        "1-88888888-000000000000000000000003", "1-11111111-000000000000000000000004",
        "1-22222222-000000000000000000000005",
    };
    struct create_arg c = {f, NULL, "{\"event\":\"news\",\"template\":\"tpl-news\"}"};
    char got[512], cur[128];
    cJSON *out = NULL, *it;

    herr_clear(&err);
    for (int i = 0; i < 5; i++) {
        c.id = ids[i];
        assert_int_equal(store_write(f->s, create_job_tx, &c, &err), 0);
        if (i != 3) /* jobs 3 and 4 are made in the same millisecond */
            hclock_manual_advance(&f->clk, 1000);
    }
    c.id = ids[2]; /* a replay changes nothing, and is not listed twice */
    assert_int_equal(store_write(f->s, create_job_tx, &c, &err), HR_CONFLICT);
    c.id = RID;
    c.json = "{\"to\":{\"list_id\":\"small.list\"},\"content\":{\"title\":\"t\",\"body\":\"b\"}}";
    assert_int_equal(store_write(f->s, list_send_tx, &c, &err), 0);

    /* bulk jobs, newest first, two a page; the same millisecond in id order */
    assert_int_equal(engine_fanout_list(f->s, FANOUT_KIND_BULK, "", 2, &out), 0);
    page_ids(out, "id", got, sizeof got, cur);
    assert_string_equal(got, "1-11111111-000000000000000000000004,"
                             "1-22222222-000000000000000000000005");
    assert_int_equal(engine_fanout_list(f->s, FANOUT_KIND_BULK, cur, 2, &out), 0);
    page_ids(out, "id", got, sizeof got, cur);
    assert_string_equal(got, "1-88888888-000000000000000000000003,"
                             "1-00000000-000000000000000000000002");
    assert_int_equal(engine_fanout_list(f->s, FANOUT_KIND_BULK, cur, 2, &out), 0);
    page_ids(out, "id", got, sizeof got, cur);
    assert_string_equal(got, "1-ffffffff-000000000000000000000001");
    assert_string_equal(cur, "");
    /* a bulk cursor is not a list-send cursor, nor is any other string */
    assert_int_equal(engine_fanout_list(f->s, FANOUT_KIND_BULK, "", 1, &out), 0);
    page_ids(out, "id", got, sizeof got, cur);
    assert_int_equal(engine_fanout_list(f->s, FANOUT_KIND_LIST, cur, 1, &out), HR_INVAL);
    assert_null(out);
    assert_int_equal(engine_fanout_list(f->s, FANOUT_KIND_BULK, "1-ffffffff", 1, &out), HR_INVAL);

    /* one item's fields */
    assert_int_equal(engine_fanout_list(f->s, FANOUT_KIND_BULK, "", 5, &out), 0);
    it = cJSON_GetArrayItem(cJSON_GetObjectItem(out, "items"), 4);
    assert_non_null(it);
    assert_string_equal(json_str(it, "id"), ids[0]);
    assert_string_equal(json_str(it, "status"), "CREATED");
    assert_string_equal(json_str(it, "created"), "2023-11-14T22:13:20.000Z");
    assert_string_equal(json_str(it, "event"), "news");
    assert_string_equal(json_str(it, "template"), "tpl-news");
    assert_null(json_str(it, "completed"));
    for (int k = 0; k < 3; k++) {
        static const char *const counts[] = {"received", "enqueued", "failures"};
        int64_t v = -1;
        assert_true(json_i64(it, counts[k], &v));
        assert_int_equal(v, 0);
    }
    cJSON_Delete(out);

    /* the list send: its own listing, with its progress */
    assert_int_equal(engine_fanout_list(f->s, FANOUT_KIND_LIST, NULL, 20, &out), 0);
    it = cJSON_GetArrayItem(cJSON_GetObjectItem(out, "items"), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(out, "items")), 1);
    assert_string_equal(json_str(it, "requestId"), RID);
    assert_string_equal(json_str(it, "list_id"), "small.list");
    assert_string_equal(json_str(it, "status"), "PROCESSING");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(it, "template")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(it, "done")));
    cJSON_Delete(out);
}

static int put_fanout_tx(struct store_txn *t, void *arg)
{
    return store_doc_put(t, "fanouts", str_c(RID), str_c(arg), T0, NULL);
}

/* A fan-out created before ids carried their time (its document has no "ids") keeps
 * deriving its members' ids all hashed, as its first pages did. */
static void test_fanout_from_before_keeps_hashed_ids(void **state)
{
    struct fx *f = *state;
    struct herr err;
    struct job_result r;
    struct arena *a = arena_new(65536);
    struct doc_rec d;
    struct message_rec m;
    char seed[96], old_id[ID_LEN + 1], new_id[ID_LEN + 1];
    cJSON *fo;
    char *body;
    herr_clear(&err);
    assert_int_equal(store_write(f->s, subscribe_tx, NULL, &err), 0);
    assert_int_equal(store_write(f->s, start_tx, f, &err), 0);
    assert_int_equal(store_doc_get(f->s, "fanouts", str_c(RID), a, &d), 0);
    fo = cJSON_Parse(d.body.p);
    assert_string_equal(json_str(fo, "ids"), "timed");
    cJSON_DeleteItemFromObjectCaseSensitive(fo, "ids");
    body = json_print(fo);
    assert_int_equal(store_write(f->s, put_fanout_tx, body, &err), 0);
    free(body);
    cJSON_Delete(fo);
    arena_reset(a);

    run_page(f, a, &r);
    commit(f, &r);
    arena_reset(a);
    snprintf(seed, sizeof seed, "%s:to:%s", RID, "user-00000");
    id_derive_hashed(seed, old_id);
    id_derive(seed, id_time_ms(RID), new_id);
    assert_int_equal(store_message_get(f->s, str_c(old_id), a, &m), 0);
    assert_int_equal(store_message_get(f->s, str_c(new_id), a, &m), HR_NOTFOUND);
    arena_free(a);
}

static int send_tx(struct store_txn *t, void *arg)
{
    struct fx *f = ((void **)arg)[0];
    const char *rid = ((void **)arg)[1], *json = ((void **)arg)[2];
    cJSON *m = cJSON_Parse(json);
    int rc = engine_send_enqueue(&f->e, t, m, rid, NULL, NULL);
    cJSON_Delete(m);
    return rc;
}

/* A multi-recipient send that ran on a herald deriving hashed ids (its first message
 * exists under that id), repeated with its Idempotency-Key after an upgrade: found done,
 * nothing sent again. */
static void test_send_from_before_not_repeated(void **state)
{
    struct fx *f = *state;
    struct herr err;
    struct arena *a = arena_new(4096);
    struct message_rec m;
    const char *rid = "1-5d0e7a8b-1c2d3e4f5a6b7c8d9e0f1a2b";
    const char *two = "{\"to\":[{\"user_id\":\"a\"},{\"user_id\":\"b\"}],"
                      "\"content\":{\"title\":\"t\",\"body\":\"b\"}}";
    const char *one = "{\"to\":{\"user_id\":\"a\"},\"content\":{\"title\":\"t\",\"body\":\"b\"}}";
    char seed[96], old_id[ID_LEN + 1], new_id[ID_LEN + 1];
    herr_clear(&err);
    snprintf(seed, sizeof seed, "%s:%d", rid, 0);
    id_derive_hashed(seed, old_id);
    id_derive(seed, id_time_ms(rid), new_id);
    /* what the old build left: the first message under its hashed id */
    void *before[3] = {f, old_id, (void *)one};
    assert_int_equal(store_write(f->s, send_tx, before, &err), 0);
    void *again[3] = {f, (void *)rid, (void *)two};
    assert_int_equal(store_write(f->s, send_tx, again, &err), HR_CONFLICT);
    assert_int_equal(store_message_get(f->s, str_c(new_id), a, &m), HR_NOTFOUND);
    /* a request that did not run before sends to both */
    const char *rid2 = "1-5d0e7a8b-2c2d3e4f5a6b7c8d9e0f1a2b";
    void *fresh[3] = {f, (void *)rid2, (void *)two};
    assert_int_equal(store_write(f->s, send_tx, fresh, &err), 0);
    snprintf(seed, sizeof seed, "%s:%d", rid2, 1);
    id_derive(seed, id_time_ms(rid2), new_id);
    assert_int_equal(store_message_get(f->s, str_c(new_id), a, &m), 0);
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_recipients),
        cmocka_unit_test(test_target),
        cmocka_unit_test(test_bulk_messages),
        cmocka_unit_test(test_bulk_users),
        cmocka_unit_test_setup_teardown(test_list_fanout_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fanout_from_before_keeps_hashed_ids, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_send_from_before_not_repeated, setup, teardown),
    };
    json_use_xalloc();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
