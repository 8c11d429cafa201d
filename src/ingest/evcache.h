/* evcache.h: a bounded, process-local hand-over of accepted events from ingest_accept to
 * the events job of the same process, so the job neither re-reads nor re-parses what the
 * HTTP thread parsed a moment ago. Keyed by the stored event id (put only once the event
 * is committed; ids are never reused while it waits). A miss (another node's job, a
 * restart, a full cache, a job that ran before the put) is never an error: the job reads
 * the event from the store then, so the cache changes no semantics. */
#ifndef HERALD_INGEST_EVCACHE_H
#define HERALD_INGEST_EVCACHE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVCACHE_SLOTS_DEFAULT 16384          /* events held at most */
#define EVCACHE_BYTES_DEFAULT (16u << 20)     /* serialized bytes held at most (the parsed
                                              * trees take a few times that again) */
#define EVCACHE_STALE_MS 10000               /* an entry this old may be replaced */

struct evcache;

/* evcache_new: an empty cache of `slots` entries (rounded up to a power of two) holding at
 * most max_bytes of serialized events; an entry older than stale_ms may be replaced
 * (EVCACHE_STALE_MS). Caller owns it (evcache_free). */
struct evcache *evcache_new(size_t slots, size_t max_bytes, int64_t stale_ms);
void evcache_free(struct evcache *c);

/* evcache_put: hand event `id` over: takes json and text (text_len bytes, NUL-terminated,
 * malloc'd) in every case; frees them at once when they do not fit (byte cap, or their slot
 * holds an entry younger than stale_ms), and frees a stale entry they replace. */
void evcache_put(struct evcache *c, int64_t id, cJSON *json, char *text, size_t text_len,
                 int64_t received_ms);

/* evcache_take: on a hit, remove event `id` and return true with its json and text (the
 * caller owns both now), its length and received_ms. False on a miss (outputs untouched). */
bool evcache_take(struct evcache *c, int64_t id, cJSON **json, char **text, size_t *text_len,
                  int64_t *received_ms);

/* evcache_count: entries held now (for tests). */
size_t evcache_count(struct evcache *c);

#endif
