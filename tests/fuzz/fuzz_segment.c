/* fuzz_segment.c: libFuzzer target for the Segment tracking-API decoder (segment.h).
 * The input is a request body; it is parsed as a batch, as a single event of the kind
 * picked by the body length (track .. alias), and as a Webhooks-destination body. Every
 * accepted event must keep the documented invariants (serialized form within event_max
 * and equal to its length, a messageId, parseable again); catalog names and run data are
 * built from each event. Seeds: tests/fuzz/corpus/segment/ (segment.md §2 samples). */
#include "fuzz_common.h"
#include "../../src/ingest/segment.h"
#include "../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECEIVED_AT 1764360000000LL /* 2025-11-28T20:00:00Z */

static void check_result(int rc, const struct seg_result *r, const struct seg_limits *lim)
{
    if (rc < 0) {
        CHECK(r->n_events == 0 && r->n_rejects == 0);
        return;
    }
    for (size_t i = 0; i < r->n_events; i++) {
        const struct seg_event *e = &r->events[i];
        cJSON *again = NULL;
        char *name;
        cJSON *run;
        CHECK(e->json && e->serialized && e->message_id);
        CHECK(e->type >= SEG_TRACK && e->type <= SEG_ALIAS);
        CHECK(strlen(e->serialized) == e->serialized_len);
        CHECK(e->serialized_len <= lim->event_max);
        CHECK(json_parse_bounded(e->serialized, e->serialized_len, lim->depth_max + 2, &again,
                                 NULL) == 0);
        cJSON_Delete(again);
        name = seg_catalog_name(e->json);
        free(name);
        run = seg_run_data_new(e->json);
        CHECK(run != NULL);
        cJSON_Delete(run);
    }
    for (size_t i = 0; i < r->n_rejects; i++)
        CHECK(memchr(r->rejects[i].msg, '\0', SEG_REJECT_MSG) != NULL);
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
    const char *body = (const char *)data;
    struct seg_limits lim, dlim;
    struct seg_result r;
    struct herr err;
    int rc;

    seg_limits_default(&lim);
    seg_limits_destination(&dlim);

    herr_clear(&err);
    rc = seg_parse(body, size, SEG_BATCH, RECEIVED_AT, &lim, &r, &err);
    check_result(rc, &r, &lim);
    seg_result_cleanup(&r);

    herr_clear(&err);
    rc = seg_parse(body, size, (enum seg_kind)(SEG_TRACK + size % 6), RECEIVED_AT, &lim, &r,
                   &err);
    check_result(rc, &r, &lim);
    if (rc == 0)
        CHECK(r.n_events + r.n_rejects == 1);
    seg_result_cleanup(&r);

    herr_clear(&err);
    rc = seg_parse_destination(body, size, RECEIVED_AT, &dlim, &r, &err);
    check_result(rc, &r, &dlim);
    seg_result_cleanup(&r);
    return 0;
}
