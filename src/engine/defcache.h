/* defcache.h: definitions cached in the process, each set under a name, for the jobs
 * that read them for every event or message: an event name's linked automations with
 * their definitions (the events job; engine.defs), a channel's enabled providers
 * (routes; engine.provs, engine_channel_providers), a template's published version
 * (routes; engine.tmpls, engine_template_cached) and a brand, or the default brand
 * (routes; engine.brands, engine_brand_cached). Without it every event read its links
 * and each linked automation's definition (two reads on a reader connection, two JSON
 * parses) on the store's writer thread, inside the events job's commit, and every route
 * read and parsed every provider record and its template (two more reads).
 *
 * An entry is used for at most DEFCACHE_TTL_MS, and every entry is dropped as soon as
 * this process changes an automation, a link, a provider, a template, a brand or the
 * default brand setting
 * (defcache_changed: called inside the writing transaction and again after its commit,
 * so a load that raced the commit is dropped too). Another node's change (PostgreSQL) shows within the TTL.
 *
 * Thread-safe. A set is immutable and reference-counted: defcache_get hands out a
 * reference the caller gives back with defset_unref. */
#ifndef HERALD_ENGINE_DEFCACHE_H
#define HERALD_ENGINE_DEFCACHE_H

#include "../util/rc.h"
#include "../util/str.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define DEFCACHE_TTL_MS 1000
#define DEFCACHE_SLOTS 256 /* event names cached at once (direct-mapped by hash) */

struct defcache;

/* The definitions cached under one name: for an event name, the automations linked to it,
 * ids[i] and defs[i] (the latest committed definition, with its "version"; NULL when the
 * automation was deleted); for a channel, its providers' ids and records; for a
 * template, its id and published version. */
struct defset {
    size_t n;
    char **ids;
    cJSON **defs;
    /* private */
    _Atomic int refs;
    char *name;
    int64_t loaded_ms;
    uint64_t gen;
};

/* defcache_load_fn: read name's links and definitions from the store into a new set
 * (defset_new + defset_add); HR_OK or the store's error. */
typedef int (*defcache_load_fn)(void *ctx, const char *name, struct defset *out);

struct defcache *defcache_new(void); /* caller owns; defcache_free */
void defcache_free(struct defcache *c);

/* defcache_get: name's set (a reference: defset_unref it), from the cache when fresh,
 * else loaded with load(ctx, ...) and cached. c NULL: always loaded, never cached.
 * Returns HR_OK or load's error (*out NULL then). */
int defcache_get(struct defcache *c, const char *name, int64_t now_ms, defcache_load_fn load,
                 void *ctx, struct defset **out);
void defset_unref(struct defset *s);
/* defset_add: append (id, def) to a set being loaded; def is taken over (may be NULL). */
void defset_add(struct defset *s, const char *id, cJSON *def);

/* defcache_changed: an automation, a link, a provider or a template changed in this
 * process: every cached set is stale. Process-wide (every defcache). */
void defcache_changed(void);

#endif
