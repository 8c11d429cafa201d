/* store.h: herald's one storage interface. Every backend (SQLite: store/sqlite/, the
 * embedded default; PostgreSQL: store/postgres/, shared by several nodes) fills a
 * `struct store_ops`; callers use the store_* wrappers below, never ->ops.
 * Nothing outside src/store/ knows SQL, and nothing here assumes SQLite.
 *
 * Writes: store_write(s, fn, arg) runs fn inside a write transaction on the backend's
 * writer. Concurrent callers are grouped into one transaction (group commit: one
 * fsync for many requests); each fn runs inside its own savepoint, so a fn that
 * returns < 0 rolls back only its own changes. store_write returns only after the
 * group is durable (or failed), with fn's own rc, or the commit's error. Every
 * write-side operation takes the `struct store_txn *` handed to fn, and may only be
 * called from inside fn. fn must not block on anything but the store. When too many
 * writes are already waiting, store_write answers HR_AGAIN at once (back-pressure: the
 * API turns it into 429 with Retry-After).
 *
 * Reads: store_* functions that take `struct store *` run on a reader connection of
 * the calling thread and see committed data. Any thread may call them.
 *
 * Output strings of reads live in the arena passed in (valid until it is reset). */
#ifndef HERALD_STORE_STORE_H
#define HERALD_STORE_STORE_H

#include "../util/arena.h"
#include "../util/clock.h"
#include "../util/rc.h"
#include "../util/str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* The base every backend's transaction embeds as its first member. */
struct store_txn {
    struct store *store;  /* the store this transaction writes to */
    bool jobs_changed;    /* set when jobs became runnable: on_jobs runs after commit */
};

typedef int (*store_txn_fn)(struct store_txn *t, void *arg);

/* ---- records ---------------------------------------------------------------- */

enum key_kind { KEY_ADMIN = 1, KEY_WRITE = 2 };
/* A write key's scope: a server key may do everything the tracking API allows; a client
 * key (shipped in browser and mobile apps, so public) may not change where deliveries go
 * (src/ingest/ingest.c). Keys made before scopes existed are server keys. */
enum key_scope { KEY_SCOPE_SERVER = 0, KEY_SCOPE_CLIENT = 1 };

struct key_rec {
    int64_t id;          /* assigned by the store */
    int kind;            /* enum key_kind */
    int scope;           /* enum key_scope; KEY_SCOPE_SERVER for admin keys */
    char prefix[16];     /* first characters of the key, shown in listings; unique */
    char name[64];       /* operator's label */
    uint8_t hash[32];    /* SHA-256 of the whole key; the key itself is never stored */
    int64_t created_ms;  /* ms since epoch */
    int64_t revoked_ms;  /* 0 while active */
};

/* Job states; see src/queue/queue.h for the state machine. */
enum job_state { JOB_QUEUED = 0, JOB_LEASED = 1, JOB_DEAD = 2 };

struct job_spec {
    const char *kind;     /* handler name, <= 31 chars */
    struct str payload;   /* opaque bytes (JSON by convention), <= 1 MiB */
    int64_t run_at_ms;    /* 0: now */
    uint32_t max_attempts;/* 0: default (25) */
    const char *dedup_key;/* optional: a second insert with the same key is a no-op
                             that reports HR_CONFLICT and the existing id */
    /* lease_until_ms > 0: insert the job already leased to the caller until then, with
     * lease_token (non-zero) and its first attempt counted, as if job_lease had just
     * taken it: the queue hands a follow-up job to its own workers without a lease
     * write. Such an insert does not count as a job change for the job listener. */
    int64_t lease_until_ms;
    int64_t lease_token;
    /* bulk: a hint for this node's queue, not stored: when handed over (above), the job
     * waits in the ready list's bulk lane, behind every other handed-over job (a
     * fan-out's messages, so transactional sends overtake them). */
    bool bulk;
};

struct job {
    int64_t id;
    char kind[32];
    struct str payload;      /* arena-owned */
    int state;               /* enum job_state */
    int64_t run_at_ms;
    int64_t lease_until_ms;  /* 0 unless leased */
    int64_t lease_token;     /* proves ownership for ack/retry/dead */
    uint32_t attempts;       /* leases so far, counting this one */
    uint32_t max_attempts;
    int64_t created_ms;
    struct str last_error;   /* arena-owned, may be empty */
    uint32_t retaken;        /* leases taken over after they ran out, counting this one:
                                the holder died (or stalled) with the job in hand */
};

/* A JSON document in a named collection: profiles, groups, aliases, templates, brands,
 * providers, automations. The store treats the body as opaque bytes. */
#define STORE_CREATE_MANY_MAX 4096 /* ids per store_doc_create_many */
#define STORE_DOC_ID_MAX 1024        /* document and user ids, bytes */
#define STORE_PAYLOAD_MAX (1024 * 1024) /* a job payload, meta value, document body, bytes */

struct doc_rec {
    struct str coll;     /* arena-owned */
    struct str id;       /* arena-owned */
    struct str body;     /* arena-owned, NUL-terminated */
    int64_t version;     /* 1 on create, +1 on every put */
    int64_t created_ms;
    int64_t updated_ms;
};

/* One accepted inbound event (Segment or Courier track). */
struct event_rec {
    int64_t id;           /* assigned by the store; increases with arrival */
    int64_t source_id;    /* the key that sent it (dedup scope) */
    struct str message_id;/* arena-owned */
    struct str type;      /* "track", "identify", ... */
    struct str user_id;   /* may be empty */
    struct str body;      /* the normalised event JSON, arena-owned */
    int64_t received_ms;
};

/* One row of the event catalog. */
struct catalog_rec {
    struct str name;      /* "track/Order Shipped", "identify", ... arena-owned */
    int64_t count;
    int64_t first_seen_ms, last_seen_ms;
    struct str sample;    /* latest payload JSON, arena-owned */
};

/* One message: one recipient of one send. Strings are arena-owned on reads; on writes
 * they are the caller's. Empty strings mean "none". */
struct message_rec {
    struct str id;           /* "1-<hex secs>-<24 hex>" */
    struct str request_id;   /* the send request; equals id for single-recipient sends */
    struct str status;       /* Courier's: ENQUEUED, DELAYED, SENT, DELIVERED, ... */
    struct str recipient;    /* user id, else the address */
    struct str notification; /* template id */
    struct str event;        /* metadata.event / template / automation event */
    struct str trace_id;
    struct str run_id;       /* automation run that produced it */
    struct str tags;         /* JSON array of strings */
    struct str reason;       /* UNDELIVERABLE/UNROUTABLE reason */
    struct str error;        /* provider's words */
    struct str spec;         /* JSON: what to send (to, template/content, data, routing...) */
    struct str state;        /* JSON: the engine's working state (plan, outcomes) */
    int64_t enqueued_ms, sent_ms, delivered_ms, canceled_ms, updated_ms;
};

struct message_filter {
    struct str recipient, status, notification, event, tag, trace_id, run_id; /* empty: any */
    /* status and tag may each hold several values joined by commas (no empty values):
     * a message matches when its status is one of them / it has one of the tags */
    struct str id;           /* one message (Courier's messageId); empty: any */
    int64_t enqueued_after_ms; /* > 0: only messages enqueued after this time */
    struct str before_id;    /* cursor: messages strictly older than this id */
    size_t limit;            /* 1..1000 */
};

struct history_rec {
    int64_t seq;             /* order within the message (rows appended together share it) */
    int64_t ts;              /* ms */
    struct str type;         /* ENQUEUED, MAPPED, PROFILE_LOADED, RENDERED, ... */
    struct str body;         /* JSON object with Courier's fields (ts and type included) */
};

/* One row of store_history_append_many (the message is the call's). */
struct history_row {
    int64_t ts;
    struct str type;
    struct str body;
};

/* Counters a backend keeps since open; commits < txns shows group commit at work. */
struct store_stats {
    uint64_t txns;      /* store_write calls completed (committed or rolled back) */
    uint64_t commits;   /* physical commits (fsyncs) */
    uint64_t errors;    /* commits that failed */
    uint64_t retries;   /* transactions run again after a deadlock or serialization
                           failure (PostgreSQL; 0 on SQLite, whose one writer has none) */
    bool full;          /* writes are failing because the disk is full (SQLite: set by a
                           write that failed so, cleared by the next one that wrote) */
    bool corrupt;       /* a statement found the store's file damaged (SQLite: SQLITE_CORRUPT
                           or SQLITE_NOTADB); stays set: store_ping fails from then on */
    uint64_t engine_bytes; /* heap the embedded engine holds for its cache (SQLite: the
                           writer's page cache after its last group, bounded by its 64 MiB
                           cache_size; readers drop theirs at each commit); 0 for
                           PostgreSQL, whose memory is its own processes' */
};

struct job_count {
    char kind[32];
    int state;      /* enum job_state */
    int64_t count;
};

/* ---- lists (Courier's lists and their subscriptions) ------------------------------------- */

#define LIST_ID_MAX 256        /* bytes of a list id or pattern */
#define LIST_PARTS_MAX 4       /* dot-separated parts of a list id or pattern */
#define LIST_USER_ID_MAX 256   /* bytes of a subscribed user id */
#define LIST_PREFS_MAX 65536   /* bytes of a subscription's or list's preferences JSON */

/* A list. Strings are arena-owned on reads. */
struct list_rec {
    struct str id;           /* "team.eng" */
    struct str name;
    struct str preferences;  /* JSON object, or empty */
    int64_t created_ms, updated_ms;
    int64_t deleted_ms;      /* 0 while live; set by DELETE, cleared by restore */
};

/* One user's subscription to one list, with the list's own fields. */
struct list_sub_rec {
    struct str user_id;
    struct str preferences;  /* JSON object, or empty */
    int64_t created_ms;      /* when subscribed */
    struct list_rec list;    /* the list subscribed to */
};

/* store_list_id_valid: id is 1..LIST_ID_MAX bytes of 1..LIST_PARTS_MAX parts joined by
 * '.', each part 1 or more of [A-Za-z0-9_:@+-]. Pure. */
bool store_list_id_valid(struct str id);
/* store_list_pattern_valid: like an id, but a part may be `*` (exactly one part) and the
 * last part may be `**` (one or more parts); at least one part is literal. An id is a
 * valid pattern. Pure. */
bool store_list_pattern_valid(struct str pattern);
/* store_list_is_pattern: the pattern has a wildcard part. Pure. */
bool store_list_is_pattern(struct str pattern);
/* store_list_match: list id `id` matches the valid pattern `pattern`. Pure. */
bool store_list_match(struct str pattern, struct str id);
/* store_list_pattern_prefix: the length of pattern's literal leading text (up to and
 * including the '.' before the first wildcard part; the whole pattern when it has none):
 * every id that matches starts with it. Pure. */
size_t store_list_pattern_prefix(struct str pattern);

/* ---- provider references (delivery receipts) ---------------------------------------- */

#define MSGREF_PROVIDER_MAX 32    /* bytes of a provider name ("sendgrid") */
#define MSGREF_REFERENCE_MAX 512  /* bytes of a provider's message id */

/* Which message and channel a provider's own message id (the `reference` a SENT outcome
 * kept: SendGrid X-Message-Id, Twilio sid, SES MessageId...) belongs to. Strings are
 * arena-owned on reads, the caller's on writes. */
struct msgref_rec {
    struct str provider;     /* provider name (provider_ops.name), not the configuration id */
    struct str reference;    /* the provider's message id */
    struct str message_id;
    struct str channel;      /* "email", "sms", ... */
    int64_t created_ms;
};

/* ---- bulk copy (herald migrate-store) ------------------------------------------------ */

/* The tables a copy walks, in this order (store_copy_tables), and what each holds. */
#define COPY_COLS_MAX 20
enum copy_type { COPY_NULL = 0, COPY_INT = 1, COPY_TEXT = 2, COPY_BLOB = 3 };

struct copy_val {
    int type;            /* enum copy_type */
    int64_t i;           /* COPY_INT */
    struct str s;        /* COPY_TEXT / COPY_BLOB: arena-owned on reads */
};

/* One row of a table, every column in the table's column order. */
struct copy_row {
    int64_t seq;         /* resume point: the row's integer key, or its ordinal (1-based)
                            in key order for tables keyed by text (meta, docs, catalog) */
    size_t ncols;
    struct copy_val v[COPY_COLS_MAX];
};

/* A table's shape for copy_*: SQL fragments the backends put together. */
struct copy_table {
    const char *name;    /* "jobs" */
    const char *cols;    /* insert column list */
    const char *sel;     /* select expressions, same order (may rewrite values) */
    const char *types;   /* one letter per column: i(nt), t(ext), b(lob), n(ullable text) */
    const char *seq_col; /* integer key to walk by; NULL: walk `order` by offset */
    const char *order;   /* ORDER BY when seq_col is NULL */
    const char *where;   /* rows to copy and count; NULL: all */
};

/* store_copy_tables: NULL-terminated, in copy order. store_copy_table: by name, or NULL. */
extern const struct copy_table *const store_copy_tables[];
const struct copy_table *store_copy_table(const char *name);

/* ---- the backend table -------------------------------------------------------- */

struct store_ops {
    int version;          /* 1 */
    const char *scheme;   /* "sqlite", "postgres" */
    size_t impl_size;     /* bytes the core allocates for the backend's struct */
    bool exclusive;       /* one herald process at a time (SQLite): what an earlier
                             process left in flight (leases, pending requests) died */

    int (*open)(struct store *s, const char *dsn, struct herr *err);
    void (*close)(struct store *s); /* must accept a half-opened store */
    int (*write)(struct store *s, store_txn_fn fn, void *arg, struct herr *err);
    /* NULL: store_write_shared calls write */
    int (*write_shared)(struct store *s, store_txn_fn fn, void *arg, struct herr *err);
    int (*ping)(struct store *s);
    void (*stats)(struct store *s, struct store_stats *out);
    /* txn_sub: run fn inside a nested savepoint of t; fn returning < 0 (or a statement
     * failing in it) rolls back fn's changes alone and t goes on. A failure the whole
     * transaction must retry (a deadlock) stays t's. */
    int (*txn_sub)(struct store_txn *t, store_txn_fn fn, void *arg);

    /* meta (inside txn / read) */
    int (*meta_set)(struct store_txn *t, const char *key, struct str value);
    int (*meta_get)(struct store *s, const char *key, struct arena *a, struct str *out);
    int (*meta_add)(struct store_txn *t, const char *key, struct str value);

    /* keys */
    int (*key_insert)(struct store_txn *t, struct key_rec *k);
    int (*key_find_by_hash)(struct store *s, const uint8_t hash[32], struct key_rec *out);
    int (*key_list)(struct store *s, struct arena *a, struct key_rec **out, size_t *n);
    int (*key_revoke)(struct store_txn *t, const char *prefix, int64_t now_ms);
    int (*key_count)(struct store *s, int kind, int64_t *out);

    /* jobs */
    int (*job_insert)(struct store_txn *t, const struct job_spec *js, int64_t now_ms,
                      int64_t *out_id);
    /* job_lease: lease up to max runnable jobs of the given kinds (NULL: any), oldest
     * run_at first: queued ones that are due, and ones whose lease ran out (a takeover:
     * the holder died or stalled with it; `retaken` + 1), of which at most max_repeat
     * had been taken over before (retaken > 0: in hand at two deaths in a row, a
     * suspected poison pill). Each gets its own token and its attempt counted. *out
     * (arena-owned) is sorted by (run_at_ms, id). */
    int (*job_lease)(struct store_txn *t, int64_t now_ms, int64_t lease_ms, size_t max,
                     size_t max_repeat, const char *const *kinds, struct arena *a,
                     struct job **out, size_t *n);
    int (*job_ack)(struct store_txn *t, int64_t id, int64_t lease_token);
    /* job_ack_many: job_ack of ids[i] with tokens[i], i < n, in one statement: HR_OK
     * when every one of them was ours and is gone; HR_CONFLICT when any was not ours,
     * or an id comes twice (a job this node holds again after its first lease ran out):
     * nothing tells which, so the caller rolls back and acks them one by one. NULL: the
     * store has no cheaper way than job_ack each (the queue then acks each job right
     * after its commit, as always). */
    int (*job_ack_many)(struct store_txn *t, const int64_t *ids, const int64_t *tokens,
                        size_t n);
    int (*job_retry)(struct store_txn *t, int64_t id, int64_t lease_token, int64_t run_at_ms,
                     struct str error);
    int (*job_dead)(struct store_txn *t, int64_t id, int64_t lease_token, struct str error);
    int (*job_release)(struct store_txn *t, int64_t id, int64_t lease_token);
    /* job_defer: give a leased job back to run at run_at_ms, as if never leased: the
     * attempt is not counted and last_error is kept (a handler that could not start,
     * e.g. its provider was at its limit). HR_CONFLICT when the lease is not ours. */
    int (*job_defer)(struct store_txn *t, int64_t id, int64_t lease_token, int64_t run_at_ms);
    /* job_extend: a lease still ours now ends at lease_until_ms (its holder is still at
     * work on the job: the queue renews the leases of jobs in hand). Nothing else of the
     * job changes. HR_CONFLICT when the lease is not ours any more (it ran out and was
     * taken over, or the job is gone). */
    int (*job_extend)(struct store_txn *t, int64_t id, int64_t lease_token,
                      int64_t lease_until_ms);
    int (*job_get)(struct store *s, int64_t id, struct arena *a, struct job *out);
    int (*job_counts)(struct store *s, struct arena *a, struct job_count **out, size_t *n);
    int (*job_next_run_at)(struct store *s, bool leases, int64_t *out_ms);
    int (*job_list)(struct store *s, int state, size_t limit, struct arena *a, struct job **out,
                    size_t *n);
    /* job_expire_leases: end every lease now (NULL for stores shared by several
     * processes, where a lease may belong to a live node). */
    int (*job_expire_leases)(struct store_txn *t, int64_t now_ms, int64_t *n);

    /* documents */
    int (*doc_get)(struct store *s, const char *coll, struct str id, struct arena *a,
                   struct doc_rec *out);
    int (*doc_get_txn)(struct store_txn *t, const char *coll, struct str id, struct arena *a,
                       struct doc_rec *out);
    int (*doc_put)(struct store_txn *t, const char *coll, struct str id, struct str body,
                   int64_t now_ms, int64_t *out_version);
    int (*doc_delete)(struct store_txn *t, const char *coll, struct str id);
    int (*doc_create)(struct store_txn *t, const char *coll, struct str id, struct str body,
                      int64_t now_ms);
    int (*doc_create_many)(struct store_txn *t, const char *coll, const struct str *ids,
                           const int64_t *now_ms, size_t n, struct str body, size_t *created);
    int (*doc_list)(struct store *s, const char *coll, struct str id_prefix, struct str after_id,
                    size_t limit, struct arena *a, struct doc_rec **out, size_t *n);

    /* events */
    int (*event_insert)(struct store_txn *t, const struct event_rec *e, int64_t dedup_window_ms,
                        int64_t *out_id);
    /* NULL: store_event_insert_many calls event_insert once per event */
    int (*event_insert_many)(struct store_txn *t, const struct event_rec *e, size_t n,
                             int64_t dedup_window_ms, int64_t *out_ids, int *rcs);
    int (*event_get)(struct store *s, int64_t id, struct arena *a, struct event_rec *out);

    /* event catalog */
    int (*catalog_add)(struct store_txn *t, struct str name, struct str sample,
                       int64_t first_ms, int64_t last_ms, int64_t n);
    int (*catalog_get)(struct store *s, struct str name, struct arena *a, struct catalog_rec *out);
    int (*catalog_list)(struct store *s, struct str search, struct str after_name, size_t limit,
                        struct arena *a, struct catalog_rec **out, size_t *n);

    /* messages and their history */
    int (*message_insert)(struct store_txn *t, const struct message_rec *m);
    int (*message_update)(struct store_txn *t, const struct message_rec *m);
    int (*message_get)(struct store *s, struct str id, struct arena *a, struct message_rec *out);
    int (*message_get_txn)(struct store_txn *t, struct str id, struct arena *a,
                           struct message_rec *out);
    int (*message_list)(struct store *s, const struct message_filter *f, struct arena *a,
                        struct message_rec **out, size_t *n);
    int (*history_append)(struct store_txn *t, struct str message_id, int64_t ts, struct str type,
                          struct str body);
    /* every row of message_id as stored, in seq order (at most STORE_HISTORY_MAX) */
    int (*history_list)(struct store *s, struct str message_id, struct arena *a,
                        struct history_rec **out, size_t *n);

    /* bulk copy (appended; see store_copy_* below) */
    int (*copy_rows)(struct store *s, const char *table, int64_t after_seq, size_t limit,
                     struct arena *a, struct copy_row **out, size_t *n);
    int (*copy_insert)(struct store_txn *t, const char *table, const struct copy_row *rows,
                       size_t n);
    int (*copy_count)(struct store *s, const char *table, int64_t *n);

    /* lists (appended; see store_list_* below) */
    int (*list_put)(struct store_txn *t, struct str id, struct str name, struct str prefs,
                    int64_t now_ms);
    int (*list_ensure)(struct store_txn *t, struct str id, int64_t now_ms);
    int (*list_get)(struct store *s, struct str id, struct arena *a, struct list_rec *out);
    int (*list_get_txn)(struct store_txn *t, struct str id, struct arena *a,
                        struct list_rec *out);
    int (*list_list)(struct store *s, struct str pattern, struct str after_id, size_t limit,
                     struct arena *a, struct list_rec **out, size_t *n);
    int (*list_set_deleted)(struct store_txn *t, struct str id, int64_t deleted_ms,
                            int64_t now_ms);
    int (*list_sub_put)(struct store_txn *t, struct str list_id, struct str user_id,
                        struct str prefs, int64_t now_ms);
    int (*list_sub_delete)(struct store_txn *t, struct str list_id, struct str user_id,
                           int64_t *n_deleted);
    int (*list_sub_list)(struct store *s, struct str list_id, struct str user_id,
                         struct str after, size_t limit, struct arena *a,
                         struct list_sub_rec **out, size_t *n);
    int (*list_members)(struct store *s, struct str target, struct str after_user, size_t limit,
                        struct arena *a, struct str **out, size_t *n);

    /* provider references (appended; see store_msgref_* below) */
    int (*msgref_put)(struct store_txn *t, const struct msgref_rec *r);
    int (*msgref_get)(struct store *s, struct str provider, struct str reference,
                      struct arena *a, struct msgref_rec *out);

    /* list member counts (appended; see store_list_sub_count) */
    int (*list_sub_count)(struct store *s, struct str list_id, int64_t *n);

    /* lists kept in step with Segment groups (appended; see store_list_create) */
    int (*list_create)(struct store_txn *t, struct str id, struct str name, int64_t now_ms);
    int (*list_sub_add)(struct store_txn *t, struct str list_id, struct str user_id,
                        int64_t now_ms);
};

/* The base every backend embeds as its first member. */
struct store {
    const struct store_ops *ops;
    struct hclock *clock;                      /* not owned */
    void (*on_jobs)(void *arg);                /* called after a commit that inserted or
                                                  re-queued jobs (and on remote notify) */
    void *on_jobs_arg;
    size_t write_queue_max;                    /* waiting writes before store_write answers
                                                  HR_AGAIN; 0: the backend's default */
    int64_t write_wait_max_ms;                 /* ... or when the oldest waiting write has
                                                  waited this long; 0: default (2000) */
    bool claim;                                /* set by store_open_claimed before open:
                                                  the backend takes its process lock first */
    /* on_message: called inside t by store_message_insert (after the row is in, with
     * created = true) and store_message_update (before the row changes, created =
     * false), the one place every message status is written: the engine's status
     * webhooks (src/engine/hooks.c) enqueue their events here, in the same transaction.
     * A result < 0 fails the write. NULL: none. Set once before any write. */
    int (*on_message)(void *arg, struct store_txn *t, const struct message_rec *m,
                      bool created);
    void *on_message_arg;
};

/* store_ingress / store_is_ingress: mark the calling thread as serving outside requests
 * (the API does it around each handler). Only such writes are refused by back-pressure
 * (HR_AGAIN); the queue's own writes (leases, job outcomes) always wait their turn, so an
 * overload never stalls the work that drains it. */
void store_ingress(bool on);
bool store_is_ingress(void);

/* store_open: pick the backend by the DSN's scheme ("sqlite:PATH", "postgres://...").
 * On success *out is owned by the caller; release with store_close. */
int store_open(const char *dsn, struct hclock *clock, struct store **out, struct herr *err)
    HR_MUSTCHECK;
/* store_open_claimed: store_open for a process that must be the store's only herald
 * process (herald serve; admin commands that must not run beside it): a backend used by
 * one process at a time (SQLite) first takes an exclusive lock held until store_close,
 * and fails with HR_BUSY and "store PATH is in use by another herald (pid N)" while
 * another process holds it. Backends shared by many nodes (PostgreSQL) take no lock. */
int store_open_claimed(const char *dsn, struct hclock *clock, struct store **out,
                       struct herr *err) HR_MUSTCHECK;
void store_close(struct store *s); /* NULL is a no-op */
/* store_set_job_listener: fn(arg) runs on the committing thread after new jobs exist. */
void store_set_job_listener(struct store *s, void (*fn)(void *), void *arg);
static inline struct store *store_txn_store(struct store_txn *t) { return t->store; }

/* ---- wrappers ------------------------------------------------------------------ */

static inline int store_write(struct store *s, store_txn_fn fn, void *arg, struct herr *err)
{ return s->ops->write(s, fn, arg, err); }
/* store_write_shared: store_write for a fn that only inserts rows of its own (no row
 * another writer updates) and may share its transaction with other such calls without a
 * savepoint of its own (PostgreSQL: while the connection pool is busy, concurrent calls
 * commit together; when any of them fails, each runs again alone, so fn must be safe to
 * run more than once, as every PostgreSQL write already is). Same answer as store_write. */
static inline int store_write_shared(struct store *s, store_txn_fn fn, void *arg,
                                     struct herr *err)
{ return s->ops->write_shared ? s->ops->write_shared(s, fn, arg, err)
                              : s->ops->write(s, fn, arg, err); }
/* store_ping: HR_OK when the store answers a read and, after writes failed for a full
 * disk, a probe write succeeds again; HR_FULL while the disk stays full; another rc < 0
 * when the store is unreachable or was found corrupt (store_stats says which). Any
 * thread but the store's writer. */
static inline int store_ping(struct store *s) { return s->ops->ping(s); }
/* store_txn_sub: inside t, run fn(t, arg) in a nested savepoint: when it returns < 0
 * its changes are undone and t stays usable (for per-item isolation in a batch). Returns
 * fn's rc, or the store's error when the savepoint itself failed (then t is failed). */
static inline int store_txn_sub(struct store_txn *t, store_txn_fn fn, void *arg)
{ return store_txn_store(t)->ops->txn_sub(t, fn, arg); }
static inline void store_stats(struct store *s, struct store_stats *out) { s->ops->stats(s, out); }
static inline int store_meta_set(struct store_txn *t, const char *key, struct str v)
{ return store_txn_store(t)->ops->meta_set(t, key, v); }
static inline int store_meta_get(struct store *s, const char *key, struct arena *a, struct str *out)
{ return s->ops->meta_get(s, key, a, out); }
/* store_meta_add: store key = value only when key has no value yet: HR_OK when this
 * transaction added it, HR_CONFLICT when it exists (committed by anyone, on any node; a
 * concurrent adder's transaction is waited for), so exactly one of several racing
 * callers wins (the first-start bootstrap). Inside a write fn only. */
static inline int store_meta_add(struct store_txn *t, const char *key, struct str v)
{ return store_txn_store(t)->ops->meta_add(t, key, v); }
static inline int store_key_insert(struct store_txn *t, struct key_rec *k)
{ return store_txn_store(t)->ops->key_insert(t, k); }
static inline int store_key_find_by_hash(struct store *s, const uint8_t h[32], struct key_rec *out)
{ return s->ops->key_find_by_hash(s, h, out); }
static inline int store_key_list(struct store *s, struct arena *a, struct key_rec **out, size_t *n)
{ return s->ops->key_list(s, a, out, n); }
static inline int store_key_revoke(struct store_txn *t, const char *prefix, int64_t now_ms)
{ return store_txn_store(t)->ops->key_revoke(t, prefix, now_ms); }
static inline int store_key_count(struct store *s, int kind, int64_t *out)
{ return s->ops->key_count(s, kind, out); }
static inline int store_job_insert(struct store_txn *t, const struct job_spec *js, int64_t now_ms,
                                   int64_t *out_id)
{ return store_txn_store(t)->ops->job_insert(t, js, now_ms, out_id); }
static inline int store_job_lease(struct store_txn *t, int64_t now_ms, int64_t lease_ms, size_t max,
                                  size_t max_repeat, const char *const *kinds,
                                  struct arena *a, struct job **out, size_t *n)
{ return store_txn_store(t)->ops->job_lease(t, now_ms, lease_ms, max, max_repeat, kinds, a, out, n); }
static inline int store_job_ack(struct store_txn *t, int64_t id, int64_t tok)
{ return store_txn_store(t)->ops->job_ack(t, id, tok); }
/* store_job_ack_many: see job_ack_many; only where store_has_job_ack_many. */
static inline bool store_has_job_ack_many(const struct store *s)
{ return s->ops->job_ack_many != NULL; }
static inline int store_job_ack_many(struct store_txn *t, const int64_t *ids, const int64_t *toks,
                                     size_t n)
{ return store_txn_store(t)->ops->job_ack_many(t, ids, toks, n); }
static inline int store_job_retry(struct store_txn *t, int64_t id, int64_t tok, int64_t run_at,
                                  struct str e)
{ return store_txn_store(t)->ops->job_retry(t, id, tok, run_at, e); }
static inline int store_job_dead(struct store_txn *t, int64_t id, int64_t tok, struct str e)
{ return store_txn_store(t)->ops->job_dead(t, id, tok, e); }
static inline int store_job_release(struct store_txn *t, int64_t id, int64_t tok)
{ return store_txn_store(t)->ops->job_release(t, id, tok); }
static inline int store_job_defer(struct store_txn *t, int64_t id, int64_t tok, int64_t run_at)
{ return store_txn_store(t)->ops->job_defer(t, id, tok, run_at); }
static inline int store_job_extend(struct store_txn *t, int64_t id, int64_t tok, int64_t until)
{ return store_txn_store(t)->ops->job_extend(t, id, tok, until); }
static inline int store_job_get(struct store *s, int64_t id, struct arena *a, struct job *out)
{ return s->ops->job_get(s, id, a, out); }
static inline int store_job_counts(struct store *s, struct arena *a, struct job_count **out, size_t *n)
{ return s->ops->job_counts(s, a, out, n); }
/* job_next_run_at: *out_ms = the earliest run_at of a queued job, and with leases also
 * the earliest end of a lease (a job taken over then); HR_NOTFOUND when there is none.
 * Without leases it is an index seek; with them SQLite walks every leased job (thousands
 * under load; PostgreSQL has an index for it): a busy runner asks without, an idle one
 * with. */
static inline int store_job_next_run_at(struct store *s, bool leases, int64_t *out_ms)
{ return s->ops->job_next_run_at(s, leases, out_ms); }

/* store_is_exclusive: true when only this process uses the store (SQLite), so work an
 * earlier process left unfinished is known dead; false when several nodes share it. */
static inline bool store_is_exclusive(const struct store *s) { return s->ops->exclusive; }

/* store_shared: true when several processes may use the store at once (PostgreSQL:
 * a lease may belong to another live node), false for a store this process claimed
 * alone (SQLite). */
static inline bool store_shared(const struct store *s)
{ return s->ops->job_expire_leases == NULL; }

/* job_expire_leases: on a store only this process uses, leases found at start belong to
 * a process that died: make them runnable now. HR_UNAVAIL when the backend is shared. */
static inline int store_job_expire_leases(struct store_txn *t, int64_t now_ms, int64_t *n)
{
    struct store *s = store_txn_store(t);
    return s->ops->job_expire_leases ? s->ops->job_expire_leases(t, now_ms, n) : HR_UNAVAIL;
}

/* job_list: jobs in `state` (enum job_state), newest first, at most limit. */
static inline int store_job_list(struct store *s, int state, size_t limit, struct arena *a,
                                 struct job **out, size_t *n)
{ return s->ops->job_list(s, state, limit, a, out, n); }

/* Documents: get returns HR_NOTFOUND when absent; put creates or replaces (version
 * counts puts); delete returns HR_NOTFOUND when absent; list walks ids in byte order
 * after `after_id` (empty: from the start) that start with id_prefix. Bodies <= 1 MiB. */
static inline int store_doc_get(struct store *s, const char *coll, struct str id, struct arena *a,
                                struct doc_rec *out)
{ return s->ops->doc_get(s, coll, id, a, out); }
static inline int store_doc_get_txn(struct store_txn *t, const char *coll, struct str id,
                                    struct arena *a, struct doc_rec *out)
{ return store_txn_store(t)->ops->doc_get_txn(t, coll, id, a, out); }
/* doc_create: insert the document (version 1) unless one exists: HR_OK when created,
 * HR_CONFLICT (nothing changed) when it existed. */
static inline int store_doc_create(struct store_txn *t, const char *coll, struct str id,
                                   struct str body, int64_t now_ms)
{ return store_txn_store(t)->ops->doc_create(t, coll, id, body, now_ms); }
/* store_check_doc_id / store_check_create_many: the bounds every backend checks first
 * (a collection name of 1-64 bytes, an id of 1-STORE_DOC_ID_MAX bytes; for create_many
 * also each id UTF-8 without NUL, n and the body's size), so both stores answer alike.
 * HR_OK, HR_INVAL or HR_TOOBIG. */
int store_check_doc_id(const char *coll, struct str id);
int store_check_create_many(const char *coll, const struct str *ids, size_t n, struct str body);
/* doc_create_many: store_doc_create for each ids[i] (created at now_ms[i], every one with
 * body), in byte order of the ids, as one statement where the store can (PostgreSQL: one
 * round trip; a write that creates nothing does not wait for a flush). *created counts
 * the new ones. HR_INVAL for a bad collection or id (one that is not UTF-8 text too) or
 * n > STORE_CREATE_MANY_MAX, HR_TOOBIG for a body past the store's cap; nothing is
 * created then. */
static inline int store_doc_create_many(struct store_txn *t, const char *coll,
                                        const struct str *ids, const int64_t *now_ms, size_t n,
                                        struct str body, size_t *created)
{ return store_txn_store(t)->ops->doc_create_many(t, coll, ids, now_ms, n, body, created); }
static inline int store_doc_put(struct store_txn *t, const char *coll, struct str id,
                                struct str body, int64_t now_ms, int64_t *out_version)
{ return store_txn_store(t)->ops->doc_put(t, coll, id, body, now_ms, out_version); }
static inline int store_doc_delete(struct store_txn *t, const char *coll, struct str id)
{ return store_txn_store(t)->ops->doc_delete(t, coll, id); }
static inline int store_doc_list(struct store *s, const char *coll, struct str id_prefix,
                                 struct str after_id, size_t limit, struct arena *a,
                                 struct doc_rec **out, size_t *n)
{ return s->ops->doc_list(s, coll, id_prefix, after_id, limit, a, out, n); }

/* event_insert: store e unless an event with the same (source_id, message_id) arrived
 * within dedup_window_ms before e->received_ms: then HR_CONFLICT and *out_id is the
 * earlier event. (An older duplicate is stored as a new event.) */
static inline int store_event_insert(struct store_txn *t, const struct event_rec *e,
                                     int64_t window_ms, int64_t *out_id)
{ return store_txn_store(t)->ops->event_insert(t, e, window_ms, out_id); }
/* event_insert_many: store_event_insert for e[0..n), with the same outcome as n calls in
 * order (a later event with the messageId of an earlier one in e is its duplicate): rcs[i]
 * is HR_OK (stored, out_ids[i] its new id) or HR_CONFLICT (a duplicate, out_ids[i] the
 * earlier event, 0 if unknown). Returns HR_OK, or the first other error (the transaction
 * is then failed). A backend may store them in one statement. */
static inline int store_event_insert_many(struct store_txn *t, const struct event_rec *e,
                                          size_t n, int64_t window_ms, int64_t *out_ids, int *rcs)
{
    const struct store_ops *ops = store_txn_store(t)->ops;
    if (ops->event_insert_many)
        return ops->event_insert_many(t, e, n, window_ms, out_ids, rcs);
    for (size_t i = 0; i < n; i++) {
        out_ids[i] = 0;
        rcs[i] = ops->event_insert(t, &e[i], window_ms, &out_ids[i]);
        if (rcs[i] < 0 && rcs[i] != HR_CONFLICT)
            return rcs[i];
    }
    return HR_OK;
}
static inline int store_event_get(struct store *s, int64_t id, struct arena *a,
                                  struct event_rec *out)
{ return s->ops->event_get(s, id, a, out); }

/* catalog_add: count n (>= 1) more events under `name` in one upsert, keep `sample` as
 * the latest payload, widen first/last seen to first_ms/last_ms. catalog_touch: the same
 * for one event seen at seen_ms. catalog_list: by name after `after_name`, names
 * containing `search` (case-insensitive; empty: all). */
static inline int store_catalog_add(struct store_txn *t, struct str name, struct str sample,
                                    int64_t first_ms, int64_t last_ms, int64_t n)
{ return store_txn_store(t)->ops->catalog_add(t, name, sample, first_ms, last_ms, n); }
static inline int store_catalog_touch(struct store_txn *t, struct str name, struct str sample,
                                      int64_t seen_ms)
{ return store_catalog_add(t, name, sample, seen_ms, seen_ms, 1); }
static inline int store_catalog_get(struct store *s, struct str name, struct arena *a,
                                    struct catalog_rec *out)
{ return s->ops->catalog_get(s, name, a, out); }
static inline int store_catalog_list(struct store *s, struct str search, struct str after,
                                     size_t limit, struct arena *a, struct catalog_rec **out,
                                     size_t *n)
{ return s->ops->catalog_list(s, search, after, limit, a, out, n); }

/* Messages: insert is HR_CONFLICT when the id exists; update replaces every field of
 * the row with that id (HR_NOTFOUND when none); list is newest first, filtered (tag
 * matches one element of tags). History is append-only, in order. */
static inline int store_message_insert(struct store_txn *t, const struct message_rec *m)
{
    struct store *s = store_txn_store(t);
    int rc = s->ops->message_insert(t, m);
    return rc == HR_OK && s->on_message ? s->on_message(s->on_message_arg, t, m, true) : rc;
}
/* store_message_passing: m's status is one the message passes through inside t without
 * a row of its own (ROUTED on the way to SENT, written by one update): the on_message
 * hook sees it as if it were written. Writes nothing else. */
static inline int store_message_passing(struct store_txn *t, const struct message_rec *m)
{
    struct store *s = store_txn_store(t);
    return s->on_message ? s->on_message(s->on_message_arg, t, m, false) : HR_OK;
}
static inline int store_message_update(struct store_txn *t, const struct message_rec *m)
{
    int rc = store_message_passing(t, m);
    return rc < 0 ? rc : store_txn_store(t)->ops->message_update(t, m);
}
static inline int store_message_get(struct store *s, struct str id, struct arena *a,
                                    struct message_rec *out)
{ return s->ops->message_get(s, id, a, out); }
static inline int store_message_get_txn(struct store_txn *t, struct str id, struct arena *a,
                                        struct message_rec *out)
{ return store_txn_store(t)->ops->message_get_txn(t, id, a, out); }
static inline int store_message_list(struct store *s, const struct message_filter *f,
                                     struct arena *a, struct message_rec **out, size_t *n)
{ return s->ops->message_list(s, f, a, out, n); }
/* A message's history: events appended in order, listed in that order. Several events
 * appended in one call are stored as one row of type STORE_HISTORY_PACKED (a type no
 * event has), whose body holds them all: a routing's events, and with them a fused
 * delivery's DELIVERING and SENT, cost one row and one index entry instead of one each.
 * store_history_list gives them back one by one. */
#define STORE_HISTORY_PACKED "+"
#define STORE_HISTORY_MAX 10000 /* rows store_history_list reads, events it answers */
/* store_history_append: append one event (type 1-64 bytes, not STORE_HISTORY_PACKED) to
 * message_id. HR_OK, HR_INVAL, or the statement's failure (the write then fails). */
int store_history_append(struct store_txn *t, struct str message_id, int64_t ts,
                         struct str type, struct str body);
/* store_history_append_many: append rows[0..n) to message_id, in that order: one row for
 * n >= 2 (one per event when their packed form would pass STORE_PAYLOAD_MAX). A bad row
 * refuses them all (HR_INVAL); else HR_OK or the statement's failure. */
int store_history_append_many(struct store_txn *t, struct str message_id,
                              const struct history_row *rows, size_t n);
/* store_history_list: message_id's events in order (*out and its strings in a; *n of
 * them, at most STORE_HISTORY_MAX), only those of type when type is not empty. HR_IO for
 * a packed row that does not read back. */
int store_history_list(struct store *s, struct str message_id, struct str type,
                       struct arena *a, struct history_rec **out, size_t *n);

/* Bulk copy, for moving an installation between backends. copy_rows: up to limit rows
 * (1..10000) of `table` after after_seq (0: from the start), in order, every value
 * faithful (ids included; leased jobs come back queued with their lease ended); rows
 * live in a (the array and its strings). copy_insert (inside a write): insert rows,
 * skipping those already present (a resumed copy), and keep id sequences past the
 * copied ids. copy_count: rows copy_rows would walk. HR_INVAL for an unknown table. */
static inline int store_copy_rows(struct store *s, const char *table, int64_t after_seq,
                                  size_t limit, struct arena *a, struct copy_row **out,
                                  size_t *n)
{ return s->ops->copy_rows(s, table, after_seq, limit, a, out, n); }
static inline int store_copy_insert(struct store_txn *t, const char *table,
                                    const struct copy_row *rows, size_t n)
{ return store_txn_store(t)->ops->copy_insert(t, table, rows, n); }
static inline int store_copy_count(struct store *s, const char *table, int64_t *n)
{ return s->ops->copy_count(s, table, n); }

/* Lists. Ids are checked with store_list_id_valid (HR_INVAL otherwise); limit is
 * 1..1000; preferences <= LIST_PREFS_MAX bytes (HR_TOOBIG). Inside a write fn for the
 * _txn ones, any thread for the reads.
 * list_put: create the list or replace its name and preferences (a deleted list stays
 * deleted). list_ensure: create the list (name = id) unless it exists; HR_OK either way.
 * list_get: HR_NOTFOUND when absent; a deleted list is returned with deleted_ms set.
 * list_list: live lists in id order after after_id whose id matches pattern (a valid
 * pattern or id; empty: every list). list_set_deleted: mark deleted (deleted_ms > 0) or
 * restore (0); HR_NOTFOUND when absent. */
static inline int store_list_put(struct store_txn *t, struct str id, struct str name,
                                 struct str prefs, int64_t now_ms)
{ return store_txn_store(t)->ops->list_put(t, id, name, prefs, now_ms); }
static inline int store_list_ensure(struct store_txn *t, struct str id, int64_t now_ms)
{ return store_txn_store(t)->ops->list_ensure(t, id, now_ms); }
static inline int store_list_get(struct store *s, struct str id, struct arena *a,
                                 struct list_rec *out)
{ return s->ops->list_get(s, id, a, out); }
static inline int store_list_get_txn(struct store_txn *t, struct str id, struct arena *a,
                                     struct list_rec *out)
{ return store_txn_store(t)->ops->list_get_txn(t, id, a, out); }
static inline int store_list_list(struct store *s, struct str pattern, struct str after_id,
                                  size_t limit, struct arena *a, struct list_rec **out,
                                  size_t *n)
{ return s->ops->list_list(s, pattern, after_id, limit, a, out, n); }
static inline int store_list_set_deleted(struct store_txn *t, struct str id, int64_t deleted_ms,
                                         int64_t now_ms)
{ return store_txn_store(t)->ops->list_set_deleted(t, id, deleted_ms, now_ms); }
/* list_sub_put: subscribe user_id (1..LIST_USER_ID_MAX bytes) to list_id, or replace
 * the preferences of an existing subscription (its created time stays). The list must
 * exist (call list_ensure first): HR_NOTFOUND otherwise.
 * list_sub_delete: with both ids, end that one subscription (HR_NOTFOUND when none);
 * with user_id empty, every subscription of the list; with list_id empty, every list
 * subscription of the user. *n_deleted (may be NULL) gets the count.
 * list_sub_list: exactly one of list_id / user_id non-empty: the subscriptions of that
 * list (by user id after `after`) or of that user to live lists (by list id after
 * `after`). */
static inline int store_list_sub_put(struct store_txn *t, struct str list_id, struct str user_id,
                                     struct str prefs, int64_t now_ms)
{ return store_txn_store(t)->ops->list_sub_put(t, list_id, user_id, prefs, now_ms); }
static inline int store_list_sub_delete(struct store_txn *t, struct str list_id,
                                        struct str user_id, int64_t *n_deleted)
{ return store_txn_store(t)->ops->list_sub_delete(t, list_id, user_id, n_deleted); }
static inline int store_list_sub_list(struct store *s, struct str list_id, struct str user_id,
                                      struct str after, size_t limit, struct arena *a,
                                      struct list_sub_rec **out, size_t *n)
{ return s->ops->list_sub_list(s, list_id, user_id, after, limit, a, out, n); }
/* store_list_members: the recipients of a send to a list or a list pattern, one page at
 * a time: the distinct user ids subscribed to the live list `target` (a list id) or to
 * any live list matching it (a pattern, store_list_pattern_valid), in byte order,
 * strictly after after_user (empty: from the start), at most limit (1..1000). *out (an
 * arena array of arena strings) and *n get the page; a page shorter than limit is the
 * last. Call again with after_user = the last id of the page: each call is one short
 * read, so a fan-out of any size streams with bounded memory and resumes from the last
 * id it committed. HR_INVAL for a malformed target; an unknown or deleted list is an
 * empty page (the caller tells those apart with store_list_get). Any thread. */
static inline int store_list_members(struct store *s, struct str target, struct str after_user,
                                     size_t limit, struct arena *a, struct str **out, size_t *n)
{ return s->ops->list_members(s, target, after_user, limit, a, out, n); }

/* store_list_sub_count: *n gets the number of users subscribed to list_id (one count
 * over the subscriptions' primary key; a deleted or unknown list's subscriptions count
 * as they are stored: 0 for an unknown one). HR_INVAL for a malformed id. Any thread. */
static inline int store_list_sub_count(struct store *s, struct str list_id, int64_t *n)
{ return s->ops->list_sub_count(s, list_id, n); }

/* store_list_create: inside t, create the list id named name (1..LIST_ID_MAX * 4 bytes;
 * no preferences) unless a list with that id exists, live or deleted, which is left as
 * it is. HR_OK when created, HR_CONFLICT when it existed, HR_INVAL for a malformed id
 * or name. On PostgreSQL a concurrent creator's insert is waited for, never replaced.
 * store_list_sub_add: inside t, subscribe user_id (1..LIST_USER_ID_MAX bytes) to the
 * live list list_id with no preferences, unless already subscribed (an existing
 * subscription keeps its preferences and created time). HR_OK when subscribed now,
 * HR_CONFLICT when nothing changed (already subscribed, or the list is absent or
 * deleted), HR_INVAL for malformed ids. */
static inline int store_list_create(struct store_txn *t, struct str id, struct str name,
                                    int64_t now_ms)
{ return store_txn_store(t)->ops->list_create(t, id, name, now_ms); }
static inline int store_list_sub_add(struct store_txn *t, struct str list_id,
                                     struct str user_id, int64_t now_ms)
{ return store_txn_store(t)->ops->list_sub_add(t, list_id, user_id, now_ms); }

/* store_msgref_key_ok: provider and reference fit the index (non-empty, within
 * MSGREF_PROVIDER_MAX / MSGREF_REFERENCE_MAX). Pure; the backends check with it. */
bool store_msgref_key_ok(struct str provider, struct str reference);
/* store_msgref_put: inside t, remember that (r->provider, r->reference) names message
 * r->message_id on r->channel; a second put of the same pair replaces the first (the
 * latest send that got this id wins). HR_INVAL for an empty or oversized provider or
 * reference. */
static inline int store_msgref_put(struct store_txn *t, const struct msgref_rec *r)
{ return store_txn_store(t)->ops->msgref_put(t, r); }
/* store_msgref_get: the message a provider's reference names (index lookup on both
 * stores); strings in a. HR_NOTFOUND when none, HR_INVAL for an oversized key. Any
 * thread. */
static inline int store_msgref_get(struct store *s, struct str provider, struct str reference,
                                   struct arena *a, struct msgref_rec *out)
{ return s->ops->msgref_get(s, provider, reference, a, out); }

#endif
