/* test_idempotency.c: the Idempotency-Key wrapper (src/api/idempotency.c) through a real
 * HTTP server and a real SQLite store: a finished key is replayed; a key pending in this
 * process answers 409; a key left pending by a process that died (another process id in
 * the record) is taken over at once on a store only one process uses, and still answers
 * 409 on a shared store (PostgreSQL's case: the other node may be alive) until stale. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/api/idempotency.c"

#include "../../../src/util/crypto.h"
#include "../../../src/util/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fx {
    char dir[64];
    struct store *s;
    struct store_ops shared_ops; /* the SQLite backend, flagged as shared */
    struct http_server *srv;
    struct api_ctx ctx;
    int port;
};

static int handled; /* calls of the wrapped handler */

static void created(void *ctx, struct http_req *req, struct http_resp *resp)
{
    char b[32];
    handled++;
    snprintf(b, sizeof b, "{\"n\":%d}", handled);
    http_resp_raw(resp, 202, "application/json", str_c(b));
}

static const struct http_route routes[] = {
    {HTTP_POST, "/thing", created, AUTH_PUBLIC, "t.thing", ROUTE_ANY_CTYPE, 0},
    {0},
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct herr err;
    struct http_cfg cfg = {0};
    char dsn[128];
    snprintf(f->dir, sizeof f->dir, "/tmp/herald-idem-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(dsn, sizeof dsn, "sqlite:%s/h.db", f->dir);
    assert_int_equal(store_open(dsn, NULL, &f->s, &err), HR_OK);
    f->ctx.store = f->s;
    f->ctx.clock = hclock_system();
    cfg.listen = "127.0.0.1:0";
    cfg.routes = routes;
    cfg.handler_ctx = &f->ctx;
    cfg.wrap = api_idempotency_wrap;
    cfg.wrap_ctx = &f->ctx;
    assert_int_equal(http_server_start(&cfg, &f->srv, &err), HR_OK);
    f->port = http_server_port(f->srv);
    handled = 0;
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

/* post: POST /thing with Idempotency-Key: key; returns the status. */
static long post(struct fx *f, const char *key)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hs = NULL;
    char url[128], hdr[300];
    long status = 0;
    FILE *sink = fopen("/dev/null", "w");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/thing", f->port);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
    hs = curl_slist_append(hs, hdr);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(h);
    fclose(sink);
    return status;
}

struct put_arg {
    char id[65];
    char body[256];
};

static int put_tx(struct store_txn *t, void *varg)
{
    struct put_arg *p = varg;
    return store_doc_put(t, COLL, str_c(p->id), str_c(p->body), 1000, NULL);
}

/* leave_pending: store the pending record a request with `key` (no API key) would have
 * left, created now, written by process `boot` (NULL: a record from before boot ids). */
static void leave_pending(struct fx *f, const char *key, const char *boot)
{
    struct put_arg p;
    struct herr err;
    char buf[KEY_MAX + 32];
    uint8_t h[32];
    int64_t now = hclock_now(f->ctx.clock);
    int n = snprintf(buf, sizeof buf, "0:%s", key); /* scope_id with key_id 0 */
    crypto_sha256(buf, (size_t)n, h);
    crypto_hex(h, 32, p.id);
    if (boot)
        snprintf(p.body, sizeof p.body,
                 "{\"state\":\"pending\",\"created\":%lld,\"expires\":%lld,\"boot\":\"%s\"}",
                 (long long)now, (long long)(now + DAY_MS), boot);
    else
        snprintf(p.body, sizeof p.body, "{\"state\":\"pending\",\"created\":%lld,\"expires\":%lld}",
                 (long long)now, (long long)(now + DAY_MS));
    assert_int_equal(store_write(f->s, put_tx, &p, &err), HR_OK);
}

static void test_replay(void **state)
{
    struct fx *f = *state;
    assert_int_equal(post(f, "k-replay"), 202);
    assert_int_equal(post(f, "k-replay"), 202);
    assert_int_equal(handled, 1); /* the second answer was the stored one */
}

static void test_orphan_taken_over_on_exclusive_store(void **state)
{
    struct fx *f = *state;
    assert_true(store_is_exclusive(f->s));
    leave_pending(f, "k-orphan", "00000000deadbeef"); /* a process that died */
    assert_int_equal(post(f, "k-orphan"), 202);
    assert_int_equal(handled, 1);
    assert_int_equal(post(f, "k-orphan"), 202); /* and the answer was saved */
    assert_int_equal(handled, 1);
}

static void test_own_pending_is_busy(void **state)
{
    struct fx *f = *state;
    pthread_once(&boot_once, boot_init);
    leave_pending(f, "k-mine", boot_id); /* a request of this process still running */
    assert_int_equal(post(f, "k-mine"), 409);
    leave_pending(f, "k-old", NULL); /* no process named: only age makes it stale */
    assert_int_equal(post(f, "k-old"), 409);
    assert_int_equal(handled, 0);
}

static void test_orphan_waits_on_shared_store(void **state)
{
    struct fx *f = *state;
    f->shared_ops = *f->s->ops;
    f->shared_ops.exclusive = false;
    f->s->ops = &f->shared_ops; /* as on PostgreSQL: the other node may be alive */
    leave_pending(f, "k-shared", "00000000deadbeef");
    assert_int_equal(post(f, "k-shared"), 409);
    assert_int_equal(handled, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphan_taken_over_on_exclusive_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_pending_is_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphan_waits_on_shared_store, setup, teardown),
    };
    log_set_level(LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests_name("api/idempotency", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
