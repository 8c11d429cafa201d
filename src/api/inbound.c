/* inbound.c: events in. Segment's tracking API (POST /v1/{batch,import,track,...} and the
 * short forms), Courier's Segment destination (POST /inbound/segment) and Courier's
 * track API (POST /inbound/courier). Each parses and validates the body (src/ingest/
 * segment.c), authenticates, and hands the events to ingest_accept, which answers only
 * once they are durable. */
#include "api.h"

#include "../ingest/ingest.h"
#include "../util/crypto.h"
#include "../util/log.h"
#include "../util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGNATURE_SECRET_KEY "segment.shared_secret"

/* write_key_source: the write key that authorises a /v1 request: the one the
 * authenticator found in the Authorization header, else `writeKey` from the body.
 * Returns the key id and sets *client for a client-scope key (when client is not NULL),
 * or < 0 after answering 401/403. */
static int64_t write_key_source(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                                const char *body_key, bool *client)
{
    struct key_rec k;
    int rc;
    if (req->auth.kind == KEY_WRITE) {
        if (client)
            *client = req->auth.scope == KEY_SCOPE_CLIENT;
        return req->auth.key_id;
    }
    if (!body_key) {
        http_resp_header(resp, "WWW-Authenticate", "Basic realm=\"herald\"");
        http_resp_error(resp, 401, "authentication_error",
                        "missing write key: send Authorization: Basic base64(writeKey:) or "
                        "writeKey in the body");
        return -1;
    }
    rc = api_key_check(ctx->store, str_c(body_key), &k);
    if (rc == HR_OK && k.kind != KEY_WRITE) {
        http_resp_error(resp, 403, "authorization_error", "writeKey is not a write key");
        return -1;
    }
    if (rc < 0) {
        if (rc == HR_PERM)
            http_resp_error(resp, 401, "authentication_error", "invalid or revoked write key");
        else
            api_error_rc(resp, rc, NULL);
        return -1;
    }
    if (client)
        *client = k.scope == KEY_SCOPE_CLIENT;
    return k.id;
}

/* accept_and_answer: store res's events for source, then answer with counts and the
 * per-item rejections. `ok_status` is the success status. */
static void accept_and_answer(struct api_ctx *ctx, struct http_resp *resp, int64_t source,
                              struct seg_result *res, int ok_status)
{
    struct ingest_outcome out;
    struct herr err;
    cJSON *body = NULL, *rej;
    int rc;

    herr_clear(&err);
    out.status = xcalloc(res->n_events + 1, 1);
    out.ids = xcalloc(res->n_events + 1, sizeof *out.ids);
    rc = ingest_accept(ctx->ingest, source, res, &out, &err);
    if (rc < 0) {
        LOG_W("ingest.accept_failed", "events=%zu rc=%s error=\"%s\"", res->n_events,
              hr_rc_str(rc), err.msg);
        api_error_rc(resp, rc == HR_CONFLICT ? HR_BUSY : rc, &err);
        goto out;
    }
    body = cJSON_CreateObject();
    cJSON_AddBoolToObject(body, "success", 1);
    cJSON_AddNumberToObject(body, "accepted", (double)out.accepted);
    cJSON_AddNumberToObject(body, "duplicates", (double)out.duplicates);
    rej = cJSON_AddArrayToObject(body, "rejected");
    for (size_t i = 0; i < res->n_rejects; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", (double)res->rejects[i].index);
        cJSON_AddStringToObject(o, "message", res->rejects[i].msg);
        cJSON_AddItemToArray(rej, o);
    }
    http_resp_json(resp, ok_status, body);
out:
    cJSON_Delete(body);
    free(out.status);
    free(out.ids);
}

/* parse_error: answer a request-level parse failure (413 for size, else 400). */
static void parse_error(struct http_resp *resp, int rc, const struct herr *err)
{
    if (rc == HR_TOOBIG)
        http_resp_error(resp, 413, "invalid_request_error", "%s", err->msg);
    else
        http_resp_error(resp, 400, "invalid_request_error", "%s", err->msg);
}

/* POST /v1/:kind */
void api_v1(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct seg_result res;
    struct herr err;
    enum seg_kind kind;
    int64_t source;
    int rc;

    memset(&res, 0, sizeof res);
    herr_clear(&err);
    if (seg_kind_from_path(req->params[0], &kind) < 0) {
        http_resp_error(resp, 404, "invalid_request_error", "unknown tracking call /v1/%.*s",
                        STR_FMT(req->params[0]));
        return;
    }
    if (kind == SEG_METRICS) { /* analytics.js metrics: accepted and discarded */
        http_resp_raw(resp, 200, "application/json", STR_LIT("{\"success\":true}"));
        return;
    }
    rc = seg_parse(req->body.p, req->body.len, kind, hclock_now(ctx->clock), NULL, &res, &err);
    if (rc < 0) {
        /* an unauthenticated caller learns nothing but the auth failure */
        if (req->auth.kind != KEY_WRITE && write_key_source(ctx, req, resp, NULL, NULL) < 0)
            goto out;
        parse_error(resp, rc, &err);
        goto out;
    }
    source = write_key_source(ctx, req, resp, res.write_key, &res.client);
    if (source < 0)
        goto out;
    if (kind != SEG_BATCH && res.n_rejects > 0) {
        http_resp_error(resp, 400, "invalid_request_error", "%s", res.rejects[0].msg);
        goto out;
    }
    accept_and_answer(ctx, resp, source, &res, 200);
out:
    seg_result_cleanup(&res);
}

/* signature_ok: verify X-Signature (hex HMAC-SHA1 keyed by the shared secret) over the
 * raw body, or for an array body over the raw bytes of its first element, as Segment's
 * Actions destination signs batches. */
static bool signature_ok(struct str secret, struct str body, const char *sig)
{
    const char *p = body.p, *end = body.p + body.len, *elem_end = NULL;
    uint8_t mac[20];
    char hex[41];
    if (!sig || strlen(sig) != 40)
        return false;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p < end && *p == '[') {
        cJSON *first;
        p++;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        first = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &elem_end, 0);
        if (!first)
            return false;
        cJSON_Delete(first);
        crypto_hmac_sha1(secret, p, (size_t)(elem_end - p), mac);
    } else {
        crypto_hmac_sha1(secret, body.p, body.len, mac);
    }
    crypto_hex(mac, sizeof mac, hex);
    for (size_t i = 0; i < 40; i++) /* accept upper-case hex too */
        if (hex[i] >= 'a' && hex[i] <= 'f' && (sig[i] >= 'A' && sig[i] <= 'F'))
            hex[i] = (char)(hex[i] - 32);
    return crypto_ct_equal(hex, 40, sig, 40);
}

/* POST /inbound/segment */
void api_inbound_segment(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct seg_result res;
    struct seg_limits lim;
    struct herr err;
    struct str secret;
    int rc;

    memset(&res, 0, sizeof res);
    herr_clear(&err);
    rc = store_meta_get(ctx->store, SIGNATURE_SECRET_KEY, req->arena, &secret);
    if (rc == HR_OK && secret.len > 0) {
        if (!signature_ok(secret, req->body, http_req_header(req, "X-Signature"))) {
            http_resp_error(resp, 401, "authentication_error",
                            "X-Signature does not match the body (HMAC-SHA1 with the shared "
                            "secret)");
            return;
        }
    } else if (rc != HR_OK && rc != HR_NOTFOUND) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    seg_limits_destination(&lim);
    rc = seg_parse_destination(req->body.p, req->body.len, hclock_now(ctx->clock), &lim, &res,
                               &err);
    if (rc < 0) {
        parse_error(resp, rc, &err);
        goto out;
    }
    if (res.n_events == 0 && res.n_rejects > 0) {
        http_resp_error(resp, 400, "invalid_request_error", "%s", res.rejects[0].msg);
        goto out;
    }
    accept_and_answer(ctx, resp, req->auth.key_id, &res, 200);
out:
    seg_result_cleanup(&res);
}

/* POST /inbound/courier: {event, messageId, type:"track", userId?, properties}. A reused
 * messageId is 409 with x-should-retry: false (Courier's SDK retries 409 otherwise). */
void api_inbound_courier(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct seg_result res;
    struct ingest_outcome out = {0};
    struct herr err;
    uint8_t status = 0;
    int64_t id = 0;
    int rc;

    memset(&res, 0, sizeof res);
    herr_clear(&err);
    rc = seg_parse_courier(req->body.p, req->body.len, hclock_now(ctx->clock), NULL, &res, &err);
    if (rc < 0) {
        parse_error(resp, rc, &err);
        goto out;
    }
    if (res.n_events != 1) {
        http_resp_error(resp, 400, "invalid_request_error", "%s",
                        res.n_rejects ? res.rejects[0].msg : "no event in the body");
        goto out;
    }
    out.status = &status;
    out.ids = &id;
    rc = ingest_accept(ctx->ingest, req->auth.key_id, &res, &out, &err);
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        goto out;
    }
    if (status == INGEST_DUPLICATE) {
        http_resp_header(resp, "x-should-retry", "false");
        http_resp_error(resp, 409, "invalid_request_error",
                        "messageId %s was already received", res.events[0].message_id);
        goto out;
    }
    {
        char body[96];
        /* Courier-style id: receive time in seconds and the event's number */
        snprintf(body, sizeof body, "{\"messageId\":\"1-%08llx-%024llx\"}",
                 (unsigned long long)(hclock_now(ctx->clock) / 1000), (unsigned long long)id);
        http_resp_raw(resp, 202, "application/json", str_c(body));
    }
out:
    seg_result_cleanup(&res);
}
