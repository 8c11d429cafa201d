/* idempotency.c: Courier's Idempotency-Key on every POST. The first response to a key
 * (status and body) is stored and replayed for the key's lifetime (24 h by default;
 * `x-idempotency-expiration` as epoch ms or an ISO date, clamped to 24 h .. 1 year). A
 * request whose key is still being processed gets 409. Requests that fail validation
 * (4xx) or are refused for now (503: disk full, store busy) are not saved, so they can
 * be retried. Keys are scoped per API key.
 *
 * A crash between a handler's commit and the saving of its response leaves a pending
 * record; after PENDING_STALE_MS it is taken over by the next request, and handlers that
 * create things derive their ids from the key (api_idempotent_id) so the re-run finds
 * its own earlier work instead of doing it twice. A pending record names the process
 * that wrote it (a random id per process): on a store only one process uses (SQLite),
 * one written by another process was left by a process that died, so the next request
 * takes it over at once instead of getting 409 for a minute after a restart. */
#include "api.h"

#include "../util/crypto.h"
#include "../util/json.h"
#include "../util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLL "idempotency"
#define KEY_MAX 255
#define DAY_MS (24LL * 3600 * 1000)
#define YEAR_MS (366LL * DAY_MS)
#define PENDING_STALE_MS 60000
#define STORED_BODY_MAX (256 * 1024)

/* this process's id, written into its pending records */
static char boot_id[17];
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

static void boot_init(void)
{
    uint8_t r[8];
    crypto_random(r, sizeof r);
    crypto_hex(r, sizeof r, boot_id);
}

/* scope_id: hex SHA-256 of (api key id, Idempotency-Key). */
static void scope_id(const struct http_req *req, const char *key, char out[65])
{
    char buf[KEY_MAX + 32];
    uint8_t h[32];
    int n = snprintf(buf, sizeof buf, "%lld:%s", (long long)req->auth.key_id, key);
    crypto_sha256(buf, (size_t)n, h);
    crypto_hex(h, 32, out);
}

int api_idempotent_id(struct http_req *req, char *out, size_t cap)
{
    const char *key = http_req_header(req, "Idempotency-Key");
    char hex[65];
    if (!key || !key[0] || strlen(key) > KEY_MAX)
        return HR_NOTFOUND;
    scope_id(req, key, hex);
    /* Courier's id shape: 1-<8 hex>-<24 hex>, here all taken from the hash */
    snprintf(out, cap, "1-%.8s-%.24s", hex, hex + 8);
    return HR_OK;
}

static int64_t expiry(struct http_req *req, int64_t now)
{
    const char *h = http_req_header(req, "x-idempotency-expiration");
    int64_t v = 0;
    if (h && str_to_i64(str_c(h), &v) < 0 && time_parse_iso(h, strlen(h), &v) < 0)
        v = 0;
    if (v < now + DAY_MS)
        v = now + DAY_MS;
    if (v > now + YEAR_MS)
        v = now + YEAR_MS;
    return v;
}

struct claim_arg {
    const char *id;
    int64_t now, expires;
    bool exclusive; /* store_is_exclusive: another process's pending record is orphaned */
    cJSON *found;   /* a finished record to replay (caller frees) */
    bool busy;      /* a fresh pending record of a live request: 409 */
    bool orphan;    /* a pending record of a process that died was taken over */
};

static int claim_tx(struct store_txn *t, void *varg)
{
    struct claim_arg *c = varg;
    struct arena *a = arena_new(1024);
    struct doc_rec d;
    char body[160];
    int64_t exp = 0, created = 0;
    int rc;
    c->busy = c->orphan = false; /* fn may run again (PostgreSQL retries) */
    rc = store_doc_get_txn(t, COLL, str_c(c->id), a, &d);
    if (rc == HR_OK) {
        cJSON *rec = cJSON_ParseWithLength(d.body.p, d.body.len);
        const char *st = json_str(rec, "state");
        json_i64(rec, "expires", &exp);
        json_i64(rec, "created", &created);
        if (st && exp > c->now) {
            if (strcmp(st, "done") == 0) {
                c->found = rec;
                rc = HR_OK;
                goto out;
            }
            const char *boot = json_str(rec, "boot");
            c->orphan = c->exclusive && boot && strcmp(boot, boot_id) != 0;
            if (created > c->now - PENDING_STALE_MS && !c->orphan) {
                c->busy = true;
                cJSON_Delete(rec);
                rc = HR_OK;
                goto out;
            }
        }
        cJSON_Delete(rec);
    } else if (rc != HR_NOTFOUND) {
        goto out;
    }
    snprintf(body, sizeof body,
             "{\"state\":\"pending\",\"created\":%lld,\"expires\":%lld,\"boot\":\"%s\"}",
             (long long)c->now, (long long)c->expires, boot_id);
    rc = store_doc_put(t, COLL, str_c(c->id), str_c(body), c->now, NULL);
out:
    arena_free(a);
    return rc;
}

struct finish_arg {
    const char *id;
    struct str body; /* NULL p: delete the record */
    int64_t now;
};

static int finish_tx(struct store_txn *t, void *varg)
{
    struct finish_arg *f = varg;
    int rc;
    if (!f->body.p) {
        rc = store_doc_delete(t, COLL, str_c(f->id));
        return rc == HR_NOTFOUND ? HR_OK : rc;
    }
    return store_doc_put(t, COLL, str_c(f->id), f->body, f->now, NULL);
}

void api_idempotency_wrap(void *vctx, struct http_req *req, struct http_resp *resp,
                          http_handler_fn next, void *next_ctx)
{
    struct api_ctx *ctx = vctx;
    /* not on ROUTE_NO_IDEMPOTENCY routes: a public POST (one-click unsubscribe) has no API
     * key to scope a stored answer, so a stranger's key must not replay or store anything */
    const char *key =
        req->method == HTTP_POST && !(req->route && (req->route->flags & ROUTE_NO_IDEMPOTENCY))
            ? http_req_header(req, "Idempotency-Key")
            : NULL;
    struct claim_arg c;
    struct finish_arg f;
    struct herr err;
    char id[65];
    cJSON *rec = NULL;
    char *s = NULL;
    int rc;

    store_ingress(true); /* this thread's writes may be refused under overload (429) */
    if (!key) {
        next(next_ctx, req, resp);
        store_ingress(false);
        return;
    }
    if (!key[0] || strlen(key) > KEY_MAX) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "Idempotency-Key must be 1 to %d characters", KEY_MAX);
        return;
    }
    pthread_once(&boot_once, boot_init);
    scope_id(req, key, id);
    memset(&c, 0, sizeof c);
    c.id = id;
    c.now = hclock_now(ctx->clock);
    c.expires = expiry(req, c.now);
    c.exclusive = store_is_exclusive(ctx->store);
    herr_clear(&err);
    rc = store_write(ctx->store, claim_tx, &c, &err);
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        goto out;
    }
    if (c.found) { /* replay the first answer */
        int64_t status = 200;
        const char *body = json_str(c.found, "body"), *ct = json_str(c.found, "content_type");
        json_i64(c.found, "status", &status);
        http_resp_raw(resp, (int)status, ct ? ct : "application/json", str_c(body ? body : ""));
        http_resp_header(resp, "Idempotent-Replayed", "true");
        goto out;
    }
    if (c.orphan)
        LOG_I("idempotency.orphan_taken_over", "id=%.12s", id); /* its process died */
    if (c.busy) {
        http_resp_header(resp, "x-should-retry", "true");
        http_resp_error(resp, 409, "invalid_request_error",
                        "a request with this Idempotency-Key is still being processed");
        goto out;
    }
    next(next_ctx, req, resp);

    memset(&f, 0, sizeof f);
    f.id = id;
    f.now = hclock_now(ctx->clock);
    if ((resp->status >= 400 && resp->status < 500) || resp->status == 503) {
        /* a rejected request is not saved: it may be retried; nor is a 503 (disk full,
         * store busy), which did nothing and asks for the retry */
        f.body = STR_NULL;
    } else {
        rec = cJSON_CreateObject();
        cJSON_AddStringToObject(rec, "state", "done");
        cJSON_AddNumberToObject(rec, "created", (double)c.now);
        cJSON_AddNumberToObject(rec, "expires", (double)c.expires);
        cJSON_AddNumberToObject(rec, "status", resp->status);
        cJSON_AddStringToObject(rec, "content_type",
                                resp->content_type ? resp->content_type : "application/json");
        cJSON_AddStringToObject(rec, "body",
                                resp->body.len <= STORED_BODY_MAX ? buf_cstr(&resp->body) : "");
        s = json_print(rec);
        f.body = str_c(s);
    }
    rc = store_write(ctx->store, finish_tx, &f, &err);
    if (rc < 0)
        LOG_W("idempotency.save_failed", "rc=%s", hr_rc_str(rc));
out:
    store_ingress(false);
    cJSON_Delete(c.found);
    cJSON_Delete(rec);
    free(s);
}
