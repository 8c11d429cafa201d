/* pcache.c: pcache1 behind a layer that skips empty truncations (see pcache.h). */
#include "pcache.h"

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define LOCK_BYTE 0x40000000u /* SQLite's PENDING_BYTE: the lock page holds it */

/* One cache. SQLite calls a cache's methods for one connection at a time, so its
 * fields need no lock. */
struct pcache {
    sqlite3_pcache *base; /* pcache1's */
    unsigned lck;         /* the lock page's number for this page size */
    unsigned max_key;     /* no page has a larger key, the lock page's aside */
    unsigned at_lck;      /* pages rekeyed to lck and not rekeyed away yet */
    bool lck_made;        /* a page was made at lck: every truncation goes through */
};

static sqlite3_pcache_methods2 base_m; /* pcache1's methods, read at install */
static _Atomic uint64_t n_passed, n_skipped;

static int pc_init(void *arg)
{
    (void)arg;
    return base_m.xInit(base_m.pArg);
}

static void pc_shutdown(void *arg)
{
    (void)arg;
    if (base_m.xShutdown)
        base_m.xShutdown(base_m.pArg);
}

static sqlite3_pcache *pc_create(int sz_page, int sz_extra, int purgeable)
{
    struct pcache *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return NULL;
    c->base = base_m.xCreate(sz_page, sz_extra, purgeable);
    if (!c->base) {
        sqlite3_free(c);
        return NULL;
    }
    c->lck = sz_page > 0 ? LOCK_BYTE / (unsigned)sz_page + 1 : 0;
    c->max_key = 0;
    c->at_lck = 0;
    c->lck_made = false;
    return (sqlite3_pcache *)c;
}

static void pc_cachesize(sqlite3_pcache *p, int n)
{
    struct pcache *c = (struct pcache *)p;
    base_m.xCachesize(c->base, n);
}

static int pc_pagecount(sqlite3_pcache *p)
{
    struct pcache *c = (struct pcache *)p;
    return base_m.xPagecount(c->base);
}

static sqlite3_pcache_page *pc_fetch(sqlite3_pcache *p, unsigned key, int create)
{
    struct pcache *c = (struct pcache *)p;
    sqlite3_pcache_page *pg = base_m.xFetch(c->base, key, create);
    if (pg) {
        if (key == c->lck) {
            if (c->at_lck == 0) /* not a page rekeyed there: one made at lck */
                c->lck_made = true;
        } else if (key > c->max_key) {
            c->max_key = key;
        }
    }
    return pg;
}

static void pc_unpin(sqlite3_pcache *p, sqlite3_pcache_page *pg, int discard)
{
    struct pcache *c = (struct pcache *)p;
    base_m.xUnpin(c->base, pg, discard);
}

static void pc_rekey(sqlite3_pcache *p, sqlite3_pcache_page *pg, unsigned old_key,
                     unsigned new_key)
{
    struct pcache *c = (struct pcache *)p;
    base_m.xRekey(c->base, pg, old_key, new_key);
    if (old_key == c->lck && c->at_lck > 0)
        c->at_lck--;
    if (new_key == c->lck)
        c->at_lck++;
    else if (new_key > c->max_key)
        c->max_key = new_key;
}

/* pc_truncate: drop the pages keyed limit and up. Nothing to drop when every key made
 * is below limit and no page sits at the lock page's number (or the lock page itself
 * is below limit: a database past 1 GiB, where pcache1 scans little anyway) */
static void pc_truncate(sqlite3_pcache *p, unsigned limit)
{
    struct pcache *c = (struct pcache *)p;
    bool lck_above = c->lck >= limit && (c->at_lck > 0 || c->lck_made);
    if (c->max_key < limit && !lck_above) {
        atomic_fetch_add_explicit(&n_skipped, 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&n_passed, 1, memory_order_relaxed);
    base_m.xTruncate(c->base, limit);
    if (c->max_key >= limit)
        c->max_key = limit > 0 ? limit - 1 : 0;
    if (c->lck >= limit) { /* pages at lck were dropped with the rest */
        c->at_lck = 0;
        c->lck_made = false;
    }
}

static void pc_destroy(sqlite3_pcache *p)
{
    struct pcache *c = (struct pcache *)p;
    base_m.xDestroy(c->base);
    sqlite3_free(c);
}

static void pc_shrink(sqlite3_pcache *p)
{
    struct pcache *c = (struct pcache *)p;
    if (base_m.xShrink)
        base_m.xShrink(c->base);
}

int sqlite_pcache_install(void)
{
    static const sqlite3_pcache_methods2 m = {
        .iVersion = 1,
        .xInit = pc_init,
        .xShutdown = pc_shutdown,
        .xCreate = pc_create,
        .xCachesize = pc_cachesize,
        .xPagecount = pc_pagecount,
        .xFetch = pc_fetch,
        .xUnpin = pc_unpin,
        .xRekey = pc_rekey,
        .xTruncate = pc_truncate,
        .xDestroy = pc_destroy,
        .xShrink = pc_shrink,
    };
    int src = sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &base_m);
    if (src != SQLITE_OK)
        return src;
    if (!base_m.xInit || !base_m.xCreate || !base_m.xFetch || !base_m.xTruncate)
        return SQLITE_MISUSE;
    return sqlite3_config(SQLITE_CONFIG_PCACHE2, &m);
}

void sqlite_pcache_truncations(uint64_t *passed, uint64_t *skipped)
{
    if (passed)
        *passed = atomic_load_explicit(&n_passed, memory_order_relaxed);
    if (skipped)
        *skipped = atomic_load_explicit(&n_skipped, memory_order_relaxed);
}
