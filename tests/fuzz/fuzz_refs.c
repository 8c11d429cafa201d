/* fuzz_refs.c: libFuzzer target for the refs/$ref resolver (refs.h). Input: a JSON step
 * definition, optionally followed by "\n%%\n" and a JSON run context (else a fixed one).
 * The definition is validated and resolved; a definition that validates must not fail to
 * resolve as a bad accessor, and a failed resolve leaves no result. */
#include "fuzz_common.h"
#include "../../src/engine/refs.h"
#include "../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char default_ctx[] =
    "{\"data\":{\"userId\":\"u1\",\"email\":\"ada@example.com\",\"wait\":\"5 minutes\","
    "\"items\":[{\"name\":\"a\"},{\"name\":\"b\"}],\"a b\":1,\"tpl\":\"${data.userId}\","
    "\"properties\":{\"plan\":\"pro\"}},"
    "\"profile\":{\"email\":\"p@example.com\",\"x\":[1,2,3]},"
    "\"refs\":{\"fetch1\":{\"body\":{\"x\":42,\"list\":[true,null]}}},"
    "\"recipient\":\"u1\",\"brand\":null,\"template\":\"t1\"}";

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
    cJSON *def = NULL, *own = NULL, *out = NULL;
    const cJSON *ctx;
    struct herr err;
    int vrc, rrc;

    if (!dflt && json_parse_bounded(default_ctx, sizeof default_ctx - 1, 64, &dflt, NULL) < 0)
        abort();
    if (json_parse_bounded((const char *)data, dlen, 64, &def, NULL) < 0)
        return 0;
    if (sep) {
        const char *c = (const char *)sep + sizeof SEP - 1;
        size_t clen = size - (size_t)(c - (const char *)data);
        if (json_parse_bounded(c, clen, 64, &own, NULL) < 0)
            own = NULL;
    }
    ctx = own ? own : dflt;

    herr_clear(&err);
    vrc = refs_validate(def, &err);
    herr_clear(&err);
    rrc = refs_resolve(def, ctx, &out, &err);
    if (rrc < 0)
        CHECK(out == NULL);
    else
        CHECK(out != NULL);
    if (vrc == HR_OK && rrc == HR_INVAL) {
        fprintf(stderr, "fuzz_refs: validate OK but resolve HR_INVAL: %s\n", err.msg);
        abort();
    }
    cJSON_Delete(out);
    if (cJSON_IsString(def))
        (void)refs_lookup(ctx, def->valuestring, strlen(def->valuestring));
    cJSON_Delete(def);
    cJSON_Delete(own);
    return 0;
}
