/* catalog.c: the event catalog (herald's own API): every event name seen, with its
 * count, first and last seen times and the latest sample payload.
 *   GET /catalog/events?search=&cursor=&limit=   -> {items:[...], paging:{cursor, more}}
 *   GET /catalog/events/:name                     -> one event with its sample */
#include "api.h"

#include "../util/clock.h"

#include <string.h>

#define CATALOG_LIMIT_DEFAULT 50
#define CATALOG_LIMIT_MAX 200

static cJSON *entry_json(const struct catalog_rec *c, bool with_sample)
{
    char first[32], last[32];
    cJSON *o = cJSON_CreateObject();
    time_fmt_iso(c->first_seen_ms, first, sizeof first);
    time_fmt_iso(c->last_seen_ms, last, sizeof last);
    cJSON_AddStringToObject(o, "name", c->name.p);
    cJSON_AddNumberToObject(o, "count", (double)c->count);
    cJSON_AddStringToObject(o, "first_seen", first);
    cJSON_AddStringToObject(o, "last_seen", last);
    if (with_sample) {
        cJSON *s = cJSON_ParseWithLength(c->sample.p, c->sample.len);
        cJSON_AddItemToObject(o, "sample", s ? s : cJSON_CreateNull());
    }
    return o;
}

void api_catalog_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    const char *search = http_req_query(req, "search");
    const char *cursor = http_req_query(req, "cursor");
    const char *lim_s = http_req_query(req, "limit");
    struct catalog_rec *rows = NULL;
    size_t n = 0, limit = CATALOG_LIMIT_DEFAULT;
    cJSON *out, *items, *paging;
    int64_t v;
    int rc;

    if (lim_s) {
        if (str_to_i64(str_c(lim_s), &v) < 0 || v < 1 || v > CATALOG_LIMIT_MAX) {
            http_resp_error(resp, 400, "invalid_request_error", "limit must be 1 to %d",
                            CATALOG_LIMIT_MAX);
            return;
        }
        limit = (size_t)v;
    }
    if ((search && strlen(search) > 256) || (cursor && strlen(cursor) > 1024)) {
        http_resp_error(resp, 400, "invalid_request_error", "search or cursor too long");
        return;
    }
    /* ask for one more than the page to know whether there is more */
    rc = store_catalog_list(ctx->store, str_c(search), str_c(cursor), limit + 1, req->arena, &rows,
                            &n);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    out = cJSON_CreateObject();
    items = cJSON_AddArrayToObject(out, "items");
    for (size_t i = 0; i < n && i < limit; i++)
        cJSON_AddItemToArray(items, entry_json(&rows[i], false));
    paging = cJSON_AddObjectToObject(out, "paging");
    if (n > limit)
        cJSON_AddStringToObject(paging, "cursor", rows[limit - 1].name.p);
    else
        cJSON_AddNullToObject(paging, "cursor");
    cJSON_AddBoolToObject(paging, "more", n > limit);
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}

void api_catalog_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct catalog_rec c;
    cJSON *o;
    int rc = store_catalog_get(ctx->store, req->params[0], req->arena, &c);
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error", "no event named %.*s in the catalog",
                        STR_FMT(req->params[0]));
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    o = entry_json(&c, true);
    http_resp_json(resp, 200, o);
    cJSON_Delete(o);
}
