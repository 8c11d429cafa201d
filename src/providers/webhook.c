/* webhook.c: deliver the message as one JSON POST (or PUT) to an operator's URL, or to
 * the recipient's own (profile.webhook, as in Courier). The request carries an
 * Idempotency-Key and, when a secret is set, a Courier-style signature:
 *   courier-signature: t=<ms>,signature=<hex HMAC-SHA256(secret, "<t>.<body>")>
 * (the same value again as X-Herald-Signature). A recipient's own URL gets none of the
 * operator's headers, credentials or signature: whoever chose the URL would otherwise
 * hold a request signed with the operator's secret. */
#include "../util/buf.h"
#include "../util/clock.h"
#include "../util/crypto.h"
#include "../util/json.h"
#include "../util/xalloc.h"
#include "http_client.h"
#include "provider.h"
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WEBHOOK_HEADERS_MAX 50

extern const struct provider_ops provider_webhook;

/* dotted names are keys inside an object setting ("authentication": {"token": ...});
 * "headers.*" is every value of the headers object (they often carry API keys) */
static const char *const webhook_secrets[] = {"secret", "authentication.password",
                                              "authentication.token", "headers.*", NULL};

enum webhook_auth { AUTH_NONE = 0, AUTH_BASIC, AUTH_BEARER };

struct webhook_conf {
    const char *url;
    const char *method;    /* "POST" or "PUT" */
    const cJSON *headers;  /* object of string values, may be NULL */
    const char *secret;
    int auth;              /* enum webhook_auth */
    const char *username;
    const char *password;
    const char *token;
};

/* Headers herald sets itself (or libcurl does); configured ones with these names are
 * ignored. */
static const char *const reserved[] = {"host", "content-length", "transfer-encoding",
                                       "expect", "connection", "content-type",
                                       "idempotency-key", "courier-signature",
                                       "x-herald-signature", NULL};

static bool is_reserved(const char *name, int auth)
{
    if (auth != AUTH_NONE && strcasecmp(name, "authorization") == 0)
        return true;
    for (int i = 0; reserved[i]; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    return false;
}

/* header_name_ok: an RFC 9110 token. */
static bool header_name_ok(const char *s)
{
    if (!s[0] || strlen(s) > 128)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *p)))
            return false;
    return true;
}

/* auth_parse: {mode, username, password, token} into c. */
static int auth_parse(const cJSON *v, const char *path, struct webhook_conf *c, struct herr *err)
{
    int rc;
    const char *mode = NULL;
    char sub[64];
    snprintf(sub, sizeof sub, "%s.authentication", path);
    if (!cJSON_IsObject(v))
        return herr_set(err, HR_INVAL, "%s must be an object", sub);
    c->auth = AUTH_NONE;
    c->username = c->password = c->token = NULL;
    rc = http_client_setting_str(v, sub, "mode", false, &mode, err);
    if (rc < 0 || !mode || strcmp(mode, "none") == 0)
        return rc;
    if (strcmp(mode, "basic") == 0) {
        c->auth = AUTH_BASIC;
        rc = http_client_setting_str(v, sub, "username", true, &c->username, err);
        if (rc == HR_OK)
            rc = http_client_setting_str(v, sub, "password", false, &c->password, err);
    } else if (strcmp(mode, "bearer") == 0) {
        c->auth = AUTH_BEARER;
        rc = http_client_setting_str(v, sub, "token", true, &c->token, err);
        if (rc == HR_OK && !http_client_header_value_ok(c->token))
            rc = herr_set(err, HR_INVAL, "%s.token must not contain control characters", sub);
    } else {
        rc = herr_set(err, HR_INVAL, "%s.mode must be \"none\", \"basic\" or \"bearer\"", sub);
    }
    return rc;
}

/* target_parse: url, method, headers and authentication from obj (the settings or a
 * recipient's webhook) over what c holds already; `path` names obj in messages. */
static int target_parse(const cJSON *obj, const char *path, struct webhook_conf *c,
                        struct herr *err)
{
    int rc;
    const char *url = NULL, *method = NULL;
    const cJSON *v;

    rc = http_client_setting_str(obj, path, "url", false, &url, err);
    if (rc == HR_OK && url) {
        if (!http_client_url_ok(url))
            rc = herr_set(err, HR_INVAL, "%s.url must be an http:// or https:// URL", path);
        c->url = url;
    }
    if (rc == HR_OK)
        rc = http_client_setting_str(obj, path, "method", false, &method, err);
    if (rc == HR_OK && method) {
        if (strcasecmp(method, "POST") == 0)
            c->method = "POST";
        else if (strcasecmp(method, "PUT") == 0)
            c->method = "PUT";
        else
            rc = herr_set(err, HR_INVAL, "%s.method must be \"POST\" or \"PUT\"", path);
    }
    v = json_member(obj, "headers");
    if (rc == HR_OK && v && !cJSON_IsNull(v)) {
        const cJSON *h;
        int n = 0;
        if (!cJSON_IsObject(v))
            rc = herr_set(err, HR_INVAL, "%s.headers must be an object", path);
        cJSON_ArrayForEach(h, v)
        {
            if (rc < 0)
                break;
            if (++n > WEBHOOK_HEADERS_MAX)
                rc = herr_set(err, HR_INVAL, "%s.headers has more than %d entries", path,
                              WEBHOOK_HEADERS_MAX);
            else if (!header_name_ok(h->string))
                rc = herr_set(err, HR_INVAL, "%s.headers has an invalid header name", path);
            else if (!cJSON_IsString(h) || !http_client_header_value_ok(h->valuestring))
                rc = herr_set(err, HR_INVAL,
                              "%s.headers.%s must be a string without CR, LF or control "
                              "characters",
                              path, h->string);
        }
        if (rc == HR_OK)
            c->headers = v;
    }
    v = json_member(obj, "authentication");
    if (rc == HR_OK && v && !cJSON_IsNull(v))
        rc = auth_parse(v, path, c, err);
    return rc;
}

static int conf_parse(const cJSON *s, struct webhook_conf *c, struct herr *err)
{
    int rc;
    memset(c, 0, sizeof *c);
    c->method = "POST";
    if (!cJSON_IsObject(s))
        return herr_set(err, HR_INVAL, "settings must be an object");
    rc = target_parse(s, "settings", c, err);
    if (rc == HR_OK && !c->url)
        rc = herr_set(err, HR_INVAL, "settings.url is required");
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "secret", false, &c->secret, err);
    return rc;
}

static int webhook_validate(const cJSON *settings, struct herr *err)
{
    struct webhook_conf c;
    return conf_parse(settings, &c, err);
}

static int webhook_addressable(const cJSON *profile, const cJSON *settings)
{
    const char *url = json_str(json_obj(profile, "webhook"), "url");
    if (!url)
        url = json_str(settings, "url");
    return http_client_url_ok(url);
}

/* default_body: {"message_id", "recipient": profile, "content": {...}}; caller frees. */
static char *default_body(const struct delivery *d)
{
    cJSON *o = cJSON_CreateObject(), *c;
    const struct content *ct = d->content;
    char *s;
    cJSON_AddStringToObject(o, "message_id", d->message_id ? d->message_id : "");
    cJSON_AddItemToObject(o, "recipient", d->profile ? cJSON_Duplicate(d->profile, 1)
                                                     : cJSON_CreateObject());
    c = cJSON_AddObjectToObject(o, "content");
    if (ct && ct->title)
        cJSON_AddStringToObject(c, "title", ct->title);
    if (ct && ct->body)
        cJSON_AddStringToObject(c, "body", ct->body);
    if (ct && ct->text)
        cJSON_AddStringToObject(c, "text", ct->text);
    if (ct && ct->subject)
        cJSON_AddStringToObject(c, "subject", ct->subject);
    if (ct && ct->html)
        cJSON_AddStringToObject(c, "html", ct->html);
    s = json_print(o);
    cJSON_Delete(o);
    return s;
}

/* reference: the "id" of a JSON answer (string or integer), if any. */
static void reference(const struct http_client_resp *resp, struct delivery_result *r)
{
    cJSON *v = http_client_resp_json(resp);
    const cJSON *id = json_member(v, "id");
    if (cJSON_IsString(id))
        http_client_text(r->reference, sizeof r->reference, str_c(id->valuestring),
                         sizeof r->reference - 1);
    else if (cJSON_IsNumber(id))
        snprintf(r->reference, sizeof r->reference, "%.0f", id->valuedouble);
    cJSON_Delete(v);
}

/* webhook_build: the POST (or PUT) for d: see provider.h. */
static int webhook_build(const struct delivery *d, struct transport_req *req,
                         struct delivery_result *r)
{
    struct webhook_conf c;
    struct herr err = {0};
    struct curl_slist *hdrs = NULL;
    struct buf signed_part;
    char *body = NULL;
    const cJSON *pw = json_obj(d->profile, "webhook");
    const cJSON *h;
    int rc = HR_INVAL;

    buf_init(&signed_part, (size_t)1 << 30);
    r->outcome = DELIVERY_PERMANENT;
    if (conf_parse(d->settings, &c, &err) < 0) {
        snprintf(r->reason, sizeof r->reason, "webhook settings: %s", err.msg);
        goto out;
    }
    /* a recipient's own webhook replaces the target whole: the operator's headers,
     * credentials and signature never go to a URL the recipient chose */
    if (pw && json_str(pw, "url")) {
        c.method = "POST";
        c.secret = NULL;
        c.headers = NULL;
        c.auth = AUTH_NONE;
        c.username = c.password = c.token = NULL;
        if (target_parse(pw, "profile.webhook", &c, &err) < 0) {
            snprintf(r->reason, sizeof r->reason, "recipient webhook: %s", err.msg);
            goto out;
        }
    }

    body = d->content && d->content->json ? json_print(d->content->json) : default_body(d);

    cJSON_ArrayForEach(h, c.headers)
    {
        if (!is_reserved(h->string, c.auth))
            http_client_header_add(&hdrs, "%s: %s", h->string, h->valuestring);
    }
    if (d->idempotency_key && d->idempotency_key[0] &&
        http_client_header_value_ok(d->idempotency_key))
        http_client_header_add(&hdrs, "Idempotency-Key: %s", d->idempotency_key);
    if (c.secret) {
        int64_t t = d->now_ms > 0 ? d->now_ms : time_now_ms();
        uint8_t mac[32];
        char hex[65];
        if (buf_printf(&signed_part, "%lld.%s", (long long)t, body) < 0) {
            snprintf(r->reason, sizeof r->reason, "webhook: payload too large to sign");
            goto out;
        }
        crypto_hmac_sha256(str_c(c.secret), signed_part.p, signed_part.len, mac);
        crypto_hex(mac, sizeof mac, hex);
        http_client_header_add(&hdrs, "courier-signature: t=%lld,signature=%s", (long long)t,
                               hex);
        http_client_header_add(&hdrs, "X-Herald-Signature: t=%lld,signature=%s",
                               (long long)t, hex);
    }
    if (c.auth == AUTH_BEARER)
        http_client_header_add(&hdrs, "Authorization: Bearer %s", c.token);

    {
        struct http_client_req hreq = {
            .method = c.method,
            .url = c.url,
            .content_type = "application/json",
            .body = str_c(body),
            .headers = hdrs,
            .username = c.auth == AUTH_BASIC ? c.username : NULL,
            .password = c.auth == AUTH_BASIC ? c.password : NULL,
            .timeout_ms = d->timeout_ms,
            .now_ms = d->now_ms,
            .guard = "webhook",
        };
        transport_req_from_http(req, &hreq);
    }
    /* what an answer must not quote back: credentials and configured header values */
    transport_req_secret(req, c.secret);
    transport_req_secret(req, c.token);
    cJSON_ArrayForEach(h, c.headers)
    {
        if (cJSON_IsString(h))
            transport_req_secret(req, h->valuestring);
    }
    rc = HR_OK;

out:
    curl_slist_free_all(hdrs);
    buf_cleanup(&signed_part);
    free(body);
    return rc;
}

static void webhook_classify(const struct delivery *d, const struct transport_resp *resp,
                             struct delivery_result *r)
{
    http_client_classify(resp->rc, &resp->http, "webhook", r);
    if (r->outcome == DELIVERY_SENT)
        reference(&resp->http, r);
}

static void webhook_send(const struct delivery *d, struct delivery_result *r)
{
    provider_send(&provider_webhook, d, r);
}

const struct provider_ops provider_webhook = {
    .version = 1,
    .name = "webhook",
    .channel = CH_WEBHOOK,
    .secret_fields = webhook_secrets,
    .validate = webhook_validate,
    .addressable = webhook_addressable,
    .send = webhook_send,
    .build = webhook_build,
    .classify = webhook_classify,
};
