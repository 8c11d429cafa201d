/* deliver.c: the "send.deliver" job: one message on one channel. It calls the channel's
 * providers in priority order (failover on permanent errors), retries the same provider
 * after transient errors with backoff until the message timeout, and commits each
 * outcome with the job's ack (see send.h for the whole pipeline). A provider at its
 * per-node limit (limit.h) defers the job instead of calling.
 *
 * The call is asynchronous: engine_deliver_run reads and checks everything on the
 * worker (a canceled message stops here, before any call), takes a limit slot, then
 * provider_start()s the attempt and answers JOB_OUT_ASYNC: the worker is free at once.
 * deliver_done runs when the call ends (on the transport's loop thread, or on the worker
 * when no call was made): it decides retry/failover timing and hands the result to the
 * queue (queue_job_finish), whose completer runs deliver_commit in its batch, then
 * deliver_settled, which frees the limit slot. The struct delivery_call, in the job's
 * arena, keeps everything the call reads alive until deliver_done.
 *
 * A route job may make a message's first attempt itself (send__deliver_fused): the same
 * deliver_begin, with the content it just rendered, and deliver_commit runs the route's
 * commit first, so one transaction says ROUTED and the attempt's outcome. When it sent,
 * deliver_done prints what the commit writes (fused_sent_prepare) and the message row is
 * written once, to SENT (fused_sent).
 *
 * An attempt's outcome (its SENT, RETRYING or UNDELIVERABLE event, a channel's `sent`
 * and the message's sent_ms) is timed when the call ended, on every path; the commit's
 * time is the row's updated_ms. */
#include "defcache.h"
#include "send_int.h"
#include "receipt.h"

#include "../providers/provider.h"
#include "../util/crypto.h"
#include "../util/log.h"
#include "../util/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct deliver_out {
    struct str id;
    char channel[32];
    char provider_id[128];
    char provider[32];
    int64_t p, attempt;
    uint32_t lease_attempt;    /* the queue's lease count: > 1 after a node died mid-call */
    int64_t started_ms;
    int64_t ended_ms;          /* when the provider call ended */
    int outcome;               /* enum delivery_outcome, or -1: nothing attempted */
    bool suppressed;           /* not attempted: the address is on the suppression list */
    bool timed_out;            /* transient, but the message timeout has passed */
    int64_t retry_at;
    struct delivery_result res;
    /* a route job that delivered its message itself (send__deliver_fused): the route's
     * commit, run first in the same transaction; it says whether it applied (not when
     * the message was canceled or deleted meanwhile) */
    send__route_commit_fn route_commit;
    void *route_arg;
    /* ... and when it was sent, what the commit writes, printed when the call ended (off
     * the writer; fused_sent_prepare): the DELIVERING and SENT events, the new state */
    char *sent_hist[2];
    char *sent_state;
};

static cJSON *integration(const struct deliver_out *o)
{
    cJSON *h = cJSON_CreateObject(), *ch, *in;
    ch = cJSON_AddObjectToObject(h, "channel");
    cJSON_AddStringToObject(ch, "id", o->channel);
    in = cJSON_AddObjectToObject(h, "integration");
    cJSON_AddStringToObject(in, "id", o->provider_id);
    cJSON_AddStringToObject(in, "provider", o->provider);
    return h;
}

/* attempt_body: the attempt's history body: integration, attempt and, when the job was
 * taken over after its lease ran out (a node stopped mid-attempt: the provider may have
 * had the earlier call too; the idempotency key is the same), lease_attempt and retaken */
static cJSON *attempt_body(const struct deliver_out *o)
{
    cJSON *h = integration(o);
    cJSON_AddNumberToObject(h, "attempt", (double)o->attempt);
    if (o->lease_attempt > 1) {
        cJSON_AddNumberToObject(h, "lease_attempt", (double)o->lease_attempt);
        cJSON_AddBoolToObject(h, "retaken", 1);
    }
    return h;
}

/* mark_sent: channel state cs says the attempt o sent */
static void mark_sent(cJSON *cs, const struct deliver_out *o)
{
    cJSON_ReplaceItemInObjectCaseSensitive(cs, "status", cJSON_CreateString("sent"));
    cJSON_AddStringToObject(cs, "provider", o->provider_id);
    cJSON_AddStringToObject(cs, "provider_key", o->provider);
    cJSON_AddStringToObject(cs, "reference", o->res.reference);
    cJSON_AddNumberToObject(cs, "sent", (double)o->ended_ms);
}

/* put_msgref: the sent attempt's provider reference, by which receipts find message id
 * (receipt.c); none without a reference, none for a provider that takes no receipts,
 * and none for one too long to index (it stays in the state, as every reference does) */
static int put_msgref(struct store_txn *t, const struct deliver_out *o, struct str id,
                      int64_t now)
{
    const struct provider_ops *ops = provider_find(o->provider);
    int rc;
    if (!o->res.reference[0] || !ops || !ops->receipts)
        return HR_OK;
    rc = store_msgref_put(t, &(struct msgref_rec){str_c(o->provider), str_c(o->res.reference),
                                                  id, str_c(o->channel), now});
    return rc == HR_INVAL ? HR_OK : rc;
}

static cJSON *job_payload(const struct deliver_out *o, int64_t p, int64_t attempt)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "id", o->id.p);
    cJSON_AddStringToObject(j, "channel", o->channel);
    cJSON_AddNumberToObject(j, "p", (double)p);
    cJSON_AddNumberToObject(j, "attempt", (double)attempt);
    return j;
}

/* channel_failed: this channel has no provider left. For single routing, try the next
 * alternative (a new route job); when nothing is left, the message is UNDELIVERABLE. */
static int channel_failed(struct store_txn *t, struct message_rec *m, cJSON *state,
                          struct deliver_out *o, struct arena *a, int64_t now)
{
    cJSON *chs = json_obj(state, "channels"), *cs = json_obj(chs, o->channel), *it;
    const char *routing = json_str(state, "routing");
    int64_t alt = 0, alts = 0;
    bool pending = false, sent = false;
    int rc;
    if (cs) {
        cJSON_ReplaceItemInObjectCaseSensitive(cs, "status", cJSON_CreateString("failed"));
        cJSON_DeleteItemFromObjectCaseSensitive(cs, "error");
        cJSON_AddStringToObject(cs, "error", o->res.reason);
        if (o->provider[0] && !json_member(cs, "provider_key")) {
            cJSON_AddStringToObject(cs, "provider", o->provider_id);
            cJSON_AddStringToObject(cs, "provider_key", o->provider);
        }
    }
    cJSON_ArrayForEach(it, chs)
    {
        const char *st = json_str(it, "status");
        pending |= st && strcmp(st, "pending") == 0;
        sent |= st && strcmp(st, "sent") == 0;
    }
    m->state = send__json_str(a, state);
    if (pending || sent) { /* `all` routing: other channels decide */
        m->updated_ms = now;
        return store_message_update(t, m);
    }
    json_i64(state, "alt", &alt);
    json_i64(state, "alts", &alts);
    if ((!routing || strcmp(routing, "single") == 0) && alt + 1 < alts) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", m->id.p);
        cJSON_AddNumberToObject(j, "alt", (double)(alt + 1));
        m->updated_ms = now;
        rc = store_message_update(t, m);
        if (rc == HR_OK)
            rc = send__enqueue(t, SEND_ROUTE_KIND, j, 0);
        cJSON_Delete(j);
        return rc;
    }
    return send__final(t, m, a, "UNDELIVERABLE",
                       o->timed_out     ? "FAILED"
                       : o->suppressed ? "SUPPRESSED"
                                       : "PROVIDER_ERROR",
                       o->res.reason,
                       NULL, now);
}

/* attempt_history: the attempt's DELIVERING and outcome events (SENT, else
 * UNDELIVERABLE: nothing follows it) and, when sent, its reference for receipts; nothing
 * else: for a message canceled while its fused route job (send__deliver_fused) called. */
static int attempt_history(struct store_txn *t, struct str id, const struct deliver_out *o,
                           int64_t now)
{
    cJSON *h = integration(o);
    int rc;
    cJSON_AddNumberToObject(h, "attempt", (double)o->attempt);
    rc = send__history(t, id, o->started_ms, "DELIVERING", h);
    if (rc == HR_OK && o->outcome != DELIVERY_SENT)
        cJSON_AddStringToObject(h, "error_message", o->res.reason);
    if (rc == HR_OK)
        rc = send__history(t, id, o->ended_ms, o->outcome == DELIVERY_SENT ? "SENT" : "UNDELIVERABLE",
                           h);
    if (rc == HR_OK && o->outcome == DELIVERY_SENT)
        rc = put_msgref(t, o, id, now);
    cJSON_Delete(h);
    return rc;
}

/* fused_sent: the commit of a fused attempt that sent (its writes printed in
 * fused_sent_prepare): m, as routing left it, goes to SENT in one update (from ENQUEUED,
 * or ROUTED for a later alternative's route); the status webhooks still see ROUTED on
 * the way (not again when it was stored). */
static int fused_sent(struct store_txn *t, const struct deliver_out *o, struct message_rec *m,
                      const struct history_row *routed, size_t nrouted, struct arena *a,
                      int64_t now)
{
    struct history_row *hist = arena_alloc(a, (nrouted + 2) * sizeof *hist);
    int rc = store_message_passing(t, m);
    if (nrouted)
        memcpy(hist, routed, nrouted * sizeof *hist);
    hist[nrouted] = (struct history_row){o->started_ms, STR_LIT("DELIVERING"),
                                         str_c(o->sent_hist[0])};
    hist[nrouted + 1] = (struct history_row){o->ended_ms, STR_LIT("SENT"),
                                             str_c(o->sent_hist[1])};
    if (rc == HR_OK) /* the routing's events and the attempt's: one row */
        rc = store_history_append_many(t, m->id, hist, nrouted + 2);
    if (rc == HR_OK)
        rc = put_msgref(t, o, m->id, now);
    if (rc < 0)
        return rc;
    m->status = STR_LIT("SENT");
    m->sent_ms = o->ended_ms;
    m->reason = m->error = STR_NULL;
    m->state = str_c(o->sent_state);
    m->updated_ms = now;
    return store_message_update(t, m);
}

static int deliver_commit(struct store_txn *t, void *arg)
{
    struct deliver_out *o = arg;
    struct arena *a = arena_new(8192);
    struct message_rec m;
    cJSON *state = NULL, *h = NULL, *cs;
    int64_t now = hclock_now(store_txn_store(t)->clock);
    struct history_row *rhist = NULL;
    size_t nrhist = 0;
    bool routed = true;
    int rc;
    if (o->route_commit) { /* fused: the routing first, the message row with the outcome */
        rc = o->route_commit(t, o->route_arg, a, &m, &rhist, &nrhist, o->sent_state != NULL,
                             &routed);
        if (rc < 0 || !m.id.len)
            goto out; /* a store error, or the message is gone */
        if (!routed) {
            /* canceled while its route job called: the attempt still goes into the
             * history, and nothing else changes */
            if (o->outcome >= 0)
                rc = attempt_history(t, m.id, o, now);
            goto out;
        }
        if (o->sent_state) {
            rc = fused_sent(t, o, &m, rhist, nrhist, a, now);
            goto out;
        }
        rc = store_history_append_many(t, m.id, rhist, nrhist);
        if (rc == HR_OK) /* ROUTED; the outcome follows as for a job */
            rc = store_message_update(t, &m);
    } else {
        rc = store_message_get_txn(t, o->id, a, &m);
        if (rc == HR_NOTFOUND) {
            rc = HR_OK;
            goto out;
        }
    }
    if (rc < 0)
        goto out;
    state = cJSON_ParseWithLength(m.state.p, m.state.len);
    cs = json_obj(json_obj(state, "channels"), o->channel);
    if (!cs)
        goto out; /* rerouted meanwhile */
    if (o->outcome < 0) { /* nothing attempted: canceled, or no provider left */
        if (o->suppressed && !send__is_final(m.status))
            rc = receipt_suppressed_history(t, m.id, o->channel, o->res.reason, now);
        if (rc == HR_OK && !str_eq_c(m.status, "CANCELED") && !send__is_final(m.status))
            rc = channel_failed(t, &m, state, o, a, now);
        goto out;
    }
    h = attempt_body(o);
    rc = send__history(t, m.id, o->started_ms, "DELIVERING", h);
    if (rc < 0)
        goto out;
    if (o->outcome == DELIVERY_SENT) {
        cJSON *ref = cJSON_CreateObject();
        if (o->res.reference[0])
            cJSON_AddStringToObject(ref, "id", o->res.reference);
        cJSON_AddItemToObject(h, "reference", ref);
        rc = send__history(t, m.id, o->ended_ms, "SENT", h);
        if (rc < 0)
            goto out;
        mark_sent(cs, o);
        m.state = send__json_str(a, state);
        rc = put_msgref(t, o, m.id, now);
        if (rc < 0)
            goto out;
        if (!str_eq_c(m.status, "SENT") && receipt_rank(m.status) <= 1) {
            m.status = STR_LIT("SENT");
            m.sent_ms = o->ended_ms;
            m.reason = m.error = STR_NULL;
        }
        m.updated_ms = now;
        rc = store_message_update(t, &m);
        goto out;
    }
    if (o->outcome == DELIVERY_TRANSIENT && !o->timed_out) {
        cJSON *j = job_payload(o, o->p, o->attempt + 1);
        cJSON_AddStringToObject(h, "error_message", o->res.reason);
        cJSON_AddNumberToObject(h, "retry_at", (double)o->retry_at);
        rc = send__history(t, m.id, o->ended_ms, "RETRYING", h);
        if (rc == HR_OK)
            rc = send__enqueue(t, SEND_DELIVER_KIND, j, o->retry_at);
        cJSON_Delete(j);
        goto out;
    }
    /* permanent (or out of time): this provider is done; fail over */
    cJSON_AddStringToObject(h, "reason", "PROVIDER_ERROR");
    cJSON_AddStringToObject(h, "error_message", o->res.reason);
    rc = send__history(t, m.id, o->ended_ms, "UNDELIVERABLE", h);
    if (rc < 0)
        goto out;
    if (!o->timed_out && o->p + 1 < cJSON_GetArraySize(json_arr(cs, "providers"))) {
        cJSON *j = job_payload(o, o->p + 1, 1);
        rc = send__enqueue(t, SEND_DELIVER_KIND, j, 0);
        cJSON_Delete(j);
        goto out;
    }
    rc = channel_failed(t, &m, state, o, a, now);
out:
    cJSON_Delete(state);
    cJSON_Delete(h);
    arena_free(a);
    return rc;
}

/* One attempt in flight: what provider_start reads (the delivery and everything it
 * points to) and what deliver_done needs. In the job's arena; the cJSON documents and
 * the content are freed by deliver_done. */
struct delivery_call {
    struct engine *e;
    struct arena *a;            /* the job's, where c lives */
    struct deliver_out *o;      /* the commit's argument, in the same arena */
    struct job_ticket *ticket;  /* ends the job: queue_job_finish */
    bool held;                  /* a slot of the provider's limits is ours */
    int64_t enqueued_ms;        /* the message's, for its timeout */
    int64_t timeout_ms;         /* the message timeout */
    cJSON *state, *spec, *pdoc; /* the delivery's profile, override and settings live here */
    struct defset *pset;        /* the cached providers pdoc belongs to (pdoc not owned
                                   then: pdoc_release) */
    struct content content;
    char idem[512];
    struct delivery dl;
};

static int64_t backoff(const struct engine *e, int64_t attempt);

/* pdoc_release: give back c's provider record: a reference to the cached set it is part
 * of, or the record read for this call. */
static void pdoc_release(struct delivery_call *c)
{
    if (c->pset)
        defset_unref(c->pset);
    else
        cJSON_Delete(c->pdoc);
    c->pset = NULL;
    c->pdoc = NULL;
}

/* provider_cached: the record of provider id, enabled on channel ch, from the engine's
 * provider cache (what routing chose it from, defcache.h), holding the cached set in
 * c->pset. Only on a store this process owns (SQLite): every change to a provider goes
 * through it and drops the cache at once, so the record is the stored one. On a shared
 * store another node's change shows in the cache only within DEFCACHE_TTL_MS, and a
 * provider disabled there must not be called: NULL, as when there is no cache or the
 * provider is not enabled on ch there; the caller reads the store, which also says
 * whether it was removed or disabled. */
static const cJSON *provider_cached(struct engine *e, struct delivery_call *c, const char *ch,
                                    const char *id)
{
    struct defset *ps = NULL;
    if (!e->provs || store_shared(e->store) || engine_channel_providers(e, ch, &ps) != HR_OK)
        return NULL;
    for (size_t i = 0; i < ps->n; i++) {
        if (ps->defs[i] && strcmp(ps->ids[i], id) == 0) {
            c->pset = ps;
            return ps->defs[i];
        }
    }
    defset_unref(ps);
    return NULL;
}

/* deliver_settled: the attempt's outcome is committed (or given up: the job runs again
 * after its lease): only now is the provider's limit slot free, so the calls of one
 * provider not yet durable on this node never exceed its concurrency cap (what a crash
 * can repeat). The call time the limiter learns ends when the call did. */
static void deliver_settled(void *arg)
{
    struct delivery_call *c = arg;
    if (c->held)
        limit_release(c->e->limits, c->o->provider_id, c->o->started_ms, c->o->ended_ms);
    c->held = false;
}

/* fused_sent_prepare: for a fused attempt that sent, prints what fused_sent writes (in
 * c's arena, which is the call's until deliver_done hands it back). c->state is the
 * state routing writes. */
static void fused_sent_prepare(struct delivery_call *c)
{
    struct deliver_out *o = c->o;
    cJSON *h = attempt_body(o), *ref, *cs;
    char *p[3];
    p[0] = send__history_json(o->started_ms, "DELIVERING", h);
    ref = cJSON_AddObjectToObject(h, "reference");
    if (o->res.reference[0])
        cJSON_AddStringToObject(ref, "id", o->res.reference);
    p[1] = send__history_json(o->ended_ms, "SENT", h);
    cJSON_Delete(h);
    cs = json_obj(json_obj(c->state, "channels"), o->channel);
    p[2] = NULL;
    if (cs) {
        mark_sent(cs, o);
        p[2] = json_print(c->state);
    }
    for (int i = 0; i < 3; i++)
        if (p[i])
            arena_defer(c->a, free, p[i]);
    if (p[2]) { /* else (no channel state: cannot happen) the commit's own path */
        o->sent_hist[0] = p[0];
        o->sent_hist[1] = p[1];
        o->sent_state = p[2];
    }
}

/* deliver_done: the attempt ended (provider_done_fn). Must not block: it may run on the
 * transport's loop thread. Frees the documents, sets the retry time, and hands the
 * outcome to the queue (the commit, then deliver_settled); the call's memory (arena)
 * lives until then. */
static void deliver_done(void *arg, const struct delivery_result *res)
{
    struct delivery_call *c = arg;
    struct engine *e = c->e;
    struct deliver_out *o = c->o;
    struct job_result r = {.outcome = JOB_OUT_DONE, .commit = deliver_commit, .commit_arg = o,
                           .settled = deliver_settled, .settled_arg = c};
    int64_t now = hclock_now(e->clock);

    o->res = *res;
    o->ended_ms = now;
    o->outcome = o->res.outcome;
    metrics_counter_add("herald_deliveries_total", "Provider calls by provider and outcome.",
                        "outcome",
                        o->outcome == DELIVERY_SENT        ? "sent"
                        : o->outcome == DELIVERY_TRANSIENT ? "transient"
                                                           : "permanent",
                        1);
    if (o->outcome == DELIVERY_TRANSIENT) {
        o->retry_at = now + backoff(e, o->attempt);
        if (o->res.retry_after_ms > 0 && now + o->res.retry_after_ms > o->retry_at)
            o->retry_at = now + o->res.retry_after_ms;
        o->timed_out = o->retry_at > c->enqueued_ms + c->timeout_ms;
    }
    if (o->route_commit && o->outcome == DELIVERY_SENT)
        fused_sent_prepare(c);
    LOG_I("send.attempt", "message=%s channel=%s provider=%s attempt=%lld outcome=%s status=%d",
          o->id.p, o->channel, o->provider, (long long)o->attempt,
          o->outcome == DELIVERY_SENT ? "sent" : o->outcome == DELIVERY_TRANSIENT ? "transient" : "permanent",
          o->res.remote_status);
    content_cleanup(&c->content);
    cJSON_Delete(c->state);
    cJSON_Delete(c->spec);
    pdoc_release(c);
    c->state = c->spec = NULL;
    queue_job_finish(NULL, c->ticket, &r); /* c and o may be gone after this */
}

static void content_from_json(const cJSON *c, enum channel ch, struct content *out)
{
    const char *v;
    memset(out, 0, sizeof *out);
    out->channel = ch;
#define TAKE(f)                                                                               \
    if ((v = json_str(c, #f)))                                                                \
        out->f = strdup(v);
    TAKE(subject)
    TAKE(html)
    TAKE(text)
    TAKE(title)
    TAKE(body)
#undef TAKE
    if ((v = json_str(c, "list_unsubscribe")))
        out->list_unsub = strdup(v);
    if (json_member(c, "json"))
        out->json = cJSON_Duplicate(json_member(c, "json"), 1);
}

static int64_t backoff(const struct engine *e, int64_t attempt)
{
    int64_t base = e->backoff_base_ms > 0 ? e->backoff_base_ms : 5000;
    int64_t max = e->backoff_max_ms > 0 ? e->backoff_max_ms : 3600000;
    struct queue_cfg qc = {.backoff_base_ms = base, .backoff_max_ms = max};
    uint32_t r; /* not rand(): workers call this at once, and each node needs its own jitter */
    crypto_random(&r, sizeof r);
    return queue_backoff_ms(&qc, (uint32_t)(attempt > 0 ? attempt : 1),
                            (double)r / 4294967296.0);
}

/* call_cleanup: frees what a delivery_call holds when no call was started. */
static void call_cleanup(struct delivery_call *c)
{
    content_cleanup(&c->content);
    cJSON_Delete(c->state);
    cJSON_Delete(c->spec);
    pdoc_release(c);
    c->state = c->spec = NULL;
}

enum begin { BEGIN_STARTED, BEGIN_NOCALL, BEGIN_DEFER, BEGIN_RETRY };

/* deferred: counts a delivery put off at its provider's limit (wait_key set: at the
 * concurrency cap, else at the rate limit) */
static void deferred(uint64_t wait_key)
{
    metrics_counter_add("herald_provider_deferred_total",
                        "Deliveries put off because the provider was at its limit.", "limit",
                        wait_key ? "concurrency" : "rate", 1);
}

/* deliver_begin: the checks and the start of one attempt of c->o (id, channel, p,
 * attempt set) on channel state cs (in c->state), for a message enqueued at
 * enqueued_ms. c holds the message's parsed state and spec, and its rendered content
 * when have_content (else it is read from the message's outputs here). Returns
 *   BEGIN_STARTED: the call started and r says ASYNC: c (and the arena it lives in)
 *     belongs to the call until deliver_done; nothing of c may be touched;
 *   BEGIN_NOCALL: no call to make (suppressed, no provider left, provider gone): o says
 *     why, for deliver_commit;
 *   BEGIN_DEFER: the provider is at its limit: *at, *wait_key say when to run again;
 *   BEGIN_RETRY: the store could not be read (*rc).
 * Except when started, c keeps what it holds (call_cleanup) and r is untouched. */
static enum begin deliver_begin(struct engine *e, struct delivery_call *c, const cJSON *cs,
                                int64_t enqueued_ms, bool have_content, struct arena *a,
                                struct job_result *r, int64_t *at, uint64_t *wait_key, int *rc)
{
    struct deliver_out *o = c->o;
    const char *ch = o->channel;
    const cJSON *pids = json_arr(cs, "providers"), *res;
    const struct provider_ops *ops;
    struct doc_rec d;
    int64_t tm;

    /* a suppressed address is never handed to a provider (receipt.h) */
    *rc = engine_suppressed(e->store, ch, json_obj(c->state, "profile"), c->idem, sizeof c->idem);
    if (*rc < 0)
        return BEGIN_RETRY;
    if (*rc == 1) {
        o->suppressed = true;
        snprintf(o->res.reason, sizeof o->res.reason, "%.320s is on the suppression list", c->idem);
        return BEGIN_NOCALL;
    }
    if (o->p >= cJSON_GetArraySize(pids)) {
        snprintf(o->res.reason, sizeof o->res.reason, "no provider left for %s", ch);
        return BEGIN_NOCALL;
    }
    snprintf(o->provider_id, sizeof o->provider_id, "%s",
             cJSON_GetArrayItem(pids, (int)o->p)->valuestring);
    if ((c->pdoc = (cJSON *)provider_cached(e, c, ch, o->provider_id))) {
        *rc = HR_OK;
    } else {
        *rc = store_doc_get(e->store, "providers", str_c(o->provider_id), a, &d);
        if (*rc == HR_OK)
            c->pdoc = cJSON_ParseWithLength(d.body.p, d.body.len);
        else if (*rc != HR_NOTFOUND)
            return BEGIN_RETRY;
    }
    ops = provider_find(json_str(c->pdoc, "provider") ? json_str(c->pdoc, "provider") : "");
    snprintf(o->provider, sizeof o->provider, "%s", ops ? ops->name : "unknown");
    o->started_ms = hclock_now(e->clock);
    if (!c->pdoc || !ops || !json_bool(c->pdoc, "enabled", true)) {
        o->outcome = DELIVERY_PERMANENT;
        snprintf(o->res.reason, sizeof o->res.reason, "provider %s was removed or disabled",
                 o->provider_id);
        return BEGIN_NOCALL;
    }
    if (!have_content) {
        cJSON *outputs;
        *rc = engine_message_outputs(e->store, o->id, a, &outputs);
        if (*rc == HR_IO) /* stored, but unreadable: no content, as a bad document gave */
            *rc = HR_OK;
        if (*rc < 0)
            return BEGIN_RETRY;
        cJSON_ArrayForEach(res, json_arr(outputs, "results"))
        {
            if (json_str(res, "channel") && !strcmp(json_str(res, "channel"), ch)) {
                content_cleanup(&c->content);
                content_from_json(json_obj(res, "content"), channel_parse(ch), &c->content);
            }
        }
        cJSON_Delete(outputs);
    }
    snprintf(c->idem, sizeof c->idem, "%s:%s:%s", o->id.p, ch, o->provider_id);
    if (e->limits) {
        struct limit_cfg lc;
        bool at_cap;
        if (limit_cfg_parse(json_obj(c->pdoc, "limits"), &lc, NULL) < 0)
            memset(&lc, 0, sizeof lc); /* stored before validation existed: no limits */
        if (lc.concurrency == 0)
            lc.concurrency = e->provider_concurrency;
        o->started_ms = hclock_now(e->clock);
        *at = 0;
        if (limit_acquire(e->limits, o->provider_id, &lc, o->started_ms, &c->held, at,
                          &at_cap) == HR_AGAIN) {
            /* at the concurrency cap the job waits for a slot, and the release that frees
             * one wakes it (queue_unpark); at the rate limit, for its token's time */
            *wait_key = at_cap ? limit_wait_key(o->provider_id) : 0;
            return BEGIN_DEFER;
        }
    }
    /* the call: from here on c owns the documents it reads, deliver_done frees them */
    c->enqueued_ms = enqueued_ms;
    c->timeout_ms = e->message_timeout_ms > 0 ? e->message_timeout_ms : SEND_TIMEOUT_DEFAULT_MS;
    if (json_i64(json_obj(c->spec, "timeout"), "message", &tm) && tm > 0)
        c->timeout_ms = tm;
    c->dl = (struct delivery){
        .message_id = o->id.p,
        .idempotency_key = c->idem,
        .provider_id = o->provider_id,
        .content = &c->content,
        .profile = json_obj(c->state, "profile"),
        .settings = json_obj(c->pdoc, "settings"),
        .override = json_obj(json_obj(json_obj(c->spec, "providers"), ops->name), "override"),
        .timeout_ms = e->provider_timeout_ms > 0 ? e->provider_timeout_ms : 10000,
        .now_ms = o->started_ms,
    };
    r->outcome = JOB_OUT_ASYNC;
    r->commit = NULL;
    c->a = a;
    /* deliver_done may run before this returns; nothing of c, o or a is touched after */
    provider_start(ops, &c->dl, deliver_done, c);
    return BEGIN_STARTED;
}

void engine_deliver_run(void *vctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct engine *e = vctx;
    cJSON *p = cJSON_ParseWithLength(j->payload.p, j->payload.len);
    const char *id = json_str(p, "id"), *ch = json_str(p, "channel");
    struct deliver_out *o = arena_zalloc(a, sizeof *o);
    struct delivery_call *c = arena_zalloc(a, sizeof *c);
    struct message_rec m;
    const cJSON *cs;
    int64_t at = 0;
    uint64_t wait_key = 0;
    int rc;

    c->e = e;
    c->o = o;
    c->ticket = r->ticket;
    o->outcome = -1;
    if (!id || !ch) {
        r->outcome = JOB_OUT_FAIL;
        snprintf(r->error, sizeof r->error, "deliver job without id or channel");
        goto out;
    }
    o->id = arena_str(a, str_c(id));
    snprintf(o->channel, sizeof o->channel, "%s", ch);
    json_i64(p, "p", &o->p);
    json_i64(p, "attempt", &o->attempt);
    o->lease_attempt = j->attempts;
    /* handed over by a route job taken over after a node died: each of the route job's
     * earlier leases may have made this first call itself (send__deliver_fused), and
     * each of this job's own earlier leases one more: the counts add */
    if (json_i64(p, "lease_attempt", &at) && at > 1 && at < 1000)
        o->lease_attempt += (uint32_t)at - 1;
    at = 0;
    r->outcome = JOB_OUT_DONE;
    r->commit = deliver_commit;
    r->commit_arg = o;

    rc = store_message_get(e->store, o->id, a, &m);
    if (rc == HR_NOTFOUND || (rc == HR_OK && str_eq_c(m.status, "CANCELED"))) {
        r->commit = NULL;
        goto out;
    }
    if (rc < 0)
        goto retry;
    c->state = cJSON_ParseWithLength(m.state.p, m.state.len);
    c->spec = cJSON_ParseWithLength(m.spec.p, m.spec.len);
    cs = json_obj(json_obj(c->state, "channels"), ch);
    if (!cs || strcmp(json_str(cs, "status") ? json_str(cs, "status") : "", "pending") != 0) {
        r->commit = NULL; /* already sent or failed: a duplicate job */
        goto out;
    }
    switch (deliver_begin(e, c, cs, m.enqueued_ms, false, a, r, &at, &wait_key, &rc)) {
    case BEGIN_STARTED:
        cJSON_Delete(p);
        return; /* c is the call's now */
    case BEGIN_NOCALL:
        break; /* deliver_commit says why */
    case BEGIN_DEFER:
        /* not started: no attempt, no history; run again when a slot is expected */
        r->outcome = JOB_OUT_DEFER;
        r->retry_at_ms = at;
        r->commit = NULL;
        r->wait_key = wait_key;
        deferred(wait_key);
        break;
    case BEGIN_RETRY:
        goto retry;
    }
    goto out;
retry:
    r->outcome = JOB_OUT_RETRY;
    r->commit = NULL;
    snprintf(r->error, sizeof r->error, "store unavailable: %s", hr_rc_str(rc));
out:
    call_cleanup(c);
    cJSON_Delete(p);
}

/* send__deliver_fused: see send_int.h */
bool send__deliver_fused(struct engine *e, const struct job *j, struct arena *a,
                         struct job_result *r, const struct message_rec *m, const char *channel,
                         const cJSON *state, struct content *content,
                         send__route_commit_fn route_commit, void *route_arg,
                         int64_t *defer_at)
{
    struct deliver_out *o = arena_zalloc(a, sizeof *o);
    struct delivery_call *c = arena_zalloc(a, sizeof *c);
    const cJSON *cs = json_obj(json_obj(state, "channels"), channel);
    int64_t at = 0;
    uint64_t wait_key = 0;
    enum begin b;
    int rc;

    *defer_at = 0;
    if (!cs)
        return false;
    c->e = e;
    c->o = o;
    c->ticket = r->ticket;
    o->outcome = -1;
    o->id = m->id;
    snprintf(o->channel, sizeof o->channel, "%s", channel);
    o->p = 0;
    o->attempt = 1;
    o->lease_attempt = j->retaken > 0 ? j->attempts : 1; /* taken over: maybe called */
    o->route_commit = route_commit;
    o->route_arg = route_arg;
    c->state = cJSON_Duplicate(state, 1);
    c->spec = cJSON_ParseWithLength(m->spec.p, m->spec.len);
    c->content = *content; /* moved (before the call: a, content's home, may be gone
                              after it); given back below when no call starts */
    memset(content, 0, sizeof *content);
    cs = json_obj(json_obj(c->state, "channels"), channel);
    b = deliver_begin(e, c, cs, m->enqueued_ms, true, a, r, &at, &wait_key, &rc);
    if (b == BEGIN_STARTED)
        return true;
    if (b == BEGIN_DEFER && !wait_key) {
        /* at the rate limit the limiter set this token's time aside for us: the deliver
         * job runs then (asking again now would set a second one aside). At the
         * concurrency cap it is handed over now, and waits for a slot (counted there) */
        *defer_at = at;
        deferred(wait_key);
    }
    *content = c->content;
    memset(&c->content, 0, sizeof c->content);
    call_cleanup(c);
    return false;
}
