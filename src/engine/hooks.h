/* hooks.h: status webhooks out. Operators configure endpoints (url, secret, an optional
 * list of statuses, enabled); every change of a message's status enqueues, in the
 * transaction that writes it (the store's on_message hook), one "hooks.deliver" job per
 * matching endpoint carrying a Courier-shaped event
 *   {"id": "evt_<hex>", "type": "message:updated", "created": ms,
 *    "data": <the GET /messages/{id} record>}
 * The job POSTs it through the webhook provider (same signing: courier-signature /
 * X-Herald-Signature = t=<ms>,signature=<hex HMAC-SHA256(secret, "<t>.<body>")>, same
 * egress guard), with Idempotency-Key and X-Herald-Event-Id set to the event id, which
 * stays the same over retries and replays (at-least-once: receivers de-duplicate on it).
 * 5xx, 429, timeouts and connection errors retry with the queue's backoff (Retry-After
 * honoured); other answers end the delivery failed. Every attempt is logged per endpoint
 * (the last HOOKS_LOG_MAX), and a logged delivery can be replayed.
 *
 * Storage (documents): HOOKS_COLL/HOOKS_DOC holds {"endpoints": [...]}, one document so
 * the status write reads one row; HOOKS_LOG_COLL/<endpoint id> {"deliveries": [...]},
 * newest first; HOOKS_EVENT_COLL/<delivery id> {"endpoint", "event"} while the delivery
 * is in the log (for replay). */
#ifndef HERALD_ENGINE_HOOKS_H
#define HERALD_ENGINE_HOOKS_H

#include "../queue/queue.h"
#include "../store/store.h"

#include <cjson/cJSON.h>

#include <stdbool.h>

#define HOOKS_JOB_KIND "hooks.deliver"
#define HOOKS_COLL "webhooks"
#define HOOKS_DOC "endpoints"
#define HOOKS_LOG_COLL "webhook_log"
#define HOOKS_EVENT_COLL "webhook_events"
#define HOOKS_ENDPOINTS_MAX 20
#define HOOKS_LOG_MAX 50
#define HOOKS_SECRET_MAX 256
#define HOOKS_URL_MAX 2048
#define HOOKS_NONE_TTL_MS 1000 /* see hooks_on_message */
#define HOOKS_MAX_ATTEMPTS 12 /* with the queue's backoff (1 s doubling, capped at 1 h,
                                 full jitter): retried for up to about 5 hours */

/* hooks_on_message: the store's on_message hook (arg: struct engine *). When m's status
 * differs from the stored one (or m was just created), enqueue the event for every
 * enabled endpoint whose filter lets the status through, inside t. With endpoints it
 * reads their document (and the stored message) in t on every call; when it found no
 * enabled endpoint it does not read again for HOOKS_NONE_TTL_MS (or until
 * hooks_changed), so a process without webhooks pays one read per second, not one per
 * status change. Returns 0 or a store error. Runs on whatever thread holds t. */
int hooks_on_message(void *arg, struct store_txn *t, const struct message_rec *m, bool created);

/* hooks_changed: the endpoints were changed by this process (after its commit): the next
 * status change reads them again. Endpoints added on another node (PostgreSQL) reach
 * this node's status changes within HOOKS_NONE_TTL_MS. Any thread. */
void hooks_changed(void);

/* hooks_deliver_run: the "hooks.deliver" job handler (ctx: struct engine *). Starts the
 * POST on the transport and answers ASYNC (a slow endpoint holds no worker); the outcome
 * and its log entry are committed with the job when the call ends (at most the engine's
 * provider timeout). */
void hooks_deliver_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r);

/* hooks_replay: inside t, enqueue delivery `delivery_id` of endpoint `endpoint_id` again
 * (same event, same event id). HR_NOTFOUND when the delivery is no longer logged or
 * belongs to another endpoint. */
int hooks_replay(struct store_txn *t, struct str endpoint_id, struct str delivery_id)
    HR_MUSTCHECK;

/* hooks_doc_list: inside t, document coll/id parsed into *doc (caller owns; an empty
 * object when absent or not an object) with *list its array member `name` (added when
 * missing; owned by *doc). Returns 0 or a store error (then *doc is NULL). */
int hooks_doc_list(struct store_txn *t, const char *coll, struct str id, const char *name,
                   cJSON **doc, cJSON **list) HR_MUSTCHECK;

/* hooks_status_known: s is a Courier message status (ENQUEUED, SENT, OPENED...). Pure. */
bool hooks_status_known(const char *s);

#endif
