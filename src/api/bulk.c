/* bulk.c: Courier's Bulk API (the SDK's bulk.*), over the engine's bulk jobs
 * (src/engine/fanout.h):
 *   POST /bulk {message}              -> 200 {jobId}              (createJob; status CREATED)
 *   POST /bulk/:id {users: [...]}     -> 204                      (addUsers; <= BULK_USERS_MAX
 *                                                                  per call, checked whole)
 *   POST /bulk/:id/run                -> 202                      (runJob: the fan-out starts)
 *   GET  /bulk/:id                    -> {job: {definition, enqueued, failures, received, status}}
 *   GET  /bulk/:id/users?cursor       -> {items: [{...user, status, messageId?}], paging}
 *   GET  /bulk?kind&cursor&limit      -> {items: [...], paging}   (herald's own: the jobs, or
 *                                                                  with kind=list the list
 *                                                                  sends, newest first)
 * Bad input is refused before anything is stored. */
#include "api.h"
#include "templates.h"

#include "../engine/fanout.h"
#include "../util/id.h"
#include "../util/json.h"

#include <stdio.h>
#include <string.h>

#define BULK_PAGE 100 /* users per listUsers page */
#define BULK_LIST_DEFAULT 20 /* jobs (or list sends) per GET /bulk page unless ?limit= */

struct bulk_arg {
    struct engine *engine;
    const char *id;
    const cJSON *v;
    struct herr *err;
};

static bool job_id_ok(struct http_req *req, struct http_resp *resp)
{
    if (req->params[0].len > 0 && req->params[0].len <= ID_LEN)
        return true;
    http_resp_error(resp, 404, http_error_type(404), "bulk job not found");
    return false;
}

static void answer(struct http_resp *resp, int rc, const struct herr *err, const char *id)
{
    if (rc == HR_NOTFOUND)
        http_resp_error(resp, 404, http_error_type(404), "bulk job %.64s not found", id);
    else if (rc == HR_CONFLICT)
        http_resp_error(resp, 409, http_error_type(409),
                        "bulk job %.64s runs already: add users before runJob", id);
    else
        api_error_rc(resp, rc, err);
}

static int create_tx(struct store_txn *t, void *varg)
{
    struct bulk_arg *a = varg;
    return engine_bulk_create(a->engine, t, a->id, a->v);
}

void api_bulk_create(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *body = NULL, *out;
    struct herr err;
    char id[ID_LEN + 1];
    struct bulk_arg a = {ctx->engine, id, NULL, &err};
    int rc;

    herr_clear(&err);
    if (api_parse_json(req, resp, &body) < 0)
        goto out;
    a.v = json_obj(body, "message");
    if (engine_bulk_validate(a.v, &err) < 0) {
        http_resp_error(resp, 400, "invalid_request_error", "%s", err.msg);
        goto out;
    }
    if (api_idempotent_id(req, id, sizeof id) < 0)
        id_new(hclock_now(ctx->clock), id);
    rc = store_write(ctx->store, create_tx, &a, &err);
    if (rc < 0 && rc != HR_CONFLICT) { /* CONFLICT: this key's job exists */
        api_error_rc(resp, rc, &err);
        goto out;
    }
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "jobId", id);
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
out:
    cJSON_Delete(body);
}

static int add_tx(struct store_txn *t, void *varg)
{
    struct bulk_arg *a = varg;
    return engine_bulk_add_users(a->engine, t, a->id, a->v, a->err);
}

void api_bulk_add_users(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *body = NULL;
    struct herr err;
    struct bulk_arg a = {ctx->engine, NULL, NULL, &err};
    int rc;

    herr_clear(&err);
    if (!job_id_ok(req, resp) || api_parse_json(req, resp, &body) < 0)
        goto out;
    a.id = req->params[0].p;
    a.v = json_member(body, "users");
    rc = engine_bulk_users_validate(a.v, &err);
    if (rc < 0) {
        http_resp_error(resp, 400, "invalid_request_error", "%s", err.msg);
        goto out;
    }
    rc = store_write(ctx->store, add_tx, &a, &err);
    if (rc < 0) {
        answer(resp, rc, &err, a.id);
        goto out;
    }
    resp->status = 204;
out:
    cJSON_Delete(body);
}

static int run_tx(struct store_txn *t, void *varg)
{
    struct bulk_arg *a = varg;
    return engine_bulk_run(a->engine, t, a->id);
}

void api_bulk_run(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct herr err;
    struct bulk_arg a = {ctx->engine, NULL, NULL, &err};
    int rc;

    herr_clear(&err);
    if (!job_id_ok(req, resp))
        return;
    a.id = req->params[0].p;
    rc = store_write(ctx->store, run_tx, &a, &err);
    if (rc < 0) {
        answer(resp, rc, &err, a.id);
        return;
    }
    resp->status = 202;
}

void api_bulk_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *out = NULL;
    int rc;

    if (!job_id_ok(req, resp))
        return;
    rc = engine_bulk_get(ctx->store, req->params[0].p, &out);
    if (rc < 0) {
        answer(resp, rc, NULL, req->params[0].p);
        return;
    }
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}

void api_bulk_users(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    const char *cursor = http_req_query(req, "cursor");
    cJSON *out = NULL;
    struct herr err;
    int rc;

    if (!job_id_ok(req, resp))
        return;
    rc = engine_bulk_users(ctx->store, req->params[0].p, cursor ? cursor : "", BULK_PAGE, &out);
    if (rc == HR_INVAL) {
        http_resp_error(resp, 400, "invalid_request_error", "cursor is not one of this job's");
        return;
    }
    if (rc < 0) {
        herr_clear(&err);
        answer(resp, rc, &err, req->params[0].p);
        return;
    }
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}

void api_bulk_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    const char *kind_s = http_req_query(req, "kind");
    enum fanout_kind kind = FANOUT_KIND_BULK;
    struct str cursor;
    size_t limit;
    cJSON *out = NULL;
    int rc;

    if (kind_s && kind_s[0] && strcmp(kind_s, "bulk")) {
        if (strcmp(kind_s, "list")) {
            http_resp_error(resp, 400, "invalid_request_error",
                            "kind must be bulk (bulk jobs) or list (sends to a list)");
            return;
        }
        kind = FANOUT_KIND_LIST;
    }
    if (template_page_args(req, resp, BULK_LIST_DEFAULT, FANOUT_LIST_MAX, &limit, &cursor) < 0)
        return;
    rc = engine_fanout_list(ctx->store, kind, cursor.len ? cursor.p : "", limit, &out);
    if (rc == HR_INVAL) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "cursor is not one of this listing's (kind=%s)",
                        kind == FANOUT_KIND_LIST ? "list" : "bulk");
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}
