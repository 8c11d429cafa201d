/* test_refs.c: accessor resolution in step definitions: "refs." strings, {"$ref"},
 * "${...}" interpolation (text and typed), nesting, missing paths, step refs, the
 * definition/copy/output limits, refs_lookup and save-time validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/engine/refs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CTX_JSON =
    "{\"data\": {\"userId\": \"u1\", \"email\": \"a@x.com\", \"name\": \"Ann\", \"count\": 3,"
    " \"a\": 1, \"properties\": {\"plan\": \"pro\"},"
    " \"items\": [{\"name\": \"i0\"}, {\"name\": \"i1\"}],"
    " \"x-key\": \"hy\", \"inj\": \"${data.email}\", \"injref\": \"refs.data.email\","
    " \"obj\": {\"k\": [1, 2]}, \"nul\": null, \"f\": 0.5, \"key with space\": \"sp\"},"
    " \"profile\": {\"email\": \"p@x.com\"},"
    " \"refs\": {\"fetch1\": {\"body\": {\"x\": 42}}, \"data\": {\"shadowed\": true}},"
    " \"recipient\": \"u1\"}";

static cJSON *ctx;

static int setup(void **state)
{
    ctx = cJSON_Parse(CTX_JSON);
    return ctx ? 0 : -1;
}

static int teardown(void **state)
{
    cJSON_Delete(ctx);
    return 0;
}

/* expect: resolving def_json gives want_json (compared as JSON). */
static void expect(const char *def_json, const char *want_json)
{
    cJSON *def = cJSON_Parse(def_json), *want = cJSON_Parse(want_json), *out = NULL;
    struct herr err = {0};
    if (!def || !want)
        fail_msg("bad test JSON: %s / %s", def_json, want_json);
    int rc = refs_resolve(def, ctx, &out, &err);
    if (rc != HR_OK)
        fail_msg("%s: rc %d: %s", def_json, rc, err.msg);
    if (!cJSON_Compare(out, want, 1)) {
        char *got = cJSON_PrintUnformatted(out);
        fail_msg("%s: want %s, got %s", def_json, want_json, got);
    }
    cJSON_Delete(def);
    cJSON_Delete(want);
    cJSON_Delete(out);
}

/* expect_fail: resolving (against c) fails with rc and the message contains needle. */
static void expect_fail_ctx(const cJSON *def, const cJSON *c, int rc, const char *needle)
{
    cJSON *out = (cJSON *)1;
    struct herr err = {0};
    int got = refs_resolve(def, c, &out, &err);
    if (got != rc || out != NULL || !strstr(err.msg, needle))
        fail_msg("want rc %d with \"%s\", got rc %d \"%s\"", rc, needle, got, err.msg);
}

static void expect_fail(const char *def_json, int rc, const char *needle)
{
    cJSON *def = cJSON_Parse(def_json);
    if (!def)
        fail_msg("bad test JSON: %s", def_json);
    expect_fail_ctx(def, ctx, rc, needle);
    cJSON_Delete(def);
}

static void test_string_accessor(void **state)
{
    expect("\"refs.data.userId\"", "\"u1\"");
    expect("\"refs.profile.email\"", "\"p@x.com\"");
    expect("\"refs.recipient\"", "\"u1\"");
    expect("\"refs.data.count\"", "3");
    expect("\"refs.data.properties\"", "{\"plan\": \"pro\"}");
    expect("\"refs.data.items[1].name\"", "\"i1\"");
    expect("\"refs.data.items.0.name\"", "\"i0\"");     /* lenient: lodash-style index */
    expect("\"refs.data.x-key\"", "\"hy\"");            /* lenient: hyphenated name */
    expect("\"refs.data['key with space']\"", "\"sp\"");
    expect("\"refs.data.nul\"", "null");
    /* a root wins over a step ref of the same name */
    expect("\"refs.data.shadowed\"", "null");
    /* step refs */
    expect("\"refs.fetch1.body.x\"", "42");
    expect("\"refs.fetch1\"", "{\"body\": {\"x\": 42}}");
    /* missing paths are null */
    expect("\"refs.data.missing\"", "null");
    expect("\"refs.data.missing.deeper[3]\"", "null");
    expect("\"refs.nostep.x\"", "null");
    expect("\"refs.data.items[7]\"", "null");
    /* only a leading "refs." makes an accessor */
    expect("\"x-refs.data.userId\"", "\"x-refs.data.userId\"");
    expect("\"refs\"", "\"refs\"");
    expect("\"Refs.data.userId\"", "\"Refs.data.userId\"");
}

static void test_ref_object(void **state)
{
    expect("{\"$ref\": \"data.email\"}", "\"a@x.com\"");
    expect("{\"$ref\": \"data.properties.plan\"}", "\"pro\"");
    expect("{\"$ref\": \"profile.email\"}", "\"p@x.com\"");
    expect("{\"$ref\": \"refs.data.userId\"}", "\"u1\"");
    expect("{\"$ref\": \"fetch1.body\"}", "{\"x\": 42}"); /* a step ref as root */
    expect("{\"$ref\": \"data.obj\"}", "{\"k\": [1, 2]}");
    expect("{\"$ref\": \"data.missing\"}", "null");
    expect("{\"$ref\": \"nothing\"}", "null");
    /* not exactly {"$ref": "<string>"}: an ordinary object */
    expect("{\"$ref\": \"data.email\", \"x\": 1}", "{\"$ref\": \"data.email\", \"x\": 1}");
    expect("{\"$ref\": 5}", "{\"$ref\": 5}");
    expect("{\"$ref\": {\"$ref\": \"data.a\"}}", "{\"$ref\": 1}");
}

static void test_nested(void **state)
{
    expect("{\"recipient\": \"refs.data.userId\","
           " \"profile\": {\"email\": {\"$ref\": \"data.email\"}},"
           " \"data\": {\"greeting\": \"Hi ${data.name}!\", \"n\": \"${data.count}\","
           "   \"list\": [\"refs.data.a\", {\"$ref\": \"data.properties.plan\"}, \"plain\", 5,"
           "             true, null, [\"${data.a === 1}\", {\"deep\": \"refs.data.items[0]\"}]],"
           "   \"empty\": {}, \"none\": []}}",
           "{\"recipient\": \"u1\", \"profile\": {\"email\": \"a@x.com\"},"
           " \"data\": {\"greeting\": \"Hi Ann!\", \"n\": 3,"
           "   \"list\": [1, \"pro\", \"plain\", 5, true, null,"
           "             [true, {\"deep\": {\"name\": \"i0\"}}]],"
           "   \"empty\": {}, \"none\": []}}");
    /* scalars copy through */
    expect("5", "5");
    expect("1.25", "1.25");
    expect("true", "true");
    expect("null", "null");
    expect("\"plain text\"", "\"plain text\"");
    expect("\"\"", "\"\"");
    /* key order and duplicate keys survive */
    expect("{\"b\": 1, \"a\": \"refs.data.a\"}", "{\"b\": 1, \"a\": 1}");
}

static void test_interpolation(void **state)
{
    expect("\"Hi ${data.name}, you have ${data.count} items\"",
           "\"Hi Ann, you have 3 items\"");
    expect("\"Bearer ${refs.data.email}\"", "\"Bearer a@x.com\"");
    expect("\"${data.name}${data.count}\"", "\"Ann3\"");     /* two: text */
    expect("\" ${data.count}\"", "\" 3\"");                 /* not alone: text */
    expect("\"f=${data.f} b=${data.a === 1} n=${data.nul}|${data.missing}|\"",
           "\"f=0.5 b=true n=||\"");
    expect("\"v=${data.obj}\"", "\"v={\\\"k\\\":[1,2]}\"");
    expect("\"${data.name.length > 2 && data.properties.plan}\"", "\"pro\"");
    expect("\"${'}'}\"", "\"}\"");                          /* quoted brace */
    expect("\"${\\\"a}b\\\"}x\"", "\"a}bx\"");
    expect("\"cost: $5 {x}\"", "\"cost: $5 {x}\"");           /* no "${": literal */
    expect("\"$\"", "\"$\"");
    expect("\"${step1 || fetch1.body.x}\"", "42");
    /* exactly one ${...}: the value itself, typed */
    expect("\"${data.count}\"", "3");
    expect("\"${data.a === 1}\"", "true");
    expect("\"${data.a !== 1}\"", "false");
    expect("\"${data.name}\"", "\"Ann\"");
    expect("\"${data.obj}\"", "{\"k\": [1, 2]}");
    expect("\"${data.items}\"", "[{\"name\": \"i0\"}, {\"name\": \"i1\"}]");
    expect("\"${data.missing}\"", "null");
    expect("\"${data.nul}\"", "null");
    expect("\"${NaN}\"", "null");
    expect("\"${-data.count}\"", "-3");
    expect("\"${ data.count }\"", "3");
    /* values from the context are never resolved again */
    expect("\"${data.inj}\"", "\"${data.email}\"");
    expect("\"x ${data.inj}\"", "\"x ${data.email}\"");
    expect("\"refs.data.inj\"", "\"${data.email}\"");
    expect("{\"$ref\": \"data.injref\"}", "\"refs.data.email\"");
}

static void test_errors(void **state)
{
    expect_fail("\"${data.a ===}\"", HR_INVAL, "${...} at offset 0: expected an expression");
    expect_fail("\"x ${data.a ===}\"", HR_INVAL, "${...} at offset 2");
    expect_fail("\"abc ${data.a\"", HR_INVAL, "unterminated ${ at offset 4");
    expect_fail("\"${'}\"", HR_INVAL, "unterminated ${");
    expect_fail("\"${}\"", HR_INVAL, "expected an expression");
    expect_fail("\"refs.\"", HR_INVAL, "bad path");
    expect_fail("\"refs.data..x\"", HR_INVAL, "bad path \"refs.data..x\"");
    expect_fail("\"refs.data.x y\"", HR_INVAL, "unexpected character at offset 11");
    expect_fail("{\"$ref\": \"data[\"}", HR_INVAL, "bad path");
    expect_fail("{\"$ref\": \"\"}", HR_INVAL, "bad path");
    /* the message says where in the definition */
    expect_fail("{\"webhook\": {\"url\": \"${(}\"}}", HR_INVAL, "webhook.url: ${...}");
    expect_fail("{\"list\": [1, \"refs.a..b\"]}", HR_INVAL, "list[1]: bad path");
    expect_fail("{\"p\": {\"$ref\": \"a[\"}}", HR_INVAL, "p.$ref: bad path");
}

static cJSON *nest_arrays(int depth, cJSON *leaf)
{
    cJSON *v = leaf;
    for (int i = 0; i < depth; i++) {
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, v);
        v = a;
    }
    return v;
}

static void test_limits(void **state)
{
    /* definition nesting */
    cJSON *def = nest_arrays(REFS_MAX_DEPTH, cJSON_CreateString("refs.data.a")), *out = NULL;
    struct herr err = {0};
    assert_int_equal(refs_resolve(def, ctx, &out, &err), HR_OK);
    cJSON_Delete(out);
    cJSON_Delete(def);
    def = nest_arrays(REFS_MAX_DEPTH + 1, cJSON_CreateString("refs.data.a"));
    expect_fail_ctx(def, ctx, HR_TOOBIG, "definition nested deeper than 32");
    cJSON_Delete(def);
    def = nest_arrays(5000, cJSON_CreateNull());
    expect_fail_ctx(def, ctx, HR_TOOBIG, "nested deeper");
    cJSON_Delete(def);

    /* copies of deep context values */
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToObject(c, "data", nest_arrays(REFS_MAX_COPY_DEPTH + 5, cJSON_CreateNull()));
    def = cJSON_CreateString("refs.data");
    expect_fail_ctx(def, c, HR_TOOBIG, "context value nested deeper than 64");
    cJSON_Delete(def);
    def = cJSON_CreateString("${data}");
    expect_fail_ctx(def, c, HR_TOOBIG, "context value nested deeper than 64");
    cJSON_Delete(def);
    cJSON_Delete(c);

    /* output budget */
    size_t big_n = 300 * 1024;
    char *big = malloc(big_n + 1);
    memset(big, 'x', big_n);
    big[big_n] = '\0';
    c = cJSON_CreateObject();
    cJSON *d = cJSON_AddObjectToObject(c, "data");
    cJSON_AddStringToObject(d, "big", big);
    free(big);
    def = cJSON_Parse("[\"refs.data.big\", \"refs.data.big\", \"refs.data.big\"]");
    assert_int_equal(refs_resolve(def, c, &out, &err), HR_OK);
    cJSON_Delete(out);
    cJSON_Delete(def);
    def = cJSON_Parse("[\"refs.data.big\", {\"$ref\": \"data.big\"}, \"${data.big}\","
                      " \"refs.data.big\"]");
    expect_fail_ctx(def, c, HR_TOOBIG, "[3]: resolved value larger than");
    cJSON_Delete(def);
    /* one interpolated string */
    def = cJSON_CreateString("${data.big}");
    assert_int_equal(refs_resolve(def, c, &out, &err), HR_OK);
    assert_int_equal(strlen(out->valuestring), big_n);
    cJSON_Delete(out);
    cJSON_Delete(def);
    def = cJSON_CreateString("x${data.big}");
    expect_fail_ctx(def, c, HR_TOOBIG, "interpolated text longer than");
    cJSON_Delete(def);
    cJSON_Delete(c);
}

static void test_lookup(void **state)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(ctx, "data");
    const char *p;
    p = "data.email";
    assert_ptr_equal(refs_lookup(ctx, p, strlen(p)),
                     cJSON_GetObjectItemCaseSensitive(data, "email"));
    p = "refs.data.email";
    assert_ptr_equal(refs_lookup(ctx, p, strlen(p)),
                     cJSON_GetObjectItemCaseSensitive(data, "email"));
    p = "data.items[1][\"name\"]";
    assert_string_equal(refs_lookup(ctx, p, strlen(p))->valuestring, "i1");
    p = "data.items.1.name";
    assert_string_equal(refs_lookup(ctx, p, strlen(p))->valuestring, "i1");
    p = "data[\"x-key\"]";
    assert_string_equal(refs_lookup(ctx, p, strlen(p))->valuestring, "hy");
    p = "fetch1.body.x";
    assert_int_equal(refs_lookup(ctx, p, strlen(p))->valueint, 42);
    p = "refs.fetch1.body.x";
    assert_int_equal(refs_lookup(ctx, p, strlen(p))->valueint, 42);
    p = "data.emailXYZ"; /* the length bounds the path */
    assert_string_equal(refs_lookup(ctx, p, 10)->valuestring, "a@x.com");
    p = "data.missing";
    assert_null(refs_lookup(ctx, p, strlen(p)));
    p = "data.items.length"; /* computed values exist in expressions only */
    assert_null(refs_lookup(ctx, p, strlen(p)));
    p = "data..x";
    assert_null(refs_lookup(ctx, p, strlen(p)));
    p = "data[";
    assert_null(refs_lookup(ctx, p, strlen(p)));
    assert_null(refs_lookup(ctx, "", 0));
    assert_null(refs_lookup(ctx, NULL, 0));
    p = "data.email";
    assert_null(refs_lookup(NULL, p, strlen(p)));
    char *long_path = malloc(2000);
    memset(long_path, 'a', 1999);
    long_path[1999] = '\0';
    assert_null(refs_lookup(ctx, long_path, 1999));
    free(long_path);
}

static void test_null_inputs(void **state)
{
    cJSON *out = NULL, *def = cJSON_Parse("{\"to\": \"refs.data.userId\", \"t\": \"${data.a}\","
                                          " \"s\": \"n=${data.a}\"}");
    struct herr err = {0};
    assert_int_equal(refs_resolve(NULL, ctx, &out, &err), HR_OK);
    assert_true(cJSON_IsNull(out));
    cJSON_Delete(out);
    assert_int_equal(refs_resolve(def, NULL, &out, &err), HR_OK);
    char *s = cJSON_PrintUnformatted(out);
    assert_string_equal(s, "{\"to\":null,\"t\":null,\"s\":\"n=\"}");
    free(s);
    cJSON_Delete(out);
    cJSON_Delete(def);
}

static void test_validate(void **state)
{
    struct herr err = {0};
    cJSON *def = cJSON_Parse("{\"recipient\": \"refs.data.userId\", \"if\": 1,"
                             " \"profile\": {\"email\": {\"$ref\": \"data.email\"}},"
                             " \"url\": \"https://x/${data.id}?p=${data.a === 1}\"}");
    assert_int_equal(refs_validate(def, &err), HR_OK);
    cJSON_Delete(def);
    def = cJSON_Parse("{\"a\": [{\"b\": \"${data.id ==}\"}]}");
    assert_int_equal(refs_validate(def, &err), HR_INVAL);
    assert_non_null(strstr(err.msg, "a[0].b: ${...} at offset 0"));
    cJSON_Delete(def);
    def = cJSON_Parse("{\"a\": \"refs.data..x\"}");
    assert_int_equal(refs_validate(def, &err), HR_INVAL);
    cJSON_Delete(def);
    def = nest_arrays(REFS_MAX_DEPTH + 1, cJSON_CreateNull());
    assert_int_equal(refs_validate(def, &err), HR_TOOBIG);
    cJSON_Delete(def);
    assert_int_equal(refs_validate(NULL, &err), HR_OK);
}

/* test_fuzz: random accessor strings never crash or leak; failures carry a message. */
static void test_fuzz(void **state)
{
    static const char *heads[] = {"refs.", "${", "x ${", "", "refs.data"};
    static const char bytes[] = "\"'\\[]().?=<>&|-0123456789adtems{}$ \xc3\xa9";
    unsigned seed = 99;
    char s[64];
    for (int iter = 0; iter < 30000; iter++) {
        seed = seed * 1103515245u + 12345u;
        const char *h = heads[(seed >> 16) % 5];
        size_t n = strlen(h);
        memcpy(s, h, n);
        seed = seed * 1103515245u + 12345u;
        size_t k = (seed >> 16) % 20;
        for (size_t i = 0; i < k; i++) {
            seed = seed * 1103515245u + 12345u;
            s[n++] = bytes[(seed >> 16) % (sizeof bytes - 1)];
        }
        s[n] = '\0';
        cJSON *def = cJSON_CreateString(s), *out = NULL;
        struct herr err = {0};
        int rc = refs_resolve(def, ctx, &out, &err);
        if (rc == HR_OK) {
            assert_non_null(out);
        } else {
            assert_null(out);
            assert_true(err.msg[0] != '\0');
        }
        (void)refs_lookup(ctx, s, n);
        cJSON_Delete(out);
        cJSON_Delete(def);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_accessor),
        cmocka_unit_test(test_ref_object),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_interpolation),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_null_inputs),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
