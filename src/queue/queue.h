/* queue.h: the durable job queue inside the store, and the worker pool that runs it.
 *
 * A job's life (state kept in the store, one transition per committed transaction):
 *
 *   QUEUED --lease (run_at <= now)--> LEASED --handler DONE--> (deleted, with the
 *      ^                                 |                      handler's commit)
 *      |                                 +--handler RETRY, attempts left--> QUEUED
 *      |                                 |     (run_at = now + backoff, or Retry-After)
 *      +--handler DEFER (could not start: a limit was reached; attempt not counted)
 *      |                                 |     (run_at = when the handler says)
 *      +--lease expired (node died)------+   (taken over: `retaken` + 1; taken over again
 *      |                                 |    it is a suspect, leased one per node at a
 *      |                                 |    time; at max_retaken it goes DEAD unrun:
 *      |                                 |    a poison pill)
 *      +--shutdown: lease given back-----+
 *                                        +--handler FAIL, or attempts used up--> DEAD
 *
 * Enqueue happens inside the caller's own write transaction (outbox): the job exists
 * exactly when the caller's write committed. Ack, retry and dead-letter check the
 * lease token, so a worker whose lease expired cannot commit over another's.
 * A handler's `commit` callback runs in the same transaction as the ack or retry, so
 * "the result and the next jobs" are committed together.
 *
 * Threads and the life of one run (engine v2, issue 14):
 *   worker:    lease a batch (one store_write) -> for each job: handler runs ->
 *                DONE/RETRY/FAIL/DEFER: the result goes to the completer, the worker
 *                  takes the next job at once (it never waits for its own ack);
 *                ASYNC: the handler started the work (a provider call) and keeps the
 *                  job's ticket; the job stays leased, the worker is free at once.
 *   any thread: queue_job_finish(q, ticket, result) when async work ends (non-blocking).
 *   completer: one thread; takes every finished job waiting (up to QUEUE_COMMIT_BATCH)
 *              and commits them in ONE store_write (a suspected poison pill's first and
 *              alone, see queue.c's suspect_id): per job, in its own nested savepoint,
 *              the handler's commit callback + ack/retry/defer/dead. A job whose commit
 *              callback fails is retried (without the callback) in the same transaction;
 *              a full disk (or a busy store) is waited out with the leases kept, so a
 *              provider call is never repeated because its outcome could not be written.
 * A job's arena (the handler's `a`) lives until its commit, whatever thread ends it.
 *   renewal:   the completer also renews (store_job_extend, one write) the leases with
 *              half or less left of the jobs in hand: an ASYNC job in flight or one
 *              waiting for its commit, so neither a slow call nor a commit behind a long
 *              queue lets another runner take it over and run it again. Not a handler
 *              running on a worker's thread (a stuck one loses its lease, and the
 *              poison-pill guard counts it), nor queue_run_once's jobs, nor a job in
 *              hand for renew_max_ms (15 minutes): an end that never comes does not
 *              hold a job for the life of the process.
 *
 * Waking: a commit that inserted or re-queued jobs wakes ONE idle worker (store job
 * listener; on PostgreSQL also other nodes' NOTIFY, one per commit); a worker that
 * leased a full batch wakes one more. An idle worker sleeps until the earliest queued
 * run_at (read from the store when it goes idle) or a wake: an idle server writes
 * nothing. Only worker 0 also wakes every lease_ms/4 (15 s by default) to lease, so the
 * expired leases of a dead node are noticed.
 */
#ifndef HERALD_QUEUE_QUEUE_H
#define HERALD_QUEUE_QUEUE_H

#include "../store/store.h"
#include "../util/arena.h"
#include "../util/clock.h"
#include "../util/rc.h"

#include <stdint.h>

struct queue;

/* DEFER: the handler did not start the work (e.g. its provider is at its concurrency or
 * rate limit). The job runs again at retry_at_ms without counting an attempt and without
 * touching last_error, so it can be deferred any number of times. A pool worker's
 * deferral without a commit callback is parked: the job stays leased to this node and
 * waits in memory (no store write), when its lease outlasts the wait by half a lease
 * (the check a batch makes before running a job) plus a tenth; otherwise, and for
 * queue_run_once, a suspect, a job taken over after a crash (its deferral's commit
 * clears retaken), a stopping queue or a full park (QUEUE_PARK_MAX, QUEUE_PARK_PER_KEY),
 * it goes back to QUEUED in the store. With wait_key set, queue_unpark ends the wait
 * early (a slot came free): the job runs at the later of retry_at_ms and
 * QUEUE_PARK_KEYED_MS from now (within its lease) unless woken first, and a woken job
 * that defers again (a fresh job took the slot) tries again at retry_at_ms, not at the
 * end of the line. A crash loses
 * nothing: the lease runs out and the job is taken over as any job in hand (that
 * takeover counts an attempt and a retaken, as for any job in hand). */
/* ASYNC: the handler started the work and will end it later with queue_job_finish on
 * r->ticket; the job stays leased, the handler's arena stays alive, nothing is committed
 * now (commit, retry_at_ms and error of this result are ignored). */
enum job_outcome {
    JOB_OUT_DONE = 0,
    JOB_OUT_RETRY = 1,
    JOB_OUT_FAIL = 2,
    JOB_OUT_DEFER = 3,
    JOB_OUT_ASYNC = 4,
};

#define QUEUE_COMMIT_BATCH 64  /* finished jobs committed in one store_write, at most:
                                  bounds how long one transaction holds its rows */
#define QUEUE_PENDING_MAX 4096 /* jobs run but not committed yet (async in flight or
                                  waiting for the completer); workers lease no more
                                  while this many are pending */
#define QUEUE_PARK_MAX 4096    /* deferred jobs waiting in memory, at most */
#define QUEUE_PARK_PER_KEY 1024 /* ... of them waiting for one key (a provider's slot):
                                   the rest are queued in the store, where another node
                                   (with its own slots) may take them */
#define QUEUE_PARK_KEYED_MS 2000 /* a keyed park's fallback timer (less when its lease
                                    ends sooner): queue_unpark is what ends it, this only
                                    covers a wake that never comes */

struct job_ticket; /* one running job, owned by the queue until its commit */

struct job_result {
    int outcome;          /* enum job_outcome; DONE by default */
    int64_t retry_at_ms;  /* RETRY: absolute time to run again; 0 = computed backoff.
                             DEFER: absolute time to run again; 0 = in idle_poll_ms */
    char error[512];      /* RETRY/FAIL: why (kept on the job as last_error) */
    store_txn_fn commit;  /* optional: runs in the transaction that acks/retries the job */
    void *commit_arg;
    void (*committed)(void *arg); /* optional, with commit: runs once after the
                                     transaction that held commit committed (never when it
                                     did not, nor when the job was retried without commit),
                                     on the committing thread, before settled; its arg is
                                     commit_arg. For what must count only once it is
                                     durable: commit may run more than once (a store retry) */
    void (*settled)(void *arg); /* optional: runs once after that transaction (committed
                                   or not), on the committing thread (a parked deferral:
                                   at once, on the thread that finished it), before the
                                   job's arena goes: frees what the work held until its
                                   outcome was durable (a provider's limit slot) */
    void *settled_arg;
    struct job_ticket *ticket; /* in: set by the queue before the handler runs; a handler
                                  answering ASYNC passes it to queue_job_finish */
    uint64_t wait_key;    /* DEFER: what the job waits for (non-zero; e.g. a provider's
                             limit slot, limit_wait_key); queue_unpark(q, key) wakes it */
};

/* A handler runs one job. It may block on I/O (bounded by the lease time), or start the
 * work and answer ASYNC. Strings it keeps past its return live in arena `a`, which lives
 * until after the commit (for ASYNC: until after queue_job_finish's commit). */
typedef void (*job_run_fn)(void *ctx, const struct job *j, struct arena *a, struct job_result *r);

struct job_handler {
    const char *kind;  /* matches job_spec.kind */
    job_run_fn run;
    void *ctx;
};

struct queue_cfg {
    int workers;                   /* threads; default 4 */
    int64_t lease_ms;              /* default 60000 */
    int64_t renew_max_ms;          /* a job in hand this long is not renewed any more
                                      (renewal, above); 0: the longer of 15 min and
                                      10 leases */
    int64_t backoff_base_ms;       /* first retry delay; default 1000 */
    int64_t backoff_max_ms;        /* cap on one delay; default 3600000 */
    uint32_t max_attempts;         /* default for jobs that give 0; default 25 */
    int64_t idle_poll_ms;          /* pause after a failed lease, and the DEFER default;
                                      default 250 (idle workers do not poll) */
    uint32_t max_retaken;          /* poison-pill guard: a job whose lease was taken over
                                      this many times in a row (its process died, or
                                      stalled, with it in hand; any committed outcome
                                      resets the count) is dead-lettered instead of run
                                      again; default 5. From the second takeover on it
                                      runs alone (one such suspect per node at a time),
                                      so only its own deaths count against it */
    int batch;                     /* jobs a worker leases (or takes from the ready list)
                                      per round; default 16. An idle worker takes
                                      unstarted jobs from a busy one's batch before
                                      leasing, so no job waits behind a slow one */
};

struct queue_stats {
    uint64_t done, retried, failed, dead, lost_lease; /* since start */
    uint64_t deferred;                                /* DEFER outcomes, since start */
    uint64_t taken;                                   /* jobs one worker took from another's
                                                         batch, since start */
    uint64_t commits;                                 /* completer store_writes, since start */
    uint64_t handed_off;                              /* follow-up jobs a commit inserted
                                                         leased and handed to the workers
                                                         (no lease write), since start */
    uint64_t in_flight;                               /* now: jobs run, not yet committed */
    uint64_t parked;                                  /* deferrals kept in memory (of
                                                         `deferred`; no store write),
                                                         since start */
    uint64_t unparked;                                /* of them woken by queue_unpark */
};

/* queue_cfg_defaults: fill the defaults above. */
void queue_cfg_defaults(struct queue_cfg *cfg);

/* queue_new: a queue over store s (not owned) with a handler table (copied; the
 * kinds and ctx pointers must outlive the queue). Registers itself as the store's
 * job listener. Caller owns the result; free with queue_free. */
struct queue *queue_new(struct store *s, struct hclock *clock, const struct queue_cfg *cfg,
                        const struct job_handler *handlers, size_t nhandlers);
void queue_free(struct queue *q); /* stops first if running; NULL is a no-op */

/* A handoff: jobs a write transaction inserts already leased to this node, handed to its
 * workers from memory once the transaction has committed (no lease write, no wake-lease
 * round trip). The queue's own commits use one for the follow-up jobs their handlers
 * enqueue; a caller outside the queue (ingest's accept) uses one explicitly:
 *
 *   struct queue_handoff h; queue_handoff_init(&h, q);
 *   store_write(fn) where fn: queue_handoff_reset(&h); ... queue_enqueue_to(t, &h, ...)
 *   rc == HR_OK ? queue_handoff_publish(&h) : (void)0; queue_handoff_cleanup(&h);
 *
 * fn must reset it first: a store may run fn again (a PostgreSQL deadlock retry). Only a
 * job due now, of a kind this queue handles, while the pool runs and its ready list
 * (1024) has room, is handed over; any other is queued as by queue_enqueue. q may be
 * NULL: every job is queued. */
struct ready;
struct queue_handoff {
    struct queue *q;
    struct ready *head, *tail; /* owned */
    size_t n, nbulk;           /* entries; of them bulk (job_spec.bulk) */
};
void queue_handoff_init(struct queue_handoff *h, struct queue *q);
void queue_handoff_reset(struct queue_handoff *h);   /* drops what it holds */
void queue_handoff_publish(struct queue_handoff *h); /* committed: to the workers */
void queue_handoff_cleanup(struct queue_handoff *h); /* frees what was not published */
/* queue_txn_sub: store_txn_sub for code that runs inside a job's commit (a handler's
 * commit callback): when fn's savepoint is rolled back, the jobs it handed over are
 * dropped with it. Use it, never store_txn_sub, below the queue
 * (scripts/check-layers.sh enforces it). */
int queue_txn_sub(struct store_txn *t, store_txn_fn fn, void *arg);
/* queue_txn_sub_to: queue_txn_sub outside the queue's commits (ingest's accept applying
 * its events in place): while fn runs, the jobs it enqueues (queue_enqueue) are handed
 * over through h (NULL: queued), and dropped from h when fn's savepoint is rolled back.
 * Returns fn's rc or the store's error. */
int queue_txn_sub_to(struct store_txn *t, struct queue_handoff *h, store_txn_fn fn, void *arg);
/* queue_enqueue_to: queue_enqueue, handing the job over through h when it can. */
int queue_enqueue_to(struct store_txn *t, struct queue_handoff *h, const struct job_spec *js,
                     int64_t *out_id) HR_MUSTCHECK;

/* queue_enqueue: insert a job inside the caller's transaction. The job's run_at
 * defaults to now (per the store's clock). Returns 0, HR_CONFLICT (dedup_key
 * already present; *out_id is the existing job) or a store error. */
int queue_enqueue(struct store_txn *t, const struct job_spec *js, int64_t *out_id) HR_MUSTCHECK;

/* queue_start: start cfg.workers threads. Returns 0 or HR_IO. */
int queue_start(struct queue *q) HR_MUSTCHECK;
/* queue_stop: stop leasing, give back leases of jobs not started, let running handlers
 * and in-flight ASYNC jobs finish and commit (up to timeout_ms; past it, it logs and
 * keeps waiting: async work ends within its transfer timeout), join the threads. Safe
 * to call twice. */
void queue_stop(struct queue *q, int64_t timeout_ms);
/* queue_job_finish: end an ASYNC job with its real result r (copied; r->ticket is
 * ignored): DONE/RETRY/FAIL/DEFER, commit callback and arg as a handler would give them.
 * Hands the job to the completer and returns at once; never blocks on the store, so it
 * may run on a transport's loop thread, or on the handler's own thread before the
 * handler returned ASYNC. Exactly once per ASYNC ticket; the ticket is gone after. */
void queue_job_finish(struct queue *q, struct job_ticket *t, const struct job_result *r);
/* (q may be NULL: the ticket knows its queue.) */
/* queue_wake: wake one idle worker (new jobs exist). Any thread. */
void queue_wake(struct queue *q);
/* queue_unpark: the parked job that has waited longest for `key` (job_result.wait_key)
 * runs now, and one worker is woken; nothing when none waits for it. Any thread, any
 * lock but the queue's (takes only q->mu): a limit's release calls it. q may be NULL. */
void queue_unpark(struct queue *q, uint64_t key);
/* queue_run_once: lease up to max runnable jobs and run them on the calling thread,
 * committing each on this thread (ASYNC ones when they finish: it waits for them);
 * *ran (may be NULL) gets how many ran. For tests and admin commands. */
int queue_run_once(struct queue *q, size_t max, size_t *ran);
void queue_get_stats(struct queue *q, struct queue_stats *out);

/* queue_backoff_ms: delay before retry number `attempt` (1-based): exponential from
 * base, capped at max, with full jitter from r in [0,1). Pure. */
int64_t queue_backoff_ms(const struct queue_cfg *cfg, uint32_t attempt, double r);

#endif
