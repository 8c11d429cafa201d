/* test_pcache.c: the page cache layer that skips empty truncations (src/store/sqlite/
 * pcache.h), under the writes that matter to it: b-tree balances (which key a page at
 * the lock page's number for a moment), a savepoint rolled back after the database grew
 * (the pages past its new end must go), and a second connection reading what the first
 * wrote. The data must come back whole, integrity_check must pass, and the layer must
 * have both skipped truncations (the commits) and passed some on (the rollbacks). */
#include "../../../src/store/sqlite/pcache.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlite_helpers.h"

static void one_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    out[0] = '\0';
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

/* insert n rows with keys from *next: random-keyed index entries and ~300-byte values
 * make the b-trees split and rebalance */
static void insert_rows(sqlite3 *db, int64_t *next, int n)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO t(k, r, v) VALUES(?, abs(random()) % "
                                        "1000000, randomblob(200 + ? % 200))",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (int i = 0; i < n; i++) {
        int64_t k = (*next)++;
        sqlite3_bind_int64(st, 1, k);
        sqlite3_bind_int64(st, 2, k);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

static void test_pcache_commits_and_rollbacks(void **state)
{
    char dir[] = "/tmp/herald-pcache-XXXXXX", path[128], ok[64], cmd[160];
    sqlite3 *w = NULL, *r = NULL;
    int64_t next = 1, kept = 0;
    uint64_t passed0, skipped0, passed1, skipped1;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.db", dir);
    sqlite_pcache_truncations(&passed0, &skipped0);
    assert_int_equal(sqlite3_open(path, &w), SQLITE_OK);
    exec_ok(w, "PRAGMA journal_mode = WAL; PRAGMA cache_size = -65536;"
               "CREATE TABLE t(k INTEGER PRIMARY KEY, r INTEGER NOT NULL, v BLOB NOT NULL);"
               "CREATE INDEX t_r ON t(r);");
    assert_int_equal(sqlite3_open(path, &r), SQLITE_OK);
    for (int round = 0; round < 40; round++) {
        exec_ok(w, "BEGIN IMMEDIATE"); /* plain inserts: nothing past the end to drop */
        insert_rows(w, &next, 200);
        kept += 200;
        exec_ok(w, "COMMIT");
        assert_int_equal(one_int(r, "SELECT count(*) FROM t"), kept);
        exec_ok(w, "BEGIN IMMEDIATE");
        insert_rows(w, &next, 300);
        kept += 300;
        exec_ok(w, "SAVEPOINT s");
        insert_rows(w, &next, 400); /* the file grows; then these pages are given back */
        exec_ok(w, "ROLLBACK TO s");
        exec_ok(w, "RELEASE s");
        insert_rows(w, &next, 100); /* reuses the page numbers given back */
        kept += 100;
        if (round % 5 == 4)
            exec_ok(w, "DELETE FROM t WHERE k % 7 = 0 AND k > 0");
        exec_ok(w, "COMMIT");
        if (round % 5 == 4)
            kept = one_int(w, "SELECT count(*) FROM t");
        /* a second connection reads the committed state from the file and the WAL */
        assert_int_equal(one_int(r, "SELECT count(*) FROM t"), kept);
    }
    assert_true(kept > 10000);
    assert_int_equal(one_int(w, "SELECT count(*) FROM t WHERE length(v) < 200"), 0);
    assert_int_equal(one_int(r, "SELECT count(*) FROM t INDEXED BY t_r WHERE r >= 0"), kept);
    one_text(w, "PRAGMA integrity_check", ok, sizeof ok);
    assert_string_equal(ok, "ok");
    exec_ok(w, "PRAGMA wal_checkpoint(TRUNCATE)");
    one_text(r, "PRAGMA integrity_check", ok, sizeof ok);
    assert_string_equal(ok, "ok");
    sqlite_pcache_truncations(&passed1, &skipped1);
    /* the plain commits found nothing to drop (pcache1 alone would have walked its whole
     * hash table at each once the balances used the lock page's number); the commits
     * after a rollback had pages past the end, and went through */
    assert_true(skipped1 - skipped0 >= 40);
    assert_true(passed1 - passed0 >= 40);
    sqlite3_close(r);
    sqlite3_close(w);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pcache_commits_and_rollbacks),
    };
    if (sqlite_pcache_install() != SQLITE_OK) {
        fprintf(stderr, "test_pcache: could not install the page cache layer\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
