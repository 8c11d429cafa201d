/* test_router.c: route matching (exact, params with percent-decoding, trailing "*",
 * trailing slash, HEAD via GET, 404 vs 405 masks, bad escapes) and method names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/http/http.h"

#include <string.h>

static void h_noop(void *ctx, struct http_req *req, struct http_resp *resp) {}

static const struct http_route routes[] = {
    {HTTP_GET, "/", h_noop, AUTH_PUBLIC, "root", 0, 0},
    {HTTP_GET, "/healthz", h_noop, AUTH_PUBLIC, "health", 0, 0},
    {HTTP_GET, "/profiles/:id", h_noop, AUTH_ADMIN, "profiles.get", 0, 0},
    {HTTP_POST, "/profiles/:id", h_noop, AUTH_ADMIN, "profiles.replace", 0, 0},
    {HTTP_DELETE, "/profiles/:id", h_noop, AUTH_ADMIN, "profiles.delete", 0, 0},
    {HTTP_GET, "/profiles/:id/lists", h_noop, AUTH_ADMIN, "profiles.lists", 0, 0},
    {HTTP_PUT, "/lists/:list/subscriptions/:user", h_noop, AUTH_ADMIN, "lists.sub", 0, 0},
    {HTTP_GET, "/files/*", h_noop, AUTH_PUBLIC, "files", 0, 0},
    {HTTP_POST, "/send", h_noop, AUTH_ADMIN, "send", 0, 0},
    {0},
};

struct m {
    const struct http_route *r;
    struct str p[HTTP_MAX_PARAMS];
    int np, allowed;
};

static struct m match(struct arena *a, int method, const char *path)
{
    struct m m;
    memset(&m, 0, sizeof m);
    m.r = http_route_match(routes, method, str_c(path), a, m.p, &m.np, &m.allowed);
    return m;
}

static void assert_param(struct str s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
    assert_int_equal(s.p[s.len], '\0'); /* decoded params are NUL-terminated */
}

static void test_exact(void **state)
{
    struct arena *a = arena_new(1024);
    struct m m = match(a, HTTP_GET, "/healthz");
    assert_non_null(m.r);
    assert_string_equal(m.r->name, "health");
    assert_int_equal(m.np, 0);
    m = match(a, HTTP_GET, "/");
    assert_non_null(m.r);
    assert_string_equal(m.r->name, "root");
    m = match(a, HTTP_GET, "/healthzz");
    assert_null(m.r);
    assert_int_equal(m.allowed, 0);
    m = match(a, HTTP_GET, "/health");
    assert_null(m.r);
    m = match(a, HTTP_GET, "/healthz?x=1"); /* a query string is ignored */
    assert_non_null(m.r);
    assert_string_equal(m.r->name, "health");
    arena_free(a);
}

static void test_params_decoded(void **state)
{
    struct arena *a = arena_new(1024);
    struct m m = match(a, HTTP_GET, "/profiles/a%40b.com");
    assert_non_null(m.r);
    assert_string_equal(m.r->name, "profiles.get");
    assert_int_equal(m.np, 1);
    assert_param(m.p[0], "a@b.com");

    m = match(a, HTTP_GET, "/profiles/id%23with%25hash"); /* '#' and '%' escaped */
    assert_non_null(m.r);
    assert_param(m.p[0], "id#with%hash");

    m = match(a, HTTP_GET, "/profiles/a%2Fb/lists"); /* an escaped '/' stays in the segment */
    assert_non_null(m.r);
    assert_string_equal(m.r->name, "profiles.lists");
    assert_param(m.p[0], "a/b");

    m = match(a, HTTP_GET, "/profiles/a+b"); /* '+' is not a space in a path */
    assert_param(m.p[0], "a+b");

    m = match(a, HTTP_PUT, "/lists/l%20one/subscriptions/u%C3%A9");
    assert_non_null(m.r);
    assert_int_equal(m.np, 2);
    assert_param(m.p[0], "l one");
    assert_param(m.p[1], "u\xC3\xA9");

    m = match(a, HTTP_GET, "/profiles//lists"); /* ":id" needs a non-empty segment */
    assert_null(m.r);
    assert_int_equal(m.allowed, 0);
    m = match(a, HTTP_GET, "/profiles/");  /* trailing slash stripped: "/profiles" */
    assert_null(m.r);
    assert_int_equal(m.allowed, 0);
    arena_free(a);
}

static void test_star(void **state)
{
    struct arena *a = arena_new(1024);
    struct m m = match(a, HTTP_GET, "/files/a/b%20c/d.txt");
    assert_non_null(m.r);
    assert_string_equal(m.r->name, "files");
    assert_int_equal(m.np, 1);
    assert_param(m.p[0], "a/b c/d.txt");
    m = match(a, HTTP_GET, "/files/x");
    assert_non_null(m.r);
    assert_param(m.p[0], "x");
    m = match(a, HTTP_GET, "/files"); /* "*" needs something to match */
    assert_null(m.r);
    m = match(a, HTTP_GET, "/files/");
    assert_null(m.r);
    arena_free(a);
}

static void test_404_vs_405(void **state)
{
    struct arena *a = arena_new(1024);
    struct m m = match(a, HTTP_PATCH, "/profiles/x");
    assert_null(m.r);
    assert_int_equal(m.allowed, HTTP_GET | HTTP_POST | HTTP_DELETE);
    m = match(a, HTTP_GET, "/send");
    assert_null(m.r);
    assert_int_equal(m.allowed, HTTP_POST);
    m = match(a, HTTP_OPTIONS, "/lists/a/subscriptions/b");
    assert_null(m.r);
    assert_int_equal(m.allowed, HTTP_PUT);
    m = match(a, HTTP_GET, "/nope");
    assert_null(m.r);
    assert_int_equal(m.allowed, 0);
    m = match(a, HTTP_GET, "/profiles/x/y"); /* one segment too many */
    assert_null(m.r);
    assert_int_equal(m.allowed, 0);
    m = match(a, HTTP_DELETE, "/profiles/x"); /* a later route with the method wins */
    assert_non_null(m.r);
    assert_string_equal(m.r->name, "profiles.delete");
    arena_free(a);
}

static void test_head_via_get(void **state)
{
    struct arena *a = arena_new(1024);
    struct m m = match(a, HTTP_HEAD, "/profiles/p1");
    assert_non_null(m.r);
    assert_string_equal(m.r->name, "profiles.get");
    assert_param(m.p[0], "p1");
    m = match(a, HTTP_HEAD, "/send");
    assert_null(m.r);
    assert_int_equal(m.allowed, HTTP_POST);
    arena_free(a);
}

static void test_trailing_slash(void **state)
{
    struct arena *a = arena_new(1024);
    struct m m = match(a, HTTP_GET, "/healthz/");
    assert_non_null(m.r);
    assert_string_equal(m.r->name, "health");
    m = match(a, HTTP_GET, "/profiles/p1/");
    assert_non_null(m.r);
    assert_string_equal(m.r->name, "profiles.get");
    assert_param(m.p[0], "p1");
    m = match(a, HTTP_GET, "/healthz//"); /* only one slash is forgiven */
    assert_null(m.r);
    arena_free(a);
}

static void test_bad_escape(void **state)
{
    struct arena *a = arena_new(1024);
    /* ... and captures that decode to bytes that are not UTF-8, escaped or raw */
    const char *bad[] = {"/profiles/a%zz", "/profiles/a%4", "/profiles/%", "/profiles/a%00b",
                         "/files/ok/%g1", "/profiles/%C3%28", "/profiles/%FF", "/profiles/\xc3(",
                         "/files/ok/%E2%82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct m m = match(a, bad[i][1] == 'f' ? HTTP_GET : HTTP_DELETE, bad[i]);
        assert_null(m.r);
        assert_int_equal(m.allowed, -1);
    }
    struct m ok = match(a, HTTP_DELETE, "/profiles/j%C3%BCrgen");
    assert_non_null(ok.r);
    assert_param(ok.p[0], "j\xc3\xbcrgen");
    /* a bad escape on a path served only under other methods is still a 405 */
    struct m m = match(a, HTTP_PATCH, "/profiles/a%zz");
    assert_null(m.r);
    assert_int_equal(m.allowed, HTTP_GET | HTTP_POST | HTTP_DELETE);
    arena_free(a);
}

static void test_methods(void **state)
{
    assert_int_equal(http_method_parse("GET"), HTTP_GET);
    assert_int_equal(http_method_parse("HEAD"), HTTP_HEAD);
    assert_int_equal(http_method_parse("POST"), HTTP_POST);
    assert_int_equal(http_method_parse("PUT"), HTTP_PUT);
    assert_int_equal(http_method_parse("PATCH"), HTTP_PATCH);
    assert_int_equal(http_method_parse("DELETE"), HTTP_DELETE);
    assert_int_equal(http_method_parse("OPTIONS"), HTTP_OPTIONS);
    assert_int_equal(http_method_parse("get"), 0);
    assert_int_equal(http_method_parse("BREW"), 0);
    assert_int_equal(http_method_parse(NULL), 0);
    assert_string_equal(http_method_name(HTTP_PATCH), "PATCH");
    assert_string_equal(http_method_name(HTTP_OPTIONS), "OPTIONS");
    assert_string_equal(http_method_name(12345), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact),          cmocka_unit_test(test_params_decoded),
        cmocka_unit_test(test_star),           cmocka_unit_test(test_404_vs_405),
        cmocka_unit_test(test_head_via_get),   cmocka_unit_test(test_trailing_slash),
        cmocka_unit_test(test_bad_escape),     cmocka_unit_test(test_methods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
