/* ingest.h: events in. ingest_accept() makes parsed Segment events durable (deduplicated
 * by messageId per source within a window) and, in the same transaction, either applies
 * them (apply_at_accept: a store with one writer) or enqueues the "events" job that
 * does: profiles (identify merges traits, track creates, alias merges, group keeps the
 * group and, when the group_lists setting links them, its list: grouplists.h), the event
 * catalog, and the automations linked to each event.
 * Nothing here knows HTTP. */
#ifndef HERALD_INGEST_INGEST_H
#define HERALD_INGEST_INGEST_H

#include "../queue/queue.h"
#include "../store/store.h"
#include "evcache.h"
#include "segment.h"

#include <stdint.h>

#define INGEST_JOB_KIND "events"
#define INGEST_DEDUP_WINDOW_DEFAULT_MS (24LL * 3600 * 1000)

/* A trigger runs inside the events job's transaction for each applied event: event is
 * the normalised event, name its catalog name; data_new(event) builds the automation run
 * data (properties also at the top level; new, the caller owns it), which the trigger
 * calls only when something is linked to name. stored: event is exactly the body stored
 * under event_id (not a client key's trimmed identify), so data_new of the stored body
 * gives the same data again. It keeps ingest free of the engine (wired by main). */
typedef cJSON *(*ingest_data_fn)(const cJSON *event);
typedef int (*ingest_trigger_fn)(void *ctx, struct store_txn *t, const cJSON *event,
                                 bool stored, ingest_data_fn data_new, const char *name,
                                 int64_t event_id, int64_t received_ms);

struct ingest {
    struct store *store;      /* not owned */
    struct hclock *clock;     /* not owned */
    int64_t dedup_window_ms;  /* duplicates by messageId within it are not processed again */
    ingest_trigger_fn trigger;/* optional */
    void *trigger_ctx;
    struct evcache *cache;    /* optional, not owned: accepted events for this process's
                               * events job (see evcache.h) */
    struct queue *queue;      /* optional, not owned: the events job of an accept is handed
                               * to its workers (queue_handoff), not leased from the store */
    bool apply_at_accept;     /* apply the events in the transaction that stores them (the
                               * events job's commit, in a savepoint), so there is no events
                               * job unless that fails: for a store with one writer (SQLite),
                               * where the job's commit would run on that writer anyway */
    bool ensure_apart;        /* an events job creates its tracks' new profiles in a short
                               * transaction of its own before the job's (a store shared by
                               * nodes: the job's transaction then never waits on another
                               * job's to learn whether a new profile exists) */
};

enum ingest_status {
    INGEST_ACCEPTED = 0,  /* stored now; will be processed */
    INGEST_DUPLICATE = 1, /* seen within the window; acknowledged, not processed again */
};

struct ingest_outcome {
    uint8_t *status;   /* per res->events[i]: enum ingest_status; caller's array */
    int64_t *ids;      /* per event: the stored event id (the earlier one for duplicates) */
    size_t accepted, duplicates;
};

/* ingest_accept: in one store_write, store every event of res (source_id scopes the
 * dedup) and, for those newly accepted, apply them there (ig->apply_at_accept: the events
 * job's commit, in its own savepoint) or, when not asked or that failed, enqueue one
 * INGEST_JOB_KIND job. Returns 0 once durable, or the store's error (nothing stored
 * then). out's arrays must hold res->n_events entries. When a job was enqueued and
 * ig->cache is set, the newly accepted events move into the cache once durable: their
 * json, serialized, user_id and message_id are NULL afterwards (a duplicate's, and all
 * events applied at accept, stay in res). */
int ingest_accept(struct ingest *ig, int64_t source_id, struct seg_result *res,
                  struct ingest_outcome *out, struct herr *err) HR_MUSTCHECK;

/* ingest_events_run: the job handler for INGEST_JOB_KIND (ctx: struct ingest *). Loads
 * the events and applies them in one transaction with the job's ack. */
void ingest_events_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r);

/* ingest_apply_event: apply one stored event (id event_id) inside t: catalog, profiles,
 * groups, aliases, then the trigger. Exposed for tests. Returns 0 or a store error. */
int ingest_apply_event(struct ingest *ig, struct store_txn *t, const cJSON *event,
                       int64_t event_id, int64_t received_ms);

#endif
