/* lookup.c: reading the documents the API's resources write (templates, providers,
 * brands, profiles) in the shape the engine needs. Layout (kept by src/api):
 *   notifications/<id>              the draft, with version_count and archived
 *   notification_versions/<id>@vNNN a published snapshot
 *   providers/<id>                  {provider, channel, settings, priority, enabled, ...}
 *   brands/<id>, profiles/<user id> */
#include "send.h"

#include "defcache.h"

#include "../util/json.h"
#include "../util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* doc_json: a document's body parsed (caller owns), HR_NOTFOUND, or a store error. */
static int doc_json(struct store *s, const char *coll, struct str id, cJSON **out)
{
    struct arena *a = arena_new(4096);
    struct doc_rec d;
    int rc = store_doc_get(s, coll, id, a, &d);
    *out = NULL;
    if (rc == HR_OK) {
        *out = cJSON_ParseWithLength(d.body.p, d.body.len);
        if (!*out)
            rc = HR_IO;
    }
    arena_free(a);
    return rc;
}

int engine_template_published(struct store *s, struct str id, cJSON **out)
{
    cJSON *draft = NULL;
    int64_t n = 0;
    char vid[512];
    int rc;
    *out = NULL;
    if (id.len == 0 || id.len > 128)
        return HR_NOTFOUND;
    rc = doc_json(s, "notifications", id, &draft);
    if (rc < 0)
        goto out;
    if (!cJSON_IsObject(draft) || json_bool(draft, "archived", false)) {
        rc = HR_NOTFOUND;
        goto out;
    }
    /* the latest published snapshot is v<version_count> */
    if (!json_i64(draft, "version_count", &n) || n <= 0 || n > 999) {
        rc = HR_CONFLICT;
        goto out;
    }
    snprintf(vid, sizeof vid, "%.*s@v%03d", (int)id.len, id.p, (int)n);
    rc = doc_json(s, "notification_versions", str_c(vid), out);
    if (rc == HR_NOTFOUND)
        rc = HR_IO; /* the draft names a snapshot that is not there */
out:
    cJSON_Delete(draft);
    return rc;
}

static int by_priority(const void *pa, const void *pb)
{
    const cJSON *a = *(const cJSON *const *)pa, *b = *(const cJSON *const *)pb;
    int64_t x = 100, y = 100, cx = 0, cy = 0;
    json_i64(a, "priority", &x);
    json_i64(b, "priority", &y);
    if (x != y)
        return x < y ? -1 : 1;
    json_i64(a, "created", &cx);
    json_i64(b, "created", &cy);
    return cx < cy ? -1 : cx > cy;
}

/* load_providers (defcache_load_fn, ctx: the store): channel's enabled providers */
static int load_providers(void *ctx, const char *channel, struct defset *out)
{
    struct arena *a = arena_new(16384);
    struct doc_rec *docs = NULL;
    size_t n = 0, k = 0;
    cJSON **pick = NULL;
    int rc = store_doc_list(ctx, "providers", STR_NULL, STR_NULL, 1000, a, &docs, &n);
    if (rc < 0)
        goto out;
    pick = xcalloc(n + 1, sizeof *pick);
    for (size_t i = 0; i < n; i++) {
        cJSON *p = cJSON_ParseWithLength(docs[i].body.p, docs[i].body.len);
        const char *ch = json_str(p, "channel");
        if (p && ch && json_str(p, "id") && strcmp(ch, channel) == 0 &&
            json_bool(p, "enabled", true))
            pick[k++] = p;
        else
            cJSON_Delete(p);
    }
    qsort(pick, k, sizeof *pick, by_priority);
    for (size_t i = 0; i < k; i++)
        defset_add(out, json_str(pick[i], "id"), pick[i]);
out:
    free(pick);
    arena_free(a);
    return rc;
}

/* load_template (defcache_load_fn, ctx: the store): a published version, or the error */
static int load_template(void *ctx, const char *id, struct defset *out)
{
    cJSON *v = NULL;
    int rc = engine_template_published(ctx, str_c(id), &v);
    if (rc == HR_OK)
        defset_add(out, id, v);
    return rc;
}

int engine_template_cached(struct engine *e, const char *id, struct defset **hold,
                           const cJSON **out)
{
    int rc;
    *out = NULL;
    if (strlen(id) > 128) { /* engine_template_published's bound, before it is a key */
        *hold = NULL;
        return HR_NOTFOUND;
    }
    rc = defcache_get(e->tmpls, id, hclock_now(e->clock), load_template, e->store, hold);
    if (rc == HR_OK)
        *out = (*hold)->defs[0];
    return rc;
}

/* load_brand (defcache_load_fn, ctx: the store): brand name, or with name "" the default
 * brand; a set of none when there is no such brand */
static int load_brand(void *ctx, const char *name, struct defset *out)
{
    struct arena *a = arena_new(4096);
    struct str id = str_c(name), v;
    struct doc_rec d;
    int rc = HR_OK;
    if (!name[0]) {
        rc = store_meta_get(ctx, "default_brand_id", a, &v);
        id = rc == HR_OK ? v : STR_NULL;
        if (rc == HR_NOTFOUND)
            rc = HR_OK;
    }
    if (rc == HR_OK && id.len) {
        rc = store_doc_get(ctx, "brands", id, a, &d);
        if (rc == HR_OK) {
            cJSON *b = cJSON_ParseWithLength(d.body.p, d.body.len);
            char *key = xstrndup(id.p, id.len);
            if (b)
                defset_add(out, key, b);
            free(key);
        } else if (rc == HR_NOTFOUND) {
            rc = HR_OK;
        }
    }
    arena_free(a);
    return rc;
}

int engine_brand_cached(struct engine *e, const char *id, struct defset **hold,
                        const cJSON **out)
{
    int rc;
    *out = NULL;
    if (id && (!id[0] || strlen(id) > 128)) { /* no brand has that id; "" is the default's key */
        *hold = NULL;
        return HR_NOTFOUND;
    }
    rc = defcache_get(e->brands, id ? id : "", hclock_now(e->clock), load_brand, e->store, hold);
    if (rc == HR_OK && (*hold)->n)
        *out = (*hold)->defs[0];
    return rc;
}

int engine_channel_providers(struct engine *e, const char *channel, struct defset **out)
{
    return defcache_get(e->provs, channel, hclock_now(e->clock), load_providers, e->store, out);
}
