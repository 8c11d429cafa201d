/* http.c: herald's HTTP server on libmicrohttpd (one daemon, a thread per connection;
 * handlers run on their connection's thread and may block).
 *
 * A connection's life: on_accept (MHD's accept policy) admits it under the total and
 * per-address caps; on_conn (MHD's connection notifier) tracks it from STARTED to
 * CLOSED; the reaper thread shuts down a connection whose headers are not complete
 * header_timeout_s after the accept (or after its previous answer), or whose body is
 * slower than body_timeout_s plus 1 s per HTTP_BODY_MIN_RATE bytes. Trickling bytes
 * does not move these deadlines (MHD's own idle timeout it would).
 *
 * A request's life, all on its connection's thread:
 *   on_uri       MHD read the request line: make the per-request arena and struct conn,
 *                keep the raw path (MHD would percent-decode it; we decode per segment).
 *   begin        headers read: request id, in-flight admission (503), method (405),
 *                routing (404/405/400/OPTIONS preflight), framing (400 on conflicting
 *                Content-Length / Transfer-Encoding), Content-Length cap (413),
 *                Content-Encoding (415), the authenticator (401/403), the global budget
 *                of buffered body bytes (503). A refusal is answered at once when no
 *                body follows (or the client waits for 100 Continue, or the body is
 *                larger than DRAIN_MAX); otherwise the body is read and dropped, never
 *                buffered, and the answer follows, so a client still sending reads it
 *                instead of a reset.
 *   take_upload  body pieces go into a capped buf (or are dropped while draining).
 *   finish       body complete: gzip inflation under the same cap, Content-Type (415),
 *                then the handler; reply() queues it.
 *   on_done      MHD finished (sent or aborted): metrics, the access log line, release.
 * Every answer goes through reply(), which adds X-Request-Id, CORS and the JSON error
 * body when a handler left it empty. */
#include "http.h"

#include "../util/clock.h"
#include "../util/id.h"
#include "../util/json.h"
#include "../util/log.h"
#include "../util/metrics.h"
#include "../util/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define DEFAULT_MAX_BODY ((size_t)6 << 20)
/* a connection thread's stack: handlers parse JSON nested at most 64 deep, inflate with a
 * 16 KiB buffer, and may open a PostgreSQL connection (libpq: DNS, TLS); the sanitizers
 * need several times more */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CONN_STACK ((size_t)4 << 20)
#else
#define CONN_STACK ((size_t)1 << 20)
#endif
#define DEFAULT_MAX_INFLIGHT 1024
#define DEFAULT_SHUTDOWN_MS 10000
#define DEFAULT_PER_IP 256
#define DEFAULT_HEADER_TIMEOUT_S 10
#define DEFAULT_BODY_TIMEOUT_S 20
#define DEFAULT_MAX_BUFFERED ((size_t)256 << 20)
#define MAX_CONNS_CEILING 16384
#define FD_RESERVE 256     /* descriptors kept for the store, providers and logs */
#define RESP_MAX ((size_t)64 << 20)
#define DRAIN_MAX ((size_t)16 << 20) /* body bytes read and dropped after a refusal */
#define ERR_MSG_MAX 1024
#define IDLE_TIMEOUT_S 60u
#define REAP_INTERVAL_MS 250 /* the reaper's first pass after the start */
#define REAP_SLACK_MS 100    /* reaper passes at most this often; deadlines this late */
#define LIMIT_LOG_EVERY_MS 10000 /* at most one log line per kind of limit this often */
#define IP_BUCKETS 4096
#define CORS_MAX 32
#define CORS_HEADERS "Authorization, Content-Type, X-Retry-Count, Idempotency-Key, " \
                     "X-Idempotency-Expiration"

/* Connection phases, for the reaper's deadlines. */
enum phase { PH_HEADERS = 0, PH_BODY = 1, PH_BUSY = 2 };

struct ipkey {
    uint8_t b[16]; /* IPv4 as ::ffff:a.b.c.d; IPv6 as its /64 */
};

struct ipent {
    struct ipkey k;
    int n;          /* open connections */
    size_t held;    /* request body bytes buffered for this address's requests */
    struct ipent *next;
};

/* One TCP connection (MHD's socket context): from on_conn STARTED to CLOSED. */
struct sconn {
    struct sconn *prev, *next; /* srv->conns, under srv->mu */
    struct ipkey k;
    int fd;
    bool killed;               /* under srv->mu: the reaper shut it down */
    atomic_int phase;          /* enum phase */
    atomic_llong since_ms;     /* when the phase began (monotonic ms) */
    atomic_llong body_in;      /* body bytes received in PH_BODY */
};

/* A rate-limited warning: counts every event, logs at most every LIMIT_LOG_EVERY_MS. */
struct limit_log {
    atomic_llong last_ms;
    atomic_llong pending;
};

struct http_server {
    struct http_cfg cfg; /* with defaults applied */
    struct MHD_Daemon *d;
    int port;
    atomic_int inflight; /* admitted requests not yet completed */
    atomic_bool refusing; /* http_server_stop began: on_accept refuses new connections */
    atomic_size_t held;  /* request body bytes buffered, all requests */
    size_t per_ip_buffered; /* an address's share of cfg.max_buffered */

    pthread_mutex_t mu;  /* conns, ips, conns_open, stopping */
    pthread_cond_t cv;
    struct sconn *conns;
    struct ipent *ips[IP_BUCKETS];
    int conns_open;
    bool stopping;
    pthread_t reaper;
    bool reaper_started, sync_init;

    struct limit_log log_total, log_per_ip, log_header, log_body, log_buffered, log_mhd;
    char *cors_buf;              /* cfg.cors_allow copied, split in place */
    struct str cors[CORS_MAX];
    int ncors;
    bool cors_any;
};

/* Per-request state; lives in the request's arena. */
struct conn {
    struct http_server *srv;
    struct MHD_Connection *mc;
    struct sconn *sc;   /* the TCP connection (may be NULL in odd cases) */
    struct arena *arena;
    struct http_req req;
    struct http_resp resp;
    struct buf body;    /* the upload as received, then inflated; freed in on_done */
    size_t cap;         /* body cap for this request */
    size_t bytes_in;    /* upload bytes received (before inflation) */
    size_t drained;     /* upload bytes dropped after a refusal */
    size_t held;        /* bytes counted in srv->held for this request */
    const char *origin; /* Origin header (arena copy) or NULL */
    const char *rawq;   /* the raw query string (arena copy, undecoded) or NULL */
    double t0;          /* monotonic seconds at begin() */
    int status;         /* queued status; 0 until reply() */
    bool started, counted, gzip, draining, cors_ok, chunked;
    char *peer;
};

static _Thread_local struct {
    struct http_server *srv;
    struct ipkey k;
    bool set;
} pending; /* a slot on_accept reserved that on_conn has not taken yet (same thread) */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct str trim(struct str s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

static const char *req_hdr(struct conn *c, const char *name)
{
    return MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, name);
}

/* rid_ok: 1..64 characters of [A-Za-z0-9._-]. */
static bool rid_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!ok || n >= 64)
            return false;
    }
    return n > 0;
}

/* ctype_is_json: application/json, application/<x>+json (merge-patch too), any params. */
static bool ctype_is_json(const char *ct)
{
    const char *semi = strchr(ct, ';');
    struct str t = trim((struct str){ct, semi ? (size_t)(semi - ct) : strlen(ct)});
    struct str app = STR_LIT("application/");

    if (t.len < app.len || strncasecmp(t.p, app.p, app.len) != 0)
        return false;
    if (str_ieq_c(t, "application/json"))
        return true;
    return t.len > app.len + 5 && strncasecmp(t.p + t.len - 5, "+json", 5) == 0;
}

/* methods_text: "GET, HEAD, POST, OPTIONS" for a mask (HEAD follows GET). */
static void methods_text(int mask, char *out, size_t cap)
{
    static const int order[] = {HTTP_GET,   HTTP_HEAD,   HTTP_POST,   HTTP_PUT,
                                HTTP_PATCH, HTTP_DELETE, HTTP_OPTIONS};
    size_t o = 0;
    out[0] = '\0';
    if (mask & HTTP_GET)
        mask |= HTTP_HEAD;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        int k;
        if (!(mask & order[i]))
            continue;
        k = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", http_method_name(order[i]));
        if (k < 0 || (size_t)k >= cap - o)
            break;
        o += (size_t)k;
    }
}

/* inflate_gzip: gunzip in into out (whose cap bounds the output: HR_TOOBIG as soon as
 * the next piece would pass it, so a bomb never costs more than cap + one chunk).
 * Concatenated members are accepted. HR_INVAL for corrupt or truncated input. */
static int inflate_gzip(struct str in, struct buf *out)
{
    int rc = HR_OK, zr;
    z_stream z;
    unsigned char chunk[16384];
    bool init = false;

    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        rc = HR_NOMEM;
        goto out;
    }
    init = true;
    z.next_in = (Bytef *)(uintptr_t)in.p;
    z.avail_in = 0;
    for (;;) {
        size_t produced;
        if (z.avail_in == 0 && in.len) {
            size_t take = in.len > (1u << 30) ? (1u << 30) : in.len;
            z.next_in = (Bytef *)(uintptr_t)in.p;
            z.avail_in = (uInt)take;
            in.p += take;
            in.len -= take;
        }
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        zr = inflate(&z, Z_NO_FLUSH);
        if (zr == Z_MEM_ERROR) {
            rc = HR_NOMEM;
            goto out;
        }
        if (zr != Z_OK && zr != Z_STREAM_END) { /* data error, need dict, no progress */
            rc = HR_INVAL;
            goto out;
        }
        produced = sizeof chunk - z.avail_out;
        if (produced && buf_append(out, chunk, produced) < 0) {
            rc = HR_TOOBIG;
            goto out;
        }
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0 && in.len == 0)
                break;
            if (inflateReset(&z) != Z_OK) {
                rc = HR_INVAL;
                goto out;
            }
        }
    }
out:
    if (init)
        inflateEnd(&z);
    return rc;
}

/* ---- responses (the public helpers) ---- */

const char *http_error_type(int status)
{
    if (status == 401)
        return "authentication_error";
    if (status == 403)
        return "authorization_error";
    if (status == 429)
        return "rate_limit_error";
    if (status >= 400 && status < 500)
        return "invalid_request_error";
    return "api_error";
}

/* http_resp_header: append a header (name and value copied into the request arena).
 * Handler thread. */
void http_resp_header(struct http_resp *resp, const char *name, const char *value)
{
    struct http_header *h = arena_zalloc(resp->arena, sizeof *h), **tail = &resp->headers;
    h->name = arena_strdup(resp->arena, name);
    h->value = arena_strdup(resp->arena, value ? value : "");
    while (*tail)
        tail = &(*tail)->next;
    *tail = h;
}

/* http_resp_json: see http.h. A document past the 64 MiB body cap becomes a 500. */
void http_resp_json(struct http_resp *resp, int status, const cJSON *v)
{
    char *s = json_print(v);
    resp->status = status;
    resp->content_type = "application/json";
    buf_reset(&resp->body);
    if (buf_append_c(&resp->body, s) < 0)
        http_resp_error(resp, 500, "api_error", "response too large");
    free(s);
}

/* http_resp_raw: see http.h. ctype NULL keeps application/json. */
void http_resp_raw(struct http_resp *resp, int status, const char *ctype, struct str body)
{
    resp->status = status;
    resp->content_type = ctype ? arena_strdup(resp->arena, ctype) : "application/json";
    buf_reset(&resp->body);
    if (buf_append_str(&resp->body, body) < 0)
        http_resp_error(resp, 500, "api_error", "response too large");
}

/* http_resp_error: see http.h. The message is capped at ~1 KiB (cut on a UTF-8
 * boundary) and escaped by cJSON. */
void http_resp_error(struct http_resp *resp, int status, const char *type, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX];
    va_list ap;
    int n;
    cJSON *o;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    else if ((size_t)n >= sizeof msg) { /* truncated: drop a partial UTF-8 sequence */
        size_t len = sizeof msg - 1, k = len;
        while (k > 0 && ((unsigned char)msg[k - 1] & 0xC0) == 0x80)
            k--;
        if (k > 0 && ((unsigned char)msg[k - 1] & 0x80)) {
            unsigned char lead = (unsigned char)msg[k - 1];
            size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (len - (k - 1) < want)
                msg[k - 1] = '\0';
        }
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", msg);
    cJSON_AddStringToObject(o, "type", type ? type : http_error_type(status));
    s = json_print(o);
    resp->status = status;
    resp->content_type = "application/json";
    buf_reset(&resp->body);
    if (buf_append_c(&resp->body, s) < 0)
        buf_reset(&resp->body);
    free(s);
    cJSON_Delete(o);
}

/* ---- request accessors ---- */

/* http_req_header: case-insensitive; the value lives until the request completes. */
const char *http_req_header(struct http_req *req, const char *name)
{
    struct conn *c = req ? req->impl : NULL;
    return c ? req_hdr(c, name) : NULL;
}

/* http_req_query: a query argument, percent-decoded by MHD; NULL if absent. */
const char *http_req_query(struct http_req *req, const char *name)
{
    struct conn *c = req ? req->impl : NULL;
    return c ? MHD_lookup_connection_value(c->mc, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

struct query_each {
    bool (*fn)(void *arg, const char *name, const char *value);
    void *arg;
};

static enum MHD_Result query_each_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct query_each *q = cls;
    return q->fn(q->arg, key, value) ? MHD_YES : MHD_NO;
}

int http_req_query_each(struct http_req *req,
                        bool (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    struct conn *c = req ? req->impl : NULL;
    struct query_each q = {fn, arg};
    return c ? MHD_get_connection_values(c->mc, MHD_GET_ARGUMENT_KIND, query_each_cb, &q) : 0;
}

/* http_req_peer: the client address as text (arena-owned), "" when unknown. */
const char *http_req_peer(struct http_req *req)
{
    struct conn *c = req ? req->impl : NULL;
    const union MHD_ConnectionInfo *ci;
    char tmp[INET6_ADDRSTRLEN] = "";

    if (!c)
        return "";
    if (c->peer)
        return c->peer;
    ci = MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, tmp,
                      sizeof tmp);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      tmp, sizeof tmp);
    }
    c->peer = arena_strdup(c->arena, tmp);
    return c->peer;
}

/* ---- connection guard: caps, deadlines, rate-limited warnings ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* limit_note: count n events; returns how many to report when a log line is due now
 * (0: stay quiet). Any thread. */
static long long limit_note(struct limit_log *l, long long n)
{
    int64_t now = now_ms();
    long long last = atomic_load(&l->last_ms);
    atomic_fetch_add(&l->pending, n);
    if (last != 0 && now - last < LIMIT_LOG_EVERY_MS)
        return 0;
    if (!atomic_compare_exchange_strong(&l->last_ms, &last, now))
        return 0;
    return atomic_exchange(&l->pending, 0);
}

static struct ipkey ip_key(const struct sockaddr *sa, socklen_t len)
{
    struct ipkey k;
    memset(&k, 0, sizeof k);
    if (sa && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)(const void *)sa;
        k.b[10] = k.b[11] = 0xff;
        memcpy(k.b + 12, &a4->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6 &&
               len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
            memcpy(k.b, &a6->sin6_addr, 16);
        else
            memcpy(k.b, &a6->sin6_addr, 8); /* one host usually holds a whole /64 */
    }
    return k;
}

static const char *ip_key_text(const struct ipkey *k, char *out, size_t cap)
{
    static const uint8_t v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(k->b, v4, 12) == 0)
        inet_ntop(AF_INET, k->b + 12, out, (socklen_t)cap);
    else
        inet_ntop(AF_INET6, k->b, out, (socklen_t)cap);
    return out;
}

static unsigned ip_hash(const struct ipkey *k)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof k->b; i++)
        h = (h ^ k->b[i]) * 16777619u;
    return h % IP_BUCKETS;
}

/* ip_find: the entry for k, or NULL. Under srv->mu. */
static struct ipent **ip_find(struct http_server *srv, const struct ipkey *k)
{
    struct ipent **pp = &srv->ips[ip_hash(k)];
    while (*pp && memcmp((*pp)->k.b, k->b, sizeof k->b) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* slot_take / slot_give: one open connection from k, counted in total and per address.
 * Under srv->mu. */
static void slot_take(struct http_server *srv, const struct ipkey *k)
{
    struct ipent **pp = ip_find(srv, k);
    if (!*pp) {
        *pp = xcalloc(1, sizeof **pp);
        (*pp)->k = *k;
    }
    (*pp)->n++;
    if (srv->conns_open++ == 0)
        pthread_cond_signal(&srv->cv); /* the reaper sleeps untimed while none is open */
}

static void slot_give(struct http_server *srv, const struct ipkey *k)
{
    struct ipent **pp = ip_find(srv, k), *e = *pp;
    if (e && --e->n <= 0 && e->held == 0) {
        *pp = e->next;
        free(e);
    }
    srv->conns_open--;
}

/* on_accept: MHD's accept policy, on MHD's listening thread. Admits the
 * connection when both caps allow, reserving its slot for on_conn (which runs next on
 * this thread); a refusal closes the socket at once, is counted and logged (rate
 * limited). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct http_server *srv = cls;
    struct ipkey k = ip_key(addr, len);
    struct ipent **pp;
    const char *why = NULL;
    int limit = 0;
    long long n;
    char ip[INET6_ADDRSTRLEN];

    if (atomic_load(&srv->refusing))
        return MHD_NO; /* closed at once; the listen socket goes with MHD_stop_daemon */
    pthread_mutex_lock(&srv->mu);
    if (pending.set && pending.srv == srv) { /* MHD dropped the last one before STARTED */
        slot_give(srv, &pending.k);
        pending.set = false;
    }
    if (srv->conns_open >= srv->cfg.max_conns) {
        why = "total";
        limit = srv->cfg.max_conns;
    } else if (srv->cfg.max_conns_per_ip > 0 && *(pp = ip_find(srv, &k)) &&
               (*pp)->n >= srv->cfg.max_conns_per_ip) {
        why = "per_ip";
        limit = srv->cfg.max_conns_per_ip;
    } else {
        slot_take(srv, &k);
        pending.srv = srv;
        pending.k = k;
        pending.set = true;
    }
    pthread_mutex_unlock(&srv->mu);
    if (!why)
        return MHD_YES;
    metrics_counter_add("herald_http_connections_refused_total",
                        "Connections closed at accept because a connection cap was reached",
                        "reason", why, 1);
    n = limit_note(why[0] == 't' ? &srv->log_total : &srv->log_per_ip, 1);
    if (n > 0)
        LOG_W("http.conn_limit",
              "reason=%s limit=%d peer=%s refused=%lld msg=\"connection cap reached; new "
              "connections are closed at once (next report in %d s at most)\"",
              why, limit, ip_key_text(&k, ip, sizeof ip), n, LIMIT_LOG_EVERY_MS / 1000);
    return MHD_NO;
}

/* on_conn: MHD's connection notifier (MHD's listening thread: STARTED before the
 * connection's thread exists, CLOSED after it ended). STARTED takes the slot on_accept
 * reserved and starts the header deadline; CLOSED gives the slot back. MHD calls
 * CLOSED before it closes the socket, so the reaper (under srv->mu) never shuts down
 * a descriptor that was reused. */
static void on_conn(void *cls, struct MHD_Connection *mc, void **sctx,
                    enum MHD_ConnectionNotificationCode code)
{
    struct http_server *srv = cls;
    struct sconn *s = *sctx;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        s = xcalloc(1, sizeof *s);
        s->fd = ci ? (int)ci->connect_fd : -1;
        atomic_init(&s->phase, PH_HEADERS);
        atomic_init(&s->since_ms, now_ms());
        atomic_init(&s->body_in, 0);
        pthread_mutex_lock(&srv->mu);
        if (pending.set && pending.srv == srv) {
            s->k = pending.k;
            pending.set = false;
        } else { /* not seen by on_accept (not expected): count it all the same */
            ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            s->k = ip_key(ci ? ci->client_addr : NULL, sizeof(struct sockaddr_in6));
            slot_take(srv, &s->k);
        }
        s->next = srv->conns;
        if (s->next)
            s->next->prev = s;
        srv->conns = s;
        pthread_mutex_unlock(&srv->mu);
        *sctx = s;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && s) {
        pthread_mutex_lock(&srv->mu);
        if (s->prev)
            s->prev->next = s->next;
        else
            srv->conns = s->next;
        if (s->next)
            s->next->prev = s->prev;
        slot_give(srv, &s->k);
        pthread_mutex_unlock(&srv->mu);
        free(s);
        *sctx = NULL;
    }
}

/* sconn_phase: move a connection to phase ph (the connection's thread). */
static void sconn_phase(struct sconn *s, enum phase ph)
{
    if (!s)
        return;
    if (ph != PH_BUSY) {
        atomic_store(&s->body_in, 0);
        atomic_store(&s->since_ms, now_ms());
    }
    atomic_store(&s->phase, (int)ph);
}

/* reap: one pass of the reaper under srv->mu: shut down connections past their
 * deadline. MHD then sees the end of the stream and closes them. Each is counted
 * before its shutdown, so a client that sees the close also sees it in /metrics.
 * Returns when the next pass is due (now_ms clock): the earliest deadline left, but no
 * later than the shortest limit from now, since a connection that changes phase after
 * this pass gets a deadline at least that far away. */
static int64_t reap(struct http_server *srv, long long *nh, long long *nb)
{
    int64_t now = now_ms(), hdr_ms = (int64_t)srv->cfg.header_timeout_s * 1000,
            body_ms = (int64_t)srv->cfg.body_timeout_s * 1000;
    /* REAP_SLACK_MS off the cap: a connection's thread reads the clock for `since` a
     * moment before it stores the phase, so a pass between the two misses it */
    int64_t next = now + (hdr_ms < body_ms ? hdr_ms : body_ms) - REAP_SLACK_MS;

    for (struct sconn *s = srv->conns; s; s = s->next) {
        int ph = atomic_load(&s->phase);
        int64_t since = atomic_load(&s->since_ms), limit;
        if (s->killed || s->fd < 0 || ph == PH_BUSY)
            continue;
        limit = ph == PH_HEADERS ? hdr_ms
                                 : body_ms + atomic_load(&s->body_in) * 1000 / HTTP_BODY_MIN_RATE;
        if (now - since <= limit) {
            if (since + limit + 1 < next)
                next = since + limit + 1;
            continue;
        }
        metrics_counter_add("herald_http_connections_timed_out_total",
                            "Connections closed because a read deadline passed", "phase",
                            ph == PH_HEADERS ? "headers" : "body", 1);
        (void)shutdown(s->fd, SHUT_RDWR);
        s->killed = true;
        if (ph == PH_HEADERS)
            ++*nh;
        else
            ++*nb;
    }
    /* a body trickling at the minimum rate keeps its deadline ~1 ms ahead: at most a
     * pass every REAP_SLACK_MS, each deadline met that much late at worst */
    return next > now + REAP_SLACK_MS ? next : now + REAP_SLACK_MS;
}

/* note_timeouts: log the n connections the reaper closed in phase ("headers" or
 * "body"), rate limited; reap counted them. Reaper thread, without srv->mu. */
static void note_timeouts(struct http_server *srv, const char *phase, long long n)
{
    bool hdr = strcmp(phase, "headers") == 0;
    long long k;
    if (n == 0)
        return;
    if ((k = limit_note(hdr ? &srv->log_header : &srv->log_body, n)) > 0)
        LOG_W(hdr ? "http.header_timeout" : "http.body_timeout",
              "closed=%lld limit_s=%d min_rate=%d msg=\"connections whose request %s did not "
              "arrive in time were closed\"",
              k, hdr ? srv->cfg.header_timeout_s : srv->cfg.body_timeout_s, HTTP_BODY_MIN_RATE,
              phase);
}

static void *reaper_main(void *arg)
{
    struct http_server *srv = arg;
    pthread_setname_np(pthread_self(), "h-reaper"); /* top -H, perf, gdb */

    int64_t due = now_ms() + REAP_INTERVAL_MS;
    pthread_mutex_lock(&srv->mu);
    while (!srv->stopping) {
        struct timespec ts = {.tv_sec = due / 1000, .tv_nsec = (due % 1000) * 1000000L};
        long long nh = 0, nb = 0;
        if (srv->conns_open > 0)
            (void)pthread_cond_timedwait(&srv->cv, &srv->mu, &ts);
        else /* nothing to reap: an idle server does not wake up */
            (void)pthread_cond_wait(&srv->cv, &srv->mu);
        if (srv->stopping)
            break;
        /* a pass at the earliest deadline (reap's answer), or when a connection opens
         * (it signals): no polling while keep-alive connections sit idle */
        due = reap(srv, &nh, &nb);
        if (!nh && !nb)
            continue;
        pthread_mutex_unlock(&srv->mu);
        note_timeouts(srv, "headers", nh);
        note_timeouts(srv, "body", nb);
        pthread_mutex_lock(&srv->mu);
    }
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

/* ip_held_change: count n more buffered bytes for c's address (give: n fewer); false
 * (nothing counted) when adding would pass the per-address share. Takes srv->mu. */
static bool ip_held_change(struct http_server *srv, struct conn *c, size_t n, bool give)
{
    struct ipent **pp, *e;
    bool ok = true;
    if (!c->sc)
        return true;
    pthread_mutex_lock(&srv->mu);
    pp = ip_find(srv, &c->sc->k);
    e = *pp;
    if (e && give) {
        e->held -= n < e->held ? n : e->held;
        if (e->n <= 0 && e->held == 0) { /* its connections closed before this answer */
            *pp = e->next;
            free(e);
        }
    } else if (e) {
        if (n > srv->per_ip_buffered || e->held > srv->per_ip_buffered - n)
            ok = false;
        else
            e->held += n;
    }
    pthread_mutex_unlock(&srv->mu);
    return ok;
}

/* hold: count n more body bytes of c against the server's budget and its address's
 * share of it; false (nothing counted, *why says which cap) when that would pass
 * cfg.max_buffered or the share (max_buffered / 16, at least one largest body), so a
 * few addresses cannot take the whole budget from everyone else. Any connection thread. */
static bool hold(struct conn *c, size_t n, const char **why)
{
    struct http_server *srv = c->srv;
    size_t cur = atomic_load(&srv->held);
    *why = "max_buffered_per_ip";
    if (!ip_held_change(srv, c, n, false))
        return false;
    *why = "max_buffered";
    do {
        if (n > srv->cfg.max_buffered || cur > srv->cfg.max_buffered - n) {
            ip_held_change(srv, c, n, true);
            return false;
        }
    } while (!atomic_compare_exchange_weak(&srv->held, &cur, cur + n));
    c->held += n;
    return true;
}

/* ---- CORS ---- */

static void cors_init(struct http_server *srv)
{
    const char *in = srv->cfg.cors_allow ? srv->cfg.cors_allow : "";
    char *p;
    srv->cors_buf = p = xstrdup(in);
    while (*p && srv->ncors < CORS_MAX) {
        char *comma = strchr(p, ',');
        struct str o;
        if (comma)
            *comma = '\0';
        o = trim(str_c(p));
        while (o.len && o.p[o.len - 1] == '/')
            o.len--;
        if (o.len == 1 && o.p[0] == '*')
            srv->cors_any = true;
        else if (o.len)
            srv->cors[srv->ncors++] = o;
        if (!comma)
            break;
        p = comma + 1;
    }
}

/* cors_allowed: may a page at Origin call route r (NULL: no route)? /v1 routes (write
 * keys, which are public in browser apps) take any origin, as Segment's API does;
 * other routes take their own origin (the Host the request went to) and the
 * --cors-allow list. */
static bool cors_allowed(struct conn *c, const struct http_route *r)
{
    struct http_server *srv = c->srv;
    struct str o;
    const char *host, *sep;

    if (!c->origin)
        return false;
    if ((r && r->auth == AUTH_WRITE) || srv->cors_any)
        return true;
    o = str_c(c->origin);
    for (int i = 0; i < srv->ncors; i++)
        if (o.len == srv->cors[i].len && strncasecmp(o.p, srv->cors[i].p, o.len) == 0)
            return true;
    host = req_hdr(c, "Host");
    sep = strstr(c->origin, "://");
    return host && sep && strcasecmp(sep + 3, host) == 0;
}

/* ---- the request state machine ---- */

/* reply: turn c->resp into the MHD response and queue it. Exactly once per request. */
static enum MHD_Result reply(struct conn *c)
{
    struct http_resp *rs = &c->resp;
    struct MHD_Response *mr;
    enum MHD_Result ret = MHD_NO;
    int st = rs->status;
    size_t len;
    char *body, ka[32];

    sconn_phase(c->sc, PH_BUSY);
    if (st < 200 || st > 599) {
        LOG_E("http.bad_status", "status=%d route=%s", st,
              c->req.route && c->req.route->name ? c->req.route->name : "-");
        buf_reset(&rs->body);
        st = 500;
    }
    if (st >= 400 && rs->body.len == 0) {
        const char *reason = MHD_get_reason_phrase_for((unsigned)st);
        if (reason && *reason && strcmp(reason, "Unknown") != 0)
            http_resp_error(rs, st, http_error_type(st), "%s", reason);
        else
            http_resp_error(rs, st, http_error_type(st), "HTTP error %d", st);
    }
    if (st == 204 || st == 304)
        buf_reset(&rs->body);
    body = buf_steal(&rs->body, &len);
    mr = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!mr) {
        free(body);
        goto out;
    }
    if (st != 204 && st != 304) {
        const char *ct = rs->content_type ? rs->content_type : "application/json";
        if (strcmp(ct, "application/json") == 0)
            ct = "application/json; charset=utf-8";
        MHD_add_response_header(mr, "Content-Type", ct);
    }
    MHD_add_response_header(mr, "X-Request-Id", c->req.rid);
    if (c->origin && c->cors_ok) {
        MHD_add_response_header(mr, "Access-Control-Allow-Origin", c->origin);
        MHD_add_response_header(mr, "Vary", "Origin");
    }
    snprintf(ka, sizeof ka, "timeout=%d", c->srv->cfg.header_timeout_s);
    MHD_add_response_header(mr, "Keep-Alive", ka); /* clients drop idle sockets first */
    for (const struct http_header *h = rs->headers; h; h = h->next)
        if (MHD_add_response_header(mr, h->name, h->value) != MHD_YES)
            LOG_W("http.header_rejected", "name=%s", h->name);
    ret = MHD_queue_response(c->mc, (unsigned)st, mr);
    c->status = st;
    MHD_destroy_response(mr);
out:
    return ret;
}

static enum MHD_Result reply_error(struct conn *c, int status, const char *fmt, ...)
    HR_PRINTF(3, 4);
static enum MHD_Result reply_error(struct conn *c, int status, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_resp_error(&c->resp, status, http_error_type(status), "%s", msg);
    return reply(c);
}

/* preflight: OPTIONS on a path some route serves (mask: its methods). An Origin the
 * route would not answer (cors_allowed) gets 403, so the browser stops there. */
static enum MHD_Result preflight(struct conn *c, int mask)
{
    char methods[96];
    const char *want = req_hdr(c, "Access-Control-Request-Method");
    const struct http_route *r = NULL;
    struct str params[HTTP_MAX_PARAMS];
    int np = 0, allowed = 0;

    if (want && http_method_parse(want))
        r = http_route_match(c->srv->cfg.routes, http_method_parse(want), c->req.path, c->arena,
                             params, &np, &allowed);
    if (c->origin && !(c->cors_ok = cors_allowed(c, r)))
        return reply_error(c, 403, "origin %s may not call this route from a browser; the "
                                   "server's --cors-allow list names the origins that may",
                           c->origin);
    methods_text(mask | HTTP_OPTIONS, methods, sizeof methods);
    c->resp.status = 204;
    if (!c->origin)
        http_resp_header(&c->resp, "Access-Control-Allow-Origin", "*");
    http_resp_header(&c->resp, "Access-Control-Allow-Credentials", "true");
    http_resp_header(&c->resp, "Access-Control-Allow-Headers", CORS_HEADERS);
    http_resp_header(&c->resp, "Access-Control-Allow-Methods", methods);
    http_resp_header(&c->resp, "Access-Control-Max-Age", "600");
    return reply(c);
}

static struct conn *conn_new(struct http_server *srv, struct MHD_Connection *mc,
                             const char *uri)
{
    struct arena *a = arena_new(8192);
    struct conn *c = arena_zalloc(a, sizeof *c);
    const char *q = uri ? strchr(uri, '?') : NULL;
    size_t n = uri ? (q ? (size_t)(q - uri) : strlen(uri)) : 0;

    c->srv = srv;
    c->mc = mc;
    c->arena = a;
    c->req.arena = a;
    c->req.impl = c;
    c->req.path = arena_str(a, (struct str){uri ? uri : "", n});
    if (q)
        c->rawq = arena_strdup(a, q + 1);
    {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        c->sc = ci ? ci->socket_context : NULL;
    }
    c->req.body = (struct str){"", 0};
    c->resp.status = 200;
    c->resp.arena = a;
    buf_init(&c->resp.body, RESP_MAX);
    buf_init(&c->body, 0);
    return c;
}

/* on_uri: MHD's URI log callback, the first sight of a request (raw URI, undecoded).
 * Its result becomes *con_cls; on_done frees it even if the request dies early. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    return conn_new(cls, mc, uri);
}

/* Framing headers seen by framing_scan. */
struct framing {
    int ncl, nte;
    const char *cl, *te;
    bool cl_differ;
};

static enum MHD_Result framing_scan(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct framing *f = cls;
    (void)kind;
    if (!key || !value)
        return MHD_YES;
    if (strcasecmp(key, "Content-Length") == 0) {
        if (f->ncl++ == 0)
            f->cl = value;
        else if (strcmp(f->cl, value) != 0)
            f->cl_differ = true;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->nte++;
        f->te = value;
    }
    return MHD_YES;
}

/* framing_error: why the body's framing is ambiguous (NULL: it is not). MHD frames
 * with the first Content-Length it sees, so a second, different one, or one beside a
 * Transfer-Encoding, could hide a second request in the body (smuggling). */
static const char *framing_error(struct conn *c)
{
    struct framing f;
    memset(&f, 0, sizeof f);
    MHD_get_connection_values(c->mc, MHD_HEADER_KIND, framing_scan, &f);
    if (f.cl_differ)
        return "the request has two different Content-Length headers";
    if (f.ncl && f.nte)
        return "the request has both Content-Length and Transfer-Encoding";
    if (f.nte > 1 || (f.nte && !str_ieq_c(trim(str_c(f.te)), "chunked")))
        return "Transfer-Encoding must be chunked, once";
    c->chunked = f.nte == 1;
    return NULL;
}

/* query_scan: every decoded query argument must be UTF-8. */
static enum MHD_Result query_scan(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    bool *bad = cls;
    (void)kind;
    if ((key && !utf8_valid(key, strlen(key))) || (value && !utf8_valid(value, strlen(value))))
        *bad = true;
    return *bad ? MHD_NO : MHD_YES;
}

/* query_ok: no %00 in the raw query (MHD's decoding would cut the value there) and
 * nothing that decodes to bytes other than UTF-8. */
static bool query_ok(struct conn *c)
{
    bool bad = false;
    if (!c->rawq)
        return true;
    for (const char *p = c->rawq; (p = strchr(p, '%')) != NULL; p++)
        if (p[1] == '0' && p[2] == '0')
            return false;
    MHD_get_connection_values(c->mc, MHD_GET_ARGUMENT_KIND, query_scan, &bad);
    return !bad;
}

/* refuse_later: answer status with a JSON error once the body has been read and
 * dropped (take_upload counts it against DRAIN_MAX). Nothing more is buffered. */
static void refuse_later(struct conn *c, int status, const char *msg)
{
    http_resp_error(&c->resp, status, http_error_type(status), "%s", msg);
    c->draining = true;
    buf_cleanup(&c->body);
    if (c->counted) { /* no handler will run: a slow drain holds no in-flight slot */
        atomic_fetch_sub(&c->srv->inflight, 1);
        c->counted = false;
    }
}

/* refuse: answer a request refused from its headers. At once when no body follows,
 * when the client waits for 100 Continue (it then never sends the body), or when the
 * announced body is over DRAIN_MAX (MHD closes the connection after the answer);
 * otherwise after the body has been read and dropped, so a client still sending reads
 * the answer instead of a reset. clen: the announced length, -1 when unknown. */
static enum MHD_Result refuse(struct conn *c, int64_t clen, int status, const char *fmt, ...)
    HR_PRINTF(4, 5);
static enum MHD_Result refuse(struct conn *c, int64_t clen, int status, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX];
    const char *expect = req_hdr(c, "Expect");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if ((clen <= 0 && !c->chunked) || (clen > 0 && (uint64_t)clen > DRAIN_MAX) ||
        (expect && str_ieq_c(trim(str_c(expect)), "100-continue"))) {
        http_resp_error(&c->resp, status, http_error_type(status), "%s", msg);
        return reply(c);
    }
    refuse_later(c, status, msg);
    return MHD_YES;
}

static void note_buffer_full(struct conn *c, const char *why)
{
    long long n = limit_note(&c->srv->log_buffered, 1);
    bool per_ip = strcmp(why, "max_buffered") != 0;
    char ip[INET6_ADDRSTRLEN];
    metrics_counter_add("herald_http_buffer_full_total",
                        "Requests refused (503) because buffered request bodies reached "
                        "--max-buffered, or one address's share of it",
                        "reason", why, 1);
    if (n > 0)
        LOG_W("http.buffer_full",
              "reason=%s limit=%zu peer=%s refused=%lld msg=\"buffered request bodies reached "
              "the cap; requests answered 503 with Retry-After\"",
              why, per_ip ? c->srv->per_ip_buffered : c->srv->cfg.max_buffered,
              c->sc ? ip_key_text(&c->sc->k, ip, sizeof ip) : "-", n);
}

static enum MHD_Result begin(struct conn *c, const char *method)
{
    struct http_server *srv = c->srv;
    enum MHD_Result ret = MHD_YES;
    const struct http_route *r;
    const char *h, *ferr, *why;
    int allowed = 0, rc;
    int64_t clen = -1;
    char allow[96], msg[256];

    c->started = true;
    c->t0 = now_s();
    sconn_phase(c->sc, PH_BODY);
    h = req_hdr(c, "X-Request-Id");
    if (h && rid_ok(h))
        str_copy(c->req.rid, sizeof c->req.rid, str_c(h));
    else
        id_new(time_now_ms(), c->req.rid);
    log_set_rid(c->req.rid);
    h = req_hdr(c, "Origin");
    if (h && *h)
        c->origin = arena_strdup(c->arena, h);
    c->req.method = http_method_parse(method);

    ferr = framing_error(c);
    if (ferr) { /* answered at once; MHD closes: the rest of the stream is not a request */
        http_resp_header(&c->resp, "Connection", "close");
        ret = reply_error(c, 400, "%s", ferr);
        goto out;
    }
    h = req_hdr(c, "Content-Length");
    if (h && str_to_i64(str_c(h), &clen) != HR_OK)
        clen = -1;

    if (atomic_fetch_add(&srv->inflight, 1) + 1 > srv->cfg.max_inflight) {
        atomic_fetch_sub(&srv->inflight, 1);
        http_resp_header(&c->resp, "Retry-After", "1");
        ret = refuse(c, clen, 503, "the server is busy; retry shortly");
        goto out;
    }
    c->counted = true;

    r = http_route_match(srv->cfg.routes, c->req.method, c->req.path, c->arena, c->req.params,
                         &c->req.nparams, &allowed);
    c->cors_ok = cors_allowed(c, r);
    if (!c->req.method) { /* never matches; allowed tells which methods would */
        if (allowed > 0) {
            methods_text(allowed | HTTP_OPTIONS, allow, sizeof allow);
            http_resp_header(&c->resp, "Allow", allow);
        }
        ret = refuse(c, clen, 405, "unsupported HTTP method");
        goto out;
    }
    if (!r) {
        if (allowed < 0) {
            ret = refuse(c, clen, 400,
                         "the request path has an invalid %%-escape, an escaped NUL or bytes "
                         "that are not UTF-8");
        } else if (allowed == 0) {
            ret = refuse(c, clen, 404, "no such resource");
        } else if (c->req.method == HTTP_OPTIONS) {
            ret = preflight(c, allowed);
        } else {
            methods_text(allowed | HTTP_OPTIONS, allow, sizeof allow);
            http_resp_header(&c->resp, "Allow", allow);
            ret = refuse(c, clen, 405, "method %s is not allowed here",
                         http_method_name(c->req.method));
        }
        goto out;
    }
    c->req.route = r;
    c->cap = r->max_body ? r->max_body : srv->cfg.max_body;
    if (!query_ok(c)) {
        ret = refuse(c, clen, 400,
                     "the query string has an escaped NUL or bytes that are not UTF-8");
        goto out;
    }
    if (clen > 0 && (uint64_t)clen > c->cap) {
        ret = refuse(c, clen, 413, "request body exceeds %zu bytes", c->cap);
        goto out;
    }
    h = req_hdr(c, "Content-Encoding");
    if (h) {
        struct str ce = trim(str_c(h));
        if (str_ieq_c(ce, "gzip") || str_ieq_c(ce, "x-gzip")) {
            if (!(r->flags & ROUTE_GZIP)) {
                ret = refuse(c, clen, 415, "gzip request bodies are not accepted here");
                goto out;
            }
            c->gzip = true;
        } else if (ce.len && !str_ieq_c(ce, "identity")) {
            ret = refuse(c, clen, 415, "unsupported Content-Encoding");
            goto out;
        }
    }

    /* the credential, from the headers, before a byte of the body is read */
    if (r->auth != AUTH_PUBLIC) {
        memset(msg, 0, sizeof msg);
        rc = srv->cfg.auth ? srv->cfg.auth(srv->cfg.auth_ctx, &c->req, msg) : HR_UNAVAIL;
        msg[sizeof msg - 1] = '\0';
        if (rc == HR_PERM) {
            http_resp_header(&c->resp, "WWW-Authenticate", "Bearer");
            ret = refuse(c, clen, 401, "%s", msg[0] ? msg : "missing or invalid credentials");
            goto out;
        }
        if (rc == HR_CONFLICT) {
            ret = refuse(c, clen, 403, "%s",
                         msg[0] ? msg : "this credential may not call this route");
            goto out;
        }
        if (rc < 0) {
            LOG_E("http.auth_failed", "route=%s rc=%d", r->name ? r->name : "-", rc);
            ret = refuse(c, clen, 500, "authentication is unavailable");
            goto out;
        }
    }
    if (clen > 0 && !hold(c, (size_t)clen, &why)) {
        note_buffer_full(c, why);
        http_resp_header(&c->resp, "Retry-After", "1");
        ret = refuse(c, clen, 503, "the server holds too many request bodies; retry shortly");
        goto out;
    }
    buf_init(&c->body, c->cap);
out:
    return ret;
}

static enum MHD_Result take_upload(struct conn *c, const char *data, size_t *size)
{
    enum MHD_Result ret = MHD_YES;
    size_t n = *size;
    const char *why;

    *size = 0; /* always consumed: buffered, or dropped */
    c->bytes_in += n;
    if (c->sc)
        atomic_fetch_add(&c->sc->body_in, (long long)n);
    if (!c->draining && c->chunked && !hold(c, n, &why)) {
        note_buffer_full(c, why);
        http_resp_header(&c->resp, "Retry-After", "1");
        refuse_later(c, 503, "the server holds too many request bodies; retry shortly");
    }
    if (!c->draining && buf_append(&c->body, data, n) < 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body exceeds %zu bytes", c->cap);
        refuse_later(c, 413, msg);
    }
    if (c->draining) {
        c->drained += n;
        if (c->drained > DRAIN_MAX)
            ret = MHD_NO; /* hang up rather than read a flood */
    }
    return ret;
}

static enum MHD_Result finish(struct conn *c)
{
    const struct http_route *r = c->req.route;
    enum MHD_Result ret;
    int m = c->req.method, rc;

    if (c->draining) { /* refused from the headers; the body was dropped */
        ret = reply(c);
        goto out;
    }
    if (c->gzip && c->body.len) {
        struct buf inflated;
        buf_init(&inflated, c->cap);
        rc = inflate_gzip(buf_str(&c->body), &inflated);
        buf_cleanup(&c->body);
        c->body = inflated;
        if (rc < 0) {
            if (rc == HR_TOOBIG)
                ret = reply_error(c, 413, "decompressed request body exceeds %zu bytes", c->cap);
            else if (rc == HR_NOMEM)
                ret = reply_error(c, 500, "cannot decompress the request body");
            else
                ret = reply_error(c, 400, "request body is not valid gzip");
            goto out;
        }
    }
    if (c->body.len)
        c->req.body = buf_str(&c->body);

    if ((m == HTTP_POST || m == HTTP_PUT || m == HTTP_PATCH) && c->req.body.len &&
        !(r->flags & ROUTE_ANY_CTYPE)) {
        const char *ct = req_hdr(c, "Content-Type");
        if (ct && !ctype_is_json(ct)) {
            ret = reply_error(c, 415, "Content-Type must be application/json");
            goto out;
        }
    }
    if (!r->fn) {
        ret = reply_error(c, 500, "route has no handler");
        goto out;
    }
    sconn_phase(c->sc, PH_BUSY);
    if (c->srv->cfg.wrap)
        c->srv->cfg.wrap(c->srv->cfg.wrap_ctx, &c->req, &c->resp, r->fn, c->srv->cfg.handler_ctx);
    else
        r->fn(c->srv->cfg.handler_ctx, &c->req, &c->resp);
    ret = reply(c);
out:
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct conn *c = *con_cls;
    enum MHD_Result ret;

    if (!c) /* on_uri always runs first; this is only a guard */
        *con_cls = c = conn_new(cls, mc, url);
    c->mc = mc;
    if (!c->started)
        ret = begin(c, method);
    else {
        log_set_rid(c->req.rid);
        if (*upload_data_size)
            ret = take_upload(c, upload_data, upload_data_size);
        else
            ret = finish(c);
    }
    log_set_rid(NULL);
    return ret;
}

/* log_path: the path for the access log, quoted when it holds odd bytes; never the
 * query string (on_uri cut it off). */
static const char *log_path(struct str p, char *out, size_t cap)
{
    char tmp[256];
    bool plain = true;
    size_t n = str_copy(tmp, sizeof tmp, p);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)tmp[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            plain = false;
    }
    if (plain) {
        str_copy(out, cap, (struct str){tmp, n});
        return out;
    }
    return log_q(out, cap, tmp);
}

/* on_done: MHD's request-completed callback; the only place a conn is freed. */
static void on_done(void *cls, struct MHD_Connection *mc, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    struct conn *c = *con_cls;
    char path[300];

    *con_cls = NULL;
    if (!c)
        return;
    if (c->started) {
        double dur = now_s() - c->t0;
        const char *rname = c->req.route ? (c->req.route->name ? c->req.route->name : "unnamed")
                                         : "unmatched";
        log_set_rid(c->req.rid);
        log_path(c->req.path, path, sizeof path);
        if (c->status) {
            metrics_http_observe(rname, c->status, dur);
            LOG_I("http.request",
                  "method=%s path=%s route=%s status=%d dur_ms=%.2f bytes_in=%zu",
                  c->req.method ? http_method_name(c->req.method) : "OTHER", path, rname,
                  c->status, dur * 1000.0, c->bytes_in);
        } else {
            LOG_I("http.aborted", "method=%s path=%s route=%s code=%d dur_ms=%.2f bytes_in=%zu",
                  c->req.method ? http_method_name(c->req.method) : "OTHER", path, rname,
                  (int)toe, dur * 1000.0, c->bytes_in);
        }
        log_set_rid(NULL);
    }
    buf_cleanup(&c->body);
    buf_cleanup(&c->resp.body);
    if (c->held) {
        atomic_fetch_sub(&srv->held, c->held);
        ip_held_change(srv, c, c->held, true);
    }
    sconn_phase(c->sc, PH_HEADERS); /* the next request's headers, if the socket stays */
    if (c->counted)
        atomic_fetch_sub(&srv->inflight, 1);
    arena_free(c->arena); /* c lives in it */
}

/* mhd_log: libmicrohttpd's own warnings (a connection thread it could not create, ...),
 * at most one line per LIMIT_LOG_EVERY_MS with the count of those left out. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *srv = cls;
    char msg[512], q[600];
    size_t n;
    long long due = srv ? limit_note(&srv->log_mhd, 1) : 1;
    if (due == 0)
        return;
    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    LOG_W("http.mhd", "msg=%s count=%lld", log_q(q, sizeof q, msg), due);
}

/* ---- start and stop ---- */

static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl,
                        struct herr *err)
{
    int rc = HR_OK;
    char host[64];
    const char *ps;
    size_t hn;
    int64_t port;

    memset(ss, 0, sizeof *ss);
    if (!s || !*s) {
        rc = herr_set(err, HR_INVAL, "listen address is empty");
        goto out;
    }
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof host) {
            rc = herr_set(err, HR_INVAL, "bad listen address \"%s\" (want [v6]:port)", s);
            goto out;
        }
        hn = (size_t)(rb - s - 1);
        memcpy(host, s + 1, hn);
        host[hn] = '\0';
        ps = rb + 2;
        a6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
            rc = herr_set(err, HR_INVAL, "bad IPv6 address in \"%s\"", s);
            goto out;
        }
        *sl = sizeof *a6;
    } else {
        const char *colon = strrchr(s, ':');
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        if (!colon || (size_t)(colon - s) >= sizeof host) {
            rc = herr_set(err, HR_INVAL, "bad listen address \"%s\" (want host:port)", s);
            goto out;
        }
        hn = (size_t)(colon - s);
        memcpy(host, s, hn);
        host[hn] = '\0';
        ps = colon + 1;
        a4->sin_family = AF_INET;
        if (hn == 0)
            a4->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (strcmp(host, "localhost") == 0)
            a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
            rc = herr_set(err, HR_INVAL, "bad IPv4 address in \"%s\"", s);
            goto out;
        }
        *sl = sizeof *a4;
    }
    if (ps[0] < '0' || ps[0] > '9' || str_to_i64(str_c(ps), &port) < 0 || port > 65535) {
        rc = herr_set(err, HR_INVAL, "bad port in listen address \"%s\"", s);
        goto out;
    }
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
out:
    return rc;
}

/* conn_limits: settle cfg->max_conns against the open-file limit (a descriptor per
 * connection, FD_RESERVE kept for everything else) and return the limit for MHD,
 * set above ours, so ours (counted, logged) is
 * the one that bites, and below the descriptor limit, so accept() never fails. */
static unsigned int conn_limits(struct http_cfg *cfg)
{
    struct rlimit rl;
    long long nofile = 1024, room;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        nofile = (long long)rl.rlim_cur;
    else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        nofile = 1 << 20;
    room = nofile - FD_RESERVE > 64 ? nofile - FD_RESERVE : 64;
    if (cfg->max_conns <= 0)
        cfg->max_conns = (int)(nofile / 2 < MAX_CONNS_CEILING ? nofile / 2 : MAX_CONNS_CEILING);
    if (cfg->max_conns > room) {
        LOG_W("http.max_conns_lowered",
              "asked=%d now=%lld nofile=%lld msg=\"the open-file limit leaves room for no "
              "more connections; raise it (ulimit -n) to allow more\"",
              cfg->max_conns, room, nofile);
        cfg->max_conns = (int)room;
    }
    /* a thread per connection: stay under the threads this user may start */
    if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (long long)cfg->max_conns > (long long)rl.rlim_cur - FD_RESERVE) {
        long long cap = (long long)rl.rlim_cur - FD_RESERVE;
        LOG_W("http.max_conns_lowered",
              "asked=%d now=%lld nproc=%lld msg=\"each connection has a thread; the process "
              "limit (ulimit -u) leaves room for no more\"",
              cfg->max_conns, cap, (long long)rl.rlim_cur);
        cfg->max_conns = (int)(cap > 16 ? cap : 16);
    }
    if (cfg->max_conns < 16)
        cfg->max_conns = 16;
    return (unsigned int)(room > (long long)cfg->max_conns + 64 ? room
                                                                : (long long)cfg->max_conns + 64);
}

/* server_free: the parts of a server that outlive MHD (the reaper, the tables).
 * Call after MHD_stop_daemon (or before MHD started). NULL is a no-op. */
static void server_free(struct http_server *srv)
{
    if (!srv)
        return;
    if (srv->reaper_started) {
        pthread_mutex_lock(&srv->mu);
        srv->stopping = true;
        pthread_cond_signal(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
        pthread_join(srv->reaper, NULL);
    }
    if (srv->sync_init) {
        pthread_cond_destroy(&srv->cv);
        pthread_mutex_destroy(&srv->mu);
    }
    for (int i = 0; i < IP_BUCKETS; i++) {
        while (srv->ips[i]) {
            struct ipent *e = srv->ips[i];
            srv->ips[i] = e->next;
            free(e);
        }
    }
    free(srv->cors_buf);
    free(srv);
}

/* http_server_start: see http.h. We bind the socket ourselves (for a precise errno) and
 * hand it to MHD. Call from one thread; cfg->routes must outlive the server. */
int http_server_start(const struct http_cfg *cfg, struct http_server **out, struct herr *err)
{
    int rc = HR_OK, fd = -1, one = 1;
    unsigned int mhd_limit;
    struct http_server *srv = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    const union MHD_DaemonInfo *info;
    char ebuf[128];

    *out = NULL;
    if (!cfg || !cfg->routes) {
        rc = herr_set(err, HR_INVAL, "no route table");
        goto out;
    }
    rc = parse_listen(cfg->listen, &ss, &sl, err);
    if (rc < 0)
        goto out;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = herr_set(err, HR_IO, "socket: %s", strerror_r(errno, ebuf, sizeof ebuf));
        goto out;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
        rc = herr_set(err, HR_IO, "cannot listen on %s: %s", cfg->listen,
                      strerror_r(errno, ebuf, sizeof ebuf));
        goto out;
    }

    srv = xcalloc(1, sizeof *srv);
    srv->cfg = *cfg;
    if (srv->cfg.max_body == 0)
        srv->cfg.max_body = DEFAULT_MAX_BODY;
    if (srv->cfg.max_inflight <= 0)
        srv->cfg.max_inflight = DEFAULT_MAX_INFLIGHT;
    if (srv->cfg.shutdown_ms <= 0)
        srv->cfg.shutdown_ms = DEFAULT_SHUTDOWN_MS;
    if (srv->cfg.max_conns_per_ip == 0)
        srv->cfg.max_conns_per_ip = DEFAULT_PER_IP;
    if (srv->cfg.header_timeout_s <= 0)
        srv->cfg.header_timeout_s = DEFAULT_HEADER_TIMEOUT_S;
    if (srv->cfg.body_timeout_s <= 0)
        srv->cfg.body_timeout_s = DEFAULT_BODY_TIMEOUT_S;
    if (srv->cfg.max_buffered == 0)
        srv->cfg.max_buffered = DEFAULT_MAX_BUFFERED;
    srv->per_ip_buffered = srv->cfg.max_buffered / 16;
    if (srv->per_ip_buffered < srv->cfg.max_body) /* one largest body always fits */
        srv->per_ip_buffered = srv->cfg.max_body;
    if (srv->per_ip_buffered > srv->cfg.max_buffered)
        srv->per_ip_buffered = srv->cfg.max_buffered;
    mhd_limit = conn_limits(&srv->cfg);
    atomic_init(&srv->inflight, 0);
    atomic_init(&srv->refusing, false);
    atomic_init(&srv->held, 0);
    pthread_mutex_init(&srv->mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&srv->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    srv->sync_init = true;
    cors_init(srv);
    if (pthread_create(&srv->reaper, NULL, reaper_main, srv) != 0) {
        rc = herr_set(err, HR_IO, "cannot start the connection reaper thread");
        goto out;
    }
    srv->reaper_started = true;

    srv->d = MHD_start_daemon(
        /* a thread per connection, not a pool: a pool thread accepts up to 128 waiting
         * connections at once and keeps them, so a burst of clients could land on a few
         * threads, whose handlers (blocking on the store) then served them one after
         * another: /v1/track from 64 connections ran at 3,000-7,500 or at ~20,000
         * requests/s depending on that draw (session 21) */
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
            MHD_USE_ITC | MHD_USE_ERROR_LOG,
        0,
        on_accept, srv, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)srv,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)CONN_STACK,
        MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
        MHD_OPTION_NOTIFY_CONNECTION, on_conn, (void *)srv,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)IDLE_TIMEOUT_S,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, (void *)srv,
        MHD_OPTION_END);
    if (!srv->d) {
        rc = herr_set(err, HR_IO, "cannot start the HTTP server on %s", cfg->listen);
        goto out;
    }
    fd = -1; /* MHD's now: MHD_stop_daemon closes it */
    info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    LOG_I("http.start",
          "listen=%s port=%d max_conns=%d max_conns_per_ip=%d header_timeout_s=%d "
          "body_timeout_s=%d max_buffered=%zu cors_allow=\"%s\"",
          cfg->listen, srv->port, srv->cfg.max_conns,
          srv->cfg.max_conns_per_ip, srv->cfg.header_timeout_s, srv->cfg.body_timeout_s,
          srv->cfg.max_buffered, srv->cors_any ? "*" : (cfg->cors_allow ? cfg->cors_allow : ""));
    *out = srv;
    srv = NULL;
out:
    if (fd >= 0)
        close(fd);
    server_free(srv);
    return rc;
}

int http_server_port(const struct http_server *srv)
{
    return srv ? srv->port : 0;
}

/* http_server_stop: see http.h. Handlers still running when the grace ends are not
 * interrupted: MHD_stop_daemon joins the connection threads, so it waits for them. Call from
 * the thread that owns srv, never from a handler.
 *
 * New connections are refused by on_accept (accepted and closed at once) rather than by
 * MHD_quiesce_daemon, which raced the workers of the thread pool this server had before
 * a thread per connection (libmicrohttpd 0.9.75: "Failed to remove listen FD from epoll
 * set" under TSan); the refusal works the same in every mode. MHD_stop_daemon closes the
 * listen socket. */
void http_server_stop(struct http_server *srv)
{
    double deadline;
    int left;

    if (!srv)
        return;
    atomic_store(&srv->refusing, true);
    deadline = now_s() + (double)srv->cfg.shutdown_ms / 1000.0;
    while ((left = atomic_load(&srv->inflight)) > 0 && now_s() < deadline) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (left > 0)
        LOG_W("http.stop_timeout", "inflight=%d grace_ms=%lld", left,
              (long long)srv->cfg.shutdown_ms);
    MHD_stop_daemon(srv->d);
    srv->d = NULL;
    LOG_I("http.stop", "port=%d", srv->port);
    server_free(srv);
}
