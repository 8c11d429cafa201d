/* smtp.c: email over SMTP with libcurl (plain, STARTTLS or implicit TLS, optional
 * AUTH). Each worker thread keeps one easy handle per (host, port, security, user,
 * verification), so consecutive sends reuse the open SMTP session.
 *
 * Outcomes: accepted -> SENT (reference: the Message-ID); an SMTP 4xx reply or a
 * transport error -> TRANSIENT; an SMTP 5xx reply, an invalid address, a refused
 * STARTTLS or rejected login without a code -> PERMANENT. */
#include "../util/clock.h"
#include "../util/json.h"
#include "../util/log.h"
#include "http_client.h"
#include "mime.h"
#include "provider.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#define SMTP_MSG_MAX (16u * 1024 * 1024) /* the built message, QP included */

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

/* ---- one transfer ------------------------------------------------------------------ */

struct upload {
    const char *p;
    size_t len, off;
};

static size_t on_read(char *dst, size_t size, size_t n, void *ud)
{
    struct upload *u = ud;
    size_t room = size * n, left = u->len - u->off;
    size_t k = left < room ? left : room;
    memcpy(dst, u->p + u->off, k);
    u->off += k;
    return k;
}

/* The server's first error reply (4xx/5xx) of the transfer: what ends up in reason.
 * Later lines (the QUIT of a connection closed after the error) do not replace it. */
struct reply {
    char line[256];
};

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
    struct reply *rep = ud;
    if (type == CURLINFO_HEADER_IN && !rep->line[0] && size >= 3 &&
        (data[0] == '4' || data[0] == '5') && data[1] >= '0' && data[1] <= '9' &&
        data[2] >= '0' && data[2] <= '9') {
        while (size && (data[size - 1] == '\n' || data[size - 1] == '\r'))
            size--;
        http_client_text(rep->line, sizeof rep->line, (struct str){data, size}, 200);
    }
    return 0;
}

/* classify: the transfer's result -> r. */
static void classify(CURLcode cc, long code, const struct reply *rep, const char *errbuf,
                     const struct smtp_conf *c, struct delivery_result *r)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    if (rep->line[0])
        code = (rep->line[0] - '0') * 100 + (rep->line[1] - '0') * 10 + (rep->line[2] - '0');
    r->remote_status = code >= 400 ? (int)code : 0; /* only an error reply is "the" code */
    if (code >= 500 && code <= 599)
        r->outcome = DELIVERY_PERMANENT;
    else if (code >= 400 && code <= 499)
        r->outcome = DELIVERY_TRANSIENT;
    else if (cc == CURLE_USE_SSL_FAILED || cc == CURLE_LOGIN_DENIED ||
             cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT)
        r->outcome = DELIVERY_PERMANENT; /* configuration: will not fix itself */
    else
        r->outcome = DELIVERY_TRANSIENT;
    if (rep->line[0])
        snprintf(r->reason, sizeof r->reason, "smtp %.255s (%.200s)", rep->line, why);
    else
        snprintf(r->reason, sizeof r->reason, "smtp: %.200s", why);
    /* a server may quote the login back (AUTH PLAIN/LOGIN are base64 of it) */
    http_client_scrub_basic(r->reason, c->username, c->password);
}

static void smtp_send(const struct delivery *d, struct delivery_result *r)
{
    struct smtp_conf c;
    struct herr err = {0};
    struct buf msg;
    struct upload up;
    struct reply rep = {{0}};
    struct curl_slist *rcpts = NULL;
    char msgid[MIME_MSGID_MAX], url[300], key[600], addr[300];
    char errbuf[CURL_ERROR_SIZE] = "";
    const char *to = json_str(d->profile, "email");
    const struct content *ct = d->content;
    int64_t timeout = http_client_timeout(d->timeout_ms);
    CURL *h = NULL;
    CURLcode cc;
    long code = 0;

    memset(r, 0, sizeof *r);
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
            .date_ms = d->now_ms > 0 ? d->now_ms : time_now_ms(),
        };
        if (mime_build(&m, &msg, &err) < 0) {
            snprintf(r->reason, sizeof r->reason, "%s", err.msg);
            goto out;
        }
    }
    if (c.timeout_ms > 0 && c.timeout_ms < timeout)
        timeout = c.timeout_ms;

    snprintf(key, sizeof key, "smtp|%s|%lld|%d|%s|%d", c.host, (long long)c.port, c.secure,
             c.username ? c.username : "", (int)c.tls_verify);
    h = http_client_easy(key);
    if (!h) {
        r->outcome = DELIVERY_TRANSIENT;
        snprintf(r->reason, sizeof r->reason, "smtp: libcurl could not create a handle");
        goto out;
    }
    snprintf(url, sizeof url, "%s://%s%s%s:%lld", c.secure == SEC_TLS ? "smtps" : "smtp",
             strchr(c.host, ':') ? "[" : "", c.host, strchr(c.host, ':') ? "]" : "",
             (long long)c.port);
    snprintf(addr, sizeof addr, "<%s>", to);
    rcpts = curl_slist_append(NULL, addr);
    if (!rcpts) {
        r->outcome = DELIVERY_TRANSIENT;
        snprintf(r->reason, sizeof r->reason, "smtp: out of memory");
        goto out;
    }
    snprintf(addr, sizeof addr, "<%s>", c.from);
    up = (struct upload){msg.p, msg.len, 0};

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout);
    curl_easy_setopt(h, CURLOPT_USE_SSL,
                     c.secure == SEC_NONE ? (long)CURLUSESSL_NONE : (long)CURLUSESSL_ALL);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c.tls_verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c.tls_verify ? 2L : 0L);
    if (c.username) {
        curl_easy_setopt(h, CURLOPT_USERNAME, c.username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c.password ? c.password : "");
    }
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, addr);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg.len);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &up);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    /* the debug hook is how the server's own words reach us (never our AUTH lines:
     * only CURLINFO_HEADER_IN is looked at) */
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, &rep);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);

    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_OK) {
        r->outcome = DELIVERY_SENT;
        r->remote_status = (int)code;
        snprintf(r->reference, sizeof r->reference, "%s", msgid);
    } else {
        classify(cc, code, &rep, errbuf, &c, r);
    }

out:
    if (h)
        http_client_easy_release(h);
    curl_slist_free_all(rcpts);
    buf_cleanup(&msg);
    LOG_D("provider.smtp", "message_id=%s provider=%s outcome=%d status=%d",
          d->message_id ? d->message_id : "", d->provider_id ? d->provider_id : "",
          r->outcome, r->remote_status);
}

const struct provider_ops provider_smtp = {
    .version = 1,
    .name = "smtp",
    .channel = CH_EMAIL,
    .secret_fields = smtp_secrets,
    .validate = smtp_validate,
    .addressable = smtp_addressable,
    .send = smtp_send,
};
