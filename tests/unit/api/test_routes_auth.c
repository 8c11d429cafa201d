/* test_routes_auth.c: an auth test generated from the route table. Every route that is
 * not public answers 401 without a key (and with an unknown one), and 403 with a key of
 * the wrong kind: the Segment write key on admin routes, the admin key on write-key
 * routes. Runs the real server, the real authenticator and a real SQLite store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/api/api.h"
#include "../../../src/util/crypto.h"
#include "../../../src/util/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct store *st;
static struct http_server *srv;
static struct api_ctx actx;
static char admin[API_KEY_MAX], wkey[API_KEY_MAX], dir[64];
static int port;

static int setup(void **state)
{
    struct herr err;
    struct http_cfg cfg = {0};
    char dsn[128];
    bool created;
    snprintf(dir, sizeof dir, "/tmp/herald-routes-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(dsn, sizeof dsn, "sqlite:%s/h.db", dir);
    assert_int_equal(store_open(dsn, NULL, &st, &err), HR_OK);
    assert_int_equal(api_bootstrap(st, 1000, admin, wkey, &created, &err), HR_OK);
    actx.store = st;
    actx.clock = hclock_system();
    cfg.listen = "127.0.0.1:0";
    cfg.routes = api_routes;
    cfg.handler_ctx = &actx;
    cfg.auth = api_authenticate;
    cfg.auth_ctx = &actx;
    assert_int_equal(http_server_start(&cfg, &srv, &err), HR_OK);
    port = http_server_port(srv);
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    http_server_stop(srv);
    store_close(st);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", dir);
    return 0;
}

/* concrete: the route's pattern with every ":x" segment and a trailing "*" filled. */
static void concrete(const char *pattern, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 8 < cap;) {
        if (*p == ':') {
            o += (size_t)snprintf(out + o, cap - o, "x1");
            while (*p && *p != '/')
                p++;
        } else if (*p == '*') {
            o += (size_t)snprintf(out + o, cap - o, "any/thing");
            p++;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

static long call(int method, const char *path, const char *authz)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hs = NULL;
    char url[512], hdr[512];
    long status = 0;
    FILE *sink = fopen("/dev/null", "w");
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    hs = curl_slist_append(hs, "Content-Type: application/json");
    if (authz) {
        snprintf(hdr, sizeof hdr, "Authorization: %s", authz);
        hs = curl_slist_append(hs, hdr);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, http_method_name(method));
    if (method == HTTP_POST || method == HTTP_PUT || method == HTTP_PATCH)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
    if (method == HTTP_HEAD)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(h);
    fclose(sink);
    return status;
}

static void test_every_route(void **state)
{
    char path[256], bearer_admin[300], bearer_write[300], basic_admin[400], raw[200], b64[300];
    int checked = 0;
    snprintf(bearer_admin, sizeof bearer_admin, "Bearer %s", admin);
    snprintf(bearer_write, sizeof bearer_write, "Bearer %s", wkey);
    snprintf(raw, sizeof raw, "%s:", admin);
    crypto_b64_encode(raw, strlen(raw), b64, sizeof b64);
    snprintf(basic_admin, sizeof basic_admin, "Basic %s", b64);
    for (const struct http_route *r = api_routes; r->pattern; r++) {
        if (r->auth == AUTH_PUBLIC)
            continue;
        concrete(r->pattern, path, sizeof path);
        if (r->auth == AUTH_ADMIN) {
            long s0 = call(r->method, path, NULL), s1 = call(r->method, path, "Bearer hk_nope");
            long s2 = call(r->method, path, bearer_write);
            if (s0 != 401 || s1 != 401 || s2 != 403)
                fail_msg("%s %s (%s): no key %ld, unknown key %ld, write key %ld",
                         http_method_name(r->method), r->pattern, r->name, s0, s1, s2);
        } else { /* write-key routes: a wrong key kind is 403; a missing one is checked by
                    the handler after reading writeKey from the body: 401 */
            long s1 = call(r->method, path, "Basic d2tfbm9wZTo="); /* "wk_nope:" */
            long s2 = call(r->method, path, basic_admin);
            if (s1 != 401 || s2 != 403)
                fail_msg("%s %s (%s): unknown key %ld, admin key %ld", http_method_name(r->method),
                         r->pattern, r->name, s1, s2);
        }
        checked++;
    }
    assert_true(checked > 40); /* the table really was walked */
    /* and the public ones answer without a key */
    assert_int_equal(call(HTTP_GET, "/healthz", NULL), 200);
    assert_int_equal(call(HTTP_GET, "/metrics", NULL), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_route, setup, teardown),
    };
    int rc;
    log_set_level(LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests_name("api/routes_auth", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
