/* fuzz_iso_time.c: libFuzzer target for the ISO-8601 parser (clock.h time_parse_iso),
 * used on Segment timestamps and automation `until`. The input is passed with its length
 * and no NUL (the parser must not read past len). A parsed time within years 1970..9999
 * is formatted with time_fmt_iso and must parse back to the same instant. */
#include "../../src/util/clock.h"
#include "../../src/util/rc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MS 253402300799999LL   /* 9999-12-31T23:59:59.999Z */

#define CHECK(c)                                                                              \
    do {                                                                                      \
        if (!(c)) {                                                                           \
            fprintf(stderr, "fuzz_iso_time: invariant failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    int64_t ms = 0, back = 0;
    char text[64];

    if (time_parse_iso((const char *)data, (unsigned long)size, &ms) != 0)
        return 0;
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
