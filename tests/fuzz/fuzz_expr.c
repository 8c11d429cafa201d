/* fuzz_expr.c: libFuzzer target for the condition evaluator (expr.h). Input: an
 * expression, optionally followed by "\n%%\n" and a JSON run context (else a fixed one
 * with data, profile and refs). The expression is compiled; a compiled one is evaluated,
 * its truthiness taken and its value converted to text. */
#include "fuzz_common.h"
#include "../../src/expr/expr.h"
#include "../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char default_ctx[] =
    "{\"data\":{\"userId\":\"u1\",\"vip\":true,\"plan\":\"pro\",\"n\":3,\"x\":-0.5,"
    "\"tags\":[\"a\",\"b\",null,1],\"obj\":{\"k\":\"v\"},\"empty\":\"\",\"zero\":0,"
    "\"nested\":{\"a\":{\"b\":[{\"c\":\"deep\"}]}}},"
    "\"profile\":{\"email\":\"ada@example.com\",\"age\":36},"
    "\"refs\":{\"step1\":{\"status\":\"ENQUEUED\",\"body\":{\"ok\":true}}},"
    "\"recipient\":\"u1\"}";

/* cJSON allocates through xalloc here as in herald (src/main.c), so the fuzzer runs the
 * same cJSON code paths (printing without realloc) */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    json_use_xalloc();
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static cJSON *dflt;
    const unsigned char *sep = find_sep(data, size);
    size_t elen = sep ? (size_t)(sep - data) : size;
    cJSON *own = NULL;
    const cJSON *ctx;
    struct expr *e = NULL;
    struct expr_value v;
    struct herr err;

    if (!dflt && json_parse_bounded(default_ctx, sizeof default_ctx - 1, 64, &dflt, NULL) < 0)
        abort();
    if (sep) {
        const char *c = (const char *)sep + sizeof SEP - 1;
        size_t clen = size - (size_t)(c - (const char *)data);
        if (json_parse_bounded(c, clen, 64, &own, NULL) < 0)
            own = NULL;
    }
    ctx = own ? own : dflt;

    herr_clear(&err);
    if (expr_compile((const char *)data, elen, &e, &err) == 0) {
        CHECK(e != NULL);
        if (expr_eval(e, ctx, &v) == 0) {
            struct buf out;
            char num[EXPR_NUM_TEXT_MAX];
            bool t1 = expr_value_truthy(&v), t2 = expr_truthy(e, ctx);
            CHECK(t1 == t2);
            if (v.type == EXPR_STRING)
                CHECK(v.s.p && v.s.p[v.s.len] == '\0');
            if (v.type == EXPR_NUMBER)
                CHECK(expr_num_text(v.num, num) < EXPR_NUM_TEXT_MAX);
            buf_init(&out, EXPR_MAX_TEXT);
            (void)expr_value_text(&v, &out);
            buf_cleanup(&out);
        }
        expr_unref(expr_ref(e));
        expr_unref(e);
    }
    cJSON_Delete(own);
    return 0;
}
