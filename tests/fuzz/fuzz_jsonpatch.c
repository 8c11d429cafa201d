/* fuzz_jsonpatch.c: libFuzzer target for RFC 6902 JSON Patch, RFC 6901 pointers, the
 * shallow merge and JSON equality (jsonpatch.h). Input: a JSON document, "\n%%\n", then
 * a JSON patch (without the separator the input is the patch, applied to a fixed
 * profile). The patch is applied (the input document must stay unchanged), every op's
 * path/from is looked up as a pointer, and a patch object is merged into a copy. */
#include "fuzz_common.h"
#include "../../src/util/json.h"
#include "../../src/util/jsonpatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char default_doc[] =
    "{\"email\":\"ada@example.com\",\"name\":{\"first\":\"Ada\",\"last\":\"L\"},"
    "\"tags\":[\"a\",\"b\",{\"c\":[1,2]}],\"a/b\":1,\"m~n\":2,\"\":0,\"n\":null}";

static void lookup(const cJSON *doc, const cJSON *s)
{
    const cJSON *got = NULL;
    if (cJSON_IsString(s)) {
        int rc = jp_pointer_get(doc, str_c(s->valuestring), &got);
        CHECK(rc == 0 ? got != NULL : got == NULL);
    }
}

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
    const unsigned char *sep = find_sep(data, size);
    cJSON *doc = NULL, *ops = NULL, *out = NULL, *copy;
    char *before, *after;
    const cJSON *op;
    struct herr err;
    int rc;

    if (sep) {
        const char *p = (const char *)sep + sizeof SEP - 1;
        if (json_parse_bounded((const char *)data, (size_t)(sep - data), JP_MAX_DEPTH, &doc,
                               NULL) < 0)
            goto out;
        if (json_parse_bounded(p, size - (size_t)(p - (const char *)data), JP_MAX_DEPTH, &ops,
                               NULL) < 0)
            goto out;
    } else {
        if (json_parse_bounded(default_doc, sizeof default_doc - 1, JP_MAX_DEPTH, &doc,
                               NULL) < 0)
            abort();
        if (json_parse_bounded((const char *)data, size, JP_MAX_DEPTH, &ops, NULL) < 0)
            goto out;
    }

    before = json_print(doc);
    herr_clear(&err);
    rc = jp_apply_patch(doc, ops, &out, &err);
    after = json_print(doc);
    CHECK(strcmp(before, after) == 0);
    free(before);
    free(after);
    if (rc == 0) {
        CHECK(out != NULL);
        CHECK(jp_equal(out, out));
    } else {
        CHECK(out == NULL);
    }
    CHECK(jp_equal(doc, doc));
    cJSON_Delete(out);

    cJSON_ArrayForEach(op, ops)
    {
        lookup(doc, cJSON_GetObjectItemCaseSensitive(op, "path"));
        lookup(doc, cJSON_GetObjectItemCaseSensitive(op, "from"));
    }
    if (cJSON_IsString(ops))
        lookup(doc, ops);

    copy = cJSON_Duplicate(doc, 1);
    if (copy) {
        CHECK(jp_equal(copy, doc));
        jp_merge(copy, ops, false);
        jp_merge(copy, ops, true);
        jp_merge(copy, copy, false);
        cJSON_Delete(copy);
    }
out:
    cJSON_Delete(doc);
    cJSON_Delete(ops);
    return 0;
}
