/* messages.c: Courier's Messages API (the message log).
 *   GET  /messages?recipient&status&notification&event&tag&tags&traceId&runId&messageId
 *                  &enqueued_after&archived&cursor&limit (status, tag, tags: repeated or
 *                  comma-joined, any of; provider, tenant_id: 400 until built;
 *                  list: the messages sent through that list or pattern, alone or with
 *                  cursor and limit)
 *   GET  /messages/:id            MessageDetails with providers
 *   GET  /messages/:id/history    {results: [history events]} (?type= filter)
 *   GET  /messages/:id/output     {results: [{channel, channel_id, content: {html, text,
 *                                 title, subject, body, blocks}}]}
 *   POST /messages/:id/cancel     200 CANCELED before delivery, 409 after */
#include "api.h"

#include "../engine/record.h"
#include "../engine/fanout.h"
#include "../engine/send.h"
#include "../util/json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 20
#define LIST_MAX 100

/* details: Courier's MessageDetails for m (new object); engine/record.c builds it, the
 * status webhooks send the same record. */
static cJSON *details(const struct message_rec *m, bool with_providers)
{
    return engine_message_record(m, with_providers);
}

static struct str q(struct http_req *req, const char *name)
{
    const char *v = http_req_query(req, name);
    return str_c(v && strlen(v) <= 1024 ? v : NULL);
}

/* ---- GET /messages query ---------------------------------------------------------------- */

#define LIST_JOINED_MAX 1024 /* statuses or tags, joined by commas */

static const char *const STATUSES[] = {
    "CANCELED", "CLICKED",   "DELAYED",  "DELIVERED", "DIGESTED",      "ENQUEUED",   "FILTERED",
    "OPENED",   "ROUTED",    "SENT",     "SIMULATED", "THROTTLED",     "UNDELIVERABLE",
    "UNMAPPED", "UNROUTABLE", NULL};
/* parameters given at most once */
static const char *const SCALARS[] = {"recipient", "notification", "event", "traceId", "trace_id",
                                      "runId", "cursor", "limit", "enqueued_after", "messageId",
                                      "archived", "list", NULL};
/* Courier's filters herald has nothing to match yet (no tenants; the provider key is not
 * a column) */
static const char *const LATER[] = {"provider", "tenant_id", NULL};

struct list_query {
    char status[LIST_JOINED_MAX + 1], tag[LIST_JOINED_MAX + 1];
    size_t status_len, tag_len;
    int seen[sizeof SCALARS / sizeof SCALARS[0]];
    char err[192];   /* the first problem; "" when none */
};

static int index_of(const char *const *list, const char *k)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], k) == 0)
            return i;
    return -1;
}

/* join: append each non-empty comma-separated piece of v to the comma list in out (len);
 * a status is upper-cased and must be one of STATUSES. False with q->err set on a bad
 * piece or when the list would pass LIST_JOINED_MAX. */
static bool join(struct list_query *q, const char *name, const char *v, char *out, size_t *len,
                 bool is_status)
{
    char piece[LIST_JOINED_MAX + 1];
    for (const char *p = v ? v : ""; *p;) {
        size_t n = strcspn(p, ",");
        if (n > 0) {
            if (n > 64 || *len + n + 1 > LIST_JOINED_MAX) {
                snprintf(q->err, sizeof q->err, "%s: too many or too long values", name);
                return false;
            }
            memcpy(piece, p, n);
            piece[n] = 0;
            if (is_status) {
                for (size_t i = 0; i < n; i++)
                    piece[i] = (char)toupper((unsigned char)piece[i]);
                if (index_of(STATUSES, piece) < 0) {
                    snprintf(q->err, sizeof q->err, "status %.64s is not a message status", piece);
                    return false;
                }
            }
            if (*len)
                out[(*len)++] = ',';
            memcpy(out + *len, piece, n + 1);
            *len += n;
        }
        p += n + (p[n] == ',');
    }
    return true;
}

/* query_arg: one argument of GET /messages (http_req_query_each callback). */
static bool query_arg(void *arg, const char *name, const char *value)
{
    struct list_query *q = arg;
    int k;
    if (!name[0]) /* a stray '&' */
        return true;
    if (strcmp(name, "status") == 0)
        return join(q, "status", value, q->status, &q->status_len, true);
    if (strcmp(name, "tag") == 0 || strcmp(name, "tags") == 0)
        return join(q, name, value, q->tag, &q->tag_len, false);
    if (index_of(LATER, name) >= 0) {
        snprintf(q->err, sizeof q->err, "the %s filter is not supported yet", name);
        return false;
    }
    k = index_of(SCALARS, name);
    if (k < 0) {
        snprintf(q->err, sizeof q->err, "unknown query parameter %.64s", name);
        return false;
    }
    if (q->seen[k]++) {
        snprintf(q->err, sizeof q->err, "%s may be given once", name);
        return false;
    }
    if (value && strlen(value) > 1024) { /* q() would read it as absent */
        snprintf(q->err, sizeof q->err, "%s is longer than 1024 bytes", name);
        return false;
    }
    return true;
}

/* time_arg: enqueued_after as ms: an ISO 8601 time or ms since the epoch. */
static int time_arg(const char *v, int64_t *out)
{
    if (str_to_i64(str_c(v), out) == HR_OK && *out >= 0)
        return HR_OK;
    return time_parse_iso(v, strlen(v), out);
}

/* answer_page: 200 {paging: {cursor, more}, results} with the first lim of rows (n of
 * them); cursor (NULL: no more) continues after the last. */
static void answer_page(struct http_resp *resp, const struct message_rec *rows, size_t n,
                        size_t lim, const char *cursor)
{
    cJSON *out = cJSON_CreateObject(), *pg, *res;
    pg = cJSON_AddObjectToObject(out, "paging");
    res = cJSON_AddArrayToObject(out, "results");
    for (size_t i = 0; i < n && i < lim; i++)
        cJSON_AddItemToArray(res, details(&rows[i], false));
    if (cursor)
        cJSON_AddStringToObject(pg, "cursor", cursor);
    else
        cJSON_AddNullToObject(pg, "cursor");
    cJSON_AddBoolToObject(pg, "more", cursor != NULL);
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}

/* list_messages: GET /messages?list=ID[&cursor][&limit]: the messages sent through the
 * list (or pattern) as the send named it; other filters are refused for now. */
static void list_messages(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                          const struct list_query *lq, size_t lim)
{
    const char *list = http_req_query(req, "list"), *cursor = http_req_query(req, "cursor");
    struct message_rec *rows = NULL;
    struct str *keys = NULL;
    size_t n = 0;
    int rc;
    for (int k = 0; SCALARS[k]; k++)
        if (lq->seen[k] && strcmp(SCALARS[k], "list") && strcmp(SCALARS[k], "cursor") &&
            strcmp(SCALARS[k], "limit")) {
            http_resp_error(resp, 400, "invalid_request_error",
                            "list cannot be combined with %s yet", SCALARS[k]);
            return;
        }
    if (lq->status_len || lq->tag_len) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "list cannot be combined with status or tag yet");
        return;
    }
    if (!store_list_pattern_valid(str_c(list))) {
        http_resp_error(resp, 400, "invalid_request_error", "list must be a list id or pattern");
        return;
    }
    rc = engine_list_messages(ctx->store, list, cursor ? cursor : "", lim + 1, req->arena,
                              &rows, &keys, &n);
    if (rc == HR_INVAL) {
        http_resp_error(resp, 400, "invalid_request_error", "cursor is not one of this list's");
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    answer_page(resp, rows, n, lim, n > lim ? keys[lim - 1].p : NULL);
}

void api_messages_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct message_filter f;
    struct message_rec *rows = NULL;
    struct list_query lq;
    size_t n = 0;
    int64_t lim = LIST_DEFAULT;
    const char *ls = http_req_query(req, "limit");
    const char *after = http_req_query(req, "enqueued_after");
    const char *archived = http_req_query(req, "archived");
    int rc;

    memset(&f, 0, sizeof f);
    memset(&lq, 0, sizeof lq);
    http_req_query_each(req, query_arg, &lq);
    if (lq.err[0]) {
        http_resp_error(resp, 400, "invalid_request_error", "%s", lq.err);
        return;
    }
    if (ls && (str_to_i64(str_c(ls), &lim) < 0 || lim < 1 || lim > LIST_MAX)) {
        http_resp_error(resp, 400, "invalid_request_error", "limit must be 1 to %d", LIST_MAX);
        return;
    }
    if (after && time_arg(after, &f.enqueued_after_ms) < 0) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "enqueued_after must be an ISO 8601 time or ms since the epoch");
        return;
    }
    /* herald archives no messages, so both answers hold every message */
    if (archived && strcmp(archived, "true") != 0 && strcmp(archived, "false") != 0) {
        http_resp_error(resp, 400, "invalid_request_error", "archived must be true or false");
        return;
    }
    f.recipient = q(req, "recipient");
    f.status = (struct str){lq.status, lq.status_len};
    f.notification = q(req, "notification");
    f.event = q(req, "event");
    f.tag = (struct str){lq.tag, lq.tag_len};
    f.trace_id = q(req, "traceId");
    if (!f.trace_id.len)
        f.trace_id = q(req, "trace_id");
    f.run_id = q(req, "runId");
    f.id = q(req, "messageId");
    f.before_id = q(req, "cursor");
    f.limit = (size_t)lim + 1;
    if (http_req_query(req, "list")) {
        list_messages(ctx, req, resp, &lq, (size_t)lim);
        return;
    }
    rc = store_message_list(ctx->store, &f, req->arena, &rows, &n);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    answer_page(resp, rows, n, (size_t)lim, n > (size_t)lim ? rows[lim - 1].id.p : NULL);
}

/* load: the message named by the path, or answers 404. */
static int load(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                struct message_rec *m)
{
    int rc = store_message_get(ctx->store, req->params[0], req->arena, m);
    if (rc == HR_NOTFOUND)
        http_resp_error(resp, 404, "invalid_request_error", "Message %.*s not found",
                        STR_FMT(req->params[0]));
    else if (rc < 0)
        api_error_rc(resp, rc, NULL);
    return rc;
}

void api_message_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct message_rec m;
    cJSON *o;
    if (load(vctx, req, resp, &m) < 0)
        return;
    o = details(&m, true);
    http_resp_json(resp, 200, o);
    cJSON_Delete(o);
}

void api_message_history(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct message_rec m;
    struct history_rec *h = NULL;
    size_t n = 0;
    struct buf *b = &resp->body;
    int rc;
    if (load(vctx, req, resp, &m) < 0)
        return;
    rc = store_history_list(ctx->store, m.id, q(req, "type"), req->arena, &h, &n);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    /* stored events are JSON already: splice them (ENQUEUED with the message's data) */
    rc = buf_append_c(b, "{\"results\":[");
    for (size_t i = 0; i < n && rc == HR_OK; i++) {
        if (i)
            rc = buf_putc(b, ',');
        if (rc == HR_OK) {
            struct str body;
            int hrc = engine_history_body(ctx->engine, &m, &h[i], req->arena, &body);
            if (hrc < 0) { /* the message's data cannot be read now: not a row without it */
                buf_reset(b);
                api_error_rc(resp, hrc, NULL);
                return;
            }
            rc = buf_append_str(b, body);
        }
    }
    if (rc == HR_OK)
        rc = buf_append_c(b, "]}");
    if (rc < 0) {
        buf_reset(b);
        http_resp_error(resp, 500, "api_error", "history too large to answer");
        return;
    }
    resp->status = 200;
}

/* set_default: c[k] = the string at c[from] (or "") when c has no string k. */
static void set_default(cJSON *c, const char *k, const char *from)
{
    const char *v = from ? json_str(c, from) : NULL;
    if (json_str(c, k))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(c, k);
    cJSON_AddStringToObject(c, k, v ? v : "");
}

/* output_content: give a stored rendered content Courier's full shape (in place):
 * html, text, title, subject, body (strings, "" when the channel has none; a title falls
 * back to the subject, a body to the text and back) and blocks [{type, text}] (one text
 * block with the plain text, none when it is empty). */
static void output_content(cJSON *c)
{
    const char *text;
    cJSON *blocks;
    if (!cJSON_IsObject(c))
        return;
    set_default(c, "title", "subject");
    set_default(c, "subject", NULL);
    set_default(c, "text", "body");
    set_default(c, "body", "text");
    set_default(c, "html", NULL);
    if (cJSON_IsArray(json_member(c, "blocks")))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(c, "blocks");
    blocks = cJSON_AddArrayToObject(c, "blocks");
    text = json_str(c, "text");
    if (text && text[0]) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "type", "text");
        cJSON_AddStringToObject(b, "text", text);
        cJSON_AddItemToArray(blocks, b);
    }
}

void api_message_output(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct message_rec m;
    cJSON *out, *r;
    int rc;
    if (load(vctx, req, resp, &m) < 0)
        return;
    rc = engine_message_outputs(ctx->store, m.id, req->arena, &out);
    if (rc == HR_NOTFOUND) {
        http_resp_raw(resp, 200, "application/json", STR_LIT("{\"results\":[]}"));
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    cJSON_ArrayForEach(r, json_arr(out, "results")) output_content(json_obj(r, "content"));
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}

struct cancel_arg {
    struct str id;
    int64_t now;
};

static int cancel_tx(struct store_txn *t, void *varg)
{
    struct cancel_arg *c = varg;
    return engine_message_cancel(t, c->id, c->now);
}

void api_message_cancel(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct cancel_arg c = {req->params[0], hclock_now(ctx->clock)};
    struct message_rec m;
    struct herr err;
    cJSON *o;
    int rc;
    herr_clear(&err);
    rc = store_write(ctx->store, cancel_tx, &c, &err);
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error", "Message %.*s not found",
                        STR_FMT(req->params[0]));
        return;
    }
    if (rc < 0 && rc != HR_CONFLICT) {
        api_error_rc(resp, rc, &err);
        return;
    }
    if (load(vctx, req, resp, &m) < 0)
        return;
    o = details(&m, false);
    if (rc == HR_CONFLICT)
        http_resp_header(resp, "x-should-retry", "false");
    http_resp_json(resp, rc == HR_CONFLICT ? 409 : 200, o);
    cJSON_Delete(o);
}
