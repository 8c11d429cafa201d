/* lists.c: Courier's Lists API and a profile's list subscriptions.
 *   GET    /lists?cursor&pattern                 -> {items: [{id, name, created, updated, subscriber_count}], paging}
 *   GET    /lists/:id                            -> the list with its subscriber_count (404 when absent or deleted)
 *   PUT    /lists/:id {name, preferences?}       -> create or replace; 204
 *   DELETE /lists/:id                            -> mark deleted (subscriptions kept); 204
 *   PUT    /lists/:id/restore                    -> undo the delete; 204
 *   GET    /lists/:id/subscriptions?cursor       -> {items: [{recipientId, created, preferences?}], paging}
 *   POST   /lists/:id/subscriptions {recipients} -> add (creates the list); 204
 *   PUT    /lists/:id/subscriptions {recipients} -> replace every subscription; 204
 *   PUT    /lists/:id/subscriptions/:user {preferences?} -> subscribe one (creates the list); 204
 *   DELETE /lists/:id/subscriptions/:user        -> unsubscribe one; 204
 *   GET    /profiles/:id/lists?cursor            -> {paging, results: [{id, name, created, updated, preferences?}]}
 *   POST   /profiles/:id/lists {lists: [{listId, preferences?}]} -> {status: "SUCCESS"}
 *   DELETE /profiles/:id/lists                   -> {status: "SUCCESS"}
 * Ids are checked before anything is stored (store_list_id_valid); a call carries at most
 * LIST_BATCH_MAX recipients or lists, checked whole before one transaction stores them all. */
#include "api.h"
#include "templates.h"

#include "../util/json.h"
#include "../util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_BATCH_MAX 1000   /* recipients (or lists) in one call */
#define LIST_PAGE_DEFAULT 20
#define LIST_PAGE_MAX 100
#define LIST_NAME_MAX 256     /* bytes */

/* ---- helpers ----------------------------------------------------------------------------- */

static bool list_id_ok(struct str id, struct http_resp *resp)
{
    if (store_list_id_valid(id))
        return true;
    http_resp_error(resp, 400, "invalid_request_error",
                    "a list id is 1 to %d bytes of up to %d dot-separated parts, each of "
                    "[A-Za-z0-9_:@+-]",
                    LIST_ID_MAX, LIST_PARTS_MAX);
    return false;
}

static bool user_id_ok(struct str id, struct http_resp *resp)
{
    if (id.len > 0 && id.len <= LIST_USER_ID_MAX)
        return true;
    http_resp_error(resp, 400, "invalid_request_error", "a user id is 1 to %d bytes",
                    LIST_USER_ID_MAX);
    return false;
}

static void not_found(struct http_resp *resp, struct str id)
{
    http_resp_error(resp, 404, "invalid_request_error", "list %.*s not found", STR_FMT(id));
}

/* prefs_text: the `preferences` member of v (absent or null: empty) as JSON text into *out
 * (owned by the caller, NULL when empty). HR_INVAL with a message on resp otherwise. */
static int prefs_text(const cJSON *v, const char *where, struct http_resp *resp, char **out)
{
    const cJSON *p = json_member(v, "preferences");
    *out = NULL;
    if (!p || cJSON_IsNull(p))
        return HR_OK;
    if (!cJSON_IsObject(p)) {
        http_resp_error(resp, 400, "invalid_request_error", "%s.preferences must be an object",
                        where);
        return HR_INVAL;
    }
    *out = json_print(p);
    if (strlen(*out) > LIST_PREFS_MAX) {
        free(*out);
        *out = NULL;
        http_resp_error(resp, 400, "invalid_request_error",
                        "%s.preferences is larger than %d bytes", where, LIST_PREFS_MAX);
        return HR_INVAL;
    }
    return HR_OK;
}

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char iso[32];
    time_fmt_iso(ms, iso, sizeof iso);
    cJSON_AddStringToObject(o, name, iso);
}

/* add_prefs: o.preferences = the stored JSON text, when there is one. */
static void add_prefs(cJSON *o, struct str prefs)
{
    cJSON *p = prefs.len ? cJSON_ParseWithLength(prefs.p, prefs.len) : NULL;
    if (p)
        cJSON_AddItemToObject(o, "preferences", p);
}

static cJSON *list_json(const struct list_rec *l)
{
    cJSON *o = cJSON_CreateObject();
    char id[LIST_ID_MAX + 1], name[LIST_NAME_MAX * 4 + 1];
    str_copy(id, sizeof id, l->id);
    str_copy(name, sizeof name, l->name);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "name", name);
    add_time(o, "created", l->created_ms);
    add_time(o, "updated", l->updated_ms);
    return o;
}

/* paging: Courier's {cursor, more}; the cursor is the last id of a full page. */
static void add_paging(cJSON *out, bool more, struct str last)
{
    cJSON *paging = cJSON_AddObjectToObject(out, "paging");
    char cur[LIST_ID_MAX + 1];
    if (more) {
        str_copy(cur, sizeof cur, last);
        cJSON_AddStringToObject(paging, "cursor", cur);
    } else {
        cJSON_AddNullToObject(paging, "cursor");
    }
    cJSON_AddBoolToObject(paging, "more", more);
}

/* ---- one transaction for every subscription change -------------------------------------- */

enum sub_op {
    SUB_ADD,        /* list_id + items: subscribe each recipient */
    SUB_REPLACE,    /* list_id + items: the list's subscriptions become exactly these */
    SUB_ONE,        /* list_id + user_id (+ prefs) */
    SUB_REMOVE,     /* list_id + user_id */
    SUB_USER_ADD,   /* user_id + items: subscribe the user to each list */
    SUB_USER_CLEAR, /* user_id: every list subscription of the user ends */
    LIST_PUT,       /* list_id + name + prefs */
    LIST_DELETE,    /* list_id */
    LIST_RESTORE,   /* list_id */
};

struct sub_item {
    struct str id;      /* user id (list ops) or list id (user ops) */
    char *prefs;        /* JSON text or NULL; owned */
    size_t at;          /* its index in the request: a repeated id's last entry wins */
};

struct sub_arg {
    enum sub_op op;
    struct str list_id, user_id, name;
    char *prefs;            /* SUB_ONE / LIST_PUT; owned */
    struct sub_item *items; /* owned */
    size_t n;
    int64_t now_ms;
    struct herr err;
};

/* live_list: HR_NOTFOUND (with a message) when the list is deleted; with create, an
 * absent list is created (as Courier does on subscribe), else HR_NOTFOUND too. */
static int live_list(struct store_txn *t, struct sub_arg *a, struct str id, bool create)
{
    struct arena *ar = arena_new(1024);
    struct list_rec l;
    int rc = store_list_get_txn(t, id, ar, &l);
    if (rc == HR_OK && l.deleted_ms)
        rc = herr_set(&a->err, HR_NOTFOUND, "list %.*s was deleted: restore it first",
                      STR_FMT(id));
    else if (rc == HR_NOTFOUND && create)
        rc = store_list_ensure(t, id, a->now_ms);
    else if (rc == HR_NOTFOUND)
        herr_set(&a->err, rc, "list %.*s not found", STR_FMT(id));
    arena_free(ar);
    return rc;
}

static int sub_tx(struct store_txn *t, void *varg)
{
    struct sub_arg *a = varg;
    int rc = HR_OK;

    herr_clear(&a->err);
    switch (a->op) {
    case SUB_ADD:
    case SUB_REPLACE:
        rc = live_list(t, a, a->list_id, true);
        if (rc == HR_OK && a->op == SUB_REPLACE)
            rc = store_list_sub_delete(t, a->list_id, STR_NULL, NULL);
        for (size_t i = 0; i < a->n && rc == HR_OK; i++)
            rc = store_list_sub_put(t, a->list_id, a->items[i].id, str_c(a->items[i].prefs),
                                    a->now_ms);
        break;
    case SUB_ONE:
        rc = live_list(t, a, a->list_id, true);
        if (rc == HR_OK)
            rc = store_list_sub_put(t, a->list_id, a->user_id, str_c(a->prefs), a->now_ms);
        break;
    case SUB_REMOVE:
        rc = live_list(t, a, a->list_id, false);
        if (rc == HR_OK) {
            rc = store_list_sub_delete(t, a->list_id, a->user_id, NULL);
            if (rc == HR_NOTFOUND)
                rc = HR_OK; /* not subscribed: already the wanted state */
        }
        break;
    case SUB_USER_ADD:
        for (size_t i = 0; i < a->n && rc == HR_OK; i++) {
            rc = live_list(t, a, a->items[i].id, true);
            if (rc == HR_OK)
                rc = store_list_sub_put(t, a->items[i].id, a->user_id,
                                        str_c(a->items[i].prefs), a->now_ms);
        }
        break;
    case SUB_USER_CLEAR:
        rc = store_list_sub_delete(t, STR_NULL, a->user_id, NULL);
        break;
    case LIST_PUT:
        rc = store_list_put(t, a->list_id, a->name, str_c(a->prefs), a->now_ms);
        break;
    case LIST_DELETE:
    case LIST_RESTORE:
        rc = store_list_set_deleted(t, a->list_id, a->op == LIST_DELETE ? a->now_ms : 0,
                                    a->now_ms);
        if (rc == HR_NOTFOUND)
            herr_set(&a->err, rc, "list %.*s not found", STR_FMT(a->list_id));
        break;
    }
    return rc;
}

static void sub_arg_cleanup(struct sub_arg *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->items[i].prefs);
    free(a->items);
    free(a->prefs);
    a->items = NULL;
    a->prefs = NULL;
    a->n = 0;
}

/* run: store the change in one transaction; answer 204 (or `ok_body` with 200) or the
 * error. a stays the caller's. */
static void run(struct api_ctx *ctx, struct http_resp *resp, struct sub_arg *a,
                const char *ok_body)
{
    struct herr err;
    int rc;
    herr_clear(&err);
    a->now_ms = hclock_now(ctx->clock);
    rc = store_write(ctx->store, sub_tx, a, &err);
    if (rc < 0)
        api_error_rc(resp, rc, a->err.msg[0] ? &a->err : &err);
    else if (ok_body)
        http_resp_raw(resp, 200, "application/json", str_c(ok_body));
    else
        resp->status = 204;
}

/* item_cmp: by id, then by request order. */
static int item_cmp(const void *a, const void *b)
{
    const struct sub_item *x = a, *y = b;
    size_t n = x->id.len < y->id.len ? x->id.len : y->id.len;
    int c = memcmp(x->id.p, y->id.p, n);
    if (c == 0)
        c = (x->id.len > y->id.len) - (x->id.len < y->id.len);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* read_items: body[member] is an array of 1..LIST_BATCH_MAX objects each with a string
 * id under id_key (checked with list ids or user ids) and optional preferences, into
 * a->items, sorted by id (request order among equal ids): one list's subscription rows
 * are then taken in (list id, user id) order, the order an events job takes them in (see
 * the lock order in src/ingest/ingest.c), so the two never deadlock on PostgreSQL. On
 * failure answers 400 (413 past the cap) and returns < 0. */
static int read_items(const cJSON *body, const char *member, const char *id_key, bool list_ids,
                      struct sub_arg *a, struct http_resp *resp)
{
    const cJSON *arr = json_member(body, member), *it;
    int n = cJSON_GetArraySize(arr);
    char where[64];

    if (!cJSON_IsArray(arr)) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "%s is required: an array of {\"%s\": string, \"preferences\"?: object}",
                        member, id_key);
        return HR_INVAL;
    }
    if (n > LIST_BATCH_MAX) {
        http_resp_error(resp, 413, "invalid_request_error",
                        "%s holds %d entries; at most %d per call (nothing was stored)", member,
                        n, LIST_BATCH_MAX);
        return HR_TOOBIG;
    }
    a->items = xcalloc((size_t)n + 1, sizeof *a->items);
    cJSON_ArrayForEach(it, arr) {
        const char *id = json_str(it, id_key);
        struct sub_item *si = &a->items[a->n];
        snprintf(where, sizeof where, "%s[%zu]", member, a->n);
        if (!cJSON_IsObject(it) || !id) {
            http_resp_error(resp, 400, "invalid_request_error", "%s.%s must be a string", where,
                            id_key);
            return HR_INVAL;
        }
        si->id = str_c(id);
        if (list_ids ? !list_id_ok(si->id, resp) : !user_id_ok(si->id, resp))
            return HR_INVAL;
        if (prefs_text(it, where, resp, &si->prefs) < 0)
            return HR_INVAL;
        si->at = a->n++;
    }
    if (a->n > 1)
        qsort(a->items, a->n, sizeof *a->items, item_cmp);
    return HR_OK;
}

/* add_count: o.subscriber_count = the list's member count (herald's own field). Returns
 * 0, or the store's error (o is left without it). */
static int add_count(struct api_ctx *ctx, cJSON *o, struct str id)
{
    int64_t n = 0;
    int rc = store_list_sub_count(ctx->store, id, &n);
    if (rc == HR_OK)
        cJSON_AddNumberToObject(o, "subscriber_count", (double)n);
    return rc;
}

/* ---- /lists --------------------------------------------------------------------------- */

void api_lists_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct list_rec *rows = NULL;
    struct str cursor, pattern = str_c(http_req_query(req, "pattern"));
    size_t limit, n = 0;
    cJSON *out, *items;
    int rc;

    if (template_page_args(req, resp, LIST_PAGE_DEFAULT, LIST_PAGE_MAX, &limit, &cursor) < 0)
        return;
    if (pattern.len && !store_list_pattern_valid(pattern)) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "pattern is a list id whose parts may be * (one part) or, last, ** "
                        "(one or more parts), with at least one literal part");
        return;
    }
    rc = store_list_list(ctx->store, pattern, cursor, limit + 1, req->arena, &rows, &n);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    out = cJSON_CreateObject();
    items = cJSON_AddArrayToObject(out, "items");
    for (size_t i = 0; i < n && i < limit && rc >= 0; i++) {
        cJSON *it = list_json(&rows[i]);
        cJSON_AddItemToArray(items, it);
        rc = add_count(ctx, it, rows[i].id);
    }
    if (rc < 0) {
        cJSON_Delete(out);
        api_error_rc(resp, rc, NULL);
        return;
    }
    add_paging(out, n > limit, n > limit ? rows[limit - 1].id : STR_NULL);
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}

void api_list_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct list_rec l;
    cJSON *o;
    int rc;

    if (!list_id_ok(req->params[0], resp))
        return;
    rc = store_list_get(ctx->store, req->params[0], req->arena, &l);
    if (rc == HR_NOTFOUND || (rc == HR_OK && l.deleted_ms)) {
        not_found(resp, req->params[0]);
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    o = list_json(&l);
    add_prefs(o, l.preferences);
    rc = add_count(ctx, o, l.id);
    if (rc < 0) {
        cJSON_Delete(o);
        api_error_rc(resp, rc, NULL);
        return;
    }
    http_resp_json(resp, 200, o);
    cJSON_Delete(o);
}

void api_list_put(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct sub_arg a = {.op = LIST_PUT};
    cJSON *body = NULL;
    const char *name;

    if (!list_id_ok(req->params[0], resp) || api_parse_json(req, resp, &body) < 0)
        goto out;
    name = json_str(body, "name");
    if (!name || !name[0] || strlen(name) > LIST_NAME_MAX) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "name is required: a string of 1 to %d bytes", LIST_NAME_MAX);
        goto out;
    }
    if (prefs_text(body, "body", resp, &a.prefs) < 0)
        goto out;
    a.list_id = req->params[0];
    a.name = str_c(name);
    run(ctx, resp, &a, NULL);
out:
    sub_arg_cleanup(&a);
    cJSON_Delete(body);
}

static void list_flag(void *ctx, struct http_req *req, struct http_resp *resp, enum sub_op op)
{
    struct sub_arg a = {.op = op};
    if (!list_id_ok(req->params[0], resp))
        return;
    a.list_id = req->params[0];
    run(ctx, resp, &a, NULL);
}

void api_list_delete(void *ctx, struct http_req *req, struct http_resp *resp)
{
    list_flag(ctx, req, resp, LIST_DELETE);
}

void api_list_restore(void *ctx, struct http_req *req, struct http_resp *resp)
{
    list_flag(ctx, req, resp, LIST_RESTORE);
}

/* ---- /lists/:id/subscriptions ------------------------------------------------------------ */

void api_list_subs_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct list_sub_rec *rows = NULL;
    struct list_rec l;
    struct str cursor;
    size_t limit, n = 0;
    cJSON *out, *items;
    int rc;

    if (!list_id_ok(req->params[0], resp) ||
        template_page_args(req, resp, LIST_PAGE_DEFAULT, LIST_PAGE_MAX, &limit, &cursor) < 0)
        return;
    rc = store_list_get(ctx->store, req->params[0], req->arena, &l);
    if (rc == HR_NOTFOUND || (rc == HR_OK && l.deleted_ms)) {
        not_found(resp, req->params[0]);
        return;
    }
    if (rc == HR_OK)
        rc = store_list_sub_list(ctx->store, req->params[0], STR_NULL, cursor, limit + 1,
                                 req->arena, &rows, &n);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    out = cJSON_CreateObject();
    items = cJSON_AddArrayToObject(out, "items");
    for (size_t i = 0; i < n && i < limit; i++) {
        cJSON *o = cJSON_CreateObject();
        char uid[LIST_USER_ID_MAX + 1];
        str_copy(uid, sizeof uid, rows[i].user_id);
        cJSON_AddStringToObject(o, "recipientId", uid);
        add_time(o, "created", rows[i].created_ms);
        add_prefs(o, rows[i].preferences);
        cJSON_AddItemToArray(items, o);
    }
    add_paging(out, n > limit, n > limit ? rows[limit - 1].user_id : STR_NULL);
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}

static void subs_change(void *ctx, struct http_req *req, struct http_resp *resp, enum sub_op op)
{
    struct sub_arg a = {.op = op};
    cJSON *body = NULL;

    if (!list_id_ok(req->params[0], resp) || api_parse_json(req, resp, &body) < 0 ||
        read_items(body, "recipients", "recipientId", false, &a, resp) < 0)
        goto out;
    a.list_id = req->params[0];
    run(ctx, resp, &a, NULL);
out:
    sub_arg_cleanup(&a);
    cJSON_Delete(body);
}

void api_list_subs_add(void *ctx, struct http_req *req, struct http_resp *resp)
{
    subs_change(ctx, req, resp, SUB_ADD);
}

void api_list_subs_replace(void *ctx, struct http_req *req, struct http_resp *resp)
{
    subs_change(ctx, req, resp, SUB_REPLACE);
}

void api_list_sub_put(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct sub_arg a = {.op = SUB_ONE};
    cJSON *body = NULL;

    if (!list_id_ok(req->params[0], resp) || !user_id_ok(req->params[1], resp))
        goto out;
    /* the body is optional: Segment's audienceToList sends none */
    if (req->body.len > 0 && (api_parse_json(req, resp, &body) < 0 ||
                              prefs_text(body, "body", resp, &a.prefs) < 0))
        goto out;
    a.list_id = req->params[0];
    a.user_id = req->params[1];
    run(ctx, resp, &a, NULL);
out:
    sub_arg_cleanup(&a);
    cJSON_Delete(body);
}

void api_list_sub_delete(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct sub_arg a = {.op = SUB_REMOVE};
    if (!list_id_ok(req->params[0], resp) || !user_id_ok(req->params[1], resp))
        return;
    a.list_id = req->params[0];
    a.user_id = req->params[1];
    run(ctx, resp, &a, NULL);
}

/* ---- /profiles/:id/lists ------------------------------------------------------------------ */

void api_profile_lists_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct list_sub_rec *rows = NULL;
    struct str cursor;
    size_t limit, n = 0;
    cJSON *out, *results;
    int rc;

    if (!user_id_ok(req->params[0], resp) ||
        template_page_args(req, resp, LIST_PAGE_DEFAULT, LIST_PAGE_MAX, &limit, &cursor) < 0)
        return;
    rc = store_list_sub_list(ctx->store, STR_NULL, req->params[0], cursor, limit + 1, req->arena,
                             &rows, &n);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    out = cJSON_CreateObject();
    add_paging(out, n > limit, n > limit ? rows[limit - 1].list.id : STR_NULL);
    results = cJSON_AddArrayToObject(out, "results");
    for (size_t i = 0; i < n && i < limit; i++) {
        cJSON *o = list_json(&rows[i].list);
        add_prefs(o, rows[i].preferences);
        cJSON_AddItemToArray(results, o);
    }
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}

void api_profile_lists_subscribe(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct sub_arg a = {.op = SUB_USER_ADD};
    cJSON *body = NULL;

    if (!user_id_ok(req->params[0], resp) || api_parse_json(req, resp, &body) < 0 ||
        read_items(body, "lists", "listId", true, &a, resp) < 0)
        goto out;
    a.user_id = req->params[0];
    run(ctx, resp, &a, "{\"status\":\"SUCCESS\"}");
out:
    sub_arg_cleanup(&a);
    cJSON_Delete(body);
}

void api_profile_lists_delete(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct sub_arg a = {.op = SUB_USER_CLEAR};
    if (!user_id_ok(req->params[0], resp))
        return;
    a.user_id = req->params[0];
    run(ctx, resp, &a, "{\"status\":\"SUCCESS\"}");
}
