/* hooks.c: status webhooks out (hooks.h): the event enqueued with each status change,
 * the delivery job, its per-endpoint log, and replay. */
#include "hooks.h"

#include "record.h"
#include "send.h"

#include "../providers/provider.h"
#include "../util/channel.h"
#include "../util/clock.h"
#include "../util/crypto.h"
#include "../util/json.h"
#include "../util/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const STATUSES[] = {
    "CANCELED", "CLICKED",   "DELAYED",  "DELIVERED", "DIGESTED",      "ENQUEUED",   "FILTERED",
    "OPENED",   "ROUTED",    "SENT",     "SIMULATED", "THROTTLED",     "UNDELIVERABLE",
    "UNMAPPED", "UNROUTABLE", NULL};

bool hooks_status_known(const char *s)
{
    for (int i = 0; s && STATUSES[i]; i++)
        if (strcmp(STATUSES[i], s) == 0)
            return true;
    return false;
}

/* derived_id: prefix + 24 hex of SHA-256(seed) into out (cap >= 32). */
static void derived_id(const char *prefix, const char *seed, char *out, size_t cap)
{
    uint8_t dig[32];
    char hex[65];
    crypto_sha256(seed, strlen(seed), dig);
    crypto_hex(dig, sizeof dig, hex);
    snprintf(out, cap, "%s%.24s", prefix, hex);
}

/* wants: endpoint ep is enabled and its statuses filter (absent or null: all) has st. */
static bool wants(const cJSON *ep, const char *st)
{
    const cJSON *f = json_member(ep, "statuses"), *it;
    if (!json_bool(ep, "enabled", true))
        return false;
    if (!cJSON_IsArray(f))
        return true;
    cJSON_ArrayForEach(it, f) if (cJSON_IsString(it) && strcmp(it->valuestring, st) == 0)
        return true;
    return false;
}

/* enqueue: one delivery job of event ev (event id eid) to endpoint epid. */
static int enqueue(struct store_txn *t, const char *epid, const char *did, const cJSON *ev,
                   bool replay)
{
    cJSON *p = cJSON_CreateObject();
    char *s;
    int64_t id;
    int rc;
    cJSON_AddStringToObject(p, "endpoint", epid);
    cJSON_AddStringToObject(p, "delivery", did);
    if (replay)
        cJSON_AddBoolToObject(p, "replay", 1);
    cJSON_AddItemToObject(p, "event", cJSON_Duplicate(ev, 1));
    s = json_print(p);
    {
        struct job_spec js = {.kind = HOOKS_JOB_KIND, .payload = str_c(s),
                              .max_attempts = HOOKS_MAX_ATTEMPTS};
        rc = queue_enqueue(t, &js, &id);
    }
    free(s);
    cJSON_Delete(p);
    return rc;
}

/* Until this time (the store clock's ms) this process knows no enabled endpoint exists,
 * so message writes skip the endpoint read (the hot path pays one read per
 * HOOKS_NONE_TTL_MS, not one per status change). hooks_changed() clears it. */
static _Atomic int64_t none_until;

void hooks_changed(void)
{
    atomic_store(&none_until, 0);
}

int hooks_on_message(void *arg, struct store_txn *t, const struct message_rec *m, bool created)
{
    struct arena *a = NULL;
    struct doc_rec d;
    struct message_rec old;
    cJSON *eps = NULL, *ev = NULL, *ep;
    char seed[256], eid[40], did[40];
    bool any = false, enabled = false;
    int64_t now = hclock_now(store_txn_store(t)->clock);
    int rc = HR_OK;
    (void)arg;

    if (now < atomic_load(&none_until))
        return HR_OK;
    a = arena_new(4096);
    /* read, not locked: a lock on this one document, held to each commit, queued every
     * message write of every node behind it (Lock:advisory while it is absent) */
    rc = store_doc_get(store_txn_store(t), HOOKS_COLL, str_c(HOOKS_DOC), a, &d);
    if (rc < 0 && rc != HR_NOTFOUND)
        goto out;
    if (rc == HR_OK)
        eps = cJSON_ParseWithLength(d.body.p, d.body.len);
    rc = HR_OK;
    cJSON_ArrayForEach(ep, json_arr(eps, "endpoints"))
    {
        enabled |= json_bool(ep, "enabled", true);
        any |= wants(ep, m->status.p);
    }
    if (!enabled)
        atomic_store(&none_until, now + HOOKS_NONE_TTL_MS);
    if (!any)
        goto out;
    if (!created) {
        rc = store_message_get_txn(t, m->id, a, &old);
        if (rc < 0 || str_eq(old.status, m->status)) {
            rc = rc == HR_NOTFOUND ? HR_OK : rc;
            goto out;
        }
    }
    snprintf(seed, sizeof seed, "%.*s:%.*s:%lld", (int)m->id.len, m->id.p, (int)m->status.len,
             m->status.p, (long long)m->updated_ms);
    derived_id("evt_", seed, eid, sizeof eid);
    ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "id", eid);
    cJSON_AddStringToObject(ev, "type", "message:updated");
    cJSON_AddNumberToObject(ev, "created", (double)m->updated_ms);
    cJSON_AddItemToObject(ev, "data", engine_message_record(m, true));
    cJSON_ArrayForEach(ep, json_arr(eps, "endpoints"))
    {
        const char *epid = json_str(ep, "id");
        if (!epid || !wants(ep, m->status.p))
            continue;
        snprintf(seed, sizeof seed, "%s:%s", eid, epid);
        derived_id("dlv_", seed, did, sizeof did);
        rc = enqueue(t, epid, did, ev, false);
        if (rc < 0)
            goto out;
    }
out:
    cJSON_Delete(ev);
    cJSON_Delete(eps);
    arena_free(a);
    return rc;
}

int hooks_doc_list(struct store_txn *t, const char *coll, struct str id, const char *name,
                   cJSON **doc, cJSON **list)
{
    struct arena *a = arena_new(4096);
    struct doc_rec d;
    int rc = store_doc_get_txn(t, coll, id, a, &d);
    *doc = NULL;
    if (rc < 0 && rc != HR_NOTFOUND)
        goto out;
    *doc = rc == HR_OK ? cJSON_ParseWithLength(d.body.p, d.body.len) : NULL;
    if (!cJSON_IsObject(*doc)) {
        cJSON_Delete(*doc);
        *doc = cJSON_CreateObject();
    }
    *list = json_arr(*doc, name);
    if (!*list)
        *list = cJSON_AddArrayToObject(*doc, name);
    rc = HR_OK;
out:
    arena_free(a);
    return rc;
}

/* ---- the delivery job ------------------------------------------------------------------ */

/* One attempt's outcome, kept in the job's arena until its commit. */
struct attempt {
    const char *endpoint, *delivery, *event_id, *event, *status;
    const char *outcome; /* "succeeded", "retrying", "failed" */
    char error[512];
    int code;            /* HTTP status; 0 when no answer */
    uint32_t attempt;
    int64_t ts;
    bool replay;
};

/* log_commit: prepend the attempt to its endpoint's log (dropping the oldest past
 * HOOKS_LOG_MAX, with the events no entry names any more) and keep the event for replay. */
static int log_commit(struct store_txn *t, void *arg)
{
    struct attempt *at = arg;
    cJSON *log = NULL, *list, *e, *ev = NULL;
    char *s = NULL;
    int rc = hooks_doc_list(t, HOOKS_LOG_COLL, str_c(at->endpoint), "deliveries", &log, &list);
    if (rc < 0)
        goto out;
    e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "id", at->delivery);
    cJSON_AddStringToObject(e, "event_id", at->event_id);
    cJSON_AddStringToObject(e, "message_status", at->status);
    cJSON_AddNumberToObject(e, "attempt", (double)at->attempt);
    cJSON_AddStringToObject(e, "outcome", at->outcome);
    if (at->code)
        cJSON_AddNumberToObject(e, "status_code", at->code);
    else
        cJSON_AddNullToObject(e, "status_code");
    if (at->error[0])
        cJSON_AddStringToObject(e, "error", at->error);
    cJSON_AddBoolToObject(e, "replay", at->replay);
    cJSON_AddNumberToObject(e, "ts", (double)at->ts);
    cJSON_InsertItemInArray(list, 0, e);
    while (cJSON_GetArraySize(list) > HOOKS_LOG_MAX) {
        cJSON *gone = cJSON_DetachItemFromArray(list, cJSON_GetArraySize(list) - 1), *it;
        const char *gid = json_str(gone, "id");
        bool named = false;
        cJSON_ArrayForEach(it, list) named |= gid && json_str(it, "id") &&
                                             strcmp(json_str(it, "id"), gid) == 0;
        if (gid && !named) {
            rc = store_doc_delete(t, HOOKS_EVENT_COLL, str_c(gid));
            if (rc < 0 && rc != HR_NOTFOUND) {
                cJSON_Delete(gone);
                goto out;
            }
        }
        cJSON_Delete(gone);
    }
    s = json_print(log);
    rc = store_doc_put(t, HOOKS_LOG_COLL, str_c(at->endpoint), str_c(s), at->ts, NULL);
    if (rc < 0)
        goto out;
    free(s);
    ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "endpoint", at->endpoint);
    cJSON_AddRawToObject(ev, "event", at->event);
    s = json_print(ev);
    rc = store_doc_put(t, HOOKS_EVENT_COLL, str_c(at->delivery), str_c(s), at->ts, NULL);
out:
    free(s);
    cJSON_Delete(ev);
    cJSON_Delete(log);
    return rc;
}

/* endpoint_find: endpoint id from the stored list (a copy, caller owns), or NULL. */
static cJSON *endpoint_find(struct store *s, const char *id)
{
    struct arena *a = arena_new(4096);
    struct doc_rec d;
    cJSON *eps = NULL, *ep, *found = NULL;
    if (store_doc_get(s, HOOKS_COLL, str_c(HOOKS_DOC), a, &d) == HR_OK)
        eps = cJSON_ParseWithLength(d.body.p, d.body.len);
    cJSON_ArrayForEach(ep, json_arr(eps, "endpoints"))
    {
        if (json_str(ep, "id") && strcmp(json_str(ep, "id"), id) == 0) {
            found = cJSON_Duplicate(ep, 1);
            break;
        }
    }
    cJSON_Delete(eps);
    arena_free(a);
    return found;
}

/* One call in flight (in the job's arena, alive until the commit): what provider_start
 * reads, and what the outcome needs. The JSON it points to is freed by call_done. */
struct call {
    struct delivery d;
    struct content c;
    cJSON *payload, *settings;
    struct attempt *at;
    struct job_ticket *ticket;
    struct hclock *clock;
    uint32_t attempts, max_attempts;
};

/* call_done: the end of the attempt (on the transport's loop thread, or at once when no
 * call was made): the outcome and its log entry go to the queue's completer. */
static void call_done(void *arg, const struct delivery_result *res)
{
    struct call *k = arg;
    struct attempt *at = k->at;
    struct job_result r;
    int64_t now = hclock_now(k->clock);
    memset(&r, 0, sizeof r);
    r.outcome = JOB_OUT_DONE;
    r.commit = log_commit;
    r.commit_arg = at;
    at->code = res->remote_status;
    at->ts = now;
    if (res->outcome == DELIVERY_SENT) {
        at->outcome = "succeeded";
    } else {
        snprintf(at->error, sizeof at->error, "%s", res->reason);
        snprintf(r.error, sizeof r.error, "%s", res->reason);
        if (res->outcome == DELIVERY_TRANSIENT && k->attempts < k->max_attempts) {
            at->outcome = "retrying";
            r.outcome = JOB_OUT_RETRY;
            r.retry_at_ms = res->retry_after_ms > 0 ? now + res->retry_after_ms : 0;
        } else {
            at->outcome = "failed";
            r.outcome = JOB_OUT_FAIL;
        }
    }
    LOG_I("hooks.delivery", "endpoint=%s delivery=%s attempt=%u outcome=%s status_code=%d",
          at->endpoint, at->delivery, at->attempt, at->outcome, at->code);
    cJSON_Delete(k->settings);
    cJSON_Delete(k->payload);
    k->settings = k->payload = NULL;
    queue_job_finish(NULL, k->ticket, &r); /* k may be gone after this */
}

void hooks_deliver_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct engine *e = ctx;
    const struct provider_ops *wh = provider_find("webhook");
    cJSON *p = cJSON_ParseWithLength(j->payload.p, j->payload.len);
    cJSON *ep = NULL, *settings = NULL, *hdrs, *ev = json_obj(p, "event");
    const char *epid = json_str(p, "endpoint"), *did = json_str(p, "delivery");
    const char *eid = json_str(ev, "id");
    struct attempt *at;
    struct call *k;
    char *s;

    if (!epid || !did || !eid || !wh) {
        r->outcome = JOB_OUT_FAIL;
        snprintf(r->error, sizeof r->error, "hooks: malformed job payload");
        goto out;
    }
    ep = endpoint_find(e->store, epid);
    if (!ep || !json_bool(ep, "enabled", true) || !json_str(ep, "url"))
        goto out; /* removed or disabled since: nothing to deliver */
    settings = cJSON_CreateObject();
    cJSON_AddStringToObject(settings, "url", json_str(ep, "url"));
    if (json_str(ep, "secret") && json_str(ep, "secret")[0])
        cJSON_AddStringToObject(settings, "secret", json_str(ep, "secret"));
    hdrs = cJSON_AddObjectToObject(settings, "headers");
    cJSON_AddStringToObject(hdrs, "X-Herald-Event-Id", eid);
    cJSON_AddStringToObject(hdrs, "X-Herald-Delivery-Id", did);

    at = arena_alloc(a, sizeof *at);
    memset(at, 0, sizeof *at);
    at->endpoint = arena_strdup(a, epid);
    at->delivery = arena_strdup(a, did);
    at->event_id = arena_strdup(a, eid);
    s = json_print(ev);
    at->event = arena_strdup(a, s);
    free(s);
    at->status = arena_strdup(a, json_str(json_obj(ev, "data"), "status")
                                     ? json_str(json_obj(ev, "data"), "status")
                                     : "");
    at->attempt = j->attempts;
    at->replay = json_bool(p, "replay", false);

    /* the call runs on the transport: a slow endpoint holds no worker */
    k = arena_alloc(a, sizeof *k);
    memset(k, 0, sizeof *k);
    k->payload = p;
    k->settings = settings;
    k->at = at;
    k->ticket = r->ticket;
    k->clock = e->clock;
    k->attempts = j->attempts;
    k->max_attempts = j->max_attempts ? j->max_attempts : HOOKS_MAX_ATTEMPTS;
    k->c.channel = CH_WEBHOOK;
    k->c.json = ev;
    k->d.message_id = at->event_id; /* for logs only */
    k->d.idempotency_key = at->event_id;
    k->d.provider_id = at->endpoint;
    k->d.content = &k->c;
    k->d.settings = settings;
    k->d.timeout_ms = e->provider_timeout_ms > 0 ? e->provider_timeout_ms : 10000;
    k->d.now_ms = hclock_now(e->clock);
    p = settings = NULL; /* call_done frees them */
    r->outcome = JOB_OUT_ASYNC;
    provider_start(wh, &k->d, call_done, k);
out:
    cJSON_Delete(settings);
    cJSON_Delete(ep);
    cJSON_Delete(p);
}

int hooks_replay(struct store_txn *t, struct str endpoint_id, struct str delivery_id)
{
    struct arena *a = arena_new(4096);
    struct doc_rec d;
    cJSON *o = NULL;
    const char *ep;
    int rc = store_doc_get_txn(t, HOOKS_EVENT_COLL, delivery_id, a, &d);
    if (rc < 0)
        goto out;
    o = cJSON_ParseWithLength(d.body.p, d.body.len);
    ep = json_str(o, "endpoint");
    if (!ep || !str_eq(str_c(ep), endpoint_id) || !json_obj(o, "event")) {
        rc = HR_NOTFOUND;
        goto out;
    }
    {
        char did[128];
        snprintf(did, sizeof did, "%.*s", (int)delivery_id.len, delivery_id.p);
        rc = enqueue(t, ep, did, json_obj(o, "event"), true);
    }
out:
    cJSON_Delete(o);
    arena_free(a);
    return rc;
}
