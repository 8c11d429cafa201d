/* settings.c: workspace settings (herald's own API).
 *   GET /settings  -> {"segment_shared_secret": "set"|null, "default_brand_id": id|null,
 *                      "group_lists": {"prefix", "allow_client"}|null}
 *   PUT /settings  {"segment_shared_secret"?: "..." | null, "default_brand_id"?: id | null,
 *                   "group_lists"?: {"prefix": "groups.", "allow_client"?: bool} | null}
 * The shared secret verifies X-Signature on POST /inbound/segment; it is never returned.
 * The default brand styles emails whose message and template name none. group_lists
 * links Segment groups to lists (src/ingest/grouplists.h). */
#include "api.h"

#include "../engine/defcache.h"
#include "../ingest/grouplists.h"
#include "../util/json.h"

#include <stdlib.h>
#include <string.h>

#define SECRET_KEY "segment.shared_secret"
#define BRAND_KEY "default_brand_id"
#define SECRET_MAX 256

/* add_group_lists: o.group_lists = the link as stored (null when unlinked). Returns 0
 * or the store's error. */
static int add_group_lists(struct api_ctx *ctx, cJSON *o)
{
    struct grouplists_link l;
    int rc = grouplists_load(ctx->store, &l);
    if (rc == HR_OK)
        cJSON_AddItemToObject(o, "group_lists", grouplists_json(&l));
    return rc;
}

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
    rc = store_meta_get(ctx->store, BRAND_KEY, req->arena, &v);
    if (rc < 0 && rc != HR_NOTFOUND) {
        api_error_rc(resp, rc, NULL);
        goto out;
    }
    if (rc == HR_OK && v.len > 0)
        cJSON_AddStringToObject(o, "default_brand_id", v.p);
    else
        cJSON_AddNullToObject(o, "default_brand_id");
    rc = add_group_lists(ctx, o);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        goto out;
    }
    http_resp_json(resp, 200, o);
out:
    cJSON_Delete(o);
}

struct put_arg {
    bool secret, brand, groups;
    struct str secret_v, brand_v;
    char *groups_v; /* the link's canonical JSON text; NULL: unlink (owned) */
};

static int put_tx(struct store_txn *t, void *varg)
{
    struct put_arg *a = varg;
    int rc = HR_OK;
    if (a->secret)
        rc = store_meta_set(t, SECRET_KEY, a->secret_v);
    if (rc == HR_OK && a->brand) {
        defcache_changed(); /* routes' cached default brand (engine_brand_cached) */
        rc = store_meta_set(t, BRAND_KEY, a->brand_v);
    }
    if (rc == HR_OK && a->groups)
        rc = store_meta_set(t, GROUPLISTS_META_KEY, str_c(a->groups_v));
    return rc;
}

/* take: a settings field that is a string of 1..max bytes or null (the empty value). */
static int take(const cJSON *body, const char *name, size_t max, bool *present, struct str *v,
                struct http_resp *resp)
{
    const cJSON *s = json_member(body, name);
    *present = s != NULL;
    *v = STR_NULL;
    if (!s || cJSON_IsNull(s))
        return HR_OK;
    if (cJSON_IsString(s) && s->valuestring[0] && strlen(s->valuestring) <= max) {
        *v = str_c(s->valuestring);
        return HR_OK;
    }
    http_resp_error(resp, 400, "invalid_request_error", "%s must be a string of 1 to %zu bytes, or null",
                    name, max);
    return HR_INVAL;
}

/* take_group_lists: the group_lists member of body, checked (grouplists_parse), as the
 * text to store into a. Answers 400 and returns HR_INVAL when malformed. */
static int take_group_lists(const cJSON *body, struct put_arg *a, struct http_resp *resp)
{
    const cJSON *v = json_member(body, "group_lists");
    struct grouplists_link l;
    struct herr why;
    cJSON *canon;
    a->groups = v != NULL;
    if (!v)
        return HR_OK;
    if (grouplists_parse(v, &l, &why) < 0) {
        http_resp_error(resp, 400, "invalid_request_error", "%s", why.msg);
        return HR_INVAL;
    }
    if (l.on) {
        canon = grouplists_json(&l);
        a->groups_v = json_print(canon);
        cJSON_Delete(canon);
    }
    return HR_OK;
}

void api_settings_put(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *body = NULL;
    struct put_arg a;
    struct herr err;
    int rc;

    if (api_parse_json(req, resp, &body) < 0)
        return;
    memset(&a, 0, sizeof a);
    if (take(body, "segment_shared_secret", SECRET_MAX, &a.secret, &a.secret_v, resp) < 0 ||
        take(body, "default_brand_id", 128, &a.brand, &a.brand_v, resp) < 0 ||
        take_group_lists(body, &a, resp) < 0)
        goto out;
    if (!a.secret && !a.brand && !a.groups) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "nothing to change: known settings are segment_shared_secret, "
                        "default_brand_id and group_lists");
        goto out;
    }
    herr_clear(&err);
    rc = store_write(ctx->store, put_tx, &a, &err);
    if (a.brand)
        defcache_changed(); /* again after the commit: a load that raced it is stale too */
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        goto out;
    }
    api_settings_get(vctx, req, resp);
out:
    free(a.groups_v);
    cJSON_Delete(body);
}
