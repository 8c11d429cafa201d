/* fuzz_elemental.c: libFuzzer target for the Elemental validator and renderer
 * (elemental.h). Input: a JSON content document, optionally followed by "\n%%\n" and a
 * JSON render context (else a fixed one with data, profile, brand and locale). The
 * document is validated, then rendered for every channel whatever validation said (the
 * renderer must refuse bad content by itself). */
#include "fuzz_common.h"
#include "../../src/render/elemental.h"
#include "../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char default_ctx[] =
    "{\"data\":{\"name\":\"Ada\",\"n\":3,\"vip\":true,\"url\":\"https://example.com/a?b=1\","
    "\"items\":[{\"sku\":\"a\",\"qty\":1},{\"sku\":\"b\",\"qty\":2}],\"color\":\"#ff0000\"},"
    "\"profile\":{\"email\":\"ada@example.com\",\"phone_number\":\"+15550001111\"},"
    "\"brand\":{\"settings\":{\"colors\":{\"primary\":\"#9122aa\"}},"
    "\"email\":{\"header\":{\"logo\":{\"href\":\"https://example.com\","
    "\"image\":\"https://example.com/logo.png\"}},\"footer\":{\"content\":\"Bye {{name}}\"}}},"
    "\"tenant\":{\"id\":\"t1\"},\"locale\":\"fr\"}";

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
    size_t dlen = sep ? (size_t)(sep - data) : size;
    cJSON *doc = NULL, *own = NULL;
    const cJSON *ctx;
    struct herr err;

    if (!dflt && json_parse_bounded(default_ctx, sizeof default_ctx - 1, 64, &dflt, NULL) < 0)
        abort();
    if (json_parse_bounded((const char *)data, dlen, 64, &doc, NULL) < 0)
        return 0;
    if (sep) {
        const char *c = (const char *)sep + sizeof SEP - 1;
        size_t clen = size - (size_t)(c - (const char *)data);
        if (json_parse_bounded(c, clen, 64, &own, NULL) < 0)
            own = NULL;
    }
    ctx = own ? own : dflt;

    herr_clear(&err);
    (void)elemental_validate(doc, &err);
    for (int ch = CH_EMAIL; ch < CH_COUNT; ch++) {
        struct content out;
        int rc;
        herr_clear(&err);
        rc = elemental_render(doc, (enum channel)ch, ctx, NULL, &out, &err);
        if (rc < 0)
            CHECK(!out.subject && !out.html && !out.text && !out.title && !out.body &&
                  !out.json);
        content_cleanup(&out);
    }
    cJSON_Delete(doc);
    cJSON_Delete(own);
    return 0;
}
