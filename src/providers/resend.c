/* resend.c: email through Resend's Emails API, as documented at
 *   https://resend.com/docs/api-reference/emails/send-email
 *   https://resend.com/docs/dashboard/emails/idempotency-keys
 *   https://resend.com/docs/api-reference/errors
 *   POST {base_url}/emails, Authorization: Bearer <api_key>, Content-Type
 *   application/json, Idempotency-Key: <herald's key for this message, channel and
 *   provider> (Resend answers a repeat within 24 hours with the first answer and sends
 *   nothing), a JSON body with from ("Name <addr>"), to [addr], subject, html, text,
 *   reply_to and tags [{name: "herald_message_id", value}] (tag values: ASCII letters,
 *   digits, '_' and '-' only, so other characters become '_').
 * Resend answers 200 {"id"}; errors carry {"statusCode", "name", "message"}. 429
 * (rate_limit_exceeded, daily/monthly quota) and 5xx are retried with Retry-After, and
 * so is 409 concurrent_idempotent_requests (the first request with this key is still
 * running); every other 4xx (validation_error, invalid_idempotent_request, ...) is
 * permanent. */
#include "../util/crypto.h"
#include "../util/json.h"
#include "email_api.h"
#include "http_client.h"
#include "provider.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESEND_BASE_URL "https://api.resend.com"
#define RESEND_WHO "resend"
#define RESEND_IDEM_MAX 256 /* characters Resend takes in an Idempotency-Key */
#define RESEND_TAG_MAX 256  /* characters of a tag value */

extern const struct provider_ops provider_resend;

static const char *const resend_secrets[] = {"api_key", "webhook_secret", NULL};

static int resend_validate(const cJSON *settings, struct herr *err)
{
    struct email_api_conf c;
    return email_api_conf_parse(settings, "api_key", &c, err);
}

/* tag_value: s with every character outside [A-Za-z0-9_-] replaced by '_', at most
 * RESEND_TAG_MAX characters, into out (cap > RESEND_TAG_MAX). */
static void tag_value(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s && s[i] && i < RESEND_TAG_MAX && i + 1 < cap; i++) {
        char ch = s[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        out[i] = ok ? ch : '_';
    }
    out[i] = '\0';
}

/* email_json: the /emails request body; caller frees. */
static char *email_json(const struct email_api_conf *c, const char *to, const struct delivery *d)
{
    const struct content *ct = d->content;
    cJSON *o = cJSON_CreateObject(), *a, *t;
    char *from = email_api_mailbox(c->from_name, c->from), *s;
    char tag[RESEND_TAG_MAX + 1];
    cJSON_AddStringToObject(o, "from", from);
    a = cJSON_AddArrayToObject(o, "to");
    cJSON_AddItemToArray(a, cJSON_CreateString(to));
    cJSON_AddStringToObject(o, "subject", ct->subject ? ct->subject : "");
    email_api_list_unsub(ct, o, "headers", false);
    if (ct->html && ct->html[0])
        cJSON_AddStringToObject(o, "html", ct->html);
    if (ct->text && ct->text[0])
        cJSON_AddStringToObject(o, "text", ct->text);
    if (c->reply_to)
        cJSON_AddStringToObject(o, "reply_to", c->reply_to);
    tag_value(d->message_id, tag, sizeof tag);
    if (tag[0]) {
        a = cJSON_AddArrayToObject(o, "tags");
        t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "name", "herald_message_id");
        cJSON_AddStringToObject(t, "value", tag);
        cJSON_AddItemToArray(a, t);
    }
    s = json_print(o);
    cJSON_Delete(o);
    free(from);
    return s;
}

/* idem_header: the Idempotency-Key line for d, or none when d has no usable key. A key
 * longer than Resend takes is sent as "sha256-" and its hex digest, still stable. */
static void idem_header(const struct delivery *d, struct curl_slist **hdrs)
{
    const char *k = d->idempotency_key;
    size_t n = k ? strlen(k) : 0;
    uint8_t sum[32];
    char hex[65];
    if (!n || !http_client_header_value_ok(k))
        return;
    if (n <= RESEND_IDEM_MAX) {
        http_client_header_add(hdrs, "Idempotency-Key: %s", k);
        return;
    }
    crypto_sha256(k, n, sum);
    crypto_hex(sum, sizeof sum, hex);
    http_client_header_add(hdrs, "Idempotency-Key: sha256-%s", hex);
}

/* resend_build: the /emails request for d: see provider.h. */
static int resend_build(const struct delivery *d, struct transport_req *req,
                        struct delivery_result *r)
{
    struct email_api_conf c;
    struct herr err = {0};
    struct curl_slist *hdrs = NULL;
    char *body = NULL;
    int rc = HR_INVAL;
    const char *to = email_api_begin(d, email_api_conf_parse(d->settings, "api_key", &c, &err),
                                     &err, RESEND_WHO, r);
    if (!to)
        goto out;
    body = email_json(&c, to, d);
    http_client_header_add(&hdrs, "Authorization: Bearer %s", c.key);
    idem_header(d, &hdrs);
    rc = email_api_post(d, &c,
                        &(struct email_api_post){.who = RESEND_WHO,
                                                 .default_base = RESEND_BASE_URL,
                                                 .path = "/emails",
                                                 .content_type = "application/json",
                                                 .body = str_c(body),
                                                 .hdrs = hdrs},
                        req, r);

out:
    curl_slist_free_all(hdrs);
    free(body);
    return rc;
}

static void resend_classify(const struct delivery *d, const struct transport_resp *resp,
                            struct delivery_result *r)
{
    cJSON *v;
    const char *name;
    http_client_classify(resp->rc, &resp->http, RESEND_WHO, r);
    if (resp->rc != HR_OK)
        return;
    v = http_client_resp_json(&resp->http);
    if (r->outcome == DELIVERY_SENT) {
        const char *id = json_str(v, "id");
        email_api_reference(r, id, id ? strlen(id) : 0);
    } else {
        name = json_str(v, "name");
        email_api_reason(r, RESEND_WHO, resp->http.status, json_str(v, "message"), name);
        if (name && strcmp(name, "concurrent_idempotent_requests") == 0) {
            r->outcome = DELIVERY_TRANSIENT; /* the first call with this key still runs */
            r->retry_after_ms = resp->http.retry_after_ms;
        }
    }
    cJSON_Delete(v);
}

static void resend_send(const struct delivery *d, struct delivery_result *r)
{
    provider_send(&provider_resend, d, r);
}

const struct provider_ops provider_resend = {
    .version = 1,
    .name = "resend",
    .channel = CH_EMAIL,
    .secret_fields = resend_secrets,
    .validate = resend_validate,
    .addressable = email_api_addressable,
    .send = resend_send,
    .build = resend_build,
    .classify = resend_classify,
    .receipts = true,
};
