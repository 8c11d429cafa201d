/* test_jsonpatch.c: RFC 6901 pointers (section 5 examples), RFC 6902 patches (Appendix A
 * examples, atomicity, arrays, validation, bounds), shallow merge and JSON equality. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/util/buf.h"
#include "../../../src/util/json.h"
#include "../../../src/util/jsonpatch.h"
#include "../../../src/util/str.h"

#include <stdlib.h>
#include <string.h>

/* J: parse a test literal the way outside input is parsed. */
static cJSON *J(const char *s)
{
    cJSON *v = NULL;
    struct herr err;
    assert_int_equal(json_parse_bounded(s, strlen(s), JSON_MAX_DEPTH_DEFAULT, &v, &err), HR_OK);
    return v;
}

/* same_text: v serializes exactly as the literal want does (order matters). */
static void assert_json(const cJSON *v, const char *want)
{
    cJSON *w = J(want);
    char *a = json_print(v), *b = json_print(w);
    assert_string_equal(a, b);
    free(a);
    free(b);
    cJSON_Delete(w);
}

/* patch: apply ops to doc. On HR_OK the result must print as want; on failure the
 * result must be NULL. Either way the input must be unchanged. Returns rc. */
static int patch(const char *doc, const char *ops, const char *want, struct herr *err)
{
    cJSON *d = J(doc), *o = J(ops), *out = (cJSON *)d;
    char *before = json_print(d), *after;
    int rc = jp_apply_patch(d, o, &out, err);
    after = json_print(d);
    assert_string_equal(before, after);
    if (rc == HR_OK) {
        assert_non_null(out);
        assert_ptr_not_equal(out, d);
        assert_json(out, want);
    } else {
        assert_null(out);
        assert_int_equal(err->rc, rc);
    }
    free(before);
    free(after);
    cJSON_Delete(out);
    cJSON_Delete(o);
    cJSON_Delete(d);
    return rc;
}

static void assert_has(const struct herr *err, const char *needle)
{
    if (!strstr(err->msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err->msg, needle);
}

/* ---- RFC 6901 -------------------------------------------------------------------- */

static const char *rfc6901_doc = "{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, "
                                 "\"c%d\": 2, \"e^f\": 3, \"g|h\": 4, \"i\\\\j\": 5, "
                                 "\"k\\\"l\": 6, \" \": 7, \"m~n\": 8}";

static int num_at(const cJSON *doc, const char *ptr)
{
    const cJSON *v = NULL;
    assert_int_equal(jp_pointer_get(doc, str_c(ptr), &v), HR_OK);
    assert_true(cJSON_IsNumber(v));
    return v->valueint;
}

static void test_pointer_rfc6901(void **state)
{
    cJSON *doc = J(rfc6901_doc);
    const cJSON *v = NULL;
    assert_int_equal(jp_pointer_get(doc, STR_LIT(""), &v), HR_OK);
    assert_ptr_equal(v, doc);
    assert_int_equal(jp_pointer_get(doc, STR_LIT("/foo"), &v), HR_OK);
    assert_json(v, "[\"bar\",\"baz\"]");
    assert_int_equal(jp_pointer_get(doc, STR_LIT("/foo/0"), &v), HR_OK);
    assert_string_equal(v->valuestring, "bar");
    assert_int_equal(num_at(doc, "/"), 0);
    assert_int_equal(num_at(doc, "/a~1b"), 1);
    assert_int_equal(num_at(doc, "/c%d"), 2);
    assert_int_equal(num_at(doc, "/e^f"), 3);
    assert_int_equal(num_at(doc, "/g|h"), 4);
    assert_int_equal(num_at(doc, "/i\\j"), 5);
    assert_int_equal(num_at(doc, "/k\"l"), 6);
    assert_int_equal(num_at(doc, "/ "), 7);
    assert_int_equal(num_at(doc, "/m~0n"), 8);
    cJSON_Delete(doc);
}

static void test_pointer_errors(void **state)
{
    cJSON *doc = J(rfc6901_doc);
    const cJSON *v = (const cJSON *)doc;
    char longp[JP_MAX_POINTER + 2];
    assert_int_equal(jp_pointer_get(doc, STR_LIT("foo"), &v), HR_INVAL);
    assert_null(v);
    assert_int_equal(jp_pointer_get(doc, STR_LIT("/foo/-"), &v), HR_INVAL);
    assert_int_equal(jp_pointer_get(doc, STR_LIT("/foo/01"), &v), HR_INVAL);
    assert_int_equal(jp_pointer_get(doc, STR_LIT("/foo/x"), &v), HR_INVAL);
    assert_int_equal(jp_pointer_get(doc, STR_LIT("/foo/2"), &v), HR_NOTFOUND);
    assert_int_equal(jp_pointer_get(doc, STR_LIT("/foo/99999999999999999999"), &v), HR_NOTFOUND);
    assert_int_equal(jp_pointer_get(doc, STR_LIT("/nope"), &v), HR_NOTFOUND);
    assert_int_equal(jp_pointer_get(doc, STR_LIT("/foo/0/x"), &v), HR_NOTFOUND);
    assert_int_equal(jp_pointer_get(doc, STR_LIT("/a~2b"), &v), HR_INVAL);
    assert_int_equal(jp_pointer_get(doc, STR_LIT("/m~"), &v), HR_INVAL);
    assert_int_equal(jp_pointer_get(doc, STR_LIT("/a/b"), &v), HR_NOTFOUND); /* not "a/b" */
    assert_int_equal(jp_pointer_get(doc, (struct str){"/\0", 2}, &v), HR_INVAL);
    /* the length cap: 1024 bytes pass the check, 1025 do not */
    longp[0] = '/';
    memset(longp + 1, 'k', sizeof(longp) - 1);
    assert_int_equal(jp_pointer_get(doc, (struct str){longp, JP_MAX_POINTER}, &v), HR_NOTFOUND);
    assert_int_equal(jp_pointer_get(doc, (struct str){longp, JP_MAX_POINTER + 1}, &v), HR_INVAL);
    cJSON_Delete(doc);
}

/* ---- RFC 6902 Appendix A ------------------------------------------------------------ */

static void test_rfc6902_appendix_a(void **state)
{
    struct herr err;
    /* A.1 adding an object member */
    assert_int_equal(patch("{\"foo\":\"bar\"}",
                           "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
                           "{\"foo\":\"bar\",\"baz\":\"qux\"}", &err),
                     HR_OK);
    /* A.2 adding an array element */
    assert_int_equal(patch("{\"foo\":[\"bar\",\"baz\"]}",
                           "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
                           "{\"foo\":[\"bar\",\"qux\",\"baz\"]}", &err),
                     HR_OK);
    /* A.3 removing an object member */
    assert_int_equal(patch("{\"baz\":\"qux\",\"foo\":\"bar\"}",
                           "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}", &err),
                     HR_OK);
    /* A.4 removing an array element */
    assert_int_equal(patch("{\"foo\":[\"bar\",\"qux\",\"baz\"]}",
                           "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
                           "{\"foo\":[\"bar\",\"baz\"]}", &err),
                     HR_OK);
    /* A.5 replacing a value */
    assert_int_equal(patch("{\"baz\":\"qux\",\"foo\":\"bar\"}",
                           "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
                           "{\"baz\":\"boo\",\"foo\":\"bar\"}", &err),
                     HR_OK);
    /* A.6 moving a value */
    assert_int_equal(
        patch("{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
              "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
              "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}", &err),
        HR_OK);
    /* A.7 moving an array element */
    assert_int_equal(patch("{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
                           "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
                           "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}", &err),
                     HR_OK);
    /* A.8 testing a value: success */
    assert_int_equal(patch("{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
                           "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
                           "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
                           "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}", &err),
                     HR_OK);
    /* A.9 testing a value: error (and the document is unchanged, checked in patch()) */
    assert_int_equal(patch("{\"baz\":\"qux\"}",
                           "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]", NULL, &err),
                     HR_CONFLICT);
    assert_string_equal(err.msg, "patch operation 0 (test /baz): test failed: the value differs");
    /* A.10 adding a nested member object */
    assert_int_equal(patch("{\"foo\":\"bar\"}",
                           "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
                           "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}", &err),
                     HR_OK);
    /* A.11 ignoring unrecognized elements */
    assert_int_equal(patch("{\"foo\":\"bar\"}",
                           "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
                           "{\"foo\":\"bar\",\"baz\":\"qux\"}", &err),
                     HR_OK);
    /* A.12 adding to a nonexistent target */
    assert_int_equal(patch("{\"foo\":\"bar\"}",
                           "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]", NULL,
                           &err),
                     HR_CONFLICT);
    assert_string_equal(err.msg, "patch operation 0 (add /baz/bat): path does not exist");
    /* A.13 invalid JSON Patch document: "op" twice */
    assert_int_equal(
        patch("{\"foo\":\"bar\"}",
              "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"op\":\"remove\"}]", NULL,
              &err),
        HR_INVAL);
    assert_has(&err, "\"op\" appears more than once");
    /* an op that does not exist */
    assert_int_equal(
        patch("{\"foo\":\"bar\"}", "[{\"op\":\"spam\",\"path\":\"/foo\"}]", NULL, &err), HR_INVAL);
    assert_string_equal(err.msg, "patch operation 0: unknown op \"spam\"");
    /* A.14 ~ escape ordering: "/~01" is the member "~1", not "/" */
    assert_int_equal(patch("{\"/\":9,\"~1\":10}",
                           "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]",
                           "{\"/\":9,\"~1\":10}", &err),
                     HR_OK);
    /* A.15 comparing strings and numbers */
    assert_int_equal(patch("{\"/\":9,\"~1\":10}",
                           "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]", NULL, &err),
                     HR_CONFLICT);
    /* A.16 adding an array value */
    assert_int_equal(patch("{\"foo\":[\"bar\"]}",
                           "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
                           "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}", &err),
                     HR_OK);
}

/* ---- atomicity, arrays, op semantics ------------------------------------------------ */

static void test_atomic(void **state)
{
    struct herr err;
    /* the third op fails: the first two must not show (patch() checks the input) */
    assert_int_equal(patch("{\"name\":\"Ann\",\"tags\":[1,2]}",
                           "[{\"op\":\"add\",\"path\":\"/plan\",\"value\":\"pro\"},"
                           "{\"op\":\"remove\",\"path\":\"/name\"},"
                           "{\"op\":\"replace\",\"path\":\"/email\",\"value\":\"a@b.c\"}]",
                           NULL, &err),
                     HR_CONFLICT);
    assert_string_equal(err.msg, "patch operation 2 (replace /email): path does not exist");
    /* validation runs before anything is applied: a malformed later op fails first */
    assert_int_equal(
        patch("{\"a\":1}",
              "[{\"op\":\"remove\",\"path\":\"/zz\"},{\"op\":\"add\",\"path\":\"/b\"}]", NULL,
              &err),
        HR_INVAL);
    assert_string_equal(err.msg, "patch operation 1 (add /b): \"value\" is missing");
    /* later ops see earlier ones */
    assert_int_equal(patch("{}",
                           "[{\"op\":\"add\",\"path\":\"/a\",\"value\":{}},"
                           "{\"op\":\"add\",\"path\":\"/a/b\",\"value\":[]},"
                           "{\"op\":\"add\",\"path\":\"/a/b/-\",\"value\":1},"
                           "{\"op\":\"test\",\"path\":\"/a\",\"value\":{\"b\":[1.0]}}]",
                           "{\"a\":{\"b\":[1]}}", &err),
                     HR_OK);
    assert_int_equal(patch("{\"a\":1}", "[]", "{\"a\":1}", &err), HR_OK);
}

static void test_arrays(void **state)
{
    struct herr err;
    const char *d = "{\"arr\":[\"x\",\"y\"]}";
    assert_int_equal(patch(d, "[{\"op\":\"add\",\"path\":\"/arr/-\",\"value\":\"z\"}]",
                           "{\"arr\":[\"x\",\"y\",\"z\"]}", &err),
                     HR_OK);
    assert_int_equal(patch(d, "[{\"op\":\"add\",\"path\":\"/arr/2\",\"value\":\"z\"}]",
                           "{\"arr\":[\"x\",\"y\",\"z\"]}", &err),
                     HR_OK); /* index == size appends */
    assert_int_equal(patch(d, "[{\"op\":\"add\",\"path\":\"/arr/0\",\"value\":\"w\"}]",
                           "{\"arr\":[\"w\",\"x\",\"y\"]}", &err),
                     HR_OK);
    assert_int_equal(patch(d, "[{\"op\":\"add\",\"path\":\"/arr/3\",\"value\":\"z\"}]", NULL, &err),
                     HR_CONFLICT);
    assert_string_equal(err.msg, "patch operation 0 (add /arr/3): array index out of range");
    assert_int_equal(patch(d, "[{\"op\":\"remove\",\"path\":\"/arr/2\"}]", NULL, &err),
                     HR_CONFLICT);
    assert_int_equal(patch(d, "[{\"op\":\"replace\",\"path\":\"/arr/5\",\"value\":0}]", NULL, &err),
                     HR_CONFLICT);
    assert_int_equal(patch(d, "[{\"op\":\"remove\",\"path\":\"/arr/-\"}]", NULL, &err), HR_INVAL);
    assert_int_equal(patch(d, "[{\"op\":\"add\",\"path\":\"/arr/01\",\"value\":0}]", NULL, &err),
                     HR_INVAL);
    assert_int_equal(patch(d, "[{\"op\":\"replace\",\"path\":\"/arr/1\",\"value\":{\"k\":1}}]",
                           "{\"arr\":[\"x\",{\"k\":1}]}", &err),
                     HR_OK);
    assert_int_equal(
        patch(d,
              "[{\"op\":\"remove\",\"path\":\"/arr/0\"},{\"op\":\"remove\",\"path\":\"/arr/0\"}]",
              "{\"arr\":[]}", &err),
        HR_OK);
    /* a member moved into an array loses its key; an element moved into an object gets one */
    assert_int_equal(patch("{\"a\":{\"k\":1},\"arr\":[2]}",
                           "[{\"op\":\"move\",\"from\":\"/a/k\",\"path\":\"/arr/0\"},"
                           "{\"op\":\"move\",\"from\":\"/arr/1\",\"path\":\"/a/n\"}]",
                           "{\"a\":{\"n\":2},\"arr\":[1]}", &err),
                     HR_OK);
}

static void test_op_semantics(void **state)
{
    struct herr err;
    /* add on an existing member replaces it in place */
    assert_int_equal(patch("{\"a\":1,\"b\":2}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":[3]}]",
                           "{\"a\":[3],\"b\":2}", &err),
                     HR_OK);
    /* "" is the whole document for add, replace, test, copy and move */
    assert_int_equal(
        patch("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"\",\"value\":[1]}]", "[1]", &err), HR_OK);
    assert_int_equal(
        patch("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":\"s\"}]", "\"s\"", &err),
        HR_OK);
    assert_int_equal(patch("{\"a\":{\"b\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"\"}]",
                           "{\"b\":1}", &err),
                     HR_OK);
    assert_int_equal(patch("{\"a\":1}", "[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/self\"}]",
                           "{\"a\":1,\"self\":{\"a\":1}}", &err),
                     HR_OK);
    assert_int_equal(patch("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"\"}]", NULL, &err),
                     HR_INVAL);
    assert_string_equal(err.msg,
                        "patch operation 0 (remove \"\"): cannot remove the whole document");
    /* move into one's own child; move onto itself is a no-op that still needs from */
    assert_int_equal(patch("{\"a\":{\"b\":1}}",
                           "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/c\"}]", NULL, &err),
                     HR_INVAL);
    assert_has(&err, "own children");
    assert_int_equal(patch("{\"a\":{\"b\":1},\"ab\":0}",
                           "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/ab\"}]",
                           "{\"ab\":{\"b\":1}}", &err),
                     HR_OK); /* "/a" is a prefix of "/ab" as text only */
    assert_int_equal(patch("{\"a\":1,\"b\":2}",
                           "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]",
                           "{\"a\":1,\"b\":2}", &err),
                     HR_OK);
    assert_int_equal(
        patch("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/x\"}]", NULL, &err),
        HR_CONFLICT);
    assert_int_equal(
        patch("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/x\",\"path\":\"/y\"}]", NULL, &err),
        HR_CONFLICT);
    assert_string_equal(err.msg, "patch operation 0 (move /y): 'from' location does not exist");
    assert_int_equal(
        patch("{\"a\":1}", "[{\"op\":\"copy\",\"from\":\"/x\",\"path\":\"/y\"}]", NULL, &err),
        HR_CONFLICT);
    /* copy is deep: changing the copy leaves the original */
    assert_int_equal(patch("{\"a\":{\"n\":1}}",
                           "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"},"
                           "{\"op\":\"replace\",\"path\":\"/b/n\",\"value\":2}]",
                           "{\"a\":{\"n\":1},\"b\":{\"n\":2}}", &err),
                     HR_OK);
    /* a parent that is a scalar */
    assert_int_equal(
        patch("{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":0}]", NULL, &err),
        HR_CONFLICT);
    /* test: unordered objects, 1 == 1.0, missing target */
    assert_int_equal(
        patch("{\"o\":{\"x\":1,\"y\":[true,null]}}",
              "[{\"op\":\"test\",\"path\":\"/o\",\"value\":{\"y\":[true,null],\"x\":1.0}}]",
              "{\"o\":{\"x\":1,\"y\":[true,null]}}", &err),
        HR_OK);
    assert_int_equal(patch("{}", "[{\"op\":\"test\",\"path\":\"/o\",\"value\":null}]", NULL, &err),
                     HR_CONFLICT);
    /* a null value is a value */
    assert_int_equal(
        patch("{}", "[{\"op\":\"add\",\"path\":\"/n\",\"value\":null}]", "{\"n\":null}", &err),
        HR_OK);
    /* "-" is only special for arrays; on an object it is a member name */
    assert_int_equal(
        patch("{}", "[{\"op\":\"add\",\"path\":\"/-\",\"value\":1}]", "{\"-\":1}", &err), HR_OK);
    /* escaped tokens on write */
    assert_int_equal(
        patch("{}", "[{\"op\":\"add\",\"path\":\"/a~1b~0c\",\"value\":1}]", "{\"a/b~c\":1}", &err),
        HR_OK);
}

/* ---- validation and bounds ---------------------------------------------------------- */

static void test_validation(void **state)
{
    struct herr err;
    const char *d = "{\"a\":1}";
    assert_int_equal(patch(d, "{\"op\":\"remove\",\"path\":\"/a\"}", NULL, &err), HR_INVAL);
    assert_has(&err, "must be an array");
    assert_int_equal(patch(d, "[1]", NULL, &err), HR_INVAL);
    assert_string_equal(err.msg, "patch operation 0: not a JSON object");
    assert_int_equal(patch(d, "[{\"path\":\"/a\"}]", NULL, &err), HR_INVAL);
    assert_string_equal(err.msg, "patch operation 0: \"op\" is missing");
    assert_int_equal(patch(d, "[{\"op\":1,\"path\":\"/a\"}]", NULL, &err), HR_INVAL);
    assert_has(&err, "\"op\" must be a string");
    assert_int_equal(patch(d, "[{\"op\":\"remove\"}]", NULL, &err), HR_INVAL);
    assert_string_equal(err.msg, "patch operation 0 (remove): \"path\" is missing");
    assert_int_equal(patch(d, "[{\"op\":\"remove\",\"path\":5}]", NULL, &err), HR_INVAL);
    assert_int_equal(patch(d, "[{\"op\":\"remove\",\"path\":\"a\"}]", NULL, &err), HR_INVAL);
    assert_has(&err, "invalid path");
    assert_int_equal(patch(d, "[{\"op\":\"remove\",\"path\":\"/~x\"}]", NULL, &err), HR_INVAL);
    assert_int_equal(patch(d, "[{\"op\":\"replace\",\"path\":\"/a\"}]", NULL, &err), HR_INVAL);
    assert_int_equal(patch(d, "[{\"op\":\"test\",\"path\":\"/a\"}]", NULL, &err), HR_INVAL);
    assert_int_equal(patch(d, "[{\"op\":\"move\",\"path\":\"/b\"}]", NULL, &err), HR_INVAL);
    assert_string_equal(err.msg, "patch operation 0 (move /b): \"from\" is missing");
    assert_int_equal(patch(d, "[{\"op\":\"copy\",\"path\":\"/b\",\"from\":\"a\"}]", NULL, &err),
                     HR_INVAL);
    assert_int_equal(
        patch(d, "[{\"op\":\"add\",\"path\":\"/b\",\"value\":1,\"value\":2}]", NULL, &err),
        HR_INVAL);
    /* messages show hostile strings tamed: control bytes replaced, long ones cut */
    assert_int_equal(patch(d, "[{\"op\":\"x\\ny\",\"path\":\"/a\"}]", NULL, &err), HR_INVAL);
    assert_string_equal(err.msg, "patch operation 0: unknown op \"x?y\"");
}

/* deep_add_ops: [{"op":"add","path":path,"value":[[...]]}] with depth levels; free(). */
static char *deep_add_ops(const char *path, int depth)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    assert_int_equal(buf_printf(&b, "[{\"op\":\"add\",\"path\":\"%s\",\"value\":", path), HR_OK);
    for (int i = 0; i < depth; i++)
        assert_int_equal(buf_putc(&b, '['), HR_OK);
    for (int i = 0; i < depth; i++)
        assert_int_equal(buf_putc(&b, ']'), HR_OK);
    assert_int_equal(buf_append_c(&b, "}]"), HR_OK);
    return buf_steal(&b, NULL);
}

static void test_bounds(void **state)
{
    struct herr err;
    struct buf b;
    cJSON *doc, *ops, *out = NULL;
    /* JP_MAX_OPS tests pass, one more is refused */
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_putc(&b, '['), HR_OK);
    for (int i = 0; i < JP_MAX_OPS; i++)
        assert_int_equal(
            buf_printf(&b, "%s{\"op\":\"test\",\"path\":\"/a\",\"value\":1}", i ? "," : ""), HR_OK);
    assert_int_equal(buf_putc(&b, ']'), HR_OK);
    assert_int_equal(patch("{\"a\":1}", buf_cstr(&b), "{\"a\":1}", &err), HR_OK);
    b.len--;
    assert_int_equal(buf_append_c(&b, ",{\"op\":\"test\",\"path\":\"/a\",\"value\":1}]"), HR_OK);
    assert_int_equal(patch("{\"a\":1}", buf_cstr(&b), NULL, &err), HR_TOOBIG);
    assert_has(&err, "at most 1000");
    buf_cleanup(&b);

    /* a path over 1024 bytes */
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_append_c(&b, "[{\"op\":\"add\",\"value\":1,\"path\":\"/"), HR_OK);
    for (int i = 0; i < JP_MAX_POINTER; i++)
        assert_int_equal(buf_putc(&b, 'p'), HR_OK);
    assert_int_equal(buf_append_c(&b, "\"}]"), HR_OK);
    assert_int_equal(patch("{}", buf_cstr(&b), NULL, &err), HR_INVAL);
    assert_has(&err, "longer than 1024");
    assert_has(&err, "ppp..."); /* the path in the message is cut */
    assert_true(strlen(err.msg) < 200);
    buf_cleanup(&b);

    /* copying a document into itself doubles it; the size cap stops the growth */
    buf_init(&b, 1 << 22);
    assert_int_equal(buf_append_c(&b, "{\"s\":\""), HR_OK);
    for (int i = 0; i < (1 << 20); i++)
        assert_int_equal(buf_putc(&b, 'x'), HR_OK);
    assert_int_equal(buf_append_c(&b, "\"}"), HR_OK);
    doc = J(buf_cstr(&b));
    buf_cleanup(&b);
    ops = J("[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/c1\"},"
            "{\"op\":\"copy\",\"from\":\"\",\"path\":\"/c2\"},"
            "{\"op\":\"copy\",\"from\":\"\",\"path\":\"/c3\"}]"); /* 2, 4, 8+ MiB */
    assert_int_equal(jp_apply_patch(doc, ops, &out, &err), HR_TOOBIG);
    assert_null(out);
    assert_string_equal(err.msg, "patch operation 2 (copy /c3): result would be larger than "
                                 "the document size limit");
    cJSON_Delete(ops);
    /* removes make room again: the accounting follows every op */
    ops = J("[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/c1\"},"
            "{\"op\":\"copy\",\"from\":\"\",\"path\":\"/c2\"},"
            "{\"op\":\"remove\",\"path\":\"/c2\"},{\"op\":\"remove\",\"path\":\"/c1\"},"
            "{\"op\":\"copy\",\"from\":\"\",\"path\":\"/c3\"},"
            "{\"op\":\"copy\",\"from\":\"\",\"path\":\"/c4\"},"
            "{\"op\":\"replace\",\"path\":\"/c4\",\"value\":0}]");
    assert_int_equal(jp_apply_patch(doc, ops, &out, &err), HR_OK);
    assert_int_equal(cJSON_GetArraySize(out), 3);
    cJSON_Delete(out);
    cJSON_Delete(ops);
    cJSON_Delete(doc);

    /* nesting: a value may not push the document past JP_MAX_DEPTH. The value nests 62
     * deep (the ops array and object take the other two of the parse limit). */
    {
        const char *doc_s = "{\"a\":{\"b\":{\"c\":{}}}}";
        char *ok = deep_add_ops("/a/x", JP_MAX_DEPTH - 2),
             *bad = deep_add_ops("/a/b/x", JP_MAX_DEPTH - 2);
        cJSON *d = J(doc_s), *o = J(ok);
        assert_int_equal(jp_apply_patch(d, o, &out, &err), HR_OK); /* 2 + 62 = 64 */
        cJSON_Delete(out);
        cJSON_Delete(o);
        cJSON_Delete(d);
        assert_int_equal(patch(doc_s, bad, NULL, &err), HR_TOOBIG); /* 3 + 62 */
        assert_has(&err, "deeper than 64");
        free(ok);
        free(bad);
    }
}

/* ---- merge and equality ----------------------------------------------------------- */

static void test_merge(void **state)
{
    cJSON *t = J("{\"a\":1,\"b\":{\"x\":1},\"c\":3}");
    cJSON *s = J("{\"b\":{\"y\":2},\"c\":null,\"d\":[1]}");
    jp_merge(t, s, true);
    assert_json(t, "{\"a\":1,\"b\":{\"y\":2},\"d\":[1]}"); /* replaced in place, appended */
    assert_json(s, "{\"b\":{\"y\":2},\"c\":null,\"d\":[1]}");
    /* deep copies: editing target leaves src */
    assert_true(cJSON_AddItemToArray(cJSON_GetObjectItem(t, "d"), cJSON_CreateNumber(2)));
    assert_json(s, "{\"b\":{\"y\":2},\"c\":null,\"d\":[1]}");
    cJSON_Delete(t);

    t = J("{\"a\":1,\"b\":{\"x\":1},\"c\":3}");
    jp_merge(t, s, false);
    assert_json(t, "{\"a\":1,\"b\":{\"y\":2},\"c\":null,\"d\":[1]}");
    cJSON_Delete(t);
    cJSON_Delete(s);

    /* null for a missing key, repeated src keys (last wins), empty src */
    t = J("{\"a\":1}");
    s = J("{\"zz\":null,\"k\":1,\"k\":2,\"a\":null,\"a\":5}");
    jp_merge(t, s, true);
    assert_json(t, "{\"a\":5,\"k\":2}");
    cJSON_Delete(s);
    s = J("{}");
    jp_merge(t, s, true);
    assert_json(t, "{\"a\":5,\"k\":2}");
    cJSON_Delete(s);
    /* not objects: nothing happens */
    s = J("[1]");
    jp_merge(t, s, true);
    assert_json(t, "{\"a\":5,\"k\":2}");
    jp_merge(s, t, true);
    assert_json(s, "[1]");
    cJSON_Delete(s);
    cJSON_Delete(t);

    /* src aliases target, or lives inside it */
    t = J("{\"a\":1,\"n\":null}");
    jp_merge(t, t, true);
    assert_json(t, "{\"a\":1}");
    cJSON_Delete(t);
    t = J("{\"p\":{\"p\":5,\"q\":1},\"r\":0}");
    jp_merge(t, cJSON_GetObjectItem(t, "p"), true);
    assert_json(t, "{\"p\":5,\"r\":0,\"q\":1}");
    cJSON_Delete(t);

    /* many keys: sorted lookups, order of target kept, new keys in src order */
    {
        struct buf tb, sb;
        buf_init(&tb, 1 << 20);
        buf_init(&sb, 1 << 20);
        assert_int_equal(buf_putc(&tb, '{'), HR_OK);
        assert_int_equal(buf_putc(&sb, '{'), HR_OK);
        for (int i = 0; i < 2000; i++) {
            assert_int_equal(buf_printf(&tb, "%s\"k%d\":%d", i ? "," : "", 1999 - i, i), HR_OK);
            assert_int_equal(buf_printf(&sb, "%s\"k%d\":null", i ? "," : "", i * 2), HR_OK);
        }
        assert_int_equal(buf_putc(&tb, '}'), HR_OK);
        assert_int_equal(buf_putc(&sb, '}'), HR_OK);
        t = J(buf_cstr(&tb));
        s = J(buf_cstr(&sb));
        jp_merge(t, s, true);
        assert_int_equal(cJSON_GetArraySize(t), 1000);
        assert_null(cJSON_GetObjectItem(t, "k0"));
        assert_non_null(cJSON_GetObjectItem(t, "k1"));
        assert_string_equal(t->child->string, "k1999");
        cJSON_Delete(s);
        cJSON_Delete(t);
        buf_cleanup(&tb);
        buf_cleanup(&sb);
    }
}

static bool eq(const char *a, const char *b)
{
    cJSON *x = J(a), *y = J(b);
    bool r = jp_equal(x, y);
    assert_true(r == jp_equal(y, x));
    cJSON_Delete(x);
    cJSON_Delete(y);
    return r;
}

static void test_equal(void **state)
{
    assert_true(eq("{\"a\":1,\"b\":{\"x\":[1,2],\"y\":\"s\"}}",
                   "{\"b\":{\"y\":\"s\",\"x\":[1.0,2]},\"a\":1}"));
    assert_true(eq("1", "1.0"));
    assert_true(eq("1e2", "100"));
    assert_false(eq("1", "\"1\""));
    assert_false(eq("[1,2]", "[2,1]"));
    assert_false(eq("[1,2]", "[1,2,3]"));
    assert_false(eq("{\"a\":1}", "{\"a\":1,\"b\":2}"));
    assert_false(eq("{\"a\":1,\"b\":2}", "{\"a\":1,\"c\":2}"));
    assert_false(eq("{\"a\":{}}", "{\"a\":[]}"));
    assert_true(eq("null", "null"));
    assert_false(eq("null", "false"));
    assert_false(eq("true", "false"));
    assert_true(eq("\"\"", "\"\""));
    assert_false(eq("\"a\"", "\"a \""));
    assert_true(eq("{}", "{}"));
    /* repeated keys: multisets matched in order of appearance */
    assert_false(eq("{\"x\":1,\"x\":1}", "{\"x\":1,\"y\":1}"));
    assert_true(eq("{\"x\":1,\"y\":0,\"x\":2}", "{\"x\":1,\"x\":2,\"y\":0}"));
    assert_true(jp_equal(NULL, NULL));
    {
        cJSON *n = J("null");
        assert_false(jp_equal(n, NULL));
        cJSON_Delete(n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pointer_rfc6901),
        cmocka_unit_test(test_pointer_errors),
        cmocka_unit_test(test_rfc6902_appendix_a),
        cmocka_unit_test(test_atomic),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_op_semantics),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_equal),
    };
    return cmocka_run_group_tests_name("jsonpatch", tests, NULL, NULL);
}
