/* limit.h: per-provider concurrency and rate limits, applied by this node (process) to
 * its own provider calls. Nodes sharing a PostgreSQL store each apply the limits
 * separately, so N nodes may together make N times the calls.
 *
 * A provider document may carry `limits: {concurrency, per_second, burst}`:
 *   concurrency  calls in flight at once (1..LIMIT_CONCURRENCY_MAX); when absent, the
 *                engine's default (--provider-concurrency, 1000) applies
 *   per_second   calls started per second (0 < r <= LIMIT_PER_SECOND_MAX, fractions
 *                allowed); absent: no rate limit
 *   burst        calls that may start back to back after a quiet spell (1..LIMIT_BURST_MAX,
 *                default 1). A token bucket of `burst` tokens refilled at per_second: in
 *                any window of T seconds at most burst + per_second * T calls start.
 *
 * The table is keyed by provider id, capped at a fixed number of entries; entries with
 * no call in flight are reused oldest first, so removed providers age out. */
#ifndef HERALD_ENGINE_LIMIT_H
#define HERALD_ENGINE_LIMIT_H

#include "../util/rc.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIMIT_CONCURRENCY_MAX 10000
#define LIMIT_PER_SECOND_MAX 100000
#define LIMIT_BURST_MAX 1000
#define LIMIT_KEY_MAX 128          /* bytes of a key (a provider id), NUL included */
#define LIMIT_TABLE_CAP_DEFAULT 1024

struct limit_cfg {
    int concurrency;   /* 0: no cap */
    double per_second; /* 0: no cap */
    int burst;         /* bucket size; <= 0 means 1 */
};

struct limit_table;

/* limit_cfg_parse: read a provider's `limits` (NULL or JSON null: none given) into out
 * (absent fields are 0). Returns 0 or HR_INVAL with err naming the field and its bounds.
 * Pure; any thread. */
int limit_cfg_parse(const cJSON *limits, struct limit_cfg *out, struct herr *err);

/* limit_table_new: an empty table of at most cap entries (0: LIMIT_TABLE_CAP_DEFAULT).
 * Caller owns; free with limit_table_free (NULL is a no-op). Thread-safe to use. */
struct limit_table *limit_table_new(size_t cap);
void limit_table_free(struct limit_table *t);

/* limit_acquire: start one call for `key` under cfg at now_ms. Returns 0: the call may
 * start; *held tells whether it was counted, and then the caller must call
 * limit_release exactly once when it ended. Or HR_AGAIN: the key is at its concurrency
 * or rate limit, and *retry_at_ms (absolute) is when a slot or token is expected:
 * at the concurrency cap, after about one gap between two freed slots (call time /
 * concurrency, 5 ms to 1 s) plus up to as much jitter; at the rate limit, waiters are
 * spread one token apart after the last time handed out, at most 60 s ahead. Waiting
 * is not first come, first served. *at_cap (may be NULL) tells which: true at the
 * concurrency cap (a release of key frees the slot: limit_on_release), false at the rate
 * limit. A cfg without limits, or a full table whose every entry has calls in flight,
 * allows the call uncounted (*held false). Any thread. */
int limit_acquire(struct limit_table *t, const char *key, const struct limit_cfg *cfg,
                  int64_t now_ms, bool *held, int64_t *retry_at_ms, bool *at_cap);

/* limit_release: a held call for key that started at started_ms (limit_acquire's
 * now_ms) ended at now_ms: frees its slot and learns the call time. Any thread. */
void limit_release(struct limit_table *t, const char *key, int64_t started_ms, int64_t now_ms);

/* limit_wait_key: a non-zero number naming key's slots, for a job that waits for one
 * (job_result.wait_key); the release hook gets the same. Pure. */
uint64_t limit_wait_key(const char *key);

/* limit_on_release: fn(arg, limit_wait_key(key)) runs after every limit_release that
 * freed a slot of key, on the releasing thread with no lock of the table held (the
 * queue's unpark: a deferred call waiting for that slot runs now). Set once, before
 * the table is shared. */
void limit_on_release(struct limit_table *t, void (*fn)(void *arg, uint64_t key), void *arg);

/* limit_in_flight: calls in flight for key (0 when unknown). For tests. */
int limit_in_flight(struct limit_table *t, const char *key);

#endif
