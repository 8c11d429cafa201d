/* id.h: identifiers in Courier's style: "1-" + 8 hex digits of Unix seconds + "-" +
 * 24 random hex digits, e.g. 1-65f240a0-47a6a120c8374de9bcf9f22c. Sortable by time. */
#ifndef HERALD_UTIL_ID_H
#define HERALD_UTIL_ID_H

#include <stdint.h>

#define ID_LEN 35 /* characters, without the NUL */

/* id_new: write a new id for time now_ms into out (ID_LEN + 1 bytes). */
void id_new(int64_t now_ms, char out[ID_LEN + 1]);
/* id_derive: the id of id_new's shape for time secs whose 24 other digits are the first
 * 24 hex digits of SHA-256(seed): the same (seed, secs) always gives the same id, so work
 * repeated after a crash finds what it made. Ids derived for one time sort together:
 * their inserts land in the same few pages of every index keyed by them (a fully hashed
 * id lands on a random page of each, and that page is written again at every commit). */
void id_derive(const char *seed, uint32_t secs, char out[ID_LEN + 1]);
/* id_secs: the time part of an id of id_new's shape ("1-" + 8 hex digits + "-"), so that
 * ids derived from it sort beside it; 0 when id has another shape. */
uint32_t id_secs(const char *id);
/* id_prefixed: "<prefix>" + 32 random hex chars into out (cap bytes). */
void id_prefixed(const char *prefix, char *out, unsigned cap);

#endif
