/* test_store_pg.c: unit tests of the PostgreSQL backend against a real server: DSNs,
 * migrations (also 4 stores opening at once), meta, keys, rolled-back writes, the job
 * queue's storage (insert, lease, ack, retry, dead, release, counts) with a manual
 * clock, documents, events with the dedup window, the catalog, messages and history,
 * and what several nodes sharing one database need: SKIP LOCKED leasing, read-modify-
 * write without lost updates, dedup under concurrency, NOTIFY waking another store.
 *
 * The server comes from HERALD_TEST_PG_DSN (make test starts one: scripts/pg-test.sh).
 * Without it the binary says so loudly and fails, so a run without PostgreSQL cannot
 * pass silently. The run creates its own database (so that NOTIFYs of other runs on
 * the same server do not reach it) and drops it at the end; each test gets a fresh
 * schema in it (search_path in the DSN's options). */
#include "../../../src/store/postgres/migrations.h"
#include "../../../src/store/sqlite/migrations.h"
#include "../../../src/store/store.h"
#include "../../../src/util/arena.h"
#include "../../../src/util/clock.h"
#include "../../../src/util/crypto.h"
#include "../../../src/util/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lease_scenario.h"
#include "docs_scenario.h"
#include "history_scenario.h"
#include "lists_scenario.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T0 1700000000000LL

static const char *g_dsn; /* HERALD_TEST_PG_DSN, pointed at this run's own database */

struct fx {
    char schema[40];
    char dsn[1024];
    struct hclock_manual clock;
    struct store *s;
    struct arena *a;
};

/* ---- fixture ------------------------------------------------------------------ */

static PGconn *admin_conn(void)
{
    PGconn *c = PQconnectdb(g_dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to HERALD_TEST_PG_DSN: %s\n", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

static int admin_exec(const char *sql)
{
    PGconn *c = admin_conn();
    PGresult *r;
    int ok;
    if (!c)
        return -1;
    r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

/* admin_i64: the first column of the first row of sql in f's schema, or -1. */
static int64_t admin_i64(struct fx *f, const char *sql)
{
    PGconn *c = PQconnectdb(f->dsn);
    PGresult *r = PQexec(c, sql);
    int64_t v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return v;
}

/* admin_cmd: run sql (no rows) on f's schema from a connection of its own; 0 when it
 * worked. */
static int admin_cmd(struct fx *f, const char *sql)
{
    PGconn *c = PQconnectdb(f->dsn);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

/* fx_make: a fresh schema and a DSN whose search_path points at it. */
static struct fx *fx_make(void)
{
    struct fx *f = calloc(1, sizeof *f);
    uint8_t rnd[6];
    char hex[13], sql[128];
    if (!f)
        return NULL;
    crypto_random(rnd, sizeof rnd);
    crypto_hex(rnd, sizeof rnd, hex);
    snprintf(f->schema, sizeof f->schema, "herald_t_%s", hex);
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", f->schema);
    if (admin_exec(sql) < 0) {
        free(f);
        return NULL;
    }
    snprintf(f->dsn, sizeof f->dsn, "%s%soptions=-csearch_path%%3D%s", g_dsn,
             strchr(g_dsn, '?') ? "&" : "?", f->schema);
    hclock_manual_init(&f->clock, T0);
    f->a = arena_new(4096);
    return f;
}

static void fx_drop(struct fx *f)
{
    char sql[128];
    store_close(f->s);
    arena_free(f->a);
    snprintf(sql, sizeof sql, "SET client_min_messages = warning; DROP SCHEMA %s CASCADE",
             f->schema);
    admin_exec(sql);
    free(f);
}

static int setup(void **state)
{
    struct fx *f = fx_make();
    struct herr err;
    if (!f)
        return -1;
    if (store_open(f->dsn, &f->clock.base, &f->s, &err) < 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        fx_drop(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_drop(*state);
    return 0;
}

static int64_t now(struct fx *f)
{
    return hclock_now(&f->clock.base);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- write helpers: one op per store_write ---------------------------------------- */

enum op_kind {
    OP_NONE,
    OP_META_SET,
    OP_META_ADD,
    OP_KEY_INSERT,
    OP_KEY_REVOKE,
    OP_JOB_INSERT,
    OP_JOB_LEASE,
    OP_JOB_ACK,
    OP_JOB_RETRY,
    OP_JOB_DEAD,
    OP_JOB_RELEASE,
    OP_JOB_DEFER,
    OP_DOC_PUT,
    OP_DOC_DELETE,
    OP_EVENT,
    OP_CATALOG,
    OP_MSG_INSERT,
    OP_MSG_UPDATE,
    OP_HIST,
};

struct op {
    enum op_kind kind;
    const char *key;
    struct str value;
    struct key_rec *rec;
    struct job_spec spec;
    int64_t now, lease_ms, id, token, run_at;
    size_t max, max_repeat;
    const char *const *kinds;
    struct arena *a;
    struct str error;
    struct event_rec ev;
    int64_t window;
    struct message_rec msg;
    int fail_with; /* < 0: fn returns this after the op */
    /* out */
    int op_rc;
    int64_t out_id;
    struct job *jobs;
    size_t n;
};

static int run_op(struct store_txn *t, void *arg)
{
    struct op *o = arg;
    switch (o->kind) {
    case OP_NONE:
        o->op_rc = 0;
        break;
    case OP_META_SET:
        o->op_rc = store_meta_set(t, o->key, o->value);
        break;
    case OP_META_ADD:
        o->op_rc = store_meta_add(t, o->key, o->value);
        break;
    case OP_KEY_INSERT:
        o->op_rc = store_key_insert(t, o->rec);
        break;
    case OP_KEY_REVOKE:
        o->op_rc = store_key_revoke(t, o->key, o->now);
        break;
    case OP_JOB_INSERT:
        o->op_rc = store_job_insert(t, &o->spec, o->now, &o->out_id);
        break;
    case OP_JOB_LEASE:
        o->op_rc = store_job_lease(t, o->now, o->lease_ms, o->max, o->max_repeat, o->kinds, o->a, &o->jobs, &o->n);
        break;
    case OP_JOB_ACK:
        o->op_rc = store_job_ack(t, o->id, o->token);
        break;
    case OP_JOB_RETRY:
        o->op_rc = store_job_retry(t, o->id, o->token, o->run_at, o->error);
        break;
    case OP_JOB_DEAD:
        o->op_rc = store_job_dead(t, o->id, o->token, o->error);
        break;
    case OP_JOB_RELEASE:
        o->op_rc = store_job_release(t, o->id, o->token);
        break;
    case OP_JOB_DEFER:
        o->op_rc = store_job_defer(t, o->id, o->token, o->run_at);
        break;
    case OP_DOC_PUT:
        o->op_rc = store_doc_put(t, o->key, o->error, o->value, o->now, &o->out_id);
        break;
    case OP_DOC_DELETE:
        o->op_rc = store_doc_delete(t, o->key, o->error);
        break;
    case OP_EVENT:
        o->op_rc = store_event_insert(t, &o->ev, o->window, &o->out_id);
        break;
    case OP_CATALOG:
        o->op_rc = store_catalog_touch(t, o->error, o->value, o->now);
        break;
    case OP_MSG_INSERT:
        o->op_rc = store_message_insert(t, &o->msg);
        break;
    case OP_MSG_UPDATE:
        o->op_rc = store_message_update(t, &o->msg);
        break;
    case OP_HIST:
        o->op_rc = store_history_append(t, o->error, o->now, str_c(o->key), o->value);
        break;
    }
    return o->fail_with ? o->fail_with : o->op_rc;
}

static int do_op(struct store *s, struct op *o)
{
    struct herr err;
    int rc = store_write(s, run_op, o, &err);
    if (rc < 0)
        assert_int_equal(err.rc, rc);
    return rc;
}

static int w_meta_set(struct fx *f, const char *key, struct str v)
{
    struct op o = {.kind = OP_META_SET, .key = key, .value = v};
    return do_op(f->s, &o);
}

static int w_meta_add(struct fx *f, const char *key, struct str v)
{
    struct op o = {.kind = OP_META_ADD, .key = key, .value = v};
    return do_op(f->s, &o);
}

static int w_insert_on(struct store *s, int64_t at_now, const char *kind, int64_t run_at,
                       const char *dedup, int64_t *id)
{
    struct op o = {.kind = OP_JOB_INSERT, .now = at_now};
    int rc;
    o.spec.kind = kind;
    o.spec.payload = STR_LIT("{\"x\":1}");
    o.spec.run_at_ms = run_at;
    o.spec.dedup_key = dedup;
    rc = do_op(s, &o);
    if (id)
        *id = o.out_id;
    return rc;
}

static int w_insert(struct fx *f, const char *kind, int64_t run_at, const char *dedup,
                    int64_t *id)
{
    return w_insert_on(f->s, now(f), kind, run_at, dedup, id);
}

static int w_lease(struct fx *f, int64_t lease_ms, size_t max, const char *const *kinds,
                   struct job **jobs, size_t *n)
{
    struct op o = {.kind = OP_JOB_LEASE, .now = now(f), .lease_ms = lease_ms, .max = max,
                   .max_repeat = max, .kinds = kinds, .a = f->a};
    int rc = do_op(f->s, &o);
    *jobs = o.jobs;
    *n = o.n;
    return rc;
}

static int w_lease_tok(struct fx *f, enum op_kind k, int64_t id, int64_t tok, int64_t run_at,
                       const char *error)
{
    struct op o = {.kind = k, .id = id, .token = tok, .run_at = run_at, .error = str_c(error)};
    return do_op(f->s, &o);
}

static struct key_rec mkkey(int kind, const char *prefix, const char *name, const char *secret,
                            int64_t created)
{
    struct key_rec k;
    memset(&k, 0, sizeof k);
    k.kind = kind;
    snprintf(k.prefix, sizeof k.prefix, "%s", prefix);
    snprintf(k.name, sizeof k.name, "%s", name);
    crypto_sha256(secret, strlen(secret), k.hash);
    k.created_ms = created;
    return k;
}

static int w_key_insert(struct fx *f, struct key_rec *k)
{
    struct op o = {.kind = OP_KEY_INSERT, .rec = k};
    return do_op(f->s, &o);
}

static int64_t count_of(struct fx *f, const char *kind, int state)
{
    struct job_count *c;
    size_t n;
    assert_int_equal(store_job_counts(f->s, f->a, &c, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (strcmp(c[i].kind, kind) == 0 && c[i].state == state)
            return c[i].count;
    return 0;
}

static int w_doc_put(struct store *s, const char *coll, const char *id, const char *body,
                     int64_t at, int64_t *version)
{
    struct op o = {.kind = OP_DOC_PUT, .key = coll, .error = str_c(id), .value = str_c(body),
                   .now = at};
    int rc = do_op(s, &o);
    if (version)
        *version = o.out_id;
    return rc;
}

static int w_event(struct store *s, int64_t source, const char *mid, int64_t received,
                   int64_t window, int64_t *id)
{
    struct op o = {.kind = OP_EVENT, .window = window};
    int rc;
    o.ev.source_id = source;
    o.ev.message_id = str_c(mid);
    o.ev.type = STR_LIT("track");
    o.ev.user_id = STR_LIT("u1");
    o.ev.body = STR_LIT("{\"event\":\"E\"}");
    o.ev.received_ms = received;
    rc = do_op(s, &o);
    if (id)
        *id = o.out_id;
    return rc;
}

/* ---- DSN and migrations ------------------------------------------------------------- */

static void test_invalid_dsn(void **state)
{
    struct store *s = (struct store *)1;
    struct herr err;
    (void)state;
    /* nothing listens on port 1: the connection fails, the password is not echoed */
    assert_true(store_open("postgres://herald:hunter2@127.0.0.1:1/x?connect_timeout=2", NULL,
                           &s, &err) < 0);
    assert_null(s);
    assert_true(err.rc < 0 && strlen(err.msg) > 10);
    assert_null(strstr(err.msg, "hunter2"));
    assert_non_null(strstr(err.msg, "127.0.0.1"));
    s = (struct store *)1;
    assert_int_equal(store_open("postgresql://herald:hunter2@[::1/x", NULL, &s, &err), HR_INVAL);
    assert_null(s);
    assert_null(strstr(err.msg, "hunter2"));
}

static void test_migrations_applied_once(void **state)
{
    struct fx *f = *state;
    struct herr err;
    int latest = pg_schema_latest();
    char sql[160];

    assert_int_equal(latest, sqlite_schema_latest()); /* the lists mean the same from 11 on */
    store_close(f->s);
    f->s = NULL;
    for (int i = 0; i < 2; i++) {
        hclock_manual_advance(&f->clock, 5000);
        assert_int_equal(store_open(f->dsn, &f->clock.base, &f->s, &err), 0);
        assert_int_equal(store_ping(f->s), 0);
        store_close(f->s);
        f->s = NULL;
    }
    assert_int_equal(admin_i64(f, "SELECT count(*) FROM schema_migrations"), latest);
    assert_int_equal(admin_i64(f, "SELECT count(DISTINCT version) FROM schema_migrations"),
                     latest);
    assert_int_equal(admin_i64(f, "SELECT max(applied_ms) FROM schema_migrations"), T0);
    /* 10: no events_dedup index (event_dedup's key is PostgreSQL's dedup) */
    assert_int_equal(admin_i64(f, "SELECT count(*) FROM pg_indexes WHERE schemaname = "
                                  "current_schema() AND indexname = 'events_dedup'"), 0);
    assert_int_equal(admin_i64(f, "SELECT count(*) FROM pg_indexes WHERE schemaname = "
                                  "current_schema() AND indexname = 'event_dedup_pkey'"), 1);
    assert_int_equal(admin_i64(f, "SELECT count(*) FROM pg_tables WHERE schemaname = "
                                  "current_schema() AND tablename IN ('meta','api_keys','jobs',"
                                  "'docs','events','event_dedup','catalog','messages',"
                                  "'message_history')"),
                     9);

    /* a database from a newer herald is refused */
    snprintf(sql, sizeof sql, "INSERT INTO schema_migrations VALUES(%d, 1) RETURNING 1",
             latest + 1);
    assert_int_equal(admin_i64(f, sql), 1);
    assert_int_equal(store_open(f->dsn, &f->clock.base, &f->s, &err), HR_INVAL);
    assert_null(f->s);
    assert_non_null(strstr(err.msg, "newer"));
}

struct opener {
    struct fx *f;
    pthread_barrier_t *go;
    int rc;
    struct store *s;
};

static void *open_thread(void *p)
{
    struct opener *o = p;
    struct herr err;
    pthread_barrier_wait(o->go);
    o->rc = store_open(o->f->dsn, &o->f->clock.base, &o->s, &err);
    if (o->rc < 0)
        fprintf(stderr, "store_open: %s\n", err.msg);
    return NULL;
}

/* four nodes start at once on an empty database: each version is applied once */
static void test_migrations_concurrent_open(void **state)
{
    struct fx *f = fx_make();
    pthread_barrier_t go;
    struct opener o[4];
    pthread_t th[4];
    (void)state;
    assert_non_null(f);
    pthread_barrier_init(&go, NULL, 4);
    for (int i = 0; i < 4; i++) {
        o[i] = (struct opener){f, &go, 1, NULL};
        assert_int_equal(pthread_create(&th[i], NULL, open_thread, &o[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(o[i].rc, 0);
        assert_int_equal(store_ping(o[i].s), 0);
    }
    assert_int_equal(admin_i64(f, "SELECT count(*) FROM schema_migrations"), pg_schema_latest());
    for (int i = 0; i < 4; i++)
        store_close(o[i].s);
    fx_drop(f);
}

/* ---- meta, keys, writes ------------------------------------------------------------- */

static void test_meta_roundtrip(void **state)
{
    struct fx *f = *state;
    struct str v = STR_NULL;
    static const char bin[] = {'a', 0, 'b', (char)0xff};

    assert_int_equal(store_meta_get(f->s, "instance_id", f->a, &v), HR_NOTFOUND);
    assert_int_equal(w_meta_set(f, "instance_id", STR_LIT("v1")), 0);
    assert_int_equal(store_meta_get(f->s, "instance_id", f->a, &v), 0);
    assert_int_equal(v.len, 2);
    assert_memory_equal(v.p, "v1", 3);
    assert_int_equal(w_meta_set(f, "instance_id", STR_LIT("second")), 0);
    assert_int_equal(store_meta_get(f->s, "instance_id", f->a, &v), 0);
    assert_memory_equal(v.p, "second", 7);
    assert_int_equal(w_meta_set(f, "bin", (struct str){bin, sizeof bin}), 0);
    assert_int_equal(store_meta_get(f->s, "bin", f->a, &v), 0);
    assert_int_equal(v.len, sizeof bin);
    assert_memory_equal(v.p, bin, sizeof bin);
    assert_int_equal(w_meta_set(f, "empty", STR_NULL), 0);
    assert_int_equal(store_meta_get(f->s, "empty", f->a, &v), 0);
    assert_int_equal(v.len, 0);
    assert_int_equal(w_meta_set(f, "", STR_LIT("x")), HR_INVAL);
    assert_int_equal(store_meta_get(f->s, "", f->a, &v), HR_INVAL);

    /* meta_add: only the first add of a key wins; the value stays the winner's */
    assert_int_equal(w_meta_add(f, "first", STR_LIT("a")), 0);
    assert_int_equal(w_meta_add(f, "first", STR_LIT("b")), HR_CONFLICT);
    assert_int_equal(store_meta_get(f->s, "first", f->a, &v), 0);
    assert_memory_equal(v.p, "a", 2);
    assert_int_equal(w_meta_add(f, "instance_id", STR_LIT("x")), HR_CONFLICT);
    assert_int_equal(w_meta_add(f, "", STR_LIT("x")), HR_INVAL);
}

static void test_keys(void **state)
{
    struct fx *f = *state;
    struct key_rec admin = mkkey(KEY_ADMIN, "hk_adm1", "ops", "secret-admin", T0);
    struct key_rec wr = mkkey(KEY_WRITE, "hk_wr1", "app", "secret-write", T0 + 1);
    struct key_rec dup_prefix = mkkey(KEY_WRITE, "hk_wr1", "other", "secret-other", T0 + 2);
    struct key_rec dup_hash = mkkey(KEY_WRITE, "hk_wr2", "other", "secret-write", T0 + 2);
    struct key_rec got, *list;
    struct op rev = {.kind = OP_KEY_REVOKE, .key = "hk_wr1", .now = T0 + 100};
    size_t n;
    int64_t cnt;

    wr.scope = KEY_SCOPE_CLIENT; /* the scope round-trips; admin stays server */

    assert_int_equal(w_key_insert(f, &admin), 0);
    assert_int_equal(w_key_insert(f, &wr), 0);
    assert_true(admin.id > 0 && wr.id > 0 && admin.id != wr.id);
    assert_int_equal(w_key_insert(f, &dup_prefix), HR_CONFLICT);
    assert_int_equal(w_key_insert(f, &dup_hash), HR_CONFLICT);

    assert_int_equal(store_key_find_by_hash(f->s, wr.hash, &got), 0);
    assert_int_equal(got.id, wr.id);
    assert_int_equal(got.kind, KEY_WRITE);
    assert_string_equal(got.prefix, "hk_wr1");
    assert_string_equal(got.name, "app");
    assert_memory_equal(got.hash, wr.hash, 32);
    assert_int_equal(got.created_ms, T0 + 1);
    assert_int_equal(got.revoked_ms, 0);
    assert_int_equal(got.scope, KEY_SCOPE_CLIENT);

    assert_int_equal(store_key_list(f->s, f->a, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, wr.id);
    assert_int_equal(list[1].id, admin.id);
    assert_int_equal(list[0].scope, KEY_SCOPE_CLIENT);
    assert_int_equal(list[1].scope, KEY_SCOPE_SERVER);
    assert_int_equal(store_key_count(f->s, 0, &cnt), 0);
    assert_int_equal(cnt, 2);
    assert_int_equal(store_key_count(f->s, KEY_ADMIN, &cnt), 0);
    assert_int_equal(cnt, 1);

    assert_int_equal(do_op(f->s, &rev), 0);
    assert_int_equal(store_key_find_by_hash(f->s, wr.hash, &got), HR_NOTFOUND);
    assert_int_equal(store_key_count(f->s, KEY_WRITE, &cnt), 0);
    assert_int_equal(cnt, 0);
    assert_int_equal(do_op(f->s, &rev), HR_NOTFOUND);
    assert_int_equal(store_key_list(f->s, f->a, &list, &n), 0);
    assert_int_equal(list[0].revoked_ms, T0 + 100);
    admin.kind = 7;
    assert_int_equal(w_key_insert(f, &admin), HR_INVAL);
}

static void test_failed_fn_leaves_no_trace(void **state)
{
    struct fx *f = *state;
    struct op o = {.kind = OP_META_SET, .key = "gone", .value = STR_LIT("x"), .fail_with = HR_AGAIN};
    struct str v;
    struct herr err;
    struct store_stats st;

    assert_int_equal(store_write(f->s, run_op, &o, &err), HR_AGAIN);
    assert_int_equal(o.op_rc, 0);
    assert_int_equal(err.rc, HR_AGAIN);
    assert_int_equal(store_meta_get(f->s, "gone", f->a, &v), HR_NOTFOUND);
    assert_int_equal(w_meta_set(f, "kept", STR_LIT("y")), 0);
    assert_int_equal(store_meta_get(f->s, "kept", f->a, &v), 0);
    store_stats(f->s, &st);
    assert_int_equal(st.txns, 2);
    assert_int_equal(st.commits, 1);
    assert_int_equal(st.errors, 0);
}

/* ---- store_txn_sub: savepoints sent late (pg.c, ctl_defer) ---- */

/* a sub's plan: set key (NULL: no statement), then run inner in a sub of its own, then
 * return rc */
struct sub_plan {
    const char *key;
    struct sub_plan *inner;
    int rc;
    int inner_rc; /* what the inner sub returned */
};

static int sub_fn(struct store_txn *t, void *arg)
{
    struct sub_plan *sp = arg;
    int rc;
    if (sp->key && (rc = store_meta_set(t, sp->key, STR_LIT("v"))) < 0)
        return rc;
    if (sp->inner)
        sp->inner_rc = store_txn_sub(t, sub_fn, sp->inner);
    return sp->rc;
}

struct subs_case {
    int rcs[6]; /* what each store_txn_sub returned */
    bool commit_right_after_failure;
    struct key_rec key; /* inserted after the failing sub: a statement not yet prepared */
};

static int subs_fn(struct store_txn *t, void *arg)
{
    struct subs_case *c = arg;
    struct sub_plan ran_then_failed = {.key = "s_undone", .rc = HR_INVAL};
    struct sub_plan ran_nothing = {.rc = HR_INVAL};
    struct sub_plan statement_failed = {.key = "boom"};
    struct sub_plan inner = {.key = "s_inner"};
    struct sub_plan outer = {.key = "s_outer", .inner = &inner};
    struct sub_plan inner_fails = {.key = "boom"};
    struct sub_plan outer_kept = {.key = "s_kept", .inner = &inner_fails};
    int rc = store_meta_set(t, "before", STR_LIT("v"));
    if (rc < 0)
        return rc;
    if (c->commit_right_after_failure) {
        /* COMMIT with the ROLLBACK TO still waiting: sent first, or the COMMIT of an
         * aborted transaction would roll everything back and answer OK */
        c->rcs[0] = store_txn_sub(t, sub_fn, &statement_failed);
        return HR_OK;
    }
    c->rcs[0] = store_txn_sub(t, sub_fn, &ran_then_failed);
    c->rcs[1] = store_txn_sub(t, sub_fn, &ran_nothing);
    c->rcs[2] = store_txn_sub(t, sub_fn, &statement_failed);
    if ((rc = store_key_insert(t, &c->key)) < 0) /* prepared after the failure */
        return rc;
    c->rcs[3] = store_txn_sub(t, sub_fn, &outer);
    c->rcs[4] = store_txn_sub(t, sub_fn, &outer_kept);
    c->rcs[5] = outer_kept.inner_rc; /* the inner sub's failure, kept inside it */
    return store_meta_set(t, "after", STR_LIT("v"));
}

static bool meta_has(struct fx *f, const char *key)
{
    struct str v;
    return store_meta_get(f->s, key, f->a, &v) == 0;
}

static void test_txn_sub_deferred(void **state)
{
    struct fx *f = *state;
    struct subs_case c = {.key = mkkey(KEY_WRITE, "hk_sub1", "sub", "secret-sub", T0)};
    struct subs_case now = {.commit_right_after_failure = true};
    struct herr err;

    /* a meta row named "boom" fails its INSERT inside PostgreSQL */
    assert_int_equal(admin_cmd(f, "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS "
                                  "$$BEGIN IF NEW.key = 'boom' THEN RAISE EXCEPTION 'boom'; "
                                  "END IF; RETURN NEW; END$$"), 0);
    assert_int_equal(admin_cmd(f, "CREATE TRIGGER boom BEFORE INSERT ON meta FOR EACH ROW "
                                  "EXECUTE FUNCTION boom()"), 0);

    assert_int_equal(store_write(f->s, subs_fn, &c, &err), 0);
    assert_int_equal(c.rcs[0], HR_INVAL);
    assert_int_equal(c.rcs[1], HR_INVAL);
    assert_true(c.rcs[2] < 0);
    assert_int_equal(c.rcs[3], 0);
    assert_int_equal(c.rcs[4], 0);
    assert_true(c.rcs[5] < 0);
    assert_true(meta_has(f, "before"));
    assert_false(meta_has(f, "s_undone"));
    assert_false(meta_has(f, "boom"));
    assert_true(meta_has(f, "s_outer"));
    assert_true(meta_has(f, "s_inner"));
    assert_true(meta_has(f, "s_kept"));
    assert_true(meta_has(f, "after"));
    assert_int_equal(admin_i64(f, "SELECT count(*) FROM api_keys WHERE prefix = 'hk_sub1'"), 1);

    assert_int_equal(admin_cmd(f, "DELETE FROM meta WHERE key = 'before'"), 0);
    assert_int_equal(store_write(f->s, subs_fn, &now, &err), 0);
    assert_true(now.rcs[0] < 0);
    assert_true(meta_has(f, "before"));
    assert_false(meta_has(f, "boom"));
}

/* a lease of one job, then (probe_after) a statement in the same transaction, which
 * reads the planner setting the lease turned off for itself; else the commit at once */
struct lease_probe {
    struct arena *a;
    bool probe_after;
    size_t n;
    char seen[8]; /* enable_bitmapscan while the lease ran (a trigger wrote it) */
};

static int lease_probe_fn(struct store_txn *t, void *arg)
{
    struct lease_probe *lp = arg;
    struct job *jobs = NULL;
    int rc = store_job_lease(t, T0, 30000, 1, 1, NULL, lp->a, &jobs, &lp->n);
    if (rc == 0 && lp->n == 1)
        snprintf(lp->seen, sizeof lp->seen, "%.*s", STR_FMT(jobs[0].last_error));
    if (rc == 0 && lp->probe_after)
        rc = store_meta_set(t, "probe", STR_LIT("?"));
    return rc;
}

static void test_lease_plan_setting_ends(void **state)
{
    struct fx *f = *state;
    struct lease_probe in_txn = {f->a, true, 0, ""}, alone = {f->a, false, 0, ""};
    struct herr err;
    struct str v;

    /* a meta row named "probe..." stores the planner's enable_bitmapscan as its value, and
     * a job's update (its lease) stores it as the job's last_error */
    assert_int_equal(admin_cmd(f, "CREATE FUNCTION probe() RETURNS trigger LANGUAGE plpgsql "
                                  "AS $$BEGIN IF TG_TABLE_NAME = 'jobs' THEN NEW.last_error := "
                                  "current_setting('enable_bitmapscan'); ELSIF NEW.key LIKE "
                                  "'probe%' THEN NEW.value := convert_to(current_setting("
                                  "'enable_bitmapscan'), 'UTF8'); END IF; RETURN NEW; END$$"),
                     0);
    assert_int_equal(admin_cmd(f, "CREATE TRIGGER probe BEFORE INSERT OR UPDATE ON meta FOR "
                                  "EACH ROW EXECUTE FUNCTION probe()"), 0);
    assert_int_equal(admin_cmd(f, "CREATE TRIGGER probe BEFORE UPDATE ON jobs FOR EACH ROW "
                                  "EXECUTE FUNCTION probe()"), 0);
    assert_int_equal(w_insert(f, "k", T0, NULL, NULL), 0);
    assert_int_equal(w_insert(f, "k", T0, NULL, NULL), 0);

    /* the lease plans without bitmap scans; the statement after it with them again */
    assert_int_equal(store_write(f->s, lease_probe_fn, &in_txn, &err), 0);
    assert_int_equal(in_txn.n, 1);
    assert_string_equal(in_txn.seen, "off");
    assert_int_equal(store_meta_get(f->s, "probe", f->a, &v), 0);
    assert_int_equal(v.len, 2);
    assert_memory_equal(v.p, "on", 2);

    /* again, the lease prepared by now (sent in one pipeline with its SET LOCAL), and the
     * commit right after it: the next transaction plans as usual */
    assert_int_equal(store_write(f->s, lease_probe_fn, &alone, &err), 0);
    assert_int_equal(alone.n, 1);
    assert_string_equal(alone.seen, "off");
    assert_int_equal(w_meta_set(f, "probe2", STR_LIT("?")), 0);
    assert_int_equal(store_meta_get(f->s, "probe2", f->a, &v), 0);
    assert_int_equal(v.len, 2);
    assert_memory_equal(v.p, "on", 2);
}

static int nested_fn(struct store_txn *t, void *arg)
{
    struct herr *err = arg;
    struct op o = {.kind = OP_NONE};
    return store_write(store_txn_store(t), run_op, &o, err);
}

/* a read inside a write fn runs on the transaction: it sees the fn's own writes */
static int read_own_fn(struct store_txn *t, void *arg)
{
    struct arena *a = arg;
    struct str v;
    int rc = store_meta_set(t, "own", STR_LIT("mine"));
    if (rc == 0)
        rc = store_meta_get(store_txn_store(t), "own", a, &v);
    if (rc == 0 && v.len != 4)
        rc = HR_IO;
    return rc;
}

static void test_nested_write_refused(void **state)
{
    struct fx *f = *state;
    struct herr inner, outer;
    assert_int_equal(store_write(f->s, nested_fn, &inner, &outer), HR_INVAL);
    assert_int_equal(inner.rc, HR_INVAL);
    assert_non_null(strstr(inner.msg, "nested"));
    assert_int_equal(store_write(f->s, NULL, NULL, &outer), HR_INVAL);
    assert_int_equal(store_write(f->s, read_own_fn, f->a, &outer), 0);
}

/* ---- back-pressure: writers waiting for a connection -------------------------------- */

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
};

static int block_fn(struct store_txn *t, void *arg)
{
    struct gate *g = arg;
    (void)t;
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

struct writer_arg {
    struct store *s;
    store_txn_fn fn;
    void *arg;
    int rc;
};

static void *writer_thread(void *p)
{
    struct writer_arg *w = p;
    struct herr err;
    w->rc = store_write(w->s, w->fn, w->arg, &err);
    return NULL;
}

/* with one connection held by a write, one writer may wait; the next is refused at
 * once with HR_AGAIN (write_queue_max), as is any once the oldest waited too long */
static void test_backpressure(void **state)
{
    struct fx *f = fx_make();
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    struct op none = {.kind = OP_NONE};
    struct writer_arg wa, wb;
    pthread_t ta, tb;
    struct herr err;
    (void)state;
    assert_non_null(f);
    setenv("HERALD_PG_POOL", "1", 1);
    assert_int_equal(store_open(f->dsn, &f->clock.base, &f->s, &err), 0);
    unsetenv("HERALD_PG_POOL");

    for (int round = 0; round < 2; round++) {
        f->s->write_queue_max = round == 0 ? 1 : 100;
        f->s->write_wait_max_ms = round == 0 ? 0 : 100;
        g.open = false;
        wa = (struct writer_arg){f->s, block_fn, &g, 1};
        wb = (struct writer_arg){f->s, run_op, &none, 1};
        assert_int_equal(pthread_create(&ta, NULL, writer_thread, &wa), 0);
        sleep_ms(200); /* A holds the only connection */
        assert_int_equal(pthread_create(&tb, NULL, writer_thread, &wb), 0);
        sleep_ms(300); /* B waits for it */
        /* the queue's own writes are never refused: only outside requests (ingress) */
        store_ingress(true);
        assert_int_equal(store_write(f->s, run_op, &none, &err), HR_AGAIN);
        assert_int_equal(err.rc, HR_AGAIN);
        store_ingress(false);
        pthread_mutex_lock(&g.mu);
        g.open = true;
        pthread_cond_broadcast(&g.cv);
        pthread_mutex_unlock(&g.mu);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        assert_int_equal(wa.rc, 0);
        assert_int_equal(wb.rc, 0);
        assert_int_equal(store_write(f->s, run_op, &none, &err), 0);
    }
    fx_drop(f);
}

/* ---- jobs --------------------------------------------------------------------------------- */

static void test_job_insert_rules(void **state)
{
    struct fx *f = *state;
    struct op o = {.kind = OP_JOB_INSERT, .now = T0};
    struct job j;
    int64_t id, id2;
    char *big = calloc(1, 1024 * 1024 + 1);

    assert_non_null(big);
    o.spec.kind = "a-kind-name-that-is-32-chars-xx!";
    assert_int_equal(do_op(f->s, &o), HR_INVAL);
    o.spec.kind = "";
    assert_int_equal(do_op(f->s, &o), HR_INVAL);
    o.spec.kind = "a-kind-name-that-is-31-chars-xx";
    o.spec.payload = (struct str){big, 1024 * 1024 + 1};
    assert_int_equal(do_op(f->s, &o), HR_TOOBIG);
    o.spec.payload = (struct str){big, 1024 * 1024};
    assert_int_equal(do_op(f->s, &o), 0);
    assert_true(o.out_id > 0);
    assert_int_equal(store_job_get(f->s, o.out_id, f->a, &j), 0);
    assert_string_equal(j.kind, "a-kind-name-that-is-31-chars-xx");
    assert_int_equal(j.payload.len, 1024 * 1024);
    assert_int_equal(j.max_attempts, 25);
    assert_int_equal(j.run_at_ms, T0);
    assert_int_equal(j.created_ms, T0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.attempts, 0);
    assert_int_equal(j.last_error.len, 0);
    free(big);

    assert_int_equal(w_insert(f, "email", 0, "order-42", &id), 0);
    assert_int_equal(w_insert(f, "email", 0, "order-42", &id2), HR_CONFLICT);
    assert_int_equal(id2, id);
    assert_int_equal(count_of(f, "email", JOB_QUEUED), 1);
    assert_int_equal(store_job_get(f->s, 999999, f->a, &j), HR_NOTFOUND);

    o.spec.kind = "sms";
    o.spec.payload = STR_NULL;
    o.spec.run_at_ms = T0 + 777;
    o.spec.max_attempts = 3;
    assert_int_equal(do_op(f->s, &o), 0);
    assert_int_equal(store_job_get(f->s, o.out_id, f->a, &j), 0);
    assert_int_equal(j.run_at_ms, T0 + 777);
    assert_int_equal(j.max_attempts, 3);
    assert_int_equal(j.payload.len, 0);
}

static void test_job_lifecycle(void **state)
{
    struct fx *f = *state;
    struct job *js, j;
    size_t n;
    int64_t later, now_id, tok1, tok2;
    const int64_t lease = 30000;

    assert_int_equal(w_insert(f, "email", T0 + 1000, NULL, &later), 0);
    assert_int_equal(w_insert(f, "email", 0, NULL, &now_id), 0);

    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, now_id);
    assert_int_equal(js[0].state, JOB_LEASED);
    assert_int_equal(js[0].attempts, 1);
    assert_int_equal(js[0].lease_until_ms, T0 + lease);
    assert_true(js[0].lease_token > 0);
    assert_memory_equal(js[0].payload.p, "{\"x\":1}", 8);
    tok1 = js[0].lease_token;

    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 0);

    hclock_manual_advance(&f->clock, 1000);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, later);
    assert_int_equal(w_lease_tok(f, OP_JOB_ACK, later, js[0].lease_token + 1, 0, NULL),
                     HR_CONFLICT);
    assert_int_equal(w_lease_tok(f, OP_JOB_ACK, later, js[0].lease_token, 0, NULL), 0);
    assert_int_equal(store_job_get(f->s, later, f->a, &j), HR_NOTFOUND);
    assert_int_equal(w_lease_tok(f, OP_JOB_ACK, later, js[0].lease_token, 0, NULL), HR_CONFLICT);

    /* the first lease runs out (its node died): leased again, the old token is dead */
    hclock_manual_advance(&f->clock, lease);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, now_id);
    assert_int_equal(js[0].attempts, 2);
    assert_int_equal(js[0].retaken, 1); /* a lease taken over: the poison-pill count */
    tok2 = js[0].lease_token;
    assert_true(tok2 > 0 && tok2 != tok1);
    assert_int_equal(w_lease_tok(f, OP_JOB_ACK, now_id, tok1, 0, NULL), HR_CONFLICT);
    assert_int_equal(w_lease_tok(f, OP_JOB_RETRY, now_id, tok1, now(f), "x"), HR_CONFLICT);
    assert_int_equal(w_lease_tok(f, OP_JOB_DEAD, now_id, tok1, 0, "x"), HR_CONFLICT);
    assert_int_equal(w_lease_tok(f, OP_JOB_RELEASE, now_id, tok1, 0, NULL), HR_CONFLICT);

    assert_int_equal(w_lease_tok(f, OP_JOB_RETRY, now_id, tok2, now(f) + 5000, "smtp 451"), 0);
    assert_int_equal(store_job_get(f->s, now_id, f->a, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.run_at_ms, now(f) + 5000);
    assert_int_equal(j.lease_token, 0);
    assert_int_equal(j.lease_until_ms, 0);
    assert_int_equal(j.attempts, 2);
    assert_memory_equal(j.last_error.p, "smtp 451", 9);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 0);
    hclock_manual_advance(&f->clock, 5000);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].attempts, 3);
    assert_int_equal(js[0].retaken, 0); /* a retry is not a takeover, and ends a run of them */

    assert_int_equal(w_lease_tok(f, OP_JOB_RELEASE, now_id, js[0].lease_token, 0, NULL), 0);
    assert_int_equal(store_job_get(f->s, now_id, f->a, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.attempts, 2);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);

    /* defer: back to queued for later, the attempt not counted, last_error kept; a
     * stale token changes nothing */
    assert_int_equal(w_lease_tok(f, OP_JOB_DEFER, now_id, js[0].lease_token + 1, now(f) + 3000,
                                 NULL),
                     HR_CONFLICT);
    assert_int_equal(w_lease_tok(f, OP_JOB_DEFER, now_id, js[0].lease_token, now(f) + 3000, NULL),
                     0);
    assert_int_equal(store_job_get(f->s, now_id, f->a, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.attempts, 2);
    assert_int_equal(j.run_at_ms, now(f) + 3000);
    assert_int_equal(j.lease_token, 0);
    assert_int_equal(j.lease_until_ms, 0);
    assert_int_equal(j.last_error.len, 8);
    assert_memory_equal(j.last_error.p, "smtp 451", 8);
    assert_int_equal(w_lease_tok(f, OP_JOB_DEFER, now_id, js[0].lease_token, now(f), NULL),
                     HR_CONFLICT);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 0);
    hclock_manual_advance(&f->clock, 3000);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].attempts, 3);

    /* an error text that is not UTF-8 (a provider's raw bytes) is stored, cleaned */
    assert_int_equal(w_lease_tok(f, OP_JOB_DEAD, now_id, js[0].lease_token, 0,
                                 "bounced \xff\xfe caf\xc3\xa9"),
                     0);
    assert_int_equal(store_job_get(f->s, now_id, f->a, &j), 0);
    assert_int_equal(j.state, JOB_DEAD);
    assert_string_equal(j.last_error.p, "bounced ?? caf\xc3\xa9");
    hclock_manual_advance(&f->clock, 10 * lease);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(count_of(f, "email", JOB_DEAD), 1);
    assert_int_equal(store_job_list(f->s, JOB_DEAD, 10, f->a, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, now_id);
}

/* test_job_lease_max_repeat: the shared lease scenario (lease_scenario.h) on this
 * backend */
static void test_job_lease_max_repeat(void **state)
{
    struct fx *f = *state;
    lease_scenario(f->s, &f->clock, f->a, T0);
}

/* test_job_extend: the shared renewal scenario (lease_scenario.h) on this backend */
static void test_job_extend(void **state)
{
    struct fx *f = *state;
    extend_scenario(f->s, &f->clock, f->a, T0);
}

/* test_job_ack_many: the shared one-statement ack scenario (lease_scenario.h) */
static void test_job_ack_many(void **state)
{
    struct fx *f = *state;
    assert_true(store_has_job_ack_many(f->s));
    ack_many_scenario(f->s, &f->clock, f->a, T0);
}

static void test_job_lease_order_and_kinds(void **state)
{
    struct fx *f = *state;
    static const char *const only_sms[] = {"sms", NULL};
    static const char *const both[] = {"push", "sms", NULL};
    static const char *const none[] = {NULL};
    struct job *js;
    size_t n;
    int64_t e1, e2, s1, s2, p1;

    assert_int_equal(w_insert(f, "email", T0 - 10, NULL, &e1), 0);
    assert_int_equal(w_insert(f, "sms", T0 - 30, NULL, &s1), 0);
    assert_int_equal(w_insert(f, "email", T0 - 30, NULL, &e2), 0);
    assert_int_equal(w_insert(f, "sms", T0 - 5, NULL, &s2), 0);
    assert_int_equal(w_insert(f, "push", T0 - 20, NULL, &p1), 0);

    assert_int_equal(w_lease(f, 1000, 10, none, &js, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(w_lease(f, 1000, 0, NULL, &js, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(w_lease(f, 1000, 10, only_sms, &js, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(js[0].id, s1);
    assert_int_equal(js[1].id, s2);
    assert_true(js[0].lease_token != js[1].lease_token);

    hclock_manual_advance(&f->clock, 1000);
    assert_int_equal(w_lease(f, 1000, 3, NULL, &js, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(js[0].id, s1);
    assert_int_equal(js[1].id, e2);
    assert_int_equal(js[2].id, p1);
    assert_int_equal(js[0].attempts, 2);

    assert_int_equal(w_lease(f, 1000, 10, both, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, s2);
    assert_int_equal(w_lease(f, 1000, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, e1);
    assert_int_equal(count_of(f, "email", JOB_LEASED), 2);
    assert_int_equal(count_of(f, "sms", JOB_LEASED), 2);
    assert_int_equal(w_lease(f, 0, 10, NULL, &js, &n), HR_INVAL);
}

static void test_job_counts_and_next_run_at(void **state)
{
    struct fx *f = *state;
    struct job_count *c;
    struct job *js;
    size_t n;
    int64_t at, a_id, b_id;

    assert_int_equal(store_job_counts(f->s, f->a, &c, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_job_next_run_at(f->s, true, &at), HR_NOTFOUND);
    assert_int_equal(store_job_next_run_at(f->s, false, &at), HR_NOTFOUND);
    assert_int_equal(w_insert(f, "email", T0 + 10000, NULL, &a_id), 0);
    assert_int_equal(w_insert(f, "sms", T0 + 5000, NULL, &b_id), 0);
    assert_int_equal(w_insert(f, "sms", T0 + 7000, NULL, NULL), 0);
    assert_int_equal(store_job_next_run_at(f->s, true, &at), 0);
    assert_int_equal(at, T0 + 5000);

    hclock_manual_advance(&f->clock, 5000);
    assert_int_equal(w_lease(f, 1000, 1, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, b_id);
    assert_int_equal(store_job_next_run_at(f->s, false, &at), 0);
    assert_int_equal(at, T0 + 7000); /* the queued ones only */
    assert_int_equal(store_job_next_run_at(f->s, true, &at), 0);
    assert_int_equal(at, T0 + 6000);
    assert_int_equal(w_lease_tok(f, OP_JOB_DEAD, b_id, js[0].lease_token, 0, "no"), 0);
    assert_int_equal(store_job_next_run_at(f->s, true, &at), 0);
    assert_int_equal(at, T0 + 7000);

    assert_int_equal(store_job_counts(f->s, f->a, &c, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(c[0].kind, "email");
    assert_int_equal(c[0].state, JOB_QUEUED);
    assert_string_equal(c[1].kind, "sms");
    assert_int_equal(c[1].state, JOB_QUEUED);
    assert_string_equal(c[2].kind, "sms");
    assert_int_equal(c[2].state, JOB_DEAD);
}

/* ---- SKIP LOCKED: two nodes leasing at once never get the same job ------------------ */

#define SKIP_JOBS 300

struct leaser {
    struct store *s;
    struct hclock *clock;
    int64_t *seen;     /* job id -> times leased, indexed by id - first */
    int64_t first;
    atomic_int *dups;
    int got;
};

static void *lease_thread(void *p)
{
    struct leaser *l = p;
    struct arena *a = arena_new(4096);
    int empty = 0;
    while (empty < 3) {
        struct op o = {.kind = OP_JOB_LEASE, .now = hclock_now(l->clock), .lease_ms = 600000,
                       .max = 3, .a = a};
        struct herr err;
        if (store_write(l->s, run_op, &o, &err) != 0) {
            atomic_fetch_add(l->dups, 1000);
            break;
        }
        empty = o.n == 0 ? empty + 1 : 0;
        for (size_t i = 0; i < o.n; i++) {
            int64_t k = o.jobs[i].id - l->first;
            if (k < 0 || k >= SKIP_JOBS || __atomic_add_fetch(&l->seen[k], 1, __ATOMIC_SEQ_CST) != 1)
                atomic_fetch_add(l->dups, 1);
            l->got++;
        }
        arena_reset(a);
    }
    arena_free(a);
    return NULL;
}

static void test_skip_locked_two_nodes(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    struct herr err;
    int64_t first = 0, id;
    int64_t *seen = calloc(SKIP_JOBS, sizeof *seen);
    atomic_int dups = 0;
    struct leaser l[4];
    pthread_t th[4];
    int total = 0;

    assert_non_null(seen);
    assert_int_equal(store_open(f->dsn, &f->clock.base, &s2, &err), 0);
    for (int i = 0; i < SKIP_JOBS; i++) {
        assert_int_equal(w_insert(f, "email", T0 - 1, NULL, &id), 0);
        if (i == 0)
            first = id;
        assert_int_equal(id, first + i);
    }
    for (int i = 0; i < 4; i++) {
        l[i] = (struct leaser){i % 2 ? s2 : f->s, &f->clock.base, seen, first, &dups, 0};
        assert_int_equal(pthread_create(&th[i], NULL, lease_thread, &l[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += l[i].got;
    }
    assert_int_equal(atomic_load(&dups), 0);
    assert_int_equal(total, SKIP_JOBS);
    assert_true(l[0].got + l[2].got > 0 && l[1].got + l[3].got > 0); /* both nodes worked */
    assert_int_equal(count_of(f, "email", JOB_LEASED), SKIP_JOBS);
    store_close(s2);
    free(seen);
}

/* ---- documents ---------------------------------------------------------------------- */

static void test_docs(void **state)
{
    struct fx *f = *state;
    struct doc_rec d, *list;
    struct op del = {.kind = OP_DOC_DELETE, .key = "profiles", .error = STR_LIT("u2")};
    size_t n;
    int64_t v;

    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("u1"), f->a, &d), HR_NOTFOUND);
    assert_int_equal(w_doc_put(f->s, "profiles", "u1", "{\"a\":1}", T0, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(w_doc_put(f->s, "profiles", "u1", "{\"a\":2}", T0 + 5, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("u1"), f->a, &d), 0);
    assert_int_equal(d.version, 2);
    assert_int_equal(d.created_ms, T0);
    assert_int_equal(d.updated_ms, T0 + 5);
    assert_string_equal(d.body.p, "{\"a\":2}");
    assert_true(d.coll.len == 8 && d.id.len == 2);

    assert_int_equal(w_doc_put(f->s, "profiles", "u2", "{}", T0, NULL), 0);
    assert_int_equal(w_doc_put(f->s, "profiles", "x9", "{}", T0, NULL), 0);
    assert_int_equal(w_doc_put(f->s, "profiles", "u10", "{}", T0, NULL), 0);
    assert_int_equal(w_doc_put(f->s, "profiles", "U0", "{}", T0, NULL), 0);
    assert_int_equal(w_doc_put(f->s, "groups", "u1", "{}", T0, NULL), 0);
    assert_int_equal(store_doc_list(f->s, "profiles", STR_NULL, STR_NULL, 100, f->a, &list, &n),
                     0);
    assert_int_equal(n, 5); /* byte order: U0 u1 u10 u2 x9 */
    assert_string_equal(list[0].id.p, "U0");
    assert_string_equal(list[1].id.p, "u1");
    assert_string_equal(list[2].id.p, "u10");
    assert_string_equal(list[3].id.p, "u2");
    assert_int_equal(store_doc_list(f->s, "profiles", STR_LIT("u"), STR_LIT("u1"), 100, f->a,
                                    &list, &n),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id.p, "u10");
    assert_string_equal(list[1].id.p, "u2");
    assert_int_equal(store_doc_list(f->s, "profiles", STR_NULL, STR_NULL, 2, f->a, &list, &n), 0);
    assert_int_equal(n, 2);

    assert_int_equal(do_op(f->s, &del), 0);
    assert_int_equal(do_op(f->s, &del), HR_NOTFOUND);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("u2"), f->a, &d), HR_NOTFOUND);
    assert_int_equal(store_doc_get(f->s, "", STR_LIT("u2"), f->a, &d), HR_INVAL);
}

/* read-modify-write from 8 threads on two nodes: no update is lost, and the document
 * is created once even though every thread may find it absent */
#define RMW_THREADS 8
#define RMW_ROUNDS 25

struct rmw_arg {
    struct store *s;
    atomic_int *failures;
    atomic_int *created;
};

static int rmw_fn(struct store_txn *t, void *arg)
{
    struct rmw_arg *ra = arg;
    struct arena *a = arena_new(1024);
    struct doc_rec d;
    char body[32];
    long long v = 0;
    int rc = store_doc_get_txn(t, "counters", STR_LIT("c"), a, &d);
    if (rc == HR_OK) {
        v = strtoll(d.body.p, NULL, 10);
    } else if (rc == HR_NOTFOUND) {
        atomic_fetch_add(ra->created, 1);
        rc = HR_OK;
    }
    if (rc == HR_OK) {
        snprintf(body, sizeof body, "%lld", v + 1);
        rc = store_doc_put(t, "counters", STR_LIT("c"), str_c(body), T0, NULL);
    }
    arena_free(a);
    return rc;
}

static void *rmw_thread(void *p)
{
    struct rmw_arg *ra = p;
    for (int i = 0; i < RMW_ROUNDS; i++) {
        struct herr err;
        if (store_write(ra->s, rmw_fn, ra, &err) != 0)
            atomic_fetch_add(ra->failures, 1);
    }
    return NULL;
}

static void test_doc_rmw_concurrent(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    struct herr err;
    atomic_int failures = 0, created = 0;
    struct rmw_arg ra[2] = {{f->s, &failures, &created}, {NULL, &failures, &created}};
    pthread_t th[RMW_THREADS];
    struct doc_rec d;

    assert_int_equal(store_open(f->dsn, &f->clock.base, &s2, &err), 0);
    ra[1].s = s2;
    for (int i = 0; i < RMW_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, rmw_thread, &ra[i % 2]), 0);
    for (int i = 0; i < RMW_THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(atomic_load(&created), 1);
    assert_int_equal(store_doc_get(f->s, "counters", STR_LIT("c"), f->a, &d), 0);
    assert_int_equal(strtoll(d.body.p, NULL, 10), RMW_THREADS * RMW_ROUNDS);
    assert_int_equal(d.version, RMW_THREADS * RMW_ROUNDS);
    store_close(s2);
}

/* ---- events and the catalog --------------------------------------------------------- */

static void test_events_dedup_window(void **state)
{
    struct fx *f = *state;
    const int64_t win = 60000;
    struct event_rec e;
    int64_t id1, id2, id3, id4;

    assert_int_equal(w_event(f->s, 7, "m-1", T0, win, &id1), 0);
    assert_true(id1 > 0);
    assert_int_equal(w_event(f->s, 7, "m-1", T0 + win, win, &id2), HR_CONFLICT); /* edge */
    assert_int_equal(id2, id1);
    assert_int_equal(w_event(f->s, 8, "m-1", T0 + 1, win, &id3), 0); /* another source */
    assert_true(id3 > id1);
    assert_int_equal(w_event(f->s, 7, "m-1", T0 + win + 1, win, &id4), 0); /* window over */
    assert_true(id4 > id3);
    assert_int_equal(w_event(f->s, 7, "m-1", T0 + win + 2, win, &id2), HR_CONFLICT);
    assert_int_equal(id2, id4);

    assert_int_equal(store_event_get(f->s, id4, f->a, &e), 0);
    assert_int_equal(e.id, id4);
    assert_int_equal(e.source_id, 7);
    assert_string_equal(e.message_id.p, "m-1");
    assert_string_equal(e.type.p, "track");
    assert_string_equal(e.user_id.p, "u1");
    assert_string_equal(e.body.p, "{\"event\":\"E\"}");
    assert_int_equal(e.received_ms, T0 + win + 1);
    assert_int_equal(store_event_get(f->s, id4 + 100, f->a, &e), HR_NOTFOUND);
    assert_int_equal(w_event(f->s, 7, "", T0, win, &id2), HR_INVAL);
}

struct many_arg {
    size_t n; /* 0: 6 */
    struct event_rec e[6];
    int64_t ids[6];
    int rcs[6];
    int rc;
};

static int many_tx(struct store_txn *t, void *p)
{
    struct many_arg *m = p;
    m->rc = store_event_insert_many(t, m->e, m->n ? m->n : 6, 60000, m->ids, m->rcs);
    return m->rc;
}

/* many events in one call: in order, a repeat inside the call and one stored before are
 * duplicates of their first, bytes PostgreSQL refuses in text are replaced */
static void test_events_insert_many(void **state)
{
    struct fx *f = *state;
    struct many_arg m = {0};
    const char *mids[6] = {"b-1", "b-2", "pre", "b-1", "b-3", "b-2"};
    struct event_rec e;
    struct herr err;
    int64_t pre;

    assert_int_equal(w_event(f->s, 7, "pre", T0, 60000, &pre), 0);
    for (int i = 0; i < 6; i++)
        m.e[i] = (struct event_rec){.source_id = 7, .message_id = str_c(mids[i]),
                                    .type = STR_LIT("track"), .user_id = STR_LIT("u1"),
                                    .body = STR_LIT("{\"event\":\"E\"}"), .received_ms = T0 + 5};
    m.e[4].user_id = (struct str){"u\xff\0x", 4};
    m.e[1].user_id = str_c(NULL); /* an anonymous event: no userId */
    m.e[4].body = STR_LIT("{\"event\":\"F\"}");
    assert_int_equal(store_write(f->s, many_tx, &m, &err), 0);
    assert_int_equal(m.rcs[0], 0);
    assert_int_equal(m.rcs[1], 0);
    assert_int_equal(m.rcs[2], HR_CONFLICT);
    assert_int_equal(m.ids[2], pre);
    assert_int_equal(m.rcs[3], HR_CONFLICT);
    assert_int_equal(m.ids[3], m.ids[0]);
    assert_int_equal(m.rcs[4], 0);
    assert_int_equal(m.rcs[5], HR_CONFLICT);
    assert_int_equal(m.ids[5], m.ids[1]);
    assert_true(pre < m.ids[0] && m.ids[0] < m.ids[1] && m.ids[1] < m.ids[4]);
    assert_int_equal(store_event_get(f->s, m.ids[1], f->a, &e), 0);
    assert_int_equal(e.user_id.len, 0);
    assert_int_equal(admin_i64(f, "SELECT count(*) FROM events"), 4);
    assert_int_equal(store_event_get(f->s, m.ids[4], f->a, &e), 0);
    assert_string_equal(e.message_id.p, "b-3");
    assert_int_equal(e.user_id.len, 4);
    assert_memory_equal(e.user_id.p, "u??x", 4);
    assert_string_equal(e.body.p, "{\"event\":\"F\"}");
    assert_int_equal(e.received_ms, T0 + 5);
    assert_int_equal(e.source_id, 7);
    /* the whole call again: all six are duplicates of the stored ones */
    assert_int_equal(store_write(f->s, many_tx, &m, &err), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(m.rcs[i], HR_CONFLICT);
    assert_true(m.ids[0] > 0 && m.ids[3] == m.ids[0] && m.ids[5] == m.ids[1]);
    assert_int_equal(admin_i64(f, "SELECT count(*) FROM events"), 4);
    /* messageIds that are one once PostgreSQL's text has them ('?' for a bad byte) */
    m.n = 2;
    m.e[0].message_id = (struct str){"x\xff", 2};
    m.e[1].message_id = (struct str){"x\xfe", 2};
    assert_int_equal(store_write(f->s, many_tx, &m, &err), 0);
    assert_int_equal(m.rcs[0], 0);
    assert_int_equal(m.rcs[1], HR_CONFLICT);
    assert_int_equal(m.ids[1], m.ids[0]);
    /* one bad event refuses the call */
    m.e[1].message_id = STR_LIT("");
    assert_int_equal(store_write(f->s, many_tx, &m, &err), HR_INVAL);
}

/* ---- shared writes: grouped while the pool is busy -------------------------------- */

struct sh_arg {
    struct store *s;
    int i;
    int fail;  /* this one's fn answers HR_CONFLICT after its insert */
    int runs;  /* times its fn ran */
    int rc;
};

static int sh_tx(struct store_txn *t, void *p)
{
    struct sh_arg *a = p;
    char id[16];
    int rc;
    a->runs++;
    snprintf(id, sizeof id, "g-%d", a->i);
    rc = store_doc_create(t, "shared", str_c(id), STR_LIT("{}"), 1);
    return rc < 0 ? rc : a->i == a->fail ? HR_CONFLICT : HR_OK;
}

static void *sh_thread(void *p)
{
    struct sh_arg *a = p;
    struct herr err;
    a->rc = store_write_shared(a->s, sh_tx, a, &err);
    return NULL;
}

struct sh_hold {
    struct store *s;
    long ms;
    atomic_int inside; /* the holder has the connection */
};

static int sh_hold_tx(struct store_txn *t, void *p)
{
    struct sh_hold *h = p;
    (void)t;
    atomic_store(&h->inside, 1);
    sleep_ms(h->ms);
    return HR_OK;
}

static void *sh_hold_thread(void *p)
{
    struct sh_hold *h = p;
    struct herr err;
    store_write(h->s, sh_hold_tx, h, &err);
    return NULL;
}

/* ten shared writes while the one pooled connection is lent: they commit together; with
 * one fn failing, each runs again alone and only that one fails */
static void test_write_shared(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct store_stats st0, st1;
    struct herr err;
    struct sh_arg a[10];
    struct sh_hold h;
    pthread_t th[10], hold;

    setenv("HERALD_PG_POOL", "1", 1);
    assert_int_equal(store_open(f->dsn, &f->clock.base, &s, &err), 0);
    unsetenv("HERALD_PG_POOL");
    h.s = s;
    h.ms = 300;
    for (int round = 0; round < 2; round++) {
        int fail = round == 0 ? -1 : 3;
        store_stats(s, &st0);
        atomic_store(&h.inside, 0);
        assert_int_equal(pthread_create(&hold, NULL, sh_hold_thread, &h), 0);
        while (!atomic_load(&h.inside))
            sleep_ms(1);
        for (int i = 0; i < 10; i++) {
            a[i] = (struct sh_arg){s, round * 10 + i, round * 10 + fail, 0, 99};
            if (fail < 0)
                a[i].fail = -1;
            assert_int_equal(pthread_create(&th[i], NULL, sh_thread, &a[i]), 0);
        }
        for (int i = 0; i < 10; i++)
            pthread_join(th[i], NULL);
        pthread_join(hold, NULL);
        store_stats(s, &st1);
        for (int i = 0; i < 10; i++)
            assert_int_equal(a[i].rc, round == 1 && i == 3 ? HR_CONFLICT : HR_OK);
        if (round == 0) { /* the holder's commit and the groups: 10 writes, fewer commits */
            assert_true(st1.commits - st0.commits <= 5);
            assert_int_equal(st1.txns - st0.txns, 11);
            assert_int_equal(admin_i64(f, "SELECT count(*) FROM docs WHERE coll = 'shared'"), 10);
        } else { /* a failed group: the failing one ran again alone, its insert undone */
            assert_int_equal(a[3].runs, 2);
            for (int i = 0; i < 10; i++)
                assert_true(a[i].runs == 1 || a[i].runs == 2);
            assert_int_equal(admin_i64(f, "SELECT count(*) FROM docs WHERE coll = 'shared'"), 19);
            assert_int_equal(admin_i64(f, "SELECT count(*) FROM docs WHERE id = 'g-13'"), 0);
        }
    }
    store_close(s);
}

struct ev_arg {
    struct store *s;
    atomic_int *stored;
    atomic_int *dups;
    atomic_int *errors;
};

static void *event_thread(void *p)
{
    struct ev_arg *ea = p;
    for (int i = 0; i < 20; i++) {
        char mid[32];
        int64_t id;
        int rc;
        snprintf(mid, sizeof mid, "dup-%d", i);
        rc = w_event(ea->s, 1, mid, T0 + i, 86400000, &id);
        if (rc == 0)
            atomic_fetch_add(ea->stored, 1);
        else if (rc == HR_CONFLICT && id > 0)
            atomic_fetch_add(ea->dups, 1);
        else
            atomic_fetch_add(ea->errors, 1);
    }
    return NULL;
}

/* the same 20 messageIds sent by 8 threads through two nodes: each is stored once */
static void test_events_dedup_concurrent(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    struct herr err;
    atomic_int stored = 0, dups = 0, errors = 0;
    struct ev_arg ea[2] = {{f->s, &stored, &dups, &errors}, {NULL, &stored, &dups, &errors}};
    pthread_t th[8];

    assert_int_equal(store_open(f->dsn, &f->clock.base, &s2, &err), 0);
    ea[1].s = s2;
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, event_thread, &ea[i % 2]), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&errors), 0);
    assert_int_equal(atomic_load(&stored), 20);
    assert_int_equal(atomic_load(&dups), 7 * 20);
    assert_int_equal(admin_i64(f, "SELECT count(*) FROM events"), 20);
    store_close(s2);
}

static void test_catalog(void **state)
{
    struct fx *f = *state;
    struct op o = {.kind = OP_CATALOG};
    struct catalog_rec c, *list;
    size_t n;

    o.error = STR_LIT("track/Order Shipped");
    o.value = STR_LIT("{\"n\":1}");
    o.now = T0 + 10;
    assert_int_equal(do_op(f->s, &o), 0);
    o.value = STR_LIT("{\"n\":2}");
    o.now = T0; /* an older event: first_seen moves back, last_seen stays */
    assert_int_equal(do_op(f->s, &o), 0);
    o.error = STR_LIT("identify");
    assert_int_equal(do_op(f->s, &o), 0);
    o.error = STR_LIT("track/order created");
    assert_int_equal(do_op(f->s, &o), 0);

    assert_int_equal(store_catalog_get(f->s, STR_LIT("track/Order Shipped"), f->a, &c), 0);
    assert_int_equal(c.count, 2);
    assert_int_equal(c.first_seen_ms, T0);
    assert_int_equal(c.last_seen_ms, T0 + 10);
    assert_string_equal(c.sample.p, "{\"n\":2}");
    assert_int_equal(store_catalog_get(f->s, STR_LIT("nope"), f->a, &c), HR_NOTFOUND);

    assert_int_equal(store_catalog_list(f->s, STR_NULL, STR_NULL, 100, f->a, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].name.p, "identify");
    assert_string_equal(list[1].name.p, "track/Order Shipped");
    assert_int_equal(store_catalog_list(f->s, STR_LIT("ORDER"), STR_NULL, 100, f->a, &list, &n),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(store_catalog_list(f->s, STR_LIT("order"), STR_LIT("track/Order Shipped"),
                                        100, f->a, &list, &n),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name.p, "track/order created");
}

struct add_arg {
    const char *name, *sample;
    int64_t first, last, n;
};

static int add_tx(struct store_txn *t, void *varg)
{
    struct add_arg *a = varg;
    return store_catalog_add(t, str_c(a->name), str_c(a->sample), a->first, a->last, a->n);
}

struct create_arg {
    const char *id, *body;
};

static int create_tx(struct store_txn *t, void *varg)
{
    struct create_arg *a = varg;
    return store_doc_create(t, "profiles", str_c(a->id), str_c(a->body), T0);
}

/* doc_create: inserts once; an existing document is left exactly as it is. */
static void test_doc_create(void **state)
{
    struct fx *f = *state;
    struct create_arg a = {"p1", "{\"a\":1}"};
    struct doc_rec d;
    struct herr err;
    herr_clear(&err);
    assert_int_equal(store_write(f->s, create_tx, &a, &err), HR_OK);
    a.body = "{}";
    assert_int_equal(store_write(f->s, create_tx, &a, &err), HR_CONFLICT);
    assert_int_equal(store_doc_get(f->s, "profiles", STR_LIT("p1"), f->a, &d), HR_OK);
    assert_int_equal(d.version, 1);
    assert_string_equal(d.body.p, "{\"a\":1}");
}

/* catalog_add: a whole job's events of one name in one upsert. */
static void test_catalog_add(void **state)
{
    struct fx *f = *state;
    struct add_arg a = {"track/Paid", "{\"n\":3}", T0 + 5, T0 + 7, 3};
    struct catalog_rec c;
    struct herr err;
    herr_clear(&err);
    assert_int_equal(store_write(f->s, add_tx, &a, &err), HR_OK);
    a = (struct add_arg){"track/Paid", "{\"n\":5}", T0, T0 + 3, 2};
    assert_int_equal(store_write(f->s, add_tx, &a, &err), HR_OK);
    assert_int_equal(store_catalog_get(f->s, STR_LIT("track/Paid"), f->a, &c), 0);
    assert_int_equal(c.count, 5);
    assert_int_equal(c.first_seen_ms, T0);
    assert_int_equal(c.last_seen_ms, T0 + 7);
    assert_string_equal(c.sample.p, "{\"n\":5}");
    a.n = 0;
    assert_int_equal(store_write(f->s, add_tx, &a, &err), HR_INVAL);
}

/* ---- catalog counts from several nodes ------------------------------------------------ */

struct hold_arg {
    struct store *s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool added, release, other_done;
    int rc;
};

/* hold_tx: count one track/Hot, then keep the transaction open until released. */
static int hold_tx(struct store_txn *t, void *varg)
{
    struct hold_arg *h = varg;
    int rc = store_catalog_add(t, STR_LIT("track/Hot"), STR_LIT("{\"by\":\"a\"}"), T0, T0, 1);
    pthread_mutex_lock(&h->mu);
    h->added = true;
    pthread_cond_broadcast(&h->cv);
    while (!h->release)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

static void *hold_thread(void *p)
{
    struct hold_arg *h = p;
    struct herr err;
    h->rc = store_write(h->s, hold_tx, h, &err);
    return NULL;
}

struct adder {
    struct store *s;
    struct hold_arg *h; /* told when done, or NULL */
    int rounds, failures;
    const char *sample;
};

static void *adder_thread(void *p)
{
    struct adder *ad = p;
    struct add_arg a = {"track/Hot", ad->sample, T0 + 1, T0 + 1, 2};
    struct herr err;
    for (int i = 0; i < ad->rounds; i++)
        ad->failures += store_write(ad->s, add_tx, &a, &err) != HR_OK;
    if (ad->h) {
        pthread_mutex_lock(&ad->h->mu);
        ad->h->other_done = true;
        pthread_cond_broadcast(&ad->h->cv);
        pthread_mutex_unlock(&ad->h->mu);
    }
    return NULL;
}

#define HOT_THREADS 4
#define HOT_ROUNDS 50

/* Counting one event name never waits for another node's open transaction (each
 * backend adds to its own row: the hot row that every events job of every node updated
 * is gone); counts from several nodes at once are exact; and when a node opens, the rows
 * of backends that are gone are folded into the base row, exactly. */
static void test_catalog_two_nodes(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    struct herr err;
    struct hold_arg h = {.s = f->s};
    struct adder one = {.h = &h, .rounds = 1, .sample = "{\"by\":\"b\"}"}, ad[HOT_THREADS];
    pthread_t th_hold, th_one, th[HOT_THREADS];
    struct catalog_rec c;
    struct timespec dl;
    bool other_first;
    int64_t total = 1 + 2 + 2LL * HOT_THREADS * HOT_ROUNDS;

    assert_int_equal(store_open(f->dsn, &f->clock.base, &s2, &err), 0);
    one.s = s2;
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    assert_int_equal(pthread_create(&th_hold, NULL, hold_thread, &h), 0);
    pthread_mutex_lock(&h.mu);
    while (!h.added)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    /* node 2 counts the same name while node 1's count is uncommitted: it must commit
     * before node 1 is let go (the bound only keeps a regression from hanging) */
    assert_int_equal(pthread_create(&th_one, NULL, adder_thread, &one), 0);
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 60;
    pthread_mutex_lock(&h.mu);
    while (!h.other_done && pthread_cond_timedwait(&h.cv, &h.mu, &dl) == 0) {
    }
    other_first = h.other_done;
    h.release = true;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    pthread_join(th_one, NULL);
    pthread_join(th_hold, NULL);
    assert_true(other_first);
    assert_int_equal(h.rc, HR_OK);
    assert_int_equal(one.failures, 0);

    /* both nodes, several threads each, at once */
    for (int i = 0; i < HOT_THREADS; i++) {
        ad[i] = (struct adder){.s = i % 2 ? s2 : f->s, .rounds = HOT_ROUNDS, .sample = "{}"};
        assert_int_equal(pthread_create(&th[i], NULL, adder_thread, &ad[i]), 0);
    }
    for (int i = 0; i < HOT_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ad[i].failures, 0);
    }
    assert_int_equal(store_catalog_get(s2, STR_LIT("track/Hot"), f->a, &c), 0);
    assert_int_equal(c.count, total);
    assert_int_equal(c.first_seen_ms, T0);
    assert_int_equal(c.last_seen_ms, T0 + 1);

    /* both nodes stop; once their backends are gone, the next open folds their rows */
    store_close(s2);
    store_close(f->s);
    f->s = NULL;
    for (int i = 0; i < 200 && admin_i64(f, "SELECT count(*) FROM pg_stat_activity a "
                                            "JOIN catalog_slots s ON a.pid = s.slot") > 0;
         i++)
        usleep(50 * 1000);
    assert_true(admin_i64(f, "SELECT count(*) FROM catalog_slots") > 1);
    assert_int_equal(store_open(f->dsn, &f->clock.base, &f->s, &err), 0);
    assert_int_equal(admin_i64(f, "SELECT count(*) FROM catalog_slots"), 0);
    assert_int_equal(admin_i64(f, "SELECT count FROM catalog WHERE name = 'track/Hot'"), total);
    assert_int_equal(store_catalog_get(f->s, STR_LIT("track/Hot"), f->a, &c), 0);
    assert_int_equal(c.count, total);
    assert_int_equal(c.first_seen_ms, T0);
    assert_string_equal(c.sample.p, "{}");
    pthread_cond_destroy(&h.cv);
    pthread_mutex_destroy(&h.mu);
}

/* ---- messages and history ------------------------------------------------------------ */

static struct message_rec mkmsg(const char *id, const char *recipient, const char *status,
                                const char *tags, const char *run_id)
{
    struct message_rec m;
    memset(&m, 0, sizeof m);
    m.id = str_c(id);
    m.request_id = str_c(id);
    m.status = str_c(status);
    m.recipient = str_c(recipient);
    m.notification = STR_LIT("nt_1");
    m.event = STR_LIT("order");
    m.trace_id = STR_LIT("tr");
    m.run_id = str_c(run_id);
    m.tags = str_c(tags);
    m.spec = STR_LIT("{\"to\":{}}");
    m.enqueued_ms = T0;
    m.updated_ms = T0;
    return m;
}

static void test_messages(void **state)
{
    struct fx *f = *state;
    struct op o = {.kind = OP_MSG_INSERT};
    struct message_rec m, *list;
    struct message_filter flt;
    struct history_rec *h;
    size_t n;

    o.msg = mkmsg("m1", "alice", "ENQUEUED", "[\"orders\",\"vip\"]", "");
    assert_int_equal(do_op(f->s, &o), 0);
    assert_int_equal(do_op(f->s, &o), HR_CONFLICT);
    o.msg = mkmsg("m2", "bob", "SENT", "[\"orders\"]", "run-1");
    assert_int_equal(do_op(f->s, &o), 0);
    o.msg = mkmsg("m3", "alice", "SENT", "", "run-1");
    assert_int_equal(do_op(f->s, &o), 0);

    o.kind = OP_MSG_UPDATE;
    o.msg = mkmsg("m1", "alice", "UNDELIVERABLE", "[\"orders\",\"vip\"]", "");
    o.msg.error = STR_LIT("550 no such user \xff");
    o.msg.sent_ms = T0 + 9;
    assert_int_equal(do_op(f->s, &o), 0);
    o.msg.id = STR_LIT("m404");
    assert_int_equal(do_op(f->s, &o), HR_NOTFOUND);

    assert_int_equal(store_message_get(f->s, STR_LIT("m1"), f->a, &m), 0);
    assert_string_equal(m.status.p, "UNDELIVERABLE");
    assert_string_equal(m.error.p, "550 no such user ?");
    assert_int_equal(m.sent_ms, T0 + 9);
    assert_string_equal(m.spec.p, "{\"to\":{}}");
    assert_string_equal(m.state.p, "{}");
    assert_int_equal(store_message_get(f->s, STR_LIT("m3"), f->a, &m), 0);
    assert_string_equal(m.tags.p, "[]");
    assert_int_equal(store_message_get(f->s, STR_LIT("nope"), f->a, &m), HR_NOTFOUND);

    memset(&flt, 0, sizeof flt);
    flt.limit = 10;
    assert_int_equal(store_message_list(f->s, &flt, f->a, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].id.p, "m3"); /* newest first */
    assert_string_equal(list[2].id.p, "m1");
    flt.recipient = STR_LIT("alice");
    assert_int_equal(store_message_list(f->s, &flt, f->a, &list, &n), 0);
    assert_int_equal(n, 2);
    flt.status = STR_LIT("SENT");
    assert_int_equal(store_message_list(f->s, &flt, f->a, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id.p, "m3");
    memset(&flt, 0, sizeof flt);
    flt.limit = 10;
    flt.tag = STR_LIT("orders");
    assert_int_equal(store_message_list(f->s, &flt, f->a, &list, &n), 0);
    assert_int_equal(n, 2);
    flt.tag = STR_LIT("vip");
    assert_int_equal(store_message_list(f->s, &flt, f->a, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id.p, "m1");
    flt.tag = STR_LIT("ord"); /* a whole element, not a substring */
    assert_int_equal(store_message_list(f->s, &flt, f->a, &list, &n), 0);
    assert_int_equal(n, 0);
    /* several values joined by commas: any of them; one message id; enqueued after */
    {
        static const struct {
            const char *status, *tag, *id;
            int64_t after;
            size_t n;
            const char *first; /* the newest match, or NULL */
        } cases[] = {
            {"", "nope,vip", "", 0, 1, "m1"},
            {"", "vip,orders", "", 0, 2, "m2"},
            {"SENT,UNDELIVERABLE", "", "", 0, 3, "m3"},
            {"ENQUEUED,CANCELED", "", "", 0, 0, NULL},
            {"", "", "m2", 0, 1, "m2"},
            {"", "", "", T0, 0, NULL}, /* strictly after */
            {"", "", "", T0 - 1, 3, "m3"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            memset(&flt, 0, sizeof flt);
            flt.limit = 10;
            flt.status = str_c(cases[i].status);
            flt.tag = str_c(cases[i].tag);
            flt.id = str_c(cases[i].id);
            flt.enqueued_after_ms = cases[i].after;
            assert_int_equal(store_message_list(f->s, &flt, f->a, &list, &n), 0);
            assert_int_equal(n, cases[i].n);
            if (cases[i].first)
                assert_string_equal(list[0].id.p, cases[i].first);
        }
        flt.status = STR_LIT("SENT,UNDELIVERABLE");
        flt.recipient = STR_LIT("alice"); /* with the indexed recipient leading */
        flt.enqueued_after_ms = 0;
        assert_int_equal(store_message_list(f->s, &flt, f->a, &list, &n), 0);
        assert_int_equal(n, 2);
    }
    memset(&flt, 0, sizeof flt);
    flt.limit = 10;
    flt.run_id = STR_LIT("run-1");
    assert_int_equal(store_message_list(f->s, &flt, f->a, &list, &n), 0);
    assert_int_equal(n, 2);
    memset(&flt, 0, sizeof flt);
    flt.limit = 1;
    flt.before_id = STR_LIT("m3"); /* cursor */
    assert_int_equal(store_message_list(f->s, &flt, f->a, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id.p, "m2");
    flt.limit = 0;
    assert_int_equal(store_message_list(f->s, &flt, f->a, &list, &n), HR_INVAL);

    o.kind = OP_HIST;
    o.error = STR_LIT("m1");
    o.key = "ENQUEUED";
    o.value = STR_LIT("{\"type\":\"ENQUEUED\"}");
    o.now = T0;
    assert_int_equal(do_op(f->s, &o), 0);
    o.key = "SENT";
    o.value = STR_LIT("{\"type\":\"SENT\"}");
    o.now = T0 + 1;
    assert_int_equal(do_op(f->s, &o), 0);
    assert_int_equal(store_history_list(f->s, STR_LIT("m1"), STR_NULL, f->a, &h, &n), 0);
    assert_int_equal(n, 2);
    assert_true(h[0].seq < h[1].seq);
    assert_string_equal(h[0].type.p, "ENQUEUED");
    assert_int_equal(h[1].ts, T0 + 1);
    assert_string_equal(h[1].body.p, "{\"type\":\"SENT\"}");
    assert_int_equal(store_history_list(f->s, STR_LIT("m1"), STR_LIT("SENT"), f->a, &h, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_history_list(f->s, STR_LIT("m2"), STR_NULL, f->a, &h, &n), 0);
    assert_int_equal(n, 0);
}

/* message_get_txn locks the row: concurrent read-modify-writes of one message from two
 * nodes lose nothing */
static int msg_rmw_fn(struct store_txn *t, void *arg)
{
    struct arena *a = arena_new(1024);
    struct message_rec m;
    int rc = store_message_get_txn(t, STR_LIT("mx"), a, &m);
    (void)arg;
    if (rc == HR_OK) {
        m.sent_ms++;
        rc = store_message_update(t, &m);
    }
    arena_free(a);
    return rc;
}

static void *msg_rmw_thread(void *p)
{
    struct rmw_arg *ra = p;
    for (int i = 0; i < RMW_ROUNDS; i++) {
        struct herr err;
        if (store_write(ra->s, msg_rmw_fn, NULL, &err) != 0)
            atomic_fetch_add(ra->failures, 1);
    }
    return NULL;
}

static void test_message_rmw_concurrent(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    struct herr err;
    atomic_int failures = 0, created = 0;
    struct rmw_arg ra[2] = {{f->s, &failures, &created}, {NULL, &failures, &created}};
    struct op o = {.kind = OP_MSG_INSERT};
    pthread_t th[RMW_THREADS];
    struct message_rec m;

    o.msg = mkmsg("mx", "alice", "ENQUEUED", "", "");
    assert_int_equal(do_op(f->s, &o), 0);
    assert_int_equal(store_open(f->dsn, &f->clock.base, &s2, &err), 0);
    ra[1].s = s2;
    for (int i = 0; i < RMW_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, msg_rmw_thread, &ra[i % 2]), 0);
    for (int i = 0; i < RMW_THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(store_message_get(f->s, STR_LIT("mx"), f->a, &m), 0);
    assert_int_equal(m.sent_ms, RMW_THREADS * RMW_ROUNDS);
    store_close(s2);
}

/* ---- the job listener ------------------------------------------------------------------- */

struct listen {
    struct store *s;
    atomic_int calls;
    int64_t watch_id;
    atomic_int seen;
};

static void on_jobs(void *arg)
{
    struct listen *l = arg;
    struct arena *a = arena_new(1024);
    struct job j;
    atomic_fetch_add(&l->calls, 1);
    if (l->watch_id && store_job_get(l->s, l->watch_id, a, &j) == 0)
        atomic_fetch_add(&l->seen, 1);
    arena_free(a);
}

static void test_on_jobs_listener(void **state)
{
    struct fx *f = *state;
    struct listen l = {.s = f->s};
    struct op o = {.kind = OP_JOB_INSERT, .now = T0, .fail_with = HR_AGAIN};
    struct job *js;
    size_t n;
    int64_t id;

    store_set_job_listener(f->s, on_jobs, &l);
    assert_int_equal(w_meta_set(f, "k", STR_LIT("v")), 0);
    assert_int_equal(atomic_load(&l.calls), 0);
    o.spec.kind = "email";
    assert_int_equal(do_op(f->s, &o), HR_AGAIN); /* inserted, then rolled back */
    assert_int_equal(atomic_load(&l.calls), 0);

    assert_int_equal(w_insert(f, "email", 0, NULL, &id), 0);
    l.watch_id = id; /* not read by the listener before this point */
    assert_int_equal(atomic_load(&l.calls), 1);
    assert_int_equal(w_insert(f, "email", 0, "dd", NULL), 0);
    assert_int_equal(atomic_load(&l.calls), 2);
    assert_int_equal(atomic_load(&l.seen), 1); /* the listener ran after the commit */
    assert_int_equal(w_insert(f, "email", 0, "dd", NULL), HR_CONFLICT);
    assert_int_equal(atomic_load(&l.calls), 2);

    assert_int_equal(w_lease(f, 1000, 1, NULL, &js, &n), 0);
    assert_int_equal(atomic_load(&l.calls), 2);
    assert_int_equal(w_lease_tok(f, OP_JOB_RETRY, js[0].id, js[0].lease_token, T0, "e"), 0);
    assert_int_equal(atomic_load(&l.calls), 3);
    assert_int_equal(w_lease(f, 1000, 1, NULL, &js, &n), 0);
    assert_int_equal(w_lease_tok(f, OP_JOB_RELEASE, js[0].id, js[0].lease_token, 0, NULL), 0);
    assert_int_equal(atomic_load(&l.calls), 4);
    assert_int_equal(w_lease(f, 1000, 1, NULL, &js, &n), 0);
    assert_int_equal(w_lease_tok(f, OP_JOB_ACK, js[0].id, js[0].lease_token, 0, NULL), 0);
    assert_int_equal(atomic_load(&l.calls), 4);

    store_set_job_listener(f->s, NULL, NULL);
    assert_int_equal(w_insert(f, "email", 0, NULL, NULL), 0);
    assert_int_equal(atomic_load(&l.calls), 4);
}

/* NOTIFY: a job committed through one store wakes the listener of another (another
 * node), without polling; our own notifications are not echoed back */
static void test_notify_wakes_other_node(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    struct herr err;
    struct listen mine = {.s = f->s}, other = {0};
    int waited = 0, inserts = 0;
    int64_t id;

    assert_int_equal(store_open(f->dsn, &f->clock.base, &s2, &err), 0);
    other.s = s2;
    store_set_job_listener(s2, on_jobs, &other);
    store_set_job_listener(f->s, on_jobs, &mine);
    /* the listener thread LISTENs soon after open: insert until a notification lands */
    while (atomic_load(&other.calls) == 0 && waited < 10000) {
        assert_int_equal(w_insert(f, "email", 0, NULL, &id), 0);
        inserts++;
        for (int i = 0; i < 50 && atomic_load(&other.calls) == 0; i++) {
            sleep_ms(10);
            waited += 10;
        }
    }
    assert_true(atomic_load(&other.calls) >= 1);
    sleep_ms(300);
    assert_int_equal(atomic_load(&mine.calls), inserts); /* its commits, not the echoes */
    store_set_job_listener(s2, NULL, NULL);
    store_set_job_listener(f->s, NULL, NULL);
    store_close(s2);
}

/* the server drops every connection (a restart, a failover): reads, writes and the
 * listener reconnect on their own */
static void test_reconnect(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    struct listen other = {0};
    struct herr err;
    struct str v;
    int waited = 0;

    assert_int_equal(store_open(f->dsn, &f->clock.base, &s2, &err), 0);
    other.s = s2;
    store_set_job_listener(s2, on_jobs, &other);
    assert_int_equal(w_meta_set(f, "a", STR_LIT("1")), 0);
    assert_int_equal(store_meta_get(f->s, "a", f->a, &v), 0);
    assert_int_equal(store_ping(s2), 0);
    sleep_ms(200);
    /* every connection of the two stores, the listeners' included */
    assert_true(admin_i64(f, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()") >=
                4);
    sleep_ms(100);
    assert_int_equal(store_meta_get(f->s, "a", f->a, &v), 0); /* a read */
    assert_int_equal(w_meta_set(f, "b", STR_LIT("2")), 0);    /* a write */
    assert_int_equal(store_ping(s2), 0);
    /* the listener of s2 came back: after its reconnect it wakes once, and new jobs
     * reach it again */
    while (atomic_load(&other.calls) == 0 && waited < 10000) {
        assert_int_equal(w_insert(f, "email", 0, NULL, NULL), 0);
        for (int i = 0; i < 50 && atomic_load(&other.calls) == 0; i++) {
            sleep_ms(10);
            waited += 10;
        }
    }
    assert_true(atomic_load(&other.calls) >= 1);
    store_set_job_listener(s2, NULL, NULL);
    store_close(s2);
}

/* doc_create_many and doc_put: the shared scenarios (docs_scenario.h) on this backend */
static void test_doc_create_many(void **state)
{
    struct fx *f = *state;
    docs_scenario(f->s, f->a);
    doc_put_scenario(f->s, f->a);
}

/* a message's history: the shared scenario (history_scenario.h) on this backend */
static void test_history(void **state)
{
    struct fx *f = *state;
    history_scenario(f->s, f->a);
}

/* lists: the shared lists scenario (lists_scenario.h) on this backend */
static void test_lists(void **state)
{
    struct fx *f = *state;
    lists_scenario(f->s, f->a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_dsn),
        cmocka_unit_test_setup_teardown(test_migrations_applied_once, setup, teardown),
        cmocka_unit_test(test_migrations_concurrent_open),
        cmocka_unit_test_setup_teardown(test_meta_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_fn_leaves_no_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_sub_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_plan_setting_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_write_refused, setup, teardown),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test_setup_teardown(test_job_insert_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_lease_order_and_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_lease_max_repeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_extend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_ack_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_counts_and_next_run_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_locked_two_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_docs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_create_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_rmw_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_dedup_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_insert_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_dedup_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog_two_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_rmw_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_jobs_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_wakes_other_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
    };
    const char *base = getenv("HERALD_TEST_PG_DSN");
    static char dsn[1024];
    char db[40], sql[160];
    uint8_t rnd[6];
    int rc;
    if (!base || !base[0]) {
        fprintf(stderr, "\n"
                        "**********************************************************************\n"
                        "PostgreSQL not available: HERALD_TEST_PG_DSN unset — PostgreSQL tests "
                        "NOT run\n"
                        "(make test and make unit start one with scripts/pg-test.sh)\n"
                        "**********************************************************************\n");
        return 2;
    }
    crypto_random(rnd, sizeof rnd);
    crypto_hex(rnd, sizeof rnd, db + snprintf(db, sizeof db, "herald_u_"));
    g_dsn = base;
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    if (admin_exec(sql) < 0) {
        fprintf(stderr, "PostgreSQL at HERALD_TEST_PG_DSN: cannot create a test database — "
                        "PostgreSQL tests NOT run\n");
        return 2;
    }
    snprintf(dsn, sizeof dsn, "%s%sdbname=%s", base, strchr(base, '?') ? "&" : "?", db);
    g_dsn = dsn;
    log_set_level(LOG_ERROR);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    g_dsn = base;
    snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", db);
    admin_exec(sql);
    return rc;
}
