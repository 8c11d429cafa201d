/* fuzz_common.h: what every libFuzzer target under tests/fuzz shares: the invariant
 * check (abort with the target file and line, so libFuzzer saves the input), and the
 * "\n%%\n" separator that splits one input into two documents (a template or a
 * definition, then its context). Header-only; each target includes it once. */
#ifndef HERALD_FUZZ_COMMON_H
#define HERALD_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CHECK: abort with a message naming the target, the condition and its line */
#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "%s: invariant failed: %s (line %d)\n", __FILE__, #c, __LINE__); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

#define SEP "\n%%\n"

/* find_sep: the first SEP in d[0..n), or NULL */
static inline const unsigned char *find_sep(const unsigned char *d, size_t n)
{
    size_t k = sizeof SEP - 1;
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(d + i, SEP, k) == 0)
            return d + i;
    return NULL;
}

#endif
