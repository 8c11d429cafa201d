/* migrations.c: herald's PostgreSQL schema, one numbered migration per entry, with the
 * same version numbers as src/store/sqlite/migrations.c (1: meta, api_keys, jobs;
 * 2: docs, events, event_dedup, catalog; 3: messages, message_history; 4: api_keys.scope),
 * except where an entry says it is PostgreSQL's alone (8: catalog_slots; 10: dropping
 * events_dedup, which SQLite keeps: its 10 will be its own).
 *
 * Append only: to change the schema, add one line `{N + 1, "SQL..."},` at the end of
 * `migrations[]` (and the same version in the SQLite backend). Never edit or reorder an
 * entry that has shipped. Integers are BIGINT (ms since epoch, ids, counters); opaque
 * bodies are BYTEA; keys that are listed in byte order use COLLATE "C". */
#include "migrations.h"

#include "../../util/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct migration {
    int version;     /* 1, 2, 3, ... strictly increasing */
    const char *sql; /* one or more statements */
};

static const struct migration migrations[] = {
    {1, "CREATE TABLE meta("
        "  key TEXT COLLATE \"C\" PRIMARY KEY,"
        "  value BYTEA NOT NULL);"
        "CREATE TABLE api_keys("
        "  id BIGSERIAL PRIMARY KEY,"
        "  kind BIGINT NOT NULL,"
        "  prefix TEXT COLLATE \"C\" NOT NULL UNIQUE,"
        "  name TEXT NOT NULL,"
        "  hash BYTEA NOT NULL UNIQUE,"
        "  created_ms BIGINT NOT NULL,"
        "  revoked_ms BIGINT NOT NULL DEFAULT 0);"
        "CREATE TABLE jobs("
        "  id BIGSERIAL PRIMARY KEY,"
        "  kind TEXT COLLATE \"C\" NOT NULL,"
        "  payload BYTEA NOT NULL,"
        "  state BIGINT NOT NULL,"
        "  run_at_ms BIGINT NOT NULL,"
        "  lease_until_ms BIGINT NOT NULL DEFAULT 0,"
        "  lease_token BIGINT NOT NULL DEFAULT 0,"
        "  attempts BIGINT NOT NULL DEFAULT 0,"
        "  max_attempts BIGINT NOT NULL,"
        "  created_ms BIGINT NOT NULL,"
        "  last_error TEXT NOT NULL DEFAULT '',"
        "  dedup_key TEXT COLLATE \"C\" UNIQUE);"
        "CREATE INDEX jobs_runnable ON jobs(state, run_at_ms, id);"
        "CREATE INDEX jobs_leases ON jobs(lease_until_ms) WHERE state = 1;"},
    {2, "CREATE TABLE docs("
        "  coll TEXT COLLATE \"C\" NOT NULL,"
        "  id TEXT COLLATE \"C\" NOT NULL,"
        "  body BYTEA NOT NULL,"
        "  version BIGINT NOT NULL,"
        "  created_ms BIGINT NOT NULL,"
        "  updated_ms BIGINT NOT NULL,"
        "  PRIMARY KEY(coll, id));"
        "CREATE TABLE events("
        "  id BIGSERIAL PRIMARY KEY,"
        "  source_id BIGINT NOT NULL,"
        "  message_id TEXT NOT NULL,"
        "  type TEXT NOT NULL,"
        "  user_id TEXT NOT NULL,"
        "  body BYTEA NOT NULL,"
        "  received_ms BIGINT NOT NULL);"
        "CREATE INDEX events_dedup ON events(source_id, message_id, received_ms);"
        /* the latest stored event per (source, messageId): its primary key is what
         * makes the dedup window hold across nodes */
        "CREATE TABLE event_dedup("
        "  source_id BIGINT NOT NULL,"
        "  message_id TEXT NOT NULL,"
        "  event_id BIGINT NOT NULL,"
        "  received_ms BIGINT NOT NULL,"
        "  PRIMARY KEY(source_id, message_id));"
        "CREATE TABLE catalog("
        "  name TEXT COLLATE \"C\" PRIMARY KEY,"
        "  count BIGINT NOT NULL,"
        "  first_seen_ms BIGINT NOT NULL,"
        "  last_seen_ms BIGINT NOT NULL,"
        "  sample BYTEA NOT NULL);"},
    {3, "CREATE TABLE messages("
        "  seq BIGSERIAL PRIMARY KEY,"
        "  id TEXT COLLATE \"C\" NOT NULL UNIQUE,"
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
        "  spec BYTEA NOT NULL,"
        "  state BYTEA NOT NULL,"
        "  enqueued_ms BIGINT NOT NULL,"
        "  sent_ms BIGINT NOT NULL,"
        "  delivered_ms BIGINT NOT NULL,"
        "  canceled_ms BIGINT NOT NULL,"
        "  updated_ms BIGINT NOT NULL);"
        "CREATE INDEX messages_recipient ON messages(recipient, seq);"
        "CREATE INDEX messages_status ON messages(status, seq);"
        "CREATE INDEX messages_request ON messages(request_id);"
        "CREATE INDEX messages_run ON messages(run_id, seq);"
        "CREATE TABLE message_history("
        "  seq BIGSERIAL PRIMARY KEY,"
        "  message_id TEXT NOT NULL,"
        "  ts BIGINT NOT NULL,"
        "  type TEXT NOT NULL,"
        "  body BYTEA NOT NULL);"
        "CREATE INDEX message_history_msg ON message_history(message_id, seq);"},
    /* 4: a write key's scope, as on SQLite: 0 server (existing keys), 1 client */
    {4, "ALTER TABLE api_keys ADD COLUMN scope BIGINT NOT NULL DEFAULT 0;"},
    /* 5: leases taken over after they ran out (the poison-pill guard, queue.c) */
    {5, "ALTER TABLE jobs ADD COLUMN retaken BIGINT NOT NULL DEFAULT 0;"},
    /* 6: Courier's lists and their subscriptions, as on SQLite */
    {6, "CREATE TABLE lists("
        "  id TEXT COLLATE \"C\" PRIMARY KEY,"
        "  name TEXT NOT NULL,"
        "  preferences TEXT NOT NULL,"
        "  created_ms BIGINT NOT NULL,"
        "  updated_ms BIGINT NOT NULL,"
        "  deleted_ms BIGINT NOT NULL DEFAULT 0);"
        "CREATE TABLE list_subs("
        "  list_id TEXT COLLATE \"C\" NOT NULL,"
        "  user_id TEXT COLLATE \"C\" NOT NULL,"
        "  preferences TEXT NOT NULL,"
        "  created_ms BIGINT NOT NULL,"
        "  PRIMARY KEY(list_id, user_id));"
        "CREATE INDEX list_subs_user ON list_subs(user_id, list_id);"},
    /* 7: provider references to messages, for delivery receipts (issue 16) */
    {7, "CREATE TABLE msgrefs("
        "  provider TEXT NOT NULL,"
        "  reference TEXT NOT NULL,"
        "  message_id TEXT NOT NULL,"
        "  channel TEXT NOT NULL,"
        "  created_ms BIGINT NOT NULL,"
        "  PRIMARY KEY(provider, reference));"},
    /* 8 (PostgreSQL only; SQLite's single writer needs none of it): catalog counts
     * without a hot row. Each backend adds to its own row of catalog_slots (slot =
     * pg_backend_pid(): no two running transactions share one), so nodes never wait
     * for each other's count; rows of backends that are gone are folded into catalog
     * (pg.c, catalog_fold). catalog_all is what reads see: the base row plus every slot,
     * the sample of the latest add (seq). */
    {8, "CREATE SEQUENCE catalog_seq;"
        "ALTER TABLE catalog ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;"
        "CREATE TABLE catalog_slots("
        "  name TEXT COLLATE \"C\" NOT NULL,"
        "  slot BIGINT NOT NULL,"
        "  count BIGINT NOT NULL,"
        "  first_seen_ms BIGINT NOT NULL,"
        "  last_seen_ms BIGINT NOT NULL,"
        "  sample BYTEA NOT NULL,"
        "  seq BIGINT NOT NULL,"
        "  PRIMARY KEY(name, slot));"
        "CREATE VIEW catalog_all AS "
        "SELECT n.name, sum(n.count)::bigint AS count, min(n.first_seen_ms) AS first_seen_ms, "
        "  max(n.last_seen_ms) AS last_seen_ms, "
        "  (SELECT x.sample FROM (SELECT sample, seq FROM catalog_slots WHERE name = n.name "
        "    UNION ALL SELECT sample, seq FROM catalog WHERE name = n.name) x "
        "   ORDER BY x.seq DESC LIMIT 1) AS sample "
        "FROM (SELECT name, count, first_seen_ms, last_seen_ms FROM catalog "
        "  UNION ALL SELECT name, count, first_seen_ms, last_seen_ms FROM catalog_slots) n "
        "GROUP BY n.name;"},
    /* 9: no change to the tables. From here on runs and message specs may refer to
     * their event's data (data_event) instead of holding a copy, and only a herald that
     * derives it again may open the store: an older one refuses a newer schema, where it
     * would otherwise render those messages with empty data (a rollback, or an old node
     * beside new ones on PostgreSQL). */
    {9, "SELECT 1;"},
    /* 10 (PostgreSQL only): leaner accepts. events_dedup is SQLite's dedup lookup;
     * here event_dedup's primary key does that and nothing reads events by messageId
     * (nor did any earlier herald), so the index only cost every insert a random-key
     * btree write. Dropping it rewrites nothing and changes no statement's meaning, so
     * nodes still running the previous herald go on working beside it. */
    {10, "DROP INDEX events_dedup;"},
    /* 11: no change to the tables; a message's history may hold packed rows (see
     * SQLite's 11). Unlike 10, older nodes still running beside upgraded ones list those
     * rows as one event of type "+" (and miss them in a ?type= filter) until they are
     * upgraded too; a restarted old node refuses the store. */
    {11, "SELECT 1;"},
    /* 12: nothing here (SQLite's jobs_leases; this one has it since 1). */
    {12, "SELECT 1;"},
    /* next: {13, "..."}, */
};

#define NMIGRATIONS (sizeof migrations / sizeof migrations[0])

int pg_schema_latest(void)
{
    return migrations[NMIGRATIONS - 1].version;
}

/* map_res: an rc for a failed result (NULL: the connection failed). */
static int map_res(PGconn *conn, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(conn) != CONNECTION_OK || !state)
        return HR_UNAVAIL;
    if (strcmp(state, "53100") == 0)
        return HR_FULL;
    if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0)
        return HR_UNAVAIL;
    return HR_IO;
}

/* run: PQexec sql (optionally one text parameter list); true when it worked. *res is
 * the result (caller clears). */
static bool run(PGconn *conn, const char *sql, int nparams, const char *const *params,
                PGresult **res)
{
    ExecStatusType st;
    *res = nparams ? PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)
                   : PQexec(conn, sql);
    st = *res ? PQresultStatus(*res) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

int pg_migrate(PGconn *conn, int64_t now_ms, struct herr *err)
{
    int rc = HR_OK, current_max = 0;
    bool in_txn = false;
    const char *step = "begin";
    PGresult *res = NULL;
    char lock_sql[128], vbuf[24], nbuf[24];
    long long v = 0;

    for (size_t i = 1; i < NMIGRATIONS; i++)
        if (migrations[i].version <= migrations[i - 1].version) {
            rc = herr_set(err, HR_INVAL, "schema migrations are not in increasing order at %d",
                          migrations[i].version);
            goto out;
        }
    if (!run(conn, "BEGIN", 0, NULL, &res))
        goto fail;
    in_txn = true;
    PQclear(res);
    step = "lock";
    snprintf(lock_sql, sizeof lock_sql, "SELECT pg_advisory_xact_lock(%d, %d)", PG_LOCK_CLASS,
             PG_LOCK_MIGRATE);
    if (!run(conn, lock_sql, 0, NULL, &res))
        goto fail;
    PQclear(res);
    step = "schema_migrations";
    if (!run(conn,
             "SET LOCAL client_min_messages = warning;"
             "CREATE TABLE IF NOT EXISTS schema_migrations("
             "version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
             0, NULL, &res))
        goto fail;
    PQclear(res);
    if (!run(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, &res))
        goto fail;
    v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    res = NULL;
    current_max = (int)v;
    step = "version_check";
    if (v > pg_schema_latest()) {
        rc = herr_set(err, HR_INVAL,
                      "database schema version %lld is newer than this herald (knows up to %d)",
                      v, pg_schema_latest());
        goto out;
    }
    for (size_t i = 0; i < NMIGRATIONS; i++) {
        const char *params[2] = {vbuf, nbuf};
        snprintf(vbuf, sizeof vbuf, "%d", migrations[i].version);
        snprintf(nbuf, sizeof nbuf, "%lld", (long long)now_ms);
        step = "lookup";
        if (!run(conn, "SELECT 1 FROM schema_migrations WHERE version = $1::bigint", 1, params,
                 &res))
            goto fail;
        if (PQntuples(res) == 1) {
            PQclear(res);
            res = NULL;
            continue;
        }
        PQclear(res);
        step = "apply";
        if (!run(conn, migrations[i].sql, 0, NULL, &res)) {
            char q[300];
            rc = herr_set(err, map_res(conn, res), "schema migration %d failed: %s",
                          migrations[i].version, log_q(q, sizeof q, PQerrorMessage(conn)));
            goto out;
        }
        PQclear(res);
        step = "record";
        if (!run(conn,
                 "INSERT INTO schema_migrations(version, applied_ms) "
                 "VALUES($1::bigint, $2::bigint)",
                 2, params, &res))
            goto fail;
        PQclear(res);
        res = NULL;
        LOG_I("store.pg.migrated", "version=%d from=%d", migrations[i].version, current_max);
    }
    step = "commit";
    if (!run(conn, "COMMIT", 0, NULL, &res))
        goto fail;
    in_txn = false;
    goto out;
fail: {
    char q[300];
    rc = herr_set(err, map_res(conn, res), "schema migration (%s) failed: %s", step,
                  log_q(q, sizeof q, PQerrorMessage(conn)));
}
out:
    PQclear(res);
    if (rc < 0) {
        LOG_E("store.pg.migrate_failed", "step=%s rc=%s", step, hr_rc_str(rc));
        if (in_txn && PQstatus(conn) == CONNECTION_OK)
            PQclear(PQexec(conn, "ROLLBACK"));
    }
    return rc;
}
