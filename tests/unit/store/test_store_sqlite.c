/* test_store_sqlite.c: unit tests of the store entry points (store.c) and the SQLite
 * backend: DSNs, migrations, meta, keys, group commit and savepoints, the job queue's
 * storage (insert, lease, ack, retry, dead, release, counts), the job listener, a
 * message's history (history_scenario.h), and a
 * full disk (a small tmpfs; skipped where mount(2) is not permitted).
 * Each test gets a fresh database under a mkdtemp() directory in /tmp. */
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

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define T0 1700000000000LL

struct fx {
    char dir[64];
    char path[160];
    char dsn[192];
    struct hclock_manual clock;
    struct store *s;
    struct arena *a;
};

/* ---- fixture ------------------------------------------------------------------ */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct herr err;
    int rc;
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/herald-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    /* two missing directory levels: store_open must create them */
    snprintf(f->path, sizeof f->path, "%s/a/b/herald.db", f->dir);
    snprintf(f->dsn, sizeof f->dsn, "sqlite:%s", f->path);
    hclock_manual_init(&f->clock, T0);
    rc = store_open(f->dsn, &f->clock.base, &f->s, &err);
    if (rc < 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return -1;
    }
    f->a = arena_new(4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    arena_free(f->a);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
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

static int w_meta_set_s(struct store *s, const char *key, struct str v)
{
    struct op o = {.kind = OP_META_SET, .key = key, .value = v};
    return do_op(s, &o);
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

static int w_insert(struct fx *f, const char *kind, int64_t run_at, const char *dedup,
                    int64_t *id)
{
    struct op o = {.kind = OP_JOB_INSERT, .now = now(f)};
    int rc;
    o.spec.kind = kind;
    o.spec.payload = STR_LIT("{\"x\":1}");
    o.spec.run_at_ms = run_at;
    o.spec.dedup_key = dedup;
    rc = do_op(f->s, &o);
    if (id)
        *id = o.out_id;
    return rc;
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

/* ---- DSN and migrations ------------------------------------------------------------- */

static void test_invalid_dsn(void **state)
{
    static const char *bad[] = {
        "",
        "sqlite:",
        "sqlite::memory:",
        "sqlite://relative/x.db",
        "sqlite:/tmp/some-dir/",
        "herald.db",
        "mysql://user:hunter2@db/herald",
    };
    struct store *s = (struct store *)1;
    struct herr err;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = (struct store *)1;
        assert_int_equal(store_open(bad[i], NULL, &s, &err), HR_INVAL);
        assert_null(s);
        assert_int_equal(err.rc, HR_INVAL);
        assert_true(strlen(err.msg) > 10);
        assert_null(strstr(err.msg, "hunter2")); /* never echo a DSN's secrets */
    }
    assert_int_equal(store_open(NULL, NULL, &s, &err), HR_INVAL);
    assert_int_equal(store_open("mysql://user:hunter2@db/herald", NULL, &s, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "\"mysql\""));
    assert_non_null(strstr(err.msg, "sqlite:PATH"));

    /* a parent directory that cannot be created: fails cleanly (half-open close) */
    s = (struct store *)1;
    assert_true(store_open("sqlite:/proc/herald-no/x.db", NULL, &s, &err) < 0);
    assert_null(s);
    assert_true(err.rc < 0 && err.msg[0]);
    store_close(NULL);
}

static void test_migrations_applied_once(void **state)
{
    struct fx *f = *state;
    struct herr err;
    sqlite3 *db;
    sqlite3_stmt *st;
    struct stat sb;
    char parent[200];
    int latest = sqlite_schema_latest();

    assert_true(latest >= 1);
    /* the missing parent directories were created, mode 0700 */
    snprintf(parent, sizeof parent, "%s/a/b", f->dir);
    assert_int_equal(stat(parent, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0700);

    /* reopen twice, later: nothing is applied again */
    store_close(f->s);
    f->s = NULL;
    for (int i = 0; i < 2; i++) {
        hclock_manual_advance(&f->clock, 5000);
        assert_int_equal(store_open(f->dsn, &f->clock.base, &f->s, &err), 0);
        assert_int_equal(store_ping(f->s), 0);
        store_close(f->s);
        f->s = NULL;
    }

    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*), count(DISTINCT version), min(version), "
                                        "max(version), min(applied_ms), max(applied_ms) "
                                        "FROM schema_migrations",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), latest);
    assert_int_equal(sqlite3_column_int(st, 1), latest);
    assert_int_equal(sqlite3_column_int(st, 2), 1);
    assert_int_equal(sqlite3_column_int(st, 3), latest);
    assert_int_equal(sqlite3_column_int64(st, 4), T0); /* applied at the first open only */
    assert_int_equal(sqlite3_column_int64(st, 5), T0);
    sqlite3_finalize(st);

    /* schema of migration 1, and WAL */
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM sqlite_master WHERE name IN "
                                        "('meta','api_keys','jobs','jobs_runnable')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 4);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);

    /* a database from a newer herald is refused */
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO schema_migrations VALUES(%d, 1)", latest + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(f->dsn, &f->clock.base, &f->s, &err), HR_INVAL);
    assert_null(f->s);
    assert_non_null(strstr(err.msg, "newer"));
}

/* ---- meta ----------------------------------------------------------------------------- */

/* docs_without_rowid: db's docs table is declared WITHOUT ROWID */
static bool docs_without_rowid(sqlite3 *db)
{
    sqlite3_stmt *st;
    bool yes;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_schema WHERE name = 'docs'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    yes = strstr((const char *)sqlite3_column_text(st, 0), "WITHOUT ROWID") != NULL;
    sqlite3_finalize(st);
    return yes;
}

/* Migration 8 turns docs into a rowid table: a store made at version 7 (docs WITHOUT
 * ROWID) keeps every document, byte for byte, and the key still refuses a duplicate. */
static void test_migration_8_docs_rowid(void **state)
{
    struct fx *f = *state;
    struct herr err;
    sqlite3 *db;
    sqlite3_stmt *st;
    char big[1800], path[120];
    struct doc_rec d;

    snprintf(path, sizeof path, "%s/v7.db", f->dir);
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite_migrate_to(db, T0, 7, &err), 0);
    assert_true(docs_without_rowid(db));
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO docs VALUES(?1, ?2, ?3, 3, 10, 20)", -1,
                                        &st, NULL),
                     SQLITE_OK);
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%02d", i);
        sqlite3_bind_text(st, 1, i % 2 ? "runs" : "profiles", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(st, 3, big, (int)strlen(big) - i, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);

    store_close(f->s);
    f->s = NULL;
    snprintf(f->dsn, sizeof f->dsn, "sqlite:%s", path);
    assert_int_equal(store_open(f->dsn, &f->clock.base, &f->s, &err), 0);
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%02d", i);
        assert_int_equal(store_doc_get(f->s, i % 2 ? "runs" : "profiles", str_c(id), f->a, &d), 0);
        assert_int_equal(d.body.len, strlen(big) - (size_t)i);
        assert_memory_equal(d.body.p, big, d.body.len);
        assert_int_equal(d.version, 3);
        assert_int_equal(d.created_ms, 10);
        assert_int_equal(d.updated_ms, 20);
        arena_reset(f->a);
    }
    store_close(f->s);
    f->s = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_false(docs_without_rowid(db));
    assert_int_equal(sqlite3_exec(db, "INSERT INTO docs VALUES('runs', 'r01', x'00', 1, 1, 1)",
                                  NULL, NULL, NULL),
                     SQLITE_CONSTRAINT);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_migrations", -1, &st,
                                        NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), sqlite_schema_latest()); /* 8 and on */
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_meta_roundtrip(void **state)
{
    struct fx *f = *state;
    struct str v = STR_NULL;
    static const char bin[] = {'a', 0, 'b', (char)0xff};

    assert_int_equal(store_ping(f->s), 0);
    assert_int_equal(store_meta_get(f->s, "instance_id", f->a, &v), HR_NOTFOUND);
    assert_int_equal(w_meta_set(f, "instance_id", STR_LIT("v1")), 0);
    assert_int_equal(store_meta_get(f->s, "instance_id", f->a, &v), 0);
    assert_int_equal(v.len, 2);
    assert_memory_equal(v.p, "v1", 3); /* NUL-terminated */
    assert_int_equal(w_meta_set(f, "instance_id", STR_LIT("second")), 0); /* upsert */
    assert_int_equal(store_meta_get(f->s, "instance_id", f->a, &v), 0);
    assert_int_equal(v.len, 6);
    assert_memory_equal(v.p, "second", 7);

    assert_int_equal(w_meta_set(f, "bin", (struct str){bin, sizeof bin}), 0);
    assert_int_equal(store_meta_get(f->s, "bin", f->a, &v), 0);
    assert_int_equal(v.len, sizeof bin);
    assert_memory_equal(v.p, bin, sizeof bin);
    assert_int_equal(v.p[v.len], '\0');

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

/* ---- keys ------------------------------------------------------------------------------ */

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
    assert_int_equal(list[0].id, wr.id); /* newest first */
    assert_int_equal(list[1].id, admin.id);
    assert_int_equal(list[0].scope, KEY_SCOPE_CLIENT);
    assert_int_equal(list[1].scope, KEY_SCOPE_SERVER);

    assert_int_equal(store_key_count(f->s, 0, &cnt), 0);
    assert_int_equal(cnt, 2);
    assert_int_equal(store_key_count(f->s, KEY_ADMIN, &cnt), 0);
    assert_int_equal(cnt, 1);

    assert_int_equal(do_op(f->s, &rev), 0);
    assert_int_equal(store_key_find_by_hash(f->s, wr.hash, &got), HR_NOTFOUND);
    assert_int_equal(store_key_find_by_hash(f->s, admin.hash, &got), 0);
    assert_int_equal(store_key_count(f->s, 0, &cnt), 0);
    assert_int_equal(cnt, 1);
    assert_int_equal(store_key_count(f->s, KEY_WRITE, &cnt), 0);
    assert_int_equal(cnt, 0);
    assert_int_equal(do_op(f->s, &rev), HR_NOTFOUND); /* already revoked */
    rev.key = "hk_nope";
    assert_int_equal(do_op(f->s, &rev), HR_NOTFOUND);

    assert_int_equal(store_key_list(f->s, f->a, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].revoked_ms, T0 + 100);
    assert_int_equal(list[1].revoked_ms, 0);

    admin.kind = 7;
    assert_int_equal(w_key_insert(f, &admin), HR_INVAL);
}

/* ---- writes: savepoints and group commit ------------------------------------------------- */

static void test_failed_fn_leaves_no_trace(void **state)
{
    struct fx *f = *state;
    struct op o = {.kind = OP_META_SET, .key = "gone", .value = STR_LIT("x"), .fail_with = HR_AGAIN};
    struct str v;
    struct herr err;

    assert_int_equal(store_write(f->s, run_op, &o, &err), HR_AGAIN);
    assert_int_equal(o.op_rc, 0); /* the set itself worked, then was rolled back */
    assert_int_equal(err.rc, HR_AGAIN);
    assert_int_equal(store_meta_get(f->s, "gone", f->a, &v), HR_NOTFOUND);
    assert_int_equal(w_meta_set(f, "kept", STR_LIT("y")), 0);
    assert_int_equal(store_meta_get(f->s, "kept", f->a, &v), 0);
}

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
};

struct blocker {
    struct gate *g;
};

/* block_fn: holds the writer until the gate opens, so that later requests queue up
 * and form one group. */
static int block_fn(struct store_txn *t, void *arg)
{
    struct blocker *b = arg;
    (void)t;
    pthread_mutex_lock(&b->g->mu);
    while (!b->g->open)
        pthread_cond_wait(&b->g->cv, &b->g->mu);
    pthread_mutex_unlock(&b->g->mu);
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

static void test_savepoint_in_group(void **state)
{
    struct fx *f = *state;
    struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
    struct blocker blk = {&g};
    struct key_rec kb = mkkey(KEY_WRITE, "hk_dup", "b", "secret-b", T0);
    struct key_rec kc = mkkey(KEY_WRITE, "hk_dup", "c", "secret-c", T0);
    struct op ob = {.kind = OP_KEY_INSERT, .rec = &kb, .fail_with = HR_AGAIN};
    struct op oc = {.kind = OP_KEY_INSERT, .rec = &kc};
    struct op od = {.kind = OP_META_SET, .key = "d", .value = STR_LIT("d")};
    struct writer_arg w[4] = {{f->s, block_fn, &blk, 1},
                              {f->s, run_op, &ob, 1},
                              {f->s, run_op, &oc, 1},
                              {f->s, run_op, &od, 1}};
    pthread_t th[4];
    struct store_stats before, after;
    struct key_rec got;
    struct str v;

    store_stats(f->s, &before);
    /* A holds the writer; B, C, D queue behind it in that order */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &w[i]), 0);
        sleep_ms(100);
    }
    pthread_mutex_lock(&g.mu);
    g.open = true;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    store_stats(f->s, &after);

    assert_int_equal(w[0].rc, 0);
    assert_int_equal(w[1].rc, HR_AGAIN);
    assert_int_equal(ob.op_rc, 0); /* B inserted hk_dup, then failed */
    assert_int_equal(w[2].rc, 0);  /* so C could insert hk_dup only if B's insert was undone */
    assert_int_equal(oc.op_rc, 0);
    assert_int_equal(w[3].rc, 0);
    assert_int_equal(store_key_find_by_hash(f->s, kb.hash, &got), HR_NOTFOUND);
    assert_int_equal(store_key_find_by_hash(f->s, kc.hash, &got), 0);
    assert_int_equal(store_meta_get(f->s, "d", f->a, &v), 0);
    /* A alone, then B+C+D as one group with one commit */
    assert_int_equal(after.txns - before.txns, 4);
    assert_int_equal(after.commits - before.commits, 2);
    assert_int_equal(after.errors, before.errors);
}

#define LOAD_THREADS 16
#define LOAD_WRITES 200

struct load_arg {
    struct fx *f;
    atomic_int *failures;
    atomic_bool *stop;
};

static void *load_thread(void *p)
{
    struct load_arg *la = p;
    for (int i = 0; i < LOAD_WRITES; i++) {
        struct op o = {.kind = OP_JOB_INSERT, .now = T0};
        struct herr err;
        o.spec.kind = "load";
        o.spec.payload = STR_LIT("{}");
        if (store_write(la->f->s, run_op, &o, &err) != 0 || o.out_id <= 0)
            atomic_fetch_add(la->failures, 1);
    }
    return NULL;
}

static void *read_thread(void *p)
{
    struct load_arg *la = p;
    struct arena *a = arena_new(1024);
    for (unsigned round = 0; !atomic_load(la->stop); round++) {
        struct job_count *c;
        size_t n;
        int64_t at;
        if (store_job_counts(la->f->s, a, &c, &n) != 0 || store_ping(la->f->s) != 0)
            atomic_fetch_add(la->failures, 1);
        int rc = store_job_next_run_at(la->f->s, round & 1, &at); /* both kinds */
        if (rc != 0 && rc != HR_NOTFOUND)
            atomic_fetch_add(la->failures, 1);
        arena_reset(a);
    }
    arena_free(a);
    return NULL;
}

static void test_group_commit_concurrency(void **state)
{
    struct fx *f = *state;
    atomic_int failures = 0;
    atomic_bool stop = false;
    struct load_arg la = {f, &failures, &stop};
    pthread_t th[LOAD_THREADS], rd[4];
    struct store_stats before, after;

    store_stats(f->s, &before);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&rd[i], NULL, read_thread, &la), 0);
    for (int i = 0; i < LOAD_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, load_thread, &la), 0);
    for (int i = 0; i < LOAD_THREADS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(rd[i], NULL);
    store_stats(f->s, &after);

    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(count_of(f, "load", JOB_QUEUED), LOAD_THREADS * LOAD_WRITES);
    assert_int_equal(after.txns - before.txns, LOAD_THREADS * LOAD_WRITES);
    assert_true(after.commits - before.commits < after.txns - before.txns);
    assert_int_equal(after.errors, before.errors);
}

static int nested_fn(struct store_txn *t, void *arg)
{
    struct herr *err = arg;
    struct op o = {.kind = OP_NONE};
    return store_write(store_txn_store(t), run_op, &o, err);
}

static void test_nested_write_refused(void **state)
{
    struct fx *f = *state;
    struct herr inner, outer;
    assert_int_equal(store_write(f->s, nested_fn, &inner, &outer), HR_INVAL);
    assert_int_equal(inner.rc, HR_INVAL);
    assert_non_null(strstr(inner.msg, "nested"));
    assert_int_equal(store_write(f->s, NULL, NULL, &outer), HR_INVAL);
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
    assert_int_equal(strlen(o.spec.kind), 32);
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

    /* dedup: the second insert reports the first id and inserts nothing */
    assert_int_equal(w_insert(f, "email", 0, "order-42", &id), 0);
    assert_int_equal(w_insert(f, "email", 0, "order-42", &id2), HR_CONFLICT);
    assert_int_equal(id2, id);
    assert_int_equal(count_of(f, "email", JOB_QUEUED), 1);
    assert_int_equal(store_job_get(f->s, 999999, f->a, &j), HR_NOTFOUND);

    /* explicit run_at and max_attempts are kept */
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

    /* only the due job is leased */
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, now_id);
    assert_int_equal(js[0].state, JOB_LEASED);
    assert_int_equal(js[0].attempts, 1);
    assert_int_equal(js[0].lease_until_ms, T0 + lease);
    assert_true(js[0].lease_token != 0);
    assert_int_equal(js[0].payload.len, 7);
    assert_memory_equal(js[0].payload.p, "{\"x\":1}", 8);
    tok1 = js[0].lease_token;

    /* a second lease before expiry and before run_at gets nothing */
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 0);

    /* run_at reached: the later job comes; ack it */
    hclock_manual_advance(&f->clock, 1000);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, later);
    assert_int_equal(w_lease_tok(f, OP_JOB_ACK, later, js[0].lease_token + 1, 0, NULL),
                     HR_CONFLICT);
    assert_int_equal(w_lease_tok(f, OP_JOB_ACK, later, js[0].lease_token, 0, NULL), 0);
    assert_int_equal(store_job_get(f->s, later, f->a, &j), HR_NOTFOUND);
    assert_int_equal(w_lease_tok(f, OP_JOB_ACK, later, js[0].lease_token, 0, NULL), HR_CONFLICT);

    /* the first lease runs out: leased again, attempts 2, the old token is dead */
    hclock_manual_advance(&f->clock, lease); /* now T0 + 1000 + lease > T0 + lease */
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, now_id);
    assert_int_equal(js[0].attempts, 2);
    tok2 = js[0].lease_token;
    assert_true(tok2 != 0 && tok2 != tok1);
    assert_int_equal(w_lease_tok(f, OP_JOB_ACK, now_id, tok1, 0, NULL), HR_CONFLICT);
    assert_int_equal(w_lease_tok(f, OP_JOB_RETRY, now_id, tok1, now(f), "x"), HR_CONFLICT);
    assert_int_equal(w_lease_tok(f, OP_JOB_DEAD, now_id, tok1, 0, "x"), HR_CONFLICT);
    assert_int_equal(w_lease_tok(f, OP_JOB_RELEASE, now_id, tok1, 0, NULL), HR_CONFLICT);

    /* retry: queued for later with the error kept */
    assert_int_equal(w_lease_tok(f, OP_JOB_RETRY, now_id, tok2, now(f) + 5000, "smtp 451"), 0);
    assert_int_equal(store_job_get(f->s, now_id, f->a, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.run_at_ms, now(f) + 5000);
    assert_int_equal(j.lease_token, 0);
    assert_int_equal(j.lease_until_ms, 0);
    assert_int_equal(j.attempts, 2);
    assert_int_equal(j.last_error.len, 8);
    assert_memory_equal(j.last_error.p, "smtp 451", 9);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 0);
    hclock_manual_advance(&f->clock, 5000);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].attempts, 3);

    /* release gives the attempt back and makes it runnable at once */
    assert_int_equal(w_lease_tok(f, OP_JOB_RELEASE, now_id, js[0].lease_token, 0, NULL), 0);
    assert_int_equal(store_job_get(f->s, now_id, f->a, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.attempts, 2);
    assert_int_equal(j.lease_token, 0);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].attempts, 3);

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

    /* dead: never leased again */
    assert_int_equal(w_lease_tok(f, OP_JOB_DEAD, now_id, js[0].lease_token, 0, "bounced"), 0);
    assert_int_equal(store_job_get(f->s, now_id, f->a, &j), 0);
    assert_int_equal(j.state, JOB_DEAD);
    assert_memory_equal(j.last_error.p, "bounced", 8);
    hclock_manual_advance(&f->clock, 10 * lease);
    assert_int_equal(w_lease(f, lease, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(count_of(f, "email", JOB_DEAD), 1);
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
    /* SQLite acks each job on its own (no job_ack_many): no round trips to save */
    assert_false(store_has_job_ack_many(f->s));
    extend_scenario(f->s, &f->clock, f->a, T0);
}

static void test_job_lease_order_and_kinds(void **state)
{
    struct fx *f = *state;
    static const char *const only_sms[] = {"sms", NULL};
    static const char *const both[] = {"push", "sms", NULL};
    static const char *const none[] = {NULL};
    static const char *const prefix[] = {"sm", "ms", "mail", NULL};
    static const char *const comma[] = {"sms,email", NULL};
    struct job *js;
    size_t n;
    int64_t e1, e2, s1, s2, p1;

    assert_int_equal(w_insert(f, "email", T0 - 10, NULL, &e1), 0);
    assert_int_equal(w_insert(f, "sms", T0 - 30, NULL, &s1), 0);
    assert_int_equal(w_insert(f, "email", T0 - 30, NULL, &e2), 0); /* same run_at as s1 */
    assert_int_equal(w_insert(f, "sms", T0 - 5, NULL, &s2), 0);
    assert_int_equal(w_insert(f, "push", T0 - 20, NULL, &p1), 0);

    assert_int_equal(w_lease(f, 1000, 10, none, &js, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(w_lease(f, 1000, 0, NULL, &js, &n), 0);
    assert_int_equal(n, 0);
    /* kinds match whole names only, and a name cannot smuggle in a list */
    assert_int_equal(w_lease(f, 1000, 10, prefix, &js, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(w_lease(f, 1000, 10, comma, &js, &n), HR_INVAL);

    assert_int_equal(w_lease(f, 1000, 10, only_sms, &js, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(js[0].id, s1);
    assert_int_equal(js[1].id, s2);
    assert_true(js[0].lease_token != js[1].lease_token);

    /* the sms leases expire: they compete with the rest by run_at, then id */
    hclock_manual_advance(&f->clock, 1000);
    assert_int_equal(w_lease(f, 1000, 3, NULL, &js, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(js[0].id, s1); /* run_at T0-30, lower id */
    assert_int_equal(js[1].id, e2); /* run_at T0-30 */
    assert_int_equal(js[2].id, p1); /* T0-20 */
    assert_int_equal(js[0].attempts, 2);

    assert_int_equal(w_lease(f, 1000, 10, both, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, s2);
    assert_int_equal(w_lease(f, 1000, 10, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, e1);
    assert_int_equal(count_of(f, "email", JOB_LEASED), 2);
    assert_int_equal(count_of(f, "sms", JOB_LEASED), 2);
    assert_int_equal(count_of(f, "push", JOB_LEASED), 1);
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
    assert_int_equal(at, T0 + 6000); /* the lease's end comes before the queued ones */
    assert_int_equal(w_lease_tok(f, OP_JOB_DEAD, b_id, js[0].lease_token, 0, "no"), 0);
    assert_int_equal(store_job_next_run_at(f->s, true, &at), 0);
    assert_int_equal(at, T0 + 7000);

    assert_int_equal(store_job_counts(f->s, f->a, &c, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(c[0].kind, "email");
    assert_int_equal(c[0].state, JOB_QUEUED);
    assert_int_equal(c[0].count, 1);
    assert_string_equal(c[1].kind, "sms");
    assert_int_equal(c[1].state, JOB_QUEUED);
    assert_int_equal(c[1].count, 1);
    assert_string_equal(c[2].kind, "sms");
    assert_int_equal(c[2].state, JOB_DEAD);
    assert_int_equal(c[2].count, 1);
}

/* ---- the job listener ------------------------------------------------------------------- */

struct listen {
    struct store *s;
    int calls;
    int64_t watch_id;  /* job to look up from inside the listener */
    int seen;          /* how many times that job was visible to a reader */
};

static void on_jobs(void *arg)
{
    struct listen *l = arg;
    struct arena *a = arena_new(1024);
    struct job j;
    l->calls++;
    if (l->watch_id && store_job_get(l->s, l->watch_id, a, &j) == 0)
        l->seen++;
    arena_free(a);
}

/* bulk copy: every job row comes back faithfully (a leased one queued, its lease ended),
 * in batches by id; inserting into another store twice keeps one copy, the ids, and the
 * id sequence after them */
struct copy_arg {
    const struct copy_row *rows;
    size_t n;
};

static int copy_tx(struct store_txn *t, void *varg)
{
    struct copy_arg *c = varg;
    return store_copy_insert(t, "jobs", c->rows, c->n);
}

static void test_copy_jobs(void **state)
{
    struct fx *f = *state;
    struct job *js, j;
    struct copy_row *rows = NULL, *all;
    struct store *dst = NULL;
    struct herr err;
    char dsn[224];
    size_t n = 0, total = 0;
    int64_t a, b, c, seq = 0, cnt = -1, id_new;
    struct copy_arg arg;

    assert_int_equal(w_insert(f, "email", 0, "dk-1", &a), 0);
    assert_int_equal(w_insert(f, "email", T0 + 5000, NULL, &b), 0);
    assert_int_equal(w_insert(f, "sms", 0, NULL, &c), 0);
    assert_int_equal(w_lease(f, 30000, 1, NULL, &js, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(js[0].id, a);

    all = calloc(8, sizeof *all);
    assert_non_null(all);
    for (;;) {
        assert_int_equal(store_copy_rows(f->s, "jobs", seq, 2, f->a, &rows, &n), 0);
        if (n == 0)
            break;
        memcpy(all + total, rows, n * sizeof *rows);
        total += n;
        seq = rows[n - 1].seq;
    }
    assert_int_equal(total, 3);
    assert_int_equal(all[0].seq, a);
    assert_int_equal(all[0].ncols, 12);
    assert_int_equal(all[0].v[3].i, JOB_QUEUED);    /* was leased */
    assert_int_equal(all[0].v[5].i, 0);             /* lease_until_ms */
    assert_int_equal(all[0].v[6].i, 0);             /* lease_token */
    assert_int_equal(all[0].v[7].i, 1);             /* attempts kept */
    assert_int_equal(all[0].v[11].type, COPY_TEXT);
    assert_true(str_eq_c(all[0].v[11].s, "dk-1"));
    assert_int_equal(all[1].v[11].type, COPY_NULL); /* no dedup key */
    assert_int_equal(all[1].v[4].i, T0 + 5000);
    assert_int_equal(store_copy_rows(f->s, "nope", 0, 2, f->a, &rows, &n), HR_INVAL);
    assert_int_equal(store_copy_count(f->s, "jobs", &cnt), 0);
    assert_int_equal(cnt, 3);

    snprintf(dsn, sizeof dsn, "sqlite:%s/copy.db", f->dir);
    assert_int_equal(store_open(dsn, &f->clock.base, &dst, &err), 0);
    arg = (struct copy_arg){all, total};
    assert_int_equal(store_write(dst, copy_tx, &arg, &err), 0);
    assert_int_equal(store_write(dst, copy_tx, &arg, &err), 0); /* resumed: no-op */
    assert_int_equal(store_copy_count(dst, "jobs", &cnt), 0);
    assert_int_equal(cnt, 3);
    assert_int_equal(store_job_get(dst, a, f->a, &j), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.attempts, 1);
    assert_int_equal(store_job_get(dst, b, f->a, &j), 0);
    assert_int_equal(j.run_at_ms, T0 + 5000);
    {
        struct op o = {.kind = OP_JOB_INSERT, .now = T0};
        o.spec.kind = "email";
        o.spec.payload = STR_LIT("{}");
        assert_int_equal(do_op(dst, &o), 0);
        id_new = o.out_id;
    }
    assert_true(id_new > c);
    store_close(dst);
    free(all);
}

static void test_on_jobs_listener(void **state)
{
    struct fx *f = *state;
    struct listen l = {f->s, 0, 0, 0};
    struct op o = {.kind = OP_JOB_INSERT, .now = T0, .fail_with = HR_AGAIN};
    struct job *js;
    size_t n;
    int64_t id;

    store_set_job_listener(f->s, on_jobs, &l);
    assert_int_equal(w_meta_set(f, "k", STR_LIT("v")), 0);
    assert_int_equal(l.calls, 0);

    o.spec.kind = "email";
    assert_int_equal(do_op(f->s, &o), HR_AGAIN); /* inserted, then rolled back */
    assert_int_equal(l.calls, 0);

    /* the id the next insert gets: the rolled-back one was never committed */
    l.watch_id = o.out_id;
    assert_int_equal(w_insert(f, "email", 0, NULL, &id), 0);
    assert_int_equal(id, l.watch_id);
    assert_int_equal(l.calls, 1);
    assert_int_equal(l.seen, 1); /* the listener ran after the commit */

    assert_int_equal(w_insert(f, "email", 0, "dd", NULL), 0);
    assert_int_equal(l.calls, 2);
    assert_int_equal(w_insert(f, "email", 0, "dd", NULL), HR_CONFLICT);
    assert_int_equal(l.calls, 2);

    assert_int_equal(w_lease(f, 1000, 1, NULL, &js, &n), 0);
    assert_int_equal(l.calls, 2);
    assert_int_equal(w_lease_tok(f, OP_JOB_RETRY, js[0].id, js[0].lease_token, T0, "e"), 0);
    assert_int_equal(l.calls, 3);
    assert_int_equal(w_lease(f, 1000, 1, NULL, &js, &n), 0);
    assert_int_equal(w_lease_tok(f, OP_JOB_RELEASE, js[0].id, js[0].lease_token, 0, NULL), 0);
    assert_int_equal(l.calls, 4);
    assert_int_equal(w_lease(f, 1000, 1, NULL, &js, &n), 0);
    assert_int_equal(w_lease_tok(f, OP_JOB_ACK, js[0].id, js[0].lease_token, 0, NULL), 0);
    assert_int_equal(l.calls, 4);

    store_set_job_listener(f->s, NULL, NULL);
    assert_int_equal(w_insert(f, "email", 0, NULL, NULL), 0);
    assert_int_equal(l.calls, 4);
}

/* ---- a full disk ------------------------------------------------------------------- */

static char full_dir[64]; /* the tmpfs while mounted: teardown_full unmounts it */

static int teardown_full(void **state)
{
    (void)state;
    if (full_dir[0]) {
        umount2(full_dir, MNT_DETACH);
        rmdir(full_dir);
        full_dir[0] = '\0';
    }
    return 0;
}

/* A store on a 2 MiB tmpfs (mount(2); skipped when not permitted) that a ballast file
 * fills to the last byte: writes answer HR_FULL (SQLITE_FULL from ENOSPC, or an I/O
 * error on a full filesystem), never another error; reads go on; store_stats and
 * store_ping say full; once the ballast is gone the same store writes again, and the
 * database is intact. */
static void test_full_disk(void **state)
{
    char dir[64], path[160], dsn[192], ballast[160], key[32];
    static char big[64 * 1024];
    struct hclock_manual clock;
    struct store *s = NULL;
    struct store_stats st;
    struct herr err;
    struct arena *a = arena_new(4096);
    struct str v = STR_NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int rc = HR_OK, fd, i;
    (void)state;

    snprintf(dir, sizeof dir, "/tmp/herald-full-XXXXXX");
    assert_non_null(mkdtemp(dir));
    if (mount("tmpfs", dir, "tmpfs", 0, "size=2m,mode=0700") != 0) {
        fprintf(stderr, "test_full_disk: cannot mount a tmpfs (%s): skipped\n", strerror(errno));
        rmdir(dir);
        arena_free(a);
        skip();
    }
    str_copy(full_dir, sizeof full_dir, str_c(dir));
    snprintf(path, sizeof path, "%s/herald.db", dir);
    snprintf(dsn, sizeof dsn, "sqlite:%s", path);
    snprintf(ballast, sizeof ballast, "%s/ballast", dir);
    hclock_manual_init(&clock, T0);
    assert_int_equal(store_open(dsn, &clock.base, &s, &err), 0);
    assert_int_equal(w_meta_set_s(s, "before", STR_LIT("kept")), 0);

    memset(big, 'x', sizeof big);
    fd = open(ballast, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    for (size_t chunk = sizeof big; chunk >= 512; chunk /= 4)
        while (write(fd, big, chunk) > 0)
            ;
    close(fd);
    for (i = 0; i < 64 && rc == HR_OK; i++) {
        snprintf(key, sizeof key, "big%d", i);
        rc = w_meta_set_s(s, key, (struct str){big, sizeof big});
    }
    assert_int_equal(rc, HR_FULL);
    store_stats(s, &st);
    assert_true(st.full);
    assert_int_equal(store_ping(s), HR_FULL); /* reads work, writes do not */
    assert_int_equal(store_meta_get(s, "before", a, &v), 0);
    assert_memory_equal(v.p, "kept", 4);
    assert_int_equal(w_meta_set_s(s, "during", (struct str){big, sizeof big}), HR_FULL);

    assert_int_equal(unlink(ballast), 0);
    assert_int_equal(w_meta_set_s(s, "after", (struct str){big, sizeof big}), 0);
    assert_int_equal(store_meta_get(s, "after", a, &v), 0);
    assert_int_equal(v.len, sizeof big);
    assert_int_equal(store_meta_get(s, "during", a, &v), HR_NOTFOUND);
    store_close(s);
    s = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "ok");
    sqlite3_finalize(q);
    sqlite3_close(db);
    arena_free(a);
}


/* ---- the process lock, empty files, corruption (issue 12) ------------------------------ */

/* A claimed store refuses a second claim (HR_BUSY, naming the holder's pid) while it is
 * open, whoever else opens it unclaimed (herald keys); closing it frees the claim. */
static void test_claim_exclusive(void **state)
{
    struct fx *f = *state;
    struct store *a = NULL, *b = NULL;
    struct herr err;
    char want[64];
    assert_int_equal(store_open_claimed(f->dsn, &f->clock.base, &a, &err), 0); /* f->s: unclaimed */
    assert_int_equal(store_open_claimed(f->dsn, &f->clock.base, &b, &err), HR_BUSY);
    assert_null(b);
    snprintf(want, sizeof want, "is in use by another herald (pid %ld)", (long)getpid());
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, f->path));
    assert_int_equal(store_open(f->dsn, &f->clock.base, &b, &err), 0); /* unclaimed: allowed */
    store_close(b);
    b = NULL;
    store_close(a);
    assert_int_equal(store_open_claimed(f->dsn, &f->clock.base, &b, &err), 0);
    store_close(b);
}

/* An existing 0-byte store file is refused; a missing one is created. */
static void test_empty_file_refused(void **state)
{
    struct fx *f = *state;
    struct store *s = NULL;
    struct herr err;
    char path[200], dsn[220];
    struct stat sb;
    int fd;
    snprintf(path, sizeof path, "%s/empty.db", f->dir);
    snprintf(dsn, sizeof dsn, "sqlite:%s", path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(store_open(dsn, &f->clock.base, &s, &err), HR_INVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "exists but is empty (0 bytes)"));
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_size, 0); /* left as it was */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(store_open(dsn, &f->clock.base, &s, &err), 0);
    store_close(s);
    s = NULL;

    /* a file that is not a database at all: refused, saying so */
    {
        char junk[8192];
        memset(junk, 0xa5, sizeof junk);
        fd = open(path, O_WRONLY | O_TRUNC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
        close(fd);
        snprintf(junk, sizeof junk, "%s-wal", path);
        unlink(junk);
        assert_true(store_open(dsn, &f->clock.base, &s, &err) < 0);
        assert_null(s);
        assert_non_null(strstr(err.msg, "is corrupt or not a database"));
    }
}

#define CORRUPT_DOCS 3000
#define CORRUPT_DOC_BYTES 2000

static int put_docs_tx(struct store_txn *t, void *arg)
{
    int *from = arg, rc = HR_OK;
    char id[32], body[CORRUPT_DOC_BYTES + 16];
    int64_t v;
    for (int i = *from; i < *from + 500 && rc == HR_OK; i++) {
        int n = snprintf(id, sizeof id, "d%05d", i);
        memset(body, 'a' + i % 26, sizeof body);
        body[0] = '"';
        body[CORRUPT_DOC_BYTES - 1] = '"';
        rc = store_doc_put(t, "profiles", (struct str){id, (size_t)n},
                           (struct str){body, CORRUPT_DOC_BYTES}, T0, &v);
    }
    return rc;
}

/* Pages overwritten with garbage under a running store: the first statement that reads
 * them fails with SQLITE_CORRUPT, and from then on store_ping fails and stats say
 * corrupt (readiness), though SELECT 1 still answers. At the next open the integrity
 * check refuses the file. */
static void test_corruption_fails_ping(void **state)
{
    struct fx *f = *state;
    struct store_stats st;
    struct herr err;
    struct doc_rec *docs = NULL;
    struct str after = {"", 0};
    size_t n = 0;
    int rc = HR_OK, fd;
    struct stat sb;
    char buf[4096], last[32];
    for (int from = 0; from < CORRUPT_DOCS; from += 500)
        assert_int_equal(store_write(f->s, put_docs_tx, &from, &err), 0);
    store_close(f->s); /* checkpoints the WAL into the file */
    f->s = NULL;
    assert_int_equal(store_open(f->dsn, &f->clock.base, &f->s, &err), 0);
    assert_int_equal(store_ping(f->s), 0);
    store_stats(f->s, &st);
    assert_false(st.corrupt);

    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(sb.st_size > 64 * 4096);
    memset(buf, 0xa5, sizeof buf);
    fd = open(f->path, O_WRONLY);
    assert_true(fd >= 0);
    /* pages 7 apart: a doc here is a b-tree cell plus an overflow page, so the layout
     * repeats every few pages; a stride sharing no factor with it hits b-tree pages too
     * (a garbage overflow page alone reads without error), whatever the schema before */
    for (int k = 0; k < 8; k++)
        assert_int_equal(pwrite(fd, buf, sizeof buf, (off_t)(sb.st_size / 2 / 4096 + k * 7) * 4096),
                         (ssize_t)sizeof buf);
    close(fd);

    while (rc == HR_OK) { /* read every document: some page is garbage */
        arena_reset(f->a);
        rc = store_doc_list(f->s, "profiles", (struct str){"", 0}, after, 500, f->a, &docs, &n);
        if (rc == HR_OK && n == 0)
            break;
        if (rc == HR_OK) {
            size_t len = docs[n - 1].id.len < sizeof last ? docs[n - 1].id.len : sizeof last - 1;
            memcpy(last, docs[n - 1].id.p, len);
            after = (struct str){last, len};
        }
    }
    assert_true(rc < 0);
    store_stats(f->s, &st);
    assert_true(st.corrupt);
    assert_true(store_ping(f->s) < 0);
    store_close(f->s);
    f->s = NULL;
    assert_true(store_open(f->dsn, &f->clock.base, &f->s, &err) < 0);
    assert_null(f->s);
    assert_true(strstr(err.msg, "integrity check") || strstr(err.msg, "is corrupt"));
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
        cmocka_unit_test_setup_teardown(test_migration_8_docs_rowid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_fn_leaves_no_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoint_in_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_concurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_write_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_insert_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_lease_order_and_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_lease_max_repeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_extend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_counts_and_next_run_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_jobs_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_create_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
        cmocka_unit_test_teardown(test_full_disk, teardown_full),
        cmocka_unit_test_setup_teardown(test_claim_exclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_fails_ping, setup, teardown),
    };
    log_set_level(LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
