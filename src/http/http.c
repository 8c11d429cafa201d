/* http.c: herald's HTTP server on libmicrohttpd (one daemon, internal epoll threads in a
 * pool; handlers run on those threads and may block).
 *
 * A request's life, all on one pool thread:
 *   on_uri       MHD read the request line: make the per-request arena and struct conn,
 *                keep the raw path (MHD would percent-decode it; we decode per segment).
 *   begin        headers read: request id, in-flight admission (503), method (405),
 *                routing (404/405/400/OPTIONS preflight), Content-Length cap (413),
 *                Content-Encoding (415). Any answer here makes MHD skip the body.
 *   take_upload  body pieces go into a capped buf; past the cap they are dropped (413
 *                at the end) and the connection is closed past DISCARD_MAX.
 *   finish       body complete: gzip inflation under the same cap, Content-Type (415),
 *                the authenticator (401/403), then the handler; reply() queues it.
 *   on_done      MHD finished (sent or aborted): metrics, the access log line, release.
 * Every answer goes through reply(), which adds X-Request-Id, CORS and the JSON error
 * body when a handler left it empty. */
#include "http.h"

#include "../util/clock.h"
#include "../util/id.h"
#include "../util/json.h"
#include "../util/log.h"
#include "../util/metrics.h"
#include "../util/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define DEFAULT_THREADS 16
#define DEFAULT_MAX_BODY ((size_t)6 << 20)
#define DEFAULT_MAX_INFLIGHT 1024
#define DEFAULT_SHUTDOWN_MS 10000
#define RESP_MAX ((size_t)64 << 20)
#define DISCARD_MAX ((size_t)16 << 20) /* dropped bytes of an oversized body before we hang up */
#define ERR_MSG_MAX 1024
#define IDLE_TIMEOUT_S 60u
#define CORS_HEADERS "Authorization, Content-Type, X-Retry-Count, Idempotency-Key, " \
                     "X-Idempotency-Expiration"

struct http_server {
    struct http_cfg cfg; /* with defaults applied */
    struct MHD_Daemon *d;
    int port;
    atomic_int inflight; /* admitted requests not yet completed */
};

/* Per-request state; lives in the request's arena. */
struct conn {
    struct http_server *srv;
    struct MHD_Connection *mc;
    struct arena *arena;
    struct http_req req;
    struct http_resp resp;
    struct buf body;    /* the upload as received, then inflated; freed in on_done */
    size_t cap;         /* body cap for this request */
    size_t bytes_in;    /* upload bytes received (before inflation) */
    const char *origin; /* Origin header (arena copy) or NULL */
    double t0;          /* monotonic seconds at begin() */
    int status;         /* queued status; 0 until reply() */
    bool started, counted, gzip, too_big;
    char *peer;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct str trim(struct str s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

static const char *req_hdr(struct conn *c, const char *name)
{
    return MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, name);
}

/* rid_ok: 1..64 characters of [A-Za-z0-9._-]. */
static bool rid_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok || n >= 64)
            return false;
    }
    return n > 0;
}

/* ctype_is_json: application/json, application/<x>+json (merge-patch too), any params. */
static bool ctype_is_json(const char *ct)
{
    const char *semi = strchr(ct, ';');
    struct str t = trim((struct str){ct, semi ? (size_t)(semi - ct) : strlen(ct)});
    struct str app = STR_LIT("application/");

    if (t.len < app.len || strncasecmp(t.p, app.p, app.len) != 0)
        return false;
    if (str_ieq_c(t, "application/json"))
        return true;
    return t.len > app.len + 5 && strncasecmp(t.p + t.len - 5, "+json", 5) == 0;
}

/* methods_text: "GET, HEAD, POST, OPTIONS" for a mask (HEAD follows GET). */
static void methods_text(int mask, char *out, size_t cap)
{
    static const int order[] = {HTTP_GET,   HTTP_HEAD,   HTTP_POST,   HTTP_PUT,
                                HTTP_PATCH, HTTP_DELETE, HTTP_OPTIONS};
    size_t o = 0;
    out[0] = '\0';
    if (mask & HTTP_GET)
        mask |= HTTP_HEAD;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        int k;
        if (!(mask & order[i]))
            continue;
        k = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", http_method_name(order[i]));
        if (k < 0 || (size_t)k >= cap - o)
            break;
        o += (size_t)k;
    }
}

/* inflate_gzip: gunzip in into out (whose cap bounds the output: HR_TOOBIG as soon as
 * the next piece would pass it, so a bomb never costs more than cap + one chunk).
 * Concatenated members are accepted. HR_INVAL for corrupt or truncated input. */
static int inflate_gzip(struct str in, struct buf *out)
{
    int rc = HR_OK, zr;
    z_stream z;
    unsigned char chunk[16384];
    bool init = false;

    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        rc = HR_NOMEM;
        goto out;
    }
    init = true;
    z.next_in = (Bytef *)(uintptr_t)in.p;
    z.avail_in = 0;
    for (;;) {
        size_t produced;
        if (z.avail_in == 0 && in.len) {
            size_t take = in.len > (1u << 30) ? (1u << 30) : in.len;
            z.next_in = (Bytef *)(uintptr_t)in.p;
            z.avail_in = (uInt)take;
            in.p += take;
            in.len -= take;
        }
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        zr = inflate(&z, Z_NO_FLUSH);
        if (zr == Z_MEM_ERROR) {
            rc = HR_NOMEM;
            goto out;
        }
        if (zr != Z_OK && zr != Z_STREAM_END) { /* data error, need dict, no progress */
            rc = HR_INVAL;
            goto out;
        }
        produced = sizeof chunk - z.avail_out;
        if (produced && buf_append(out, chunk, produced) < 0) {
            rc = HR_TOOBIG;
            goto out;
        }
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0 && in.len == 0)
                break;
            if (inflateReset(&z) != Z_OK) {
                rc = HR_INVAL;
                goto out;
            }
        }
    }
out:
    if (init)
        inflateEnd(&z);
    return rc;
}

/* ---- responses (the public helpers) ---- */

const char *http_error_type(int status)
{
    if (status == 401)
        return "authentication_error";
    if (status == 403)
        return "authorization_error";
    if (status == 429)
        return "rate_limit_error";
    if (status >= 400 && status < 500)
        return "invalid_request_error";
    return "api_error";
}

/* http_resp_header: append a header (name and value copied into the request arena).
 * Handler thread. */
void http_resp_header(struct http_resp *resp, const char *name, const char *value)
{
    struct http_header *h = arena_zalloc(resp->arena, sizeof *h), **tail = &resp->headers;
    h->name = arena_strdup(resp->arena, name);
    h->value = arena_strdup(resp->arena, value ? value : "");
    while (*tail)
        tail = &(*tail)->next;
    *tail = h;
}

/* http_resp_json: see http.h. A document past the 64 MiB body cap becomes a 500. */
void http_resp_json(struct http_resp *resp, int status, const cJSON *v)
{
    char *s = json_print(v);
    resp->status = status;
    resp->content_type = "application/json";
    buf_reset(&resp->body);
    if (buf_append_c(&resp->body, s) < 0)
        http_resp_error(resp, 500, "api_error", "response too large");
    free(s);
}

/* http_resp_raw: see http.h. ctype NULL keeps application/json. */
void http_resp_raw(struct http_resp *resp, int status, const char *ctype, struct str body)
{
    resp->status = status;
    resp->content_type = ctype ? arena_strdup(resp->arena, ctype) : "application/json";
    buf_reset(&resp->body);
    if (buf_append_str(&resp->body, body) < 0)
        http_resp_error(resp, 500, "api_error", "response too large");
}

/* http_resp_error: see http.h. The message is capped at ~1 KiB (cut on a UTF-8
 * boundary) and escaped by cJSON. */
void http_resp_error(struct http_resp *resp, int status, const char *type, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX];
    va_list ap;
    int n;
    cJSON *o;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    else if ((size_t)n >= sizeof msg) { /* truncated: drop a partial UTF-8 sequence */
        size_t len = sizeof msg - 1, k = len;
        while (k > 0 && ((unsigned char)msg[k - 1] & 0xC0) == 0x80)
            k--;
        if (k > 0 && ((unsigned char)msg[k - 1] & 0x80)) {
            unsigned char lead = (unsigned char)msg[k - 1];
            size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (len - (k - 1) < want)
                msg[k - 1] = '\0';
        }
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddStringToObject(o, "type", type ? type : http_error_type(status));
    s = json_print(o);
    resp->status = status;
    resp->content_type = "application/json";
    buf_reset(&resp->body);
    if (buf_append_c(&resp->body, s) < 0)
        buf_reset(&resp->body);
    free(s);
    cJSON_Delete(o);
}

/* ---- request accessors ---- */

/* http_req_header: case-insensitive; the value lives until the request completes. */
const char *http_req_header(struct http_req *req, const char *name)
{
    struct conn *c = req ? req->impl : NULL;
    return c ? req_hdr(c, name) : NULL;
}

/* http_req_query: a query argument, percent-decoded by MHD; NULL if absent. */
const char *http_req_query(struct http_req *req, const char *name)
{
    struct conn *c = req ? req->impl : NULL;
    return c ? MHD_lookup_connection_value(c->mc, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

struct query_each {
    bool (*fn)(void *arg, const char *name, const char *value);
    void *arg;
};

static enum MHD_Result query_each_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct query_each *q = cls;
    return q->fn(q->arg, key, value) ? MHD_YES : MHD_NO;
}

int http_req_query_each(struct http_req *req,
                        bool (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    struct conn *c = req ? req->impl : NULL;
    struct query_each q = {fn, arg};
    return c ? MHD_get_connection_values(c->mc, MHD_GET_ARGUMENT_KIND, query_each_cb, &q) : 0;
}

/* http_req_peer: the client address as text (arena-owned), "" when unknown. */
const char *http_req_peer(struct http_req *req)
{
    struct conn *c = req ? req->impl : NULL;
    const union MHD_ConnectionInfo *ci;
    char tmp[INET6_ADDRSTRLEN] = "";

    if (!c)
        return "";
    if (c->peer)
        return c->peer;
    ci = MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, tmp,
                      sizeof tmp);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      tmp, sizeof tmp);
    }
    c->peer = arena_strdup(c->arena, tmp);
    return c->peer;
}

/* ---- the request state machine ---- */

/* reply: turn c->resp into the MHD response and queue it. Exactly once per request. */
static enum MHD_Result reply(struct conn *c)
{
    struct http_resp *rs = &c->resp;
    struct MHD_Response *mr;
    enum MHD_Result ret = MHD_NO;
    int st = rs->status;
    size_t len;
    char *body;

    if (st < 200 || st > 599) {
        LOG_E("http.bad_status", "status=%d route=%s", st,
              c->req.route && c->req.route->name ? c->req.route->name : "-");
        buf_reset(&rs->body);
        st = 500;
    }
    if (st >= 400 && rs->body.len == 0) {
        const char *reason = MHD_get_reason_phrase_for((unsigned)st);
        if (reason && *reason && strcmp(reason, "Unknown") != 0)
            http_resp_error(rs, st, http_error_type(st), "%s", reason);
        else
            http_resp_error(rs, st, http_error_type(st), "HTTP error %d", st);
    }
    if (st == 204 || st == 304)
        buf_reset(&rs->body);
    body = buf_steal(&rs->body, &len);
    mr = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!mr) {
        free(body);
        goto out;
    }
    if (st != 204 && st != 304) {
        const char *ct = rs->content_type ? rs->content_type : "application/json";
        if (strcmp(ct, "application/json") == 0)
            ct = "application/json; charset=utf-8";
        MHD_add_response_header(mr, "Content-Type", ct);
    }
    MHD_add_response_header(mr, "X-Request-Id", c->req.rid);
    if (c->origin) {
        MHD_add_response_header(mr, "Access-Control-Allow-Origin", c->origin);
        MHD_add_response_header(mr, "Vary", "Origin");
    }
    for (const struct http_header *h = rs->headers; h; h = h->next)
        if (MHD_add_response_header(mr, h->name, h->value) != MHD_YES)
            LOG_W("http.header_rejected", "name=%s", h->name);
    ret = MHD_queue_response(c->mc, (unsigned)st, mr);
    c->status = st;
    MHD_destroy_response(mr);
out:
    return ret;
}

static enum MHD_Result reply_error(struct conn *c, int status, const char *fmt, ...)
    HR_PRINTF(3, 4);
static enum MHD_Result reply_error(struct conn *c, int status, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_resp_error(&c->resp, status, http_error_type(status), "%s", msg);
    return reply(c);
}

/* preflight: OPTIONS on a path some route serves. */
static enum MHD_Result preflight(struct conn *c, int mask)
{
    char methods[96];
    methods_text(mask | HTTP_OPTIONS, methods, sizeof methods);
    c->resp.status = 204;
    if (!c->origin)
        http_resp_header(&c->resp, "Access-Control-Allow-Origin", "*");
    http_resp_header(&c->resp, "Access-Control-Allow-Credentials", "true");
    http_resp_header(&c->resp, "Access-Control-Allow-Headers", CORS_HEADERS);
    http_resp_header(&c->resp, "Access-Control-Allow-Methods", methods);
    http_resp_header(&c->resp, "Access-Control-Max-Age", "600");
    return reply(c);
}

static struct conn *conn_new(struct http_server *srv, struct MHD_Connection *mc,
                             const char *uri)
{
    struct arena *a = arena_new(8192);
    struct conn *c = arena_zalloc(a, sizeof *c);
    const char *q = uri ? strchr(uri, '?') : NULL;
    size_t n = uri ? (q ? (size_t)(q - uri) : strlen(uri)) : 0;

    c->srv = srv;
    c->mc = mc;
    c->arena = a;
    c->req.arena = a;
    c->req.impl = c;
    c->req.path = arena_str(a, (struct str){uri ? uri : "", n});
    c->req.body = (struct str){"", 0};
    c->resp.status = 200;
    c->resp.arena = a;
    buf_init(&c->resp.body, RESP_MAX);
    buf_init(&c->body, 0);
    return c;
}

/* on_uri: MHD's URI log callback, the first sight of a request (raw URI, undecoded).
 * Its result becomes *con_cls; on_done frees it even if the request dies early. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    return conn_new(cls, mc, uri);
}

static enum MHD_Result begin(struct conn *c, const char *method)
{
    struct http_server *srv = c->srv;
    enum MHD_Result ret = MHD_YES;
    const struct http_route *r;
    const char *h;
    int allowed = 0;
    int64_t clen;
    char allow[96];

    c->started = true;
    c->t0 = now_s();
    h = req_hdr(c, "X-Request-Id");
    if (h && rid_ok(h))
        str_copy(c->req.rid, sizeof c->req.rid, str_c(h));
    else
        id_new(time_now_ms(), c->req.rid);
    log_set_rid(c->req.rid);
    h = req_hdr(c, "Origin");
    if (h && *h)
        c->origin = arena_strdup(c->arena, h);
    c->req.method = http_method_parse(method);

    if (atomic_fetch_add(&srv->inflight, 1) + 1 > srv->cfg.max_inflight) {
        atomic_fetch_sub(&srv->inflight, 1);
        http_resp_header(&c->resp, "Retry-After", "1");
        ret = reply_error(c, 503, "the server is busy; retry shortly");
        goto out;
    }
    c->counted = true;

    r = http_route_match(srv->cfg.routes, c->req.method, c->req.path, c->arena, c->req.params,
                         &c->req.nparams, &allowed);
    if (!c->req.method) { /* never matches; allowed tells which methods would */
        if (allowed > 0) {
            methods_text(allowed | HTTP_OPTIONS, allow, sizeof allow);
            http_resp_header(&c->resp, "Allow", allow);
        }
        ret = reply_error(c, 405, "unsupported HTTP method");
        goto out;
    }
    if (!r) {
        if (allowed < 0) {
            ret = reply_error(c, 400, "invalid percent-encoding in the request path");
        } else if (allowed == 0) {
            ret = reply_error(c, 404, "no such resource");
        } else if (c->req.method == HTTP_OPTIONS) {
            ret = preflight(c, allowed);
        } else {
            methods_text(allowed | HTTP_OPTIONS, allow, sizeof allow);
            http_resp_header(&c->resp, "Allow", allow);
            ret = reply_error(c, 405, "method %s is not allowed here",
                              http_method_name(c->req.method));
        }
        goto out;
    }
    c->req.route = r;
    c->cap = r->max_body ? r->max_body : srv->cfg.max_body;

    h = req_hdr(c, "Content-Length");
    if (h && str_to_i64(str_c(h), &clen) == HR_OK && clen > 0 && (uint64_t)clen > c->cap) {
        ret = reply_error(c, 413, "request body exceeds %zu bytes", c->cap);
        goto out;
    }
    h = req_hdr(c, "Content-Encoding");
    if (h) {
        struct str ce = trim(str_c(h));
        if (str_ieq_c(ce, "gzip") || str_ieq_c(ce, "x-gzip")) {
            if (!(r->flags & ROUTE_GZIP)) {
                ret = reply_error(c, 415, "gzip request bodies are not accepted here");
                goto out;
            }
            c->gzip = true;
        } else if (ce.len && !str_ieq_c(ce, "identity")) {
            ret = reply_error(c, 415, "unsupported Content-Encoding");
            goto out;
        }
    }
    buf_init(&c->body, c->cap);
out:
    return ret;
}

static enum MHD_Result take_upload(struct conn *c, const char *data, size_t *size)
{
    enum MHD_Result ret = MHD_YES;
    size_t n = *size;

    *size = 0; /* always consumed: buffered, or dropped past the cap */
    c->bytes_in += n;
    if (c->too_big) {
        if (c->bytes_in - c->cap > DISCARD_MAX)
            ret = MHD_NO; /* hang up rather than read a flood */
        goto out;
    }
    if (buf_append(&c->body, data, n) < 0) {
        c->too_big = true;
        buf_cleanup(&c->body); /* drop what we have; the rest is not buffered */
    }
out:
    return ret;
}

static enum MHD_Result finish(struct conn *c)
{
    struct http_server *srv = c->srv;
    const struct http_route *r = c->req.route;
    enum MHD_Result ret;
    int m = c->req.method, rc;
    char msg[256];

    if (c->too_big) {
        http_resp_header(&c->resp, "Connection", "close");
        ret = reply_error(c, 413, "request body exceeds %zu bytes", c->cap);
        goto out;
    }
    if (c->gzip && c->body.len) {
        struct buf inflated;
        buf_init(&inflated, c->cap);
        rc = inflate_gzip(buf_str(&c->body), &inflated);
        buf_cleanup(&c->body);
        c->body = inflated;
        if (rc < 0) {
            if (rc == HR_TOOBIG)
                ret = reply_error(c, 413, "decompressed request body exceeds %zu bytes", c->cap);
            else if (rc == HR_NOMEM)
                ret = reply_error(c, 500, "cannot decompress the request body");
            else
                ret = reply_error(c, 400, "request body is not valid gzip");
            goto out;
        }
    }
    if (c->body.len)
        c->req.body = buf_str(&c->body);

    if ((m == HTTP_POST || m == HTTP_PUT || m == HTTP_PATCH) && c->req.body.len &&
        !(r->flags & ROUTE_ANY_CTYPE)) {
        const char *ct = req_hdr(c, "Content-Type");
        if (ct && !ctype_is_json(ct)) {
            ret = reply_error(c, 415, "Content-Type must be application/json");
            goto out;
        }
    }

    if (r->auth != AUTH_PUBLIC) {
        memset(msg, 0, sizeof msg);
        rc = srv->cfg.auth ? srv->cfg.auth(srv->cfg.auth_ctx, &c->req, msg) : HR_UNAVAIL;
        msg[sizeof msg - 1] = '\0';
        if (rc == HR_PERM) {
            http_resp_header(&c->resp, "WWW-Authenticate", "Bearer");
            ret = reply_error(c, 401, "%s", msg[0] ? msg : "missing or invalid credentials");
            goto out;
        }
        if (rc == HR_CONFLICT) {
            ret = reply_error(c, 403, "%s",
                              msg[0] ? msg : "this credential may not call this route");
            goto out;
        }
        if (rc < 0) {
            LOG_E("http.auth_failed", "route=%s rc=%d", r->name ? r->name : "-", rc);
            ret = reply_error(c, 500, "authentication is unavailable");
            goto out;
        }
    }
    if (!r->fn) {
        ret = reply_error(c, 500, "route has no handler");
        goto out;
    }
    if (srv->cfg.wrap)
        srv->cfg.wrap(srv->cfg.wrap_ctx, &c->req, &c->resp, r->fn, srv->cfg.handler_ctx);
    else
        r->fn(srv->cfg.handler_ctx, &c->req, &c->resp);
    ret = reply(c);
out:
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct conn *c = *con_cls;
    enum MHD_Result ret;

    if (!c) /* on_uri always runs first; this is only a guard */
        *con_cls = c = conn_new(cls, mc, url);
    c->mc = mc;
    if (!c->started)
        ret = begin(c, method);
    else {
        log_set_rid(c->req.rid);
        if (*upload_data_size)
            ret = take_upload(c, upload_data, upload_data_size);
        else
            ret = finish(c);
    }
    log_set_rid(NULL);
    return ret;
}

/* log_path: the path for the access log, quoted when it holds odd bytes; never the
 * query string (on_uri cut it off). */
static const char *log_path(struct str p, char *out, size_t cap)
{
    char tmp[256];
    bool plain = true;
    size_t n = str_copy(tmp, sizeof tmp, p);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)tmp[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            plain = false;
    }
    if (plain) {
        str_copy(out, cap, (struct str){tmp, n});
        return out;
    }
    return log_q(out, cap, tmp);
}

/* on_done: MHD's request-completed callback; the only place a conn is freed. */
static void on_done(void *cls, struct MHD_Connection *mc, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    struct conn *c = *con_cls;
    char path[300];

    *con_cls = NULL;
    if (!c)
        return;
    if (c->started) {
        double dur = now_s() - c->t0;
        const char *rname = c->req.route ? (c->req.route->name ? c->req.route->name : "unnamed")
                                         : "unmatched";
        log_set_rid(c->req.rid);
        log_path(c->req.path, path, sizeof path);
        if (c->status) {
            metrics_http_observe(rname, c->status, dur);
            LOG_I("http.request",
                  "method=%s path=%s route=%s status=%d dur_ms=%.2f bytes_in=%zu",
                  c->req.method ? http_method_name(c->req.method) : "OTHER", path, rname,
                  c->status, dur * 1000.0, c->bytes_in);
        } else {
            LOG_I("http.aborted", "method=%s path=%s route=%s code=%d dur_ms=%.2f bytes_in=%zu",
                  c->req.method ? http_method_name(c->req.method) : "OTHER", path, rname,
                  (int)toe, dur * 1000.0, c->bytes_in);
        }
        log_set_rid(NULL);
    }
    buf_cleanup(&c->body);
    buf_cleanup(&c->resp.body);
    if (c->counted)
        atomic_fetch_sub(&srv->inflight, 1);
    arena_free(c->arena); /* c lives in it */
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512], q[600];
    size_t n;
    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    LOG_W("http.mhd", "msg=%s", log_q(q, sizeof q, msg));
}

/* ---- start and stop ---- */

static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl,
                        struct herr *err)
{
    int rc = HR_OK;
    char host[64];
    const char *ps;
    size_t hn;
    int64_t port;

    memset(ss, 0, sizeof *ss);
    if (!s || !*s) {
        rc = herr_set(err, HR_INVAL, "listen address is empty");
        goto out;
    }
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof host) {
            rc = herr_set(err, HR_INVAL, "bad listen address \"%s\" (want [v6]:port)", s);
            goto out;
        }
        hn = (size_t)(rb - s - 1);
        memcpy(host, s + 1, hn);
        host[hn] = '\0';
        ps = rb + 2;
        a6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
            rc = herr_set(err, HR_INVAL, "bad IPv6 address in \"%s\"", s);
            goto out;
        }
        *sl = sizeof *a6;
    } else {
        const char *colon = strrchr(s, ':');
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        if (!colon || (size_t)(colon - s) >= sizeof host) {
            rc = herr_set(err, HR_INVAL, "bad listen address \"%s\" (want host:port)", s);
            goto out;
        }
        hn = (size_t)(colon - s);
        memcpy(host, s, hn);
        host[hn] = '\0';
        ps = colon + 1;
        a4->sin_family = AF_INET;
        if (hn == 0)
            a4->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (strcmp(host, "localhost") == 0)
            a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
            rc = herr_set(err, HR_INVAL, "bad IPv4 address in \"%s\"", s);
            goto out;
        }
        *sl = sizeof *a4;
    }
    if (ps[0] < '0' || ps[0] > '9' || str_to_i64(str_c(ps), &port) < 0 || port > 65535) {
        rc = herr_set(err, HR_INVAL, "bad port in listen address \"%s\"", s);
        goto out;
    }
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
out:
    return rc;
}

/* http_server_start: see http.h. We bind the socket ourselves (for a precise errno) and
 * hand it to MHD. Call from one thread; cfg->routes must outlive the server. */
int http_server_start(const struct http_cfg *cfg, struct http_server **out, struct herr *err)
{
    int rc = HR_OK, fd = -1, one = 1;
    struct http_server *srv = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    const union MHD_DaemonInfo *info;
    char ebuf[128];

    *out = NULL;
    if (!cfg || !cfg->routes) {
        rc = herr_set(err, HR_INVAL, "no route table");
        goto out;
    }
    rc = parse_listen(cfg->listen, &ss, &sl, err);
    if (rc < 0)
        goto out;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = herr_set(err, HR_IO, "socket: %s", strerror_r(errno, ebuf, sizeof ebuf));
        goto out;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
        rc = herr_set(err, HR_IO, "cannot listen on %s: %s", cfg->listen,
                      strerror_r(errno, ebuf, sizeof ebuf));
        goto out;
    }

    srv = xcalloc(1, sizeof *srv);
    srv->cfg = *cfg;
    if (srv->cfg.threads <= 0)
        srv->cfg.threads = DEFAULT_THREADS;
    if (srv->cfg.max_body == 0)
        srv->cfg.max_body = DEFAULT_MAX_BODY;
    if (srv->cfg.max_inflight <= 0)
        srv->cfg.max_inflight = DEFAULT_MAX_INFLIGHT;
    if (srv->cfg.shutdown_ms <= 0)
        srv->cfg.shutdown_ms = DEFAULT_SHUTDOWN_MS;
    atomic_init(&srv->inflight, 0);

    srv->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)srv->cfg.threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)IDLE_TIMEOUT_S,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, (void *)srv,
        MHD_OPTION_END);
    if (!srv->d) {
        rc = herr_set(err, HR_IO, "cannot start the HTTP server on %s", cfg->listen);
        goto out;
    }
    fd = -1; /* MHD's now (until quiesced) */
    info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    LOG_I("http.start", "listen=%s port=%d threads=%d", cfg->listen, srv->port,
          srv->cfg.threads);
    *out = srv;
    srv = NULL;
out:
    if (fd >= 0)
        close(fd);
    free(srv);
    return rc;
}

int http_server_port(const struct http_server *srv)
{
    return srv ? srv->port : 0;
}

/* http_server_stop: see http.h. Handlers still running when the grace ends are not
 * interrupted: MHD_stop_daemon joins the pool threads, so it waits for them. Call from
 * the thread that owns srv, never from a handler. */
void http_server_stop(struct http_server *srv)
{
    MHD_socket lfd;
    double deadline;
    int left;

    if (!srv)
        return;
    lfd = MHD_quiesce_daemon(srv->d);
    deadline = now_s() + (double)srv->cfg.shutdown_ms / 1000.0;
    while ((left = atomic_load(&srv->inflight)) > 0 && now_s() < deadline) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (left > 0)
        LOG_W("http.stop_timeout", "inflight=%d grace_ms=%lld", left,
              (long long)srv->cfg.shutdown_ms);
    MHD_stop_daemon(srv->d);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    LOG_I("http.stop", "port=%d", srv->port);
    free(srv);
}
