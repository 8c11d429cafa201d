/* sink.c: a small, fast HTTP/1.1 sink for the delivery benchmarks. One thread, epoll,
 * keep-alive. Every request other than GET /stats and POST /reset is answered
 * 200 {"id":"<n>"} and counted with its arrival time (CLOCK_REALTIME, microseconds).
 * If the body holds "ts:<digits>" (a send time in microseconds since the epoch, put
 * there by the load generator), the latency arrival - ts is recorded as well.
 * A body holding "tx:<digits>" instead is a transactional probe sent while something else
 * loads herald (bench/txload.mjs during bench/fanout.sh's fan-outs): it is counted and
 * timed apart (the tx_* figures), so count, first/last and the percentiles stay those of
 * the load itself.
 *
 * --delay-ms N: answer each request N ms after it arrived, like a provider's API that
 * takes N ms. Requests wait in a queue, not in a blocked thread: any number of
 * connections may have a request waiting at once (the delay is the same for all, so the
 * queue is in order of due time and answers on one connection stay in order). A request
 * is counted, and its latency taken, when it is answered (arrival + N ms), i.e. when the
 * caller can see the delivery done.
 *
 *   GET  /stats  -> {"count":N,"with_ts":M,"first_us":..,"last_us":..,"min_send_us":..,
 *                    "p50_us":..,"p90_us":..,"p99_us":..,"max_us":..,
 *                    "tx_count":..,"tx_last_us":..,"tx_p50_us":..,"tx_p90_us":..,
 *                    "tx_p99_us":..,"tx_max_us":..}
 *   GET  /count  -> {"count":N,"tx_count":M}: cheap (no sort), for polling
 *   POST /reset  -> zero everything
 *
 * Build: cc -O2 -o sink bench/sink.c
 * Run:   ./sink [--delay-ms N] PORT   (listens on 127.0.0.1:PORT; SIGTERM/SIGINT stop it)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LAT (8u << 20) /* latencies kept (8M, 64 MiB) */
#define MAX_TX_LAT (1u << 20) /* probe ("tx:") latencies kept (1M, 8 MiB) */
#define BUF_MAX (1u << 20) /* largest request we buffer */

struct conn {
    int fd;
    char *buf;
    size_t len, cap;
    char *out;
    size_t out_len, out_off, out_cap;
    size_t waiting; /* answers still in the delay queue */
    int closed;     /* the socket is gone; free once nothing waits */
};

/* one request waiting for its delayed answer */
struct pending {
    struct conn *c;
    uint64_t due_us; /* CLOCK_MONOTONIC */
    uint64_t send_us; /* the body's ts: (or tx:), 0 when none */
    int tx;           /* the body held tx: (a probe) */
};

static volatile sig_atomic_t stop;
static uint64_t count, with_ts, first_us, last_us, min_send_us;
static int64_t *lat;
static size_t n_lat;
static uint64_t tx_count, tx_last_us; /* the probe's requests ("tx:") */
static int64_t *tx_lat;
static size_t n_tx_lat;
static uint64_t delay_us;
static struct pending *pq; /* ring buffer of pq_cap entries, in order of due time */
static size_t pq_head, pq_len, pq_cap;

static void on_signal(int s)
{
    (void)s;
    stop = 1;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void out_append(struct conn *c, const char *s, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        c->out = realloc(c->out, cap);
        if (!c->out)
            abort();
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

static void respond(struct conn *c, const char *body)
{
    char head[256];
    size_t bl = strlen(body);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     bl);
    out_append(c, head, (size_t)n);
    out_append(c, body, bl);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* percentiles: p50, p90, p99 and max of the n latencies in a (zeros when n is 0). */
static void percentiles(const int64_t *a, size_t n, int64_t out[4])
{
    memset(out, 0, 4 * sizeof *out);
    if (!n)
        return;
    int64_t *s = malloc(n * sizeof *s);
    if (!s)
        abort();
    memcpy(s, a, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_i64);
    out[0] = s[(n - 1) * 50 / 100];
    out[1] = s[(n - 1) * 90 / 100];
    out[2] = s[(n - 1) * 99 / 100];
    out[3] = s[n - 1];
    free(s);
}

static void stats(struct conn *c)
{
    char body[1024];
    int64_t p[4], tp[4];
    percentiles(lat, n_lat, p);
    percentiles(tx_lat, n_tx_lat, tp);
    snprintf(body, sizeof body,
             "{\"count\":%llu,\"with_ts\":%llu,\"first_us\":%llu,\"last_us\":%llu,"
             "\"min_send_us\":%llu,\"p50_us\":%lld,\"p90_us\":%lld,\"p99_us\":%lld,"
             "\"max_us\":%lld,\"tx_count\":%llu,\"tx_last_us\":%llu,\"tx_p50_us\":%lld,"
             "\"tx_p90_us\":%lld,\"tx_p99_us\":%lld,\"tx_max_us\":%lld}\n",
             (unsigned long long)count, (unsigned long long)with_ts,
             (unsigned long long)first_us, (unsigned long long)last_us,
             (unsigned long long)min_send_us, (long long)p[0], (long long)p[1], (long long)p[2],
             (long long)p[3], (unsigned long long)tx_count, (unsigned long long)tx_last_us,
             (long long)tp[0], (long long)tp[1], (long long)tp[2], (long long)tp[3]);
    respond(c, body);
}

/* header_value: the value of header `name` within head[0..n), or NULL. */
static const char *header_value(const char *head, size_t n, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', n), *end = head + n;
    while (p && p + 1 < end) {
        const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        if ((size_t)(eol - line) > nl + 1 && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *vlen = (size_t)(eol - v);
            if (*vlen && v[*vlen - 1] == '\r')
                (*vlen)--;
            return v;
        }
        p = eol;
    }
    return NULL;
}

/* answer: count one request as delivered now (send_us: its ts: or tx:, 0 when none; tx:
 * it is a probe's, counted apart) and queue its 200 on c. */
static void answer(struct conn *c, uint64_t send_us, int tx)
{
    uint64_t t = now_us();
    char idb[48];
    if (tx) {
        tx_count++;
        tx_last_us = t;
        if (send_us && n_tx_lat < MAX_TX_LAT)
            tx_lat[n_tx_lat++] = (int64_t)(t - send_us);
        snprintf(idb, sizeof idb, "{\"id\":\"tx%llu\"}", (unsigned long long)tx_count);
        respond(c, idb);
        return;
    }
    count++;
    if (!first_us)
        first_us = t;
    last_us = t;
    if (send_us) {
        with_ts++;
        if (!min_send_us || send_us < min_send_us)
            min_send_us = send_us;
        if (n_lat < MAX_LAT)
            lat[n_lat++] = (int64_t)(t - send_us);
    }
    snprintf(idb, sizeof idb, "{\"id\":\"%llu\"}", (unsigned long long)count);
    respond(c, idb);
}

/* pq_push: queue c's request for an answer delay_us from now (the ring grows as needed). */
static void pq_push(struct conn *c, uint64_t send_us, int tx)
{
    if (pq_len == pq_cap) {
        size_t cap = pq_cap ? pq_cap * 2 : 1024;
        struct pending *n = malloc(cap * sizeof *n);
        if (!n)
            abort();
        for (size_t i = 0; i < pq_len; i++)
            n[i] = pq[(pq_head + i) % pq_cap];
        free(pq);
        pq = n;
        pq_cap = cap;
        pq_head = 0;
    }
    pq[(pq_head + pq_len) % pq_cap] = (struct pending){c, mono_us() + delay_us, send_us, tx};
    pq_len++;
    c->waiting++;
}

/* handle: answer every complete request in c->buf. Returns -1 to close. */
static int handle(struct conn *c)
{
    size_t off = 0;
    for (;;) {
        char *base = c->buf + off, *hend;
        size_t avail = c->len - off, head_len, body_len = 0, vl;
        const char *v;
        hend = memmem(base, avail, "\r\n\r\n", 4);
        if (!hend)
            break;
        head_len = (size_t)(hend - base) + 4;
        if ((v = header_value(base, head_len, "Content-Length", &vl)))
            body_len = strtoull(v, NULL, 10);
        if (body_len > BUF_MAX)
            return -1;
        if (avail < head_len + body_len) {
            /* curl may wait for 100 Continue before sending a large body */
            if ((v = header_value(base, head_len, "Expect", &vl)) && vl >= 3 &&
                strncasecmp(v, "100", 3) == 0 && avail == head_len)
                out_append(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            break;
        }
        if (strncmp(base, "GET /stats", 10) == 0) {
            stats(c);
        } else if (strncmp(base, "GET /count", 10) == 0) {
            char cb[96];
            snprintf(cb, sizeof cb, "{\"count\":%llu,\"tx_count\":%llu}\n",
                     (unsigned long long)count, (unsigned long long)tx_count);
            respond(c, cb);
        } else if (strncmp(base, "POST /reset", 11) == 0) {
            count = with_ts = first_us = last_us = min_send_us = 0;
            n_lat = 0;
            tx_count = tx_last_us = 0;
            n_tx_lat = 0;
            respond(c, "{}\n");
        } else {
            const char *b = base + head_len, *ts = NULL;
            uint64_t s = 0;
            int tx = 0;
            /* "tx:" first: a probe's body carries that marker only */
            if (body_len && (ts = memmem(b, body_len, "tx:", 3)))
                tx = 1;
            else if (body_len)
                ts = memmem(b, body_len, "ts:", 3);
            if (ts)
                s = strtoull(ts + 3, NULL, 10);
            if (delay_us)
                pq_push(c, s, tx);
            else
                answer(c, s, tx);
        }
        off += head_len + body_len;
    }
    if (off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
    return 0;
}

static int flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

/* conn_close: close the socket; the struct stays until no delayed answer refers to it. */
static void conn_close(int ep, struct conn *c)
{
    if (!c->closed) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->closed = 1;
    }
    if (c->waiting)
        return;
    free(c->buf);
    free(c->out);
    free(c);
}

/* pq_run: answer every queued request that is due; returns the ms until the next one
 * is (-1: none queued), the epoll_wait timeout. */
static int pq_run(int ep)
{
    uint64_t now = mono_us();
    while (pq_len) {
        struct pending *p = &pq[pq_head];
        struct conn *c = p->c;
        if (p->due_us > now)
            return (int)((p->due_us - now + 999) / 1000);
        pq_head = (pq_head + 1) % pq_cap;
        pq_len--;
        c->waiting--;
        if (c->closed) {
            if (!c->waiting)
                conn_close(ep, c);
            continue;
        }
        answer(c, p->send_us, p->tx);
        if (flush_out(c) < 0)
            conn_close(ep, c);
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct sockaddr_in a;
    struct epoll_event ev, evs[256];
    int one = 1, ls, ep;

    struct rlimit rl;
    const char *port;

    if (argc == 4 && strcmp(argv[1], "--delay-ms") == 0) {
        delay_us = strtoull(argv[2], NULL, 10) * 1000u;
        port = argv[3];
    } else if (argc == 2) {
        port = argv[1];
    } else {
        fprintf(stderr, "usage: sink [--delay-ms N] PORT\n");
        return 2;
    }
    /* a slow sink holds a connection per request in flight: allow as many as we may */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    lat = malloc(MAX_LAT * sizeof *lat);
    tx_lat = malloc(MAX_TX_LAT * sizeof *tx_lat);
    if (!lat || !tx_lat)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)atoi(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) {
        perror("sink: bind/listen");
        return 1;
    }
    ep = epoll_create1(0);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    while (!stop) {
        int wait_ms = pq_run(ep), n;
        n = epoll_wait(ep, evs, 256, wait_ms < 0 || wait_ms > 200 ? 200 : wait_ms);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    c = calloc(1, sizeof *c);
                    c->fd = fd;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
                    ev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (evs[i].events & EPOLLIN) {
                int closed = 0;
                for (;;) {
                    ssize_t r;
                    if (c->cap - c->len < 16384) {
                        c->cap = c->cap ? c->cap * 2 : 65536;
                        if (c->cap > 2 * BUF_MAX + 65536) {
                            closed = 1;
                            break;
                        }
                        c->buf = realloc(c->buf, c->cap);
                    }
                    r = read(c->fd, c->buf + c->len, c->cap - c->len);
                    if (r > 0) {
                        c->len += (size_t)r;
                        continue;
                    }
                    if (r == 0)
                        closed = 1;
                    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                        closed = 1;
                    if (r < 0 && errno == EINTR)
                        continue;
                    break;
                }
                if (!closed && handle(c) < 0)
                    closed = 1;
                if (closed) {
                    conn_close(ep, c);
                    continue;
                }
            }
            if (c->out_len && flush_out(c) < 0)
                conn_close(ep, c);
        }
    }
    return 0;
}
