/* id.h: identifiers in Courier's style: "1-" + 8 hex digits of Unix seconds + "-" +
 * 24 hex digits, e.g. 1-65f240a0-1f747a6a120c8374de9bcf9f. Of the 24, herald's own ids
 * start with 3 hex digits of the millisecond within that second (000-3e7) and the other
 * 21 are random (id_new) or hashed (id_derive). So ids sort by time to the millisecond:
 * ids made together are inserted beside each other in every index keyed by them, into
 * the few pages at its end, instead of onto a random page of each. */
#ifndef HERALD_UTIL_ID_H
#define HERALD_UTIL_ID_H

#include <stdint.h>

#define ID_LEN 35 /* characters, without the NUL */

/* id_new: write a new id for time now_ms into out (ID_LEN + 1 bytes). */
void id_new(int64_t now_ms, char out[ID_LEN + 1]);
/* id_derive: the id for time at_ms whose 21 last digits are the first 21 hex digits of
 * SHA-256(seed): the same (seed, at_ms) always gives the same id, so work repeated after
 * a crash finds what it made. */
void id_derive(const char *seed, int64_t at_ms, char out[ID_LEN + 1]);
/* id_derive_hashed: the id derived from seed by herald before ids carried their time
 * (all 32 digits from SHA-256(seed)): what work begun then must keep deriving. */
void id_derive_hashed(const char *seed, char out[ID_LEN + 1]);
/* id_time_ms: the time an id of this shape carries, in ms (to the second when its
 * millisecond digits are not 000-3e7, as in ids from before they were), so that an id
 * derived from it sorts beside it; 0 when id has another shape. */
int64_t id_time_ms(const char *id);
/* id_prefixed: "<prefix>" + 32 random hex chars into out (cap bytes). */
void id_prefixed(const char *prefix, char *out, unsigned cap);

#endif
