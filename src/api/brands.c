/* brands.c: Courier's Brands API over the "brands" document collection.
 *   POST   /brands {name, id?, settings?, snippets?} -> the brand (409 when id exists)
 *   GET    /brands?cursor&limit                      -> {paging, results}
 *   GET    /brands/:id
 *   PUT    /brands/:id {name, settings?, snippets?}  -> replace (404 when absent)
 *   DELETE /brands/:id                               -> 204
 * A brand is {id, name, created, updated, published, version: "vNNN", settings,
 * snippets}; every replace bumps the version. Writes are one transaction each. */
#include "templates.h"

#include "../engine/defcache.h"
#include "../util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_CHARS 256
#define COLOR_MAX 64
#define SNIPPETS_MAX 100
#define SNIPPET_NAME_MAX 256
#define HREF_MAX 2048
#define LIST_DEFAULT 20
#define LIST_MAX 100

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* opt_obj: v is absent, null or an object. */
static bool opt_obj(const cJSON *v)
{
    return !v || cJSON_IsNull(v) || cJSON_IsObject(v);
}

static bool http_url(const char *s)
{
    size_t n = strlen(s);
    if (n > HREF_MAX)
        return false;
    if (strncasecmp(s, "https://", 8) == 0)
        return n > 8;
    if (strncasecmp(s, "http://", 7) == 0)
        return n > 7;
    return false;
}

static int settings_check(const cJSON *settings, struct herr *err)
{
    const cJSON *colors, *email, *header, *logo, *href, *c;

    if (!opt_obj(settings))
        return herr_set(err, HR_INVAL, "settings must be an object");
    colors = json_member(settings, "colors");
    if (!opt_obj(colors))
        return herr_set(err, HR_INVAL, "settings.colors must be an object");
    cJSON_ArrayForEach(c, colors) {
        if (!cJSON_IsString(c) || strlen(c->valuestring) > COLOR_MAX)
            return herr_set(err, HR_INVAL, "settings.colors.%s must be a string of at most %d bytes",
                            c->string, COLOR_MAX);
    }
    email = json_member(settings, "email");
    if (!opt_obj(email))
        return herr_set(err, HR_INVAL, "settings.email must be an object");
    header = json_member(email, "header");
    if (!opt_obj(header))
        return herr_set(err, HR_INVAL, "settings.email.header must be an object");
    logo = json_member(header, "logo");
    if (!opt_obj(logo))
        return herr_set(err, HR_INVAL, "settings.email.header.logo must be an object");
    href = json_member(logo, "href");
    if (href && !cJSON_IsNull(href) && (!cJSON_IsString(href) || !http_url(href->valuestring)))
        return herr_set(err, HR_INVAL, "settings.email.header.logo.href must be an http(s) URL");
    return HR_OK;
}

static int snippets_check(const cJSON *snippets, struct herr *err)
{
    const cJSON *items, *it;
    if (!opt_obj(snippets))
        return herr_set(err, HR_INVAL, "snippets must be an object");
    items = json_member(snippets, "items");
    if (!items || cJSON_IsNull(items))
        return HR_OK;
    if (!cJSON_IsArray(items) || cJSON_GetArraySize(items) > SNIPPETS_MAX)
        return herr_set(err, HR_INVAL, "snippets.items must be an array of at most %d snippets",
                        SNIPPETS_MAX);
    cJSON_ArrayForEach(it, items) {
        const char *name = json_str(it, "name"), *value = json_str(it, "value");
        if (!name || !value || name[0] == '\0' || strlen(name) > SNIPPET_NAME_MAX)
            return herr_set(err, HR_INVAL,
                            "snippets.items: each is {\"name\": string (1 to %d bytes), "
                            "\"value\": string}",
                            SNIPPET_NAME_MAX);
    }
    return HR_OK;
}

int brands_check(const cJSON *body, bool creating, struct herr *err)
{
    const char *name = json_str(body, "name");
    const cJSON *id = json_member(body, "id");
    int rc;

    if (!cJSON_IsObject(body))
        return herr_set(err, HR_INVAL, "body must be a JSON object");
    if (!name || name[0] == '\0' || utf8_chars(name) > NAME_MAX_CHARS)
        return herr_set(err, HR_INVAL, "name is required: a string of 1 to %d characters",
                        NAME_MAX_CHARS);
    if (creating && id && !cJSON_IsNull(id) &&
        (!cJSON_IsString(id) || !template_id_valid(str_c(id->valuestring))))
        return herr_set(err, HR_INVAL, "id must be 1 to %d characters of [A-Za-z0-9_.:-]",
                        RESOURCE_ID_MAX);
    rc = settings_check(json_member(body, "settings"), err);
    if (rc == HR_OK)
        rc = snippets_check(json_member(body, "snippets"), err);
    return rc;
}

/* ---- changes ------------------------------------------------------------------------------ */

struct change_arg {
    bool creating;
    struct str id;
    const cJSON *body;   /* checked by brands_check */
    int64_t now_ms;
    cJSON *brand;        /* out: the stored brand; the caller frees it */
    struct herr err;
};

static cJSON *obj_or_empty(const cJSON *v)
{
    return cJSON_IsObject(v) ? cJSON_Duplicate(v, 1) : cJSON_CreateObject();
}

static int change_tx(struct store_txn *t, void *varg)
{
    struct change_arg *a = varg;
    struct arena *ar = arena_new(4096);
    struct doc_rec d;
    cJSON *old = NULL, *b = NULL;
    char idb[RESOURCE_ID_MAX + 1], ver[24];
    int64_t created = a->now_ms, vn = 1;
    const char *v;
    char *s = NULL;
    int rc;

    defcache_changed(); /* routes' cached brands (engine_brand_cached) */
    cJSON_Delete(a->brand); /* in case the store runs fn again */
    a->brand = NULL;
    rc = store_doc_get_txn(t, BRANDS_COLL, a->id, ar, &d);
    if (a->creating && rc == HR_OK) {
        rc = herr_set(&a->err, HR_CONFLICT, "brand already exists");
        goto out;
    }
    if (!a->creating && rc == HR_NOTFOUND) {
        rc = herr_set(&a->err, HR_NOTFOUND, "brand %.*s not found", STR_FMT(a->id));
        goto out;
    }
    if (rc < 0 && rc != HR_NOTFOUND)
        goto out;
    if (rc == HR_OK) {
        old = cJSON_ParseWithLength(d.body.p, d.body.len);
        json_i64(old, "created", &created);
        v = json_str(old, "version");
        if (v && v[0] == 'v' && str_to_i64(str_c(v + 1), &vn) == HR_OK && vn >= 0)
            vn++;
        else
            vn = 2;
    }
    str_copy(idb, sizeof idb, a->id);
    snprintf(ver, sizeof ver, "v%03lld", (long long)vn);
    b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "id", idb);
    cJSON_AddStringToObject(b, "name", json_str(a->body, "name"));
    cJSON_AddNumberToObject(b, "created", (double)created);
    cJSON_AddNumberToObject(b, "updated", (double)a->now_ms);
    cJSON_AddNumberToObject(b, "published", (double)a->now_ms);
    cJSON_AddStringToObject(b, "version", ver);
    cJSON_AddItemToObject(b, "settings",
                          obj_or_empty(json_member(a->body, "settings")));
    cJSON_AddItemToObject(b, "snippets",
                          obj_or_empty(json_member(a->body, "snippets")));
    s = json_print(b);
    rc = store_doc_put(t, BRANDS_COLL, a->id, str_c(s), a->now_ms, NULL);
    if (rc == HR_TOOBIG)
        herr_set(&a->err, rc, "the brand is larger than %d bytes", TEMPLATE_BODY_MAX);
    if (rc < 0)
        goto out;
    a->brand = b;
    b = NULL;
out:
    free(s);
    cJSON_Delete(b);
    cJSON_Delete(old);
    arena_free(ar);
    return rc;
}

static bool id_ok(struct http_req *req, struct http_resp *resp)
{
    if (req->nparams < 1 || !template_id_valid(req->params[0])) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "a brand id is 1 to %d characters of [A-Za-z0-9_.:-]", RESOURCE_ID_MAX);
        return false;
    }
    return true;
}

static void save(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp, bool creating)
{
    char idbuf[RESOURCE_ID_NEW_LEN + 1];
    cJSON *body = NULL;
    const char *given;
    struct change_arg a;
    struct herr err;
    int rc;

    memset(&a, 0, sizeof a);
    if ((!creating && !id_ok(req, resp)) || api_parse_json(req, resp, &body) < 0)
        goto out;
    herr_clear(&err);
    if (brands_check(body, creating, &err) < 0) {
        http_resp_error(resp, 400, "invalid_request_error", "%s", err.msg);
        goto out;
    }
    given = json_str(body, "id");
    if (!creating) {
        a.id = req->params[0];
    } else if (given) {
        a.id = str_c(given);
    } else {
        template_id_new("br_", idbuf, sizeof idbuf);
        a.id = str_c(idbuf);
    }
    a.creating = creating;
    a.body = body;
    a.now_ms = hclock_now(ctx->clock);
    herr_clear(&a.err);
    rc = store_write(ctx->store, change_tx, &a, &err);
    defcache_changed(); /* again after the commit: a load that raced it is stale too */
    if (rc < 0) {
        api_error_rc(resp, rc, a.err.msg[0] ? &a.err : &err);
        if (rc == HR_CONFLICT)
            http_resp_header(resp, "x-should-retry", "false");
        goto out;
    }
    http_resp_json(resp, 200, a.brand);
out:
    cJSON_Delete(a.brand);
    cJSON_Delete(body);
}

void api_brand_create(void *ctx, struct http_req *req, struct http_resp *resp)
{
    save(ctx, req, resp, true);
}

void api_brand_replace(void *ctx, struct http_req *req, struct http_resp *resp)
{
    save(ctx, req, resp, false);
}

/* ---- reads and delete ------------------------------------------------------------------- */

void api_brand_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct doc_rec d;
    int rc;

    if (!id_ok(req, resp))
        return;
    rc = store_doc_get(ctx->store, BRANDS_COLL, req->params[0], req->arena, &d);
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error", "brand %.*s not found",
                        STR_FMT(req->params[0]));
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    http_resp_raw(resp, 200, "application/json", d.body);
}

void api_brand_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct doc_rec *rows = NULL;
    struct str cursor;
    size_t limit, n = 0;
    cJSON *out = NULL, *results, *paging;
    int rc;

    if (template_page_args(req, resp, LIST_DEFAULT, LIST_MAX, &limit, &cursor) < 0)
        return;
    rc = store_doc_list(ctx->store, BRANDS_COLL, STR_NULL, cursor, limit + 1, req->arena, &rows, &n);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    out = cJSON_CreateObject();
    paging = cJSON_AddObjectToObject(out, "paging");
    if (n > limit)
        cJSON_AddStringToObject(paging, "cursor", rows[limit - 1].id.p);
    else
        cJSON_AddNullToObject(paging, "cursor");
    cJSON_AddBoolToObject(paging, "more", n > limit);
    results = cJSON_AddArrayToObject(out, "results");
    for (size_t i = 0; i < n && i < limit; i++) {
        cJSON *b = cJSON_ParseWithLength(rows[i].body.p, rows[i].body.len);
        if (b)
            cJSON_AddItemToArray(results, b);
    }
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}

void api_brand_delete(void *vctx, struct http_req *req, struct http_resp *resp)
{
    if (id_ok(req, resp))
        api_doc_delete(vctx, req, resp, BRANDS_COLL, "brand");
}
