/* sqlite.c: the SQLite backend of struct store_ops (contracts in ../store.h).
 *
 * Writes: one writer thread per store owns the write connection. store_write queues a
 * request on the caller's stack and sleeps until the writer marks it done. The writer
 * takes every pending request (at most GROUP_MAX), opens one BEGIN IMMEDIATE
 * transaction, runs each request's fn inside its own savepoint (a fn returning < 0 is
 * rolled back to its savepoint alone), then COMMITs once: one fsync for the group.
 *
 * Reads: a bounded pool of reader connections, opened lazily and lent for one call.
 * WAL mode lets them read the last committed state while the writer writes.
 *
 * Every connection caches its prepared statements, keyed by the address of the SQL
 * text (all SQL in this file is static), so statements are reset and reused.
 *
 * Locking: `mu` guards the request queue, `stopping`, each request's result and the
 * stats; `rmu` guards the reader pool. Neither is held while SQL runs. A connection is
 * used by one thread at a time (SQLITE_OPEN_NOMUTEX): the writer's by the writer
 * thread only (by the opening thread before it starts, the closing thread after join),
 * a reader's by the thread it is lent to.
 *
 * One process per file: a claimed open (store_open_claimed: herald serve, seed,
 * migrate-store) holds flock(LOCK_EX) on <path>.lock until close, so a second server
 * cannot end the first one's leases. Damage: an existing 0-byte file is refused (only a
 * missing file makes a new store), PRAGMA quick_check runs at open on files up to
 * QUICK_CHECK_MAX_BYTES, and any statement failing with SQLITE_CORRUPT or SQLITE_NOTADB
 * marks the store corrupt for good (store_ping fails: /readyz answers 503). */
#include "sqlite.h"

#include "migrations.h"
#include "pcache.h"
#include "walbuf.h"

#include "../../util/arena.h"
#include "../../util/clock.h"
#include "../../util/crypto.h"
#include "../../util/json.h"
#include "../../util/log.h"
#include "../../util/str.h"
#include "../../util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <pthread.h>
#include <semaphore.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#define GROUP_MAX 512                /* requests per group commit */
#define WRITE_QUEUE_MAX 8192         /* waiting writes before store_write answers HR_AGAIN */
#define WRITE_WAIT_MAX_MS 2000       /* ... or when the oldest waiting write waited this long */
#define READERS_MAX 16               /* reader connections per store */
#define STMT_CACHE_MAX 128           /* cached statements per connection */
#define BUSY_TIMEOUT_MS 5000
#define FS_FULL_BYTES (1024 * 1024) /* fs_full: less than this left counts as full */
#define FULL_HOLD_MS 5000            /* "full" lasts this long past the last full-disk error */
#define PATH_MAX_LEN 4096
#define KIND_MAX 31                  /* job kind, bytes */
#define META_KEY_MAX 255
#define DEDUP_KEY_MAX 255
#define ERROR_TEXT_MAX 4096          /* last_error is clipped to this */
#define LEASE_BATCH_MAX 1000         /* jobs per job_lease call */
#define LEASE_MS_MAX (7LL * 24 * 3600 * 1000)
#define KINDS_MAX 256                /* entries in a job_lease kinds filter */
#define LIST_MAX 100000              /* rows returned by key_list / job_counts */
#define DEFAULT_MAX_ATTEMPTS 25
#define CATALOG_NAME_MAX 1024        /* event catalog names, bytes */
#define QUICK_CHECK_MAX_BYTES (256LL * 1024 * 1024) /* quick_check at open up to this size */

/* ---- SQL ---------------------------------------------------------------------- */

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT herald_req";
static const char SQL_RELEASE[] = "RELEASE herald_req";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO herald_req";
static const char SQL_SUB_SAVEPOINT[] = "SAVEPOINT herald_sub";
static const char SQL_SUB_RELEASE[] = "RELEASE herald_sub";
static const char SQL_SUB_ROLLBACK_TO[] = "ROLLBACK TO herald_sub";
static const char SQL_PING[] = "SELECT 1";

static const char SQL_META_SET[] =
    "INSERT INTO meta(key, value) VALUES(?1, ?2) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value";
static const char SQL_META_GET[] = "SELECT value FROM meta WHERE key = ?1";
static const char SQL_META_ADD[] =
    "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO NOTHING";

#define KEY_COLS "id, kind, prefix, name, hash, created_ms, revoked_ms, scope"
static const char SQL_KEY_INSERT[] =
    "INSERT INTO api_keys(kind, prefix, name, hash, created_ms, revoked_ms, scope) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_KEY_FIND[] =
    "SELECT " KEY_COLS " FROM api_keys WHERE hash = ?1 AND revoked_ms = 0";
static const char SQL_KEY_LIST[] =
    "SELECT " KEY_COLS " FROM api_keys ORDER BY created_ms DESC, id DESC";
static const char SQL_KEY_REVOKE[] =
    "UPDATE api_keys SET revoked_ms = ?1 WHERE prefix = ?2 AND revoked_ms = 0";
static const char SQL_KEY_COUNT[] =
    "SELECT count(*) FROM api_keys WHERE revoked_ms = 0 AND (?1 = 0 OR kind = ?1)";

#define JOB_COLS                                                                            \
    "id, kind, payload, state, run_at_ms, lease_until_ms, lease_token, attempts, "         \
    "max_attempts, created_ms, last_error, retaken"
static const char SQL_JOB_INSERT[] =
    "INSERT INTO jobs(kind, payload, state, run_at_ms, max_attempts, created_ms, dedup_key, "
    "lease_until_ms, lease_token, attempts) "
    "VALUES(?1, ?2, ?7 > 0, ?3, ?4, ?5, ?6, ?7, ?8, ?7 > 0) ON CONFLICT(dedup_key) DO NOTHING";
static const char SQL_JOB_BY_DEDUP[] = "SELECT id FROM jobs WHERE dedup_key = ?1";
/* Runnable: queued and due, or leased with the lease run out (the picks below). */
/* ?2 is ",kind1,kind2,...," or NULL for every kind: a scalar test per row. An IN list
 * (or json_each) would build an ephemeral table on every lease, whose page cache is
 * allocated and freed each time (heap trims, TLB shootdowns: 15% of the writer under
 * /v1/track). */
#define LEASE_KIND_FILTER "(?2 IS NULL OR instr(?2, ',' || kind || ',') > 0)"
/* Three picks, merged in C by (run_at_ms, id). Queued and due, walking jobs_runnable in
 * order (no sort: a UNION ALL under one ORDER BY did, in a temp b-tree); leases that
 * ran out for the first time; leases that ran out again after a takeover (the caller
 * bounds those: job_lease's max_repeat). The last two read jobs_leases up to now, so
 * they see the run-out leases only (usually none; left to itself the planner walked
 * every leased job through jobs_runnable, thousands under load, at every lease), and
 * sort those few. */
static const char SQL_JOB_LEASE_PICK_QUEUED[] =
    "SELECT id, run_at_ms FROM jobs WHERE state = 0 AND run_at_ms <= ?1 AND " LEASE_KIND_FILTER
    " ORDER BY run_at_ms, id LIMIT ?3";
static const char SQL_JOB_LEASE_PICK_EXPIRED[] =
    "SELECT id, run_at_ms FROM jobs INDEXED BY jobs_leases WHERE state = 1 AND "
    "lease_until_ms <= ?1 AND retaken = 0 AND " LEASE_KIND_FILTER
    " ORDER BY run_at_ms, id LIMIT ?3";
static const char SQL_JOB_LEASE_PICK_REPEAT[] =
    "SELECT id, run_at_ms FROM jobs INDEXED BY jobs_leases WHERE state = 1 AND "
    "lease_until_ms <= ?1 AND retaken > 0 AND " LEASE_KIND_FILTER
    " ORDER BY run_at_ms, id LIMIT ?3";
static const char SQL_JOB_LEASE_TAKE[] =
    "UPDATE jobs SET state = 1, lease_until_ms = ?1, lease_token = ?2, attempts = attempts + 1, "
    /* the old state: an expired lease taken over. Counted in a row: every outcome
     * committed for the job (retry, defer, release) sets it back to 0, so only a job
     * that never gets past its run (a poison pill) reaches the guard's limit, not one
     * that merely was leased at several crashes of a busy node */
    "retaken = retaken + (state = 1) "
    "WHERE id = ?3 RETURNING " JOB_COLS;
static const char SQL_JOB_ACK[] =
    "DELETE FROM jobs WHERE id = ?1 AND state = 1 AND lease_token = ?2";
static const char SQL_JOB_RETRY[] =
    "UPDATE jobs SET state = 0, run_at_ms = ?3, last_error = ?4, lease_until_ms = 0, "
    "lease_token = 0, retaken = 0 WHERE id = ?1 AND state = 1 AND lease_token = ?2";
static const char SQL_JOB_DEAD[] =
    "UPDATE jobs SET state = 2, last_error = ?3, lease_until_ms = 0, lease_token = 0 "
    "WHERE id = ?1 AND state = 1 AND lease_token = ?2";
static const char SQL_JOB_RELEASE[] =
    "UPDATE jobs SET state = 0, attempts = max(attempts - 1, 0), lease_until_ms = 0, "
    "lease_token = 0, retaken = 0 WHERE id = ?1 AND state = 1 AND lease_token = ?2";
static const char SQL_JOB_DEFER[] =
    "UPDATE jobs SET state = 0, attempts = max(attempts - 1, 0), run_at_ms = ?3, "
    "lease_until_ms = 0, lease_token = 0, retaken = 0 "
    "WHERE id = ?1 AND state = 1 AND lease_token = ?2";
static const char SQL_JOB_EXTEND[] =
    "UPDATE jobs SET lease_until_ms = ?3 WHERE id = ?1 AND state = 1 AND lease_token = ?2";
static const char SQL_JOB_GET[] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1";
static const char SQL_JOB_COUNTS[] =
    "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state ORDER BY kind, state";
static const char SQL_JOB_NEXT[] =
    "SELECT min(t) FROM ("
    " SELECT * FROM (SELECT run_at_ms AS t FROM jobs WHERE state = 0"
    "  ORDER BY run_at_ms LIMIT 1)"
    " UNION ALL SELECT min(lease_until_ms) FROM jobs INDEXED BY jobs_leases WHERE state = 1)";
static const char SQL_JOB_NEXT_QUEUED[] = /* a seek: min() over jobs_runnable's prefix */
    "SELECT min(run_at_ms) FROM jobs WHERE state = 0";

static const char SQL_JOB_EXPIRE[] =
    "UPDATE jobs SET lease_until_ms = ?1 WHERE state = 1 AND lease_until_ms > ?1";
static const char SQL_JOB_LIST[] =
    "SELECT " JOB_COLS " FROM jobs WHERE state = ?1 ORDER BY id DESC LIMIT ?2";

#define DOC_COLS "coll, id, body, version, created_ms, updated_ms"
static const char SQL_DOC_GET[] = "SELECT " DOC_COLS " FROM docs WHERE coll = ?1 AND id = ?2";
#define SQL_DOC_UPSERT                                                                     \
    "INSERT INTO docs(coll, id, body, version, created_ms, updated_ms) "                     \
    "VALUES(?1, ?2, ?3, 1, ?4, ?4) ON CONFLICT(coll, id) DO UPDATE SET "                     \
    "body = excluded.body, version = version + 1, updated_ms = excluded.updated_ms"
/* SQLite collects a RETURNING clause's rows in an ephemeral table, made and dropped at
 * every run (allocations and b-tree work, a tenth of a flow event's allocations): only a
 * caller that wants the version gets the statement that returns it */
static const char SQL_DOC_PUT[] = SQL_DOC_UPSERT;
static const char SQL_DOC_PUT_VERSION[] = SQL_DOC_UPSERT " RETURNING version";
static const char SQL_DOC_CREATE[] =
    "INSERT INTO docs(coll, id, body, version, created_ms, updated_ms) "
    "VALUES(?1, ?2, ?3, 1, ?4, ?4) ON CONFLICT(coll, id) DO NOTHING";
static const char SQL_DOC_DELETE[] = "DELETE FROM docs WHERE coll = ?1 AND id = ?2";
/* ?3 is the prefix and ?5 the first id past it, so the primary key bounds the walk */
static const char SQL_DOC_LIST[] =
    "SELECT " DOC_COLS " FROM docs WHERE coll = ?1 AND id > ?2 AND id >= ?3 "
    "AND (?5 = '' OR id < ?5) AND substr(id, 1, length(?3)) = ?3 ORDER BY id LIMIT ?4";

#define EVENT_COLS "id, source_id, message_id, type, user_id, body, received_ms"
static const char SQL_EVENT_DUP[] =
    "SELECT id FROM events WHERE source_id = ?1 AND message_id = ?2 AND received_ms >= ?3 "
    "ORDER BY received_ms DESC LIMIT 1";
static const char SQL_EVENT_INSERT[] =
    "INSERT INTO events(source_id, message_id, type, user_id, body, received_ms) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_EVENT_GET[] = "SELECT " EVENT_COLS " FROM events WHERE id = ?1";

#define CATALOG_COLS "name, count, first_seen_ms, last_seen_ms, sample"
static const char SQL_CATALOG_TOUCH[] =
    "INSERT INTO catalog(name, count, first_seen_ms, last_seen_ms, sample) "
    "VALUES(?1, ?4, ?2, ?5, ?3) ON CONFLICT(name) DO UPDATE SET count = count + ?4, "
    "first_seen_ms = min(first_seen_ms, excluded.first_seen_ms), "
    "last_seen_ms = max(last_seen_ms, excluded.last_seen_ms), sample = excluded.sample";
static const char SQL_CATALOG_GET[] = "SELECT " CATALOG_COLS " FROM catalog WHERE name = ?1";
static const char SQL_CATALOG_LIST[] =
    "SELECT " CATALOG_COLS " FROM catalog WHERE name > ?1 "
    "AND (?2 = '' OR instr(lower(name), lower(?2)) > 0) ORDER BY name LIMIT ?3";

#define MSG_COLS                                                                             \
    "id, request_id, status, recipient, notification, event, trace_id, run_id, tags, reason, " \
    "error, spec, state, enqueued_ms, sent_ms, delivered_ms, canceled_ms, updated_ms"
static const char SQL_MSG_INSERT[] =
    "INSERT INTO messages(" MSG_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
    "?13, ?14, ?15, ?16, ?17, ?18)";
static const char SQL_MSG_UPDATE[] =
    "UPDATE messages SET request_id = ?2, status = ?3, recipient = ?4, notification = ?5, "
    "event = ?6, trace_id = ?7, run_id = ?8, tags = ?9, reason = ?10, error = ?11, spec = ?12, "
    "state = ?13, enqueued_ms = ?14, sent_ms = ?15, delivered_ms = ?16, canceled_ms = ?17, "
    "updated_ms = ?18 WHERE id = ?1";
/* SQL_MSG_UPDATE with the indexed columns that never change after the insert only
 * compared, not set: SQLite rewrites the entry of every index that has a column in SET,
 * changed or not, and a message's update (its status, state and times) would rewrite
 * its messages_request, _recipient and _run entries each time. No row: the caller runs
 * SQL_MSG_UPDATE, which sets them all. */
static const char SQL_MSG_UPDATE_KEPT[] =
    "UPDATE messages SET status = ?3, notification = ?5, event = ?6, trace_id = ?7, "
    "tags = ?9, reason = ?10, error = ?11, spec = ?12, state = ?13, enqueued_ms = ?14, "
    "sent_ms = ?15, delivered_ms = ?16, canceled_ms = ?17, updated_ms = ?18 "
    "WHERE id = ?1 AND request_id = ?2 AND recipient = ?4 AND run_id = ?8";
static const char SQL_MSG_GET[] = "SELECT " MSG_COLS " FROM messages WHERE id = ?1";
/* The message list: one generic statement, and one per indexed filter that names the
 * column outright, because SQLite cannot use messages_recipient / _status / _run for
 * "(?1 = '' OR recipient = ?1)": with only the generic form, a recipient's messages were
 * found by scanning the whole table newest first (37 s on 6.6M messages). ?2 is one
 * status (the _status index leads), ?10 several joined by commas (checked row by row on
 * the newest-first scan), ?5 tags joined by commas (any of them), ?11 one message id
 * (the unique index leads), ?12 enqueued after (ms, 0: any). */
#define SQL_MSG_LIST_WHERE(lead)                                                              \
    "SELECT " MSG_COLS " FROM messages WHERE " lead " (?1 = '' OR recipient = ?1) "          \
    "AND (?2 = '' OR status = ?2) AND (?3 = '' OR notification = ?3) AND (?4 = '' OR event = ?4) " \
    "AND (?5 = '' OR EXISTS (SELECT 1 FROM json_each(messages.tags) "                         \
    "WHERE instr(',' || ?5 || ',', ',' || value || ',') > 0)) "                               \
    "AND (?6 = '' OR trace_id = ?6) AND (?7 = '' OR run_id = ?7) "                           \
    "AND (?8 = '' OR seq < (SELECT seq FROM messages WHERE id = ?8)) "                       \
    "AND (?10 = '' OR instr(',' || ?10 || ',', ',' || status || ',') > 0) "                 \
    "AND (?11 = '' OR id = ?11) AND (?12 = 0 OR enqueued_ms > ?12) "                         \
    "ORDER BY seq DESC LIMIT ?9"
static const char SQL_MSG_LIST[] = SQL_MSG_LIST_WHERE("");
static const char SQL_MSG_LIST_ID[] = SQL_MSG_LIST_WHERE("id = ?11 AND");
static const char SQL_MSG_LIST_RECIPIENT[] = SQL_MSG_LIST_WHERE("recipient = ?1 AND");
static const char SQL_MSG_LIST_RUN[] = SQL_MSG_LIST_WHERE("run_id = ?7 AND");
static const char SQL_MSG_LIST_STATUS[] = SQL_MSG_LIST_WHERE("status = ?2 AND");
static const char SQL_HIST_APPEND[] =
    "INSERT INTO message_history(message_id, ts, type, body) VALUES(?1, ?2, ?3, ?4)";
static const char SQL_HIST_LIST[] =
    "SELECT seq, ts, type, body FROM message_history WHERE message_id = ?1 "
    "ORDER BY seq LIMIT 10000"; /* STORE_HISTORY_MAX */

/* ---- types -------------------------------------------------------------------- */

struct stmt_slot {
    const char *sql; /* cache key: the address of one of the SQL_* strings */
    sqlite3_stmt *st;
};

struct conn {
    sqlite3 *db;
    atomic_bool *corrupt; /* the store's flag: set when a statement finds corruption */
    struct conn *next; /* reader free list */
    size_t nstmt;
    struct stmt_slot stmt[STMT_CACHE_MAX];
};

/* A store_write call, on the caller's stack until `done`. */
struct wreq {
    store_txn_fn fn;
    void *arg;
    struct wreq *next;
    int rc;          /* fn's rc, or the group's error */
    bool ok;         /* fn succeeded and its savepoint was released */
    int64_t enq_ms;  /* monotonic time it was queued */
    sem_t done;      /* posted by the writer once rc, ok and err are final: wakes only
                        this caller, which then takes no lock (a condition variable
                        made every caller of a group queue for mu as it woke) */
    struct herr err;
};

struct sqlite_store {
    struct store base; /* must be first */
    char path[PATH_MAX_LEN];
    bool sync_ok;      /* mutexes and condition variables initialized */
    int lock_fd;       /* <path>.lock, flock()ed while claimed; -1 when not */
    atomic_bool corrupt; /* a statement failed with SQLITE_CORRUPT or SQLITE_NOTADB */
    /* writer */
    struct conn *writer;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* writer waits for requests */
    struct wreq *head, *tail;
    size_t queued;     /* requests waiting for the writer (not yet taken) */
    bool stopping;
    int64_t full_ms;   /* monotonic time of the last write that failed for a full disk;
                          0 once a later write succeeded FULL_HOLD_MS after it */
    struct store_stats stats;
    /* checkpointer: copies the WAL back into the database on its own connection and
     * thread, so the writer never does it inside a commit */
    struct conn *ckpt;
    pthread_t ckpt_thread;
    bool ckpt_started;
    pthread_mutex_t cmu;
    pthread_cond_t ccv;
    bool ckpt_want, ckpt_stop;
    /* readers */
    pthread_mutex_t rmu;
    pthread_cond_t rcv;
    struct conn *rfree;
    size_t nreaders; /* open reader connections, free or lent */
};

/* The transaction handed to fn. */
struct sqlite_txn {
    struct store_txn base; /* must be first */
    struct conn *c;        /* the write connection */
    bool active;           /* true only while fn runs */
};

/* The store whose writer runs on this thread (NULL on every other thread). */
static _Thread_local struct sqlite_store *t_writer_of;

/* ---- errors ------------------------------------------------------------------- */

/* map_src: herald's rc for an SQLite result code. A full disk shows as SQLITE_FULL
 * (os_unix turns ENOSPC and short writes into it); map_err also catches the I/O errors
 * a full disk or a file size limit produce elsewhere. */
static int map_src(int src)
{
    switch (src & 0xff) {
    case SQLITE_FULL:
        return HR_FULL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return HR_BUSY;
    case SQLITE_CONSTRAINT:
        return HR_CONFLICT;
    default:
        return HR_IO;
    }
}

/* fs_full: the filesystem of db's main file has less than FS_FULL_BYTES left for an
 * unprivileged writer, or no inode. (SQLite does not always keep the errno of an I/O
 * error: by the time it is read, the rollback's own calls may have replaced it.) */
static bool fs_full(sqlite3 *db)
{
    const char *path = sqlite3_db_filename(db, "main");
    struct statvfs v;
    if (!path || !path[0] || statvfs(path, &v) != 0)
        return false;
    return (unsigned long long)v.f_bavail * v.f_frsize < FS_FULL_BYTES ||
           (v.f_files > 0 && v.f_favail == 0);
}

/* map_err: map_src, plus: an I/O error is HR_FULL too when its system errno says the
 * disk or the file size limit is reached (ENOSPC, EDQUOT, EFBIG), or the filesystem is
 * (nearly) full (fs_full): e.g. SQLITE_IOERR_SHMSIZE or SQLITE_IOERR_WRITE. db may be
 * NULL. */
static int map_err(sqlite3 *db, int src)
{
    int rc = map_src(src);
    if (rc == HR_IO && db && (src & 0xff) == SQLITE_IOERR) {
        int e = sqlite3_system_errno(db);
        if (e == ENOSPC || e == EDQUOT || e == EFBIG || fs_full(db))
            rc = HR_FULL;
    }
    return rc;
}

/* is_corrupt: src says the database file is damaged (or not a database at all). */
static bool is_corrupt(int src)
{
    return (src & 0xff) == SQLITE_CORRUPT || (src & 0xff) == SQLITE_NOTADB;
}

/* mark_corrupt: when src is a corruption code, flag c's store (readiness fails from now
 * on: a damaged file does not heal) and log it the first time. */
static void mark_corrupt(struct conn *c, int src, const char *what)
{
    char q[256];
    if (!is_corrupt(src) || !c->corrupt)
        return;
    if (!atomic_exchange(c->corrupt, true))
        LOG_E("store.sqlite.corrupt", "op=%s sqlite_rc=%d msg=%s hint=\"the database file is "
              "damaged: /readyz answers 503 from now on; stop herald and restore the store "
              "from a backup\"", what, src, log_q(q, sizeof q, sqlite3_errmsg(c->db)));
}

/* db_fail: log an SQLite failure of operation `what` and return the mapped rc.
 * Constraint violations are expected outcomes (HR_CONFLICT) and logged at debug. */
static int db_fail(struct conn *c, int src, const char *what)
{
    int rc = map_err(c->db, src);
    char q[256];
    mark_corrupt(c, src, what);
    if (rc == HR_CONFLICT)
        LOG_D("store.sqlite.constraint", "op=%s msg=%s", what,
              log_q(q, sizeof q, sqlite3_errmsg(c->db)));
    else if (rc == HR_BUSY)
        LOG_W("store.sqlite.busy", "op=%s sqlite_rc=%d msg=%s", what, src,
              log_q(q, sizeof q, sqlite3_errmsg(c->db)));
    else if (rc == HR_FULL) /* the writer logs the first one (store.sqlite.disk_full) */
        LOG_D("store.sqlite.full", "op=%s sqlite_rc=%d errno=%d msg=%s", what, src,
              sqlite3_system_errno(c->db), log_q(q, sizeof q, sqlite3_errmsg(c->db)));
    else
        LOG_E("store.sqlite.step_failed", "op=%s sqlite_rc=%d msg=%s", what, src,
              log_q(q, sizeof q, sqlite3_errmsg(c->db)));
    return rc;
}

/* ---- connections ---------------------------------------------------------------- */

static void conn_close(struct conn *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nstmt; i++)
        sqlite3_finalize(c->stmt[i].st);
    if (c->db && sqlite3_close(c->db) != SQLITE_OK)
        LOG_E("store.sqlite.close_failed", "msg=%s", sqlite3_errmsg(c->db));
    free(c);
}

/* conn_stmt: the cached statement for sql (prepared on first use). Give it back with
 * stmt_done on every path. */
static int conn_stmt(struct conn *c, const char *sql, sqlite3_stmt **out)
{
    int rc = HR_OK, src;
    sqlite3_stmt *st = NULL;
    *out = NULL;
    for (size_t i = 0; i < c->nstmt; i++)
        if (c->stmt[i].sql == sql) {
            *out = c->stmt[i].st;
            goto out;
        }
    if (c->nstmt == STMT_CACHE_MAX) {
        LOG_E("store.sqlite.stmt_cache_full", "max=%d", STMT_CACHE_MAX);
        rc = HR_IO;
        goto out;
    }
    src = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (src != SQLITE_OK) {
        rc = db_fail(c, src, "prepare");
        sqlite3_finalize(st);
        goto out;
    }
    c->stmt[c->nstmt].sql = sql;
    c->stmt[c->nstmt].st = st;
    c->nstmt++;
    *out = st;
out:
    return rc;
}

/* stmt_done: make a cached statement ready for its next use (ends its read). */
static void stmt_done(sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* exec_ctl: run a cached statement that returns no rows; returns the SQLite code. */
static int exec_ctl(struct conn *c, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int src = SQLITE_ERROR;
    if (conn_stmt(c, sql, &st) < 0)
        goto out;
    src = sqlite3_step(st);
    if (src == SQLITE_DONE || src == SQLITE_ROW)
        src = SQLITE_OK;
out:
    stmt_done(st);
    return src;
}

/* pragma: run a PRAGMA on db; when want is set, its one result must equal it. */
static int pragma(sqlite3 *db, const char *sql, const char *want, struct herr *err)
{
    sqlite3_stmt *st = NULL;
    int rc = HR_OK, src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (src != SQLITE_OK)
        goto fail;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        goto fail;
    if (want) {
        const char *got = src == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (!got || strcmp(got, want) != 0) {
            rc = herr_set(err, HR_IO, "sqlite: %s gave %s, need %s", sql, got ? got : "nothing",
                          want);
            goto out;
        }
    }
    goto out;
fail:
    rc = herr_set(err, map_err(db, src), "sqlite: %s failed: %s%s", sql, sqlite3_errmsg(db),
                  is_corrupt(src) ? " (corrupt)" : "");
out:
    sqlite3_finalize(st);
    return rc;
}

/* conn_open: open a connection to path with herald's PRAGMAs. The writer creates the
 * file and sets WAL; readers refuse to write (query_only). */
static int list_funcs(sqlite3 *db);

static int conn_open(const char *path, bool writer, struct conn **out, struct herr *err)
{
    struct conn *c = xcalloc(1, sizeof *c);
    int rc = HR_OK;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    int src = sqlite3_open_v2(path, &c->db, flags, NULL);
    *out = NULL;
    if (src != SQLITE_OK) {
        rc = herr_set(err, map_err(c->db, src), "cannot open sqlite database %s: %s", path,
                      c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(src));
        goto out;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    if ((src = list_funcs(c->db)) != SQLITE_OK) {
        rc = herr_set(err, map_err(c->db, src), "cannot register SQL functions: %s",
                      sqlite3_errmsg(c->db));
        goto out;
    }
    rc = pragma(c->db, "PRAGMA foreign_keys = ON", NULL, err);
    if (rc < 0)
        goto out;
    if (writer) {
        rc = pragma(c->db, "PRAGMA journal_mode = WAL", "wal", err);
        if (rc < 0)
            goto out;
        rc = pragma(c->db, "PRAGMA synchronous = FULL", NULL, err);
        /* the writer's pages stay cached between transactions (it is the only writer,
         * so nothing invalidates them): 64 MiB, not the default 2 MiB, which re-read
         * the jobs and messages indexes from the file on every group */
        if (rc == HR_OK)
            rc = pragma(c->db, "PRAGMA cache_size = -65536", NULL, err);
        if (rc == HR_OK)
            rc = pragma(c->db, "PRAGMA temp_store = MEMORY", NULL, err);
        /* a WAL that grew under load is cut back to 64 MiB once checkpointed */
        if (rc == HR_OK)
            rc = pragma(c->db, "PRAGMA journal_size_limit = 67108864", NULL, err);
    } else {
        rc = pragma(c->db, "PRAGMA query_only = ON", NULL, err);
    }
    /* the writer reads the file through a shared mapping (its writes still go through
     * write(2)). Readers do not: a reader that starts a transaction after any commit
     * unmaps the whole mapping (sqlite3OsUnfetch) and faults its pages in again, which
     * cost more CPU than pread into its small cache (docs/PERFORMANCE.md, session 14) */
    if (rc == HR_OK && writer)
        rc = pragma(c->db, "PRAGMA mmap_size = 268435456", NULL, err);
    if (rc < 0)
        goto out;
    *out = c;
    c = NULL;
out:
    if (rc < 0 && c && c->db && err && strstr(err->msg, "(corrupt)"))
        rc = herr_set(err, HR_IO,
                      "store %s is corrupt or not a database (%s); herald will not start on "
                      "it: restore it from a backup",
                      path, sqlite3_errmsg(c->db));
    conn_close(c);
    return rc;
}

/* ---- reader pool ------------------------------------------------------------------ */

/* reader_get: lend a reader connection (waits while READERS_MAX are lent). */
static int reader_get(struct sqlite_store *ss, struct conn **out)
{
    int rc = HR_OK;
    struct herr err;
    *out = NULL;
    pthread_mutex_lock(&ss->rmu);
    while (!ss->rfree && ss->nreaders >= READERS_MAX)
        pthread_cond_wait(&ss->rcv, &ss->rmu);
    if (ss->rfree) {
        *out = ss->rfree;
        ss->rfree = ss->rfree->next;
        (*out)->next = NULL;
        pthread_mutex_unlock(&ss->rmu);
        goto out;
    }
    ss->nreaders++;
    pthread_mutex_unlock(&ss->rmu);
    herr_clear(&err);
    rc = conn_open(ss->path, false, out, &err);
    if (rc == HR_OK)
        (*out)->corrupt = &ss->corrupt;
    if (rc < 0 && strstr(err.msg, "is corrupt or not a database"))
        atomic_store(&ss->corrupt, true); /* the file's header itself is damaged */
    if (rc < 0) {
        char q[300];
        LOG_E("store.sqlite.reader_open_failed", "msg=%s", log_q(q, sizeof q, err.msg));
        pthread_mutex_lock(&ss->rmu);
        ss->nreaders--;
        pthread_cond_signal(&ss->rcv);
        pthread_mutex_unlock(&ss->rmu);
    }
out:
    return rc;
}

/* reader_put: give a lent connection back (NULL is a no-op). */
static void reader_put(struct sqlite_store *ss, struct conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&ss->rmu);
    c->next = ss->rfree;
    ss->rfree = c;
    pthread_cond_signal(&ss->rcv);
    pthread_mutex_unlock(&ss->rmu);
}

/* ---- row helpers -------------------------------------------------------------------- */

/* col_str: column i copied into the arena, NUL-terminated. */
static struct str col_str(struct arena *a, sqlite3_stmt *st, int i)
{
    const void *p = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    return arena_str(a, (struct str){p, n > 0 ? (size_t)n : 0});
}

static void col_copy(char *dst, size_t cap, sqlite3_stmt *st, int i)
{
    const void *p = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    str_copy(dst, cap, (struct str){p, n > 0 ? (size_t)n : 0});
}

/* row_job: a row of JOB_COLS into out; strings go to the arena. */
static void row_job(sqlite3_stmt *st, struct arena *a, struct job *out)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    col_copy(out->kind, sizeof out->kind, st, 1);
    out->payload = col_str(a, st, 2);
    out->state = sqlite3_column_int(st, 3);
    out->run_at_ms = sqlite3_column_int64(st, 4);
    out->lease_until_ms = sqlite3_column_int64(st, 5);
    out->lease_token = sqlite3_column_int64(st, 6);
    out->attempts = (uint32_t)sqlite3_column_int64(st, 7);
    out->max_attempts = (uint32_t)sqlite3_column_int64(st, 8);
    out->created_ms = sqlite3_column_int64(st, 9);
    out->last_error = col_str(a, st, 10);
    out->retaken = (uint32_t)sqlite3_column_int64(st, 11);
}

/* row_key: a row of KEY_COLS into out; HR_IO when the stored hash is malformed. */
static int row_key(sqlite3_stmt *st, struct key_rec *out)
{
    const void *h;
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    out->kind = sqlite3_column_int(st, 1);
    col_copy(out->prefix, sizeof out->prefix, st, 2);
    col_copy(out->name, sizeof out->name, st, 3);
    h = sqlite3_column_blob(st, 4);
    if (!h || sqlite3_column_bytes(st, 4) != (int)sizeof out->hash) {
        LOG_E("store.sqlite.bad_key_row", "id=%lld", (long long)out->id);
        return HR_IO;
    }
    memcpy(out->hash, h, sizeof out->hash);
    out->created_ms = sqlite3_column_int64(st, 5);
    out->revoked_ms = sqlite3_column_int64(st, 6);
    out->scope = sqlite3_column_int(st, 7);
    return HR_OK;
}

/* grow: make room for one more element in an arena array of *cap elements. */
static void *grow(struct arena *a, void *arr, size_t n, size_t *cap, size_t elem)
{
    void *bigger;
    if (n < *cap)
        return arr;
    *cap = *cap ? *cap * 2 : 16;
    bigger = arena_alloc(a, *cap * elem);
    if (n)
        memcpy(bigger, arr, n * elem);
    return bigger;
}

static int bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    if (n == 0)
        return sqlite3_bind_zeroblob(st, i, 0); /* empty, not NULL */
    return sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
}

static int bind_text(sqlite3_stmt *st, int i, const char *p, size_t n)
{
    return sqlite3_bind_text64(st, i, n ? p : "", n, SQLITE_STATIC, SQLITE_UTF8);
}

/* clip_utf8: s's length cut to at most max bytes, not inside a UTF-8 sequence. */
static size_t clip_utf8(struct str s, size_t max)
{
    size_t n = max;
    if (s.len <= max)
        return s.len;
    while (n > 0 && ((unsigned char)s.p[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static int64_t new_token(void)
{
    uint64_t v = 0;
    for (int i = 0; i < 8 && v == 0; i++) {
        crypto_random(&v, sizeof v);
        v &= (uint64_t)INT64_MAX;
    }
    return v ? (int64_t)v : 1;
}

/* txn_conn: the write connection behind t, if t is live: handed to a fn that is running
 * now, on this thread, and its group transaction was not aborted by SQLite. */
static int txn_conn(struct store_txn *t, struct conn **out)
{
    struct sqlite_txn *x = (struct sqlite_txn *)t;
    int rc = HR_OK;
    *out = NULL;
    if (!t || !x->active || t_writer_of != (struct sqlite_store *)t->store) {
        LOG_E("store.sqlite.txn_misuse", "msg=\"write op outside its store_write fn\"");
        rc = HR_INVAL;
        goto out;
    }
    if (sqlite3_get_autocommit(x->c->db)) {
        LOG_E("store.sqlite.txn_aborted", "msg=\"transaction was rolled back by sqlite\"");
        rc = HR_IO;
        goto out;
    }
    *out = x->c;
out:
    return rc;
}

/* ---- writer ------------------------------------------------------------------------ */

/* sqlite_txn_sub: fn inside a nested savepoint of the open request savepoint. */
static int sqlite_txn_sub(struct store_txn *t, store_txn_fn fn, void *arg)
{
    struct sqlite_txn *x = (struct sqlite_txn *)t;
    int src, rc;
    if (!x || !x->active)
        return HR_INVAL;
    if (sqlite3_get_autocommit(x->c->db))
        return HR_IO; /* SQLite rolled back the transaction: a SAVEPOINT would begin one */
    src = exec_ctl(x->c, SQL_SUB_SAVEPOINT);
    if (src != SQLITE_OK)
        return db_fail(x->c, src, "sub_savepoint");
    rc = fn(t, arg);
    if (sqlite3_get_autocommit(x->c->db))
        return rc < 0 ? rc : HR_IO; /* SQLite rolled back everything: run_one sees it */
    if (rc < 0) {
        src = exec_ctl(x->c, SQL_SUB_ROLLBACK_TO);
        if (src == SQLITE_OK)
            src = exec_ctl(x->c, SQL_SUB_RELEASE);
        if (src != SQLITE_OK)
            return db_fail(x->c, src, "sub_rollback_to");
        return rc;
    }
    src = exec_ctl(x->c, SQL_SUB_RELEASE);
    if (src != SQLITE_OK)
        return db_fail(x->c, src, "sub_release");
    return rc;
}

/* fail_req: give request r the error rc (it did not commit). */
static void fail_req(struct wreq *r, int rc, const char *what, int src)
{
    r->ok = false;
    r->rc = rc;
    herr_set(&r->err, rc, "store write failed: %s (%s)", what, sqlite3_errstr(src));
}

/* run_one: run request r inside a savepoint of the open group transaction. Returns
 * false when SQLite aborted the whole group transaction. */
static bool run_one(struct sqlite_store *ss, struct wreq *r, bool *jobs_changed)
{
    struct sqlite_txn txn;
    int src, frc;
    bool alive = true;

    src = exec_ctl(ss->writer, SQL_SAVEPOINT);
    if (src != SQLITE_OK) {
        fail_req(r, db_fail(ss->writer, src, "savepoint"), "savepoint", src);
        alive = !sqlite3_get_autocommit(ss->writer->db);
        goto out;
    }
    memset(&txn, 0, sizeof txn);
    txn.base.store = &ss->base;
    txn.base.jobs_changed = false;
    txn.c = ss->writer;
    txn.active = true;
    frc = r->fn(&txn.base, r->arg);
    txn.active = false;
    if (sqlite3_get_autocommit(ss->writer->db)) {
        /* a failed statement (disk full, I/O) made SQLite roll back the transaction */
        r->ok = false;
        r->rc = frc < 0 ? frc : HR_IO;
        herr_set(&r->err, r->rc, "store write failed: transaction aborted (%s)",
                 hr_rc_str(r->rc));
        alive = false;
        goto out;
    }
    if (frc < 0) {
        r->ok = false;
        r->rc = frc;
        herr_set(&r->err, frc, "store write rolled back (%s)", hr_rc_str(frc));
        src = exec_ctl(ss->writer, SQL_ROLLBACK_TO);
        if (src == SQLITE_OK)
            src = exec_ctl(ss->writer, SQL_RELEASE);
        if (src != SQLITE_OK) {
            db_fail(ss->writer, src, "rollback_to");
            alive = false; /* its changes may still be in the group: abort the group */
        }
        goto out;
    }
    src = exec_ctl(ss->writer, SQL_RELEASE);
    if (src != SQLITE_OK) {
        fail_req(r, db_fail(ss->writer, src, "release"), "release", src);
        alive = false;
        goto out;
    }
    r->ok = true;
    r->rc = frc;
    if (txn.base.jobs_changed)
        *jobs_changed = true;
out:
    return alive;
}

struct group_result {
    uint64_t commits, errors;
    bool notify;  /* a committed request changed jobs */
    bool full;    /* a request or a commit failed because the disk is full */
    bool wrote;   /* a commit that changed rows succeeded */
    uint64_t cache_bytes; /* the writer connection's page cache after the group */
};

/* run_group: run reqs[0..n) as one transaction (or, if SQLite aborts one, as several:
 * requests after an abort start a fresh transaction). */
static void run_group(struct sqlite_store *ss, struct wreq **reqs, size_t n,
                      struct group_result *gr)
{
    struct conn *w = ss->writer;
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        bool alive = true, any_ok = false, jobs = false;
        sqlite3_int64 changes;
        int src = exec_ctl(w, SQL_BEGIN);
        if (src != SQLITE_OK) {
            int rc = db_fail(w, src, "begin");
            for (; i < n; i++)
                fail_req(reqs[i], rc, "begin", src);
            gr->errors++;
            break;
        }
        changes = sqlite3_total_changes64(w->db);
        while (i < n && alive) {
            alive = run_one(ss, reqs[i], &jobs);
            any_ok = any_ok || reqs[i]->ok;
            if (reqs[i]->rc == HR_FULL)
                gr->full = true;
            i++;
        }
        if (!alive) {
            /* the others of the group lose their work through no fault of their own:
             * a full disk is retryable for them too, anything else is an I/O error */
            int cause = reqs[i - 1]->rc == HR_FULL ? HR_FULL : HR_IO;
            for (size_t j = start; j < i; j++)
                if (reqs[j]->ok)
                    fail_req(reqs[j], cause, "transaction aborted", SQLITE_ABORT);
            if (!sqlite3_get_autocommit(w->db))
                exec_ctl(w, SQL_ROLLBACK);
            if (cause == HR_FULL)
                LOG_D("store.sqlite.group_aborted", "requests=%zu cause=full", i - start);
            else
                LOG_E("store.sqlite.group_aborted", "requests=%zu", i - start);
            gr->errors++;
            continue;
        }
        if (!any_ok) { /* nothing to keep */
            exec_ctl(w, SQL_ROLLBACK);
            continue;
        }
        src = exec_ctl(w, SQL_COMMIT);
        if (src != SQLITE_OK) {
            int rc = map_err(w->db, src);
            char q[256];
            mark_corrupt(w, src, "commit");
            if (rc == HR_FULL) {
                gr->full = true;
                LOG_D("store.sqlite.commit_failed", "requests=%zu sqlite_rc=%d msg=%s",
                      i - start, src, log_q(q, sizeof q, sqlite3_errmsg(w->db)));
            } else {
                LOG_E("store.sqlite.commit_failed", "requests=%zu sqlite_rc=%d errno=%d msg=%s",
                      i - start, src, sqlite3_system_errno(w->db),
                      log_q(q, sizeof q, sqlite3_errmsg(w->db)));
            }
            for (size_t j = start; j < i; j++)
                if (reqs[j]->ok)
                    fail_req(reqs[j], rc, "commit failed", src);
            if (!sqlite3_get_autocommit(w->db))
                exec_ctl(w, SQL_ROLLBACK);
            gr->errors++;
            continue;
        }
        gr->commits++;
        if (sqlite3_total_changes64(w->db) != changes)
            gr->wrote = true;
        if (jobs)
            gr->notify = true;
    }
}

static void *writer_main(void *arg)
{
    struct sqlite_store *ss = arg;
    struct wreq *group[GROUP_MAX];
    t_writer_of = ss;
    pthread_setname_np(pthread_self(), "h-sql-writer"); /* top -H, perf, gdb */
    pthread_mutex_lock(&ss->mu);
    for (;;) {
        size_t n = 0;
        struct group_result gr = {0, 0, false, false, false, 0};
        while (!ss->head && !ss->stopping)
            pthread_cond_wait(&ss->work_cv, &ss->mu);
        if (!ss->head)
            break; /* stopping and drained */
        while (ss->head && n < GROUP_MAX) {
            group[n++] = ss->head;
            ss->head = ss->head->next;
            ss->queued--;
        }
        if (!ss->head)
            ss->tail = NULL;
        pthread_mutex_unlock(&ss->mu);

        run_group(ss, group, n, &gr);
        {   /* the writer's page cache (readers drop theirs at each commit): on this
             * thread, the one that uses the connection */
            int cur = 0, hi = 0;
            if (sqlite3_db_status(ss->writer->db, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0) ==
                SQLITE_OK)
                gr.cache_bytes = cur > 0 ? (uint64_t)cur : 0;
        }
        /* on_jobs is only ever written on this thread (store_set_job_listener does it
         * through a write), so reading it here needs no lock. It runs before the
         * callers wake, so "store_write returned" implies "listener has run". */
        if (gr.notify && ss->base.on_jobs)
            ss->base.on_jobs(ss->base.on_jobs_arg);

        pthread_mutex_lock(&ss->mu);
        ss->stats.txns += n;
        ss->stats.commits += gr.commits;
        ss->stats.errors += gr.errors;
        ss->stats.engine_bytes = gr.cache_bytes;
        /* on a full disk some writes still fit (WAL pages SQLite reuses, pages freed
         * inside the file), so "full" ends only when a write that changed rows
         * succeeds FULL_HOLD_MS after the last one that failed */
        {
            int64_t now = time_mono_ms();
            if (gr.full) {
                if (!ss->full_ms)
                    LOG_E("store.sqlite.disk_full", "msg=\"writes fail: the disk is full; they "
                          "are answered 503 until space returns\"");
                ss->full_ms = now ? now : 1;
            } else if (gr.wrote && ss->full_ms && now - ss->full_ms >= FULL_HOLD_MS) {
                LOG_I("store.sqlite.disk_writable", "msg=\"writes succeed again\"");
                ss->full_ms = 0;
            }
        }
        ss->stats.full = ss->full_ms != 0;
        pthread_mutex_unlock(&ss->mu);
        for (size_t i = 0; i < n; i++)
            sem_post(&group[i]->done); /* its caller may return at once: not touched after */
        pthread_mutex_lock(&ss->mu);
    }
    pthread_mutex_unlock(&ss->mu);
    t_writer_of = NULL;
    return NULL;
}

/* ---- open / close ------------------------------------------------------------------ */

static int parse_dsn(const char *dsn, char *path, size_t cap, struct herr *err)
{
    static const char prefix[] = "sqlite:";
    int rc = HR_OK;
    const char *p;
    size_t len;
    if (!dsn || strncmp(dsn, prefix, sizeof prefix - 1) != 0) {
        rc = herr_set(err, HR_INVAL, "store DSN must look like sqlite:PATH");
        goto out;
    }
    p = dsn + sizeof prefix - 1;
    len = strnlen(p, cap);
    if (len == 0)
        rc = herr_set(err, HR_INVAL, "sqlite DSN has no path (expected sqlite:PATH)");
    else if (len >= cap)
        rc = herr_set(err, HR_INVAL, "sqlite DSN path is too long (max %zu bytes)", cap - 1);
    else if (p[0] == ':')
        rc = herr_set(err, HR_INVAL,
                      "in-memory sqlite databases are not supported; give a file path");
    else if (strncmp(p, "//", 2) == 0)
        rc = herr_set(err, HR_INVAL,
                      "sqlite DSN takes a plain path, not a URL "
                      "(e.g. sqlite:/var/lib/herald/herald.db or sqlite:data/herald.db)");
    else if (p[len - 1] == '/')
        rc = herr_set(err, HR_INVAL, "sqlite DSN path names a directory, not a file");
    if (rc < 0)
        goto out;
    memcpy(path, p, len + 1);
out:
    return rc;
}

static int mkdir_one(const char *dir, struct herr *err)
{
    char eb[128];
    int rc = HR_OK;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        rc = herr_set(err, errno == EACCES ? HR_PERM : HR_IO, "cannot create directory %s: %s",
                      dir, strerror_r(errno, eb, sizeof eb));
    return rc;
}

/* make_parent_dir: create the missing directories above path, mode 0700. */
static int make_parent_dir(const char *path, struct herr *err)
{
    char dir[PATH_MAX_LEN];
    char *slash;
    int rc = HR_OK;
    str_copy(dir, sizeof dir, str_c(path));
    slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        goto out; /* current directory or the root */
    *slash = '\0';
    for (char *p = dir + 1; *p && rc == HR_OK; p++)
        if (*p == '/') {
            *p = '\0';
            rc = mkdir_one(dir, err);
            *p = '/';
        }
    if (rc == HR_OK)
        rc = mkdir_one(dir, err);
out:
    return rc;
}

static int sync_init(struct sqlite_store *ss, struct herr *err)
{
    int rc = HR_OK;
    bool mu = pthread_mutex_init(&ss->mu, NULL) == 0;
    bool wcv = pthread_cond_init(&ss->work_cv, NULL) == 0;
    bool rmu = pthread_mutex_init(&ss->rmu, NULL) == 0;
    bool rcv = pthread_cond_init(&ss->rcv, NULL) == 0;
    bool cmu = pthread_mutex_init(&ss->cmu, NULL) == 0;
    pthread_condattr_t ca; /* ccv times the checkpointer's pause: a clock set back must
                              not stretch it */
    bool ccv = pthread_condattr_init(&ca) == 0;
    if (ccv) {
        ccv = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
              pthread_cond_init(&ss->ccv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (mu && wcv && rmu && rcv && cmu && ccv) {
        ss->sync_ok = true;
        goto out;
    }
    if (ccv)
        pthread_cond_destroy(&ss->ccv);
    if (cmu)
        pthread_mutex_destroy(&ss->cmu);
    if (rcv)
        pthread_cond_destroy(&ss->rcv);
    if (rmu)
        pthread_mutex_destroy(&ss->rmu);
    if (wcv)
        pthread_cond_destroy(&ss->work_cv);
    if (mu)
        pthread_mutex_destroy(&ss->mu);
    rc = herr_set(err, HR_IO, "cannot initialize store locks");
out:
    return rc;
}

/* lock_take: the process lock of a claimed store: flock(LOCK_EX) on <path>.lock, held
 * on ss->lock_fd until close (the kernel drops it when the process dies, so a killed
 * herald leaves no stale lock). A separate file because SQLite's own POSIX fcntl locks
 * on the database would be dropped by any close() of it in this process. The holder's
 * pid is written in the file for the message of the one refused. HR_BUSY when held. */
static int lock_take(struct sqlite_store *ss, struct herr *err)
{
    char lpath[PATH_MAX_LEN + 8], eb[128], pid[24];
    int fd = -1, rc = HR_OK, n;
    ssize_t got;
    snprintf(lpath, sizeof lpath, "%s.lock", ss->path);
    fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        rc = herr_set(err, errno == EACCES ? HR_PERM : HR_IO,
                      "cannot open the store's lock file %s: %s", lpath,
                      strerror_r(errno, eb, sizeof eb));
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) {
            rc = herr_set(err, HR_IO, "cannot lock %s: %s", lpath,
                          strerror_r(errno, eb, sizeof eb));
            goto out;
        }
        /* the holder writes its pid just after taking the lock: a start racing it may
         * find the file empty for a moment (bootstrap.test saw "pid unknown") */
        for (int tries = 0; tries < 100; tries++) {
            got = pread(fd, pid, sizeof pid - 1, 0);
            n = 0;
            while (got > 0 && n < got && pid[n] >= '0' && pid[n] <= '9')
                n++;
            if (n > 0 && n < got && pid[n] == '\n')
                break; /* the whole pid, with its newline */
            n = 0;
            usleep(1000);
        }
        pid[n] = '\0';
        rc = herr_set(err, HR_BUSY,
                      "store %s is in use by another herald (pid %s); stop it first, or give "
                      "this one its own --store",
                      ss->path, n ? pid : "unknown");
        goto out;
    }
    n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        LOG_W("store.sqlite.lock_pid", "msg=\"could not write our pid into the lock file\"");
    ss->lock_fd = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* check_not_empty: an existing file of 0 bytes is refused: only a missing file makes a
 * new store (an emptied or truncated file would silently become a new workspace with new
 * keys). A 0-byte file beside a non-empty -wal is left to SQLite (its data is there). */
static int check_not_empty(const char *path, struct herr *err)
{
    char wal[PATH_MAX_LEN + 8];
    struct stat sb;
    int rc = HR_OK;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > 0)
        goto out; /* missing (a new store), or not ours to judge: SQLite says */
    snprintf(wal, sizeof wal, "%s-wal", path);
    if (stat(wal, &sb) == 0 && sb.st_size > 0)
        goto out;
    rc = herr_set(err, HR_INVAL,
                  "store %s exists but is empty (0 bytes); herald makes a new store only "
                  "where no file exists: restore it from a backup, or delete the empty file "
                  "to start a new workspace (with new keys)",
                  path);
out:
    return rc;
}

/* ---- checkpointer ----------------------------------------------------------------- */

#define CKPT_FRAMES 1000          /* ask for a checkpoint past this many WAL frames
                                     (SQLite's own autocheckpoint point) */
#define CKPT_PAUSE_MS 200L        /* between two checkpoints (ckpt_pause) */
#define CKPT_WRITER_FRAMES 100000 /* the checkpointer is this far behind (~400 MB of WAL):
                                     the writer checkpoints itself, as SQLite would */

/* wal_hook: after each commit on the writer (SQLite calls it with the WAL's size in
 * frames). Replaces SQLite's autocheckpoint, which ran the checkpoint (and its fsync of
 * the database) inside the writer's commit: 9% of the writer under the flow bench. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int nframes)
{
    struct sqlite_store *ss = arg;
    if (nframes >= CKPT_WRITER_FRAMES) {
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    if (nframes >= CKPT_FRAMES) {
        pthread_mutex_lock(&ss->cmu);
        if (!ss->ckpt_want) {
            ss->ckpt_want = true;
            pthread_cond_signal(&ss->ccv);
        }
        pthread_mutex_unlock(&ss->cmu);
    }
    return SQLITE_OK;
}

/* ckpt_pause: wait CKPT_PAUSE_MS after a checkpoint (or until the store closes), so
 * that the next one copies each page once however many commits rewrote it meanwhile:
 * under load every commit rewrites the last pages of the tables it appends to and their
 * indexes' parents, and a checkpoint after each commit copied those again each time */
static void ckpt_pause(struct sqlite_store *ss)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until); /* ccv's clock (sync_init) */
    until.tv_nsec += CKPT_PAUSE_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&ss->cmu);
    while (!ss->ckpt_stop && pthread_cond_timedwait(&ss->ccv, &ss->cmu, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&ss->cmu);
}

static void *ckpt_main(void *arg)
{
    struct sqlite_store *ss = arg;
    bool failing = false;
    pthread_setname_np(pthread_self(), "h-sql-ckpt"); /* top -H, perf, gdb */
    for (;;) {
        int src, log = 0, done = 0;
        pthread_mutex_lock(&ss->cmu);
        while (!ss->ckpt_want && !ss->ckpt_stop)
            pthread_cond_wait(&ss->ccv, &ss->cmu);
        if (ss->ckpt_stop) {
            pthread_mutex_unlock(&ss->cmu);
            break;
        }
        ss->ckpt_want = false;
        pthread_mutex_unlock(&ss->cmu);
        /* PASSIVE: copies what no reader still needs, never blocks the writer; once
         * the whole WAL is copied the writer's next transaction starts it over */
        src = sqlite3_wal_checkpoint_v2(ss->ckpt->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log,
                                        &done);
        if (src != SQLITE_OK && src != SQLITE_BUSY && !failing) /* once per failing run */
            LOG_W("store.sqlite.checkpoint_failed", "rc=%s msg=\"%s\" wal_frames=%d",
                  hr_rc_str(map_src(src)), sqlite3_errmsg(ss->ckpt->db), log);
        failing = src != SQLITE_OK && src != SQLITE_BUSY;
        ckpt_pause(ss);
    }
    return NULL;
}

/* ckpt_start: open the checkpointer's connection and thread; on failure the writer
 * keeps SQLite's own autocheckpoint. */
static void ckpt_start(struct sqlite_store *ss)
{
    struct herr err = {0};
    if (conn_open(ss->path, false, &ss->ckpt, &err) < 0 ||
        pragma(ss->ckpt->db, "PRAGMA query_only = OFF", NULL, &err) < 0 ||
        pragma(ss->ckpt->db, "PRAGMA synchronous = FULL", NULL, &err) < 0) {
        LOG_W("store.sqlite.checkpointer_off", "msg=\"%s\"", err.msg);
        goto fail;
    }
    ss->ckpt->corrupt = &ss->corrupt;
    if (pthread_create(&ss->ckpt_thread, NULL, ckpt_main, ss) != 0)
        goto fail;
    ss->ckpt_started = true;
    sqlite3_wal_hook(ss->writer->db, wal_hook, ss); /* also turns the autocheckpoint off */
    return;
fail:
    conn_close(ss->ckpt);
    ss->ckpt = NULL;
}

static void ckpt_stop(struct sqlite_store *ss)
{
    if (ss->ckpt_started) {
        pthread_mutex_lock(&ss->cmu);
        ss->ckpt_stop = true;
        pthread_cond_signal(&ss->ccv);
        pthread_mutex_unlock(&ss->cmu);
        pthread_join(ss->ckpt_thread, NULL);
        ss->ckpt_started = false;
    }
    conn_close(ss->ckpt);
    ss->ckpt = NULL;
}

/* quick_check: PRAGMA quick_check on the writer, when the file is at most
 * QUICK_CHECK_MAX_BYTES (it reads every page: measured here on a 163 MB store, 0.21 s
 * with the file in the page cache, 3.4 s from a cold cache; larger stores skip it and
 * rely on the SQLITE_CORRUPT watch of every statement). */
static int quick_check(struct sqlite_store *ss, struct herr *err)
{
    struct stat sb;
    int rc = HR_OK;
    char q[PATH_MAX_LEN + 64];
    if (stat(ss->path, &sb) != 0 || sb.st_size > QUICK_CHECK_MAX_BYTES) {
        LOG_I("store.sqlite.quick_check_skipped", "path=%s bytes=%lld",
              log_q(q, sizeof q, ss->path), (long long)sb.st_size);
        goto out;
    }
    rc = pragma(ss->writer->db, "PRAGMA quick_check", "ok", err);
out:
    return rc;
}

/* sqlite_global_init (once per process, before the first connection): the page cache
 * layer that skips empty truncations (pcache.h), the VFS layer that writes a commit's
 * WAL frames in one call (walbuf.h), and SQLite's memory statistics off.
 * With those on, every sqlite3_malloc and sqlite3_free of every connection
 * takes one process-wide mutex (profiled: the writer and the readers queued on it, ~5 % of
 * the writer's time under the flow bench). herald reads no SQLite memory statistics and
 * sets no soft heap limit, which are the features it costs. Returns nothing: if the
 * library was initialised already (another user in the process), the default stays. */
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void sqlite_global_init(void)
{
    (void)sqlite_pcache_install();
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)sqlite3_initialize();
    (void)sqlite_walbuf_install();
}

static int sqlite_open(struct store *s, const char *dsn, struct herr *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    int rc = HR_OK;
    char q[PATH_MAX_LEN + 64];

    ss->lock_fd = -1;
    pthread_once(&global_once, sqlite_global_init);
    if (!sqlite3_threadsafe()) {
        rc = herr_set(err, HR_IO, "the linked SQLite library was built without thread support");
        goto out;
    }
    rc = parse_dsn(dsn, ss->path, sizeof ss->path, err);
    if (rc < 0)
        goto out;
    rc = sync_init(ss, err);
    if (rc < 0)
        goto out;
    rc = make_parent_dir(ss->path, err);
    if (rc < 0)
        goto out;
    if (s->claim) { /* before anything changes the file (migrations, leases) */
        rc = lock_take(ss, err);
        if (rc < 0)
            goto out;
    }
    rc = check_not_empty(ss->path, err);
    if (rc < 0)
        goto out;
    rc = conn_open(ss->path, true, &ss->writer, err);
    if (rc == HR_OK)
        rc = quick_check(ss, err);
    if (rc == HR_OK)
        rc = sqlite_migrate(ss->writer->db, hclock_now(s->clock), err);
    if (rc < 0 && ss->writer && is_corrupt(sqlite3_extended_errcode(ss->writer->db)))
        rc = herr_set(err, HR_IO,
                      "store %s is corrupt (%s); herald will not start on a damaged store: "
                      "restore it from a backup",
                      ss->path, sqlite3_errmsg(ss->writer->db));
    else if (rc < 0 && strstr(err ? err->msg : "", "quick_check"))
        rc = herr_set(err, HR_IO,
                      "store %s failed its integrity check (PRAGMA quick_check); herald will "
                      "not start on a damaged store: restore it from a backup",
                      ss->path);
    if (rc < 0)
        goto out;
    ss->writer->corrupt = &ss->corrupt;
    ckpt_start(ss); /* its WAL hook goes on the writer connection before the writer runs */
    if (pthread_create(&ss->thread, NULL, writer_main, ss) != 0) {
        rc = herr_set(err, HR_IO, "cannot start the store writer thread");
        goto out;
    }
    ss->thread_started = true;
    LOG_I("store.sqlite.open", "path=%s schema=%d", log_q(q, sizeof q, ss->path),
          sqlite_schema_latest());
out:
    if (rc < 0)
        LOG_E("store.sqlite.open_failed", "rc=%s msg=%s", hr_rc_str(rc),
              log_q(q, sizeof q, err ? err->msg : ""));
    return rc;
}

static void sqlite_close(struct store *s)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    size_t closed = 0;
    if (!ss)
        return;
    if (ss->thread_started) {
        pthread_mutex_lock(&ss->mu);
        ss->stopping = true;
        pthread_cond_signal(&ss->work_cv);
        pthread_mutex_unlock(&ss->mu);
        pthread_join(ss->thread, NULL); /* the writer drains queued requests first */
        ss->thread_started = false;
    }
    if (ss->sync_ok) {
        if (ss->writer && ss->ckpt_started)
            sqlite3_wal_hook(ss->writer->db, NULL, NULL);
        ckpt_stop(ss);
    }
    if (ss->sync_ok) {
        pthread_mutex_lock(&ss->rmu);
        while (ss->rfree) {
            struct conn *c = ss->rfree;
            ss->rfree = c->next;
            conn_close(c);
            closed++;
        }
        if (closed != ss->nreaders)
            LOG_E("store.sqlite.readers_leaked", "open=%zu closed=%zu", ss->nreaders, closed);
        ss->nreaders = 0;
        pthread_mutex_unlock(&ss->rmu);
    }
    conn_close(ss->writer);
    ss->writer = NULL;
    if (ss->lock_fd >= 0) { /* after the last connection: the next process may start */
        close(ss->lock_fd);
        ss->lock_fd = -1;
    }
    if (ss->sync_ok) {
        pthread_cond_destroy(&ss->ccv);
        pthread_mutex_destroy(&ss->cmu);
        pthread_cond_destroy(&ss->rcv);
        pthread_mutex_destroy(&ss->rmu);
        pthread_cond_destroy(&ss->work_cv);
        pthread_mutex_destroy(&ss->mu);
        ss->sync_ok = false;
    }
}

/* ---- write / ping / stats -------------------------------------------------------------- */

static int sqlite_write(struct store *s, store_txn_fn fn, void *arg, struct herr *err)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct wreq r;
    int rc = HR_OK;

    memset(&r, 0, sizeof r);
    r.fn = fn;
    r.arg = arg;
    sem_init(&r.done, 0, 0);
    if (!fn) {
        rc = herr_set(err, HR_INVAL, "store write without a function");
        goto out;
    }
    if (t_writer_of == ss) {
        rc = herr_set(err, HR_INVAL,
                      "store_write called on the store's writer thread (nested write would "
                      "deadlock)");
        goto out;
    }
    pthread_mutex_lock(&ss->mu);
    if (ss->stopping || !ss->thread_started) {
        pthread_mutex_unlock(&ss->mu);
        rc = herr_set(err, HR_UNAVAIL, "store is closing");
        goto out;
    }
    {
        /* back-pressure: the writer is this far behind; the caller answers 429 */
        size_t qmax = ss->base.write_queue_max ? ss->base.write_queue_max : WRITE_QUEUE_MAX;
        int64_t wmax = ss->base.write_wait_max_ms > 0 ? ss->base.write_wait_max_ms : WRITE_WAIT_MAX_MS;
        int64_t now = time_mono_ms();
        if (store_is_ingress() &&
            (ss->queued >= qmax || (ss->head && now - ss->head->enq_ms > wmax))) {
            size_t q = ss->queued;
            pthread_mutex_unlock(&ss->mu);
            rc = herr_set(err, HR_AGAIN,
                          "the store is overloaded (%zu writes waiting); retry later", q);
            goto out;
        }
        r.enq_ms = now;
    }
    ss->queued++;
    if (ss->tail)
        ss->tail->next = &r;
    else
        ss->head = &r;
    ss->tail = &r;
    pthread_cond_signal(&ss->work_cv);
    pthread_mutex_unlock(&ss->mu);
    while (sem_wait(&r.done) != 0) /* EINTR: a signal handler ran */
        ;
    rc = r.rc;
    if (rc < 0) {
        if (err)
            *err = r.err;
    } else {
        herr_clear(err);
    }
out:
    sem_destroy(&r.done);
    return rc;
}

static int probe_tx(struct store_txn *t, void *arg)
{
    char v[32];
    int n = snprintf(v, sizeof v, "%lld", (long long)time_mono_ms());
    return store_meta_set(t, "store.write_probe", (struct str){v, (size_t)n});
}

/* probe_full: HR_FULL while a write failed for a full disk less than FULL_HOLD_MS ago;
 * after that, while still marked full, one small write decides (and clears the mark
 * when it succeeds). HR_OK when not marked. */
static int probe_full(struct sqlite_store *ss)
{
    struct herr err;
    int64_t since;
    int rc = HR_OK;
    pthread_mutex_lock(&ss->mu);
    since = ss->full_ms;
    pthread_mutex_unlock(&ss->mu);
    if (!since)
        goto out;
    if (time_mono_ms() - since < FULL_HOLD_MS) {
        rc = HR_FULL;
        goto out;
    }
    herr_clear(&err);
    rc = sqlite_write(&ss->base, probe_tx, NULL, &err);
    if (rc < 0) {
        rc = HR_FULL; /* still marked full (another error says nothing about space) */
        goto out;
    }
    pthread_mutex_lock(&ss->mu);
    rc = ss->full_ms ? HR_FULL : HR_OK;
    pthread_mutex_unlock(&ss->mu);
out:
    return rc;
}

static int sqlite_ping(struct store *s)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = reader_get(ss, &c);
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, SQL_PING, &st);
    if (rc < 0)
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW) {
        LOG_E("store.sqlite.ping_failed", "msg=%s", sqlite3_errmsg(c->db));
        rc = HR_IO;
    }
    if (atomic_load(&ss->corrupt))
        rc = HR_IO; /* SELECT 1 reads no page: a damaged file still answers it */
    stmt_done(st);
    st = NULL;
    reader_put(ss, c);
    c = NULL;
    if (rc == HR_OK)
        rc = probe_full(ss);
out:
    stmt_done(st);
    reader_put(ss, c);
    return rc < 0 && rc != HR_FULL ? HR_IO : rc;
}

static void sqlite_stats(struct store *s, struct store_stats *out)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    pthread_mutex_lock(&ss->mu);
    *out = ss->stats;
    pthread_mutex_unlock(&ss->mu);
    out->corrupt = atomic_load(&ss->corrupt);
}

/* ---- meta ------------------------------------------------------------------------------ */

static int check_meta_key(const char *key)
{
    size_t n = key ? strnlen(key, META_KEY_MAX + 1) : 0;
    return n == 0 || n > META_KEY_MAX ? HR_INVAL : HR_OK;
}

/* meta_write: SQL_META_SET (replace) or SQL_META_ADD (HR_CONFLICT when the key exists). */
static int meta_write(struct store_txn *t, const char *sql, const char *key, struct str value)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = check_meta_key(key);
    if (rc < 0)
        goto out;
    if (value.len > STORE_PAYLOAD_MAX) {
        rc = HR_TOOBIG;
        goto out;
    }
    rc = txn_conn(t, &c);
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, sql, &st);
    if (rc < 0)
        goto out;
    if ((src = bind_text(st, 1, key, strlen(key))) != SQLITE_OK ||
        (src = bind_blob(st, 2, value.p, value.len)) != SQLITE_OK ||
        (src = sqlite3_step(st)) != SQLITE_DONE)
        rc = db_fail(c, src, "meta_set");
    else if (sql == SQL_META_ADD && sqlite3_changes(c->db) == 0)
        rc = HR_CONFLICT;
out:
    stmt_done(st);
    return rc;
}

static int sqlite_meta_set(struct store_txn *t, const char *key, struct str value)
{
    return meta_write(t, SQL_META_SET, key, value);
}

static int sqlite_meta_add(struct store_txn *t, const char *key, struct str value)
{
    return meta_write(t, SQL_META_ADD, key, value);
}

static int sqlite_meta_get(struct store *s, const char *key, struct arena *a, struct str *out)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = check_meta_key(key);
    if (rc < 0)
        goto out;
    rc = reader_get(ss, &c);
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, SQL_META_GET, &st);
    if (rc < 0)
        goto out;
    if ((src = bind_text(st, 1, key, strlen(key))) != SQLITE_OK) {
        rc = db_fail(c, src, "meta_get");
        goto out;
    }
    src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        rc = HR_NOTFOUND;
    else if (src != SQLITE_ROW)
        rc = db_fail(c, src, "meta_get");
    else
        *out = col_str(a, st, 0);
out:
    stmt_done(st);
    reader_put(ss, c);
    return rc;
}

/* ---- keys -------------------------------------------------------------------------------- */

static int sqlite_key_insert(struct store_txn *t, struct key_rec *k)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = HR_OK;
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
    rc = txn_conn(t, &c);
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, SQL_KEY_INSERT, &st);
    if (rc < 0)
        goto out;
    if ((src = sqlite3_bind_int(st, 1, k->kind)) != SQLITE_OK ||
        (src = bind_text(st, 2, k->prefix, plen)) != SQLITE_OK ||
        (src = bind_text(st, 3, k->name, nlen)) != SQLITE_OK ||
        (src = sqlite3_bind_blob(st, 4, k->hash, sizeof k->hash, SQLITE_STATIC)) != SQLITE_OK ||
        (src = sqlite3_bind_int64(st, 5, k->created_ms)) != SQLITE_OK ||
        (src = sqlite3_bind_int64(st, 6, k->revoked_ms)) != SQLITE_OK ||
        (src = sqlite3_bind_int(st, 7, k->scope)) != SQLITE_OK ||
        (src = sqlite3_step(st)) != SQLITE_DONE) {
        rc = db_fail(c, src, "key_insert");
        goto out;
    }
    k->id = sqlite3_last_insert_rowid(c->db);
out:
    stmt_done(st);
    return rc;
}

static int sqlite_key_find_by_hash(struct store *s, const uint8_t hash[32], struct key_rec *out)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = reader_get(ss, &c);
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, SQL_KEY_FIND, &st);
    if (rc < 0)
        goto out;
    if ((src = sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC)) != SQLITE_OK) {
        rc = db_fail(c, src, "key_find");
        goto out;
    }
    src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        rc = HR_NOTFOUND;
    else if (src != SQLITE_ROW)
        rc = db_fail(c, src, "key_find");
    else
        rc = row_key(st, out);
out:
    stmt_done(st);
    reader_put(ss, c);
    return rc;
}

static int sqlite_key_list(struct store *s, struct arena *a, struct key_rec **out, size_t *n)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    struct key_rec *arr = NULL;
    size_t cnt = 0, cap = 0;
    int src, rc = reader_get(ss, &c);
    *out = NULL;
    *n = 0;
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, SQL_KEY_LIST, &st);
    if (rc < 0)
        goto out;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == LIST_MAX) {
            rc = HR_TOOBIG;
            goto out;
        }
        arr = grow(a, arr, cnt, &cap, sizeof *arr);
        rc = row_key(st, &arr[cnt]);
        if (rc < 0)
            goto out;
        cnt++;
    }
    if (src != SQLITE_DONE) {
        rc = db_fail(c, src, "key_list");
        goto out;
    }
    *out = arr;
    *n = cnt;
out:
    stmt_done(st);
    reader_put(ss, c);
    return rc;
}

static int sqlite_key_revoke(struct store_txn *t, const char *prefix, int64_t now_ms)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = HR_OK;
    size_t plen = prefix ? strnlen(prefix, 16) : 0;
    if (plen == 0 || plen == 16 || now_ms <= 0) {
        rc = HR_INVAL;
        goto out;
    }
    rc = txn_conn(t, &c);
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, SQL_KEY_REVOKE, &st);
    if (rc < 0)
        goto out;
    if ((src = sqlite3_bind_int64(st, 1, now_ms)) != SQLITE_OK ||
        (src = bind_text(st, 2, prefix, plen)) != SQLITE_OK ||
        (src = sqlite3_step(st)) != SQLITE_DONE) {
        rc = db_fail(c, src, "key_revoke");
        goto out;
    }
    if (sqlite3_changes(c->db) == 0)
        rc = HR_NOTFOUND;
out:
    stmt_done(st);
    return rc;
}

static int sqlite_key_count(struct store *s, int kind, int64_t *out)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = HR_OK;
    if (kind < 0) {
        rc = HR_INVAL;
        goto out;
    }
    rc = reader_get(ss, &c);
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, SQL_KEY_COUNT, &st);
    if (rc < 0)
        goto out;
    if ((src = sqlite3_bind_int(st, 1, kind)) != SQLITE_OK ||
        (src = sqlite3_step(st)) != SQLITE_ROW) {
        rc = db_fail(c, src, "key_count");
        goto out;
    }
    *out = sqlite3_column_int64(st, 0);
out:
    stmt_done(st);
    reader_put(ss, c);
    return rc;
}

/* ---- jobs ---------------------------------------------------------------------------------- */

static int sqlite_job_insert(struct store_txn *t, const struct job_spec *js, int64_t now_ms,
                             int64_t *out_id)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = HR_OK;
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
    rc = txn_conn(t, &c);
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, SQL_JOB_INSERT, &st);
    if (rc < 0)
        goto out;
    if ((src = bind_text(st, 1, js->kind, klen)) != SQLITE_OK ||
        (src = bind_blob(st, 2, js->payload.p, js->payload.len)) != SQLITE_OK ||
        (src = sqlite3_bind_int64(st, 3, js->run_at_ms ? js->run_at_ms : now_ms)) != SQLITE_OK ||
        (src = sqlite3_bind_int64(st, 4, js->max_attempts ? js->max_attempts
                                                          : DEFAULT_MAX_ATTEMPTS)) != SQLITE_OK ||
        (src = sqlite3_bind_int64(st, 5, now_ms)) != SQLITE_OK ||
        (src = dlen ? bind_text(st, 6, js->dedup_key, dlen) : sqlite3_bind_null(st, 6)) !=
            SQLITE_OK ||
        (src = sqlite3_bind_int64(st, 7, js->lease_until_ms)) != SQLITE_OK ||
        (src = sqlite3_bind_int64(st, 8, js->lease_until_ms > 0 ? js->lease_token : 0)) !=
            SQLITE_OK ||
        (src = sqlite3_step(st)) != SQLITE_DONE) {
        rc = db_fail(c, src, "job_insert");
        goto out;
    }
    if (sqlite3_changes(c->db) == 1) {
        if (out_id)
            *out_id = sqlite3_last_insert_rowid(c->db);
        if (js->lease_until_ms == 0)
            t->jobs_changed = true;
        goto out;
    }
    /* the dedup_key exists: report the job that holds it */
    stmt_done(st);
    rc = conn_stmt(c, SQL_JOB_BY_DEDUP, &st);
    if (rc < 0)
        goto out;
    if ((src = bind_text(st, 1, js->dedup_key, dlen)) != SQLITE_OK ||
        (src = sqlite3_step(st)) != SQLITE_ROW) {
        rc = db_fail(c, src, "job_dedup");
        goto out;
    }
    if (out_id)
        *out_id = sqlite3_column_int64(st, 0);
    rc = HR_CONFLICT;
out:
    stmt_done(st);
    return rc;
}

/* kinds_list: the NULL-terminated kinds list as ",a,b,...," (in a), or NULL for "all
 * kinds". HR_INVAL past KINDS_MAX kinds or for a kind that is empty, has a comma or is
 * longer than 64 bytes. */
static int kinds_list(const char *const *kinds, struct arena *a, char **out)
{
    size_t i, len = 1, at = 1;
    char *p;
    *out = NULL;
    if (!kinds)
        return HR_OK;
    for (i = 0; kinds[i]; i++) {
        size_t n = strlen(kinds[i]);
        if (i == KINDS_MAX || n == 0 || n > 64 || memchr(kinds[i], ',', n))
            return HR_INVAL;
        len += n + 1;
    }
    p = arena_alloc(a, len + 1);
    p[0] = ',';
    for (i = 0; kinds[i]; i++) {
        size_t n = strlen(kinds[i]);
        memcpy(p + at, kinds[i], n);
        p[at + n] = ',';
        at += n + 1;
    }
    p[at] = '\0';
    *out = p;
    return HR_OK;
}

/* A runnable job picked for a lease: its id and run_at_ms, for the merge. */
struct pick {
    int64_t id, at;
};

static int pick_cmp(const void *a, const void *b)
{
    const struct pick *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* lease_pick: up to max (id, run_at_ms) of sql (one of the picks) appended to p[*n]. */
static int lease_pick(struct conn *c, const char *sql, int64_t now_ms, const char *kl,
                      size_t max, struct pick *p, size_t *n)
{
    sqlite3_stmt *st = NULL;
    size_t got = 0;
    int src, rc = conn_stmt(c, sql, &st);
    if (rc < 0 || max == 0)
        goto out;
    if ((src = sqlite3_bind_int64(st, 1, now_ms)) != SQLITE_OK ||
        (src = kl ? bind_text(st, 2, kl, strlen(kl)) : sqlite3_bind_null(st, 2)) != SQLITE_OK ||
        (src = sqlite3_bind_int64(st, 3, (sqlite3_int64)max)) != SQLITE_OK) {
        rc = db_fail(c, src, "job_lease");
        goto out;
    }
    while (got < max && (src = sqlite3_step(st)) == SQLITE_ROW) {
        p[*n].id = sqlite3_column_int64(st, 0);
        p[*n].at = sqlite3_column_int64(st, 1);
        (*n)++;
        got++;
    }
    if (got < max && src != SQLITE_DONE)
        rc = db_fail(c, src, "job_lease");
out:
    stmt_done(st);
    return rc;
}

static int sqlite_job_lease(struct store_txn *t, int64_t now_ms, int64_t lease_ms, size_t max,
                            size_t max_repeat, const char *const *kinds, struct arena *a,
                            struct job **out, size_t *n)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    struct job *jobs = NULL;
    struct pick *picks;
    char *kj = NULL;
    size_t cnt = 0, got = 0, np = 0;
    int src, rc = HR_OK;

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
    if (max_repeat > max)
        max_repeat = max;
    rc = kinds_list(kinds, a, &kj);
    if (rc < 0)
        goto out;
    rc = txn_conn(t, &c);
    if (rc < 0)
        goto out;
    jobs = arena_zalloc(a, max * sizeof *jobs);
    picks = arena_alloc(a, 3 * max * sizeof *picks);

    /* pick the ids first (queued, expired, expired again; merged by run_at_ms, id), then
     * take each with its own token */
    rc = lease_pick(c, SQL_JOB_LEASE_PICK_QUEUED, now_ms, kj, max, picks, &np);
    if (rc == HR_OK)
        rc = lease_pick(c, SQL_JOB_LEASE_PICK_EXPIRED, now_ms, kj, max, picks, &np);
    if (rc == HR_OK)
        rc = lease_pick(c, SQL_JOB_LEASE_PICK_REPEAT, now_ms, kj, max_repeat, picks, &np);
    if (rc < 0)
        goto out;
    qsort(picks, np, sizeof *picks, pick_cmp);
    for (cnt = 0; cnt < np && cnt < max; cnt++)
        jobs[cnt].id = picks[cnt].id;

    rc = conn_stmt(c, SQL_JOB_LEASE_TAKE, &st);
    if (rc < 0)
        goto out;
    for (got = 0; got < cnt; got++) {
        int64_t id = jobs[got].id;
        if ((src = sqlite3_bind_int64(st, 1, now_ms + lease_ms)) != SQLITE_OK ||
            (src = sqlite3_bind_int64(st, 2, new_token())) != SQLITE_OK ||
            (src = sqlite3_bind_int64(st, 3, id)) != SQLITE_OK ||
            (src = sqlite3_step(st)) != SQLITE_ROW) {
            rc = db_fail(c, src, "job_lease_take");
            goto out;
        }
        row_job(st, a, &jobs[got]);
        if ((src = sqlite3_step(st)) != SQLITE_DONE) {
            rc = db_fail(c, src, "job_lease_take");
            goto out;
        }
        sqlite3_reset(st);
    }
    *out = jobs;
    *n = cnt;
out:
    stmt_done(st);
    return rc;
}

/* lease_op: run one of the token-checked updates (ack/retry/dead/release); HR_CONFLICT
 * when the job is not leased under that token any more. */
static int lease_op(struct store_txn *t, const char *sql, const char *what, int64_t id,
                    int64_t token, const int64_t *run_at, const struct str *error)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src = SQLITE_OK, rc = txn_conn(t, &c);
    int next = 3;
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, sql, &st);
    if (rc < 0)
        goto out;
    if ((src = sqlite3_bind_int64(st, 1, id)) != SQLITE_OK ||
        (src = sqlite3_bind_int64(st, 2, token)) != SQLITE_OK)
        goto fail;
    if (run_at && (src = sqlite3_bind_int64(st, next++, *run_at)) != SQLITE_OK)
        goto fail;
    if (error && (src = bind_text(st, next++, error->p, clip_utf8(*error, ERROR_TEXT_MAX))) !=
                     SQLITE_OK)
        goto fail;
    if ((src = sqlite3_step(st)) != SQLITE_DONE)
        goto fail;
    if (sqlite3_changes(c->db) == 0) {
        LOG_D("store.sqlite.lease_lost", "op=%s job=%lld", what, (long long)id);
        rc = HR_CONFLICT;
    }
    goto out;
fail:
    rc = db_fail(c, src, what);
out:
    stmt_done(st);
    return rc;
}

static int sqlite_job_ack(struct store_txn *t, int64_t id, int64_t lease_token)
{
    return lease_op(t, SQL_JOB_ACK, "job_ack", id, lease_token, NULL, NULL);
}

static int sqlite_job_retry(struct store_txn *t, int64_t id, int64_t lease_token,
                            int64_t run_at_ms, struct str error)
{
    int rc = lease_op(t, SQL_JOB_RETRY, "job_retry", id, lease_token, &run_at_ms, &error);
    if (rc == HR_OK)
        t->jobs_changed = true;
    return rc;
}

static int sqlite_job_dead(struct store_txn *t, int64_t id, int64_t lease_token, struct str error)
{
    return lease_op(t, SQL_JOB_DEAD, "job_dead", id, lease_token, NULL, &error);
}

static int sqlite_job_release(struct store_txn *t, int64_t id, int64_t lease_token)
{
    int rc = lease_op(t, SQL_JOB_RELEASE, "job_release", id, lease_token, NULL, NULL);
    if (rc == HR_OK)
        t->jobs_changed = true;
    return rc;
}

/* sqlite_job_extend: queues nothing, so the job listener is not told. */
static int sqlite_job_extend(struct store_txn *t, int64_t id, int64_t lease_token,
                             int64_t lease_until_ms)
{
    return lease_op(t, SQL_JOB_EXTEND, "job_extend", id, lease_token, &lease_until_ms, NULL);
}

static int sqlite_job_defer(struct store_txn *t, int64_t id, int64_t lease_token,
                            int64_t run_at_ms)
{
    int rc = lease_op(t, SQL_JOB_DEFER, "job_defer", id, lease_token, &run_at_ms, NULL);
    if (rc == HR_OK)
        t->jobs_changed = true;
    return rc;
}

static int sqlite_job_get(struct store *s, int64_t id, struct arena *a, struct job *out)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = reader_get(ss, &c);
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, SQL_JOB_GET, &st);
    if (rc < 0)
        goto out;
    if ((src = sqlite3_bind_int64(st, 1, id)) != SQLITE_OK) {
        rc = db_fail(c, src, "job_get");
        goto out;
    }
    src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        rc = HR_NOTFOUND;
    else if (src != SQLITE_ROW)
        rc = db_fail(c, src, "job_get");
    else
        row_job(st, a, out);
out:
    stmt_done(st);
    reader_put(ss, c);
    return rc;
}

static int sqlite_job_counts(struct store *s, struct arena *a, struct job_count **out, size_t *n)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    struct job_count *arr = NULL;
    size_t cnt = 0, cap = 0;
    int src, rc = reader_get(ss, &c);
    *out = NULL;
    *n = 0;
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, SQL_JOB_COUNTS, &st);
    if (rc < 0)
        goto out;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == LIST_MAX) {
            rc = HR_TOOBIG;
            goto out;
        }
        arr = grow(a, arr, cnt, &cap, sizeof *arr);
        memset(&arr[cnt], 0, sizeof arr[cnt]);
        col_copy(arr[cnt].kind, sizeof arr[cnt].kind, st, 0);
        arr[cnt].state = sqlite3_column_int(st, 1);
        arr[cnt].count = sqlite3_column_int64(st, 2);
        cnt++;
    }
    if (src != SQLITE_DONE) {
        rc = db_fail(c, src, "job_counts");
        goto out;
    }
    *out = arr;
    *n = cnt;
out:
    stmt_done(st);
    reader_put(ss, c);
    return rc;
}

static int sqlite_job_next_run_at(struct store *s, bool leases, int64_t *out_ms)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = reader_get(ss, &c);
    if (rc < 0)
        goto out;
    rc = conn_stmt(c, leases ? SQL_JOB_NEXT : SQL_JOB_NEXT_QUEUED, &st);
    if (rc < 0)
        goto out;
    if ((src = sqlite3_step(st)) != SQLITE_ROW) {
        rc = db_fail(c, src, "job_next_run_at");
        goto out;
    }
    if (sqlite3_column_type(st, 0) == SQLITE_NULL)
        rc = HR_NOTFOUND;
    else
        *out_ms = sqlite3_column_int64(st, 0);
out:
    stmt_done(st);
    reader_put(ss, c);
    return rc;
}

/* ---- binding and reading helpers for the document, event and catalog ops ---------- */

/* bindv: bind parameters 1..n from a format: 'i' int64_t, 's' struct str as text,
 * 'b' struct str as blob, 'c' const char * as text. Returns an SQLite code. */
static int vbindv(sqlite3_stmt *st, const char *fmt, va_list ap)
{
    int src = SQLITE_OK, i = 1;
    for (const char *f = fmt; *f && src == SQLITE_OK; f++, i++) {
        switch (*f) {
        case 'i':
            src = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
            break;
        case 's': {
            struct str v = va_arg(ap, struct str);
            src = bind_text(st, i, v.p, v.len);
            break;
        }
        case 'b': {
            struct str v = va_arg(ap, struct str);
            src = bind_blob(st, i, v.p, v.len);
            break;
        }
        case 'c': {
            const char *v = va_arg(ap, const char *);
            src = bind_text(st, i, v, strlen(v));
            break;
        }
        default:
            src = SQLITE_MISUSE;
        }
    }
    return src;
}

static int bindv(sqlite3_stmt *st, const char *fmt, ...)
{
    va_list ap;
    int src;
    va_start(ap, fmt);
    src = vbindv(st, fmt, ap);
    va_end(ap);
    return src;
}


/* write_stmt / read_stmt: the connection and cached statement for a write op (inside
 * the caller's transaction) or a read op (a lent reader). Release with op_done. */
static int write_stmt(struct store_txn *t, const char *sql, struct conn **c, sqlite3_stmt **st)
{
    int rc = txn_conn(t, c);
    if (rc == HR_OK)
        rc = conn_stmt(*c, sql, st);
    return rc;
}

static int read_stmt(struct sqlite_store *ss, const char *sql, struct conn **c, sqlite3_stmt **st)
{
    int rc = reader_get(ss, c);
    if (rc == HR_OK)
        rc = conn_stmt(*c, sql, st);
    return rc;
}

static void op_done(struct sqlite_store *ss, struct conn *reader, sqlite3_stmt *st)
{
    stmt_done(st);
    if (reader)
        reader_put(ss, reader);
}

typedef void (*row_fn)(sqlite3_stmt *st, struct arena *a, void *out);

/* read_list: run the cached read statement sql with parameters bound from fmt (as
 * bindv) and collect every row into an arena array of elem-byte records, each zeroed
 * and then filled by row. *out and *n get the array (NULL/0 when empty). Returns 0,
 * HR_TOOBIG past LIST_MAX rows, or the mapped SQLite error. */
static int read_list(struct sqlite_store *ss, const char *sql, const char *what, struct arena *a,
                     size_t elem, row_fn row, void **out, size_t *n, const char *fmt, ...)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    char *arr = NULL;
    size_t cnt = 0, cap = 0;
    va_list ap;
    int src, rc;
    *out = NULL;
    *n = 0;
    rc = read_stmt(ss, sql, &c, &st);
    if (rc < 0)
        goto out;
    va_start(ap, fmt);
    src = vbindv(st, fmt, ap);
    va_end(ap);
    if (src != SQLITE_OK) {
        rc = db_fail(c, src, what);
        goto out;
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == LIST_MAX) {
            rc = HR_TOOBIG;
            goto out;
        }
        arr = grow(a, arr, cnt, &cap, elem);
        memset(arr + cnt * elem, 0, elem);
        row(st, a, arr + cnt * elem);
        cnt++;
    }
    if (src != SQLITE_DONE) {
        rc = db_fail(c, src, what);
        goto out;
    }
    *out = arr;
    *n = cnt;
out:
    op_done(ss, c, st);
    return rc;
}

static void row_doc(sqlite3_stmt *st, struct arena *a, struct doc_rec *out)
{
    out->coll = col_str(a, st, 0);
    out->id = col_str(a, st, 1);
    out->body = col_str(a, st, 2);
    out->version = sqlite3_column_int64(st, 3);
    out->created_ms = sqlite3_column_int64(st, 4);
    out->updated_ms = sqlite3_column_int64(st, 5);
}

/* ---- jobs, listing ---------------------------------------------------------------------- */

static void row_job_v(sqlite3_stmt *st, struct arena *a, void *out)
{
    row_job(st, a, out);
}

static int sqlite_job_list(struct store *s, int state, size_t limit, struct arena *a,
                           struct job **out, size_t *n)
{
    if (limit == 0 || limit > LIST_MAX)
        return HR_INVAL;
    return read_list((struct sqlite_store *)s, SQL_JOB_LIST, "job_list", a, sizeof **out,
                     row_job_v, (void **)out, n, "ii", (int64_t)state, (int64_t)limit);
}

/* sqlite_job_expire_leases: an SQLite store has one herald process at a time, so at
 * start every lease is a dead process's. */
static int sqlite_job_expire_leases(struct store_txn *t, int64_t now_ms, int64_t *n)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = write_stmt(t, SQL_JOB_EXPIRE, &c, &st);
    if (rc < 0)
        goto out;
    if ((src = bindv(st, "i", now_ms)) != SQLITE_OK || (src = sqlite3_step(st)) != SQLITE_DONE) {
        rc = db_fail(c, src, "job_expire_leases");
        goto out;
    }
    *n = sqlite3_changes(c->db);
    if (*n > 0)
        t->jobs_changed = true;
out:
    stmt_done(st);
    return rc;
}

/* ---- documents --------------------------------------------------------------------------- */

/* doc_get_on: one document by (coll, id) through connection c. */
static int doc_get_on(struct conn *c, sqlite3_stmt *st, const char *coll, struct str id,
                      struct arena *a, struct doc_rec *out)
{
    int src = bindv(st, "cs", coll, id);
    if (src != SQLITE_OK)
        return db_fail(c, src, "doc_get");
    src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        return HR_NOTFOUND;
    if (src != SQLITE_ROW)
        return db_fail(c, src, "doc_get");
    row_doc(st, a, out);
    return HR_OK;
}

static int sqlite_doc_get(struct store *s, const char *coll, struct str id, struct arena *a,
                          struct doc_rec *out)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = store_check_doc_id(coll, id);
    if (rc < 0)
        return rc;
    rc = read_stmt(ss, SQL_DOC_GET, &c, &st);
    if (rc == HR_OK)
        rc = doc_get_on(c, st, coll, id, a, out);
    op_done(ss, c, st);
    return rc;
}

static int sqlite_doc_get_txn(struct store_txn *t, const char *coll, struct str id,
                              struct arena *a, struct doc_rec *out)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = store_check_doc_id(coll, id);
    if (rc < 0)
        return rc;
    rc = write_stmt(t, SQL_DOC_GET, &c, &st);
    if (rc == HR_OK)
        rc = doc_get_on(c, st, coll, id, a, out);
    stmt_done(st);
    return rc;
}

/* doc_write: prepare sql (SQL_DOC_PUT or SQL_DOC_CREATE) on t's writer, bind (coll, id,
 * body, now_ms) and step it once; *src is the step's result (the caller checks it and
 * finishes *st with stmt_done). */
static int doc_write(struct store_txn *t, const char *sql, const char *coll, struct str id,
                     struct str body, int64_t now_ms, struct conn **c, sqlite3_stmt **st,
                     int *src)
{
    int rc = store_check_doc_id(coll, id);
    *src = SQLITE_OK;
    if (rc < 0)
        return rc;
    if (body.len > STORE_PAYLOAD_MAX)
        return HR_TOOBIG;
    rc = write_stmt(t, sql, c, st);
    if (rc < 0)
        return rc;
    if ((*src = bindv(*st, "csbi", coll, id, body, now_ms)) == SQLITE_OK)
        *src = sqlite3_step(*st);
    return HR_OK;
}

static int sqlite_doc_put(struct store_txn *t, const char *coll, struct str id, struct str body,
                          int64_t now_ms, int64_t *out_version)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = doc_write(t, out_version ? SQL_DOC_PUT_VERSION : SQL_DOC_PUT, coll, id, body,
                            now_ms, &c, &st, &src);
    if (rc < 0)
        goto out;
    if (src != (out_version ? SQLITE_ROW : SQLITE_DONE)) {
        rc = db_fail(c, src, "doc_put");
        goto out;
    }
    if (out_version)
        *out_version = sqlite3_column_int64(st, 0);
out:
    stmt_done(st);
    return rc;
}

static int sqlite_doc_create(struct store_txn *t, const char *coll, struct str id,
                             struct str body, int64_t now_ms)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = doc_write(t, SQL_DOC_CREATE, coll, id, body, now_ms, &c, &st, &src);
    if (rc < 0)
        goto out;
    if (src != SQLITE_DONE)
        rc = db_fail(c, src, "doc_create");
    else
        rc = sqlite3_changes(c->db) == 1 ? HR_OK : HR_CONFLICT;
out:
    stmt_done(st);
    return rc;
}

static int str_cmp_bytes(const void *a, const void *b)
{
    const struct str *x = *(const struct str *const *)a, *y = *(const struct str *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* sqlite_doc_create_many: doc_create for each id in byte order (one writer: the order
 * only keeps the contract), every id checked first. */
static int sqlite_doc_create_many(struct store_txn *t, const char *coll, const struct str *ids,
                                  const int64_t *now_ms, size_t n, struct str body,
                                  size_t *created)
{
    const struct str **order = NULL;
    int rc = HR_OK;

    *created = 0;
    rc = store_check_create_many(coll, ids, n, body);
    if (rc < 0 || n == 0)
        goto out;
    order = xcalloc(n, sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = &ids[i];
    qsort(order, n, sizeof *order, str_cmp_bytes);
    for (size_t k = 0; k < n && rc == HR_OK; k++) {
        size_t i = (size_t)(order[k] - ids);
        rc = sqlite_doc_create(t, coll, ids[i], body, now_ms[i]);
        if (rc == HR_OK)
            ++*created;
        else if (rc == HR_CONFLICT)
            rc = HR_OK;
    }
out:
    free(order);
    return rc;
}

static int sqlite_doc_delete(struct store_txn *t, const char *coll, struct str id)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = store_check_doc_id(coll, id);
    if (rc < 0)
        return rc;
    rc = write_stmt(t, SQL_DOC_DELETE, &c, &st);
    if (rc < 0)
        goto out;
    if ((src = bindv(st, "cs", coll, id)) != SQLITE_OK ||
        (src = sqlite3_step(st)) != SQLITE_DONE) {
        rc = db_fail(c, src, "doc_delete");
        goto out;
    }
    if (sqlite3_changes(c->db) == 0)
        rc = HR_NOTFOUND;
out:
    stmt_done(st);
    return rc;
}

static void row_doc_v(sqlite3_stmt *st, struct arena *a, void *out)
{
    row_doc(st, a, out);
}

static int sqlite_doc_list(struct store *s, const char *coll, struct str prefix, struct str after,
                           size_t limit, struct arena *a, struct doc_rec **out, size_t *n)
{
    struct str upper = STR_NULL;
    size_t k = prefix.len;
    *out = NULL;
    *n = 0;
    if (strlen(coll) == 0 || limit == 0 || limit > LIST_MAX || prefix.len > STORE_DOC_ID_MAX ||
        after.len > STORE_DOC_ID_MAX)
        return HR_INVAL;
    /* upper bound: the prefix with its last byte below 0xff incremented */
    while (k > 0 && (unsigned char)prefix.p[k - 1] == 0xff)
        k--;
    if (k > 0) {
        char *u = arena_strndup(a, prefix.p, k);
        u[k - 1] = (char)((unsigned char)u[k - 1] + 1);
        upper = (struct str){u, k};
    }
    return read_list((struct sqlite_store *)s, SQL_DOC_LIST, "doc_list", a, sizeof **out,
                     row_doc_v, (void **)out, n, "cssis", coll, after, prefix, (int64_t)limit,
                     upper);
}

/* ---- events ------------------------------------------------------------------------------- */

/* sqlite_event_insert: the writer serialises every transaction, so "look for a duplicate
 * in the window, then insert" cannot race with another insert. */
static int sqlite_event_insert(struct store_txn *t, const struct event_rec *e, int64_t window_ms,
                               int64_t *out_id)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc;
    if (e->message_id.len == 0 || e->message_id.len > 1024 || e->body.len > STORE_PAYLOAD_MAX ||
        e->type.len == 0 || e->type.len > 32 || e->user_id.len > STORE_DOC_ID_MAX)
        return HR_INVAL;
    rc = write_stmt(t, SQL_EVENT_DUP, &c, &st);
    if (rc < 0)
        goto out;
    if ((src = bindv(st, "isi", e->source_id, e->message_id, e->received_ms - window_ms)) !=
        SQLITE_OK) {
        rc = db_fail(c, src, "event_dup");
        goto out;
    }
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *out_id = sqlite3_column_int64(st, 0);
        rc = HR_CONFLICT;
        goto out;
    }
    if (src != SQLITE_DONE) {
        rc = db_fail(c, src, "event_dup");
        goto out;
    }
    stmt_done(st);
    st = NULL;
    rc = conn_stmt(c, SQL_EVENT_INSERT, &st);
    if (rc < 0)
        goto out;
    if ((src = bindv(st, "isssbi", e->source_id, e->message_id, e->type, e->user_id, e->body,
                     e->received_ms)) != SQLITE_OK ||
        (src = sqlite3_step(st)) != SQLITE_DONE) {
        rc = db_fail(c, src, "event_insert");
        goto out;
    }
    *out_id = sqlite3_last_insert_rowid(c->db);
out:
    stmt_done(st);
    return rc;
}

static int sqlite_event_get(struct store *s, int64_t id, struct arena *a, struct event_rec *out)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = read_stmt(ss, SQL_EVENT_GET, &c, &st);
    if (rc < 0)
        goto out;
    if ((src = bindv(st, "i", id)) != SQLITE_OK) {
        rc = db_fail(c, src, "event_get");
        goto out;
    }
    src = sqlite3_step(st);
    if (src == SQLITE_DONE) {
        rc = HR_NOTFOUND;
        goto out;
    }
    if (src != SQLITE_ROW) {
        rc = db_fail(c, src, "event_get");
        goto out;
    }
    out->id = sqlite3_column_int64(st, 0);
    out->source_id = sqlite3_column_int64(st, 1);
    out->message_id = col_str(a, st, 2);
    out->type = col_str(a, st, 3);
    out->user_id = col_str(a, st, 4);
    out->body = col_str(a, st, 5);
    out->received_ms = sqlite3_column_int64(st, 6);
out:
    op_done(ss, c, st);
    return rc;
}

/* ---- event catalog -------------------------------------------------------------------------- */

static void row_catalog(sqlite3_stmt *st, struct arena *a, struct catalog_rec *out)
{
    out->name = col_str(a, st, 0);
    out->count = sqlite3_column_int64(st, 1);
    out->first_seen_ms = sqlite3_column_int64(st, 2);
    out->last_seen_ms = sqlite3_column_int64(st, 3);
    out->sample = col_str(a, st, 4);
}

static int sqlite_catalog_add(struct store_txn *t, struct str name, struct str sample,
                              int64_t first_ms, int64_t last_ms, int64_t n)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc;
    if (name.len == 0 || name.len > CATALOG_NAME_MAX || sample.len > STORE_PAYLOAD_MAX || n < 1)
        return HR_INVAL;
    rc = write_stmt(t, SQL_CATALOG_TOUCH, &c, &st);
    if (rc < 0)
        goto out;
    if ((src = bindv(st, "sibii", name, first_ms, sample, n, last_ms)) != SQLITE_OK ||
        (src = sqlite3_step(st)) != SQLITE_DONE)
        rc = db_fail(c, src, "catalog_touch");
out:
    stmt_done(st);
    return rc;
}

static int sqlite_catalog_get(struct store *s, struct str name, struct arena *a,
                              struct catalog_rec *out)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc;
    if (name.len == 0 || name.len > CATALOG_NAME_MAX)
        return HR_NOTFOUND;
    rc = read_stmt(ss, SQL_CATALOG_GET, &c, &st);
    if (rc < 0)
        goto out;
    if ((src = bindv(st, "s", name)) != SQLITE_OK) {
        rc = db_fail(c, src, "catalog_get");
        goto out;
    }
    src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        rc = HR_NOTFOUND;
    else if (src != SQLITE_ROW)
        rc = db_fail(c, src, "catalog_get");
    else
        row_catalog(st, a, out);
out:
    op_done(ss, c, st);
    return rc;
}

static void row_catalog_v(sqlite3_stmt *st, struct arena *a, void *out)
{
    row_catalog(st, a, out);
}

static int sqlite_catalog_list(struct store *s, struct str search, struct str after, size_t limit,
                               struct arena *a, struct catalog_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (limit == 0 || limit > LIST_MAX || search.len > CATALOG_NAME_MAX ||
        after.len > CATALOG_NAME_MAX)
        return HR_INVAL;
    return read_list((struct sqlite_store *)s, SQL_CATALOG_LIST, "catalog_list", a,
                     sizeof **out, row_catalog_v, (void **)out, n, "ssi", after, search,
                     (int64_t)limit);
}

/* ---- messages ------------------------------------------------------------------------------ */

#define MSG_TEXT_MAX 4096 /* short fields (ids, status, reason, error...) */

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

static int bind_msg(sqlite3_stmt *st, const struct message_rec *m)
{
    struct str tags = m->tags.len ? m->tags : STR_LIT("[]");
    struct str spec = m->spec.len ? m->spec : STR_LIT("{}");
    struct str state = m->state.len ? m->state : STR_LIT("{}");
    return bindv(st, "sssssssssssbbiiiii", m->id, m->request_id, m->status, m->recipient,
                 m->notification, m->event, m->trace_id, m->run_id, tags, m->reason, m->error,
                 spec, state, m->enqueued_ms, m->sent_ms, m->delivered_ms, m->canceled_ms,
                 m->updated_ms);
}

static void row_msg(sqlite3_stmt *st, struct arena *a, struct message_rec *m)
{
    m->id = col_str(a, st, 0);
    m->request_id = col_str(a, st, 1);
    m->status = col_str(a, st, 2);
    m->recipient = col_str(a, st, 3);
    m->notification = col_str(a, st, 4);
    m->event = col_str(a, st, 5);
    m->trace_id = col_str(a, st, 6);
    m->run_id = col_str(a, st, 7);
    m->tags = col_str(a, st, 8);
    m->reason = col_str(a, st, 9);
    m->error = col_str(a, st, 10);
    m->spec = col_str(a, st, 11);
    m->state = col_str(a, st, 12);
    m->enqueued_ms = sqlite3_column_int64(st, 13);
    m->sent_ms = sqlite3_column_int64(st, 14);
    m->delivered_ms = sqlite3_column_int64(st, 15);
    m->canceled_ms = sqlite3_column_int64(st, 16);
    m->updated_ms = sqlite3_column_int64(st, 17);
}

static int msg_write(struct store_txn *t, const char *sql, const char *what,
                     const struct message_rec *m)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = check_msg(m);
    if (rc < 0)
        return rc;
    rc = write_stmt(t, sql, &c, &st);
    if (rc < 0)
        goto out;
    if ((src = bind_msg(st, m)) != SQLITE_OK || (src = sqlite3_step(st)) != SQLITE_DONE) {
        rc = db_fail(c, src, what);
        goto out;
    }
    if (sqlite3_changes(c->db) == 0)
        rc = HR_NOTFOUND;
out:
    stmt_done(st);
    return rc;
}

static int sqlite_message_insert(struct store_txn *t, const struct message_rec *m)
{
    return msg_write(t, SQL_MSG_INSERT, "message_insert", m);
}

static int sqlite_message_update(struct store_txn *t, const struct message_rec *m)
{
    int rc = msg_write(t, SQL_MSG_UPDATE_KEPT, "message_update", m);
    if (rc == HR_NOTFOUND) /* gone, or an indexed column changes */
        rc = msg_write(t, SQL_MSG_UPDATE, "message_update", m);
    return rc;
}

static int msg_get_on(struct conn *c, sqlite3_stmt *st, struct str id, struct arena *a,
                      struct message_rec *out)
{
    int src = bindv(st, "s", id);
    if (src != SQLITE_OK)
        return db_fail(c, src, "message_get");
    src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        return HR_NOTFOUND;
    if (src != SQLITE_ROW)
        return db_fail(c, src, "message_get");
    row_msg(st, a, out);
    return HR_OK;
}

static int sqlite_message_get(struct store *s, struct str id, struct arena *a,
                              struct message_rec *out)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc;
    if (id.len == 0 || id.len > MSG_TEXT_MAX)
        return HR_NOTFOUND;
    rc = read_stmt(ss, SQL_MSG_GET, &c, &st);
    if (rc == HR_OK)
        rc = msg_get_on(c, st, id, a, out);
    op_done(ss, c, st);
    return rc;
}

static int sqlite_message_get_txn(struct store_txn *t, struct str id, struct arena *a,
                                  struct message_rec *out)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc;
    if (id.len == 0 || id.len > MSG_TEXT_MAX)
        return HR_NOTFOUND;
    rc = write_stmt(t, SQL_MSG_GET, &c, &st);
    if (rc == HR_OK)
        rc = msg_get_on(c, st, id, a, out);
    stmt_done(st);
    return rc;
}

static void row_msg_v(sqlite3_stmt *st, struct arena *a, void *out)
{
    row_msg(st, a, out);
}

static int sqlite_message_list(struct store *s, const struct message_filter *f, struct arena *a,
                               struct message_rec **out, size_t *n)
{
    bool several = memchr(f->status.p ? f->status.p : "", ',', f->status.len) != NULL;
    struct str one = several ? STR_NULL : f->status, any = several ? f->status : STR_NULL;
    const char *sql = SQL_MSG_LIST;
    *out = NULL;
    *n = 0;
    if (f->limit == 0 || f->limit > 1000)
        return HR_INVAL;
    /* the most selective indexed filter leads (the id, messages_recipient, _run, _status) */
    if (f->id.len > 0)
        sql = SQL_MSG_LIST_ID;
    else if (f->recipient.len > 0)
        sql = SQL_MSG_LIST_RECIPIENT;
    else if (f->run_id.len > 0)
        sql = SQL_MSG_LIST_RUN;
    else if (one.len > 0)
        sql = SQL_MSG_LIST_STATUS;
    return read_list((struct sqlite_store *)s, sql, "message_list", a, sizeof **out,
                     row_msg_v, (void **)out, n, "ssssssssissi", f->recipient, one,
                     f->notification, f->event, f->tag, f->trace_id, f->run_id, f->before_id,
                     (int64_t)f->limit, any, f->id, f->enqueued_after_ms);
}

static int sqlite_history_append(struct store_txn *t, struct str message_id, int64_t ts,
                                 struct str type, struct str body)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc;
    if (message_id.len == 0 || message_id.len > MSG_TEXT_MAX || type.len == 0 || type.len > 64 ||
        body.len > STORE_PAYLOAD_MAX)
        return HR_INVAL;
    rc = write_stmt(t, SQL_HIST_APPEND, &c, &st);
    if (rc < 0)
        goto out;
    if ((src = bindv(st, "sisb", message_id, ts, type, body)) != SQLITE_OK ||
        (src = sqlite3_step(st)) != SQLITE_DONE)
        rc = db_fail(c, src, "history_append");
out:
    stmt_done(st);
    return rc;
}

static void row_history_v(sqlite3_stmt *st, struct arena *a, void *out)
{
    struct history_rec *h = out;
    h->seq = sqlite3_column_int64(st, 0);
    h->ts = sqlite3_column_int64(st, 1);
    h->type = col_str(a, st, 2);
    h->body = col_str(a, st, 3);
}

static int sqlite_history_list(struct store *s, struct str message_id, struct arena *a,
                               struct history_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (message_id.len > MSG_TEXT_MAX)
        return HR_INVAL;
    return read_list((struct sqlite_store *)s, SQL_HIST_LIST, "history_list", a, sizeof **out,
                     row_history_v, (void **)out, n, "s", message_id);
}

/* ---- the table ------------------------------------------------------------------------------- */

/* ---- bulk copy ------------------------------------------------------------------------- */

#define COPY_LIMIT_MAX 10000
#define COPY_SQL_MAX 1024

/* copy_rows_on: read one batch of table ct on c into *out (arena a). */
static int copy_rows_on(struct conn *c, const struct copy_table *ct, int64_t after_seq,
                        size_t limit, struct arena *a, struct copy_row **out, size_t *n)
{
    char sql[COPY_SQL_MAX];
    sqlite3_stmt *st = NULL;
    size_t ncols = strlen(ct->types), got = 0;
    int src, rc = HR_OK;
    if (ct->seq_col)
        snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE %s > ?1%s%s ORDER BY %s LIMIT ?2",
                 ct->sel, ct->name, ct->seq_col, ct->where ? " AND " : "",
                 ct->where ? ct->where : "", ct->seq_col);
    else
        snprintf(sql, sizeof sql, "SELECT %s FROM %s%s%s ORDER BY %s LIMIT ?2 OFFSET ?1",
                 ct->sel, ct->name, ct->where ? " WHERE " : "", ct->where ? ct->where : "",
                 ct->order);
    src = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = db_fail(c, src, "copy_rows");
        goto out;
    }
    sqlite3_bind_int64(st, 1, after_seq);
    sqlite3_bind_int64(st, 2, (int64_t)limit);
    *out = arena_alloc(a, limit * sizeof **out);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct copy_row *r = &(*out)[got];
        memset(r, 0, sizeof *r);
        r->ncols = ncols;
        for (size_t k = 0; k < ncols; k++) {
            char ty = ct->types[k];
            if (sqlite3_column_type(st, (int)k) == SQLITE_NULL)
                r->v[k].type = COPY_NULL;
            else if (ty == 'i') {
                r->v[k].type = COPY_INT;
                r->v[k].i = sqlite3_column_int64(st, (int)k);
            } else {
                r->v[k].type = ty == 'b' ? COPY_BLOB : COPY_TEXT;
                r->v[k].s = col_str(a, st, (int)k);
            }
        }
        r->seq = ct->seq_col ? r->v[0].i : after_seq + (int64_t)got + 1;
        got++;
    }
    if (src != SQLITE_DONE)
        rc = db_fail(c, src, "copy_rows");
out:
    *n = rc < 0 ? 0 : got;
    sqlite3_finalize(st);
    return rc;
}

static int sqlite_copy_rows(struct store *s, const char *table, int64_t after_seq, size_t limit,
                            struct arena *a, struct copy_row **out, size_t *n)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    const struct copy_table *ct = store_copy_table(table);
    struct conn *c = NULL;
    int rc;
    *out = NULL;
    *n = 0;
    if (!ct || limit == 0 || limit > COPY_LIMIT_MAX || after_seq < 0)
        return HR_INVAL;
    rc = reader_get(ss, &c);
    if (rc < 0)
        return rc;
    rc = copy_rows_on(c, ct, after_seq, limit, a, out, n);
    reader_put(ss, c);
    return rc;
}

static int sqlite_copy_insert(struct store_txn *t, const char *table, const struct copy_row *rows,
                              size_t n)
{
    const struct copy_table *ct = store_copy_table(table);
    char sql[COPY_SQL_MAX], ph[4 * COPY_COLS_MAX + 1];
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    size_t ncols = ct ? strlen(ct->types) : 0, at = 0;
    int src, rc = HR_OK;
    if (!ct) {
        rc = HR_INVAL;
        goto out;
    }
    rc = txn_conn(t, &c);
    if (rc < 0)
        goto out;
    for (size_t k = 0; k < ncols; k++)
        at += (size_t)snprintf(ph + at, sizeof ph - at, "%s?", k ? ", " : "");
    snprintf(sql, sizeof sql, "INSERT INTO %s(%s) VALUES(%s) ON CONFLICT DO NOTHING", ct->name,
             ct->cols, ph);
    src = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = db_fail(c, src, "copy_insert");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (rows[i].ncols != ncols) {
            rc = HR_INVAL;
            goto out;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        for (size_t k = 0; k < ncols; k++) {
            const struct copy_val *v = &rows[i].v[k];
            int idx = (int)k + 1;
            if (v->type == COPY_INT)
                src = sqlite3_bind_int64(st, idx, v->i);
            else if (v->type == COPY_TEXT)
                src = bind_text(st, idx, v->s.p, v->s.len);
            else if (v->type == COPY_BLOB)
                src = bind_blob(st, idx, v->s.p, v->s.len);
            else
                src = sqlite3_bind_null(st, idx);
            if (src != SQLITE_OK) {
                rc = db_fail(c, src, "copy_insert");
                goto out;
            }
        }
        if ((src = sqlite3_step(st)) != SQLITE_DONE) {
            rc = db_fail(c, src, "copy_insert");
            goto out;
        }
    }
out:
    sqlite3_finalize(st);
    return rc;
}

static int sqlite_copy_count(struct store *s, const char *table, int64_t *n)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    const struct copy_table *ct = store_copy_table(table);
    char sql[COPY_SQL_MAX];
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc = HR_OK;
    *n = 0;
    if (!ct)
        return HR_INVAL;
    rc = reader_get(ss, &c);
    if (rc < 0)
        goto out;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s%s%s", ct->name,
             ct->where ? " WHERE " : "", ct->where ? ct->where : "");
    src = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else
        rc = db_fail(c, src, "copy_count");
out:
    sqlite3_finalize(st);
    reader_put(ss, c);
    return rc;
}

/* ---- lists -------------------------------------------------------------------------------- */

#define LIST_COLS "id, name, preferences, created_ms, updated_ms, deleted_ms"
#define LIST_PAGE_MAX 1000
static const char SQL_LIST_PUT[] =
    "INSERT INTO lists(id, name, preferences, created_ms, updated_ms) VALUES(?1, ?2, ?3, ?4, ?4) "
    "ON CONFLICT(id) DO UPDATE SET name = excluded.name, preferences = excluded.preferences, "
    "updated_ms = excluded.updated_ms";
static const char SQL_LIST_ENSURE[] =
    "INSERT INTO lists(id, name, preferences, created_ms, updated_ms) VALUES(?1, ?1, '', ?2, ?2) "
    "ON CONFLICT(id) DO NOTHING";
static const char SQL_LIST_GET[] = "SELECT " LIST_COLS " FROM lists WHERE id = ?1";
/* ?2 is the pattern's literal prefix: the primary key bounds the walk */
static const char SQL_LIST_LIST[] =
    "SELECT " LIST_COLS " FROM lists WHERE deleted_ms = 0 AND id > ?1 "
    "AND substr(id, 1, length(?2)) = ?2 AND (?3 = '' OR herald_list_match(?3, id)) "
    "ORDER BY id LIMIT ?4";
static const char SQL_LIST_SET_DELETED[] =
    "UPDATE lists SET deleted_ms = ?2, updated_ms = ?3 WHERE id = ?1";
static const char SQL_SUB_PUT[] =
    "INSERT INTO list_subs(list_id, user_id, preferences, created_ms) "
    "SELECT ?1, ?2, ?3, ?4 WHERE EXISTS(SELECT 1 FROM lists WHERE id = ?1) "
    "ON CONFLICT(list_id, user_id) DO UPDATE SET preferences = excluded.preferences";
static const char SQL_SUB_DELETE_ONE[] = "DELETE FROM list_subs WHERE list_id = ?1 AND user_id = ?2";
/* each names ?1 and ?2, so one bind format serves the three */
static const char SQL_SUB_DELETE_LIST[] = "DELETE FROM list_subs WHERE list_id = ?1 AND ?2 = ''";
static const char SQL_SUB_DELETE_USER[] = "DELETE FROM list_subs WHERE user_id = ?2 AND ?1 = ''";
#define SUB_COLS                                                                           \
    "s.user_id, s.preferences, s.created_ms, l.id, l.name, l.preferences, l.created_ms, " \
    "l.updated_ms, l.deleted_ms"
static const char SQL_SUB_BY_LIST[] =
    "SELECT " SUB_COLS " FROM list_subs s JOIN lists l ON l.id = s.list_id "
    "WHERE s.list_id = ?1 AND s.user_id > ?2 ORDER BY s.user_id LIMIT ?3";
static const char SQL_SUB_BY_USER[] =
    "SELECT " SUB_COLS " FROM list_subs s JOIN lists l ON l.id = s.list_id "
    "WHERE s.user_id = ?1 AND s.list_id > ?2 AND l.deleted_ms = 0 ORDER BY s.list_id LIMIT ?3";
static const char SQL_MEMBERS_ONE[] =
    "SELECT s.user_id FROM list_subs s JOIN lists l ON l.id = s.list_id "
    "WHERE s.list_id = ?1 AND l.deleted_ms = 0 AND s.user_id > ?2 ORDER BY s.user_id LIMIT ?3";
static const char SQL_MEMBERS_PATTERN[] =
    "SELECT DISTINCT s.user_id FROM list_subs s JOIN lists l ON l.id = s.list_id "
    "WHERE l.deleted_ms = 0 AND substr(l.id, 1, length(?1)) = ?1 "
    "AND herald_list_match(?2, l.id) AND s.user_id > ?3 ORDER BY s.user_id LIMIT ?4";

/* list_match_fn: SQL herald_list_match(pattern, id), store_list_match for the queries. */
static void list_match_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct str pat, id;
    (void)argc;
    pat = (struct str){(const char *)sqlite3_value_text(argv[0]),
                       (size_t)sqlite3_value_bytes(argv[0])};
    id = (struct str){(const char *)sqlite3_value_text(argv[1]),
                      (size_t)sqlite3_value_bytes(argv[1])};
    sqlite3_result_int(ctx, pat.p && id.p && store_list_match(pat, id));
}

static int list_funcs(sqlite3 *db)
{
    return sqlite3_create_function(db, "herald_list_match", 2,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                   list_match_fn, NULL, NULL);
}

static void row_list(sqlite3_stmt *st, int col, struct arena *a, struct list_rec *out)
{
    out->id = col_str(a, st, col);
    out->name = col_str(a, st, col + 1);
    out->preferences = col_str(a, st, col + 2);
    out->created_ms = sqlite3_column_int64(st, col + 3);
    out->updated_ms = sqlite3_column_int64(st, col + 4);
    out->deleted_ms = sqlite3_column_int64(st, col + 5);
}

static void row_list_v(sqlite3_stmt *st, struct arena *a, void *out)
{
    row_list(st, 0, a, out);
}

static void row_sub_v(sqlite3_stmt *st, struct arena *a, void *vout)
{
    struct list_sub_rec *out = vout;
    out->user_id = col_str(a, st, 0);
    out->preferences = col_str(a, st, 1);
    out->created_ms = sqlite3_column_int64(st, 2);
    row_list(st, 3, a, &out->list);
}

static void row_member_v(sqlite3_stmt *st, struct arena *a, void *out)
{
    *(struct str *)out = col_str(a, st, 0);
}

/* list_exec: run the write statement sql on t with fmt's binds (as bindv); *changes
 * (may be NULL) gets the rows it changed. */
static int list_exec(struct store_txn *t, const char *sql, const char *what, int64_t *changes,
                     const char *fmt, ...)
{
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    va_list ap;
    int src, rc = write_stmt(t, sql, &c, &st);
    if (rc < 0)
        goto out;
    va_start(ap, fmt);
    src = vbindv(st, fmt, ap);
    va_end(ap);
    if (src != SQLITE_OK || (src = sqlite3_step(st)) != SQLITE_DONE) {
        rc = db_fail(c, src, what);
        goto out;
    }
    if (changes)
        *changes = sqlite3_changes(c->db);
out:
    stmt_done(st);
    return rc;
}

static int sqlite_list_put(struct store_txn *t, struct str id, struct str name, struct str prefs,
                           int64_t now_ms)
{
    if (!store_list_id_valid(id) || name.len > LIST_ID_MAX * 4)
        return HR_INVAL;
    if (prefs.len > LIST_PREFS_MAX)
        return HR_TOOBIG;
    return list_exec(t, SQL_LIST_PUT, "list_put", NULL, "sssi", id, name, prefs, now_ms);
}

static int sqlite_list_ensure(struct store_txn *t, struct str id, int64_t now_ms)
{
    if (!store_list_id_valid(id))
        return HR_INVAL;
    return list_exec(t, SQL_LIST_ENSURE, "list_ensure", NULL, "si", id, now_ms);
}

/* list_get_on: one list by id, read inside t when t is set, else on a reader of s. */
static int list_get_on(struct store *s, struct store_txn *t, struct str id, struct arena *a,
                       struct list_rec *out)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL, *reader = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc;
    if (!store_list_id_valid(id))
        return HR_INVAL;
    rc = t ? write_stmt(t, SQL_LIST_GET, &c, &st) : read_stmt(ss, SQL_LIST_GET, &c, &st);
    if (!t)
        reader = c;
    if (rc < 0)
        goto out;
    if ((src = bindv(st, "s", id)) != SQLITE_OK ||
        ((src = sqlite3_step(st)) != SQLITE_ROW && src != SQLITE_DONE)) {
        rc = db_fail(c, src, "list_get");
        goto out;
    }
    if (src == SQLITE_DONE)
        rc = HR_NOTFOUND;
    else
        row_list(st, 0, a, out);
out:
    if (reader)
        op_done(ss, reader, st);
    else
        stmt_done(st);
    return rc;
}

static int sqlite_list_get(struct store *s, struct str id, struct arena *a, struct list_rec *out)
{
    return list_get_on(s, NULL, id, a, out);
}

static int sqlite_list_get_txn(struct store_txn *t, struct str id, struct arena *a,
                               struct list_rec *out)
{
    return list_get_on(NULL, t, id, a, out);
}

static int sqlite_list_list(struct store *s, struct str pattern, struct str after, size_t limit,
                            struct arena *a, struct list_rec **out, size_t *n)
{
    struct str prefix = {pattern.p, store_list_pattern_prefix(pattern)};
    *out = NULL;
    *n = 0;
    if ((pattern.len && !store_list_pattern_valid(pattern)) || after.len > LIST_ID_MAX ||
        limit == 0 || limit > LIST_PAGE_MAX)
        return HR_INVAL;
    return read_list((struct sqlite_store *)s, SQL_LIST_LIST, "list_list", a, sizeof **out,
                     row_list_v, (void **)out, n, "sssi", after, prefix, pattern,
                     (int64_t)limit);
}

static int sqlite_list_set_deleted(struct store_txn *t, struct str id, int64_t deleted_ms,
                                   int64_t now_ms)
{
    int64_t changed = 0;
    int rc;
    if (!store_list_id_valid(id))
        return HR_INVAL;
    rc = list_exec(t, SQL_LIST_SET_DELETED, "list_set_deleted", &changed, "sii", id, deleted_ms,
                   now_ms);
    return rc == HR_OK && changed == 0 ? HR_NOTFOUND : rc;
}

static int sqlite_list_sub_put(struct store_txn *t, struct str list_id, struct str user_id,
                               struct str prefs, int64_t now_ms)
{
    int64_t changed = 0;
    int rc;
    if (!store_list_id_valid(list_id) || user_id.len == 0 || user_id.len > LIST_USER_ID_MAX)
        return HR_INVAL;
    if (prefs.len > LIST_PREFS_MAX)
        return HR_TOOBIG;
    rc = list_exec(t, SQL_SUB_PUT, "list_sub_put", &changed, "sssi", list_id, user_id, prefs,
                   now_ms);
    return rc == HR_OK && changed == 0 ? HR_NOTFOUND : rc;
}

static int sqlite_list_sub_delete(struct store_txn *t, struct str list_id, struct str user_id,
                                  int64_t *n_deleted)
{
    const char *sql = list_id.len ? (user_id.len ? SQL_SUB_DELETE_ONE : SQL_SUB_DELETE_LIST)
                                  : SQL_SUB_DELETE_USER;
    int64_t changed = 0;
    int rc;
    if ((list_id.len == 0 && user_id.len == 0) || list_id.len > LIST_ID_MAX ||
        user_id.len > LIST_USER_ID_MAX)
        return HR_INVAL;
    rc = list_exec(t, sql, "list_sub_delete", &changed, "ss", list_id, user_id);
    if (n_deleted)
        *n_deleted = changed;
    return rc == HR_OK && changed == 0 && list_id.len && user_id.len ? HR_NOTFOUND : rc;
}

static int sqlite_list_sub_list(struct store *s, struct str list_id, struct str user_id,
                                struct str after, size_t limit, struct arena *a,
                                struct list_sub_rec **out, size_t *n)
{
    bool by_list = list_id.len > 0;
    *out = NULL;
    *n = 0;
    if (by_list == (user_id.len > 0) || list_id.len > LIST_ID_MAX ||
        user_id.len > LIST_USER_ID_MAX || after.len > LIST_ID_MAX || limit == 0 ||
        limit > LIST_PAGE_MAX)
        return HR_INVAL;
    return read_list((struct sqlite_store *)s, by_list ? SQL_SUB_BY_LIST : SQL_SUB_BY_USER,
                     "list_sub_list", a, sizeof **out, row_sub_v, (void **)out, n, "ssi",
                     by_list ? list_id : user_id, after, (int64_t)limit);
}

static int sqlite_list_members(struct store *s, struct str target, struct str after,
                               size_t limit, struct arena *a, struct str **out, size_t *n)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    *out = NULL;
    *n = 0;
    if (!store_list_pattern_valid(target) || after.len > LIST_USER_ID_MAX || limit == 0 ||
        limit > LIST_PAGE_MAX)
        return HR_INVAL;
    if (!store_list_is_pattern(target))
        return read_list(ss, SQL_MEMBERS_ONE, "list_members", a, sizeof **out, row_member_v,
                         (void **)out, n, "ssi", target, after, (int64_t)limit);
    return read_list(ss, SQL_MEMBERS_PATTERN, "list_members", a, sizeof **out, row_member_v,
                     (void **)out, n, "sssi",
                     (struct str){target.p, store_list_pattern_prefix(target)}, target, after,
                     (int64_t)limit);
}

static const char SQL_SUB_COUNT[] = "SELECT count(*) FROM list_subs WHERE list_id = ?1";

static int sqlite_list_sub_count(struct store *s, struct str list_id, int64_t *n)
{
    struct sqlite_store *ss = (struct sqlite_store *)s;
    struct conn *c = NULL;
    sqlite3_stmt *st = NULL;
    int src, rc;
    *n = 0;
    if (!store_list_id_valid(list_id))
        return HR_INVAL;
    rc = read_stmt(ss, SQL_SUB_COUNT, &c, &st);
    if (rc < 0)
        goto out;
    if ((src = bindv(st, "s", list_id)) != SQLITE_OK || (src = sqlite3_step(st)) != SQLITE_ROW) {
        rc = db_fail(c, src, "list_sub_count");
        goto out;
    }
    *n = sqlite3_column_int64(st, 0);
out:
    op_done(ss, c, st);
    return rc;
}

/* ---- lists kept in step with Segment groups ------------------------------------------- */

static const char SQL_LIST_CREATE[] =
    "INSERT INTO lists(id, name, preferences, created_ms, updated_ms) VALUES(?1, ?2, '', ?3, ?3) "
    "ON CONFLICT(id) DO NOTHING";
static const char SQL_SUB_ADD[] =
    "INSERT INTO list_subs(list_id, user_id, preferences, created_ms) "
    "SELECT ?1, ?2, '', ?3 WHERE EXISTS(SELECT 1 FROM lists WHERE id = ?1 AND deleted_ms = 0) "
    "ON CONFLICT(list_id, user_id) DO NOTHING";

static int sqlite_list_create(struct store_txn *t, struct str id, struct str name, int64_t now_ms)
{
    int64_t changed = 0;
    int rc;
    if (!store_list_id_valid(id) || name.len == 0 || name.len > LIST_ID_MAX * 4)
        return HR_INVAL;
    rc = list_exec(t, SQL_LIST_CREATE, "list_create", &changed, "ssi", id, name, now_ms);
    return rc == HR_OK && changed == 0 ? HR_CONFLICT : rc;
}

static int sqlite_list_sub_add(struct store_txn *t, struct str list_id, struct str user_id,
                               int64_t now_ms)
{
    int64_t changed = 0;
    int rc;
    if (!store_list_id_valid(list_id) || user_id.len == 0 || user_id.len > LIST_USER_ID_MAX)
        return HR_INVAL;
    rc = list_exec(t, SQL_SUB_ADD, "list_sub_add", &changed, "ssi", list_id, user_id, now_ms);
    return rc == HR_OK && changed == 0 ? HR_CONFLICT : rc;
}

/* ---- provider references (delivery receipts) ------------------------------------------- */

static const char SQL_MSGREF_PUT[] =
    "INSERT INTO msgrefs(provider, reference, message_id, channel, created_ms) "
    "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(provider, reference) DO UPDATE SET "
    "message_id = excluded.message_id, channel = excluded.channel, "
    "created_ms = excluded.created_ms";
static const char SQL_MSGREF_GET[] =
    "SELECT provider, reference, message_id, channel, created_ms FROM msgrefs "
    "WHERE provider = ?1 AND reference = ?2";

static void row_msgref_v(sqlite3_stmt *st, struct arena *a, void *vout)
{
    struct msgref_rec *out = vout;
    out->provider = col_str(a, st, 0);
    out->reference = col_str(a, st, 1);
    out->message_id = col_str(a, st, 2);
    out->channel = col_str(a, st, 3);
    out->created_ms = sqlite3_column_int64(st, 4);
}

static int sqlite_msgref_put(struct store_txn *t, const struct msgref_rec *r)
{
    if (!store_msgref_key_ok(r->provider, r->reference) || r->message_id.len == 0)
        return HR_INVAL;
    return list_exec(t, SQL_MSGREF_PUT, "msgref_put", NULL, "ssssi", r->provider, r->reference,
                     r->message_id, r->channel, r->created_ms);
}

static int sqlite_msgref_get(struct store *s, struct str provider, struct str reference,
                             struct arena *a, struct msgref_rec *out)
{
    struct msgref_rec *rows = NULL;
    size_t n = 0;
    int rc;
    if (!store_msgref_key_ok(provider, reference))
        return HR_INVAL;
    rc = read_list((struct sqlite_store *)s, SQL_MSGREF_GET, "msgref_get", a, sizeof *rows,
                   row_msgref_v, (void **)&rows, &n, "ss", provider, reference);
    if (rc == HR_OK && n == 0)
        rc = HR_NOTFOUND;
    if (rc == HR_OK)
        *out = rows[0];
    return rc;
}

const struct store_ops sqlite_store_ops = {
    .version = 1,
    .scheme = "sqlite",
    .impl_size = sizeof(struct sqlite_store),
    .exclusive = true,
    .open = sqlite_open,
    .close = sqlite_close,
    .write = sqlite_write,
    .ping = sqlite_ping,
    .stats = sqlite_stats,
    .txn_sub = sqlite_txn_sub,
    .meta_set = sqlite_meta_set,
    .meta_get = sqlite_meta_get,
    .meta_add = sqlite_meta_add,
    .key_insert = sqlite_key_insert,
    .key_find_by_hash = sqlite_key_find_by_hash,
    .key_list = sqlite_key_list,
    .key_revoke = sqlite_key_revoke,
    .key_count = sqlite_key_count,
    .job_insert = sqlite_job_insert,
    .job_lease = sqlite_job_lease,
    .job_ack = sqlite_job_ack,
    .job_retry = sqlite_job_retry,
    .job_dead = sqlite_job_dead,
    .job_release = sqlite_job_release,
    .job_defer = sqlite_job_defer,
    .job_extend = sqlite_job_extend,
    .job_get = sqlite_job_get,
    .job_counts = sqlite_job_counts,
    .job_next_run_at = sqlite_job_next_run_at,
    .job_list = sqlite_job_list,
    .job_expire_leases = sqlite_job_expire_leases,
    .doc_get = sqlite_doc_get,
    .doc_get_txn = sqlite_doc_get_txn,
    .doc_put = sqlite_doc_put,
    .doc_create = sqlite_doc_create,
    .doc_create_many = sqlite_doc_create_many,
    .doc_delete = sqlite_doc_delete,
    .doc_list = sqlite_doc_list,
    .event_insert = sqlite_event_insert,
    .event_get = sqlite_event_get,
    .catalog_add = sqlite_catalog_add,
    .catalog_get = sqlite_catalog_get,
    .catalog_list = sqlite_catalog_list,
    .message_insert = sqlite_message_insert,
    .message_update = sqlite_message_update,
    .message_get = sqlite_message_get,
    .message_get_txn = sqlite_message_get_txn,
    .message_list = sqlite_message_list,
    .history_append = sqlite_history_append,
    .history_list = sqlite_history_list,
    .copy_rows = sqlite_copy_rows,
    .copy_insert = sqlite_copy_insert,
    .copy_count = sqlite_copy_count,
    .list_put = sqlite_list_put,
    .list_ensure = sqlite_list_ensure,
    .list_get = sqlite_list_get,
    .list_get_txn = sqlite_list_get_txn,
    .list_list = sqlite_list_list,
    .list_set_deleted = sqlite_list_set_deleted,
    .list_sub_put = sqlite_list_sub_put,
    .list_sub_delete = sqlite_list_sub_delete,
    .list_sub_list = sqlite_list_sub_list,
    .list_members = sqlite_list_members,
    .msgref_put = sqlite_msgref_put,
    .msgref_get = sqlite_msgref_get,
    .list_sub_count = sqlite_list_sub_count,
    .list_create = sqlite_list_create,
    .list_sub_add = sqlite_list_sub_add,
};
