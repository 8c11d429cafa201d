/* fuzz_router.c: libFuzzer target for the request router and request-body handling of
 * src/http. Input: "METHOD /path?query" as the first line, then optionally the request
 * body. The router matches method and path against a fixed table shaped like herald's
 * api_routes (literal segments, :params, trailing *); the body goes through the server's
 * gzip inflation under a cap and then json_parse_bounded, as finish() and a handler do.
 * http.c is included to reach its file-static inflate_gzip(). */
#include "fuzz_common.h"
#include "../../src/http/http.c"

#define FUZZ_BODY_CAP (64u * 1024)

#define R(m, p) {m, p, NULL, AUTH_ADMIN, p, 0, 0}
static const struct http_route routes[] = {
    R(HTTP_GET, "/healthz"),
    R(HTTP_GET, "/ui"),
    R(HTTP_GET, "/ui/"),
    R(HTTP_GET, "/ui/*"),
    R(HTTP_POST, "/v1/:kind"),
    R(HTTP_POST, "/inbound/segment"),
    R(HTTP_POST, "/inbound/courier"),
    R(HTTP_GET, "/profiles/:id"),
    R(HTTP_POST, "/profiles/:id"),
    R(HTTP_PUT, "/profiles/:id"),
    R(HTTP_PATCH, "/profiles/:id"),
    R(HTTP_DELETE, "/profiles/:id"),
    R(HTTP_GET, "/profiles/:id/lists"),
    R(HTTP_POST, "/send"),
    R(HTTP_GET, "/messages/:id"),
    R(HTTP_GET, "/messages/:id/history"),
    R(HTTP_POST, "/messages/:id/cancel"),
    R(HTTP_POST, "/automations/invoke"),
    R(HTTP_GET, "/automations/runs/:id"),
    R(HTTP_GET, "/automations/:id"),
    R(HTTP_PUT, "/automations/:id"),
    R(HTTP_POST, "/automations/:id/invoke"),
    R(HTTP_GET, "/catalog/events/*"),
    R(HTTP_HEAD, "/head/:a"),
    R(HTTP_GET, "/a/:b/:c/:d/:e/:f/:g"),
    R(HTTP_GET, "/a/:b/:c/:d/:e/:f/*"),
    R(HTTP_OPTIONS, "/opt/*"),
    R(HTTP_GET, "/"),
    {0, NULL, NULL, 0, NULL, 0, 0},
};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const unsigned char *nl = memchr(data, '\n', size);
    size_t line = nl ? (size_t)(nl - data) : size;
    const unsigned char *sp = memchr(data, ' ', line);
    char method_text[16];
    char *path;
    size_t plen;
    int method, nparams = 0, allowed = 0;
    struct str params[HTTP_MAX_PARAMS];
    struct arena *a = arena_new(4096);
    const struct http_route *r;

    if (sp && (size_t)(sp - data) < sizeof method_text) {
        memcpy(method_text, data, (size_t)(sp - data));
        method_text[sp - data] = '\0';
        method = http_method_parse(method_text);
        (void)http_method_name(method);
        plen = line - (size_t)(sp - data) - 1;
        path = malloc(plen ? plen : 1); /* exactly plen bytes: ASan sees any overread */
        memcpy(path, sp + 1, plen);
    } else {
        method = HTTP_GET;
        plen = line;
        path = malloc(plen ? plen : 1);
        memcpy(path, data, plen);
    }

    r = http_route_match(routes, method, (struct str){path, plen}, a, params, &nparams,
                         &allowed);
    if (r) {
        CHECK(allowed == 0);
        CHECK(nparams >= 0 && nparams <= HTTP_MAX_PARAMS);
        CHECK(r->method == method || (method == HTTP_HEAD && r->method == HTTP_GET));
        for (int k = 0; k < nparams; k++) {
            CHECK(params[k].p != NULL && params[k].p[params[k].len] == '\0');
            CHECK(params[k].len <= plen);
        }
    } else {
        CHECK(nparams == 0);
        CHECK(allowed >= -1);
        if (allowed > 0)
            CHECK((allowed & method) == 0);
    }
    free(path);
    arena_free(a);

    if (nl && (size_t)(nl - data) + 1 < size) {
        const unsigned char *b = nl + 1;
        size_t blen = size - (size_t)(b - data);
        struct buf in, inflated;
        cJSON *v = NULL;
        int rc;
        buf_init(&in, FUZZ_BODY_CAP);
        if (buf_append(&in, b, blen) == 0) {
            buf_init(&inflated, FUZZ_BODY_CAP);
            rc = inflate_gzip(buf_str(&in), &inflated);
            CHECK(inflated.len <= FUZZ_BODY_CAP);
            if (rc == 0 && inflated.len)
                (void)json_parse_bounded(inflated.p, inflated.len, 64, &v, NULL);
            cJSON_Delete(v);
            buf_cleanup(&inflated);
            /* a plain (not gzip) body goes straight to the JSON parser */
            v = NULL;
            (void)json_parse_bounded(in.p, in.len, 64, &v, NULL);
            cJSON_Delete(v);
        }
        buf_cleanup(&in);
    }
    return 0;
}
