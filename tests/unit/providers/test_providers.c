/* test_providers.c: every provider against real local servers on 127.0.0.1: a tiny
 * scripted HTTP/1.1 server (webhook, Twilio, SendGrid) and a tiny scripted SMTP server,
 * each a thread that records what arrived. Covers request shapes, signatures, outcome
 * mapping (2xx / 408 / 429 / 5xx / 4xx / refused / timeout), Retry-After, SMTP envelope
 * and data, SMTP reply codes, connection reuse, validate() and addressable(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/providers/http_client.h"
#include "../../../src/providers/transport.h"
#include "../../../src/providers/mime.h"
#include "../../../src/providers/provider.h"
#include "../../../src/util/buf.h"
#include "../../../src/util/clock.h"
#include "../../../src/util/crypto.h"
#include "../../../src/util/json.h"
#include "../../../src/util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a listening socket and a stoppable thread -------------------------------------- */

struct srv {
    int lfd;
    int port;
    int stop[2]; /* pipe: written to stop the thread */
    pthread_t th;
    pthread_mutex_t mu;
    int nconn; /* connections accepted */
};

static void srv_listen(struct srv *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int one = 1;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pipe(s->stop), 0);
    pthread_mutex_init(&s->mu, NULL);
}

/* locked: *v read under s->mu (the server thread counts under it while it runs) */
static int locked(struct srv *s, const int *v)
{
    int n;
    pthread_mutex_lock(&s->mu);
    n = *v;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void srv_stop(struct srv *s)
{
    assert_int_equal(write(s->stop[1], "x", 1), 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    pthread_mutex_destroy(&s->mu);
}

/* wait_io: poll the listener, the connection (when >= 0) and the stop pipe. Returns
 * 's' to stop, 'l' for a new connection, 'c' for connection data. */
static int wait_io(struct srv *s, int cfd)
{
    struct pollfd p[3] = {{s->stop[0], POLLIN, 0}, {s->lfd, POLLIN, 0}, {cfd, POLLIN, 0}};
    for (;;) {
        int n = poll(p, cfd >= 0 ? 3 : 2, 5000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || p[0].revents)
            return 's';
        if (cfd >= 0 && p[2].revents)
            return 'c';
        if (p[1].revents)
            return 'l';
    }
}

/* free_port: a port nobody listens on (bound, then closed). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

/* ---- the HTTP server ------------------------------------------------------------------ */

struct http_srv {
    struct srv s;
    /* script (set before the request) */
    int status;
    char resp_headers[1024]; /* extra lines, each ending in \r\n */
    char *resp_body;         /* owned */
    size_t resp_body_len;
    int hang;                /* read the request, never answer */
    /* record of the last request */
    int nreq;
    char method[16];
    char path[1024];
    char headers[8192];
    char *body; /* owned, NUL-terminated */
    size_t body_len;
};

/* handle_request: parse one whole request from in[0..*len); returns 1 when one was
 * consumed (and answered), 0 when more bytes are needed. */
static int handle_request(struct http_srv *h, int cfd, struct buf *in)
{
    const char *p = buf_cstr(in);
    const char *end = strstr(p, "\r\n\r\n");
    size_t hlen, clen = 0;
    const char *cl;
    if (!end)
        return 0;
    hlen = (size_t)(end - p) + 4;
    cl = strcasestr(p, "\r\nContent-Length:");
    if (cl && cl < end)
        clen = strtoul(cl + 17, NULL, 10);
    if (in->len < hlen + clen)
        return 0;

    pthread_mutex_lock(&h->s.mu);
    h->nreq++;
    const char *sp1 = strchr(p, ' ');
    const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    const char *eol = strstr(p, "\r\n");
    if (!sp2 || sp2 > eol) { /* not a request line: drop the connection's bytes */
        pthread_mutex_unlock(&h->s.mu);
        buf_reset(in);
        return 0;
    }
    snprintf(h->method, sizeof h->method, "%.*s", (int)(sp1 - p), p);
    snprintf(h->path, sizeof h->path, "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
    snprintf(h->headers, sizeof h->headers, "%.*s", (int)(hlen - 2 - (size_t)(eol + 2 - p)),
             eol + 2);
    free(h->body);
    h->body = strndup(p + hlen, clen);
    h->body_len = clen;
    int hang = h->hang;
    char head[2048];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d Scripted\r\nContent-Length: %zu\r\n%s\r\n",
                     h->status, h->resp_body_len, h->resp_headers);
    char *body = h->resp_body_len ? malloc(h->resp_body_len) : NULL;
    if (body)
        memcpy(body, h->resp_body, h->resp_body_len);
    size_t blen = h->resp_body_len;
    pthread_mutex_unlock(&h->s.mu);

    if (!hang) { /* one write: no Nagle / delayed-ACK stalls */
        struct buf out;
        buf_init(&out, (size_t)n + blen);
        if (buf_append(&out, head, (size_t)n) == 0 && (!body || buf_append(&out, body, blen) == 0))
            send_all(cfd, out.p, out.len);
        buf_cleanup(&out);
    }
    free(body);
    /* drop the consumed request */
    memmove(in->p, in->p + hlen + clen, in->len - hlen - clen);
    in->len -= hlen + clen;
    in->p[in->len] = '\0';
    return 1;
}

static void *http_thread(void *arg)
{
    struct http_srv *h = arg;
    int cfd = -1;
    struct buf in;
    buf_init(&in, 1 << 22);
    for (;;) {
        int ev = wait_io(&h->s, cfd);
        if (ev == 's')
            break;
        if (ev == 'l') {
            if (cfd >= 0)
                close(cfd);
            cfd = accept(h->s.lfd, NULL, NULL);
            buf_reset(&in);
            pthread_mutex_lock(&h->s.mu);
            h->s.nconn++;
            pthread_mutex_unlock(&h->s.mu);
            continue;
        }
        char tmp[16384];
        ssize_t k = recv(cfd, tmp, sizeof tmp, 0);
        if (k <= 0) {
            close(cfd);
            cfd = -1;
            continue;
        }
        if (buf_append(&in, tmp, (size_t)k) < 0)
            break;
        while (handle_request(h, cfd, &in))
            ;
    }
    if (cfd >= 0)
        close(cfd);
    buf_cleanup(&in);
    return NULL;
}

static struct http_srv *http_start(void)
{
    struct http_srv *h = calloc(1, sizeof *h);
    srv_listen(&h->s);
    h->status = 200;
    assert_int_equal(pthread_create(&h->s.th, NULL, http_thread, h), 0);
    return h;
}

static void http_script(struct http_srv *h, int status, const char *headers, const char *body)
{
    pthread_mutex_lock(&h->s.mu);
    h->status = status;
    snprintf(h->resp_headers, sizeof h->resp_headers, "%s", headers ? headers : "");
    free(h->resp_body);
    h->resp_body = body ? strdup(body) : NULL;
    h->resp_body_len = body ? strlen(body) : 0;
    pthread_mutex_unlock(&h->s.mu);
}

static void http_free(struct http_srv *h)
{
    srv_stop(&h->s);
    free(h->resp_body);
    free(h->body);
    free(h);
}

/* req_header: the value of request header `name` as recorded (malloc'd) or NULL. */
static char *req_header(struct http_srv *h, const char *name)
{
    char *out = NULL;
    size_t nl = strlen(name);
    pthread_mutex_lock(&h->s.mu);
    for (const char *p = h->headers; *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            out = strndup(v, (size_t)(eol - v));
            break;
        }
        p = eol + 2;
    }
    pthread_mutex_unlock(&h->s.mu);
    return out;
}

static char *url_of(struct http_srv *h, const char *path)
{
    char *u = malloc(256);
    snprintf(u, 256, "http://127.0.0.1:%d%s", h->s.port, path);
    return u;
}

/* ---- the SMTP server ------------------------------------------------------------------ */

struct smtp_srv {
    struct srv s;
    /* script: full reply lines without CRLF */
    char mail_reply[256];
    char rcpt_reply[256];
    char data_reply[256];
    /* record */
    int nmsg;
    int nquit;
    char mail_from[512];
    char rcpt_to[512];
    char auth[512]; /* decoded AUTH PLAIN credentials, \0 shown as '|' */
    char *data;     /* last message, dot-unstuffed */
};

static void smtp_reply(int cfd, const char *line)
{
    char out[1024];
    int n = snprintf(out, sizeof out, "%s\r\n", line);
    send_all(cfd, out, (size_t)n); /* one write: no Nagle / delayed-ACK stalls */
}

static void record_auth(struct smtp_srv *m, const char *b64)
{
    uint8_t raw[256];
    size_t n = 0;
    if (crypto_b64_decode(str_c(b64), raw, sizeof raw, &n) < 0)
        n = 0;
    for (size_t i = 0; i < n; i++)
        if (raw[i] == 0)
            raw[i] = '|';
    pthread_mutex_lock(&m->s.mu);
    snprintf(m->auth, sizeof m->auth, "%.*s", (int)n, (char *)raw);
    pthread_mutex_unlock(&m->s.mu);
}

/* smtp_line: one command line (no CRLF) in the command state. Returns the next state:
 * 0 command, 1 data, 2 waiting for AUTH PLAIN credentials, -1 close. */
static int smtp_line(struct smtp_srv *m, int cfd, const char *line, int state, struct buf *data)
{
    char reply[256];
    if (state == 2) {
        record_auth(m, line);
        smtp_reply(cfd, "235 2.7.0 Authentication successful");
        return 0;
    }
    if (state == 1) {
        if (strcmp(line, ".") == 0) {
            pthread_mutex_lock(&m->s.mu);
            m->nmsg++;
            free(m->data);
            m->data = buf_steal(data, NULL);
            snprintf(reply, sizeof reply, "%s", m->data_reply);
            pthread_mutex_unlock(&m->s.mu);
            smtp_reply(cfd, reply);
            return 0;
        }
        if (buf_append_c(data, line[0] == '.' ? line + 1 : line) < 0 ||
            buf_append_c(data, "\r\n") < 0)
            return -1;
        return 1;
    }
    if (strncasecmp(line, "EHLO", 4) == 0) {
        smtp_reply(cfd, "250-herald-test\r\n250-AUTH PLAIN\r\n250-SIZE 10000000\r\n250 8BITMIME");
    } else if (strncasecmp(line, "HELO", 4) == 0) {
        smtp_reply(cfd, "250 herald-test");
    } else if (strncasecmp(line, "AUTH PLAIN", 10) == 0) {
        if (line[10] == ' ' && line[11]) {
            record_auth(m, line + 11);
            smtp_reply(cfd, "235 2.7.0 Authentication successful");
        } else {
            smtp_reply(cfd, "334 ");
            return 2;
        }
    } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
        pthread_mutex_lock(&m->s.mu);
        snprintf(m->mail_from, sizeof m->mail_from, "%s", line + 10);
        snprintf(reply, sizeof reply, "%s", m->mail_reply);
        pthread_mutex_unlock(&m->s.mu);
        smtp_reply(cfd, reply);
    } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
        pthread_mutex_lock(&m->s.mu);
        snprintf(m->rcpt_to, sizeof m->rcpt_to, "%s", line + 8);
        snprintf(reply, sizeof reply, "%s", m->rcpt_reply);
        pthread_mutex_unlock(&m->s.mu);
        smtp_reply(cfd, reply);
    } else if (strcasecmp(line, "DATA") == 0) {
        buf_reset(data);
        smtp_reply(cfd, "354 End data with <CR><LF>.<CR><LF>");
        return 1;
    } else if (strcasecmp(line, "RSET") == 0 || strcasecmp(line, "NOOP") == 0) {
        smtp_reply(cfd, "250 2.0.0 Ok");
    } else if (strcasecmp(line, "QUIT") == 0) {
        pthread_mutex_lock(&m->s.mu);
        m->nquit++;
        pthread_mutex_unlock(&m->s.mu);
        smtp_reply(cfd, "221 2.0.0 Bye");
        return -1;
    } else {
        smtp_reply(cfd, "502 5.5.2 Error: command not recognized");
    }
    return 0;
}

static void *smtp_thread(void *arg)
{
    struct smtp_srv *m = arg;
    int cfd = -1, state = 0;
    struct buf in, data;
    buf_init(&in, 1 << 22);
    buf_init(&data, 1 << 22);
    for (;;) {
        int ev = wait_io(&m->s, cfd);
        if (ev == 's')
            break;
        if (ev == 'l') {
            if (cfd >= 0)
                close(cfd);
            cfd = accept(m->s.lfd, NULL, NULL);
            buf_reset(&in);
            state = 0;
            pthread_mutex_lock(&m->s.mu);
            m->s.nconn++;
            pthread_mutex_unlock(&m->s.mu);
            smtp_reply(cfd, "220 herald-test ESMTP");
            continue;
        }
        char tmp[16384];
        ssize_t k = recv(cfd, tmp, sizeof tmp, 0);
        if (k <= 0 || buf_append(&in, tmp, (size_t)k) < 0) {
            close(cfd);
            cfd = -1;
            continue;
        }
        char *eol;
        while (cfd >= 0 && (eol = strstr(in.p, "\r\n")) != NULL) {
            *eol = '\0';
            state = smtp_line(m, cfd, in.p, state, &data);
            size_t used = (size_t)(eol + 2 - in.p);
            memmove(in.p, in.p + used, in.len - used);
            in.len -= used;
            in.p[in.len] = '\0';
            if (state < 0) {
                close(cfd);
                cfd = -1;
            }
        }
    }
    if (cfd >= 0)
        close(cfd);
    buf_cleanup(&in);
    buf_cleanup(&data);
    return NULL;
}

static struct smtp_srv *smtp_start(void)
{
    struct smtp_srv *m = calloc(1, sizeof *m);
    srv_listen(&m->s);
    snprintf(m->mail_reply, sizeof m->mail_reply, "250 2.1.0 Ok");
    snprintf(m->rcpt_reply, sizeof m->rcpt_reply, "250 2.1.5 Ok");
    snprintf(m->data_reply, sizeof m->data_reply, "250 2.0.0 Ok: queued as 4F2A");
    assert_int_equal(pthread_create(&m->s.th, NULL, smtp_thread, m), 0);
    return m;
}

static void smtp_free(struct smtp_srv *m)
{
    /* close the transport's cached sessions while the server still answers QUIT */
    transport_default_stop();
    srv_stop(&m->s);
    free(m->data);
    free(m);
}

/* ---- deliveries ---------------------------------------------------------------------- */

struct fixture {
    cJSON *settings;
    cJSON *profile;
    struct content content;
    struct delivery d;
    struct delivery_result r;
};

static void fx_init(struct fixture *f, const char *settings_json, const char *profile_json)
{
    memset(f, 0, sizeof *f);
    f->settings = cJSON_Parse(settings_json);
    f->profile = cJSON_Parse(profile_json);
    assert_non_null(f->settings);
    assert_non_null(f->profile);
    f->d.message_id = "1-65f240a0-47a6a120c8374de9bcf9f22c";
    f->d.idempotency_key = "1-65f240a0-47a6a120c8374de9bcf9f22c:email:p1";
    f->d.provider_id = "p1";
    f->d.content = &f->content;
    f->d.profile = f->profile;
    f->d.settings = f->settings;
    f->d.timeout_ms = 5000;
    f->d.now_ms = 1700000000123;
}

static void fx_cleanup(struct fixture *f)
{
    cJSON_Delete(f->settings);
    cJSON_Delete(f->profile);
    content_cleanup(&f->content);
}

static void fx_settings(struct fixture *f, const char *settings_json)
{
    cJSON_Delete(f->settings);
    f->settings = cJSON_Parse(settings_json);
    assert_non_null(f->settings);
    f->d.settings = f->settings;
}

static void send_with(const char *provider, struct fixture *f)
{
    const struct provider_ops *p = provider_find(provider);
    assert_non_null(p);
    memset(&f->r, 0xab, sizeof f->r); /* send() must fill everything it reports */
    p->send(&f->d, &f->r);
}

/* settings JSON pointing at a local HTTP server (the url/base_url as %s) */
static char *fmt(const char *f, ...) HR_PRINTF(1, 2);
static char *fmt(const char *f, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, f);
    assert_true(vasprintf(&s, f, ap) >= 0);
    va_end(ap);
    return s;
}

/* ---- webhook ------------------------------------------------------------------------- */

static void test_webhook_sent_signed(void **state)
{
    struct http_srv *h = http_start();
    struct fixture f;
    char *url = url_of(h, "/hooks/in?x=1");
    char *settings = fmt("{\"url\":\"%s\",\"secret\":\"s3cret\",\"headers\":{\"X-Custom\":\"v1\","
                         "\"Content-Type\":\"text/evil\"}}",
                         url);
    fx_init(&f, settings, "{\"user_id\":\"u1\",\"email\":\"ada@example.com\"}");
    f.content.channel = CH_WEBHOOK;
    f.content.json = cJSON_Parse("{\"event\":\"order.ready\",\"n\":42}");
    http_script(h, 200, "Content-Type: application/json\r\n", "{\"id\":\"evt_123\",\"ok\":true}");

    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    assert_int_equal(f.r.remote_status, 200);
    assert_string_equal(f.r.reference, "evt_123");
    assert_int_equal(f.r.retry_after_ms, 0);

    assert_string_equal(h->method, "POST");
    assert_string_equal(h->path, "/hooks/in?x=1");
    assert_string_equal(h->body, "{\"event\":\"order.ready\",\"n\":42}");
    char *v = req_header(h, "Idempotency-Key");
    assert_string_equal(v, f.d.idempotency_key);
    free(v);
    v = req_header(h, "Content-Type");
    assert_string_equal(v, "application/json"); /* the configured one is ignored */
    free(v);
    v = req_header(h, "X-Custom");
    assert_string_equal(v, "v1");
    free(v);

    /* the signature verifies: HMAC-SHA256(secret, "<t>.<body>") */
    char *sig = req_header(h, "courier-signature");
    assert_non_null(sig);
    long long t = 0;
    char hexsig[65] = "";
    assert_int_equal(sscanf(sig, "t=%lld,signature=%64s", &t, hexsig), 2);
    assert_true(t == f.d.now_ms);
    char *signed_part = fmt("%lld.%s", t, h->body);
    uint8_t mac[32];
    char hex[65];
    crypto_hmac_sha256(STR_LIT("s3cret"), signed_part, strlen(signed_part), mac);
    crypto_hex(mac, 32, hex);
    assert_string_equal(hexsig, hex);
    crypto_hmac_sha256(STR_LIT("wrong"), signed_part, strlen(signed_part), mac);
    crypto_hex(mac, 32, hex);
    assert_string_not_equal(hexsig, hex);
    char *sig2 = req_header(h, "X-Herald-Signature");
    assert_string_equal(sig2, sig);
    free(sig2);
    free(sig);
    free(signed_part);

    fx_cleanup(&f);
    free(settings);
    free(url);
    http_free(h);
}

static void test_webhook_default_body_profile_override(void **state)
{
    struct http_srv *h = http_start();
    struct fixture f;
    char *url = url_of(h, "/operator");
    char *rurl = url_of(h, "/recipient");
    char *settings = fmt("{\"url\":\"%s\",\"headers\":{\"X-Operator\":\"secret-ish\"},"
                         "\"authentication\":{\"mode\":\"basic\",\"username\":\"op\","
                         "\"password\":\"op-pass\"}}",
                         url);
    char *profile = fmt("{\"user_id\":\"u1\",\"webhook\":{\"url\":\"%s\",\"method\":\"PUT\","
                        "\"headers\":{\"X-Recipient\":\"r\"},\"authentication\":{\"mode\":"
                        "\"bearer\",\"token\":\"tok-1\"}}}",
                        rurl);
    fx_init(&f, settings, profile);
    f.content.channel = CH_WEBHOOK;
    f.content.title = strdup("Hi");
    f.content.text = strdup("Your order is ready");
    http_script(h, 204, NULL, NULL);

    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    assert_int_equal(f.r.remote_status, 204);
    assert_string_equal(f.r.reference, "");
    assert_string_equal(h->method, "PUT");
    assert_string_equal(h->path, "/recipient");
    char *v = req_header(h, "Authorization");
    assert_string_equal(v, "Bearer tok-1");
    free(v);
    v = req_header(h, "X-Recipient");
    assert_string_equal(v, "r");
    free(v);
    assert_null(req_header(h, "X-Operator")); /* operator headers stay with the operator */
    assert_null(req_header(h, "courier-signature")); /* no secret, no signature */

    cJSON *b = cJSON_Parse(h->body);
    assert_non_null(b);
    assert_string_equal(json_str(b, "message_id"), f.d.message_id);
    assert_string_equal(json_str(json_obj(b, "recipient"), "user_id"), "u1");
    assert_string_equal(json_str(json_obj(b, "content"), "title"), "Hi");
    assert_string_equal(json_str(json_obj(b, "content"), "text"), "Your order is ready");
    assert_null(json_str(json_obj(b, "content"), "html"));
    cJSON_Delete(b);

    /* operator target with basic auth */
    cJSON_DeleteItemFromObject(f.profile, "webhook");
    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    assert_string_equal(h->path, "/operator");
    assert_string_equal(h->method, "POST");
    v = req_header(h, "Authorization");
    assert_string_equal(v, "Basic b3A6b3AtcGFzcw=="); /* op:op-pass */
    free(v);

    fx_cleanup(&f);
    free(settings);
    free(profile);
    free(url);
    free(rurl);
    http_free(h);
}

static void test_webhook_statuses(void **state)
{
    struct http_srv *h = http_start();
    struct fixture f;
    char *url = url_of(h, "/h");
    char *settings = fmt("{\"url\":\"%s\"}", url);
    fx_init(&f, settings, "{}");
    f.content.json = cJSON_Parse("{}");

    http_script(h, 500, NULL, "oops");
    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.remote_status, 500);
    assert_int_equal(f.r.retry_after_ms, 0);

    http_script(h, 429, "Retry-After: 7\r\n", "slow down");
    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.remote_status, 429);
    assert_int_equal(f.r.retry_after_ms, 7000);

    /* an HTTP date: relative to the delivery's now */
    http_script(h, 503, "Retry-After: Tue, 14 Nov 2023 22:13:50 GMT\r\n", "");
    send_with("webhook", &f); /* now_ms = 1700000000123 = 22:13:20.123 */
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.retry_after_ms, 29877);

    http_script(h, 408, NULL, NULL);
    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);

    http_script(h, 400, "Content-Type: application/json\r\n",
                "{\"error\":\"missing field customer\\n\"}");
    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_int_equal(f.r.remote_status, 400);
    assert_int_equal(f.r.retry_after_ms, 0);
    assert_non_null(strstr(f.r.reason, "400"));
    assert_non_null(strstr(f.r.reason, "missing field customer"));
    assert_null(strchr(f.r.reason, '\n'));

    /* only the first 200 bytes of a long answer */
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    http_script(h, 404, NULL, big);
    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_true(strlen(f.r.reason) < 230);

    /* redirects are not followed */
    http_script(h, 302, "Location: http://example.com/\r\n", NULL);
    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_int_equal(locked(&h->s, &h->s.nconn), 1); /* every request reused one connection */

    /* a 2xx with a body over the cap is still SENT */
    size_t n = 200 * 1024;
    char *huge = malloc(n + 1);
    memset(huge, 'a', n);
    huge[n] = '\0';
    http_script(h, 200, NULL, huge);
    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    free(huge);

    fx_cleanup(&f);
    free(settings);
    free(url);
    http_free(h);
}

static void test_webhook_refused_and_timeout(void **state)
{
    struct fixture f;
    char *settings = fmt("{\"url\":\"http://127.0.0.1:%d/h\"}", free_port());
    fx_init(&f, settings, "{}");
    f.content.json = cJSON_Parse("{}");
    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.remote_status, 0);
    assert_true(strncmp(f.r.reason, "webhook: ", 9) == 0);

    /* a server that never answers: TRANSIENT within the delivery's timeout */
    struct http_srv *h = http_start();
    h->hang = 1;
    char *url = url_of(h, "/slow");
    free(settings);
    settings = fmt("{\"url\":\"%s\"}", url);
    fx_settings(&f, settings);
    f.d.timeout_ms = 300;
    int64_t t0 = time_mono_ms();
    send_with("webhook", &f);
    int64_t took = time_mono_ms() - t0;
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.remote_status, 0);
    assert_true(took >= 250 && took < 3000);
    assert_int_equal(locked(&h->s, &h->nreq), 1);

    fx_cleanup(&f);
    free(settings);
    free(url);
    http_free(h);
}

static void test_webhook_validate(void **state)
{
    const struct provider_ops *p = provider_find("webhook");
    struct herr err = {0};
    struct {
        const char *json;
        const char *field; /* NULL: valid */
    } cases[] = {
        {"{\"url\":\"https://example.com/h\"}", NULL},
        {"{\"url\":\"http://example.com/h\",\"method\":\"put\",\"secret\":\"x\","
         "\"headers\":{\"X-A\":\"b\"},\"authentication\":{\"mode\":\"basic\",\"username\":\"u\","
         "\"password\":\"p\"}}",
         NULL},
        {"{}", "settings.url"},
        {"{\"url\":\"ftp://example.com/\"}", "settings.url"},
        {"{\"url\":\"http://exa mple.com/\"}", "settings.url"},
        {"{\"url\":42}", "settings.url"},
        {"{\"url\":\"https://e.com\",\"method\":\"GET\"}", "settings.method"},
        {"{\"url\":\"https://e.com\",\"headers\":{\"X-A\":\"b\\r\\nX-Injected: 1\"}}",
         "settings.headers.X-A"},
        {"{\"url\":\"https://e.com\",\"headers\":{\"X-A\\r\\nB\":\"b\"}}", "settings.headers"},
        {"{\"url\":\"https://e.com\",\"headers\":{\"X-A\":1}}", "settings.headers.X-A"},
        {"{\"url\":\"https://e.com\",\"headers\":[]}", "settings.headers"},
        {"{\"url\":\"https://e.com\",\"secret\":7}", "settings.secret"},
        {"{\"url\":\"https://e.com\",\"authentication\":{\"mode\":\"bearer\"}}",
         "settings.authentication.token"},
        {"{\"url\":\"https://e.com\",\"authentication\":{\"mode\":\"bearer\",\"token\":\"a\\nb\"}}",
         "settings.authentication.token"},
        {"{\"url\":\"https://e.com\",\"authentication\":{\"mode\":\"digest\"}}",
         "settings.authentication.mode"},
        {"[]", "settings"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *s = cJSON_Parse(cases[i].json);
        int rc = p->validate(s, &err);
        if (!cases[i].field) {
            assert_int_equal(rc, HR_OK);
        } else {
            if (rc != HR_INVAL || !strstr(err.msg, cases[i].field))
                fail_msg("case %zu: rc %d msg '%s'", i, rc, err.msg);
        }
        cJSON_Delete(s);
    }

    /* a recipient webhook with CR/LF in a header is refused at send time */
    struct fixture f;
    fx_init(&f, "{\"url\":\"http://127.0.0.1:1/h\"}",
            "{\"webhook\":{\"url\":\"http://127.0.0.1:1/r\",\"headers\":{\"X\":\"a\\r\\nB: c\"}}}");
    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_non_null(strstr(f.r.reason, "profile.webhook.headers"));
    fx_cleanup(&f);
}

/* ---- Twilio ------------------------------------------------------------------------ */

/* form_get: the url-decoded value of `name` in an x-www-form-urlencoded body (malloc'd). */
static char *form_get(const char *body, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = body; p && *p;) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        if ((size_t)(end - p) > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            char *out = malloc((size_t)(end - p) + 1);
            size_t o = 0;
            for (const char *q = p + nl + 1; q < end; q++) {
                if (*q == '+') {
                    out[o++] = ' ';
                } else if (*q == '%' && q + 2 < end + 1) {
                    char hx[3] = {q[1], q[2], 0};
                    out[o++] = (char)strtol(hx, NULL, 16);
                    q += 2;
                } else {
                    out[o++] = *q;
                }
            }
            out[o] = '\0';
            return out;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

static void test_twilio(void **state)
{
    struct http_srv *h = http_start();
    struct fixture f;
    char *base = url_of(h, "/");
    char *settings = fmt("{\"account_sid\":\"AC0123456789abcdef\",\"auth_token\":\"tok&en\","
                         "\"from\":\"+15550000000\",\"base_url\":\"%s\"}",
                         base);
    fx_init(&f, settings, "{\"phone_number\":\"+15551234567\",\"email\":\"x@y.z\"}");
    f.content.channel = CH_SMS;
    f.content.text = strdup("Hello wörld & more = 100%");
    http_script(h, 201, "Content-Type: application/json\r\n",
                "{\"sid\":\"SM0123456789\",\"status\":\"queued\"}");

    send_with("twilio", &f);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    assert_int_equal(f.r.remote_status, 201);
    assert_string_equal(f.r.reference, "SM0123456789");
    assert_string_equal(h->method, "POST");
    assert_string_equal(h->path, "/2010-04-01/Accounts/AC0123456789abcdef/Messages.json");
    char *v = req_header(h, "Authorization");
    char expect[128], b64[96];
    crypto_b64_encode("AC0123456789abcdef:tok&en", 25, b64, sizeof b64);
    snprintf(expect, sizeof expect, "Basic %s", b64);
    assert_string_equal(v, expect);
    free(v);
    v = req_header(h, "Content-Type");
    assert_string_equal(v, "application/x-www-form-urlencoded");
    free(v);
    assert_non_null(strstr(h->body, "To=%2B15551234567"));
    char *to = form_get(h->body, "To"), *from = form_get(h->body, "From"),
         *body = form_get(h->body, "Body");
    assert_string_equal(to, "+15551234567");
    assert_string_equal(from, "+15550000000");
    assert_string_equal(body, "Hello wörld & more = 100%");
    assert_null(form_get(h->body, "MessagingServiceSid"));
    free(to);
    free(from);
    free(body);

    /* a messaging service instead of a number */
    free(settings);
    settings = fmt("{\"account_sid\":\"AC1\",\"auth_token\":\"t\",\"from\":\"MG999\","
                   "\"base_url\":\"%s\"}",
                   base);
    fx_settings(&f, settings);
    send_with("twilio", &f);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    v = form_get(h->body, "MessagingServiceSid");
    assert_string_equal(v, "MG999");
    free(v);
    assert_null(form_get(h->body, "From"));

    /* 400 with Twilio's error */
    http_script(h, 400, "Content-Type: application/json\r\n",
                "{\"code\":21211,\"message\":\"The 'To' number +1555 is not a valid phone "
                "number.\",\"more_info\":\"https://www.twilio.com/docs/errors/21211\","
                "\"status\":400}");
    send_with("twilio", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_int_equal(f.r.remote_status, 400);
    assert_non_null(strstr(f.r.reason, "21211"));
    assert_non_null(strstr(f.r.reason, "is not a valid phone number"));

    http_script(h, 429, "Retry-After: 2\r\n", "{\"code\":20429,\"message\":\"Too Many Requests\"}");
    send_with("twilio", &f);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.retry_after_ms, 2000);

    http_script(h, 503, NULL, NULL);
    send_with("twilio", &f);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);

    /* no phone: permanent, nothing sent */
    int before = locked(&h->s, &h->nreq);
    cJSON_DeleteItemFromObject(f.profile, "phone_number");
    send_with("twilio", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_int_equal(locked(&h->s, &h->nreq), before);

    fx_cleanup(&f);
    free(settings);
    free(base);
    http_free(h);
}

/* ---- SendGrid ----------------------------------------------------------------------- */

static void test_sendgrid(void **state)
{
    struct http_srv *h = http_start();
    struct fixture f;
    char *base = url_of(h, "");
    char *settings = fmt("{\"api_key\":\"SG.abc.def\",\"from\":\"noreply@herald.test\","
                         "\"from_name\":\"Herald\",\"base_url\":\"%s\"}",
                         base);
    fx_init(&f, settings, "{\"email\":\"ada@example.com\",\"phone_number\":\"+1555\"}");
    f.content.channel = CH_EMAIL;
    f.content.subject = strdup("Your order");
    f.content.html = strdup("<p>Ready</p>");
    f.content.text = strdup("Ready");
    http_script(h, 202, "X-Message-Id: 14c5d75ce93.dfd.64b469.filter0001\r\n", NULL);

    send_with("sendgrid", &f);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    assert_int_equal(f.r.remote_status, 202);
    assert_string_equal(f.r.reference, "14c5d75ce93.dfd.64b469.filter0001");
    assert_string_equal(h->method, "POST");
    assert_string_equal(h->path, "/v3/mail/send");
    char *v = req_header(h, "Authorization");
    assert_string_equal(v, "Bearer SG.abc.def");
    free(v);
    v = req_header(h, "Content-Type");
    assert_string_equal(v, "application/json");
    free(v);

    cJSON *b = cJSON_Parse(h->body);
    assert_non_null(b);
    cJSON *p0 = cJSON_GetArrayItem(json_arr(b, "personalizations"), 0);
    cJSON *to0 = cJSON_GetArrayItem(json_arr(p0, "to"), 0);
    assert_string_equal(json_str(to0, "email"), "ada@example.com");
    assert_string_equal(json_str(json_obj(b, "from"), "email"), "noreply@herald.test");
    assert_string_equal(json_str(json_obj(b, "from"), "name"), "Herald");
    assert_string_equal(json_str(b, "subject"), "Your order");
    cJSON *content = json_arr(b, "content");
    assert_int_equal(cJSON_GetArraySize(content), 2);
    assert_string_equal(json_str(cJSON_GetArrayItem(content, 0), "type"), "text/plain");
    assert_string_equal(json_str(cJSON_GetArrayItem(content, 0), "value"), "Ready");
    assert_string_equal(json_str(cJSON_GetArrayItem(content, 1), "type"), "text/html");
    assert_string_equal(json_str(cJSON_GetArrayItem(content, 1), "value"), "<p>Ready</p>");
    assert_string_equal(json_str(json_obj(b, "custom_args"), "herald_message_id"), f.d.message_id);
    cJSON_Delete(b);

    http_script(h, 400, "Content-Type: application/json\r\n",
                "{\"errors\":[{\"message\":\"The from email does not contain a valid address.\","
                "\"field\":\"from.email\",\"help\":null}]}");
    send_with("sendgrid", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_int_equal(f.r.remote_status, 400);
    assert_non_null(strstr(f.r.reason, "The from email does not contain a valid address."));

    http_script(h, 401, NULL,
                "{\"errors\":[{\"message\":\"Permission denied, wrong credentials\"}]}");
    send_with("sendgrid", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_non_null(strstr(f.r.reason, "wrong credentials"));

    http_script(h, 429, "Retry-After: 3\r\n", NULL);
    send_with("sendgrid", &f);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.retry_after_ms, 3000);

    http_script(h, 502, NULL, "bad gateway");
    send_with("sendgrid", &f);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);

    /* invalid recipient: permanent, nothing sent */
    int before = locked(&h->s, &h->nreq);
    cJSON_ReplaceItemInObject(f.profile, "email",
                              cJSON_CreateString("ada@example.com\r\nBcc: x@y"));
    send_with("sendgrid", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(f.r.reason, "invalid email address");
    assert_int_equal(locked(&h->s, &h->nreq), before);

    fx_cleanup(&f);
    free(settings);
    free(base);
    http_free(h);
}

/* ---- SMTP -------------------------------------------------------------------------- */

static char *smtp_settings(struct smtp_srv *m, const char *extra)
{
    return fmt("{\"host\":\"127.0.0.1\",\"port\":%d,\"from\":\"noreply@herald.test\","
               "\"from_name\":\"Herald\"%s}",
               m->s.port, extra ? extra : "");
}

static void email_fixture(struct fixture *f, const char *settings)
{
    fx_init(f, settings, "{\"email\":\"ada@example.com\",\"user_id\":\"u1\"}");
    f->content.channel = CH_EMAIL;
    f->content.subject = strdup("Your order is ready");
    f->content.text = strdup("Hello Ada,\n.your order is ready.");
    f->content.html = strdup("<p>Hello Ada</p>");
}

static void test_smtp_send_and_reuse(void **state)
{
    struct smtp_srv *m = smtp_start();
    struct fixture f;
    char *settings = smtp_settings(m, ",\"username\":\"mailer\",\"password\":\"pw-1\"");
    char mid[MIME_MSGID_MAX];
    email_fixture(&f, settings);

    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    assert_int_equal(f.r.remote_status, 250);
    mime_message_id(f.d.idempotency_key, mid, sizeof mid);
    assert_string_equal(f.r.reference, mid);
    assert_true(strncmp(m->mail_from, "<noreply@herald.test>", 21) == 0);
    assert_string_equal(m->rcpt_to, "<ada@example.com>");
    assert_string_equal(m->auth, "|mailer|pw-1");
    assert_int_equal(m->nmsg, 1);
    assert_non_null(strstr(m->data, "\r\nTo: ada@example.com\r\n"));
    assert_non_null(strstr(m->data, "\r\nFrom: \"Herald\" <noreply@herald.test>\r\n"));
    assert_non_null(strstr(m->data, "\r\nSubject: Your order is ready\r\n"));
    char *mh = fmt("\r\nMessage-ID: %s\r\n", mid);
    assert_non_null(strstr(m->data, mh));
    free(mh);
    assert_non_null(strstr(m->data, "multipart/alternative"));
    assert_non_null(strstr(m->data, "=2Eyour order is ready.")); /* leading dot encoded */
    assert_non_null(strstr(m->data, "<p>Hello Ada</p>"));

    /* the second send on this thread reuses the session */
    f.d.idempotency_key = "another-key";
    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    assert_int_equal(m->nmsg, 2);
    assert_int_equal(locked(&m->s, &m->s.nconn), 1);
    send_with("smtp", &f);
    assert_int_equal(m->nmsg, 3);
    assert_int_equal(locked(&m->s, &m->s.nconn), 1);

    /* stopping the transport closes the session: it says goodbye */
    transport_default_stop();
    for (int i = 0; i < 200 && m->nquit == 0; i++)
        usleep(5000);
    assert_int_equal(m->nquit, 1);

    fx_cleanup(&f);
    free(settings);
    smtp_free(m);
}

static void test_smtp_replies(void **state)
{
    struct smtp_srv *m = smtp_start();
    struct fixture f;
    char *settings = smtp_settings(m, NULL);
    email_fixture(&f, settings);

    snprintf(m->rcpt_reply, sizeof m->rcpt_reply,
             "450 4.2.0 <ada@example.com>: Recipient address rejected: Greylisted");
    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.remote_status, 450);
    assert_non_null(strstr(f.r.reason, "Greylisted"));
    assert_string_equal(f.r.reference, "");

    snprintf(m->rcpt_reply, sizeof m->rcpt_reply,
             "550 5.1.1 <ada@example.com>: Recipient address rejected: User unknown");
    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_int_equal(f.r.remote_status, 550);
    assert_non_null(strstr(f.r.reason, "5.1.1 <ada@example.com>: Recipient address rejected: "
                                       "User unknown"));

    snprintf(m->rcpt_reply, sizeof m->rcpt_reply, "250 2.1.5 Ok");
    snprintf(m->data_reply, sizeof m->data_reply, "554 5.7.1 Message rejected as spam");
    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_int_equal(f.r.remote_status, 554);
    assert_non_null(strstr(f.r.reason, "rejected as spam"));

    snprintf(m->data_reply, sizeof m->data_reply, "250 2.0.0 Ok");
    snprintf(m->mail_reply, sizeof m->mail_reply, "421 4.7.0 Try again later");
    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.remote_status, 421);

    snprintf(m->mail_reply, sizeof m->mail_reply, "250 2.1.0 Ok");
    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);

    /* STARTTLS refused by the server: not delivered in clear text */
    char *tls = smtp_settings(m, ",\"secure\":\"starttls\"");
    int before = m->nmsg;
    fx_settings(&f, tls);
    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT); /* a configuration problem */
    assert_int_equal(f.r.remote_status, 0);
    assert_non_null(strstr(f.r.reason, "STARTTLS"));
    assert_int_equal(m->nmsg, before);
    free(tls);

    /* invalid address: nothing is sent */
    cJSON_ReplaceItemInObject(f.profile, "email",
                              cJSON_CreateString("ada@example.com\r\nBcc: x@y"));
    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(f.r.reason, "invalid email address");
    assert_int_equal(m->nmsg, before);

    fx_cleanup(&f);
    free(settings);
    smtp_free(m);
}

static void test_smtp_subject_injection(void **state)
{
    struct smtp_srv *m = smtp_start();
    struct fixture f;
    char *settings = smtp_settings(m, ",\"from_name\":\"Evil\\r\\nBcc: a@b\"");
    email_fixture(&f, settings);
    free(f.content.subject);
    f.content.subject = strdup("Hi\r\nBcc: x@y");
    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    const char *end = strstr(m->data, "\r\n\r\n");
    assert_non_null(end);
    for (const char *p = m->data; p < end; p = strstr(p, "\r\n") + 2)
        assert_true(strncasecmp(p, "Bcc:", 4) != 0);
    assert_string_equal(m->rcpt_to, "<ada@example.com>");
    fx_cleanup(&f);
    free(settings);
    smtp_free(m);
}

static void *send_thread(void *arg)
{
    struct fixture *f = arg;
    provider_find("smtp")->send(&f->d, &f->r);
    return NULL;
}

static void test_smtp_thread_exit(void **state)
{
    /* the session belongs to the transport, not to a thread: a send from a thread that
     * has exited left it open, and the next send from another thread reuses it */
    struct smtp_srv *m = smtp_start();
    struct fixture f;
    char *settings = smtp_settings(m, NULL);
    pthread_t th;
    email_fixture(&f, settings);
    assert_int_equal(pthread_create(&th, NULL, send_thread, &f), 0);
    pthread_join(th, NULL);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    assert_int_equal(m->nmsg, 2);
    assert_int_equal(locked(&m->s, &m->s.nconn), 1);
    assert_int_equal(m->nquit, 0);
    transport_default_stop();
    for (int i = 0; i < 200 && m->nquit == 0; i++)
        usleep(5000);
    assert_int_equal(m->nquit, 1);
    fx_cleanup(&f);
    free(settings);
    smtp_free(m);
}

static void test_smtp_refused(void **state)
{
    struct fixture f;
    char *settings = fmt("{\"host\":\"127.0.0.1\",\"port\":%d,\"from\":\"a@b.test\"}", free_port());
    email_fixture(&f, settings);
    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_TRANSIENT);
    assert_int_equal(f.r.remote_status, 0);
    assert_true(strncmp(f.r.reason, "smtp: ", 6) == 0);
    fx_cleanup(&f);
    free(settings);
    transport_default_stop();
}

static void test_smtp_validate(void **state)
{
    const struct provider_ops *p = provider_find("smtp");
    struct herr err = {0};
    struct {
        const char *json;
        const char *field;
    } cases[] = {
        {"{\"host\":\"smtp.example.com\",\"from\":\"a@b.test\"}", NULL},
        {"{\"host\":\"::1\",\"port\":2525,\"secure\":\"tls\",\"from\":\"a@b.test\","
         "\"username\":\"u\",\"password\":\"p\",\"from_name\":\"X\",\"reply_to\":\"r@b.test\","
         "\"tls_verify\":false,\"timeout_ms\":3000}",
         NULL},
        {"{\"from\":\"a@b.test\"}", "settings.host"},
        {"{\"host\":\"\",\"from\":\"a@b.test\"}", "settings.host"},
        {"{\"host\":\"smtp.example.com/x\",\"from\":\"a@b.test\"}", "settings.host"},
        {"{\"host\":\"smtp.example.com\"}", "settings.from"},
        {"{\"host\":\"smtp.example.com\",\"from\":\"not-an-address\"}", "settings.from"},
        {"{\"host\":\"smtp.example.com\",\"from\":\"a@b.test\\r\\nBcc: x@y\"}", "settings.from"},
        {"{\"host\":\"h\",\"from\":\"a@b.test\",\"port\":0}", "settings.port"},
        {"{\"host\":\"h\",\"from\":\"a@b.test\",\"port\":\"25\"}", "settings.port"},
        {"{\"host\":\"h\",\"from\":\"a@b.test\",\"port\":25.5}", "settings.port"},
        {"{\"host\":\"h\",\"from\":\"a@b.test\",\"secure\":\"ssl\"}", "settings.secure"},
        {"{\"host\":\"h\",\"from\":\"a@b.test\",\"tls_verify\":\"no\"}", "settings.tls_verify"},
        {"{\"host\":\"h\",\"from\":\"a@b.test\",\"password\":\"p\"}", "settings.username"},
        {"{\"host\":\"h\",\"from\":\"a@b.test\",\"reply_to\":\"x\"}", "settings.reply_to"},
        {"{\"host\":\"h\",\"from\":\"a@b.test\",\"timeout_ms\":-1}", "settings.timeout_ms"},
        {"null", "settings"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *s = cJSON_Parse(cases[i].json);
        int rc = p->validate(s, &err);
        if (!cases[i].field)
            assert_int_equal(rc, HR_OK);
        else if (rc != HR_INVAL || !strstr(err.msg, cases[i].field))
            fail_msg("case %zu: rc %d msg '%s'", i, rc, err.msg);
        cJSON_Delete(s);
    }
    /* send() checks too */
    struct fixture f;
    email_fixture(&f, "{\"from\":\"a@b.test\"}");
    send_with("smtp", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_non_null(strstr(f.r.reason, "settings.host"));
    fx_cleanup(&f);
}

/* ---- the rest --------------------------------------------------------------------- */

static void test_other_validate(void **state)
{
    struct herr err = {0};
    struct {
        const char *provider;
        const char *json;
        const char *field;
    } cases[] = {
        {"twilio", "{\"account_sid\":\"AC1\",\"auth_token\":\"t\",\"from\":\"+1\"}", NULL},
        {"twilio", "{\"auth_token\":\"t\",\"from\":\"+1\"}", "settings.account_sid"},
        {"twilio", "{\"account_sid\":\"AC1/../x\",\"auth_token\":\"t\",\"from\":\"+1\"}",
         "settings.account_sid"},
        {"twilio", "{\"account_sid\":\"AC1\",\"from\":\"+1\"}", "settings.auth_token"},
        {"twilio", "{\"account_sid\":\"AC1\",\"auth_token\":\"t\"}", "settings.from"},
        {"twilio",
         "{\"account_sid\":\"AC1\",\"auth_token\":\"t\",\"from\":\"+1\",\"base_url\":\"x\"}",
         "settings.base_url"},
        {"sendgrid", "{\"api_key\":\"k\",\"from\":\"a@b.test\"}", NULL},
        {"sendgrid", "{\"from\":\"a@b.test\"}", "settings.api_key"},
        {"sendgrid", "{\"api_key\":\"k\\r\\nX: y\",\"from\":\"a@b.test\"}", "settings.api_key"},
        {"sendgrid", "{\"api_key\":\"k\"}", "settings.from"},
        {"sendgrid", "{\"api_key\":\"k\",\"from\":\"a@b.test\",\"from_name\":3}",
         "settings.from_name"},
        {"console", "{}", NULL},
        {"console", "null", NULL},
        {"console", "3", "settings"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct provider_ops *p = provider_find(cases[i].provider);
        cJSON *s = cJSON_Parse(cases[i].json);
        int rc = p->validate(s, &err);
        if (!cases[i].field)
            assert_int_equal(rc, HR_OK);
        else if (rc != HR_INVAL || !strstr(err.msg, cases[i].field))
            fail_msg("case %zu: rc %d msg '%s'", i, rc, err.msg);
        cJSON_Delete(s);
    }
}

static void test_addressable(void **state)
{
    cJSON *email = cJSON_Parse("{\"email\":\"ada@example.com\"}");
    cJSON *bad_email = cJSON_Parse("{\"email\":\"ada at example.com\"}");
    cJSON *phone = cJSON_Parse("{\"phone_number\":\"+15551234567\"}");
    cJSON *hook = cJSON_Parse("{\"webhook\":{\"url\":\"https://example.com/r\"}}");
    cJSON *empty = cJSON_Parse("{}");
    cJSON *hs = cJSON_Parse("{\"url\":\"https://example.com/h\"}");
    cJSON *hs_none = cJSON_Parse("{}");
    const struct provider_ops *smtp = provider_find("smtp"), *sg = provider_find("sendgrid"),
                              *tw = provider_find("twilio"), *wh = provider_find("webhook"),
                              *co = provider_find("console");

    assert_true(smtp->addressable(email, NULL));
    assert_false(smtp->addressable(bad_email, NULL));
    assert_false(smtp->addressable(phone, NULL));
    assert_false(smtp->addressable(NULL, NULL));
    assert_true(sg->addressable(email, NULL));
    assert_false(sg->addressable(phone, NULL));
    assert_true(tw->addressable(phone, NULL));
    assert_false(tw->addressable(email, NULL));
    assert_true(wh->addressable(empty, hs));        /* the operator's URL */
    assert_true(wh->addressable(hook, hs_none));    /* the recipient's own */
    assert_false(wh->addressable(empty, hs_none));
    assert_true(co->addressable(empty, NULL));

    cJSON_Delete(email);
    cJSON_Delete(bad_email);
    cJSON_Delete(phone);
    cJSON_Delete(hook);
    cJSON_Delete(empty);
    cJSON_Delete(hs);
    cJSON_Delete(hs_none);
}

static void test_registry(void **state)
{
    const char *names[] = {"smtp",     "sendgrid", "twilio", "webhook", "console", "postmark",
                           "resend",   "mailgun",  "ses",    "vonage",  "messagebird"};
    const enum channel chans[] = {CH_EMAIL, CH_EMAIL, CH_SMS,   CH_WEBHOOK, CH_NONE, CH_EMAIL,
                                  CH_EMAIL, CH_EMAIL, CH_EMAIL, CH_SMS,     CH_SMS};
    /* the six whose receipts POST /receipts/{id} takes (src/api/receipts.c): only their
     * references are indexed for it */
    const bool receipts[] = {false, true, true, false, false, true, true, true, true, false, false};
    const struct provider_ops *const *all = provider_all();
    int n = 0;
    for (; all[n]; n++) {
        assert_int_equal(all[n]->version, 1);
        assert_non_null(all[n]->secret_fields);
        assert_non_null(all[n]->validate);
        assert_non_null(all[n]->addressable);
        assert_non_null(all[n]->send);
    }
    assert_int_equal(n, 11);
    for (int i = 0; i < 11; i++) {
        const struct provider_ops *p = provider_find(names[i]);
        assert_non_null(p);
        assert_string_equal(p->name, names[i]);
        assert_int_equal(p->channel, chans[i]);
        assert_int_equal(p->receipts, receipts[i]);
    }
    assert_null(provider_find("pigeon"));
    assert_null(provider_find(NULL));
    assert_string_equal(provider_find("smtp")->secret_fields[0], "password");
    assert_string_equal(provider_find("twilio")->secret_fields[0], "auth_token");
    assert_string_equal(provider_find("sendgrid")->secret_fields[0], "api_key");
    assert_string_equal(provider_find("webhook")->secret_fields[0], "secret");
    assert_string_equal(provider_find("ses")->secret_fields[0], "secret_access_key");
    assert_string_equal(provider_find("ses")->secret_fields[1], "session_token");
    assert_string_equal(provider_find("vonage")->secret_fields[0], "api_secret");
    assert_string_equal(provider_find("messagebird")->secret_fields[0], "access_key");
}

static void test_console(void **state)
{
    struct fixture f;
    FILE *tmp = tmpfile();
    char line[4096] = "";
    fx_init(&f, "{}", "{\"email\":\"ada@example.com\",\"phone_number\":\"+1555\","
                      "\"custom\":{\"ssn\":\"123-45-6789\"}}");
    f.content.channel = CH_EMAIL;
    f.content.subject = strdup("Hello \"Ada\"\nsecond line");
    f.content.text = strdup("Body text");
    log_set_stream(tmp);
    log_set_level(LOG_INFO);
    send_with("console", &f);
    log_set_level(LOG_WARN);
    log_set_stream(NULL);
    assert_int_equal(f.r.outcome, DELIVERY_SENT);
    assert_string_equal(f.r.reference, "console-1-65f240a0-47a6a120c8374de9bcf9f22c");
    assert_int_equal(f.r.remote_status, 0);
    assert_int_equal(f.r.retry_after_ms, 0);
    rewind(tmp);
    assert_non_null(fgets(line, sizeof line, tmp));
    fclose(tmp);
    assert_non_null(strstr(line, "event=provider.console"));
    assert_non_null(strstr(line, "message_id=1-65f240a0-47a6a120c8374de9bcf9f22c"));
    assert_non_null(strstr(line, "channel=email"));
    assert_non_null(strstr(line, "to=\"ada@example.com\""));
    assert_non_null(strstr(line, "subject=\"Hello \\\"Ada\\\"\\x0asecond line\""));
    assert_null(strstr(line, "123-45-6789")); /* nothing else of the profile */
    assert_null(strstr(line, "+1555"));
    fx_cleanup(&f);
}

static void test_retry_after_parse(void **state)
{
    int64_t now = 1445412480000; /* Wed, 21 Oct 2015 07:28:00 GMT */
    assert_int_equal(http_client_retry_after("120", now), 120000);
    assert_int_equal(http_client_retry_after(" 5 ", now), 5000);
    assert_int_equal(http_client_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), 30000);
    assert_int_equal(http_client_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), 0);
    assert_int_equal(http_client_retry_after("0", now), 0);
    assert_int_equal(http_client_retry_after("-3", now), 0);
    assert_int_equal(http_client_retry_after("soon", now), 0);
    assert_int_equal(http_client_retry_after("", now), 0);
    assert_int_equal(http_client_retry_after(NULL, now), 0);
    assert_int_equal(http_client_retry_after("99999999", now), 86400000); /* capped */
}

/* http_client_url_ok: absolute http(s) URLs with a host only; the same answer whether
 * or not the thread just checked that URL (it remembers the last good one) */
static void test_url_ok(void **state)
{
    char long_url[2100];
    (void)state;
    for (int round = 0; round < 2; round++) { /* the second round hits the remembered one */
        assert_true(http_client_url_ok("https://api.example.com/v1/hook?x=1"));
        assert_false(http_client_url_ok("https://api.example.com/v1/hook?x=1 "));
        assert_false(http_client_url_ok("https://api.example.com/v1/hook?x=\x01"));
        assert_false(http_client_url_ok("ftp://api.example.com/v1/hook"));
        assert_false(http_client_url_ok("https://"));
        assert_false(http_client_url_ok("/relative"));
        assert_false(http_client_url_ok(""));
        assert_false(http_client_url_ok(NULL));
        assert_true(http_client_url_ok("http://127.0.0.1:8080/"));
    }
    assert_true(http_client_url_ok("https://api.example.com/v1/hook?x=1"));
    assert_true(http_client_url_ok("https://api.example.com/v1/hook?x=")); /* a prefix */
    assert_false(http_client_url_ok("https://api.example.com/v1/hook?x= ")); /* then bad */
    memset(long_url, 'a', sizeof long_url - 1);
    memcpy(long_url, "https://h/", 10);
    long_url[2048] = '\0';
    assert_true(http_client_url_ok(long_url)); /* 2,048 characters: the limit */
    assert_true(http_client_url_ok(long_url));
    long_url[2048] = 'a';
    long_url[2049] = '\0';
    assert_false(http_client_url_ok(long_url)); /* one more */
}

/* the egress guard and secrets: a loopback target is refused without the allowlist;
 * echoed credentials are scrubbed; URL passwords are masked */
static void test_egress_and_scrub(void **state)
{
    struct fixture f;
    struct netaddr_allow none, loop;
    struct herr err = {0};
    struct http_srv *h = http_start();
    char *url = url_of(h, "/hook");
    char *settings = fmt("{\"url\":\"%s\",\"headers\":{\"X-Key\":\"hdr-value-123\"},"
                         "\"authentication\":{\"mode\":\"bearer\",\"token\":\"tok-secret-9\"}}",
                         url);
    char text[256], masked[256];
    assert_int_equal(netaddr_allow_parse("", &none, &err), HR_OK);
    assert_int_equal(netaddr_allow_parse("127.0.0.0/8,::1/128", &loop, &err), HR_OK);

    http_client_egress_allow(&none);
    fx_init(&f, settings, "{}");
    f.content.json = cJSON_Parse("{}");
    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_string_equal(f.r.reason, "webhook target 127.0.0.1 is a loopback address; refused "
                                    "(allow it with --egress-allow)");
    assert_int_equal(h->nreq, 0);

    /* allowed: a 401 quoting the credentials back keeps the status, not the secrets */
    http_client_egress_allow(&loop);
    http_script(h, 401, NULL, "who? Bearer tok-secret-9 X-Key=hdr-value-123 end");
    send_with("webhook", &f);
    assert_int_equal(f.r.outcome, DELIVERY_PERMANENT);
    assert_int_equal(h->nreq, 1);
    assert_string_equal(f.r.reason, "webhook 401: who? Bearer **** X-Key=**** end");

    snprintf(text, sizeof text, "a pw-12345 b cHc=c pw-12345pw-12345 %s", "dXNlcjpwdy0xMjM0NQ==");
    http_client_scrub_basic(text, "user", "pw-12345");
    assert_string_equal(text, "a **** b cHc=c ******** ****");
    snprintf(text, sizeof text, "a t b");
    http_client_scrub(text, "t"); /* too short to scrub */
    assert_string_equal(text, "a t b");
    assert_true(http_client_url_mask_password("https://u:p4ss@example.com/x?y=1", masked,
                                              sizeof masked));
    assert_string_equal(masked, "https://u:****@example.com/x?y=1");
    assert_false(http_client_url_mask_password("https://u@example.com/x", masked, sizeof masked));
    http_client_url_redacted("https://u:p4ss@example.com:8443/x/y?token=abc#f", masked,
                             sizeof masked);
    assert_string_equal(masked, "https://example.com:8443/x/y");

    fx_cleanup(&f);
    free(settings);
    free(url);
    http_free(h);
}

static int group_setup(void **state)
{
    struct netaddr_allow loop;
    struct herr err = {0};
    log_set_level(LOG_WARN);
    /* the tests' servers listen on loopback */
    if (netaddr_allow_parse("127.0.0.0/8,::1/128", &loop, &err) < 0)
        return -1;
    http_client_egress_allow(&loop);
    return provider_global_init() == HR_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    provider_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_webhook_sent_signed),
        cmocka_unit_test(test_webhook_default_body_profile_override),
        cmocka_unit_test(test_webhook_statuses),
        cmocka_unit_test(test_egress_and_scrub),
        cmocka_unit_test(test_webhook_refused_and_timeout),
        cmocka_unit_test(test_webhook_validate),
        cmocka_unit_test(test_twilio),
        cmocka_unit_test(test_sendgrid),
        cmocka_unit_test(test_smtp_send_and_reuse),
        cmocka_unit_test(test_smtp_replies),
        cmocka_unit_test(test_smtp_subject_injection),
        cmocka_unit_test(test_smtp_thread_exit),
        cmocka_unit_test(test_smtp_refused),
        cmocka_unit_test(test_smtp_validate),
        cmocka_unit_test(test_other_validate),
        cmocka_unit_test(test_addressable),
        cmocka_unit_test(test_console),
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_url_ok),
    };
    return cmocka_run_group_tests_name("providers", tests, group_setup, group_teardown);
}
