/* fuzz_courier_track.c: libFuzzer target for Courier's track API decoder
 * (seg_parse_courier, POST /inbound/courier). The input is the request body; an
 * accepted body yields exactly one normalised track event within the limits. */
#include "fuzz_common.h"
#include "../../src/ingest/segment.h"
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
    struct seg_limits lim;
    struct seg_result r;
    struct herr err;
    int rc;

    seg_limits_default(&lim);
    herr_clear(&err);
    rc = seg_parse_courier((const char *)data, size, 1764360000000LL, &lim, &r, &err);
    if (rc == 0) {
        cJSON *again = NULL;
        char *name;
        CHECK(r.n_events == 1 && r.n_rejects == 0);
        CHECK(r.events[0].type == SEG_TRACK);
        CHECK(r.events[0].message_id && r.events[0].serialized);
        CHECK(strlen(r.events[0].serialized) == r.events[0].serialized_len);
        CHECK(r.events[0].serialized_len <= lim.event_max);
        CHECK(json_parse_bounded(r.events[0].serialized, r.events[0].serialized_len,
                                 lim.depth_max + 2, &again, NULL) == 0);
        cJSON_Delete(again);
        name = seg_catalog_name(r.events[0].json);
        free(name);
    } else {
        CHECK(r.n_events == 0);
    }
    seg_result_cleanup(&r);
    return 0;
}
