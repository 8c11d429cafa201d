/* curl_baseline.c: the delivery baseline. POSTs a small JSON body (the shape of herald's
 * webhook body, with "ts:<send time in us>" in it) to a URL through libcurl's multi
 * interface with IN_FLIGHT transfers at once, reusing connections, for SECONDS seconds.
 * Prints one line: "CURL requests=N ok=M seconds=S rps=R".
 *
 * Build: cc -O2 -o curl_baseline bench/curl_baseline.c -lcurl
 * Run:   ./curl_baseline URL [SECONDS=5] [IN_FLIGHT=16]
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct xfer {
    CURL *h;
    struct curl_slist *hdrs;
    char body[512];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u;
}

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

static unsigned long long seq;

static void start(CURLM *m, struct xfer *x, const char *url)
{
    seq++;
    snprintf(x->body, sizeof x->body,
             "{\"message_id\":\"1-bench-%llu\",\"recipient\":{\"user_id\":\"u%llu\"},"
             "\"content\":{\"title\":\"Bench\",\"body\":\"ts:%llu\"}}",
             seq, seq, now_us());
    curl_easy_setopt(x->h, CURLOPT_URL, url);
    curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
    curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
    curl_multi_add_handle(m, x->h);
}

int main(int argc, char **argv)
{
    const char *url;
    double secs = 5, t0, t1, end;
    int in_flight = 16, running = 0;
    unsigned long long done = 0, ok = 0;
    struct xfer *xs;
    CURLM *m;

    if (argc < 2) {
        fprintf(stderr, "usage: curl_baseline URL [SECONDS] [IN_FLIGHT]\n");
        return 2;
    }
    url = argv[1];
    if (argc > 2)
        secs = atof(argv[2]);
    if (argc > 3)
        in_flight = atoi(argv[3]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)in_flight);
    xs = calloc((size_t)in_flight, sizeof *xs);
    t0 = t1 = now_s();
    end = t0 + secs;
    for (int i = 0; i < in_flight; i++) {
        xs[i].h = curl_easy_init();
        xs[i].hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        xs[i].hdrs = curl_slist_append(xs[i].hdrs, "Expect:");
        start(m, &xs[i], url);
    }
    do {
        CURLMsg *msg;
        int left;
        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left))) {
            struct xfer *x;
            long code = 0;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            done++;
            t1 = now_s();
            if (msg->data.result == CURLE_OK && code >= 200 && code < 300)
                ok++;
            curl_multi_remove_handle(m, x->h);
            if (now_s() < end)
                start(m, x, url);
        }
        if (running == 0 && now_s() >= end)
            break;
        curl_multi_poll(m, NULL, 0, 100, NULL);
        curl_multi_perform(m, &running);
    } while (running > 0 || now_s() < end);
    printf("CURL requests=%llu ok=%llu seconds=%.3f rps=%.0f\n", done, ok, t1 - t0,
           (double)done / (t1 - t0));
    for (int i = 0; i < in_flight; i++) {
        curl_easy_cleanup(xs[i].h);
        curl_slist_free_all(xs[i].hdrs);
    }
    free(xs);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return ok == done ? 0 : 1;
}
