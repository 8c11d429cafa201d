/* fuzz_hbs.c: libFuzzer target for the Handlebars compiler and renderer (hbs.h).
 * Input: a template, optionally followed by "\n%%\n" and a JSON render context (when
 * absent or not JSON, a fixed context with data, profile and brand is used). The
 * template is compiled; a compiled template is rendered in HTML and in text mode under
 * a bounded output and step budget. On failure the output must be restored. */
#include "fuzz_common.h"
#include "../../src/render/hbs.h"
#include "../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_CAP (256u * 1024)
#define STEPS 200000u

static const char default_ctx[] =
    "{\"data\":{\"name\":\"Ada\",\"n\":3,\"x\":0.5,\"ok\":true,\"none\":null,"
    "\"items\":[{\"sku\":\"a\",\"qty\":1},{\"sku\":\"b\",\"qty\":2}],"
    "\"obj\":{\"k\":\"v\",\"w\":[1,2]},\"html\":\"<b>&'\\\"\",\"date\":\"2024-04-08T08:09:10Z\","
    "\"ms\":1712563750123,\"json\":\"{\\\"a\\\":[1,{\\\"b\\\":2}]}\"},"
    "\"profile\":{\"email\":\"ada@example.com\",\"name\":\"Ada L\",\"locale\":\"fr\"},"
    "\"brand\":{\"name\":\"Herald\",\"colors\":{\"primary\":\"#123456\"}},"
    "\"tenant\":{\"id\":\"t1\"}}";

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
    size_t tlen = sep ? (size_t)(sep - data) : size;
    cJSON *own = NULL;
    const cJSON *ctx;
    struct hbs_tmpl *t = NULL;
    struct herr err;
    struct buf out;

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
    if (hbs_compile((const char *)data, tlen, &t, &err) == 0) {
        size_t slen = 0;
        const char *src = hbs_source(t, &slen);
        CHECK(slen == tlen && memcmp(src, data, tlen) == 0 && src[slen] == '\0');
        for (int m = HBS_HTML; m <= HBS_TEXT; m++) {
            struct hbs_render_opts o = {.mode = (enum hbs_mode)m, .max_steps = STEPS};
            int rc;
            buf_init(&out, OUT_CAP);
            CHECK(buf_append(&out, "pre", 3) == 0);
            herr_clear(&err);
            rc = hbs_render_ex(t, ctx, &o, &out, &err);
            CHECK(out.len <= OUT_CAP);
            if (rc < 0)
                CHECK(out.len == 3);
            buf_cleanup(&out);
        }
        hbs_unref(t);
    }
    cJSON_Delete(own);
    return 0;
}
