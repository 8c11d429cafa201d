/* record.c: Courier's MessageDetails built from a message row (record.h). Shared by the
 * Messages API and the status webhooks, so both show the same record. */
#include "record.h"

#include "../util/json.h"

#include <string.h>

static void add_str(cJSON *o, const char *k, struct str v)
{
    if (v.len)
        cJSON_AddStringToObject(o, k, v.p);
}

static void add_ms(cJSON *o, const char *k, int64_t v)
{
    if (v)
        cJSON_AddNumberToObject(o, k, (double)v);
}

cJSON *engine_message_record(const struct message_rec *m, bool with_providers)
{
    cJSON *o = cJSON_CreateObject(), *tags, *state, *chs, *c, *prov;
    int64_t t = 0;
    cJSON_AddStringToObject(o, "id", m->id.p);
    add_str(o, "requestId", m->request_id);
    cJSON_AddStringToObject(o, "status", m->status.p);
    cJSON_AddStringToObject(o, "recipient", m->recipient.len ? m->recipient.p : "");
    cJSON_AddStringToObject(o, "event", m->event.len ? m->event.p : "");
    cJSON_AddStringToObject(o, "notification", m->notification.len ? m->notification.p : "");
    cJSON_AddNumberToObject(o, "enqueued", (double)m->enqueued_ms);
    add_ms(o, "sent", m->sent_ms);
    add_ms(o, "delivered", m->delivered_ms);
    state = cJSON_ParseWithLength(m->state.p, m->state.len);
    /* engagement (src/engine/tracking.c) keeps its times in the working state */
    if (json_i64(json_obj(state, "tracking"), "opened", &t))
        add_ms(o, "opened", t);
    if (json_i64(json_obj(state, "tracking"), "clicked", &t))
        add_ms(o, "clicked", t);
    add_ms(o, "canceledAt", m->canceled_ms);
    add_str(o, "reason", m->reason);
    add_str(o, "error", m->error);
    add_str(o, "runId", m->run_id);
    add_str(o, "traceId", m->trace_id);
    tags = cJSON_ParseWithLength(m->tags.p, m->tags.len);
    cJSON_AddItemToObject(o, "tags",
                          cJSON_IsArray(tags) ? tags : (cJSON_Delete(tags), cJSON_CreateArray()));
    if (!with_providers)
        goto out;
    chs = json_obj(state, "channels");
    prov = cJSON_AddArrayToObject(o, "providers");
    cJSON_ArrayForEach(c, chs)
    {
        const char *st = json_str(c, "status");
        cJSON *p = cJSON_CreateObject(), *ch = cJSON_AddObjectToObject(p, "channel"), *ref;
        int64_t sent = 0;
        cJSON_AddStringToObject(ch, "key", c->string);
        cJSON_AddStringToObject(p, "provider",
                                json_str(c, "provider_key") ? json_str(c, "provider_key") : "");
        cJSON_AddStringToObject(p, "status",
                                st && !strcmp(st, "sent")     ? "SENT"
                                : st && !strcmp(st, "failed") ? "UNDELIVERABLE"
                                                              : "PENDING");
        if (json_i64(c, "sent", &sent))
            cJSON_AddNumberToObject(p, "sent", (double)sent);
        if (json_str(c, "error"))
            cJSON_AddStringToObject(p, "error", json_str(c, "error"));
        ref = cJSON_AddObjectToObject(p, "reference");
        if (json_str(c, "reference") && json_str(c, "reference")[0])
            cJSON_AddStringToObject(ref, "id", json_str(c, "reference"));
        cJSON_AddItemToArray(prov, p);
    }
out:
    cJSON_Delete(state);
    return o;
}
