/* admin.c: herald's own operator routes for the queue. POST /admin/jobs/ping enqueues a
 * no-op job: a way to check, end to end, that the queue runs jobs (and keeps them
 * across a crash). */
#include "api.h"

#include "../util/json.h"

struct ping_arg {
    int64_t run_at_ms;
    int64_t id;
};

static int enqueue_ping(struct store_txn *t, void *varg)
{
    struct ping_arg *a = varg;
    struct job_spec js = {.kind = "ping", .payload = STR_LIT("{}"), .run_at_ms = a->run_at_ms};
    return queue_enqueue(t, &js, &a->id);
}

void api_admin_ping(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *body = NULL, *out = NULL;
    const cJSON *d;
    struct herr err;
    struct ping_arg arg = {0, 0};
    int64_t delay = 0;
    int rc;

    herr_clear(&err);
    if (req->body.len > 0) {
        if (api_parse_json(req, resp, &body) < 0)
            goto out;
        d = json_member(body, "delay_ms");
        if (d && !cJSON_IsNull(d)) {
            if (!json_i64(body, "delay_ms", &delay) || delay < 0 || delay > 86400000 ||
                (double)delay != d->valuedouble) {
                http_resp_error(resp, 400, "invalid_request_error",
                                "delay_ms must be a whole number from 0 to 86400000");
                goto out;
            }
        }
    }
    arg.run_at_ms = hclock_now(ctx->clock) + delay;
    rc = store_write(ctx->store, enqueue_ping, &arg, &err);
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        goto out;
    }
    out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "id", (double)arg.id);
    http_resp_json(resp, 202, out);
out:
    cJSON_Delete(body);
    cJSON_Delete(out);
}
