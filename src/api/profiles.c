/* profiles.c: Courier's Profiles API. GET returns {profile, preferences}; POST merges
 * (`null` deletes a key); PUT replaces; PATCH applies RFC 6902 operations; DELETE
 * removes. Ids are taken percent-decoded from the path, so `@ # %` work URL-encoded.
 * Every change is a read-modify-write inside one store transaction. */
#include "api.h"

#include "../util/json.h"
#include "../util/jsonpatch.h"

#include <stdlib.h>
#include <string.h>

#define COLL_PROFILES "profiles"
#define PROFILE_ID_MAX 256

enum profile_op { OP_MERGE, OP_REPLACE, OP_PATCH };

struct change_arg {
    enum profile_op op;
    struct str id;
    const cJSON *input;   /* profile object (merge/replace) or ops array (patch) */
    int64_t now_ms;
    struct herr err;      /* patch failure detail */
};

static bool id_ok(struct http_req *req, struct http_resp *resp)
{
    struct str id = req->params[0];
    if (id.len == 0 || id.len > PROFILE_ID_MAX) {
        http_resp_error(resp, 400, "invalid_request_error", "user id must be 1 to %d bytes",
                        PROFILE_ID_MAX);
        return false;
    }
    return true;
}

static int change_tx(struct store_txn *t, void *varg)
{
    struct change_arg *a = varg;
    struct arena *ar = arena_new(1024);
    struct doc_rec d;
    cJSON *cur = NULL, *next = NULL;
    char *s = NULL;
    int rc = store_doc_get_txn(t, COLL_PROFILES, a->id, ar, &d);

    if (rc == HR_OK)
        cur = cJSON_ParseWithLength(d.body.p, d.body.len);
    else if (rc != HR_NOTFOUND)
        goto out;
    if (!cJSON_IsObject(cur)) {
        cJSON_Delete(cur);
        cur = NULL;
    }
    switch (a->op) {
    case OP_MERGE:
        next = cur ? cur : cJSON_CreateObject();
        cur = NULL;
        jp_merge(next, a->input, true);
        break;
    case OP_REPLACE:
        next = cJSON_Duplicate(a->input, 1);
        break;
    case OP_PATCH:
        if (rc == HR_NOTFOUND) {
            herr_set(&a->err, HR_NOTFOUND, "profile not found");
            goto out;
        }
        rc = jp_apply_patch(cur, a->input, &next, &a->err);
        if (rc < 0)
            goto out;
        if (!cJSON_IsObject(next)) {
            rc = herr_set(&a->err, HR_INVAL, "the patched profile must stay a JSON object");
            goto out;
        }
        break;
    }
    s = json_print(next);
    rc = store_doc_put(t, COLL_PROFILES, a->id, str_c(s), a->now_ms, NULL);
out:
    cJSON_Delete(cur);
    cJSON_Delete(next);
    free(s);
    arena_free(ar);
    return rc;
}

static void change(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                   enum profile_op op)
{
    cJSON *body = NULL;
    const cJSON *input;
    struct change_arg a;
    struct herr err;
    int rc;

    if (!id_ok(req, resp) || api_parse_json(req, resp, &body) < 0)
        goto out;
    input = json_member(body, op == OP_PATCH ? "patch" : "profile");
    if (op == OP_PATCH ? !cJSON_IsArray(input) : !cJSON_IsObject(input)) {
        http_resp_error(resp, 400, "invalid_request_error",
                        op == OP_PATCH ? "body must be {\"patch\": [RFC 6902 operations]}"
                                       : "body must be {\"profile\": {...}}");
        goto out;
    }
    memset(&a, 0, sizeof a);
    a.op = op;
    a.id = req->params[0];
    a.input = input;
    a.now_ms = hclock_now(ctx->clock);
    herr_clear(&err);
    rc = store_write(ctx->store, change_tx, &a, &err);
    if (rc < 0) {
        api_error_rc(resp, rc, a.err.msg[0] ? &a.err : &err);
        goto out;
    }
    http_resp_raw(resp, 200, "application/json", STR_LIT("{\"status\":\"SUCCESS\"}"));
out:
    cJSON_Delete(body);
}

void api_profile_merge(void *ctx, struct http_req *req, struct http_resp *resp)
{
    change(ctx, req, resp, OP_MERGE);
}

void api_profile_replace(void *ctx, struct http_req *req, struct http_resp *resp)
{
    change(ctx, req, resp, OP_REPLACE);
}

void api_profile_patch(void *ctx, struct http_req *req, struct http_resp *resp)
{
    change(ctx, req, resp, OP_PATCH);
}

void api_profile_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct doc_rec d;
    struct buf *b = &resp->body;
    cJSON *prefs;
    char *prefs_text;
    int rc;

    if (!id_ok(req, resp))
        return;
    rc = store_doc_get(ctx->store, COLL_PROFILES, req->params[0], req->arena, &d);
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error", "profile %.*s not found",
                        STR_FMT(req->params[0]));
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    /* the stored body is already JSON: splice it instead of re-serialising */
    prefs = api_prefs_profile(ctx, req->params[0]);
    prefs_text = json_print(prefs);
    cJSON_Delete(prefs);
    rc = buf_append_c(b, "{\"profile\":") < 0 || buf_append_str(b, d.body) < 0 ||
         buf_append_c(b, ",\"preferences\":") < 0 || buf_append_c(b, prefs_text) < 0 ||
         buf_append_c(b, "}") < 0;
    free(prefs_text);
    if (rc) {
        buf_reset(b);
        http_resp_error(resp, 500, "api_error", "profile too large to answer");
        return;
    }
    resp->status = 200;
}

void api_profile_delete(void *vctx, struct http_req *req, struct http_resp *resp)
{
    if (id_ok(req, resp))
        api_doc_delete(vctx, req, resp, COLL_PROFILES, "profile");
}
