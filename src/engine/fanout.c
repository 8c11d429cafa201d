/* fanout.c: sends to lists, list patterns and bulk jobs, streamed one page per job run
 * (see fanout.h for the design: one "fanouts" document and one "send.fanout" job per
 * fan-out; a page's messages, the cursor and the next job commit together). */
#include "fanout.h"

#include "fanout_int.h"
#include "send_int.h"

#include "../util/log.h"
#include "../util/xalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C_FANOUTS FANOUT_COLL
#define C_BULK_USERS "bulk_users"
#define C_LIST_MSGS "list_messages" /* "<list>|<newest first key>|<message id>" -> "{}" */
#define NEWEST_FIRST_MAX INT64_C(9999999999999)
#define BULK_SEQ_DIGITS 10 /* user document ids: "<job id>/<seq, zero-padded>" */

/* ---- documents -------------------------------------------------------------------- */

static int fo_load(struct store_txn *t, struct store *s, const char *id, cJSON **out)
{
    struct arena *a = arena_new(4096);
    struct doc_rec d;
    int rc = t ? store_doc_get_txn(t, C_FANOUTS, str_c(id), a, &d)
               : store_doc_get(s, C_FANOUTS, str_c(id), a, &d);
    *out = NULL;
    if (rc == HR_OK && !(*out = cJSON_ParseWithLength(d.body.p, d.body.len)))
        rc = HR_IO;
    arena_free(a);
    return rc;
}

static int fo_save(struct store_txn *t, const char *id, const cJSON *fo, int64_t now)
{
    char *s = json_print(fo);
    int rc = store_doc_put(t, C_FANOUTS, str_c(id), str_c(s), now, NULL);
    free(s);
    return rc;
}

static int64_t num(const cJSON *o, const char *k)
{
    int64_t v = 0;
    json_i64(o, k, &v);
    return v;
}

static void set_num(cJSON *o, const char *k, int64_t v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddNumberToObject(o, k, (double)v);
}

static void set_str(cJSON *o, const char *k, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddStringToObject(o, k, v);
}

/* timed_ids: fan-out fo derives its members' message ids with fid's time (ids "timed",
 * set at its creation); one created before that keeps the hashed ids it began with, so
 * a fan-out running across an upgrade, and GET /bulk/:id/users, stay consistent. */
static bool timed_ids(const cJSON *fo)
{
    const char *v = json_str(fo, "ids");
    return v && !strcmp(v, "timed");
}

/* msg_id_for: the message id of recipient key `who` (a user id, a bulk user's document
 * id) in fan-out `fid` (timed: sorting beside fid, see timed_ids). */
static void msg_id_for(const char *fid, bool timed, const char *who, char out[ID_LEN + 1])
{
    size_t n = strlen(fid) + strlen(who) + 8;
    char *seed = xmalloc(n);
    snprintf(seed, n, "%s:to:%s", fid, who);
    if (timed)
        id_derive(seed, id_time_ms(fid), out);
    else
        id_derive_hashed(seed, out);
    free(seed);
}

/* ---- starting ----------------------------------------------------------------------- */

const char *engine_fanout_target(const cJSON *msg)
{
    const cJSON *to = json_member(msg, "to");
    const char *v;
    if (!cJSON_IsObject(to))
        return NULL;
    if ((v = json_str(to, "list_id")))
        return v;
    return json_str(to, "list_pattern");
}

/* next_run: enqueue fan-out id's next "send.fanout" job (due now) inside t. */
static int next_run(struct store_txn *t, const char *id)
{
    cJSON *job = cJSON_CreateObject();
    int rc;
    cJSON_AddStringToObject(job, "id", id);
    rc = send__enqueue(t, SEND_FANOUT_KIND, job, 0);
    cJSON_Delete(job);
    return rc;
}

static int start(struct store_txn *t, const char *id, cJSON *fo)
{
    char *s = json_print(fo);
    int rc = store_doc_create(t, C_FANOUTS, str_c(id), str_c(s), hclock_now(t->store->clock));
    free(s);
    return rc == HR_OK ? next_run(t, id) : rc;
}

int engine_fanout_start(struct engine *e, struct store_txn *t, const cJSON *msg,
                        const char *request_id, const char *run_id, const cJSON *origin)
{
    const char *target = engine_fanout_target(msg);
    cJSON *fo = cJSON_CreateObject(), *o;
    int rc;
    cJSON_AddStringToObject(fo, "source", "list");
    cJSON_AddStringToObject(fo, "target", target ? target : "");
    cJSON_AddItemToObject(fo, "message", cJSON_Duplicate(msg, 1));
    if (run_id)
        cJSON_AddStringToObject(fo, "run_id", run_id);
    o = origin ? cJSON_Duplicate(origin, 1) : cJSON_CreateObject();
    cJSON_AddStringToObject(o, "list", target ? target : "");
    cJSON_AddItemToObject(fo, "origin", o);
    cJSON_AddStringToObject(fo, "status", "PROCESSING");
    cJSON_AddStringToObject(fo, "ids", "timed");
    cJSON_AddStringToObject(fo, "after", "");
    cJSON_AddNumberToObject(fo, "enqueued", 0);
    cJSON_AddNumberToObject(fo, "failures", 0);
    cJSON_AddNumberToObject(fo, "created", (double)hclock_now(e->clock));
    rc = start(t, request_id, fo);
    if (rc == HR_OK) /* listed by GET /bulk?kind=list (fanout_list.c) */
        rc = fanout__index(t, FANOUT_KIND_LIST, request_id, num(fo, "created"));
    cJSON_Delete(fo);
    return rc;
}

/* ---- one page ----------------------------------------------------------------------- */

struct page {
    struct engine *e;
    char id[ID_LEN + 1];
    char *after;    /* the cursor the page was read after */
    char *next;     /* the last recipient key of the page (NULL: empty page) */
    cJSON *recips;  /* [[message id, to or null (not addressable)], ...] */
    bool last;      /* shorter than FANOUT_PAGE */
    bool timed;     /* the fan-out's message ids are timed (timed_ids) */
};

static void page_free(void *arg)
{
    struct page *p = arg;
    free(p->after);
    free(p->next);
    cJSON_Delete(p->recips);
}

/* bulk_to: the recipient of bulk user u (Courier's InboundBulkMessageUser): `to`, with
 * `recipient` as its user_id, `profile` filling what `to` lacks, `data` as to.data.
 * NULL when it has no address (new otherwise). */
static cJSON *bulk_to(const cJSON *u)
{
    const cJSON *to = json_obj(u, "to"), *it;
    cJSON *r = to ? cJSON_Duplicate(to, 1) : cJSON_CreateObject();
    const char *rec = json_str(u, "recipient");
    static const char *addr[] = {"user_id", "email", "phone_number"};
    if (rec && rec[0] && !json_str(r, "user_id"))
        cJSON_AddStringToObject(r, "user_id", rec);
    cJSON_ArrayForEach(it, json_obj(u, "profile")) if (
        !cJSON_IsNull(it) && !json_member(r, it->string))
        cJSON_AddItemToObject(r, it->string, cJSON_Duplicate(it, 1));
    if (json_obj(u, "data")) {
        cJSON_DeleteItemFromObjectCaseSensitive(r, "data");
        cJSON_AddItemToObject(r, "data", cJSON_Duplicate(json_obj(u, "data"), 1));
    }
    for (int k = 0; k < 3; k++) {
        const char *v = json_str(r, addr[k]);
        if (v && v[0] && strlen(v) <= 512)
            return r;
    }
    cJSON_Delete(r);
    return NULL;
}

static void add_recip(struct page *p, const char *key, cJSON *to)
{
    char mid[ID_LEN + 1];
    cJSON *pair = cJSON_CreateArray();
    msg_id_for(p->id, p->timed, key, mid);
    cJSON_AddItemToArray(pair, cJSON_CreateString(mid));
    cJSON_AddItemToArray(pair, to ? to : cJSON_CreateNull());
    cJSON_AddItemToArray(p->recips, pair);
}

static int read_list_page(struct store *s, const cJSON *fo, struct page *p, struct arena *a)
{
    const cJSON *lto = json_obj(json_obj(fo, "message"), "to");
    struct str *ids = NULL;
    size_t n = 0;
    int rc = store_list_members(s, str_c(json_str(fo, "target")), str_c(p->after), FANOUT_PAGE,
                                a, &ids, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        cJSON *to = cJSON_CreateObject();
        cJSON_AddStringToObject(to, "user_id", ids[i].p);
        if (json_obj(lto, "data"))
            cJSON_AddItemToObject(to, "data", cJSON_Duplicate(json_obj(lto, "data"), 1));
        add_recip(p, ids[i].p, to);
    }
    p->next = n ? xstrdup(ids[n - 1].p) : NULL;
    p->last = n < FANOUT_PAGE;
    return HR_OK;
}

static int read_bulk_page(struct store *s, struct page *p, struct arena *a)
{
    char prefix[ID_LEN + 2];
    struct doc_rec *docs = NULL;
    size_t n = 0;
    int rc;
    snprintf(prefix, sizeof prefix, "%s/", p->id);
    rc = store_doc_list(s, C_BULK_USERS, str_c(prefix), str_c(p->after), FANOUT_PAGE, a, &docs,
                        &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        cJSON *u = cJSON_ParseWithLength(docs[i].body.p, docs[i].body.len);
        add_recip(p, docs[i].id.p, u ? bulk_to(u) : NULL);
        cJSON_Delete(u);
    }
    p->next = n ? xstrdup(docs[n - 1].id.p) : NULL;
    p->last = n < FANOUT_PAGE;
    return HR_OK;
}

/* index_key: the list_messages id of message mid sent through list at ms (newest first
 * within the list), into out (cap bytes). */
static void index_key(const char *list, int64_t ms, const char *mid, char *out, size_t cap)
{
    snprintf(out, cap, "%s|%013" PRId64 "|%s", list, NEWEST_FIRST_MAX - ms, mid);
}

static int index_message(struct store_txn *t, const char *list, const char *mid, int64_t now)
{
    char key[LIST_ID_MAX + ID_LEN + 24];
    int rc;
    index_key(list, now, mid, key, sizeof key);
    rc = store_doc_create(t, C_LIST_MSGS, str_c(key), STR_LIT("{}"), now);
    return rc == HR_CONFLICT ? HR_OK : rc;
}

int engine_list_messages(struct store *s, const char *list, const char *cursor, size_t limit,
                         struct arena *a, struct message_rec **out, struct str **keys,
                         size_t *n)
{
    char prefix[LIST_ID_MAX + 2];
    struct doc_rec *docs = NULL;
    size_t nd = 0, k = 0, plen;
    int rc;
    *out = NULL;
    *keys = NULL;
    *n = 0;
    snprintf(prefix, sizeof prefix, "%s|", list);
    plen = strlen(prefix);
    if (cursor && cursor[0] && strncmp(cursor, prefix, plen))
        return HR_INVAL;
    rc = store_doc_list(s, C_LIST_MSGS, str_c(prefix), str_c(cursor), limit, a, &docs, &nd);
    if (rc < 0)
        return rc;
    *out = arena_zalloc(a, (nd ? nd : 1) * sizeof **out);
    *keys = arena_zalloc(a, (nd ? nd : 1) * sizeof **keys);
    for (size_t i = 0; i < nd; i++) {
        const char *mid = strrchr(docs[i].id.p, '|');
        struct message_rec *m = &(*out)[k];
        rc = mid ? store_message_get(s, str_c(mid + 1), a, m) : HR_NOTFOUND;
        if (rc == HR_NOTFOUND)
            continue;
        if (rc < 0)
            return rc;
        (*keys)[k++] = docs[i].id;
    }
    *n = k;
    return HR_OK;
}

static int page_commit(struct store_txn *t, void *arg)
{
    struct page *p = arg;
    struct engine *e = p->e;
    cJSON *fo = NULL, *it;
    const cJSON *msg, *origin;
    const char *run_id, *after, *list_target, *last_mid = NULL;
    int64_t now = hclock_now(e->clock), enq, fail, n = 0;
    int rc = fo_load(t, NULL, p->id, &fo);
    if (rc == HR_NOTFOUND) {
        rc = HR_OK;
        goto out;
    }
    if (rc < 0)
        goto out;
    after = json_str(fo, "after");
    if (strcmp(json_str(fo, "status") ? json_str(fo, "status") : "", "PROCESSING") ||
        strcmp(after ? after : "", p->after))
        goto out; /* finished meanwhile, or this page was committed by an earlier run */
    msg = json_obj(fo, "message");
    origin = json_obj(fo, "origin");
    list_target = strcmp(json_str(fo, "source") ? json_str(fo, "source") : "", "list")
                      ? NULL
                      : json_str(fo, "target");
    run_id = json_str(fo, "run_id");
    enq = num(fo, "enqueued");
    fail = num(fo, "failures");
    cJSON_ArrayForEach(it, p->recips)
    {
        const char *mid = cJSON_GetArrayItem(it, 0)->valuestring;
        const cJSON *to = cJSON_GetArrayItem(it, 1);
        n++;
        if (cJSON_IsNull(to)) {
            fail++;
            continue;
        }
        rc = send__enqueue_one(e, t, msg, to, mid, p->id, run_id, origin, true, 0);
        if (rc == HR_CONFLICT)
            rc = HR_OK; /* made by a run whose commit we did not see: the same message */
        if (rc == HR_OK && list_target)
            rc = index_message(t, list_target, mid, now);
        if (rc < 0)
            goto out;
        enq++;
        last_mid = mid;
    }
    if (p->next)
        set_str(fo, "after", p->next);
    if (last_mid)
        set_str(fo, "last_msg", last_mid);
    set_num(fo, "page_at", now);
    set_num(fo, "enqueued", enq);
    set_num(fo, "failures", fail);
    if (p->last) {
        set_str(fo, "status", "COMPLETED");
        set_num(fo, "completed", now);
    } else if ((rc = next_run(t, p->id)) < 0) {
        goto out;
    }
    rc = fo_save(t, p->id, fo, now);
    if (rc == HR_OK)
        LOG_I("send.fanout", "request=%s source=%s recipients=%" PRId64 " enqueued=%" PRId64
              " failures=%" PRId64 " done=%s",
              p->id, json_str(fo, "source"), n, enq, fail, p->last ? "yes" : "no");
out:
    cJSON_Delete(fo);
    return rc;
}

/* in_flight: the last message of fan-out fo's last page is not final yet, that page was
 * committed less than FANOUT_PACE_MAX_MS ago, and the send is not delayed. */
static bool in_flight(struct engine *e, const cJSON *fo, struct arena *a)
{
    const char *last = json_str(fo, "last_msg");
    struct message_rec m;
    if (!last || json_obj(json_obj(fo, "message"), "delay") ||
        hclock_now(e->clock) - num(fo, "page_at") >= FANOUT_PACE_MAX_MS)
        return false;
    return store_message_get(e->store, str_c(last), a, &m) == HR_OK && !send__is_final(m.status);
}

void engine_fanout_run(void *ctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct engine *e = ctx;
    cJSON *pl = cJSON_ParseWithLength(j->payload.p, j->payload.len), *fo = NULL;
    const char *id = json_str(pl, "id"), *src, *after;
    struct page *p;
    int rc;

    r->outcome = JOB_OUT_DONE;
    if (!id || strlen(id) > ID_LEN) {
        r->outcome = JOB_OUT_FAIL;
        snprintf(r->error, sizeof r->error, "fan-out job without an id");
        goto out;
    }
    rc = fo_load(NULL, e->store, id, &fo);
    if (rc == HR_NOTFOUND)
        goto out;
    if (rc < 0)
        goto retry;
    if (strcmp(json_str(fo, "status") ? json_str(fo, "status") : "", "PROCESSING"))
        goto out;
    if (in_flight(e, fo, a)) { /* pacing (fanout.h): the last page is still being sent */
        r->outcome = JOB_OUT_DEFER;
        r->retry_at_ms = hclock_now(e->clock) + FANOUT_PACE_POLL_MS;
        goto out;
    }
    src = json_str(fo, "source");
    after = json_str(fo, "after");
    p = arena_zalloc(a, sizeof *p);
    p->e = e;
    snprintf(p->id, sizeof p->id, "%s", id);
    p->after = xstrdup(after ? after : "");
    p->recips = cJSON_CreateArray();
    p->timed = timed_ids(fo);
    arena_defer(a, page_free, p);
    rc = src && !strcmp(src, "bulk") ? read_bulk_page(e->store, p, a)
                                     : read_list_page(e->store, fo, p, a);
    if (rc < 0)
        goto retry;
    r->commit = page_commit;
    r->commit_arg = p;
    goto out;
retry:
    r->outcome = JOB_OUT_RETRY;
    snprintf(r->error, sizeof r->error, "fan-out %s: cannot read: %s", id, hr_rc_str(rc));
out:
    cJSON_Delete(pl);
    cJSON_Delete(fo);
}

/* ---- bulk jobs ---------------------------------------------------------------------- */

/* bulk_message: the v2 message a bulk definition sends (new); `to` is a placeholder
 * each user's recipient replaces. */
static cJSON *bulk_message(const cJSON *def)
{
    cJSON *m = engine_send_v1_to_v2(def); /* event, data, brand, override as in v1 */
    const char *tmpl = json_str(def, "template");
    if (json_obj(def, "content")) {
        cJSON_DeleteItemFromObjectCaseSensitive(m, "template");
        cJSON_AddItemToObject(m, "content", cJSON_Duplicate(json_obj(def, "content"), 1));
    } else if (tmpl) {
        cJSON_DeleteItemFromObjectCaseSensitive(m, "template");
        cJSON_AddStringToObject(m, "template", tmpl);
    }
    return m;
}

int engine_bulk_validate(const cJSON *def, struct herr *err)
{
    static const char *const known[] = {"event", "brand", "content", "data", "locale",
                                        "override", "template", NULL};
    static const struct {
        const char *k;
        cJSON_bool (*is)(const cJSON *);
        const char *what;
    } typed[] = {{"template", cJSON_IsString, "a string"},  {"brand", cJSON_IsString, "a string"},
                 {"override", cJSON_IsObject, "an object"}, {"data", cJSON_IsObject, "an object"},
                 {"content", cJSON_IsObject, "an object"},  {NULL, NULL, NULL}};
    const cJSON *it, *ev;
    cJSON *m, *to;
    int rc;
    if (!cJSON_IsObject(def))
        return herr_set(err, HR_INVAL, "message must be an object {event, ...}");
    cJSON_ArrayForEach(it, def)
    {
        bool ok = false;
        for (int k = 0; known[k]; k++)
            ok = ok || !strcmp(known[k], it->string);
        if (!ok && !cJSON_IsNull(it))
            return herr_set(err, HR_INVAL, "message.%.64s is not a field of a bulk message",
                            it->string);
    }
    ev = json_member(def, "event");
    if (!cJSON_IsString(ev) || !ev->valuestring[0] || strlen(ev->valuestring) > 128)
        return herr_set(err, HR_INVAL, "message.event is required (an event or template id, "
                                       "1-128 chars)");
    if ((it = json_member(def, "locale")) && !cJSON_IsNull(it))
        return herr_set(err, HR_INVAL, "message.locale is not supported yet");
    for (int k = 0; typed[k].k; k++) {
        it = json_member(def, typed[k].k);
        if (it && !cJSON_IsNull(it) && !typed[k].is(it))
            return herr_set(err, HR_INVAL, "message.%s must be %s", typed[k].k, typed[k].what);
    }
    m = bulk_message(def);
    to = json_obj(m, "to");
    cJSON_AddStringToObject(to, "user_id", "bulk");
    rc = engine_send_validate(m, err);
    cJSON_Delete(m);
    return rc;
}

int engine_bulk_create(struct engine *e, struct store_txn *t, const char *job_id,
                       const cJSON *def)
{
    cJSON *fo = cJSON_CreateObject(), *o;
    char *s;
    int rc;
    cJSON_AddStringToObject(fo, "source", "bulk");
    cJSON_AddItemToObject(fo, "definition", cJSON_Duplicate(def, 1));
    cJSON_AddItemToObject(fo, "message", bulk_message(def));
    o = cJSON_AddObjectToObject(fo, "origin");
    cJSON_AddStringToObject(o, "bulk_job", job_id);
    cJSON_AddStringToObject(fo, "status", "CREATED");
    cJSON_AddStringToObject(fo, "ids", "timed");
    cJSON_AddStringToObject(fo, "after", "");
    cJSON_AddNumberToObject(fo, "received", 0);
    cJSON_AddNumberToObject(fo, "enqueued", 0);
    cJSON_AddNumberToObject(fo, "failures", 0);
    cJSON_AddNumberToObject(fo, "created", (double)hclock_now(e->clock));
    s = json_print(fo);
    rc = store_doc_create(t, C_FANOUTS, str_c(job_id), str_c(s), hclock_now(e->clock));
    if (rc == HR_OK) /* listed by GET /bulk (fanout_list.c) */
        rc = fanout__index(t, FANOUT_KIND_BULK, job_id, num(fo, "created"));
    free(s);
    cJSON_Delete(fo);
    return rc;
}

int engine_bulk_users_validate(const cJSON *users, struct herr *err)
{
    static const char *const known[] = {"data", "preferences", "profile", "recipient", "to",
                                        NULL};
    const cJSON *u, *it;
    int i = 0;
    if (!cJSON_IsArray(users) || cJSON_GetArraySize(users) < 1)
        return herr_set(err, HR_INVAL, "users must be a non-empty array");
    if (cJSON_GetArraySize(users) > BULK_USERS_MAX)
        return herr_set(err, HR_TOOBIG, "users: at most %d users per call (got %d); add them "
                                         "in several calls",
                        BULK_USERS_MAX, cJSON_GetArraySize(users));
    cJSON_ArrayForEach(u, users)
    {
        char *s;
        size_t len;
        if (!cJSON_IsObject(u))
            return herr_set(err, HR_INVAL, "users[%d] must be an object", i);
        cJSON_ArrayForEach(it, u)
        {
            bool ok = false;
            for (int k = 0; known[k]; k++)
                ok = ok || !strcmp(known[k], it->string);
            if (!ok && !cJSON_IsNull(it))
                return herr_set(err, HR_INVAL, "users[%d].%.64s is not a field of a bulk user",
                                i, it->string);
        }
        if ((it = json_member(u, "preferences")) && !cJSON_IsNull(it))
            return herr_set(err, HR_INVAL, "users[%d].preferences is not supported yet", i);
        if ((it = json_member(u, "recipient")) && !cJSON_IsNull(it) &&
            (!cJSON_IsString(it) || strlen(it->valuestring) > 512))
            return herr_set(err, HR_INVAL, "users[%d].recipient must be a user id", i);
        if (((it = json_member(u, "to")) && !cJSON_IsNull(it) &&
             !cJSON_IsObject(it)) ||
            ((it = json_member(u, "profile")) && !cJSON_IsNull(it) &&
             !cJSON_IsObject(it)))
            return herr_set(err, HR_INVAL, "users[%d].to and .profile must be objects", i);
        s = json_print(u);
        len = strlen(s);
        free(s);
        if (len > BULK_USER_MAX_BYTES)
            return herr_set(err, HR_TOOBIG, "users[%d] is over %d bytes", i,
                            BULK_USER_MAX_BYTES);
        i++;
    }
    return HR_OK;
}

/* bulk_load: bulk job job_id's document (new) inside t, or from s when t is NULL;
 * HR_NOTFOUND when absent or not a bulk job. */
static int bulk_load(struct store_txn *t, struct store *s, const char *job_id, cJSON **fo)
{
    const char *src;
    int rc = fo_load(t, s, job_id, fo);
    if (rc == HR_OK && (!(src = json_str(*fo, "source")) || strcmp(src, "bulk"))) {
        cJSON_Delete(*fo);
        *fo = NULL;
        rc = HR_NOTFOUND;
    }
    return rc;
}

static bool bulk_created(const cJSON *fo)
{
    const char *st = json_str(fo, "status");
    return st && !strcmp(st, "CREATED");
}

int engine_bulk_add_users(struct engine *e, struct store_txn *t, const char *job_id,
                          const cJSON *users, struct herr *err)
{
    cJSON *fo = NULL;
    const cJSON *u;
    int64_t now = hclock_now(e->clock), rec;
    int rc = bulk_load(t, NULL, job_id, &fo);
    if (rc < 0)
        goto out;
    if (!bulk_created(fo)) {
        rc = herr_set(err, HR_CONFLICT, "bulk job %s runs already: users can only be added "
                                        "before runJob", job_id);
        goto out;
    }
    rec = num(fo, "received");
    cJSON_ArrayForEach(u, users)
    {
        char id[ID_LEN + BULK_SEQ_DIGITS + 4], *s = json_print(u);
        snprintf(id, sizeof id, "%s/%0*" PRId64, job_id, BULK_SEQ_DIGITS, ++rec);
        rc = store_doc_create(t, C_BULK_USERS, str_c(id), str_c(s), now);
        free(s);
        if (rc < 0)
            goto out;
    }
    set_num(fo, "received", rec);
    rc = fo_save(t, job_id, fo, now);
out:
    cJSON_Delete(fo);
    return rc;
}

int engine_bulk_run(struct engine *e, struct store_txn *t, const char *job_id)
{
    cJSON *fo = NULL;
    int rc = bulk_load(t, NULL, job_id, &fo);
    if (rc < 0 || !bulk_created(fo))
        goto out; /* absent, or runs or ran already */
    set_str(fo, "status", "PROCESSING");
    rc = fo_save(t, job_id, fo, hclock_now(e->clock));
    if (rc == HR_OK)
        rc = next_run(t, job_id);
out:
    cJSON_Delete(fo);
    return rc;
}

int engine_bulk_get(struct store *s, const char *job_id, cJSON **out)
{
    cJSON *fo = NULL, *job;
    int rc = bulk_load(NULL, s, job_id, &fo);
    *out = NULL;
    if (rc < 0)
        return rc;
    *out = cJSON_CreateObject();
    job = cJSON_AddObjectToObject(*out, "job");
    cJSON_AddItemToObject(job, "definition", cJSON_Duplicate(json_obj(fo, "definition"), 1));
    cJSON_AddNumberToObject(job, "enqueued", (double)num(fo, "enqueued"));
    cJSON_AddNumberToObject(job, "failures", (double)num(fo, "failures"));
    cJSON_AddNumberToObject(job, "received", (double)num(fo, "received"));
    cJSON_AddStringToObject(job, "status", json_str(fo, "status"));
    cJSON_Delete(fo);
    return HR_OK;
}

int engine_bulk_users(struct store *s, const char *job_id, const char *cursor, size_t limit,
                      cJSON **out)
{
    char prefix[ID_LEN + 2];
    struct arena *a = arena_new(16384);
    struct doc_rec *docs = NULL;
    size_t n = 0, plen;
    cJSON *fo = NULL, *items, *paging;
    const char *after, *st;
    bool started;
    int rc;

    *out = NULL;
    snprintf(prefix, sizeof prefix, "%s/", job_id);
    plen = strlen(prefix);
    rc = bulk_load(NULL, s, job_id, &fo);
    if (rc < 0)
        goto out;
    if (cursor && cursor[0] && strncmp(cursor, prefix, plen)) {
        rc = HR_INVAL;
        goto out;
    }
    rc = store_doc_list(s, C_BULK_USERS, str_c(prefix), str_c(cursor), limit + 1, a, &docs, &n);
    if (rc < 0)
        goto out;
    after = json_str(fo, "after");
    st = json_str(fo, "status");
    started = st && strcmp(st, "CREATED");
    *out = cJSON_CreateObject();
    items = cJSON_AddArrayToObject(*out, "items");
    for (size_t i = 0; i < n && i < limit; i++) {
        cJSON *u = cJSON_ParseWithLength(docs[i].body.p, docs[i].body.len), *to;
        bool done = started && after && strcmp(docs[i].id.p, after) <= 0;
        if (!u)
            u = cJSON_CreateObject();
        to = done ? bulk_to(u) : NULL;
        cJSON_AddStringToObject(u, "status", !done ? "PENDING" : to ? "ENQUEUED" : "ERROR");
        if (to) {
            char mid[ID_LEN + 1];
            msg_id_for(job_id, timed_ids(fo), docs[i].id.p, mid);
            cJSON_AddStringToObject(u, "messageId", mid);
        }
        cJSON_Delete(to);
        cJSON_AddItemToArray(items, u);
    }
    paging = cJSON_AddObjectToObject(*out, "paging");
    if (n > limit) {
        cJSON_AddStringToObject(paging, "cursor", docs[limit - 1].id.p);
        cJSON_AddBoolToObject(paging, "more", true);
    } else {
        cJSON_AddNullToObject(paging, "cursor");
        cJSON_AddBoolToObject(paging, "more", false);
    }
out:
    cJSON_Delete(fo);
    arena_free(a);
    return rc;
}
