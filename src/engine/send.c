/* send.c: accepting sends: validation of Courier's message, the v1 -> v2 mapping, and
 * the outbox write that creates one message and one route job per recipient. Shared
 * helpers of the pipeline live here too (send_int.h). */
#include "send_int.h"
#include "prefs.h"
#include "fanout.h"

#include "../util/clock.h"
#include "../util/id.h"
#include "../render/elemental.h"
#include "../util/jsonpatch.h"
#include "../util/log.h"
#include "../util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers -------------------------------------------------------------- */

/* plain_type: a history type safe to write between quotes as it is (A-Z and _) */
static bool plain_type(const char *type)
{
    size_t n = 0;
    for (; type[n]; n++)
        if (!((type[n] >= 'A' && type[n] <= 'Z') || type[n] == '_') || n >= 64)
            return false;
    return n > 0;
}

char *send__history_json(int64_t ts, const char *type, const cJSON *body)
{
    cJSON *ev, *it;
    char *s, *b;
    size_t bn, hn;
    if (plain_type(type) &&
        (!body || (cJSON_IsObject(body) && !json_member(body, "ts") &&
                   !json_member(body, "type")))) {
        /* the common case: the body printed once, behind ts and type (no deep copy of
         * it: bodies carry the event's data, the profile, rendered output) */
        char head[128]; /* a type of at most 64 characters (plain_type), a 20-digit ts */
        b = body ? json_print(body) : xstrdup("{}"); /* "{...}" */
        bn = strlen(b);
        hn = (size_t)snprintf(head, sizeof head, "{\"ts\":%lld,\"type\":\"%s\"%s",
                              (long long)ts, type, bn > 2 ? "," : "");
        s = xmalloc(hn + bn);
        memcpy(s, head, hn);
        memcpy(s + hn, b + 1, bn); /* the body's members, its closing brace, the NUL */
        free(b);
        return s;
    }
    ev = cJSON_CreateObject();
    cJSON_AddNumberToObject(ev, "ts", (double)ts);
    cJSON_AddStringToObject(ev, "type", type);
    cJSON_ArrayForEach(it, body)
        if (it->string && strcmp(it->string, "ts") && strcmp(it->string, "type"))
            cJSON_AddItemToObject(ev, it->string, cJSON_Duplicate(it, 1));
    s = json_print(ev);
    cJSON_Delete(ev);
    return s;
}

int engine_event_data(struct engine *e, int64_t event_id, cJSON **out)
{
    struct arena *a = NULL;
    struct event_rec ev;
    cJSON *body = NULL;
    int rc = HR_NOTFOUND;
    *out = NULL;
    if (!e->event_data || event_id <= 0)
        goto out;
    a = arena_new(4096);
    rc = store_event_get(e->store, event_id, a, &ev);
    if (rc < 0)
        goto out;
    body = cJSON_ParseWithLength(ev.body.p, ev.body.len);
    if (!cJSON_IsObject(body)) {
        rc = HR_INVAL;
        goto out;
    }
    if (e->event_data_take) {
        *out = e->event_data_take(body);
        body = NULL; /* taken */
    } else {
        *out = e->event_data(body);
    }
out:
    cJSON_Delete(body);
    arena_free(a);
    return rc;
}

int engine_spec_data(struct engine *e, cJSON *spec)
{
    int64_t id = 0;
    cJSON *data = NULL;
    int rc = HR_OK;
    if (!cJSON_IsObject(spec) || json_member(spec, "data") ||
        !json_i64(spec, SPEC_DATA_EVENT, &id))
        goto out;
    rc = engine_event_data(e, id, &data);
    if (rc < 0) {
        LOG_W("send.event_data", "event=%lld rc=%s msg=\"cannot derive the data of a "
              "message or run from its stored event\"", (long long)id, hr_rc_str(rc));
        goto out;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(spec, SPEC_DATA_EVENT);
    cJSON_AddItemToObject(spec, "data", data);
out:
    return rc;
}

int engine_message_outputs(struct store *s, struct str id, struct arena *a, cJSON **out)
{
    struct doc_rec d;
    struct history_rec *h = NULL;
    size_t n = 0, last;
    cJSON *ev = NULL, *r, *content;
    const char *ch;
    bool sent = false;
    int rc = store_doc_get(s, "outputs", id, a, &d);
    *out = NULL;
    if (rc == HR_OK) {
        *out = cJSON_ParseWithLength(d.body.p, d.body.len);
        return *out ? HR_OK : HR_IO;
    }
    if (rc != HR_NOTFOUND)
        return rc;
    rc = store_history_list(s, id, STR_NULL, a, &h, &n);
    if (rc < 0)
        return rc;
    /* the last RENDERED event, when a SENT follows it: only a routing of one channel that
     * sent at once writes no document. A routing that failed part way (a channel that did
     * not render) has RENDERED events and no document either: it shows nothing, as when
     * it wrote none */
    for (last = n; last > 0 && !str_eq_c(h[last - 1].type, "RENDERED"); last--)
        sent = sent || str_eq_c(h[last - 1].type, "SENT");
    if (last == 0 || !sent)
        return HR_NOTFOUND;
    ev = cJSON_ParseWithLength(h[last - 1].body.p, h[last - 1].body.len);
    ch = json_str(json_obj(ev, "channel"), "id");
    content = cJSON_DetachItemFromObjectCaseSensitive(ev, "output");
    if (!ch || !cJSON_IsObject(content)) {
        cJSON_Delete(content);
        cJSON_Delete(ev);
        return HR_IO;
    }
    *out = cJSON_CreateObject();
    r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "channel", ch);
    cJSON_AddStringToObject(r, "channel_id", ch);
    cJSON_AddItemToObject(r, "content", content);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(*out, "results"), r);
    cJSON_Delete(ev);
    return HR_OK;
}

int engine_history_body(struct engine *e, const struct message_rec *m,
                        const struct history_rec *h, struct arena *a, struct str *out)
{
    cJSON *body = NULL, *spec = NULL, *data; /* stored by herald: parsed as they are */
    char *s;
    int rc = HR_OK;
    *out = h->body;
    if (!str_eq_c(h->type, "ENQUEUED"))
        goto out;
    body = cJSON_ParseWithLength(h->body.p, h->body.len);
    if (!cJSON_IsObject(body) || json_member(body, "data"))
        goto out; /* unreadable, or written with its data */
    spec = cJSON_ParseWithLength(m->spec.p, m->spec.len);
    rc = engine_spec_data(e, spec);
    if (rc == HR_NOTFOUND || rc == HR_INVAL)
        rc = HR_OK; /* its event is gone for good: the row as stored */
    if (rc < 0 || !cJSON_IsObject(json_obj(spec, "data")))
        goto out;
    data = cJSON_DetachItemFromObjectCaseSensitive(spec, "data");
    cJSON_AddItemToObject(body, "data", data);
    s = json_print(body);
    *out = arena_str(a, str_c(s));
    free(s);
out:
    cJSON_Delete(body);
    cJSON_Delete(spec);
    return rc;
}

int send__history(struct store_txn *t, struct str id, int64_t ts, const char *type,
                  const cJSON *body)
{
    char *s = send__history_json(ts, type, body);
    int rc = store_history_append(t, id, ts, str_c(type), str_c(s));
    free(s);
    return rc;
}

struct str send__json_str(struct arena *a, const cJSON *v)
{
    char *s = json_print(v);
    struct str out = arena_str(a, str_c(s));
    free(s);
    return out;
}

static int enqueue(struct store_txn *t, const char *kind, const cJSON *v, int64_t run_at_ms,
                   bool bulk)
{
    char *s = json_print(v);
    struct job_spec js = {.kind = kind, .payload = str_c(s), .run_at_ms = run_at_ms,
                          .bulk = bulk};
    int64_t id;
    int rc = queue_enqueue(t, &js, &id);
    free(s);
    return rc;
}

int send__enqueue(struct store_txn *t, const char *kind, const cJSON *v, int64_t run_at_ms)
{
    return enqueue(t, kind, v, run_at_ms, false);
}

int send__enqueue_bulk(struct store_txn *t, const char *kind, const cJSON *v, int64_t run_at_ms)
{
    return enqueue(t, kind, v, run_at_ms, true);
}

bool send__is_final(struct str status)
{
    static const char *finals[] = {"SENT",       "DELIVERED", "UNDELIVERABLE", "UNROUTABLE",
                                   "UNMAPPED",   "CANCELED",  "OPENED",        "CLICKED",
                                   "FILTERED",   NULL};
    for (int i = 0; finals[i]; i++)
        if (str_eq_c(status, finals[i]))
            return true;
    return false;
}

int send__final(struct store_txn *t, struct message_rec *m, struct arena *a, const char *status,
                const char *reason, const char *error, const cJSON *extra, int64_t now)
{
    cJSON *h = extra ? cJSON_Duplicate(extra, 1) : cJSON_CreateObject();
    int rc;
    m->status = str_c(status);
    m->reason = str_c(reason ? arena_strdup(a, reason) : "");
    m->error = str_c(error ? arena_strdup(a, error) : "");
    m->updated_ms = now;
    if (reason)
        cJSON_AddStringToObject(h, "reason", reason);
    if (error && error[0])
        cJSON_AddStringToObject(h, "error_message", error);
    rc = store_message_update(t, m);
    if (rc == HR_OK)
        rc = send__history(t, m->id, now, status, h);
    cJSON_Delete(h);
    return rc;
}

/* ---- validation ------------------------------------------------------------------- */

static int check_recipient(const cJSON *to, int i, struct herr *err)
{
    static const char *addr[] = {"user_id", "email", "phone_number", "webhook",
                                 "firebaseToken", "apn", "slack", NULL};
    const cJSON *v;
    if (!cJSON_IsObject(to))
        return herr_set(err, HR_INVAL, "message.to[%d] must be an object", i);
    for (int k = 0; addr[k]; k++)
        if (json_member(to, addr[k]))
            goto have_addr;
    if (json_member(to, "list_id") ||
        json_member(to, "audience_id") ||
        json_member(to, "list_pattern"))
        return herr_set(err, HR_INVAL,
                        "message.to[%d]: a list or audience must be the message's only "
                        "recipient (to: {list_id} or {list_pattern}); audiences are not "
                        "supported yet",
                        i);
    return herr_set(err, HR_INVAL,
                    "message.to[%d] needs user_id, email, phone_number or webhook", i);
have_addr:
    for (int k = 0; addr[k]; k++) {
        v = json_member(to, addr[k]);
        if (v && k < 3 && (!cJSON_IsString(v) || !v->valuestring[0] ||
                           strlen(v->valuestring) > 512))
            return herr_set(err, HR_INVAL, "message.to[%d].%s must be a non-empty string", i,
                            addr[k]);
    }
    v = json_member(to, "data");
    if (v && !cJSON_IsObject(v) && !cJSON_IsNull(v))
        return herr_set(err, HR_INVAL, "message.to[%d].data must be an object", i);
    return HR_OK;
}

/* check_list_recipient: Courier's ListRecipient {list_id, data?} or
 * ListPatternRecipient {list_pattern, data?}, to fan out (fanout.h). */
static int check_list_recipient(const cJSON *to, struct herr *err)
{
    const cJSON *id = json_member(to, "list_id");
    const cJSON *pat = json_member(to, "list_pattern"), *it;
    cJSON_ArrayForEach(it, to)
    {
        if (!cJSON_IsNull(it) && strcmp(it->string, "list_id") &&
            strcmp(it->string, "list_pattern") && strcmp(it->string, "data"))
            return herr_set(err, HR_INVAL, "message.to.%.64s is not supported with a list "
                                           "recipient",
                            it->string);
    }
    if (id && pat)
        return herr_set(err, HR_INVAL, "message.to: give list_id or list_pattern, not both");
    if (id && (!cJSON_IsString(id) || !store_list_id_valid(str_c(id->valuestring))))
        return herr_set(err, HR_INVAL,
                        "message.to.list_id must be a list id (1 to %d bytes of up to %d "
                        "dot-separated parts, each of [A-Za-z0-9_:@+-])",
                        LIST_ID_MAX, LIST_PARTS_MAX);
    if (pat && (!cJSON_IsString(pat) || !store_list_pattern_valid(str_c(pat->valuestring))))
        return herr_set(err, HR_INVAL,
                        "message.to.list_pattern must be a list pattern: dot-separated parts "
                        "of [A-Za-z0-9_:@+-], `*` for one part, a last `**` for the rest, at "
                        "least one literal part (e.g. \"team.*\")");
    it = json_member(to, "data");
    if (it && !cJSON_IsObject(it) && !cJSON_IsNull(it))
        return herr_set(err, HR_INVAL, "message.to.data must be an object");
    return HR_OK;
}

static int check_routing(const cJSON *r, const char *where, int depth, struct herr *err)
{
    const char *m;
    const cJSON *chs, *c;
    if (depth > 4)
        return herr_set(err, HR_INVAL, "%s: routing nests too deep", where);
    if (!cJSON_IsObject(r))
        return herr_set(err, HR_INVAL, "%s must be an object {method, channels}", where);
    m = json_str(r, "method");
    if (m && strcmp(m, "single") && strcmp(m, "all"))
        return herr_set(err, HR_INVAL, "%s.method must be \"single\" or \"all\"", where);
    chs = json_member(r, "channels");
    if (!cJSON_IsArray(chs) || cJSON_GetArraySize(chs) == 0 || cJSON_GetArraySize(chs) > 32)
        return herr_set(err, HR_INVAL, "%s.channels must be a non-empty array (<= 32)", where);
    cJSON_ArrayForEach(c, chs)
    {
        if (cJSON_IsString(c)) {
            if (!c->valuestring[0] || strlen(c->valuestring) > 64)
                return herr_set(err, HR_INVAL, "%s.channels has an empty or long name", where);
        } else if (check_routing(c, where, depth + 1, err) < 0) {
            return HR_INVAL;
        }
    }
    return HR_OK;
}

/* opt: member k of o, or NULL when absent or null (the SDK sends null for "none"). */
static const cJSON *opt(const cJSON *o, const char *k)
{
    const cJSON *v = json_member(o, k);
    return cJSON_IsNull(v) ? NULL : v;
}

int engine_send_validate(const cJSON *msg, struct herr *err)
{
    const cJSON *to = opt(msg, "to"), *v, *it;
    const cJSON *tmpl = opt(msg, "template");
    const cJSON *content = opt(msg, "content");
    int i = 0;

    if (!cJSON_IsObject(msg))
        return herr_set(err, HR_INVAL, "message must be an object");
    if (!to)
        return herr_set(err, HR_INVAL, "message.to is required");
    if (cJSON_IsArray(to)) {
        if (cJSON_GetArraySize(to) == 0 || cJSON_GetArraySize(to) > SEND_MAX_RECIPIENTS)
            return herr_set(err, HR_INVAL, "message.to must list 1 to %d recipients",
                            SEND_MAX_RECIPIENTS);
        cJSON_ArrayForEach(it, to) if (check_recipient(it, i++, err) < 0) return HR_INVAL;
    } else if (cJSON_IsObject(to) && (json_member(to, "list_id") ||
                                      json_member(to, "list_pattern"))) {
        if (check_list_recipient(to, err) < 0)
            return HR_INVAL;
    } else if (check_recipient(to, 0, err) < 0) {
        return HR_INVAL;
    }
    if (tmpl && content)
        return herr_set(err, HR_INVAL, "give message.template or message.content, not both");
    if (!tmpl && !content)
        return herr_set(err, HR_INVAL, "message.template or message.content is required");
    if (tmpl && (!cJSON_IsString(tmpl) || !tmpl->valuestring[0] ||
                 strlen(tmpl->valuestring) > 128))
        return herr_set(err, HR_INVAL, "message.template must be a template id (1-128 chars)");
    if (content && !cJSON_IsObject(content))
        return herr_set(err, HR_INVAL, "message.content must be an object");
    if (content) {
        struct herr cerr;
        herr_clear(&cerr);
        if (elemental_validate(content, &cerr) < 0)
            return herr_set(err, HR_INVAL, "message.content: %s", cerr.msg);
    }
    if ((v = opt(msg, "data")) && !cJSON_IsObject(v) &&
        !cJSON_IsNull(v))
        return herr_set(err, HR_INVAL, "message.data must be an object");
    if ((v = opt(msg, "routing")) &&
        check_routing(v, "message.routing", 0, err) < 0)
        return HR_INVAL;
    if ((v = opt(msg, "channels")) && !cJSON_IsObject(v))
        return herr_set(err, HR_INVAL, "message.channels must be an object");
    if ((v = opt(msg, "providers")) && !cJSON_IsObject(v))
        return herr_set(err, HR_INVAL, "message.providers must be an object");
    if ((v = opt(msg, "brand_id")) && !cJSON_IsString(v))
        return herr_set(err, HR_INVAL, "message.brand_id must be a string");
    if ((v = opt(msg, "delay"))) {
        const cJSON *d = opt(v, "duration");
        const char *until = json_str(v, "until");
        int64_t ms;
        if (!cJSON_IsObject(v))
            return herr_set(err, HR_INVAL, "message.delay must be an object");
        if (d && (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 31536000000.0))
            return herr_set(err, HR_INVAL, "message.delay.duration must be ms from 0 to a year");
        if (opt(v, "until") &&
            (!until || time_parse_iso(until, strlen(until), &ms) < 0))
            return herr_set(err, HR_INVAL, "message.delay.until must be an ISO-8601 timestamp");
    }
    if ((v = opt(msg, "metadata"))) {
        const cJSON *tags = opt(v, "tags");
        if (!cJSON_IsObject(v))
            return herr_set(err, HR_INVAL, "message.metadata must be an object");
        if (tags) {
            if (!cJSON_IsArray(tags) || cJSON_GetArraySize(tags) > 9)
                return herr_set(err, HR_INVAL, "message.metadata.tags: at most 9 strings");
            cJSON_ArrayForEach(it, tags) if (!cJSON_IsString(it) || strlen(it->valuestring) > 30)
                return herr_set(err, HR_INVAL, "message.metadata.tags: strings of <= 30 chars");
        }
        if (opt(v, "trace_id") && !json_str(v, "trace_id"))
            return herr_set(err, HR_INVAL, "message.metadata.trace_id must be a string");
        if (opt(v, "event") && !json_str(v, "event"))
            return herr_set(err, HR_INVAL, "message.metadata.event must be a string");
    }
    if ((v = opt(msg, "timeout"))) {
        const cJSON *m = opt(v, "message");
        if (!cJSON_IsObject(v) || (m && (!cJSON_IsNumber(m) || m->valuedouble < 1000)))
            return herr_set(err, HR_INVAL, "message.timeout.message must be ms >= 1000");
    }
    return HR_OK;
}

/* ---- fields herald cannot honour yet ------------------------------------------------- */

/* The members of each part of a v2 message herald honours; any other member that is not
 * null is refused by name, so a migrating Courier user never gets silently different
 * behaviour. MSG_LATER are Courier's, not built yet; anything else is not Courier's. */
static const char *const MSG_HONOURED[] = {"to", "template", "content", "data", "brand_id",
                                           "channels", "providers", "routing", "timeout",
                                           "delay", "metadata", "preferences", NULL};
static const char *const MSG_LATER[] = {"expiry", "context", NULL};
static const char *const DELAY_HONOURED[] = {"duration", "until", NULL};
static const char *const META_HONOURED[] = {"event", "tags", "trace_id", NULL};
static const char *const TIMEOUT_HONOURED[] = {"message", NULL};
static const char *const CHANNEL_HONOURED[] = {"providers", NULL};
static const char *const PROVIDER_HONOURED[] = {"override", NULL};
/* recipient members that are Courier directives rather than profile data */
static const char *const TO_LATER[] = {"tenant_id", "context", "preferences", "account_id",
                                       "ms_teams", "pagerduty", NULL};

static bool listed(const char *const *list, const char *k)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], k) == 0)
            return true;
    return false;
}

/* containers whose fields are the feature (context.tenant_id, preferences.
 * subscription_topic_id): a refusal names the field inside */
static const char *const SPELL_OUT[] = {"context", "preferences", NULL};

/* later: refuse the first non-null member of object o (named where) missing from
 * honoured; for a SPELL_OUT member its first non-null field is named. */
static int later(const cJSON *o, const char *where, const char *const *honoured,
                 struct herr *err)
{
    const cJSON *it, *sub;
    cJSON_ArrayForEach(it, o)
    {
        if (cJSON_IsNull(it) || listed(honoured, it->string))
            continue;
        sub = cJSON_IsObject(it) && listed(SPELL_OUT, it->string) ? it->child : NULL;
        while (sub && cJSON_IsNull(sub))
            sub = sub->next;
        if (sub)
            return herr_set(err, HR_INVAL, "%s.%.64s.%.64s is not supported yet", where,
                            it->string, sub->string);
        return herr_set(err, HR_INVAL, "%s.%.64s is not supported yet", where, it->string);
    }
    return HR_OK;
}

/* later_each: later() on every object member of o (channels.<name>, providers.<key>). */
static int later_each(const cJSON *o, const char *where, const char *const *honoured,
                      struct herr *err)
{
    const cJSON *it;
    char w[128];
    cJSON_ArrayForEach(it, o)
    {
        snprintf(w, sizeof w, "%s.%.64s", where, it->string);
        if (cJSON_IsObject(it) && later(it, w, honoured, err) < 0)
            return HR_INVAL;
    }
    return HR_OK;
}

int engine_send_unsupported(const cJSON *msg, struct herr *err)
{
    const cJSON *to = json_member(msg, "to"), *it;
    char w[32];
    cJSON_ArrayForEach(it, msg)
    {
        if (!cJSON_IsNull(it) && !listed(MSG_HONOURED, it->string) &&
            !listed(MSG_LATER, it->string))
            return herr_set(err, HR_INVAL, "message.%.64s is not a field of a Courier message",
                            it->string);
    }
    if (later(msg, "message", MSG_HONOURED, err) < 0 ||
        later(json_obj(msg, "delay"), "message.delay", DELAY_HONOURED, err) < 0 ||
        later(json_obj(msg, "metadata"), "message.metadata", META_HONOURED, err) < 0 ||
        later(json_obj(msg, "timeout"), "message.timeout", TIMEOUT_HONOURED, err) < 0 ||
        prefs_message_check(json_member(msg, "preferences"), err) < 0 ||
        later_each(json_obj(msg, "channels"), "message.channels", CHANNEL_HONOURED, err) < 0 ||
        later_each(json_obj(msg, "providers"), "message.providers", PROVIDER_HONOURED, err) < 0)
        return HR_INVAL;
    for (int i = 0, n = cJSON_IsArray(to) ? cJSON_GetArraySize(to) : 1; i < n; i++) {
        const cJSON *r = cJSON_IsArray(to) ? cJSON_GetArrayItem(to, i) : to;
        if (cJSON_IsArray(to))
            snprintf(w, sizeof w, "message.to[%d]", i);
        else
            snprintf(w, sizeof w, "message.to");
        for (int k = 0; TO_LATER[k]; k++) {
            const cJSON *v = json_member(r, TO_LATER[k]);
            if (v && !cJSON_IsNull(v))
                return herr_set(err, HR_INVAL, "%s.%s is not supported yet", w, TO_LATER[k]);
        }
    }
    return HR_OK;
}

cJSON *engine_send_v1_to_v2(const cJSON *body)
{
    cJSON *m = cJSON_CreateObject(), *to = cJSON_CreateObject();
    const cJSON *profile = json_obj(body, "profile"), *it;
    const char *event = json_str(body, "event"), *recipient = json_str(body, "recipient");
    const char *brand = json_str(body, "brand");
    const cJSON *data = json_member(body, "data");
    if (recipient)
        cJSON_AddStringToObject(to, "user_id", recipient);
    if (profile)
        cJSON_ArrayForEach(it, profile) if (!json_member(to, it->string))
            cJSON_AddItemToObject(to, it->string, cJSON_Duplicate(it, 1));
    cJSON_AddItemToObject(m, "to", to);
    if (event)
        cJSON_AddStringToObject(m, "template", event);
    if (data)
        cJSON_AddItemToObject(m, "data", cJSON_Duplicate(data, 1));
    if (brand)
        cJSON_AddStringToObject(m, "brand_id", brand);
    if (json_obj(body, "override"))
        cJSON_AddItemToObject(m, "providers",
                              cJSON_Duplicate(json_obj(body, "override"), 1));
    if (event) {
        cJSON *md = cJSON_AddObjectToObject(m, "metadata");
        cJSON_AddStringToObject(md, "event", event);
    }
    return m;
}

/* ---- enqueue ----------------------------------------------------------------------- */

static const char *recipient_name(const cJSON *to)
{
    const char *keys[] = {"user_id", "email", "phone_number"};
    for (int i = 0; i < 3; i++) {
        const char *v = json_str(to, keys[i]);
        if (v && v[0])
            return v;
    }
    return "";
}

static int64_t run_at(const cJSON *msg, int64_t now)
{
    const cJSON *d = json_obj(msg, "delay");
    const char *until = json_str(d, "until");
    const cJSON *dur = json_member(d, "duration");
    int64_t t = now, u;
    if (cJSON_IsNumber(dur) && dur->valuedouble > 0)
        t = now + (int64_t)dur->valuedouble;
    if (until && time_parse_iso(until, strlen(until), &u) == HR_OK && u > t)
        t = u;
    return t;
}

int send__enqueue_one(struct engine *e, struct store_txn *t, const cJSON *msg,
                      const cJSON *r, const char *msg_id, const char *request_id,
                      const char *run_id, const cJSON *origin, bool bulk,
                      int64_t data_event)
{
    const cJSON *md = json_obj(msg, "metadata");
    int64_t now = hclock_now(e->clock), when = run_at(msg, now);
    struct message_rec m;
    cJSON *spec = cJSON_CreateObject(), *h = cJSON_CreateObject(), *job;
    const cJSON *tags = json_arr(md, "tags"), *it;
    const char *tmpl = json_str(msg, "template");
    struct arena *a = arena_new(8192);
    int rc;

    /* the stored spec: msg with `to` = r. Printed once, here on the writer: built of
     * references to msg's members (no deep copy of the message's data). A message whose
     * data is its event's keeps the event's id instead (engine_spec_data) */
    if (!send__data_by_ref(e, data_event))
        data_event = 0;
    cJSON_ArrayForEach(it, msg)
    {
        if (it->string && strcmp(it->string, SPEC_DATA_EVENT) != 0 &&
            !(data_event > 0 && strcmp(it->string, "data") == 0))
            cJSON_AddItemReferenceToObject(spec, it->string,
                                           (cJSON *)(strcmp(it->string, "to") ? it : r));
    }
    if (data_event > 0)
        cJSON_AddNumberToObject(spec, SPEC_DATA_EVENT, (double)data_event);
    memset(&m, 0, sizeof m);
    m.id = str_c(msg_id);
    m.request_id = str_c(request_id);
    m.status = str_c("ENQUEUED");
    m.recipient = str_c(recipient_name(r));
    m.notification = str_c(tmpl ? tmpl : "");
    m.event = str_c(json_str(md, "event") ? json_str(md, "event") : (tmpl ? tmpl : ""));
    m.trace_id = str_c(json_str(md, "trace_id") ? json_str(md, "trace_id") : "");
    m.run_id = str_c(run_id ? run_id : "");
    m.tags = tags ? send__json_str(a, tags) : STR_LIT("[]");
    m.spec = send__json_str(a, spec);
    m.state = STR_LIT("{}");
    m.enqueued_ms = m.updated_ms = now;
    rc = store_message_insert(t, &m);
    if (rc < 0)
        goto out;
    /* not the data: the spec holds it, and engine_history_body shows it from there
     * (a copy here was a third of the bytes an automation's message wrote) */
    cJSON_AddStringToObject(h, "event", m.event.p ? m.event.p : "");
    cJSON_AddStringToObject(h, "recipient", m.recipient.p ? m.recipient.p : "");
    if (origin) /* a reference: h is printed, then freed */
        cJSON_AddItemReferenceToObject(h, "origin", (cJSON *)origin);
    if (run_id)
        cJSON_AddStringToObject(h, "runId", run_id);
    rc = send__history(t, m.id, now, "ENQUEUED", h);
    if (rc == HR_OK && when > now) {
        cJSON *dh = cJSON_CreateObject();
        cJSON_AddNumberToObject(dh, "until", (double)when);
        rc = send__history(t, m.id, now, "DELAYED", dh);
        cJSON_Delete(dh);
    }
    if (rc == HR_OK) {
        job = cJSON_CreateObject();
        cJSON_AddStringToObject(job, "id", msg_id);
        if (bulk) /* route passes it on to the message's deliver jobs */
            cJSON_AddBoolToObject(job, "bulk", 1);
        rc = enqueue(t, SEND_ROUTE_KIND, job, when, bulk);
        cJSON_Delete(job);
    }
out:
    cJSON_Delete(spec);
    cJSON_Delete(h);
    arena_free(a);
    return rc;
}

/* ran_hashed: request_id's multi-recipient send ran already on a herald that derived its
 * message ids all hashed (id_derive_hashed): its first message exists under that id. A
 * request with an Idempotency-Key whose answer was lost (a crash after the commit) and
 * that is repeated after an upgrade then finds its work done instead of sending again. */
static bool ran_hashed(struct store_txn *t, const char *request_id)
{
    char seed[128], id[ID_LEN + 1];
    struct arena *a = arena_new(4096);
    struct message_rec m;
    bool ran;
    snprintf(seed, sizeof seed, "%s:%d", request_id, 0);
    id_derive_hashed(seed, id);
    ran = store_message_get_txn(t, str_c(id), a, &m) == HR_OK;
    arena_free(a);
    return ran;
}

int engine_send_enqueue(struct engine *e, struct store_txn *t, const cJSON *msg,
                        const char *request_id, const char *run_id, const cJSON *origin)
{
    return engine_send_enqueue_ev(e, t, msg, request_id, run_id, origin, 0);
}

int engine_send_enqueue_ev(struct engine *e, struct store_txn *t, const cJSON *msg,
                           const char *request_id, const char *run_id, const cJSON *origin,
                           int64_t data_event)
{
    const cJSON *to = json_member(msg, "to"), *r;
    int n = cJSON_IsArray(to) ? cJSON_GetArraySize(to) : 1;
    int rc = HR_OK;

    if (engine_fanout_target(msg)) /* a list: streamed page by page (fanout.h) */
        return engine_fanout_start(e, t, msg, request_id, run_id, origin);
    if (n > 1 && ran_hashed(t, request_id))
        return HR_CONFLICT;
    for (int i = 0; i < n && rc == HR_OK; i++) {
        char idbuf[ID_LEN + 1];
        r = cJSON_IsArray(to) ? cJSON_GetArrayItem(to, i) : to;
        if (n == 1) {
            snprintf(idbuf, sizeof idbuf, "%s", request_id);
        } else { /* derived from the request, so a replayed request finds the same ids */
            char seed[128];
            snprintf(seed, sizeof seed, "%s:%d", request_id, i);
            id_derive(seed, id_time_ms(request_id), idbuf);
        }
        rc = send__enqueue_one(e, t, msg, r, idbuf, request_id, run_id, origin, false,
                               data_event);
    }
    return rc;
}

int engine_message_cancel(struct store_txn *t, struct str id, int64_t now)
{
    struct arena *a = arena_new(4096);
    struct message_rec m;
    int rc = store_message_get_txn(t, id, a, &m);
    if (rc < 0)
        goto out;
    if (str_eq_c(m.status, "CANCELED"))
        goto out;
    if (send__is_final(m.status) || m.sent_ms) {
        rc = HR_CONFLICT;
        goto out;
    }
    m.status = STR_LIT("CANCELED");
    m.canceled_ms = m.updated_ms = now;
    rc = store_message_update(t, &m);
    if (rc == HR_OK)
        rc = send__history(t, m.id, now, "CANCELED", NULL);
out:
    arena_free(a);
    return rc;
}
