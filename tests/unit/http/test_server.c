/* test_server.c: the HTTP server end to end: a real daemon on 127.0.0.1:0 with a small
 * route table, driven by libcurl. Covers request ids, 404/405 shapes, auth (401/403),
 * body caps (413, gzip bombs), gzip bodies, Content-Type (415), CORS preflight, HEAD,
 * default error bodies, the in-flight limit (503), graceful stop, access log and metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/http/http.h"
#include "../../../src/util/buf.h"
#include "../../../src/util/log.h"
#include "../../../src/util/metrics.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* ---- handlers ---- */

static size_t g_auth_saw_body; /* body length the authenticator saw */

static void h_echo(void *ctx, struct http_req *req, struct http_resp *resp)
{
    cJSON *o = cJSON_CreateObject();
    const char *q = http_req_query(req, "x");
    cJSON_AddStringToObject(o, "method", http_method_name(req->method));
    cJSON_AddStringToObject(o, "body", req->body.p);
    cJSON_AddNumberToObject(o, "body_len", (double)req->body.len);
    cJSON_AddStringToObject(o, "rid", req->rid);
    cJSON_AddStringToObject(o, "peer", http_req_peer(req));
    if (q)
        cJSON_AddStringToObject(o, "q", q);
    if (req->nparams > 0)
        cJSON_AddStringToObject(o, "param", req->params[0].p);
    cJSON_AddNumberToObject(o, "key_id", (double)req->auth.key_id);
    http_resp_json(resp, 200, o);
    cJSON_Delete(o);
}

static void h_teapot(void *ctx, struct http_req *req, struct http_resp *resp)
{
    /* no body: the server writes the JSON error */
    resp->status = http_req_query(req, "conflict") ? 409 : 418;
}

static void h_hdr(void *ctx, struct http_req *req, struct http_resp *resp)
{
    http_resp_header(resp, "X-Custom", "yes");
    http_resp_raw(resp, 201, "text/plain", STR_LIT("hello"));
}

static void h_quote(void *ctx, struct http_req *req, struct http_resp *resp)
{
    http_resp_error(resp, 422, "invalid_request_error", "bad \"%s\"\n", "value");
}

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_entered, g_release;

static void h_block(void *ctx, struct http_req *req, struct http_resp *resp)
{
    pthread_mutex_lock(&g_mu);
    g_entered++;
    pthread_cond_broadcast(&g_cv);
    while (!g_release)
        pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    http_resp_raw(resp, 200, "text/plain", STR_LIT("unblocked"));
}

static void h_slow(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct timespec ts = {0, 300 * 1000 * 1000};
    pthread_mutex_lock(&g_mu);
    g_entered++;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    nanosleep(&ts, NULL);
    http_resp_raw(resp, 200, "text/plain", STR_LIT("slow done"));
}

static int fake_auth(void *ctx, struct http_req *req, char *msg)
{
    const char *a = http_req_header(req, "authorization");
    g_auth_saw_body = req->body.len;
    if (a && strcmp(a, "Bearer good") == 0) {
        req->auth.kind = 1;
        req->auth.key_id = 7;
        return 0;
    }
    if (a && strcmp(a, "Bearer wrongkind") == 0) {
        snprintf(msg, 256, "a write key cannot call admin routes");
        return HR_CONFLICT;
    }
    if (a && strcmp(a, "Bearer broken") == 0)
        return HR_IO;
    snprintf(msg, 256, "missing or unknown API key");
    return HR_PERM;
}

static const struct http_route routes[] = {
    {HTTP_GET, "/echo", h_echo, AUTH_PUBLIC, "echo", 0, 0},
    {HTTP_POST, "/echo", h_echo, AUTH_PUBLIC, "echo.post", 0, 0},
    {HTTP_GET, "/items/:id", h_echo, AUTH_PUBLIC, "items.get", 0, 0},
    {HTTP_GET, "/admin", h_echo, AUTH_ADMIN, "admin", 0, 0},
    {HTTP_POST, "/admin", h_echo, AUTH_ADMIN, "admin.post", 0, 0},
    {HTTP_POST, "/gz", h_echo, AUTH_PUBLIC, "gz", ROUTE_GZIP, 1024},
    {HTTP_POST, "/raw", h_echo, AUTH_PUBLIC, "raw", ROUTE_ANY_CTYPE, 0},
    {HTTP_GET, "/teapot", h_teapot, AUTH_PUBLIC, "teapot", 0, 0},
    {HTTP_GET, "/hdr", h_hdr, AUTH_PUBLIC, "hdr", 0, 0},
    {HTTP_GET, "/quote", h_quote, AUTH_PUBLIC, "quote", 0, 0},
    {HTTP_GET, "/block", h_block, AUTH_PUBLIC, "block", 0, 0},
    {HTTP_GET, "/slow", h_slow, AUTH_PUBLIC, "slow", 0, 0},
    {0},
};

/* ---- client helpers ---- */

struct res {
    long status;
    struct buf body, hdrs;
    CURLcode cc;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    return buf_append(ud, p, sz * n) == HR_OK ? sz * n : 0;
}

struct src {
    size_t left;
};

static size_t on_read(char *p, size_t sz, size_t n, void *ud)
{
    struct src *s = ud;
    size_t k = sz * n < s->left ? sz * n : s->left;
    if (k > 1000)
        k = 1000; /* many small chunks */
    memset(p, 'a', k);
    s->left -= k;
    return k;
}

static void res_free(struct res *r)
{
    buf_cleanup(&r->body);
    buf_cleanup(&r->hdrs);
}

/* req: method, path, headers (NULL-terminated, may be NULL), body (NULL: none; with
 * chunked != 0 a generated chunked body of that many bytes instead). */
static struct res req(int port, const char *method, const char *path, const char *const *hdrs,
                      const void *body, size_t blen, size_t chunked)
{
    struct res r;
    char url[512];
    struct curl_slist *sl = NULL;
    struct src src = {chunked};
    CURL *e = curl_easy_init();

    memset(&r, 0, sizeof r);
    buf_init(&r.body, 1 << 24);
    buf_init(&r.hdrs, 1 << 16);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    } else if (chunked) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, &src);
        sl = curl_slist_append(sl, "Transfer-Encoding: chunked");
        sl = curl_slist_append(sl, "Expect:");
    }
    for (; hdrs && *hdrs; hdrs++)
        sl = curl_slist_append(sl, *hdrs);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &r.hdrs);
    r.cc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(e);
    curl_slist_free_all(sl);
    return r;
}

/* hdr: the value of a response header (case-insensitive name), or NULL. */
static const char *hdr(struct res *r, const char *name, char *out, size_t cap)
{
    const char *p = buf_cstr(&r->hdrs);
    size_t n = strlen(name);
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            size_t len;
            while (*v == ' ')
                v++;
            len = (size_t)(eol - v);
            if (len >= cap)
                len = cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
        p = eol + 2;
    }
    return NULL;
}

static void assert_hdr(struct res *r, const char *name, const char *want)
{
    char v[512];
    const char *got = hdr(r, name, v, sizeof v);
    if (!got)
        fail_msg("missing header %s in:\n%s", name, buf_cstr(&r->hdrs));
    assert_string_equal(got, want);
}

/* assert_error: status and the exact error shape {"message": non-empty, "type": type}. */
static void assert_error(struct res *r, long status, const char *type)
{
    char ct[128];
    assert_int_equal(r->cc, CURLE_OK);
    assert_int_equal(r->status, status);
    assert_non_null(hdr(r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "application/json; charset=utf-8");
    cJSON *o = cJSON_Parse(buf_cstr(&r->body));
    if (!o)
        fail_msg("not JSON: %s", buf_cstr(&r->body));
    assert_int_equal(cJSON_GetArraySize(o), 2);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "message");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    assert_true(cJSON_IsString(m) && m->valuestring[0]);
    assert_true(cJSON_IsString(t));
    assert_string_equal(t->valuestring, type);
    cJSON_Delete(o);
}

static const char *jstr(struct res *r, const char *key, char *out, size_t cap)
{
    cJSON *o = cJSON_Parse(buf_cstr(&r->body));
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    const char *ret = NULL;
    if (cJSON_IsString(v)) {
        snprintf(out, cap, "%s", v->valuestring);
        ret = out;
    }
    cJSON_Delete(o);
    return ret;
}

static double jnum(struct res *r, const char *key)
{
    cJSON *o = cJSON_Parse(buf_cstr(&r->body));
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    cJSON_Delete(o);
    return d;
}

static size_t gzip_bytes(const void *in, size_t n, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    return len;
}

/* ---- the shared server ---- */

static struct http_server *g_srv;
static int g_port;

static struct http_server *start(int max_inflight)
{
    struct http_cfg cfg;
    struct http_server *s = NULL;
    struct herr err;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.max_inflight = max_inflight;
    cfg.shutdown_ms = 5000;
    cfg.routes = routes;
    cfg.auth = fake_auth;
    cfg.cors_allow = "https://app.example, https://other.example/";
    assert_int_equal(http_server_start(&cfg, &s, &err), HR_OK);
    assert_true(http_server_port(s) > 0);
    return s;
}

static int setup(void **state)
{
    g_srv = start(0);
    g_port = http_server_port(g_srv);
    return 0;
}

static int teardown(void **state)
{
    http_server_stop(g_srv);
    g_srv = NULL;
    return 0;
}

/* ---- tests ---- */

static void test_ok_and_request_id(void **state)
{
    char v[128], rid[128];
    struct res r = req(g_port, "GET", "/echo?x=a%20b&y=2", NULL, NULL, 0, 0);
    assert_int_equal(r.cc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_hdr(&r, "Content-Type", "application/json; charset=utf-8");
    assert_non_null(hdr(&r, "X-Request-Id", rid, sizeof rid));
    assert_int_equal(strncmp(rid, "1-", 2), 0); /* a fresh id */
    assert_true(strlen(rid) >= 30);
    assert_string_equal(jstr(&r, "rid", v, sizeof v), rid); /* the handler saw the same id */
    assert_string_equal(jstr(&r, "q", v, sizeof v), "a b");
    assert_string_equal(jstr(&r, "peer", v, sizeof v), "127.0.0.1");
    assert_string_equal(jstr(&r, "method", v, sizeof v), "GET");
    assert_null(hdr(&r, "Access-Control-Allow-Origin", v, sizeof v));
    res_free(&r);

    const char *h1[] = {"X-Request-Id: abc-123.X_y", NULL};
    r = req(g_port, "GET", "/echo", h1, NULL, 0, 0);
    assert_hdr(&r, "X-Request-Id", "abc-123.X_y");
    res_free(&r);

    char h64[100], h65[100];
    snprintf(h64, sizeof h64, "X-Request-Id: %064d", 1);
    snprintf(h65, sizeof h65, "X-Request-Id: %065d", 1);
    const char *h2[] = {h64, NULL};
    r = req(g_port, "GET", "/echo", h2, NULL, 0, 0);
    assert_hdr(&r, "X-Request-Id", h64 + 14);
    assert_string_equal(jstr(&r, "rid", v, sizeof v), h64 + 14);
    res_free(&r);

    const char *bad[][2] = {{h65, NULL}, {"X-Request-Id: bad id!", NULL}, {"X-Request-Id: a\"b", NULL}};
    for (size_t i = 0; i < 3; i++) {
        r = req(g_port, "GET", "/echo", bad[i], NULL, 0, 0);
        assert_non_null(hdr(&r, "X-Request-Id", rid, sizeof rid));
        assert_int_equal(strncmp(rid, "1-", 2), 0); /* replaced by a fresh id */
        res_free(&r);
    }
}

static void test_404_405(void **state)
{
    char v[128];
    struct res r = req(g_port, "GET", "/nope", NULL, NULL, 0, 0);
    assert_error(&r, 404, "invalid_request_error");
    assert_non_null(hdr(&r, "X-Request-Id", v, sizeof v));
    res_free(&r);

    r = req(g_port, "DELETE", "/echo", NULL, NULL, 0, 0);
    assert_error(&r, 405, "invalid_request_error");
    assert_hdr(&r, "Allow", "GET, HEAD, POST, OPTIONS");
    res_free(&r);

    r = req(g_port, "PUT", "/gz", NULL, "{}", 2, 0);
    assert_error(&r, 405, "invalid_request_error");
    assert_hdr(&r, "Allow", "POST, OPTIONS");
    res_free(&r);

    r = req(g_port, "BREW", "/echo", NULL, NULL, 0, 0); /* unknown method */
    assert_error(&r, 405, "invalid_request_error");
    res_free(&r);
}

static void test_params(void **state)
{
    char v[128];
    struct res r = req(g_port, "GET", "/items/a%40b.com", NULL, NULL, 0, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(&r, "param", v, sizeof v), "a@b.com");
    res_free(&r);
    r = req(g_port, "GET", "/items/x%23y%25z/", NULL, NULL, 0, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(&r, "param", v, sizeof v), "x#y%z");
    res_free(&r);
    r = req(g_port, "GET", "/items/a%zz", NULL, NULL, 0, 0);
    assert_error(&r, 400, "invalid_request_error");
    res_free(&r);
}

static void test_auth(void **state)
{
    char v[256];
    struct res r = req(g_port, "GET", "/admin", NULL, NULL, 0, 0);
    assert_error(&r, 401, "authentication_error");
    assert_hdr(&r, "WWW-Authenticate", "Bearer");
    assert_string_equal(jstr(&r, "message", v, sizeof v), "missing or unknown API key");
    res_free(&r);

    const char *wk[] = {"Authorization: Bearer wrongkind", NULL};
    r = req(g_port, "GET", "/admin", wk, NULL, 0, 0);
    assert_error(&r, 403, "authorization_error");
    assert_string_equal(jstr(&r, "message", v, sizeof v), "a write key cannot call admin routes");
    res_free(&r);

    const char *br[] = {"Authorization: Bearer broken", NULL};
    r = req(g_port, "GET", "/admin", br, NULL, 0, 0);
    assert_error(&r, 500, "api_error");
    res_free(&r);

    const char *good[] = {"Authorization: Bearer good", NULL};
    r = req(g_port, "GET", "/admin", good, NULL, 0, 0);
    assert_int_equal(r.status, 200);
    assert_true(jnum(&r, "key_id") == 7);
    res_free(&r);

    /* the authenticator runs from the headers, before any of the body is read */
    const char *goodj[] = {"Authorization: Bearer good", "Content-Type: application/json", NULL};
    g_auth_saw_body = 99;
    r = req(g_port, "POST", "/admin", goodj, "{\"writeKey\":\"k\"}", 16, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(g_auth_saw_body, 0);
    res_free(&r);
}

static void test_body_caps(void **state)
{
    const char *json[] = {"Content-Type: application/json", NULL};
    const char *json_expect[] = {"Content-Type: application/json", "Expect: 100-continue", NULL};
    char *big = malloc(7 << 20);
    memset(big, ' ', 7 << 20);

    /* over the route's 1 KiB cap: refused from Content-Length */
    struct res r = req(g_port, "POST", "/gz", json_expect, big, 2000, 0);
    assert_error(&r, 413, "invalid_request_error");
    res_free(&r);
    /* exactly the cap is fine */
    big[0] = '1';
    r = req(g_port, "POST", "/gz", json, big, 1024, 0);
    assert_int_equal(r.status, 200);
    assert_true(jnum(&r, "body_len") == 1024);
    res_free(&r);
    /* over the 6 MiB default */
    r = req(g_port, "POST", "/echo", json_expect, big, 7 << 20, 0);
    assert_error(&r, 413, "invalid_request_error");
    res_free(&r);
    free(big);
    /* chunked (no Content-Length): detected while reading */
    r = req(g_port, "POST", "/gz", json, NULL, 0, 5000);
    assert_error(&r, 413, "invalid_request_error");
    res_free(&r);
    /* a chunked body under the cap works */
    r = req(g_port, "POST", "/raw", NULL, NULL, 0, 3000);
    assert_int_equal(r.status, 200);
    assert_true(jnum(&r, "body_len") == 3000);
    res_free(&r);
}

static void test_gzip(void **state)
{
    const char *gz[] = {"Content-Type: application/json", "Content-Encoding: gzip", NULL};
    const char *xgz[] = {"Content-Type: application/json", "Content-Encoding: x-gzip", NULL};
    const char *br[] = {"Content-Type: application/json", "Content-Encoding: br", NULL};
    const char *ident[] = {"Content-Type: application/json", "Content-Encoding: identity", NULL};
    const char *doc = "{\"userId\":\"u1\",\"event\":\"signed up\"}";
    unsigned char out[4096];
    char v[256];
    size_t n = gzip_bytes(doc, strlen(doc), out, sizeof out);

    struct res r = req(g_port, "POST", "/gz", gz, out, n, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(&r, "body", v, sizeof v), doc);
    res_free(&r);
    r = req(g_port, "POST", "/gz", xgz, out, n, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(&r, "body", v, sizeof v), doc);
    res_free(&r);

    /* the bomb: 256 KiB of zeros, compressed below the 1 KiB cap, inflates past it */
    char *zeros = calloc(1, 256 << 10);
    n = gzip_bytes(zeros, 256 << 10, out, sizeof out);
    free(zeros);
    assert_true(n < 1024);
    r = req(g_port, "POST", "/gz", gz, out, n, 0);
    assert_error(&r, 413, "invalid_request_error");
    assert_non_null(strstr(jstr(&r, "message", v, sizeof v), "decompressed"));
    res_free(&r);

    /* corrupt gzip */
    n = gzip_bytes(doc, strlen(doc), out, sizeof out);
    out[n / 2] ^= 0x5a;
    out[n / 2 + 1] ^= 0xa5;
    r = req(g_port, "POST", "/gz", gz, out, n, 0);
    assert_error(&r, 400, "invalid_request_error");
    res_free(&r);
    /* truncated gzip */
    n = gzip_bytes(doc, strlen(doc), out, sizeof out);
    r = req(g_port, "POST", "/gz", gz, out, n - 6, 0);
    assert_error(&r, 400, "invalid_request_error");
    res_free(&r);
    /* not gzip at all */
    r = req(g_port, "POST", "/gz", gz, doc, strlen(doc), 0);
    assert_error(&r, 400, "invalid_request_error");
    res_free(&r);

    /* gzip where the route does not take it; other encodings anywhere */
    n = gzip_bytes(doc, strlen(doc), out, sizeof out);
    r = req(g_port, "POST", "/echo", gz, out, n, 0);
    assert_error(&r, 415, "invalid_request_error");
    res_free(&r);
    r = req(g_port, "POST", "/gz", br, doc, strlen(doc), 0);
    assert_error(&r, 415, "invalid_request_error");
    res_free(&r);
    r = req(g_port, "POST", "/echo", ident, doc, strlen(doc), 0);
    assert_int_equal(r.status, 200);
    res_free(&r);
}

static void test_content_type(void **state)
{
    const char *doc = "{\"a\":1}";
    const char *ok[] = {"application/json", "application/json; charset=utf-8",
                        "Application/JSON;charset=UTF-8", "application/merge-patch+json",
                        "application/vnd.api+json", ""};
    const char *bad[] = {"text/plain", "application/x-www-form-urlencoded",
                         "application/jsonp", "text/json"};
    char h[128];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(h, sizeof h, "Content-Type:%s%s", ok[i][0] ? " " : "", ok[i]);
        const char *hs[] = {h, NULL}; /* "Content-Type:" alone removes curl's default */
        struct res r = req(g_port, "POST", "/echo", hs, doc, strlen(doc), 0);
        if (r.status != 200)
            fail_msg("%s -> %ld", h, r.status);
        res_free(&r);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(h, sizeof h, "Content-Type: %s", bad[i]);
        const char *hs[] = {h, NULL};
        struct res r = req(g_port, "POST", "/echo", hs, doc, strlen(doc), 0);
        assert_error(&r, 415, "invalid_request_error");
        res_free(&r);
    }
    const char *tp[] = {"Content-Type: text/plain", NULL};
    struct res r = req(g_port, "POST", "/raw", tp, "hi", 2, 0); /* ROUTE_ANY_CTYPE */
    assert_int_equal(r.status, 200);
    res_free(&r);
    r = req(g_port, "POST", "/echo", tp, "", 0, 0); /* empty body: no check */
    assert_int_equal(r.status, 200);
    res_free(&r);
}

static void test_cors(void **state)
{
    char v[256];
    const char *origin[] = {"Origin: https://app.example", NULL};
    struct res r = req(g_port, "OPTIONS", "/echo", origin, NULL, 0, 0);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body.len, 0);
    assert_hdr(&r, "Access-Control-Allow-Origin", "https://app.example");
    assert_hdr(&r, "Access-Control-Allow-Credentials", "true");
    assert_hdr(&r, "Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS");
    assert_hdr(&r, "Access-Control-Allow-Headers",
               "Authorization, Content-Type, X-Retry-Count, Idempotency-Key, "
               "X-Idempotency-Expiration");
    assert_hdr(&r, "Access-Control-Max-Age", "600");
    res_free(&r);

    r = req(g_port, "OPTIONS", "/admin", NULL, NULL, 0, 0); /* no auth, no Origin */
    assert_int_equal(r.status, 204);
    assert_hdr(&r, "Access-Control-Allow-Origin", "*");
    res_free(&r);

    r = req(g_port, "OPTIONS", "/nope", origin, NULL, 0, 0);
    assert_error(&r, 404, "invalid_request_error");
    assert_hdr(&r, "Access-Control-Allow-Origin", "https://app.example");
    res_free(&r);

    r = req(g_port, "GET", "/echo", origin, NULL, 0, 0);
    assert_int_equal(r.status, 200);
    assert_hdr(&r, "Access-Control-Allow-Origin", "https://app.example");
    res_free(&r);

    r = req(g_port, "GET", "/admin", origin, NULL, 0, 0); /* errors carry it too */
    assert_int_equal(r.status, 401);
    assert_non_null(hdr(&r, "Access-Control-Allow-Origin", v, sizeof v));
    res_free(&r);

    /* an origin off the list: no CORS headers, and its preflight is refused */
    const char *evil[] = {"Origin: https://evil.example", NULL};
    r = req(g_port, "GET", "/echo", evil, NULL, 0, 0);
    assert_int_equal(r.status, 200);
    assert_null(hdr(&r, "Access-Control-Allow-Origin", v, sizeof v));
    res_free(&r);
    const char *evil_pre[] = {"Origin: https://evil.example",
                              "Access-Control-Request-Method: POST", NULL};
    r = req(g_port, "OPTIONS", "/echo", evil_pre, NULL, 0, 0);
    assert_error(&r, 403, "authorization_error");
    assert_null(hdr(&r, "Access-Control-Allow-Origin", v, sizeof v));
    res_free(&r);
    /* the second entry (its trailing slash ignored) and the page's own origin are fine */
    const char *other[] = {"Origin: https://other.example", NULL};
    r = req(g_port, "GET", "/echo", other, NULL, 0, 0);
    assert_hdr(&r, "Access-Control-Allow-Origin", "https://other.example");
    res_free(&r);
    char self[64], host[64];
    snprintf(self, sizeof self, "Origin: http://127.0.0.1:%d", g_port);
    snprintf(host, sizeof host, "Host: 127.0.0.1:%d", g_port);
    const char *same[] = {self, host, NULL};
    r = req(g_port, "GET", "/echo", same, NULL, 0, 0);
    assert_non_null(hdr(&r, "Access-Control-Allow-Origin", v, sizeof v));
    res_free(&r);
}

static void test_head(void **state)
{
    char len_get[32], len_head[32], v[128];
    struct res g = req(g_port, "GET", "/hdr", NULL, NULL, 0, 0);
    struct res h = req(g_port, "HEAD", "/hdr", NULL, NULL, 0, 0);
    assert_int_equal(h.cc, CURLE_OK);
    assert_int_equal(h.status, 201);
    assert_int_equal(h.body.len, 0);
    assert_non_null(hdr(&g, "Content-Length", len_get, sizeof len_get));
    assert_non_null(hdr(&h, "Content-Length", len_head, sizeof len_head));
    assert_string_equal(len_get, "5");
    assert_string_equal(len_head, "5");
    assert_non_null(hdr(&h, "X-Request-Id", v, sizeof v));
    res_free(&g);
    res_free(&h);
}

static void test_resp_helpers(void **state)
{
    char v[256];
    struct res r = req(g_port, "GET", "/teapot", NULL, NULL, 0, 0);
    assert_error(&r, 418, "invalid_request_error");
    assert_string_equal(jstr(&r, "message", v, sizeof v), "HTTP error 418");
    res_free(&r);
    r = req(g_port, "GET", "/teapot?conflict=1", NULL, NULL, 0, 0);
    assert_error(&r, 409, "invalid_request_error");
    assert_string_equal(jstr(&r, "message", v, sizeof v), "Conflict");
    res_free(&r);

    r = req(g_port, "GET", "/hdr", NULL, NULL, 0, 0);
    assert_int_equal(r.status, 201);
    assert_hdr(&r, "X-Custom", "yes");
    assert_hdr(&r, "Content-Type", "text/plain");
    assert_string_equal(buf_cstr(&r.body), "hello");
    res_free(&r);

    r = req(g_port, "GET", "/quote", NULL, NULL, 0, 0);
    assert_error(&r, 422, "invalid_request_error");
    assert_string_equal(jstr(&r, "message", v, sizeof v), "bad \"value\"\n");
    res_free(&r);
}

struct bg {
    pthread_t t;
    int port;
    const char *path;
    struct res r;
};

static void *bg_run(void *arg)
{
    struct bg *b = arg;
    b->r = req(b->port, "GET", b->path, NULL, NULL, 0, 0);
    return NULL;
}

static void wait_entered(int n)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&g_mu);
    while (g_entered < n)
        if (pthread_cond_timedwait(&g_cv, &g_mu, &dl) != 0)
            break;
    assert_true(g_entered >= n);
    pthread_mutex_unlock(&g_mu);
}

static void test_inflight_503(void **state)
{
    char v[64];
    struct http_server *s = start(1);
    struct bg b = {.port = http_server_port(s), .path = "/block"};
    g_entered = g_release = 0;
    assert_int_equal(pthread_create(&b.t, NULL, bg_run, &b), 0);
    wait_entered(1);

    struct res r = req(b.port, "GET", "/echo", NULL, NULL, 0, 0);
    assert_error(&r, 503, "api_error");
    assert_hdr(&r, "Retry-After", "1");
    assert_non_null(hdr(&r, "X-Request-Id", v, sizeof v));
    res_free(&r);

    pthread_mutex_lock(&g_mu);
    g_release = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    pthread_join(b.t, NULL);
    assert_int_equal(b.r.status, 200);
    assert_string_equal(buf_cstr(&b.r.body), "unblocked");
    res_free(&b.r);

    /* the slot is free again (the first request completes just after its response) */
    long st = 0;
    for (int i = 0; i < 100 && st != 200; i++) {
        r = req(b.port, "GET", "/echo", NULL, NULL, 0, 0);
        st = r.status;
        res_free(&r);
        if (st != 200)
            usleep(10000);
    }
    assert_int_equal(st, 200);
    http_server_stop(s);
}

/* eight connections whose handlers all block until released: each has a thread of its
 * own, so all eight enter (a pool thread that took several of them would run one) */
static void test_connections_apart(void **state)
{
    struct http_server *s = start(0);
    struct bg b[8];
    g_entered = g_release = 0;
    for (int i = 0; i < 8; i++) {
        b[i] = (struct bg){.port = http_server_port(s), .path = "/block"};
        assert_int_equal(pthread_create(&b[i].t, NULL, bg_run, &b[i]), 0);
    }
    wait_entered(8);
    pthread_mutex_lock(&g_mu);
    g_release = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < 8; i++) {
        pthread_join(b[i].t, NULL);
        assert_int_equal(b[i].r.status, 200);
        res_free(&b[i].r);
    }
    http_server_stop(s);
}

static void test_stop_waits(void **state)
{
    struct http_server *s = start(0);
    struct bg b = {.port = http_server_port(s), .path = "/slow"};
    struct timespec t0, t1;
    g_entered = 0;
    assert_int_equal(pthread_create(&b.t, NULL, bg_run, &b), 0);
    wait_entered(1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    http_server_stop(s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(b.t, NULL);
    assert_int_equal(b.r.cc, CURLE_OK);
    assert_int_equal(b.r.status, 200);
    assert_string_equal(buf_cstr(&b.r.body), "slow done");
    res_free(&b.r);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms >= 150);
    /* no longer listening */
    struct res r = req(b.port, "GET", "/echo", NULL, NULL, 0, 0);
    assert_int_not_equal(r.cc, CURLE_OK);
    res_free(&r);
}

static void test_start_errors(void **state)
{
    struct http_cfg cfg;
    struct http_server *s = NULL;
    struct herr err;
    char addr[64];
    const char *bad[] = {"nonsense", "1.2.3.4.5:80", ":99999", "127.0.0.1:", "127.0.0.1:x",
                         "[::1]8080", "::1:8080", "", "localhostt:1", "127.0.0.1:-1"};
    memset(&cfg, 0, sizeof cfg);
    cfg.routes = routes;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.listen = bad[i];
        if (http_server_start(&cfg, &s, &err) != HR_INVAL)
            fail_msg("listen \"%s\" accepted", bad[i]);
        assert_null(s);
    }
    cfg.listen = NULL;
    assert_int_equal(http_server_start(&cfg, &s, &err), HR_INVAL);

    snprintf(addr, sizeof addr, "127.0.0.1:%d", g_port); /* taken by the shared server */
    cfg.listen = addr;
    assert_int_equal(http_server_start(&cfg, &s, &err), HR_IO);
    assert_null(s);
    assert_non_null(strstr(err.msg, "in use"));

    cfg.listen = "[::1]:0";
    if (http_server_start(&cfg, &s, &err) == HR_OK) { /* hosts without IPv6 skip this */
        assert_true(http_server_port(s) > 0);
        http_server_stop(s);
    }
    http_server_stop(NULL);
}

static void test_access_log_and_metrics(void **state)
{
    char line[4096], path[64];
    FILE *f = tmpfile();
    bool found = false;
    struct buf m;
    log_set_stream(f);
    log_set_level(LOG_INFO);
    const char *hs[] = {"Authorization: Bearer sekrit", "X-Request-Id: log-test-1", NULL};
    struct res r = req(g_port, "GET", "/echo?api_key=hunter2", hs, NULL, 0, 0);
    assert_int_equal(r.status, 200);
    res_free(&r);
    for (int i = 0; i < 200 && !found; i++) { /* on_done runs just after the response */
        fflush(f);
        rewind(f);
        while (fgets(line, sizeof line, f))
            if (strstr(line, "event=http.request") && strstr(line, "rid=log-test-1")) {
                found = true;
                break;
            }
        if (!found)
            usleep(5000);
    }
    log_set_level(LOG_WARN);
    log_set_stream(NULL);
    assert_true(found);
    snprintf(path, sizeof path, " path=/echo ");
    assert_non_null(strstr(line, path));
    assert_non_null(strstr(line, " method=GET "));
    assert_non_null(strstr(line, " route=echo "));
    assert_non_null(strstr(line, " status=200 "));
    assert_non_null(strstr(line, " dur_ms="));
    assert_null(strstr(line, "hunter2"));
    assert_null(strstr(line, "sekrit"));
    fclose(f);

    buf_init(&m, 1 << 20);
    assert_int_equal(metrics_render(&m), HR_OK);
    assert_non_null(strstr(buf_cstr(&m), "herald_http_requests_total{route=\"echo\",status=\"200\"}"));
    assert_non_null(strstr(buf_cstr(&m), "herald_http_requests_total{route=\"unmatched\",status=\"404\"}"));
    assert_non_null(strstr(buf_cstr(&m), "herald_http_request_duration_seconds_count{route=\"echo\"}"));
    buf_cleanup(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_and_request_id),
        cmocka_unit_test(test_404_405),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_body_caps),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_cors),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_resp_helpers),
        cmocka_unit_test(test_inflight_503),
        cmocka_unit_test(test_connections_apart),
        cmocka_unit_test(test_stop_waits),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_access_log_and_metrics),
    };
    int rc;
    log_set_level(LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    metrics_reset();
    return rc;
}
