/* id.h: identifiers in Courier's style: "1-" + 8 hex digits of Unix seconds + "-" +
 * 24 random hex digits, e.g. 1-65f240a0-47a6a120c8374de9bcf9f22c. Sortable by time. */
#ifndef HERALD_UTIL_ID_H
#define HERALD_UTIL_ID_H

#include <stdint.h>

#define ID_LEN 35 /* characters, without the NUL */

/* id_new: write a new id for time now_ms into out (ID_LEN + 1 bytes). */
void id_new(int64_t now_ms, char out[ID_LEN + 1]);
/* id_prefixed: "<prefix>" + 32 random hex chars into out (cap bytes). */
void id_prefixed(const char *prefix, char *out, unsigned cap);

#endif
