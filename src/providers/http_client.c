/* http_client.c: bounded HTTP requests (run by the transport, transport.c), the mapping
 * from HTTP statuses and transport errors to delivery outcomes, the scrubbing of secrets
 * out of answers, and the small helpers providers share. */
#include "http_client.h"

#include "transport.h"

#include "../util/crypto.h"
#include "../util/json.h"
#include "../util/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define URL_MAX 2048 /* http_client_url_ok: longer URLs are refused */

/* ---- one HTTP request ------------------------------------------------------------- */

void http_client_resp_init(struct http_client_resp *resp)
{
    memset(resp, 0, sizeof *resp);
    buf_init(&resp->body, HTTP_CLIENT_BODY_MAX);
    buf_init(&resp->headers, HTTP_CLIENT_HEADERS_MAX);
}

void http_client_resp_cleanup(struct http_client_resp *resp)
{
    if (!resp)
        return;
    buf_cleanup(&resp->body);
    buf_cleanup(&resp->headers);
}

int64_t http_client_timeout(int64_t timeout_ms)
{
    return timeout_ms > 0 ? timeout_ms : HTTP_CLIENT_TIMEOUT_DEFAULT;
}

/* ---- secrets in answers ---------------------------------------------------------------- */

/* scrub_mem: replace each occurrence of needle in p[0..*len) by stars, in place; *len
 * shrinks. p[*len] stays a NUL when it was one. */
static void scrub_mem(char *p, size_t *len, const char *needle, size_t nlen)
{
    const size_t stars = 4;
    size_t i = 0;
    if (!p || nlen < HTTP_CLIENT_SCRUB_MIN)
        return; /* "t" would turn every t of the text into a star */
    while (i + nlen <= *len) {
        char *hit = memmem(p + i, *len - i, needle, nlen);
        size_t at, tail;
        if (!hit)
            break;
        at = (size_t)(hit - p);
        tail = *len - at - nlen; /* bytes after the match */
        memset(hit, '*', stars);
        memmove(hit + stars, hit + nlen, tail);
        *len -= nlen - stars;
        p[*len] = '\0';
        i = at + stars;
    }
}

void http_client_scrub(char *text, const char *secret)
{
    size_t len;
    if (!text || !secret || !secret[0])
        return;
    len = strlen(text);
    scrub_mem(text, &len, secret, strlen(secret));
}

/* scrub_forms: call fn(ud, form) for the secret forms of user/password: the password,
 * base64 "user:password", base64 "\0user\0password" (SMTP AUTH PLAIN), base64 password
 * (AUTH LOGIN). */
static void scrub_forms(const char *user, const char *password,
                        void (*fn)(void *ud, const char *form), void *ud)
{
    char raw[1024], b64[1400];
    int n;
    if (!password || !password[0])
        return;
    fn(ud, password);
    if (strlen(password) < sizeof raw / 2) {
        crypto_b64_encode(password, strlen(password), b64, sizeof b64);
        fn(ud, b64);
    }
    if (!user)
        user = "";
    n = snprintf(raw, sizeof raw, "%s:%s", user, password);
    if (n > 0 && (size_t)n < sizeof raw) {
        crypto_b64_encode(raw, (size_t)n, b64, sizeof b64);
        fn(ud, b64);
    }
    n = snprintf(raw, sizeof raw, "%c%s%c%s", 0, user, 0, password);
    if (n > 0 && (size_t)n < sizeof raw) {
        crypto_b64_encode(raw, (size_t)n, b64, sizeof b64);
        fn(ud, b64);
    }
}

static void scrub_text_cb(void *ud, const char *form)
{
    http_client_scrub(ud, form);
}

void http_client_scrub_basic(char *text, const char *user, const char *password)
{
    if (text)
        scrub_forms(user, password, scrub_text_cb, text);
}

static void scrub_resp_cb(void *ud, const char *form)
{
    struct http_client_resp *resp = ud;
    size_t n = strlen(form);
    scrub_mem(resp->body.p, &resp->body.len, form, n);
    scrub_mem(resp->headers.p, &resp->headers.len, form, n);
    http_client_scrub(resp->error, form);
}

void http_client_resp_scrub(struct http_client_resp *resp, const char *const *secrets,
                           const char *user, const char *password, const char *url)
{
    char *uuser = NULL, *upass = NULL;
    CURLU *u;
    for (size_t i = 0; secrets && secrets[i]; i++)
        if (secrets[i][0])
            scrub_resp_cb(resp, secrets[i]);
    scrub_forms(user, password, scrub_resp_cb, resp);
    /* credentials in the URL come before an '@': without one there are none to parse
     * for (a URL parse per delivery) */
    u = url && strchr(url, '@') ? curl_url() : NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PASSWORD, &upass, CURLU_URLDECODE) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_USER, &uuser, CURLU_URLDECODE);
        scrub_forms(uuser, upass, scrub_resp_cb, resp);
    }
    curl_free(uuser);
    curl_free(upass);
    curl_url_cleanup(u);
}

/* ---- one request, over the transport ------------------------------------------------- */

int http_client_perform(const struct http_client_req *req, struct http_client_resp *resp)
{
    struct transport_req q;
    struct transport_resp tr;
    int rc;
    transport_req_init(&q);
    transport_resp_init(&tr);
    transport_req_from_http(&q, req);
    rc = transport_perform(transport_default(), &q, &tr);
    http_client_resp_cleanup(resp);
    *resp = tr.http; /* the buffers move to the caller */
    http_client_resp_init(&tr.http);
    transport_resp_cleanup(&tr);
    return rc;
}

bool http_client_header(const struct http_client_resp *resp, const char *name, char *out,
                        size_t cap)
{
    const char *p = buf_cstr(&resp->headers);
    const char *end = p + resp->headers.len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if ((size_t)(le - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            while (le > v && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t'))
                le--;
            str_copy(out, cap, (struct str){v, (size_t)(le - v)});
            return true;
        }
        p = eol ? eol + 1 : end;
    }
    return false;
}

cJSON *http_client_resp_json(const struct http_client_resp *resp)
{
    cJSON *v = NULL;
    if (resp->truncated || resp->body.len == 0)
        return NULL;
    if (json_parse_bounded(resp->body.p, resp->body.len, 32, &v, NULL) < 0)
        return NULL;
    return v;
}

int64_t http_client_retry_after(const char *value, int64_t now_ms)
{
    const int64_t cap = 86400000;
    int64_t secs;
    size_t n;
    time_t t;
    if (!value)
        return 0;
    while (*value == ' ' || *value == '\t')
        value++;
    n = strlen(value);
    while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        n--;
    if (n == 0)
        return 0;
    if (value[0] >= '0' && value[0] <= '9') {
        if (n > 12 || str_to_i64((struct str){value, n}, &secs) < 0 || secs <= 0)
            return 0;
        return secs * 1000 > cap ? cap : secs * 1000;
    }
    t = curl_getdate(value, NULL);
    if (t == (time_t)-1 || (int64_t)t < 0)
        return 0;
    if ((int64_t)t > INT64_MAX / 1000) /* an absurd year (found by fuzzing): far future */
        return cap;
    if ((int64_t)t * 1000 <= now_ms)
        return 0;
    return (int64_t)t * 1000 - now_ms > cap ? cap : (int64_t)t * 1000 - now_ms;
}

void http_client_classify(int rc, const struct http_client_resp *resp, const char *who,
                          struct delivery_result *r)
{
    char text[256];
    int st = resp->status;
    r->retry_after_ms = 0;
    r->remote_status = rc < 0 ? 0 : st;
    if (rc == HR_PERM) {
        /* the egress guard: the same address will be refused next time */
        r->outcome = DELIVERY_PERMANENT;
        http_client_text(text, sizeof text, str_c(resp->error), 200);
        snprintf(r->reason, sizeof r->reason, "%s %s", who, text);
        return;
    }
    if (rc < 0) {
        /* no answer: a bad URL will not get better; anything else may */
        r->outcome = rc == HR_INVAL ? DELIVERY_PERMANENT : DELIVERY_TRANSIENT;
        http_client_text(text, sizeof text, str_c(resp->error), 200);
        snprintf(r->reason, sizeof r->reason, "%s: %s", who, text);
        return;
    }
    if (st >= 200 && st < 300) {
        r->outcome = DELIVERY_SENT;
        r->reason[0] = '\0';
        return;
    }
    if (st == 408 || st == 429 || st >= 500) {
        r->outcome = DELIVERY_TRANSIENT;
        r->retry_after_ms = resp->retry_after_ms;
    } else {
        r->outcome = DELIVERY_PERMANENT;
    }
    http_client_text(text, sizeof text, buf_str(&resp->body), 200);
    snprintf(r->reason, sizeof r->reason, "%s %d: %s", who, st, text);
}

/* ---- small helpers -------------------------------------------------------------- */

void http_client_header_add(struct curl_slist **list, const char *fmt, ...)
{
    char small[512];
    char *line = small;
    struct curl_slist *n;
    va_list ap;
    int len;
    va_start(ap, fmt);
    len = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (len < 0)
        len = 0, small[0] = '\0';
    if ((size_t)len >= sizeof small) {
        line = xmalloc((size_t)len + 1);
        va_start(ap, fmt);
        vsnprintf(line, (size_t)len + 1, fmt, ap);
        va_end(ap);
    }
    n = curl_slist_append(*list, line);
    if (line != small)
        free(line);
    if (!n) {
        fprintf(stderr, "herald: out of memory (curl_slist_append)\n");
        abort();
    }
    *list = n;
}

static int form_escape(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = HR_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == HR_OK; p++) {
        unsigned c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            rc = buf_putc(b, (char)c);
        } else if (c == ' ') {
            rc = buf_putc(b, '+');
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = buf_append(b, e, 3);
        }
    }
    return rc;
}

int http_client_form_add(struct buf *b, const char *name, const char *value)
{
    int rc = HR_OK;
    if (b->len)
        rc = buf_putc(b, '&');
    if (rc == HR_OK)
        rc = form_escape(b, name);
    if (rc == HR_OK)
        rc = buf_putc(b, '=');
    if (rc == HR_OK)
        rc = form_escape(b, value ? value : "");
    return rc;
}

bool http_client_header_value_ok(const char *s)
{
    size_t n = 0;
    if (!s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f || n >= 8192)
            return false;
    return true;
}

/* the last URL this thread found good: a provider's deliveries check the same one over
 * and over, and libcurl's parse was 5.5 % of the workers' samples under /send */
static _Thread_local char url_ok_last[URL_MAX + 1];

bool http_client_url_ok(const char *s)
{
    bool ok = false;
    char *scheme = NULL, *host = NULL;
    CURLU *u;
    size_t n;
    if (!s || (n = strlen(s)) > URL_MAX)
        return false;
    if (n > 0 && strcmp(s, url_ok_last) == 0)
        return true; /* a pure function of s: the same answer as last time */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    if (strncasecmp(s, "http://", 7) != 0 && strncasecmp(s, "https://", 8) != 0)
        return false;
    u = curl_url();
    if (!u)
        return false;
    if (curl_url_set(u, CURLUPART_URL, s, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] &&
        (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0))
        ok = true;
    if (ok)
        memcpy(url_ok_last, s, n + 1);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

bool http_client_url_mask_password(const char *url, char *out, size_t cap)
{
    bool done = false;
    char *pass = NULL, *masked = NULL;
    CURLU *u = curl_url();
    if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_PASSWORD, "****", 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &masked, 0) == CURLUE_OK && strlen(masked) < cap) {
        snprintf(out, cap, "%s", masked);
        done = true;
    }
    curl_free(pass);
    curl_free(masked);
    curl_url_cleanup(u);
    return done;
}

void http_client_url_redacted(const char *url, char *out, size_t cap)
{
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    CURLU *u = curl_url();
    if (cap == 0)
        return;
    if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        curl_url_get(u, CURLUPART_PATH, &path, 0);
        snprintf(out, cap, "%s://%s%s%s%s", scheme, host, port ? ":" : "", port ? port : "",
                 path ? path : "");
        for (char *p = out; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = ' ';
    } else {
        snprintf(out, cap, "(an unparsable URL)");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
}

void http_client_text(char *out, size_t cap, struct str s, size_t max)
{
    size_t o = 0, i = 0;
    if (cap == 0)
        return;
    if (s.len > max)
        s.len = max;
    while (i < s.len && o + 1 < cap) {
        unsigned char c = (unsigned char)s.p[i];
        size_t n = 1;
        if (c >= 0x80) {
            n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (i + n > s.len || o + n >= cap)
                break; /* a character cut by max or by cap: drop it */
            if (!utf8_valid(s.p + i, n)) {
                out[o++] = '?';
                i++;
                continue;
            }
            memcpy(out + o, s.p + i, n);
            o += n;
            i += n;
            continue;
        }
        out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
        i++;
    }
    out[o] = '\0';
}

/* ---- settings checks ---------------------------------------------------------------- */

int http_client_setting_str(const cJSON *obj, const char *path, const char *key, bool required,
                            const char **out, struct herr *err)
{
    const cJSON *v = json_member(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return herr_set(err, HR_INVAL, "%s.%s is required", path, key);
        return HR_OK;
    }
    if (!cJSON_IsString(v))
        return herr_set(err, HR_INVAL, "%s.%s must be a string", path, key);
    if (required && !v->valuestring[0])
        return herr_set(err, HR_INVAL, "%s.%s must not be empty", path, key);
    *out = v->valuestring;
    return HR_OK;
}

int http_client_setting_int(const cJSON *obj, const char *path, const char *key, int64_t min,
                            int64_t max, int64_t *out, struct herr *err)
{
    const cJSON *v = json_member(obj, key);
    int64_t n;
    if (!v || cJSON_IsNull(v))
        return HR_OK;
    if (!json_i64(obj, key, &n) || (double)n != v->valuedouble || n < min || n > max)
        return herr_set(err, HR_INVAL, "%s.%s must be an integer from %lld to %lld", path, key,
                        (long long)min, (long long)max);
    *out = n;
    return HR_OK;
}

int http_client_setting_bool(const cJSON *obj, const char *path, const char *key, bool *out,
                             struct herr *err)
{
    const cJSON *v = json_member(obj, key);
    if (!v || cJSON_IsNull(v))
        return HR_OK;
    if (!cJSON_IsBool(v))
        return herr_set(err, HR_INVAL, "%s.%s must be true or false", path, key);
    *out = cJSON_IsTrue(v);
    return HR_OK;
}

int http_client_setting_base_url(const cJSON *s, const char **out, struct herr *err)
{
    int rc = http_client_setting_str(s, "settings", "base_url", false, out, err);
    if (rc == HR_OK && *out && !http_client_url_ok(*out))
        rc = herr_set(err, HR_INVAL, "settings.base_url must be an http:// or https:// URL");
    return rc;
}

int http_client_url_join(struct buf *url, const char *base, const char *path)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    return buf_printf(url, "%.*s%s", (int)n, base, path);
}

void http_client_json_reference(const struct http_client_resp *resp, const char *key,
                                struct delivery_result *r)
{
    cJSON *v = http_client_resp_json(resp);
    const char *id = json_str(v, key);
    if (id)
        http_client_text(r->reference, sizeof r->reference, str_c(id), sizeof r->reference - 1);
    cJSON_Delete(v);
}
