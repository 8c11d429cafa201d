/* send_int.h: helpers shared by the files of the sending pipeline (send.c, route.c,
 * deliver.c) and nothing else. */
#ifndef HERALD_ENGINE_SEND_INT_H
#define HERALD_ENGINE_SEND_INT_H

#include "send.h"

#include "../util/channel.h"
#include "../util/id.h"
#include "../util/json.h"

/* send__history: append a history event {ts, type, ...fields of body} to message id;
 * body (may be NULL) stays the caller's. */
int send__history(struct store_txn *t, struct str id, int64_t ts, const char *type,
                  const cJSON *body);
/* send__history_json: the stored form of that event (caller frees), for work prepared
 * off the writer: store_history_append(t, id, ts, type, it). Pure. */
char *send__history_json(int64_t ts, const char *type, const cJSON *body);
/* send__set_json: replace a message_rec string field with the serialization of v; the
 * bytes live in arena a. */
struct str send__json_str(struct arena *a, const cJSON *v);
/* send__enqueue: a job of `kind` with JSON payload v at run_at (0: now). */
int send__enqueue(struct store_txn *t, const char *kind, const cJSON *v, int64_t run_at_ms);
/* send__enqueue_bulk: the same for a fan-out's message (job_spec.bulk: when handed over it
 * waits behind other jobs, so transactional sends overtake a fan-out). */
int send__enqueue_bulk(struct store_txn *t, const char *kind, const cJSON *v, int64_t run_at_ms);
/* send__final: set the message's final status with reason/error and its history event
 * (UNDELIVERABLE, UNROUTABLE, UNMAPPED), inside t. */
int send__final(struct store_txn *t, struct message_rec *m, struct arena *a, const char *status,
                const char *reason, const char *error, const cJSON *extra, int64_t now);
/* send__enqueue_one: inside t, create message msg_id for recipient r of the (validated)
 * message msg (its `to` replaced by r), its ENQUEUED history and its route job (bulk:
 * a fan-out's message, whose route and first deliver jobs yield to other jobs; see
 * send__enqueue_bulk). data_event > 0 (with e->event_data set): msg's data is that
 * stored event's run data, and the spec keeps the reference instead (see
 * engine_send_enqueue_ev). HR_CONFLICT when msg_id exists already (a replay: nothing
 * written). */
int send__enqueue_one(struct engine *e, struct store_txn *t, const cJSON *msg,
                      const cJSON *r, const char *msg_id, const char *request_id,
                      const char *run_id, const cJSON *origin, bool bulk,
                      int64_t data_event);
/* send__data_by_ref: a message whose data is stored event data_event's is stored with
 * that event's id instead of a copy of its data (send__enqueue_one): data_event > 0
 * and the engine derives event data (e->event_data). */
static inline bool send__data_by_ref(const struct engine *e, int64_t data_event)
{
    return data_event > 0 && e && e->event_data;
}
/* send__is_final: a status after which nothing more happens. */
bool send__is_final(struct str status);

/* A route job's commit, run inside t before the delivery's own when the route job
 * delivered its message itself. It writes the routing except the message row and its
 * history events (the outputs document, unless sent): *m (its strings in a) is the
 * message as routing leaves it
 * (ROUTED, its state), for the caller to write with the attempt's outcome; m->id.len is
 * 0 when the message is gone. *hist (in a; *nhist of them): the routing's history events,
 * for the caller to append ahead of the attempt's, all in one call (one row). sent: the
 * attempt sent, so no later attempt needs the rendered content: the outputs document is
 * not written (engine_message_outputs reads the RENDERED event, which holds the same),
 * and an earlier routing's is deleted.
 * *applied: false when it wrote nothing (the message was canceled, finished or deleted
 * meanwhile; *m is then as stored, *nhist 0). Returns 0 or a store error. */
typedef int (*send__route_commit_fn)(struct store_txn *t, void *arg, struct arena *a,
                                     struct message_rec *m, struct history_row **hist,
                                     size_t *nhist, bool sent, bool *applied);

/* send__deliver_fused: the route job j of message m (routed to exactly one channel,
 * whose state is in `state`, content rendered) starts the channel's first attempt
 * itself, the way a send.deliver job would (suppression, provider, limits, then the
 * call), so the message is routed and delivered with one commit: when the call ends,
 * route_commit(route_arg) runs first in the delivery's transaction. Returns true when the
 * call started: r says ASYNC, content was taken, and a (j's arena) with route_arg must
 * live until the commit. false: nothing started, content and r untouched; the caller
 * commits its route as usual (a send.deliver job does the rest: a provider at its
 * limit, a suppressed address, a removed provider, a store error); *defer_at, when not
 * 0, is when the provider's limiter expects a slot or token (the deliver job's run_at:
 * the limiter already counted this wait). state stays the caller's, and must be the
 * state route_commit writes: the commit of an attempt that sent writes it with the
 * channel marked sent, printed before the commit. */
bool send__deliver_fused(struct engine *e, const struct job *j, struct arena *a,
                         struct job_result *r, const struct message_rec *m, const char *channel,
                         const cJSON *state, struct content *content,
                         send__route_commit_fn route_commit, void *route_arg,
                         int64_t *defer_at);

#endif
