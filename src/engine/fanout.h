/* fanout.h: sends to many recipients that are never all in memory: a send to a list or a
 * list pattern (`to.list_id`, `to.list_pattern`, the `send-list` automation step) and
 * Courier's bulk jobs.
 *
 * One fan-out is one document in the "fanouts" collection (id = the request id, or the
 * bulk job id) holding the message, the source of its recipients and a cursor, plus one
 * "send.fanout" job. Each run of that job reads ONE page of recipients after the cursor
 * (FANOUT_PAGE: store_list_members for a list, the job's user documents for a bulk job)
 * and commits, in the job's own transaction, that page's messages (with their route
 * jobs), the advanced cursor and the next "send.fanout" job: so a fan-out of any size
 * holds one page in memory, other jobs run between its pages, and after kill -9 it
 * resumes from the last committed cursor. Message ids derive from (request id,
 * recipient), so a page run twice finds its messages instead of making new ones.
 * Each page logs a progress line (send.fanout).
 * Pacing: the next page is read only once the last message of the previous page is final
 * (or FANOUT_PACE_MAX_MS after that page, or at once for a delayed send): the queue runs
 * jobs in (run_at, id) order, so without it a fan-out would pile its whole audience into
 * the queue ahead of any transactional send made meanwhile; with it at most about one
 * page is ahead of such a send; and the page's route and first deliver jobs are bulk jobs
 * (job_spec.bulk), which the queue runs only when nothing else waits, so such a send
 * overtakes the page too.
 * Listing: each fan-out also has a key in a newest-first index, made with its document
 * (fanout_list.c), which GET /bulk pages through. */
#ifndef HERALD_ENGINE_FANOUT_H
#define HERALD_ENGINE_FANOUT_H

#include "send.h"

#define SEND_FANOUT_KIND "send.fanout"
#define FANOUT_PAGE 1000          /* recipients per job run (and per transaction) */
#define FANOUT_PACE_POLL_MS 50    /* the next page waits while the last one is in flight... */
#define FANOUT_PACE_MAX_MS 10000  /* ...for at most this long */
#define BULK_USERS_MAX 1000       /* users in one addUsers call */
#define BULK_USER_MAX_BYTES 65536 /* one user's JSON */

/* engine_fanout_target: the list id or pattern of a message whose `to` is a list
 * recipient ({list_id} or {list_pattern}), or NULL (borrowed from msg). */
const char *engine_fanout_target(const cJSON *msg);

/* engine_fanout_start: inside t, start the fan-out of the (validated) message msg to its
 * list recipient, under request_id (run_id, origin as engine_send_enqueue). Returns 0,
 * HR_CONFLICT when request_id's fan-out exists already (a replay), or a store error. */
int engine_fanout_start(struct engine *e, struct store_txn *t, const cJSON *msg,
                        const char *request_id, const char *run_id, const cJSON *origin)
    HR_MUSTCHECK;

/* engine_list_messages: the messages sent through list (or pattern) `list` (exactly as the
 * send named it), newest first, up to limit (1..1000) after cursor (empty: from the
 * start; else a key this function returned). Each fan-out message is indexed by the list
 * it was sent through when its page commits. *out and *keys (each message's cursor key)
 * are arena arrays of *n. HR_INVAL for a cursor of another list. Any thread. */
int engine_list_messages(struct store *s, const char *list, const char *cursor, size_t limit,
                         struct arena *a, struct message_rec **out, struct str **keys,
                         size_t *n);

/* engine_fanout_run: the "send.fanout" job handler (ctx: struct engine *). */
void engine_fanout_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r);

/* ---- bulk jobs (Courier's /bulk) ---- */

/* engine_bulk_validate: check Courier's InboundBulkMessage `message` ({event, template?,
 * content?, data?, brand?, override?, locale?}); HR_INVAL with a message naming the
 * field. */
int engine_bulk_validate(const cJSON *message, struct herr *err);
/* engine_bulk_create: inside t, a new job (status CREATED) with id job_id for the
 * validated message. HR_CONFLICT when job_id exists (a replay). */
int engine_bulk_create(struct engine *e, struct store_txn *t, const char *job_id,
                       const cJSON *message) HR_MUSTCHECK;
/* engine_bulk_users_validate: users is an array of 1..BULK_USERS_MAX objects, each an
 * InboundBulkMessageUser of at most BULK_USER_MAX_BYTES; HR_INVAL/HR_TOOBIG naming the
 * first bad one. */
int engine_bulk_users_validate(const cJSON *users, struct herr *err);
/* engine_bulk_add_users: inside t, append the (validated) users to job job_id.
 * HR_NOTFOUND: no such job; HR_CONFLICT: the job runs already (err says so). */
int engine_bulk_add_users(struct engine *e, struct store_txn *t, const char *job_id,
                          const cJSON *users, struct herr *err) HR_MUSTCHECK;
/* engine_bulk_run: inside t, start the job's fan-out; running a job that runs or ran
 * already is a no-op (HR_OK). HR_NOTFOUND: no such job. */
int engine_bulk_run(struct engine *e, struct store_txn *t, const char *job_id) HR_MUSTCHECK;
/* engine_bulk_get: Courier's {job: {definition, enqueued, failures, received, status}}
 * (new, caller owns). HR_NOTFOUND: no such job. Any thread. */
int engine_bulk_get(struct store *s, const char *job_id, cJSON **out);
/* engine_bulk_users: Courier's {items: [{...user, status, messageId}], paging: {cursor,
 * more}}, up to limit (1..1000) users after cursor (empty: from the start); new, caller
 * owns. HR_NOTFOUND: no such job; HR_INVAL: a cursor that is not this job's. */
int engine_bulk_users(struct store *s, const char *job_id, const char *cursor, size_t limit,
                      cJSON **out);

/* ---- listing (fanout_list.c): GET /bulk ---- */

enum fanout_kind { FANOUT_KIND_BULK, FANOUT_KIND_LIST };
#define FANOUT_LIST_MAX 100 /* fan-outs on one page of engine_fanout_list */

/* engine_fanout_list: one page of the fan-outs of kind, newest first (by creation; in
 * the same millisecond by id), as {items: [...], paging: {cursor, more}} (new, caller
 * owns): up to limit (1..FANOUT_LIST_MAX) after cursor (NULL or empty: from the newest;
 * else a paging.cursor this function answered for the same kind). A bulk job's item is
 * {id, status, created, completed?, received, enqueued, failures, event, template}; a list
 * send's {requestId, list_id | list_pattern, template, status, created, completed?,
 * enqueued, failures, done} (times ISO 8601, template null when the message has none).
 * It reads limit + 1 index keys and the fan-outs on the page, nothing more. HR_INVAL: a
 * cursor that is not one of this kind's. Any thread. */
int engine_fanout_list(struct store *s, enum fanout_kind kind, const char *cursor, size_t limit,
                       cJSON **out);

#endif
