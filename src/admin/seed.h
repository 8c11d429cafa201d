/* seed.h: `herald seed`: fill a store with realistic profiles and sent messages (with
 * their history rows) in large batches, so benchmarks can measure how cost grows with
 * stored data. Writes through the store's bulk-copy operations; no SQL here. */
#ifndef HERALD_ADMIN_SEED_H
#define HERALD_ADMIN_SEED_H

#include "../store/store.h"

#include <stdint.h>
#include <stdio.h>

#define SEED_HISTORY_PER_MESSAGE 5 /* ENQUEUED, PROFILE_LOADED, RENDERED, DELIVERING, SENT */

struct seed_opts {
    int64_t profiles;    /* profiles "u0".."u<profiles-1>"; 0..100,000,000 */
    int64_t messages;    /* SENT messages, each with SEED_HISTORY_PER_MESSAGE history rows */
    size_t batch;        /* messages (or profiles) per transaction; 1..100,000 */
    int64_t now_ms;      /* the messages' times spread over the 30 days before this */
    FILE *progress;      /* a line every few seconds and one per table; NULL: quiet */
};

struct seed_result {
    int64_t profiles, messages, history;  /* rows written */
    int64_t profiles_ms, messages_ms;     /* wall time of each part */
};

/* seed_store: write opts->profiles profile documents (skipping ids already present) and
 * opts->messages messages with their history into s, each batch one transaction. The
 * messages get seq 1..N: the store must hold no messages and no history yet (else
 * HR_CONFLICT, nothing written). Recipients are drawn from the seeded profiles (or
 * "u<n>" ids when none are seeded). Fills *res (caller's storage). Returns HR_OK, or the
 * store's rc with err saying which part failed. Single-threaded caller. */
int seed_store(struct store *s, const struct seed_opts *opts, struct seed_result *res,
               struct herr *err);

#endif
