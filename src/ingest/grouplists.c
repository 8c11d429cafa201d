/* grouplists.c: Courier lists kept in step with Segment groups: the `group_lists` setting
 * (parse, JSON, load), the list id of a group, and the subscriptions an events job's
 * group calls ask for, made in lock order. Contracts in grouplists.h. */
#include "grouplists.h"

#include "../util/arena.h"
#include "../util/json.h"
#include "../util/log.h"
#include "../util/metrics.h"
#include "../util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int grouplists_parse(const cJSON *v, struct grouplists_link *out, struct herr *err)
{
    const cJSON *prefix, *allow, *it;
    char probe[GROUPLISTS_PREFIX_MAX + 2];
    size_t len;

    memset(out, 0, sizeof *out);
    if (!v || cJSON_IsNull(v))
        return HR_OK;
    if (!cJSON_IsObject(v))
        return herr_set(err, HR_INVAL,
                        "group_lists must be an object {\"prefix\": \"groups.\", "
                        "\"allow_client\"?: boolean}, or null to unlink groups from lists");
    cJSON_ArrayForEach(it, v)
    {
        if (strcmp(it->string, "prefix") != 0 && strcmp(it->string, "allow_client") != 0)
            return herr_set(err, HR_INVAL,
                            "group_lists has an unknown member %.64s: known are prefix and "
                            "allow_client",
                            it->string);
    }
    prefix = json_member(v, "prefix");
    allow = json_member(v, "allow_client");
    len = cJSON_IsString(prefix) ? strlen(prefix->valuestring) : 0;
    if (len == 0 || len > GROUPLISTS_PREFIX_MAX)
        return herr_set(err, HR_INVAL,
                        "group_lists.prefix is required: a string of 1 to %d bytes",
                        GROUPLISTS_PREFIX_MAX);
    /* the prefix must start a valid list id: prefix + one more character is one */
    snprintf(probe, sizeof probe, "%sx", prefix->valuestring);
    if (!store_list_id_valid(str_c(probe)))
        return herr_set(err, HR_INVAL,
                        "group_lists.prefix must start a valid list id (up to %d "
                        "dot-separated parts of [A-Za-z0-9_:@+-] with the group id, "
                        "e.g. \"groups.\")",
                        LIST_PARTS_MAX);
    if (allow && !cJSON_IsBool(allow))
        return herr_set(err, HR_INVAL, "group_lists.allow_client must be a boolean");
    out->on = true;
    out->allow_client = cJSON_IsTrue(allow);
    memcpy(out->prefix, prefix->valuestring, len + 1);
    return HR_OK;
}

cJSON *grouplists_json(const struct grouplists_link *l)
{
    cJSON *o;
    if (!l->on)
        return cJSON_CreateNull();
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prefix", l->prefix);
    cJSON_AddBoolToObject(o, "allow_client", l->allow_client);
    return o;
}

int grouplists_load(struct store *s, struct grouplists_link *out)
{
    struct arena *a = arena_new(512);
    struct str v;
    cJSON *j = NULL;
    struct herr why;
    int rc = store_meta_get(s, GROUPLISTS_META_KEY, a, &v);

    memset(out, 0, sizeof *out);
    if (rc == HR_NOTFOUND || (rc == HR_OK && v.len == 0)) {
        rc = HR_OK;
        goto out;
    }
    if (rc < 0)
        goto out;
    j = cJSON_ParseWithLength(v.p, v.len);
    if (!j || grouplists_parse(j, out, &why) < 0) {
        LOG_W("ingest.group_lists_unreadable", "msg=\"the stored group_lists setting does "
              "not parse; groups stay unlinked from lists until PUT /settings sets it\"");
        memset(out, 0, sizeof *out);
    }
out:
    cJSON_Delete(j);
    arena_free(a);
    return rc;
}

bool grouplists_list_id(const struct grouplists_link *l, const char *group_id, char *out,
                        size_t cap)
{
    int n;
    if (cap == 0)
        return false;
    n = snprintf(out, cap, "%s%s", l->prefix, group_id ? group_id : "");
    if (n < 0 || (size_t)n >= cap || !group_id || !store_list_id_valid(str_c(out))) {
        out[0] = '\0';
        return false;
    }
    return true;
}

static void skipped(int64_t event_id, const char *group_id, const char *reason)
{
    char gq[96];
    metrics_counter_add("herald_ingest_group_list_skipped_total",
                        "Group calls that could not keep a list in step with their group "
                        "(group_lists setting): list_id (groupId makes no valid list id) or "
                        "user_id (userId longer than a list subscription takes).",
                        "reason", reason, 1);
    LOG_W("ingest.group_list_skipped", "event=%lld group=%s reason=%s msg=\"no list "
          "subscription for this group call; the group itself is recorded\"",
          (long long)event_id, log_q(gq, sizeof gq, group_id), reason);
}

bool grouplists_note(const struct grouplists_link *l, struct grouplists_pending *p,
                     const char *group_id, struct str user_id, const char *name,
                     int64_t event_id, int64_t at_ms)
{
    char id[LIST_ID_MAX + 1];
    struct grouplists_sub *s;
    if (!grouplists_list_id(l, group_id, id, sizeof id)) {
        skipped(event_id, group_id, "list_id");
        return false;
    }
    if (user_id.len == 0 || user_id.len > LIST_USER_ID_MAX) {
        skipped(event_id, group_id, "user_id");
        return false;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->v = xrealloc(p->v, p->cap * sizeof *p->v);
    }
    s = &p->v[p->n++];
    s->list_id = xstrdup(id);
    s->user_id = xstrndup(user_id.p, user_id.len);
    s->name = name && name[0] && strlen(name) <= GROUPLISTS_NAME_MAX ? xstrdup(name) : NULL;
    s->at_ms = at_ms;
    s->seq = p->seq++;
    return true;
}

void grouplists_pending_truncate(struct grouplists_pending *p, size_t n)
{
    while (p->n > n) {
        struct grouplists_sub *s = &p->v[--p->n];
        free(s->list_id);
        free(s->user_id);
        free(s->name);
    }
}

void grouplists_pending_cleanup(struct grouplists_pending *p)
{
    grouplists_pending_truncate(p, 0);
    free(p->v);
    memset(p, 0, sizeof *p);
}

static int sub_cmp(const void *a, const void *b)
{
    const struct grouplists_sub *x = a, *y = b;
    int c = strcmp(x->list_id, y->list_id);
    if (c == 0)
        c = strcmp(x->user_id, y->user_id);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

int grouplists_commit(struct store_txn *t, struct grouplists_pending *p)
{
    int rc = HR_OK;
    if (p->n > 1)
        qsort(p->v, p->n, sizeof *p->v, sub_cmp);
    for (size_t k = 0; k < p->n && rc == HR_OK;) {
        const struct grouplists_sub *list = &p->v[k], *named = NULL;
        size_t end = k;
        for (; end < p->n && strcmp(p->v[end].list_id, list->list_id) == 0; end++)
            if (p->v[end].name && (!named || p->v[end].seq > named->seq))
                named = &p->v[end];
        rc = store_list_create(t, str_c(list->list_id),
                               str_c(named ? named->name : list->list_id), list->at_ms);
        if (rc == HR_CONFLICT)
            rc = HR_OK; /* it exists (live or deleted): left as it is */
        for (size_t i = k; i < end && rc == HR_OK; i++) {
            if (i > k && strcmp(p->v[i].user_id, p->v[i - 1].user_id) == 0)
                continue;
            rc = store_list_sub_add(t, str_c(list->list_id), str_c(p->v[i].user_id),
                                    p->v[i].at_ms);
            if (rc == HR_CONFLICT)
                rc = HR_OK; /* subscribed already, or the list is deleted */
        }
        k = end;
    }
    return rc;
}
