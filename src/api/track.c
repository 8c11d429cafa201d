/* track.c: the unauthenticated open pixel and click redirect (src/engine/tracking.h).
 *   GET /t/o/:token  -> 200 image/gif (1x1), records OPENED
 *   GET /t/c/:token  -> 302 Location: <the link signed into the token>, records CLICKED
 * Tokens are checked (bounded length, constant-time MAC compare) before anything else;
 * a malformed, forged or edited token, or one of the other kind, is 404 with no detail.
 * The redirect target comes only from the signed token, never from the query. */
#include "api.h"

#include "../engine/send.h"
#include "../engine/tracking.h"
#include "../util/log.h"

#include <string.h>

/* the classic transparent 1x1 GIF */
static const unsigned char PIXEL[] = {
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};

struct rec_arg {
    char kind;
    const char *id, *link;
    int64_t now;
};

static int rec_tx(struct store_txn *t, void *varg)
{
    struct rec_arg *a = varg;
    return engine_track_record(t, a->kind, a->id, a->link, a->now);
}

/* track: check the token of kind `want`, record it; false (404 answered) when bad. */
static bool track(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp, char want,
                  char *link, size_t link_cap)
{
    uint8_t key[32];
    char kind = 0, id[256];
    struct rec_arg a;
    struct herr err;
    int rc;
    if (req->nparams < 1 || req->params[0].len > TRACK_TOKEN_MAX ||
        tracking_key(ctx->store, key) < 0 ||
        tracking_token_check(key, req->params[0], &kind, id, sizeof id, link, link_cap) < 0 ||
        kind != want) {
        http_resp_error(resp, 404, "invalid_request_error", "not found");
        return false;
    }
    a.kind = kind;
    a.id = id;
    a.link = link;
    a.now = hclock_now(ctx->clock);
    herr_clear(&err);
    rc = store_write(ctx->store, rec_tx, &a, &err);
    if (rc < 0 && rc != HR_NOTFOUND) /* the recipient still gets the pixel or the page */
        LOG_W("track.record_failed", "message=%s kind=%c rc=%d", id, kind, rc);
    return true;
}

void api_track_open(void *vctx, struct http_req *req, struct http_resp *resp)
{
    char link[8];
    if (!track(vctx, req, resp, 'o', link, sizeof link))
        return;
    http_resp_header(resp, "Cache-Control", "no-store, max-age=0");
    http_resp_raw(resp, 200, "image/gif", (struct str){(const char *)PIXEL, sizeof PIXEL});
}

void api_track_click(void *vctx, struct http_req *req, struct http_resp *resp)
{
    char link[TRACK_LINK_MAX + 1];
    if (!track(vctx, req, resp, 'c', link, sizeof link))
        return;
    http_resp_header(resp, "Cache-Control", "no-store, max-age=0");
    http_resp_header(resp, "Location", link);
    http_resp_raw(resp, 302, "text/plain", str_c("redirecting\n"));
}
