/* receipts.c: delivery receipts in, and the suppression list.
 *
 *   POST   /receipts/:provider_id    a provider's signed receipt for the configured
 *                                    provider provider_id (public: the signature, checked
 *                                    with that provider's settings, is the credential)
 *   GET    /suppressions             the suppression list, paged (?cursor, ?limit)
 *   POST   /suppressions             add {address, reason?} by hand
 *   DELETE /suppressions/:address    remove one
 *
 * Each provider's scheme is checked in receipt_sig.c (the doc followed is named there);
 * its payload is parsed here into struct receipt_event and applied by the engine
 * (src/engine/receipt.c) in one transaction together with the request's nonce, so a
 * replayed request (same signature, token, svix-id or SNS MessageId) is refused with 401
 * and a refused or failed request stores nothing. */
#include "api.h"
#include "receipt_sig.h"

#include "../engine/receipt.h"
#include "../providers/http_client.h"
#include "../util/json.h"
#include "../util/log.h"
#include "../util/xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECEIPT_EVENTS_MAX 1000
#define RECEIPT_BODY_JSON_DEPTH 32
#define SNS_CERT_CACHE 8
#define SUPPRESSIONS_PAGE_DEFAULT 20
#define SUPPRESSIONS_PAGE_MAX 100

struct receipt_req {
    struct receipt_event *ev;   /* n events, heap */
    size_t n;
    char nonce[600];            /* "" when the scheme has none */
    char provider_id[128];
    int64_t now;
    size_t found, duplicates;
    bool replayed;
};

static void copy(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s ? s : "");
}

static struct receipt_event *add_event(struct receipt_req *r, const char *provider)
{
    struct receipt_event *e;
    if (r->n == RECEIPT_EVENTS_MAX)
        return NULL;
    e = &r->ev[r->n++];
    memset(e, 0, sizeof *e);
    copy(e->provider, sizeof e->provider, provider);
    copy(e->provider_id, sizeof e->provider_id, r->provider_id);
    return e;
}

static int deny(struct http_resp *resp, const char *why)
{
    http_resp_error(resp, 401, http_error_type(401), "receipt refused: %s", why);
    return HR_PERM;
}

static int bad(struct http_resp *resp, const char *why)
{
    http_resp_error(resp, 400, http_error_type(400), "%s", why);
    return HR_INVAL;
}

static int misconfigured(struct http_resp *resp, const char *provider_id, const char *field)
{
    http_resp_error(resp, 409, http_error_type(409),
                    "provider %s cannot take receipts: settings.%s is not set or not usable",
                    provider_id, field);
    return HR_CONFLICT;
}

static int parse_body(struct http_req *req, struct http_resp *resp, cJSON **out)
{
    struct herr err = {0};
    if (json_parse_bounded(req->body.p, req->body.len, RECEIPT_BODY_JSON_DEPTH, out, &err) < 0)
        return bad(resp, "the receipt body is not valid JSON");
    return HR_OK;
}

/* ---- SendGrid ---------------------------------------------------------------------------- */

static int sendgrid(struct http_req *req, struct http_resp *resp, const cJSON *settings,
                    struct receipt_req *r)
{
    const char *sig = http_req_header(req, "X-Twilio-Email-Event-Webhook-Signature");
    const char *ts = http_req_header(req, "X-Twilio-Email-Event-Webhook-Timestamp");
    cJSON *body = NULL;
    const cJSON *it;
    int rc = receipt_sig_sendgrid(json_str(settings, "webhook_public_key"), sig, ts, req->body);
    if (rc == HR_INVAL)
        return misconfigured(resp, r->provider_id, "webhook_public_key");
    if (rc < 0)
        return deny(resp, "bad or missing X-Twilio-Email-Event-Webhook-Signature");
    if (!receipt_ts_fresh(ts, r->now, RECEIPT_TOLERANCE_S))
        return deny(resp, "X-Twilio-Email-Event-Webhook-Timestamp is stale");
    snprintf(r->nonce, sizeof r->nonce, "sig:%.500s", sig);
    if ((rc = parse_body(req, resp, &body)) < 0)
        return rc;
    if (!cJSON_IsArray(body)) {
        cJSON_Delete(body);
        return bad(resp, "a SendGrid receipt is a JSON array of events");
    }
    cJSON_ArrayForEach(it, body)
    {
        const char *ev = json_str(it, "event"), *mid = json_str(it, "sg_message_id");
        struct receipt_event *e;
        const char *cut;
        int64_t t = 0;
        if (!ev || !mid || !(e = add_event(r, "sendgrid")))
            continue;
        copy(e->reference, sizeof e->reference, mid);
        /* sg_message_id is the X-Message-Id the send got, then ".filter..." / ".recvd-..." */
        if ((cut = strstr(e->reference, ".filter")) || (cut = strstr(e->reference, ".recvd")))
            e->reference[cut - e->reference] = '\0';
        copy(e->event, sizeof e->event, ev);
        copy(e->address, sizeof e->address, json_str(it, "email"));
        copy(e->detail, sizeof e->detail, json_str(it, "reason"));
        copy(e->link, sizeof e->link, json_str(it, "url"));
        copy(e->event_id, sizeof e->event_id, json_str(it, "sg_event_id"));
        if (json_i64(it, "timestamp", &t))
            e->ts_ms = t * 1000;
        if (!strcmp(ev, "delivered"))
            e->kind = RECEIPT_DELIVERED;
        else if (!strcmp(ev, "open"))
            e->kind = RECEIPT_OPENED;
        else if (!strcmp(ev, "click"))
            e->kind = RECEIPT_CLICKED;
        else if (!strcmp(ev, "bounce"))
            e->kind = json_str(it, "type") && !strcmp(json_str(it, "type"), "blocked")
                          ? RECEIPT_BOUNCE_SOFT
                          : RECEIPT_BOUNCE_HARD;
        else if (!strcmp(ev, "dropped"))
            e->kind = RECEIPT_BOUNCE_SOFT; /* never sent; SendGrid's own list decided */
        else if (!strcmp(ev, "spamreport"))
            e->kind = RECEIPT_COMPLAINT;
    }
    cJSON_Delete(body);
    return HR_OK;
}

/* ---- Twilio ------------------------------------------------------------------------------ */

static const char *form_get(const char **names, const char **values, int n, const char *k)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], k) == 0)
            return values[i];
    return NULL;
}

static int twilio(struct http_req *req, struct http_resp *resp, const cJSON *settings,
                  struct receipt_req *r)
{
    const char *names[RECEIPT_FORM_MAX], *values[RECEIPT_FORM_MAX];
    const char *sig = http_req_header(req, "X-Twilio-Signature");
    const char *url = json_str(settings, "status_callback_url"), *st, *code;
    struct receipt_event *e;
    int n = receipt_form_parse(req->body, req->arena, names, values, RECEIPT_FORM_MAX), rc;
    if (!url || !url[0])
        return misconfigured(resp, r->provider_id, "status_callback_url");
    if (n < 0)
        return deny(resp, "the body is not a form Twilio signs");
    rc = receipt_sig_twilio(json_str(settings, "auth_token"), url, names, values, (size_t)n, sig);
    if (rc == HR_INVAL)
        return misconfigured(resp, r->provider_id, "auth_token");
    if (rc < 0)
        return deny(resp, "bad or missing X-Twilio-Signature");
    /* Twilio signs no timestamp: a replay is told by its signature (the same callback) */
    snprintf(r->nonce, sizeof r->nonce, "sig:%.500s", sig);
    st = form_get(names, values, n, "MessageStatus");
    if (!st)
        st = form_get(names, values, n, "SmsStatus");
    if (!form_get(names, values, n, "MessageSid") || !st || !(e = add_event(r, "twilio")))
        return HR_OK;
    copy(e->reference, sizeof e->reference, form_get(names, values, n, "MessageSid"));
    copy(e->event, sizeof e->event, st);
    copy(e->address, sizeof e->address, form_get(names, values, n, "To"));
    code = form_get(names, values, n, "ErrorCode");
    if (code && code[0])
        snprintf(e->detail, sizeof e->detail, "Twilio error %.32s", code);
    if (!strcmp(st, "delivered"))
        e->kind = RECEIPT_DELIVERED;
    else if (!strcmp(st, "read"))
        e->kind = RECEIPT_OPENED;
    else if (!strcmp(st, "undelivered") || !strcmp(st, "failed")) {
        /* 21610: the recipient replied STOP; 21211, 21614, 30005, 30006: no such
         * (mobile) number; the rest (carrier, handset unreachable) may pass later */
        if (code && !strcmp(code, "21610"))
            e->kind = RECEIPT_COMPLAINT;
        else if (code && (!strcmp(code, "21211") || !strcmp(code, "21614") ||
                          !strcmp(code, "30005") || !strcmp(code, "30006")))
            e->kind = RECEIPT_BOUNCE_HARD;
        else
            e->kind = RECEIPT_BOUNCE_SOFT;
    }
    return HR_OK;
}

/* ---- Amazon SES through SNS -------------------------------------------------------------- */

struct cert_entry {
    char url[512];
    char *pem;
    size_t len;
};

static pthread_mutex_t cert_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cert_entry cert_cache[SNS_CERT_CACHE];
static size_t cert_next;

static const char *sns_prefix(void)
{
    return getenv("HERALD_SNS_URL_PREFIX");
}

/* sns_get: GET url (allow-listed already) into a heap copy of the body; HR_IO when no 200. */
static int sns_get(const char *url, int64_t now, char **out, size_t *len)
{
    struct http_client_req hreq = {.method = "GET", .url = url, .timeout_ms = 10000, .now_ms = now};
    struct http_client_resp hr;
    int rc;
    http_client_resp_init(&hr);
    rc = http_client_perform(&hreq, &hr);
    if (rc == HR_OK && hr.status != 200)
        rc = HR_IO;
    if (rc == HR_OK) {
        *len = hr.body.len;
        *out = xmalloc(hr.body.len + 1);
        memcpy(*out, hr.body.p, hr.body.len);
        (*out)[hr.body.len] = '\0';
    }
    http_client_resp_cleanup(&hr);
    return rc;
}

/* sns_verify: the message's signature against its (cached) certificate. */
static int sns_verify(const cJSON *msg, int64_t now)
{
    const char *url = json_str(msg, "SigningCertURL");
    char *pem = NULL;
    size_t len = 0;
    int rc = HR_PERM;
    if (!url || strlen(url) >= sizeof cert_cache[0].url || !receipt_sns_url_ok(url, sns_prefix(), true))
        return HR_PERM;
    pthread_mutex_lock(&cert_mu);
    for (size_t i = 0; i < SNS_CERT_CACHE; i++)
        if (cert_cache[i].pem && strcmp(cert_cache[i].url, url) == 0)
            rc = receipt_sig_sns(msg, cert_cache[i].pem, cert_cache[i].len) == HR_OK ? HR_OK
                                                                                    : HR_PERM;
    pthread_mutex_unlock(&cert_mu);
    if (rc == HR_OK)
        return rc;
    if (sns_get(url, now, &pem, &len) < 0)
        return HR_UNAVAIL;
    rc = receipt_sig_sns(msg, pem, len);
    if (rc == HR_OK) { /* only a certificate that verified something is kept */
        struct cert_entry *c;
        pthread_mutex_lock(&cert_mu);
        c = &cert_cache[cert_next++ % SNS_CERT_CACHE];
        free(c->pem);
        copy(c->url, sizeof c->url, url);
        c->pem = pem;
        c->len = len;
        pem = NULL;
        pthread_mutex_unlock(&cert_mu);
    }
    free(pem);
    return rc;
}

static int64_t iso_ms(const char *s)
{
    struct tm tmv;
    const char *end;
    memset(&tmv, 0, sizeof tmv);
    if (!s || !(end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tmv)))
        return 0;
    return (int64_t)timegm(&tmv) * 1000;
}

static void ses_event(struct receipt_req *r, const cJSON *m, const char *type, const char *addr,
                      int kind, const char *detail, int idx, const char *sns_id)
{
    struct receipt_event *e = add_event(r, "ses");
    if (!e)
        return;
    copy(e->reference, sizeof e->reference, json_str(json_obj(m, "mail"), "messageId"));
    copy(e->event, sizeof e->event, type);
    copy(e->address, sizeof e->address, addr);
    copy(e->detail, sizeof e->detail, detail);
    snprintf(e->event_id, sizeof e->event_id, "%.200s/%d", sns_id, idx);
    e->kind = kind;
}

static int ses(struct http_req *req, struct http_resp *resp, const cJSON *settings,
               struct receipt_req *r)
{
    cJSON *body = NULL, *m = NULL;
    const char *type, *topic = json_str(settings, "sns_topic_arn"), *stype, *id;
    const cJSON *it;
    int rc = parse_body(req, resp, &body), i = 0;
    if (rc < 0)
        return rc;
    type = json_str(body, "Type");
    id = json_str(body, "MessageId");
    if (!type || !id) {
        rc = deny(resp, "not an SNS message");
        goto out;
    }
    rc = sns_verify(body, r->now);
    if (rc == HR_UNAVAIL) {
        http_resp_error(resp, 503, http_error_type(503),
                        "the SNS signing certificate could not be fetched; retry later");
        goto out;
    }
    if (rc < 0) {
        rc = deny(resp, "bad SNS signature or a SigningCertURL outside the allow-list");
        goto out;
    }
    if (topic && topic[0] && (!json_str(body, "TopicArn") || strcmp(topic, json_str(body, "TopicArn")))) {
        rc = deny(resp, "TopicArn is not the configured settings.sns_topic_arn");
        goto out;
    }
    if (iso_ms(json_str(body, "Timestamp")) < r->now - RECEIPT_SNS_TOLERANCE_S * 1000 ||
        iso_ms(json_str(body, "Timestamp")) > r->now + RECEIPT_SNS_TOLERANCE_S * 1000) {
        rc = deny(resp, "the SNS Timestamp is stale");
        goto out;
    }
    snprintf(r->nonce, sizeof r->nonce, "sns:%.500s", id);
    if (strcmp(type, "SubscriptionConfirmation") == 0) {
        const char *url = json_str(body, "SubscribeURL");
        char *ans = NULL;
        size_t len = 0;
        if (!receipt_sns_url_ok(url, sns_prefix(), false)) {
            rc = deny(resp, "SubscribeURL is outside the allow-list");
            goto out;
        }
        rc = sns_get(url, r->now, &ans, &len);
        free(ans);
        if (rc < 0) {
            http_resp_error(resp, 502, http_error_type(502),
                            "confirming the SNS subscription failed; retry later");
            goto out;
        }
        LOG_I("receipt.sns_confirmed", "provider=%s topic=%s", r->provider_id,
              json_str(body, "TopicArn") ? json_str(body, "TopicArn") : "");
        rc = HR_OK;
        goto out;
    }
    if (strcmp(type, "Notification") != 0)
        goto out; /* UnsubscribeConfirmation: nothing to do */
    m = cJSON_Parse(json_str(body, "Message") ? json_str(body, "Message") : "");
    stype = json_str(m, "eventType") ? json_str(m, "eventType") : json_str(m, "notificationType");
    if (!stype || !json_str(json_obj(m, "mail"), "messageId"))
        goto out;
    if (!strcmp(stype, "Bounce")) {
        const cJSON *b = json_obj(m, "bounce");
        int kind = json_str(b, "bounceType") && !strcmp(json_str(b, "bounceType"), "Permanent")
                       ? RECEIPT_BOUNCE_HARD
                       : RECEIPT_BOUNCE_SOFT;
        cJSON_ArrayForEach(it, json_arr(b, "bouncedRecipients"))
            ses_event(r, m, stype, json_str(it, "emailAddress"), kind,
                      json_str(it, "diagnosticCode"), i++, id);
    } else if (!strcmp(stype, "Complaint")) {
        cJSON_ArrayForEach(it, json_arr(json_obj(m, "complaint"), "complainedRecipients"))
            ses_event(r, m, stype, json_str(it, "emailAddress"), RECEIPT_COMPLAINT,
                      json_str(json_obj(m, "complaint"), "complaintFeedbackType"), i++, id);
    } else {
        int kind = !strcmp(stype, "Delivery") ? RECEIPT_DELIVERED
                   : !strcmp(stype, "Open")   ? RECEIPT_OPENED
                   : !strcmp(stype, "Click")  ? RECEIPT_CLICKED
                                              : RECEIPT_OTHER;
        const cJSON *dst = cJSON_GetArrayItem(json_arr(json_obj(m, "mail"), "destination"), 0);
        ses_event(r, m, stype, cJSON_IsString(dst) ? dst->valuestring : "", kind, NULL, 0, id);
        if (kind == RECEIPT_CLICKED && r->n)
            copy(r->ev[r->n - 1].link, sizeof r->ev[0].link,
                 json_str(json_obj(m, "click"), "link"));
    }
out:
    cJSON_Delete(m);
    cJSON_Delete(body);
    return rc;
}

/* ---- Postmark ---------------------------------------------------------------------------- */

static int postmark(struct http_req *req, struct http_resp *resp, const cJSON *settings,
                    struct receipt_req *r)
{
    cJSON *body = NULL;
    const char *rt, *addr;
    struct receipt_event *e;
    int64_t bid = 0;
    int rc = receipt_sig_basic(http_req_header(req, "Authorization"),
                               json_str(settings, "webhook_username"),
                               json_str(settings, "webhook_password"));
    if (rc == HR_INVAL)
        return misconfigured(resp, r->provider_id, "webhook_username/webhook_password");
    if (rc < 0)
        return deny(resp, "bad or missing Basic credentials");
    if ((rc = parse_body(req, resp, &body)) < 0)
        return rc;
    rt = json_str(body, "RecordType");
    if (!rt || !json_str(body, "MessageID") || !(e = add_event(r, "postmark")))
        goto out;
    copy(e->reference, sizeof e->reference, json_str(body, "MessageID"));
    copy(e->event, sizeof e->event, rt);
    addr = json_str(body, "Recipient") ? json_str(body, "Recipient") : json_str(body, "Email");
    copy(e->address, sizeof e->address, addr);
    copy(e->link, sizeof e->link, json_str(body, "OriginalLink"));
    if (!strcmp(rt, "Delivery"))
        e->kind = RECEIPT_DELIVERED;
    else if (!strcmp(rt, "Open"))
        e->kind = RECEIPT_OPENED;
    else if (!strcmp(rt, "Click"))
        e->kind = RECEIPT_CLICKED;
    else if (!strcmp(rt, "SpamComplaint"))
        e->kind = RECEIPT_COMPLAINT;
    else if (!strcmp(rt, "Bounce")) {
        const char *t = json_str(body, "Type");
        e->kind = t && !strcmp(t, "HardBounce") ? RECEIPT_BOUNCE_HARD : RECEIPT_BOUNCE_SOFT;
        copy(e->detail, sizeof e->detail, json_str(body, "Description"));
        if (json_i64(body, "ID", &bid)) /* Postmark's bounce id: a resent bounce is a duplicate */
            snprintf(e->event_id, sizeof e->event_id, "bounce:%lld", (long long)bid);
    }
out:
    cJSON_Delete(body);
    return HR_OK;
}

/* ---- Resend (svix) ----------------------------------------------------------------------- */

static int resend(struct http_req *req, struct http_resp *resp, const cJSON *settings,
                  struct receipt_req *r)
{
    const char *id = http_req_header(req, "svix-id"), *ts = http_req_header(req, "svix-timestamp");
    const char *t;
    const cJSON *d, *to;
    cJSON *body = NULL;
    struct receipt_event *e;
    int rc = receipt_sig_svix(json_str(settings, "webhook_secret"), id, ts, req->body,
                              http_req_header(req, "svix-signature"));
    if (rc == HR_INVAL)
        return misconfigured(resp, r->provider_id, "webhook_secret");
    if (rc < 0)
        return deny(resp, "bad or missing svix-signature");
    if (!receipt_ts_fresh(ts, r->now, RECEIPT_TOLERANCE_S))
        return deny(resp, "svix-timestamp is stale");
    snprintf(r->nonce, sizeof r->nonce, "svix:%.500s", id);
    if ((rc = parse_body(req, resp, &body)) < 0)
        return rc;
    t = json_str(body, "type");
    d = json_obj(body, "data");
    if (!t || !json_str(d, "email_id") || !(e = add_event(r, "resend")))
        goto out;
    copy(e->reference, sizeof e->reference, json_str(d, "email_id"));
    copy(e->event, sizeof e->event, t);
    to = cJSON_GetArrayItem(json_arr(d, "to"), 0);
    copy(e->address, sizeof e->address, cJSON_IsString(to) ? to->valuestring : NULL);
    copy(e->link, sizeof e->link, json_str(json_obj(d, "click"), "link"));
    if (!strcmp(t, "email.delivered"))
        e->kind = RECEIPT_DELIVERED;
    else if (!strcmp(t, "email.opened"))
        e->kind = RECEIPT_OPENED;
    else if (!strcmp(t, "email.clicked"))
        e->kind = RECEIPT_CLICKED;
    else if (!strcmp(t, "email.complained"))
        e->kind = RECEIPT_COMPLAINT;
    else if (!strcmp(t, "email.bounced")) {
        const char *bt = json_str(json_obj(d, "bounce"), "type");
        e->kind = bt && strcmp(bt, "Permanent") ? RECEIPT_BOUNCE_SOFT : RECEIPT_BOUNCE_HARD;
        copy(e->detail, sizeof e->detail, json_str(json_obj(d, "bounce"), "message"));
    }
out:
    cJSON_Delete(body);
    return HR_OK;
}

/* ---- Mailgun ----------------------------------------------------------------------------- */

static int mailgun(struct http_req *req, struct http_resp *resp, const cJSON *settings,
                   struct receipt_req *r)
{
    cJSON *body = NULL;
    const cJSON *sig, *d;
    const char *ts, *token, *ev, *mid;
    struct receipt_event *e;
    int rc = parse_body(req, resp, &body);
    if (rc < 0)
        return rc;
    sig = json_obj(body, "signature");
    ts = json_str(sig, "timestamp");
    token = json_str(sig, "token");
    rc = receipt_sig_mailgun(json_str(settings, "webhook_signing_key"), ts, token,
                             json_str(sig, "signature"));
    if (rc == HR_INVAL) {
        rc = misconfigured(resp, r->provider_id, "webhook_signing_key");
        goto out;
    }
    if (rc < 0) {
        rc = deny(resp, "bad or missing signature");
        goto out;
    }
    if (!receipt_ts_fresh(ts, r->now, RECEIPT_TOLERANCE_S)) {
        rc = deny(resp, "signature.timestamp is stale");
        goto out;
    }
    snprintf(r->nonce, sizeof r->nonce, "token:%.500s", token);
    d = json_obj(body, "event-data");
    ev = json_str(d, "event");
    mid = json_str(json_obj(json_obj(d, "message"), "headers"), "message-id");
    if (!ev || !mid || !(e = add_event(r, "mailgun")))
        goto out;
    copy(e->reference, sizeof e->reference, mid[0] == '<' ? mid + 1 : mid);
    if (e->reference[0] && e->reference[strlen(e->reference) - 1] == '>')
        e->reference[strlen(e->reference) - 1] = '\0';
    copy(e->event, sizeof e->event, ev);
    copy(e->address, sizeof e->address, json_str(d, "recipient"));
    copy(e->event_id, sizeof e->event_id, json_str(d, "id"));
    copy(e->link, sizeof e->link, json_str(d, "url"));
    copy(e->detail, sizeof e->detail, json_str(json_obj(d, "delivery-status"), "description"));
    if (!e->detail[0])
        copy(e->detail, sizeof e->detail, json_str(json_obj(d, "delivery-status"), "message"));
    if (!strcmp(ev, "delivered"))
        e->kind = RECEIPT_DELIVERED;
    else if (!strcmp(ev, "opened"))
        e->kind = RECEIPT_OPENED;
    else if (!strcmp(ev, "clicked"))
        e->kind = RECEIPT_CLICKED;
    else if (!strcmp(ev, "complained"))
        e->kind = RECEIPT_COMPLAINT;
    else if (!strcmp(ev, "failed"))
        e->kind = json_str(d, "severity") && !strcmp(json_str(d, "severity"), "permanent")
                      ? RECEIPT_BOUNCE_HARD
                      : RECEIPT_BOUNCE_SOFT;
out:
    cJSON_Delete(body);
    return rc;
}

/* ---- settings checked at configuration time ---------------------------------------------- */

/* setting: the string settings[key], NULL when absent; HR_INVAL (err) when not a string. */
static int setting(const cJSON *settings, const char *key, const char **out, struct herr *err)
{
    const cJSON *v = json_member(settings, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return HR_OK;
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > 4096)
        return herr_set(err, HR_INVAL, "%s must be a non-empty string", key);
    *out = v->valuestring;
    return HR_OK;
}

int api_receipt_settings_check(const char *provider, const cJSON *settings, struct herr *err)
{
    const char *v = NULL, *u = NULL;
    int rc = HR_OK;
    if (!strcmp(provider, "sendgrid")) {
        rc = setting(settings, "webhook_public_key", &v, err);
        if (rc == HR_OK && v && receipt_sig_sendgrid(v, NULL, "0", STR_NULL) == HR_INVAL)
            rc = herr_set(err, HR_INVAL,
                          "webhook_public_key must be the Event Webhook's verification key "
                          "(base64 DER or PEM of an EC public key)");
    } else if (!strcmp(provider, "twilio")) {
        rc = setting(settings, "status_callback_url", &v, err);
        if (rc == HR_OK && v && (strlen(v) > 2048 || !http_client_url_ok(v)))
            rc = herr_set(err, HR_INVAL, "status_callback_url must be an http(s) URL");
    } else if (!strcmp(provider, "resend")) {
        rc = setting(settings, "webhook_secret", &v, err);
        if (rc == HR_OK && v && receipt_sig_svix(v, NULL, NULL, STR_NULL, NULL) == HR_INVAL)
            rc = herr_set(err, HR_INVAL, "webhook_secret must be the endpoint's whsec_... secret");
    } else if (!strcmp(provider, "postmark")) {
        rc = setting(settings, "webhook_username", &u, err);
        if (rc == HR_OK)
            rc = setting(settings, "webhook_password", &v, err);
        if (rc == HR_OK && (!u != !v || (u && strchr(u, ':'))))
            rc = herr_set(err, HR_INVAL,
                          "webhook_username (without ':') and webhook_password go together");
    } else if (!strcmp(provider, "mailgun")) {
        rc = setting(settings, "webhook_signing_key", &v, err);
    } else if (!strcmp(provider, "ses")) {
        rc = setting(settings, "sns_topic_arn", &v, err);
        if (rc == HR_OK && v && strncmp(v, "arn:", 4) != 0)
            rc = herr_set(err, HR_INVAL, "sns_topic_arn must be an SNS topic ARN (arn:...)");
    }
    return rc;
}

/* ---- the endpoint ------------------------------------------------------------------------ */

static int apply_tx(struct store_txn *t, void *arg)
{
    struct receipt_req *r = arg;
    int rc = HR_OK;
    r->found = r->duplicates = 0;
    r->replayed = false;
    if (r->nonce[0]) {
        rc = engine_receipt_seen(t, r->provider_id, r->nonce, r->now);
        if (rc == HR_CONFLICT) {
            r->replayed = true;
            return HR_CONFLICT; /* rolls back: nothing stored */
        }
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < r->n; i++) {
        bool found = false, dup = false;
        if (!r->ev[i].reference[0])
            continue;
        rc = engine_receipt_apply(t, &r->ev[i], r->now, &found, &dup);
        if (rc < 0)
            return rc;
        r->found += found && !dup;
        r->duplicates += dup;
    }
    return HR_OK;
}

void api_receipt(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct receipt_req r = {0};
    struct doc_rec d;
    struct herr err = {0};
    cJSON *pdoc = NULL, *out = NULL;
    const char *name;
    const cJSON *settings;
    int rc;

    r.now = hclock_now(ctx->clock);
    copy(r.provider_id, sizeof r.provider_id, req->params[0].p);
    rc = store_doc_get(ctx->store, "providers", req->params[0], req->arena, &d);
    if (rc == HR_NOTFOUND || rc == HR_INVAL) {
        http_resp_error(resp, 404, http_error_type(404), "no provider %.128s", r.provider_id);
        goto out;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        goto out;
    }
    pdoc = cJSON_ParseWithLength(d.body.p, d.body.len);
    name = json_str(pdoc, "provider");
    settings = json_obj(pdoc, "settings");
    r.ev = xcalloc(RECEIPT_EVENTS_MAX, sizeof *r.ev);
    if (!name) {
        http_resp_error(resp, 404, http_error_type(404), "no provider %.128s", r.provider_id);
        goto out;
    } else if (!strcmp(name, "sendgrid")) {
        /* these six are the providers whose ops say receipts (provider.h): only their
         * references are indexed for the lookup below (deliver.c, put_msgref) */
        rc = sendgrid(req, resp, settings, &r);
    } else if (!strcmp(name, "twilio")) {
        rc = twilio(req, resp, settings, &r);
    } else if (!strcmp(name, "ses")) {
        rc = ses(req, resp, settings, &r);
    } else if (!strcmp(name, "postmark")) {
        rc = postmark(req, resp, settings, &r);
    } else if (!strcmp(name, "resend")) {
        rc = resend(req, resp, settings, &r);
    } else if (!strcmp(name, "mailgun")) {
        rc = mailgun(req, resp, settings, &r);
    } else {
        http_resp_error(resp, 404, http_error_type(404),
                        "provider %.128s (%.32s) takes no receipts; receipts come from sendgrid, "
                        "twilio, ses, postmark, resend and mailgun",
                        r.provider_id, name);
        goto out;
    }
    if (rc < 0)
        goto out; /* answered */
    rc = store_write(ctx->store, apply_tx, &r, &err);
    if (r.replayed) {
        deny(resp, "this request was received before (replay)");
        goto out;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        goto out;
    }
    out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "received", (double)r.n);
    cJSON_AddNumberToObject(out, "applied", (double)r.found);
    cJSON_AddNumberToObject(out, "duplicates", (double)r.duplicates);
    http_resp_json(resp, 200, out);
out:
    if (rc < 0 && rc != HR_PERM)
        LOG_I("receipt.refused", "provider=%s rc=%s", r.provider_id, hr_rc_str(rc));
    free(r.ev);
    cJSON_Delete(pdoc);
    cJSON_Delete(out);
}

/* ---- the suppression list ---------------------------------------------------------------- */

/* GET /suppressions?cursor&limit -> {paging: {cursor, more}, results: [entry]} */
void api_suppressions_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    const char *cursor = http_req_query(req, "cursor"), *lim = http_req_query(req, "limit");
    int64_t limit = SUPPRESSIONS_PAGE_DEFAULT;
    struct doc_rec *docs = NULL;
    size_t n = 0;
    cJSON *o, *arr, *pg;
    int rc;
    if (lim && (str_to_i64(str_c(lim), &limit) < 0 || limit < 1 || limit > SUPPRESSIONS_PAGE_MAX)) {
        http_resp_error(resp, 400, http_error_type(400), "limit must be 1 to %d",
                        SUPPRESSIONS_PAGE_MAX);
        return;
    }
    rc = store_doc_list(ctx->store, SUPPRESSIONS_COLL, STR_NULL, str_c(cursor ? cursor : ""),
                        (size_t)limit + 1, req->arena, &docs, &n);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    o = cJSON_CreateObject();
    pg = cJSON_AddObjectToObject(o, "paging");
    arr = cJSON_AddArrayToObject(o, "results");
    for (size_t i = 0; i < n && i < (size_t)limit; i++)
        cJSON_AddItemToArray(arr, engine_suppression_entry(&docs[i]));
    if (n > (size_t)limit) {
        cJSON_AddStringToObject(pg, "cursor", docs[limit - 1].id.p);
        cJSON_AddBoolToObject(pg, "more", 1);
    } else {
        cJSON_AddNullToObject(pg, "cursor");
        cJSON_AddBoolToObject(pg, "more", 0);
    }
    http_resp_json(resp, 200, o);
    cJSON_Delete(o);
}

struct supp_add {
    const char *address, *reason;
    int64_t now;
};

static int supp_add_tx(struct store_txn *t, void *arg)
{
    struct supp_add *s = arg;
    return engine_suppression_add(t, s->address, s->reason, "", "", "", s->now);
}

/* POST /suppressions {address, reason?} -> 201 entry; 409 when listed already */
void api_suppressions_add(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct supp_add s;
    struct herr err = {0};
    struct doc_rec d;
    char key[SUPPRESSION_ADDRESS_MAX + 1];
    cJSON *body = NULL, *o;
    int rc;
    if (api_parse_json(req, resp, &body) < 0)
        return;
    s.address = json_str(body, "address");
    s.reason = json_str(body, "reason") ? json_str(body, "reason") : "MANUAL";
    s.now = hclock_now(ctx->clock);
    if (!s.address || !receipt_normalize_address(s.address, key, sizeof key)) {
        http_resp_error(resp, 400, http_error_type(400),
                        "address must be an email address or a phone number of at most %d bytes",
                        SUPPRESSION_ADDRESS_MAX);
        goto out;
    }
    if (strlen(s.reason) > 64) {
        http_resp_error(resp, 400, http_error_type(400), "reason must be at most 64 bytes");
        goto out;
    }
    rc = store_write(ctx->store, supp_add_tx, &s, &err);
    if (rc == HR_CONFLICT) {
        http_resp_error(resp, 409, http_error_type(409), "%s is on the suppression list already",
                        key);
        goto out;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        goto out;
    }
    rc = store_doc_get(ctx->store, SUPPRESSIONS_COLL, str_c(key), req->arena, &d);
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        goto out;
    }
    o = engine_suppression_entry(&d);
    http_resp_json(resp, 201, o);
    cJSON_Delete(o);
out:
    cJSON_Delete(body);
}

struct supp_del {
    const char *key;
};

static int supp_del_tx(struct store_txn *t, void *arg)
{
    struct supp_del *s = arg;
    return store_doc_delete(t, SUPPRESSIONS_COLL, str_c(s->key));
}

/* DELETE /suppressions/:address -> 204; 404 when not listed */
void api_suppressions_delete(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    char key[SUPPRESSION_ADDRESS_MAX + 1];
    struct supp_del s = {key};
    struct herr err = {0};
    int rc;
    if (!receipt_normalize_address(req->params[0].p, key, sizeof key)) {
        http_resp_error(resp, 404, http_error_type(404), "no such suppressed address");
        return;
    }
    rc = store_write(ctx->store, supp_del_tx, &s, &err);
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, http_error_type(404), "%s is not on the suppression list", key);
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        return;
    }
    resp->status = 204;
}
