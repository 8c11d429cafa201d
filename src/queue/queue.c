/* queue.c: the durable job queue (lease, run, commit the result) and the worker pool.
 *
 * One code path runs jobs for both the pool and queue_run_once: a `runner` leases a
 * batch in one store_write and runs each job's handler outside any transaction. Each run
 * is a `job_ticket` (a copy of the job, the handler's arena, the decided transition).
 * A finished ticket (at once, or later through queue_job_finish for ASYNC) goes to the
 * completer thread, which commits every ticket waiting in one store_write (each in its
 * own nested savepoint: the handler's commit callback + ack/retry/defer/dead). A pool
 * worker therefore never waits for a commit; queue_run_once commits its own tickets on
 * its own thread, one at a time, as before.
 *
 * A pool worker that finished its batch first takes unstarted jobs from the tail of
 * another worker's batch (copied into its own batch arena), then leases from the store:
 * a job never waits behind a slow one in the same batch (a 10 s provider call) while a
 * worker is idle, and cannot outlive its lease there.
 *
 * Locking: q->mu guards the stop/wake state, the stats, each runner's batch
 * cursor (jobs[next..n) are leased but not started), the completer's list, the
 * pending count and run_once's own list of finished tickets. q->mu is never held while
 * calling into the store or a handler, so queue_wake (called from the store's
 * writer thread) can never deadlock against a worker waiting on that writer.
 *
 * Outcome accounting (queue_stats and metrics_job_outcome), one per job run:
 *   done        acked (handler DONE)
 *   retry       re-queued with backoff or Retry-After (handler RETRY, or its commit failed)
 *   failed      dead-lettered by the handler's verdict (FAIL)
 *   dead        dead-lettered by the queue: attempts used up, lease expired too
 *               often (attempts or retaken: the poison-pill guard), or no handler
 *   lost_lease  the lease expired and another runner took the job; nothing committed
 *   deferred    run again later without counting the attempt (handler DEFER): parked
 *               in memory, still leased (park_try), or queued in the store
 *
 * Threads: queue_wake, queue_get_stats and queue_run_once may be called from any
 * thread at any time between queue_new and queue_free (run_once competes with the pool
 * for leases like any other runner; it ignores queue_stop and runs what it leased).
 * queue_wake and queue_job_finish take only q->mu, never the store, so they are safe on
 * the store's writer thread and on the transport's loop thread. The completer is the
 * only pool thread that commits job outcomes; workers only lease (and give back). queue_enqueue runs inside a store_write fn. queue_backoff_ms and
 * queue_cfg_defaults are pure. queue_start, queue_stop and queue_free belong to the
 * owner thread: not concurrently with each other, and not from a handler. */
#include "queue.h"

#include "../util/crypto.h"
#include "../util/log.h"
#include "../util/metrics.h"
#include "../util/xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STOP_TIMEOUT_FREE_MS 10000 /* queue_free's grace for running handlers */
#define IDLE_MIN_MS 5              /* shortest idle sleep */
#define BATCH_ARENA_CHUNK (64 * 1024)
/* completer threads. One: several completers each holding a batch transaction contend
 * on hot rows (the event catalog) on PostgreSQL, and with the test harness's 3 s leases
 * that turned into a spiral of expired leases (crash.test, 4 completers); on SQLite the
 * single writer serialises them anyway. */
#define COMPLETERS_MAX 1
#define IDLE_FOREVER_MS (24LL * 3600 * 1000) /* "no timer": a wake or stop ends the sleep */
#define JOB_ARENA_CHUNK (16 * 1024)
#define FULL_PAUSE_MIN_MS 100       /* commit_when_space: first pause, doubling ... */
#define FULL_PAUSE_MAX_MS 3200      /* ... up to this */
#define FULL_LEASE_MARGIN_MS 5000   /* stop retrying this long before the lease ends */
/* handed-off jobs waiting for a worker, at most; past it follow-up jobs are queued in the
 * store and leased as usual */
#define READY_MAX 1024      /* handed-over jobs waiting in the normal lane, at most */
#define READY_BULK_MAX 2048 /* ... in the bulk lane: two fan-out pages (FANOUT_PAGE) */
#define PARK_CREDITS 16     /* queue.park_credit: keys remembered (a few providers) */
/* queue_cfg.renew_max_ms's default (or 10 leases, if longer): an async job whose end
 * never comes (a handler's bug) then loses its lease and is taken over, as before
 * renewal; a provider call ends within --provider-timeout-ms (at most 10 min) */
#define RENEW_MAX_MS (15LL * 60 * 1000)
/* a job leased with this many takeovers in a row is a suspected poison pill (see
 * queue.suspect_id); one taken over once was merely in flight at one death */
#define SUSPECT_RETAKEN 2

enum verdict { V_ACK, V_RETRY, V_DEAD, V_DEFER };
enum outcome { O_DONE, O_RETRY, O_FAILED, O_DEAD, O_LOST, O_DEFERRED };
enum failed_step { STEP_NONE, STEP_COMMIT, STEP_STATE };

static const char *const outcome_names[] = {"done", "retry",      "failed",
                                            "dead", "lost_lease", "deferred"};

/* A runner: a worker thread of the pool, or queue_run_once's caller. */
struct runner {
    struct queue *q;
    bool pooled;               /* a pool worker: queue_stop collects its unstarted jobs */
    pthread_t th;
    bool th_started;
    struct arena *batch_arena; /* the leased jobs; reset before each lease */
    uint64_t rng;              /* xorshift64* state for backoff jitter */
    /* guarded by q->mu */
    struct job *jobs;          /* leased batch; jobs[next..n) not started yet */
    size_t n, next;
    bool *woken;               /* a batch of parked jobs: woken[i], jobs[i] was woken by
                                  queue_unpark (NULL: none was) */
    bool running;              /* a handler is running jobs[next - 1] */
    bool exited;               /* the thread left its loop */
    bool lease_timer;          /* this worker leases every lease_ms/4 even when idle */
    /* queue_run_once only (guarded by q->mu): its finished ASYNC tickets */
    struct job_ticket *done_head;
    size_t outstanding;        /* its ASYNC tickets not finished yet */
};

struct queue {
    struct store *s;
    struct hclock *clock;
    struct queue_cfg cfg;
    struct job_handler *handlers;
    size_t nhandlers;
    const char **kinds;        /* NULL-terminated, for store_job_lease */

    pthread_mutex_t mu;
    pthread_cond_t wake_cv;    /* workers idle here; queue_wake and stop broadcast */
    pthread_cond_t exit_cv;    /* queue_stop waits here for workers to exit */
    uint64_t wake_seq;         /* bumped by queue_wake and handoffs; no lost wakeups */
    /* the store may hold runnable jobs for us while store_seq != clean_seq: queue_wake
     * (a commit queued or re-queued jobs; on PostgreSQL another node's NOTIFY), a timer
     * (a run_at or the lease timer) and start bump store_seq; a lease that came back
     * short sets clean_seq to the store_seq it started from. A worker that ran a
     * handed-off job does not lease from a store that has nothing for it. */
    uint64_t store_seq, clean_seq;
    /* ... and also once the earliest run_at known to be queued there (due_ms, queue
     * clock; INT64_MAX: none known) has come, and at least every lease_ms/4 of busy
     * work (last_store_ms, monotonic): wakes by handoffs must not postpone a retry that
     * came due or a dead node's expired lease */
    int64_t due_ms, last_store_ms;
    int64_t last_lease_at;     /* queue clock at the last store lease: a due_ms at or
                                  before it was looked for already (a job of a kind we
                                  do not handle stays due without being ours) */
    /* store leases ended so far: a store_job_next_run_at read while another lease
     * ended may name a job that lease took, and hide the next one behind it (a due_ms
     * at or before last_lease_at passes for looked-at: the workers slept until the
     * lease timer, 15 s); such a read is not used */
    uint64_t lease_gen;
    bool started, stopping;
    bool collected;            /* queue_stop took the unstarted jobs; late batches self-release */
    struct runner *workers;
    int nworkers;
    struct queue_stats stats;

    /* the completers (guarded by q->mu) */
    pthread_t completers[COMPLETERS_MAX];
    int ncompleters;           /* started */
    bool completer_stop;
    pthread_cond_t done_cv;    /* completers wait here for finished tickets; also run_once
                                  for its own, and queue_stop for pending == 0 */
    pthread_cond_t room_cv;    /* workers wait here while too much is uncommitted */
    struct job_ticket *done_head, *done_tail;
    size_t ndone;              /* tickets in the completers' list */
    /* the ready list: jobs a commit inserted already leased to this node (the handoff),
     * FIFO, waiting for a worker; runners take from it before leasing from the store.
     * Two lanes: bulk jobs (job_spec.bulk: a fan-out's messages) wait in their own and
     * are taken only when the other is empty, a few at a time, so a transactional send
     * made during a large fan-out overtakes the fan-out's queued pages. Each lane has
     * its own cap (READY_MAX, READY_BULK_MAX; past it jobs go to the store as usual), so
     * a whole fan-out page fits in the bulk lane and none of it overtakes its own page
     * by way of the store. nready counts both lanes, nbulk the bulk one. Once the bulk
     * lane's head was published lease_ms/4 ago, a worker takes from the bulk lane before
     * the store, so bulk jobs age instead of starving (their leases would run out in
     * the lane). */
    struct ready *ready_head, *ready_tail;
    struct ready *bulk_head, *bulk_tail;
    size_t nready, nbulk;
    size_t pending;            /* tickets created and not yet committed */
    /* the same tickets, listed for lease renewal (renew_round): a job in hand whose lease
     * has half or less left is renewed by the completer, so a job taken over is one whose
     * holder died, never one whose call or commit was merely slow (an overloaded machine,
     * a slow provider, a commit behind a long queue of others). renew_at (monotonic): the
     * completer's next look, every lease_ms/4 while any ticket is held; none while idle */
    struct job_ticket *held_head;
    int64_t renew_at;
    /* the poison-pill guard's suspect in hand: a job whose lease ran out again after a
     * takeover (retaken >= 2 once leased: in hand at two deaths of its holder in a
     * row). Suspects are leased one per node at a time, put first in their batch and
     * their outcome committed before the next is leased, so a job that kills the
     * process is the only suspect that death counts against; innocent jobs in flight
     * beside it are taken over once and clear. 0: none; -1: a lease that may take one
     * is under way. A suspect still in hand when its lease ran out (a handler stuck
     * past it) no longer holds the next one back. */
    int64_t suspect_id;
    int64_t suspect_token;     /* its lease: a stale run of the same job is not it */
    int64_t suspect_until;     /* its lease_until_ms */
    /* parked jobs (job_result DEFER, queue.h): still leased to this node, waiting in
     * memory for their due time (queue clock) or a queue_unpark of their key, sorted by
     * due_ms; runners take the due ones first. Not counted in pending: their tickets
     * are gone; queue_stop gives their leases back with the ready list's. */
    struct ready *park_head;
    struct ready *park_tail;   /* the last entry (NULL when none): a keyed park (due =
                                  now + fallback) nearly always goes after it, in O(1) */
    size_t npark;
    /* a queue_unpark that found no job parked for its key leaves a credit here (slot
     * key % PARK_CREDITS): the next job parked for that key runs at once. It closes the
     * race where a slot frees between a handler's failed acquire and its park. */
    uint64_t park_credit[PARK_CREDITS];
    /* keyed parks per slot (key % PARK_CREDITS; keys sharing a slot share the count):
     * an unpark with none skips the scan, and past QUEUE_PARK_PER_KEY a deferral goes to
     * the store (on a shared store another node, with its own slots, may take it) */
    uint32_t park_nkey[PARK_CREDITS];
};

/* One handed-off job on the ready list; its strings follow it in the same block. */
struct ready {
    struct ready *next;
    bool bulk;                 /* job_spec.bulk: the bulk lane */
    int64_t published_ms;      /* when it reached the ready list (monotonic) */
    int64_t due_ms;            /* parked: when it runs (queue clock) */
    uint64_t key;              /* parked: what it waits for (0: only its time) */
    bool woken;                /* parked: made due by queue_unpark */
    struct job job;
};

/* The handoff of one commit pass (batch_fn) is a struct queue_handoff (queue.h): jobs its
 * handlers' commits enqueued, due now, inserted already leased to this node. Published to
 * the ready list only once the transaction committed; a rolled-back savepoint drops its
 * own. */
#define handoff queue_handoff

/* The handoff of the batch_fn running on this thread (the store's writer, or the
 * PostgreSQL caller), or NULL: queue_enqueue outside a batch commit queues as before. */
static _Thread_local struct handoff *tl_handoff;

/* ---- small helpers -------------------------------------------------------------- */

void queue_cfg_defaults(struct queue_cfg *cfg)
{
    cfg->workers = 4;
    cfg->lease_ms = 60000;
    cfg->renew_max_ms = 0; /* derived from lease_ms by fill_defaults */
    cfg->backoff_base_ms = 1000;
    cfg->backoff_max_ms = 3600000;
    cfg->max_attempts = 25;
    cfg->idle_poll_ms = 250;
    cfg->max_retaken = 5;
    cfg->batch = 16;
}

/* fill_defaults: zero (or negative) fields of cfg take the defaults. */
static void fill_defaults(struct queue_cfg *cfg)
{
    struct queue_cfg d;
    queue_cfg_defaults(&d);
    if (cfg->workers <= 0)
        cfg->workers = d.workers;
    if (cfg->lease_ms <= 0)
        cfg->lease_ms = d.lease_ms;
    if (cfg->renew_max_ms <= 0)
        cfg->renew_max_ms = 10 * cfg->lease_ms > RENEW_MAX_MS ? 10 * cfg->lease_ms
                                                              : RENEW_MAX_MS;
    if (cfg->backoff_base_ms <= 0)
        cfg->backoff_base_ms = d.backoff_base_ms;
    if (cfg->backoff_max_ms <= 0)
        cfg->backoff_max_ms = d.backoff_max_ms;
    if (cfg->max_attempts == 0)
        cfg->max_attempts = d.max_attempts;
    if (cfg->idle_poll_ms <= 0)
        cfg->idle_poll_ms = d.idle_poll_ms;
    if (cfg->batch <= 0)
        cfg->batch = d.batch;
    if (cfg->max_retaken == 0)
        cfg->max_retaken = d.max_retaken;
}

static int64_t now_ms(const struct queue *q) { return hclock_now(q->clock); }

/* rand01: uniform in [0, 1) from the xorshift64* state *st (its owner's, not shared). */
static double rand01(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

static const struct job_handler *find_handler(const struct queue *q, const char *kind)
{
    for (size_t i = 0; i < q->nhandlers; i++)
        if (strcmp(q->handlers[i].kind, kind) == 0)
            return &q->handlers[i];
    return NULL;
}

/* abs_deadline: CLOCK_MONOTONIC time `ms` from now, for pthread_cond_timedwait. */
static struct timespec abs_deadline(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int64_t queue_backoff_ms(const struct queue_cfg *cfg, uint32_t attempt, double r)
{
    int64_t base = cfg->backoff_base_ms > 0 ? cfg->backoff_base_ms : 1000;
    int64_t max = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : 3600000;
    int64_t delay = base < max ? base : max;
    int64_t half, span, jitter;

    /* doubling stops at the cap, so this runs at most ~63 times and never overflows */
    for (uint32_t i = 1; i < attempt && delay < max; i++)
        delay = delay > max / 2 ? max : delay * 2;
    if (!(r > 0.0)) /* also catches NaN */
        r = 0.0;
    if (r > 1.0)
        r = 1.0;
    half = delay / 2;
    span = delay - half;
    jitter = (int64_t)(r * (double)span);
    if (jitter > span)
        jitter = span;
    return half + jitter;
}

/* ---- construction --------------------------------------------------------------- */

/* on_jobs: the store's job listener (runs on the committing thread). */
static void on_jobs(void *arg) { queue_wake(arg); }

struct queue *queue_new(struct store *s, struct hclock *clock, const struct queue_cfg *cfg,
                        const struct job_handler *handlers, size_t nhandlers)
{
    struct queue *q = xcalloc(1, sizeof *q);
    pthread_condattr_t ca;

    q->s = s;
    q->clock = clock ? clock : s->clock ? s->clock : hclock_system();
    if (cfg)
        q->cfg = *cfg;
    fill_defaults(&q->cfg);

    q->handlers = xcalloc(nhandlers ? nhandlers : 1, sizeof *q->handlers);
    q->kinds = xcalloc(nhandlers + 1, sizeof *q->kinds);
    for (size_t i = 0; i < nhandlers; i++) {
        if (!handlers[i].kind || !handlers[i].run || find_handler(q, handlers[i].kind))
            continue; /* incomplete entries are ignored; the first of a kind wins */
        q->handlers[q->nhandlers] = handlers[i];
        q->kinds[q->nhandlers] = handlers[i].kind;
        q->nhandlers++;
    }

    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->wake_cv, &ca);
    pthread_cond_init(&q->exit_cv, &ca);
    pthread_cond_init(&q->done_cv, &ca);
    pthread_cond_init(&q->room_cv, &ca);
    pthread_condattr_destroy(&ca);

    store_set_job_listener(s, on_jobs, q);
    return q;
}

void queue_free(struct queue *q)
{
    if (!q)
        return;
    queue_stop(q, STOP_TIMEOUT_FREE_MS);
    if (q->s->on_jobs_arg == q)
        store_set_job_listener(q->s, NULL, NULL);
    pthread_cond_destroy(&q->room_cv);
    pthread_cond_destroy(&q->done_cv);
    pthread_cond_destroy(&q->exit_cv);
    pthread_cond_destroy(&q->wake_cv);
    pthread_mutex_destroy(&q->mu);
    free(q->kinds);
    free(q->handlers);
    free(q);
}

/* ready_new: a ready-list entry for job j (copied, strings included). */
static struct ready *ready_new(const struct job *j)
{
    struct ready *r = xmalloc(sizeof *r + j->payload.len + 1 + j->last_error.len + 1);
    char *p = (char *)(r + 1);
    r->next = NULL;
    r->bulk = false;
    r->published_ms = 0;
    r->due_ms = 0;
    r->key = 0;
    r->woken = false;
    r->job = *j;
    if (j->payload.len)
        memcpy(p, j->payload.p, j->payload.len);
    p[j->payload.len] = '\0';
    r->job.payload = (struct str){p, j->payload.len};
    p += j->payload.len + 1;
    if (j->last_error.len)
        memcpy(p, j->last_error.p, j->last_error.len);
    p[j->last_error.len] = '\0';
    r->job.last_error = (struct str){p, j->last_error.len};
    return r;
}

static void ready_free_list(struct ready *r)
{
    while (r) {
        struct ready *next = r->next;
        free(r);
        r = next;
    }
}

/* handoff_truncate: drop the entries of h past the first `keep` (a savepoint that
 * inserted them rolled back). */
static void handoff_truncate(struct handoff *h, size_t keep)
{
    struct ready *r = h->head, *last = NULL;
    for (size_t i = 0; i < keep && r; i++) {
        last = r;
        r = r->next;
    }
    ready_free_list(r);
    if (last)
        last->next = NULL;
    else
        h->head = NULL;
    h->tail = last;
    h->n = keep;
    h->nbulk = 0;
    for (r = h->head; r; r = r->next)
        h->nbulk += r->bulk;
}

/* handoff_try: insert js already leased to this node for h, when it is due now, its kind
 * has a handler here, the queue is not stopping and the ready list has room. Returns 1
 * when it did (rc in *rc), 0 when js should be queued as usual. */
static int handoff_try(struct handoff *h, struct store_txn *t, const struct job_spec *js,
                       int64_t *out_id, int *rc)
{
    struct queue *q = h->q;
    int64_t now = hclock_now(q->clock), id = 0;
    struct job_spec leased;
    struct job j;
    bool room;

    if ((js->run_at_ms && js->run_at_ms > now) || js->lease_until_ms || !js->kind ||
        !find_handler(q, js->kind))
        return 0;
    pthread_mutex_lock(&q->mu);
    room = q->started && !q->stopping &&
           (js->bulk ? q->nbulk + h->nbulk < READY_BULK_MAX
                     : (q->nready - q->nbulk) + (h->n - h->nbulk) < READY_MAX);
    pthread_mutex_unlock(&q->mu);
    if (!room)
        return 0;
    leased = *js;
    leased.lease_until_ms = now + q->cfg.lease_ms;
    do
        crypto_random(&leased.lease_token, sizeof leased.lease_token);
    while (leased.lease_token == 0);
    *rc = store_job_insert(t, &leased, now, &id);
    if (out_id)
        *out_id = id;
    if (*rc != HR_OK) /* HR_CONFLICT: a job with that dedup_key exists; nothing to hand */
        return 1;
    memset(&j, 0, sizeof j);
    j.id = id;
    snprintf(j.kind, sizeof j.kind, "%s", js->kind);
    j.payload = js->payload;
    j.state = JOB_LEASED;
    j.run_at_ms = js->run_at_ms ? js->run_at_ms : now;
    j.lease_until_ms = leased.lease_until_ms;
    j.lease_token = leased.lease_token;
    j.attempts = 1;
    j.max_attempts = js->max_attempts;
    j.created_ms = now;
    struct ready *r = ready_new(&j);
    r->bulk = js->bulk;
    h->nbulk += js->bulk;
    if (h->tail)
        h->tail->next = r;
    else
        h->head = r;
    h->tail = r;
    h->n++;
    return 1;
}

/* handoff_publish: the transaction of h committed: its jobs go to the ready list and one
 * worker is woken. */
static void release_list(struct queue *q, struct ready *head);

static void handoff_publish(struct handoff *h)
{
    struct queue *q = h->q;
    int64_t now;
    if (!h->head)
        return;
    pthread_mutex_lock(&q->mu);
    if (!q->started || q->collected) { /* stopped meanwhile: give the leases back */
        struct ready *head = h->head;
        pthread_mutex_unlock(&q->mu);
        h->head = h->tail = NULL;
        h->n = h->nbulk = 0;
        release_list(q, head);
        return;
    }
    now = time_mono_ms();
    for (struct ready *e = h->head, *next; e; e = next) { /* each to its lane, in order */
        struct ready **head = e->bulk ? &q->bulk_head : &q->ready_head;
        struct ready **tail = e->bulk ? &q->bulk_tail : &q->ready_tail;
        next = e->next;
        e->next = NULL;
        e->published_ms = now;
        if (*tail)
            (*tail)->next = e;
        else
            *head = e;
        *tail = e;
        q->nbulk += e->bulk;
    }
    q->nready += h->n;
    q->stats.handed_off += h->n;
    q->wake_seq++;
    pthread_cond_signal(&q->wake_cv);
    pthread_mutex_unlock(&q->mu);
    h->head = h->tail = NULL;
    h->n = h->nbulk = 0;
}

void queue_handoff_init(struct queue_handoff *h, struct queue *q)
{
    memset(h, 0, sizeof *h);
    h->q = q;
}

void queue_handoff_reset(struct queue_handoff *h) { handoff_truncate(h, 0); }

void queue_handoff_publish(struct queue_handoff *h)
{
    if (h->q)
        handoff_publish(h);
}

void queue_handoff_cleanup(struct queue_handoff *h) { handoff_truncate(h, 0); }

int queue_enqueue_to(struct store_txn *t, struct queue_handoff *h, const struct job_spec *js,
                     int64_t *out_id)
{
    int rc;
    if (h && h->q && js && handoff_try(h, t, js, out_id, &rc))
        return rc;
    return queue_enqueue(t, js, out_id);
}

int queue_txn_sub(struct store_txn *t, store_txn_fn fn, void *arg)
{
    struct handoff *h = tl_handoff;
    size_t mark = h ? h->n : 0;
    int rc = store_txn_sub(t, fn, arg);
    if (rc < 0 && h)
        handoff_truncate(h, mark); /* rolled back: the jobs it handed over do not exist */
    return rc;
}

int queue_txn_sub_to(struct store_txn *t, struct queue_handoff *h, store_txn_fn fn, void *arg)
{
    struct handoff *outer = tl_handoff;
    int rc;
    tl_handoff = h && h->q ? h : NULL;
    rc = queue_txn_sub(t, fn, arg);
    tl_handoff = outer;
    return rc;
}

int queue_enqueue(struct store_txn *t, const struct job_spec *js, int64_t *out_id)
{
    struct store *s = store_txn_store(t);
    struct hclock *c = s->clock ? s->clock : hclock_system();
    int rc;
    if (tl_handoff && js && handoff_try(tl_handoff, t, js, out_id, &rc))
        return rc;
    return store_job_insert(t, js, hclock_now(c), out_id);
}

/* wake_one: one idle worker, for work in memory (the ready list, another's batch): the
 * store is not marked as holding anything new. */
static void wake_one(struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->wake_seq++;
    pthread_cond_signal(&q->wake_cv);
    pthread_mutex_unlock(&q->mu);
}

void queue_wake(struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->wake_seq++;
    q->store_seq++;
    pthread_cond_signal(&q->wake_cv); /* one worker; it wakes the next if it finds a full batch */
    pthread_mutex_unlock(&q->mu);
}

void queue_get_stats(struct queue *q, struct queue_stats *out)
{
    pthread_mutex_lock(&q->mu);
    *out = q->stats;
    out->in_flight = q->pending;
    pthread_mutex_unlock(&q->mu);
}

/* ---- runners -------------------------------------------------------------------- */

static void runner_init(struct runner *r, struct queue *q, bool pooled)
{
    memset(r, 0, sizeof *r);
    r->q = q;
    r->pooled = pooled;
    r->batch_arena = arena_new(BATCH_ARENA_CHUNK);
    crypto_random(&r->rng, sizeof r->rng);
    if (r->rng == 0)
        r->rng = 0x9E3779B97F4A7C15ULL;
}

static void runner_cleanup(struct runner *r)
{
    arena_free(r->batch_arena);
    r->batch_arena = NULL;
}

struct lease_ctx {
    struct queue *q;
    size_t max;
    size_t max_repeat;         /* suspects this lease may take: 0 or 1 */
    struct arena *a;
    struct job *jobs;
    size_t n;
};

static int lease_fn(struct store_txn *t, void *arg)
{
    struct lease_ctx *c = arg;
    c->jobs = NULL;
    c->n = 0;
    return store_job_lease(t, now_ms(c->q), c->q->cfg.lease_ms, c->max, c->max_repeat,
                           c->q->kinds, c->a, &c->jobs, &c->n);
}

struct held {
    int64_t id, token;
};

/* suspect_done: under q->mu, the suspect is out of hand: the next one may be leased.
 * Leases meanwhile skipped any other, so a worker looks in the store again. */
static void suspect_done(struct queue *q)
{
    q->suspect_id = 0;
    q->wake_seq++;
    q->store_seq++;
    pthread_cond_signal(&q->wake_cv);
}

/* suspect_clear: the n jobs in h are out of hand (given back); if the suspect is among
 * them, the next one may be leased. */
static void suspect_clear(struct queue *q, const struct held *h, size_t n)
{
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < n && q->suspect_id > 0; i++)
        if (h[i].id == q->suspect_id && h[i].token == q->suspect_token)
            suspect_done(q);
    pthread_mutex_unlock(&q->mu);
}

/* suspect_first: under q->mu, after a lease that may have taken a suspect (max_repeat
 * 1): note it, and move it to the head of the batch so it runs at once. */
static void suspect_first(struct queue *q, struct job *jobs, size_t n)
{
    q->suspect_id = 0;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].retaken >= SUSPECT_RETAKEN) {
            struct job s = jobs[i];
            memmove(&jobs[1], &jobs[0], i * sizeof *jobs);
            jobs[0] = s;
            q->suspect_id = s.id;
            q->suspect_token = s.lease_token;
            q->suspect_until = s.lease_until_ms;
            char kq[80];
            if (s.retaken < q->cfg.max_retaken) /* else run_job dead-letters it, and logs */
                LOG_I("queue.suspect", "kind=%s id=%" PRId64 " retaken=%u msg=\"in hand at %u "
                      "deaths in a row: run alone; dead-lettered at %u\"",
                      log_q(kq, sizeof kq, s.kind), s.id, s.retaken, s.retaken,
                      q->cfg.max_retaken);
            break;
        }
    }
}

struct release_ctx {
    const struct held *h;
    size_t n;
    size_t released;
};

/* release_fn: give leases back; a lease already lost is skipped, not an error. */
static int release_fn(struct store_txn *t, void *arg)
{
    struct release_ctx *c = arg;
    int rc = HR_OK;
    c->released = 0;
    for (size_t i = 0; i < c->n; i++) {
        rc = store_job_release(t, c->h[i].id, c->h[i].token);
        if (rc == HR_CONFLICT || rc == HR_NOTFOUND) {
            rc = HR_OK;
            continue;
        }
        if (rc < 0)
            goto out;
        c->released++;
    }
out:
    return rc;
}

/* release_held: give back n leases in one store_write; logs the result. */
static void release_held(struct queue *q, const struct held *h, size_t n)
{
    struct release_ctx c = {h, n, 0};
    struct herr err = {0};
    int rc;
    if (n == 0)
        return;
    rc = store_write(q->s, release_fn, &c, &err);
    suspect_clear(q, h, n);
    if (rc < 0)
        LOG_E("queue.release_failed", "n=%zu rc=%s", n, hr_rc_str(rc));
    else
        LOG_I("queue.released", "n=%zu released=%zu", n, c.released);
}

/* release_list: give back the leases of a list of handed-off jobs and free it. */
static void release_list(struct queue *q, struct ready *head)
{
    size_t n = 0, k = 0;
    struct held *h;
    for (struct ready *e = head; e; e = e->next)
        n++;
    h = xcalloc(n ? n : 1, sizeof *h);
    for (struct ready *e = head; e; e = e->next, k++) {
        h[k].id = e->job.id;
        h[k].token = e->job.lease_token;
    }
    ready_free_list(head);
    release_held(q, h, n);
    free(h);
}

/* take_leftovers: under q->mu, move r's unstarted jobs into h (room for r->n - r->next). */
static size_t take_leftovers(struct runner *r, struct held *h)
{
    size_t k = 0;
    for (size_t i = r->next; i < r->n; i++, k++) {
        h[k].id = r->jobs[i].id;
        h[k].token = r->jobs[i].lease_token;
    }
    r->n = r->next;
    return k;
}

/* job_copy: a copy of j whose strings live in arena a. */
static void job_copy(struct job *dst, const struct job *j, struct arena *a)
{
    *dst = *j;
    dst->payload = arena_str(a, j->payload);
    dst->last_error = arena_str(a, j->last_error);
}

/* take_from_others: under q->mu, move up to max unstarted jobs from the tails of other
 * pool workers' batches into r's (copied into r->batch_arena, just reset). Returns how
 * many. A victim's cursor stays valid: only jobs[n-1] is ever taken, and n shrinks. */
static size_t take_from_others(struct queue *q, struct runner *r, size_t max)
{
    size_t k = 0;
    if (!r->pooled || q->stopping || q->collected)
        return 0;
    for (int i = 0; i < q->nworkers && k < max; i++) {
        struct runner *o = &q->workers[i];
        if (o == r)
            continue;
        while (k < max && o->next < o->n) {
            if (o->jobs[o->n - 1].id == q->suspect_id &&
                o->jobs[o->n - 1].lease_token == q->suspect_token)
                break; /* the suspect runs first, on the worker that leased it */
            if (k == 0)
                r->jobs = arena_alloc(r->batch_arena, max * sizeof *r->jobs);
            job_copy(&r->jobs[k++], &o->jobs[--o->n], r->batch_arena);
        }
    }
    if (k) {
        r->n = k;
        r->next = 0;
        q->stats.taken += k;
    }
    return k;
}

/* store_news: under q->mu, whether the store may hold runnable jobs this node has not
 * looked for: a commit queued some (store_seq), a known run_at came due since the last
 * lease, or lease_ms/4 passed since it (a dead node's expired leases). */
static bool store_news(struct queue *q)
{
    int64_t now = now_ms(q);
    return q->store_seq != q->clean_seq || (q->due_ms <= now && q->due_ms > q->last_lease_at) ||
           time_mono_ms() - q->last_store_ms >= q->cfg.lease_ms / 4;
}

/* take_ready: under q->mu, move up to max handed-off jobs from one lane of the ready list
 * into r's batch (copied into r->batch_arena, just reset): the bulk lane at most max/4
 * (>= 1) at a time, so the batch that holds them ends soon after a transactional job
 * arrives. Returns how many. */
static size_t take_ready(struct queue *q, struct runner *r, size_t max, bool bulk)
{
    struct ready **head = bulk ? &q->bulk_head : &q->ready_head;
    struct ready **tail = bulk ? &q->bulk_tail : &q->ready_tail;
    size_t k = 0;
    if (!*head || (r->pooled && (q->stopping || q->collected)))
        return 0;
    if (bulk)
        max = max / 4 ? max / 4 : 1;
    r->jobs = arena_alloc(r->batch_arena, max * sizeof *r->jobs);
    while (k < max && *head) {
        struct ready *e = *head;
        *head = e->next;
        job_copy(&r->jobs[k++], &e->job, r->batch_arena);
        free(e);
    }
    if (!*head)
        *tail = NULL;
    q->nready -= k;
    if (bulk)
        q->nbulk -= k;
    r->n = k;
    r->next = 0;
    return k;
}

/* park_gauge: the parked jobs gauge moves by d (any lock: metrics has its own) */
static void park_gauge(double d)
{
    metrics_gauge_add("herald_queue_parked", "Deferred jobs waiting in memory now, still "
                      "leased to this node (queue.h, DEFER).", d);
}

/* take_parked: under q->mu, move up to max parked jobs that are due into r's batch (as
 * take_ready does). Returns how many. */
static size_t take_parked(struct queue *q, struct runner *r, size_t max)
{
    int64_t now;
    size_t k = 0;
    if (!q->park_head || (r->pooled && (q->stopping || q->collected)))
        return 0;
    now = now_ms(q);
    if (q->park_head->due_ms > now)
        return 0;
    r->jobs = arena_alloc(r->batch_arena, max * sizeof *r->jobs);
    r->woken = arena_alloc(r->batch_arena, max * sizeof *r->woken);
    while (k < max && q->park_head && q->park_head->due_ms <= now) {
        struct ready *e = q->park_head;
        q->park_head = e->next;
        if (e->key) { /* its fallback time came */
            q->park_nkey[e->key % PARK_CREDITS]--;
        }
        r->woken[k] = e->woken;
        job_copy(&r->jobs[k++], &e->job, r->batch_arena);
        free(e);
    }
    if (!q->park_head)
        q->park_tail = NULL;
    q->npark -= k;
    park_gauge(-(double)k);
    r->n = k;
    r->next = 0;
    return k;
}

/* park_insert: under q->mu, e into the parked list by due_ms (after equal ones); counts
 * a keyed entry. True when it became the head (an idle worker's timer may be later
 * than it). */
static bool park_insert(struct queue *q, struct ready *e)
{
    struct ready **pp = &q->park_head;
    if (q->park_tail && q->park_tail->due_ms <= e->due_ms)
        pp = &q->park_tail->next;
    while (*pp && (*pp)->due_ms <= e->due_ms)
        pp = &(*pp)->next;
    e->next = *pp;
    *pp = e;
    if (!e->next)
        q->park_tail = e;
    q->npark++;
    park_gauge(1);
    if (e->key)
        q->park_nkey[e->key % PARK_CREDITS]++;
    return q->park_head == e;
}

void queue_unpark(struct queue *q, uint64_t key)
{
    struct ready **pp, *e;
    bool woke = false;
    if (!q || !key)
        return;
    pthread_mutex_lock(&q->mu);
    pp = &q->park_head;
    if (q->park_nkey[key % PARK_CREDITS] > 0)
        while (*pp && (*pp)->key != key)
            pp = &(*pp)->next;
    if ((e = *pp) == NULL || e->key != key) {
        q->park_credit[key % PARK_CREDITS] = key;
    } else {
        q->park_nkey[key % PARK_CREDITS]--;
        *pp = e->next; /* first in due order: the longest waiting (keyed dues are ordered) */
        if (q->park_tail == e) /* pp is the head or its predecessor's next */
            q->park_tail = pp == &q->park_head
                               ? NULL
                               : (struct ready *)(void *)((char *)pp - offsetof(struct ready, next));
        q->npark--;
        e->due_ms = now_ms(q);
        e->key = 0; /* a later unpark of the key is for the next in line */
        e->woken = true;
        e->next = q->park_head;
        q->park_head = e;
        if (!e->next)
            q->park_tail = e;
        q->npark++;
        q->stats.unparked++;
        q->wake_seq++;
        pthread_cond_signal(&q->wake_cv);
        woke = true;
    }
    pthread_mutex_unlock(&q->mu);
    if (woke)
        metrics_counter_add("herald_queue_unparked_total",
                            "Parked jobs run before their time because what they waited "
                            "for came free.", "wait", "slot", 1);
}

/* take_all_ready: under q->mu, the whole ready list and the parked jobs as held leases
 * in *h (caller frees); returns how many. */
static size_t take_all_ready(struct queue *q, struct held **h)
{
    size_t k = 0;
    struct ready *lists[3] = {q->ready_head, q->bulk_head, q->park_head};
    *h = NULL;
    if (!q->nready && !q->npark)
        return 0;
    *h = xcalloc(q->nready + q->npark, sizeof **h);
    for (int i = 0; i < 3; i++) {
        for (struct ready *e = lists[i]; e; e = e->next, k++) {
            (*h)[k].id = e->job.id;
            (*h)[k].token = e->job.lease_token;
        }
        ready_free_list(lists[i]);
    }
    park_gauge(-(double)q->npark);
    q->ready_head = q->ready_tail = q->bulk_head = q->bulk_tail = NULL;
    q->park_head = q->park_tail = NULL;
    q->nready = q->nbulk = q->npark = 0;
    memset(q->park_nkey, 0, sizeof q->park_nkey);
    return k;
}

/* next_job: under q->mu, the next job of r's batch to run, or NULL (batch done, or a
 * pool worker that must stop). */
static const struct job *next_job(struct queue *q, struct runner *r)
{
    const struct job *j = NULL;
    pthread_mutex_lock(&q->mu);
    r->running = false;
    if ((!r->pooled || !q->stopping) && r->next < r->n) {
        j = &r->jobs[r->next++];
        r->running = true;
    }
    pthread_mutex_unlock(&q->mu);
    return j;
}

/* What one job's commit does: the handler's commit callback (if any), then the job's
 * transition. Filled once the outcome is known. */
struct finish {
    struct queue *q;
    const struct job *j;
    store_txn_fn commit; /* the handler's; NULL when no handler ran */
    void *commit_arg;
    void (*committed)(void *arg); /* the handler's; after commit committed */
    void (*settled)(void *arg); /* the handler's; after the commit */
    void *settled_arg;
    int verdict;         /* enum verdict */
    int outcome;         /* enum outcome, for stats and metrics */
    int64_t run_at_ms;   /* V_RETRY, V_DEFER */
    struct str error;    /* V_RETRY, V_DEAD */
    int failed_step;     /* enum failed_step: where finish_fn returned < 0 */
    int fn_rc;
    bool ack_later;      /* all_fn acks V_ACK jobs together after every commit */
};

/* One run of one job, from its start to its commit. Created by the runner that leased
 * the job, owned by the queue: handed (finished) to the completer, or to its
 * queue_run_once runner, which commits it and frees it. Counted in q->pending. */
struct job_ticket {
    struct queue *q;
    struct runner *once;   /* queue_run_once's runner, which commits it; NULL: completer */
    struct job job;        /* a copy of the leased job; its strings live in arena */
    struct arena *arena;   /* the handler's arena: alive until after the commit */
    const char *label;     /* metrics label: the handler's kind, or "unknown" */
    uint32_t max_attempts;
    uint64_t rng;          /* backoff jitter for this job's retry */
    struct finish f;       /* the decided transition; f.j = &job */
    bool suspect;          /* the node's suspect (queue.suspect_id): committed first */
    uint64_t wait_key;     /* DEFER: job_result.wait_key */
    bool woken;            /* this run was woken by queue_unpark: parked again, it tries
                              at the handler's time, not at the end of the line */
    char error[sizeof ((struct job_result *)0)->error + 64]; /* f.error's bytes */
    int rc;                /* this ticket's rc in the last commit */
    /* the transition as decided, kept by batch_fn's first pass: every later pass (the
     * store ran the transaction again after a deadlock, or the ticket is retried alone)
     * starts from it, not from a fallback an undone pass left behind */
    bool decided_saved;
    struct finish decided;
    char decided_error[sizeof ((struct job_result *)0)->error + 64];
    struct job_ticket *next;
    /* guarded by q->mu: the tickets in hand (q->held_head), and this one's lease end as
     * the completer last renewed it (renew_round; job.lease_until_ms keeps the first) */
    struct job_ticket *hprev, *hnext;
    int64_t lease_until;
    int64_t held_since;    /* monotonic ms at ticket_new */
    bool renew_capped;     /* held past cfg.renew_max_ms: no longer renewed (logged) */
};

/* finish_fn: the handler's commit, then the job's transition. Runs in its own nested
 * savepoint (store_txn_sub), so any rc < 0 undoes both and nothing else. */
static int finish_fn(struct store_txn *t, void *arg)
{
    struct finish *f = arg;
    int rc = HR_OK;
    f->failed_step = STEP_NONE;
    if (f->commit) {
        rc = f->commit(t, f->commit_arg);
        if (rc < 0) {
            f->failed_step = STEP_COMMIT;
            goto out;
        }
        rc = HR_OK;
    }
    switch (f->verdict) {
    case V_ACK:
        rc = f->ack_later ? HR_OK : store_job_ack(t, f->j->id, f->j->lease_token);
        break;
    case V_RETRY:
        rc = store_job_retry(t, f->j->id, f->j->lease_token, f->run_at_ms, f->error);
        break;
    case V_DEFER:
        rc = store_job_defer(t, f->j->id, f->j->lease_token, f->run_at_ms);
        break;
    default:
        rc = store_job_dead(t, f->j->id, f->j->lease_token, f->error);
        break;
    }
    if (rc < 0)
        f->failed_step = STEP_STATE;
out:
    f->fn_rc = rc;
    return rc;
}

/* set_retry: RETRY, or DEAD when the job has no attempts left. rng: the jitter state. */
static void set_retry(struct finish *f, uint32_t max_attempts, int64_t retry_at_ms,
                      uint64_t *rng)
{
    if (f->j->attempts >= max_attempts) {
        f->verdict = V_DEAD;
        f->outcome = O_DEAD;
        return;
    }
    f->verdict = V_RETRY;
    f->outcome = O_RETRY;
    f->run_at_ms = retry_at_ms
                       ? retry_at_ms
                       : now_ms(f->q) + queue_backoff_ms(&f->q->cfg, f->j->attempts, rand01(rng));
}

static void record(struct queue *q, const struct finish *f, const char *label)
{
    char kq[80], eq[600];
    const struct job *j = f->j;

    pthread_mutex_lock(&q->mu);
    switch (f->outcome) {
    case O_DONE: q->stats.done++; break;
    case O_RETRY: q->stats.retried++; break;
    case O_FAILED: q->stats.failed++; break;
    case O_DEAD: q->stats.dead++; break;
    case O_DEFERRED: q->stats.deferred++; break;
    default: q->stats.lost_lease++; break;
    }
    pthread_mutex_unlock(&q->mu);
    metrics_job_outcome(label, outcome_names[f->outcome]);

    log_q(kq, sizeof kq, j->kind);
    if (f->outcome == O_DONE)
        LOG_D("queue.job_done", "kind=%s id=%" PRId64 " attempts=%u", kq, j->id, j->attempts);
    else if (f->outcome == O_DEFERRED)
        LOG_D("queue.job_deferred", "kind=%s id=%" PRId64 " run_at=%" PRId64, kq, j->id,
              f->run_at_ms);
    else if (f->outcome == O_LOST)
        LOG_W("queue.lease_lost", "kind=%s id=%" PRId64 " attempts=%u", kq, j->id, j->attempts);
    else {
        char tmp[520];
        str_copy(tmp, sizeof tmp, f->error);
        log_q(eq, sizeof eq, tmp);
        if (f->outcome == O_RETRY)
            LOG_I("queue.job_retry",
                  "kind=%s id=%" PRId64 " attempts=%u run_at=%" PRId64 " error=%s", kq, j->id,
                  j->attempts, f->run_at_ms, eq);
        else
            LOG_W(f->outcome == O_FAILED ? "queue.job_failed" : "queue.job_dead",
                  "kind=%s id=%" PRId64 " attempts=%u max_attempts=%u error=%s", kq, j->id,
                  j->attempts, j->max_attempts, eq);
    }
}

/* ---- tickets ------------------------------------------------------------------------ */

/* renew_period: how often the completer looks at the leases in hand (ms, monotonic): a
 * quarter lease, so a lease is renewed with between a quarter and half of it left. */
static int64_t renew_period(const struct queue *q)
{
    return q->cfg.lease_ms / 4 > IDLE_MIN_MS ? q->cfg.lease_ms / 4 : IDLE_MIN_MS;
}

/* ticket_lease_until: t's lease end as last renewed. */
static int64_t ticket_lease_until(struct job_ticket *t)
{
    int64_t until;
    pthread_mutex_lock(&t->q->mu);
    until = t->lease_until;
    pthread_mutex_unlock(&t->q->mu);
    return until;
}

/* ticket_new: a ticket for leased job j run by runner r (copied; j may go away).
 * Counts it in q->pending. */
static struct job_ticket *ticket_new(struct queue *q, struct runner *r, const struct job *j)
{
    struct job_ticket *t = xcalloc(1, sizeof *t);
    const struct job_handler *h = find_handler(q, j->kind);

    t->q = q;
    t->once = r->pooled ? NULL : r;
    t->arena = arena_new(JOB_ARENA_CHUNK);
    job_copy(&t->job, j, t->arena);
    t->label = h ? h->kind : "unknown"; /* metrics labels stay bounded */
    t->max_attempts = j->max_attempts ? j->max_attempts : q->cfg.max_attempts;
    t->rng = r->rng ^ ((uint64_t)j->id * 0x9E3779B97F4A7C15ULL);
    (void)rand01(&r->rng);
    if (t->rng == 0)
        t->rng = 0x9E3779B97F4A7C15ULL;
    t->f.q = q;
    t->f.j = &t->job;
    pthread_mutex_lock(&q->mu);
    t->suspect = j->id == q->suspect_id && j->lease_token == q->suspect_token;
    t->woken = r->woken && j >= r->jobs && j < r->jobs + r->n && r->woken[j - r->jobs];
    t->lease_until = j->lease_until_ms;
    t->held_since = time_mono_ms();
    if (!q->held_head) { /* the first in hand: the completer starts looking at leases */
        q->renew_at = time_mono_ms() + renew_period(q);
        pthread_cond_broadcast(&q->done_cv);
    }
    t->hnext = q->held_head;
    if (t->hnext)
        t->hnext->hprev = t;
    q->held_head = t;
    q->pending++;
    pthread_mutex_unlock(&q->mu);
    return t;
}

/* ticket_resolve: turn a handler's result into t's transition (t->f). */
static void ticket_resolve(struct job_ticket *t, const struct job_result *res)
{
    struct finish *f = &t->f;
    snprintf(t->error, sizeof t->error, "%.*s", (int)sizeof res->error - 1, res->error);
    f->commit = res->commit;
    f->commit_arg = res->commit_arg;
    f->committed = res->committed;
    f->settled = res->settled;
    f->settled_arg = res->settled_arg;
    f->error = str_c(t->error);
    t->wait_key = res->outcome == JOB_OUT_DEFER ? res->wait_key : 0;
    switch (res->outcome) {
    case JOB_OUT_DONE:
        f->verdict = V_ACK;
        f->outcome = O_DONE;
        break;
    case JOB_OUT_RETRY:
        set_retry(f, t->max_attempts, res->retry_at_ms, &t->rng);
        break;
    case JOB_OUT_FAIL:
        f->verdict = V_DEAD;
        f->outcome = O_FAILED;
        break;
    case JOB_OUT_DEFER:
        f->verdict = V_DEFER;
        f->outcome = O_DEFERRED;
        f->run_at_ms = res->retry_at_ms > 0 ? res->retry_at_ms
                                            : now_ms(t->q) + t->q->cfg.idle_poll_ms;
        break;
    default: /* ASYNC is not an end; anything else is a handler bug */
        snprintf(t->error, sizeof t->error, "handler returned invalid outcome %d",
                 res->outcome);
        f->commit = NULL;
        f->verdict = V_DEAD;
        f->outcome = O_FAILED;
        break;
    }
}

static void tickets_free(struct queue *q, struct job_ticket **t, size_t n);

/* park_try: keep a deferral without a commit in memory (queue.h, DEFER): the job stays
 * leased, no store write; the ticket is done. Not for run_once, a suspect (its commit
 * clears the node's suspect slot), a job taken over, a wait its lease does not outlast
 * by half a lease (runner_round gives such a job back before running it) plus a tenth,
 * a stopping queue, a full park or QUEUE_PARK_PER_KEY waiting for the same key. True
 * when parked (t is freed). */
static bool park_try(struct job_ticket *t)
{
    struct queue *q = t->q;
    struct ready *e;
    int64_t due = t->f.run_at_ms, now = now_ms(q);
    /* the latest time a batch still runs it (runner_round gives back a job with less
     * than half its lease left), less a tenth of a lease for a late worker */
    int64_t until = ticket_lease_until(t); /* as renewed */
    int64_t bound = until - q->cfg.lease_ms / 2 - q->cfg.lease_ms / 10;
    uint64_t *credit = &q->park_credit[t->wait_key % PARK_CREDITS];
    bool parked = false, head = false, line_full;

    /* a job taken over (retaken > 0) commits its deferral: that sets retaken back to 0,
     * so a crash with it parked does not make it a suspect */
    if (t->once || t->suspect || t->f.verdict != V_DEFER || t->f.commit || t->job.retaken)
        return false;
    if (t->wait_key && !t->woken) { /* woken by queue_unpark; the time is a fallback */
        int64_t fallback = now + QUEUE_PARK_KEYED_MS < bound ? now + QUEUE_PARK_KEYED_MS
                                                             : bound - 1;
        if (due < fallback)
            due = fallback;
    } else if (due <= now) {
        due = now + 1; /* not at once: a handler deferring to "now" would spin */
    }
    if (due >= bound || due <= now)
        return false;
    e = ready_new(&t->job);
    e->job.lease_until_ms = until;
    e->due_ms = due;
    /* woken for a slot that a fresh job took first: it does not go back to the end of
     * the line but tries again at the handler's time (the limiter's next expected
     * slot), still woken, until it has one */
    e->key = t->woken ? 0 : t->wait_key;
    e->woken = t->woken && t->wait_key;
    pthread_mutex_lock(&q->mu);
    line_full = e->key && q->park_nkey[e->key % PARK_CREDITS] >= QUEUE_PARK_PER_KEY;
    if (q->started && !q->stopping && !q->collected && q->npark < QUEUE_PARK_MAX &&
        !line_full) {
        if (e->key && *credit == e->key) { /* its slot came free meanwhile */
            *credit = 0;
            e->due_ms = now;
            e->key = 0;
        }
        head = park_insert(q, e);
        q->stats.parked++;
        parked = true;
        if (head) { /* an idle worker may sleep past it */
            q->wake_seq++;
            pthread_cond_signal(&q->wake_cv);
        }
    }
    pthread_mutex_unlock(&q->mu);
    if (!parked) {
        free(e);
        /* past a full line its turn is far off: queued in the store, it comes back
         * with the line's fallback, not every few ms */
        if (line_full && t->f.run_at_ms < now + QUEUE_PARK_KEYED_MS)
            t->f.run_at_ms = now + QUEUE_PARK_KEYED_MS;
        return false;
    }
    t->f.run_at_ms = due;
    record(q, &t->f, t->label);
    metrics_counter_add("herald_queue_parked_total",
                        "Deferred jobs kept leased in memory, no store write (queue.h, DEFER), "
                        "by what they wait for.", "wait", t->wait_key ? "slot" : "time", 1);
    tickets_free(q, &t, 1);
    return true;
}

/* ticket_hand: a resolved ticket goes to whoever commits it (or, parked, nowhere: see
 * park_try). Never blocks on the store. */
static void ticket_hand(struct job_ticket *t)
{
    struct queue *q = t->q;
    if (park_try(t))
        return;
    t->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (t->once) {
        t->next = t->once->done_head;
        t->once->done_head = t;
    } else if (t->suspect) { /* first: its window between lease and commit is what a
                                * random death can hit, and count against it */
        t->next = q->done_head;
        q->done_head = t;
        if (!q->done_tail)
            q->done_tail = t;
        q->ndone++;
    } else {
        if (q->done_tail)
            q->done_tail->next = t;
        else
            q->done_head = t;
        q->done_tail = t;
        q->ndone++;
    }
    pthread_cond_broadcast(&q->done_cv);
    pthread_mutex_unlock(&q->mu);
}

void queue_job_finish(struct queue *q, struct job_ticket *t, const struct job_result *r)
{
    (void)q; /* may be NULL: the ticket knows its queue */
    ticket_resolve(t, r);
    ticket_hand(t);
}

/* tickets_free: n committed (or abandoned) tickets are done: run their settled
 * callbacks, free them, make room. */
static void tickets_free(struct queue *q, struct job_ticket **t, size_t n)
{
    int64_t suspect = 0, token = 0; /* the suspect's lease, if it is among them (ids > 0) */
    for (size_t i = 0; i < n && !suspect; i++)
        if (t[i]->suspect) {
            suspect = t[i]->job.id;
            token = t[i]->job.lease_token;
        }
    for (size_t i = 0; i < n; i++) {
        if (t[i]->f.settled)
            t[i]->f.settled(t[i]->f.settled_arg);
        arena_free(t[i]->arena); /* after the commit: the handler's strings lived until here */
        t[i]->arena = NULL;
    }
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < n; i++) { /* out of hand */
        if (t[i]->hprev)
            t[i]->hprev->hnext = t[i]->hnext;
        else
            q->held_head = t[i]->hnext;
        if (t[i]->hnext)
            t[i]->hnext->hprev = t[i]->hprev;
    }
    q->pending -= n;
    if (suspect && suspect == q->suspect_id && token == q->suspect_token)
        suspect_done(q); /* committed (or given up) */
    pthread_cond_broadcast(&q->room_cv);
    pthread_cond_broadcast(&q->done_cv);
    pthread_mutex_unlock(&q->mu);
    for (size_t i = 0; i < n; i++)
        free(t[i]);
}

/* ---- committing ------------------------------------------------------------------- */

struct batch {
    struct job_ticket **t;
    size_t n;
    struct handoff *h; /* the follow-up jobs this commit hands to the workers */
};

/* ticket_decided: start ticket t's pass from its transition as decided (see batch_fn). */
static void ticket_decided(struct job_ticket *t)
{
    if (!t->decided_saved) {
        t->decided = t->f;
        memcpy(t->decided_error, t->error, sizeof t->error);
        t->decided_saved = true;
    } else {
        t->f = t->decided; /* f.error points into t->error, restored next */
        memcpy(t->error, t->decided_error, sizeof t->error);
    }
}

/* all_fn: every ticket's finish_fn of batch b, one after the other with no savepoint of
 * their own (batch_fn runs this inside one); stops at the first failure. */
struct all_pass {
    struct batch *b;
    int rc; /* the failing finish_fn's rc */
};

static int all_fn(struct store_txn *txn, void *arg)
{
    struct all_pass *x = arg;
    size_t n = x->b->n, na = 0;
    /* where the store acks many jobs in one statement (PostgreSQL: one round trip, not
     * one per job), the acks wait until every commit has run; one lease found lost
     * fails the pass, and batch_fn acks each job in its own savepoint. So a job's
     * commit callback sees the rows of the jobs acked before it in its batch: none may
     * count on one being gone (nothing does; a job's dedup_key, were one set, would
     * still be taken until the batch's end). */
    bool many = n > 1 && store_has_job_ack_many(store_txn_store(txn));
    int64_t stack[2 * QUEUE_COMMIT_BATCH];
    int64_t *ids = !many ? NULL : n <= QUEUE_COMMIT_BATCH ? stack : xcalloc(2 * n, sizeof *ids);
    int64_t *toks = ids ? ids + n : NULL;
    x->rc = HR_OK;
    for (size_t i = 0; i < n; i++) {
        struct job_ticket *t = x->b->t[i];
        ticket_decided(t);
        t->f.ack_later = many && t->f.verdict == V_ACK;
        x->rc = finish_fn(txn, &t->f);
        if (x->rc == HR_OK && t->f.ack_later) {
            ids[na] = t->f.j->id;
            toks[na++] = t->f.j->lease_token;
        }
        t->f.ack_later = false;
        t->rc = x->rc;
        if (x->rc < 0)
            goto out;
    }
    if (na)
        x->rc = store_job_ack_many(txn, ids, toks, na);
out:
    if (ids != stack)
        free(ids);
    return x->rc;
}

/* batch_fn: every ticket's finish_fn, in one transaction. First all of them in a single
 * nested savepoint: a savepoint per ticket costs SQLite a walk of its in-memory
 * sub-journal at each release, which grows with the batch (quadratic: 9 % of the
 * writer's time in the flow bench), and PostgreSQL two statements each (sent late, with
 * the statements after them: pg.c, ctl_defer). When one of them
 * fails, that savepoint is rolled back and the batch is run again with every ticket in
 * its own nested savepoint, as follows.
 * A ticket whose handler commit failed is retried (without it) at once, in the same
 * transaction; a lost lease undoes only that ticket. Each pass starts from the
 * transitions as decided: when the store runs the transaction again (a PostgreSQL
 * deadlock) or the ticket is committed alone, a handler commit that failed only in the
 * undone pass (say, a SENT outcome) is tried again, not replaced by a retry that would
 * call the provider a second time. A full disk, or a savepoint that
 * could not be made, fails the whole transaction (the caller decides what follows). */
static int batch_fn(struct store_txn *txn, void *arg)
{
    struct batch *b = arg;
    struct handoff *outer = tl_handoff;
    int rc = HR_OK;
    handoff_truncate(b->h, 0); /* a pass run again starts with nothing handed off */
    tl_handoff = b->h;
    if (b->n > 1) {
        struct all_pass x = {b, HR_OK};
        rc = store_txn_sub(txn, all_fn, &x);
        if (rc == HR_OK)
            goto out;
        handoff_truncate(b->h, 0);
        if (rc == HR_FULL || rc != x.rc)
            goto out; /* the savepoint could not be made or ended: the transaction is lost */
        rc = HR_OK;   /* one ticket failed: each in its own savepoint, below */
    }
    for (size_t i = 0; i < b->n; i++) {
        struct job_ticket *t = b->t[i];
        size_t mark = b->h->n;
        ticket_decided(t);
        rc = store_txn_sub(txn, finish_fn, &t->f);
        if (rc < 0)
            handoff_truncate(b->h, mark); /* its savepoint, and the jobs it made, are gone */
        if (rc < 0 && rc != HR_FULL && t->f.failed_step == STEP_COMMIT && rc == t->f.fn_rc) {
            /* the handler's commit failed and was rolled back with the ack: retry the job */
            char prev[sizeof t->error];
            snprintf(prev, sizeof prev, "%s", t->error);
            snprintf(t->error, sizeof t->error, "commit failed (%s): %.*s",
                     hr_rc_str(t->f.fn_rc), (int)sizeof prev - 64, prev);
            t->f.commit = NULL;
            t->f.error = str_c(t->error);
            set_retry(&t->f, t->max_attempts, 0, &t->rng);
            rc = store_txn_sub(txn, finish_fn, &t->f);
        }
        t->rc = rc;
        if (rc < 0)
            handoff_truncate(b->h, mark);
        if (rc == HR_FULL || (rc < 0 && (t->f.failed_step == STEP_NONE || rc != t->f.fn_rc)))
            goto out; /* the transaction itself is lost */
        rc = HR_OK;
    }
out:
    tl_handoff = outer;
    return rc;
}

/* full_pause: sleep ms (real time) or until stop; false when the queue is stopping. */
static bool full_pause(struct queue *q, int64_t ms)
{
    struct timespec dl = abs_deadline(ms);
    bool go;
    pthread_mutex_lock(&q->mu);
    while (!q->stopping && pthread_cond_timedwait(&q->room_cv, &q->mu, &dl) != ETIMEDOUT)
        ;
    go = !q->stopping;
    pthread_mutex_unlock(&q->mu);
    return go;
}

/* commit_can_wait: a failed commit that may succeed as it is, a little later: a full
 * disk, too many writes waiting, the store out of reach or busy (a PostgreSQL restart,
 * a lock timeout). The outcome is kept and committed again while the leases last,
 * rather than dropped and its work (a provider call) repeated after the lease ends. */
static bool commit_can_wait(int rc)
{
    return rc == HR_FULL || rc == HR_AGAIN || rc == HR_UNAVAIL || rc == HR_BUSY;
}

/* commit_when_space: the store answered HR_FULL (its disk is full), HR_AGAIN (too many
 * writes waiting) or another commit_can_wait code. Try the same commit again, with
 * growing pauses, while the earliest lease of the batch has more than
 * FULL_LEASE_MARGIN_MS left: once space returns, the
 * handlers' work (provider calls, say) is committed as it is, neither repeated nor
 * counted as a failed attempt. Returns the last store_write rc. */
static void renew_if_due(struct queue *q);

static int commit_when_space(struct queue *q, struct batch *b, int rc, struct herr *err)
{
    int64_t until = INT64_MAX, left, give_up, pause = FULL_PAUSE_MIN_MS;
    uint32_t tries = 0;

    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < b->n; i++)
        if (b->t[i]->lease_until < until)
            until = b->t[i]->lease_until;
    pthread_mutex_unlock(&q->mu);
    left = until - now_ms(q) - FULL_LEASE_MARGIN_MS;
    give_up = time_mono_ms() + left;
    while (commit_can_wait(rc) && time_mono_ms() + pause < give_up &&
           full_pause(q, pause)) {
        renew_if_due(q); /* the other jobs in hand keep their leases meanwhile */
        rc = store_write(q->s, batch_fn, b, err);
        tries++;
        if (pause < FULL_PAUSE_MAX_MS)
            pause *= 2;
    }
    if (commit_can_wait(rc))
        LOG_W("queue.commit_disk_full", "jobs=%zu tries=%u rc=%s msg=\"left leased; they run "
              "again when their leases end\"", b->n, tries, hr_rc_str(rc));
    else if (tries)
        LOG_I("queue.commit_after_full", "jobs=%zu tries=%u rc=%s", b->n, tries,
              hr_rc_str(rc));
    return rc;
}

/* commit_tickets: commit n resolved tickets in one store_write, then account for each.
 * A lost lease commits nothing for its job. A full disk is waited out while the leases
 * last; it never turns into a retry or a dead letter. When the transaction fails for
 * another reason, a batch is tried again job by job, so one bad job cannot hold back
 * the others; a job whose commit still fails stays leased until its lease expires. */
static void commit_tickets(struct queue *q, struct job_ticket **t, size_t n)
{
    struct handoff h = {.q = q};
    struct batch b = {t, n, &h};
    struct herr err = {0};
    int rc;

    if (n == 0)
        return;
    rc = store_write(q->s, batch_fn, &b, &err);
    if (commit_can_wait(rc))
        rc = commit_when_space(q, &b, rc, &err);
    if (rc == HR_OK)
        handoff_publish(&h);
    /* else: nothing of it committed (or, past a lost connection, maybe it did: the jobs
     * are then leased to nobody and taken over when their leases end, as after a crash) */
    handoff_truncate(&h, 0);
    pthread_mutex_lock(&q->mu);
    q->stats.commits++;
    pthread_mutex_unlock(&q->mu);
    if (rc < 0 && !commit_can_wait(rc) && n > 1) {
        for (size_t i = 0; i < n; i++)
            commit_tickets(q, &t[i], 1);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct finish *f = &t[i]->f;
        if (commit_can_wait(rc))
            continue; /* logged by commit_when_space */
        if (t[i]->rc < 0 && f->failed_step == STEP_STATE &&
            (f->fn_rc == HR_CONFLICT || f->fn_rc == HR_NOTFOUND)) {
            f->outcome = O_LOST;
            record(q, f, t[i]->label);
        } else if (rc < 0 || t[i]->rc < 0) {
            char kq[80];
            LOG_E("queue.commit_failed", "kind=%s id=%" PRId64 " attempts=%u rc=%s",
                  log_q(kq, sizeof kq, f->j->kind), f->j->id, f->j->attempts,
                  hr_rc_str(rc < 0 ? rc : t[i]->rc));
        } else {
            if (f->commit && f->committed) /* NULL: the job was retried without it */
                f->committed(f->commit_arg);
            record(q, f, t[i]->label);
            if (f->verdict == V_RETRY || f->verdict == V_DEFER) {
                pthread_mutex_lock(&q->mu);
                if (f->run_at_ms < q->due_ms)
                    q->due_ms = f->run_at_ms; /* queued in the store until then */
                pthread_mutex_unlock(&q->mu);
            }
        }
    }
}

/* ---- lease renewal ---------------------------------------------------------------- */

/* One lease to renew: the job's id and token, its new end, and job_extend's answer. */
struct renew {
    int64_t id, token, until;
    int rc;
};

/* renew_fn's argument: the round's renewals, sorted by (id, token). */
struct renew_ctx {
    struct renew *r;
    size_t n;
};

/* renew_fn: extend every lease of the round; one already lost is noted, not an error. */
static int renew_fn(struct store_txn *t, void *arg)
{
    struct renew_ctx *c = arg;
    int rc = HR_OK;
    for (size_t i = 0; i < c->n; i++) {
        rc = store_job_extend(t, c->r[i].id, c->r[i].token, c->r[i].until);
        c->r[i].rc = rc;
        if (rc < 0 && rc != HR_CONFLICT && rc != HR_NOTFOUND)
            goto out;
        rc = HR_OK;
    }
out:
    return rc;
}

/* renew_cmp: qsort/bsearch order of renewals, by (id, token). */
static int renew_cmp(const void *a, const void *b)
{
    const struct renew *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->token < y->token ? -1 : x->token > y->token;
}

/* renew_find: the renewal of (id, token) among the n sorted ones, or NULL. */
static const struct renew *renew_find(const struct renew *r, size_t n, int64_t id,
                                      int64_t token)
{
    struct renew key = {.id = id, .token = token};
    return n ? bsearch(&key, r, n, sizeof *r, renew_cmp) : NULL;
}

/* running_sync: under q->mu, whether a pool worker is running t's handler on its own
 * thread now. Such a job is not renewed: a handler stuck there is what a lease that
 * runs out (a takeover, then the poison-pill guard) is for. An ASYNC job in flight is
 * bounded by its transport's timeout, and one waiting for its commit by the store. */
static bool running_sync(const struct queue *q, const struct job_ticket *t)
{
    for (int i = 0; i < q->nworkers; i++) {
        const struct runner *r = &q->workers[i];
        if (r->running && r->next > 0 && r->jobs[r->next - 1].id == t->job.id &&
            r->jobs[r->next - 1].lease_token == t->job.lease_token)
            return true;
    }
    return false;
}

/* renew_round: on the completer, renew in one store_write the lease of every job in
 * hand that has half of it or less left (not queue_run_once's, not a handler running on
 * a worker, not one in hand past cfg.renew_max_ms), to lease_ms from now; BullMQ renews
 * its job locks the same way. A lease found lost (taken over meanwhile) is logged; its
 * commit will find it lost too. */
static void renew_round(struct queue *q)
{
    static const char renew_help[] = "Leases of jobs in hand renewed by their node (a slow "
                                     "call or commit), and renewals that found the lease "
                                     "taken over already.";
    struct renew *r = NULL;
    struct renew_ctx c;
    struct herr err = {0};
    const struct renew *x;
    size_t n = 0, cap = 0, lost = 0;
    int64_t now, mono = time_mono_ms();
    int rc = HR_OK;

    pthread_mutex_lock(&q->mu);
    now = now_ms(q);
    q->renew_at = mono + renew_period(q);
    for (struct job_ticket *t = q->held_head; t; t = t->hnext) {
        if (t->once || t->renew_capped || t->lease_until - now > q->cfg.lease_ms / 2 ||
            running_sync(q, t))
            continue;
        if (mono - t->held_since > q->cfg.renew_max_ms) {
            char kq[80];
            t->renew_capped = true;
            LOG_W("queue.renew_capped", "kind=%s id=%" PRId64 " held_ms=%" PRId64 " msg=\"in "
                  "hand too long: its lease is not renewed any more and runs out\"",
                  log_q(kq, sizeof kq, t->job.kind), t->job.id, mono - t->held_since);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            r = xrealloc(r, cap * sizeof *r);
        }
        r[n++] = (struct renew){t->job.id, t->job.lease_token, now + q->cfg.lease_ms, HR_OK};
    }
    pthread_mutex_unlock(&q->mu);
    if (n == 0)
        goto out;
    /* in id order: on PostgreSQL the rows are locked in the order a commit batch of
     * another node would lock them, not against it */
    qsort(r, n, sizeof *r, renew_cmp);
    c = (struct renew_ctx){r, n};
    rc = store_write(q->s, renew_fn, &c, &err);
    if (rc < 0) { /* the next round tries again, while the leases last */
        LOG_W("queue.renew_failed", "n=%zu rc=%s", n, hr_rc_str(rc));
        goto out;
    }
    pthread_mutex_lock(&q->mu);
    for (struct job_ticket *t = q->held_head; t; t = t->hnext)
        if ((x = renew_find(r, n, t->job.id, t->job.lease_token)) && x->rc == HR_OK &&
            x->until > t->lease_until)
            t->lease_until = x->until;
    if (q->suspect_id > 0 && (x = renew_find(r, n, q->suspect_id, q->suspect_token)) &&
        x->rc == HR_OK && x->until > q->suspect_until)
        q->suspect_until = x->until;
    pthread_mutex_unlock(&q->mu);
    for (size_t i = 0; i < n; i++)
        lost += r[i].rc != HR_OK;
    metrics_counter_add("herald_queue_lease_renewals_total", renew_help, "result", "renewed",
                        (double)(n - lost));
    if (lost) {
        metrics_counter_add("herald_queue_lease_renewals_total", renew_help, "result", "lost",
                            (double)lost);
        LOG_W("queue.renew_lost", "n=%zu lost=%zu msg=\"leases taken over before they were "
              "renewed; those jobs run elsewhere too\"", n, lost);
    } else {
        LOG_D("queue.renewed", "n=%zu", n);
    }
out:
    free(r);
}

/* renew_due: under q->mu, a job is in hand and the completer's look at leases is due. */
static bool renew_due(const struct queue *q)
{
    return q->held_head && time_mono_ms() >= q->renew_at;
}

/* true on the completer thread: the only one that renews */
static _Thread_local bool tl_completer;

/* renew_if_due: renew_round when due, on the completer only (commit_when_space also
 * runs on queue_run_once's thread). */
static void renew_if_due(struct queue *q)
{
    bool due;
    if (!tl_completer)
        return;
    pthread_mutex_lock(&q->mu);
    due = renew_due(q);
    pthread_mutex_unlock(&q->mu);
    if (due)
        renew_round(q);
}

/* completer_main: commit finished tickets, as many per transaction as are waiting (up
 * to QUEUE_COMMIT_BATCH), and renew the leases of jobs in hand when due (renew_round). */
static void *completer_main(void *arg)
{
    struct queue *q = arg;
    struct job_ticket *batch[QUEUE_COMMIT_BATCH];
    struct timespec dl;
    size_t n;

    pthread_setname_np(pthread_self(), "h-completer"); /* top -H, perf, gdb */
    tl_completer = true;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (!q->done_head && !q->completer_stop && !renew_due(q)) {
            if (!q->held_head) { /* nothing in hand: no timer (ticket_new wakes us) */
                pthread_cond_wait(&q->done_cv, &q->mu);
                continue;
            }
            dl = abs_deadline(q->renew_at - time_mono_ms());
            pthread_cond_timedwait(&q->done_cv, &q->mu, &dl);
        }
        if (renew_due(q) && !q->completer_stop) {
            pthread_mutex_unlock(&q->mu);
            renew_round(q);
            continue;
        }
        if (!q->done_head) { /* stopping, and nothing left */
            pthread_mutex_unlock(&q->mu);
            break;
        }
        for (n = 0; q->done_head && n < QUEUE_COMMIT_BATCH;) {
            batch[n++] = q->done_head;
            q->done_head = q->done_head->next;
            if (batch[0]->suspect)
                break; /* put first by ticket_hand, and committed alone: at once */
        }
        if (!q->done_head)
            q->done_tail = NULL;
        q->ndone -= n;
        pthread_cond_broadcast(&q->room_cv);
        pthread_mutex_unlock(&q->mu);
        commit_tickets(q, batch, n);
        tickets_free(q, batch, n);
    }
    return NULL;
}

/* ---- running ---------------------------------------------------------------------- */

/* run_job: decide (run the handler, or dead-letter without running), then hand the
 * result on: a pool worker to the completer (it does not wait), run_once commits it
 * here. An ASYNC answer leaves the ticket with the handler (queue_job_finish). */
static void run_job(struct queue *q, struct runner *r, const struct job *j)
{
    struct job_ticket *t = ticket_new(q, r, j);
    const struct job_handler *h = find_handler(q, j->kind);
    struct job_result res;
    char saved_rid[64], rid[64];

    memset(&res, 0, sizeof res);
    res.outcome = JOB_OUT_FAIL;
    if (!h) {
        snprintf(t->error, sizeof t->error, "no handler for kind %s", j->kind);
        t->f.verdict = V_DEAD;
        t->f.outcome = O_DEAD;
        t->f.error = str_c(t->error);
    } else if (j->attempts > t->max_attempts) {
        int elen = (int)(j->last_error.len > 256 ? 256 : j->last_error.len);
        snprintf(t->error, sizeof t->error, "lease expired too often (attempts %u > max %u)%s%.*s",
                 j->attempts, t->max_attempts, elen ? "; last error: " : "", elen,
                 elen ? j->last_error.p : "");
        t->f.verdict = V_DEAD;
        t->f.outcome = O_DEAD;
        t->f.error = str_c(t->error);
    } else if (j->retaken >= q->cfg.max_retaken) {
        /* the process died (or stalled past the lease) with this job in hand that many
         * times: likely the job itself kills it; running it again would only repeat that */
        int elen = (int)(j->last_error.len > 256 ? 256 : j->last_error.len);
        snprintf(t->error, sizeof t->error,
                 "poison pill: its lease was taken over %u times (the process died or stalled "
                 "while running it); not run again%s%.*s",
                 j->retaken, elen ? "; last error: " : "", elen, elen ? j->last_error.p : "");
        t->f.verdict = V_DEAD;
        t->f.outcome = O_DEAD;
        t->f.error = str_c(t->error);
    } else {
        res.outcome = JOB_OUT_DONE;
        res.ticket = t;
        if (!r->pooled) {
            pthread_mutex_lock(&q->mu);
            r->outstanding++; /* before the handler: it may finish before it returns */
            pthread_mutex_unlock(&q->mu);
        }
        snprintf(saved_rid, sizeof saved_rid, "%s", log_get_rid());
        snprintf(rid, sizeof rid, "job-%" PRId64, j->id);
        log_set_rid(rid);
        h->run(h->ctx, &t->job, t->arena, &res);
        log_set_rid(saved_rid[0] ? saved_rid : NULL);
        if (res.outcome == JOB_OUT_ASYNC)
            return; /* t belongs to the handler now (and may be gone already) */
        if (!r->pooled) {
            pthread_mutex_lock(&q->mu);
            r->outstanding--;
            pthread_mutex_unlock(&q->mu);
        }
        res.error[sizeof res.error - 1] = '\0';
        ticket_resolve(t, &res);
    }
    if (r->pooled) {
        ticket_hand(t);
        return;
    }
    commit_tickets(q, &t, 1);
    tickets_free(q, &t, 1);
}

/* runner_round: lease up to max jobs and run them. *leased gets the batch size, *ran
 * how many ran. Jobs a pool worker leaves unstarted at stop are given back by
 * queue_stop (or here, if queue_stop already collected); run_once runs its batch. */
static int runner_round(struct queue *q, struct runner *r, size_t max, size_t *leased,
                        size_t *ran)
{
    struct lease_ctx lc = {.q = q, .max = max, .a = r->batch_arena};
    struct herr err = {0};
    struct held *h = NULL;
    const struct job *j;
    size_t k = 0, nh = 0;
    uint64_t seen, gen;
    int64_t next_at = 0;
    bool skip;
    int rc = HR_OK;

    *leased = 0;
    arena_reset(r->batch_arena); /* nothing of the previous batch is pending */
    pthread_mutex_lock(&q->mu);
    r->jobs = NULL;
    r->woken = NULL;
    r->n = r->next = 0;
    /* first the parked jobs now due (they were first), the handed-over jobs, then the
     * others' batches, then the store when it may hold something for us, and only then
     * the bulk lane: a fan-out's pages must not keep a job queued in the store (a
     * transactional send accepted meanwhile) waiting */
    *leased = take_parked(q, r, max);
    if (*leased == 0)
        *leased = take_ready(q, r, max, false);
    if (*leased == 0)
        *leased = take_from_others(q, r, max);
    if (*leased == 0 && q->bulk_head &&
        time_mono_ms() - q->bulk_head->published_ms >= q->cfg.lease_ms / 4)
        *leased = take_ready(q, r, max, true); /* waited long enough: before the store */
    seen = q->store_seq;
    skip = r->pooled && !store_news(q);
    if (*leased == 0 && skip)
        *leased = take_ready(q, r, max, true);
    if (*leased == 0 && !skip) {
        q->last_store_ms = time_mono_ms();
        q->last_lease_at = now_ms(q);
        if (q->suspect_id == 0 || (q->suspect_id > 0 && now_ms(q) >= q->suspect_until)) {
            /* this lease may take the next suspect */
            q->suspect_id = -1;
            lc.max_repeat = 1;
        }
    }
    pthread_mutex_unlock(&q->mu);
    if (*leased == 0 && !skip) {
        rc = store_write(q->s, lease_fn, &lc, &err);
        if (rc < 0 && lc.max_repeat) {
            pthread_mutex_lock(&q->mu);
            q->suspect_id = 0;
            pthread_mutex_unlock(&q->mu);
        }
        if (rc == HR_FULL) { /* the store logged it once; the next round tries again */
            LOG_D("queue.lease_failed", "rc=%s", hr_rc_str(rc));
            goto out;
        }
        if (rc < 0) {
            LOG_E("queue.lease_failed", "rc=%s", hr_rc_str(rc));
            goto out;
        }
        *leased = lc.n;
        pthread_mutex_lock(&q->mu);
        gen = ++q->lease_gen;
        pthread_mutex_unlock(&q->mu);
        /* without the leases' ends (a walk of every job in flight, 9 % of the workers'
         * samples under /send): a busy worker looks in the store every lease_ms/4
         * anyway, and an idle one reads them (idle_wait) */
        if (lc.n < max && store_job_next_run_at(q->s, false, &next_at) != HR_OK)
            next_at = 0; /* unknown: look again at the next round */
        pthread_mutex_lock(&q->mu);
        if (q->lease_gen != gen)
            next_at = 0; /* stale: idle_wait reads it afresh */
        if (lc.max_repeat)
            suspect_first(q, lc.jobs, lc.n);
        if (lc.n < max) {
            q->clean_seq = seen; /* a later queue_wake has bumped store_seq past it */
            /* what is queued now runs at next_at at the earliest (0: nothing known) */
            q->due_ms = next_at > 0 ? next_at : INT64_MAX;
        } else {
            /* a full batch: the store may hold more, due now. This lease's time
             * (last_lease_at) must not pass for having looked for them: without a
             * commit to wake the workers (the batch parked, say), a due_ms at or
             * before it left them asleep until the lease timer (lease_ms/4) */
            q->store_seq++;
        }
        if (lc.n > 0) {
            r->jobs = lc.jobs;
            r->n = lc.n;
            r->next = 0;
        } else { /* nothing in the store after all: the bulk lane */
            *leased = take_ready(q, r, max, true);
        }
        pthread_mutex_unlock(&q->mu);
    }
    /* more than one job in hand: wake one more worker, which takes from this batch
     * (or leases, when the batch was full); it wakes the next the same way */
    if (r->pooled && *leased > 1)
        wake_one(q);

    while ((j = next_job(q, r)) != NULL) {
        if (now_ms(q) + q->cfg.lease_ms / 2 >= j->lease_until_ms) {
            /* earlier jobs of the batch took this one's lease past its half: another
             * runner may have it by the time its work (a provider call, bounded well
             * below the lease) ends, and would run it twice; give it back if it is
             * still ours, so it is leased afresh */
            struct held one = {j->id, j->lease_token};
            char kq[80];
            LOG_W("queue.lease_expired_unstarted", "kind=%s id=%" PRId64 " attempts=%u",
                  log_q(kq, sizeof kq, j->kind), j->id, j->attempts);
            release_held(q, &one, 1);
            continue;
        }
        run_job(q, r, j);
        k++;
    }

    pthread_mutex_lock(&q->mu);
    if (r->next < r->n && (!r->pooled || q->collected)) {
        h = xcalloc(r->n - r->next, sizeof *h);
        nh = take_leftovers(r, h);
    }
    pthread_mutex_unlock(&q->mu);
    release_held(q, h, nh);
    free(h);
out:
    if (ran)
        *ran = k;
    return rc;
}

/* idle_wait: sleep until queue_wake, stop, or the next queued run_at (read once from the
 * store now; commits that insert or re-queue jobs wake a worker, which reads it again).
 * The lease-timer worker also wakes every lease_ms/4, to notice a dead node's expired
 * leases. After a failed lease it sleeps idle_poll_ms and only stop cuts that short, so
 * a failing store is not hammered on every wake. `seq` is the wake sequence read before
 * the lease that came back empty. */
static void idle_wait(struct queue *q, struct runner *r, uint64_t seq, bool failed)
{
    int64_t wait = IDLE_FOREVER_MS, next = 0, now;
    struct timespec dl;
    bool unsure, park_timer = false; /* the timer is a parked job's, not the store's */
    uint64_t gen;
    int rc;

    if (failed) { /* not on wake_cv: a wake meant for an idle worker must not land here */
        full_pause(q, q->cfg.idle_poll_ms);
        return;
    }
    pthread_mutex_lock(&q->mu);
    gen = q->lease_gen;
    pthread_mutex_unlock(&q->mu);
    rc = store_job_next_run_at(q->s, true, &next); /* HR_NOTFOUND: no job at all */
    unsure = rc != HR_OK && rc != HR_NOTFOUND;
    if (rc != HR_OK)
        next = 0;
    pthread_mutex_lock(&q->mu);
    if (q->lease_gen != gen) { /* a lease ended meanwhile: the read may be stale */
        pthread_mutex_unlock(&q->mu);
        return;
    }
    now = now_ms(q);
    if (rc == HR_OK) /* read after the last lease ended: what the store holds now */
        q->due_ms = next;
    else if (rc == HR_NOTFOUND)
        q->due_ms = INT64_MAX;
    if (r->pooled && store_news(q)) { /* a run_at came due meanwhile: look now */
        pthread_mutex_unlock(&q->mu);
        return;
    }
    /* only a job in the future sets a timer: one due now that was looked for belongs
     * to another runner or to a kind we do not handle. Such a job hides the next run_at
     * behind it (store_job_next_run_at reads the earliest of all kinds), and a failed
     * read knows nothing: then look every lease_ms/4, as the lease timer does */
    if (q->due_ms > now && q->due_ms - now < wait)
        wait = q->due_ms - now;
    else if (q->due_ms <= now)
        unsure = true;
    if (r->pooled && q->park_head) { /* a parked job's time (due now: at once) */
        if (q->park_head->due_ms <= now) {
            pthread_mutex_unlock(&q->mu);
            return;
        }
        if (q->park_head->due_ms - now < wait) {
            wait = q->park_head->due_ms - now;
            park_timer = true;
        }
    }
    pthread_mutex_unlock(&q->mu);
    if ((r->lease_timer || unsure) && wait > q->cfg.lease_ms / 4) {
        wait = q->cfg.lease_ms / 4;
        park_timer = false;
    }
    if (wait < IDLE_MIN_MS)
        wait = IDLE_MIN_MS;
    dl = abs_deadline(wait);
    pthread_mutex_lock(&q->mu);
    while (!q->stopping && q->wake_seq == seq) {
        if (pthread_cond_timedwait(&q->wake_cv, &q->mu, &dl) == ETIMEDOUT) {
            if (!park_timer) /* a run_at came due, or the lease timer: look in the store */
                q->store_seq++;
            break;
        }
    }
    pthread_mutex_unlock(&q->mu);
}

static void *worker_main(void *arg)
{
    struct runner *r = arg;
    struct queue *q = r->q;
    /* a whole batch per lease: a worker's jobs are short now (a provider call is async),
     * and an idle worker takes unstarted ones from a busy one's batch. A quarter each
     * (4 of 16) made every 4 jobs leased from the store wait for a group commit: /send
     * delivered 4,250/s with a backlog left in the store, 4,750-5,800/s without at 16
     * (docs/PERFORMANCE.md, session 18) */
    size_t per = (size_t)q->cfg.batch;
    size_t leased, ran;
    uint64_t seq;
    int rc;

    pthread_setname_np(pthread_self(), "h-worker"); /* top -H, perf, gdb */
    if (per < 1)
        per = 1;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        /* back-pressure: lease nothing more while too many jobs are run and not
         * committed (async calls in flight), or while the completer is a commit batch
         * behind (a slow store): leased jobs waiting for a commit are what a crash
         * retakes. Not the lease batch: a pause at 16 finished jobs kept the completer's
         * batches near 16 (0.52 commits and 1.65-1.70 write transactions per flow event,
         * against 0.26 and 1.22-1.25 at QUEUE_COMMIT_BATCH, PERFORMANCE.md). A crash therefore takes over up
         * to a commit batch more; they come back in whole batches, and only jobs in hand
         * at two deaths in a row run alone (suspects) */
        while (!q->stopping &&
               (q->pending >= QUEUE_PENDING_MAX || q->ndone >= (size_t)QUEUE_COMMIT_BATCH))
            pthread_cond_wait(&q->room_cv, &q->mu);
        seq = q->wake_seq;
        if (q->stopping) {
            pthread_mutex_unlock(&q->mu);
            break;
        }
        pthread_mutex_unlock(&q->mu);
        rc = runner_round(q, r, per, &leased, &ran);
        if (rc == HR_OK && leased > 0)
            continue;
        idle_wait(q, r, seq, rc < 0);
    }
    pthread_mutex_lock(&q->mu);
    r->exited = true;
    pthread_cond_broadcast(&q->exit_cv);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* ---- pool control ---------------------------------------------------------------- */

static void join_and_free(struct queue *q)
{
    struct runner *w;
    for (int i = 0; i < q->nworkers; i++)
        if (q->workers[i].th_started)
            pthread_join(q->workers[i].th, NULL);
    pthread_mutex_lock(&q->mu); /* the completer's running_sync reads the array */
    w = q->workers;
    for (int i = 0; i < q->nworkers; i++)
        runner_cleanup(&w[i]);
    q->workers = NULL;
    q->nworkers = 0;
    q->started = q->stopping = q->collected = false;
    pthread_mutex_unlock(&q->mu);
    free(w);
}

/* stop_completers: let the completers commit what is waiting, then join them. */
static void stop_completers(struct queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->completer_stop = true;
    pthread_cond_broadcast(&q->done_cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->ncompleters; i++)
        pthread_join(q->completers[i], NULL);
    q->ncompleters = 0;
}

int queue_start(struct queue *q)
{
    sigset_t all, old;
    int rc = HR_OK, n = q->cfg.workers;

    pthread_mutex_lock(&q->mu);
    if (q->started) {
        pthread_mutex_unlock(&q->mu);
        goto out;
    }
    q->started = true;
    q->stopping = q->collected = q->completer_stop = false;
    q->store_seq++; /* whatever the store holds is news to a new pool */
    q->due_ms = INT64_MAX;
    q->last_store_ms = time_mono_ms();
    q->last_lease_at = INT64_MIN;
    q->workers = xcalloc((size_t)n, sizeof *q->workers);
    q->nworkers = n;
    for (int i = 0; i < n; i++)
        runner_init(&q->workers[i], q, true);
    /* a shared store (PostgreSQL) may hold another node's expired lease, or a job whose
     * NOTIFY this node missed: one worker looks every lease_ms/4. A store only this
     * process uses needs no timer: idle_wait sleeps until the earliest run_at or lease
     * end the store holds (store_job_next_run_at), so an idle server does not write. */
    q->workers[0].lease_timer = store_shared(q->s);
    pthread_mutex_unlock(&q->mu);

    /* workers and the completer take no signals: the main thread handles them */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < n && i < COMPLETERS_MAX && rc == HR_OK; i++) {
        if (pthread_create(&q->completers[i], NULL, completer_main, q) != 0)
            rc = HR_IO;
        else
            q->ncompleters++;
    }
    for (int i = 0; i < n && rc == HR_OK; i++) {
        if (pthread_create(&q->workers[i].th, NULL, worker_main, &q->workers[i]) != 0) {
            rc = HR_IO;
            break;
        }
        q->workers[i].th_started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        LOG_E("queue.start_failed", "workers=%d", n);
        queue_stop(q, 0);
        goto out;
    }
    LOG_I("queue.started", "workers=%d batch=%d lease_ms=%" PRId64, n, q->cfg.batch,
          q->cfg.lease_ms);
out:
    return rc;
}

void queue_stop(struct queue *q, int64_t timeout_ms)
{
    struct held *h = NULL;
    size_t nh = 0, nr = 0, cap = 0;
    struct timespec dl;
    bool warned = false;
    int exited;

    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    if (!q->started || q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return;
    }
    q->stopping = true;
    pthread_cond_broadcast(&q->wake_cv);
    pthread_cond_broadcast(&q->room_cv);
    /* take the unstarted jobs now: a worker checks `stopping` under this lock before
     * starting each job, so none of these can start after this */
    for (int i = 0; i < q->nworkers; i++)
        cap += q->workers[i].n - q->workers[i].next;
    if (cap) {
        h = xcalloc(cap, sizeof *h);
        for (int i = 0; i < q->nworkers; i++)
            nh += take_leftovers(&q->workers[i], h + nh);
    }
    q->collected = true;
    pthread_mutex_unlock(&q->mu);

    release_held(q, h, nh); /* early, so other nodes can take them at once */
    free(h);
    pthread_mutex_lock(&q->mu);
    nr = take_all_ready(q, &h);
    pthread_mutex_unlock(&q->mu);
    release_held(q, h, nr);
    free(h);

    if (timeout_ms < 0)
        timeout_ms = 0;
    dl = abs_deadline(timeout_ms);
    pthread_mutex_lock(&q->mu);
    for (;;) {
        exited = 0;
        for (int i = 0; i < q->nworkers; i++)
            exited += q->workers[i].exited || !q->workers[i].th_started;
        if (exited == q->nworkers)
            break;
        if (pthread_cond_timedwait(&q->exit_cv, &q->mu, &dl) == ETIMEDOUT)
            break;
    }
    for (int i = 0; i < q->nworkers; i++) {
        struct runner *r = &q->workers[i];
        if (r->running) {
            char kq[80];
            const struct job *j = &r->jobs[r->next - 1];
            LOG_W("queue.stop_waiting", "timeout_ms=%" PRId64 " kind=%s id=%" PRId64
                  " worker=%d msg=\"handler still running; joining\"",
                  timeout_ms, log_q(kq, sizeof kq, j->kind), j->id, i);
        }
    }
    /* async jobs still in flight and finished jobs not yet committed: the completer
     * commits them as they end. Past the timeout, keep waiting (a ticket must not outlive
     * the queue): an async call ends within its transfer timeout. */
    while (q->pending > 0) {
        if (pthread_cond_timedwait(&q->done_cv, &q->mu, &dl) != ETIMEDOUT)
            continue;
        if (!warned)
            LOG_W("queue.stop_waiting_async", "timeout_ms=%" PRId64 " pending=%zu "
                  "msg=\"jobs in flight; waiting for them to end\"", timeout_ms, q->pending);
        warned = true;
        dl = abs_deadline(1000);
    }
    pthread_mutex_unlock(&q->mu);

    join_and_free(q);
    stop_completers(q);
    /* handed off by commits that began before the stop */
    pthread_mutex_lock(&q->mu);
    nh += nr;
    nr = take_all_ready(q, &h);
    pthread_mutex_unlock(&q->mu);
    release_held(q, h, nr);
    free(h);
    LOG_I("queue.stopped", "released=%zu", nh + nr);
}

/* queue_run_once: max 0 means cfg.batch. */
int queue_run_once(struct queue *q, size_t max, size_t *ran)
{
    struct runner r;
    struct job_ticket *t;
    size_t leased, k = 0;
    int rc;

    if (max == 0)
        max = (size_t)q->cfg.batch;
    runner_init(&r, q, false);
    rc = runner_round(q, &r, max, &leased, &k);
    /* its ASYNC jobs: commit each here as it ends */
    pthread_mutex_lock(&q->mu);
    while (r.outstanding > 0) {
        while (!r.done_head)
            pthread_cond_wait(&q->done_cv, &q->mu);
        t = r.done_head;
        r.done_head = t->next;
        r.outstanding--;
        pthread_mutex_unlock(&q->mu);
        commit_tickets(q, &t, 1);
        tickets_free(q, &t, 1);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    runner_cleanup(&r);
    if (ran)
        *ran = k;
    return rc;
}
