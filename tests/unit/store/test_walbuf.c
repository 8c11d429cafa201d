/* test_walbuf.c: the VFS layer that gathers a commit's WAL writes (src/store/sqlite/
 * walbuf.h). A commit of many pages must reach the WAL in a few writes, and everything
 * must read back whole: through a second connection while the first is open, and
 * through SQLite's own unix VFS (no layer) after a kill-like end (no checkpoint, the WAL
 * left as it is). Also the cases that break a naive buffer: a blob far larger than one
 * write of the unix VFS (it takes at most 0x1ffff bytes per call) and a transaction
 * larger than the page cache (SQLite spills frames, rewrites some in place and then
 * their checksums, reading them back). */
#include "../../../src/store/sqlite/walbuf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[] = "/tmp/herald-walbuf-XXXXXX";
static char g_path[128];

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int src = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (src != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errstr(src));
}

static int64_t one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static sqlite3 *open_db(const char *vfs)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(g_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                     vfs),
                     SQLITE_OK);
    exec_ok(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL");
    return db;
}

/* insert_blobs: rows first.. first+n-1 of `size` bytes, each all one letter ('a' + c,
 * c = id % 26, kept in column c), in one transaction. */
static void insert_blobs(sqlite3 *db, int first, int n, int size)
{
    sqlite3_stmt *st = NULL;
    char *b = malloc((size_t)size);
    assert_non_null(b);
    exec_ok(db, "BEGIN");
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t(id, c, b) VALUES(?1, ?1 % 26, ?2)", -1, &st,
                                        NULL),
                     SQLITE_OK);
    for (int i = first; i < first + n; i++) {
        memset(b, 'a' + i % 26, (size_t)size);
        sqlite3_bind_int(st, 1, i);
        sqlite3_bind_blob(st, 2, b, size, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec_ok(db, "COMMIT");
    free(b);
}

/* rows_whole: rows whose blob is their letter throughout. */
static int64_t rows_whole(sqlite3 *db)
{
    return one_int(db, "SELECT count(*) FROM t "
                       "WHERE length(replace(CAST(b AS TEXT), char(97 + c), '')) = 0");
}

static void test_commit_in_few_writes(void **state)
{
    (void)state;
    uint64_t b0, f0, b1, f1;
    sqlite3 *w = open_db(NULL), *r;
    exec_ok(w, "CREATE TABLE t(id INTEGER PRIMARY KEY, c INTEGER, b BLOB)");
    sqlite_walbuf_stats(&b0, &f0);
    insert_blobs(w, 0, 200, 3000); /* ~200 pages: ~400 frame writes */
    sqlite_walbuf_stats(&b1, &f1);
    print_message("WAL writes taken: %llu, written out: %llu\n",
                  (unsigned long long)(b1 - b0), (unsigned long long)(f1 - f0));
    assert_true(b1 - b0 >= 400);
    assert_true(f1 - f0 <= 20);

    r = open_db(NULL); /* another connection reads by the wal-index, after the commit */
    assert_int_equal(one_int(r, "SELECT count(*) FROM t"), 200);
    assert_int_equal(rows_whole(r), 200);
    sqlite3_close(r);
    sqlite3_close(w);
}

static void test_large_blob_and_spill(void **state)
{
    (void)state;
    sqlite3 *w = open_db(NULL);
    insert_blobs(w, 1000, 2, 3 << 20); /* overflow chains of 3 MB: ~750 frames each */
    exec_ok(w, "PRAGMA cache_size = 20");   /* a transaction larger than the cache spills */
    exec_ok(w, "BEGIN");
    exec_ok(w, "UPDATE t SET b = CAST(b AS BLOB) WHERE id < 200");
    exec_ok(w, "INSERT INTO t(id, c, b) SELECT id + 2000, c, b FROM t WHERE id < 200");
    exec_ok(w, "UPDATE t SET b = CAST(b AS BLOB) WHERE id >= 2000");
    exec_ok(w, "COMMIT");
    assert_int_equal(one_int(w, "SELECT count(*) FROM t"), 402);
    assert_int_equal(rows_whole(w), 402);
    sqlite3_close(w);
}

static void test_unix_vfs_reads_after_kill(void **state)
{
    (void)state;
    pid_t pid = fork();
    int status = 0;
    sqlite3 *u;
    assert_true(pid >= 0);
    if (pid == 0) { /* a commit, then the end of the process without closing anything */
        sqlite3 *w = NULL;
        if (sqlite3_open(g_path, &w) != SQLITE_OK ||
            sqlite3_exec(w, "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; "
                            "INSERT INTO t(id, c, b) SELECT id + 5000, c, b FROM t WHERE id < 100",
                         NULL, NULL, NULL) != SQLITE_OK)
            _exit(1);
        _exit(0); /* no sqlite3_close: no checkpoint, the WAL stays */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    u = open_db("unix"); /* SQLite's own VFS: what the files hold, with no layer between */
    assert_int_equal(one_int(u, "SELECT count(*) FROM t"), 502);
    assert_int_equal(rows_whole(u), 502);
    {
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(u, "PRAGMA integrity_check", -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
    }
    sqlite3_close(u);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_path, sizeof g_path, "%s/t.db", g_dir);
    if (sqlite3_initialize() != SQLITE_OK || sqlite_walbuf_install() != SQLITE_OK)
        return -1;
    return strcmp(sqlite3_vfs_find(NULL)->zName, "herald-walbuf") == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[200];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_in_few_writes),
        cmocka_unit_test(test_large_blob_and_spill),
        cmocka_unit_test(test_unix_vfs_reads_after_kill),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
