/* vonage.c: SMS through Vonage's (Nexmo's) SMS API:
 *   POST {base_url or https://rest.nexmo.com}/sms/json, application/x-www-form-urlencoded
 *   api_key, api_secret, from, to (E.164 without the '+'), text, type=unicode when the
 *   text is not ASCII, client-ref (herald's message id, when it fits 40 characters).
 * Vonage answers 200 even for a refused message: {"message-count", "messages": [{"status",
 * "message-id", "error-text"}]}, one entry per part; status "0" is sent. The other
 * statuses follow Vonage's error table: 1 throttled, 5 internal error and 10 too many
 * binds are TRANSIENT ("back off and retry"), the rest (missing or invalid parameters,
 * credentials, barred number, no credit, ...) PERMANENT. Other HTTP statuses map as
 * usual (429 / 5xx TRANSIENT with Retry-After). The SMS API has no idempotency key.
 * Reference: https://developer.vonage.com/en/api/sms (Send an SMS) and
 * https://developer.vonage.com/en/api-errors/sms (status codes). */
#include "../util/json.h"
#include "http_client.h"
#include "provider.h"
#include "sms.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VONAGE_BASE_URL "https://rest.nexmo.com"
#define VONAGE_CLIENT_REF_MAX 40

extern const struct provider_ops provider_vonage;

static const char *const vonage_secrets[] = {"api_secret", NULL};

struct vonage_conf {
    const char *api_key;
    const char *api_secret;
    const char *from;
    const char *base_url;
};

static int conf_parse(const cJSON *s, struct vonage_conf *c, struct herr *err)
{
    int rc;
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(s))
        return herr_set(err, HR_INVAL, "settings must be an object");
    rc = http_client_setting_str(s, "settings", "api_key", true, &c->api_key, err);
    if (rc == HR_OK && (strlen(c->api_key) > 64 || !http_client_header_value_ok(c->api_key)))
        rc = herr_set(err, HR_INVAL,
                      "settings.api_key must be at most 64 characters without control "
                      "characters");
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "api_secret", true, &c->api_secret, err);
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "from", true, &c->from, err);
    if (rc == HR_OK && (strlen(c->from) > 64 || !http_client_header_value_ok(c->from)))
        rc = herr_set(err, HR_INVAL,
                      "settings.from must be a phone number or a sender name without "
                      "control characters");
    if (rc == HR_OK)
        rc = http_client_setting_base_url(s, &c->base_url, err);
    return rc;
}

static int vonage_validate(const cJSON *settings, struct herr *err)
{
    struct vonage_conf c;
    return conf_parse(settings, &c, err);
}

static int vonage_addressable(const cJSON *profile, const cJSON *settings)
{
    return sms_phone(profile) != NULL;
}

static bool ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* vonage_build: the Send an SMS request for d: see provider.h. */
static int vonage_build(const struct delivery *d, struct transport_req *req,
                        struct delivery_result *r)
{
    struct vonage_conf c;
    struct herr err = {0};
    struct buf form, url;
    const char *to, *text;
    int rc = HR_INVAL;

    buf_init(&form, (size_t)1 << 20);
    buf_init(&url, 4096);
    r->outcome = DELIVERY_PERMANENT;
    if (conf_parse(d->settings, &c, &err) < 0) {
        snprintf(r->reason, sizeof r->reason, "vonage settings: %s", err.msg);
        goto out;
    }
    if (sms_recipient(d, &to, &text, r) < 0)
        goto out;
    rc = http_client_url_join(&url, c.base_url ? c.base_url : VONAGE_BASE_URL, "/sms/json");
    if (rc == HR_OK)
        rc = http_client_form_add(&form, "api_key", c.api_key);
    if (rc == HR_OK)
        rc = http_client_form_add(&form, "api_secret", c.api_secret);
    if (rc == HR_OK)
        rc = http_client_form_add(&form, "from", sms_msisdn(c.from));
    if (rc == HR_OK)
        rc = http_client_form_add(&form, "to", sms_msisdn(to));
    if (rc == HR_OK)
        rc = http_client_form_add(&form, "text", text);
    if (rc == HR_OK && !ascii(text))
        rc = http_client_form_add(&form, "type", "unicode");
    if (rc == HR_OK && d->message_id && d->message_id[0] &&
        strlen(d->message_id) <= VONAGE_CLIENT_REF_MAX)
        rc = http_client_form_add(&form, "client-ref", d->message_id);
    if (rc < 0) {
        snprintf(r->reason, sizeof r->reason, "vonage: the message is too large");
        rc = HR_INVAL;
        goto out;
    }
    {
        const char *secrets[] = {c.api_secret, NULL};
        struct http_client_req hreq = {
            .url = buf_cstr(&url),
            .content_type = "application/x-www-form-urlencoded",
            .body = buf_str(&form),
            .timeout_ms = d->timeout_ms,
            .now_ms = d->now_ms,
            /* a base_url is chosen through the API: the egress guard checks it */
            .guard = c.base_url ? "vonage" : NULL,
            .secrets = secrets,
        };
        transport_req_from_http(req, &hreq);
    }

out:
    buf_cleanup(&form);
    buf_cleanup(&url);
    return rc;
}

/* status_transient: Vonage statuses that say "back off and retry". */
static bool status_transient(const char *st)
{
    return strcmp(st, "1") == 0 || strcmp(st, "5") == 0 || strcmp(st, "10") == 0;
}

/* classify_messages: a 200's messages[] into r: the first part with a status other than
 * "0" decides; all "0": SENT with the first part's message-id. */
static void classify_messages(const struct http_client_resp *resp, struct delivery_result *r)
{
    cJSON *v = http_client_resp_json(resp);
    const cJSON *msgs = json_arr(v, "messages"), *m;
    const char *first_id = NULL;
    char text[256], st[16];

    if (cJSON_GetArraySize(msgs) == 0) {
        r->outcome = DELIVERY_PERMANENT;
        http_client_text(text, sizeof text, buf_str(&resp->body), 200);
        snprintf(r->reason, sizeof r->reason, "vonage %d: an answer without messages: %s",
                 resp->status, text);
        goto out;
    }
    cJSON_ArrayForEach(m, msgs) {
        const char *status = json_str(m, "status");
        const char *etext = json_str(m, "error-text");
        if (status && strcmp(status, "0") == 0) {
            if (!first_id)
                first_id = json_str(m, "message-id");
            continue;
        }
        http_client_text(st, sizeof st, str_c(status ? status : "?"), 8);
        http_client_text(text, sizeof text, str_c(etext ? etext : "no error-text"), 200);
        r->outcome = status && status_transient(status) ? DELIVERY_TRANSIENT
                                                        : DELIVERY_PERMANENT;
        snprintf(r->reason, sizeof r->reason, "vonage status %s: %s", st, text);
        goto out;
    }
    if (first_id)
        http_client_text(r->reference, sizeof r->reference, str_c(first_id),
                         sizeof r->reference - 1);

out:
    cJSON_Delete(v);
}

static void vonage_classify(const struct delivery *d, const struct transport_resp *resp,
                            struct delivery_result *r)
{
    http_client_classify(resp->rc, &resp->http, "vonage", r);
    if (resp->rc != HR_OK)
        return;
    if (r->outcome == DELIVERY_SENT) {
        classify_messages(&resp->http, r);
    } else {
        /* outside the SMS answer: {"error-code", "error-code-label"} or problem+json */
        cJSON *v = http_client_resp_json(&resp->http);
        const char *msg = json_str(v, "error-code-label");
        char text[256];
        if (!msg)
            msg = json_str(v, "detail");
        if (!msg)
            msg = json_str(v, "title");
        if (msg) {
            http_client_text(text, sizeof text, str_c(msg), 200);
            snprintf(r->reason, sizeof r->reason, "vonage %d: %s", resp->http.status, text);
        }
        cJSON_Delete(v);
    }
}

static void vonage_send(const struct delivery *d, struct delivery_result *r)
{
    provider_send(&provider_vonage, d, r);
}

const struct provider_ops provider_vonage = {
    .version = 1,
    .name = "vonage",
    .channel = CH_SMS,
    .secret_fields = vonage_secrets,
    .validate = vonage_validate,
    .addressable = vonage_addressable,
    .send = vonage_send,
    .build = vonage_build,
    .classify = vonage_classify,
};
