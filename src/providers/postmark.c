/* postmark.c: email through Postmark's Email API, as documented at
 *   https://postmarkapp.com/developer/user-guide/send-email-with-api
 *   https://postmarkapp.com/developer/api/email-api  (and /api/overview#error-codes)
 *   POST {base_url}/email, X-Postmark-Server-Token: <server_token>, Accept and
 *   Content-Type application/json, a JSON body with From ("Name <addr>"), To, Subject,
 *   TextBody, HtmlBody, ReplyTo, MessageStream (when set) and
 *   Metadata.herald_message_id.
 * Postmark answers 200 {"To", "SubmittedAt", "MessageID", "ErrorCode": 0, "Message": "OK"};
 * errors (422 mostly, 401 for a bad token) carry {"ErrorCode", "Message"}. ErrorCode 406
 * (inactive recipient), 300 (invalid email request), 10 (bad token), 400/401 (sender
 * signature) and the rest are permanent; 429 and 5xx, and ErrorCode 100 (maintenance),
 * are retried, honouring Retry-After.
 * Idempotency: Postmark's Email API has no idempotency key (no header, no field), so a
 * retry after a lost answer may send twice; herald's message id travels in Metadata. */
#include "../util/json.h"
#include "email_api.h"
#include "http_client.h"
#include "provider.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POSTMARK_BASE_URL "https://api.postmarkapp.com"
#define POSTMARK_WHO "postmark"
#define POSTMARK_MAINTENANCE 100 /* ErrorCode: the API is down for maintenance */

extern const struct provider_ops provider_postmark;

static const char *const postmark_secrets[] = {"server_token", "webhook_password", NULL};

struct postmark_conf {
    struct email_api_conf api;
    const char *message_stream; /* NULL: Postmark's default ("outbound") */
};

static int conf_parse(const cJSON *s, struct postmark_conf *c, struct herr *err)
{
    int rc = email_api_conf_parse(s, "server_token", &c->api, err);
    c->message_stream = NULL;
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "message_stream", false,
                                     &c->message_stream, err);
    if (rc == HR_OK && c->message_stream &&
        (!c->message_stream[0] || strlen(c->message_stream) > 100 ||
         !http_client_header_value_ok(c->message_stream)))
        rc = herr_set(err, HR_INVAL,
                      "settings.message_stream must be a stream id (1 to 100 characters)");
    return rc;
}

static int postmark_validate(const cJSON *settings, struct herr *err)
{
    struct postmark_conf c;
    return conf_parse(settings, &c, err);
}

/* email_json: the /email request body; caller frees. */
static char *email_json(const struct postmark_conf *c, const char *to, const struct delivery *d)
{
    const struct content *ct = d->content;
    cJSON *o = cJSON_CreateObject(), *m;
    char *from = email_api_mailbox(c->api.from_name, c->api.from), *s;
    cJSON_AddStringToObject(o, "From", from);
    cJSON_AddStringToObject(o, "To", to);
    cJSON_AddStringToObject(o, "Subject", ct->subject ? ct->subject : "");
    email_api_list_unsub(ct, o, "Headers", true);
    if (ct->text && ct->text[0])
        cJSON_AddStringToObject(o, "TextBody", ct->text);
    if (ct->html && ct->html[0])
        cJSON_AddStringToObject(o, "HtmlBody", ct->html);
    if (c->api.reply_to)
        cJSON_AddStringToObject(o, "ReplyTo", c->api.reply_to);
    if (c->message_stream)
        cJSON_AddStringToObject(o, "MessageStream", c->message_stream);
    m = cJSON_AddObjectToObject(o, "Metadata");
    cJSON_AddStringToObject(m, "herald_message_id", d->message_id ? d->message_id : "");
    s = json_print(o);
    cJSON_Delete(o);
    free(from);
    return s;
}

/* postmark_build: the /email request for d: see provider.h. */
static int postmark_build(const struct delivery *d, struct transport_req *req,
                          struct delivery_result *r)
{
    struct postmark_conf c;
    struct herr err = {0};
    struct curl_slist *hdrs = NULL;
    char *body = NULL;
    int rc = HR_INVAL;
    const char *to = email_api_begin(d, conf_parse(d->settings, &c, &err), &err, POSTMARK_WHO, r);
    if (!to)
        goto out;
    body = email_json(&c, to, d);
    http_client_header_add(&hdrs, "Accept: application/json");
    http_client_header_add(&hdrs, "X-Postmark-Server-Token: %s", c.api.key);
    rc = email_api_post(d, &c.api,
                        &(struct email_api_post){.who = POSTMARK_WHO,
                                                 .default_base = POSTMARK_BASE_URL,
                                                 .path = "/email",
                                                 .content_type = "application/json",
                                                 .body = str_c(body),
                                                 .hdrs = hdrs},
                        req, r);

out:
    curl_slist_free_all(hdrs);
    free(body);
    return rc;
}

/* postmark_classify: the HTTP status decides (http_client_classify), then Postmark's
 * ErrorCode: the reason names it, 100 (maintenance) is retried, and a 200 carrying a
 * non-zero ErrorCode is not a send. */
static void postmark_classify(const struct delivery *d, const struct transport_resp *resp,
                              struct delivery_result *r)
{
    cJSON *v;
    int64_t code = 0;
    bool has_code;
    char detail[48];
    http_client_classify(resp->rc, &resp->http, POSTMARK_WHO, r);
    if (resp->rc != HR_OK)
        return;
    v = http_client_resp_json(&resp->http);
    has_code = json_i64(v, "ErrorCode", &code);
    if (r->outcome == DELIVERY_SENT && has_code && code != 0)
        r->outcome = DELIVERY_PERMANENT;
    if (r->outcome == DELIVERY_SENT) {
        const char *id = json_str(v, "MessageID");
        email_api_reference(r, id, id ? strlen(id) : 0);
    } else {
        snprintf(detail, sizeof detail, "ErrorCode %lld", (long long)code);
        email_api_reason(r, POSTMARK_WHO, resp->http.status, json_str(v, "Message"),
                         has_code ? detail : NULL);
        if (has_code && code == POSTMARK_MAINTENANCE && r->outcome == DELIVERY_PERMANENT) {
            r->outcome = DELIVERY_TRANSIENT;
            r->retry_after_ms = resp->http.retry_after_ms;
        }
    }
    cJSON_Delete(v);
}

static void postmark_send(const struct delivery *d, struct delivery_result *r)
{
    provider_send(&provider_postmark, d, r);
}

const struct provider_ops provider_postmark = {
    .version = 1,
    .name = "postmark",
    .channel = CH_EMAIL,
    .secret_fields = postmark_secrets,
    .validate = postmark_validate,
    .addressable = email_api_addressable,
    .send = postmark_send,
    .build = postmark_build,
    .classify = postmark_classify,
    .receipts = true,
};
