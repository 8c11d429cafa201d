/* automations.c: automations through the API.
 *   herald's own (docs/openapi.yaml): PUT/GET/DELETE /automations/:id, GET /automations,
 *     POST /automations/from-event (create one for a catalog event, linked),
 *     POST/GET/DELETE /links (events <-> automations)
 *   Courier's: POST /automations/invoke (ad hoc steps), POST /automations/:id/invoke,
 *     GET /automations/runs/:id; herald's GET /automations/runs?automation_id= (recent) */
#include "api.h"

#include "../engine/automation.h"
#include "../engine/defcache.h"
#include "../util/clock.h"
#include "../util/id.h"
#include "../util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX AUTOMATION_ID_MAX

static bool id_ok(struct str id)
{
    return automation_id_ok(id);
}

static int bad_id(struct http_resp *resp)
{
    http_resp_error(resp, 400, "invalid_request_error",
                    "automation ids are 1 to %d characters of [A-Za-z0-9_.:-]", ID_MAX);
    return HR_INVAL;
}

/* answer_doc: a stored document as the response body. */
static void answer_doc(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                       const char *coll, struct str id, const char *what)
{
    struct doc_rec d;
    int rc = store_doc_get(ctx->store, coll, id, req->arena, &d);
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error", "%s %.*s not found", what,
                        STR_FMT(id));
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    http_resp_raw(resp, 200, "application/json", d.body);
}

struct put_arg {
    struct str id;
    const cJSON *def;
    int64_t now, version;
    const char *link_event; /* from-event: link it too */
    struct herr cycle;      /* why the definition was refused (an invoke cycle) */
};

static int put_tx(struct store_txn *t, void *varg)
{
    struct put_arg *a = varg;
    int rc = automation_check_cycles(t, a->id, a->def, &a->cycle);
    if (rc == HR_OK)
        rc = automation_put(t, a->id, a->def, a->now, &a->version);
    if (rc == HR_OK && a->link_event)
        rc = automation_link(t, str_c(a->link_event), a->id, a->now);
    return rc;
}

static void put_and_answer(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                           struct put_arg *a)
{
    struct herr err;
    int rc;
    herr_clear(&err);
    if (automation_validate(a->def, &err) < 0) {
        http_resp_error(resp, 400, "invalid_request_error", "%s", err.msg);
        return;
    }
    a->now = hclock_now(ctx->clock);
    herr_clear(&a->cycle);
    rc = store_write(ctx->store, put_tx, a, &err);
    defcache_changed(); /* again after the commit: a load that raced it is stale too */
    if (rc == HR_INVAL && a->cycle.msg[0]) {
        http_resp_error(resp, 400, "invalid_request_error", "%s", a->cycle.msg);
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        return;
    }
    answer_doc(ctx, req, resp, "automations", a->id, "automation");
}

void api_automation_put(void *vctx, struct http_req *req, struct http_resp *resp)
{
    cJSON *body = NULL;
    struct put_arg a = {0};
    if (!id_ok(req->params[0])) {
        bad_id(resp);
        return;
    }
    if (api_parse_json(req, resp, &body) < 0)
        return;
    a.id = arena_str(req->arena, req->params[0]);
    a.def = body;
    put_and_answer(vctx, req, resp, &a);
    cJSON_Delete(body);
}

void api_automation_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    const char *v = http_req_query(req, "version");
    struct str id = arena_str(req->arena, req->params[0]);
    if (v && strcmp(v, "latest") && strcmp(v, "published")) {
        char *vid = arena_sprintf(req->arena, "%s@%s", id.p, v[0] == 'v' ? v + 1 : v);
        answer_doc(vctx, req, resp, "automation_versions", str_c(vid), "automation version");
        return;
    }
    answer_doc(vctx, req, resp, "automations", id, "automation");
}

/* GET /automations?cursor=&version=published|draft: Courier's AutomationTemplateListResponse.
 * herald's automations are live from their first PUT, so every one is "published" (its
 * revision number stays in herald's own "revision") and the draft view is empty; the
 * times are ISO 8601 strings and "cursor" is absent on the last page. */
void api_automation_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    const char *cursor = http_req_query(req, "cursor");
    const char *version = http_req_query(req, "version");
    struct doc_rec *docs = NULL;
    size_t n = 0, lim = 50;
    cJSON *out, *arr;
    int rc;
    if (version && strcmp(version, "published") != 0 && strcmp(version, "draft") != 0) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "version must be \"published\" or \"draft\"");
        return;
    }
    out = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(out, "templates");
    if (version && strcmp(version, "draft") == 0) { /* no automation is a draft */
        http_resp_json(resp, 200, out);
        cJSON_Delete(out);
        return;
    }
    rc = store_doc_list(ctx->store, "automations", STR_NULL, str_c(cursor), lim + 1, req->arena,
                        &docs, &n);
    if (rc < 0) {
        cJSON_Delete(out);
        api_error_rc(resp, rc, NULL);
        return;
    }
    for (size_t i = 0; i < n && i < lim; i++) {
        cJSON *d = cJSON_ParseWithLength(docs[i].body.p, docs[i].body.len), *o = cJSON_CreateObject();
        int64_t v = 0, c = 0, u = 0;
        char iso[32];
        json_i64(d, "version", &v);
        json_i64(d, "created", &c);
        json_i64(d, "updated", &u);
        cJSON_AddStringToObject(o, "id", docs[i].id.p);
        cJSON_AddStringToObject(o, "name", json_str(d, "name") ? json_str(d, "name") : "");
        cJSON_AddStringToObject(o, "version", "published");
        cJSON_AddNumberToObject(o, "revision", (double)v);
        time_fmt_iso(c, iso, sizeof iso);
        cJSON_AddStringToObject(o, "createdAt", iso);
        time_fmt_iso(u ? u : c, iso, sizeof iso);
        cJSON_AddStringToObject(o, "updatedAt", iso);
        cJSON_AddItemToArray(arr, o);
        cJSON_Delete(d);
    }
    if (n > lim)
        cJSON_AddStringToObject(out, "cursor", docs[lim - 1].id.p);
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}

static int delete_tx(struct store_txn *t, void *id)
{
    return automation_delete(t, *(struct str *)id);
}

void api_automation_delete(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    struct str id = arena_str(req->arena, req->params[0]);
    struct herr err;
    int rc;
    herr_clear(&err);
    rc = store_write(ctx->store, delete_tx, &id, &err);
    defcache_changed();
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error", "automation %s not found", id.p);
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        return;
    }
    resp->status = 204;
}

/* POST /automations/from-event {event, template, name?, id?} */
void api_automation_from_event(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *body = NULL, *def = NULL, *steps, *step, *profile, *ref;
    const char *event, *tmpl, *name, *id;
    struct catalog_rec c;
    struct put_arg a = {0};
    char gen[48];

    if (api_parse_json(req, resp, &body) < 0)
        return;
    event = json_str(body, "event");
    tmpl = json_str(body, "template");
    name = json_str(body, "name");
    id = json_str(body, "id");
    if (!event || !tmpl) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "body must be {\"event\": <catalog name>, \"template\": <template id>}");
        goto out;
    }
    if (store_catalog_get(ctx->store, str_c(event), req->arena, &c) == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error", "no event named %.200s in the catalog",
                        event);
        goto out;
    }
    if (!id) {
        id_prefixed("au_", gen, sizeof gen);
        id = gen;
    } else if (!id_ok(str_c(id))) {
        bad_id(resp);
        goto out;
    }
    def = cJSON_CreateObject();
    cJSON_AddStringToObject(def, "name", name ? name : event);
    steps = cJSON_AddArrayToObject(def, "steps");
    step = cJSON_CreateObject();
    cJSON_AddStringToObject(step, "action", "send");
    cJSON_AddStringToObject(step, "template", tmpl);
    cJSON_AddStringToObject(step, "recipient", "refs.data.userId");
    profile = cJSON_AddObjectToObject(step, "profile");
    ref = cJSON_AddObjectToObject(profile, "email");
    cJSON_AddStringToObject(ref, "$ref", "data.email");
    cJSON_AddItemToArray(steps, step);
    cJSON *trig = cJSON_AddObjectToObject(def, "trigger");
    cJSON_AddStringToObject(trig, "event", event);
    a.id = arena_str(req->arena, str_c(id));
    a.def = def;
    a.link_event = event;
    put_and_answer(ctx, req, resp, &a);
out:
    cJSON_Delete(body);
    cJSON_Delete(def);
}

/* ---- invoke and runs ------------------------------------------------------------- */

struct start_arg {
    struct engine *e;
    const cJSON *def;        /* ad hoc */
    struct str automation;   /* by id */
    const cJSON *context;
    const char *run_id;
};

static int start_tx(struct store_txn *t, void *varg)
{
    struct start_arg *s = varg;
    if (s->def)
        return automation_start(s->e, t, s->def, NULL, 0, s->context, s->run_id, NULL, 0);
    return automation_start_by_id(s->e, t, s->automation, s->context, s->run_id, NULL);
}

static void invoke(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                   const cJSON *def, struct str automation, const cJSON *body)
{
    struct start_arg s = {ctx->engine, def, automation, body, NULL};
    struct herr err;
    char rid[ID_LEN + 1];
    cJSON *out;
    int rc;
    const cJSON *v;
    herr_clear(&err);
    if ((v = json_member(body, "data")) && !cJSON_IsObject(v) &&
        !cJSON_IsNull(v)) {
        http_resp_error(resp, 400, "invalid_request_error", "data must be an object");
        return;
    }
    if ((v = json_member(body, "recipient")) && !cJSON_IsString(v) &&
        !cJSON_IsNull(v)) {
        http_resp_error(resp, 400, "invalid_request_error", "recipient must be a string");
        return;
    }
    if (api_idempotent_id(req, rid, sizeof rid) < 0)
        id_new(hclock_now(ctx->clock), rid);
    s.run_id = rid;
    rc = store_write(ctx->store, start_tx, &s, &err);
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error", "automation %.*s not found",
                        STR_FMT(automation));
        return;
    }
    if (rc < 0 && rc != HR_CONFLICT) {
        api_error_rc(resp, rc, &err);
        return;
    }
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "runId", rid);
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}

void api_automation_invoke_adhoc(void *vctx, struct http_req *req, struct http_resp *resp)
{
    cJSON *body = NULL;
    const cJSON *def;
    struct herr err;
    if (api_parse_json(req, resp, &body) < 0)
        return;
    def = json_obj(body, "automation");
    herr_clear(&err);
    if (!def) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "body must be {\"automation\": {\"steps\": [...]}, ...}");
    } else if (automation_validate(def, &err) < 0) {
        http_resp_error(resp, 400, "invalid_request_error", "automation.%s", err.msg);
    } else {
        invoke(vctx, req, resp, def, STR_NULL, body);
    }
    cJSON_Delete(body);
}

void api_automation_invoke(void *vctx, struct http_req *req, struct http_resp *resp)
{
    cJSON *body = NULL;
    if (!id_ok(req->params[0])) {
        bad_id(resp);
        return;
    }
    if (req->body.len == 0)
        body = cJSON_CreateObject();
    else if (api_parse_json(req, resp, &body) < 0)
        return;
    invoke(vctx, req, resp, NULL, arena_str(req->arena, req->params[0]), body);
    cJSON_Delete(body);
}

/* run_view: a stored run as the API shows it (caller owns). */
static cJSON *run_view(const cJSON *run)
{
    cJSON *out, *steps, *results, *st, *it;
    int64_t cur = 0;
    int i = 0;
    out = cJSON_CreateObject();
    const char *keys[] = {"id", "automation_id", "version", "status", "cancelation_token",
                          "waiting_until", "error", "created", "updated", "canceled", "source"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if ((it = json_member(run, keys[k])))
            cJSON_AddItemToObject(out, keys[k], cJSON_Duplicate(it, 1));
    json_i64(run, "current", &cur);
    cJSON_AddNumberToObject(out, "current_step", (double)cur);
    steps = cJSON_AddArrayToObject(out, "steps");
    results = json_arr(run, "results");
    cJSON_ArrayForEach(st, json_arr(run, "steps"))
    {
        cJSON *o = cJSON_CreateObject(), *res = NULL, *r;
        cJSON_ArrayForEach(r, results)
        {
            int64_t idx = -1;
            if (json_i64(r, "index", &idx) && idx == i)
                res = r; /* the last result of this step */
        }
        cJSON_AddNumberToObject(o, "index", i);
        cJSON_AddStringToObject(o, "action", json_str(st, "action") ? json_str(st, "action") : "");
        if (json_str(st, "ref"))
            cJSON_AddStringToObject(o, "ref", json_str(st, "ref"));
        if (res) {
            cJSON_ArrayForEach(r, res) if (strcmp(r->string, "index") && strcmp(r->string, "action"))
                cJSON_AddItemToObject(o, r->string, cJSON_Duplicate(r, 1));
        } else {
            const char *status = json_str(run, "status");
            bool waiting = i == cur && status && !strcmp(status, "WAITING");
            cJSON_AddStringToObject(o, "status",
                                    waiting                                   ? "waiting"
                                    : status && (!strcmp(status, "CANCELED") ||
                                                 !strcmp(status, "FAILED")) ? "not run"
                                                                            : "pending");
            if (waiting && json_member(run, "waiting_until"))
                cJSON_AddItemToObject(o, "until", cJSON_Duplicate(json_member(run, "waiting_until"), 1));
        }
        cJSON_AddItemToArray(steps, o);
        i++;
    }
    if (json_obj(run, "context"))
        cJSON_AddItemToObject(out, "context", cJSON_Duplicate(json_obj(run, "context"), 1));
    return out;
}

void api_automation_run_get(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    cJSON *run = NULL, *out;
    int rc = automation_run_get(ctx->engine, req->params[0], &run);
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error", "run %.*s not found",
                        STR_FMT(req->params[0]));
        return;
    }
    if (rc == HR_INVAL) { /* stored, but its event's data cannot be derived */
        http_resp_error(resp, 500, "api_error", "run %.*s: its event's data cannot be read",
                        STR_FMT(req->params[0]));
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, NULL);
        return;
    }
    out = run_view(run);
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
    cJSON_Delete(run);
}

#define RUNS_LIMIT_DEFAULT 20
#define RUNS_LIMIT_MAX 100

/* GET /automations/runs?automation_id=&limit=: an automation's recent runs, newest
 * first (from the runs_by_automation index written when runs start). */
void api_automation_runs_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    const char *aid = http_req_query(req, "automation_id"), *ls = http_req_query(req, "limit");
    long lim = RUNS_LIMIT_DEFAULT;
    cJSON *ids = NULL, *out, *arr, *it;
    int rc;
    if (!aid || !id_ok(str_c(aid))) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "automation_id is required: 1 to %d characters of [A-Za-z0-9_.:-]",
                        ID_MAX);
        return;
    }
    if (ls) {
        char *end;
        lim = strtol(ls, &end, 10);
        if (*ls == '\0' || *end != '\0' || lim < 1 || lim > RUNS_LIMIT_MAX) {
            http_resp_error(resp, 400, "invalid_request_error", "limit must be 1 to %d",
                            RUNS_LIMIT_MAX);
            return;
        }
    }
    rc = automation_runs_recent(ctx->store, str_c(aid), (size_t)lim, &ids);
    if (rc < 0) {
        cJSON_Delete(ids);
        api_error_rc(resp, rc, NULL);
        return;
    }
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "automation_id", aid);
    arr = cJSON_AddArrayToObject(out, "runs");
    cJSON_ArrayForEach(it, ids)
    {
        cJSON *run = NULL;
        rc = automation_run_get(ctx->engine, str_c(it->valuestring), &run);
        if (rc == HR_NOTFOUND || rc == HR_INVAL)
            continue; /* gone (an index entry outlives its run), or unreadable for good */
        if (rc < 0) { /* a transient store error: not a shorter list */
            cJSON_Delete(out);
            cJSON_Delete(ids);
            api_error_rc(resp, rc, NULL);
            return;
        }
        cJSON_AddItemToArray(arr, run_view(run));
        cJSON_Delete(run);
    }
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
    cJSON_Delete(ids);
}

/* ---- links -------------------------------------------------------------------------- */

struct link_arg {
    struct str event, automation;
    int64_t now;
    bool unlink;
};

static int link_tx(struct store_txn *t, void *varg)
{
    struct link_arg *l = varg;
    struct arena *a = arena_new(1024);
    struct doc_rec d;
    int rc;
    if (l->unlink) {
        rc = automation_unlink(t, l->event, l->automation);
        goto out;
    }
    rc = store_doc_get_txn(t, "automations", l->automation, a, &d);
    if (rc == HR_OK)
        rc = automation_link(t, l->event, l->automation, l->now);
out:
    arena_free(a);
    return rc;
}

static void link_change(struct api_ctx *ctx, struct http_resp *resp, const char *event,
                        const char *automation, bool unlink)
{
    struct link_arg l;
    struct herr err;
    cJSON *o;
    int rc;
    if (!event || !event[0] || strlen(event) > 1024 || !automation ||
        !id_ok(str_c(automation))) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "give event (a catalog name) and automation_id");
        return;
    }
    l.event = str_c(event);
    l.automation = str_c(automation);
    l.now = hclock_now(ctx->clock);
    l.unlink = unlink;
    herr_clear(&err);
    rc = store_write(ctx->store, link_tx, &l, &err);
    defcache_changed();
    if (rc == HR_NOTFOUND) {
        http_resp_error(resp, 404, "invalid_request_error",
                        unlink ? "no such link" : "automation %s not found", automation);
        return;
    }
    if (rc < 0) {
        api_error_rc(resp, rc, &err);
        return;
    }
    if (unlink) {
        resp->status = 204;
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", event);
    cJSON_AddStringToObject(o, "automation_id", automation);
    cJSON_AddNumberToObject(o, "created", (double)l.now);
    http_resp_json(resp, 200, o);
    cJSON_Delete(o);
}

void api_link_create(void *vctx, struct http_req *req, struct http_resp *resp)
{
    cJSON *body = NULL;
    if (api_parse_json(req, resp, &body) < 0)
        return;
    link_change(vctx, resp, json_str(body, "event"), json_str(body, "automation_id"), false);
    cJSON_Delete(body);
}

void api_link_delete(void *vctx, struct http_req *req, struct http_resp *resp)
{
    link_change(vctx, resp, http_req_query(req, "event"), http_req_query(req, "automation_id"),
                true);
}

void api_link_list(void *vctx, struct http_req *req, struct http_resp *resp)
{
    struct api_ctx *ctx = vctx;
    const char *event = http_req_query(req, "event"), *aid = http_req_query(req, "automation_id");
    cJSON *links = NULL, *out;
    int rc;
    if ((!event) == (!aid)) {
        http_resp_error(resp, 400, "invalid_request_error",
                        "give exactly one of ?event=<catalog name> or ?automation_id=<id>");
        return;
    }
    rc = automation_links(ctx->store, str_c(event ? event : aid), event != NULL, &links);
    if (rc < 0) {
        cJSON_Delete(links);
        api_error_rc(resp, rc, NULL);
        return;
    }
    out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "results", links);
    http_resp_json(resp, 200, out);
    cJSON_Delete(out);
}
