/* sendgrid.c: email through SendGrid's v3 Mail Send API:
 *   POST {base_url}/v3/mail/send, Authorization: Bearer <api_key>, JSON with
 *   personalizations[0].to, from, subject, content (text/plain before text/html, as
 *   SendGrid requires) and custom_args.herald_message_id.
 * SendGrid answers 202 with the X-Message-Id header; errors carry
 * {"errors": [{"message", "field"}]}. */
#include "../util/json.h"
#include "../util/xalloc.h"
#include "http_client.h"
#include "mime.h"
#include "provider.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENDGRID_BASE_URL "https://api.sendgrid.com"

extern const struct provider_ops provider_sendgrid;

static const char *const sendgrid_secrets[] = {"api_key", NULL};

struct sendgrid_conf {
    const char *api_key;
    const char *from;
    const char *from_name;
    const char *reply_to;
    const char *base_url;
};

static int conf_parse(const cJSON *s, struct sendgrid_conf *c, struct herr *err)
{
    int rc;
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(s))
        return herr_set(err, HR_INVAL, "settings must be an object");
    rc = http_client_setting_str(s, "settings", "api_key", true, &c->api_key, err);
    if (rc == HR_OK && !http_client_header_value_ok(c->api_key))
        rc = herr_set(err, HR_INVAL, "settings.api_key must not contain control characters");
    if (rc == HR_OK)
        rc = mime_sender_parse(s, &c->from, &c->from_name, &c->reply_to, err);
    if (rc == HR_OK)
        rc = http_client_setting_base_url(s, &c->base_url, err);
    return rc;
}

static int sendgrid_validate(const cJSON *settings, struct herr *err)
{
    struct sendgrid_conf c;
    return conf_parse(settings, &c, err);
}

static int sendgrid_addressable(const cJSON *profile, const cJSON *settings)
{
    return mime_addr_valid(json_str(profile, "email"));
}

/* mail_json: the Mail Send request body; caller frees. */
static char *mail_json(const struct sendgrid_conf *c, const char *to, const struct delivery *d)
{
    const struct content *ct = d->content;
    cJSON *o = cJSON_CreateObject(), *p, *t, *a, *x;
    char *s;
    p = cJSON_AddArrayToObject(o, "personalizations");
    x = cJSON_CreateObject();
    cJSON_AddItemToArray(p, x);
    t = cJSON_AddArrayToObject(x, "to");
    a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "email", to);
    cJSON_AddItemToArray(t, a);
    a = cJSON_AddObjectToObject(o, "from");
    cJSON_AddStringToObject(a, "email", c->from);
    if (c->from_name && c->from_name[0])
        cJSON_AddStringToObject(a, "name", c->from_name);
    if (c->reply_to) {
        a = cJSON_AddObjectToObject(o, "reply_to");
        cJSON_AddStringToObject(a, "email", c->reply_to);
    }
    cJSON_AddStringToObject(o, "subject", ct->subject ? ct->subject : "");
    p = cJSON_AddArrayToObject(o, "content");
    if (ct->text && ct->text[0]) { /* text/plain first: SendGrid rejects another order */
        a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "type", "text/plain");
        cJSON_AddStringToObject(a, "value", ct->text);
        cJSON_AddItemToArray(p, a);
    }
    if (ct->html && ct->html[0]) {
        a = cJSON_CreateObject();
        cJSON_AddStringToObject(a, "type", "text/html");
        cJSON_AddStringToObject(a, "value", ct->html);
        cJSON_AddItemToArray(p, a);
    }
    a = cJSON_AddObjectToObject(o, "custom_args");
    cJSON_AddStringToObject(a, "herald_message_id", d->message_id ? d->message_id : "");
    s = json_print(o);
    cJSON_Delete(o);
    return s;
}

/* error_reason: errors[0].message (and field) into r->reason, when the answer has it. */
static void error_reason(const struct http_client_resp *resp, struct delivery_result *r)
{
    cJSON *v = http_client_resp_json(resp);
    const cJSON *e0 = cJSON_GetArrayItem(json_arr(v, "errors"), 0);
    const char *msg = json_str(e0, "message");
    const char *field = json_str(e0, "field");
    char text[256], ftext[64];
    if (msg) {
        http_client_text(text, sizeof text, str_c(msg), 200);
        if (field) {
            http_client_text(ftext, sizeof ftext, str_c(field), 60);
            snprintf(r->reason, sizeof r->reason, "sendgrid %d: %s (field %s)", resp->status,
                     text, ftext);
        } else {
            snprintf(r->reason, sizeof r->reason, "sendgrid %d: %s", resp->status, text);
        }
    }
    cJSON_Delete(v);
}

/* sendgrid_build: the Mail Send request for d: see provider.h. */
static int sendgrid_build(const struct delivery *d, struct transport_req *req,
                          struct delivery_result *r)
{
    struct sendgrid_conf c;
    struct herr err = {0};
    struct curl_slist *hdrs = NULL;
    struct buf url;
    char *body = NULL;
    const char *to = json_str(d->profile, "email");
    int rc = HR_INVAL;

    buf_init(&url, 4096);
    r->outcome = DELIVERY_PERMANENT;
    if (conf_parse(d->settings, &c, &err) < 0) {
        snprintf(r->reason, sizeof r->reason, "sendgrid settings: %s", err.msg);
        goto out;
    }
    if (!mime_addr_valid(to)) {
        snprintf(r->reason, sizeof r->reason, "invalid email address");
        goto out;
    }
    if (!d->content || !((d->content->text && d->content->text[0]) ||
                         (d->content->html && d->content->html[0]))) {
        snprintf(r->reason, sizeof r->reason, "no content to send");
        goto out;
    }
    if (http_client_url_join(&url, c.base_url ? c.base_url : SENDGRID_BASE_URL,
                             "/v3/mail/send") < 0) {
        snprintf(r->reason, sizeof r->reason, "sendgrid settings: base_url is too long");
        goto out;
    }
    body = mail_json(&c, to, d);
    http_client_header_add(&hdrs, "Authorization: Bearer %s", c.api_key);
    {
        const char *secrets[] = {c.api_key, NULL};
        struct http_client_req hreq = {
            .url = buf_cstr(&url),
            .content_type = "application/json",
            .body = str_c(body),
            .headers = hdrs,
            .timeout_ms = d->timeout_ms,
            .now_ms = d->now_ms,
            /* a base_url is chosen through the API: the egress guard checks it */
            .guard = c.base_url ? "sendgrid" : NULL,
            .secrets = secrets,
        };
        transport_req_from_http(req, &hreq);
    }
    rc = HR_OK;

out:
    curl_slist_free_all(hdrs);
    free(body);
    buf_cleanup(&url);
    return rc;
}

static void sendgrid_classify(const struct delivery *d, const struct transport_resp *resp,
                              struct delivery_result *r)
{
    http_client_classify(resp->rc, &resp->http, "sendgrid", r);
    if (r->outcome == DELIVERY_SENT) {
        char id[256];
        if (http_client_header(&resp->http, "X-Message-Id", id, sizeof id))
            http_client_text(r->reference, sizeof r->reference, str_c(id),
                             sizeof r->reference - 1);
    } else if (resp->rc == HR_OK) {
        error_reason(&resp->http, r);
    }
}

static void sendgrid_send(const struct delivery *d, struct delivery_result *r)
{
    provider_send(&provider_sendgrid, d, r);
}

const struct provider_ops provider_sendgrid = {
    .version = 1,
    .name = "sendgrid",
    .channel = CH_EMAIL,
    .secret_fields = sendgrid_secrets,
    .validate = sendgrid_validate,
    .addressable = sendgrid_addressable,
    .send = sendgrid_send,
    .build = sendgrid_build,
    .classify = sendgrid_classify,
};
