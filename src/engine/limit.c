/* limit.c: per-provider concurrency caps and token-bucket rate limits for this node's
 * provider calls (see limit.h). One mutex guards a fixed array of entries; a lookup is a
 * linear scan comparing a hash first, cheap beside a provider call. */
#include "limit.h"

#include "../util/xalloc.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPREAD_MAX_MS 60000 /* no rate waiter is sent further ahead than this */
#define WAIT_MIN_MS 5       /* shortest wait for a concurrency slot */
#define WAIT_MAX_MS 1000    /* longest wait for a concurrency slot (before jitter) */

struct entry {
    bool used;
    uint64_t hash;
    char key[LIMIT_KEY_MAX];
    int in_flight;
    int64_t sum_start_ms; /* sum of the start times of the calls in flight */
    double avg_call_ms;   /* moving average of finished calls; 0: none yet */
    double tokens;        /* rate bucket, as of refill_ms */
    int64_t refill_ms;    /* 0: the bucket was never used (starts full) */
    int64_t spread_ms;    /* the last retry time handed to a waiter */
    int64_t last_ms;      /* last acquire or release: the oldest idle entry is reused */
};

struct limit_table {
    pthread_mutex_t mu;
    uint64_t rng;         /* xorshift64 state for jitter, under mu */
    size_t cap;
    struct entry *e;
    void (*on_release)(void *arg, uint64_t key); /* set before sharing; read only */
    void *on_release_arg;
};

/* ---- configuration ---------------------------------------------------------------- */

static bool int_in(const cJSON *v, double lo, double hi)
{
    return cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi &&
           v->valuedouble == floor(v->valuedouble);
}

int limit_cfg_parse(const cJSON *limits, struct limit_cfg *out, struct herr *err)
{
    const cJSON *v;
    int rc = HR_OK;

    memset(out, 0, sizeof *out);
    if (!limits || cJSON_IsNull(limits))
        goto out;
    if (!cJSON_IsObject(limits)) {
        rc = herr_set(err, HR_INVAL, "limits must be an object {concurrency, per_second, burst}");
        goto out;
    }
    cJSON_ArrayForEach(v, limits)
    {
        const char *k = v->string ? v->string : "";
        if (cJSON_IsNull(v))
            continue;
        if (strcmp(k, "concurrency") == 0) {
            if (!int_in(v, 1, LIMIT_CONCURRENCY_MAX)) {
                rc = herr_set(err, HR_INVAL, "limits.concurrency must be an integer from 1 to %d",
                              LIMIT_CONCURRENCY_MAX);
                goto out;
            }
            out->concurrency = (int)v->valuedouble;
        } else if (strcmp(k, "per_second") == 0) {
            if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) ||
                v->valuedouble > LIMIT_PER_SECOND_MAX) {
                rc = herr_set(err, HR_INVAL,
                              "limits.per_second must be a number above 0 and at most %d",
                              LIMIT_PER_SECOND_MAX);
                goto out;
            }
            out->per_second = v->valuedouble;
        } else if (strcmp(k, "burst") == 0) {
            if (!int_in(v, 1, LIMIT_BURST_MAX)) {
                rc = herr_set(err, HR_INVAL, "limits.burst must be an integer from 1 to %d",
                              LIMIT_BURST_MAX);
                goto out;
            }
            out->burst = (int)v->valuedouble;
        } else {
            rc = herr_set(err, HR_INVAL,
                          "limits.%.64s is not a limit (concurrency, per_second, burst)", k);
            goto out;
        }
    }
out:
    return rc;
}

/* ---- the table -------------------------------------------------------------------- */

struct limit_table *limit_table_new(size_t cap)
{
    struct limit_table *t = xcalloc(1, sizeof *t);
    t->cap = cap ? cap : LIMIT_TABLE_CAP_DEFAULT;
    t->e = xcalloc(t->cap, sizeof *t->e);
    t->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)t;
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void limit_table_free(struct limit_table *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->e);
    free(t);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* find: under t->mu, the entry for key, or NULL. */
static struct entry *find(struct limit_table *t, const char *key, uint64_t h)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->e[i].used && t->e[i].hash == h && strcmp(t->e[i].key, key) == 0)
            return &t->e[i];
    return NULL;
}

/* claim: under t->mu, a fresh entry for key: a free one, else the idle one used least
 * recently; NULL when every entry has calls in flight. */
static struct entry *claim(struct limit_table *t, const char *key, uint64_t h, int64_t now_ms)
{
    struct entry *best = NULL;
    for (size_t i = 0; i < t->cap; i++) {
        struct entry *e = &t->e[i];
        if (!e->used) {
            best = e;
            break;
        }
        if (e->in_flight == 0 && (!best || e->last_ms < best->last_ms))
            best = e;
    }
    if (!best)
        return NULL;
    memset(best, 0, sizeof *best);
    best->used = true;
    best->hash = h;
    snprintf(best->key, sizeof best->key, "%s", key);
    best->last_ms = now_ms;
    return best;
}

/* refill: bring e's bucket to now_ms under cfg. */
static void refill(struct entry *e, const struct limit_cfg *cfg, int64_t now_ms)
{
    double burst = cfg->burst > 0 ? cfg->burst : 1;
    if (e->refill_ms == 0) {
        e->tokens = burst;
    } else if (now_ms > e->refill_ms) {
        e->tokens += (double)(now_ms - e->refill_ms) * cfg->per_second / 1000.0;
    }
    if (now_ms > e->refill_ms)
        e->refill_ms = now_ms;
    if (e->tokens > burst)
        e->tokens = burst;
}

/* jitter: uniform in [0, n] from t's generator (under t->mu). */
static int64_t jitter(struct limit_table *t, int64_t n)
{
    uint64_t x = t->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    t->rng = x;
    return n > 0 ? (int64_t)(x % (uint64_t)(n + 1)) : 0;
}

/* call_estimate: how long a call takes, from finished calls and those in flight. */
static double call_estimate(const struct entry *e, int64_t now_ms)
{
    double est = e->avg_call_ms;
    if (e->in_flight > 0) {
        double elapsed = (double)now_ms - (double)e->sum_start_ms / e->in_flight;
        if (elapsed > est)
            est = elapsed;
    }
    return est;
}

int limit_acquire(struct limit_table *t, const char *key, const struct limit_cfg *cfg,
                  int64_t now_ms, bool *held, int64_t *retry_at_ms, bool *at_cap)
{
    uint64_t h = fnv1a(key);
    struct entry *e;
    int64_t wait = 0, step = 0, at;
    int rc = HR_OK;

    *retry_at_ms = 0;
    *held = false;
    if (at_cap)
        *at_cap = false;
    if (cfg->concurrency <= 0 && !(cfg->per_second > 0))
        return HR_OK; /* nothing to enforce, nothing to track */
    pthread_mutex_lock(&t->mu);
    e = find(t, key, h);
    if (!e)
        e = claim(t, key, h, now_ms);
    if (!e)
        goto out; /* every entry busy: allowed, untracked */
    if (cfg->per_second > 0)
        refill(e, cfg, now_ms);
    if (cfg->concurrency > 0 && e->in_flight >= cfg->concurrency) {
        /* a slot frees about every call_time / concurrency; come back after one such
         * gap plus jitter. Not spread like rate waiters: when calls are quick, a queue
         * of waiters paced by a guessed gap would run far below the real capacity */
        wait = (int64_t)(call_estimate(e, now_ms) / cfg->concurrency);
        if (wait < WAIT_MIN_MS)
            wait = WAIT_MIN_MS;
        if (wait > WAIT_MAX_MS)
            wait = WAIT_MAX_MS;
        *retry_at_ms = now_ms + wait + jitter(t, wait);
        if (at_cap)
            *at_cap = true;
        rc = HR_AGAIN;
        goto out;
    } else if (cfg->per_second > 0 && e->tokens < 1.0) {
        step = (int64_t)ceil(1000.0 / cfg->per_second);
        wait = (int64_t)ceil((1.0 - e->tokens) * 1000.0 / cfg->per_second);
        if (step < 1)
            step = 1;
        if (wait < 1)
            wait = 1;
        rc = HR_AGAIN;
    } else {
        e->in_flight++;
        e->sum_start_ms += now_ms;
        if (cfg->per_second > 0)
            e->tokens -= 1.0;
        e->last_ms = now_ms;
        *held = true;
        goto out;
    }
    /* tokens come at known times: spread the waiters, each one token after the last
     * time handed out, so they do not all come back for the same token */
    at = now_ms + wait;
    if (e->spread_ms + step > at)
        at = e->spread_ms + step;
    if (at > now_ms + SPREAD_MAX_MS)
        at = now_ms + SPREAD_MAX_MS;
    e->spread_ms = at;
    *retry_at_ms = at;
out:
    pthread_mutex_unlock(&t->mu);
    return rc;
}

void limit_release(struct limit_table *t, const char *key, int64_t started_ms, int64_t now_ms)
{
    uint64_t h = fnv1a(key);
    struct entry *e;
    double d = (double)(now_ms - started_ms);

    if (d < 0)
        d = 0;
    bool freed = false;
    pthread_mutex_lock(&t->mu);
    e = find(t, key, h);
    if (e && e->in_flight > 0) {
        e->in_flight--;
        e->sum_start_ms -= started_ms;
        if (e->in_flight == 0)
            e->sum_start_ms = 0;
        e->avg_call_ms = e->avg_call_ms > 0 ? e->avg_call_ms * 0.8 + d * 0.2 : d;
        e->last_ms = now_ms;
        freed = true;
    }
    pthread_mutex_unlock(&t->mu);
    if (freed && t->on_release)
        t->on_release(t->on_release_arg, h | 1);
}

uint64_t limit_wait_key(const char *key)
{
    return fnv1a(key) | 1;
}

void limit_on_release(struct limit_table *t, void (*fn)(void *arg, uint64_t key), void *arg)
{
    t->on_release = fn;
    t->on_release_arg = arg;
}

int limit_in_flight(struct limit_table *t, const char *key)
{
    struct entry *e;
    int n;
    pthread_mutex_lock(&t->mu);
    e = find(t, key, fnv1a(key));
    n = e ? e->in_flight : 0;
    pthread_mutex_unlock(&t->mu);
    return n;
}
