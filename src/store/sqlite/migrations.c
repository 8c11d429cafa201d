/* migrations.c: herald's SQLite schema, one numbered migration per entry.
 *
 * Append only: to change the schema, add one line `{N + 1, "SQL..."},` at the end of
 * `migrations[]`. Never edit or reorder an entry that has shipped; a database records
 * which versions it has applied and will not run them again. */
#include "migrations.h"

#include "../../util/log.h"

#include <stdbool.h>
#include <stddef.h>

struct migration {
    int version;     /* 1, 2, 3, ... strictly increasing */
    const char *sql; /* one or more statements */
};

static const struct migration migrations[] = {
    {1, "CREATE TABLE meta("
        "  key TEXT PRIMARY KEY,"
        "  value BLOB NOT NULL);"
        "CREATE TABLE api_keys("
        "  id INTEGER PRIMARY KEY,"
        "  kind INTEGER NOT NULL,"
        "  prefix TEXT NOT NULL UNIQUE,"
        "  name TEXT NOT NULL,"
        "  hash BLOB NOT NULL UNIQUE,"
        "  created_ms INTEGER NOT NULL,"
        "  revoked_ms INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE jobs("
        "  id INTEGER PRIMARY KEY,"
        "  kind TEXT NOT NULL,"
        "  payload BLOB NOT NULL,"
        "  state INTEGER NOT NULL,"
        "  run_at_ms INTEGER NOT NULL,"
        "  lease_until_ms INTEGER NOT NULL DEFAULT 0,"
        "  lease_token INTEGER NOT NULL DEFAULT 0,"
        "  attempts INTEGER NOT NULL DEFAULT 0,"
        "  max_attempts INTEGER NOT NULL,"
        "  created_ms INTEGER NOT NULL,"
        "  last_error TEXT NOT NULL DEFAULT '',"
        "  dedup_key TEXT UNIQUE);"
        "CREATE INDEX jobs_runnable ON jobs(state, run_at_ms);"},
    {2, "CREATE TABLE docs("
        "  coll TEXT NOT NULL,"
        "  id TEXT NOT NULL,"
        "  body BLOB NOT NULL,"
        "  version INTEGER NOT NULL,"
        "  created_ms INTEGER NOT NULL,"
        "  updated_ms INTEGER NOT NULL,"
        "  PRIMARY KEY(coll, id)) WITHOUT ROWID;"
        "CREATE TABLE events("
        "  id INTEGER PRIMARY KEY,"
        "  source_id INTEGER NOT NULL,"
        "  message_id TEXT NOT NULL,"
        "  type TEXT NOT NULL,"
        "  user_id TEXT NOT NULL,"
        "  body BLOB NOT NULL,"
        "  received_ms INTEGER NOT NULL);"
        "CREATE INDEX events_dedup ON events(source_id, message_id, received_ms);"
        "CREATE TABLE catalog("
        "  name TEXT PRIMARY KEY,"
        "  count INTEGER NOT NULL,"
        "  first_seen_ms INTEGER NOT NULL,"
        "  last_seen_ms INTEGER NOT NULL,"
        "  sample BLOB NOT NULL) WITHOUT ROWID;"},
    {3, "CREATE TABLE messages("
        "  seq INTEGER PRIMARY KEY,"
        "  id TEXT NOT NULL UNIQUE,"
        "  request_id TEXT NOT NULL,"
        "  status TEXT NOT NULL,"
        "  recipient TEXT NOT NULL,"
        "  notification TEXT NOT NULL,"
        "  event TEXT NOT NULL,"
        "  trace_id TEXT NOT NULL,"
        "  run_id TEXT NOT NULL,"
        "  tags TEXT NOT NULL,"
        "  reason TEXT NOT NULL,"
        "  error TEXT NOT NULL,"
        "  spec BLOB NOT NULL,"
        "  state BLOB NOT NULL,"
        "  enqueued_ms INTEGER NOT NULL,"
        "  sent_ms INTEGER NOT NULL,"
        "  delivered_ms INTEGER NOT NULL,"
        "  canceled_ms INTEGER NOT NULL,"
        "  updated_ms INTEGER NOT NULL);"
        "CREATE INDEX messages_recipient ON messages(recipient, seq);"
        "CREATE INDEX messages_status ON messages(status, seq);"
        "CREATE INDEX messages_request ON messages(request_id);"
        "CREATE INDEX messages_run ON messages(run_id, seq);"
        "CREATE TABLE message_history("
        "  seq INTEGER PRIMARY KEY,"
        "  message_id TEXT NOT NULL,"
        "  ts INTEGER NOT NULL,"
        "  type TEXT NOT NULL,"
        "  body BLOB NOT NULL);"
        "CREATE INDEX message_history_msg ON message_history(message_id, seq);"},
    /* 4: a write key's scope (issue 12): 0 server (every key before this version, so
     * existing installations keep working), 1 client (a key shipped to browsers) */
    {4, "ALTER TABLE api_keys ADD COLUMN scope INTEGER NOT NULL DEFAULT 0;"},
    /* 5: leases taken over after they ran out (the poison-pill guard, queue.c) */
    {5, "ALTER TABLE jobs ADD COLUMN retaken INTEGER NOT NULL DEFAULT 0;"},
    /* 6: Courier's lists and their subscriptions (issue 15); preferences are JSON text, ''
     * for none; a deleted list keeps its subscriptions until restored */
    {6, "CREATE TABLE lists("
        "  id TEXT PRIMARY KEY,"
        "  name TEXT NOT NULL,"
        "  preferences TEXT NOT NULL,"
        "  created_ms INTEGER NOT NULL,"
        "  updated_ms INTEGER NOT NULL,"
        "  deleted_ms INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
        "CREATE TABLE list_subs("
        "  list_id TEXT NOT NULL,"
        "  user_id TEXT NOT NULL,"
        "  preferences TEXT NOT NULL,"
        "  created_ms INTEGER NOT NULL,"
        "  PRIMARY KEY(list_id, user_id)) WITHOUT ROWID;"
        "CREATE INDEX list_subs_user ON list_subs(user_id, list_id);"},
    /* 7: provider references to messages, for delivery receipts (issue 16) */
    {7, "CREATE TABLE msgrefs("
        "  provider TEXT NOT NULL,"
        "  reference TEXT NOT NULL,"
        "  message_id TEXT NOT NULL,"
        "  channel TEXT NOT NULL,"
        "  created_ms INTEGER NOT NULL,"
        "  PRIMARY KEY(provider, reference)) WITHOUT ROWID;"},
    /* 8: docs as a rowid table (the same columns and primary key, which becomes a unique
     * index). In a WITHOUT ROWID table a row is an index cell, kept in its page only up to
     * about 1,000 bytes with 4 KiB pages: a run's document (~1.7 KB) had an overflow page
     * of its own, mostly empty, written again at every update. A rowid table keeps rows
     * up to ~4,000 bytes in place, appends new ones at its end, and an update rewrites
     * only the row's page. Copies every document once, at the first open. */
    {8, "CREATE TABLE docs_v8("
        "  coll TEXT NOT NULL,"
        "  id TEXT NOT NULL,"
        "  body BLOB NOT NULL,"
        "  version INTEGER NOT NULL,"
        "  created_ms INTEGER NOT NULL,"
        "  updated_ms INTEGER NOT NULL,"
        "  PRIMARY KEY(coll, id));"
        "INSERT INTO docs_v8(coll, id, body, version, created_ms, updated_ms)"
        "  SELECT coll, id, body, version, created_ms, updated_ms FROM docs ORDER BY coll, id;"
        "DROP TABLE docs;"
        "ALTER TABLE docs_v8 RENAME TO docs;"},
    /* 9: no change to the tables. From here on runs and message specs may refer to
     * their event's data (data_event) instead of holding a copy, and only a herald that
     * derives it again may open the store: an older one refuses a newer schema, where it
     * would otherwise render those messages with empty data (a rollback, or an old node
     * beside new ones on PostgreSQL). */
    {9, "SELECT 1;"},
    /* 10: nothing here. PostgreSQL's 10 drops events_dedup, which SQLite's dedup reads;
     * the number is kept so that both lists mean the same from 11 on. */
    {10, "SELECT 1;"},
    /* 11 (both stores): no change to the tables. From here on the events a route or a
     * delivery appends to a message's history together are one row of type "+"
     * (STORE_HISTORY_PACKED, store.c), which an older herald would list as one event of
     * that type: it refuses the newer schema instead. */
    {11, "SELECT 1;"},
    /* 12: the ends of the leases in order (PostgreSQL has had jobs_leases since 1): an
     * idle worker asks for the earliest (store_job_next_run_at), and without the index
     * that walked every leased job, thousands under load, at each idle moment. */
    {12, "CREATE INDEX jobs_leases ON jobs(lease_until_ms) WHERE state = 1;"},
    /* next: {13, "..."}. */
};

#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])

int sqlite_schema_latest(void)
{
    return migrations[NMIGRATIONS - 1].version;
}

/* step1: run a one-statement SQL with optional int64 binds; *out (may be NULL) gets the
 * first column of the first row, or -1 when there is none. Returns an SQLite code. */
static int step1(sqlite3 *db, const char *sql, int nbind, const int64_t *binds, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (src != SQLITE_OK)
        goto out;
    for (int i = 0; i < nbind && src == SQLITE_OK; i++)
        src = sqlite3_bind_int64(st, i + 1, binds[i]);
    if (src != SQLITE_OK)
        goto out;
    if (out)
        *out = -1;
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        if (out && sqlite3_column_type(st, 0) != SQLITE_NULL)
            *out = sqlite3_column_int64(st, 0);
        src = SQLITE_OK;
    } else if (src == SQLITE_DONE) {
        src = SQLITE_OK;
    }
out:
    sqlite3_finalize(st);
    return src;
}

static int map_src(int src)
{
    switch (src & 0xff) {
    case SQLITE_FULL:
        return HR_FULL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return HR_BUSY;
    default:
        return HR_IO;
    }
}

int sqlite_migrate(sqlite3 *db, int64_t now_ms, struct herr *err)
{
    return sqlite_migrate_to(db, now_ms, sqlite_schema_latest(), err);
}

int sqlite_migrate_to(sqlite3 *db, int64_t now_ms, int upto, struct herr *err)
{
    int rc = HR_OK, src, current_max = 0;
    bool in_txn = false;
    const char *step = "begin";
    int64_t v = 0;

    for (size_t i = 1; i < NMIGRATIONS; i++)
        if (migrations[i].version <= migrations[i - 1].version) {
            rc = herr_set(err, HR_INVAL, "schema migrations are not in increasing order at %d",
                          migrations[i].version);
            goto out;
        }
    src = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (src != SQLITE_OK)
        goto fail;
    in_txn = true;
    step = "schema_migrations";
    src = sqlite3_exec(db,
                       "CREATE TABLE IF NOT EXISTS schema_migrations("
                       "version INTEGER PRIMARY KEY, applied_ms INTEGER)",
                       NULL, NULL, NULL);
    if (src != SQLITE_OK)
        goto fail;
    src = step1(db, "SELECT max(version) FROM schema_migrations", 0, NULL, &v);
    if (src != SQLITE_OK)
        goto fail;
    current_max = v < 0 ? 0 : (int)v;
    step = "version_check";
    if (v > sqlite_schema_latest()) {
        rc = herr_set(err, HR_INVAL,
                      "database schema version %lld is newer than this herald (knows up to %d)",
                      (long long)v, sqlite_schema_latest());
        goto out;
    }
    for (size_t i = 0; i < NMIGRATIONS && migrations[i].version <= upto; i++) {
        int64_t bind[2] = {migrations[i].version, now_ms};
        step = "lookup";
        src = step1(db, "SELECT 1 FROM schema_migrations WHERE version = ?1", 1, bind, &v);
        if (src != SQLITE_OK)
            goto fail;
        if (v == 1)
            continue;
        step = "apply";
        src = sqlite3_exec(db, migrations[i].sql, NULL, NULL, NULL);
        if (src != SQLITE_OK) {
            rc = herr_set(err, map_src(src), "schema migration %d failed: %s",
                          migrations[i].version, sqlite3_errmsg(db));
            goto out;
        }
        step = "record";
        src = step1(db, "INSERT INTO schema_migrations(version, applied_ms) VALUES(?1, ?2)", 2,
                    bind, NULL);
        if (src != SQLITE_OK)
            goto fail;
        LOG_I("store.sqlite.migrated", "version=%d from=%d", migrations[i].version, current_max);
    }
    step = "commit";
    src = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (src != SQLITE_OK)
        goto fail;
    in_txn = false;
    goto out;
fail:
    rc = herr_set(err, map_src(src), "schema migration (%s) failed: %s", step, sqlite3_errmsg(db));
out:
    if (rc < 0) {
        LOG_E("store.sqlite.migrate_failed", "step=%s rc=%s", step, hr_rc_str(rc));
        if (in_txn && !sqlite3_get_autocommit(db))
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}
