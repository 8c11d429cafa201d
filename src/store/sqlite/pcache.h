/* pcache.h: SQLite's own page cache (pcache1) behind a thin layer that skips the
 * truncations which have nothing to drop.
 *
 * Why: at every commit the pager asks the cache to drop the pages past the end of the
 * database (sqlite3PcacheTruncate). pcache1 decides whether any can exist from the
 * largest key it ever gave a page, and that key never comes down once the b-tree has
 * used the lock page's number (PENDING_BYTE / page size + 1: 262145 with 4 KiB pages) as
 * a temporary key while it swaps two pages' numbers (balance_nonroot). From then on a
 * database under 1 GiB sees every commit walk the whole hash table of the writer's
 * 64 MiB cache (16,384 buckets): 7-9 % of the writer's samples under the flow bench.
 * This layer tracks the largest key a page can have (the lock page's number set aside,
 * with a count of the pages keyed there) and passes a truncation on only when a page
 * at or past the limit may exist. Every other call goes to pcache1 as it is. */
#ifndef HERALD_STORE_SQLITE_PCACHE_H
#define HERALD_STORE_SQLITE_PCACHE_H

#include <stdint.h>

/* sqlite_pcache_install: make the layer SQLite's page cache. Call once per process,
 * before sqlite3_initialize and any connection. Returns 0, or an SQLite error code
 * when SQLite was initialised already (pcache1 then stays as it is). */
int sqlite_pcache_install(void);

/* sqlite_pcache_truncations: truncations passed to pcache1 and skipped (nothing could
 * be dropped) since the process started, for tests. Either may be NULL. */
void sqlite_pcache_truncations(uint64_t *passed, uint64_t *skipped);

#endif
