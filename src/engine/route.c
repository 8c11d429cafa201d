/* route.c: the "send.route" job. Resolves what a message needs before delivery (the
 * published template, the recipient's profile, the brand, the routing), chooses the
 * channels, renders them, and hands each to a "send.deliver" job. All decisions are
 * made outside the store; route_commit then writes them with the job's ack, unless the
 * message was canceled meanwhile. A message routed to one channel is delivered by this
 * job itself when its provider can take the call now (send__deliver_fused): routing and
 * the attempt's outcome then commit together, after the call. */
#include "send_int.h"
#include "defcache.h"
#include "prefs.h"

#include "../providers/provider.h"
#include "../render/elemental.h"
#include "tracking.h"
#include "../util/jsonpatch.h"
#include "../util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const default_channels[] = {"email", "sms", "push", "direct_message",
                                                "webhook", NULL};

/* keys of a recipient (`to`) that are not profile fields */
static const char *const not_profile[] = {"user_id", "data", "preferences", "context",
                                          "tenant_id", "account_id", "list_id", NULL};

struct route_out {
    struct str id;
    const char *final_status; /* NULL: routed */
    const char *reason;
    char error[512];
    cJSON *events;            /* [{type, body}] history to append, in order */
    cJSON *state;             /* the message's new state */
    cJSON *outputs;           /* {"results": [...]} */
    cJSON *jobs;              /* deliver payloads */
    bool bulk;                /* a fan-out's message: its deliver jobs are bulk too */
    bool retry;               /* the store could not be read: route again later */
    struct content first;     /* the first channel's rendered content (for a fused start) */
    int64_t at_ms;            /* when it was routed: the history's time (route_prepare;
                                 0 on the final-status path: the commit's) */
    int64_t deliver_at;       /* the deliver jobs' run_at (0: now) */
    /* the writes printed before the commit (off the writer; route_prepare): */
    char *state_s, *outputs_s; /* o->state, o->outputs; NULL when absent */
    char **hist_s;             /* o->events, each as stored, timed at_ms */
    int nhist;
};

static void route_out_free(void *p)
{
    struct route_out *o = p;
    cJSON_Delete(o->events);
    cJSON_Delete(o->state);
    cJSON_Delete(o->outputs);
    cJSON_Delete(o->jobs);
    content_cleanup(&o->first);
    free(o->state_s);
    free(o->outputs_s);
    for (int i = 0; i < o->nhist; i++)
        free(o->hist_s[i]);
}

/* route_prepare: prints what route_apply writes (history timed now, state, outputs), so
 * the commit on the writer does no JSON work. hist_s lives in a. */
static void route_prepare(struct route_out *o, struct arena *a, int64_t now)
{
    int n = cJSON_GetArraySize(o->events), i = 0;
    const cJSON *e;
    o->at_ms = now;
    o->hist_s = arena_zalloc(a, (size_t)(n > 0 ? n : 1) * sizeof *o->hist_s);
    cJSON_ArrayForEach(e, o->events)
        o->hist_s[i++] = send__history_json(now, json_str(e, "type"), json_obj(e, "body"));
    o->nhist = i;
    o->state_s = o->state ? json_print(o->state) : NULL;
    o->outputs_s = o->outputs ? json_print(o->outputs) : NULL;
}

static void event(struct route_out *o, const char *type, cJSON *body)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddItemToObject(e, "body", body ? body : cJSON_CreateObject());
    cJSON_AddItemToArray(o->events, e);
}

/* route_apply: writes o (history, outputs, state, deliver jobs) inside t, unless the
 * message is gone or final (*applied false). With mout (as the send__route_commit_fn of a
 * fused delivery: no deliver jobs, no final status then) neither the message row nor
 * the history is written: *mout and *hist (*nhist of them), in ma, are the message as
 * routing leaves it and the routing's events, for the caller to write (when route_prepare
 * printed them, as it does on every path that can fuse; else they are appended here);
 * with sent too, nor the outputs (an earlier routing's are removed). */
static int route_apply(struct store_txn *t, void *arg, struct arena *ma,
                       struct message_rec *mout, struct history_row **hist, size_t *nhist,
                       bool sent, bool *applied)
{
    struct route_out *o = arg;
    struct arena *a = mout ? ma : arena_new(8192);
    struct message_rec mrec, *m = mout ? mout : &mrec;
    int64_t now = hclock_now(store_txn_store(t)->clock);
    int64_t at = o->at_ms ? o->at_ms : now;
    const cJSON *e;
    int rc = store_message_get_txn(t, o->id, a, m);
    *applied = false;
    if (nhist)
        *nhist = 0;
    if (rc == HR_NOTFOUND) {
        memset(m, 0, sizeof *m);
        rc = HR_OK; /* deleted: nothing to do */
        goto out;
    }
    if (rc < 0 || send__is_final(m->status))
        goto out; /* canceled (or done) while we worked: keep it that way */
    if (o->hist_s) {
        struct history_row *rows =
            arena_zalloc(a, (size_t)(o->nhist > 0 ? o->nhist : 1) * sizeof *rows);
        int i = 0;
        cJSON_ArrayForEach(e, o->events)
        {
            if (i >= o->nhist)
                break;
            rows[i] = (struct history_row){at, str_c(json_str(e, "type")), str_c(o->hist_s[i])};
            i++;
        }
        if (mout && hist) {
            *hist = rows;
            *nhist = (size_t)i;
        } else {
            rc = store_history_append_many(t, m->id, rows, (size_t)i);
            if (rc < 0)
                goto out;
        }
    } else {
        cJSON_ArrayForEach(e, o->events)
        {
            rc = send__history(t, m->id, at, json_str(e, "type"), json_obj(e, "body"));
            if (rc < 0)
                goto out;
        }
    }
    *applied = true;
    if (o->final_status) {
        rc = send__final(t, m, a, o->final_status, o->reason, o->error, NULL, now);
        goto out;
    }
    if (o->outputs && !(mout && sent)) {
        struct str s = o->outputs_s ? str_c(o->outputs_s) : send__json_str(a, o->outputs);
        rc = store_doc_put(t, "outputs", m->id, s, now, NULL);
        if (rc < 0)
            goto out;
    } else if (o->outputs && !str_eq_c(m->status, "ENQUEUED")) {
        /* routed before (this is the next alternative): that routing's outputs must not
         * stand for this one's (engine_message_outputs reads the document first) */
        rc = store_doc_delete(t, "outputs", m->id);
        if (rc == HR_NOTFOUND)
            rc = HR_OK;
        if (rc < 0)
            goto out;
    }
    m->status = STR_LIT("ROUTED");
    m->state = o->state_s ? str_c(o->state_s) : send__json_str(a, o->state);
    m->updated_ms = now;
    if (mout)
        goto out; /* the caller writes it, with the attempt's outcome */
    rc = store_message_update(t, m);
    cJSON_ArrayForEach(e, o->jobs)
    {
        if (rc == HR_OK)
            rc = o->bulk ? send__enqueue_bulk(t, SEND_DELIVER_KIND, e, o->deliver_at)
                         : send__enqueue(t, SEND_DELIVER_KIND, e, o->deliver_at);
    }
out:
    if (!mout)
        arena_free(a);
    return rc;
}

static int route_commit(struct store_txn *t, void *arg)
{
    bool applied;
    return route_apply(t, arg, NULL, NULL, NULL, NULL, false, &applied);
}

/* mask_webhook_auth: profile.webhook.authentication password and token as "****" (in
 * place; profile may be NULL), for copies shown in the message history. */
static void mask_webhook_auth(cJSON *profile)
{
    static const char *const keys[] = {"password", "token", NULL};
    cJSON *w = json_member(profile, "webhook");
    cJSON *a = json_member(w, "authentication");
    for (int i = 0; keys[i]; i++)
        if (cJSON_IsString(json_member(a, keys[i])))
            cJSON_ReplaceItemInObjectCaseSensitive(a, keys[i], cJSON_CreateString("****"));
}

/* merged_profile: the stored profile of to.user_id with the recipient's own fields on
 * top (this send only). Records PROFILE_LOADED. */
static cJSON *merged_profile(struct engine *e, const cJSON *to, struct route_out *o)
{
    const char *uid = json_str(to, "user_id");
    cJSON *stored = NULL, *received = cJSON_CreateObject(), *merged, *h, *it;
    struct arena *a = arena_new(4096);
    struct doc_rec d;
    if (uid && store_doc_get(e->store, "profiles", str_c(uid), a, &d) == HR_OK)
        stored = cJSON_ParseWithLength(d.body.p, d.body.len);
    arena_free(a);
    cJSON_ArrayForEach(it, to)
    {
        bool skip = false;
        for (int k = 0; not_profile[k]; k++)
            skip |= strcmp(it->string, not_profile[k]) == 0;
        if (!skip)
            cJSON_AddItemToObject(received, it->string, cJSON_Duplicate(it, 1));
    }
    merged = cJSON_IsObject(stored) ? cJSON_Duplicate(stored, 1) : cJSON_CreateObject();
    jp_merge(merged, received, false);
    h = cJSON_CreateObject();
    cJSON_AddItemToObject(h, "received_profile", received);
    cJSON_AddItemToObject(h, "stored_profile", stored ? stored : cJSON_CreateNull());
    cJSON_AddItemToObject(h, "merged_profile", cJSON_Duplicate(merged, 1));
    /* the history shows who was addressed, never a recipient webhook's credentials */
    mask_webhook_auth(received);
    mask_webhook_auth(stored);
    mask_webhook_auth(json_member(h, "merged_profile"));
    event(o, "PROFILE_LOADED", h);
    return merged;
}

/* load_brand: the message's brand (its spec's, else its template's, else the default),
 * or JSON null; caller owns */
static cJSON *load_brand(struct engine *e, const cJSON *spec, const cJSON *tmpl)
{
    const char *id = json_str(spec, "brand_id");
    struct defset *hold = NULL;
    const cJSON *b = NULL;
    cJSON *out;
    if (!id)
        id = json_str(json_obj(tmpl, "brand"), "id");
    if (engine_brand_cached(e, id, &hold, &b) < 0)
        b = NULL;
    out = b ? cJSON_Duplicate(b, 1) : cJSON_CreateNull();
    defset_unref(hold);
    return out;
}

/* add_alt_entry: one routing entry (a channel name, or a provider key restricting a
 * channel to that provider) appended to alt. */
static void add_alt_entry(cJSON *alt, const char *name)
{
    cJSON *ent = cJSON_CreateObject();
    enum channel ch = channel_parse(name);
    if (ch == CH_NONE) {
        const struct provider_ops *p = provider_find(name);
        if (!p || p->channel == CH_NONE) {
            cJSON_Delete(ent);
            return; /* unknown names are skipped, as unroutable entries */
        }
        cJSON_AddStringToObject(ent, "channel", channel_name(p->channel));
        cJSON_AddStringToObject(ent, "only", name);
    } else {
        cJSON_AddStringToObject(ent, "channel", channel_name(ch));
    }
    cJSON_AddItemToArray(alt, ent);
}

/* plan_alts: routing -> the alternatives to try in order; each alternative is the list
 * of channels sent together. single: one alternative per entry; all: one with all. */
static cJSON *plan_alts(const cJSON *routing)
{
    const char *method = json_str(routing, "method");
    const cJSON *chs = json_arr(routing, "channels"), *c, *cc;
    bool all = method && strcmp(method, "all") == 0;
    cJSON *alts = cJSON_CreateArray(), *one = all ? cJSON_CreateArray() : NULL;
    cJSON_ArrayForEach(c, chs)
    {
        cJSON *alt = all ? one : cJSON_CreateArray();
        if (cJSON_IsString(c)) {
            add_alt_entry(alt, c->valuestring);
        } else if (cJSON_IsObject(c)) {
            const char *sub = json_str(c, "method");
            bool suball = sub && strcmp(sub, "all") == 0;
            cJSON_ArrayForEach(cc, json_arr(c, "channels"))
            {
                if (!cJSON_IsString(cc))
                    continue;
                if (suball || all) {
                    add_alt_entry(alt, cc->valuestring);
                } else { /* nested single inside single: each is its own alternative */
                    cJSON *a2 = cJSON_CreateArray();
                    add_alt_entry(a2, cc->valuestring);
                    cJSON_AddItemToArray(alts, a2);
                }
            }
        }
        if (!all) {
            if (cJSON_GetArraySize(alt) > 0)
                cJSON_AddItemToArray(alts, alt);
            else
                cJSON_Delete(alt);
        }
    }
    if (all)
        cJSON_AddItemToArray(alts, one);
    return alts;
}

/* has_address: does the profile carry an address for channel ch (regardless of any
 * provider)? Decides NO_PROVIDERS (reachable, nothing configured) vs NO_CHANNELS. */
static bool has_address(const char *ch, const cJSON *profile)
{
    static const struct {
        const char *channel;
        const char *keys[6];
    } addr[] = {
        {"email", {"email", NULL}},
        {"sms", {"phone_number", NULL}},
        {"push", {"firebaseToken", "apn", "expo", "oneSignalPlayerID", "target_arn", NULL}},
        {"direct_message", {"slack", "discord", "ms_teams", "intercom", NULL}},
        {"webhook", {"webhook", NULL}},
    };
    for (size_t i = 0; i < sizeof addr / sizeof addr[0]; i++) {
        if (strcmp(addr[i].channel, ch))
            continue;
        for (int k = 0; addr[i].keys[k]; k++) {
            const cJSON *v = json_member(profile, addr[i].keys[k]);
            if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !v->valuestring[0]))
                return true;
        }
    }
    return false;
}

/* usable_providers: ids of the providers that can deliver channel ch to profile,
 * honouring `only` and message.channels.<ch>.providers. *configured tells whether the
 * channel has any provider at all. */
static cJSON *usable_providers(struct engine *e, const char *ch, const char *only,
                               const cJSON *spec, const cJSON *profile, bool *configured)
{
    struct defset *all = NULL;
    cJSON *ids = cJSON_CreateArray();
    const cJSON *want = json_arr(json_obj(json_obj(spec, "channels"), ch), "providers");
    /* a store error reads as no provider, as an empty channel does */
    *configured = engine_channel_providers(e, ch, &all) == HR_OK && all->n > 0;
    for (size_t i = 0; all && i < all->n; i++) {
        const cJSON *p = all->defs[i];
        const char *name = json_str(p, "provider"), *id = all->ids[i];
        const struct provider_ops *ops = provider_find(name ? name : "");
        const cJSON *w;
        bool wanted = !want;
        if (!ops || !id || (only && strcmp(only, name) != 0))
            continue;
        cJSON_ArrayForEach(w, want) if (cJSON_IsString(w) &&
                                        (!strcmp(w->valuestring, name) || !strcmp(w->valuestring, id)))
            wanted = true;
        if (!wanted)
            continue;
        if (ops->addressable && !ops->addressable(profile, json_obj(p, "settings")))
            continue;
        cJSON_AddItemToArray(ids, cJSON_CreateString(id));
    }
    defset_unref(all);
    return ids;
}

static cJSON *content_json(const struct content *c)
{
    cJSON *o = cJSON_CreateObject();
    if (c->subject)
        cJSON_AddStringToObject(o, "subject", c->subject);
    if (c->title)
        cJSON_AddStringToObject(o, "title", c->title);
    if (c->body)
        cJSON_AddStringToObject(o, "body", c->body);
    if (c->text)
        cJSON_AddStringToObject(o, "text", c->text);
    if (c->html)
        cJSON_AddStringToObject(o, "html", c->html);
    if (c->json)
        cJSON_AddItemToObject(o, "json", cJSON_Duplicate(c->json, 1));
    if (c->list_unsub)
        cJSON_AddStringToObject(o, "list_unsubscribe", c->list_unsub);
    return o;
}

/* prefs_route: the recipient's preference for the message's topic (src/engine/prefs.c):
 * opted out ends the message FILTERED (UNSUBSCRIBED); a store error routes again later.
 * HR_OK when routing goes on. */
static int prefs_route(struct engine *e, const cJSON *spec, const cJSON *tmpl, const cJSON *to,
                       struct prefs_decision *pd, struct route_out *o)
{
    int rc = prefs_decide(e, spec, tmpl, json_str(to, "user_id"), pd);
    if (rc < 0) {
        o->retry = true;
        snprintf(o->error, sizeof o->error, "cannot read preferences: %s", hr_rc_str(rc));
        return rc;
    }
    if (!pd->filtered)
        return HR_OK;
    o->final_status = "FILTERED";
    o->reason = "UNSUBSCRIBED";
    snprintf(o->error, sizeof o->error, "the recipient opted out of topic %s", pd->topic_id);
    return HR_CONFLICT;
}

/* prefs_route_ctx: {{unsubscribe_url}}, {{preferences_url}} (and Courier's urls.*) in the
 * render context, and the List-Unsubscribe value for email ("" when none). */
static void prefs_route_ctx(const struct engine *e, const struct prefs_decision *pd, cJSON *ctx,
                            char *list_unsub, size_t cap)
{
    cJSON *urls = cJSON_AddObjectToObject(ctx, "urls");
    prefs_list_unsubscribe(e, pd, list_unsub, cap);
    cJSON_AddStringToObject(ctx, "unsubscribe_url", pd->unsub_url);
    cJSON_AddStringToObject(ctx, "preferences_url", pd->unsub_url);
    cJSON_AddStringToObject(urls, "unsubscribe", pd->unsub_url);
    cJSON_AddStringToObject(urls, "preferences", pd->unsub_url);
    if (pd->topic_id[0])
        cJSON_AddStringToObject(ctx, "subscriptionTopicId", pd->topic_id);
}

/* route: decide everything for message m into o. */
static void route(struct engine *e, const struct message_rec *m, int alt_from,
                  struct route_out *o)
{
    cJSON *spec = cJSON_ParseWithLength(m->spec.p, m->spec.len), *profile = NULL;
    const cJSON *tmpl = NULL;
    struct defset *tmpl_hold = NULL;
    cJSON *brand = NULL, *alts = NULL, *routing_default = NULL, *ctx = NULL, *data = NULL;
    const cJSON *to, *content, *routing, *alt = NULL;
    const char *tid;
    bool any_addr_no_provider = false;
    struct prefs_decision pd = {0};
    char list_unsub[PREFS_URL_MAX + 320] = "";
    int k = 0, rc;

    if (!spec) {
        o->final_status = "UNDELIVERABLE";
        o->reason = "FAILED";
        snprintf(o->error, sizeof o->error, "stored message is unreadable");
        goto out;
    }
    rc = engine_spec_data(e, spec); /* the data of its event, when it refers to one */
    if (rc == HR_NOTFOUND || rc == HR_INVAL) {
        o->final_status = "UNDELIVERABLE";
        o->reason = "FAILED";
        snprintf(o->error, sizeof o->error, "the stored event of its data is %s",
                 rc == HR_NOTFOUND ? "gone" : "unreadable");
        goto out;
    }
    if (rc < 0) {
        o->retry = true;
        snprintf(o->error, sizeof o->error, "cannot read its event: %s", hr_rc_str(rc));
        goto out;
    }
    to = json_obj(spec, "to");
    tid = json_str(spec, "template");
    if (tid) {
        rc = engine_template_cached(e, tid, &tmpl_hold, &tmpl);
        if (rc == HR_NOTFOUND) {
            o->final_status = "UNMAPPED"; /* no reason: Courier's reasons have none for it */
            snprintf(o->error, sizeof o->error, "no template %s", tid);
            goto out;
        }
        if (rc == HR_CONFLICT) {
            o->final_status = "UNDELIVERABLE";
            o->reason = "UNPUBLISHED";
            snprintf(o->error, sizeof o->error, "template %s has no published version", tid);
            goto out;
        }
        if (rc < 0) {
            o->final_status = "UNDELIVERABLE";
            o->reason = "FAILED";
            snprintf(o->error, sizeof o->error, "cannot load template: %s", hr_rc_str(rc));
            goto out;
        }
        {
            cJSON *h = cJSON_CreateObject();
            cJSON_AddStringToObject(h, "event_id", tid);
            cJSON_AddStringToObject(h, "notification_id", tid);
            cJSON_AddStringToObject(h, "version", json_str(tmpl, "version") ? json_str(tmpl, "version") : "");
            event(o, "MAPPED", h);
        }
    }
    profile = merged_profile(e, to, o);
    if (prefs_route(e, spec, tmpl, to, &pd, o) != HR_OK)
        goto out;
    brand = load_brand(e, spec, tmpl);
    content = tmpl ? json_obj(tmpl, "content") : json_obj(spec, "content");
    routing = json_obj(spec, "routing");
    if (!routing && tmpl && json_arr(json_obj(tmpl, "routing"), "channels"))
        routing = json_obj(tmpl, "routing");
    if (!routing) {
        routing_default = cJSON_CreateObject();
        cJSON_AddStringToObject(routing_default, "method", "single");
        cJSON_AddItemToObject(routing_default, "channels",
                              cJSON_CreateStringArray(default_channels, 5));
        routing = routing_default;
    }
    alts = plan_alts(routing);

    /* pick the first alternative (from alt_from) with at least one usable channel */
    o->state = cJSON_CreateObject();
    cJSON *chstate = cJSON_CreateObject();
    for (k = alt_from; k < cJSON_GetArraySize(alts); k++) {
        const cJSON *ent;
        alt = cJSON_GetArrayItem(alts, k);
        cJSON_ArrayForEach(ent, alt)
        {
            const char *ch = json_str(ent, "channel");
            bool configured;
            cJSON *ids;
            if (json_member(chstate, ch) || !prefs_channel_allowed(&pd, ch))
                continue;
            ids = usable_providers(e, ch, json_str(ent, "only"), spec, profile, &configured);
            if (cJSON_GetArraySize(ids) == 0) {
                if (!configured && has_address(ch, profile))
                    any_addr_no_provider = true;
                cJSON_Delete(ids);
                continue;
            }
            cJSON *cs = cJSON_AddObjectToObject(chstate, ch);
            cJSON_AddItemToObject(cs, "providers", ids);
            cJSON_AddStringToObject(cs, "status", "pending");
        }
        if (cJSON_GetArraySize(chstate) > 0)
            break;
    }
    if (cJSON_GetArraySize(chstate) == 0) {
        cJSON_Delete(chstate);
        o->final_status = "UNROUTABLE";
        o->reason = any_addr_no_provider ? "NO_PROVIDERS" : "NO_CHANNELS";
        snprintf(o->error, sizeof o->error, "%s",
                 any_addr_no_provider ? "no provider is configured for the routed channels"
                                      : "the recipient has no address for any routed channel");
        goto out;
    }
    cJSON_AddStringToObject(o->state, "routing",
                            json_str(routing, "method") ? json_str(routing, "method") : "single");
    cJSON_AddNumberToObject(o->state, "alt", k);
    cJSON_AddNumberToObject(o->state, "alts", cJSON_GetArraySize(alts));
    cJSON_AddItemToObject(o->state, "profile", cJSON_Duplicate(profile, 1));
    cJSON_AddItemToObject(o->state, "channels", chstate);

    /* render each chosen channel: with the spec's data, taken from it (nothing below
     * reads the spec's data; a copy cost as much as the event's parse) */
    data = cJSON_IsObject(json_obj(spec, "data"))
               ? cJSON_DetachItemViaPointer(spec, json_obj(spec, "data"))
               : cJSON_CreateObject();
    if (json_obj(to, "data"))
        jp_merge(data, json_obj(to, "data"), false);
    ctx = cJSON_CreateObject();
    cJSON_AddItemToObject(ctx, "data", data);
    cJSON_AddItemToObject(ctx, "profile", cJSON_Duplicate(profile, 1));
    cJSON_AddItemToObject(ctx, "brand", brand); /* load_brand's copy: ctx owns it now */
    brand = NULL;
    cJSON_AddStringToObject(ctx, "recipient", m->recipient.p ? m->recipient.p : "");
    cJSON_AddStringToObject(ctx, "messageId", m->id.p);
    cJSON_AddStringToObject(ctx, "event", m->event.p ? m->event.p : "");
    cJSON_AddStringToObject(ctx, "template", tid ? tid : "");
    if (json_str(profile, "locale"))
        cJSON_AddStringToObject(ctx, "locale", json_str(profile, "locale"));
    prefs_route_ctx(e, &pd, ctx, list_unsub, sizeof list_unsub);
    o->outputs = cJSON_CreateObject();
    cJSON *results = cJSON_AddArrayToObject(o->outputs, "results");
    const cJSON *cs;
    cJSON_ArrayForEach(cs, chstate)
    {
        struct content c;
        struct herr err;
        cJSON *r, *h, *job;
        memset(&c, 0, sizeof c);
        herr_clear(&err);
        if (!content) {
            o->final_status = "UNDELIVERABLE";
            o->reason = "FAILED";
            snprintf(o->error, sizeof o->error, "the template has no content");
            goto out;
        }
        rc = elemental_render(content, channel_parse(cs->string), ctx, e->hbs, &c, &err);
        if (rc == HR_OK) /* open and click tracking, when the template asks (tracking.h) */
            rc = engine_tracking_apply(e, tmpl, m->id.p, &c);
        if (rc < 0) {
            o->final_status = "UNDELIVERABLE";
            o->reason = "FAILED";
            snprintf(o->error, sizeof o->error, "rendering %s failed: %s", cs->string, err.msg);
            content_cleanup(&c);
            goto out;
        }
        r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "channel", cs->string);
        cJSON_AddStringToObject(r, "channel_id", cs->string);
        if (list_unsub[0] && c.channel == CH_EMAIL)
            c.list_unsub = strdup(list_unsub);
        cJSON *cj = content_json(&c);
        cJSON_AddItemToObject(r, "content", cj);
        cJSON_AddItemToArray(results, r);
        h = cJSON_CreateObject();
        cJSON *chn = cJSON_AddObjectToObject(h, "channel");
        cJSON_AddStringToObject(chn, "id", cs->string);
        /* the same object as the outputs' (o->outputs owns it and lives as long as
         * o->events: route_out_free), printed into both */
        cJSON_AddItemReferenceToObject(h, "output", cj);
        event(o, "RENDERED", h);
        if (cJSON_GetArraySize(o->jobs) == 0) {
            o->first = c; /* moved */
            memset(&c, 0, sizeof c);
        }
        content_cleanup(&c);
        job = cJSON_CreateObject();
        cJSON_AddStringToObject(job, "id", m->id.p);
        cJSON_AddStringToObject(job, "channel", cs->string);
        cJSON_AddNumberToObject(job, "p", 0);
        cJSON_AddNumberToObject(job, "attempt", 1);
        cJSON_AddItemToArray(o->jobs, job);
    }
out:
    cJSON_Delete(spec);
    defset_unref(tmpl_hold);
    cJSON_Delete(profile);
    cJSON_Delete(brand);
    cJSON_Delete(alts);
    cJSON_Delete(routing_default);
    cJSON_Delete(ctx);
    prefs_decision_cleanup(&pd);
}

void engine_route_run(void *vctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct engine *e = vctx;
    cJSON *p = cJSON_ParseWithLength(j->payload.p, j->payload.len);
    const char *id = json_str(p, "id");
    struct route_out *o = arena_zalloc(a, sizeof *o);
    struct message_rec m;
    int64_t alt = 0;
    int rc;

    arena_defer(a, route_out_free, o);
    o->events = cJSON_CreateArray();
    o->jobs = cJSON_CreateArray();
    if (!id) {
        r->outcome = JOB_OUT_FAIL;
        snprintf(r->error, sizeof r->error, "route job without a message id");
        goto out;
    }
    json_i64(p, "alt", &alt);
    o->bulk = cJSON_IsTrue(json_member(p, "bulk"));
    o->id = arena_str(a, str_c(id));
    rc = store_message_get(e->store, o->id, a, &m);
    if (rc == HR_NOTFOUND || (rc == HR_OK && send__is_final(m.status))) {
        r->outcome = JOB_OUT_DONE; /* gone or canceled: nothing to route */
        goto out;
    }
    if (rc < 0) {
        r->outcome = JOB_OUT_RETRY;
        snprintf(r->error, sizeof r->error, "cannot load message: %s", hr_rc_str(rc));
        goto out;
    }
    route(e, &m, (int)alt, o);
    if (o->retry) {
        r->outcome = JOB_OUT_RETRY;
        snprintf(r->error, sizeof r->error, "%s", o->error);
        goto out;
    }
    if (o->final_status)
        LOG_I("send.final", "message=%s status=%s reason=%s", id, o->final_status,
              o->reason ? o->reason : "-");
    r->outcome = JOB_OUT_DONE;
    r->commit = route_commit;
    r->commit_arg = o;
    if (!o->final_status)
        route_prepare(o, a, hclock_now(e->clock));
    if (!o->final_status && cJSON_GetArraySize(o->jobs) == 1) {
        /* one channel: deliver it here, and commit route and outcome together */
        const char *ch = json_str(cJSON_GetArrayItem(o->jobs, 0), "channel");
        cJSON *jobs = o->jobs;
        o->jobs = cJSON_CreateArray(); /* no deliver job when the call starts here */
        if (ch && send__deliver_fused(e, j, a, r, &m, ch, o->state, &o->first, route_apply, o,
                                      &o->deliver_at)) {
            cJSON_Delete(jobs);
            goto out;
        }
        cJSON_Delete(o->jobs);
        o->jobs = jobs;
        /* a dead node may have made this call from an earlier lease of this job: the
         * deliver job's attempt says so, as if it had been taken over itself */
        if (j->retaken > 0 && j->attempts > 1)
            cJSON_AddNumberToObject(cJSON_GetArrayItem(jobs, 0), "lease_attempt",
                                    (double)j->attempts);
    }
out:
    cJSON_Delete(p);
}
