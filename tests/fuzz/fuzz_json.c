/* fuzz_json.c: libFuzzer target for bounded JSON input (json.h): json_parse_bounded at
 * the default depth and at a small one, utf8_valid, the accessors, and the round trip
 * herald relies on when it stores a document: what json_print writes must parse again
 * under the same bounds and print the same again, and be what cJSON_PrintUnformatted
 * writes (json_print is a faster printer of the same bytes). */
#include "fuzz_common.h"
#include "../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    const char *p = (const char *)data;
    cJSON *v = NULL, *small = NULL;
    struct herr err;
    bool utf8 = utf8_valid(p, size);
    int rc;

    herr_clear(&err);
    rc = json_parse_bounded(p, size, JSON_MAX_DEPTH_DEFAULT, &v, &err);
    if (rc == 0) {
        char *text = json_print(v), *theirs = cJSON_PrintUnformatted(v);
        cJSON *again = NULL;
        int64_t i;
        CHECK(theirs && strcmp(text, theirs) == 0);
        cJSON_free(theirs);
        CHECK(utf8);
        CHECK(utf8_valid(text, strlen(text)));
        CHECK(json_parse_bounded(text, strlen(text), JSON_MAX_DEPTH_DEFAULT, &again, NULL) == 0);
        {
            char *text2 = json_print(again); /* print(parse(print(v))) == print(v) */
            CHECK(strcmp(text, text2) == 0);
            free(text2);
        }
        cJSON_Delete(again);
        free(text);
        (void)json_str(v, "a");
        (void)json_i64(v, "a", &i);
        (void)json_bool(v, "a", false);
        (void)json_obj(v, "a");
        (void)json_arr(v, "a");
    } else {
        CHECK(v == NULL);
    }
    herr_clear(&err);
    if (json_parse_bounded(p, size, 4, &small, &err) == 0)
        CHECK(rc == 0);
    cJSON_Delete(small);
    cJSON_Delete(v);
    return 0;
}
