/* transport.c: the one libcurl multi loop (see transport.h). A transfer is born in
 * transport_submit (the request moved in, appended to the submission list under the
 * lock, the loop woken through an eventfd), started by the loop thread (easy handle
 * made, options set, added to the multi), and ended by finish() on the loop thread
 * (result read, secrets scrubbed, callback called, everything freed). The loop thread is
 * the only one that touches the multi, the easy handles, the connection pools and the
 * list of active transfers.
 *
 * The loop drives libcurl by its socket interface: libcurl names the sockets it waits on
 * (on_socket: into an epoll set) and its next timeout (on_timer), and the loop hands it
 * only the sockets epoll found ready (curl_multi_socket_action). With
 * curl_multi_perform every wake-up walked every transfer in flight, each checking its
 * socket with a poll() of its own: 25 poll() calls per delivery with ~500 calls in
 * flight to a sink answering in 100 ms. */
#include "transport.h"

#include "../util/clock.h"
#include "../util/log.h"
#include "../util/metrics.h"
#include "../util/xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define M_IN_FLIGHT "herald_transport_in_flight"
#define M_DONE "herald_transport_completed_total"

/* Connection pools. libcurl reuses a connection for any transfer to the same host, port
 * and login, but does not tell a plain SMTP session from one upgraded by STARTTLS, nor
 * compare certificate checks on it, nor know about the egress guard. Transfers that need
 * one of those apart get a pool (a CURLSH sharing connections) of their own; the rest use
 * the multi's cache. */
enum pool {
    POOL_GUARDED = 0,    /* requests with req->guard: every connection checked */
    POOL_TLS,            /* SMTP with TLS required, peer verified */
    POOL_TLS_NOVERIFY,   /* SMTP with TLS required, peer not verified */
    POOL_N,
};

struct transfer {
    struct transfer *next, *prev; /* submission list (next only), then the active list */
    struct transport_req req;     /* owned */
    struct transport_resp resp;   /* filled by libcurl's callbacks and finish() */
    CURL *h;                      /* NULL until started */
    char refused[160];            /* egress guard: the first refusal, "" when none */
    size_t upload_off;            /* SMTP: bytes of req.body handed to libcurl */
    bool added;                   /* h is in the multi */
    transport_done_fn done;
    void *arg;
};

struct transport {
    pthread_mutex_t mu;             /* guards the fields up to `stopping` */
    struct transfer *head, *tail;   /* submitted, not yet started */
    int count;                      /* queued + in flight */
    int max;                        /* cap on count */
    bool stopping;
    pthread_t th;
    CURLM *multi;                   /* loop thread only, from here on */
    CURLSH *pool[POOL_N];           /* connection pools apart from the multi's own */
    struct transfer *active;        /* started, not finished (doubly linked) */
    int ep;                         /* epoll set: the wake eventfd and libcurl's sockets */
    int wake_fd;                    /* eventfd: submissions, stop (any thread writes) */
    int64_t timer_at;               /* libcurl's timeout, monotonic ms; -1: none */
    long n_easy;                    /* easy handles in the multi */
    long keep_min;                  /* idle connections kept at least (keep_idle) */
};

/* ---- requests and responses --------------------------------------------------------- */

void transport_req_init(struct transport_req *req)
{
    memset(req, 0, sizeof *req);
    req->tls_verify = true;
}

void transport_req_cleanup(struct transport_req *req)
{
    if (!req)
        return;
    free(req->url);
    free(req->method);
    curl_slist_free_all(req->headers);
    free(req->body);
    free(req->username);
    free(req->password);
    free(req->guard);
    for (size_t i = 0; req->secrets && req->secrets[i]; i++)
        free(req->secrets[i]);
    free(req->secrets);
    free(req->mail_from);
    curl_slist_free_all(req->rcpts);
    transport_req_init(req);
}

void transport_req_secret(struct transport_req *req, const char *s)
{
    size_t n = 0;
    if (!s || !s[0])
        return;
    while (req->secrets && req->secrets[n])
        n++;
    req->secrets = xrealloc(req->secrets, (n + 2) * sizeof *req->secrets);
    req->secrets[n] = xstrdup(s);
    req->secrets[n + 1] = NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void transport_req_from_http(struct transport_req *req, const struct http_client_req *in)
{
    req->kind = TRANSPORT_HTTP;
    req->url = dup_or_null(in->url);
    req->method = dup_or_null(in->method);
    if (in->content_type)
        http_client_header_add(&req->headers, "Content-Type: %s", in->content_type);
    http_client_header_add(&req->headers, "Expect:"); /* no 100-continue round trip */
    for (const struct curl_slist *l = in->headers; l; l = l->next)
        http_client_header_add(&req->headers, "%s", l->data);
    req->body_len = in->body.p ? in->body.len : 0;
    req->body = xmalloc(req->body_len + 1);
    if (req->body_len)
        memcpy(req->body, in->body.p, req->body_len);
    req->body[req->body_len] = '\0';
    req->username = dup_or_null(in->username);
    req->password = in->username ? xstrdup(in->password ? in->password : "") : NULL;
    req->guard = dup_or_null(in->guard);
    for (size_t i = 0; in->secrets && in->secrets[i]; i++)
        transport_req_secret(req, in->secrets[i]);
    req->timeout_ms = in->timeout_ms;
    req->now_ms = in->now_ms;
}

void transport_resp_init(struct transport_resp *resp)
{
    memset(resp, 0, sizeof *resp);
    http_client_resp_init(&resp->http);
}

void transport_resp_cleanup(struct transport_resp *resp)
{
    if (resp)
        http_client_resp_cleanup(&resp->http);
}

void transport_resp_move(struct transport_resp *to, struct transport_resp *from)
{
    transport_resp_cleanup(to);
    *to = *from;
    transport_resp_init(from);
}

/* ---- the egress guard ------------------------------------------------------------------ */

static pthread_mutex_t g_allow_mu = PTHREAD_MUTEX_INITIALIZER;
static struct netaddr_allow g_allow; /* under g_allow_mu: tests change it while running */

void http_client_egress_allow(const struct netaddr_allow *allow)
{
    pthread_mutex_lock(&g_allow_mu);
    if (allow)
        g_allow = *allow;
    else
        memset(&g_allow, 0, sizeof g_allow);
    pthread_mutex_unlock(&g_allow_mu);
}

static bool allowed(const struct netaddr *na)
{
    bool ok;
    pthread_mutex_lock(&g_allow_mu);
    ok = netaddr_allow_match(&g_allow, na);
    pthread_mutex_unlock(&g_allow_mu);
    return ok;
}

/* open_guarded: CURLOPT_OPENSOCKETFUNCTION of guarded requests: called with the resolved
 * address of every connection they open (happy eyeballs tries each family). */
static curl_socket_t open_guarded(void *clientp, curlsocktype purpose,
                                  struct curl_sockaddr *a)
{
    struct transfer *tr = clientp;
    struct netaddr na;
    enum netaddr_class c;
    char text[NETADDR_TEXT_MAX];
    int fd;
    if (purpose != CURLSOCKTYPE_IPCXN ||
        netaddr_from_sockaddr(&a->addr, a->addrlen, &na) < 0) {
        if (!tr->refused[0])
            snprintf(tr->refused, sizeof tr->refused, "target is not an IP address; refused");
        return CURL_SOCKET_BAD;
    }
    c = netaddr_classify(&na);
    if (c != NETADDR_PUBLIC && !allowed(&na)) {
        if (!tr->refused[0]) {
            netaddr_format(&na, text, sizeof text);
            snprintf(tr->refused, sizeof tr->refused,
                     "target %s is %s; refused (allow it with --egress-allow)", text,
                     netaddr_class_text(c));
        }
        return CURL_SOCKET_BAD;
    }
    fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    return fd < 0 ? CURL_SOCKET_BAD : (curl_socket_t)fd;
}

/* ---- libcurl callbacks ------------------------------------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct http_client_resp *resp = ud;
    size_t len = size * n;
    size_t room = HTTP_CLIENT_BODY_MAX - resp->body.len;
    if (len > room) {
        /* keep what fits and stop reading: the status is what matters */
        if (buf_append(&resp->body, p, room) < 0)
            return 0;
        resp->truncated = true;
        return 0;
    }
    if (buf_append(&resp->body, p, len) < 0)
        return 0;
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct http_client_resp *resp = ud;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        buf_reset(&resp->headers); /* a new response (after 1xx): keep only the last */
    /* past the cap, further lines are dropped; the transfer goes on */
    if (buf_append(&resp->headers, p, len) < 0)
        return len;
    return len;
}

static size_t on_read(char *dst, size_t size, size_t n, void *ud)
{
    struct transfer *tr = ud;
    size_t room = size * n, left = tr->req.body_len - tr->upload_off;
    size_t k = left < room ? left : room;
    memcpy(dst, tr->req.body + tr->upload_off, k);
    tr->upload_off += k;
    return k;
}

/* on_debug: the SMTP server's first error reply (4xx/5xx) is what ends up in a reason;
 * later lines (the QUIT of a connection closed after the error) do not replace it. Only
 * CURLINFO_HEADER_IN is looked at, so our own AUTH lines never are. */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
    struct transfer *tr = ud;
    char *line = tr->resp.smtp_reply;
    if (type == CURLINFO_HEADER_IN && !line[0] && size >= 3 &&
        (data[0] == '4' || data[0] == '5') && data[1] >= '0' && data[1] <= '9' &&
        data[2] >= '0' && data[2] <= '9') {
        while (size && (data[size - 1] == '\n' || data[size - 1] == '\r'))
            size--;
        http_client_text(line, sizeof tr->resp.smtp_reply, (struct str){data, size}, 200);
    }
    return 0;
}

/* ---- one transfer ----------------------------------------------------------------------- */

static bool scheme_ok(const struct transport_req *req)
{
    if (req->kind == TRANSPORT_SMTP)
        return req->url && (strncasecmp(req->url, "smtp://", 7) == 0 ||
                            strncasecmp(req->url, "smtps://", 8) == 0);
    return req->url && http_client_url_ok(req->url);
}

static void transfer_free(struct transfer *tr)
{
    if (!tr)
        return;
    transport_req_cleanup(&tr->req);
    transport_resp_cleanup(&tr->resp);
    free(tr);
}

static void setup_http(struct transfer *tr, CURL *h)
{
    struct transport_req *q = &tr->req;
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "herald");
    if (q->method && strcmp(q->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? q->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        if (q->method && strcmp(q->method, "POST") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, q->headers);
    if (q->username) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, q->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, q->password ? q->password : "");
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &tr->resp.http);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &tr->resp.http);
}

static void setup_smtp(struct transfer *tr, CURL *h)
{
    struct transport_req *q = &tr->req;
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    /* each reply within the transfer's time (no change while it runs); libcurl copies it
     * to the handle that says QUIT when the pool closes, which otherwise waits 120 s on
     * a server that stopped answering */
    curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT,
                     (long)(http_client_timeout(q->timeout_ms) + 999) / 1000);
    curl_easy_setopt(h, CURLOPT_USE_SSL, q->smtp_tls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_NONE);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, q->tls_verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, q->tls_verify ? 2L : 0L);
    if (q->username) {
        curl_easy_setopt(h, CURLOPT_USERNAME, q->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, q->password ? q->password : "");
    }
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, q->mail_from ? q->mail_from : "<>");
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, q->rcpts);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, tr);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, tr);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
}

static void finish(struct transport *t, struct transfer *tr, int rc, CURLcode cc);

/* start: the easy handle for tr, added to the multi; tr joins the active list. */
static void start(struct transport *t, struct transfer *tr)
{
    long timeout = (long)http_client_timeout(tr->req.timeout_ms);
    CURL *h = curl_easy_init();
    tr->next = t->active;
    tr->prev = NULL;
    if (t->active)
        t->active->prev = tr;
    t->active = tr;
    if (!h) {
        snprintf(tr->resp.http.error, sizeof tr->resp.http.error,
                 "libcurl could not create a handle");
        finish(t, tr, HR_IO, CURLE_OUT_OF_MEMORY);
        return;
    }
    tr->h = h;
    curl_easy_setopt(h, CURLOPT_PRIVATE, tr);
    curl_easy_setopt(h, CURLOPT_URL, tr->req.url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, tr->resp.http.error);
    if (tr->req.kind == TRANSPORT_SMTP && tr->req.smtp_tls)
        curl_easy_setopt(h, CURLOPT_SHARE,
                         t->pool[tr->req.tls_verify ? POOL_TLS : POOL_TLS_NOVERIFY]);
    if (tr->req.guard) {
        curl_easy_setopt(h, CURLOPT_SHARE, t->pool[POOL_GUARDED]);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_guarded);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, tr);
        curl_easy_setopt(h, CURLOPT_PROXY, ""); /* no proxy from the environment */
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    }
    if (tr->req.kind == TRANSPORT_SMTP)
        setup_smtp(tr, h);
    else
        setup_http(tr, h);
    if (curl_multi_add_handle(t->multi, h) != CURLM_OK) {
        snprintf(tr->resp.http.error, sizeof tr->resp.http.error,
                 "libcurl could not start the transfer");
        finish(t, tr, HR_IO, CURLE_FAILED_INIT);
        return;
    }
    tr->added = true;
    t->n_easy++;
}

/* keep_idle: size the connection caches for this round. libcurl's default keeps 4 idle
 * connections per easy handle in the multi at the moment one is given back, so when the
 * transfers in flight drop (between bursts of deliveries) it closes the connections the
 * next burst needs, and that burst opens them again: 5-7 % of the flow bench's deliveries
 * opened a connection. The same 4 per handle, but never fewer than keep_min. */
static void keep_idle(struct transport *t)
{
    long keep = t->n_easy * 4 > t->keep_min ? t->n_easy * 4 : t->keep_min;
    curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, keep); /* a field set, no more */
}

/* result: rc and resp of a transfer libcurl finished with cc. */
static int result(struct transfer *tr, CURLcode cc)
{
    struct http_client_resp *resp = &tr->resp.http;
    long status = 0;
    char ra[128];
    curl_easy_getinfo(tr->h, CURLINFO_RESPONSE_CODE, &status);
    resp->curl_code = (int)cc;
    if (tr->req.kind == TRANSPORT_SMTP) {
        resp->status = (int)status;
        if (cc == CURLE_OK) {
            resp->error[0] = '\0';
            return HR_OK;
        }
    } else if (status >= 200 && status <= 599) {
        /* the server answered; a body cut short (cap or timeout) does not change that */
        resp->status = (int)status;
        resp->error[0] = '\0';
        if (http_client_header(resp, "Retry-After", ra, sizeof ra))
            resp->retry_after_ms = http_client_retry_after(
                ra, tr->req.now_ms > 0 ? tr->req.now_ms : time_now_ms());
        return HR_OK;
    } else if (tr->refused[0] && cc == CURLE_COULDNT_CONNECT) {
        snprintf(resp->error, sizeof resp->error, "%s", tr->refused);
        return HR_PERM;
    }
    if (!resp->error[0])
        snprintf(resp->error, sizeof resp->error, "%s", curl_easy_strerror(cc));
    return cc == CURLE_OPERATION_TIMEDOUT ? HR_TIMEOUT : HR_IO;
}

static const char *result_label(int rc)
{
    switch (rc) {
    case HR_OK: return "answered";
    case HR_TIMEOUT: return "timeout";
    case HR_PERM: return "refused";
    case HR_UNAVAIL: return "canceled";
    default: return "error";
    }
}

/* finish: end tr (started or not): its result (rc, or read from libcurl when rc is
 * HR_OK and the handle ran), secrets scrubbed, callback, freed. Loop thread. */
static void finish(struct transport *t, struct transfer *tr, int rc, CURLcode cc)
{
    struct transport_req *q = &tr->req;
    if (tr->h) {
        if (rc == HR_OK)
            rc = result(tr, cc);
        if (tr->added) {
            curl_multi_remove_handle(t->multi, tr->h);
            t->n_easy--;
        }
        curl_easy_cleanup(tr->h);
        tr->h = NULL;
    }
    tr->resp.rc = rc;
    http_client_resp_scrub(&tr->resp.http, (const char *const *)q->secrets, q->username,
                           q->password, q->url);
    for (size_t i = 0; q->secrets && q->secrets[i]; i++)
        http_client_scrub(tr->resp.smtp_reply, q->secrets[i]);
    http_client_scrub_basic(tr->resp.smtp_reply, q->username, q->password);
    if (tr->prev)
        tr->prev->next = tr->next;
    else if (t->active == tr)
        t->active = tr->next;
    if (tr->next)
        tr->next->prev = tr->prev;
    /* counted out first: the callback may submit the next transfer into the room */
    pthread_mutex_lock(&t->mu);
    t->count--;
    pthread_mutex_unlock(&t->mu);
    metrics_gauge_add(M_IN_FLIGHT, "Outbound transfers queued or in flight.", -1);
    metrics_counter_add(M_DONE, "Outbound transfers finished, by result.", "result",
                        result_label(rc), 1);
    tr->done(tr->arg, &tr->resp);
    transfer_free(tr);
}

/* cancel: finish tr without an answer: the transport is going away. */
static void cancel(struct transport *t, struct transfer *tr)
{
    snprintf(tr->resp.http.error, sizeof tr->resp.http.error,
             "canceled: the transport is shutting down");
    finish(t, tr, HR_UNAVAIL, CURLE_ABORTED_BY_CALLBACK);
}

/* ---- the loop ----------------------------------------------------------------------------- */

/* on_socket: CURLMOPT_SOCKETFUNCTION: watch s for what libcurl waits for (level
 * triggered), or stop watching it. socketp is non-NULL once s is in the set. */
static int on_socket(CURL *e, curl_socket_t s, int what, void *arg, void *socketp)
{
    struct transport *t = arg;
    struct epoll_event ev = {.data.fd = s};
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (socketp)
            epoll_ctl(t->ep, EPOLL_CTL_DEL, s, NULL); /* ENOENT/EBADF: already gone */
        return 0;
    }
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    if (socketp ? epoll_ctl(t->ep, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT &&
                      epoll_ctl(t->ep, EPOLL_CTL_ADD, s, &ev) < 0
                : epoll_ctl(t->ep, EPOLL_CTL_ADD, s, &ev) < 0 && errno == EEXIST &&
                      epoll_ctl(t->ep, EPOLL_CTL_MOD, s, &ev) < 0) {
        /* not -1: libcurl would mark the whole multi dead and fail every transfer. The
         * transfers on s end at their timeout (CURLOPT_TIMEOUT_MS, libcurl's timer) */
        LOG_E("transport.epoll", "fd=%d errno=%d msg=\"cannot watch a socket; its "
              "transfer ends at its timeout\"", (int)s, errno);
        return 0;
    }
    if (!socketp)
        curl_multi_assign(t->multi, s, t); /* any non-NULL mark */
    return 0;
}

/* on_timer: CURLMOPT_TIMERFUNCTION: libcurl wants CURL_SOCKET_TIMEOUT after ms (-1:
 * never). */
static int on_timer(CURLM *m, long ms, void *arg)
{
    struct transport *t = arg;
    (void)m;
    t->timer_at = ms < 0 ? -1 : time_mono_ms() + ms;
    return 0;
}

/* reap: finish every transfer libcurl says is done. */
static void reap(struct transport *t)
{
    CURLMsg *m;
    int left = 0;
    while ((m = curl_multi_info_read(t->multi, &left))) {
        struct transfer *tr = NULL;
        CURLcode cc = m->data.result;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&tr);
        finish(t, tr, HR_OK, cc);
    }
}

#define EVENTS_MAX 256

static void *transport_main(void *arg)
{
    struct transport *t = arg;
    struct epoll_event evs[EVENTS_MAX];
    pthread_setname_np(pthread_self(), "h-transport"); /* top -H, perf, gdb */
    for (;;) {
        struct transfer *q, *next;
        int running = 0, n, wait_ms = -1; /* idle: asleep until a submission or a stop */
        int64_t now;
        bool stop;
        pthread_mutex_lock(&t->mu);
        q = t->head;
        t->head = t->tail = NULL;
        stop = t->stopping;
        pthread_mutex_unlock(&t->mu);
        for (; q; q = next) {
            next = q->next;
            if (stop) {
                q->next = q->prev = NULL; /* never on the active list */
                cancel(t, q);
            } else {
                start(t, q);
            }
        }
        if (stop)
            break;
        keep_idle(t);
        if (t->timer_at >= 0) {
            now = time_mono_ms();
            wait_ms = t->timer_at <= now ? 0
                      : t->timer_at - now < INT_MAX ? (int)(t->timer_at - now)
                                                     : INT_MAX;
        }
        n = epoll_wait(t->ep, evs, EVENTS_MAX, wait_ms);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd, bits = 0;
            if (fd == t->wake_fd) {
                uint64_t v;
                ssize_t r = read(t->wake_fd, &v, sizeof v); /* EAGAIN: read already */
                (void)r;
                continue;
            }
            if (evs[i].events & EPOLLIN)
                bits |= CURL_CSELECT_IN;
            if (evs[i].events & EPOLLOUT)
                bits |= CURL_CSELECT_OUT;
            /* an error or hang-up: let libcurl read or write and find out what it is
             * (the fd may even be a new socket by now, reused within this batch) */
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                bits |= CURL_CSELECT_IN | CURL_CSELECT_OUT;
            curl_multi_socket_action(t->multi, fd, bits, &running);
        }
        if (t->timer_at >= 0 && time_mono_ms() >= t->timer_at) {
            t->timer_at = -1; /* before the call: libcurl may set the next one in it */
            curl_multi_socket_action(t->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        reap(t);
    }
    while (t->active)
        cancel(t, t->active);
    return NULL;
}

/* loop_wake: make the loop look at its submissions (any thread). */
static void loop_wake(struct transport *t)
{
    uint64_t one = 1;
    ssize_t r = write(t->wake_fd, &one, sizeof one); /* EAGAIN: already awake */
    (void)r;
}

struct transport *transport_new(int max_transfers)
{
    struct transport *t = xcalloc(1, sizeof *t);
    struct rlimit rl;
    pthread_mutex_init(&t->mu, NULL);
    t->max = max_transfers > 0 ? max_transfers : TRANSPORT_MAX_DEFAULT;
    /* idle connections hold descriptors: at most a sixteenth of the open-file limit per
     * cache, a quarter in the multi's and the POOL_N shares together (the HTTP server
     * takes half of it for its connections). A flow burst keeps ~1,000 connections to
     * one sink: nofile / 32 (625 at 20,000) closed and reopened 1,200 per 12,000
     * deliveries */
    t->keep_min = TRANSPORT_IDLE_KEEP;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)t->keep_min > rl.rlim_cur / 16)
        t->keep_min = (long)(rl.rlim_cur / 16);
    t->ep = t->wake_fd = -1;
    t->timer_at = -1;
    t->multi = curl_multi_init();
    if (!t->multi)
        goto fail;
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->ep < 0 || t->wake_fd < 0 ||
        epoll_ctl(t->ep, EPOLL_CTL_ADD, t->wake_fd,
                  &(struct epoll_event){.events = EPOLLIN, .data.fd = t->wake_fd}) < 0)
        goto fail;
    curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, t);
    curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, t);
    for (int i = 0; i < POOL_N; i++) {
        t->pool[i] = curl_share_init();
        if (!t->pool[i] ||
            curl_share_setopt(t->pool[i], CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK)
            goto fail;
    }
    if (pthread_create(&t->th, NULL, transport_main, t) != 0)
        goto fail;
    return t;
fail:
    LOG_E("transport.start", "msg=%s", "libcurl multi loop could not start");
    curl_multi_cleanup(t->multi);
    for (int i = 0; i < POOL_N; i++)
        curl_share_cleanup(t->pool[i]);
    if (t->ep >= 0)
        close(t->ep);
    if (t->wake_fd >= 0)
        close(t->wake_fd);
    pthread_mutex_destroy(&t->mu);
    free(t);
    return NULL;
}

void transport_free(struct transport *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    pthread_mutex_unlock(&t->mu);
    loop_wake(t);
    pthread_join(t->th, NULL);
    /* closes the connections (SMTP sessions say QUIT), telling on_socket: the epoll set
     * is closed after it */
    curl_multi_cleanup(t->multi);
    for (int i = 0; i < POOL_N; i++)
        curl_share_cleanup(t->pool[i]);
    close(t->ep);
    close(t->wake_fd);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int transport_submit(struct transport *t, struct transport_req *req, transport_done_fn done,
                     void *arg, struct herr *err)
{
    struct transfer *tr = NULL;
    bool was_empty;
    int rc = HR_OK;
    if (!scheme_ok(req)) {
        rc = herr_set(err, HR_INVAL, "%s", req->kind == TRANSPORT_SMTP ? "not an smtp(s) URL"
                                                                       : "not an http(s) URL");
        goto out;
    }
    tr = xcalloc(1, sizeof *tr);
    tr->req = *req;
    transport_req_init(req);
    transport_resp_init(&tr->resp);
    tr->done = done;
    tr->arg = arg;
    pthread_mutex_lock(&t->mu);
    was_empty = t->head == NULL;
    if (t->stopping) {
        rc = herr_set(err, HR_UNAVAIL, "transport: shut down");
    } else if (t->count >= t->max) {
        rc = herr_set(err, HR_AGAIN, "transport: %d transfers in flight; try again later",
                      t->count);
    } else {
        t->count++;
        if (t->tail)
            t->tail->next = tr;
        else
            t->head = tr;
        t->tail = tr;
        tr = NULL; /* the loop's now */
    }
    pthread_mutex_unlock(&t->mu);
    if (rc == HR_OK) {
        metrics_gauge_add(M_IN_FLIGHT, "Outbound transfers queued or in flight.", 1);
        /* a list that was not empty has its wake-up pending: the loop takes the whole
         * list when it next looks */
        if (was_empty)
            loop_wake(t);
    }
out:
    transfer_free(tr);
    transport_req_cleanup(req);
    return rc;
}

int transport_in_flight(struct transport *t)
{
    int n;
    pthread_mutex_lock(&t->mu);
    n = t->count;
    pthread_mutex_unlock(&t->mu);
    return n;
}

/* ---- waiting for one transfer ----------------------------------------------------------- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    struct transport_resp *out;
};

static void wake(void *arg, struct transport_resp *resp)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    transport_resp_move(w->out, resp);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int transport_perform(struct transport *t, struct transport_req *req,
                      struct transport_resp *resp)
{
    struct waiter w = {.done = false, .out = resp};
    struct herr err = {0};
    int rc;
    transport_resp_cleanup(resp);
    transport_resp_init(resp);
    if (!t) {
        transport_req_cleanup(req);
        snprintf(resp->http.error, sizeof resp->http.error, "transport: not running");
        return resp->rc = HR_UNAVAIL;
    }
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    rc = transport_submit(t, req, wake, &w, &err);
    if (rc < 0) {
        snprintf(resp->http.error, sizeof resp->http.error, "%s", err.msg);
        resp->rc = rc;
    } else {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return resp->rc;
}

/* ---- the process's transport ------------------------------------------------------------- */

static pthread_mutex_t g_default_mu = PTHREAD_MUTEX_INITIALIZER;
static struct transport *g_default;

struct transport *transport_default(void)
{
    struct transport *t;
    pthread_mutex_lock(&g_default_mu);
    if (!g_default)
        g_default = transport_new(0);
    t = g_default;
    pthread_mutex_unlock(&g_default_mu);
    return t;
}

void transport_default_stop(void)
{
    struct transport *t;
    pthread_mutex_lock(&g_default_mu);
    t = g_default;
    g_default = NULL;
    pthread_mutex_unlock(&g_default_mu);
    transport_free(t);
}
