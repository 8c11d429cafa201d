/* test_expr.c: the condition evaluator: paths and root rules, every operator and its
 * precedence, JavaScript equality and comparison corner cases, .length / .includes,
 * literals and escapes, syntax errors with offsets, limits, odd input, Number text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/expr/expr.h"
#include "../../../src/util/buf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CTX_JSON =
    "{\"data\": {\"plan\": \"pro\", \"count\": 3, \"zero\": 0, \"empty\": \"\", \"one\": \"1\","
    " \"items\": [{\"name\": \"a\"}, {\"name\": \"b\"}], \"tags\": [\"x\", \"y\", 1, null],"
    " \"key with space\": \"sp\", \"nested\": {\"deep\": {\"v\": true}}, \"nul\": null,"
    " \"flag\": false, \"arr1\": [5], \"emptyarr\": [], \"obj\": {},"
    " \"emoji\": \"h\xf0\x9f\x98\x80\","
    " \"numstr\": \" 42 \", \"hex\": \"0x10\", \"0\": \"zero-key\", \"len\": {\"length\": 9}},"
    " \"profile\": {\"email\": \"a@example.com\"},"
    " \"refs\": {\"step1\": {\"status\": \"DELIVERED\"}, \"fetch1\": {\"body\": {\"x\": 7}}}}";

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

static struct expr *compile_ok(const char *src)
{
    struct expr *e = NULL;
    struct herr err = {0};
    int rc = expr_compile(src, strlen(src), &e, &err);
    if (rc != HR_OK)
        fail_msg("compile \"%s\": %s", src, err.msg);
    return e;
}

/* eval_src: evaluate src against ctx; the value's borrowed text is copied to text. */
static struct expr_value eval_src(const char *src, char *text, size_t cap)
{
    struct expr *e = compile_ok(src);
    struct expr_value v;
    assert_int_equal(expr_eval(e, ctx, &v), HR_OK);
    if (text) {
        text[0] = '\0';
        if (v.type == EXPR_STRING)
            snprintf(text, cap, "%.*s", STR_FMT(v.s));
    }
    expr_unref(e);
    return v;
}

static void expect_bool(const char *src, bool want)
{
    struct expr_value v = eval_src(src, NULL, 0);
    if (v.type != EXPR_BOOL || v.b != want)
        fail_msg("\"%s\": want %s, got type %d b=%d", src, want ? "true" : "false", v.type, v.b);
}

static void expect_num(const char *src, double want)
{
    struct expr_value v = eval_src(src, NULL, 0);
    if (v.type != EXPR_NUMBER || v.num != want)
        fail_msg("\"%s\": want %g, got type %d num=%g", src, want, v.type, v.num);
}

static void expect_str(const char *src, const char *want)
{
    char text[256];
    struct expr_value v = eval_src(src, text, sizeof text);
    if (v.type != EXPR_STRING || strcmp(text, want) != 0)
        fail_msg("\"%s\": want \"%s\", got type %d \"%s\"", src, want, v.type, text);
}

static void expect_type(const char *src, enum expr_type want)
{
    struct expr_value v = eval_src(src, NULL, 0);
    if (v.type != want)
        fail_msg("\"%s\": want type %d, got %d", src, want, v.type);
}

/* expect_err: compile fails with rc and the message contains needle. */
static void expect_err_n(const char *src, size_t len, int rc, const char *needle)
{
    struct expr *e = NULL;
    struct herr err = {0};
    int got = expr_compile(src, len, &e, &err);
    if (got != rc || e != NULL || !strstr(err.msg, needle))
        fail_msg("\"%.60s\": want rc %d with \"%s\", got rc %d \"%s\"", src, rc, needle, got,
                 err.msg);
}

static void expect_err(const char *src, int rc, const char *needle)
{
    expect_err_n(src, strlen(src), rc, needle);
}

static void test_paths(void **state)
{
    expect_str("data.plan", "pro");
    expect_str("profile.email", "a@example.com");
    expect_str("refs.step1.status", "DELIVERED");
    expect_str("data.items[0].name", "a");
    expect_str("data.items[1]['name']", "b");
    expect_str("data[\"key with space\"]", "sp");
    expect_str("data['key with space']", "sp");
    expect_str("data [ 'plan' ]", "pro");
    expect_str("data[0]", "zero-key");          /* [0] on an object is key "0" */
    expect_str("data.items[\"1\"].name", "b");  /* "1" on an array is index 1 */
    expect_bool("data.nested.deep.v", true);
    expect_bool("data?.nested?.deep?.v", true);
    expect_str("data.items?.[0]?.name", "a");
    /* root rules: refs.<root> is the root itself, a bare step ref is refs.<step> */
    expect_str("refs.data.plan", "pro");
    expect_str("step1.status", "DELIVERED");
    expect_num("refs.fetch1.body.x", 7);
    expect_num("fetch1.body.x", 7);
    /* missing is undefined, never an error */
    expect_type("data.nope", EXPR_UNDEFINED);
    expect_type("data.nope.deeper.still", EXPR_UNDEFINED);
    expect_type("nope", EXPR_UNDEFINED);
    expect_type("nope.x[3]['y']", EXPR_UNDEFINED);
    expect_type("data.items[5].name", EXPR_UNDEFINED);
    expect_type("data.plan.x", EXPR_UNDEFINED);
    expect_type("data.count.x", EXPR_UNDEFINED);
    expect_type("data.nul.x", EXPR_UNDEFINED);
    expect_type("data.nul", EXPR_NULL);
    expect_type("data.items", EXPR_ARRAY);
    expect_type("data.obj", EXPR_OBJECT);
    expect_type("undefined.x", EXPR_UNDEFINED);
    /* a NULL context behaves as {} */
    struct expr *e = compile_ok("data.plan");
    struct expr_value v;
    assert_int_equal(expr_eval(e, NULL, &v), HR_OK);
    assert_int_equal(v.type, EXPR_UNDEFINED);
    expr_unref(e);
}

static void test_operators(void **state)
{
    expect_bool("data.plan === 'pro'", true);
    expect_bool("data.plan === 'free'", false);
    expect_bool("data.plan !== 'free'", true);
    expect_bool("data.plan !== 'pro'", false);
    expect_bool("data.count == 3", true);
    expect_bool("data.count != 3", false);
    expect_bool("data.count != 4", true);
    expect_bool("data.count < 4", true);
    expect_bool("data.count < 3", false);
    expect_bool("data.count <= 3", true);
    expect_bool("data.count <= 2", false);
    expect_bool("data.count > 2", true);
    expect_bool("data.count > 3", false);
    expect_bool("data.count >= 3", true);
    expect_bool("data.count >= 4", false);
    expect_bool("!data.flag", true);
    expect_bool("!data.plan", false);
    expect_bool("!!data.plan", true);
    expect_bool("!data.nope", true);
    expect_bool("data.count > 1 && data.plan === 'pro'", true);
    expect_bool("data.count > 5 || data.plan === 'pro'", true);
    expect_bool("data.count > 5 || data.plan === 'x'", false);
    expect_bool("(data.count > 5 || data.plan === 'pro') && refs.step1.status === 'DELIVERED'",
                true);
    /* && binds tighter than ||: true || (false && false) */
    expect_bool("true || false && false", true);
    expect_bool("(true || false) && false", false);
    /* ! binds tighter than ===: (!0) === 1 is false, !(0 === 1) would be true */
    expect_bool("!0 === 1", false);
    expect_bool("!(0 === 1)", true);
    /* relational binds tighter than equality: (1 < 2) === true */
    expect_bool("1 < 2 === true", true);
    /* equality binds tighter than &&: (1 === 1) && 2 yields 2 */
    expect_num("1 === 1 && 2", 2);
    /* && and || yield an operand, as JS does */
    expect_str("data.plan || 'x'", "pro");
    expect_str("data.nope || 'dflt'", "dflt");
    expect_str("data.count && data.plan", "pro");
    expect_num("data.zero && data.plan", 0);
    expect_num("data.empty || 0", 0);
    expect_str("data.empty && 'never'", "");
    expect_type("null || undefined", EXPR_UNDEFINED);
    expect_type("data.nul && data.plan", EXPR_NULL);
    /* unary minus */
    expect_num("-data.count", -3);
    expect_bool("-data.count === -3", true);
    expect_num("-'2'", -2);
    expect_num("- -1", 1);
    expect_num("-true", -1);
    expect_num("-data.arr1", -5);
    expect_bool("-1 < 0", true);
    struct expr_value v = eval_src("-data.nope", NULL, 0);
    assert_int_equal(v.type, EXPR_NUMBER);
    assert_true(isnan(v.num));
    /* left associativity: (3 > 2) > 1 is true > 1, i.e. 1 > 1 */
    expect_bool("3 > 2 > 1", false);
    expect_bool("1 < 2 < 3", true);
    /* blanks anywhere between tokens */
    expect_bool("  data . plan===\t'pro'\n", true);
}

static void test_equality(void **state)
{
    expect_bool("1 == '1'", true);
    expect_bool("1 === '1'", false);
    expect_bool("1 != '1'", false);
    expect_bool("1 !== '1'", true);
    expect_bool("null == undefined", true);
    expect_bool("null === undefined", false);
    expect_bool("undefined == null", true);
    expect_bool("NaN == NaN", false);
    expect_bool("NaN === NaN", false);
    expect_bool("NaN != NaN", true);
    expect_bool("NaN !== NaN", true);
    expect_bool("'abc' == NaN", false);
    expect_bool("0 == ''", true);
    expect_bool("0 == false", true);
    expect_bool("0 === false", false);
    expect_bool("'1' == true", true);
    expect_bool("'2' == true", false);
    expect_bool("null == 0", false);
    expect_bool("undefined == 0", false);
    expect_bool("null == false", false);
    expect_bool("undefined == ''", false);
    expect_bool("data.nope == null", true);
    expect_bool("data.nope === undefined", true);
    expect_bool("data.nope === null", false);
    expect_bool("data.nul === null", true);
    expect_bool("data.nul == undefined", true);
    expect_bool("data.one == 1", true);
    expect_bool("data.one === 1", false);
    expect_bool("data.numstr == 42", true);  /* " 42 " trims */
    expect_bool("data.hex == 16", true);     /* "0x10" */
    expect_bool("'1e3' == 1000", true);
    expect_bool("'Infinity' == Infinity", true);
    expect_bool("'inf' == Infinity", false); /* strtod spelling is not JS */
    expect_bool("'0x' == 0", false);
    expect_bool("'1_0' == 10", false);
    expect_bool("0 === -0", true);
    expect_bool("'a' == 'a'", true);
    expect_bool("'a' == 'A'", false);
    expect_bool("true == true", true);
    expect_bool("true === 1", false);
    /* arrays and objects: identity for ===, string form against primitives */
    expect_bool("data.items === data.items", true);
    expect_bool("data.items == data.tags", false);
    expect_bool("data.arr1 == 5", true);
    expect_bool("data.arr1 == '5'", true);
    expect_bool("data.arr1 === 5", false);
    expect_bool("data.emptyarr == ''", true);
    expect_bool("data.emptyarr == 0", true);
    expect_bool("data.emptyarr == false", true);
    expect_bool("data.tags == 'x,y,1,'", true);
    expect_bool("data.obj == '[object Object]'", true);
    expect_bool("data.obj == null", false);
}

static void test_relational(void **state)
{
    expect_bool("'a' < 'b'", true);
    expect_bool("'B' < 'a'", true);
    expect_bool("'abc' < 'abd'", true);
    expect_bool("'ab' < 'abc'", true);
    expect_bool("'abc' <= 'abc'", true);
    expect_bool("'10' < '9'", true);    /* both strings: text order */
    expect_bool("10 < '9'", false);     /* otherwise numbers */
    expect_bool("'abc' < 1", false);
    expect_bool("'abc' >= 1", false);   /* NaN: every comparison false */
    expect_bool("NaN <= NaN", false);
    expect_bool("null >= 0", true);     /* null -> 0 */
    expect_bool("null > 0", false);
    expect_bool("undefined >= 0", false);
    expect_bool("data.nope > 0", false);
    expect_bool("data.nope <= 0", false);
    expect_bool("true > false", true);
    expect_bool("data.arr1 > 4", true); /* [5] -> "5" -> 5 */
    expect_bool("data.obj > 0", false);
    expect_bool("Infinity > 1e308", true);
    expect_bool("-Infinity < -1e308", true);
    expect_bool("'\xc3\xa9' > 'z'", true); /* UTF-8 byte order for non-ASCII */
}

static void test_length_includes(void **state)
{
    expect_num("data.plan.length", 3);
    expect_num("data.items.length", 2);
    expect_num("data.emptyarr.length", 0);
    expect_num("data.empty.length", 0);
    expect_num("data.emoji.length", 3);    /* UTF-16 units: "h" + surrogate pair */
    expect_num("'\xc3\xa9t\xc3\xa9'.length", 3);
    expect_num("'abc'.length", 3);
    expect_num("(data.plan).length", 3);
    expect_num("data.len.length", 9);      /* an object's own "length" member */
    expect_type("data.count.length", EXPR_UNDEFINED);
    expect_type("data.nope.length", EXPR_UNDEFINED);
    expect_bool("data.items.length > 1 && data.plan.length === 3", true);

    expect_bool("profile.email.includes('@example.com')", true);
    expect_bool("profile.email.includes(\"zzz\")", false);
    expect_bool("profile.email.includes('')", true);
    expect_bool("!profile.email.includes('zzz')", true);
    expect_bool("'a1b'.includes(1)", true);  /* argument becomes a string */
    expect_bool("'anullb'.includes(null)", true);
    expect_bool("'x,y'.includes(data.tags)", false);
    expect_bool("data.tags.includes('x')", true);
    expect_bool("data.tags.includes('z')", false);
    expect_bool("data.tags.includes(1)", true);
    expect_bool("data.tags.includes('1')", false); /* SameValueZero: no coercion */
    expect_bool("data.tags.includes(null)", true);
    expect_bool("data.tags.includes(undefined)", false);
    expect_bool("data.emptyarr.includes(undefined)", false);
    expect_bool("data.tags.includes(-1)", false);
}

static void test_includes_misc(void **state)
{
    expect_bool("data.tags . includes ( 'y' )", true);
    expect_bool("data.plan.includes(data.plan)", true);
    expect_bool("data['tags'].includes('y') === true", true);
    expect_type("data.count.includes(3)", EXPR_UNDEFINED);
    expect_type("data.nope.includes('a')", EXPR_UNDEFINED);
    expect_type("data.obj.includes('a')", EXPR_UNDEFINED);
    expect_type("data.tags.includes('x').length", EXPR_UNDEFINED);
    expect_type("data.includes", EXPR_UNDEFINED); /* a plain member, not a call */
}

/* test_built_context: values JSON text cannot carry (NaN) and duplicate keys. */
static void test_built_context(void **state)
{
    cJSON *c = cJSON_Parse("{\"data\": {\"d\": 1, \"d\": 2, \"arr\": [1]}}");
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c, "data"),
                                                  "arr");
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(NAN));
    struct expr *e = compile_ok("data.d === 2"); /* the last duplicate wins, as JSON.parse */
    assert_true(expr_truthy(e, c));
    expr_unref(e);
    e = compile_ok("data.arr.includes(NaN)"); /* SameValueZero */
    assert_true(expr_truthy(e, c));
    expr_unref(e);
    e = compile_ok("data.arr[1] === data.arr[1]");
    assert_false(expr_truthy(e, c));
    expr_unref(e);
    cJSON_Delete(c);
}

static void test_literals(void **state)
{
    expect_num("42", 42);
    expect_num("1.5e3", 1500);
    expect_num("2E-2", 0.02);
    expect_num(".5", 0.5);
    expect_num("0x10", 16);
    expect_num("0XfF", 255);
    expect_str("'it\\'s'", "it's");
    expect_str("\"a\\\"b\"", "a\"b");
    expect_str("'tab\\there'", "tab\there");
    expect_str("'\\u00e9'", "\xc3\xa9");
    expect_str("'\\u{1F600}'", "\xf0\x9f\x98\x80");
    expect_str("'\\uD83D\\uDE00'", "\xf0\x9f\x98\x80");
    expect_str("'\\uD83D'", "\xef\xbf\xbd"); /* a lone surrogate becomes U+FFFD */
    expect_str("'\\x41\\q'", "Aq");
    expect_str("''", "");
    expect_num("'\\u{1F600}'.length", 2);
    expect_type("true", EXPR_BOOL);
    expect_bool("false", false);
    expect_type("null", EXPR_NULL);
    expect_type("undefined", EXPR_UNDEFINED);
    struct expr_value v = eval_src("NaN", NULL, 0);
    assert_true(v.type == EXPR_NUMBER && isnan(v.num));
    expect_num("Infinity", INFINITY);
    expect_num("-Infinity", -INFINITY);
    expect_num("((((1))))", 1);
}

static void test_syntax_errors(void **state)
{
    expect_err("data.a ===", HR_INVAL, "offset 10");
    expect_err("data.a ===", HR_INVAL, "expected an expression");
    expect_err("(a", HR_INVAL, "expected ')' at offset 2");
    expect_err("a &&& b", HR_INVAL, "unexpected '&' at offset 4");
    expect_err("'abc", HR_INVAL, "unterminated string starting at offset 0");
    expect_err("a === \"abc", HR_INVAL, "unterminated string starting at offset 6");
    expect_err("'ab\\", HR_INVAL, "unterminated string");
    expect_err("'a\nb'", HR_INVAL, "line break inside a string at offset 2");
    expect_err("'\\u12'", HR_INVAL, "bad escape sequence at offset 1");
    expect_err("'\\u{110000}'", HR_INVAL, "bad escape sequence");
    expect_err("'\\xZZ'", HR_INVAL, "bad escape sequence");
    expect_err("a = 1", HR_INVAL, "unexpected '=' at offset 2");
    expect_err("a & b", HR_INVAL, "unexpected '&' at offset 2");
    expect_err("a | b", HR_INVAL, "unexpected '|' at offset 2");
    expect_err("a b", HR_INVAL, "unexpected 'b' at offset 2");
    expect_err("a ? b : c", HR_INVAL, "unexpected '?' at offset 2");
    expect_err("a + 1", HR_INVAL, "unexpected '+' at offset 2");
    expect_err("data.items[x]", HR_INVAL, "inside [ ] at offset 11");
    expect_err("data.items[0", HR_INVAL, "expected ']' at offset 12");
    expect_err("data.items[-1]", HR_INVAL, "inside [ ]");
    expect_err("data.items[99999999999]", HR_INVAL, "index too large");
    expect_err("data.", HR_INVAL, "expected a name after '.' at offset 5");
    expect_err("data.0", HR_INVAL, "after '.' at offset 5");
    expect_err("data..a", HR_INVAL, "offset 5");
    expect_err("1a", HR_INVAL, "after number at offset 1");
    expect_err("1.2.3", HR_INVAL, "after number at offset 3");
    expect_err("1e", HR_INVAL, "bad number at offset 0");
    expect_err("0x", HR_INVAL, "bad number at offset 0");
    expect_err("--1", HR_INVAL, "'--' at offset 0");
    expect_err("a.includes(1, 2)", HR_INVAL, "one argument (offset 12)");
    expect_err("a.includes(1", HR_INVAL, "expected ')' at offset 12");
    expect_err("a.includes()", HR_INVAL, "offset 11");
    expect_err("`x`", HR_INVAL, "template literals");
    expect_err("f(1)", HR_INVAL, "unexpected '(' at offset 1");
    expect_err("a.b()", HR_INVAL, "unexpected '(' at offset 3");
    expect_err("data.plan)", HR_INVAL, "unexpected ')' at offset 9");
    /* odd input */
    expect_err("", HR_INVAL, "offset 0");
    expect_err("   ", HR_INVAL, "offset 3");
    expect_err("&&", HR_INVAL, "offset 0");
    expect_err("||", HR_INVAL, "offset 0");
    expect_err("===", HR_INVAL, "offset 0");
    expect_err("!", HR_INVAL, "offset 1");
    expect_err("-", HR_INVAL, "offset 1");
    expect_err("<", HR_INVAL, "offset 0");
    expect_err(".", HR_INVAL, "offset 0");
    expect_err("(", HR_INVAL, "offset 1");
    expect_err("()", HR_INVAL, "offset 1");
    expect_err(")", HR_INVAL, "offset 0");
    expect_err("[1]", HR_INVAL, "offset 0");
    expect_err("a.b.c ==", HR_INVAL, "offset 8");
    expect_err_n("a\0b", 3, HR_INVAL, "offset 1");
    expect_err("\xff", HR_INVAL, "UTF-8");
    /* NULL src with len 0 is just empty */
    expect_err_n(NULL, 0, HR_INVAL, "offset 0");
}

static char *repeat(const char *unit, size_t n, const char *tail)
{
    size_t u = strlen(unit), t = strlen(tail);
    char *s = malloc(u * n + t + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    memcpy(s + u * n, tail, t + 1);
    return s;
}

static void test_limits(void **state)
{
    struct expr *e = NULL;
    /* source length cap: 4096 accepted, 4097 refused */
    char *s = repeat(" ", EXPR_MAX_SRC - 1, "1");
    e = compile_ok(s);
    expr_unref(e);
    free(s);
    s = repeat(" ", EXPR_MAX_SRC, "1");
    expect_err(s, HR_TOOBIG, "longer than 4096");
    free(s);

    /* nesting: 60 parentheses are fine, 65 are refused */
    char *open = repeat("(", 60, "1"), *close = repeat(")", 60, "");
    s = malloc(strlen(open) + strlen(close) + 1);
    snprintf(s, strlen(open) + strlen(close) + 1, "%s%s", open, close);
    e = compile_ok(s);
    expr_unref(e);
    free(s);
    free(open);
    free(close);
    open = repeat("(", 65, "1");
    expect_err(open, HR_TOOBIG, "nested deeper than 64");
    free(open);
    open = repeat("(", 3000, "");
    expect_err(open, HR_TOOBIG, "nested deeper than 64");
    free(open);

    /* unary chains and long operator chains are nesting too */
    s = repeat("!", 100, "1");
    expect_err(s, HR_TOOBIG, "nested deeper");
    free(s);
    s = repeat("a && ", 70, "a");
    expect_err(s, HR_TOOBIG, "nested deeper");
    free(s);
    s = repeat("a && ", 40, "a");
    e = compile_ok(s);
    assert_false(expr_truthy(e, ctx));
    expr_unref(e);
    free(s);

    /* node cap: a path of 600 parts */
    s = repeat("a.", 600, "a");
    expect_err(s, HR_TOOBIG, "more than 512 parts");
    free(s);
    s = repeat("[0]", 600, "");
    s[1] = 'a'; /* "[a]..." -> "a" + "[0]" * 599 */
    memmove(s, s + 1, 1);
    memmove(s + 1, s + 3, strlen(s + 3) + 1);
    expect_err(s, HR_TOOBIG, "more than 512 parts");
    free(s);

    /* includes nesting counts too */
    s = repeat("a.includes(", 70, "1");
    expect_err(s, HR_TOOBIG, "nested deeper");
    free(s);
}

static unsigned rnd(unsigned *seed, unsigned n)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) % n;
}

/* gen: append a random well-formed expression of at most depth levels to b. */
static void gen(struct buf *b, unsigned *seed, int depth)
{
    static const char *atoms[] = {
        "data.plan", "data.count", "data.zero", "data.empty", "data.one", "data.items",
        "data.items[1].name", "data['key with space']", "data.tags", "data.nul", "data.obj",
        "data.arr1", "data.emptyarr", "data.nope.x", "refs.step1.status", "refs.data.count",
        "fetch1.body.x", "profile.email", "'pro'", "\"1\"", "''", "'x,y,1,'", "0", "1", "-0.5",
        "3", "1e21", "NaN", "Infinity", "true", "false", "null", "undefined", "0x10",
    };
    static const char *ops[] = {"===", "!==", "==", "!=", "<", "<=", ">", ">=", "&&", "||"};
    unsigned k = depth <= 0 ? 0 : rnd(seed, 6);
    int rc = HR_OK;
    switch (k) {
    case 0:
    case 1:
        rc = buf_append_c(b, atoms[rnd(seed, sizeof atoms / sizeof *atoms)]);
        break;
    case 2:
        rc = buf_append_c(b, rnd(seed, 2) ? "!" : "- "); /* "--" is not JS */
        gen(b, seed, depth - 1);
        break;
    case 3:
        rc = buf_putc(b, '(');
        gen(b, seed, depth - 1);
        rc = rc < 0 ? rc : buf_append_c(b, rnd(seed, 2) ? ").length" : ")");
        break;
    case 4:
        rc = buf_putc(b, '(');
        gen(b, seed, depth - 1);
        rc = rc < 0 ? rc : buf_append_c(b, ").includes(");
        gen(b, seed, depth - 1);
        rc = rc < 0 ? rc : buf_putc(b, ')');
        break;
    default:
        gen(b, seed, depth - 1);
        rc = buf_printf(b, " %s ", ops[rnd(seed, sizeof ops / sizeof *ops)]);
        gen(b, seed, depth - 1);
        break;
    }
    assert_int_equal(rc, HR_OK);
}

/* test_generated: every well-formed expression compiles and evaluates; && / || yield
 * one of their operands and ! agrees with truthiness. */
static void test_generated(void **state)
{
    unsigned seed = 7;
    struct buf b;
    buf_init(&b, 8192);
    for (int iter = 0; iter < 20000; iter++) {
        struct expr *e = NULL, *not_e = NULL;
        struct herr err = {0};
        struct expr_value v, nv;
        buf_reset(&b);
        gen(&b, &seed, 5);
        if (expr_compile(b.p, b.len, &e, &err) != HR_OK)
            fail_msg("\"%s\": %s", buf_cstr(&b), err.msg);
        assert_int_equal(expr_eval(e, ctx, &v), HR_OK);
        /* !(x) is the negation of x's truthiness */
        char *wrapped = malloc(b.len + 4);
        snprintf(wrapped, b.len + 4, "!(%s)", buf_cstr(&b));
        if (expr_compile(wrapped, strlen(wrapped), &not_e, &err) != HR_OK)
            fail_msg("\"%s\": %s", wrapped, err.msg);
        assert_int_equal(expr_eval(not_e, ctx, &nv), HR_OK);
        assert_int_equal(nv.type, EXPR_BOOL);
        assert_int_equal(nv.b, !expr_value_truthy(&v));
        free(wrapped);
        expr_unref(not_e);
        expr_unref(e);
    }
    buf_cleanup(&b);
}

/* test_fuzz: random token soup must never crash, leak or fail oddly. */
static void test_fuzz(void **state)
{
    static const char *toks[] = {
        "data", ".plan", ".items", "[0]", "['x']", "[", "]", "(", ")", "===", "!==", "==",
        "!=", "<", "<=", ">", ">=", "&&", "||", "!", "-", "'s'", "\"t\"", "1", "0.5", "null",
        "undefined", "NaN", ".length", ".includes(", ",", " ", "&", "=", "'", "\\", "refs",
        ".step1", "true", "?.", "\xc3\xa9", "$", "0x", "1e", ".", "}", "${",
    };
    unsigned seed = 12345;
    char src[256];
    for (int iter = 0; iter < 40000; iter++) {
        size_t n = 0;
        int k;
        seed = seed * 1103515245u + 12345u;
        k = (int)((seed >> 16) % 12);
        for (int t = 0; t < k; t++) {
            seed = seed * 1103515245u + 12345u;
            const char *tok = toks[(seed >> 16) % (sizeof toks / sizeof *toks)];
            size_t tl = strlen(tok);
            if (n + tl >= sizeof src)
                break;
            memcpy(src + n, tok, tl);
            n += tl;
        }
        struct expr *e = NULL;
        struct herr err = {0};
        int rc = expr_compile(src, n, &e, &err);
        if (rc == HR_OK) {
            struct expr_value v;
            assert_non_null(e);
            assert_int_equal(expr_eval(e, ctx, &v), HR_OK);
            (void)expr_value_truthy(&v);
            expr_unref(e);
        } else {
            assert_null(e);
            assert_true(rc == HR_INVAL || rc == HR_TOOBIG);
            assert_true(err.msg[0] != '\0');
        }
    }
    /* and raw bytes */
    static const char bytes[] = "\"'\\[]().?!=<>&|-+0123456789abexdtu{} \n\xc3\xa9\xff$`,";
    for (int iter = 0; iter < 40000; iter++) {
        size_t n;
        seed = seed * 1103515245u + 12345u;
        n = (seed >> 16) % 24;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            src[i] = bytes[(seed >> 16) % (sizeof bytes - 1)];
        }
        struct expr *e = NULL;
        struct herr err = {0};
        if (expr_compile(src, n, &e, &err) == HR_OK) {
            (void)expr_truthy(e, ctx);
            expr_unref(e);
        } else {
            assert_null(e);
        }
    }
}

static void test_refcount(void **state)
{
    struct expr *e = compile_ok("data.plan === 'pro'");
    assert_ptr_equal(expr_ref(e), e);
    expr_unref(e);
    assert_true(expr_truthy(e, ctx));
    expr_unref(e);
    expr_unref(NULL);
    assert_null(expr_ref(NULL));
}

static void expect_numtext(double v, const char *want)
{
    char out[EXPR_NUM_TEXT_MAX];
    size_t n = expr_num_text(v, out);
    if (strcmp(out, want) != 0 || n != strlen(want))
        fail_msg("%.17g: want \"%s\", got \"%s\"", v, want, out);
}

static void test_num_text(void **state)
{
    expect_numtext(0, "0");
    expect_numtext(-0.0, "0");
    expect_numtext(1, "1");
    expect_numtext(-1.5, "-1.5");
    expect_numtext(0.1, "0.1");
    expect_numtext(100, "100");
    expect_numtext(1.0 / 3, "0.3333333333333333");
    expect_numtext(0.000001, "0.000001");
    expect_numtext(1e-7, "1e-7");
    expect_numtext(1.5e-10, "1.5e-10");
    expect_numtext(1e21, "1e+21");
    expect_numtext(123456789012345680000.0, "123456789012345680000");
    expect_numtext(-1.7976931348623157e308, "-1.7976931348623157e+308");
    expect_numtext(5e-324, "5e-324");
    expect_numtext(NAN, "NaN");
    expect_numtext(INFINITY, "Infinity");
    expect_numtext(-INFINITY, "-Infinity");
}

static void test_value_text(void **state)
{
    struct buf b;
    struct expr *e = compile_ok("data.tags");
    struct expr_value v;
    buf_init(&b, 1024);
    assert_int_equal(expr_eval(e, ctx, &v), HR_OK);
    assert_int_equal(expr_value_text(&v, &b), HR_OK);
    assert_string_equal(buf_cstr(&b), "x,y,1,");
    expr_unref(e);
    buf_reset(&b);
    e = compile_ok("data.items");
    assert_int_equal(expr_eval(e, ctx, &v), HR_OK);
    assert_int_equal(expr_value_text(&v, &b), HR_OK);
    assert_string_equal(buf_cstr(&b), "[object Object],[object Object]");
    expr_unref(e);
    buf_reset(&b);
    v = expr_value_from_json(NULL);
    assert_int_equal(expr_value_text(&v, &b), HR_OK);
    assert_string_equal(buf_cstr(&b), "undefined");
    buf_cleanup(&b);
    /* a capped buffer reports TOOBIG */
    buf_init(&b, 3);
    e = compile_ok("data.tags");
    assert_int_equal(expr_eval(e, ctx, &v), HR_OK);
    assert_int_equal(expr_value_text(&v, &b), HR_TOOBIG);
    expr_unref(e);
    buf_cleanup(&b);
}

/* test_big_conversion: string conversions inside comparisons are capped. */
static void test_big_conversion(void **state)
{
    cJSON *big = cJSON_CreateObject(), *data = cJSON_AddObjectToObject(big, "data");
    cJSON *arr = cJSON_AddArrayToObject(data, "a");
    char *chunk = repeat("x", 1000, "");
    for (int i = 0; i < 100; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(chunk));
    free(chunk);
    struct expr *e = compile_ok("data.a == 'x'");
    struct expr_value v;
    assert_int_equal(expr_eval(e, big, &v), HR_TOOBIG);
    assert_int_equal(v.type, EXPR_UNDEFINED);
    assert_false(expr_truthy(e, big));
    expr_unref(e);
    e = compile_ok("data.a === 'x' || data.a.length === 100");
    assert_true(expr_truthy(e, big));
    expr_unref(e);
    cJSON_Delete(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_equality),
        cmocka_unit_test(test_relational),
        cmocka_unit_test(test_length_includes),
        cmocka_unit_test(test_includes_misc),
        cmocka_unit_test(test_built_context),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_generated),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_num_text),
        cmocka_unit_test(test_value_text),
        cmocka_unit_test(test_big_conversion),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
