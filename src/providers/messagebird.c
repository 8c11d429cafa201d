/* messagebird.c: SMS through MessageBird's (Bird's) SMS Messaging API:
 *   POST {base_url or https://rest.messagebird.com}/messages,
 *   Authorization: AccessKey <access_key>, Accept: application/json,
 *   JSON {"originator", "recipients": ["<E.164 digits>"], "body", "reference"}
 * (reference: herald's message id, echoed in MessageBird's status reports).
 * MessageBird answers 201 with the message object {"id", ...}; errors carry
 * {"errors": [{"code", "description", "parameter"}]} (401 bad key, 422 bad parameters,
 * 402 no balance: PERMANENT; 429 and 5xx TRANSIENT with Retry-After). The API has no
 * idempotency key.
 * Reference: https://developers.messagebird.com/api/sms-messaging/#send-outbound-sms and
 * https://developers.messagebird.com/api/#api-errors */
#include "../util/json.h"
#include "http_client.h"
#include "provider.h"
#include "sms.h"
#include "transport.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MESSAGEBIRD_BASE_URL "https://rest.messagebird.com"
#define MESSAGEBIRD_ALNUM_MAX 11 /* an alphanumeric originator: at most 11 characters */

extern const struct provider_ops provider_messagebird;

static const char *const messagebird_secrets[] = {"access_key", NULL};

struct messagebird_conf {
    const char *access_key;
    const char *originator;
    const char *base_url;
};

/* originator_ok: a phone number ("+" and up to 17 digits) or an alphanumeric sender of
 * at most 11 characters, as MessageBird documents. */
static bool originator_ok(const char *s)
{
    size_t n = strlen(s), digits = 0;
    bool alnum = true;
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i]))
            digits++;
        else if (!isalnum((unsigned char)s[i]) && !(i == 0 && s[i] == '+'))
            alnum = false;
    }
    if (digits == n || (s[0] == '+' && digits == n - 1))
        return digits >= 1 && digits <= 17;
    return alnum && s[0] != '+' && n >= 1 && n <= MESSAGEBIRD_ALNUM_MAX;
}

static int conf_parse(const cJSON *s, struct messagebird_conf *c, struct herr *err)
{
    int rc;
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(s))
        return herr_set(err, HR_INVAL, "settings must be an object");
    rc = http_client_setting_str(s, "settings", "access_key", true, &c->access_key, err);
    if (rc == HR_OK && !http_client_header_value_ok(c->access_key))
        rc = herr_set(err, HR_INVAL, "settings.access_key must not contain control characters");
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "originator", true, &c->originator, err);
    if (rc == HR_OK && !originator_ok(c->originator))
        rc = herr_set(err, HR_INVAL,
                      "settings.originator must be a phone number or at most 11 letters and "
                      "digits");
    if (rc == HR_OK)
        rc = http_client_setting_base_url(s, &c->base_url, err);
    return rc;
}

static int messagebird_validate(const cJSON *settings, struct herr *err)
{
    struct messagebird_conf c;
    return conf_parse(settings, &c, err);
}

static int messagebird_addressable(const cJSON *profile, const cJSON *settings)
{
    return sms_phone(profile) != NULL;
}

/* message_json: the Send outbound SMS body; caller frees. */
static char *message_json(const struct messagebird_conf *c, const char *to, const char *text,
                          const struct delivery *d)
{
    cJSON *o = cJSON_CreateObject(), *a;
    char *s;
    cJSON_AddStringToObject(o, "originator", sms_msisdn(c->originator));
    a = cJSON_AddArrayToObject(o, "recipients");
    cJSON_AddItemToArray(a, cJSON_CreateString(sms_msisdn(to)));
    cJSON_AddStringToObject(o, "body", text);
    if (d->message_id && d->message_id[0])
        cJSON_AddStringToObject(o, "reference", d->message_id);
    s = json_print(o);
    cJSON_Delete(o);
    return s;
}

/* messagebird_build: the Send outbound SMS request for d: see provider.h. */
static int messagebird_build(const struct delivery *d, struct transport_req *req,
                             struct delivery_result *r)
{
    struct messagebird_conf c;
    struct herr err = {0};
    struct curl_slist *hdrs = NULL;
    struct buf url;
    char *body = NULL;
    const char *to, *text;
    int rc = HR_INVAL;

    buf_init(&url, 4096);
    r->outcome = DELIVERY_PERMANENT;
    if (conf_parse(d->settings, &c, &err) < 0) {
        snprintf(r->reason, sizeof r->reason, "messagebird settings: %s", err.msg);
        goto out;
    }
    if (sms_recipient(d, &to, &text, r) < 0)
        goto out;
    if (http_client_url_join(&url, c.base_url ? c.base_url : MESSAGEBIRD_BASE_URL,
                             "/messages") < 0) {
        snprintf(r->reason, sizeof r->reason, "messagebird settings: base_url is too long");
        goto out;
    }
    body = message_json(&c, to, text, d);
    http_client_header_add(&hdrs, "Accept: application/json");
    http_client_header_add(&hdrs, "Authorization: AccessKey %s", c.access_key);
    {
        const char *secrets[] = {c.access_key, NULL};
        struct http_client_req hreq = {
            .url = buf_cstr(&url),
            .content_type = "application/json",
            .body = str_c(body),
            .headers = hdrs,
            .timeout_ms = d->timeout_ms,
            .now_ms = d->now_ms,
            /* a base_url is chosen through the API: the egress guard checks it */
            .guard = c.base_url ? "messagebird" : NULL,
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

/* error_reason: errors[0] {code, description, parameter} into r->reason. */
static void error_reason(const struct http_client_resp *resp, struct delivery_result *r)
{
    cJSON *v = http_client_resp_json(resp);
    const cJSON *e0 = cJSON_GetArrayItem(json_arr(v, "errors"), 0);
    const char *desc = json_str(e0, "description");
    const char *param = json_str(e0, "parameter");
    int64_t code = 0;
    char text[256], ptext[64];
    if (desc) {
        http_client_text(text, sizeof text, str_c(desc), 200);
        http_client_text(ptext, sizeof ptext, str_c(param ? param : ""), 60);
        if (!json_i64(e0, "code", &code))
            code = 0;
        snprintf(r->reason, sizeof r->reason, "messagebird %d: %s (code %lld%s%s)",
                 resp->status, text, (long long)code, param ? ", parameter " : "", ptext);
    }
    cJSON_Delete(v);
}

static void messagebird_classify(const struct delivery *d, const struct transport_resp *resp,
                                 struct delivery_result *r)
{
    http_client_classify(resp->rc, &resp->http, "messagebird", r);
    if (r->outcome == DELIVERY_SENT)
        http_client_json_reference(&resp->http, "id", r);
    else if (resp->rc == HR_OK)
        error_reason(&resp->http, r);
}

static void messagebird_send(const struct delivery *d, struct delivery_result *r)
{
    provider_send(&provider_messagebird, d, r);
}

const struct provider_ops provider_messagebird = {
    .version = 1,
    .name = "messagebird",
    .channel = CH_SMS,
    .secret_fields = messagebird_secrets,
    .validate = messagebird_validate,
    .addressable = messagebird_addressable,
    .send = messagebird_send,
    .build = messagebird_build,
    .classify = messagebird_classify,
};
