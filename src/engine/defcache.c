/* defcache.c: the process's cache of definitions: automations per event name, providers
 * per channel, published templates (defcache.h). */
#include "defcache.h"

#include "../util/xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct defcache {
    pthread_mutex_t mu;
    struct defset *slots[DEFCACHE_SLOTS];
};

/* bumped by defcache_changed; a set loaded under an older value is stale */
static atomic_uint_fast64_t g_gen = 1;

void defcache_changed(void) { atomic_fetch_add(&g_gen, 1); }

struct defcache *defcache_new(void)
{
    struct defcache *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void defset_free(struct defset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->ids[i]);
        cJSON_Delete(s->defs[i]);
    }
    free(s->ids);
    free(s->defs);
    free(s->name);
    free(s);
}

void defset_unref(struct defset *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        defset_free(s);
}

static void defset_ref(struct defset *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void defset_add(struct defset *s, const char *id, cJSON *def)
{
    s->ids = xrealloc(s->ids, (s->n + 1) * sizeof *s->ids);
    s->defs = xrealloc(s->defs, (s->n + 1) * sizeof *s->defs);
    s->ids[s->n] = xstrdup(id);
    s->defs[s->n] = def;
    s->n++;
}

void defcache_free(struct defcache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < DEFCACHE_SLOTS; i++)
        defset_unref(c->slots[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static size_t slot_of(const char *name)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % DEFCACHE_SLOTS);
}

static bool fresh(const struct defset *s, const char *name, int64_t now_ms, uint64_t gen)
{
    return s && s->gen == gen && now_ms >= s->loaded_ms &&
           now_ms - s->loaded_ms < DEFCACHE_TTL_MS && strcmp(s->name, name) == 0;
}

int defcache_get(struct defcache *c, const char *name, int64_t now_ms, defcache_load_fn load,
                 void *ctx, struct defset **out)
{
    size_t k = slot_of(name);
    uint64_t gen = atomic_load(&g_gen);
    struct defset *s = NULL, *old = NULL;
    int rc;

    *out = NULL;
    if (c) {
        pthread_mutex_lock(&c->mu);
        s = c->slots[k];
        if (fresh(s, name, now_ms, gen))
            defset_ref(s);
        else
            s = NULL;
        pthread_mutex_unlock(&c->mu);
        if (s) {
            *out = s;
            return HR_OK;
        }
    }
    s = xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->name = xstrdup(name);
    s->loaded_ms = now_ms;
    s->gen = gen; /* read before the load: a change during it makes the set stale */
    rc = load(ctx, name, s);
    if (rc < 0) {
        defset_free(s);
        return rc;
    }
    if (c) {
        pthread_mutex_lock(&c->mu);
        old = c->slots[k];
        c->slots[k] = s;
        defset_ref(s); /* the cache's reference */
        pthread_mutex_unlock(&c->mu);
        defset_unref(old);
    }
    *out = s;
    return HR_OK;
}
