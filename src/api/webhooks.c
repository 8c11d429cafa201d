/* webhooks.c: status webhook endpoints (herald's own API; the events are src/engine/hooks.h).
 *   GET    /webhooks                          -> {results: [endpoint]}
 *   POST   /webhooks {url, secret?, statuses?, enabled?} -> 201 endpoint
 *   GET    /webhooks/:id                      -> endpoint
 *   PUT    /webhooks/:id {url, secret?, statuses?, enabled?} -> endpoint (replace; a
 *          secret absent or sent back as its mask keeps the stored one, null clears it)
 *   DELETE /webhooks/:id                      -> 204 (its delivery log goes too)
 *   GET    /webhooks/:id/deliveries           -> {results: [attempt]}, newest first
 *   POST   /webhooks/:id/deliveries/:delivery/replay -> 202 {delivery_id, endpoint_id}
 * An endpoint is {id, url, secret: mask|null, statuses: [..]|null, enabled, created,
 * updated}; secrets show as "****" + their last 4 characters. All endpoints live in one
 * document (at most HOOKS_ENDPOINTS_MAX). */
#include "api.h"
#include "templates.h"

#include "../engine/hooks.h"
#include "../providers/http_client.h"
#include "../util/id.h"
#include "../util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op { OP_CREATE, OP_REPLACE, OP_DELETE, OP_REPLAY };

struct wh_arg {
    int op;
    struct str id, delivery;
    const cJSON *body;   /* the request (create, replace) */
    int64_t now;
    cJSON *result;       /* out: the stored endpoint (a copy), for the answer */
    char err[192];       /* HR_INVAL / HR_CONFLICT detail */
};

/* shown: a copy of stored endpoint ep fit to answer (secret masked). Caller owns. */
static cJSON *shown(const cJSON *ep)
{
    cJSON *o = cJSON_Duplicate(ep, 1);
    const cJSON *sec = json_member(ep, "secret");
    char m[PROVIDERS_MASK_MAX];
    if (cJSON_IsString(sec) && sec->valuestring[0]) {
        providers_mask(sec, m);
        cJSON_ReplaceItemInObjectCaseSensitive(o, "secret", cJSON_CreateString(m));
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "secret");
        cJSON_AddNullToObject(o, "secret");
    }
    return o;
}

/* check: validate a create/replace body into a fresh endpoint (caller owns) or NULL with
 * a->err. old: the stored endpoint on replace (its secret is kept when the body sends
 * none or its mask). */
static cJSON *check(struct wh_arg *a, const cJSON *old)
{
    const cJSON *b = a->body, *url = json_member(b, "url"),
                *sec = json_member(b, "secret"),
                *st = json_member(b, "statuses"),
                *en = json_member(b, "enabled"), *it;
    static const char *const known[] = {"url", "secret", "statuses", "enabled", "id",
                                        "created", "updated", NULL};
    cJSON *ep;
    const char *olds;
    char m[PROVIDERS_MASK_MAX];
    cJSON_ArrayForEach(it, b)
    {
        bool ok = false;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(known[i], it->string) == 0;
        if (!ok) {
            snprintf(a->err, sizeof a->err, "unknown field %.64s", it->string);
            return NULL;
        }
    }
    if (!cJSON_IsString(url) || strlen(url->valuestring) > HOOKS_URL_MAX ||
        !http_client_url_ok(url->valuestring)) {
        snprintf(a->err, sizeof a->err, "url must be an http:// or https:// URL of at most %d bytes",
                 HOOKS_URL_MAX);
        return NULL;
    }
    if (sec && !cJSON_IsNull(sec) &&
        (!cJSON_IsString(sec) || !sec->valuestring[0] ||
         strlen(sec->valuestring) > HOOKS_SECRET_MAX)) {
        snprintf(a->err, sizeof a->err, "secret must be a string of 1 to %d bytes, or null",
                 HOOKS_SECRET_MAX);
        return NULL;
    }
    if (st && !cJSON_IsNull(st)) {
        if (!cJSON_IsArray(st) || cJSON_GetArraySize(st) > 32) {
            snprintf(a->err, sizeof a->err, "statuses must be a list of message statuses, or null");
            return NULL;
        }
        cJSON_ArrayForEach(it, st) if (!cJSON_IsString(it) || !hooks_status_known(it->valuestring))
        {
            snprintf(a->err, sizeof a->err, "statuses: %.64s is not a message status",
                     cJSON_IsString(it) ? it->valuestring : "(not a string)");
            return NULL;
        }
    }
    if (en && !cJSON_IsBool(en)) {
        snprintf(a->err, sizeof a->err, "enabled must be true or false");
        return NULL;
    }
    ep = cJSON_CreateObject();
    cJSON_AddStringToObject(ep, "url", url->valuestring);
    olds = old ? json_str(old, "secret") : NULL;
    if (olds)
        providers_mask(json_member(old, "secret"), m);
    if (cJSON_IsString(sec) && !(olds && strcmp(m, sec->valuestring) == 0))
        cJSON_AddStringToObject(ep, "secret", sec->valuestring);
    else if (olds && !cJSON_IsNull(sec)) /* absent, or sent back as its mask: kept */
        cJSON_AddStringToObject(ep, "secret", olds);
    else
        cJSON_AddNullToObject(ep, "secret");
    cJSON_AddItemToObject(ep, "statuses", st && cJSON_IsArray(st) ? cJSON_Duplicate(st, 1)
                                                                   : cJSON_CreateNull());
    cJSON_AddBoolToObject(ep, "enabled", en ? cJSON_IsTrue(en) : 1);
    return ep;
}

/* index_of: the position of endpoint id in list, or -1. */
static int index_of(const cJSON *list, struct str id)
{
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        if (json_str(it, "id") && str_eq(str_c(json_str(it, "id")), id))
            return i;
        i++;
    }
    return -1;
}

/* drop_log: the delivery log of endpoint id and the events it names, inside t. */
static int drop_log(struct store_txn *t, struct str id, struct arena *ar)
{
    struct doc_rec d;
    cJSON *log, *it;
    int rc = store_doc_get_txn(t, HOOKS_LOG_COLL, id, ar, &d);
    if (rc == HR_NOTFOUND)
        return HR_OK;
    if (rc < 0)
        return rc;
    log = cJSON_ParseWithLength(d.body.p, d.body.len);
    cJSON_ArrayForEach(it, json_arr(log, "deliveries"))
    {
        const char *did = json_str(it, "id");
        if (did && (rc = store_doc_delete(t, HOOKS_EVENT_COLL, str_c(did))) < 0 &&
            rc != HR_NOTFOUND)
            break;
        rc = HR_OK;
    }
    cJSON_Delete(log);
    return rc == HR_OK ? store_doc_delete(t, HOOKS_LOG_COLL, id) : rc;
}

static int wh_tx(struct store_txn *t, void *varg)
{
    struct wh_arg *a = varg;
    struct arena *ar = arena_new(4096);
    cJSON *doc = NULL, *list = NULL, *ep = NULL;
    char *s = NULL, idbuf[48];
    int k, rc = hooks_doc_list(t, HOOKS_COLL, str_c(HOOKS_DOC), "endpoints", &doc, &list);
    if (rc < 0)
        goto out;
    k = a->op == OP_CREATE ? -1 : index_of(list, a->id);
    if (a->op != OP_CREATE && k < 0) {
        rc = HR_NOTFOUND;
        goto out;
    }
    switch (a->op) {
    case OP_CREATE:
        if (cJSON_GetArraySize(list) >= HOOKS_ENDPOINTS_MAX) {
            snprintf(a->err, sizeof a->err, "at most %d webhook endpoints", HOOKS_ENDPOINTS_MAX);
            rc = HR_CONFLICT;
            goto out;
        }
        if (!(ep = check(a, NULL))) {
            rc = HR_INVAL;
            goto out;
        }
        id_prefixed("whk_", idbuf, sizeof idbuf);
        cJSON_AddStringToObject(ep, "id", idbuf);
        cJSON_AddNumberToObject(ep, "created", (double)a->now);
        cJSON_AddNumberToObject(ep, "updated", (double)a->now);
        cJSON_AddItemToArray(list, cJSON_Duplicate(ep, 1));
        break;
    case OP_REPLACE: {
        const cJSON *old = cJSON_GetArrayItem(list, k);
        double created = cJSON_GetNumberValue(json_member(old, "created"));
        if (!(ep = check(a, old))) {
            rc = HR_INVAL;
            goto out;
        }
        cJSON_AddStringToObject(ep, "id", json_str(old, "id"));
        cJSON_AddNumberToObject(ep, "created", created);
        cJSON_AddNumberToObject(ep, "updated", (double)a->now);
        cJSON_ReplaceItemInArray(list, k, cJSON_Duplicate(ep, 1));
        break;
    }
    case OP_DELETE:
        cJSON_DeleteItemFromArray(list, k);
        rc = drop_log(t, a->id, ar);
        if (rc < 0)
            goto out;
        break;
    default: /* OP_REPLAY */
        rc = hooks_replay(t, a->id, a->delivery);
        goto out;
    }
    s = json_print(doc);
    rc = store_doc_put(t, HOOKS_COLL, str_c(HOOKS_DOC), str_c(s), a->now, NULL);
    if (rc == HR_OK && ep)
        a->result = ep, ep = NULL;
out:
    free(s);
    cJSON_Delete(ep);
    cJSON_Delete(doc);
    arena_free(ar);
    return rc;
}

/* run: one write of op; answers errors on resp and returns < 0. */
static int run(struct api_ctx *ctx, struct http_resp *resp, struct wh_arg *a)
{
    struct herr err;
    int rc;
    herr_clear(&err);
    a->now = hclock_now(ctx->clock);
    rc = store_write(ctx->store, wh_tx, a, &err);
    if (rc == HR_OK && a->op != OP_REPLAY)
        hooks_changed(); /* committed: status changes read the endpoints again */
    if (rc == HR_INVAL || (rc == HR_CONFLICT && a->err[0]))
        http_resp_error(resp, rc == HR_INVAL ? 400 : 409, "invalid_request_error", "%s", a->err);
    else if (rc == HR_NOTFOUND)
        http_resp_error(resp, 404, "invalid_request_error", "%s %.*s not found",
                        a->op == OP_REPLAY ? "delivery" : "webhook endpoint",
                        STR_FMT(a->op == OP_REPLAY ? a->delivery : a->id));
    else if (rc < 0)
        api_error_rc(resp, rc, &err);
    return rc;
}

/* stored: the endpoint list document (caller owns; an empty list when none), or NULL
 * after answering an error. */
static cJSON *stored(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp)
{
    struct doc_rec d;
    cJSON *doc;
    int rc = store_doc_get(ctx->store, HOOKS_COLL, str_c(HOOKS_DOC), req->arena, &d);
    if (rc < 0 && rc != HR_NOTFOUND) {
        api_error_rc(resp, rc, NULL);
        return NULL;
    }
    doc = rc == HR_OK ? cJSON_ParseWithLength(d.body.p, d.body.len) : NULL;
    if (!json_arr(doc, "endpoints")) {
        cJSON_Delete(doc);
        doc = cJSON_CreateObject();
        cJSON_AddArrayToObject(doc, "endpoints");
    }
    return doc;
}

void api_webhooks_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    cJSON *doc = stored(vctx, req, resp), *out, *res, *it;
    if (!doc)
        return;
    out = cJSON_CreateObject();
    res = cJSON_AddArrayToObject(out, "results");
    cJSON_ArrayForEach(it, json_arr(doc, "endpoints")) cJSON_AddItemToArray(res, shown(it));
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
    cJSON_Delete(doc);
}

void api_webhook_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    cJSON *doc = stored(vctx, req, resp), *out;
    int k;
    if (!doc)
        return;
    k = req->nparams > 0 ? index_of(json_arr(doc, "endpoints"), req->params[0]) : -1;
    if (k < 0) {
        http_resp_error(resp, 404, "invalid_request_error", "webhook endpoint %.*s not found",
                        STR_FMT(req->nparams > 0 ? req->params[0] : STR_NULL));
    } else {
        out = shown(cJSON_GetArrayItem(json_arr(doc, "endpoints"), k));
        http_resp_json(resp, 200, out);
        cJSON_Delete(out);
    }
    cJSON_Delete(doc);
}

static void write_endpoint(void *vctx, struct http_req *req, struct http_resp *resp, int op)
{
    struct wh_arg a;
    cJSON *body = NULL, *out;
    if (api_parse_json(req, resp, &body) < 0)
        return;
    memset(&a, 0, sizeof a);
    a.op = op;
    a.body = body;
    if (op == OP_REPLACE)
        a.id = req->params[0];
    if (run(vctx, resp, &a) == HR_OK) {
        out = shown(a.result);
        http_resp_json(resp, op == OP_CREATE ? 201 : 200, out);
        cJSON_Delete(out);
    }
    cJSON_Delete(a.result);
    cJSON_Delete(body);
}

void api_webhook_create(void *vctx, struct http_req *req, struct http_resp *resp)
{
    write_endpoint(vctx, req, resp, OP_CREATE);
}

void api_webhook_replace(void *vctx, struct http_req *req, struct http_resp *resp)
{
    write_endpoint(vctx, req, resp, OP_REPLACE);
}

void api_webhook_delete(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct wh_arg a;
    memset(&a, 0, sizeof a);
    a.op = OP_DELETE;
    a.id = req->params[0];
    if (run(vctx, resp, &a) == HR_OK)
        resp->status = 204;
}

void api_webhook_deliveries(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *doc = stored(vctx, req, resp), *log = NULL, *out;
    struct doc_rec d;
    int rc;
    if (!doc)
        return;
    if (index_of(json_arr(doc, "endpoints"), req->params[0]) < 0) {
        http_resp_error(resp, 404, "invalid_request_error", "webhook endpoint %.*s not found",
                        STR_FMT(req->params[0]));
        goto out;
    }
    rc = store_doc_get(ctx->store, HOOKS_LOG_COLL, req->params[0], req->arena, &d);
    if (rc < 0 && rc != HR_NOTFOUND) {
        api_error_rc(resp, rc, NULL);
        goto out;
    }
    if (rc == HR_OK)
        log = cJSON_ParseWithLength(d.body.p, d.body.len);
    out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "results", json_arr(log, "deliveries")
                                              ? cJSON_Duplicate(json_arr(log, "deliveries"), 1)
                                              : cJSON_CreateArray());
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
out:
    cJSON_Delete(log);
    cJSON_Delete(doc);
}

void api_webhook_replay(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct wh_arg a;
    cJSON *out;
    memset(&a, 0, sizeof a);
    a.op = OP_REPLAY;
    a.id = req->params[0];
    a.delivery = req->params[1];
    if (run(vctx, resp, &a) < 0)
        return;
    out = cJSON_CreateObject();
    {
        char buf[300];
        snprintf(buf, sizeof buf, "%.*s", (int)(a.delivery.len > 256 ? 256 : a.delivery.len),
                 a.delivery.p);
        cJSON_AddStringToObject(out, "delivery_id", buf);
        snprintf(buf, sizeof buf, "%.*s", (int)(a.id.len > 256 ? 256 : a.id.len), a.id.p);
        cJSON_AddStringToObject(out, "endpoint_id", buf);
    }
    http_resp_json(resp, 202, out);
    cJSON_Delete(out);
}
