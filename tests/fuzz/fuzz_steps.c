/* fuzz_steps.c: libFuzzer target for automation and step definitions (automation.h).
 * Input: a JSON automation {name?, steps, cancelation_token?}, optionally followed by
 * "\n%%\n" and a JSON run context (else a fixed one). The definition is validated; each
 * step of one that validates is prepared as a run would (`if`, accessors, the checks of
 * what resolution brought in), without a store. Invariants: a prepared step exists
 * exactly when it succeeded and was not skipped; an invoke step's template is then an
 * automation id; a fetch-data step's url is http(s) with no space or control byte and
 * its method (when set) one of GET POST PUT PATCH DELETE; a step that fails says why. */
#include "fuzz_common.h"
#include "../../src/engine/automation.h"
#include "../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char default_ctx[] =
    "{\"data\":{\"userId\":\"u1\",\"next\":\"auto-b\",\"m\":\"POST\",\"crlf\":\"GET\\r\\nX: 1\","
    "\"url\":\"http://127.0.0.1/x\",\"n\":7,\"wait\":\"5 minutes\",\"items\":[1,2]},"
    "\"profile\":{\"email\":\"p@example.com\"},\"refs\":{\"f\":{\"body\":{\"id\":\"auto-c\"}}},"
    "\"recipient\":\"u1\",\"brand\":null,\"template\":\"t1\"}";

static void check_prepared(const cJSON *st)
{
    const char *action = json_str(st, "action");
    if (!action)
        return;
    if (!strcmp(action, "invoke")) {
        const char *t = json_str(st, "template");
        CHECK(t && automation_id_ok(str_c(t)));
    } else if (!strcmp(action, "fetch-data")) {
        const cJSON *w = json_obj(st, "webhook");
        const char *url = json_str(w, "url"), *m = json_str(w, "method");
        CHECK(url && (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8)));
        for (const char *p = url; *p; p++)
            CHECK((unsigned char)*p > 0x20 && *p != 0x7f);
        if (m)
            CHECK(!strcmp(m, "GET") || !strcmp(m, "POST") || !strcmp(m, "PUT") ||
                  !strcmp(m, "PATCH") || !strcmp(m, "DELETE"));
        else
            CHECK(!cJSON_GetObjectItemCaseSensitive(w, "method") ||
                  cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(w, "method")));
    } else if (!strcmp(action, "delay")) {
        const char *d = json_str(st, "duration");
        int64_t ms;
        if (d && automation_parse_duration(d, &ms) == HR_OK)
            CHECK(ms >= 0);
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
    static cJSON *dflt;
    const unsigned char *sep = find_sep(data, size);
    size_t dlen = sep ? (size_t)(sep - data) : size;
    cJSON *def = NULL, *own = NULL;
    const cJSON *ctx, *raw;
    struct herr err;

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
    if (automation_validate(def, &err) == HR_OK) {
        cJSON_ArrayForEach(raw, json_arr(def, "steps"))
        {
            cJSON *st = NULL;
            bool skipped = true;
            int rc;
            herr_clear(&err);
            rc = automation_step_prepare(raw, ctx, &st, &skipped, &err);
            if (rc < 0) {
                CHECK(st == NULL);
                CHECK(err.msg[0] != '\0');
            } else if (skipped) {
                CHECK(st == NULL);
            } else {
                CHECK(st != NULL);
                check_prepared(st);
            }
            cJSON_Delete(st);
        }
    } else {
        CHECK(err.msg[0] != '\0');
    }
    cJSON_Delete(def);
    cJSON_Delete(own);
    return 0;
}
