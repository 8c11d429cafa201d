/* evcache.c: the accepted-event hand-over (see evcache.h). Direct-mapped on the event id:
 * ids grow by one per event, so consecutive events fill consecutive slots. When the jobs
 * lag by more than `slots` events, a put finds its slot still taken: the older entry, whose
 * job comes sooner, stays and the new event is dropped (its job reads the store), so a
 * backlog still hits for the events at its head instead of missing everywhere. An entry
 * left older than the cache's stale_ms (its job ran on another node, or before the put) is
 * replaced. One mutex; what an operation drops is freed after it is released. */
#include "evcache.h"

#include "../util/clock.h"
#include "../util/xalloc.h"

#include <pthread.h>
#include <stdlib.h>

struct slot {
    int64_t id;         /* 0: empty (stored ids start at 1) */
    cJSON *json;
    char *text;
    size_t text_len;
    int64_t received_ms;
    int64_t put_mono_ms;
};

struct evcache {
    pthread_mutex_t mu;
    struct slot *slots;
    size_t mask;
    size_t bytes, max_bytes, count;
    int64_t stale_ms;
};

struct evcache *evcache_new(size_t slots, size_t max_bytes, int64_t stale_ms)
{
    struct evcache *c = xcalloc(1, sizeof *c);
    size_t n = 1;
    while (n < slots)
        n <<= 1;
    c->slots = xcalloc(n, sizeof *c->slots);
    c->mask = n - 1;
    c->max_bytes = max_bytes;
    c->stale_ms = stale_ms;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void evcache_free(struct evcache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i <= c->mask; i++) {
        cJSON_Delete(c->slots[i].json);
        free(c->slots[i].text);
    }
    pthread_mutex_destroy(&c->mu);
    free(c->slots);
    free(c);
}

/* unhook: empty s (lock held); its contents go to *old for freeing after the unlock. */
static void unhook(struct evcache *c, struct slot *s, struct slot *old)
{
    *old = *s;
    if (s->id) {
        c->bytes -= s->text_len;
        c->count--;
    }
    *s = (struct slot){0};
}

void evcache_put(struct evcache *c, int64_t id, cJSON *json, char *text, size_t text_len,
                 int64_t received_ms)
{
    struct slot old = {0};
    bool kept = false;
    if (!c || id <= 0)
        goto out;
    pthread_mutex_lock(&c->mu);
    struct slot *s = &c->slots[(size_t)id & c->mask];
    int64_t now = time_mono_ms();
    if (s->id && now - s->put_mono_ms < c->stale_ms) {
        pthread_mutex_unlock(&c->mu);
        goto out;
    }
    unhook(c, s, &old);
    if (c->bytes + text_len <= c->max_bytes) {
        *s = (struct slot){id, json, text, text_len, received_ms, now};
        c->bytes += text_len;
        c->count++;
        kept = true;
    }
    pthread_mutex_unlock(&c->mu);
out:
    cJSON_Delete(old.json);
    free(old.text);
    if (!kept) {
        cJSON_Delete(json);
        free(text);
    }
}

bool evcache_take(struct evcache *c, int64_t id, cJSON **json, char **text, size_t *text_len,
                  int64_t *received_ms)
{
    struct slot got = {0};
    bool hit = false;
    if (!c || id <= 0)
        return false;
    pthread_mutex_lock(&c->mu);
    struct slot *s = &c->slots[(size_t)id & c->mask];
    if (s->id == id)
        unhook(c, s, &got);
    pthread_mutex_unlock(&c->mu);
    if (got.id == id) {
        *json = got.json;
        *text = got.text;
        *text_len = got.text_len;
        *received_ms = got.received_ms;
        hit = true;
    } else {
        cJSON_Delete(got.json);
        free(got.text);
    }
    return hit;
}

size_t evcache_count(struct evcache *c)
{
    size_t n;
    pthread_mutex_lock(&c->mu);
    n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}
