/* ses.c: email through Amazon SES API v2 SendEmail:
 *   POST {base_url or https://email.{region}.amazonaws.com}/v2/email/outbound-emails
 *   Content-Type: application/json, signed with AWS Signature Version 4 (sigv4.h, service
 *   "ses"; X-Amz-Security-Token when a session_token is set), body
 *   {"FromEmailAddress", "Destination": {"ToAddresses": [to]}, "ReplyToAddresses",
 *    "Content": {"Simple": {"Subject": {Data, Charset}, "Body": {"Text", "Html"}}},
 *    "ConfigurationSetName", "EmailTags": [{"Name": "herald_message_id", "Value"}]}
 * SES answers 200 {"MessageId"}; errors name their type in the X-Amzn-ErrorType header
 * (or "__type"/"code" in the body) with {"message"}: TooManyRequestsException (429) is
 * TRANSIENT, MessageRejected, MailFromDomainNotVerifiedException and other 4xx PERMANENT,
 * 5xx TRANSIENT. SendEmail takes no idempotency token, so none is sent.
 * Reference: https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html
 * and https://docs.aws.amazon.com/ses/latest/APIReference-V2/CommonErrors.html */
#include "../util/clock.h"
#include "../util/crypto.h"
#include "../util/json.h"
#include "email_api.h"
#include "http_client.h"
#include "mime.h"
#include "provider.h"
#include "sigv4.h"
#include "transport.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct provider_ops provider_ses;

static const char *const ses_secrets[] = {"secret_access_key", "session_token", NULL};

struct ses_conf {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
    const char *region;
    const char *from;
    const char *from_name;
    const char *reply_to;
    const char *configuration_set;
    const char *base_url;
};

/* charset_ok: every byte of s in [A-Za-z0-9] or in `extra`, 1..max bytes. */
static bool charset_ok(const char *s, const char *extra, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(extra, *p))
            return false;
    return true;
}

static int conf_parse(const cJSON *s, struct ses_conf *c, struct herr *err)
{
    int rc;
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(s))
        return herr_set(err, HR_INVAL, "settings must be an object");
    rc = http_client_setting_str(s, "settings", "access_key_id", true, &c->access_key_id, err);
    if (rc == HR_OK && !charset_ok(c->access_key_id, "", 128))
        rc = herr_set(err, HR_INVAL, "settings.access_key_id must be letters and digits");
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "secret_access_key", true,
                                     &c->secret_access_key, err);
    if (rc == HR_OK && strlen(c->secret_access_key) > 1024)
        rc = herr_set(err, HR_INVAL, "settings.secret_access_key is too long");
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "session_token", false, &c->session_token,
                                     err);
    if (rc == HR_OK && c->session_token && !http_client_header_value_ok(c->session_token))
        rc = herr_set(err, HR_INVAL,
                      "settings.session_token must not contain control characters");
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "region", true, &c->region, err);
    if (rc == HR_OK && !charset_ok(c->region, "-", 32))
        rc = herr_set(err, HR_INVAL,
                      "settings.region must be an AWS region name such as us-east-1");
    if (rc == HR_OK)
        rc = mime_sender_parse(s, &c->from, &c->from_name, &c->reply_to, err);
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "configuration_set", false,
                                     &c->configuration_set, err);
    if (rc == HR_OK && c->configuration_set && !charset_ok(c->configuration_set, "-_", 64))
        rc = herr_set(err, HR_INVAL,
                      "settings.configuration_set must be letters, digits, - and _ "
                      "(at most 64)");
    if (rc == HR_OK)
        rc = http_client_setting_base_url(s, &c->base_url, err);
    if (rc == HR_OK && c->base_url && strpbrk(c->base_url, "@?#"))
        rc = herr_set(err, HR_INVAL,
                      "settings.base_url must be an URL without credentials, query or "
                      "fragment");
    return rc;
}

static int ses_validate(const cJSON *settings, struct herr *err)
{
    struct ses_conf c;
    return conf_parse(settings, &c, err);
}

static int ses_addressable(const cJSON *profile, const cJSON *settings)
{
    return mime_addr_valid(json_str(profile, "email"));
}

/* from_address: FromEmailAddress: the address, or `"Name" <address>` with the name as a
 * quoted string (ASCII) or one RFC 2047 encoded word (non-ASCII), as SES asks. Control
 * characters in the name become spaces. */
static int from_address(const struct ses_conf *c, struct buf *out)
{
    const char *n = c->from_name;
    bool ascii = true;
    int rc = HR_OK;
    if (!n || !n[0])
        return buf_append_c(out, c->from);
    for (const char *p = n; *p; p++)
        if ((unsigned char)*p >= 0x80)
            ascii = false;
    if (ascii) {
        rc = buf_putc(out, '"');
        for (const char *p = n; *p && rc == HR_OK; p++) {
            if (*p == '"' || *p == '\\')
                rc = buf_putc(out, '\\');
            if (rc == HR_OK)
                rc = buf_putc(out, (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p);
        }
        if (rc == HR_OK)
            rc = buf_putc(out, '"');
    } else {
        size_t len = strlen(n), cap = 4 * ((len + 2) / 3) + 1;
        char *b64 = malloc(cap), *clean = malloc(len + 1);
        if (!b64 || !clean) {
            free(b64);
            free(clean);
            return HR_NOMEM;
        }
        for (size_t i = 0; i <= len; i++)
            clean[i] = (unsigned char)n[i] < 0x20 && n[i] ? ' ' : n[i];
        crypto_b64_encode(clean, len, b64, cap);
        rc = buf_printf(out, "=?UTF-8?B?%s?=", b64);
        free(b64);
        free(clean);
    }
    if (rc == HR_OK)
        rc = buf_printf(out, " <%s>", c->from);
    return rc;
}

/* add_part: {"Data": s, "Charset": "UTF-8"} as o[key]. */
static void add_part(cJSON *o, const char *key, const char *s)
{
    cJSON *p = cJSON_AddObjectToObject(o, key);
    cJSON_AddStringToObject(p, "Data", s);
    cJSON_AddStringToObject(p, "Charset", "UTF-8");
}

/* mail_json: the SendEmail request body; caller frees. NULL when the From line does not
 * fit. */
static char *mail_json(const struct ses_conf *c, const char *to, const struct delivery *d)
{
    const struct content *ct = d->content;
    cJSON *o = cJSON_CreateObject(), *x, *a, *simple, *body;
    struct buf from;
    char *s = NULL;
    buf_init(&from, 4096);
    if (from_address(c, &from) != HR_OK)
        goto out;
    cJSON_AddStringToObject(o, "FromEmailAddress", buf_cstr(&from));
    x = cJSON_AddObjectToObject(o, "Destination");
    a = cJSON_AddArrayToObject(x, "ToAddresses");
    cJSON_AddItemToArray(a, cJSON_CreateString(to));
    if (c->reply_to) {
        a = cJSON_AddArrayToObject(o, "ReplyToAddresses");
        cJSON_AddItemToArray(a, cJSON_CreateString(c->reply_to));
    }
    x = cJSON_AddObjectToObject(o, "Content");
    simple = cJSON_AddObjectToObject(x, "Simple");
    add_part(simple, "Subject", ct->subject ? ct->subject : "");
    email_api_list_unsub(ct, simple, "Headers", true);
    body = cJSON_AddObjectToObject(simple, "Body");
    if (ct->text && ct->text[0])
        add_part(body, "Text", ct->text);
    if (ct->html && ct->html[0])
        add_part(body, "Html", ct->html);
    if (c->configuration_set)
        cJSON_AddStringToObject(o, "ConfigurationSetName", c->configuration_set);
    if (d->message_id && charset_ok(d->message_id, "-_.@", 256)) {
        /* tag values: letters, digits, _ - . @ only (SES MessageTag) */
        a = cJSON_AddArrayToObject(o, "EmailTags");
        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "Name", "herald_message_id");
        cJSON_AddStringToObject(x, "Value", d->message_id);
        cJSON_AddItemToArray(a, x);
    }
    s = json_print(o);

out:
    cJSON_Delete(o);
    buf_cleanup(&from);
    return s;
}

/* split_base: the authority (host[:port]) and the path prefix (no trailing '/') of an
 * absolute URL, as offsets into url. */
static void split_base(const char *url, struct str *authority, struct str *path)
{
    const char *a = strstr(url, "://");
    size_t alen, plen;
    a = a ? a + 3 : url;
    alen = strcspn(a, "/");
    plen = strlen(a + alen);
    while (plen > 0 && a[alen + plen - 1] == '/')
        plen--;
    *authority = (struct str){a, alen};
    *path = (struct str){a + alen, plen};
}

/* ses_build: the signed SendEmail request for d: see provider.h. */
static int ses_build(const struct delivery *d, struct transport_req *req,
                     struct delivery_result *r)
{
    struct ses_conf c;
    struct herr err = {0};
    struct curl_slist *hdrs = NULL;
    struct buf base, url, host, path, authz;
    struct sigv4_header hs[4];
    struct str authority, prefix;
    char amz_date[17];
    char *body = NULL;
    const char *to = json_str(d->profile, "email");
    size_t nh = 0;
    int rc = HR_INVAL;

    buf_init(&base, 4096);
    buf_init(&url, 4096);
    buf_init(&host, 1024);
    buf_init(&path, 4096);
    buf_init(&authz, 4096);
    r->outcome = DELIVERY_PERMANENT;
    if (conf_parse(d->settings, &c, &err) < 0) {
        snprintf(r->reason, sizeof r->reason, "ses settings: %s", err.msg);
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
    if (c.base_url)
        rc = buf_append_c(&base, c.base_url);
    else
        rc = buf_printf(&base, "https://email.%s.amazonaws.com", c.region);
    split_base(buf_cstr(&base), &authority, &prefix);
    if (rc == HR_OK)
        rc = buf_append_str(&host, authority);
    if (rc == HR_OK)
        rc = buf_printf(&path, "%.*s/v2/email/outbound-emails", (int)prefix.len, prefix.p);
    if (rc == HR_OK)
        rc = buf_printf(&url, "%.*s%s", (int)(authority.p + authority.len - base.p), base.p,
                        buf_cstr(&path));
    if (rc != HR_OK) {
        snprintf(r->reason, sizeof r->reason, "ses settings: base_url is too long");
        rc = HR_INVAL;
        goto out;
    }
    body = mail_json(&c, to, d);
    if (!body) {
        snprintf(r->reason, sizeof r->reason, "ses settings: from_name is too long");
        rc = HR_INVAL;
        goto out;
    }
    sigv4_amz_date(d->now_ms > 0 ? d->now_ms : time_now_ms(), amz_date);
    hs[nh++] = (struct sigv4_header){"Content-Type", "application/json"};
    hs[nh++] = (struct sigv4_header){"Host", buf_cstr(&host)};
    hs[nh++] = (struct sigv4_header){"X-Amz-Date", amz_date};
    if (c.session_token)
        hs[nh++] = (struct sigv4_header){"X-Amz-Security-Token", c.session_token};
    {
        struct sigv4_req sreq = {.method = "POST", .path = buf_cstr(&path), .headers = hs,
                                 .nheaders = nh, .payload = str_c(body)};
        struct sigv4_cred cred = {c.access_key_id, c.secret_access_key, c.region, "ses"};
        rc = sigv4_authorization(&sreq, &cred, amz_date, &authz);
    }
    if (rc != HR_OK) {
        snprintf(r->reason, sizeof r->reason, "ses: the request could not be signed");
        rc = HR_INVAL;
        goto out;
    }
    for (size_t i = 1; i < nh; i++) /* Content-Type is the transport's first line */
        http_client_header_add(&hdrs, "%s: %s", hs[i].name, hs[i].value);
    http_client_header_add(&hdrs, "Authorization: %s", buf_cstr(&authz));
    {
        const char *secrets[] = {c.secret_access_key, c.session_token, NULL};
        struct http_client_req hreq = {
            .url = buf_cstr(&url),
            .content_type = "application/json",
            .body = str_c(body),
            .headers = hdrs,
            .timeout_ms = d->timeout_ms,
            .now_ms = d->now_ms,
            /* a base_url is chosen through the API: the egress guard checks it */
            .guard = c.base_url ? "ses" : NULL,
            .secrets = secrets,
        };
        transport_req_from_http(req, &hreq);
    }
    rc = HR_OK;

out:
    curl_slist_free_all(hdrs);
    free(body);
    buf_cleanup(&base);
    buf_cleanup(&url);
    buf_cleanup(&host);
    buf_cleanup(&path);
    buf_cleanup(&authz);
    return rc;
}

/* error_type: the AWS error type ("MessageRejected") from X-Amzn-ErrorType or the body's
 * "__type" / "code", without the ":http://..." or "namespace#" decorations; "" when none. */
static void error_type(const struct http_client_resp *resp, const cJSON *v, char *out,
                       size_t cap)
{
    char h[256];
    const char *t = NULL, *hash;
    size_t n;
    if (http_client_header(resp, "X-Amzn-ErrorType", h, sizeof h))
        t = h;
    if (!t)
        t = json_str(v, "__type");
    if (!t)
        t = json_str(v, "code");
    if (!t)
        t = json_str(v, "Code");
    if (!t) {
        out[0] = '\0';
        return;
    }
    hash = strchr(t, '#');
    if (hash)
        t = hash + 1;
    n = strcspn(t, ":");
    http_client_text(out, cap, (struct str){t, n}, 100);
}

static void ses_classify(const struct delivery *d, const struct transport_resp *resp,
                         struct delivery_result *r)
{
    cJSON *v;
    char type[128], text[256];
    const char *msg;

    http_client_classify(resp->rc, &resp->http, "ses", r);
    if (resp->rc != HR_OK)
        return;
    v = http_client_resp_json(&resp->http);
    if (r->outcome == DELIVERY_SENT) {
        http_client_json_reference(&resp->http, "MessageId", r);
        cJSON_Delete(v);
        return;
    }
    error_type(&resp->http, v, type, sizeof type);
    if (strcmp(type, "TooManyRequestsException") == 0 || strcmp(type, "Throttling") == 0 ||
        strcmp(type, "ThrottlingException") == 0) {
        r->outcome = DELIVERY_TRANSIENT; /* throttled, whatever the status says */
        r->retry_after_ms = resp->http.retry_after_ms;
    }
    msg = json_str(v, "message");
    if (!msg)
        msg = json_str(v, "Message");
    if (msg || type[0]) {
        http_client_text(text, sizeof text, str_c(msg ? msg : ""), 200);
        snprintf(r->reason, sizeof r->reason, "ses %d: %s%s%s", resp->http.status,
                 type[0] ? type : "", type[0] && msg ? ": " : "", text);
    }
    cJSON_Delete(v);
}

static void ses_send(const struct delivery *d, struct delivery_result *r)
{
    provider_send(&provider_ses, d, r);
}

const struct provider_ops provider_ses = {
    .version = 1,
    .name = "ses",
    .channel = CH_EMAIL,
    .secret_fields = ses_secrets,
    .validate = ses_validate,
    .addressable = ses_addressable,
    .send = ses_send,
    .build = ses_build,
    .classify = ses_classify,
    .receipts = true,
};
