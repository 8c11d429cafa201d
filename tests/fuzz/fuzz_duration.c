/* fuzz_duration.c: libFuzzer target for automation definitions (automation.h): the
 * input, as a C string, goes through automation_parse_duration (human text, ISO 8601,
 * milliseconds; a result is never negative nor past a year); when it is also JSON, the
 * document goes through automation_validate. */
#include "fuzz_common.h"
#include "../../src/engine/automation.h"
#include "../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define YEAR_MS (366LL * 86400000LL)

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
    char *s = malloc(size + 1);
    int64_t ms = -1;
    cJSON *def = NULL;
    struct herr err;

    memcpy(s, data, size);
    s[size] = '\0';
    if (automation_parse_duration(s, &ms) == 0)
        CHECK(ms >= 0 && ms <= YEAR_MS);
    free(s);

    if (json_parse_bounded((const char *)data, size, 64, &def, NULL) == 0) {
        herr_clear(&err);
        (void)automation_validate(def, &err);
        CHECK(memchr(err.msg, '\0', sizeof err.msg) != NULL);
        cJSON_Delete(def);
    }
    return 0;
}
