/* send.h: the sending pipeline, from an accepted send request to a provider's answer.
 *
 *   engine_send_enqueue (inside the caller's transaction: POST /send, an automation step)
 *     one message per recipient, status ENQUEUED, history ENQUEUED,
 *     one "send.route" job each (run_at = the delay)
 *   "send.route" job: template (published only), profile (stored + received), brand,
 *     routing -> the channels to try; render each (history RENDERED, /output);
 *     status ROUTED; one "send.deliver" job per channel.  No usable channel:
 *     UNROUTABLE (NO_CHANNELS / NO_PROVIDERS).  One channel whose first provider can
 *     take the call now (the common case): the route job makes that first attempt
 *     itself, as the deliver job would, and commits ROUTED and the attempt's outcome
 *     in one transaction (no send.deliver job; later attempts, failover and a provider
 *     at its limit still go through send.deliver jobs).
 *   "send.deliver" job: one channel, providers in priority order:
 *     SENT -> history DELIVERING + SENT, status SENT;
 *     permanent error -> next provider (failover), then for `single` routing the next
 *       channel, then UNDELIVERABLE with the provider's words;
 *     transient error -> the same provider again after backoff (Retry-After honoured),
 *       until the message timeout (72 h default), then as permanent.
 *     provider at its limit (limit.h: concurrency, per_second; checked on this node
 *       before the call) -> the job is deferred (JOB_OUT_DEFER) to when a slot or
 *       token is expected: no call, no attempt counted, no history.
 * Each outcome is committed with the job's ack, so a crash repeats at most the one
 * provider call that was in flight; provider calls carry a stable idempotency key
 * (message id + channel + provider). */
#ifndef HERALD_ENGINE_SEND_H
#define HERALD_ENGINE_SEND_H

#include "../queue/queue.h"
#include "../render/hbs.h"
#include "../store/store.h"
#include "limit.h"

#include <cjson/cJSON.h>

#define SEND_ROUTE_KIND "send.route"
#define SEND_DELIVER_KIND "send.deliver"
#define SEND_MAX_RECIPIENTS 1000
#define SEND_TIMEOUT_DEFAULT_MS (72LL * 3600 * 1000)
/* a stored message spec's (or run's) reference to the event whose data it has
 * (engine_spec_data); never taken from a caller's message */
#define SPEC_DATA_EVENT "data_event"

/* calls in flight per provider on one node when neither --provider-concurrency nor the
 * provider's limits say otherwise: deliveries are asynchronous, so this bounds what a
 * provider sees from us, not how many workers it holds. At 100 ms per answer, 256 capped
 * a node at 2,560 calls/s (bench/slow.sh: 1,903/s); 1000 let it reach 3,312/s, the CPU
 * then the bound, for ~40 MB more at its peak (190 MB against 150 MB) */
#define ENGINE_PROVIDER_CONCURRENCY_DEFAULT 1000

struct engine {
    struct store *store;          /* not owned */
    struct hclock *clock;         /* not owned */
    struct hbs_cache *hbs;        /* compiled templates; owned by whoever made the engine */
    int64_t message_timeout_ms;   /* default SEND_TIMEOUT_DEFAULT_MS */
    int64_t provider_timeout_ms;  /* one provider call; default 10000 */
    int64_t backoff_base_ms;      /* first retry after a transient error; default 5000 */
    int64_t backoff_max_ms;       /* default 3600000 */
    struct limit_table *limits;   /* per-provider limits of this node; NULL: none applied.
                                     Owned by whoever made the engine */
    int provider_concurrency;     /* a provider's concurrency cap when its document sets
                                     none (main: ENGINE_PROVIDER_CONCURRENCY_DEFAULT);
                                     0: no cap */
    struct defcache *defs;        /* event name -> linked automations (defcache.h); NULL:
                                     read for every event. Owned by whoever made the engine */
    struct defcache *provs;       /* channel -> its enabled providers (defcache.h); NULL:
                                     read for every message. Owned as defs */
    struct defcache *tmpls;       /* template id -> its latest published version
                                     (defcache.h); NULL: read for every message. Owned as
                                     defs */
    struct defcache *brands;      /* brand id ("": the default brand) -> the brand
                                     (engine_brand_cached); NULL: read for every message.
                                     Owned as defs */
    const char *public_url;       /* base of one-click unsubscribe links (--public-url);
                                     NULL or "": no links. Not owned */
    const char *unsub_mailto;     /* List-Unsubscribe mailto address, may be NULL */
    int64_t unsub_ttl_s;          /* unsubscribe tokens' lifetime; 0: no expiry */
    const char *track_url;        /* where recipients reach this server (open pixel and
                                     click links, tracking.h: --public-url, else
                                     http://<listen>), no trailing slash; NULL:
                                     tracking is not applied. Not owned */
    /* the run data of a stored event's parsed body (main: ingest's seg_run_data_new; a
     * new object, caller owns). Set: runs and messages started by an event keep a
     * reference to it (data_event) instead of a copy of its data, and loads derive the
     * data again from the stored event. NULL: they keep their own copy */
    cJSON *(*event_data)(const cJSON *event);
    /* the same as event_data, made of event itself, which it takes (main: ingest's
     * seg_run_data_take): engine_event_data's parsed body is not copied. NULL: event_data */
    cJSON *(*event_data_take)(cJSON *event);
    /* the same as event_data, made of references into event (main: ingest's
     * seg_run_data_view): automation_trigger_event's run context, built while the event
     * is at hand, when its data_new is event_data. NULL: event_data */
    cJSON *(*event_data_view)(const cJSON *event);
};

/* engine_send_validate: check a Courier v2 `message` object (to, template|content, data,
 * routing, channels, providers, delay, metadata, timeout, brand_id). HR_INVAL with a
 * message naming the field. */
int engine_send_validate(const cJSON *message, struct herr *err);

/* engine_send_unsupported: refuse (HR_INVAL, err naming the field, e.g. "message.expiry is
 * not supported yet") a v2 message from a caller of /send that sets a Courier field herald
 * does not honour yet (expiry, preferences, context, metadata.utm, delay.timezone,
 * timeout.channel/provider/escalation/criteria, channel and provider options other than
 * providers/override, recipient tenant_id/context/preferences/account_id/ms_teams/
 * pagerduty) or a member that is no Courier field. Null members count as absent. */
int engine_send_unsupported(const cJSON *message, struct herr *err);

/* engine_send_v1_to_v2: turn a legacy v1 body {event, recipient, profile, data, brand,
 * override} into a v2 message (new, caller owns). */
cJSON *engine_send_v1_to_v2(const cJSON *body);

/* engine_send_enqueue: inside transaction t, create one message per recipient of the
 * (validated) message and their route jobs. request_id names the request (and the single
 * message when there is one recipient); run_id (may be NULL) ties it to an automation
 * run; origin (may be NULL) is a JSON object recorded in the ENQUEUED history event
 * (e.g. {"automation": id, "step": n}). Returns 0, HR_CONFLICT when request_id exists
 * already (a replay), or a store error. */
int engine_send_enqueue(struct engine *e, struct store_txn *t, const cJSON *message,
                        const char *request_id, const char *run_id, const cJSON *origin)
    HR_MUSTCHECK;

/* engine_send_enqueue_ev: engine_send_enqueue of a message whose data is, member for
 * member, e->event_data of stored event data_event (> 0; an automation's send step that
 * adds no data of its own, in a run started by that event): its spec stores the
 * reference instead of the data (engine_spec_data puts it back). With data_event 0, or
 * e->event_data NULL, the same as engine_send_enqueue. */
int engine_send_enqueue_ev(struct engine *e, struct store_txn *t, const cJSON *message,
                           const char *request_id, const char *run_id, const cJSON *origin,
                           int64_t data_event) HR_MUSTCHECK;

/* engine_event_data: *out = e->event_data of stored event event_id's body (new, caller
 * owns; NULL on error). HR_NOTFOUND when the event is not stored (or e->event_data is
 * NULL), HR_INVAL when its body is unreadable, else a store error. Reads committed rows
 * (not inside a transaction). */
int engine_event_data(struct engine *e, int64_t event_id, cJSON **out) HR_MUSTCHECK;

/* engine_spec_data: a stored message spec that refers to its event's data (a
 * "data_event" member, no "data") gets its "data" back, derived from the stored event;
 * the reference is removed. Anything else is left alone. Returns 0, or
 * engine_event_data's error (spec unchanged). */
int engine_spec_data(struct engine *e, cJSON *spec) HR_MUSTCHECK;

/* engine_message_outputs: *out (caller owns) = message id's rendered outputs,
 * {"results": [{channel, channel_id, content}]} of its last routing: the "outputs"
 * document the routing wrote, or, for a message routed to one channel and sent by one
 * job (whose routing writes none: send__route_commit_fn), built from that routing's
 * RENDERED history event (the last one, followed by a SENT), which holds the same
 * content. HR_NOTFOUND when it has none (never routed, routed to nothing, or a routing
 * that failed); else a store error, or HR_IO for a stored one that does not read. */
int engine_message_outputs(struct store *s, struct str id, struct arena *a,
                           cJSON **out) HR_MUSTCHECK;

/* engine_history_body: *out = the body of history row h of message m as the history API
 * shows it. An ENQUEUED row does not hold the message's data (the spec has it, or its
 * reference to the event: see send__enqueue_one): its body comes back with `data` added.
 * Other rows, rows written with their data, and rows of a message whose event is gone
 * come back as stored. *out lives in a (or is h->body). Returns 0, or a store error
 * (transient) when the data cannot be read now. */
int engine_history_body(struct engine *e, const struct message_rec *m,
                        const struct history_rec *h, struct arena *a,
                        struct str *out) HR_MUSTCHECK;

/* engine_message_cancel: inside t, cancel message id when nothing was sent yet. Returns
 * 0 (canceled now or before), HR_CONFLICT (too late: sent or final), HR_NOTFOUND. */
int engine_message_cancel(struct store_txn *t, struct str id, int64_t now_ms) HR_MUSTCHECK;

/* Job handlers (ctx: struct engine *). */
void engine_route_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r);
void engine_deliver_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r);

/* Lookups shared with the API (documents written by the API's resources). */
/* engine_template_published: latest published snapshot of template id (caller owns).
 * HR_NOTFOUND: no such template (or archived); HR_CONFLICT: never published. */
int engine_template_published(struct store *s, struct str id, cJSON **out);
/* engine_channel_providers: the enabled provider records of channel, by priority then
 * creation, as a set (defcache.h: ids[i] and defs[i], read-only; defset_unref it):
 * from e->provs when loaded within DEFCACHE_TTL_MS and no provider changed in this
 * process since (defcache_changed), else read. A route chooses from it; the delivery
 * reads its provider's record again, so a provider disabled on another node within the
 * TTL is not called. Returns HR_OK or the store's error (*out NULL then). */
struct defset;
int engine_channel_providers(struct engine *e, const char *channel, struct defset **out);
/* engine_template_cached: engine_template_published through e->tmpls (the same rules as
 * engine_channel_providers; only a published version is cached). On HR_OK *out is the
 * version (read-only) and *hold the reference that keeps it: defset_unref it; on an
 * error both are NULL. */
int engine_template_cached(struct engine *e, const char *id, struct defset **hold,
                           const cJSON **out);
/* engine_brand_cached: brand id, or with id NULL the workspace's default brand (setting
 * default_brand_id), through e->brands (the same rules as engine_channel_providers). On
 * HR_OK *out is the brand (read-only), or NULL when there is none (no such brand, no
 * default, or a record that does not parse), and *hold the reference that keeps it:
 * defset_unref it. HR_NOTFOUND (both NULL) for an id no brand can have (empty, or over
 * 128 bytes); on a store error both are NULL too. */
int engine_brand_cached(struct engine *e, const char *id, struct defset **hold,
                        const cJSON **out);

#endif
