/* mailgun.c: email through Mailgun's Messages API, as documented at
 *   https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tag/Messages/
 *   https://documentation.mailgun.com/docs/mailgun/quickstart-guide/responses
 *   POST {base_url}/v3/{domain}/messages, HTTP Basic "api":<api_key>, a form body
 *   (application/x-www-form-urlencoded, which the API takes beside multipart/form-data)
 *   with from ("Name <addr>"), to, subject, text, html, h:Reply-To and
 *   v:herald_message_id (a custom variable, echoed in Mailgun's events and webhooks).
 * The endpoint is https://api.mailgun.net (region "us", the default) or
 * https://api.eu.mailgun.net (region "eu"); a base_url replaces either.
 * Mailgun answers 200 {"id": "<...@domain>", "message": "Queued. Thank you."}; the id is
 * kept without its angle brackets (as Mailgun's events name it). Errors carry
 * {"message"} (400, 404 unknown domain) or a plain "Forbidden" (401); 429 and 5xx are
 * retried with Retry-After, every other 4xx is permanent.
 * Idempotency: the Messages API has no idempotency key (no header, no field), so a retry
 * after a lost answer may send twice. */
#include "../util/json.h"
#include "email_api.h"
#include "http_client.h"
#include "provider.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAILGUN_US_URL "https://api.mailgun.net"
#define MAILGUN_EU_URL "https://api.eu.mailgun.net"
#define MAILGUN_WHO "mailgun"
#define MAILGUN_DOMAIN_MAX 253

extern const struct provider_ops provider_mailgun;

static const char *const mailgun_secrets[] = {"api_key", "webhook_signing_key", NULL};

struct mailgun_conf {
    struct email_api_conf api;
    const char *domain;
    const char *region; /* "us" (NULL) or "eu" */
};

/* domain_ok: a DNS name: letters, digits, '-' and '.', no empty label, <= 253 bytes. */
static bool domain_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAILGUN_DOMAIN_MAX || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.'))
            return false;
    return true;
}

static int conf_parse(const cJSON *s, struct mailgun_conf *c, struct herr *err)
{
    int rc = email_api_conf_parse(s, "api_key", &c->api, err);
    c->domain = c->region = NULL;
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "domain", true, &c->domain, err);
    if (rc == HR_OK && !domain_ok(c->domain))
        rc = herr_set(err, HR_INVAL,
                      "settings.domain must be a domain name (letters, digits, '-' and '.')");
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "region", false, &c->region, err);
    if (rc == HR_OK && c->region && strcmp(c->region, "us") != 0 && strcmp(c->region, "eu") != 0)
        rc = herr_set(err, HR_INVAL, "settings.region must be \"us\" or \"eu\"");
    return rc;
}

static int mailgun_validate(const cJSON *settings, struct herr *err)
{
    struct mailgun_conf c;
    return conf_parse(settings, &c, err);
}

/* form_body: the Messages form for d into form. HR_OK or HR_TOOBIG. */
static int form_body(const struct mailgun_conf *c, const char *to, const struct delivery *d,
                     struct buf *form)
{
    const struct content *ct = d->content;
    char *from = email_api_mailbox(c->api.from_name, c->api.from);
    int rc = http_client_form_add(form, "from", from);
    if (rc == HR_OK)
        rc = http_client_form_add(form, "to", to);
    if (rc == HR_OK)
        rc = http_client_form_add(form, "subject", ct->subject ? ct->subject : "");
    if (rc == HR_OK && ct->text && ct->text[0])
        rc = http_client_form_add(form, "text", ct->text);
    if (rc == HR_OK && ct->html && ct->html[0])
        rc = http_client_form_add(form, "html", ct->html);
    if (rc == HR_OK && c->api.reply_to)
        rc = http_client_form_add(form, "h:Reply-To", c->api.reply_to);
    if (rc == HR_OK && d->message_id && d->message_id[0])
        rc = http_client_form_add(form, "v:herald_message_id", d->message_id);
    if (rc == HR_OK && email_api_list_unsub_ok(ct))
        rc = http_client_form_add(form, "h:List-Unsubscribe", ct->list_unsub);
    if (rc == HR_OK && email_api_list_unsub_ok(ct))
        rc = http_client_form_add(form, "h:List-Unsubscribe-Post", EMAIL_LIST_UNSUB_POST);
    free(from);
    return rc;
}

/* mailgun_build: the Messages request for d: see provider.h. */
static int mailgun_build(const struct delivery *d, struct transport_req *req,
                         struct delivery_result *r)
{
    struct mailgun_conf c;
    struct herr err = {0};
    struct buf form;
    char path[MAILGUN_DOMAIN_MAX + 32];
    int rc = HR_INVAL;
    const char *to = email_api_begin(d, conf_parse(d->settings, &c, &err), &err, MAILGUN_WHO, r);

    buf_init(&form, (size_t)8 << 20);
    if (!to)
        goto out;
    if (form_body(&c, to, d, &form) < 0) {
        snprintf(r->reason, sizeof r->reason, "mailgun: the message is too large");
        goto out;
    }
    snprintf(path, sizeof path, "/v3/%s/messages", c.domain); /* domain_ok: <= 253 bytes */
    rc = email_api_post(d, &c.api,
                        &(struct email_api_post){
                            .who = MAILGUN_WHO,
                            .default_base = c.region && strcmp(c.region, "eu") == 0
                                                ? MAILGUN_EU_URL
                                                : MAILGUN_US_URL,
                            .path = path,
                            .content_type = "application/x-www-form-urlencoded",
                            .body = buf_str(&form),
                            .user = "api"},
                        req, r);

out:
    buf_cleanup(&form);
    return rc;
}

static void mailgun_classify(const struct delivery *d, const struct transport_resp *resp,
                             struct delivery_result *r)
{
    cJSON *v;
    http_client_classify(resp->rc, &resp->http, MAILGUN_WHO, r);
    if (resp->rc != HR_OK)
        return;
    v = http_client_resp_json(&resp->http);
    if (r->outcome == DELIVERY_SENT) {
        const char *id = json_str(v, "id");
        size_t n = id ? strlen(id) : 0;
        if (n >= 2 && id[0] == '<' && id[n - 1] == '>')
            id++, n -= 2;
        email_api_reference(r, id, n);
    } else {
        email_api_reason(r, MAILGUN_WHO, resp->http.status, json_str(v, "message"), NULL);
    }
    cJSON_Delete(v);
}

static void mailgun_send(const struct delivery *d, struct delivery_result *r)
{
    provider_send(&provider_mailgun, d, r);
}

const struct provider_ops provider_mailgun = {
    .version = 1,
    .name = "mailgun",
    .channel = CH_EMAIL,
    .secret_fields = mailgun_secrets,
    .validate = mailgun_validate,
    .addressable = email_api_addressable,
    .send = mailgun_send,
    .build = mailgun_build,
    .classify = mailgun_classify,
    .receipts = true,
};
