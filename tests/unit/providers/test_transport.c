/* test_transport.c: the libcurl multi loop (src/providers/transport.c) against an HTTP
 * sink forked from the test process (loopback only, killed at the end, and it exits by
 * itself after 120 s). The sink answers by path:
 *   /slow   after 100 ms      /hang  never      /big   a 200 KB body
 *   /busy   429 Retry-After: 7                  /stats the most requests it held at once
 *   /conns  the connections it has accepted     /wait/N after N ms
 * Everything else answers 200 at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/providers/provider.h"
#include "../../../src/providers/transport.h"
#include "../../../src/util/buf.h"
#include "../../../src/util/clock.h"
#include "../../../src/util/log.h"
#include "../../../src/util/metrics.h"
#include "../../../src/util/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONNS_MAX 4096
#define BIG_BODY (200 * 1024)

/* ---- the sink (child process) ------------------------------------------------------ */

struct conn {
    int fd;
    char in[8192];
    size_t len;
    int64_t answer_at; /* ms; 0: nothing pending; -1: never (hang) */
    char path[32];
};

static struct conn *g_conns[CONNS_MAX];
static int g_held, g_max_held, g_accepted;

static void put_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EAGAIN) {
                usleep(1000);
                continue;
            }
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void answer(struct conn *c)
{
    char head[256];
    if (strcmp(c->path, "/big") == 0) {
        char *body = malloc(BIG_BODY);
        memset(body, 'x', BIG_BODY);
        int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
                         BIG_BODY);
        put_all(c->fd, head, (size_t)n);
        put_all(c->fd, body, BIG_BODY);
        free(body);
    } else if (strcmp(c->path, "/busy") == 0) {
        const char *r = "HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nslow";
        put_all(c->fd, r, strlen(r));
    } else {
        char body[32];
        int bn = snprintf(body, sizeof body, "%d",
                          strcmp(c->path, "/stats") == 0   ? g_max_held
                          : strcmp(c->path, "/conns") == 0 ? g_accepted
                                                           : 0);
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", bn, body);
        put_all(c->fd, head, (size_t)n);
    }
    c->answer_at = 0;
}

/* parse: a whole request in c->in (headers + Content-Length body)? Then note its path
 * and when to answer, and drop it from the buffer. */
static void parse(struct conn *c)
{
    char *end = memmem(c->in, c->len, "\r\n\r\n", 4);
    size_t need, clen = 0;
    char *cl;
    if (!end || c->answer_at != 0)
        return;
    *end = '\0';
    cl = strcasestr(c->in, "\r\nContent-Length:");
    if (cl)
        clen = strtoul(cl + 17, NULL, 10);
    need = (size_t)(end - c->in) + 4 + clen;
    if (c->len < need) {
        *end = '\r';
        return;
    }
    sscanf(c->in, "%*s %31s", c->path);
    memmove(c->in, c->in + need, c->len - need);
    c->len -= need;
    g_held++;
    if (g_held > g_max_held)
        g_max_held = g_held;
    if (strcmp(c->path, "/hang") == 0)
        c->answer_at = -1;
    else if (strcmp(c->path, "/slow") == 0)
        c->answer_at = time_mono_ms() + 100;
    else if (strncmp(c->path, "/wait/", 6) == 0)
        c->answer_at = time_mono_ms() + atoi(c->path + 6);
    else
        c->answer_at = time_mono_ms();
}

static void close_conn(int ep, struct conn *c)
{
    if (c->answer_at != 0)
        g_held--;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    g_conns[c->fd] = NULL;
    free(c);
}

static void sink_main(int lfd)
{
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[256];
    int64_t stop_at = time_mono_ms() + 120000;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    while (time_mono_ms() < stop_at) {
        int n = epoll_wait(ep, evs, 256, 5);
        int64_t now;
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept(lfd, NULL, NULL)) >= 0) {
                    if (c >= CONNS_MAX) {
                        close(c);
                        continue;
                    }
                    g_accepted++;
                    g_conns[c] = calloc(1, sizeof *g_conns[c]);
                    g_conns[c]->fd = c;
                    ev = (struct epoll_event){.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                }
                continue;
            }
            struct conn *c = g_conns[fd];
            ssize_t r = recv(fd, c->in + c->len, sizeof c->in - c->len - 1, 0);
            if (r <= 0) {
                close_conn(ep, c);
                continue;
            }
            c->len += (size_t)r;
            parse(c);
        }
        now = time_mono_ms();
        for (int fd = 0; fd < CONNS_MAX; fd++) {
            struct conn *c = g_conns[fd];
            if (c && c->answer_at > 0 && c->answer_at <= now) {
                g_held--;
                answer(c);
                parse(c); /* a pipelined next request */
            }
        }
    }
    _exit(0);
}

struct sink {
    pid_t pid;
    int port;
};

static struct sink g_sink;

static void sink_start(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(lfd >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 4096), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    g_sink.port = ntohs(a.sin_port);
    g_sink.pid = fork();
    assert_true(g_sink.pid >= 0);
    if (g_sink.pid == 0)
        sink_main(lfd);
    close(lfd);
}

static void sink_stop(void)
{
    if (g_sink.pid > 0) {
        kill(g_sink.pid, SIGKILL);
        waitpid(g_sink.pid, NULL, 0);
        g_sink.pid = 0;
    }
}

/* ---- helpers ------------------------------------------------------------------------- */

static void get_req(struct transport_req *q, const char *path, int64_t timeout_ms)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", g_sink.port, path);
    transport_req_init(q);
    q->url = strdup(url);
    q->method = strdup("GET");
    q->timeout_ms = timeout_ms;
}

/* Counts callbacks; the test waits on it. */
struct tally {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok, canceled, other;
    char last_error[CURL_ERROR_SIZE + 512];
};

static void tally_init(struct tally *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
}

static void tally_cleanup(struct tally *t)
{
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
}

static void on_done(void *arg, struct transport_resp *resp)
{
    struct tally *t = arg;
    pthread_mutex_lock(&t->mu);
    t->done++;
    if (resp->rc == HR_OK && resp->http.status == 200)
        t->ok++;
    else if (resp->rc == HR_UNAVAIL)
        t->canceled++;
    else
        t->other++;
    snprintf(t->last_error, sizeof t->last_error, "%s", resp->http.error);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void tally_wait(struct tally *t, int n)
{
    pthread_mutex_lock(&t->mu);
    while (t->done < n)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
}

static int get_status(struct transport *t, const char *path, int64_t timeout_ms,
                      struct transport_resp *resp)
{
    struct transport_req q;
    get_req(&q, path, timeout_ms);
    return transport_perform(t, &q, resp);
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_thousand_in_flight(void **state)
{
    /* 1,000 requests to a sink that holds each for 100 ms: one thread keeps them all in
     * flight, so the sink sees most of them at the same time */
    struct transport *t = transport_new(0);
    struct tally tl;
    struct transport_resp resp;
    struct buf m;
    const int n = 1000;
    tally_init(&tl);
    transport_resp_init(&resp);
    assert_non_null(t);
    for (int i = 0; i < n; i++) {
        struct transport_req q;
        struct herr err = {0};
        get_req(&q, "/slow", 60000);
        assert_int_equal(transport_submit(t, &q, on_done, &tl, &err), HR_OK);
        assert_null(q.url); /* moved into the transfer */
    }
    tally_wait(&tl, n);
    assert_int_equal(tl.ok, n);
    assert_int_equal(transport_in_flight(t), 0);

    assert_int_equal(get_status(t, "/stats", 10000, &resp), HR_OK);
    int max_held = atoi(resp.http.body.p);
    print_message("sink held at most %d requests at once\n", max_held);
    assert_true(max_held > 500);

    buf_init(&m, 1 << 20);
    assert_int_equal(metrics_render(&m), HR_OK);
    assert_non_null(strstr(buf_cstr(&m), "# TYPE herald_transport_in_flight gauge\n"
                                         "herald_transport_in_flight 0\n"));
    assert_non_null(strstr(buf_cstr(&m), "herald_transport_completed_total{result=\"answered\"}"));
    buf_cleanup(&m);
    transport_resp_cleanup(&resp);
    transport_free(t);
    tally_cleanup(&tl);
}

/* staggered_burst: n requests at once, the i-th answered 200 after 100 + 5 i ms (so they
 * end one by one, as the transfers in flight drop, apart even on a slow build). */
static void staggered_burst(struct transport *t, int n)
{
    struct tally tl;
    tally_init(&tl);
    for (int i = 0; i < n; i++) {
        struct transport_req q;
        struct herr err = {0};
        char path[32];
        snprintf(path, sizeof path, "/wait/%d", 100 + 5 * i);
        get_req(&q, path, 60000);
        assert_int_equal(transport_submit(t, &q, on_done, &tl, &err), HR_OK);
    }
    tally_wait(&tl, n);
    assert_int_equal(tl.ok, n);
    tally_cleanup(&tl);
}

static int sink_conns(struct transport *t)
{
    struct transport_resp resp;
    int n;
    transport_resp_init(&resp);
    assert_int_equal(get_status(t, "/conns", 10000, &resp), HR_OK);
    n = atoi(resp.http.body.p);
    transport_resp_cleanup(&resp);
    return n;
}

static void test_connections_kept_between_bursts(void **state)
{
    /* 300 calls in flight, ending one by one, then 300 again: the second burst finds the
     * first one's connections idle in the cache. libcurl by default keeps 4 per transfer
     * in flight when one ends, so it closed them as the first burst drained and the
     * second burst opened most of them again. */
    struct transport *t = transport_new(0);
    struct rlimit rl;
    int n = 300, before, after;
    /* the transport keeps at least min(1,024, nofile / 16) idle (transport.c keep_min) */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)n + 20 > rl.rlim_cur / 16)
        n = (int)(rl.rlim_cur / 16) - 20;
    if (n < 40) {
        print_message("open-file limit %llu: too few idle connections kept to tell\n",
                      (unsigned long long)rl.rlim_cur);
        transport_free(t);
        skip();
    }
    assert_non_null(t);
    staggered_burst(t, n);
    before = sink_conns(t);
    staggered_burst(t, n);
    after = sink_conns(t);
    print_message("connections opened by the second burst: %d\n", after - before);
    assert_true(after - before < n / 10);
    transport_free(t);
}

static void test_timeout_cap_retry_after(void **state)
{
    struct transport *t = transport_new(0);
    struct transport_resp resp;
    transport_resp_init(&resp);

    assert_int_equal(get_status(t, "/hang", 200, &resp), HR_TIMEOUT);
    assert_int_equal(resp.http.status, 0);
    assert_non_null(strstr(resp.http.error, "imed out"));

    /* the body is capped; the status still counts */
    assert_int_equal(get_status(t, "/big", 10000, &resp), HR_OK);
    assert_int_equal(resp.http.status, 200);
    assert_true(resp.http.truncated);
    assert_int_equal(resp.http.body.len, HTTP_CLIENT_BODY_MAX);

    assert_int_equal(get_status(t, "/busy", 10000, &resp), HR_OK);
    assert_int_equal(resp.http.status, 429);
    assert_int_equal(resp.http.retry_after_ms, 7000);

    transport_resp_cleanup(&resp);
    transport_free(t);
}

static void test_egress_refused(void **state)
{
    /* a guarded request is refused on a loopback address, even after an unguarded one
     * opened a connection to the same place (guarded requests have their own pool) */
    struct transport *t = transport_new(0);
    struct transport_resp resp;
    struct transport_req q;
    struct netaddr_allow none, loop;
    struct herr err = {0};
    transport_resp_init(&resp);
    assert_int_equal(netaddr_allow_parse("", &none, &err), HR_OK);
    assert_int_equal(netaddr_allow_parse("127.0.0.0/8", &loop, &err), HR_OK);
    http_client_egress_allow(&none);

    assert_int_equal(get_status(t, "/", 10000, &resp), HR_OK); /* not guarded */
    get_req(&q, "/", 10000);
    q.guard = strdup("webhook");
    assert_int_equal(transport_perform(t, &q, &resp), HR_PERM);
    assert_string_equal(resp.http.error, "target 127.0.0.1 is a loopback address; refused "
                                         "(allow it with --egress-allow)");

    http_client_egress_allow(&loop);
    get_req(&q, "/", 10000);
    q.guard = strdup("webhook");
    assert_int_equal(transport_perform(t, &q, &resp), HR_OK);
    assert_int_equal(resp.http.status, 200);

    transport_resp_cleanup(&resp);
    transport_free(t);
}

static void test_shutdown_in_flight(void **state)
{
    /* transfers still waiting when the transport stops end, each with a clear error */
    struct transport *t = transport_new(0);
    struct tally tl;
    const int n = 50;
    tally_init(&tl);
    for (int i = 0; i < n; i++) {
        struct transport_req q;
        struct herr err = {0};
        get_req(&q, "/hang", 60000);
        assert_int_equal(transport_submit(t, &q, on_done, &tl, &err), HR_OK);
    }
    transport_free(t);
    assert_int_equal(tl.done, n);
    assert_int_equal(tl.canceled, n);
    assert_string_equal(tl.last_error, "canceled: the transport is shutting down");
    tally_cleanup(&tl);
}

static void test_full_and_bad_url(void **state)
{
    struct transport *t = transport_new(4);
    struct tally tl;
    struct transport_req q;
    struct herr err = {0};
    tally_init(&tl);
    for (int i = 0; i < 4; i++) {
        get_req(&q, "/hang", 60000);
        assert_int_equal(transport_submit(t, &q, on_done, &tl, &err), HR_OK);
    }
    get_req(&q, "/hang", 60000);
    assert_int_equal(transport_submit(t, &q, on_done, &tl, &err), HR_AGAIN);
    assert_string_equal(err.msg, "transport: 4 transfers in flight; try again later");
    assert_null(q.url); /* freed: the request is the transport's whatever happens */

    transport_req_init(&q);
    q.url = strdup("ftp://127.0.0.1/x");
    assert_int_equal(transport_submit(t, &q, on_done, &tl, &err), HR_INVAL);
    assert_string_equal(err.msg, "not an http(s) URL");

    transport_free(t);
    assert_int_equal(tl.done, 4); /* the refused ones never call back */
    assert_int_equal(tl.canceled, 4);
    tally_cleanup(&tl);
}

/* provider_start: webhook deliveries that end on the loop thread */
struct async_tally {
    struct tally t;
    pthread_t caller;
    int on_caller;
};

static void on_delivered(void *arg, const struct delivery_result *r)
{
    struct async_tally *a = arg;
    pthread_mutex_lock(&a->t.mu);
    a->t.done++;
    if (r->outcome == DELIVERY_SENT)
        a->t.ok++;
    if (pthread_equal(pthread_self(), a->caller))
        a->on_caller++;
    snprintf(a->t.last_error, sizeof a->t.last_error, "%s", r->reason);
    pthread_cond_broadcast(&a->t.cv);
    pthread_mutex_unlock(&a->t.mu);
}

static void test_provider_start(void **state)
{
    const struct provider_ops *wh = provider_find("webhook");
    struct async_tally a;
    struct netaddr_allow loop;
    struct herr err = {0};
    struct content ct = {.channel = CH_WEBHOOK};
    char settings_json[128];
    cJSON *settings, *profile = cJSON_Parse("{}");
    struct delivery d = {
        .message_id = "m1", .idempotency_key = "m1:webhook:p1", .provider_id = "p1",
        .content = &ct, .profile = profile, .timeout_ms = 10000,
    };
    const int n = 200;
    snprintf(settings_json, sizeof settings_json, "{\"url\":\"http://127.0.0.1:%d/slow\"}",
             g_sink.port);
    settings = cJSON_Parse(settings_json);
    d.settings = settings;
    assert_int_equal(netaddr_allow_parse("127.0.0.0/8", &loop, &err), HR_OK);
    http_client_egress_allow(&loop);
    tally_init(&a.t);
    a.caller = pthread_self();
    a.on_caller = 0;
    for (int i = 0; i < n; i++)
        provider_start(wh, &d, on_delivered, &a); /* returns at once */
    tally_wait(&a.t, n);
    assert_int_equal(a.t.ok, n);
    assert_int_equal(a.on_caller, 0); /* every one finished on the loop thread */

    /* an attempt that needs no call (bad settings) ends before provider_start returns */
    cJSON_Delete(settings);
    settings = cJSON_Parse("{}");
    d.settings = settings;
    provider_start(wh, &d, on_delivered, &a);
    assert_int_equal(a.t.done, n + 1);
    assert_int_equal(a.on_caller, 1);
    assert_string_equal(a.t.last_error, "webhook settings: settings.url is required");

    tally_cleanup(&a.t);
    cJSON_Delete(settings);
    cJSON_Delete(profile);
}

static int group_setup(void **state)
{
    struct rlimit rl; /* as herald serve does (main.c raise_nofile): 1,000 sockets at once */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    log_set_level(LOG_WARN);
    sink_start();
    return provider_global_init() == HR_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    provider_global_cleanup();
    sink_stop();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thousand_in_flight),
        cmocka_unit_test(test_connections_kept_between_bursts),
        cmocka_unit_test(test_timeout_cap_retry_after),
        cmocka_unit_test(test_egress_refused),
        cmocka_unit_test(test_shutdown_in_flight),
        cmocka_unit_test(test_full_and_bad_url),
        cmocka_unit_test(test_provider_start),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
