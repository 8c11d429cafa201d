/* twilio.c: SMS through Twilio's Messages API:
 *   POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json
 * with HTTP Basic auth (AccountSid:AuthToken) and a form body To, From (or
 * MessagingServiceSid for a sender starting with "MG") and Body. Twilio answers 201
 * with the message "sid"; errors carry {"code", "message"}. */
#include "../util/json.h"
#include "http_client.h"
#include "provider.h"
#include "sms.h"
#include "transport.h"

#include <stdio.h>
#include <string.h>

#define TWILIO_BASE_URL "https://api.twilio.com"

extern const struct provider_ops provider_twilio;

static const char *const twilio_secrets[] = {"auth_token", NULL};

struct twilio_conf {
    const char *account_sid;
    const char *auth_token;
    const char *from;
    const char *base_url;
};

static bool sid_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

static int conf_parse(const cJSON *s, struct twilio_conf *c, struct herr *err)
{
    int rc;
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(s))
        return herr_set(err, HR_INVAL, "settings must be an object");
    rc = http_client_setting_str(s, "settings", "account_sid", true, &c->account_sid, err);
    if (rc == HR_OK && !sid_ok(c->account_sid))
        rc = herr_set(err, HR_INVAL, "settings.account_sid must be letters and digits");
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "auth_token", true, &c->auth_token, err);
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "from", true, &c->from, err);
    if (rc == HR_OK && !http_client_header_value_ok(c->from))
        rc = herr_set(err, HR_INVAL, "settings.from must not contain control characters");
    if (rc == HR_OK)
        rc = http_client_setting_base_url(s, &c->base_url, err);
    return rc;
}

static int twilio_validate(const cJSON *settings, struct herr *err)
{
    struct twilio_conf c;
    return conf_parse(settings, &c, err);
}

static int twilio_addressable(const cJSON *profile, const cJSON *settings)
{
    return sms_phone(profile) != NULL;
}

/* error_reason: Twilio's {"code", "message"} into r->reason, when the answer has them. */
static void error_reason(const struct http_client_resp *resp, struct delivery_result *r)
{
    cJSON *v = http_client_resp_json(resp);
    const char *msg = json_str(v, "message");
    int64_t code = 0;
    char text[256];
    if (msg) {
        http_client_text(text, sizeof text, str_c(msg), 200);
        if (json_i64(v, "code", &code))
            snprintf(r->reason, sizeof r->reason, "twilio %d: %s (code %lld)", resp->status,
                     text, (long long)code);
        else
            snprintf(r->reason, sizeof r->reason, "twilio %d: %s", resp->status, text);
    }
    cJSON_Delete(v);
}

/* twilio_build: the Messages request for d: see provider.h. */
static int twilio_build(const struct delivery *d, struct transport_req *req,
                        struct delivery_result *r)
{
    struct twilio_conf c;
    struct herr err = {0};
    struct buf form, url;
    const char *to, *text;
    size_t blen;
    int rc = HR_INVAL;

    buf_init(&form, (size_t)1 << 20);
    buf_init(&url, 4096);
    r->outcome = DELIVERY_PERMANENT;
    if (conf_parse(d->settings, &c, &err) < 0) {
        snprintf(r->reason, sizeof r->reason, "twilio settings: %s", err.msg);
        goto out;
    }
    if (sms_recipient(d, &to, &text, r) < 0)
        goto out;
    blen = strlen(c.base_url ? c.base_url : TWILIO_BASE_URL);
    while (blen > 0 && (c.base_url ? c.base_url : TWILIO_BASE_URL)[blen - 1] == '/')
        blen--;
    rc = buf_printf(&url, "%.*s/2010-04-01/Accounts/%s/Messages.json", (int)blen,
                    c.base_url ? c.base_url : TWILIO_BASE_URL, c.account_sid);
    if (rc == HR_OK)
        rc = http_client_form_add(&form, "To", to);
    if (rc == HR_OK)
        rc = http_client_form_add(&form, strncmp(c.from, "MG", 2) == 0 ? "MessagingServiceSid"
                                                                       : "From",
                                  c.from);
    if (rc == HR_OK)
        rc = http_client_form_add(&form, "Body", text);
    if (rc == HR_OK && json_str(d->settings, "status_callback_url")) /* receipts (api/receipts.c) */
        rc = http_client_form_add(&form, "StatusCallback",
                                  json_str(d->settings, "status_callback_url"));
    if (rc < 0) {
        snprintf(r->reason, sizeof r->reason, "twilio: the message is too large");
        goto out;
    }
    {
        struct http_client_req hreq = {
            .url = buf_cstr(&url),
            .content_type = "application/x-www-form-urlencoded",
            .body = buf_str(&form),
            .username = c.account_sid,
            .password = c.auth_token,
            .timeout_ms = d->timeout_ms,
            .now_ms = d->now_ms,
            /* a base_url is chosen through the API: the egress guard checks it */
            .guard = c.base_url ? "twilio" : NULL,
        };
        transport_req_from_http(req, &hreq);
    }

out:
    buf_cleanup(&form);
    buf_cleanup(&url);
    return rc;
}

static void twilio_classify(const struct delivery *d, const struct transport_resp *resp,
                            struct delivery_result *r)
{
    http_client_classify(resp->rc, &resp->http, "twilio", r);
    if (r->outcome == DELIVERY_SENT)
        http_client_json_reference(&resp->http, "sid", r);
    else if (resp->rc == HR_OK)
        error_reason(&resp->http, r);
}

static void twilio_send(const struct delivery *d, struct delivery_result *r)
{
    provider_send(&provider_twilio, d, r);
}

const struct provider_ops provider_twilio = {
    .version = 1,
    .name = "twilio",
    .channel = CH_SMS,
    .secret_fields = twilio_secrets,
    .validate = twilio_validate,
    .addressable = twilio_addressable,
    .send = twilio_send,
    .build = twilio_build,
    .classify = twilio_classify,
    .receipts = true,
};
