/* sendgrid.c: email through SendGrid's v3 Mail Send API:
 *   POST {base_url}/v3/mail/send, Authorization: Bearer <api_key>, JSON with
 *   personalizations[0].to, from, subject, content (text/plain before text/html, as
 *   SendGrid requires) and custom_args.herald_message_id.
 * SendGrid answers 202 with the X-Message-Id header; errors carry
 * {"errors": [{"message", "field"}]}. */
#include "../util/json.h"
#include "email_api.h"
#include "http_client.h"
#include "provider.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENDGRID_BASE_URL "https://api.sendgrid.com"

extern const struct provider_ops provider_sendgrid;

static const char *const sendgrid_secrets[] = {"api_key", NULL};

static int sendgrid_validate(const cJSON *settings, struct herr *err)
{
    struct email_api_conf c;
    return email_api_conf_parse(settings, "api_key", &c, err);
}

/* mail_json: the Mail Send request body; caller frees. */
static char *mail_json(const struct email_api_conf *c, const char *to, const struct delivery *d)
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
    email_api_list_unsub(ct, o, "headers", false);
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
    struct email_api_conf c;
    struct herr err = {0};
    struct curl_slist *hdrs = NULL;
    char *body = NULL;
    int rc = HR_INVAL;
    const char *to = email_api_begin(d, email_api_conf_parse(d->settings, "api_key", &c, &err),
                                     &err, "sendgrid", r);
    if (!to)
        goto out;
    body = mail_json(&c, to, d);
    http_client_header_add(&hdrs, "Authorization: Bearer %s", c.key);
    rc = email_api_post(d, &c,
                        &(struct email_api_post){.who = "sendgrid",
                                                 .default_base = SENDGRID_BASE_URL,
                                                 .path = "/v3/mail/send",
                                                 .content_type = "application/json",
                                                 .body = str_c(body),
                                                 .hdrs = hdrs},
                        req, r);

out:
    curl_slist_free_all(hdrs);
    free(body);
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
    .addressable = email_api_addressable,
    .send = sendgrid_send,
    .build = sendgrid_build,
    .classify = sendgrid_classify,
    .receipts = true,
};
