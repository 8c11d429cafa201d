/* ui.c: the admin web UI (web/), served from the copy embedded at build time
 * (src/util/embedded.h): GET /ui and /ui/ answer web/index.html, GET /ui/<path> the
 * embedded file web/<path> with its content type. A lookup is an exact match in the
 * embedded table under "web/", so no path reaches anything else (no file system, no
 * "..": an unknown path is a 404). The routes are public; the UI's API calls carry the
 * admin key the user signs in with. Every answer has Cache-Control: no-cache (a new
 * binary serves new files), a strict Content-Security-Policy (same-origin scripts,
 * styles and connections only; email previews are sandboxed srcdoc iframes) and
 * X-Content-Type-Options: nosniff. */
#include "api.h"

#include "../util/embedded.h"

#include <stdio.h>
#include <string.h>

#define UI_PREFIX "web/"
#define UI_INDEX "web/index.html"
#define UI_PATH_MAX 256
#define UI_CSP                                                                            \
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "          \
    "img-src 'self' data: https:; frame-src 'self' data:; connect-src 'self'; "          \
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

static void security_headers(struct http_resp *resp)
{
    http_resp_header(resp, "Cache-Control", "no-cache");
    http_resp_header(resp, "Content-Security-Policy", UI_CSP);
    http_resp_header(resp, "X-Content-Type-Options", "nosniff");
    http_resp_header(resp, "Referrer-Policy", "no-referrer");
}

static void serve(struct http_resp *resp, const char *path)
{
    const struct embedded_file *f = embedded_find(path);
    security_headers(resp);
    if (!f) {
        http_resp_error(resp, 404, "invalid_request_error", "no such file in the admin UI");
        return;
    }
    http_resp_raw(resp, 200, f->content_type, (struct str){(const char *)f->data, f->len});
}

void api_ui_index(void *vctx, struct http_req *req, struct http_resp *resp)
{
    serve(resp, UI_INDEX);
}

void api_ui_file(void *vctx, struct http_req *req, struct http_resp *resp)
{
    char path[UI_PATH_MAX];
    struct str p = req->nparams > 0 ? req->params[0] : STR_NULL;
    if (p.len == 0 || p.len > UI_PATH_MAX - sizeof UI_PREFIX) {
        security_headers(resp);
        http_resp_error(resp, 404, "invalid_request_error", "no such file in the admin UI");
        return;
    }
    snprintf(path, sizeof path, "%s%.*s", UI_PREFIX, (int)p.len, p.p);
    if (strlen(path) != sizeof UI_PREFIX - 1 + p.len) { /* a NUL inside the path */
        security_headers(resp);
        http_resp_error(resp, 404, "invalid_request_error", "no such file in the admin UI");
        return;
    }
    serve(resp, path);
}
