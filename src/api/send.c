/* send.c: POST /send, Courier's Send API. v2 bodies are {"message": {...}}; legacy v1
 * bodies {event, recipient, profile, data, ...} are mapped to v2. The request is
 * validated (a Courier field herald cannot honour yet is refused by name, never
 * dropped: engine_send_unsupported), then one transaction creates a message per recipient with its route job
 * (to a list, `to.list_id` / `to.list_pattern`: the list must exist (404), and the
 * transaction starts a fan-out job that streams the members, src/engine/fanout.h);
 * the answer is 202 {"requestId"} (v1: {"messageId"}). With an Idempotency-Key the id
 * derives from the key, so a request re-run after a crash finds its own messages. */
#include "api.h"

#include "../engine/fanout.h"
#include "../engine/send.h"
#include "../util/id.h"
#include "../util/json.h"

#include <stdio.h>
#include <string.h>

struct send_arg {
    struct engine *engine;
    const cJSON *message;
    const char *request_id;
};

static int send_tx(struct store_txn *t, void *varg)
{
    struct send_arg *a = varg;
    return engine_send_enqueue(a->engine, t, a->message, a->request_id, NULL, NULL);
}

/* list_target_ok: a send to a list needs the list (live), a pattern at least one live list
 * it matches; else 404 on resp and false. */
static bool list_target_ok(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                           const cJSON *msg)
{
    const char *target = engine_fanout_target(msg);
    struct list_rec l, *rows = NULL;
    size_t n = 0;
    int rc;
    if (store_list_is_pattern(str_c(target))) {
        rc = store_list_list(ctx->store, str_c(target), STR_NULL, 1, req->arena, &rows, &n);
        if (rc == HR_OK && n == 0) {
            http_resp_error(resp, 404, http_error_type(404), "no list matches the pattern %.256s",
                            target);
            return false;
        }
    } else {
        rc = store_list_get(ctx->store, str_c(target), req->arena, &l);
        if (rc == HR_NOTFOUND || (rc == HR_OK && l.deleted_ms)) {
            http_resp_error(resp, 404, http_error_type(404), "list %.256s not found", target);
            return false;
        }
    }
    if (rc < 0) {
        struct herr err;
        herr_set(&err, rc, "cannot read the list");
        api_error_rc(resp, rc, &err);
        return false;
    }
    return true;
}

void api_send(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *body = NULL, *v2 = NULL, *out = NULL;
    const cJSON *msg, *to;
    struct send_arg a;
    struct herr err;
    char rid[ID_LEN + 1];
    bool legacy;
    int rc;

    herr_clear(&err);
    if (api_parse_json(req, resp, &body) < 0)
        goto out;
    msg = json_obj(body, "message");
    legacy = !json_member(body, "message");
    if (legacy) {
        if (!json_str(body, "event") || !json_str(body, "recipient")) {
            http_resp_error(resp, 400, "invalid_request_error",
                            "body must be {\"message\": {...}} or the legacy {\"event\", "
                            "\"recipient\", ...}");
            goto out;
        }
        if (json_member(body, "preferences") &&
            !cJSON_IsNull(json_member(body, "preferences"))) {
            http_resp_error(resp, 400, "invalid_request_error", "preferences is not supported yet");
            goto out;
        }
        v2 = engine_send_v1_to_v2(body);
        msg = v2;
    }
    if (!msg) {
        http_resp_error(resp, 400, "invalid_request_error", "message must be an object");
        goto out;
    }
    if (engine_send_validate(msg, &err) < 0 ||
        (!legacy && engine_send_unsupported(msg, &err) < 0)) {
        http_resp_error(resp, 400, "invalid_request_error", "%s", err.msg);
        goto out;
    }
    if (engine_fanout_target(msg) && !list_target_ok(ctx, req, resp, msg))
        goto out;
    if (api_idempotent_id(req, rid, sizeof rid) < 0)
        id_new(hclock_now(ctx->clock), rid);
    a.engine = ctx->engine;
    a.message = msg;
    a.request_id = rid;
    /* a few recipients: inserts of its own, which may share a transaction with other
     * requests' (store_write_shared); a list's or a long array's send runs alone */
    to = json_member(msg, "to");
    if (!engine_fanout_target(msg) && (!cJSON_IsArray(to) || cJSON_GetArraySize(to) <= 8))
        rc = store_write_shared(ctx->store, send_tx, &a, &err);
    else
        rc = store_write(ctx->store, send_tx, &a, &err);
    if (rc < 0 && rc != HR_CONFLICT) { /* CONFLICT: this key's request ran already */
        api_error_rc(resp, rc, &err);
        goto out;
    }
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, legacy ? "messageId" : "requestId", rid);
    http_resp_json(resp, 202, out);
out:
    cJSON_Delete(body);
    cJSON_Delete(v2);
    cJSON_Delete(out);
}
