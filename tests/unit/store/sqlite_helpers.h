/* sqlite_helpers.h: small helpers for the tests that drive SQLite directly (test_pcache,
 * test_walbuf): run SQL that must succeed, read one integer, check a file's integrity.
 * Include after cmocka.h and sqlite3.h. */
#ifndef HERALD_TEST_SQLITE_HELPERS_H
#define HERALD_TEST_SQLITE_HELPERS_H

/* exec_ok: run sql (several statements allowed); fail the test with SQLite's message. */
static inline void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int src = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (src != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errstr(src));
}

/* one_int: the first column of sql's first row; -1 when there is no row. */
static inline int64_t one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* assert_integrity_ok: PRAGMA integrity_check answers "ok". */
static inline void assert_integrity_ok(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

#endif
