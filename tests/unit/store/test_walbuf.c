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

#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[] = "/tmp/herald-walbuf-XXXXXX";
static char g_path[128];

#include "sqlite_helpers.h"

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
    if (pid == 0) { /* commits, then the end of the process without closing anything */
        sqlite3 *w = NULL;
        if (sqlite3_open(g_path, &w) != SQLITE_OK ||
            sqlite3_exec(w, "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; "
                            "INSERT INTO t(id, c, b) SELECT id + 5000, c, b FROM t WHERE id < 100",
                         NULL, NULL, NULL) != SQLITE_OK)
            _exit(1);
        /* a transaction larger than the cache: SQLite spills frames, rewrites some of
         * them in place and then their checksums; only recovery (the parent's open)
         * checks those */
        if (sqlite3_exec(w, "PRAGMA cache_size = 20; BEGIN; "
                            "UPDATE t SET b = CAST(b AS BLOB) WHERE id < 200; "
                            "INSERT INTO t(id, c, b) SELECT id + 7000, c, b FROM t WHERE id < 200; "
                            "UPDATE t SET b = CAST(b AS BLOB) WHERE id >= 7000; COMMIT",
                         NULL, NULL, NULL) != SQLITE_OK)
            _exit(2);
        _exit(0); /* no sqlite3_close: no checkpoint, the WAL stays */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    u = open_db("unix"); /* SQLite's own VFS: what the files hold, with no layer between */
    assert_int_equal(one_int(u, "SELECT count(*) FROM t"), 702);
    assert_int_equal(rows_whole(u), 702);
    assert_integrity_ok(u);
    sqlite3_close(u);
}

/* ---- a full disk, injected into the unix VFS's own pwrite (xSetSystemCall) ---------- */

static int g_fail_writes; /* the next n pwrite calls fail with ENOSPC */
static sqlite3_syscall_ptr g_pwrite, g_pwrite64;

/* disk_full: true (errno ENOSPC) when the write at hand is to fail. */
static bool disk_full(void)
{
    if (g_fail_writes <= 0)
        return false;
    g_fail_writes--;
    errno = ENOSPC;
    return true;
}

static ssize_t full_pwrite(int fd, const void *p, size_t n, off_t off)
{
    return disk_full() ? -1
                       : ((ssize_t(*)(int, const void *, size_t, off_t))g_pwrite)(fd, p, n, off);
}

static ssize_t full_pwrite64(int fd, const void *p, size_t n, off_t off)
{
    return disk_full()
               ? -1
               : ((ssize_t(*)(int, const void *, size_t, off_t))g_pwrite64)(fd, p, n, off);
}

static void test_failed_write_then_commit(void **state)
{
    /* frames spilled by a statement sit in the buffer; a read of them forces a write that
     * fails (disk full), and that statement fails. Whatever SQLite makes of it (3.40 rolls
     * the transaction back; were it to go on, the layer keeps the unwritten frames for the
     * commit's write), once space is back the data committed must read back whole through
     * the unix VFS, and the file must pass integrity_check. */
    (void)state;
    sqlite3_vfs *unix_vfs = sqlite3_vfs_find("unix");
    sqlite3 *w = open_db(NULL), *u;
    int src;
    assert_non_null(unix_vfs);
    g_pwrite = unix_vfs->xGetSystemCall(unix_vfs, "pwrite");
    g_pwrite64 = unix_vfs->xGetSystemCall(unix_vfs, "pwrite64");
    if (g_pwrite)
        unix_vfs->xSetSystemCall(unix_vfs, "pwrite", (sqlite3_syscall_ptr)full_pwrite);
    if (g_pwrite64)
        unix_vfs->xSetSystemCall(unix_vfs, "pwrite64", (sqlite3_syscall_ptr)full_pwrite64);
    assert_true(g_pwrite || g_pwrite64);

    exec_ok(w, "PRAGMA cache_size = 10");
    exec_ok(w, "BEGIN");
    exec_ok(w, "INSERT INTO t(id, c, b) SELECT id + 9000, c, b FROM t WHERE id < 200");
    g_fail_writes = 1;
    src = sqlite3_exec(w, "SELECT sum(length(b)) FROM t WHERE id >= 9000", NULL, NULL, NULL);
    print_message("the read that had to write: %s; in a transaction: %s\n", sqlite3_errstr(src),
                  sqlite3_get_autocommit(w) ? "no" : "yes");
    g_fail_writes = 0;
    if (sqlite3_get_autocommit(w)) { /* SQLite ended the transaction: do it again */
        exec_ok(w, "INSERT INTO t(id, c, b) SELECT id + 9000, c, b FROM t WHERE id < 200");
    } else {
        exec_ok(w, "COMMIT");
    }
    unix_vfs->xSetSystemCall(unix_vfs, NULL, NULL); /* every call back to the default */

    u = open_db("unix"); /* reads the committed frames from the file, no layer between */
    assert_int_equal(one_int(u, "SELECT count(*) FROM t WHERE id >= 9000"), 200);
    assert_int_equal(rows_whole(u), one_int(u, "SELECT count(*) FROM t"));
    assert_integrity_ok(u);
    sqlite3_close(u);
    sqlite3_close(w);
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
        cmocka_unit_test(test_failed_write_then_commit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
