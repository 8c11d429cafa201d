/* render.c: POST /render (herald's own), a preview of Elemental content on one channel,
 * rendered exactly as a send would render it (elemental_render with the engine's
 * template cache), against sample data and profile given in the request. Nothing is
 * stored or sent. Body:
 *   {content (Elemental) | template (a template id: its draft content),
 *    channel: email|sms|push|direct_message|webhook, data?, profile?, brand_id?}
 * Answer: {channel, content: {subject, html, text, title, body, json?}} (absent parts
 * null, json only when the channel produced one). The brand is brand_id, else the
 * template's brand, else the workspace default (settings), else none. */
#include "api.h"
#include "templates.h"

#include "../engine/send.h"
#include "../render/elemental.h"
#include "../util/json.h"

#include <string.h>

static cJSON *str_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *load_doc(struct api_ctx *ctx, struct arena *a, const char *coll, const char *id)
{
    struct doc_rec d;
    if (!id || !template_id_valid(str_c(id)))
        return NULL;
    if (store_doc_get(ctx->store, coll, str_c(id), a, &d) != HR_OK)
        return NULL;
    return cJSON_ParseWithLength(d.body.p, d.body.len);
}

void api_render(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *body = NULL, *tmpl = NULL, *brand = NULL, *rctx = NULL, *out = NULL, *c;
    const cJSON *content, *data, *profile;
    const char *chname, *tid, *bid;
    enum channel ch;
    struct content rc_out;
    struct herr err;
    struct str v;
    int rc;

    memset(&rc_out, 0, sizeof rc_out);
    if (api_parse_json(req, resp, &body) < 0)
        return;
    chname = json_str(body, "channel");
    ch = chname ? channel_parse(chname) : CH_NONE;
    if (ch == CH_NONE) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "channel must be one of email, sms, push, direct_message, webhook");
        goto out;
    }
    content = json_member(body, "content");
    tid = json_str(body, "template");
    if (content && tid) {
        http_resp_error(resp, 400, "invalid_request_error", "give content or template, not both");
        goto out;
    }
    if (tid) {
        if (!template_id_valid(str_c(tid))) {
            http_resp_error(resp, 400, "invalid_request_error", "template: a malformed id");
            goto out;
        }
        tmpl = load_doc(ctx, req->arena, TEMPLATES_COLL, tid);
        if (!cJSON_IsObject(tmpl) || json_bool(tmpl, "archived", false)) {
            http_resp_error(resp, 404, "invalid_request_error", "template %s not found", tid);
            goto out;
        }
        content = json_member(tmpl, "content");
    }
    if (!cJSON_IsObject(content)) {
        http_resp_error(resp, 400, "invalid_request_error",
                        tid ? "the template has no content" : "content (an object) or template is required");
        goto out;
    }
    data = json_member(body, "data");
    profile = json_member(body, "profile");
    if ((data && !cJSON_IsObject(data) && !cJSON_IsNull(data)) ||
        (profile && !cJSON_IsObject(profile) && !cJSON_IsNull(profile))) {
        http_resp_error(resp, 400, "invalid_request_error", "data and profile must be objects");
        goto out;
    }
    bid = json_str(body, "brand_id");
    if (!bid)
        bid = json_str(json_obj(tmpl, "brand"), "id");
    if (!bid && store_meta_get(ctx->store, "default_brand_id", req->arena, &v) == HR_OK && v.len)
        bid = v.p;
    if (bid)
        brand = load_doc(ctx, req->arena, BRANDS_COLL, bid);

    rctx = cJSON_CreateObject();
    cJSON_AddItemToObject(rctx, "data", cJSON_IsObject(data) ? cJSON_Duplicate(data, 1)
                                                             : cJSON_CreateObject());
    cJSON_AddItemToObject(rctx, "profile", cJSON_IsObject(profile) ? cJSON_Duplicate(profile, 1)
                                                                   : cJSON_CreateObject());
    cJSON_AddItemToObject(rctx, "brand", brand ? cJSON_Duplicate(brand, 1) : cJSON_CreateNull());
    cJSON_AddStringToObject(rctx, "recipient", "");
    cJSON_AddStringToObject(rctx, "messageId", "preview");
    cJSON_AddStringToObject(rctx, "event", "");
    cJSON_AddStringToObject(rctx, "template", tid ? tid : "");
    if (json_str(profile, "locale"))
        cJSON_AddStringToObject(rctx, "locale", json_str(profile, "locale"));

    herr_clear(&err);
    rc = elemental_render(content, ch, rctx, ctx->engine ? ctx->engine->hbs : NULL, &rc_out, &err);
    if (rc < 0) {
        /* a render limit (step budget, markdown block caps, output cap) is a property of
         * the content, as a syntax error is: 400 either way, the message says which */
        http_resp_error(resp, 400, "invalid_request_error", "%s",
                        err.msg[0] ? err.msg : "the content does not render");
        goto out;
    }
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "channel", channel_name(ch));
    c = cJSON_AddObjectToObject(out, "content");
    cJSON_AddItemToObject(c, "subject", str_or_null(rc_out.subject));
    cJSON_AddItemToObject(c, "html", str_or_null(rc_out.html));
    cJSON_AddItemToObject(c, "text", str_or_null(rc_out.text));
    cJSON_AddItemToObject(c, "title", str_or_null(rc_out.title));
    cJSON_AddItemToObject(c, "body", str_or_null(rc_out.body));
    if (rc_out.json)
        cJSON_AddItemToObject(c, "json", cJSON_Duplicate(rc_out.json, 1));
    http_resp_json(resp, 200, out);
out:
    content_cleanup(&rc_out);
    cJSON_Delete(out);
    cJSON_Delete(rctx);
    cJSON_Delete(brand);
    cJSON_Delete(tmpl);
    cJSON_Delete(body);
}
