/* api.c: helpers shared by the resource files: JSON bodies, error mapping. */
#include "api.h"

#include "../engine/defcache.h"

#include "../util/json.h"

int api_status_for_rc(int rc)
{
    switch (rc) {
    case HR_OK:
        return 200;
    case HR_INVAL:
        return 400;
    case HR_PERM:
        return 401;
    case HR_NOTFOUND:
        return 404;
    case HR_CONFLICT:
        return 409;
    case HR_TOOBIG:
        return 413;
    case HR_AGAIN:
        return 429;
    case HR_BUSY:
    case HR_FULL:
    case HR_UNAVAIL:
        return 503;
    case HR_TIMEOUT:
        return 504;
    default:
        return 500;
    }
}

void api_error_rc(struct http_resp *resp, int rc, const struct herr *err)
{
    int status = api_status_for_rc(rc);
    const char *msg = err && err->msg[0] ? err->msg : hr_rc_str(rc);
    if (rc == HR_FULL) {
        api_error_store_full(resp);
        return;
    }
    if (status == 503 || status == 429)
        http_resp_header(resp, "Retry-After", "1");
    http_resp_error(resp, status, http_error_type(status), "%s", msg);
}

void api_error_store_full(struct http_resp *resp)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", API_STORE_FULL_MSG);
    cJSON_AddStringToObject(o, "type", "api_error");
    cJSON_AddStringToObject(o, "code", "store_full");
    http_resp_header(resp, "Retry-After", API_STORE_FULL_RETRY_S);
    http_resp_json(resp, 503, o);
    cJSON_Delete(o);
}

int api_parse_json(struct http_req *req, struct http_resp *resp, cJSON **out)
{
    struct herr err;
    int rc;
    herr_clear(&err);
    rc = json_parse_bounded(req->body.p, req->body.len, JSON_MAX_DEPTH_DEFAULT, out, &err);
    if (rc < 0) {
        http_resp_error(resp, 400, "invalid_request_error", "%s", err.msg);
        return rc;
    }
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        http_resp_error(resp, 400, "invalid_request_error", "request body must be a JSON object");
        return HR_INVAL;
    }
    return HR_OK;
}

struct doc_delete_arg {
    const char *coll;
    struct str id;
};

static int doc_delete_tx(struct store_txn *t, void *varg)
{
    struct doc_delete_arg *a = varg;
    defcache_changed(); /* a provider (or any cached definition) may be going */
    return store_doc_delete(t, a->coll, a->id);
}

void api_doc_delete(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                    const char *coll, const char *noun)
{
    struct doc_delete_arg a = {coll, req->params[0]};
    struct herr err;
    int rc;
    herr_clear(&err);
    rc = store_write(ctx->store, doc_delete_tx, &a, &err);
    defcache_changed(); /* again after the commit, as automations.c does */
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error", "%s %.*s not found", noun,
                        STR_FMT(req->params[0]));
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        return;
    }
    resp->status = 204;
}
