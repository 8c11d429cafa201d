/* fanout_list.c: bulk jobs and list sends listed newest first (GET /bulk).
 *
 * Fan-out ids do not sort by time (an Idempotency-Key makes a hashed one), so each
 * fan-out also has a key in the "fanout_index" collection, written in the transaction
 * that creates it: "<kind>|<13 digits: NEWEST_FIRST_MAX - created ms>|<fan-out id>"
 * (body "{}"). Keys sort newest first within a kind; a page reads limit + 1 keys after
 * the cursor (the last key of the previous page) and loads only the fan-outs on it. */
#include "fanout_int.h"

#include "../util/clock.h"
#include "../util/id.h"
#include "../util/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define C_INDEX "fanout_index"
#define NEWEST_FIRST_MAX INT64_C(9999999999999)
#define KIND_MAX 8 /* "bulk", "list" */
#define INDEX_KEY_MAX (KIND_MAX + 24 + ID_LEN) /* "<kind>|<13+ digits>|<id>" */

static const char *kind_name(enum fanout_kind kind)
{
    return kind == FANOUT_KIND_LIST ? "list" : "bulk";
}

int fanout__index(struct store_txn *t, enum fanout_kind kind, const char *id,
                  int64_t created_ms)
{
    char key[INDEX_KEY_MAX + 1];
    int64_t ms = created_ms < 0 ? 0 : created_ms;
    int rc;
    if (ms > NEWEST_FIRST_MAX)
        ms = NEWEST_FIRST_MAX;
    snprintf(key, sizeof key, "%s|%013" PRId64 "|%.*s", kind_name(kind), NEWEST_FIRST_MAX - ms,
             ID_LEN, id);
    rc = store_doc_create(t, C_INDEX, str_c(key), STR_LIT("{}"), created_ms);
    return rc == HR_CONFLICT ? HR_OK : rc;
}

static int64_t num(const cJSON *o, const char *k)
{
    int64_t v = 0;
    json_i64(o, k, &v);
    return v;
}

/* add_time: o.name = ms of fo.name as ISO 8601, when fo has it. */
static void add_time(cJSON *o, const char *name, const cJSON *fo)
{
    char iso[32];
    int64_t ms;
    if (!json_i64(fo, name, &ms))
        return;
    time_fmt_iso(ms, iso, sizeof iso);
    cJSON_AddStringToObject(o, name, iso);
}

static void add_str_or_null(cJSON *o, const char *name, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

/* item_json: the listing's item for fan-out document fo (id: its id); new. */
static cJSON *item_json(enum fanout_kind kind, const char *id, const cJSON *fo)
{
    cJSON *o = cJSON_CreateObject();
    const char *st = json_str(fo, "status");
    if (kind == FANOUT_KIND_BULK) {
        const cJSON *def = json_obj(fo, "definition");
        cJSON_AddStringToObject(o, "id", id);
        add_str_or_null(o, "status", st);
        add_time(o, "created", fo);
        add_time(o, "completed", fo);
        cJSON_AddNumberToObject(o, "received", (double)num(fo, "received"));
        cJSON_AddNumberToObject(o, "enqueued", (double)num(fo, "enqueued"));
        cJSON_AddNumberToObject(o, "failures", (double)num(fo, "failures"));
        add_str_or_null(o, "event", json_str(def, "event"));
        add_str_or_null(o, "template", json_str(def, "template"));
    } else {
        const cJSON *msg = json_obj(fo, "message"), *to = json_obj(msg, "to");
        bool pattern = json_str(to, "list_pattern") && !json_str(to, "list_id");
        cJSON_AddStringToObject(o, "requestId", id);
        add_str_or_null(o, pattern ? "list_pattern" : "list_id", json_str(fo, "target"));
        add_str_or_null(o, "template", json_str(msg, "template"));
        add_str_or_null(o, "status", st);
        add_time(o, "created", fo);
        add_time(o, "completed", fo);
        cJSON_AddNumberToObject(o, "enqueued", (double)num(fo, "enqueued"));
        cJSON_AddNumberToObject(o, "failures", (double)num(fo, "failures"));
        cJSON_AddBoolToObject(o, "done", st && !strcmp(st, "COMPLETED"));
    }
    return o;
}

/* add_item: append the item of the fan-out that index key `key` names to items (a is
 * scratch, reset after); a key whose fan-out is gone is skipped. */
static int add_item(struct store *s, enum fanout_kind kind, const char *key, cJSON *items,
                    struct arena *a)
{
    const char *id = strrchr(key, '|');
    struct doc_rec d;
    cJSON *fo;
    int rc;
    if (!id || !id[1])
        return HR_OK;
    id++;
    rc = store_doc_get(s, FANOUT_COLL, str_c(id), a, &d);
    if (rc < 0) {
        arena_reset(a);
        return rc == HR_NOTFOUND ? HR_OK : rc;
    }
    fo = cJSON_ParseWithLength(d.body.p, d.body.len);
    arena_reset(a);
    if (!fo)
        return HR_IO;
    cJSON_AddItemToArray(items, item_json(kind, id, fo));
    cJSON_Delete(fo);
    return HR_OK;
}

int engine_fanout_list(struct store *s, enum fanout_kind kind, const char *cursor, size_t limit,
                       cJSON **out)
{
    char prefix[KIND_MAX + 2];
    struct arena *a = arena_new(16384), *scratch = arena_new(16384);
    struct doc_rec *keys = NULL;
    size_t n = 0;
    cJSON *items, *paging;
    int rc;

    *out = NULL;
    snprintf(prefix, sizeof prefix, "%s|", kind_name(kind));
    if (limit < 1 || limit > FANOUT_LIST_MAX)
        limit = FANOUT_LIST_MAX;
    if (cursor && cursor[0] && strncmp(cursor, prefix, strlen(prefix))) {
        rc = HR_INVAL;
        goto out;
    }
    rc = store_doc_list(s, C_INDEX, str_c(prefix), str_c(cursor), limit + 1, a, &keys, &n);
    if (rc < 0)
        goto out;
    *out = cJSON_CreateObject();
    items = cJSON_AddArrayToObject(*out, "items");
    for (size_t i = 0; i < n && i < limit && rc == HR_OK; i++)
        rc = add_item(s, kind, keys[i].id.p, items, scratch);
    if (rc < 0) {
        cJSON_Delete(*out);
        *out = NULL;
        goto out;
    }
    paging = cJSON_AddObjectToObject(*out, "paging");
    if (n > limit)
        cJSON_AddStringToObject(paging, "cursor", keys[limit - 1].id.p);
    else
        cJSON_AddNullToObject(paging, "cursor");
    cJSON_AddBoolToObject(paging, "more", n > limit);
out:
    arena_free(scratch);
    arena_free(a);
    return rc;
}
