/* pg.c: the PostgreSQL backend of struct store_ops (contracts in ../store.h), over libpq.
 *
 * Several herald nodes may share one database, so everything the SQLite backend gets
 * from its single writer comes from the database here:
 *   - store_write runs fn in its own READ COMMITTED transaction on a pooled connection;
 *     on a serialization failure or a deadlock (40001, 40P01) it rolls back and runs fn
 *     again (up to WRITE_TRIES times, with a short jittered sleep).
 *   - read-modify-write: doc_get_txn and message_get_txn read with FOR UPDATE; only
 *     when the document is absent does doc_get_txn take a transaction advisory lock on
 *     (coll, id) and read again, so two transactions that both find it absent cannot
 *     both create it (an existing document costs its row lock alone).
 *   - dedup is a constraint: jobs.dedup_key is UNIQUE, event_dedup has the primary key
 *     (source_id, message_id) and is claimed with INSERT ... ON CONFLICT DO UPDATE ...
 *     WHERE the earlier event is outside the window.
 *   - jobs are leased with FOR UPDATE SKIP LOCKED; a lease held by a node that died
 *     simply runs out (job_expire_leases is NULL: a live node may hold it).
 *   - a commit that made jobs runnable asks the listener thread to send NOTIFY
 *     herald_jobs after it (not inside the transaction: PostgreSQL serializes every
 *     committing transaction that notified, on one lock held through its WAL flush, which
 *     made Lock:object waits half of all backend samples with fsync on). The listener
 *     sends one NOTIFY for all the commits since its last (asynchronous commit: a
 *     wake-up, nothing durable), LISTENs, and calls on_jobs, so idle nodes wake. A node
 *     killed between a commit and its NOTIFY leaves the others to find the jobs at their
 *     next lease timer (lease_ms / 4).
 *
 * Connections: a bounded pool (HERALD_PG_POOL, default 8), opened lazily, lent for one
 * read or one write. A connection found broken is closed and reopened on next use.
 * Inside a write fn, reads of the same store run on the transaction's connection.
 * Statements are prepared lazily per connection, named by their index; parameters are
 * sent as text (integers) or binary (strings, bytes), results come back binary.
 * store_txn_sub's SAVEPOINT and RELEASE are sent late, with the next statement (see
 * ctl_defer).
 *
 * Locking: `mu` guards the pool, the waiter count and the stats; `cb_lock` guards the
 * on_jobs fields (read-locked while a listener runs). Neither is held while SQL runs. */
#include "pg.h"

#include "migrations.h"

#include "../../util/arena.h"
#include "../../util/clock.h"
#include "../../util/crypto.h"
#include "../../util/json.h"
#include "../../util/log.h"
#include "../../util/str.h"
#include "../../util/xalloc.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define POOL_DEFAULT 8
#define GROUP_MAX 64 /* shared writes in one transaction */
#define POOL_MAX 256
#define WAITERS_MAX 8192             /* writers waiting for a connection before HR_AGAIN */
#define WAIT_MAX_MS 2000             /* ... or when the oldest has waited this long */
#define WRITE_TRIES 5                /* runs of fn on serialization failure / deadlock */
#define KIND_MAX 31
#define META_KEY_MAX 255
#define DEDUP_KEY_MAX 255
#define ERROR_TEXT_MAX 4096
#define LEASE_BATCH_MAX 1000
#define LEASE_MS_MAX (7LL * 24 * 3600 * 1000)
#define KINDS_MAX 256
#define LIST_MAX 100000
#define DEFAULT_MAX_ATTEMPTS 25
#define CATALOG_NAME_MAX 1024
#define MSG_TEXT_MAX 4096
#define NPARAMS_MAX 20
#define CHANNEL "herald_jobs"
#define LISTEN_POLL_MS 1000

/* ---- SQL ---------------------------------------------------------------------------- */

#define KEY_COLS "id, kind, prefix, name, hash, created_ms, revoked_ms, scope"
#define JOB_COLS                                                                            \
    "id, kind, payload, state, run_at_ms, lease_until_ms, lease_token, attempts, "         \
    "max_attempts, created_ms, last_error, retaken"
#define DOC_COLS "coll, id, body, version, created_ms, updated_ms"
#define EVENT_COLS "id, source_id, message_id, type, user_id, body, received_ms"
#define CATALOG_COLS "name, count, first_seen_ms, last_seen_ms, sample"
#define MSG_COLS                                                                             \
    "id, request_id, status, recipient, notification, event, trace_id, run_id, tags, reason, " \
    "error, spec, state, enqueued_ms, sent_ms, delivered_ms, canceled_ms, updated_ms"
#define STR_(x) #x
#define STR(x) STR_(x)

enum stmt_id {
    S_PING,
    S_META_SET,
    S_META_GET,
    S_META_ADD,
    S_KEY_INSERT,
    S_KEY_FIND,
    S_KEY_LIST,
    S_KEY_REVOKE,
    S_KEY_COUNT,
    S_JOB_INSERT,
    S_JOB_INSERT_PLAIN,
    S_JOB_BY_DEDUP,
    S_JOB_LEASE,
    S_JOB_ACK,
    S_JOB_ACK_MANY,
    S_JOB_RETRY,
    S_JOB_DEAD,
    S_JOB_RELEASE,
    S_JOB_DEFER,
    S_JOB_EXTEND,
    S_JOB_GET,
    S_JOB_COUNTS,
    S_JOB_NEXT,
    S_JOB_NEXT_QUEUED,
    S_JOB_LIST,
    S_DOC_GET,
    S_DOC_LOCK,
    S_DOC_GET_FOR_UPDATE,
    S_DOC_PUT,
    S_DOC_DELETE,
    S_DOC_CREATE,
    S_DOC_CREATE_MANY,
    S_DOC_LIST,
    S_EVENT_CLAIM,
    S_EVENT_HOLDER,
    S_EVENT_INSERT,
    S_EVENT_ACCEPT_MANY,
    S_EVENT_GET,
    S_CATALOG_TOUCH,
    S_CATALOG_FOLD,
    S_CATALOG_GET,
    S_CATALOG_LIST,
    S_MSG_INSERT,
    S_MSG_UPDATE,
    S_MSG_GET,
    S_MSG_GET_FOR_UPDATE,
    S_MSG_LIST,
    S_MSG_LIST_ID,
    S_MSG_LIST_RECIPIENT,
    S_MSG_LIST_RUN,
    S_MSG_LIST_STATUS,
    S_HIST_APPEND,
    S_HIST_LIST,
    S_COUNT
};

/* the message list with an optional leading filter that names an indexed column. $2 is
 * one status, $10 several joined by commas, $5 tags joined by commas (any of them), $11
 * one message id, $12 enqueued after (ms, 0: any). */
#define MSG_LIST_WHERE(lead)                                                                  \
    "SELECT " MSG_COLS " FROM messages WHERE " lead " ($1::text = '' OR recipient = $1::text) " \
    "AND ($2::text = '' OR status = $2::text) "                                              \
    "AND ($3::text = '' OR notification = $3::text) "                                        \
    "AND ($4::text = '' OR event = $4::text) "                                               \
    "AND ($5::text = '' OR tags::jsonb ?| string_to_array($5::text, ',')) "                  \
    "AND ($6::text = '' OR trace_id = $6::text) AND ($7::text = '' OR run_id = $7::text) "   \
    "AND ($8::text = '' OR seq < (SELECT m2.seq FROM messages m2 WHERE m2.id = $8::text)) " \
    "AND ($10::text = '' OR status = ANY(string_to_array($10::text, ','))) "                 \
    "AND ($11::text = '' OR id = $11::text) "                                                \
    "AND ($12::bigint = 0 OR enqueued_ms > $12::bigint) "                                    \
    "ORDER BY seq DESC LIMIT $9::bigint"

static const char *const SQL[S_COUNT] = {
    [S_PING] = "SELECT 1",
    [S_META_SET] = "INSERT INTO meta(key, value) VALUES($1::text, $2::bytea) "
                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    [S_META_GET] = "SELECT value FROM meta WHERE key = $1::text",
    [S_META_ADD] = "INSERT INTO meta(key, value) VALUES($1::text, $2::bytea) "
                   "ON CONFLICT(key) DO NOTHING",
    [S_KEY_INSERT] = "INSERT INTO api_keys(kind, prefix, name, hash, created_ms, revoked_ms, scope) "
                     "VALUES($1::bigint, $2::text, $3::text, $4::bytea, $5::bigint, $6::bigint, "
                     "$7::bigint) "
                     "ON CONFLICT DO NOTHING RETURNING id",
    [S_KEY_FIND] = "SELECT " KEY_COLS " FROM api_keys WHERE hash = $1::bytea AND revoked_ms = 0",
    [S_KEY_LIST] = "SELECT " KEY_COLS " FROM api_keys ORDER BY created_ms DESC, id DESC",
    [S_KEY_REVOKE] = "UPDATE api_keys SET revoked_ms = $1::bigint "
                     "WHERE prefix = $2::text AND revoked_ms = 0",
    [S_KEY_COUNT] = "SELECT count(*) FROM api_keys WHERE revoked_ms = 0 "
                    "AND ($1::bigint = 0 OR kind = $1::bigint)",
    [S_JOB_INSERT] =
        "INSERT INTO jobs(kind, payload, state, run_at_ms, max_attempts, created_ms, dedup_key, "
        "lease_until_ms, lease_token, attempts) "
        "VALUES($1::text, $2::bytea, CASE WHEN $7::bigint > 0 THEN 1 ELSE 0 END, $3::bigint, "
        "$4::bigint, $5::bigint, $6::text, $7::bigint, $8::bigint, "
        "CASE WHEN $7::bigint > 0 THEN 1 ELSE 0 END) "
        "ON CONFLICT(dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING RETURNING id",
    /* S_JOB_INSERT for a job without a dedup key ($6 NULL): nothing to conflict with,
     * so no ON CONFLICT and none of the speculative insertion it costs */
    [S_JOB_INSERT_PLAIN] =
        "INSERT INTO jobs(kind, payload, state, run_at_ms, max_attempts, created_ms, dedup_key, "
        "lease_until_ms, lease_token, attempts) "
        "VALUES($1::text, $2::bytea, CASE WHEN $7::bigint > 0 THEN 1 ELSE 0 END, $3::bigint, "
        "$4::bigint, $5::bigint, $6::text, $7::bigint, $8::bigint, "
        "CASE WHEN $7::bigint > 0 THEN 1 ELSE 0 END) RETURNING id",
    [S_JOB_BY_DEDUP] = "SELECT id FROM jobs WHERE dedup_key = $1::text",
    /* runnable: queued and due, or leased with the lease run out (at most $6 of them
     * already taken over before: the caller's max_repeat);
     * rows another transaction is leasing right now are skipped, not waited for. Each
     * row gets its own token: the caller's random value mixed with the server's. */
    [S_JOB_LEASE] =
        "WITH queued AS (SELECT id, run_at_ms FROM jobs "
        " WHERE state = 0 AND run_at_ms <= $1::bigint "
        " AND ($3::text[] IS NULL OR kind = ANY($3::text[])) "
        " ORDER BY run_at_ms, id LIMIT $4::bigint FOR UPDATE SKIP LOCKED), "
        "taken AS (SELECT id, run_at_ms FROM jobs "
        " WHERE state = 1 AND lease_until_ms <= $1::bigint AND retaken = 0 "
        " AND ($3::text[] IS NULL OR kind = ANY($3::text[])) "
        " ORDER BY run_at_ms, id LIMIT $4::bigint FOR UPDATE SKIP LOCKED), "
        "repeat AS (SELECT id, run_at_ms FROM jobs "
        " WHERE state = 1 AND lease_until_ms <= $1::bigint AND retaken > 0 "
        " AND ($3::text[] IS NULL OR kind = ANY($3::text[])) "
        " ORDER BY run_at_ms, id LIMIT $6::bigint FOR UPDATE SKIP LOCKED), "
        "picked AS (SELECT id FROM (SELECT * FROM queued UNION ALL SELECT * FROM taken "
        " UNION ALL SELECT * FROM repeat) u ORDER BY run_at_ms, id LIMIT $4::bigint) "
        "UPDATE jobs SET state = 1, lease_until_ms = $2::bigint, attempts = attempts + 1, "
        " retaken = jobs.retaken + CASE WHEN jobs.state = 1 THEN 1 ELSE 0 END, "
        " lease_token = ((($5::bigint # (random() * 4611686018427387903)::bigint) # jobs.id) "
        "  & 4611686018427387903) + 1 "
        "FROM picked WHERE jobs.id = picked.id RETURNING "
        "jobs.id, jobs.kind, jobs.payload, jobs.state, jobs.run_at_ms, jobs.lease_until_ms, "
        "jobs.lease_token, jobs.attempts, jobs.max_attempts, jobs.created_ms, jobs.last_error, "
        "jobs.retaken",
    /* around S_JOB_LEASE: the planner's row counts of jobs are those of its last ANALYZE
     * (autovacuum's, or none yet), often of an empty queue; it then reads a backlog whole
     * through a bitmap and sorts it for each lease (5,000 queued: 4 ms a lease, 0.2 ms
     * by the index in its order) */
    [S_JOB_ACK] = "DELETE FROM jobs WHERE id = $1::bigint AND state = 1 "
                  "AND lease_token = $2::bigint",
    /* the PK's index finds each id (= ANY), and each must carry its own token (a token
     * matched against the whole array would let one job's token ack another job).
     * "state + 0": a plain state = 1 let the planner AND in the whole of the partial
     * index jobs_leases, dead entries and all (6 ms a call under the track bench, where
     * the PK's lookups alone take 0.2 ms) */
    [S_JOB_ACK_MANY] = "DELETE FROM jobs WHERE id = ANY($1::bigint[]) AND state + 0 = 1 "
                       "AND lease_token = ($2::bigint[])[array_position($1::bigint[], id)]",
    [S_JOB_RETRY] = "UPDATE jobs SET state = 0, run_at_ms = $3::bigint, last_error = $4::text, "
                    "lease_until_ms = 0, lease_token = 0, retaken = 0 "
                    "WHERE id = $1::bigint AND state = 1 AND lease_token = $2::bigint",
    [S_JOB_DEAD] = "UPDATE jobs SET state = 2, last_error = $3::text, lease_until_ms = 0, "
                   "lease_token = 0 WHERE id = $1::bigint AND state = 1 "
                   "AND lease_token = $2::bigint",
    [S_JOB_RELEASE] = "UPDATE jobs SET state = 0, attempts = greatest(attempts - 1, 0), "
                      "lease_until_ms = 0, lease_token = 0, retaken = 0 "
                      "WHERE id = $1::bigint AND state = 1 AND lease_token = $2::bigint",
    [S_JOB_DEFER] = "UPDATE jobs SET state = 0, attempts = greatest(attempts - 1, 0), "
                    "run_at_ms = $3::bigint, lease_until_ms = 0, lease_token = 0, retaken = 0 "
                    "WHERE id = $1::bigint AND state = 1 AND lease_token = $2::bigint",
    [S_JOB_EXTEND] = "UPDATE jobs SET lease_until_ms = $3::bigint "
                     "WHERE id = $1::bigint AND state = 1 AND lease_token = $2::bigint",
    [S_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = $1::bigint",
    [S_JOB_COUNTS] = "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state "
                     "ORDER BY kind, state",
    [S_JOB_NEXT_QUEUED] = "SELECT min(run_at_ms) FROM jobs WHERE state = 0",
    [S_JOB_NEXT] = "SELECT least((SELECT min(run_at_ms) FROM jobs WHERE state = 0), "
                   "(SELECT min(lease_until_ms) FROM jobs WHERE state = 1))",
    [S_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs WHERE state = $1::bigint "
                   "ORDER BY id DESC LIMIT $2::bigint",
    [S_DOC_GET] = "SELECT " DOC_COLS " FROM docs WHERE coll = $1::text AND id = $2::text",
    [S_DOC_LOCK] = "SELECT pg_advisory_xact_lock(" STR(PG_LOCK_DOC_CLASS) ", "
                   "hashtext($1::text || '/' || $2::text))",
    [S_DOC_GET_FOR_UPDATE] = "SELECT " DOC_COLS " FROM docs WHERE coll = $1::text "
                             "AND id = $2::text FOR UPDATE",
    [S_DOC_PUT] = "INSERT INTO docs(coll, id, body, version, created_ms, updated_ms) "
                  "VALUES($1::text, $2::text, $3::bytea, 1, $4::bigint, $4::bigint) "
                  "ON CONFLICT(coll, id) DO UPDATE SET body = excluded.body, "
                  "version = docs.version + 1, updated_ms = excluded.updated_ms "
                  "RETURNING version",
    [S_DOC_DELETE] = "DELETE FROM docs WHERE coll = $1::text AND id = $2::text",
    [S_DOC_CREATE] = "INSERT INTO docs(coll, id, body, version, created_ms, updated_ms) "
                     "VALUES($1::text, $2::text, $3::bytea, 1, $4::bigint, $4::bigint) "
                     "ON CONFLICT(coll, id) DO NOTHING",
    /* in byte order of the ids (COLLATE "C", as strcmp sorts lock_docs' keys): two of
     * these, or one and a transaction creating one by one, take their keys in one order */
    [S_DOC_CREATE_MANY] =
        "INSERT INTO docs(coll, id, body, version, created_ms, updated_ms) "
        "SELECT $1::text, u.id, $3::bytea, 1, u.t, u.t "
        "FROM unnest($2::text[], $4::bigint[]) AS u(id, t) ORDER BY u.id COLLATE \"C\" "
        "ON CONFLICT(coll, id) DO NOTHING",
    [S_DOC_LIST] = "SELECT " DOC_COLS " FROM docs WHERE coll = $1::text AND id > $2::text "
                   "AND starts_with(id, $3::text) ORDER BY id LIMIT $4::bigint",
    /* claim (source, messageId) for a new event id unless the holder is within the
     * window; the row lock makes concurrent claims of one key wait for each other */
    [S_EVENT_CLAIM] =
        "INSERT INTO event_dedup(source_id, message_id, event_id, received_ms) "
        "VALUES($1::bigint, $2::text, nextval('events_id_seq'::regclass), "
        "$3::bigint) ON CONFLICT(source_id, message_id) DO UPDATE SET "
        "event_id = excluded.event_id, received_ms = excluded.received_ms "
        "WHERE event_dedup.received_ms < $4::bigint RETURNING event_id",
    [S_EVENT_HOLDER] = "SELECT event_id FROM event_dedup WHERE source_id = $1::bigint "
                       "AND message_id = $2::text",
    [S_EVENT_INSERT] =
        "INSERT INTO events(id, source_id, message_id, type, user_id, body, received_ms) "
        "VALUES($1::bigint, $2::bigint, $3::text, $4::text, $5::text, $6::bytea, $7::bigint)",
    /* S_EVENT_CLAIM and S_EVENT_INSERT for many events in one statement (no two with one
     * (source, messageId)): claimed in the order given, so their ids follow it; answers
     * the ordinal (1-based) and new id of each event claimed, none for a duplicate */
    [S_EVENT_ACCEPT_MANY] =
        "WITH u AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], "
        " $5::bytea[], $6::bigint[]) WITH ORDINALITY AS u(s, m, ty, uid, b, r, i)), "
        "c AS (INSERT INTO event_dedup(source_id, message_id, event_id, received_ms) "
        " SELECT s, m, nextval('events_id_seq'::regclass), r FROM u ORDER BY i "
        " ON CONFLICT(source_id, message_id) DO UPDATE SET "
        " event_id = excluded.event_id, received_ms = excluded.received_ms "
        " WHERE event_dedup.received_ms < excluded.received_ms - $7::bigint "
        " RETURNING source_id, message_id, event_id), "
        "k AS (SELECT u.*, c.event_id FROM c JOIN u ON u.s = c.source_id AND u.m = c.message_id), "
        "e AS (INSERT INTO events(id, source_id, message_id, type, user_id, body, received_ms) "
        " SELECT event_id, s, m, ty, uid, b, r FROM k) "
        "SELECT i, event_id FROM k",
    [S_EVENT_GET] = "SELECT " EVENT_COLS " FROM events WHERE id = $1::bigint",
    /* this backend's own row of the name (migration 8): no other running transaction
     * writes it, so counting never waits for another node's transaction */
    [S_CATALOG_TOUCH] =
        "INSERT INTO catalog_slots(name, slot, count, first_seen_ms, last_seen_ms, sample, seq) "
        "VALUES($1::text, pg_backend_pid(), $4::bigint, $2::bigint, $5::bigint, $3::bytea, "
        "nextval('catalog_seq')) ON CONFLICT(name, slot) "
        "DO UPDATE SET count = catalog_slots.count + excluded.count, "
        "first_seen_ms = least(catalog_slots.first_seen_ms, excluded.first_seen_ms), "
        "last_seen_ms = greatest(catalog_slots.last_seen_ms, excluded.last_seen_ms), "
        "sample = excluded.sample, seq = excluded.seq",
    /* the rows of backends that are gone, moved into the base rows (exact whatever the
     * liveness test says: what is deleted is what is added); one folder at a time */
    [S_CATALOG_FOLD] =
        "WITH lk AS (SELECT pg_try_advisory_xact_lock(" STR(PG_LOCK_CLASS) ", "
        STR(PG_LOCK_CATALOG_FOLD) ") AS ok), "
        "gone AS (DELETE FROM catalog_slots s USING lk WHERE lk.ok AND NOT EXISTS "
        " (SELECT 1 FROM pg_stat_activity a WHERE a.pid = s.slot) "
        " RETURNING s.name, s.count, s.first_seen_ms, s.last_seen_ms, s.sample, s.seq), "
        "agg AS (SELECT name, sum(count)::bigint AS c, min(first_seen_ms) AS f, "
        " max(last_seen_ms) AS l, max(seq) AS q FROM gone GROUP BY name) "
        "INSERT INTO catalog(name, count, first_seen_ms, last_seen_ms, sample, seq) "
        "SELECT agg.name, agg.c, agg.f, agg.l, (SELECT g.sample FROM gone g "
        " WHERE g.name = agg.name ORDER BY g.seq DESC LIMIT 1), agg.q FROM agg "
        "ON CONFLICT(name) DO UPDATE SET count = catalog.count + excluded.count, "
        "first_seen_ms = least(catalog.first_seen_ms, excluded.first_seen_ms), "
        "last_seen_ms = greatest(catalog.last_seen_ms, excluded.last_seen_ms), "
        "sample = CASE WHEN excluded.seq > catalog.seq THEN excluded.sample "
        " ELSE catalog.sample END, seq = greatest(catalog.seq, excluded.seq)",
    [S_CATALOG_GET] = "SELECT " CATALOG_COLS " FROM catalog_all WHERE name = $1::text",
    [S_CATALOG_LIST] = "SELECT " CATALOG_COLS " FROM catalog_all WHERE name > $1::text "
                       "AND ($2::text = '' OR strpos(lower(name), lower($2::text)) > 0) "
                       "ORDER BY name LIMIT $3::bigint",
    [S_MSG_INSERT] =
        "INSERT INTO messages(" MSG_COLS ") VALUES($1::text, $2::text, $3::text, $4::text, "
        "$5::text, $6::text, $7::text, $8::text, $9::text, $10::text, $11::text, $12::bytea, "
        "$13::bytea, $14::bigint, $15::bigint, $16::bigint, $17::bigint, $18::bigint) "
        "ON CONFLICT(id) DO NOTHING",
    [S_MSG_UPDATE] =
        "UPDATE messages SET request_id = $2::text, status = $3::text, recipient = $4::text, "
        "notification = $5::text, event = $6::text, trace_id = $7::text, run_id = $8::text, "
        "tags = $9::text, reason = $10::text, error = $11::text, spec = $12::bytea, "
        "state = $13::bytea, enqueued_ms = $14::bigint, sent_ms = $15::bigint, "
        "delivered_ms = $16::bigint, canceled_ms = $17::bigint, updated_ms = $18::bigint "
        "WHERE id = $1::text",
    [S_MSG_GET] = "SELECT " MSG_COLS " FROM messages WHERE id = $1::text",
    [S_MSG_GET_FOR_UPDATE] = "SELECT " MSG_COLS " FROM messages WHERE id = $1::text FOR UPDATE",
    /* one statement per indexed leading filter besides the generic one: a generic plan
     * of a prepared statement cannot use an index for ($1 = '' OR recipient = $1) */
    [S_MSG_LIST] = MSG_LIST_WHERE(""),
    [S_MSG_LIST_ID] = MSG_LIST_WHERE("id = $11::text AND"),
    [S_MSG_LIST_RECIPIENT] = MSG_LIST_WHERE("recipient = $1::text AND"),
    [S_MSG_LIST_RUN] = MSG_LIST_WHERE("run_id = $7::text AND"),
    [S_MSG_LIST_STATUS] = MSG_LIST_WHERE("status = $2::text AND"),
    [S_HIST_APPEND] = "INSERT INTO message_history(message_id, ts, type, body) "
                      "VALUES($1::text, $2::bigint, $3::text, $4::bytea)",
    [S_HIST_LIST] = "SELECT seq, ts, type, body FROM message_history "
                    "WHERE message_id = $1::text ORDER BY seq LIMIT 10000", /* STORE_HISTORY_MAX */
};

/* ---- types -------------------------------------------------------------------------- */

/* A store_write_shared call, on its caller's stack, in its group's list. The leader
 * sets state (under pg_store.mu) and signals cv; after that the entry may be gone. */
enum gw_state { GW_WAIT, GW_DONE, GW_SOLO };
struct gwrite {
    store_txn_fn fn;
    void *arg;
    struct herr *err;
    int rc;
    enum gw_state state;
    pthread_cond_t cv;
    struct gwrite *next;
    char rid[72];     /* the caller's request id for log lines (log_get_rid) */
};

/* A group of shared writes, on its leader's stack: open to joiners while the leader
 * waits for a connection, up to GROUP_MAX. */
struct wgroup {
    struct gwrite *head, **tail;
    size_t n;
};

/* A writer waiting for a connection, on its own stack; listed oldest first. */
struct waiter {
    int64_t since_ms;            /* time_mono_ms() when it started waiting */
    struct waiter *prev, *next;
};

/* Savepoint statements of the open transaction not sent yet (see ctl_defer): they go
 * ahead of the next statement, in one pipeline with it. */
#define PEND_MAX 16

struct pconn {
    PGconn *pg;
    struct pconn *next;          /* free list */
    bool prepared[S_COUNT];
    const char *pend[PEND_MAX];  /* static SQL strings, in order */
    unsigned npend;
    bool pend_failed;            /* one of them failed: the transaction cannot be saved */
};

struct pg_store {
    struct store base;           /* must be first */
    char *dsn;                   /* owned; may hold a password: never logged */
    char where[160];             /* host:port/db, for logs */
    char node[33];               /* this store's NOTIFY payload, to skip our own */
    bool sync_ok;
    /* pool */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pconn *free;
    size_t nopen, pool_max, waiting; /* waiting: writers only */
    struct waiter *whead, *wtail;
    struct wgroup *gopen;        /* the group of shared writes open to joiners, or NULL */
    size_t grunning, gslots;     /* groups running (leader past its slot wait); their cap */
    size_t gwaiting;             /* shared writes waiting in a group for its leader */
    pthread_cond_t gcv;          /* a group finished: a slot is free */
    bool closing;
    struct store_stats stats;
    /* job listener */
    pthread_rwlock_t cb_lock;
    pthread_t lthread;
    bool lthread_started;
    int wake_fd;
    atomic_bool lstop;
    atomic_bool notify_due;      /* a commit made jobs runnable: the listener NOTIFYs */
};

/* The transaction handed to fn. */
struct pg_txn {
    struct store_txn base;       /* must be first */
    struct pconn *c;
    bool active;                 /* true only while fn runs */
    int failed;                  /* < 0: a statement failed, the transaction is aborted */
    bool retry;                  /* the failure was a serialization failure or deadlock */
};

/* The transaction whose fn runs on this thread (NULL elsewhere). */
static _Thread_local struct pg_txn *t_txn;
/* The store whose on_jobs listener runs on this thread (NULL elsewhere). */
static _Thread_local struct pg_store *t_cb;

/* ---- parameters --------------------------------------------------------------------- */

struct params {
    int n;
    const char *v[NPARAMS_MAX];
    int len[NPARAMS_MAX];
    int fmt[NPARAMS_MAX];
    char ibuf[NPARAMS_MAX][24];
    char *owned[NPARAMS_MAX];    /* sanitized copies, freed by params_free */
};

static void params_free(struct params *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->owned[i]);
    p->n = 0;
}

static void p_i64(struct params *p, int64_t x)
{
    int i = p->n++;
    snprintf(p->ibuf[i], sizeof p->ibuf[i], "%lld", (long long)x);
    p->v[i] = p->ibuf[i];
    p->len[i] = 0;
    p->fmt[i] = 0;
    p->owned[i] = NULL;
}

/* p_bytes: s as a binary parameter (bytea, or text that is known to be clean). */
static void p_bytes(struct params *p, struct str s)
{
    int i = p->n++;
    p->v[i] = s.len ? s.p : "";
    p->len[i] = (int)s.len;
    p->fmt[i] = 1;
    p->owned[i] = NULL;
}

/* p_text: s as a text parameter. PostgreSQL refuses NUL bytes and invalid UTF-8 in
 * text, so such bytes (only ever in text we did not check, e.g. a provider's error
 * words) are replaced by '?'. */
/* text_clean: NULL when s is valid UTF-8 without NUL bytes, else a copy of s (caller
 * frees, s.len bytes) with each such byte replaced by '?', valid sequences kept. */
static char *text_clean(struct str s)
{
    char *o;
    if (s.len == 0 || (utf8_valid(s.p, s.len) && !memchr(s.p, 0, s.len)))
        return NULL;
    o = xmalloc(s.len + 1);
    for (size_t k = 0; k < s.len; k++) {
        unsigned char ch = (unsigned char)s.p[k];
        o[k] = (ch == 0 || ch >= 0x80) ? '?' : (char)ch;
    }
    /* keep the valid multi-byte sequences: copy runs that validate */
    for (size_t k = 0; k < s.len;) {
        size_t n = 1;
        unsigned char ch = (unsigned char)s.p[k];
        if (ch >= 0xc2 && ch <= 0xdf)
            n = 2;
        else if (ch >= 0xe0 && ch <= 0xef)
            n = 3;
        else if (ch >= 0xf0 && ch <= 0xf4)
            n = 4;
        if (n > 1 && k + n <= s.len && utf8_valid(s.p + k, n)) {
            memcpy(o + k, s.p + k, n);
            k += n;
        } else {
            k++;
        }
    }
    return o;
}

/* p_text: s as a text parameter. PostgreSQL refuses NUL bytes and invalid UTF-8 in
 * text, so such bytes (only ever in text we did not check, e.g. a provider's error
 * words) are replaced by '?' (text_clean). */
static void p_text(struct params *p, struct str s)
{
    char *o = text_clean(s);
    int i;
    if (!o) {
        p_bytes(p, s);
        return;
    }
    i = p->n++;
    p->owned[i] = o;
    p->v[i] = o;
    p->len[i] = (int)s.len;
    p->fmt[i] = 1;
}

static void p_cstr(struct params *p, const char *s)
{
    p_text(p, str_c(s));
}

static void p_null(struct params *p)
{
    int i = p->n++;
    p->v[i] = NULL;
    p->len[i] = 0;
    p->fmt[i] = 0;
    p->owned[i] = NULL;
}

/* p_textz: a NUL-terminated value in text format (e.g. an array literal). */
static void p_textz(struct params *p, const char *s)
{
    int i = p->n++;
    p->v[i] = s;
    p->len[i] = 0;
    p->fmt[i] = 0;
    p->owned[i] = NULL;
}

/* ---- array parameters in binary ------------------------------------------------------ */

/* struct barr: a one-dimensional array parameter in PostgreSQL's binary format (what
 * array_recv reads): dimensions (1), a has-nulls flag (0), the element type's OID, the
 * length and lower bound (1), then each element as a 4-byte big-endian length and its
 * bytes. Built by barr_init and one barr_i64 / barr_bytes / barr_text per element,
 * lent to p_barr, freed by barr_free. */
#define OID_BYTEA 17u
#define OID_INT8 20u
#define OID_TEXT 25u
#define BARR_MAX ((size_t)1 << 30) /* a parameter's length is an int */

struct barr {
    char *p;
    size_t len, cap;
    bool toobig; /* an element would have passed BARR_MAX: the array is not usable */
};

static void barr_put(struct barr *b, const void *src, size_t n)
{
    if (n == 0) /* src may be NULL (an empty str) */
        return;
    if (b->toobig || n > BARR_MAX - b->len) {
        b->toobig = true;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void barr_u32(struct barr *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    barr_put(b, x, 4);
}

static void barr_init(struct barr *b, uint32_t oid, size_t n)
{
    memset(b, 0, sizeof *b);
    barr_u32(b, 1);
    barr_u32(b, 0);
    barr_u32(b, oid);
    barr_u32(b, (uint32_t)n);
    barr_u32(b, 1);
}

static void barr_i64(struct barr *b, int64_t v)
{
    uint64_t u = (uint64_t)v;
    barr_u32(b, 8);
    barr_u32(b, (uint32_t)(u >> 32));
    barr_u32(b, (uint32_t)u);
}

static void barr_bytes(struct barr *b, struct str s)
{
    if (s.len > BARR_MAX) {
        b->toobig = true;
        return;
    }
    barr_u32(b, (uint32_t)s.len);
    barr_put(b, s.p, s.len);
}

/* barr_text: as p_text does, bytes PostgreSQL refuses in text become '?'. */
static void barr_text(struct barr *b, struct str s)
{
    char *o = text_clean(s);
    barr_bytes(b, o ? (struct str){o, s.len} : s);
    free(o);
}

static void barr_free(struct barr *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* p_barr: b as a binary parameter (b keeps the bytes: free it after the statement). */
static void p_barr(struct params *p, const struct barr *b)
{
    int i = p->n++;
    p->v[i] = b->p;
    p->len[i] = (int)b->len;
    p->fmt[i] = 1;
    p->owned[i] = NULL;
}

/* ---- results ------------------------------------------------------------------------ */

static int64_t g_i64(const PGresult *r, int row, int col)
{
    const unsigned char *p;
    int n;
    uint64_t v = 0;
    if (PQgetisnull(r, row, col))
        return 0;
    p = (const unsigned char *)PQgetvalue(r, row, col);
    n = PQgetlength(r, row, col);
    if (n != 8 && n != 4 && n != 2)
        return 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    if (n == 4)
        return (int64_t)(int32_t)(uint32_t)v;
    if (n == 2)
        return (int64_t)(int16_t)(uint16_t)v;
    return (int64_t)v;
}

static struct str g_str(struct arena *a, const PGresult *r, int row, int col)
{
    int n = PQgetlength(r, row, col);
    return arena_str(a, (struct str){PQgetvalue(r, row, col), n > 0 ? (size_t)n : 0});
}

static void g_copy(char *dst, size_t cap, const PGresult *r, int row, int col)
{
    int n = PQgetlength(r, row, col);
    str_copy(dst, cap, (struct str){PQgetvalue(r, row, col), n > 0 ? (size_t)n : 0});
}

/* affected: rows changed by an INSERT/UPDATE/DELETE without RETURNING. */
static int64_t affected(PGresult *r)
{
    const char *s = PQcmdTuples(r);
    return s && s[0] ? strtoll(s, NULL, 10) : 0;
}

/* ---- errors ------------------------------------------------------------------------- */

static bool conn_ok(const struct pconn *c)
{
    return c && c->pg && PQstatus(c->pg) == CONNECTION_OK;
}

/* map_err: the rc for a failed statement; *retry when running the transaction again
 * may succeed (serialization failure, deadlock). */
static int map_err(const struct pconn *c, const PGresult *r, bool *retry)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    *retry = false;
    if (!conn_ok(c) || !st)
        return HR_UNAVAIL;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0) {
        *retry = true;
        return HR_BUSY;
    }
    if (strncmp(st, "23", 2) == 0)
        return HR_CONFLICT;
    if (strcmp(st, "53100") == 0)
        return HR_FULL;
    if (strncmp(st, "53", 2) == 0 || strcmp(st, "55P03") == 0 || strcmp(st, "57014") == 0)
        return HR_BUSY;
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0)
        return HR_UNAVAIL;
    if (strncmp(st, "22", 2) == 0)
        return HR_INVAL;
    if (strcmp(st, "54000") == 0)
        return HR_TOOBIG;
    return HR_IO;
}

static int db_fail(const struct pconn *c, const PGresult *r, const char *what, bool *retry)
{
    bool rt = false;
    int rc = map_err(c, r, &rt);
    char q[300];
    const char *msg = r ? PQresultErrorMessage(r) : (c && c->pg ? PQerrorMessage(c->pg) : "");
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (retry)
        *retry = rt;
    if (rc == HR_CONFLICT || rt)
        LOG_D("store.pg.conflict", "op=%s sqlstate=%s msg=%s", what, st ? st : "-",
              log_q(q, sizeof q, msg));
    else
        LOG_E("store.pg.query_failed", "op=%s sqlstate=%s rc=%s msg=%s", what, st ? st : "-",
              hr_rc_str(rc), log_q(q, sizeof q, msg));
    return rc;
}

/* ---- connections -------------------------------------------------------------------- */

static void pconn_close(struct pconn *c)
{
    if (!c)
        return;
    if (c->pg)
        PQfinish(c->pg);
    free(c);
}

/* one_line: libpq's message (which spans lines) as one line in out, for err->msg. */
static const char *one_line(const char *msg, char *out, size_t cap)
{
    size_t n = 0;
    bool space = false;
    for (const char *p = msg ? msg : ""; *p && n + 1 < cap; p++) {
        if ((unsigned char)*p < 0x20) {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < cap)
            out[n++] = ' ';
        space = false;
        out[n++] = *p;
    }
    out[n] = '\0';
    return out;
}

/* quiet_notice: libpq prints server notices (and a terminated connection's FATAL) on
 * stderr by default; herald logs them as debug lines instead. */
static void quiet_notice(void *arg, const char *msg)
{
    char q[300], line[300];
    (void)arg;
    LOG_D("store.pg.notice", "msg=%s", log_q(q, sizeof q, one_line(msg, line, sizeof line)));
}

/* pconn_open: a new connection to ps's database (client encoding UTF-8). */
static int pconn_open(struct pg_store *ps, struct pconn **out, struct herr *err)
{
    struct pconn *c = xcalloc(1, sizeof *c);
    int rc = HR_OK;
    char q[300];
    *out = NULL;
    c->pg = PQconnectdb(ps->dsn);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        const char *m = c->pg ? PQerrorMessage(c->pg) : "out of memory";
        rc = herr_set(err, HR_UNAVAIL, "cannot connect to PostgreSQL at %s: %s", ps->where,
                      one_line(m, q, sizeof q));
        goto out;
    }
    PQsetNoticeProcessor(c->pg, quiet_notice, NULL);
    if (PQsetClientEncoding(c->pg, "UTF8") != 0) {
        rc = herr_set(err, HR_IO, "PostgreSQL at %s: cannot set client encoding UTF8",
                      ps->where);
        goto out;
    }
    *out = c;
    c = NULL;
out:
    pconn_close(c);
    return rc;
}

/* pool_get: lend a connection (waits while pool_max are lent; HR_UNAVAIL when closing
 * or the database is down). A writer (back-pressure) is refused with HR_AGAIN instead
 * of waiting when write_queue_max writers already wait (default WAITERS_MAX) or the
 * oldest of them has waited write_wait_max_ms (default WAIT_MAX_MS). */
/* overloaded_locked: an ingress write (store_is_ingress) must not wait: too many writes
 * wait already (for a connection, or in a group of shared writes), or the oldest has
 * waited too long. Caller holds ps->mu. */
static bool overloaded_locked(const struct pg_store *ps, int64_t now_ms)
{
    size_t qmax = ps->base.write_queue_max ? ps->base.write_queue_max : WAITERS_MAX;
    int64_t wmax = ps->base.write_wait_max_ms > 0 ? ps->base.write_wait_max_ms : WAIT_MAX_MS;
    return store_is_ingress() &&
           (ps->waiting + ps->gwaiting >= qmax ||
            (ps->whead && now_ms - ps->whead->since_ms > wmax));
}

static int pool_get(struct pg_store *ps, bool writer, struct pconn **out, struct herr *err)
{
    int rc = HR_OK;
    *out = NULL;
    pthread_mutex_lock(&ps->mu);
    if (!ps->free && ps->nopen >= ps->pool_max && !ps->closing) {
        struct waiter w = {0, NULL, NULL};
        if (writer) {
            int64_t now_ms = time_mono_ms();
            if (overloaded_locked(ps, now_ms)) {
                size_t n = ps->waiting + ps->gwaiting;
                pthread_mutex_unlock(&ps->mu);
                rc = herr_set(err, HR_AGAIN,
                              "the store is overloaded (%zu writes waiting); retry later", n);
                goto out;
            }
            w.since_ms = now_ms;
            w.prev = ps->wtail;
            if (ps->wtail)
                ps->wtail->next = &w;
            else
                ps->whead = &w;
            ps->wtail = &w;
            ps->waiting++;
        }
        while (!ps->free && ps->nopen >= ps->pool_max && !ps->closing)
            pthread_cond_wait(&ps->cv, &ps->mu);
        if (writer) {
            if (w.prev)
                w.prev->next = w.next;
            else
                ps->whead = w.next;
            if (w.next)
                w.next->prev = w.prev;
            else
                ps->wtail = w.prev;
            ps->waiting--;
        }
    }
    if (ps->closing) {
        pthread_mutex_unlock(&ps->mu);
        rc = herr_set(err, HR_UNAVAIL, "store is closing");
        goto out;
    }
    if (ps->free) {
        *out = ps->free;
        ps->free = (*out)->next;
        (*out)->next = NULL;
        pthread_mutex_unlock(&ps->mu);
        goto out;
    }
    ps->nopen++;
    pthread_mutex_unlock(&ps->mu);
    rc = pconn_open(ps, out, err);
    if (rc < 0) {
        char q[300];
        LOG_E("store.pg.connect_failed", "where=%s msg=%s", ps->where,
              log_q(q, sizeof q, err ? err->msg : ""));
        pthread_mutex_lock(&ps->mu);
        ps->nopen--;
        pthread_cond_signal(&ps->cv);
        pthread_mutex_unlock(&ps->mu);
    }
out:
    return rc;
}

/* pool_put: give a lent connection back; a broken one (or one left inside a
 * transaction) is closed, to be reopened on a later pool_get. When one was broken
 * (the server restarted, a failover), the idle ones are closed too: they most likely
 * are broken as well. NULL is a no-op. */
static void pool_put(struct pg_store *ps, struct pconn *c)
{
    if (!c)
        return;
    c->npend = 0; /* what was not sent belongs to a transaction that ends here */
    c->pend_failed = false;
    if (conn_ok(c) && PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF) {
        /* a pipeline whose answers were not read (pipe_run, copy_pipelined): this
         * connection alone is unusable */
        pthread_mutex_lock(&ps->mu);
        ps->nopen--;
        pthread_cond_broadcast(&ps->cv);
        pthread_mutex_unlock(&ps->mu);
        LOG_W("store.pg.conn_dropped", "where=%s msg=\"a pipeline left unfinished\"", ps->where);
        pconn_close(c);
        return;
    }
    if (conn_ok(c) && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        PQclear(PQexec(c->pg, "ROLLBACK"));
    if (!conn_ok(c) || PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        struct pconn *idle;
        size_t n = 1;
        pthread_mutex_lock(&ps->mu);
        idle = ps->free;
        ps->free = NULL;
        for (struct pconn *i = idle; i; i = i->next)
            n++;
        ps->nopen -= n;
        pthread_cond_broadcast(&ps->cv);
        pthread_mutex_unlock(&ps->mu);
        LOG_W("store.pg.conn_reset", "where=%s closed=%zu", ps->where, n);
        pconn_close(c);
        while (idle) {
            struct pconn *next = idle->next;
            pconn_close(idle);
            idle = next;
        }
        return;
    }
    pthread_mutex_lock(&ps->mu);
    c->next = ps->free;
    ps->free = c;
    pthread_cond_signal(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
}

/* ---- deferred savepoint statements ----------------------------------------------------
 * store_txn_sub brackets a fn with SAVEPOINT and RELEASE (or ROLLBACK TO), and a fn often
 * runs one statement or none: an events job's apply for a track whose profile exists
 * writes nothing there. Sent on their own, the two cost two round trips (and two wake-ups
 * of a backend on a busy machine) per fn. So they wait on the connection (ctl_defer) and
 * go ahead of the next statement, in one libpq pipeline with it (pipe_run): a SAVEPOINT
 * whose RELEASE comes before any statement is dropped with it, and the RELEASEs still
 * waiting at COMMIT are dropped (COMMIT ends every savepoint), as is the RESET of the
 * lease's SET LOCAL (tx_defer; the commit ends that too). A ROLLBACK TO is sent
 * before the COMMIT (txn_settle), never dropped. A deferred statement that fails fails
 * the statement it was sent with (same rc) and marks the connection (pend_failed): the
 * transaction is lost, and no savepoint may be rolled back to, since the one named may
 * not be the one meant (they share a name). */

/* pend_has_rollback: a ROLLBACK TO is among c's deferred statements. */
static bool pend_has_rollback(const struct pconn *c)
{
    for (unsigned i = 0; i < c->npend; i++)
        if (strncmp(c->pend[i], "ROLLBACK", 8) == 0)
            return true;
    return false;
}

/* pipe_run: c's deferred statements, then (name != NULL) prepared statement name with p,
 * in one pipeline; c->npend is 0 afterwards. Returns HR_OK with *out the statement's
 * result (caller clears; NULL without a statement), or the first failure's rc (*retry
 * set). A pipeline that cannot be ended leaves the connection to be closed (pool_put). */
static int pipe_run(struct pconn *c, const char *name, struct params *p, PGresult **out,
                    const char *what, bool *retry)
{
    PGconn *pg = c->pg;
    unsigned k = c->npend, sent = 0, idx = 0;
    bool synced = false;
    int rc = HR_OK;
    *out = NULL;
    *retry = false;
    c->npend = 0;
    if (PQenterPipelineMode(pg) != 1) {
        c->pend_failed = k > 0; /* they are lost */
        return db_fail(c, NULL, "pipeline", retry);
    }
    for (unsigned i = 0; i < k && rc == HR_OK; i++) {
        if (PQsendQueryParams(pg, c->pend[i], 0, NULL, NULL, NULL, NULL, 0) != 1) {
            rc = db_fail(c, NULL, "sub_ctl send", retry);
            c->pend_failed = true;
        } else {
            sent++;
        }
    }
    if (rc == HR_OK && name) {
        if (PQsendQueryPrepared(pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                p ? p->fmt : NULL, 1) != 1)
            rc = db_fail(c, NULL, what, retry);
        else
            sent++;
    }
    if (PQpipelineSync(pg) != 1) {
        /* what was sent may have run, but its answers may never come: do not wait for
         * them (the connection stays in pipeline mode, and pool_put closes it) */
        if (rc == HR_OK)
            rc = db_fail(c, NULL, "pipeline sync", retry);
        c->pend_failed = c->pend_failed || k > 0;
        return rc;
    }
    /* each statement's answer is a result, then NULL; the sync's is PGRES_PIPELINE_SYNC */
    while (!synced && PQstatus(pg) == CONNECTION_OK && idx <= sent) {
        PGresult *r = PQgetResult(pg);
        ExecStatusType st;
        if (!r) {
            idx++;
            continue;
        }
        st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            synced = true;
        } else if (idx < k) { /* a deferred statement */
            if (st != PGRES_COMMAND_OK && st != PGRES_PIPELINE_ABORTED) {
                if (rc == HR_OK)
                    rc = db_fail(c, r, "sub_ctl", retry);
                c->pend_failed = true;
            }
        } else if ((st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) && rc == HR_OK &&
                   !*out) {
            *out = r;
            r = NULL;
        } else if (rc == HR_OK) {
            rc = st == PGRES_PIPELINE_ABORTED ? HR_IO : db_fail(c, r, what, retry);
        }
        PQclear(r);
    }
    if (!synced && rc == HR_OK)
        rc = db_fail(c, NULL, "pipeline answers", retry);
    if (!synced && k > 0)
        c->pend_failed = true; /* whether they ran is unknown */
    if (PQexitPipelineMode(pg) != 1 && rc == HR_OK)
        rc = db_fail(c, NULL, "pipeline end", retry);
    if (rc < 0) {
        PQclear(*out);
        *out = NULL;
    }
    return rc;
}

/* ctl_flush: send c's deferred statements now (before SQL that is not a prepared
 * statement of q). Returns HR_OK or the failure's rc (*retry set). */
static int ctl_flush(struct pconn *c, const char *what, bool *retry)
{
    PGresult *r = NULL;
    int rc;
    *retry = false;
    if (!c->npend)
        return HR_OK;
    rc = pipe_run(c, NULL, NULL, &r, what, retry);
    PQclear(r);
    return rc;
}

/* ctl_defer: queue control statement sql (a static string: a savepoint's, or a SET LOCAL
 * and its RESET, which the COMMIT may drop too) on c. A RELEASE right after
 * its SAVEPOINT cancels both; a full queue is sent first. Returns HR_OK or ctl_flush's
 * rc. */
static int ctl_defer(struct pconn *c, const char *sql, bool *retry)
{
    int rc;
    *retry = false;
    if (strncmp(sql, "RELEASE", 7) == 0 && c->npend &&
        strncmp(c->pend[c->npend - 1], "SAVEPOINT", 9) == 0) {
        c->npend--;
        return HR_OK;
    }
    if (c->npend == PEND_MAX && (rc = ctl_flush(c, "sub_ctl", retry)) < 0)
        return rc;
    c->pend[c->npend++] = sql;
    return HR_OK;
}

/* q: run statement id on c (preparing it on first use); binary results. On success
 * *out is the result (caller clears); on failure the mapped rc, *retry set. */
static int q(struct pconn *c, enum stmt_id id, struct params *p, PGresult **out,
             const char *what, bool *retry)
{
    char name[16];
    PGresult *r = NULL;
    ExecStatusType st;
    int rc = HR_OK;
    *out = NULL;
    *retry = false;
    snprintf(name, sizeof name, "h%d", (int)id);
    if (!c->prepared[id]) {
        /* a deferred ROLLBACK TO first: an aborted transaction refuses to prepare */
        if ((rc = ctl_flush(c, what, retry)) < 0)
            goto out;
        r = PQprepare(c->pg, name, SQL[id], 0, NULL);
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
            rc = db_fail(c, r, what, retry);
            goto out;
        }
        PQclear(r);
        c->prepared[id] = true;
    }
    if (c->npend) {
        rc = pipe_run(c, name, p, out, what, retry);
        goto out;
    }
    r = PQexecPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                       p ? p->fmt : NULL, 1);
    st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        rc = db_fail(c, r, what, retry);
        goto out;
    }
    *out = r;
    r = NULL;
out:
    PQclear(r);
    return rc;
}

/* ---- transactions and reads ---------------------------------------------------------- */

/* tx_check: HR_OK when t is this thread's live transaction and nothing in it failed;
 * else what to return: its failure's rc, or HR_INVAL (logged) for a misuse. */
static int tx_check(struct store_txn *t)
{
    struct pg_txn *x = (struct pg_txn *)t;
    if (!t || t_txn != x || !x->active) {
        LOG_E("store.pg.txn_misuse", "msg=\"write op outside its store_write fn\"");
        return HR_INVAL;
    }
    return x->failed < 0 ? x->failed : HR_OK;
}

/* tx_note: rc < 0 becomes x's failure (the transaction is aborted: later statements fail
 * at once with it). Returns rc. */
static int tx_note(struct pg_txn *x, int rc, bool retry)
{
    if (rc < 0) {
        x->failed = rc;
        x->retry = retry;
    }
    return rc;
}

/* tx_q: run a statement inside t (which must be live on this thread). After a failure
 * the transaction is aborted: later statements fail at once with the same rc. */
static int tx_q(struct store_txn *t, enum stmt_id id, struct params *p, PGresult **out,
                const char *what)
{
    bool retry = false;
    int rc = tx_check(t);
    *out = NULL;
    if (rc < 0)
        return rc;
    rc = q(((struct pg_txn *)t)->c, id, p, out, what, &retry);
    return tx_note((struct pg_txn *)t, rc, retry);
}

/* txn_settle: before x's COMMIT, send the ROLLBACK TOs still waiting on its connection
 * (exec_ctl would send them ahead of the COMMIT, where a failure reads as a commit that
 * may have happened). A failure fails the transaction, as a statement's does. */
static void txn_settle(struct pg_txn *x)
{
    bool retry = false;
    if (x->failed < 0 || !x->c->npend || !pend_has_rollback(x->c))
        return;
    tx_note(x, ctl_flush(x->c, "sub_ctl", &retry), retry);
}

/* tx_defer: ctl_defer sql (a static string: SET LOCAL, RESET, savepoints) inside t, to go
 * with t's next statement. After a failure the transaction is aborted, as in tx_q. */
static int tx_defer(struct store_txn *t, const char *sql)
{
    bool retry = false;
    int rc = tx_check(t);
    if (rc < 0)
        return rc;
    rc = ctl_defer(((struct pg_txn *)t)->c, sql, &retry);
    return tx_note((struct pg_txn *)t, rc, retry);
}

/* rd_q: run a read statement: on the transaction's connection when a write fn of this
 * store runs on this thread, else on a lent connection (given back before returning;
 * a connection found broken is replaced once). */
static int rd_q(struct pg_store *ps, enum stmt_id id, struct params *p, PGresult **out,
                const char *what)
{
    struct pconn *c = NULL;
    struct herr err;
    bool retry = false;
    int rc = HR_OK;
    *out = NULL;
    if (t_txn && t_txn->active && t_txn->base.store == &ps->base)
        return tx_q(&t_txn->base, id, p, out, what);
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = pool_get(ps, false, &c, &err);
        if (rc < 0)
            break;
        rc = q(c, id, p, out, what, &retry);
        if (rc == HR_UNAVAIL && !conn_ok(c) && attempt == 0) {
            pool_put(ps, c); /* closes it */
            c = NULL;
            continue;
        }
        break;
    }
    pool_put(ps, c);
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* exec_ctl: run BEGIN, COMMIT or ROLLBACK on c. c's deferred statements go first when one
 * is a ROLLBACK TO and sql is COMMIT (a COMMIT of an aborted transaction would roll back
 * and answer OK); otherwise they are dropped (see ctl_defer). */
static int exec_ctl(struct pconn *c, const char *sql, const char *what, bool *retry)
{
    PGresult *r = NULL;
    int rc = HR_OK;
    *retry = false;
    if (c->npend && strcmp(sql, "COMMIT") == 0 && pend_has_rollback(c) &&
        (rc = ctl_flush(c, what, retry)) < 0)
        return rc;
    c->npend = 0;
    c->pend_failed = false;
    r = PQexec(c->pg, sql);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = db_fail(c, r, what, retry);
    PQclear(r);
    return rc;
}

/* dispatch: call the job listener (if any) on this thread. */
static void dispatch(struct pg_store *ps)
{
    struct pg_store *prev = t_cb;
    pthread_rwlock_rdlock(&ps->cb_lock);
    if (ps->base.on_jobs) {
        t_cb = ps;
        ps->base.on_jobs(ps->base.on_jobs_arg);
        t_cb = prev;
    }
    pthread_rwlock_unlock(&ps->cb_lock);
}

void pg_set_job_listener(struct store *s, void (*fn)(void *), void *arg)
{
    struct pg_store *ps = (struct pg_store *)s;
    if (!s)
        return;
    if (t_cb == ps) { /* from inside the listener: we hold the read lock */
        s->on_jobs = fn;
        s->on_jobs_arg = arg;
        return;
    }
    pthread_rwlock_wrlock(&ps->cb_lock);
    s->on_jobs = fn;
    s->on_jobs_arg = arg;
    pthread_rwlock_unlock(&ps->cb_lock);
}

static void count_txns(struct pg_store *ps, size_t n, bool committed, bool commit_failed)
{
    pthread_mutex_lock(&ps->mu);
    ps->stats.txns += n;
    if (committed)
        ps->stats.commits++;
    if (commit_failed)
        ps->stats.errors++;
    pthread_mutex_unlock(&ps->mu);
}

static void count_retry(struct pg_store *ps)
{
    pthread_mutex_lock(&ps->mu);
    ps->stats.retries++;
    pthread_mutex_unlock(&ps->mu);
}

/* notify_later: have the listener thread tell the other nodes (NOTIFY) that jobs became
 * runnable; commits until it runs share one NOTIFY. */
static void notify_later(struct pg_store *ps)
{
    uint64_t one = 1;
    if (atomic_exchange(&ps->notify_due, true))
        return; /* the listener has been woken for it already */
    if (write(ps->wake_fd, &one, sizeof one) != (ssize_t)sizeof one)
        LOG_W("store.pg.wake_failed", "errno=%d", errno);
}

static int pg_write(struct store *s, store_txn_fn fn, void *arg, struct herr *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    struct pg_txn txn, *prev;
    struct pconn *c = NULL;
    bool retry = false, committed = false, commit_failed = false, jobs = false;
    int rc = HR_OK;

    herr_clear(err);
    if (!fn) {
        rc = herr_set(err, HR_INVAL, "store write without a function");
        goto out;
    }
    if ((t_txn && t_txn->base.store == s) || t_cb == ps) {
        rc = herr_set(err, HR_INVAL,
                      "store_write called from inside a write or job listener of the same "
                      "store (nested write would deadlock)");
        goto out;
    }
    for (int attempt = 1;; attempt++) {
        int frc;
        rc = pool_get(ps, true, &c, err);
        if (rc < 0)
            goto out;
        rc = exec_ctl(c, "BEGIN", "begin", &retry);
        if (rc < 0) {
            pool_put(ps, c);
            c = NULL;
            if (rc == HR_UNAVAIL && attempt < WRITE_TRIES)
                continue; /* a stale pooled connection: try a fresh one */
            herr_set(err, rc, "store write failed: cannot begin a transaction (%s)",
                     hr_rc_str(rc));
            goto out;
        }
        memset(&txn, 0, sizeof txn);
        txn.base.store = s;
        txn.c = c;
        txn.active = true;
        prev = t_txn; /* a write of another store may be running on this thread */
        t_txn = &txn;
        frc = fn(&txn.base, arg);
        if (frc >= 0)
            txn_settle(&txn);
        t_txn = prev;
        txn.active = false;
        if (txn.failed < 0 && txn.retry && attempt < WRITE_TRIES) {
            unsigned r = 0;
            crypto_random(&r, sizeof r);
            LOG_D("store.pg.retry", "attempt=%d", attempt);
            count_retry(ps);
            exec_ctl(c, "ROLLBACK", "rollback", &retry);
            pool_put(ps, c);
            c = NULL;
            sleep_ms(2 + (long)(r % (5u << attempt)));
            continue;
        }
        if (frc < 0 || txn.failed < 0) {
            rc = frc < 0 ? frc : txn.failed;
            if (frc >= 0)
                herr_set(err, rc, "store write failed: a statement failed (%s)", hr_rc_str(rc));
            else
                herr_set(err, rc, "store write rolled back (%s)", hr_rc_str(rc));
            if (conn_ok(c) && PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF)
                exec_ctl(c, "ROLLBACK", "rollback", &retry);
            goto done;
        }
        rc = exec_ctl(c, "COMMIT", "commit", &retry);
        if (rc < 0) {
            if (retry && attempt < WRITE_TRIES) {
                count_retry(ps);
                pool_put(ps, c);
                c = NULL;
                continue;
            }
            commit_failed = true;
            herr_set(err, rc, "store write failed: commit (%s)", hr_rc_str(rc));
            goto done;
        }
        committed = true;
        jobs = txn.base.jobs_changed;
        rc = frc;
        goto done;
    }
done:
    count_txns(ps, 1, committed, commit_failed);
    pool_put(ps, c);
    c = NULL;
    if (committed && jobs) {
        notify_later(ps);
        dispatch(ps);
    }
out:
    return rc;
}

/* ---- shared writes ------------------------------------------------------------------- */

enum { GROUP_COMMITTED = 1, GROUP_SOLO = 0 };

/* group_run: g's fns in one transaction on c (given back here), each with its caller's
 * request id on the log lines it makes. GROUP_COMMITTED: each member's rc is its fn's.
 * GROUP_SOLO: nothing was committed (a fn or a statement failed, or a retryable commit
 * error): each member must run alone. < 0: the commit failed and may or may not have
 * happened (err says so): the members fail with it, unretried. */
static int group_run(struct pg_store *ps, struct pconn *c, struct wgroup *g, struct herr *err)
{
    struct pg_txn txn, *prev;
    struct gwrite *m;
    char rid[72];
    const char *own = log_get_rid();
    bool retry = false, jobs;
    int rc = exec_ctl(c, "BEGIN", "begin", &retry);
    if (rc < 0) {
        pool_put(ps, c);
        return GROUP_SOLO;
    }
    snprintf(rid, sizeof rid, "%s", own ? own : "");
    memset(&txn, 0, sizeof txn);
    txn.base.store = &ps->base;
    txn.c = c;
    txn.active = true;
    prev = t_txn;
    t_txn = &txn;
    for (m = g->head; m; m = m->next) {
        log_set_rid(m->rid[0] ? m->rid : NULL);
        m->rc = m->fn(&txn.base, m->arg);
        if (m->rc < 0 || txn.failed < 0)
            break;
    }
    if (!m) {
        txn_settle(&txn);
        if (txn.failed < 0)
            m = g->head; /* nothing is committed: each member runs again alone */
    }
    log_set_rid(rid[0] ? rid : NULL);
    t_txn = prev;
    txn.active = false;
    if (m) { /* pool_put rolls back */
        if (txn.failed < 0 && txn.retry)
            count_retry(ps);
        pool_put(ps, c);
        return GROUP_SOLO;
    }
    rc = exec_ctl(c, "COMMIT", "commit", &retry);
    if (rc < 0) {
        pool_put(ps, c);
        if (retry) {
            count_retry(ps);
            return GROUP_SOLO;
        }
        count_txns(ps, g->n, false, true);
        return herr_set(err, rc, "store write failed: commit (%s)", hr_rc_str(rc));
    }
    jobs = txn.base.jobs_changed;
    count_txns(ps, g->n, true, false);
    pool_put(ps, c);
    if (jobs) {
        notify_later(ps);
        dispatch(ps);
    }
    return GROUP_COMMITTED;
}

/* pg_write_shared: store_write_shared. The first caller leads a group. While it waits
 * for one of gslots turns and then for a pooled connection, later callers join (up to
 * GROUP_MAX); then it runs them all in one transaction (group_run) and tells each its
 * outcome. So a lone write costs what pg_write does, and concurrent ones share commits
 * instead of filling the pool. An ingress write that would wait while the store is
 * overloaded is refused (HR_AGAIN), joiners counted, as pool_get does. */
static int pg_write_shared(struct store *s, store_txn_fn fn, void *arg, struct herr *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    struct gwrite me = {fn, arg, err, HR_OK, GW_WAIT, PTHREAD_COND_INITIALIZER, NULL, ""};
    struct wgroup g = {NULL, NULL, 0};
    struct herr lerr;
    struct pconn *c = NULL;
    const char *rid = log_get_rid();
    int rc, grc;

    if (!fn || !err || (t_txn && t_txn->base.store == s) || t_cb == ps)
        return pg_write(s, fn, arg, err); /* which refuses these, or runs it alone */
    herr_clear(err);
    snprintf(me.rid, sizeof me.rid, "%s", rid ? rid : "");
    pthread_mutex_lock(&ps->mu);
    if ((ps->gopen || ps->grunning >= ps->gslots) && overloaded_locked(ps, time_mono_ms())) {
        size_t n = ps->waiting + ps->gwaiting;
        pthread_mutex_unlock(&ps->mu);
        return herr_set(err, HR_AGAIN, "the store is overloaded (%zu writes waiting); retry later",
                        n);
    }
    if (ps->gopen) {
        struct wgroup *o = ps->gopen;
        *o->tail = &me;
        o->tail = &me.next;
        if (++o->n >= GROUP_MAX)
            ps->gopen = NULL;
        ps->gwaiting++;
        while (me.state == GW_WAIT)
            pthread_cond_wait(&me.cv, &ps->mu);
        ps->gwaiting--;
        pthread_mutex_unlock(&ps->mu);
        pthread_cond_destroy(&me.cv);
        return me.state == GW_SOLO ? pg_write(s, fn, arg, err) : me.rc;
    }
    g.head = &me;
    g.tail = &me.next;
    g.n = 1;
    ps->gopen = &g;
    ps->gwaiting++;
    while (ps->grunning >= ps->gslots && !ps->closing)
        pthread_cond_wait(&ps->gcv, &ps->mu);
    ps->gwaiting--;
    ps->grunning++;
    pthread_mutex_unlock(&ps->mu);

    herr_clear(&lerr);
    rc = pool_get(ps, true, &c, &lerr);
    pthread_mutex_lock(&ps->mu);
    if (ps->gopen == &g)
        ps->gopen = NULL; /* closed: the list is ours alone now */
    pthread_mutex_unlock(&ps->mu);
    grc = rc < 0 ? rc : group_run(ps, c, &g, &lerr);

    pthread_mutex_lock(&ps->mu);
    ps->grunning--;
    pthread_cond_signal(&ps->gcv);
    for (struct gwrite *m = g.head, *next; m; m = next) {
        next = m->next; /* a joiner's entry may be gone once it is told */
        if (grc < 0) {
            *m->err = lerr;
            m->rc = grc;
        }
        m->state = grc == GROUP_SOLO ? GW_SOLO : GW_DONE;
        if (m != &me)
            pthread_cond_signal(&m->cv);
    }
    pthread_mutex_unlock(&ps->mu);
    pthread_cond_destroy(&me.cv);
    return me.state == GW_SOLO ? pg_write(s, fn, arg, err) : me.rc;
}

/* pg_txn_sub: fn inside SAVEPOINT herald_sub; a failure inside is rolled back to it,
 * and the transaction goes on, unless the whole write must be retried (deadlock). */
static int pg_txn_sub(struct store_txn *t, store_txn_fn fn, void *arg)
{
    struct pg_txn *x = (struct pg_txn *)t;
    bool retry = false;
    int rc, xrc;
    if (!t || t_txn != x || !x->active)
        return HR_INVAL;
    if (x->failed < 0)
        return x->failed;
    rc = ctl_defer(x->c, "SAVEPOINT herald_sub", &retry);
    if (rc < 0)
        goto fatal;
    rc = fn(t, arg);
    if (x->failed < 0 && x->retry)
        return x->failed; /* the whole write is retried */
    if (x->c->pend_failed) {
        rc = x->failed < 0 ? x->failed : HR_IO; /* a savepoint statement failed */
        goto fatal;
    }
    if (rc >= 0 && x->failed == 0) {
        xrc = ctl_defer(x->c, "RELEASE SAVEPOINT herald_sub", &retry);
        if (xrc < 0) {
            rc = xrc;
            goto fatal;
        }
        return rc;
    }
    if (rc >= 0)
        rc = x->failed;
    if (x->failed == 0 && x->c->npend &&
        strncmp(x->c->pend[x->c->npend - 1], "SAVEPOINT", 9) == 0) {
        x->c->npend--; /* fn ran no statement: there is nothing to roll back */
        return rc;
    }
    xrc = ctl_defer(x->c, "ROLLBACK TO SAVEPOINT herald_sub", &retry);
    if (xrc == HR_OK)
        xrc = ctl_defer(x->c, "RELEASE SAVEPOINT herald_sub", &retry);
    if (xrc < 0) {
        rc = xrc;
        goto fatal;
    }
    x->failed = 0;
    x->retry = false;
    return rc;
fatal:
    x->failed = rc;
    x->retry = retry;
    return rc;
}

static int pg_ping(struct store *s)
{
    PGresult *r = NULL;
    int rc = rd_q((struct pg_store *)s, S_PING, NULL, &r, "ping");
    PQclear(r);
    return rc < 0 ? HR_IO : HR_OK;
}

static void pg_stats(struct store *s, struct store_stats *out)
{
    struct pg_store *ps = (struct pg_store *)s;
    pthread_mutex_lock(&ps->mu);
    *out = ps->stats;
    pthread_mutex_unlock(&ps->mu);
}

/* ---- listener ----------------------------------------------------------------------- */

static bool wait_wake(struct pg_store *ps, int fd, int timeout_ms)
{
    struct pollfd pf[2] = {{ps->wake_fd, POLLIN, 0}, {fd, POLLIN, 0}};
    uint64_t v;
    int n = poll(pf, fd >= 0 ? 2 : 1, timeout_ms);
    if (n > 0 && (pf[0].revents & POLLIN)) {
        ssize_t got = read(ps->wake_fd, &v, sizeof v); /* reset it; EAGAIN: drained */
        (void)got;
    }
    return !atomic_load(&ps->lstop);
}

/* send_notify: NOTIFY the other nodes on the listener's connection lc when a commit asked
 * for it (notify_due). On failure the request stays due for the next connection. */
static void send_notify(struct pg_store *ps, PGconn *lc)
{
    const char *v[1] = {ps->node};
    PGresult *r;
    char q2[300];
    if (!atomic_exchange(&ps->notify_due, false))
        return;
    r = PQexecParams(lc, "SELECT pg_notify('" CHANNEL "', $1::text)", 1, NULL, v, NULL, NULL, 0);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        atomic_store(&ps->notify_due, true);
        LOG_W("store.pg.notify_failed", "where=%s msg=%s", ps->where,
              log_q(q2, sizeof q2, PQerrorMessage(lc)));
    }
    PQclear(r);
}

/* listen_main: hold one connection that LISTENs on CHANNEL; call on_jobs for every
 * notification from another store (node). Reconnects with a back-off; after a
 * reconnect it calls on_jobs once, since notifications may have been missed. */
static void *listen_main(void *arg)
{
    struct pg_store *ps = arg;
    PGconn *lc = NULL;
    long backoff = 100;
    pthread_setname_np(pthread_self(), "h-pg-listen"); /* top -H, perf, gdb */
    bool had = false;
    char q2[300];
    while (!atomic_load(&ps->lstop)) {
        if (!lc || PQstatus(lc) != CONNECTION_OK) {
            PGresult *r;
            if (lc) {
                LOG_W("store.pg.listen_lost", "where=%s", ps->where);
                PQfinish(lc);
                lc = NULL;
            }
            lc = PQconnectdb(ps->dsn);
            if (lc)
                PQsetNoticeProcessor(lc, quiet_notice, NULL);
            /* its NOTIFYs commit asynchronously: a wake-up needs no WAL flush */
            r = lc && PQstatus(lc) == CONNECTION_OK
                    ? PQexec(lc, "SET synchronous_commit = off; LISTEN " CHANNEL)
                    : NULL;
            if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
                LOG_W("store.pg.listen_failed", "where=%s msg=%s", ps->where,
                      log_q(q2, sizeof q2, lc ? PQerrorMessage(lc) : "out of memory"));
                PQclear(r);
                if (lc)
                    PQfinish(lc);
                lc = NULL;
                wait_wake(ps, -1, (int)backoff);
                backoff = backoff < 5000 ? backoff * 2 : 5000;
                continue;
            }
            PQclear(r);
            backoff = 100;
            if (had)
                dispatch(ps);
            had = true;
        }
        send_notify(ps, lc);
        if (!wait_wake(ps, PQsocket(lc), LISTEN_POLL_MS))
            break;
        send_notify(ps, lc);
        if (!PQconsumeInput(lc))
            continue; /* broken: reconnect above */
        bool any = false;
        PGnotify *n;
        while ((n = PQnotifies(lc)) != NULL) {
            if (!n->extra || strcmp(n->extra, ps->node) != 0)
                any = true;
            PQfreemem(n);
        }
        if (any)
            dispatch(ps);
    }
    if (lc)
        PQfinish(lc);
    return NULL;
}

/* ---- open / close ------------------------------------------------------------------- */

/* describe: "host:port/db" of dsn for logs and messages (never the password); HR_INVAL
 * when libpq cannot parse it. */
static int describe(const char *dsn, char *out, size_t cap)
{
    char *emsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &emsg);
    const char *host = NULL, *port = NULL, *db = NULL;
    if (!opts) {
        PQfreemem(emsg);
        return HR_INVAL;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val || !o->val[0])
            continue;
        if (strcmp(o->keyword, "host") == 0 || (!host && strcmp(o->keyword, "hostaddr") == 0))
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    }
    snprintf(out, cap, "%s:%s/%s", host ? host : "localhost", port ? port : "5432",
             db ? db : "-");
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\' || *p == ' ')
            *p = '_';
    PQconninfoFree(opts);
    return HR_OK;
}

static int sync_init(struct pg_store *ps, struct herr *err)
{
    pthread_rwlockattr_t ra;
    bool mu = pthread_mutex_init(&ps->mu, NULL) == 0;
    bool cv = pthread_cond_init(&ps->cv, NULL) == 0;
    bool gcv = pthread_cond_init(&ps->gcv, NULL) == 0;
    bool rw = false;
    if (pthread_rwlockattr_init(&ra) == 0) {
        pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        rw = pthread_rwlock_init(&ps->cb_lock, &ra) == 0;
        pthread_rwlockattr_destroy(&ra);
    }
    if (mu && cv && gcv && rw) {
        ps->sync_ok = true;
        return HR_OK;
    }
    if (rw)
        pthread_rwlock_destroy(&ps->cb_lock);
    if (gcv)
        pthread_cond_destroy(&ps->gcv);
    if (cv)
        pthread_cond_destroy(&ps->cv);
    if (mu)
        pthread_mutex_destroy(&ps->mu);
    return herr_set(err, HR_IO, "cannot initialize store locks");
}

/* catalog_fold: fold the catalog rows of backends that are gone into the base rows (at
 * open: a restarted node's old connections are such backends), so catalog_slots stays
 * at about one row per name and live connection. Best effort: a failure is logged. */
static void catalog_fold(struct pconn *c)
{
    PGresult *r = NULL;
    bool retry = false;
    if (q(c, S_CATALOG_FOLD, NULL, &r, "catalog_fold", &retry) == HR_OK && affected(r) > 0)
        LOG_I("store.pg.catalog_folded", "names=%lld", (long long)affected(r));
    PQclear(r);
}

static int pg_open(struct store *s, const char *dsn, struct herr *err)
{
    struct pg_store *ps = (struct pg_store *)s;
    struct pconn *c = NULL;
    const char *env = getenv("HERALD_PG_POOL");
    uint8_t rnd[16];
    int rc = HR_OK;
    char q2[300];

    ps->wake_fd = -1;
    if (!PQisthreadsafe()) {
        rc = herr_set(err, HR_IO, "the linked libpq was built without thread support");
        goto out;
    }
    if (describe(dsn, ps->where, sizeof ps->where) < 0) {
        rc = herr_set(err, HR_INVAL,
                      "invalid PostgreSQL DSN (expected postgres://USER[:PASSWORD]@HOST"
                      "[:PORT]/DB[?PARAM=VALUE...])");
        goto out;
    }
    ps->dsn = xstrdup(dsn);
    ps->pool_max = POOL_DEFAULT;
    if (env && env[0]) {
        int64_t v = 0;
        if (str_to_i64(str_c(env), &v) < 0 || v < 1 || v > POOL_MAX) {
            rc = herr_set(err, HR_INVAL, "HERALD_PG_POOL must be 1..%d", POOL_MAX);
            goto out;
        }
        ps->pool_max = (size_t)v;
    }
    /* a quarter of the pool runs groups of shared writes; the rest is for everything
     * else (the workers' leases and commits, reads) */
    ps->gslots = ps->pool_max / 4 ? ps->pool_max / 4 : 1;
    crypto_random(rnd, sizeof rnd);
    crypto_hex(rnd, sizeof rnd, ps->node);
    rc = sync_init(ps, err);
    if (rc < 0)
        goto out;
    ps->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ps->wake_fd < 0) {
        rc = herr_set(err, HR_IO, "cannot create an eventfd");
        goto out;
    }
    rc = pool_get(ps, false, &c, err);
    if (rc < 0)
        goto out;
    rc = pg_migrate(c->pg, hclock_now(s->clock), err);
    if (rc == HR_OK)
        catalog_fold(c);
    pool_put(ps, c);
    c = NULL;
    if (rc < 0)
        goto out;
    if (pthread_create(&ps->lthread, NULL, listen_main, ps) != 0) {
        rc = herr_set(err, HR_IO, "cannot start the store listener thread");
        goto out;
    }
    ps->lthread_started = true;
    LOG_I("store.pg.open", "where=%s schema=%d pool=%zu", ps->where, pg_schema_latest(),
          ps->pool_max);
out:
    if (rc < 0)
        LOG_E("store.pg.open_failed", "where=%s rc=%s msg=%s", ps->where[0] ? ps->where : "-",
              hr_rc_str(rc), log_q(q2, sizeof q2, err ? err->msg : ""));
    return rc;
}

static void pg_close(struct store *s)
{
    struct pg_store *ps = (struct pg_store *)s;
    size_t closed = 0;
    if (!ps)
        return;
    if (ps->lthread_started) {
        uint64_t one = 1;
        atomic_store(&ps->lstop, true);
        if (write(ps->wake_fd, &one, sizeof one) != (ssize_t)sizeof one)
            LOG_W("store.pg.wake_failed", "errno=%d", errno);
        pthread_join(ps->lthread, NULL);
        ps->lthread_started = false;
    }
    if (ps->sync_ok) {
        pthread_mutex_lock(&ps->mu);
        ps->closing = true;
        pthread_cond_broadcast(&ps->cv);
        pthread_cond_broadcast(&ps->gcv);
        while (ps->free) {
            struct pconn *c = ps->free;
            ps->free = c->next;
            pconn_close(c);
            closed++;
        }
        if (closed != ps->nopen)
            LOG_E("store.pg.conns_leaked", "open=%zu closed=%zu", ps->nopen, closed);
        ps->nopen = 0;
        pthread_mutex_unlock(&ps->mu);
        pthread_rwlock_destroy(&ps->cb_lock);
        pthread_cond_destroy(&ps->cv);
        pthread_cond_destroy(&ps->gcv);
        pthread_mutex_destroy(&ps->mu);
        ps->sync_ok = false;
    }
    if (ps->wake_fd >= 0)
        close(ps->wake_fd);
    ps->wake_fd = -1;
    free(ps->dsn);
    ps->dsn = NULL;
}

/* ---- helpers shared by the ops ------------------------------------------------------- */

/* clip_utf8: s's length cut to at most max bytes, not inside a UTF-8 sequence. */
static struct str clip_utf8(struct str s, size_t max)
{
    size_t n = max;
    if (s.len <= max)
        return s;
    while (n > 0 && ((unsigned char)s.p[n] & 0xC0) == 0x80)
        n--;
    return (struct str){s.p, n};
}

static int64_t new_token(void)
{
    uint64_t v = 0;
    crypto_random(&v, sizeof v);
    return (int64_t)(v & (uint64_t)INT64_MAX);
}

/* ---- meta --------------------------------------------------------------------------- */

static int check_meta_key(const char *key)
{
    size_t n = key ? strnlen(key, META_KEY_MAX + 1) : 0;
    return n == 0 || n > META_KEY_MAX ? HR_INVAL : HR_OK;
}

/* meta_write: S_META_SET (replace) or S_META_ADD (HR_CONFLICT when the key exists; the
 * unique index makes a concurrent adder wait for the first one's commit). */
static int meta_write(struct store_txn *t, enum stmt_id stmt, const char *key, struct str value)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc = check_meta_key(key);
    if (rc < 0)
        goto out;
    if (value.len > STORE_PAYLOAD_MAX) {
        rc = HR_TOOBIG;
        goto out;
    }
    p_cstr(&p, key);
    p_bytes(&p, value);
    rc = tx_q(t, stmt, &p, &r, "meta_set");
    if (rc == HR_OK && stmt == S_META_ADD && affected(r) == 0)
        rc = HR_CONFLICT;
out:
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_meta_set(struct store_txn *t, const char *key, struct str value)
{
    return meta_write(t, S_META_SET, key, value);
}

static int pg_meta_add(struct store_txn *t, const char *key, struct str value)
{
    return meta_write(t, S_META_ADD, key, value);
}

static int pg_meta_get(struct store *s, const char *key, struct arena *a, struct str *out)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc = check_meta_key(key);
    if (rc < 0)
        goto out;
    p_cstr(&p, key);
    rc = rd_q((struct pg_store *)s, S_META_GET, &p, &r, "meta_get");
    if (rc < 0)
        goto out;
    if (PQntuples(r) == 0)
        rc = HR_NOTFOUND;
    else
        *out = g_str(a, r, 0, 0);
out:
    PQclear(r);
    params_free(&p);
    return rc;
}

/* ---- keys --------------------------------------------------------------------------- */

static int row_key(const PGresult *r, int i, struct key_rec *out)
{
    memset(out, 0, sizeof *out);
    out->id = g_i64(r, i, 0);
    out->kind = (int)g_i64(r, i, 1);
    g_copy(out->prefix, sizeof out->prefix, r, i, 2);
    g_copy(out->name, sizeof out->name, r, i, 3);
    if (PQgetlength(r, i, 4) != (int)sizeof out->hash) {
        LOG_E("store.pg.bad_key_row", "id=%lld", (long long)out->id);
        return HR_IO;
    }
    memcpy(out->hash, PQgetvalue(r, i, 4), sizeof out->hash);
    out->created_ms = g_i64(r, i, 5);
    out->revoked_ms = g_i64(r, i, 6);
    out->scope = (int)g_i64(r, i, 7);
    return HR_OK;
}

static int pg_key_insert(struct store_txn *t, struct key_rec *k)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc = HR_OK;
    size_t plen, nlen;
    if (!k || (k->kind != KEY_ADMIN && k->kind != KEY_WRITE) ||
        (k->scope != KEY_SCOPE_SERVER && k->scope != KEY_SCOPE_CLIENT)) {
        rc = HR_INVAL;
        goto out;
    }
    plen = strnlen(k->prefix, sizeof k->prefix);
    nlen = strnlen(k->name, sizeof k->name);
    if (plen == 0 || plen == sizeof k->prefix || nlen == sizeof k->name) {
        rc = HR_INVAL;
        goto out;
    }
    p_i64(&p, k->kind);
    p_text(&p, (struct str){k->prefix, plen});
    p_text(&p, (struct str){k->name, nlen});
    p_bytes(&p, (struct str){(const char *)k->hash, sizeof k->hash});
    p_i64(&p, k->created_ms);
    p_i64(&p, k->revoked_ms);
    p_i64(&p, k->scope);
    rc = tx_q(t, S_KEY_INSERT, &p, &r, "key_insert");
    if (rc < 0)
        goto out;
    if (PQntuples(r) == 0) {
        rc = HR_CONFLICT; /* the prefix or the hash exists */
        goto out;
    }
    k->id = g_i64(r, 0, 0);
out:
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_key_find_by_hash(struct store *s, const uint8_t hash[32], struct key_rec *out)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    p_bytes(&p, (struct str){(const char *)hash, 32});
    rc = rd_q((struct pg_store *)s, S_KEY_FIND, &p, &r, "key_find");
    if (rc == HR_OK)
        rc = PQntuples(r) == 0 ? HR_NOTFOUND : row_key(r, 0, out);
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_key_list(struct store *s, struct arena *a, struct key_rec **out, size_t *n)
{
    PGresult *r = NULL;
    struct key_rec *arr = NULL;
    int rc, rows;
    *out = NULL;
    *n = 0;
    rc = rd_q((struct pg_store *)s, S_KEY_LIST, NULL, &r, "key_list");
    if (rc < 0)
        goto out;
    rows = PQntuples(r);
    if (rows > LIST_MAX) {
        rc = HR_TOOBIG;
        goto out;
    }
    arr = arena_zalloc(a, (size_t)(rows ? rows : 1) * sizeof *arr);
    for (int i = 0; i < rows; i++) {
        rc = row_key(r, i, &arr[i]);
        if (rc < 0)
            goto out;
    }
    *out = arr;
    *n = (size_t)rows;
out:
    PQclear(r);
    return rc;
}

static int pg_key_revoke(struct store_txn *t, const char *prefix, int64_t now_ms)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc = HR_OK;
    size_t plen = prefix ? strnlen(prefix, 16) : 0;
    if (plen == 0 || plen == 16 || now_ms <= 0) {
        rc = HR_INVAL;
        goto out;
    }
    p_i64(&p, now_ms);
    p_text(&p, (struct str){prefix, plen});
    rc = tx_q(t, S_KEY_REVOKE, &p, &r, "key_revoke");
    if (rc == HR_OK && affected(r) == 0)
        rc = HR_NOTFOUND;
out:
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_key_count(struct store *s, int kind, int64_t *out)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    if (kind < 0)
        return HR_INVAL;
    p_i64(&p, kind);
    rc = rd_q((struct pg_store *)s, S_KEY_COUNT, &p, &r, "key_count");
    if (rc == HR_OK)
        *out = g_i64(r, 0, 0);
    PQclear(r);
    params_free(&p);
    return rc;
}

/* ---- jobs --------------------------------------------------------------------------- */

typedef void (*row_fn)(const PGresult *r, int i, struct arena *a, void *out);

/* rows_read: every row of r into an arena array of elem-byte records (zeroed, then
 * filled by row); *out and *n get the array and its length. Never fails: the arena
 * aborts on exhaustion, and r holds at most the statement's LIMIT rows. */
static void rows_read(const PGresult *r, struct arena *a, size_t elem, row_fn row, void **out,
                      size_t *n)
{
    int rows = PQntuples(r);
    char *arr = arena_zalloc(a, (size_t)(rows ? rows : 1) * elem);
    for (int i = 0; i < rows; i++)
        row(r, i, a, arr + (size_t)i * elem);
    *out = arr;
    *n = (size_t)rows;
}

static void row_job(const PGresult *r, int i, struct arena *a, void *vout)
{
    struct job *out = vout;
    memset(out, 0, sizeof *out);
    out->id = g_i64(r, i, 0);
    g_copy(out->kind, sizeof out->kind, r, i, 1);
    out->payload = g_str(a, r, i, 2);
    out->state = (int)g_i64(r, i, 3);
    out->run_at_ms = g_i64(r, i, 4);
    out->lease_until_ms = g_i64(r, i, 5);
    out->lease_token = g_i64(r, i, 6);
    out->attempts = (uint32_t)g_i64(r, i, 7);
    out->max_attempts = (uint32_t)g_i64(r, i, 8);
    out->created_ms = g_i64(r, i, 9);
    out->last_error = g_str(a, r, i, 10);
    out->retaken = (uint32_t)g_i64(r, i, 11);
}

static int pg_job_insert(struct store_txn *t, const struct job_spec *js, int64_t now_ms,
                         int64_t *out_id)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc = HR_OK;
    size_t klen, dlen;
    if (out_id)
        *out_id = 0;
    klen = js && js->kind ? strnlen(js->kind, KIND_MAX + 1) : 0;
    dlen = js && js->dedup_key ? strnlen(js->dedup_key, DEDUP_KEY_MAX + 1) : 0;
    if (klen == 0 || klen > KIND_MAX || memchr(js->kind, ',', klen) || dlen > DEDUP_KEY_MAX ||
        (js->payload.len && !js->payload.p)) {
        rc = HR_INVAL;
        goto out;
    }
    if (js->payload.len > STORE_PAYLOAD_MAX) {
        rc = HR_TOOBIG;
        goto out;
    }
    if (js->lease_until_ms < 0 || (js->lease_until_ms > 0 && js->lease_token == 0)) {
        rc = HR_INVAL;
        goto out;
    }
    /* a dedup insert that finds the key, but whose holder is gone by the time we look
     * it up (acked in between), tries again */
    for (int attempt = 0; attempt < 3; attempt++) {
        p_text(&p, (struct str){js->kind, klen});
        p_bytes(&p, js->payload);
        p_i64(&p, js->run_at_ms ? js->run_at_ms : now_ms);
        p_i64(&p, js->max_attempts ? js->max_attempts : DEFAULT_MAX_ATTEMPTS);
        p_i64(&p, now_ms);
        if (dlen)
            p_text(&p, (struct str){js->dedup_key, dlen});
        else
            p_null(&p);
        p_i64(&p, js->lease_until_ms);
        p_i64(&p, js->lease_until_ms > 0 ? js->lease_token : 0);
        rc = tx_q(t, dlen ? S_JOB_INSERT : S_JOB_INSERT_PLAIN, &p, &r, "job_insert");
        params_free(&p);
        if (rc < 0)
            goto out;
        if (PQntuples(r) == 1) {
            if (out_id)
                *out_id = g_i64(r, 0, 0);
            if (js->lease_until_ms == 0)
                t->jobs_changed = true;
            goto out;
        }
        PQclear(r);
        r = NULL;
        p_text(&p, (struct str){js->dedup_key, dlen});
        rc = tx_q(t, S_JOB_BY_DEDUP, &p, &r, "job_dedup");
        params_free(&p);
        if (rc < 0)
            goto out;
        if (PQntuples(r) == 1) {
            if (out_id)
                *out_id = g_i64(r, 0, 0);
            rc = HR_CONFLICT;
            goto out;
        }
        PQclear(r);
        r = NULL;
    }
    rc = HR_BUSY;
out:
    PQclear(r);
    params_free(&p);
    return rc;
}

/* text_array: strings v[0..n) as a PostgreSQL text array literal (caller frees): each
 * element quoted, '"' and '\\' escaped. */
static char *text_array(const struct str *v, size_t n)
{
    size_t cap = 3, len = 0;
    char *s;
    for (size_t i = 0; i < n; i++)
        cap += 2 * v[i].len + 3;
    s = xmalloc(cap);
    s[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            s[len++] = ',';
        s[len++] = '"';
        for (size_t k = 0; k < v[i].len; k++) {
            if (v[i].p[k] == '"' || v[i].p[k] == '\\')
                s[len++] = '\\';
            s[len++] = v[i].p[k];
        }
        s[len++] = '"';
    }
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

/* kinds_array: the NULL-terminated kinds list as a PostgreSQL array literal (caller
 * frees), or NULL for "all kinds". HR_INVAL past KINDS_MAX or for a kind that is too
 * long. */
static int kinds_array(const char *const *kinds, char **out)
{
    struct str v[KINDS_MAX];
    size_t i;
    *out = NULL;
    if (!kinds)
        return HR_OK;
    for (i = 0; kinds[i]; i++) {
        size_t n = strnlen(kinds[i], KIND_MAX + 1);
        if (i >= KINDS_MAX || n > KIND_MAX)
            return HR_INVAL;
        v[i] = (struct str){kinds[i], n};
    }
    *out = text_array(v, i);
    return HR_OK;
}

static int job_cmp(const void *a, const void *b)
{
    const struct job *x = a, *y = b;
    if (x->run_at_ms != y->run_at_ms)
        return x->run_at_ms < y->run_at_ms ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int pg_job_lease(struct store_txn *t, int64_t now_ms, int64_t lease_ms, size_t max,
                        size_t max_repeat, const char *const *kinds, struct arena *a,
                        struct job **out, size_t *n)
{
    struct params p = {0};
    PGresult *r = NULL;
    char *ka = NULL;
    int rc = HR_OK;

    *out = NULL;
    *n = 0;
    if (lease_ms <= 0 || lease_ms > LEASE_MS_MAX || now_ms < 0) {
        rc = HR_INVAL;
        goto out;
    }
    if (max == 0)
        goto out;
    if (max > LEASE_BATCH_MAX)
        max = LEASE_BATCH_MAX;
    rc = kinds_array(kinds, &ka);
    if (rc < 0)
        goto out;
    p_i64(&p, now_ms);
    p_i64(&p, now_ms + lease_ms);
    if (ka)
        p_textz(&p, ka);
    else
        p_null(&p);
    p_i64(&p, (int64_t)max);
    p_i64(&p, new_token());
    p_i64(&p, (int64_t)(max_repeat < max ? max_repeat : max));
    /* sent with the lease in one round trip; the RESET goes with the transaction's next
     * statement, or not at all when the commit comes first (SET LOCAL ends with it) */
    rc = tx_defer(t, "SET LOCAL enable_bitmapscan = off");
    if (rc == HR_OK)
        rc = tx_q(t, S_JOB_LEASE, &p, &r, "job_lease");
    if (rc == HR_OK)
        rc = tx_defer(t, "RESET enable_bitmapscan");
    if (rc < 0)
        goto out;
    rows_read(r, a, sizeof **out, row_job, (void **)out, n);
    qsort(*out, *n, sizeof **out, job_cmp);
out:
    PQclear(r);
    params_free(&p);
    free(ka);
    return rc;
}

/* lease_op: one of the token-checked updates; HR_CONFLICT when the job is not leased
 * under that token any more. */
static int lease_op(struct store_txn *t, enum stmt_id id_stmt, const char *what, int64_t id,
                    int64_t token, const int64_t *run_at, const struct str *error)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    p_i64(&p, id);
    p_i64(&p, token);
    if (run_at)
        p_i64(&p, *run_at);
    if (error)
        p_text(&p, clip_utf8(*error, ERROR_TEXT_MAX));
    rc = tx_q(t, id_stmt, &p, &r, what);
    if (rc == HR_OK && affected(r) == 0) {
        LOG_D("store.pg.lease_lost", "op=%s job=%lld", what, (long long)id);
        rc = HR_CONFLICT;
    }
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_job_ack(struct store_txn *t, int64_t id, int64_t lease_token)
{
    return lease_op(t, S_JOB_ACK, "job_ack", id, lease_token, NULL, NULL);
}

static int pg_job_ack_many(struct store_txn *t, const int64_t *ids, const int64_t *tokens,
                           size_t n)
{
    struct params p = {0};
    PGresult *r = NULL;
    struct barr a[2];
    int rc;
    if (n == 0)
        return HR_OK;
    if (n == 1)
        return pg_job_ack(t, ids[0], tokens[0]);
    barr_init(&a[0], OID_INT8, n);
    barr_init(&a[1], OID_INT8, n);
    for (size_t i = 0; i < n; i++) {
        barr_i64(&a[0], ids[i]);
        barr_i64(&a[1], tokens[i]);
    }
    p_barr(&p, &a[0]);
    p_barr(&p, &a[1]);
    rc = tx_q(t, S_JOB_ACK_MANY, &p, &r, "job_ack_many");
    if (rc == HR_OK && affected(r) != (int64_t)n) {
        LOG_D("store.pg.lease_lost", "op=job_ack_many jobs=%zu acked=%lld", n,
              (long long)affected(r));
        rc = HR_CONFLICT;
    }
    PQclear(r);
    params_free(&p);
    barr_free(&a[0]);
    barr_free(&a[1]);
    return rc;
}

static int pg_job_retry(struct store_txn *t, int64_t id, int64_t lease_token, int64_t run_at_ms,
                        struct str error)
{
    int rc = lease_op(t, S_JOB_RETRY, "job_retry", id, lease_token, &run_at_ms, &error);
    if (rc == HR_OK)
        t->jobs_changed = true;
    return rc;
}

static int pg_job_dead(struct store_txn *t, int64_t id, int64_t lease_token, struct str error)
{
    return lease_op(t, S_JOB_DEAD, "job_dead", id, lease_token, NULL, &error);
}

static int pg_job_release(struct store_txn *t, int64_t id, int64_t lease_token)
{
    int rc = lease_op(t, S_JOB_RELEASE, "job_release", id, lease_token, NULL, NULL);
    if (rc == HR_OK)
        t->jobs_changed = true;
    return rc;
}

static int pg_job_defer(struct store_txn *t, int64_t id, int64_t lease_token, int64_t run_at_ms)
{
    int rc = lease_op(t, S_JOB_DEFER, "job_defer", id, lease_token, &run_at_ms, NULL);
    if (rc == HR_OK)
        t->jobs_changed = true;
    return rc;
}

/* pg_job_extend: queues nothing, so no NOTIFY. */
static int pg_job_extend(struct store_txn *t, int64_t id, int64_t lease_token,
                         int64_t lease_until_ms)
{
    return lease_op(t, S_JOB_EXTEND, "job_extend", id, lease_token, &lease_until_ms, NULL);
}

static int pg_job_get(struct store *s, int64_t id, struct arena *a, struct job *out)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    p_i64(&p, id);
    rc = rd_q((struct pg_store *)s, S_JOB_GET, &p, &r, "job_get");
    if (rc == HR_OK) {
        if (PQntuples(r) == 0)
            rc = HR_NOTFOUND;
        else
            row_job(r, 0, a, out);
    }
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_job_counts(struct store *s, struct arena *a, struct job_count **out, size_t *n)
{
    PGresult *r = NULL;
    struct job_count *arr;
    int rc, rows;
    *out = NULL;
    *n = 0;
    rc = rd_q((struct pg_store *)s, S_JOB_COUNTS, NULL, &r, "job_counts");
    if (rc < 0)
        goto out;
    rows = PQntuples(r);
    if (rows > LIST_MAX) {
        rc = HR_TOOBIG;
        goto out;
    }
    arr = arena_zalloc(a, (size_t)(rows ? rows : 1) * sizeof *arr);
    for (int i = 0; i < rows; i++) {
        g_copy(arr[i].kind, sizeof arr[i].kind, r, i, 0);
        arr[i].state = (int)g_i64(r, i, 1);
        arr[i].count = g_i64(r, i, 2);
    }
    *out = arr;
    *n = (size_t)rows;
out:
    PQclear(r);
    return rc;
}

static int pg_job_next_run_at(struct store *s, bool leases, int64_t *out_ms)
{
    PGresult *r = NULL;
    int rc = rd_q((struct pg_store *)s, leases ? S_JOB_NEXT : S_JOB_NEXT_QUEUED, NULL, &r,
                  "job_next_run_at");
    if (rc == HR_OK) {
        if (PQntuples(r) == 0 || PQgetisnull(r, 0, 0))
            rc = HR_NOTFOUND;
        else
            *out_ms = g_i64(r, 0, 0);
    }
    PQclear(r);
    return rc;
}

static int pg_job_list(struct store *s, int state, size_t limit, struct arena *a,
                       struct job **out, size_t *n)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    *out = NULL;
    *n = 0;
    if (limit == 0 || limit > LIST_MAX)
        return HR_INVAL;
    p_i64(&p, state);
    p_i64(&p, (int64_t)limit);
    rc = rd_q((struct pg_store *)s, S_JOB_LIST, &p, &r, "job_list");
    if (rc < 0)
        goto out;
    rows_read(r, a, sizeof **out, row_job, (void **)out, n);
out:
    PQclear(r);
    params_free(&p);
    return rc;
}

/* ---- documents ------------------------------------------------------------------------ */

static void row_doc(const PGresult *r, int i, struct arena *a, void *vout)
{
    struct doc_rec *out = vout;
    out->coll = g_str(a, r, i, 0);
    out->id = g_str(a, r, i, 1);
    out->body = g_str(a, r, i, 2);
    out->version = g_i64(r, i, 3);
    out->created_ms = g_i64(r, i, 4);
    out->updated_ms = g_i64(r, i, 5);
}

static int doc_result(int rc, PGresult *r, struct arena *a, struct doc_rec *out)
{
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 0)
        return HR_NOTFOUND;
    row_doc(r, 0, a, out);
    return HR_OK;
}

static int pg_doc_get(struct store *s, const char *coll, struct str id, struct arena *a,
                      struct doc_rec *out)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc = store_check_doc_id(coll, id);
    if (rc < 0)
        return rc;
    p_cstr(&p, coll);
    p_text(&p, id);
    rc = rd_q((struct pg_store *)s, S_DOC_GET, &p, &r, "doc_get");
    rc = doc_result(rc, r, a, out);
    PQclear(r);
    params_free(&p);
    return rc;
}

/* pg_doc_get_txn: lock (coll, id) for the rest of the transaction, present or not, and
 * read it: a read-modify-write (or a create-if-absent) of one document cannot
 * interleave with another node's. A present document is locked by its row (FOR UPDATE);
 * only an absent one takes the advisory lock, then is read again, since a creator
 * holding that lock may have committed it meanwhile. (Lock order is the caller's, as
 * before: both locks of one (coll, id) are taken at the same point.) */
static int pg_doc_get_txn(struct store_txn *t, const char *coll, struct str id, struct arena *a,
                          struct doc_rec *out)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc = store_check_doc_id(coll, id);
    if (rc < 0)
        return rc;
    p_cstr(&p, coll);
    p_text(&p, id);
    rc = tx_q(t, S_DOC_GET_FOR_UPDATE, &p, &r, "doc_get_txn");
    if (rc == HR_OK && PQntuples(r) == 0) {
        PQclear(r);
        r = NULL;
        rc = tx_q(t, S_DOC_LOCK, &p, &r, "doc_lock");
        PQclear(r);
        r = NULL;
        if (rc == HR_OK)
            rc = tx_q(t, S_DOC_GET_FOR_UPDATE, &p, &r, "doc_get_txn");
    }
    rc = doc_result(rc, r, a, out);
    PQclear(r);
    params_free(&p);
    return rc;
}

/* doc_write: run S_DOC_PUT or S_DOC_CREATE for (coll, id, body, now_ms); *r is the
 * result (caller clears it). */
static int doc_write(struct store_txn *t, int stmt, const char *coll, struct str id,
                     struct str body, int64_t now_ms, PGresult **r, const char *what)
{
    struct params p = {0};
    int rc = store_check_doc_id(coll, id);
    if (rc < 0)
        return rc;
    if (body.len > STORE_PAYLOAD_MAX)
        return HR_TOOBIG;
    p_cstr(&p, coll);
    p_text(&p, id);
    p_bytes(&p, body);
    p_i64(&p, now_ms);
    rc = tx_q(t, stmt, &p, r, what);
    params_free(&p);
    return rc;
}

static int pg_doc_put(struct store_txn *t, const char *coll, struct str id, struct str body,
                      int64_t now_ms, int64_t *out_version)
{
    PGresult *r = NULL;
    int rc = doc_write(t, S_DOC_PUT, coll, id, body, now_ms, &r, "doc_put");
    if (rc == HR_OK && out_version)
        *out_version = g_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

static int pg_doc_create(struct store_txn *t, const char *coll, struct str id, struct str body,
                         int64_t now_ms)
{
    PGresult *r = NULL;
    int rc = doc_write(t, S_DOC_CREATE, coll, id, body, now_ms, &r, "doc_create");
    if (rc == HR_OK && affected(r) == 0)
        rc = HR_CONFLICT;
    PQclear(r);
    return rc;
}

static int pg_doc_create_many(struct store_txn *t, const char *coll, const struct str *ids,
                              const int64_t *now_ms, size_t n, struct str body,
                              size_t *created)
{
    struct params p = {0};
    PGresult *r = NULL;
    char *idv = NULL, *tv = NULL;
    size_t len = 0, cap = n * 21 + 3; /* per time: a comma and up to 20 characters */
    int rc = HR_OK;

    *created = 0;
    /* the ids go as an array literal in text: no sanitizing as p_text does, which is why
     * the contract refuses ids that are not clean UTF-8 */
    rc = store_check_create_many(coll, ids, n, body);
    if (rc < 0 || n == 0)
        goto out;
    idv = text_array(ids, n);
    tv = xmalloc(cap);
    tv[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(tv + len, cap - len, i ? ",%lld" : "%lld", (long long)now_ms[i]);
    tv[len++] = '}';
    tv[len] = '\0';
    p_cstr(&p, coll);
    p_textz(&p, idv);
    p_bytes(&p, body);
    p_textz(&p, tv);
    rc = tx_q(t, S_DOC_CREATE_MANY, &p, &r, "doc_create_many");
    if (rc == HR_OK)
        *created = (size_t)affected(r);
    PQclear(r);
    params_free(&p);
out:
    free(idv);
    free(tv);
    return rc;
}

static int pg_doc_delete(struct store_txn *t, const char *coll, struct str id)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc = store_check_doc_id(coll, id);
    if (rc < 0)
        return rc;
    p_cstr(&p, coll);
    p_text(&p, id);
    rc = tx_q(t, S_DOC_DELETE, &p, &r, "doc_delete");
    if (rc == HR_OK && affected(r) == 0)
        rc = HR_NOTFOUND;
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_doc_list(struct store *s, const char *coll, struct str prefix, struct str after,
                       size_t limit, struct arena *a, struct doc_rec **out, size_t *n)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    *out = NULL;
    *n = 0;
    if (strlen(coll) == 0 || limit == 0 || limit > LIST_MAX || prefix.len > STORE_DOC_ID_MAX ||
        after.len > STORE_DOC_ID_MAX)
        return HR_INVAL;
    p_cstr(&p, coll);
    p_text(&p, after);
    p_text(&p, prefix);
    p_i64(&p, (int64_t)limit);
    rc = rd_q((struct pg_store *)s, S_DOC_LIST, &p, &r, "doc_list");
    if (rc < 0)
        goto out;
    rows_read(r, a, sizeof **out, row_doc, (void **)out, n);
out:
    PQclear(r);
    params_free(&p);
    return rc;
}

/* ---- events ------------------------------------------------------------------------- */

static bool event_rec_ok(const struct event_rec *e)
{
    return !(e->message_id.len == 0 || e->message_id.len > 1024 ||
             e->body.len > STORE_PAYLOAD_MAX || e->type.len == 0 || e->type.len > 32 ||
             e->user_id.len > STORE_DOC_ID_MAX);
}

/* pg_event_insert: claim (source, messageId) in event_dedup; the claim succeeds for a
 * new key or when the holder arrived before the window, and then the event is stored
 * under the claimed id. Concurrent claims of one key wait on its row lock, so across
 * nodes only one wins within the window. */
static int pg_event_insert(struct store_txn *t, const struct event_rec *e, int64_t window_ms,
                           int64_t *out_id)
{
    struct params p = {0};
    PGresult *r = NULL;
    int64_t id;
    int rc;
    if (!event_rec_ok(e))
        return HR_INVAL;
    p_i64(&p, e->source_id);
    p_text(&p, e->message_id);
    p_i64(&p, e->received_ms);
    p_i64(&p, e->received_ms - window_ms);
    rc = tx_q(t, S_EVENT_CLAIM, &p, &r, "event_claim");
    params_free(&p);
    if (rc < 0)
        goto out;
    if (PQntuples(r) == 0) {
        PQclear(r);
        r = NULL;
        p_i64(&p, e->source_id);
        p_text(&p, e->message_id);
        rc = tx_q(t, S_EVENT_HOLDER, &p, &r, "event_holder");
        if (rc < 0)
            goto out;
        if (PQntuples(r) == 1)
            *out_id = g_i64(r, 0, 0);
        rc = HR_CONFLICT;
        goto out;
    }
    id = g_i64(r, 0, 0);
    PQclear(r);
    r = NULL;
    p_i64(&p, id);
    p_i64(&p, e->source_id);
    p_text(&p, e->message_id);
    p_text(&p, e->type);
    p_text(&p, e->user_id);
    p_bytes(&p, e->body);
    p_i64(&p, e->received_ms);
    rc = tx_q(t, S_EVENT_INSERT, &p, &r, "event_insert");
    if (rc == HR_OK)
        *out_id = id;
out:
    PQclear(r);
    params_free(&p);
    return rc;
}

/* An event's dedup key as PostgreSQL stores it (text_clean'd messageId). */
struct ekey {
    int64_t source_id;
    struct str mid;
    char *owned; /* mid's bytes when text_clean changed them, else NULL */
};

/* by_key: qsort's order of indexes into t_keys: by key, then by index. */
static _Thread_local const struct ekey *t_keys;

static int by_key(const void *x, const void *y)
{
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    const struct ekey *a = &t_keys[i], *b = &t_keys[j];
    int c;
    if (a->source_id != b->source_id)
        return a->source_id < b->source_id ? -1 : 1;
    c = memcmp(a->mid.p, b->mid.p, a->mid.len < b->mid.len ? a->mid.len : b->mid.len);
    if (c)
        return c;
    if (a->mid.len != b->mid.len)
        return a->mid.len < b->mid.len ? -1 : 1;
    return i < j ? -1 : 1;
}

/* pg_event_insert_many: one S_EVENT_ACCEPT_MANY for the first event of each (source,
 * messageId) in e; a later one is its first's duplicate, as n pg_event_insert calls
 * would have it. The holders of the duplicates that were already stored are read one by
 * one (a client's retry: the rare case). */
static int pg_event_insert_many(struct store_txn *t, const struct event_rec *e, size_t n,
                                int64_t window_ms, int64_t *out_ids, int *rcs)
{
    struct params p = {0};
    PGresult *r = NULL;
    struct barr a[6] = {0};
    struct ekey *keys = NULL;
    size_t *ix = NULL, *first = NULL, *ord = NULL, m = 0;
    int rc = HR_OK;

    for (size_t i = 0; i < n; i++) {
        if (!event_rec_ok(&e[i]))
            return HR_INVAL;
        out_ids[i] = 0;
        rcs[i] = HR_CONFLICT;
    }
    if (n == 0)
        return HR_OK;
    keys = xcalloc(n, sizeof *keys);
    ix = xmalloc(n * sizeof *ix);
    first = xmalloc(n * sizeof *first);
    ord = xmalloc(n * sizeof *ord);
    for (size_t i = 0; i < n; i++) {
        keys[i].source_id = e[i].source_id;
        keys[i].owned = text_clean(e[i].message_id);
        keys[i].mid = keys[i].owned ? (struct str){keys[i].owned, e[i].message_id.len}
                                    : e[i].message_id;
        ix[i] = first[i] = i;
    }
    t_keys = keys;
    qsort(ix, n, sizeof *ix, by_key);
    for (size_t k = 1; k < n; k++) {
        const struct ekey *x = &keys[ix[k]], *y = &keys[ix[k - 1]];
        if (x->source_id == y->source_id && str_eq(x->mid, y->mid))
            first[ix[k]] = first[ix[k - 1]];
    }
    for (size_t i = 0; i < n; i++)
        m += first[i] == i;
    barr_init(&a[0], OID_INT8, m);
    barr_init(&a[1], OID_TEXT, m);
    barr_init(&a[2], OID_TEXT, m);
    barr_init(&a[3], OID_TEXT, m);
    barr_init(&a[4], OID_BYTEA, m);
    barr_init(&a[5], OID_INT8, m);
    m = 0;
    for (size_t i = 0; i < n; i++) {
        if (first[i] != i)
            continue;
        ord[m++] = i;
        barr_i64(&a[0], e[i].source_id);
        barr_bytes(&a[1], keys[i].mid);
        barr_text(&a[2], e[i].type);
        barr_text(&a[3], e[i].user_id);
        barr_bytes(&a[4], e[i].body);
        barr_i64(&a[5], e[i].received_ms);
    }
    for (int k = 0; k < 6; k++) {
        if (a[k].toobig) {
            rc = HR_TOOBIG;
            goto out;
        }
        p_barr(&p, &a[k]);
    }
    p_i64(&p, window_ms);
    rc = tx_q(t, S_EVENT_ACCEPT_MANY, &p, &r, "event_accept_many");
    params_free(&p);
    if (rc < 0)
        goto out;
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t k = g_i64(r, row, 0);
        if (k < 1 || (uint64_t)k > m) {
            rc = HR_IO;
            LOG_E("store.pg.event_accept", "msg=\"an ordinal out of range\" ordinal=%lld",
                  (long long)k);
            goto out;
        }
        out_ids[ord[k - 1]] = g_i64(r, row, 1);
        rcs[ord[k - 1]] = HR_OK;
    }
    PQclear(r);
    r = NULL;
    for (size_t k = 0; k < m; k++) { /* stored before: its holder */
        size_t i = ord[k];
        if (rcs[i] == HR_OK)
            continue;
        p_i64(&p, e[i].source_id);
        p_bytes(&p, keys[i].mid);
        rc = tx_q(t, S_EVENT_HOLDER, &p, &r, "event_holder");
        params_free(&p);
        if (rc < 0)
            goto out;
        if (PQntuples(r) == 1)
            out_ids[i] = g_i64(r, 0, 0);
        PQclear(r);
        r = NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (first[i] != i)
            out_ids[i] = out_ids[first[i]];
out:
    PQclear(r);
    params_free(&p);
    for (int k = 0; k < 6; k++)
        barr_free(&a[k]);
    for (size_t i = 0; i < n; i++)
        free(keys[i].owned);
    free(keys);
    free(ix);
    free(first);
    free(ord);
    return rc;
}

static int pg_event_get(struct store *s, int64_t id, struct arena *a, struct event_rec *out)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    p_i64(&p, id);
    rc = rd_q((struct pg_store *)s, S_EVENT_GET, &p, &r, "event_get");
    if (rc == HR_OK && PQntuples(r) == 0)
        rc = HR_NOTFOUND;
    if (rc == HR_OK) {
        out->id = g_i64(r, 0, 0);
        out->source_id = g_i64(r, 0, 1);
        out->message_id = g_str(a, r, 0, 2);
        out->type = g_str(a, r, 0, 3);
        out->user_id = g_str(a, r, 0, 4);
        out->body = g_str(a, r, 0, 5);
        out->received_ms = g_i64(r, 0, 6);
    }
    PQclear(r);
    params_free(&p);
    return rc;
}

/* ---- event catalog ---------------------------------------------------------------------- */

static void row_catalog(const PGresult *r, int i, struct arena *a, void *vout)
{
    struct catalog_rec *out = vout;
    out->name = g_str(a, r, i, 0);
    out->count = g_i64(r, i, 1);
    out->first_seen_ms = g_i64(r, i, 2);
    out->last_seen_ms = g_i64(r, i, 3);
    out->sample = g_str(a, r, i, 4);
}

static int pg_catalog_add(struct store_txn *t, struct str name, struct str sample,
                          int64_t first_ms, int64_t last_ms, int64_t n)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    if (name.len == 0 || name.len > CATALOG_NAME_MAX || sample.len > STORE_PAYLOAD_MAX || n < 1)
        return HR_INVAL;
    p_text(&p, name);
    p_i64(&p, first_ms);
    p_bytes(&p, sample);
    p_i64(&p, n);
    p_i64(&p, last_ms);
    rc = tx_q(t, S_CATALOG_TOUCH, &p, &r, "catalog_touch");
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_catalog_get(struct store *s, struct str name, struct arena *a,
                          struct catalog_rec *out)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    if (name.len == 0 || name.len > CATALOG_NAME_MAX)
        return HR_NOTFOUND;
    p_text(&p, name);
    rc = rd_q((struct pg_store *)s, S_CATALOG_GET, &p, &r, "catalog_get");
    if (rc == HR_OK) {
        if (PQntuples(r) == 0)
            rc = HR_NOTFOUND;
        else
            row_catalog(r, 0, a, out);
    }
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_catalog_list(struct store *s, struct str search, struct str after, size_t limit,
                           struct arena *a, struct catalog_rec **out, size_t *n)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    *out = NULL;
    *n = 0;
    if (limit == 0 || limit > LIST_MAX || search.len > CATALOG_NAME_MAX ||
        after.len > CATALOG_NAME_MAX)
        return HR_INVAL;
    p_text(&p, after);
    p_text(&p, search);
    p_i64(&p, (int64_t)limit);
    rc = rd_q((struct pg_store *)s, S_CATALOG_LIST, &p, &r, "catalog_list");
    if (rc < 0)
        goto out;
    rows_read(r, a, sizeof **out, row_catalog, (void **)out, n);
out:
    PQclear(r);
    params_free(&p);
    return rc;
}

/* ---- messages ------------------------------------------------------------------------- */

static int check_msg(const struct message_rec *m)
{
    const struct str shorts[] = {m->id,      m->request_id, m->status, m->recipient,
                                 m->notification, m->event, m->trace_id, m->run_id,
                                 m->reason,  m->error};
    if (m->id.len == 0 || m->status.len == 0)
        return HR_INVAL;
    for (size_t i = 0; i < sizeof shorts / sizeof shorts[0]; i++)
        if (shorts[i].len > MSG_TEXT_MAX)
            return HR_INVAL;
    if (m->spec.len > STORE_PAYLOAD_MAX || m->state.len > STORE_PAYLOAD_MAX || m->tags.len > STORE_PAYLOAD_MAX)
        return HR_TOOBIG;
    return HR_OK;
}

static void bind_msg(struct params *p, const struct message_rec *m)
{
    p_text(p, m->id);
    p_text(p, m->request_id);
    p_text(p, m->status);
    p_text(p, m->recipient);
    p_text(p, m->notification);
    p_text(p, m->event);
    p_text(p, m->trace_id);
    p_text(p, m->run_id);
    p_text(p, m->tags.len ? m->tags : STR_LIT("[]"));
    p_text(p, m->reason);
    p_text(p, m->error);
    p_bytes(p, m->spec.len ? m->spec : STR_LIT("{}"));
    p_bytes(p, m->state.len ? m->state : STR_LIT("{}"));
    p_i64(p, m->enqueued_ms);
    p_i64(p, m->sent_ms);
    p_i64(p, m->delivered_ms);
    p_i64(p, m->canceled_ms);
    p_i64(p, m->updated_ms);
}

static void row_msg(const PGresult *r, int i, struct arena *a, void *vm)
{
    struct message_rec *m = vm;
    m->id = g_str(a, r, i, 0);
    m->request_id = g_str(a, r, i, 1);
    m->status = g_str(a, r, i, 2);
    m->recipient = g_str(a, r, i, 3);
    m->notification = g_str(a, r, i, 4);
    m->event = g_str(a, r, i, 5);
    m->trace_id = g_str(a, r, i, 6);
    m->run_id = g_str(a, r, i, 7);
    m->tags = g_str(a, r, i, 8);
    m->reason = g_str(a, r, i, 9);
    m->error = g_str(a, r, i, 10);
    m->spec = g_str(a, r, i, 11);
    m->state = g_str(a, r, i, 12);
    m->enqueued_ms = g_i64(r, i, 13);
    m->sent_ms = g_i64(r, i, 14);
    m->delivered_ms = g_i64(r, i, 15);
    m->canceled_ms = g_i64(r, i, 16);
    m->updated_ms = g_i64(r, i, 17);
}

static int msg_write(struct store_txn *t, enum stmt_id id, const char *what,
                     const struct message_rec *m, int none_rc)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc = check_msg(m);
    if (rc < 0)
        return rc;
    bind_msg(&p, m);
    rc = tx_q(t, id, &p, &r, what);
    if (rc == HR_OK && affected(r) == 0)
        rc = none_rc;
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_message_insert(struct store_txn *t, const struct message_rec *m)
{
    return msg_write(t, S_MSG_INSERT, "message_insert", m, HR_CONFLICT);
}

static int pg_message_update(struct store_txn *t, const struct message_rec *m)
{
    return msg_write(t, S_MSG_UPDATE, "message_update", m, HR_NOTFOUND);
}

static int msg_result(int rc, PGresult *r, struct arena *a, struct message_rec *out)
{
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 0)
        return HR_NOTFOUND;
    row_msg(r, 0, a, out);
    return HR_OK;
}

static int pg_message_get(struct store *s, struct str id, struct arena *a,
                          struct message_rec *out)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    if (id.len == 0 || id.len > MSG_TEXT_MAX)
        return HR_NOTFOUND;
    p_text(&p, id);
    rc = rd_q((struct pg_store *)s, S_MSG_GET, &p, &r, "message_get");
    rc = msg_result(rc, r, a, out);
    PQclear(r);
    params_free(&p);
    return rc;
}

/* pg_message_get_txn: the row stays locked until the transaction ends, so the caller's
 * update is not lost to (nor loses) another node's. */
static int pg_message_get_txn(struct store_txn *t, struct str id, struct arena *a,
                              struct message_rec *out)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    if (id.len == 0 || id.len > MSG_TEXT_MAX)
        return HR_NOTFOUND;
    p_text(&p, id);
    rc = tx_q(t, S_MSG_GET_FOR_UPDATE, &p, &r, "message_get_txn");
    rc = msg_result(rc, r, a, out);
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_message_list(struct store *s, const struct message_filter *f, struct arena *a,
                           struct message_rec **out, size_t *n)
{
    bool several = memchr(f->status.p ? f->status.p : "", ',', f->status.len) != NULL;
    struct str one = several ? STR_NULL : f->status, any = several ? f->status : STR_NULL;
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    *out = NULL;
    *n = 0;
    if (f->limit == 0 || f->limit > 1000)
        return HR_INVAL;
    p_text(&p, f->recipient);
    p_text(&p, one);
    p_text(&p, f->notification);
    p_text(&p, f->event);
    p_text(&p, f->tag);
    p_text(&p, f->trace_id);
    p_text(&p, f->run_id);
    p_text(&p, f->before_id);
    p_i64(&p, (int64_t)f->limit);
    p_text(&p, any);
    p_text(&p, f->id);
    p_i64(&p, f->enqueued_after_ms);
    rc = rd_q((struct pg_store *)s,
              f->id.len          ? S_MSG_LIST_ID
              : f->recipient.len ? S_MSG_LIST_RECIPIENT
              : f->run_id.len    ? S_MSG_LIST_RUN
              : one.len          ? S_MSG_LIST_STATUS
                                 : S_MSG_LIST,
              &p, &r, "message_list");
    if (rc < 0)
        goto out;
    rows_read(r, a, sizeof **out, row_msg, (void **)out, n);
out:
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_history_append(struct store_txn *t, struct str message_id, int64_t ts,
                             struct str type, struct str body)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    if (message_id.len == 0 || message_id.len > MSG_TEXT_MAX || type.len == 0 || type.len > 64 ||
        body.len > STORE_PAYLOAD_MAX)
        return HR_INVAL;
    p_text(&p, message_id);
    p_i64(&p, ts);
    p_text(&p, type);
    p_bytes(&p, body);
    rc = tx_q(t, S_HIST_APPEND, &p, &r, "history_append");
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_history_list(struct store *s, struct str message_id, struct arena *a,
                           struct history_rec **out, size_t *n)
{
    struct params p = {0};
    PGresult *r = NULL;
    struct history_rec *arr;
    int rc, rows;
    *out = NULL;
    *n = 0;
    if (message_id.len > MSG_TEXT_MAX)
        return HR_INVAL;
    p_text(&p, message_id);
    rc = rd_q((struct pg_store *)s, S_HIST_LIST, &p, &r, "history_list");
    if (rc < 0)
        goto out;
    rows = PQntuples(r);
    arr = arena_zalloc(a, (size_t)(rows ? rows : 1) * sizeof *arr);
    for (int i = 0; i < rows; i++) {
        arr[i].seq = g_i64(r, i, 0);
        arr[i].ts = g_i64(r, i, 1);
        arr[i].type = g_str(a, r, i, 2);
        arr[i].body = g_str(a, r, i, 3);
    }
    *out = arr;
    *n = (size_t)rows;
out:
    PQclear(r);
    params_free(&p);
    return rc;
}

/* ---- bulk copy ------------------------------------------------------------------------ */

#define COPY_LIMIT_MAX 10000
#define COPY_SQL_MAX 1024

/* q_sql: as q, for a statement built at run time (not prepared). */
static int q_sql(struct pconn *c, const char *sql, struct params *p, PGresult **out,
                 const char *what, bool *retry)
{
    PGresult *r;
    ExecStatusType st;
    int rc;
    *out = NULL;
    if ((rc = ctl_flush(c, what, retry)) < 0)
        return rc;
    r = PQexecParams(c->pg, sql, p ? p->n : 0, NULL, p ? p->v : NULL, p ? p->len : NULL,
                     p ? p->fmt : NULL, 1);
    st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        rc = db_fail(c, r, what, retry);
        PQclear(r);
        return rc;
    }
    *out = r;
    return HR_OK;
}

static int tx_sql(struct store_txn *t, const char *sql, struct params *p, PGresult **out,
                  const char *what)
{
    bool retry = false;
    int rc = tx_check(t);
    *out = NULL;
    if (rc < 0)
        return rc;
    rc = q_sql(((struct pg_txn *)t)->c, sql, p, out, what, &retry);
    return tx_note((struct pg_txn *)t, rc, retry);
}

static int rd_sql(struct pg_store *ps, const char *sql, struct params *p, PGresult **out,
                  const char *what)
{
    struct pconn *c = NULL;
    struct herr err;
    bool retry = false;
    int rc = pool_get(ps, false, &c, &err);
    *out = NULL;
    if (rc < 0)
        return rc;
    rc = q_sql(c, sql, p, out, what, &retry);
    pool_put(ps, c);
    return rc;
}

/* copy_src: where a copy reads table ct from: the catalog's counts are its base rows
 * plus the per-backend slots (migration 8), so it is read through catalog_all. */
static const char *copy_src(const struct copy_table *ct)
{
    return strcmp(ct->name, "catalog") == 0 ? "catalog_all" : ct->name;
}

static int pg_copy_rows(struct store *s, const char *table, int64_t after_seq, size_t limit,
                        struct arena *a, struct copy_row **out, size_t *n)
{
    const struct copy_table *ct = store_copy_table(table);
    char sql[COPY_SQL_MAX];
    struct params p = {0};
    PGresult *r = NULL;
    size_t ncols;
    int rc, rows;
    *out = NULL;
    *n = 0;
    if (!ct || limit == 0 || limit > COPY_LIMIT_MAX || after_seq < 0)
        return HR_INVAL;
    ncols = strlen(ct->types);
    if (ct->seq_col)
        snprintf(sql, sizeof sql,
                 "SELECT %s FROM %s WHERE %s > $1::bigint%s%s ORDER BY %s LIMIT $2::bigint",
                 ct->sel, copy_src(ct), ct->seq_col, ct->where ? " AND " : "",
                 ct->where ? ct->where : "", ct->seq_col);
    else
        snprintf(sql, sizeof sql,
                 "SELECT %s FROM %s%s%s ORDER BY %s LIMIT $2::bigint OFFSET $1::bigint", ct->sel,
                 copy_src(ct), ct->where ? " WHERE " : "", ct->where ? ct->where : "",
                 ct->order);
    p_i64(&p, after_seq);
    p_i64(&p, (int64_t)limit);
    rc = rd_sql((struct pg_store *)s, sql, &p, &r, "copy_rows");
    if (rc < 0)
        goto out;
    rows = PQntuples(r);
    *out = arena_zalloc(a, (size_t)(rows ? rows : 1) * sizeof **out);
    for (int i = 0; i < rows; i++) {
        struct copy_row *row = &(*out)[i];
        row->ncols = ncols;
        for (size_t k = 0; k < ncols; k++) {
            char ty = ct->types[k];
            if (PQgetisnull(r, i, (int)k))
                row->v[k].type = COPY_NULL;
            else if (ty == 'i') {
                row->v[k].type = COPY_INT;
                row->v[k].i = g_i64(r, i, (int)k);
            } else {
                row->v[k].type = ty == 'b' ? COPY_BLOB : COPY_TEXT;
                row->v[k].s = g_str(a, r, i, (int)k);
            }
        }
        row->seq = ct->seq_col ? row->v[0].i : after_seq + i + 1;
    }
    *n = (size_t)rows;
out:
    PQclear(r);
    params_free(&p);
    return rc;
}

/* copy_params: row r's values as parameters into p (empty on entry). */
static void copy_params(struct params *p, const struct copy_row *r, size_t ncols)
{
    for (size_t k = 0; k < ncols; k++) {
        const struct copy_val *v = &r->v[k];
        if (v->type == COPY_INT)
            p_i64(p, v->i);
        else if (v->type == COPY_TEXT)
            p_text(p, v->s);
        else if (v->type == COPY_BLOB)
            p_bytes(p, v->s);
        else
            p_null(p);
    }
}

#define COPY_PIPELINE_ROWS 1000 /* statements sent before a sync: the answers stay small */

/* copy_pipelined: the insert sql prepared once, then executed once per row,
 * COPY_PIPELINE_ROWS rows per libpq pipeline (one round trip per chunk instead of per
 * row), inside transaction x. Returns
 * HR_OK, or the first failure's rc (x->failed set: the transaction is aborted). */
static int copy_pipelined(struct pg_txn *x, const char *sql, const struct copy_row *rows,
                          size_t n, size_t ncols)
{
    PGconn *pg = x->c->pg;
    bool retry = false;
    int rc = ctl_flush(x->c, "copy_insert", &retry);
    for (size_t at = 0; at < n && rc == HR_OK;) {
        size_t end = n - at > COPY_PIPELINE_ROWS ? at + COPY_PIPELINE_ROWS : n, sent = 0;
        int nulls = 0;
        bool synced = false;
        if (PQenterPipelineMode(pg) != 1) {
            rc = db_fail(x->c, NULL, "copy_insert pipeline", &retry);
            break;
        }
        /* parsed and planned once per chunk: the unnamed statement, bound per row */
        if (PQsendPrepare(pg, "", sql, (int)ncols, NULL) != 1)
            rc = db_fail(x->c, NULL, "copy_insert prepare", &retry);
        else
            sent++;
        for (; rc == HR_OK && at < end; at++, sent++) {
            struct params p = {0};
            int ok;
            copy_params(&p, &rows[at], ncols);
            ok = PQsendQueryPrepared(pg, "", p.n, p.v, p.len, p.fmt, 1);
            params_free(&p);
            if (!ok) {
                rc = db_fail(x->c, NULL, "copy_insert", &retry);
                break;
            }
        }
        if (PQpipelineSync(pg) != 1) {
            /* the answers of what was sent may never come: do not wait for them (the
             * connection stays in pipeline mode, and pool_put closes it) */
            if (rc == HR_OK)
                rc = db_fail(x->c, NULL, "copy_insert sync", &retry);
            break;
        }
        /* every answer up to the sync: one result and a NULL per statement sent */
        while (!synced && PQstatus(pg) == CONNECTION_OK && nulls <= (int)sent + 1) {
            PGresult *r = PQgetResult(pg);
            ExecStatusType st;
            if (!r) {
                nulls++;
                continue;
            }
            st = PQresultStatus(r);
            if (st == PGRES_PIPELINE_SYNC)
                synced = true;
            else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
                     st != PGRES_PIPELINE_ABORTED && rc == HR_OK)
                rc = db_fail(x->c, r, "copy_insert", &retry);
            PQclear(r);
        }
        if (!synced && rc == HR_OK)
            rc = db_fail(x->c, NULL, "copy_insert answers", &retry);
        if (PQexitPipelineMode(pg) != 1 && rc == HR_OK)
            rc = db_fail(x->c, NULL, "copy_insert pipeline end", &retry);
    }
    if (rc < 0) {
        x->failed = rc;
        x->retry = retry;
    }
    return rc;
}

static int pg_copy_insert(struct store_txn *t, const char *table, const struct copy_row *rows,
                          size_t n)
{
    const struct copy_table *ct = store_copy_table(table);
    char sql[COPY_SQL_MAX], ph[8 * COPY_COLS_MAX + 1];
    struct params p = {0};
    PGresult *r = NULL;
    size_t ncols = ct ? strlen(ct->types) : 0, at = 0;
    bool events = ct && strcmp(ct->name, "events") == 0;
    int rc = HR_OK;
    if (!ct)
        return HR_INVAL;
    for (size_t k = 0; k < ncols; k++)
        at += (size_t)snprintf(ph + at, sizeof ph - at, "%s$%zu", k ? ", " : "", k + 1);
    snprintf(sql, sizeof sql, "INSERT INTO %s(%s) VALUES(%s) ON CONFLICT DO NOTHING", ct->name,
             ct->cols, ph);
    for (size_t i = 0; i < n; i++)
        if (rows[i].ncols != ncols)
            return HR_INVAL;
    if (!events) {
        struct pg_txn *x = (struct pg_txn *)t;
        if (t_txn != x || !x->active)
            return HR_INVAL;
        if (x->failed < 0)
            return x->failed;
        rc = copy_pipelined(x, sql, rows, n, ncols);
    }
    for (size_t i = 0; events && i < n && rc == HR_OK; i++) {
        copy_params(&p, &rows[i], ncols);
        rc = tx_sql(t, sql, &p, &r, "copy_insert");
        PQclear(r);
        r = NULL;
        params_free(&p);
        if (rc == HR_OK && events) {
            /* the dedup claim the event would have made: the latest per (source, id) */
            p_i64(&p, rows[i].v[1].i);
            p_text(&p, rows[i].v[2].s);
            p_i64(&p, rows[i].v[0].i);
            p_i64(&p, rows[i].v[6].i);
            rc = tx_sql(t,
                        "INSERT INTO event_dedup(source_id, message_id, event_id, received_ms) "
                        "VALUES($1, $2, $3, $4) ON CONFLICT (source_id, message_id) DO UPDATE "
                        "SET event_id = EXCLUDED.event_id, received_ms = EXCLUDED.received_ms "
                        "WHERE event_dedup.received_ms <= EXCLUDED.received_ms",
                        &p, &r, "copy_insert");
            PQclear(r);
            r = NULL;
            params_free(&p);
        }
    }
    if (rc == HR_OK && ct->seq_col && n > 0) {
        /* ids taken from the source: the sequence continues after the largest */
        snprintf(sql, sizeof sql,
                 "SELECT setval(pg_get_serial_sequence('%s', '%s'), "
                 "(SELECT COALESCE(max(%s), 0) + 1 FROM %s), false)",
                 ct->name, ct->seq_col, ct->seq_col, ct->name);
        rc = tx_sql(t, sql, NULL, &r, "copy_insert");
        PQclear(r);
    }
    return rc;
}

static int pg_copy_count(struct store *s, const char *table, int64_t *n)
{
    const struct copy_table *ct = store_copy_table(table);
    char sql[COPY_SQL_MAX];
    PGresult *r = NULL;
    int rc;
    *n = 0;
    if (!ct)
        return HR_INVAL;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s%s%s", copy_src(ct),
             ct->where ? " WHERE " : "", ct->where ? ct->where : "");
    rc = rd_sql((struct pg_store *)s, sql, NULL, &r, "copy_count");
    if (rc == HR_OK)
        *n = PQntuples(r) == 1 ? g_i64(r, 0, 0) : 0;
    PQclear(r);
    return rc;
}

/* ---- the table ------------------------------------------------------------------------ */

/* ---- lists -------------------------------------------------------------------------- */

#define LIST_COLS "id, name, preferences, created_ms, updated_ms, deleted_ms"
#define LIST_PAGE_MAX 1000
#define LIST_REGEX_MAX (LIST_ID_MAX * 3 + 8)
static const char SQL_LIST_PUT[] =
    "INSERT INTO lists(id, name, preferences, created_ms, updated_ms) "
    "VALUES($1::text, $2::text, $3::text, $4::bigint, $4::bigint) "
    "ON CONFLICT(id) DO UPDATE SET name = excluded.name, preferences = excluded.preferences, "
    "updated_ms = excluded.updated_ms";
static const char SQL_LIST_ENSURE[] =
    "INSERT INTO lists(id, name, preferences, created_ms, updated_ms) "
    "VALUES($1::text, $1::text, '', $2::bigint, $2::bigint) ON CONFLICT(id) DO NOTHING";
static const char SQL_LIST_GET[] = "SELECT " LIST_COLS " FROM lists WHERE id = $1::text";
/* $2 is the pattern's literal prefix, $3 its regex ('' for every list) */
static const char SQL_LIST_LIST[] =
    "SELECT " LIST_COLS " FROM lists WHERE deleted_ms = 0 AND id > $1::text "
    "AND starts_with(id, $2::text) AND ($3::text = '' OR id ~ $3::text) "
    "ORDER BY id LIMIT $4::bigint";
static const char SQL_LIST_SET_DELETED[] =
    "UPDATE lists SET deleted_ms = $2::bigint, updated_ms = $3::bigint WHERE id = $1::text";
static const char SQL_SUB_PUT[] =
    "INSERT INTO list_subs(list_id, user_id, preferences, created_ms) "
    "SELECT $1::text, $2::text, $3::text, $4::bigint "
    "WHERE EXISTS(SELECT 1 FROM lists WHERE id = $1::text) "
    "ON CONFLICT(list_id, user_id) DO UPDATE SET preferences = excluded.preferences";
static const char SQL_SUB_DELETE_ONE[] =
    "DELETE FROM list_subs WHERE list_id = $1::text AND user_id = $2::text";
static const char SQL_SUB_DELETE_LIST[] = "DELETE FROM list_subs WHERE list_id = $1::text";
static const char SQL_SUB_DELETE_USER[] = "DELETE FROM list_subs WHERE user_id = $1::text";
#define SUB_COLS                                                                           \
    "s.user_id, s.preferences, s.created_ms, l.id, l.name, l.preferences, l.created_ms, " \
    "l.updated_ms, l.deleted_ms"
static const char SQL_SUB_BY_LIST[] =
    "SELECT " SUB_COLS " FROM list_subs s JOIN lists l ON l.id = s.list_id "
    "WHERE s.list_id = $1::text AND s.user_id > $2::text ORDER BY s.user_id LIMIT $3::bigint";
static const char SQL_SUB_BY_USER[] =
    "SELECT " SUB_COLS " FROM list_subs s JOIN lists l ON l.id = s.list_id "
    "WHERE s.user_id = $1::text AND s.list_id > $2::text AND l.deleted_ms = 0 "
    "ORDER BY s.list_id LIMIT $3::bigint";
static const char SQL_MEMBERS_ONE[] =
    "SELECT s.user_id FROM list_subs s JOIN lists l ON l.id = s.list_id "
    "WHERE s.list_id = $1::text AND l.deleted_ms = 0 AND s.user_id > $2::text "
    "ORDER BY s.user_id LIMIT $3::bigint";
static const char SQL_MEMBERS_PATTERN[] =
    "SELECT DISTINCT s.user_id FROM list_subs s JOIN lists l ON l.id = s.list_id "
    "WHERE l.deleted_ms = 0 AND starts_with(l.id, $1::text) AND l.id ~ $2::text "
    "AND s.user_id > $3::text ORDER BY s.user_id LIMIT $4::bigint";

/* list_regex: the POSIX regex PostgreSQL matches a valid list pattern with ("" for an
 * empty pattern): `*` is one part, `**` one or more, the rest literal. */
static void list_regex(struct str pattern, char *out, size_t cap)
{
    size_t o = 0, i = 0;
    out[0] = '\0';
    if (pattern.len == 0 || cap < LIST_REGEX_MAX)
        return;
    out[o++] = '^';
    while (i < pattern.len) {
        if (pattern.p[i] == '*' && i + 1 < pattern.len && pattern.p[i + 1] == '*') {
            o += (size_t)snprintf(out + o, cap - o, ".+");
            i += 2;
        } else if (pattern.p[i] == '*') {
            o += (size_t)snprintf(out + o, cap - o, "[^.]+");
            i++;
        } else {
            char ch = pattern.p[i++];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
                out[o++] = '\\';
            out[o++] = ch;
        }
    }
    out[o++] = '$';
    out[o] = '\0';
}

static void row_list_at(const PGresult *r, int i, int col, struct arena *a, struct list_rec *out)
{
    out->id = g_str(a, r, i, col);
    out->name = g_str(a, r, i, col + 1);
    out->preferences = g_str(a, r, i, col + 2);
    out->created_ms = g_i64(r, i, col + 3);
    out->updated_ms = g_i64(r, i, col + 4);
    out->deleted_ms = g_i64(r, i, col + 5);
}

static void row_list(const PGresult *r, int i, struct arena *a, void *out)
{
    row_list_at(r, i, 0, a, out);
}

static void row_sub(const PGresult *r, int i, struct arena *a, void *vout)
{
    struct list_sub_rec *out = vout;
    out->user_id = g_str(a, r, i, 0);
    out->preferences = g_str(a, r, i, 1);
    out->created_ms = g_i64(r, i, 2);
    row_list_at(r, i, 3, a, &out->list);
}

static void row_member(const PGresult *r, int i, struct arena *a, void *out)
{
    *(struct str *)out = g_str(a, r, i, 0);
}

/* list_exec: run sql in t with p; *changes (may be NULL) gets the rows it changed.
 * Frees p. */
static int list_exec(struct store_txn *t, const char *sql, struct params *p, const char *what,
                     int64_t *changes)
{
    PGresult *r = NULL;
    int rc = tx_sql(t, sql, p, &r, what);
    if (rc == HR_OK && changes)
        *changes = affected(r);
    PQclear(r);
    params_free(p);
    return rc;
}

/* list_read: run the read sql with p, rows into an arena array via row. Frees p. */
static int list_read(struct store *s, const char *sql, struct params *p, const char *what,
                     struct arena *a, size_t elem, row_fn row, void **out, size_t *n)
{
    PGresult *r = NULL;
    int rc = rd_sql((struct pg_store *)s, sql, p, &r, what);
    if (rc == HR_OK)
        rows_read(r, a, elem, row, out, n);
    PQclear(r);
    params_free(p);
    return rc;
}

static int pg_list_put(struct store_txn *t, struct str id, struct str name, struct str prefs,
                       int64_t now_ms)
{
    struct params p = {0};
    if (!store_list_id_valid(id) || name.len > LIST_ID_MAX * 4)
        return HR_INVAL;
    if (prefs.len > LIST_PREFS_MAX)
        return HR_TOOBIG;
    p_text(&p, id);
    p_text(&p, name);
    p_text(&p, prefs);
    p_i64(&p, now_ms);
    return list_exec(t, SQL_LIST_PUT, &p, "list_put", NULL);
}

static int pg_list_ensure(struct store_txn *t, struct str id, int64_t now_ms)
{
    struct params p = {0};
    if (!store_list_id_valid(id))
        return HR_INVAL;
    p_text(&p, id);
    p_i64(&p, now_ms);
    return list_exec(t, SQL_LIST_ENSURE, &p, "list_ensure", NULL);
}

static int list_result(int rc, PGresult *r, struct arena *a, struct list_rec *out)
{
    if (rc < 0)
        return rc;
    if (PQntuples(r) == 0)
        return HR_NOTFOUND;
    row_list(r, 0, a, out);
    return HR_OK;
}

/* list_get_on: one list by id, read inside t when t is set, else on a reader of s. */
static int list_get_on(struct store *s, struct store_txn *t, struct str id, struct arena *a,
                       struct list_rec *out)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    if (!store_list_id_valid(id))
        return HR_INVAL;
    p_text(&p, id);
    rc = t ? tx_sql(t, SQL_LIST_GET, &p, &r, "list_get_txn")
           : rd_sql((struct pg_store *)s, SQL_LIST_GET, &p, &r, "list_get");
    rc = list_result(rc, r, a, out);
    PQclear(r);
    params_free(&p);
    return rc;
}

static int pg_list_get(struct store *s, struct str id, struct arena *a, struct list_rec *out)
{
    return list_get_on(s, NULL, id, a, out);
}

static int pg_list_get_txn(struct store_txn *t, struct str id, struct arena *a,
                           struct list_rec *out)
{
    return list_get_on(NULL, t, id, a, out);
}

static int pg_list_list(struct store *s, struct str pattern, struct str after, size_t limit,
                        struct arena *a, struct list_rec **out, size_t *n)
{
    struct params p = {0};
    char re[LIST_REGEX_MAX];
    *out = NULL;
    *n = 0;
    if ((pattern.len && !store_list_pattern_valid(pattern)) || after.len > LIST_ID_MAX ||
        limit == 0 || limit > LIST_PAGE_MAX)
        return HR_INVAL;
    list_regex(pattern, re, sizeof re);
    p_text(&p, after);
    p_text(&p, (struct str){pattern.p, store_list_pattern_prefix(pattern)});
    p_text(&p, str_c(re));
    p_i64(&p, (int64_t)limit);
    return list_read(s, SQL_LIST_LIST, &p, "list_list", a, sizeof **out, row_list,
                     (void **)out, n);
}

static int pg_list_set_deleted(struct store_txn *t, struct str id, int64_t deleted_ms,
                               int64_t now_ms)
{
    struct params p = {0};
    int64_t changed = 0;
    int rc;
    if (!store_list_id_valid(id))
        return HR_INVAL;
    p_text(&p, id);
    p_i64(&p, deleted_ms);
    p_i64(&p, now_ms);
    rc = list_exec(t, SQL_LIST_SET_DELETED, &p, "list_set_deleted", &changed);
    return rc == HR_OK && changed == 0 ? HR_NOTFOUND : rc;
}

static int pg_list_sub_put(struct store_txn *t, struct str list_id, struct str user_id,
                           struct str prefs, int64_t now_ms)
{
    struct params p = {0};
    int64_t changed = 0;
    int rc;
    if (!store_list_id_valid(list_id) || user_id.len == 0 || user_id.len > LIST_USER_ID_MAX)
        return HR_INVAL;
    if (prefs.len > LIST_PREFS_MAX)
        return HR_TOOBIG;
    p_text(&p, list_id);
    p_text(&p, user_id);
    p_text(&p, prefs);
    p_i64(&p, now_ms);
    rc = list_exec(t, SQL_SUB_PUT, &p, "list_sub_put", &changed);
    return rc == HR_OK && changed == 0 ? HR_NOTFOUND : rc;
}

static int pg_list_sub_delete(struct store_txn *t, struct str list_id, struct str user_id,
                              int64_t *n_deleted)
{
    struct params p = {0};
    const char *sql = SQL_SUB_DELETE_ONE;
    int64_t changed = 0;
    int rc;
    if ((list_id.len == 0 && user_id.len == 0) || list_id.len > LIST_ID_MAX ||
        user_id.len > LIST_USER_ID_MAX)
        return HR_INVAL;
    if (list_id.len)
        p_text(&p, list_id);
    if (user_id.len)
        p_text(&p, user_id);
    if (!user_id.len)
        sql = SQL_SUB_DELETE_LIST;
    else if (!list_id.len)
        sql = SQL_SUB_DELETE_USER;
    rc = list_exec(t, sql, &p, "list_sub_delete", &changed);
    if (n_deleted)
        *n_deleted = changed;
    return rc == HR_OK && changed == 0 && list_id.len && user_id.len ? HR_NOTFOUND : rc;
}

static int pg_list_sub_list(struct store *s, struct str list_id, struct str user_id,
                            struct str after, size_t limit, struct arena *a,
                            struct list_sub_rec **out, size_t *n)
{
    struct params p = {0};
    bool by_list = list_id.len > 0;
    *out = NULL;
    *n = 0;
    if (by_list == (user_id.len > 0) || list_id.len > LIST_ID_MAX ||
        user_id.len > LIST_USER_ID_MAX || after.len > LIST_ID_MAX || limit == 0 ||
        limit > LIST_PAGE_MAX)
        return HR_INVAL;
    p_text(&p, by_list ? list_id : user_id);
    p_text(&p, after);
    p_i64(&p, (int64_t)limit);
    return list_read(s, by_list ? SQL_SUB_BY_LIST : SQL_SUB_BY_USER, &p, "list_sub_list", a,
                     sizeof **out, row_sub, (void **)out, n);
}

static int pg_list_members(struct store *s, struct str target, struct str after, size_t limit,
                           struct arena *a, struct str **out, size_t *n)
{
    struct params p = {0};
    char re[LIST_REGEX_MAX];
    bool pattern = store_list_is_pattern(target);
    *out = NULL;
    *n = 0;
    if (!store_list_pattern_valid(target) || after.len > LIST_USER_ID_MAX || limit == 0 ||
        limit > LIST_PAGE_MAX)
        return HR_INVAL;
    if (pattern) {
        list_regex(target, re, sizeof re);
        p_text(&p, (struct str){target.p, store_list_pattern_prefix(target)});
        p_text(&p, str_c(re));
    } else {
        p_text(&p, target);
    }
    p_text(&p, after);
    p_i64(&p, (int64_t)limit);
    return list_read(s, pattern ? SQL_MEMBERS_PATTERN : SQL_MEMBERS_ONE, &p, "list_members", a,
                     sizeof **out, row_member, (void **)out, n);
}

/* ---- provider references (delivery receipts) ------------------------------------------- */

static const char SQL_MSGREF_PUT[] =
    "INSERT INTO msgrefs(provider, reference, message_id, channel, created_ms) "
    "VALUES($1::text, $2::text, $3::text, $4::text, $5::bigint) "
    "ON CONFLICT(provider, reference) DO UPDATE SET message_id = excluded.message_id, "
    "channel = excluded.channel, created_ms = excluded.created_ms";
static const char SQL_MSGREF_GET[] =
    "SELECT provider, reference, message_id, channel, created_ms FROM msgrefs "
    "WHERE provider = $1::text AND reference = $2::text";

static void row_msgref(const PGresult *r, int i, struct arena *a, void *vout)
{
    struct msgref_rec *out = vout;
    out->provider = g_str(a, r, i, 0);
    out->reference = g_str(a, r, i, 1);
    out->message_id = g_str(a, r, i, 2);
    out->channel = g_str(a, r, i, 3);
    out->created_ms = g_i64(r, i, 4);
}

static int pg_msgref_put(struct store_txn *t, const struct msgref_rec *r)
{
    struct params p = {0};
    if (!store_msgref_key_ok(r->provider, r->reference) || r->message_id.len == 0)
        return HR_INVAL;
    p_text(&p, r->provider);
    p_text(&p, r->reference);
    p_text(&p, r->message_id);
    p_text(&p, r->channel);
    p_i64(&p, r->created_ms);
    return list_exec(t, SQL_MSGREF_PUT, &p, "msgref_put", NULL);
}

static int pg_msgref_get(struct store *s, struct str provider, struct str reference,
                         struct arena *a, struct msgref_rec *out)
{
    struct params p = {0};
    struct msgref_rec *rows = NULL;
    size_t n = 0;
    int rc;
    if (!store_msgref_key_ok(provider, reference))
        return HR_INVAL;
    p_text(&p, provider);
    p_text(&p, reference);
    rc = list_read(s, SQL_MSGREF_GET, &p, "msgref_get", a, sizeof *rows, row_msgref,
                   (void **)&rows, &n);
    if (rc == HR_OK && n == 0)
        rc = HR_NOTFOUND;
    if (rc == HR_OK)
        *out = rows[0];
    return rc;
}

static const char SQL_SUB_COUNT[] = "SELECT count(*) FROM list_subs WHERE list_id = $1::text";

static int pg_list_sub_count(struct store *s, struct str list_id, int64_t *n)
{
    struct params p = {0};
    PGresult *r = NULL;
    int rc;
    *n = 0;
    if (!store_list_id_valid(list_id))
        return HR_INVAL;
    p_text(&p, list_id);
    rc = rd_sql((struct pg_store *)s, SQL_SUB_COUNT, &p, &r, "list_sub_count");
    if (rc == HR_OK)
        *n = PQntuples(r) == 1 ? g_i64(r, 0, 0) : 0;
    PQclear(r);
    params_free(&p);
    return rc;
}

/* ---- lists kept in step with Segment groups ------------------------------------------- */

static const char SQL_LIST_CREATE[] =
    "INSERT INTO lists(id, name, preferences, created_ms, updated_ms) "
    "VALUES($1::text, $2::text, '', $3::bigint, $3::bigint) ON CONFLICT(id) DO NOTHING";
static const char SQL_SUB_ADD[] =
    "INSERT INTO list_subs(list_id, user_id, preferences, created_ms) "
    "SELECT $1::text, $2::text, '', $3::bigint "
    "WHERE EXISTS(SELECT 1 FROM lists WHERE id = $1::text AND deleted_ms = 0) "
    "ON CONFLICT(list_id, user_id) DO NOTHING";

static int pg_list_create(struct store_txn *t, struct str id, struct str name, int64_t now_ms)
{
    struct params p = {0};
    int64_t changed = 0;
    int rc;
    if (!store_list_id_valid(id) || name.len == 0 || name.len > LIST_ID_MAX * 4)
        return HR_INVAL;
    p_text(&p, id);
    p_text(&p, name);
    p_i64(&p, now_ms);
    rc = list_exec(t, SQL_LIST_CREATE, &p, "list_create", &changed);
    return rc == HR_OK && changed == 0 ? HR_CONFLICT : rc;
}

static int pg_list_sub_add(struct store_txn *t, struct str list_id, struct str user_id,
                           int64_t now_ms)
{
    struct params p = {0};
    int64_t changed = 0;
    int rc;
    if (!store_list_id_valid(list_id) || user_id.len == 0 || user_id.len > LIST_USER_ID_MAX)
        return HR_INVAL;
    p_text(&p, list_id);
    p_text(&p, user_id);
    p_i64(&p, now_ms);
    rc = list_exec(t, SQL_SUB_ADD, &p, "list_sub_add", &changed);
    return rc == HR_OK && changed == 0 ? HR_CONFLICT : rc;
}

const struct store_ops pg_store_ops = {
    .version = 1,
    .scheme = "postgres",
    .impl_size = sizeof(struct pg_store),
    .exclusive = false, /* nodes share it: a pending request may belong to a live node */
    .open = pg_open,
    .close = pg_close,
    .write = pg_write,
    .write_shared = pg_write_shared,
    .ping = pg_ping,
    .txn_sub = pg_txn_sub,
    .stats = pg_stats,
    .meta_set = pg_meta_set,
    .meta_get = pg_meta_get,
    .meta_add = pg_meta_add,
    .key_insert = pg_key_insert,
    .key_find_by_hash = pg_key_find_by_hash,
    .key_list = pg_key_list,
    .key_revoke = pg_key_revoke,
    .key_count = pg_key_count,
    .job_insert = pg_job_insert,
    .job_lease = pg_job_lease,
    .job_ack = pg_job_ack,
    .job_ack_many = pg_job_ack_many,
    .job_retry = pg_job_retry,
    .job_dead = pg_job_dead,
    .job_release = pg_job_release,
    .job_defer = pg_job_defer,
    .job_extend = pg_job_extend,
    .job_get = pg_job_get,
    .job_counts = pg_job_counts,
    .job_next_run_at = pg_job_next_run_at,
    .job_list = pg_job_list,
    .job_expire_leases = NULL, /* shared store: a live node may hold a lease */
    .doc_get = pg_doc_get,
    .doc_get_txn = pg_doc_get_txn,
    .doc_put = pg_doc_put,
    .doc_create = pg_doc_create,
    .doc_create_many = pg_doc_create_many,
    .doc_delete = pg_doc_delete,
    .doc_list = pg_doc_list,
    .event_insert = pg_event_insert,
    .event_insert_many = pg_event_insert_many,
    .event_get = pg_event_get,
    .catalog_add = pg_catalog_add,
    .catalog_get = pg_catalog_get,
    .catalog_list = pg_catalog_list,
    .message_insert = pg_message_insert,
    .message_update = pg_message_update,
    .message_get = pg_message_get,
    .message_get_txn = pg_message_get_txn,
    .message_list = pg_message_list,
    .history_append = pg_history_append,
    .history_list = pg_history_list,
    .copy_rows = pg_copy_rows,
    .copy_insert = pg_copy_insert,
    .copy_count = pg_copy_count,
    .list_put = pg_list_put,
    .list_ensure = pg_list_ensure,
    .list_get = pg_list_get,
    .list_get_txn = pg_list_get_txn,
    .list_list = pg_list_list,
    .list_set_deleted = pg_list_set_deleted,
    .list_sub_put = pg_list_sub_put,
    .list_sub_delete = pg_list_sub_delete,
    .list_sub_list = pg_list_sub_list,
    .list_members = pg_list_members,
    .msgref_put = pg_msgref_put,
    .msgref_get = pg_msgref_get,
    .list_sub_count = pg_list_sub_count,
    .list_create = pg_list_create,
    .list_sub_add = pg_list_sub_add,
};
