/* settings.c: workspace settings (herald's own API).
 *   GET /settings  -> {"segment_shared_secret": "set"|null}
 *   PUT /settings  {"segment_shared_secret": "..." | null}
 * The shared secret verifies X-Signature on POST /inbound/segment; it is never returned. */
#include "api.h"

#include "../util/json.h"

#include <string.h>

#define SECRET_KEY "segment.shared_secret"
#define SECRET_MAX 256

void api_settings_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct str v;
    cJSON *o = cJSON_CreateObject();
    int rc = store_meta_get(ctx->store, SECRET_KEY, req->arena, &v);
    if (rc < 0 && rc != HR_NOTFOUND) {
        api_error_rc(resp, rc, NULL);
        goto out;
    }
    if (rc == HR_OK && v.len > 0)
        cJSON_AddStringToObject(o, "segment_shared_secret", "set");
    else
        cJSON_AddNullToObject(o, "segment_shared_secret");
    http_resp_json(resp, 200, o);
out:
    cJSON_Delete(o);
}

static int put_secret(struct store_txn *t, void *v)
{
    return store_meta_set(t, SECRET_KEY, *(struct str *)v);
}

void api_settings_put(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *body = NULL;
    const cJSON *s;
    struct str v = STR_NULL;
    struct herr err;
    int rc;

    if (api_parse_json(req, resp, &body) < 0)
        return;
    s = cJSON_GetObjectItemCaseSensitive(body, "segment_shared_secret");
    if (!s) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "nothing to change: known settings are segment_shared_secret");
        goto out;
    }
    if (cJSON_IsString(s)) {
        v = str_c(s->valuestring);
        if (v.len == 0 || v.len > SECRET_MAX) {
            http_resp_error(resp, 400, "invalid_request_error",
                            "segment_shared_secret must be 1 to %d bytes, or null", SECRET_MAX);
            goto out;
        }
    } else if (!cJSON_IsNull(s)) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "segment_shared_secret must be a string or null");
        goto out;
    }
    herr_clear(&err);
    rc = store_write(ctx->store, put_secret, &v, &err);
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        goto out;
    }
    api_settings_get(vctx, req, resp);
out:
    cJSON_Delete(body);
}
