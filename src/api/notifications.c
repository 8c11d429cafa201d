/* notifications.c: Courier's V2 notification templates.
 *   POST   /notifications                {notification:{...}, state?}  -> the template
 *   GET    /notifications?cursor&limit&notes -> {paging, results:[summaries]} (not archived;
 *                                        event_id: 400 until templates map to events)
 *   GET    /notifications/:id?version=draft|published|vNNN  (default: published)
 *   PUT    /notifications/:id            {notification:{...}, state?}  (replace the draft)
 *   DELETE /notifications/:id            archive (204)
 *   POST   /notifications/:id/publish    {version?}  -> a new vNNN snapshot
 *   GET    /notifications/:id/versions?cursor&limit<=10
 * The draft lives in "notifications" under the template id; each publish writes the
 * next snapshot "<id>@vNNN" to "notification_versions". The draft's "state" is
 * PUBLISHED while it equals the latest snapshot, else DRAFT. Every change is one
 * read-modify-write inside a store transaction. Also the shared helpers of
 * templates.h (ids, paging arguments). The engine reads the same documents
 * (engine_template_published in src/engine/lookup.c). */
#include "templates.h"

#include "../engine/defcache.h"
#include "../render/elemental.h"
#include "../util/crypto.h"
#include "../util/json.h"
#include "../util/jsonpatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_CHARS 256
#define TAGS_MAX 9
#define TAG_MAX_CHARS 30
#define REF_ID_MAX 128        /* brand id, topic id, strategy id */
#define ROUTING_DEPTH_MAX 4
#define ROUTING_CHANNELS_MAX 32
#define ROUTING_CHANNEL_MAX 64
#define LIST_DEFAULT 20
#define LIST_MAX 100
#define VERSIONS_LIMIT_MAX 10
#define CURSOR_MAX 1024

/* The members a template's author controls; the rest is bookkeeping. */
static const char *const FIELDS[] = {"name", "tags", "brand", "subscription", "routing", "content",
                                     NULL};

/* ---- shared helpers ------------------------------------------------------------------ */

bool template_id_valid(struct str id)
{
    return str_id_chars_ok(id, RESOURCE_ID_MAX);
}

void template_id_new(const char *prefix, char *out, size_t cap)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char tail[27];
    size_t n = 0;
    while (n < 26) {
        uint8_t r[32];
        crypto_random(r, sizeof r);
        for (size_t i = 0; i < sizeof r && n < 26; i++)
            if (r[i] < 252) /* 252 = 7 * 36: no modulo bias */
                tail[n++] = alphabet[r[i] % 36];
    }
    tail[26] = '\0';
    snprintf(out, cap, "%s%s", prefix, tail);
}

int template_page_args(struct http_req *req, struct http_resp *resp, size_t dflt, size_t max,
                       size_t *limit, struct str *cursor)
{
    const char *lim_s = http_req_query(req, "limit");
    const char *cur_s = http_req_query(req, "cursor");
    int64_t v;

    *limit = dflt;
    *cursor = str_c(cur_s);
    if (lim_s) {
        if (str_to_i64(str_c(lim_s), &v) < 0 || v < 1 || (uint64_t)v > max) {
            http_resp_error(resp, 400, "invalid_request_error", "limit must be 1 to %zu", max);
            return HR_INVAL;
        }
        *limit = (size_t)v;
    }
    if (cursor->len > CURSOR_MAX) {
        http_resp_error(resp, 400, "invalid_request_error", "cursor too long");
        return HR_INVAL;
    }
    return HR_OK;
}

/* ---- validation ------------------------------------------------------------------------ */

/* utf8_chars: characters (code points) of a valid UTF-8 string. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* ref_check: null, or an object whose `key` is a string of 1..REF_ID_MAX bytes. */
static int ref_check(const cJSON *v, const char *what, const char *key, struct herr *err)
{
    const char *id;
    if (!v || cJSON_IsNull(v))
        return HR_OK;
    id = json_str(v, key);
    if (!cJSON_IsObject(v) || !id || id[0] == '\0' || strlen(id) > REF_ID_MAX)
        return herr_set(err, HR_INVAL, "notification.%s must be null or {\"%s\": \"<id>\"}", what,
                        key);
    return HR_OK;
}

static int routing_method_check(const cJSON *r, int depth, struct herr *err)
{
    const char *method = json_str(r, "method");
    const cJSON *chans = json_member(r, "channels"), *c;

    if (depth > ROUTING_DEPTH_MAX)
        return herr_set(err, HR_INVAL, "notification.routing nests deeper than %d",
                        ROUTING_DEPTH_MAX);
    if (!method || (strcmp(method, "single") != 0 && strcmp(method, "all") != 0))
        return herr_set(err, HR_INVAL, "notification.routing.method must be \"single\" or \"all\"");
    if (!cJSON_IsArray(chans) || cJSON_GetArraySize(chans) > ROUTING_CHANNELS_MAX)
        return herr_set(err, HR_INVAL,
                        "notification.routing.channels must be an array of at most %d items",
                        ROUTING_CHANNELS_MAX);
    cJSON_ArrayForEach(c, chans) {
        if (cJSON_IsString(c)) {
            size_t n = strlen(c->valuestring);
            if (n == 0 || n > ROUTING_CHANNEL_MAX)
                return herr_set(err, HR_INVAL,
                                "notification.routing.channels: a channel is 1 to %d bytes",
                                ROUTING_CHANNEL_MAX);
        } else if (cJSON_IsObject(c)) {
            int rc = routing_method_check(c, depth + 1, err);
            if (rc < 0)
                return rc;
        } else {
            return herr_set(err, HR_INVAL,
                            "notification.routing.channels holds channel names or "
                            "{method, channels} objects");
        }
    }
    return HR_OK;
}

static int routing_check(const cJSON *r, struct herr *err)
{
    const cJSON *sid;
    if (!r || cJSON_IsNull(r))
        return HR_OK;
    if (!cJSON_IsObject(r))
        return herr_set(err, HR_INVAL,
                        "notification.routing must be null, {\"strategy_id\"} or "
                        "{\"method\", \"channels\"}");
    sid = json_member(r, "strategy_id");
    if (sid)
        return ref_check(r, "routing", "strategy_id", err);
    return routing_method_check(r, 1, err);
}

static int tags_check(const cJSON *tags, struct herr *err)
{
    const cJSON *t;
    if (!tags || cJSON_IsNull(tags))
        return HR_OK;
    if (!cJSON_IsArray(tags) || cJSON_GetArraySize(tags) > TAGS_MAX)
        return herr_set(err, HR_INVAL, "notification.tags must be an array of at most %d strings",
                        TAGS_MAX);
    cJSON_ArrayForEach(t, tags) {
        if (!cJSON_IsString(t) || utf8_chars(t->valuestring) > TAG_MAX_CHARS)
            return herr_set(err, HR_INVAL,
                            "notification.tags: each tag is a string of at most %d characters",
                            TAG_MAX_CHARS);
    }
    return HR_OK;
}

/* tracking_check: notification.tracking (open and click tracking of email, off by
 * default; src/engine/tracking.h) is absent, null or {opens?: bool, clicks?: bool};
 * when set, a copy goes into out. */
static int tracking_check(const cJSON *tr, cJSON *out, struct herr *err)
{
    const cJSON *it;
    if (!tr || cJSON_IsNull(tr))
        return HR_OK;
    if (!cJSON_IsObject(tr))
        return herr_set(err, HR_INVAL, "notification.tracking must be an object {opens, clicks}");
    cJSON_ArrayForEach(it, tr)
    {
        if ((strcmp(it->string, "opens") && strcmp(it->string, "clicks")) || !cJSON_IsBool(it))
            return herr_set(err, HR_INVAL,
                            "notification.tracking takes opens and clicks, each true or false");
    }
    cJSON_AddItemToObject(out, "tracking", cJSON_Duplicate(tr, 1));
    return HR_OK;
}

/* dup_or: a copy of v, or `dflt` (taken) when v is absent or null. */
static cJSON *dup_or(const cJSON *v, cJSON *dflt)
{
    if (!v || cJSON_IsNull(v))
        return dflt;
    cJSON_Delete(dflt);
    return cJSON_Duplicate(v, 1);
}

cJSON *template_fields(const cJSON *n, struct herr *err)
{
    const char *name = json_str(n, "name");
    const cJSON *content = json_member(n, "content");
    cJSON *out = NULL;
    struct herr cerr;
    int rc;

    if (!cJSON_IsObject(n)) {
        herr_set(err, HR_INVAL, "notification must be an object");
        goto out;
    }
    if (!name || name[0] == '\0' || utf8_chars(name) > NAME_MAX_CHARS) {
        herr_set(err, HR_INVAL, "notification.name is required: a string of 1 to %d characters",
                 NAME_MAX_CHARS);
        goto out;
    }
    if (tags_check(json_member(n, "tags"), err) < 0 ||
        ref_check(json_member(n, "brand"), "brand", "id", err) < 0 ||
        ref_check(json_member(n, "subscription"), "subscription", "topic_id",
                  err) < 0 ||
        routing_check(json_member(n, "routing"), err) < 0)
        goto out;
    if (!content || cJSON_IsNull(content)) {
        herr_set(err, HR_INVAL, "notification.content is required (Elemental content)");
        goto out;
    }
    herr_clear(&cerr);
    rc = elemental_validate(content, &cerr);
    if (rc < 0) {
        herr_set(err, rc == HR_TOOBIG ? HR_TOOBIG : HR_INVAL, "notification.content: %s",
                 cerr.msg[0] ? cerr.msg : "invalid Elemental content");
        goto out;
    }
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "name", name);
    cJSON_AddItemToObject(out, "tags",
                          dup_or(json_member(n, "tags"), cJSON_CreateArray()));
    for (int i = 2; FIELDS[i]; i++) /* brand, subscription, routing, content */
        cJSON_AddItemToObject(out, FIELDS[i],
                              dup_or(json_member(n, FIELDS[i]),
                                     cJSON_CreateNull()));
    if (tracking_check(json_member(n, "tracking"), out, err) < 0) {
        cJSON_Delete(out);
        out = NULL;
    }
out:
    return out;
}

bool template_same(const cJSON *a, const cJSON *b)
{
    for (int i = 0; FIELDS[i]; i++)
        if (!jp_equal(json_member(a, FIELDS[i]),
                      json_member(b, FIELDS[i])))
            return false;
    return jp_equal(json_member(a, "tracking"),
                    json_member(b, "tracking"));
}

int template_version_parse(const char *s)
{
    int n;
    if (!s || s[0] != 'v' || strlen(s) != 4)
        return 0;
    for (int i = 1; i < 4; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    n = (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    return n >= 1 && n <= TEMPLATE_VERSIONS_MAX ? n : 0;
}

/* ---- documents ------------------------------------------------------------------------- */

/* add_object: append a new object to array arr and return it. */
static cJSON *add_object(cJSON *arr)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToArray(arr, o);
    return o;
}

/* set_item: replace o's member k in place (keeping its position), or append it. Takes v. */
static void set_item(cJSON *o, const char *k, cJSON *v)
{
    if (json_member(o, k))
        cJSON_ReplaceItemInObjectCaseSensitive(o, k, v);
    else
        cJSON_AddItemToObject(o, k, v);
}

static void version_name(int n, char out[16])
{
    snprintf(out, 16, "v%03d", n);
}

/* version_key: "<id>@vNNN" in arena a. */
static struct str version_key(struct arena *a, struct str id, int n)
{
    char *k = arena_sprintf(a, "%.*s@v%03d", STR_FMT(id), n);
    return str_c(k);
}

/* parse_doc: a stored body as a JSON object; HR_IO when it is not one. */
static int parse_doc(const struct doc_rec *d, cJSON **out)
{
    *out = cJSON_ParseWithLength(d->body.p, d->body.len);
    if (cJSON_IsObject(*out))
        return HR_OK;
    cJSON_Delete(*out);
    *out = NULL;
    return HR_IO;
}

/* load: get and parse coll/id, from the transaction t when given, else from s. */
static int load(struct store *s, struct store_txn *t, const char *coll, struct str id,
                struct arena *a, cJSON **out)
{
    struct doc_rec d;
    int rc = t ? store_doc_get_txn(t, coll, id, a, &d) : store_doc_get(s, coll, id, a, &d);
    *out = NULL;
    if (rc < 0)
        return rc;
    return parse_doc(&d, out);
}

static int version_count(const cJSON *draft)
{
    int64_t n = 0;
    if (!json_i64(draft, "version_count", &n) || n < 0 || n > TEMPLATE_VERSIONS_MAX)
        return 0;
    return (int)n;
}

static int64_t published_ms(const cJSON *snap)
{
    int64_t v = 0;
    json_i64(snap, "published", &v);
    return v;
}

static bool archived(const cJSON *draft)
{
    return json_bool(draft, "archived", false);
}

/* view: what a caller sees of a stored draft or snapshot (a copy, caller owns). */
static cJSON *view(const cJSON *doc)
{
    cJSON *v = cJSON_Duplicate(doc, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(v, "archived");
    cJSON_DeleteItemFromObjectCaseSensitive(v, "version_count");
    return v;
}

/* id_string: a JSON string of id (ids are at most RESOURCE_ID_MAX bytes). */
static cJSON *id_string(struct str id)
{
    char b[RESOURCE_ID_MAX + 1];
    str_copy(b, sizeof b, id);
    return cJSON_CreateString(b);
}

static void put_fields(cJSON *dst, const cJSON *fields)
{
    for (int i = 0; FIELDS[i]; i++)
        set_item(dst, FIELDS[i],
                 cJSON_Duplicate(json_member(fields, FIELDS[i]), 1));
    if (json_member(fields, "tracking")) /* only when set */
        set_item(dst, "tracking",
                 cJSON_Duplicate(json_member(fields, "tracking"), 1));
    else
        cJSON_DeleteItemFromObjectCaseSensitive(dst, "tracking");
}

static cJSON *draft_new(struct str id, const cJSON *fields, int64_t now_ms)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddItemToObject(d, "id", id_string(id));
    put_fields(d, fields);
    cJSON_AddStringToObject(d, "state", "DRAFT");
    cJSON_AddNumberToObject(d, "created", (double)now_ms);
    cJSON_AddStringToObject(d, "creator", "api");
    cJSON_AddNumberToObject(d, "updated", (double)now_ms);
    cJSON_AddStringToObject(d, "updater", "api");
    cJSON_AddNullToObject(d, "published_version");
    cJSON_AddFalseToObject(d, "archived");
    cJSON_AddNumberToObject(d, "version_count", 0);
    return d;
}

/* put_doc: serialise and store v; a body over the store's cap is HR_TOOBIG with err. */
static int put_doc(struct store_txn *t, const char *coll, struct str id, const cJSON *v,
                   int64_t now_ms, struct herr *err)
{
    char *s = json_print(v);
    int rc = HR_OK;
    if (strlen(s) > TEMPLATE_BODY_MAX)
        rc = herr_set(err, HR_TOOBIG, "the template is larger than %d bytes", TEMPLATE_BODY_MAX);
    else
        rc = store_doc_put(t, coll, id, str_c(s), now_ms, NULL);
    free(s);
    return rc;
}

/* ---- changes ----------------------------------------------------------------------------- */

enum tpl_op { TPL_CREATE, TPL_REPLACE, TPL_PUBLISH, TPL_ARCHIVE };

struct change_arg {
    enum tpl_op op;
    struct str id;
    const cJSON *fields; /* create/replace: the normalised payload */
    bool publish;        /* also publish (state PUBLISHED, or TPL_PUBLISH) */
    int from_version;    /* publish this snapshot's content instead of the draft's (0: draft) */
    int64_t now_ms;
    cJSON *draft;        /* out: the draft after the change; the caller frees it */
    struct herr err;
};

/* publish: write snapshot n of the draft (with the template fields of `src`, the draft
 * itself or an older snapshot) and point the draft at it. *latest gets the snapshot. */
static int publish(struct store_txn *t, struct change_arg *a, struct arena *ar, cJSON *draft,
                   const cJSON *src, int n, cJSON **latest)
{
    char vname[16];
    cJSON *snap = cJSON_Duplicate(draft, 1);
    int rc;

    version_name(n, vname);
    if (src != draft)
        put_fields(snap, src);
    set_item(snap, "state", cJSON_CreateString("PUBLISHED"));
    set_item(snap, "published_version", cJSON_CreateString(vname));
    set_item(snap, "version_count", cJSON_CreateNumber(n));
    set_item(snap, "version", cJSON_CreateString(vname));
    set_item(snap, "published", cJSON_CreateNumber((double)a->now_ms));
    rc = put_doc(t, TEMPLATES_VERSIONS_COLL, version_key(ar, a->id, n), snap, a->now_ms, &a->err);
    if (rc < 0) {
        cJSON_Delete(snap);
        return rc;
    }
    set_item(draft, "published_version", cJSON_CreateString(vname));
    set_item(draft, "version_count", cJSON_CreateNumber(n));
    *latest = snap;
    return HR_OK;
}

static int change_tx(struct store_txn *t, void *varg)
{
    struct change_arg *a = varg;
    struct arena *ar = arena_new(4096);
    cJSON *draft = NULL, *latest = NULL, *src = NULL;
    int n, rc;

    cJSON_Delete(a->draft); /* in case the store runs fn again */
    a->draft = NULL;
    defcache_changed(); /* routes' cached published versions (engine_template_cached) */
    rc = load(NULL, t, TEMPLATES_COLL, a->id, ar, &draft);
    if (a->op == TPL_CREATE) {
        if (rc == HR_OK) {
            rc = herr_set(&a->err, HR_CONFLICT, "notification %.*s already exists",
                          STR_FMT(a->id));
            goto out;
        }
        if (rc != HR_NOTFOUND)
            goto out;
        draft = draft_new(a->id, a->fields, a->now_ms);
        rc = HR_OK;
    } else if (rc == HR_NOTFOUND || (rc == HR_OK && archived(draft))) {
        rc = herr_set(&a->err, HR_NOTFOUND, "notification %.*s not found", STR_FMT(a->id));
        goto out;
    } else if (rc < 0) {
        goto out;
    }
    n = version_count(draft);
    if (a->op == TPL_REPLACE) {
        put_fields(draft, a->fields);
        set_item(draft, "updated", cJSON_CreateNumber((double)a->now_ms));
        set_item(draft, "updater", cJSON_CreateString("api"));
    } else if (a->op == TPL_ARCHIVE) {
        set_item(draft, "archived", cJSON_CreateTrue());
        set_item(draft, "updated", cJSON_CreateNumber((double)a->now_ms));
        set_item(draft, "updater", cJSON_CreateString("api"));
    }
    if (a->publish) {
        if (a->from_version > n) {
            rc = herr_set(&a->err, HR_NOTFOUND, "notification %.*s has no version v%03d",
                          STR_FMT(a->id), a->from_version);
            goto out;
        }
        if (n >= TEMPLATE_VERSIONS_MAX) {
            rc = herr_set(&a->err, HR_CONFLICT, "notification %.*s already has %d versions",
                          STR_FMT(a->id), TEMPLATE_VERSIONS_MAX);
            goto out;
        }
        if (a->from_version > 0) {
            rc = load(NULL, t, TEMPLATES_VERSIONS_COLL, version_key(ar, a->id, a->from_version),
                      ar, &src);
            if (rc == HR_NOTFOUND)
                rc = herr_set(&a->err, HR_NOTFOUND, "notification %.*s has no version v%03d",
                              STR_FMT(a->id), a->from_version);
            if (rc < 0)
                goto out;
        }
        rc = publish(t, a, ar, draft, src ? src : draft, n + 1, &latest);
        if (rc < 0)
            goto out;
    } else if (n > 0 && a->op != TPL_ARCHIVE) {
        rc = load(NULL, t, TEMPLATES_VERSIONS_COLL, version_key(ar, a->id, n), ar, &latest);
        if (rc < 0)
            goto out;
    }
    if (a->op != TPL_ARCHIVE)
        set_item(draft, "state",
                 cJSON_CreateString(latest && template_same(draft, latest) ? "PUBLISHED" : "DRAFT"));
    rc = put_doc(t, TEMPLATES_COLL, a->id, draft, a->now_ms, &a->err);
    if (rc < 0)
        goto out;
    a->draft = draft;
    draft = NULL;
out:
    cJSON_Delete(draft);
    cJSON_Delete(latest);
    cJSON_Delete(src);
    arena_free(ar);
    return rc;
}

/* run: apply a change; answers resp with the template (200), 204, or the error. */
static void run(struct api_ctx *ctx, struct http_resp *resp, struct change_arg *a, int ok_status)
{
    struct herr err;
    cJSON *v;
    int rc;

    a->now_ms = hclock_now(ctx->clock);
    herr_clear(&a->err);
    herr_clear(&err);
    rc = store_write(ctx->store, change_tx, a, &err);
    defcache_changed(); /* again after the commit: a load that raced it is stale too */
    if (rc < 0) {
        api_error_rc(resp, rc, a->err.msg[0] ? &a->err : &err);
        goto out;
    }
    if (ok_status == 204) {
        resp->status = 204;
        goto out;
    }
    v = view(a->draft);
    http_resp_json(resp, ok_status, v);
    cJSON_Delete(v);
out:
    cJSON_Delete(a->draft);
    a->draft = NULL;
}

static bool id_ok(struct http_req *req, struct http_resp *resp)
{
    if (req->nparams < 1 || !template_id_valid(req->params[0])) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "a notification id is 1 to %d characters of [A-Za-z0-9_.:-]",
                        RESOURCE_ID_MAX);
        return false;
    }
    return true;
}

/* save: POST (id NULL: a new template) and PUT share the body
 * {"notification": {...}, "state"?: "DRAFT"|"PUBLISHED"}. */
static void save(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                 enum tpl_op op)
{
    char idbuf[RESOURCE_ID_NEW_LEN + 1];
    cJSON *body = NULL, *fields = NULL;
    const cJSON *n, *state;
    struct change_arg a;
    struct herr err;

    memset(&a, 0, sizeof a);
    if ((op == TPL_REPLACE && !id_ok(req, resp)) || api_parse_json(req, resp, &body) < 0)
        goto out;
    n = json_member(body, "notification");
    if (!cJSON_IsObject(n)) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "body must be {\"notification\": {name, content, ...}, \"state\"?}");
        goto out;
    }
    state = json_member(body, "state");
    if (state && !cJSON_IsNull(state) &&
        (!cJSON_IsString(state) || (strcmp(state->valuestring, "DRAFT") != 0 &&
                                    strcmp(state->valuestring, "PUBLISHED") != 0))) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "state must be \"DRAFT\" or \"PUBLISHED\"");
        goto out;
    }
    herr_clear(&err);
    fields = template_fields(n, &err);
    if (!fields) {
        api_error_rc(resp, err.rc < 0 ? err.rc : HR_INVAL, &err);
        goto out;
    }
    if (op == TPL_CREATE) {
        template_id_new("nt_", idbuf, sizeof idbuf);
        a.id = str_c(idbuf);
    } else {
        a.id = req->params[0];
    }
    a.op = op;
    a.fields = fields;
    a.publish = cJSON_IsString(state) && strcmp(state->valuestring, "PUBLISHED") == 0;
    run(ctx, resp, &a, 200);
out:
    cJSON_Delete(fields);
    cJSON_Delete(body);
}

void api_notification_create(void *ctx, struct http_req *req, struct http_resp *resp)
{
    save(ctx, req, resp, TPL_CREATE);
}

void api_notification_replace(void *ctx, struct http_req *req, struct http_resp *resp)
{
    save(ctx, req, resp, TPL_REPLACE);
}

void api_notification_archive(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct change_arg a;
    if (!id_ok(req, resp))
        return;
    memset(&a, 0, sizeof a);
    a.op = TPL_ARCHIVE;
    a.id = req->params[0];
    run(ctx, resp, &a, 204);
}

void api_notification_publish(void *ctx, struct http_req *req, struct http_resp *resp)
{
    cJSON *body = NULL;
    const cJSON *ver;
    struct change_arg a;

    memset(&a, 0, sizeof a);
    if (!id_ok(req, resp))
        goto out;
    if (req->body.len > 0) {
        if (api_parse_json(req, resp, &body) < 0)
            goto out;
        ver = json_member(body, "version");
        if (ver && !cJSON_IsNull(ver)) {
            a.from_version = cJSON_IsString(ver) ? template_version_parse(ver->valuestring) : 0;
            if (a.from_version == 0) {
                http_resp_error(resp, 400, "invalid_request_error",
                                "version must be \"v001\" to \"v%03d\"", TEMPLATE_VERSIONS_MAX);
                goto out;
            }
        }
    }
    a.op = TPL_PUBLISH;
    a.id = req->params[0];
    a.publish = true;
    run(ctx, resp, &a, 200);
out:
    cJSON_Delete(body);
}

/* ---- reads ----------------------------------------------------------------------------- */

/* load_draft: the live (not archived) draft of id; 404 answered on resp when absent. */
static int load_draft(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                      cJSON **out)
{
    int rc = load(ctx->store, NULL, TEMPLATES_COLL, req->params[0], req->arena, out);
    if (rc == HR_OK && archived(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        rc = HR_NOTFOUND;
    }
    if (rc == HR_NOTFOUND)
        http_resp_error(resp, 404, "invalid_request_error", "notification %.*s not found",
                        STR_FMT(req->params[0]));
    else if (rc < 0)
        api_error_rc(resp, rc, NULL);
    return rc;
}

void api_notification_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    const char *version = http_req_query(req, "version");
    cJSON *draft = NULL, *snap = NULL, *v = NULL;
    int n = 0, rc;

    if (!id_ok(req, resp))
        return;
    if (!version)
        version = "published"; /* Courier's default (the SDK documents it) */
    if (version && strcmp(version, "draft") != 0 && strcmp(version, "published") != 0) {
        n = template_version_parse(version);
        if (n == 0) {
            http_resp_error(resp, 400, "invalid_request_error",
                            "version must be draft, published or v001 to v%03d",
                            TEMPLATE_VERSIONS_MAX);
            goto out;
        }
    }
    if (load_draft(ctx, req, resp, &draft) < 0)
        goto out;
    if (strcmp(version, "draft") == 0) {
        v = view(draft);
        http_resp_json(resp, 200, v);
        goto out;
    }
    if (n == 0)
        n = version_count(draft);
    if (n == 0 || n > version_count(draft)) {
        http_resp_error(resp, 404, "invalid_request_error",
                        "notification %.*s has no %s version (its draft: ?version=draft)",
                        STR_FMT(req->params[0]), version);
        goto out;
    }
    rc = load(ctx->store, NULL, TEMPLATES_VERSIONS_COLL, version_key(req->arena, req->params[0], n),
              req->arena, &snap);
    if (rc < 0) {
        if (rc == HR_NOTFOUND)
            http_resp_error(resp, 404, "invalid_request_error",
                            "notification %.*s has no %s version", STR_FMT(req->params[0]),
                            version);
        else
            api_error_rc(resp, rc, NULL);
        goto out;
    }
    v = view(snap);
    http_resp_json(resp, 200, v);
out:
    cJSON_Delete(v);
    cJSON_Delete(snap);
    cJSON_Delete(draft);
}

/* summary: Courier's NotificationTemplateSummary of draft d (new object). The optional
 * "updated" and "updater" are left out when absent (the SDK types them number/string,
 * not null); herald's "published_version" is null until the first publish. */
static cJSON *summary(const cJSON *d)
{
    static const char *const keys[] = {"id", "name", "tags", "state", "created", "creator",
                                       "published_version", "updated", "updater", NULL};
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; keys[i]; i++) {
        const cJSON *v = json_member(d, keys[i]);
        if (v && !cJSON_IsNull(v))
            cJSON_AddItemToObject(o, keys[i], cJSON_Duplicate(v, 1));
        else if (i < 7)
            cJSON_AddItemToObject(o, keys[i], cJSON_CreateNull());
    }
    if (!cJSON_IsString(json_member(o, "creator")))
        cJSON_ReplaceItemInObjectCaseSensitive(o, "creator", cJSON_CreateString("api"));
    return o;
}

void api_notification_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct str after, last = STR_NULL;
    size_t limit, count = 0;
    bool more = false, done = false;
    cJSON *out = cJSON_CreateObject(), *results, *paging;
    const char *notes;
    int rc = HR_OK;

    if (template_page_args(req, resp, LIST_DEFAULT, LIST_MAX, &limit, &after) < 0)
        goto out;
    /* Courier's other filters: no template is mapped to an event here (events run
     * automations), and templates carry no notes, so notes=true adds nothing */
    if (http_req_query(req, "event_id")) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "the event_id filter is not supported yet (events run automations)");
        goto out;
    }
    notes = http_req_query(req, "notes");
    if (notes && strcmp(notes, "true") != 0 && strcmp(notes, "false") != 0) {
        http_resp_error(resp, 400, "invalid_request_error", "notes must be true or false");
        goto out;
    }
    results = cJSON_CreateArray();
    /* archived drafts are skipped, so read in batches until the page is full; each
     * batch's bodies live in a scratch arena (a template may be 1 MiB) */
    while (!done) {
        struct arena *scratch = arena_new(64 * 1024);
        struct doc_rec *rows = NULL;
        size_t n = 0;
        rc = store_doc_list(ctx->store, TEMPLATES_COLL, STR_NULL, after, limit + 1, scratch, &rows,
                            &n);
        for (size_t i = 0; rc == HR_OK && i < n && !done; i++) {
            cJSON *d = NULL;
            if (parse_doc(&rows[i], &d) < 0 || archived(d)) {
                cJSON_Delete(d);
                continue;
            }
            if (count == limit) {
                more = done = true;
            } else {
                cJSON_AddItemToArray(results, summary(d));
                last = arena_str(req->arena, rows[i].id);
                count++;
            }
            cJSON_Delete(d);
        }
        if (rc == HR_OK && n > 0)
            after = arena_str(req->arena, rows[n - 1].id);
        if (rc < 0 || n < limit + 1)
            done = true;
        arena_free(scratch);
    }
    if (rc < 0) {
        cJSON_Delete(results);
        api_error_rc(resp, rc, NULL);
        goto out;
    }
    paging = cJSON_AddObjectToObject(out, "paging");
    if (more)
        cJSON_AddStringToObject(paging, "cursor", last.p);
    else
        cJSON_AddNullToObject(paging, "cursor");
    cJSON_AddBoolToObject(paging, "more", more);
    cJSON_AddItemToObject(out, "results", results);
    http_resp_json(resp, 200, out);
out:
    cJSON_Delete(out);
}

/* GET /notifications/:id/versions: the draft first, then vN (the published one) down to
 * v1. The cursor names the first version of the next page ("vNNN"). */
void api_notification_versions(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct str cursor;
    size_t limit, count = 0;
    cJSON *draft = NULL, *out = NULL, *list, *paging;
    int n, k, next = 0;

    if (!id_ok(req, resp) ||
        template_page_args(req, resp, VERSIONS_LIMIT_MAX, VERSIONS_LIMIT_MAX, &limit, &cursor) < 0 ||
        load_draft(ctx, req, resp, &draft) < 0)
        goto out;
    n = version_count(draft);
    k = n;
    out = cJSON_CreateObject();
    paging = cJSON_AddObjectToObject(out, "paging");
    list = cJSON_AddArrayToObject(out, "versions");
    if (cursor.len > 0) {
        char cb[16];
        str_copy(cb, sizeof cb, cursor);
        k = cursor.len == 4 ? template_version_parse(cb) : 0;
        if (k == 0 || k > n) {
            http_resp_error(resp, 400, "invalid_request_error", "invalid cursor");
            goto out;
        }
    } else {
        cJSON *e = add_object(list);
        const cJSON *upd = json_member(draft, "updated");
        const char *state = json_str(draft, "state");
        cJSON_AddStringToObject(e, "version", "draft");
        cJSON_AddItemToObject(e, "created", upd ? cJSON_Duplicate(upd, 1) : cJSON_CreateNull());
        cJSON_AddStringToObject(e, "creator", "api");
        cJSON_AddBoolToObject(e, "has_changes", !state || strcmp(state, "PUBLISHED") != 0);
        count++;
    }
    for (; k >= 1 && count < limit; k--, count++) {
        cJSON *snap = NULL, *e;
        char name[24];
        int rc = load(ctx->store, NULL, TEMPLATES_VERSIONS_COLL,
                      version_key(req->arena, req->params[0], k), req->arena, &snap);
        if (rc < 0) {
            api_error_rc(resp, rc == HR_NOTFOUND ? HR_IO : rc, NULL);
            goto out;
        }
        snprintf(name, sizeof name, k == n ? "published:v%03d" : "v%03d", k);
        e = add_object(list);
        cJSON_AddStringToObject(e, "version", name);
        cJSON_AddNumberToObject(e, "created", (double)published_ms(snap));
        cJSON_AddStringToObject(e, "creator", "api");
        cJSON_Delete(snap);
    }
    next = k;
    if (next >= 1) {
        char cb[16];
        version_name(next, cb);
        cJSON_AddStringToObject(paging, "cursor", cb);
    } else {
        cJSON_AddNullToObject(paging, "cursor");
    }
    cJSON_AddBoolToObject(paging, "more", next >= 1);
    http_resp_json(resp, 200, out);
out:
    cJSON_Delete(out);
    cJSON_Delete(draft);
}

