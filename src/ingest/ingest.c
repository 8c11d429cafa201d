/* ingest.c: durable acceptance of events and their processing: applied in the accepting
 * transaction on a store with one writer (struct ingest.apply_at_accept), else by the
 * events job; both run events_commit.
 *
 * Events from a client-scope write key (public: it ships in browser and mobile apps)
 * may not change where deliveries go. Their identify never sets `webhook`, and sets an
 * address trait (CLIENT_ADDRESS_TRAITS: email, phone_number, push tokens, chat ids) only
 * on a profile that has none yet; their alias applies only when previousId has no
 * profile (so it never moves, merges or deletes one). What is refused is dropped from
 * the event (its run data too), logged as ingest.client_refused and counted in
 * herald_ingest_client_refused_total; the rest of the event applies. Nor does their
 * group call subscribe anyone to the group's list (grouplists.h), unless the operator's
 * group_lists setting says allow_client. */
#include "ingest.h"
#include "grouplists.h"

#include "../util/buf.h"
#include "../util/json.h"
#include "../util/jsonpatch.h"
#include "../util/log.h"
#include "../util/metrics.h"
#include "../util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COLL_PROFILES "profiles"
#define COLL_GROUPS "groups"
#define ACCEPT_SHARED_MAX 8 /* events in a request that store_write_shared takes */
#define COLL_GROUP_MEMBERS "group_members"
#define COLL_ALIASES "aliases"

struct loaded;
static int events_commit(struct store_txn *t, void *varg);
static void loaded_report(void *varg);
static bool loaded_take_accepted(struct loaded *l, struct seg_result *res,
                                 const struct ingest_outcome *out, int64_t now_ms);

/* apply_at_accept_fn: events_commit, keeping its own rc (a store_txn_sub that fails
 * with another one lost the savepoint, and with it the transaction). */
struct apply_at_accept {
    struct loaded *l;
    int rc;
};

static int apply_at_accept_fn(struct store_txn *t, void *varg)
{
    struct apply_at_accept *x = varg;
    x->rc = events_commit(t, x->l);
    return x->rc;
}

struct accept_arg {
    struct ingest *ig;
    int64_t source_id;
    struct seg_result *res;
    struct ingest_outcome *out;
    int64_t now_ms;
    struct queue_handoff *h;
    struct loaded *l; /* apply in place (ig->apply_at_accept), else NULL */
    bool applied;     /* the events were applied in this transaction: no events job */
};

static int accept_tx(struct store_txn *t, void *varg)
{
    struct accept_arg *a = varg;
    struct buf payload;
    struct event_rec *recs = NULL;
    int *rcs = NULL;
    int rc = HR_OK;
    int64_t job_id;
    size_t fresh = 0;

    queue_handoff_reset(a->h); /* this fn may run again (a PostgreSQL retry) */
    a->applied = false;
    buf_init(&payload, 64 + a->res->n_events * 24);
    rc = buf_append_c(&payload, "{\"ids\":[");
    a->out->accepted = a->out->duplicates = 0;
    recs = xcalloc(a->res->n_events, sizeof *recs);
    rcs = xcalloc(a->res->n_events, sizeof *rcs);
    for (size_t i = 0; i < a->res->n_events; i++) {
        const struct seg_event *ev = &a->res->events[i];
        recs[i] = (struct event_rec){
            .source_id = a->source_id,
            .message_id = str_c(ev->message_id),
            .type = str_c(seg_kind_name(ev->type)),
            .user_id = str_c(ev->user_id),
            .body = {ev->serialized, ev->serialized_len},
            .received_ms = a->now_ms,
        };
    }
    if (rc == HR_OK)
        rc = store_event_insert_many(t, recs, a->res->n_events, a->ig->dedup_window_ms,
                                     a->out->ids, rcs);
    for (size_t i = 0; i < a->res->n_events && rc == HR_OK; i++) {
        if (rcs[i] == HR_CONFLICT) {
            a->out->status[i] = INGEST_DUPLICATE;
            a->out->duplicates++;
            continue;
        }
        a->out->status[i] = INGEST_ACCEPTED;
        a->out->accepted++;
        rc = buf_printf(&payload, "%s%lld", fresh++ ? "," : "", (long long)a->out->ids[i]);
    }
    if (rc == HR_OK && fresh > 0 && a->l && loaded_take_accepted(a->l, a->res, a->out,
                                                                  a->now_ms)) {
        /* the events job's commit, here: in its own savepoint, so that an error it
         * returns rolls back alone and the job does it later. A full disk or an I/O
         * error (SQLite has aborted the transaction), or a savepoint that could not be
         * made or ended, fails the accept instead: the client retries it whole */
        struct apply_at_accept x = {a->l, HR_OK};
        int src = queue_txn_sub_to(t, a->h, apply_at_accept_fn, &x);
        a->applied = src == HR_OK;
        if (src < 0 && (src != x.rc || src == HR_FULL || src == HR_IO)) {
            rc = src;
            goto out;
        }
        if (src < 0)
            LOG_I("ingest.apply_later", "events=%zu rc=%s msg=\"not applied at accept; "
                  "their events job applies them\"", fresh, hr_rc_str(src));
    }
    if (rc == HR_OK && fresh > 0 && !a->applied) {
        struct job_spec js = {.kind = INGEST_JOB_KIND};
        rc = buf_append_c(&payload, a->res->client ? "],\"client\":true}" : "]}");
        js.payload = buf_str(&payload);
        if (rc == HR_OK)
            rc = queue_enqueue_to(t, a->h, &js, &job_id);
    }
out:
    buf_cleanup(&payload);
    free(recs);
    free(rcs);
    return rc;
}

/* hand_over: move the committed, newly accepted events of res into ig's cache for this
 * process's events job (see evcache.h). Their json, serialized, user_id and message_id
 * are NULL afterwards. */
static void hand_over(struct ingest *ig, struct seg_result *res, const struct ingest_outcome *out,
                      int64_t now_ms)
{
    if (!ig->cache)
        return;
    for (size_t i = 0; i < res->n_events; i++) {
        struct seg_event *ev = &res->events[i];
        if (out->status[i] != INGEST_ACCEPTED || !ev->json || !ev->serialized)
            continue;
        evcache_put(ig->cache, out->ids[i], ev->json, ev->serialized, ev->serialized_len,
                    now_ms);
        ev->json = NULL;
        ev->serialized = NULL;
        ev->user_id = ev->message_id = NULL;
    }
}

static struct loaded *loaded_for_accept(struct ingest *ig, struct seg_result *res);
static void loaded_for_accept_free(struct loaded *l);

int ingest_accept(struct ingest *ig, int64_t source_id, struct seg_result *res,
                  struct ingest_outcome *out, struct herr *err)
{
    struct queue_handoff h;
    struct accept_arg a = {ig, source_id, res, out, hclock_now(ig->clock), &h, NULL, false};
    int rc;
    if (res->n_events == 0) {
        out->accepted = out->duplicates = 0;
        return HR_OK;
    }
    if (ig->apply_at_accept)
        a.l = loaded_for_accept(ig, res);
    queue_handoff_init(&h, ig->queue);
    /* a few events share a transaction with other requests' (PostgreSQL groups them while
     * its pool is busy); a batch of many already spreads its commit over them, and a
     * group runs its members one after another on one connection */
    if (res->n_events <= ACCEPT_SHARED_MAX)
        rc = store_write_shared(ig->store, accept_tx, &a, err);
    else
        rc = store_write(ig->store, accept_tx, &a, err);
    if (rc == HR_OK) {
        if (a.applied) {
            loaded_report(a.l);
            metrics_counter_add("herald_ingest_applied_at_accept_total",
                                "Accepted events applied in the transaction that stored them "
                                "(no events job).",
                                NULL, NULL, out->accepted);
        } else {
            hand_over(ig, res, out, a.now_ms);
        }
        queue_handoff_publish(&h); /* after hand_over: the job finds its events cached */
    }
    queue_handoff_cleanup(&h);
    loaded_for_accept_free(a.l);
    return rc;
}

/* ---- applying events ------------------------------------------------------------- */

/* doc_load: the document as a JSON object (new, caller owns), or an empty object when
 * absent; *existed tells which. */
static int doc_load(struct store_txn *t, const char *coll, struct str id, cJSON **out,
                    bool *existed)
{
    struct arena *a = arena_new(1024);
    struct doc_rec d;
    int rc = store_doc_get_txn(t, coll, id, a, &d);
    *existed = rc == HR_OK;
    *out = NULL;
    if (rc == HR_OK) {
        *out = cJSON_ParseWithLength(d.body.p, d.body.len);
        if (!*out || !cJSON_IsObject(*out)) {
            cJSON_Delete(*out);
            *out = cJSON_CreateObject(); /* a damaged document is replaced, not fatal */
        }
    } else if (rc == HR_NOTFOUND) {
        *out = cJSON_CreateObject();
        rc = HR_OK;
    }
    arena_free(a);
    return rc;
}

static int doc_save(struct store_txn *t, const char *coll, struct str id, const cJSON *v,
                    int64_t now_ms)
{
    char *s = json_print(v);
    int rc = store_doc_put(t, coll, id, str_c(s), now_ms, NULL);
    free(s);
    return rc;
}

/* ---- what a client key may not do ------------------------------------------------ */

/* Profile keys that say where a delivery goes (route.c's has_address, less `webhook`,
 * which a client key never sets). */
static const char *const CLIENT_ADDRESS_TRAITS[] = {
    "email", "phone_number", "firebaseToken", "apn", "expo", "oneSignalPlayerID",
    "target_arn", "slack", "discord", "ms_teams", "intercom", NULL};

/* client_refused: count, then log, what a client key may not do (counted first: a test or
 * an operator that sees the line also sees it counted). */
static void client_refused(int64_t event_id, const char *type, const char *what)
{
    metrics_counter_add("herald_ingest_client_refused_total",
                        "Event parts a client-scope write key may not apply, dropped.", "type",
                        type, 1);
    LOG_W("ingest.client_refused", "event=%lld type=%s refused=\"%s\" key_scope=client",
          (long long)event_id, type, what);
}

/* ---- counted once committed ------------------------------------------------------------
 * What a client key was refused, and the events rejected (below), are counted and logged
 * after the transaction that applied the events committed (loaded_report), not while it
 * runs: that transaction may run again (a PostgreSQL retry), and a job's events, applied
 * together first, are rolled back and applied again one by one when one of them fails
 * for good. Each run starts the notes afresh; a rolled-back event's are dropped. */
struct refusal {
    int64_t event_id;
    const char *type; /* static */
    char *what;       /* heap */
};

struct refusals {
    struct refusal *v; /* heap; at most one per event (one type each) */
    size_t n, cap;
};

/* refusals_truncate: forget the notes from the n-th on (n = 0: all). */
static void refusals_truncate(struct refusals *r, size_t n)
{
    for (size_t i = n; i < r->n; i++)
        free(r->v[i].what);
    if (n < r->n)
        r->n = n;
}

static void refusals_cleanup(struct refusals *r)
{
    refusals_truncate(r, 0);
    free(r->v);
    r->v = NULL;
    r->cap = 0;
}

/* note_refusal: note a refusal in r, reported once committed; with no r (an event applied
 * outside a job: never a client key's), report it now. */
static void note_refusal(struct refusals *r, int64_t event_id, const char *type, const char *what)
{
    if (!r) {
        client_refused(event_id, type, what);
        return;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->v = xrealloc(r->v, r->cap * sizeof *r->v);
    }
    r->v[r->n++] = (struct refusal){event_id, type, xstrdup(what)};
}

/* note: append name to the comma-separated list b (its cap holds every name). */
static void note(struct buf *b, const char *name)
{
    if (buf_printf(b, "%s%s", b->len ? "," : "", name) < 0)
        return;
}

/* client_traits: drop from traits (in place) what a client key may not set on profile:
 * `webhook`, and an address trait the profile holds with another value (set-once). The
 * dropped names go into dropped (comma-separated). */
static void client_traits(cJSON *traits, const cJSON *profile, struct buf *dropped)
{
    for (size_t i = 0; CLIENT_ADDRESS_TRAITS[i]; i++) {
        const char *k = CLIENT_ADDRESS_TRAITS[i];
        const cJSON *nv = json_member(traits, k);
        const cJSON *ov = json_member(profile, k);
        bool held = ov && !cJSON_IsNull(ov) && !(cJSON_IsString(ov) && !ov->valuestring[0]);
        if (!nv || !held || cJSON_Compare(nv, ov, true))
            continue;
        note(dropped, k);
        cJSON_DeleteItemFromObjectCaseSensitive(traits, k);
    }
    if (json_member(traits, "webhook")) {
        note(dropped, "webhook");
        cJSON_DeleteItemFromObjectCaseSensitive(traits, "webhook");
    }
}

/* apply_identify: merge ev's traits into uid's profile. From a client key, client_ev is
 * the caller's copy of ev: it loses the traits the key may not set (client_traits) and
 * its traits are merged instead; NULL otherwise. */
static int apply_identify(struct store_txn *t, struct str uid, const cJSON *ev,
                          cJSON *client_ev, int64_t now, int64_t event_id, struct refusals *rf)
{
    cJSON *profile = NULL;
    bool existed;
    const cJSON *traits = json_member(client_ev ? client_ev : ev, "traits");
    int rc = doc_load(t, COLL_PROFILES, uid, &profile, &existed);
    if (rc < 0)
        goto out;
    if (client_ev && cJSON_IsObject(traits)) {
        struct buf dropped;
        buf_init(&dropped, 512);
        client_traits(json_member(client_ev, "traits"), profile, &dropped);
        if (dropped.len)
            note_refusal(rf, event_id, "identify", buf_cstr(&dropped));
        buf_cleanup(&dropped);
    }
    if (cJSON_IsObject(traits))
        jp_merge(profile, traits, true);
    rc = doc_save(t, COLL_PROFILES, uid, profile, now);
out:
    cJSON_Delete(profile);
    return rc;
}

/* ensure_profile: create uid's (empty) profile when it has none, in one insert that
 * leaves an existing one as it is (never read, parsed or rewritten). */
static int ensure_profile(struct store_txn *t, struct str uid, int64_t now)
{
    int rc = store_doc_create(t, COLL_PROFILES, uid, STR_LIT("{}"), now);
    return rc == HR_CONFLICT ? HR_OK : rc;
}

/* apply_alias: merge the previousId profile into userId's (userId's values win), drop
 * the old profile and remember the alias. From a client key (client), only when there is
 * no previousId profile: nothing is moved then. */
static int apply_alias(struct store_txn *t, struct str uid, const cJSON *ev, int64_t now,
                       bool client, int64_t event_id, struct refusals *rf)
{
    const char *prev = json_str(ev, "previousId");
    cJSON *old = NULL, *cur = NULL, *link = NULL;
    bool old_existed, cur_existed;
    int rc = HR_OK;
    if (!prev || !prev[0] || strcmp(prev, uid.p) == 0)
        return HR_OK;
    rc = doc_load(t, COLL_PROFILES, str_c(prev), &old, &old_existed);
    if (rc < 0)
        goto out;
    if (client && old_existed) {
        note_refusal(rf, event_id, "alias", "previousId has a profile");
        goto out;
    }
    rc = doc_load(t, COLL_PROFILES, uid, &cur, &cur_existed);
    if (rc < 0)
        goto out;
    jp_merge(old, cur, false); /* old := old + cur, cur wins */
    rc = doc_save(t, COLL_PROFILES, uid, old, now);
    if (rc == HR_OK && old_existed)
        rc = store_doc_delete(t, COLL_PROFILES, str_c(prev));
    if (rc < 0)
        goto out;
    link = cJSON_CreateObject();
    cJSON_AddStringToObject(link, "userId", uid.p);
    rc = doc_save(t, COLL_ALIASES, str_c(prev), link, now);
out:
    cJSON_Delete(old);
    cJSON_Delete(cur);
    cJSON_Delete(link);
    return rc;
}

/* What a job's group calls do to lists (grouplists.h): the link read for the job, and
 * the subscriptions its events asked for, made after all of them in lock order. */
struct group_sync {
    struct grouplists_link link;
    struct grouplists_pending pending;
};

/* apply_group: merge ev's traits into the group, record uid's membership, and with gs
 * linked, ask for uid's subscription to the group's list (not from a client key, client,
 * unless the link allows it). */
static int apply_group(struct store_txn *t, struct str uid, const cJSON *ev, int64_t now,
                       struct group_sync *gs, bool client, int64_t event_id,
                       struct refusals *rf)
{
    const char *gid = json_str(ev, "groupId");
    const cJSON *traits = json_member(ev, "traits");
    cJSON *group = NULL, *gtraits, *member = NULL, *key = NULL;
    bool existed;
    char *key_s = NULL;
    int rc;
    if (!gid || !gid[0])
        return HR_OK;
    rc = doc_load(t, COLL_GROUPS, str_c(gid), &group, &existed);
    if (rc < 0)
        goto out;
    gtraits = json_member(group, "traits");
    if (!cJSON_IsObject(gtraits)) {
        cJSON_DeleteItemFromObjectCaseSensitive(group, "traits");
        gtraits = cJSON_AddObjectToObject(group, "traits");
    }
    if (cJSON_IsObject(traits))
        jp_merge(gtraits, traits, true);
    rc = doc_save(t, COLL_GROUPS, str_c(gid), group, now);
    if (rc < 0 || uid.len == 0)
        goto out;
    /* membership: the id is the JSON array [groupId, userId], unambiguous for any ids */
    key = cJSON_CreateArray();
    cJSON_AddItemToArray(key, cJSON_CreateString(gid));
    cJSON_AddItemToArray(key, cJSON_CreateString(uid.p));
    key_s = json_print(key);
    member = cJSON_CreateObject();
    cJSON_AddStringToObject(member, "groupId", gid);
    cJSON_AddStringToObject(member, "userId", uid.p);
    rc = doc_save(t, COLL_GROUP_MEMBERS, str_c(key_s), member, now);
    if (rc == HR_OK && gs && gs->link.on) {
        if (client && !gs->link.allow_client)
            note_refusal(rf, event_id, "group", "list subscription");
        else
            grouplists_note(&gs->link, &gs->pending, gid, uid, json_str(gtraits, "name"),
                            event_id, now);
    }
out:
    cJSON_Delete(group);
    cJSON_Delete(member);
    cJSON_Delete(key);
    free(key_s);
    return rc;
}

/* apply: one event's effects inside t: its catalog entry when touch_catalog, then
 * profiles, groups, aliases, then the trigger. client: the event came from a
 * client-scope write key (see the top of this file). ensured: a track whose profile the
 * job's lock phase has made sure of (lock_docs). gs (may be NULL: lists untouched)
 * collects the list subscriptions of group calls, rf (may be NULL: reported at once) what
 * a client key was refused. */
static int apply(struct ingest *ig, struct store_txn *t, const cJSON *ev_in, int64_t event_id,
                 int64_t received_ms, bool touch_catalog, bool client, bool ensured,
                 struct group_sync *gs, struct refusals *rf)
{
    /* a client key's identify may lose traits: work on a copy, so run data sees it too */
    const char *type_in = json_str(ev_in, "type");
    cJSON *copy = client && type_in && strcmp(type_in, "identify") == 0
                      ? cJSON_Duplicate(ev_in, 1)
                      : NULL;
    const cJSON *ev = copy ? copy : ev_in;
    const char *type = json_str(ev, "type");
    const char *uid_c = json_str(ev, "userId");
    struct str uid = str_c(uid_c && uid_c[0] ? uid_c : NULL);
    char *name = seg_catalog_name(ev), *sample = NULL;
    int rc = HR_OK;

    if (name && touch_catalog) {
        sample = json_print(ev);
        rc = store_catalog_touch(t, str_c(name), str_c(sample), received_ms);
        if (rc < 0)
            goto out;
    }
    if (!type)
        goto out;
    if (strcmp(type, "identify") == 0 && uid.len)
        rc = apply_identify(t, uid, ev, copy, received_ms, event_id, rf);
    else if (strcmp(type, "track") == 0 && uid.len && !ensured)
        rc = ensure_profile(t, uid, received_ms);
    else if (strcmp(type, "alias") == 0 && uid.len)
        rc = apply_alias(t, uid, ev, received_ms, client, event_id, rf);
    else if (strcmp(type, "group") == 0)
        rc = apply_group(t, uid, ev, received_ms, gs, client, event_id, rf);
    if (rc == HR_OK && name && ig && ig->trigger) /* run data only if something is linked */
        rc = ig->trigger(ig->trigger_ctx, t, ev, copy == NULL, seg_run_data_new, name,
                         event_id, received_ms);
out:
    cJSON_Delete(copy);
    free(name);
    free(sample);
    return rc;
}

int ingest_apply_event(struct ingest *ig, struct store_txn *t, const cJSON *ev, int64_t event_id,
                       int64_t received_ms)
{
    return apply(ig, t, ev, event_id, received_ms, true, false, false, NULL, NULL);
}

/* ---- the job ---------------------------------------------------------------------- */

struct lock_key;

struct loaded {
    struct ingest *ig;
    cJSON **events;
    struct str *bodies; /* each event's stored (compact) text: its catalog sample */
    char **texts;       /* bodies taken from the cache (heap), else NULL */
    int64_t *ids;
    int64_t *received;
    int *rejected;  /* events whose effects failed for good: their rc (set by events_commit) */
    bool *ensured;  /* tracks whose profile lock_docs made sure of (set by events_commit) */
    size_t n;
    struct lock_key *keys; /* loaded_keys: the events' lock keys, sorted (heap) */
    size_t nk;
    bool client;       /* the events came from a client-scope write key */
    struct group_sync gs; /* lists of the events' groups */
    struct refusals refused; /* what the client key was refused (set by events_commit) */
};

/* ---- lock order ----------------------------------------------------------------------
 * On a store shared by several connections (PostgreSQL) an events job's transaction
 * locks the documents its events touch (store_doc_get_txn) and the catalog rows it
 * counts. Taken in event order, two jobs deadlock as soon as their events cross: job A
 * has identify(u1) then track(u2), job B track(u2) then identify(u1); or A counts
 * "identify" then "track/X" and B the reverse. The database breaks each cycle only
 * after its deadlock timeout (1 s), retries pile up, and with mixed batches the queue
 * crawls while leases run out. So every job takes its locks in one global order: first
 * the documents, sorted by (collection, id), then applies the events in their own order
 * (re-locking what it holds already is free), then makes the list subscriptions its
 * group calls asked for (grouplists.h), sorted by (list id, user id), each list created
 * before its users, and counts the catalog last, sorted by name. Whatever else the
 * events lock is new and unique to this job (runs, messages, jobs) or read without a
 * lock (automation definitions). The list API takes its subscription rows in the same
 * (list id, user id) order (src/api/lists.c) and locks no document or catalog row.
 * A track event only makes sure its profile exists (ensure_profile): its key is not
 * locked but created in that same order, in one insert that leaves an existing profile
 * alone, unlocked; so tracks of known users never wait for each other, and two jobs that
 * both create profiles still take them in one order. Those tracks then skip their own
 * ensure_profile (it would wait, out of order, for a job updating that profile). A key
 * that other events of the job lock too (identify, alias) is locked as before, and its
 * tracks ensure in event order (an alias may delete the profile in between). */

struct lock_key {
    const char *coll;
    char *id;     /* heap */
    bool ensure;  /* only create it when absent (a track's profile), no lock */
    int64_t now;  /* ensure: the event's received time, the profile's created time */
    size_t ev;    /* ensure: the event's index in the job */
};

struct touch {
    char *name;   /* heap */
    size_t i;     /* the event's index: keeps event order within a name */
};

static int lock_key_cmp(const void *a, const void *b)
{
    const struct lock_key *x = a, *y = b;
    int c = strcmp(x->coll, y->coll);
    return c ? c : strcmp(x->id, y->id);
}

static int touch_cmp(const void *a, const void *b)
{
    const struct touch *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

static void add_key(struct lock_key *keys, size_t *n, const char *coll, const char *id)
{
    if (!id || !id[0])
        return;
    keys[*n].coll = coll;
    keys[*n].id = xstrdup(id);
    keys[*n].ensure = false;
    (*n)++;
}

/* collect_keys: the documents apply() will lock (or, for a track, create) for ev
 * received at now (at most LOCKS_PER_EVENT). */
#define LOCKS_PER_EVENT 4
static void collect_keys(const cJSON *ev, int64_t now, size_t i, struct lock_key *keys,
                         size_t *n)
{
    const char *type = json_str(ev, "type"), *uid = json_str(ev, "userId");
    if (!type)
        return;
    if (uid && !uid[0])
        uid = NULL;
    if (!strcmp(type, "identify") && uid) {
        add_key(keys, n, COLL_PROFILES, uid);
    } else if (!strcmp(type, "track") && uid) {
        add_key(keys, n, COLL_PROFILES, uid);
        keys[*n - 1].ensure = true;
        keys[*n - 1].now = now;
        keys[*n - 1].ev = i;
    } else if (!strcmp(type, "alias") && uid) {
        const char *prev = json_str(ev, "previousId");
        if (prev && prev[0] && strcmp(prev, uid)) {
            add_key(keys, n, COLL_PROFILES, uid);
            add_key(keys, n, COLL_PROFILES, prev);
            add_key(keys, n, COLL_ALIASES, prev);
        }
    } else if (!strcmp(type, "group")) {
        const char *gid = json_str(ev, "groupId");
        if (gid && gid[0]) {
            add_key(keys, n, COLL_GROUPS, gid);
            if (uid) {
                cJSON *key = cJSON_CreateArray();
                char *key_s;
                cJSON_AddItemToArray(key, cJSON_CreateString(gid));
                cJSON_AddItemToArray(key, cJSON_CreateString(uid));
                key_s = json_print(key);
                add_key(keys, n, COLL_GROUP_MEMBERS, key_s);
                free(key_s);
                cJSON_Delete(key);
            }
        }
    }
}

/* key_group: the end of the run of sorted keys[i..n) equal to keys[i]; *ensure says
 * whether only tracks need it (every entry is ensure), *now the earliest of their times. */
static size_t key_group(const struct lock_key *keys, size_t i, size_t n, bool *ensure,
                        int64_t *now)
{
    size_t end;
    *ensure = keys[i].ensure;
    *now = keys[i].now;
    for (end = i + 1; end < n && lock_key_cmp(&keys[i], &keys[end]) == 0; end++) {
        *ensure &= keys[end].ensure;
        *now = keys[end].now < *now ? keys[end].now : *now;
    }
    return end;
}

/* loaded_keys: collect l's lock keys into l->keys, sorted in lock order, on first use;
 * they are kept for what follows (ensure_apart, then the commit and any store retry of
 * it) until loaded_drop_keys. */
static void loaded_keys(struct loaded *l)
{
    if (l->keys)
        return;
    l->keys = xcalloc(l->n * LOCKS_PER_EVENT + 1, sizeof *l->keys);
    l->nk = 0;
    for (size_t i = 0; i < l->n; i++)
        collect_keys(l->events[i], l->received[i], i, l->keys, &l->nk);
    qsort(l->keys, l->nk, sizeof *l->keys, lock_key_cmp);
}

static void loaded_drop_keys(struct loaded *l)
{
    for (size_t k = 0; l->keys && k < l->nk; k++)
        free(l->keys[k].id);
    free(l->keys);
    l->keys = NULL;
    l->nk = 0;
}

/* lock_docs: take the documents' locks in (collection, id) order (keys sorted by
 * loaded_keys); a key that only tracks need (every entry of it is ensure) is created
 * when absent instead, at the earliest of their times, and its events marked in
 * ensured[] (they skip ensure_profile). */
static int lock_docs(struct store_txn *t, const struct lock_key *keys, size_t n, bool *ensured)
{
    struct arena *a = arena_new(4096);
    struct doc_rec d;
    int rc = HR_OK;
    for (size_t i = 0, end; i < n && rc == HR_OK; i = end) {
        bool ensure;
        int64_t now;
        end = key_group(keys, i, n, &ensure, &now);
        if (ensure) {
            rc = store_doc_create(t, keys[i].coll, str_c(keys[i].id), STR_LIT("{}"), now);
            rc = rc == HR_CONFLICT ? HR_OK : rc;
            for (size_t k = i; k < end; k++)
                ensured[keys[k].ev] = true;
            continue;
        }
        rc = store_doc_get_txn(t, keys[i].coll, str_c(keys[i].id), a, &d);
        if (rc == HR_NOTFOUND)
            rc = HR_OK;
        arena_reset(a);
    }
    arena_free(a);
    return rc;
}

/* touch_catalog: count the events under their catalog names, names in sorted order, one
 * upsert per distinct name: count += its events, first/last seen widened to theirs, and
 * the sample is the stored text of its last event (as one upsert per event left it). */
static int touch_catalog(struct store_txn *t, struct loaded *l)
{
    struct touch *tc = xcalloc(l->n + 1, sizeof *tc);
    size_t n = 0;
    int rc = HR_OK;
    for (size_t i = 0; i < l->n; i++) {
        char *name = seg_catalog_name(l->events[i]);
        if (name) {
            tc[n].name = name;
            tc[n++].i = i;
        }
    }
    qsort(tc, n, sizeof *tc, touch_cmp);
    for (size_t k = 0; k < n && rc == HR_OK;) {
        size_t end = k + 1;
        int64_t first = l->received[tc[k].i], last = first;
        while (end < n && strcmp(tc[end].name, tc[k].name) == 0) {
            int64_t r = l->received[tc[end++].i];
            first = r < first ? r : first;
            last = r > last ? r : last;
        }
        rc = store_catalog_add(t, str_c(tc[k].name), l->bodies[tc[end - 1].i], first, last,
                               (int64_t)(end - k));
        k = end;
    }
    for (size_t k = 0; k < n; k++)
        free(tc[k].name);
    free(tc);
    return rc;
}

/* ---- per-event isolation ----------------------------------------------------------
 * One event whose effects can never apply (an identify that would push its profile past
 * the store's document cap, say) must not hold back the others of its job, nor make the
 * job retry for hours. The job applies all events inside one nested savepoint; when an
 * event fails for good, that savepoint is rolled back and the events are applied again
 * one savepoint each, so the bad ones are rejected (logged and counted in
 * herald_events_rejected_total{reason}) and the rest commit. A transient failure still
 * fails the whole job, which the queue retries. */

/* permanent: an rc that the same event would get again on every retry. */
static bool permanent(int rc)
{
    return rc == HR_TOOBIG || rc == HR_INVAL || rc == HR_PERM;
}

/* apply_at: event i of the job (the one place the job calls apply). */
static int apply_at(struct store_txn *t, struct loaded *l, size_t i)
{
    return apply(l->ig, t, l->events[i], l->ids[i], l->received[i], false, l->client,
                 l->ensured[i], &l->gs, &l->refused);
}

static int apply_all_fn(struct store_txn *t, void *varg)
{
    struct loaded *l = varg;
    int rc = HR_OK;
    for (size_t i = 0; i < l->n && rc == HR_OK; i++)
        rc = apply_at(t, l, i);
    return rc;
}

struct one_event {
    struct loaded *l;
    size_t i;
};

static int apply_one_fn(struct store_txn *t, void *varg)
{
    struct one_event *o = varg;
    return apply_at(t, o->l, o->i);
}

/* reject_report: count and log event i's rejection (rc), once committed (loaded_report). */
static void reject_report(struct loaded *l, size_t i, int rc)
{
    const char *type = json_str(l->events[i], "type");
    const char *reason = rc == HR_TOOBIG ? "too_large" : rc == HR_PERM ? "refused" : "invalid";
    char tq[40];
    metrics_counter_add("herald_events_rejected_total",
                        "Accepted events whose effects could not be applied (the rest of "
                        "their batch was), by reason.",
                        "reason", reason, 1);
    LOG_W("ingest.event_rejected", "event=%lld type=%s reason=%s rc=%s msg=\"its effects are "
          "dropped; the other events of its job apply\"",
          (long long)l->ids[i], log_q(tq, sizeof tq, type ? type : "?"), reason, hr_rc_str(rc));
}

/* apply_isolated: apply every event, each in its own savepoint; rejects the ones that
 * fail for good. Returns HR_OK or the first transient error. */
static int apply_isolated(struct store_txn *t, struct loaded *l)
{
    int rc = HR_OK;
    for (size_t i = 0; i < l->n && rc == HR_OK; i++) {
        struct one_event o = {l, i};
        size_t asked = l->gs.pending.n, noted = l->refused.n;
        rc = queue_txn_sub(t, apply_one_fn, &o);
        if (permanent(rc)) {
            grouplists_pending_truncate(&l->gs.pending, asked); /* rolled back with it */
            refusals_truncate(&l->refused, noted);
            l->rejected[i] = rc; /* reported once committed */
            rc = HR_OK;
        }
    }
    return rc;
}

static int events_commit(struct store_txn *t, void *varg)
{
    struct loaded *l = varg;
    int rc;
    loaded_keys(l);
    for (size_t i = 0; i < l->n; i++) {
        l->rejected[i] = 0; /* this function may run again (a store retry) */
        l->ensured[i] = false;
    }
    grouplists_pending_truncate(&l->gs.pending, 0); /* a rerun asks again */
    refusals_truncate(&l->refused, 0);
    rc = lock_docs(t, l->keys, l->nk, l->ensured);
    if (rc == HR_OK)
        rc = queue_txn_sub(t, apply_all_fn, l);
    if (permanent(rc)) {
        grouplists_pending_truncate(&l->gs.pending, 0);
        refusals_truncate(&l->refused, 0);
        rc = apply_isolated(t, l);
    }
    if (rc == HR_OK)
        rc = grouplists_commit(t, &l->gs.pending);
    if (rc == HR_OK)
        rc = touch_catalog(t, l);
    return rc;
}

/* loaded_report: l's events were applied and committed (events_commit's last run): count
 * and log what a client key was refused and the events rejected, once. */
static void loaded_report(void *varg)
{
    struct loaded *l = varg;
    for (size_t i = 0; i < l->refused.n; i++)
        client_refused(l->refused.v[i].event_id, l->refused.v[i].type, l->refused.v[i].what);
    for (size_t i = 0; i < l->n; i++)
        if (l->rejected[i])
            reject_report(l, i, l->rejected[i]);
    refusals_truncate(&l->refused, 0);
}

/* ---- new profiles apart (a shared store) ----------------------------------------------
 * An insert that meets an uncommitted row with its key waits for that row's transaction.
 * Created inside the job's transaction, a new profile makes every other job that creates
 * it too (its user's events on another node) wait for the whole of that transaction, and
 * on PostgreSQL those waits chain: batches of new users at 2-3 nodes spent 40-100 % of
 * the active backends' samples in Lock:transactionid (bench/pg.sh). So before its
 * transaction, the job creates the profiles that only its tracks need (lock_docs' ensure
 * keys) in one statement of its own (store_doc_create_many: one round trip, no flush
 * when they all exist). Its transaction still makes sure of each (a profile deleted in
 * between, by an alias or the API, is made again, as before), but now meets committed
 * rows and never waits for them. When the statement fails, the job's transaction
 * creates them as before. The statement costs a transaction of its own (three round
 * trips), so a job with fewer than ENSURE_APART_MIN such keys (a single track) does
 * without: three nodes' single tracks were 20-30 % slower with every job paying it
 * (bench/pg.sh). */
#define ENSURE_APART_MIN 3

struct apart {
    struct str *ids;
    int64_t *now;
    size_t n, created;
};

static int create_apart_fn(struct store_txn *t, void *varg)
{
    struct apart *ap = varg;
    return store_doc_create_many(t, COLL_PROFILES, ap->ids, ap->now, ap->n, STR_LIT("{}"),
                                 &ap->created);
}

/* ensure_apart: create l's new track-only profiles before the job's transaction (see
 * above); a failure only logs (the transaction creates them). */
static void ensure_apart(struct ingest *ig, struct loaded *l)
{
    struct apart ap = {xcalloc(l->n + 1, sizeof *ap.ids), xcalloc(l->n + 1, sizeof *ap.now),
                       0, 0};
    const struct lock_key *keys;
    struct herr err;
    size_t nk;
    int rc;

    loaded_keys(l); /* kept for the commit */
    keys = l->keys;
    nk = l->nk;
    for (size_t i = 0, end; i < nk; i = end) {
        bool ensure;
        int64_t now;
        end = key_group(keys, i, nk, &ensure, &now);
        if (!ensure)
            continue;
        if (ap.n == STORE_CREATE_MANY_MAX) { /* too many for one statement: as before */
            ap.n = 0;
            break;
        }
        ap.ids[ap.n] = str_c(keys[i].id); /* at most one per track: l->n */
        ap.now[ap.n++] = now;
    }
    if (ap.n < ENSURE_APART_MIN)
        goto out;
    herr_clear(&err);
    rc = store_write(ig->store, create_apart_fn, &ap, &err);
    if (rc < 0) {
        LOG_W("ingest.ensure_apart_failed", "profiles=%zu rc=%s msg=\"the events job's "
              "transaction creates them\"", ap.n, hr_rc_str(rc));
        goto out;
    }
    if (ap.created > 0)
        metrics_counter_add("herald_ingest_profiles_created_apart_total",
                            "New profiles an events job created in a statement of its own "
                            "before its transaction (a store shared by nodes)",
                            NULL, NULL, (double)ap.created);
out:
    free(ap.ids);
    free(ap.now);
}

static void loaded_free(void *p)
{
    struct loaded *l = p;
    for (size_t i = 0; i < l->n; i++) {
        cJSON_Delete(l->events[i]);
        free(l->texts[i]);
    }
    loaded_drop_keys(l);
    grouplists_pending_cleanup(&l->gs.pending);
    refusals_cleanup(&l->refused);
}

/* group_member: ev is a group call with a userId (the only events the group_lists
 * setting matters to). */
static bool group_member(const cJSON *ev)
{
    const char *type = json_str(ev, "type"), *uid = json_str(ev, "userId");
    return type && strcmp(type, "group") == 0 && uid && uid[0];
}

/* has_group_member_in: one of res's events is a group call with a userId. */
static bool has_group_member_in(const struct seg_result *res)
{
    for (size_t i = 0; i < res->n_events; i++)
        if (group_member(res->events[i].json))
            return true;
    return false;
}

/* loaded_for_accept: room to apply res's events in the accept's transaction (heap;
 * loaded_for_accept_free), or NULL when the events job must (the group_lists setting of
 * a group call could not be read). The events stay res's. */
static struct loaded *loaded_for_accept(struct ingest *ig, struct seg_result *res)
{
    size_t cap = res->n_events + 1;
    struct loaded *l = xcalloc(1, sizeof *l);
    l->ig = ig;
    l->client = res->client;
    if (has_group_member_in(res) && grouplists_load(ig->store, &l->gs.link) < 0) {
        free(l);
        return NULL;
    }
    l->events = xcalloc(cap, sizeof *l->events);
    l->bodies = xcalloc(cap, sizeof *l->bodies);
    l->ids = xcalloc(cap, sizeof *l->ids);
    l->received = xcalloc(cap, sizeof *l->received);
    l->rejected = xcalloc(cap, sizeof *l->rejected);
    l->ensured = xcalloc(cap, sizeof *l->ensured);
    return l;
}

/* loaded_take_accepted: l's events are the ones of res just accepted (borrowed). False
 * when one of them has no parsed form to apply (then its events job reads it back). */
static bool loaded_take_accepted(struct loaded *l, struct seg_result *res,
                                 const struct ingest_outcome *out, int64_t now_ms)
{
    loaded_drop_keys(l); /* collected for other events */
    l->n = 0;
    for (size_t i = 0; i < res->n_events; i++) {
        struct seg_event *ev = &res->events[i];
        if (out->status[i] != INGEST_ACCEPTED)
            continue;
        if (!ev->json || !ev->serialized)
            return false;
        l->events[l->n] = ev->json;
        l->bodies[l->n] = (struct str){ev->serialized, ev->serialized_len};
        l->ids[l->n] = out->ids[i];
        l->received[l->n++] = now_ms;
    }
    return true;
}

static void loaded_for_accept_free(struct loaded *l)
{
    if (!l)
        return;
    loaded_drop_keys(l);
    grouplists_pending_cleanup(&l->gs.pending);
    refusals_cleanup(&l->refused);
    free(l->events);
    free(l->bodies);
    free(l->ids);
    free(l->received);
    free(l->rejected);
    free(l->ensured);
    free(l);
}

/* cache_metric: count n events of one job as a cache hit or miss (once per job). */
static void cache_metric(const char *result, size_t n)
{
    if (n > 0)
        metrics_counter_add("herald_ingest_event_cache_total",
                            "Events the events job took from this process's accept hand-over "
                            "(hit) or read back from the store (miss).",
                            "result", result, n);
}

/* take_cached: event id from ig's cache into l's next slot. True on a hit. */
static bool take_cached(struct ingest *ig, struct loaded *l, int64_t id)
{
    cJSON *json;
    char *text;
    size_t len;
    int64_t received;
    if (!ig->cache || !evcache_take(ig->cache, id, &json, &text, &len, &received))
        return false;
    l->events[l->n] = json;
    l->texts[l->n] = text;
    l->bodies[l->n] = (struct str){text, len};
    l->ids[l->n] = id;
    l->received[l->n++] = received;
    return true;
}

/* has_group_member: one of l's events is a group call with a userId. */
static bool has_group_member(const struct loaded *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (group_member(l->events[i]))
            return true;
    return false;
}

void ingest_events_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct ingest *ig = ctx;
    cJSON *payload = cJSON_ParseWithLength(j->payload.p, j->payload.len), *ids, *it;
    struct loaded *l = arena_zalloc(a, sizeof *l);
    size_t cap, hits = 0, misses = 0;

    ids = json_member(payload, "ids");
    if (!cJSON_IsArray(ids)) {
        r->outcome = JOB_OUT_FAIL;
        snprintf(r->error, sizeof r->error, "events job payload has no ids array");
        goto out;
    }
    cap = (size_t)cJSON_GetArraySize(ids);
    l->events = arena_zalloc(a, (cap + 1) * sizeof *l->events);
    l->bodies = arena_zalloc(a, (cap + 1) * sizeof *l->bodies);
    l->texts = arena_zalloc(a, (cap + 1) * sizeof *l->texts);
    l->received = arena_zalloc(a, (cap + 1) * sizeof *l->received);
    l->ids = arena_zalloc(a, (cap + 1) * sizeof *l->ids);
    l->rejected = arena_zalloc(a, (cap + 1) * sizeof *l->rejected);
    l->ensured = arena_zalloc(a, (cap + 1) * sizeof *l->ensured);
    l->ig = ig;
    l->client = cJSON_IsTrue(json_member(payload, "client"));
    arena_defer(a, loaded_free, l);
    cJSON_ArrayForEach(it, ids)
    {
        struct event_rec e;
        int rc;
        if (!cJSON_IsNumber(it))
            continue;
        if (take_cached(ig, l, (int64_t)it->valuedouble)) {
            hits++;
            continue;
        }
        misses += ig->cache != NULL;
        rc = store_event_get(ig->store, (int64_t)it->valuedouble, a, &e);
        if (rc == HR_NOTFOUND) {
            LOG_W("ingest.event_missing", "event=%lld", (long long)it->valuedouble);
            continue;
        }
        if (rc < 0) {
            r->outcome = JOB_OUT_RETRY;
            snprintf(r->error, sizeof r->error, "cannot load event %lld: %s",
                     (long long)it->valuedouble, hr_rc_str(rc));
            goto out;
        }
        l->events[l->n] = cJSON_ParseWithLength(e.body.p, e.body.len);
        if (!l->events[l->n]) {
            LOG_W("ingest.event_unreadable", "event=%lld", (long long)e.id);
            continue;
        }
        l->bodies[l->n] = e.body; /* in a, which outlives the commit */
        l->ids[l->n] = e.id;
        l->received[l->n++] = e.received_ms;
    }
    if (has_group_member(l)) {
        int rc = grouplists_load(ig->store, &l->gs.link);
        if (rc < 0) {
            r->outcome = JOB_OUT_RETRY;
            snprintf(r->error, sizeof r->error, "cannot read the group_lists setting: %s",
                     hr_rc_str(rc));
            goto out;
        }
    }
    if (ig->ensure_apart)
        ensure_apart(ig, l);
    r->outcome = JOB_OUT_DONE;
    r->commit = events_commit;
    r->commit_arg = l;
    r->committed = loaded_report;
out:
    cache_metric("hit", hits);
    cache_metric("miss", misses);
    cJSON_Delete(payload);
}
