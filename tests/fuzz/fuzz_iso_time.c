/* fuzz_iso_time.c: libFuzzer target for the ISO-8601 parsers (clock.h time_parse_iso,
 * used on automation `until`, and time_parse_lenient, used on Segment timestamps). The
 * input is passed with its length and no NUL (the parsers must not read past len).
 * Whatever the strict parser takes the lenient one takes too, as the same instant. A
 * parsed time within years 1970..9999 is formatted with time_fmt_iso and must parse back
 * to the same instant. */
#include "fuzz_common.h"
#include "../../src/util/clock.h"
#include "../../src/util/rc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MS 253402300799999LL   /* 9999-12-31T23:59:59.999Z */

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    int64_t ms = 0, lms = 0, back = 0;
    char text[64];
    int rc = time_parse_iso((const char *)data, (unsigned long)size, &ms);
    int lrc = time_parse_lenient((const char *)data, (unsigned long)size, &lms);

    if (rc == 0)
        CHECK(lrc == 0 && lms == ms);
    if (lrc != 0)
        return 0;
    ms = lms;
    if (ms < 0 || ms > MAX_MS)
        return 0; /* time_fmt_iso is for receivedAt-like instants */
    memset(text, 0, sizeof text);
    time_fmt_iso(ms, text, sizeof text);
    if (time_parse_iso(text, (unsigned long)strlen(text), &back) != 0 || back != ms) {
        fprintf(stderr, "fuzz_iso_time: %lld formats as \"%s\", which parses to %lld\n",
                (long long)ms, text, (long long)back);
        abort();
    }
    return 0;
}
