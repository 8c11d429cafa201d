/* test_auth.c: API-key authentication (src/api/auth.c) through a real HTTP server and a
 * real SQLite store: Bearer and Basic credentials, key kinds (401 vs 403), revocation,
 * the deferred write-key check, and the parsing of Authorization headers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/api/auth.c"

#include "../../../src/util/crypto.h"
#include "../../../src/util/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fx {
    char dir[64];
    struct store *s;
    struct http_server *srv;
    struct api_ctx ctx;
    char admin[API_KEY_MAX], write[API_KEY_MAX];
    int port;
};

static int seen_kind;

static void echo_kind(void *ctx, struct http_req *req, struct http_resp *resp)
{
    char b[32];
    seen_kind = req->auth.kind;
    snprintf(b, sizeof b, "{\"kind\":%d}", req->auth.kind);
    http_resp_raw(resp, 200, "application/json", str_c(b));
}

static const struct http_route routes[] = {
    {HTTP_GET, "/admin", echo_kind, AUTH_ADMIN, "t.admin", 0, 0},
    {HTTP_POST, "/write", echo_kind, AUTH_WRITE, "t.write", ROUTE_ANY_CTYPE, 0},
    {0},
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct herr err;
    struct http_cfg cfg = {0};
    char dsn[128];
    bool created;
    snprintf(f->dir, sizeof f->dir, "/tmp/herald-auth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(dsn, sizeof dsn, "sqlite:%s/h.db", f->dir);
    assert_int_equal(store_open(dsn, NULL, &f->s, &err), HR_OK);
    assert_int_equal(api_bootstrap(f->s, 1000, f->admin, f->write, &created, &err), HR_OK);
    assert_true(created);
    f->ctx.store = f->s;
    f->ctx.clock = hclock_system();
    cfg.listen = "127.0.0.1:0";
    cfg.routes = routes;
    cfg.handler_ctx = &f->ctx;
    cfg.auth = api_authenticate;
    cfg.auth_ctx = &f->ctx;
    assert_int_equal(http_server_start(&cfg, &f->srv, &err), HR_OK);
    f->port = http_server_port(f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    http_server_stop(f->srv);
    store_close(f->s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", f->dir);
    free(f);
    return 0;
}

/* call: one request with an optional Authorization header; returns the status. */
static long call(struct fx *f, const char *method, const char *path, const char *authz)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hs = NULL;
    char url[128], hdr[512];
    long status = 0;
    FILE *sink = fopen("/dev/null", "w");
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->port, path);
    if (authz) {
        snprintf(hdr, sizeof hdr, "Authorization: %s", authz);
        hs = curl_slist_append(hs, hdr);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(h);
    fclose(sink);
    return status;
}

static void basic(const char *user, const char *suffix, char *out, size_t cap)
{
    char raw[256], b64[360];
    snprintf(raw, sizeof raw, "%s%s", user, suffix);
    crypto_b64_encode(raw, strlen(raw), b64, sizeof b64);
    snprintf(out, cap, "Basic %s", b64);
}

static void test_bearer_kinds(void **state)
{
    struct fx *f = *state;
    char h[300];
    snprintf(h, sizeof h, "Bearer %s", f->admin);
    seen_kind = -1;
    assert_int_equal(call(f, "GET", "/admin", h), 200);
    assert_int_equal(seen_kind, KEY_ADMIN);
    assert_int_equal(call(f, "GET", "/admin", NULL), 401);
    assert_int_equal(call(f, "GET", "/admin", "Bearer hk_wrong"), 401);
    assert_int_equal(call(f, "GET", "/admin", "Token abc"), 401);
    snprintf(h, sizeof h, "Bearer %s", f->write);
    assert_int_equal(call(f, "GET", "/admin", h), 403); /* valid key, wrong kind */
}

static void test_basic_write_key(void **state)
{
    struct fx *f = *state;
    char h[512];
    basic(f->write, ":", h, sizeof h);
    seen_kind = -1;
    assert_int_equal(call(f, "POST", "/write", h), 200);
    assert_int_equal(seen_kind, KEY_WRITE);
    basic(f->write, "", h, sizeof h); /* without the trailing colon */
    assert_int_equal(call(f, "POST", "/write", h), 200);
    basic(f->admin, ":", h, sizeof h);
    assert_int_equal(call(f, "POST", "/write", h), 403);
    assert_int_equal(call(f, "GET", "/admin", h), 200); /* Basic admin key on admin route */
    basic("wk_nope", ":", h, sizeof h);
    assert_int_equal(call(f, "POST", "/write", h), 401);
    assert_int_equal(call(f, "POST", "/write", "Basic !!!notbase64"), 401);
    /* no header on a write route: deferred to the handler (writeKey in the body) */
    seen_kind = -1;
    assert_int_equal(call(f, "POST", "/write", NULL), 200);
    assert_int_equal(seen_kind, 0);
}

static int revoke_tx(struct store_txn *t, void *prefix)
{
    return store_key_revoke(t, prefix, 2000);
}

static void test_revoked_and_created_keys(void **state)
{
    struct fx *f = *state;
    char key[API_KEY_MAX], prefix[API_KEY_PREFIX_LEN + 1], h[300];
    struct herr err;
    struct key_rec k;
    assert_int_equal(api_key_create(f->s, KEY_ADMIN, KEY_SCOPE_SERVER, "ci", 1500, key, &err), HR_OK);
    assert_memory_equal(key, "hk_", 3);
    assert_int_equal(api_key_check(f->s, str_c(key), &k), HR_OK);
    assert_int_equal(k.kind, KEY_ADMIN);
    snprintf(h, sizeof h, "Bearer %s", key);
    assert_int_equal(call(f, "GET", "/admin", h), 200);
    str_copy(prefix, sizeof prefix, (struct str){key, API_KEY_PREFIX_LEN});
    assert_int_equal(store_write(f->s, revoke_tx, prefix, &err), HR_OK);
    assert_int_equal(api_key_check(f->s, str_c(key), &k), HR_PERM);
    assert_int_equal(call(f, "GET", "/admin", h), 401);
    /* a key one character off, and oversized keys, are refused */
    key[10] = key[10] == 'a' ? 'b' : 'a';
    assert_int_equal(api_key_check(f->s, str_c(key), &k), HR_PERM);
    char big[400];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(api_key_check(f->s, str_c(big), &k), HR_PERM);
    assert_int_equal(api_key_create(f->s, 7, KEY_SCOPE_SERVER, "bad", 1, key, &err), HR_INVAL);
}

/* Valid write keys are remembered for API_KEY_CACHE_TTL_MS: a revocation by another
 * process shows once the entry expires, or at once after api_key_cache_clear. */
static void test_write_key_cache(void **state)
{
    struct fx *f = *state;
    char key[API_KEY_MAX], prefix[API_KEY_PREFIX_LEN + 1];
    struct herr err;
    struct key_rec k;
    api_key_cache_set_ttl(API_KEY_CACHE_TTL_MS);
    assert_int_equal(api_key_create(f->s, KEY_WRITE, KEY_SCOPE_CLIENT, "w", 1500, key, &err), HR_OK);
    assert_int_equal(api_key_check(f->s, str_c(key), &k), HR_OK);
    str_copy(prefix, sizeof prefix, (struct str){key, API_KEY_PREFIX_LEN});
    assert_int_equal(store_write(f->s, revoke_tx, prefix, &err), HR_OK);
    memset(&k, 0, sizeof k);
    assert_int_equal(api_key_check(f->s, str_c(key), &k), HR_OK); /* remembered */
    assert_int_equal(k.kind, KEY_WRITE);
    assert_int_equal(k.scope, KEY_SCOPE_CLIENT);
    api_key_cache_clear(); /* what a revocation in this process calls */
    assert_int_equal(api_key_check(f->s, str_c(key), &k), HR_PERM);

    /* expiry: a 1 ms TTL has run out 20 ms later */
    api_key_cache_set_ttl(1);
    assert_int_equal(api_key_create(f->s, KEY_WRITE, KEY_SCOPE_SERVER, "w2", 1600, key, &err), HR_OK);
    assert_int_equal(api_key_check(f->s, str_c(key), &k), HR_OK);
    str_copy(prefix, sizeof prefix, (struct str){key, API_KEY_PREFIX_LEN});
    assert_int_equal(store_write(f->s, revoke_tx, prefix, &err), HR_OK);
    usleep(20 * 1000);
    assert_int_equal(api_key_check(f->s, str_c(key), &k), HR_PERM);

    /* a wrong key never hits an entry; admin keys are never remembered */
    api_key_cache_set_ttl(API_KEY_CACHE_TTL_MS);
    key[10] = key[10] == 'a' ? 'b' : 'a';
    assert_int_equal(api_key_check(f->s, str_c(key), &k), HR_PERM);
    assert_int_equal(api_key_create(f->s, KEY_ADMIN, KEY_SCOPE_SERVER, "a", 1700, key, &err), HR_OK);
    assert_int_equal(api_key_check(f->s, str_c(key), &k), HR_OK);
    str_copy(prefix, sizeof prefix, (struct str){key, API_KEY_PREFIX_LEN});
    assert_int_equal(store_write(f->s, revoke_tx, prefix, &err), HR_OK);
    assert_int_equal(api_key_check(f->s, str_c(key), &k), HR_PERM);
}

static void test_bootstrap_once(void **state)
{
    struct fx *f = *state;
    char a[API_KEY_MAX], w[API_KEY_MAX];
    struct herr err;
    bool created = true;
    assert_int_equal(api_bootstrap(f->s, 3000, a, w, &created, &err), HR_OK);
    assert_false(created); /* the workspace exists: nothing printed again */
}

static void test_credential_parsing(void **state)
{
    char buf[64];
    struct str key;
    assert_int_equal(credential("Bearer   abc  ", buf, sizeof buf, &key), HR_OK);
    assert_true(str_eq_c(key, "abc"));
    assert_int_equal(credential("bearer xyz", buf, sizeof buf, &key), HR_OK);
    assert_int_equal(credential("Bearer ", buf, sizeof buf, &key), HR_PERM);
    assert_int_equal(credential(NULL, buf, sizeof buf, &key), HR_PERM);
    assert_int_equal(credential("Basic Ondrc19h", buf, sizeof buf, &key), HR_PERM); /* ":wk_a" */
    assert_int_equal(credential("Basic d2tfYTo=", buf, sizeof buf, &key), HR_OK);   /* "wk_a:" */
    assert_true(str_eq_c(key, "wk_a"));
    char long_bearer[200];
    snprintf(long_bearer, sizeof long_bearer, "Bearer %0100d", 0);
    assert_int_equal(credential(long_bearer, buf, sizeof buf, &key), HR_PERM); /* over cap */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bearer_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_basic_write_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_and_created_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_key_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_once, setup, teardown),
        cmocka_unit_test(test_credential_parsing),
    };
    log_set_level(LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests_name("api/auth", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
