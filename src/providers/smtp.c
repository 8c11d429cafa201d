/* smtp.c: email over SMTP (plain, STARTTLS or implicit TLS, optional AUTH): build() makes
 * the envelope and the MIME message, the transport sends it with libcurl, reusing an open
 * session to the same server with the same login and TLS settings.
 *
 * Outcomes: accepted -> SENT (reference: the Message-ID); an SMTP 4xx reply or a
 * transport error -> TRANSIENT; an SMTP 5xx reply, an invalid address, a refused
 * STARTTLS or rejected login without a code -> PERMANENT. */
#include "../util/clock.h"
#include "../util/json.h"
#include "../util/xalloc.h"
#include "http_client.h"
#include "mime.h"
#include "provider.h"
#include "transport.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SMTP_MSG_MAX (16u * 1024 * 1024) /* the built message, QP included */

extern const struct provider_ops provider_smtp;

enum smtp_secure { SEC_NONE = 0, SEC_STARTTLS, SEC_TLS };
static const char *const secure_names[] = {"none", "starttls", "tls"};

static const char *const smtp_secrets[] = {"password", NULL};

struct smtp_conf {
    const char *host;
    int64_t port;
    int secure; /* enum smtp_secure */
    const char *username;
    const char *password;
    const char *from;
    const char *from_name;
    const char *reply_to;
    bool tls_verify;
    int64_t timeout_ms; /* 0: only the delivery's */
};

static bool host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 253)
        return false;
    for (const char *p = h; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '_'))
            return false;
    }
    return true;
}

/* conf_parse: settings -> c, checking every field; HR_INVAL names the bad one. */
static int conf_parse(const cJSON *s, struct smtp_conf *c, struct herr *err)
{
    int rc;
    const char *secure = NULL;
    memset(c, 0, sizeof *c);
    c->tls_verify = true;
    if (!cJSON_IsObject(s))
        return herr_set(err, HR_INVAL, "settings must be an object");
    rc = http_client_setting_str(s, "settings", "host", true, &c->host, err);
    if (rc == HR_OK && !host_ok(c->host))
        rc = herr_set(err, HR_INVAL, "settings.host must be a host name or IP address");
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "secure", false, &secure, err);
    if (rc == HR_OK && secure) {
        c->secure = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(secure, secure_names[i]) == 0)
                c->secure = i;
        if (c->secure < 0)
            rc = herr_set(err, HR_INVAL,
                          "settings.secure must be \"none\", \"starttls\" or \"tls\"");
    }
    c->port = c->secure == SEC_TLS ? 465 : c->secure == SEC_STARTTLS ? 587 : 25;
    if (rc == HR_OK)
        rc = http_client_setting_int(s, "settings", "port", 1, 65535, &c->port, err);
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "username", false, &c->username, err);
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "password", false, &c->password, err);
    if (rc == HR_OK && c->password && !c->username)
        rc = herr_set(err, HR_INVAL, "settings.username is required with settings.password");
    if (rc == HR_OK)
        rc = mime_sender_parse(s, &c->from, &c->from_name, &c->reply_to, err);
    if (rc == HR_OK)
        rc = http_client_setting_bool(s, "settings", "tls_verify", &c->tls_verify, err);
    if (rc == HR_OK)
        rc = http_client_setting_int(s, "settings", "timeout_ms", 1, 600000, &c->timeout_ms,
                                     err);
    return rc;
}

static int smtp_validate(const cJSON *settings, struct herr *err)
{
    struct smtp_conf c;
    return conf_parse(settings, &c, err);
}

static int smtp_addressable(const cJSON *profile, const cJSON *settings)
{
    return mime_addr_valid(json_str(profile, "email"));
}

/* ---- one message --------------------------------------------------------------------- */

/* smtp_build: the envelope and the MIME message for d: see provider.h. */
static int smtp_build(const struct delivery *d, struct transport_req *req,
                      struct delivery_result *r)
{
    struct smtp_conf c;
    struct herr err = {0};
    struct buf msg;
    char msgid[MIME_MSGID_MAX], url[300], addr[300];
    const char *to = json_str(d->profile, "email");
    const struct content *ct = d->content;
    int64_t timeout = http_client_timeout(d->timeout_ms);
    int rc = HR_INVAL;

    buf_init(&msg, SMTP_MSG_MAX);
    r->outcome = DELIVERY_PERMANENT;
    if (conf_parse(d->settings, &c, &err) < 0) {
        snprintf(r->reason, sizeof r->reason, "smtp settings: %s", err.msg);
        goto out;
    }
    if (!mime_addr_valid(to)) {
        snprintf(r->reason, sizeof r->reason, "invalid email address");
        goto out;
    }
    if (!ct) {
        snprintf(r->reason, sizeof r->reason, "no content to send");
        goto out;
    }
    mime_message_id(d->idempotency_key, msgid, sizeof msgid);
    {
        struct mime_msg m = {
            .from = c.from,
            .from_name = c.from_name,
            .to = to,
            .reply_to = c.reply_to,
            .subject = ct->subject,
            .text = ct->text,
            .html = ct->html,
            .message_id = msgid,
            .list_unsub = ct->list_unsub,
            .date_ms = d->now_ms > 0 ? d->now_ms : time_now_ms(),
        };
        if (mime_build(&m, &msg, &err) < 0) {
            snprintf(r->reason, sizeof r->reason, "%s", err.msg);
            goto out;
        }
    }
    if (c.timeout_ms > 0 && c.timeout_ms < timeout)
        timeout = c.timeout_ms;

    snprintf(url, sizeof url, "%s://%s%s%s:%lld", c.secure == SEC_TLS ? "smtps" : "smtp",
             strchr(c.host, ':') ? "[" : "", c.host, strchr(c.host, ':') ? "]" : "",
             (long long)c.port);
    req->kind = TRANSPORT_SMTP;
    req->url = xstrdup(url);
    snprintf(addr, sizeof addr, "<%s>", to);
    req->rcpts = curl_slist_append(NULL, addr);
    if (!req->rcpts) {
        fprintf(stderr, "herald: out of memory (curl_slist_append)\n");
        abort();
    }
    snprintf(addr, sizeof addr, "<%s>", c.from);
    req->mail_from = xstrdup(addr);
    req->body = buf_steal(&msg, &req->body_len);
    req->smtp_tls = c.secure != SEC_NONE;
    req->tls_verify = c.tls_verify;
    if (c.username) {
        req->username = xstrdup(c.username);
        req->password = xstrdup(c.password ? c.password : "");
    }
    req->timeout_ms = timeout;
    req->now_ms = d->now_ms;
    rc = HR_OK;

out:
    buf_cleanup(&msg);
    return rc;
}

/* smtp_classify: accepted -> SENT with the Message-ID; otherwise the server's error
 * reply decides (5xx PERMANENT, 4xx TRANSIENT), else the transport error. The transport
 * has scrubbed the login out of reply and error already. */
static void smtp_classify(const struct delivery *d, const struct transport_resp *resp,
                          struct delivery_result *r)
{
    const char *rep = resp->smtp_reply;
    const char *why = resp->http.error[0] ? resp->http.error : "no answer";
    CURLcode cc = (CURLcode)resp->http.curl_code;
    long code = resp->http.status;
    if (resp->rc == HR_OK) {
        char msgid[MIME_MSGID_MAX];
        mime_message_id(d->idempotency_key, msgid, sizeof msgid);
        r->outcome = DELIVERY_SENT;
        r->remote_status = (int)code;
        snprintf(r->reference, sizeof r->reference, "%s", msgid);
        return;
    }
    if (rep[0])
        code = (rep[0] - '0') * 100 + (rep[1] - '0') * 10 + (rep[2] - '0');
    r->remote_status = code >= 400 ? (int)code : 0; /* only an error reply is "the" code */
    if (code >= 500 && code <= 599)
        r->outcome = DELIVERY_PERMANENT;
    else if (code >= 400 && code <= 499)
        r->outcome = DELIVERY_TRANSIENT;
    else if (resp->rc == HR_INVAL || cc == CURLE_USE_SSL_FAILED || cc == CURLE_LOGIN_DENIED ||
             cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT)
        r->outcome = DELIVERY_PERMANENT; /* configuration: will not fix itself */
    else
        r->outcome = DELIVERY_TRANSIENT;
    if (rep[0])
        snprintf(r->reason, sizeof r->reason, "smtp %.255s (%.200s)", rep, why);
    else
        snprintf(r->reason, sizeof r->reason, "smtp: %.200s", why);
}

static void smtp_send(const struct delivery *d, struct delivery_result *r)
{
    provider_send(&provider_smtp, d, r);
}

const struct provider_ops provider_smtp = {
    .version = 1,
    .name = "smtp",
    .channel = CH_EMAIL,
    .secret_fields = smtp_secrets,
    .validate = smtp_validate,
    .addressable = smtp_addressable,
    .send = smtp_send,
    .build = smtp_build,
    .classify = smtp_classify,
};
