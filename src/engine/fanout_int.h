/* fanout_int.h: what fanout.c and fanout_list.c share and nothing else uses: the
 * newest-first index of fan-outs that GET /bulk pages through. */
#ifndef HERALD_ENGINE_FANOUT_INT_H
#define HERALD_ENGINE_FANOUT_INT_H

#include "fanout.h"

#define FANOUT_COLL "fanouts" /* the fan-out documents (fanout.h) */

/* fanout__index: inside t, add fan-out id (of kind, created at created_ms) to the
 * newest-first index engine_fanout_list reads. Called in the transaction that creates the
 * fan-out document, so the two exist together. HR_OK also when listed already. */
int fanout__index(struct store_txn *t, enum fanout_kind kind, const char *id,
                  int64_t created_ms) HR_MUSTCHECK;

#endif
