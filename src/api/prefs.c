/* prefs.c: subscription topics, users' preferences (Courier's users.preferences.*) and the
 * public one-click unsubscribe routes (RFC 8058).
 *   GET    /preferences/topics?cursor            -> {items: [topic], paging}
 *   GET    /preferences/topics/:id               -> topic {topic_id, topic_name, default_status}
 *   PUT    /preferences/topics/:id {topic_name?, default_status} -> the topic
 *   DELETE /preferences/topics/:id               -> 204
 *   GET    /users/:id/preferences                -> {items: [TopicPreference], paging}
 *   GET    /users/:id/preferences/:topic         -> {topic: TopicPreference}
 *   PUT    /users/:id/preferences/:topic {topic: {status, has_custom_routing?,
 *          custom_routing?}}                     -> {message: "success"}; opting out of a
 *          REQUIRED topic is 400, as Courier answers
 *   GET    /u/:token   (public) the hosted preference page: plain HTML, a form per topic
 *   POST   /u/:token   (public) form body List-Unsubscribe=One-Click (urlencoded, or a
 *          multipart/form-data part, both of which RFC 8058 allows): opt out of the
 *          token's topic; topic=<id>&status=OPTED_IN|OPTED_OUT (the page's forms): set
 *          that topic for the token's user and show the page again.
 * A bad, forged, truncated or expired token is 404 {"message": "not found"}: nothing says
 * which part was wrong. The logic lives in src/engine/prefs.c. */
#include "api.h"

#include "../engine/prefs.h"
#include "../render/layout.h"
#include "../util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOPICS_PAGE 50
#define FORM_MAX 1024     /* bytes of a /u form body */
#define PAGE_CSP                                                                          \
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "               \
    "base-uri 'none'; frame-ancestors 'none'"

/* ---- helpers ----------------------------------------------------------------------------- */

static bool topic_id_ok(struct str id, struct http_resp *resp)
{
    if (prefs_topic_id_valid(id))
        return true;
    http_resp_error(resp, 400, "invalid_request_error",
                    "a topic id is 1 to %d characters of [A-Za-z0-9_.:-]", PREFS_TOPIC_ID_MAX);
    return false;
}

static bool user_id_ok(struct str id, struct http_resp *resp)
{
    if (id.len > 0 && id.len <= PREFS_USER_ID_MAX && !memchr(id.p, 0, id.len))
        return true;
    http_resp_error(resp, 400, "invalid_request_error", "a user id is 1 to %d bytes",
                    PREFS_USER_ID_MAX);
    return false;
}

static cJSON *topic_json(struct str id, const cJSON *doc)
{
    cJSON *o = cJSON_CreateObject();
    char tid[PREFS_TOPIC_ID_MAX + 1];
    const char *name = json_str(doc, "topic_name"), *st = json_str(doc, "default_status");
    str_copy(tid, sizeof tid, id);
    cJSON_AddStringToObject(o, "topic_id", tid);
    cJSON_AddStringToObject(o, "topic_name", name ? name : tid);
    cJSON_AddStringToObject(o, "default_status", st ? st : "OPTED_IN");
    return o;
}

static void answer_json(struct http_resp *resp, int status, cJSON *v)
{
    http_resp_json(resp, status, v);
    cJSON_Delete(v);
}

/* ---- topics ------------------------------------------------------------------------------ */

void api_topics_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    const char *cursor = http_req_query(req, "cursor");
    struct doc_rec *docs;
    size_t n = 0;
    cJSON *out, *items, *paging;
    int rc = store_doc_list(ctx->store, PREFS_COLL_TOPICS, STR_NULL, str_c(cursor),
                            TOPICS_PAGE, req->arena, &docs, &n);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    out = cJSON_CreateObject();
    items = cJSON_AddArrayToObject(out, "items");
    for (size_t i = 0; i < n; i++) {
        cJSON *d = cJSON_ParseWithLength(docs[i].body.p, docs[i].body.len);
        cJSON_AddItemToArray(items, topic_json(docs[i].id, d));
        cJSON_Delete(d);
    }
    paging = cJSON_AddObjectToObject(out, "paging");
    if (n == TOPICS_PAGE) {
        char last[PREFS_TOPIC_ID_MAX + 1];
        str_copy(last, sizeof last, docs[n - 1].id);
        cJSON_AddStringToObject(paging, "cursor", last);
    } else {
        cJSON_AddNullToObject(paging, "cursor");
    }
    cJSON_AddBoolToObject(paging, "more", n == TOPICS_PAGE);
    answer_json(resp, 200, out);
}

void api_topic_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *doc = NULL;
    int rc;
    if (!topic_id_ok(req->params[0], resp))
        return;
    rc = prefs_topic_get(ctx->store, req->params[0], &doc);
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error", "topic %.*s not found",
                        STR_FMT(req->params[0]));
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    answer_json(resp, 200, topic_json(req->params[0], doc));
    cJSON_Delete(doc);
}

struct put_arg {
    struct str id;     /* topic id, or user id for user puts */
    struct str topic;  /* user puts: the topic id */
    const char *body;  /* topic puts: the document */
    const cJSON *pref; /* user puts: the checked preference */
    int64_t now_ms;
};

static int topic_put_tx(struct store_txn *t, void *varg)
{
    struct put_arg *a = varg;
    return store_doc_put(t, PREFS_COLL_TOPICS, a->id, str_c(a->body), a->now_ms, NULL);
}

void api_topic_put(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *in = NULL, *doc = NULL;
    const char *name, *st;
    char *s = NULL;
    struct herr err;
    int rc;
    if (!topic_id_ok(req->params[0], resp) || api_parse_json(req, resp, &in) < 0)
        return;
    name = json_str(in, "topic_name") ? json_str(in, "topic_name") : json_str(in, "name");
    st = json_str(in, "default_status");
    if (!prefs_status_valid(st)) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "default_status must be OPTED_IN, OPTED_OUT or REQUIRED");
        goto out;
    }
    if (name && (strlen(name) == 0 || strlen(name) > PREFS_TOPIC_NAME_MAX)) {
        http_resp_error(resp, 400, "invalid_request_error", "topic_name must be 1 to %d bytes",
                        PREFS_TOPIC_NAME_MAX);
        goto out;
    }
    doc = cJSON_CreateObject();
    if (name)
        cJSON_AddStringToObject(doc, "topic_name", name);
    cJSON_AddStringToObject(doc, "default_status", st);
    s = json_print(doc);
    herr_clear(&err);
    rc = store_write(ctx->store, topic_put_tx,
                     &(struct put_arg){.id = req->params[0], .body = s,
                                       .now_ms = hclock_now(ctx->clock)},
                     &err);
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        goto out;
    }
    answer_json(resp, 200, topic_json(req->params[0], doc));
out:
    free(s);
    cJSON_Delete(doc);
    cJSON_Delete(in);
}

void api_topic_delete(void *vctx, struct http_req *req, struct http_resp *resp)
{
    if (topic_id_ok(req->params[0], resp))
        api_doc_delete(vctx, req, resp, PREFS_COLL_TOPICS, "topic");
}

/* ---- a user's preferences ---------------------------------------------------------------- */

void api_user_prefs_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *items = NULL, *out;
    int rc;
    if (!user_id_ok(req->params[0], resp))
        return;
    rc = prefs_user_topics(ctx->store, req->params[0], &items);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "items", items);
    cJSON *paging = cJSON_AddObjectToObject(out, "paging");
    cJSON_AddNullToObject(paging, "cursor");
    cJSON_AddBoolToObject(paging, "more", false);
    answer_json(resp, 200, out);
}

/* find_item: the TopicPreference of tid in the user's list (owned by items), or NULL. */
static const cJSON *find_item(const cJSON *items, struct str tid)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, items) if (str_eq_c(tid, json_str(it, "topic_id") ? json_str(it, "topic_id") : ""))
        return it;
    return NULL;
}

void api_user_pref_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *items = NULL, *out;
    const cJSON *it;
    int rc;
    if (!user_id_ok(req->params[0], resp) || !topic_id_ok(req->params[1], resp))
        return;
    rc = prefs_user_topics(ctx->store, req->params[0], &items);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    it = find_item(items, req->params[1]);
    if (!it) {
        http_resp_error(resp, 404, "invalid_request_error",
                        "no topic %.*s and no preference of user %.*s for it",
                        STR_FMT(req->params[1]), STR_FMT(req->params[0]));
        cJSON_Delete(items);
        return;
    }
    out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "topic", cJSON_Duplicate(it, 1));
    cJSON_Delete(items);
    answer_json(resp, 200, out);
}

static int user_put_tx(struct store_txn *t, void *varg)
{
    struct put_arg *a = varg;
    return prefs_user_set(t, a->id, a->topic, a->pref, a->now_ms);
}

/* user_put: check and store pref for (uid, tid); answers resp on failure. */
static int user_put(struct api_ctx *ctx, struct str uid, struct str tid, const cJSON *pref,
                    struct http_resp *resp)
{
    struct herr err;
    cJSON *topic = NULL;
    const char *st = json_str(pref, "status");
    int rc;
    herr_clear(&err);
    if (prefs_topic_pref_check(pref, &err) < 0) {
        http_resp_error(resp, 400, "invalid_request_error", "%s", err.msg);
        return HR_INVAL;
    }
    rc = prefs_topic_get(ctx->store, tid, &topic);
    if (rc < 0 && rc != HR_NOTFOUND) {
        api_error_rc(resp, rc, NULL);
        return rc;
    }
    if (strcmp(st, "REQUIRED") == 0 ||
        (strcmp(st, "OPTED_OUT") == 0 && json_str(topic, "default_status") &&
         strcmp(json_str(topic, "default_status"), "REQUIRED") == 0)) {
        cJSON_Delete(topic);
        http_resp_error(resp, 400, "invalid_request_error",
                        strcmp(st, "REQUIRED") == 0
                            ? "only a topic's default_status can be REQUIRED"
                            : "topic %.*s is REQUIRED: it cannot be opted out of",
                        STR_FMT(tid));
        return HR_INVAL;
    }
    cJSON_Delete(topic);
    rc = store_write(ctx->store, user_put_tx,
                     &(struct put_arg){.id = uid, .topic = tid, .pref = pref,
                                       .now_ms = hclock_now(ctx->clock)},
                     &err);
    if (rc < 0)
        api_error_rc(resp, rc, &err);
    return rc;
}

void api_user_pref_put(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *in = NULL, *out;
    if (!user_id_ok(req->params[0], resp) || !topic_id_ok(req->params[1], resp) ||
        api_parse_json(req, resp, &in) < 0)
        return;
    if (user_put(ctx, req->params[0], req->params[1], json_obj(in, "topic"), resp) == HR_OK) {
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "message", "success");
        answer_json(resp, 200, out);
    }
    cJSON_Delete(in);
}

cJSON *api_prefs_profile(struct api_ctx *ctx, struct str uid)
{
    cJSON *items = NULL, *out = cJSON_CreateObject(), *cats = NULL;
    const cJSON *it;
    struct arena *a = arena_new(1024);
    struct doc_rec d;
    if (store_doc_get(ctx->store, PREFS_COLL_USERS, uid, a, &d) == HR_OK &&
        prefs_user_topics(ctx->store, uid, &items) == HR_OK) {
        cJSON *mine = cJSON_ParseWithLength(d.body.p, d.body.len);
        cats = cJSON_CreateObject();
        cJSON_ArrayForEach(it, items)
        {
            const char *tid = json_str(it, "topic_id");
            const cJSON *c;
            cJSON *o, *chs;
            if (!tid || !json_member(mine, tid))
                continue; /* only what the user chose */
            o = cJSON_AddObjectToObject(cats, tid);
            cJSON_AddStringToObject(o, "status", json_str(it, "status"));
            if (json_bool(it, "has_custom_routing", false)) {
                chs = cJSON_AddArrayToObject(o, "channel_preferences");
                cJSON_ArrayForEach(c, json_arr(it, "custom_routing"))
                {
                    cJSON *x = cJSON_CreateObject();
                    cJSON_AddStringToObject(x, "channel", c->valuestring);
                    cJSON_AddItemToArray(chs, x);
                }
            }
        }
        cJSON_Delete(mine);
    }
    arena_free(a);
    cJSON_Delete(items);
    cJSON_AddItemToObject(out, "categories", cats ? cats : cJSON_CreateNull());
    cJSON_AddObjectToObject(out, "notifications");
    return out;
}

/* ---- the public one-click routes ------------------------------------------------------- */

static void not_found(struct http_resp *resp)
{
    http_resp_header(resp, "Cache-Control", "no-store");
    http_resp_error(resp, 404, "invalid_request_error", "not found");
}

/* form_get: the decoded value of name in an application/x-www-form-urlencoded body into
 * out (cap bytes); false when absent, malformed or too long. */
static bool form_get(struct str body, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name), i = 0;
    while (i < body.len) {
        size_t end = i;
        while (end < body.len && body.p[end] != '&')
            end++;
        if (end - i > nl && !memcmp(body.p + i, name, nl) && body.p[i + nl] == '=') {
            size_t o = 0;
            for (size_t k = i + nl + 1; k < end; k++) {
                int c = (unsigned char)body.p[k];
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    unsigned v;
                    char hx[3] = {0};
                    if (k + 2 >= end)
                        return false;
                    hx[0] = body.p[k + 1];
                    hx[1] = body.p[k + 2];
                    if (sscanf(hx, "%2x", &v) != 1 || v == 0)
                        return false;
                    c = (int)v;
                    k += 2;
                }
                if (o + 1 >= cap)
                    return false;
                out[o++] = (char)c;
            }
            out[o] = 0;
            return true;
        }
        i = end + 1;
    }
    return false;
}

/* one_click_multipart: body is RFC 8058's multipart/form-data variant: a part named
 * List-Unsubscribe whose value is One-Click. */
static bool one_click_multipart(struct http_req *req)
{
    static const char name[] = "name=\"List-Unsubscribe\"";
    const char *ct = http_req_header(req, "Content-Type");
    const char *p = req->body.p, *end = req->body.p + req->body.len, *v;
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0 || !p)
        return false;
    v = memmem(p, req->body.len, name, sizeof name - 1);
    if (!v)
        return false;
    v = memmem(v, (size_t)(end - v), "\r\n\r\n", 4);
    return v && (size_t)(end - v - 4) >= 9 && memcmp(v + 4, "One-Click", 9) == 0 &&
           (v + 13 == end || v[13] == '\r');
}

/* page: the hosted preference page for uid into resp (notice: a line shown on top). */
static void page(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                 const char *uid, const char *token_tid, const char *token, const char *notice)
{
    cJSON *items = NULL;
    const cJSON *it;
    struct buf *b = &resp->body;
    int rc = prefs_user_topics(ctx->store, str_c(uid), &items);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    buf_reset(b);
    rc = buf_printf(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                       "<meta name=\"viewport\" content=\"width=device-width\">"
                       "<title>Email preferences</title><style>body{font:16px sans-serif;"
                       "max-width:36em;margin:2em auto;padding:0 1em}li{margin:.8em 0}"
                       ".cur{font-weight:bold}</style></head><body><h1>Email preferences</h1>\n");
    if (rc == HR_OK && notice) {
        rc = buf_printf(b, "<p role=\"status\" id=\"notice\">");
        if (rc == HR_OK)
            rc = layout_esc(b, notice);
        if (rc == HR_OK)
            rc = buf_printf(b, "</p>\n");
    }
    if (rc == HR_OK)
        rc = buf_printf(b, "<ul>\n");
    cJSON_ArrayForEach(it, items)
    {
        const char *tid = json_str(it, "topic_id"), *st = json_str(it, "status");
        bool req_topic = !strcmp(json_str(it, "default_status"), "REQUIRED");
        bool out = !strcmp(st, "OPTED_OUT");
        if (rc < 0)
            break;
        rc = buf_printf(b, "<li data-topic=\"");
        if (rc == HR_OK)
            rc = layout_esc(b, tid);
        if (rc == HR_OK)
            rc = buf_printf(b, "\"%s>", !strcmp(tid, token_tid) ? " class=\"cur\"" : "");
        if (rc == HR_OK)
            rc = layout_esc(b, json_str(it, "topic_name"));
        if (rc == HR_OK && req_topic)
            rc = buf_printf(b, ": always sent (required)</li>\n");
        if (rc == HR_OK && !req_topic) {
            rc = buf_printf(b, ": <span class=\"status\">%s</span> "
                               "<form method=\"post\" action=\"%s\" style=\"display:inline\">"
                               "<input type=\"hidden\" name=\"topic\" value=\"",
                            out ? "unsubscribed" : "subscribed", token);
            if (rc == HR_OK)
                rc = layout_esc(b, tid);
            if (rc == HR_OK)
                rc = buf_printf(b, "\"><button type=\"submit\" name=\"status\" value=\"%s\">%s"
                                   "</button></form></li>\n",
                                out ? "OPTED_IN" : "OPTED_OUT",
                                out ? "Subscribe" : "Unsubscribe");
        }
    }
    if (rc == HR_OK)
        rc = buf_printf(b, "</ul>\n</body></html>\n");
    cJSON_Delete(items);
    if (rc < 0) {
        buf_reset(b);
        http_resp_error(resp, 500, "api_error", "page too large");
        return;
    }
    http_resp_header(resp, "Cache-Control", "no-store");
    http_resp_header(resp, "Content-Security-Policy", PAGE_CSP);
    http_resp_header(resp, "X-Content-Type-Options", "nosniff");
    http_resp_header(resp, "Referrer-Policy", "no-referrer");
    resp->status = 200;
    resp->content_type = "text/html; charset=utf-8";
}

/* token_of: the request's token checked; false (404 answered) when bad. */
static bool token_of(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                     char *uid, char *tid)
{
    int64_t ttl = ctx->engine ? ctx->engine->unsub_ttl_s : 0;
    int rc = prefs_token_parse(ctx->store, hclock_now(ctx->clock), ttl, req->params[0], uid, tid);
    if (rc == HR_OK)
        return true;
    if (rc == HR_NOTFOUND)
        not_found(resp);
    else
        api_error_rc(resp, rc, NULL);
    return false;
}

void api_unsub_page(void *vctx, struct http_req *req, struct http_resp *resp)
{
    char uid[PREFS_USER_ID_MAX + 1], tid[PREFS_TOPIC_ID_MAX + 1], tok[PREFS_TOKEN_MAX + 1];
    if (!token_of(vctx, req, resp, uid, tid))
        return;
    str_copy(tok, sizeof tok, req->params[0]);
    page(vctx, req, resp, uid, tid, tok, NULL);
}

void api_unsub_post(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    char uid[PREFS_USER_ID_MAX + 1], tid[PREFS_TOPIC_ID_MAX + 1], tok[PREFS_TOKEN_MAX + 1];
    char v[64], topic[PREFS_TOPIC_ID_MAX + 1];
    cJSON *pref;
    bool one_click;
    if (!token_of(ctx, req, resp, uid, tid))
        return;
    str_copy(tok, sizeof tok, req->params[0]);
    one_click = (form_get(req->body, "List-Unsubscribe", v, sizeof v) && !strcmp(v, "One-Click")) ||
                one_click_multipart(req);
    if (!one_click) {
        if (!form_get(req->body, "topic", topic, sizeof topic) ||
            !prefs_topic_id_valid(str_c(topic)) || !form_get(req->body, "status", v, sizeof v) ||
            (strcmp(v, "OPTED_IN") && strcmp(v, "OPTED_OUT"))) {
            http_resp_error(resp, 400, "invalid_request_error",
                            "expected List-Unsubscribe=One-Click, or topic and status");
            return;
        }
    } else {
        snprintf(topic, sizeof topic, "%s", tid);
        snprintf(v, sizeof v, "OPTED_OUT");
    }
    pref = cJSON_CreateObject();
    cJSON_AddStringToObject(pref, "status", v);
    if (user_put(ctx, str_c(uid), str_c(topic), pref, resp) == HR_OK) {
        if (one_click) {
            resp->status = 200;
            resp->content_type = "text/plain; charset=utf-8";
            http_resp_header(resp, "Cache-Control", "no-store");
            buf_reset(&resp->body);
            if (buf_printf(&resp->body, "unsubscribed\n") < 0)
                resp->status = 500;
        } else {
            page(ctx, req, resp, uid, tid, tok,
                 !strcmp(v, "OPTED_OUT") ? "Unsubscribed." : "Subscribed.");
        }
    }
    cJSON_Delete(pref);
}
