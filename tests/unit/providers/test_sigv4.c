/* test_sigv4.c: the SigV4 signer against AWS's published test suite (the cases under
 * tests/unit/providers/sigv4/, see its README): for each case the request is parsed from
 * request.txt, the x-amz-date (and x-amz-security-token, x-amz-content-sha256 when the
 * case asks) headers are added as the suite specifies, and the canonical request, the
 * string to sign and the signature must equal the suite's files byte for byte. Plus the
 * date format and the refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/providers/sigv4.h"
#include "../../../src/util/buf.h"
#include "../../../src/util/crypto.h"
#include "../../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* vectors_dir: tests/unit/providers/sigv4, beside this file (HERALD_SIGV4_VECTORS wins). */
static void vectors_dir(char *out, size_t cap)
{
    const char *env = getenv("HERALD_SIGV4_VECTORS");
    const char *slash = strrchr(__FILE__, '/');
    if (env)
        snprintf(out, cap, "%s", env);
    else if (slash)
        snprintf(out, cap, "%.*s/sigv4", (int)(slash - __FILE__), __FILE__);
    else
        snprintf(out, cap, "sigv4");
}

/* slurp: the whole file, NUL-terminated (malloc'd); fails the test when absent. */
static char *slurp(const char *cas, const char *file)
{
    char dir[512], path[1024];
    FILE *f;
    char *p;
    long n;
    vectors_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s/%s", dir, cas, file);
    f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)n + 1);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    return p;
}

/* run_case: sign the suite's case `cas` and compare with its expected files. */
static void run_case(const char *cas)
{
    char *ctx_text = slurp(cas, "context.json"), *reqtxt = slurp(cas, "request.txt");
    char *want_creq = slurp(cas, "header-canonical-request.txt");
    char *want_sts = slurp(cas, "header-string-to-sign.txt");
    char *want_sig = slurp(cas, "header-signature.txt");
    cJSON *ctx = cJSON_Parse(ctx_text);
    const cJSON *creds = json_obj(ctx, "credentials");
    const char *ts = json_str(ctx, "timestamp"); /* 2015-08-30T12:36:00Z */
    struct sigv4_cred cred = {json_str(creds, "access_key_id"),
                              json_str(creds, "secret_access_key"), json_str(ctx, "region"),
                              json_str(ctx, "service")};
    struct sigv4_header hs[SIGV4_MAX_HEADERS];
    struct sigv4_req req = {0};
    struct buf creq, sts, authz;
    char amz_date[17], body_hash[65], want_authz[512];
    char *line, *save = NULL, *body, *target, *sp;
    uint8_t h[32];
    size_t n = 0;

    assert_non_null(ts);
    snprintf(amz_date, sizeof amz_date, "%.4s%.2s%.2sT%.2s%.2s%.2sZ", ts, ts + 5, ts + 8,
             ts + 11, ts + 14, ts + 17);
    /* the body follows the first empty line */
    body = strstr(reqtxt, "\n\n");
    if (body) {
        body[1] = '\0';
        body += 2;
    } else {
        body = "";
    }
    line = strtok_r(reqtxt, "\n", &save);
    assert_non_null(line);
    req.method = line;
    sp = strchr(line, ' ');
    assert_non_null(sp);
    *sp = '\0';
    target = sp + 1;
    sp = strrchr(target, ' '); /* " HTTP/1.1" */
    assert_non_null(sp);
    *sp = '\0';
    req.path = target;
    sp = strchr(target, '?');
    if (sp) {
        *sp = '\0';
        req.query = sp + 1;
    }
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *colon = strchr(line, ':');
        assert_non_null(colon);
        *colon = '\0';
        hs[n++] = (struct sigv4_header){line, colon + 1};
    }
    hs[n++] = (struct sigv4_header){"X-Amz-Date", amz_date};
    if (json_str(creds, "token"))
        hs[n++] = (struct sigv4_header){"X-Amz-Security-Token", json_str(creds, "token")};
    crypto_sha256(body, strlen(body), h);
    crypto_hex(h, 32, body_hash);
    if (json_bool(ctx, "sign_body", false))
        hs[n++] = (struct sigv4_header){"x-amz-content-sha256", body_hash};
    req.headers = hs;
    req.nheaders = n;
    req.payload = str_c(body);

    buf_init(&creq, 1 << 16);
    buf_init(&sts, 1 << 16);
    buf_init(&authz, 1 << 16);
    assert_int_equal(sigv4_canonical_request(&req, &creq), HR_OK);
    assert_string_equal(buf_cstr(&creq), want_creq);
    assert_int_equal(sigv4_string_to_sign(amz_date, &cred, buf_str(&creq), &sts), HR_OK);
    assert_string_equal(buf_cstr(&sts), want_sts);
    assert_int_equal(sigv4_authorization(&req, &cred, amz_date, &authz), HR_OK);
    {
        /* SignedHeaders is the 7th line of the canonical request */
        const char *p = want_creq;
        const char *last_nl = strrchr(want_creq, '\n');
        const char *prev = last_nl;
        while (prev > p && prev[-1] != '\n')
            prev--;
        snprintf(want_authz, sizeof want_authz,
                 "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                 "aws4_request, SignedHeaders=%.*s, Signature=%s",
                 (int)(last_nl - prev), prev, want_sig);
    }
    assert_string_equal(buf_cstr(&authz), want_authz);

    buf_cleanup(&creq);
    buf_cleanup(&sts);
    buf_cleanup(&authz);
    cJSON_Delete(ctx);
    free(ctx_text);
    free(reqtxt);
    free(want_creq);
    free(want_sts);
    free(want_sig);
}

static void test_get_vanilla(void **state) { (void)state; run_case("get-vanilla"); }
static void test_post_vanilla(void **state) { (void)state; run_case("post-vanilla"); }
static void test_query_order(void **state)
{
    (void)state;
    run_case("get-vanilla-query-order-key-case");
}
static void test_session_token(void **state)
{
    (void)state;
    run_case("get-vanilla-with-session-token");
}
static void test_header_value_trim(void **state)
{
    (void)state;
    run_case("get-header-value-trim");
}
static void test_header_key_duplicate(void **state)
{
    (void)state;
    run_case("get-header-key-duplicate");
}
static void test_header_key_sort(void **state)
{
    (void)state;
    run_case("post-header-key-sort");
}
static void test_form_body(void **state)
{
    (void)state;
    run_case("post-x-www-form-urlencoded");
}

/* the date AWS signs: ISO 8601 basic, UTC */
static void test_amz_date(void **state)
{
    char d[17];
    (void)state;
    sigv4_amz_date(1440938160000, d); /* 2015-08-30T12:36:00Z */
    assert_string_equal(d, "20150830T123600Z");
    sigv4_amz_date(0, d);
    assert_string_equal(d, "19700101T000000Z");
}

/* a header without a name, or more headers than the cap, is refused, not signed */
static void test_refusals(void **state)
{
    struct sigv4_header hs[SIGV4_MAX_HEADERS + 1];
    struct sigv4_req req = {.method = "GET", .path = "/", .headers = hs};
    struct buf out;
    (void)state;
    buf_init(&out, 1 << 16);
    for (size_t i = 0; i <= SIGV4_MAX_HEADERS; i++)
        hs[i] = (struct sigv4_header){"x-h", "v"};
    req.nheaders = SIGV4_MAX_HEADERS + 1;
    assert_int_equal(sigv4_canonical_request(&req, &out), HR_INVAL);
    hs[0].name = "";
    req.nheaders = 1;
    assert_int_equal(sigv4_canonical_request(&req, &out), HR_INVAL);
    buf_cleanup(&out);
}

/* the path and the query are encoded the AWS way (unreserved kept, the rest %XX) */
static void test_encoding(void **state)
{
    struct sigv4_header hs[1] = {{"Host", "h"}};
    struct sigv4_req req = {.method = "GET", .path = "/a b/%7E", .query = "b=2&a=x y&a=%41",
                            .headers = hs, .nheaders = 1};
    struct buf out;
    (void)state;
    buf_init(&out, 1 << 16);
    assert_int_equal(sigv4_canonical_request(&req, &out), HR_OK);
    assert_string_equal(buf_cstr(&out),
                        "GET\n/a%20b/~\na=A&a=x%20y&b=2\nhost:h\n\nhost\n"
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    buf_cleanup(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_vanilla),
        cmocka_unit_test(test_post_vanilla),
        cmocka_unit_test(test_query_order),
        cmocka_unit_test(test_session_token),
        cmocka_unit_test(test_header_value_trim),
        cmocka_unit_test(test_header_key_duplicate),
        cmocka_unit_test(test_header_key_sort),
        cmocka_unit_test(test_form_body),
        cmocka_unit_test(test_amz_date),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
