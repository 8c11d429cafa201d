/* automation.c: automation templates, runs and their steps (see automation.h). */
#include "automation.h"

#include "defcache.h"
#include "fanout.h"

#include "refs.h"
#include "send_int.h"

#include "../expr/expr.h"
#include "../providers/http_client.h"
#include "../util/id.h"
#include "../util/jsonpatch.h"
#include "../util/log.h"
#include "../util/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C_AUTOMATIONS "automations"
#define C_VERSIONS "automation_versions"
#define C_RUNS "runs"
#define C_TOKENS "run_tokens"
#define C_EVENT_LINKS "event_links"
#define C_AUTO_LINKS "automation_links"
#define C_RUNS_BY_AUTO "runs_by_automation"
#define C_TREES "run_trees"
#define RUN_KEY_MAX_MS 9999999999999999LL /* ids sort newest first: MAX - created */
#define FETCH_TIMEOUT_MS 10000

/* Every step type is one entry of step_types[] (bottom of this file): its action name and
 * what validation, preparation and running do for it. */
struct step_out;
struct step_type {
    const char *action;
    /* check: action-specific validation of the stored step (steps[i]); NULL: none */
    int (*check)(const cJSON *st, int i, struct herr *err);
    /* prepare: checks of the step after its accessors are resolved; NULL: none */
    int (*prepare)(const cJSON *st, struct herr *err);
    /* run: perform the resolved step st into o; false when the job should be retried
     * (a transient failure, r says when and why) */
    bool (*run)(struct step_out *o, const cJSON *st, const cJSON *ctx, const cJSON *run,
                struct job_result *r);
    /* names_automation: the step's literal `template` is an automation id (cycle check) */
    bool names_automation;
    /* pure: run reads nothing but the step, the run and the clock, and never asks for a
     * retry, so a run's first step of this type is taken in the transaction that starts
     * the run (step_first), with no job of its own */
    bool pure;
};
static const struct step_type *step_type_find(const char *action);
static const char *step_type_names(char *out, size_t cap);
static int step_first(struct engine *e, struct store_txn *t, cJSON *run, const char *run_id,
                      int64_t now, bool *taken);

/* ---- small helpers --------------------------------------------------------------- */

static char *pair_key(const char *a, const char *b)
{
    cJSON *k = cJSON_CreateArray();
    char *s;
    cJSON_AddItemToArray(k, cJSON_CreateString(a));
    cJSON_AddItemToArray(k, cJSON_CreateString(b));
    s = json_print(k);
    cJSON_Delete(k);
    return s;
}

/* pair_prefix: the id prefix of every pair key whose first element is a. */
static char *pair_prefix(const char *a)
{
    char *full = pair_key(a, ""), *end = strrchr(full, ',');
    if (end)
        end[1] = '\0';
    return full;
}

static int doc_load(struct store_txn *t, struct store *s, const char *coll, struct str id,
                    cJSON **out)
{
    struct arena *a = arena_new(4096);
    struct doc_rec d;
    int rc = t ? store_doc_get_txn(t, coll, id, a, &d) : store_doc_get(s, coll, id, a, &d);
    *out = NULL;
    if (rc == HR_OK && !(*out = cJSON_ParseWithLength(d.body.p, d.body.len)))
        rc = HR_IO;
    arena_free(a);
    return rc;
}

static int doc_save(struct store_txn *t, const char *coll, const char *id, const cJSON *v,
                    int64_t now)
{
    char *s = json_print(v);
    int rc = store_doc_put(t, coll, str_c(id), str_c(s), now, NULL);
    free(s);
    return rc;
}

/* ---- durations -------------------------------------------------------------------- */

int automation_parse_duration(const char *s, int64_t *out)
{
    double total = 0;
    const char *p = s;
    if (!s || !*s)
        return HR_INVAL;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == 'P' || *p == 'p') { /* ISO 8601: PnDTnHnMnS, PnW */
        bool in_time = false, any = false;
        p++;
        while (*p) {
            char *end;
            double v;
            if (*p == 'T' || *p == 't') {
                in_time = true;
                p++;
                continue;
            }
            v = strtod(p, &end);
            if (end == p || v < 0)
                return HR_INVAL;
            switch (toupper((unsigned char)*end)) {
            case 'W': total += v * 604800000.0; break;
            case 'D': total += v * 86400000.0; break;
            case 'H': total += v * 3600000.0; break;
            case 'M': total += in_time ? v * 60000.0 : v * 2592000000.0; break;
            case 'S': total += v * 1000.0; break;
            default: return HR_INVAL;
            }
            any = true;
            p = end + 1;
        }
        if (!any)
            return HR_INVAL;
    } else { /* "5 minutes", "1 hour 30 minutes", "30s", "1500" (ms) */
        bool any = false;
        while (*p) {
            char *end;
            double v = strtod(p, &end), unit = -1;
            char word[16];
            size_t n = 0;
            if (end == p || v < 0)
                return HR_INVAL;
            p = end;
            while (isspace((unsigned char)*p))
                p++;
            while (isalpha((unsigned char)*p) && n + 1 < sizeof word)
                word[n++] = (char)tolower((unsigned char)*p++);
            word[n] = '\0';
            if (n == 0 || !strcmp(word, "ms") || !strncmp(word, "millisecond", 11))
                unit = 1;
            else if (!strcmp(word, "s") || !strncmp(word, "sec", 3))
                unit = 1000;
            else if (!strcmp(word, "m") || !strncmp(word, "min", 3))
                unit = 60000;
            else if (!strcmp(word, "h") || !strncmp(word, "hour", 4) || !strcmp(word, "hr") ||
                     !strcmp(word, "hrs"))
                unit = 3600000;
            else if (!strcmp(word, "d") || !strncmp(word, "day", 3))
                unit = 86400000;
            else if (!strcmp(word, "w") || !strncmp(word, "week", 4))
                unit = 604800000;
            if (unit < 0)
                return HR_INVAL;
            total += v * unit;
            any = true;
            while (isspace((unsigned char)*p) || *p == ',')
                p++;
            if (!strncmp(p, "and ", 4))
                p += 4;
        }
        if (!any)
            return HR_INVAL;
    }
    if (!(total >= 0 && total <= 366.0 * 86400000.0)) /* also rejects NaN */
        return HR_INVAL;
    *out = (int64_t)total;
    return HR_OK;
}

/* until_ms: an ISO timestamp, also the compact "20240408T080910.123" form. */
static int until_ms(const char *s, int64_t *out)
{
    char buf[40];
    size_t n = strlen(s);
    if (time_parse_iso(s, n, out) == HR_OK)
        return HR_OK;
    if (n >= 15 && n < 30 && isdigit((unsigned char)s[0]) && s[8] == 'T') {
        snprintf(buf, sizeof buf, "%.4s-%.2s-%.2sT%.2s:%.2s:%s", s, s + 4, s + 6, s + 9, s + 11,
                 s + 13);
        return time_parse_iso(buf, strlen(buf), out);
    }
    return HR_INVAL;
}

/* ---- validation ------------------------------------------------------------------- */

/* is_ref: v is an accessor object {"$ref": "<path>"} (checked by refs_validate). */
static bool is_ref(const cJSON *v)
{
    return cJSON_IsObject(v) && json_str(v, "$ref") && v->child && !v->child->next;
}

/* method_ok: one of the HTTP methods fetch-data may use (also rules out CR, LF, spaces). */
static bool method_ok(const char *m)
{
    static const char *const ok[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};
    for (int i = 0; m && ok[i]; i++)
        if (!strcmp(m, ok[i]))
            return true;
    return false;
}

/* url_clean: no byte a request line could be split at (controls, space, DEL). */
static bool url_clean(const char *u)
{
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int check_merge(const cJSON *st, const char *key, int i, struct herr *err)
{
    const char *m = json_str(st, key);
    if (json_member(st, key) &&
        (!m || (strcmp(m, "replace") && strcmp(m, "soft-merge") && strcmp(m, "overwrite") &&
                strcmp(m, "none"))))
        return herr_set(err, HR_INVAL,
                        "steps[%d].%s must be replace, soft-merge, overwrite or none", i, key);
    return HR_OK;
}

static int check_step(const cJSON *st, int i, struct herr *err)
{
    const char *action = json_str(st, "action"), *cond = json_str(st, "if");
    struct herr e2;
    const struct step_type *t = action ? step_type_find(action) : NULL;
    herr_clear(&e2);
    if (!cJSON_IsObject(st))
        return herr_set(err, HR_INVAL, "steps[%d] must be an object", i);
    if (!t) {
        char names[256];
        return herr_set(err, HR_INVAL, "steps[%d].action must be one of %s", i,
                        step_type_names(names, sizeof names));
    }
    if (json_member(st, "if")) {
        struct expr *x = NULL;
        if (!cond)
            return herr_set(err, HR_INVAL, "steps[%d].if must be a string", i);
        if (expr_compile(cond, strlen(cond), &x, &e2) < 0)
            return herr_set(err, HR_INVAL, "steps[%d].if: %s", i, e2.msg);
        expr_unref(x);
    }
    if (json_member(st, "ref") &&
        (!json_str(st, "ref") || !json_str(st, "ref")[0] || strlen(json_str(st, "ref")) > 64))
        return herr_set(err, HR_INVAL, "steps[%d].ref must be a name of 1 to 64 characters", i);
    {
        /* `if` is an expression, not an accessor: validate everything else */
        cJSON *copy = cJSON_Duplicate(st, 1);
        int vrc;
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "if");
        vrc = refs_validate(copy, &e2);
        cJSON_Delete(copy);
        if (vrc < 0)
            return herr_set(err, HR_INVAL, "steps[%d]: %s", i, e2.msg);
    }
    return t->check ? t->check(st, i, err) : HR_OK;
}

static int check_send(const cJSON *st, int i, struct herr *err)
{
    const cJSON *m = json_obj(st, "message");
    if (m) {
        if (!json_member(m, "template") &&
            !json_member(m, "content"))
            return herr_set(err, HR_INVAL, "steps[%d].message needs template or content", i);
    } else if (!json_str(st, "template")) {
        return herr_set(err, HR_INVAL, "steps[%d]: send needs template or message", i);
    }
    return HR_OK;
}

static int check_delay(const cJSON *st, int i, struct herr *err)
{
    const char *d = json_str(st, "duration"), *u = json_str(st, "until");
    int64_t ms;
    if (!d && !u && !cJSON_IsNumber(json_member(st, "duration")))
        return herr_set(err, HR_INVAL, "steps[%d]: delay needs duration or until", i);
    if (d && strncmp(d, "refs.", 5) && !strstr(d, "${") &&
        automation_parse_duration(d, &ms) < 0)
        return herr_set(err, HR_INVAL,
                        "steps[%d].duration \"%.64s\" is not a duration (\"5 minutes\", "
                        "\"PT5M\")",
                        i, d);
    if (u && strncmp(u, "refs.", 5) && !strstr(u, "${") && until_ms(u, &ms) < 0)
        return herr_set(err, HR_INVAL, "steps[%d].until is not an ISO-8601 time", i);
    return HR_OK;
}

static int check_cancel(const cJSON *st, int i, struct herr *err)
{
    if (!json_member(st, "cancelation_token"))
        return herr_set(err, HR_INVAL, "steps[%d]: cancel needs cancelation_token", i);
    return HR_OK;
}

static int check_fetch_data(const cJSON *st, int i, struct herr *err)
{
    const cJSON *w = json_obj(st, "webhook");
    const char *url = json_str(w, "url"), *m = json_str(w, "method");
    if (!url && !is_ref(json_member(w, "url")))
        return herr_set(err, HR_INVAL, "steps[%d]: fetch-data needs webhook.url", i);
    if (m && strncmp(m, "refs.", 5) && !strstr(m, "${") && !method_ok(m))
        return herr_set(err, HR_INVAL, "steps[%d].webhook.method is not an HTTP method", i);
    if (check_merge(st, "merge_strategy", i, err) < 0)
        return HR_INVAL;
    return HR_OK;
}

static int check_update_profile(const cJSON *st, int i, struct herr *err)
{
    if (!json_member(st, "profile"))
        return herr_set(err, HR_INVAL, "steps[%d]: update-profile needs profile", i);
    if (check_merge(st, "merge", i, err) < 0 || check_merge(st, "merge_strategy", i, err) < 0)
        return HR_INVAL;
    return HR_OK;
}

static int check_get_profile(const cJSON *st, int i, struct herr *err)
{
    if (check_merge(st, "merge_strategy", i, err) < 0)
        return HR_INVAL;
    return HR_OK;
}

static int check_invoke(const cJSON *st, int i, struct herr *err)
{
    if (!json_str(st, "template") && !is_ref(json_member(st, "template")))
        return herr_set(err, HR_INVAL, "steps[%d]: invoke needs template (an automation id)", i);
    return HR_OK;
}

int automation_validate(const cJSON *def, struct herr *err)
{
    const cJSON *steps = json_arr(def, "steps"), *st;
    int i = 0;
    if (!cJSON_IsObject(def))
        return herr_set(err, HR_INVAL, "automation must be an object");
    if (json_member(def, "name") &&
        (!json_str(def, "name") || strlen(json_str(def, "name")) > 256))
        return herr_set(err, HR_INVAL, "name must be a string of at most 256 characters");
    if (!steps || cJSON_GetArraySize(steps) == 0 ||
        cJSON_GetArraySize(steps) > AUTOMATION_MAX_STEPS)
        return herr_set(err, HR_INVAL, "steps must be an array of 1 to %d steps",
                        AUTOMATION_MAX_STEPS);
    cJSON_ArrayForEach(st, steps) if (check_step(st, i++, err) < 0) return HR_INVAL;
    if (json_member(def, "cancelation_token") &&
        !cJSON_IsString(json_member(def, "cancelation_token")) &&
        !cJSON_IsObject(json_member(def, "cancelation_token")))
        return herr_set(err, HR_INVAL, "cancelation_token must be a string or an accessor");
    return HR_OK;
}

/* ---- templates and links ------------------------------------------------------------ */

bool automation_id_ok(struct str id)
{
    if (!id.p || id.len == 0 || id.len > AUTOMATION_ID_MAX)
        return false;
    for (size_t i = 0; i < id.len; i++) {
        char c = id.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

/* literal_target: the automation id an invoke step names as plain text, or NULL (not an
 * invoke step, or its template is an accessor resolved at run time). */
static const char *literal_target(const cJSON *st)
{
    const char *action = json_str(st, "action"), *tmpl = json_str(st, "template");
    const struct step_type *t = action ? step_type_find(action) : NULL;
    if (!t || !t->names_automation || !tmpl || !strncmp(tmpl, "refs.", 5) ||
        strstr(tmpl, "${"))
        return NULL;
    return tmpl;
}

int automation_check_cycles(struct store_txn *t, struct str id, const cJSON *def,
                            struct herr *err)
{
    const cJSON *st, *st2;
    int i = 0, rc = HR_OK;
    cJSON_ArrayForEach(st, json_arr(def, "steps"))
    {
        const char *target = literal_target(st);
        cJSON *other = NULL;
        if (target && !strcmp(target, id.p))
            return herr_set(err, HR_INVAL,
                            "steps[%d]: invoke of %.128s itself would start runs without end",
                            i, target);
        if (target && automation_id_ok(str_c(target))) {
            rc = doc_load(t, NULL, C_AUTOMATIONS, str_c(target), &other);
            if (rc == HR_NOTFOUND)
                rc = HR_OK;
            if (rc < 0)
                return rc;
            cJSON_ArrayForEach(st2, json_arr(other, "steps"))
            {
                const char *back = literal_target(st2);
                if (back && !strcmp(back, id.p)) {
                    rc = herr_set(err, HR_INVAL,
                                  "steps[%d]: invoke of %.128s, which invokes %.128s again: a "
                                  "cycle that would start runs without end",
                                  i, target, id.p);
                    break;
                }
            }
            cJSON_Delete(other);
            if (rc < 0)
                return rc;
        }
        i++;
    }
    return HR_OK;
}


int automation_put(struct store_txn *t, struct str id, const cJSON *def, int64_t now,
                   int64_t *out_version)
{
    cJSON *cur = NULL, *doc = cJSON_Duplicate(def, 1);
    int64_t v = 0, created = now;
    char vid[300];
    int rc = doc_load(t, NULL, C_AUTOMATIONS, id, &cur);
    if (rc == HR_OK) {
        json_i64(cur, "version", &v);
        json_i64(cur, "created", &created);
    } else if (rc != HR_NOTFOUND) {
        goto out;
    }
    v++;
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "id");
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "version");
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "created");
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "updated");
    cJSON_AddStringToObject(doc, "id", id.p);
    cJSON_AddNumberToObject(doc, "version", (double)v);
    cJSON_AddNumberToObject(doc, "created", (double)created);
    cJSON_AddNumberToObject(doc, "updated", (double)now);
    defcache_changed();
    rc = doc_save(t, C_AUTOMATIONS, id.p, doc, now);
    if (rc < 0)
        goto out;
    snprintf(vid, sizeof vid, "%.*s@%lld", (int)id.len, id.p, (long long)v);
    rc = doc_save(t, C_VERSIONS, vid, doc, now);
    if (out_version)
        *out_version = v;
out:
    cJSON_Delete(cur);
    cJSON_Delete(doc);
    return rc;
}

int automation_link(struct store_txn *t, struct str event, struct str automation, int64_t now)
{
    char *k1 = pair_key(event.p, automation.p), *k2 = pair_key(automation.p, event.p);
    cJSON *v = cJSON_CreateObject();
    int rc;
    cJSON_AddStringToObject(v, "event", event.p);
    cJSON_AddStringToObject(v, "automation_id", automation.p);
    cJSON_AddNumberToObject(v, "created", (double)now);
    defcache_changed();
    rc = doc_save(t, C_EVENT_LINKS, k1, v, now);
    if (rc == HR_OK)
        rc = doc_save(t, C_AUTO_LINKS, k2, v, now);
    free(k1);
    free(k2);
    cJSON_Delete(v);
    return rc;
}

int automation_unlink(struct store_txn *t, struct str event, struct str automation)
{
    char *k1 = pair_key(event.p, automation.p), *k2 = pair_key(automation.p, event.p);
    int rc;
    defcache_changed();
    rc = store_doc_delete(t, C_EVENT_LINKS, str_c(k1));
    if (rc == HR_OK) {
        rc = store_doc_delete(t, C_AUTO_LINKS, str_c(k2));
        if (rc == HR_NOTFOUND)
            rc = HR_OK;
    }
    free(k1);
    free(k2);
    return rc;
}

int automation_links(struct store *s, struct str key, bool by_event, cJSON **out)
{
    struct arena *a = arena_new(8192);
    struct doc_rec *docs = NULL;
    size_t n = 0;
    char *prefix = pair_prefix(key.p);
    int rc = store_doc_list(s, by_event ? C_EVENT_LINKS : C_AUTO_LINKS, str_c(prefix), STR_NULL,
                            1000, a, &docs, &n);
    *out = cJSON_CreateArray();
    for (size_t i = 0; rc == HR_OK && i < n; i++) {
        cJSON *v = cJSON_ParseWithLength(docs[i].body.p, docs[i].body.len);
        if (v)
            cJSON_AddItemToArray(*out, v);
    }
    free(prefix);
    arena_free(a);
    return rc;
}

int automation_delete(struct store_txn *t, struct str id)
{
    cJSON *links = NULL, *l;
    int rc;
    defcache_changed();
    rc = store_doc_delete(t, C_AUTOMATIONS, id);
    if (rc < 0)
        return rc;
    if (automation_links(store_txn_store(t), id, false, &links) == HR_OK)
        cJSON_ArrayForEach(l, links) if (rc == HR_OK) rc =
            automation_unlink(t, str_c(json_str(l, "event")), id);
    cJSON_Delete(links);
    return rc == HR_NOTFOUND ? HR_OK : rc;
}

/* ---- runs ---------------------------------------------------------------------------- */

static cJSON *run_ctx(const cJSON *run)
{
    return json_obj(run, "context");
}

static bool run_final(const cJSON *run)
{
    const char *st = json_str(run, "status");
    return st && (!strcmp(st, "COMPLETED") || !strcmp(st, "CANCELED") || !strcmp(st, "FAILED"));
}

/* run_save: store run (a run whose data is its event's, run.data_event, is stored
 * without context.data: run_load derives it again). */
static int run_save(struct store_txn *t, const char *run_id, cJSON *run, int64_t now)
{
    cJSON *ctx = run_ctx(run), *data = NULL;
    int rc;
    if (ctx && json_member(run, SPEC_DATA_EVENT))
        data = cJSON_DetachItemFromObjectCaseSensitive(ctx, "data");
    rc = doc_save(t, C_RUNS, run_id, run, now);
    if (data)
        cJSON_AddItemToObject(ctx, "data", data);
    return rc;
}

/* run_load: run run_id as committed (*out, caller owns; NULL on error), its data derived
 * again from its event when run_save left it out. HR_NOTFOUND when there is no such run,
 * HR_INVAL when its event is gone or unreadable (rows herald never deletes: it stays
 * so), else a store error (transient). */
static int run_load(struct engine *e, struct str run_id, cJSON **out)
{
    cJSON *ctx, *data = NULL;
    int64_t ev = 0;
    int rc = doc_load(NULL, e->store, C_RUNS, run_id, out);
    if (rc < 0 || !json_i64(*out, SPEC_DATA_EVENT, &ev) || !(ctx = run_ctx(*out)) ||
        json_member(ctx, "data"))
        goto out;
    rc = engine_event_data(e, ev, &data);
    if (rc < 0) {
        LOG_W("automation.run_data", "run=%.*s event=%lld rc=%s msg=\"cannot derive the "
              "run's data from its event\"", STR_FMT(run_id), (long long)ev, hr_rc_str(rc));
        if (rc == HR_NOTFOUND)
            rc = HR_INVAL; /* the run is there; its data is not, for good */
        cJSON_Delete(*out);
        *out = NULL;
        goto out;
    }
    cJSON_AddItemToObject(ctx, "data", data);
out:
    return rc;
}

int automation_run_get(struct engine *e, struct str run_id, cJSON **out)
{
    return run_load(e, run_id, out);
}

static int enqueue_step(struct store_txn *t, const char *run_id, int64_t step, int64_t run_at)
{
    cJSON *j = cJSON_CreateObject();
    int rc;
    cJSON_AddStringToObject(j, "run", run_id);
    cJSON_AddNumberToObject(j, "step", (double)step);
    rc = send__enqueue(t, AUTOMATION_STEP_KIND, j, run_at);
    cJSON_Delete(j);
    return rc;
}

/* run_index_key: runs_by_automation/[automation, MAX - created (16 digits), run]: the
 * ids of one automation's runs walk newest first. */
static char *run_index_key(const char *automation_id, int64_t created, const char *run_id)
{
    cJSON *k = cJSON_CreateArray();
    char inv[32], *s;
    int64_t c = created < 0 ? 0 : created > RUN_KEY_MAX_MS ? RUN_KEY_MAX_MS : created;
    snprintf(inv, sizeof inv, "%016lld", (long long)(RUN_KEY_MAX_MS - c));
    cJSON_AddItemToArray(k, cJSON_CreateString(automation_id));
    cJSON_AddItemToArray(k, cJSON_CreateString(inv));
    cJSON_AddItemToArray(k, cJSON_CreateString(run_id));
    s = json_print(k);
    cJSON_Delete(k);
    return s;
}

static int run_index_add(struct store_txn *t, const char *automation_id, const char *run_id,
                         int64_t now)
{
    char *k = run_index_key(automation_id, now, run_id);
    cJSON *v = cJSON_CreateObject();
    int rc;
    cJSON_AddStringToObject(v, "run_id", run_id);
    cJSON_AddNumberToObject(v, "created", (double)now);
    rc = doc_save(t, C_RUNS_BY_AUTO, k, v, now);
    free(k);
    cJSON_Delete(v);
    return rc;
}

int automation_runs_recent(struct store *s, struct str automation_id, size_t limit,
                           cJSON **out)
{
    struct arena *a = arena_new(8192);
    struct doc_rec *docs = NULL;
    size_t n = 0;
    char *prefix = pair_prefix(automation_id.p);
    int rc = store_doc_list(s, C_RUNS_BY_AUTO, str_c(prefix), STR_NULL, limit, a, &docs, &n);
    *out = cJSON_CreateArray();
    for (size_t i = 0; rc == HR_OK && i < n; i++) {
        cJSON *v = cJSON_ParseWithLength(docs[i].body.p, docs[i].body.len);
        const char *rid = json_str(v, "run_id");
        if (rid)
            cJSON_AddItemToArray(*out, cJSON_CreateString(rid));
        cJSON_Delete(v);
    }
    free(prefix);
    arena_free(a);
    return rc;
}

int automation_start(struct engine *e, struct store_txn *t, const cJSON *def,
                     const char *automation_id, int64_t version, const cJSON *context,
                     const char *run_id, const cJSON *source, int64_t data_event)
{
    cJSON *run = NULL, *ctx, *tok = NULL, *existing = NULL;
    const cJSON *tdef = json_member(def, "cancelation_token");
    int64_t now = hclock_now(e->clock);
    struct herr err;
    const char *keys[] = {"data", "profile", "recipient", "brand", "template"};
    bool taken = false;
    int rc = doc_load(t, NULL, C_RUNS, str_c(run_id), &existing);
    if (rc == HR_OK) {
        rc = HR_CONFLICT;
        goto out;
    }
    if (rc != HR_NOTFOUND)
        goto out;
    run = cJSON_CreateObject();
    cJSON_AddStringToObject(run, "id", run_id);
    cJSON_AddStringToObject(run, "automation_id", automation_id ? automation_id : "");
    cJSON_AddNumberToObject(run, "version", (double)version);
    cJSON_AddStringToObject(run, "status", "RUNNING");
    /* the steps and the context are references into def and context (both outlive run,
     * which is printed and freed here): no deep copy of the event's data per run. The
     * step's effects replace context members (a reference's Delete frees only itself) */
    cJSON_AddItemReferenceToObject(run, "steps", (cJSON *)json_arr(def, "steps"));
    ctx = cJSON_AddObjectToObject(run, "context");
    for (int i = 0; i < 5; i++) {
        cJSON *v = json_member(context, keys[i]);
        if (v)
            cJSON_AddItemReferenceToObject(ctx, keys[i], v);
        else
            cJSON_AddItemToObject(ctx, keys[i], cJSON_CreateNull());
    }
    if (!cJSON_IsObject(json_obj(ctx, "data")))
        cJSON_ReplaceItemInObjectCaseSensitive(ctx, "data", cJSON_CreateObject());
    cJSON_AddObjectToObject(ctx, "refs");
    herr_clear(&err);
    if (tdef && refs_resolve(tdef, ctx, &tok, &err) == HR_OK && cJSON_IsString(tok) &&
        tok->valuestring[0]) {
        char *k = pair_key(tok->valuestring, run_id);
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(run, "cancelation_token", tok->valuestring);
        rc = doc_save(t, C_TOKENS, k, v, now);
        free(k);
        cJSON_Delete(v);
        if (rc < 0)
            goto out;
    }
    cJSON_AddNumberToObject(run, "current", 0);
    cJSON_AddArrayToObject(run, "results");
    if (source)
        cJSON_AddItemToObject(run, "source", cJSON_Duplicate(source, 1));
    cJSON_AddNumberToObject(run, "created", (double)now);
    cJSON_AddNumberToObject(run, "updated", (double)now);
    if (data_event > 0 && e->event_data) /* stored without its data (run_save) */
        cJSON_AddNumberToObject(run, SPEC_DATA_EVENT, (double)data_event);
    rc = step_first(e, t, run, run_id, now, &taken);
    if (rc == HR_OK && !taken)
        rc = enqueue_step(t, run_id, 0, 0);
    if (rc == HR_OK)
        rc = run_save(t, run_id, run, now);
    if (rc == HR_OK && automation_id && automation_id[0])
        rc = run_index_add(t, automation_id, run_id, now);
out:
    cJSON_Delete(run);
    cJSON_Delete(tok);
    cJSON_Delete(existing);
    return rc;
}

int automation_start_by_id(struct engine *e, struct store_txn *t, struct str automation_id,
                           const cJSON *context, const char *run_id, const cJSON *source)
{
    cJSON *def = NULL;
    int64_t v = 0;
    /* a plain read, no lock: the run keeps the version it read, and an events job that
     * starts runs for several automations must not lock their definitions in event
     * order (two such jobs would deadlock on a shared store; see ingest.c) */
    int rc = doc_load(NULL, store_txn_store(t), C_AUTOMATIONS, automation_id, &def);
    if (rc == HR_OK) {
        json_i64(def, "version", &v);
        rc = automation_start(e, t, def, automation_id.p, v, context, run_id, source, 0);
    }
    cJSON_Delete(def);
    return rc;
}

static cJSON *data_copy(const cJSON *data)
{
    return cJSON_Duplicate(data, 1);
}

int automation_trigger(void *engine, struct store_txn *t, const cJSON *data, const char *name,
                       int64_t event_id, int64_t received_ms)
{
    return automation_trigger_event(engine, t, data, false, data_copy, name, event_id,
                                    received_ms);
}

/* userId and messageId are Segment fields: the same in the event and in its run data */
/* load_defs: defcache_load_fn: name's links, each with the latest committed definition
 * of its automation (a plain read, no lock: the run keeps the version it read, and an
 * events job that starts runs for several automations must not lock their definitions
 * in event order (two such jobs would deadlock on a shared store; see ingest.c)). */
static int load_defs(void *store, const char *name, struct defset *out)
{
    cJSON *links = NULL, *l;
    int rc = automation_links(store, str_c(name), true, &links);
    cJSON_ArrayForEach(l, links)
    {
        const char *aid = json_str(l, "automation_id");
        cJSON *def = NULL;
        if (rc < 0)
            break;
        if (!aid)
            continue;
        rc = doc_load(NULL, store, C_AUTOMATIONS, str_c(aid), &def);
        if (rc == HR_NOTFOUND)
            rc = HR_OK; /* deleted: a NULL definition, skipped */
        if (rc == HR_OK)
            defset_add(out, aid, def);
        else
            cJSON_Delete(def);
    }
    cJSON_Delete(links);
    return rc;
}

int automation_trigger_event(void *engine, struct store_txn *t, const cJSON *data,
                             bool stored, cJSON *(*data_new)(const cJSON *event),
                             const char *name, int64_t event_id, int64_t received_ms)
{
    struct engine *e = engine;
    struct defset *ds = NULL;
    cJSON *ctx = NULL, *src = NULL;
    const char *uid = json_str(data, "userId");
    int rc = defcache_get(e->defs, name, hclock_now(e->clock), load_defs, store_txn_store(t),
                          &ds);
    if (rc < 0 || ds->n == 0)
        goto out;
    ctx = cJSON_CreateObject();
    /* the runs only read ctx's data while this call lasts, and data outlives it: a view
     * of it, when it derives the same as data_new, spares the deep copy */
    cJSON_AddItemToObject(ctx, "data", e->event_data_view && data_new == e->event_data
                                           ? e->event_data_view(data)
                                           : data_new(data));
    cJSON_AddItemToObject(ctx, "recipient", uid ? cJSON_CreateString(uid) : cJSON_CreateNull());
    src = cJSON_CreateObject();
    cJSON_AddStringToObject(src, "event", name);
    cJSON_AddNumberToObject(src, "event_id", (double)event_id);
    if (json_str(data, "messageId"))
        cJSON_AddStringToObject(src, "messageId", json_str(data, "messageId"));
    for (size_t i = 0; i < ds->n; i++) {
        const char *aid = ds->ids[i];
        char seed[512], run_id[ID_LEN + 1];
        int64_t v = 0;
        if (!ds->defs[i])
            continue; /* the automation was deleted */
        /* once per event: the run id is a function of (event, automation), and sorts by
         * the event's arrival */
        snprintf(seed, sizeof seed, "event:%lld:%s", (long long)event_id, aid);
        id_derive(seed, received_ms, run_id);
        json_i64(ds->defs[i], "version", &v);
        /* its data is e->event_data of the stored event (main: the same function as
         * data_new): runs and messages refer to it instead of holding copies */
        rc = automation_start(e, t, ds->defs[i], aid, v, ctx, run_id, src,
                              stored && e->event_data == data_new ? event_id : 0);
        if (rc == HR_CONFLICT)
            rc = HR_OK; /* already started */
        if (rc < 0)
            break;
        LOG_I("automation.triggered", "automation=%s run=%s event=%lld", aid, run_id,
              (long long)event_id);
    }
out:
    defset_unref(ds);
    cJSON_Delete(ctx);
    cJSON_Delete(src);
    return rc;
}

/* ---- steps ------------------------------------------------------------------------------ */

struct step_out {
    char run_id[ID_LEN + 8];
    int64_t step;
    int64_t started;
    const char *status;  /* "done", "skipped", "failed" */
    char error[512];
    cJSON *outcome;      /* saved in the run's results and refs.<ref> */
    cJSON *data;         /* replaces context.data when set */
    cJSON *profile;      /* replaces context.profile when set */
    int64_t next_at;     /* the next step's run_at (delay) */
    cJSON *send;         /* send: the message to enqueue */
    int64_t data_event;  /* send: its data is the run's, which is this event's (run.data_event) */
    char msg_id[ID_LEN + 1];
    char *profile_id;    /* update-profile */
    cJSON *profile_set;
    const char *merge;
    cJSON *cancel_runs;  /* cancel: run ids */
    cJSON *cancel_msgs;  /* cancel: message ids */
    char *invoke_id;     /* invoke: automation id */
    cJSON *invoke_ctx;
    char invoke_run[ID_LEN + 1];
    int64_t invoke_depth; /* the new run's depth (this run's + 1) */
    char invoke_root[ID_LEN + 8]; /* the run at the top of this run's invoke tree */
    struct engine *e;
};

static void step_out_free(void *p)
{
    struct step_out *o = p;
    cJSON_Delete(o->outcome);
    cJSON_Delete(o->data);
    cJSON_Delete(o->profile);
    cJSON_Delete(o->send);
    cJSON_Delete(o->profile_set);
    cJSON_Delete(o->cancel_runs);
    cJSON_Delete(o->cancel_msgs);
    cJSON_Delete(o->invoke_ctx);
    free(o->profile_id);
    free(o->invoke_id);
}

/* merge: target combined with src by Courier's merge strategy (new object). */
static cJSON *merge(const cJSON *target, const cJSON *src, const char *strategy)
{
    bool empty = !cJSON_IsObject(target) || !target->child;
    cJSON *out;
    if (!cJSON_IsObject(src))
        return target ? cJSON_Duplicate(target, 1) : cJSON_CreateObject();
    if (!strategy || !strcmp(strategy, "replace"))
        return cJSON_Duplicate(src, 1);
    if (!strcmp(strategy, "none"))
        return cJSON_Duplicate(empty ? src : target, 1);
    out = cJSON_IsObject(target) ? cJSON_Duplicate(target, 1) : cJSON_CreateObject();
    if (!strcmp(strategy, "overwrite")) {
        jp_merge(out, src, false);
    } else { /* soft-merge: only keys not there yet */
        const cJSON *it;
        cJSON_ArrayForEach(it, src) if (!json_member(out, it->string))
            cJSON_AddItemToObject(out, it->string, cJSON_Duplicate(it, 1));
    }
    return out;
}

/* describe: a short, safe description of a resolved value for a step's error. */
static void describe(const cJSON *v, char *out, size_t cap)
{
    size_t n;
    if (!v || cJSON_IsNull(v)) {
        snprintf(out, cap, "nothing (null or missing)");
        return;
    }
    if (!cJSON_IsString(v)) {
        snprintf(out, cap, "%s", cJSON_IsNumber(v)   ? "a number"
                                 : cJSON_IsBool(v)   ? "a boolean"
                                 : cJSON_IsArray(v)  ? "an array"
                                                     : "an object");
        return;
    }
    snprintf(out, cap, "\"");
    n = strlen(out);
    for (const char *p = v->valuestring; *p && n + 6 < cap; p++) /* printable ASCII only */
        out[n++] = (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') ? *p : '?';
    snprintf(out + n, cap - n, "\"");
}

/* fail: mark the step failed with a message; true (a failed step is finished, not retried). */
static bool fail(struct step_out *o, const char *fmt, const char *detail)
{
    o->status = "failed";
    snprintf(o->error, sizeof o->error, fmt, detail ? detail : "");
    return true;
}

/* step_send: validate msg (owned: kept as o->send, or freed on failure) for a send step
 * (`what` names it in a failure), derive its id from the run and step, and record the
 * outcome {status: ENQUEUED, <id_field>: id}. Always true (nothing to retry). */
static bool step_send(struct step_out *o, cJSON *msg, const char *what, const char *id_field)
{
    struct herr err;
    char seed[128];
    herr_clear(&err);
    if (engine_send_validate(msg, &err) < 0) {
        char why[320];
        snprintf(why, sizeof why, "%s: %s", what, err.msg);
        cJSON_Delete(msg);
        fail(o, "%s", why);
        return true;
    }
    snprintf(seed, sizeof seed, "run:%s:%lld", o->run_id, (long long)o->step);
    id_derive(seed, id_time_ms(o->run_id), o->msg_id);
    o->send = msg;
    o->outcome = cJSON_CreateObject();
    cJSON_AddStringToObject(o->outcome, "status", "ENQUEUED");
    cJSON_AddStringToObject(o->outcome, id_field, o->msg_id);
    return true;
}

static bool exec_send(struct step_out *o, const cJSON *st, const cJSON *ctx, const cJSON *run,
                     struct job_result *r)
{
    cJSON *msg, *to;
    const cJSON *m = json_obj(st, "message"), *prof, *it;
    const char *recipient = json_str(st, "recipient");
    if (!recipient)
        recipient = json_str(ctx, "recipient");
    if (m) {
        msg = cJSON_Duplicate(m, 1);
        if (!json_member(msg, "to")) {
            if (!recipient) {
                cJSON_Delete(msg);
                fail(o, "send: the message has no `to` and the run no recipient%s", NULL);
                return true;
            }
            to = cJSON_AddObjectToObject(msg, "to");
            cJSON_AddStringToObject(to, "user_id", recipient);
        }
    } else {
        if (!recipient) {
            fail(o, "send: no recipient (set `recipient`, e.g. \"refs.data.userId\")%s", NULL);
            return true;
        }
        msg = cJSON_CreateObject();
        to = cJSON_AddObjectToObject(msg, "to");
        cJSON_AddStringToObject(to, "user_id", recipient);
        prof = json_obj(st, "profile");
        cJSON_ArrayForEach(it, prof) if (!cJSON_IsNull(it) && strcmp(it->string, "user_id"))
            cJSON_AddItemToObject(to, it->string, cJSON_Duplicate(it, 1));
        cJSON_AddStringToObject(msg, "template", json_str(st, "template"));
        if (json_obj(st, "data"))
            cJSON_AddItemToObject(msg, "data", cJSON_Duplicate(json_obj(st, "data"), 1));
        if (json_str(st, "brand"))
            cJSON_AddStringToObject(msg, "brand_id", json_str(st, "brand"));
        if (json_obj(st, "override"))
            cJSON_AddItemToObject(msg, "providers", cJSON_Duplicate(json_obj(st, "override"), 1));
    }
    /* the run's profile (from invoke, get-profile) fills what the step did not set */
    to = json_obj(msg, "to");
    if (to && cJSON_IsObject(json_obj(ctx, "profile")))
        cJSON_ArrayForEach(it, json_obj(ctx, "profile")) if (
            !cJSON_IsNull(it) && !json_member(to, it->string))
            cJSON_AddItemToObject(to, it->string, cJSON_Duplicate(it, 1));
    /* by default the whole run data goes to the template, the step's own data on top.
     * With none of its own, a run's event data stays a reference (engine_spec_data) */
    if (!json_member(msg, "data"))
        json_i64(run, SPEC_DATA_EVENT, &o->data_event);
    /* such a message is stored with the event's id instead of data (send__enqueue_one):
     * no copy of the run data to drop there. A list's fan-out keeps the data it is given */
    if (send__data_by_ref(o->e, o->data_event) && !engine_fanout_target(msg))
        return step_send(o, msg, "send", "messageId");
    {
        cJSON *d = merge(json_obj(ctx, "data"), json_obj(msg, "data"), "overwrite");
        if (json_member(msg, "data"))
            cJSON_ReplaceItemInObjectCaseSensitive(msg, "data", d);
        else
            cJSON_AddItemToObject(msg, "data", d);
    }
    return step_send(o, msg, "send", "messageId");
}

/* send-list: Courier's step {list, template?, brand?, data?, override?} (template and brand
 * default to the run's): a send to every member of the list (or list pattern), streamed
 * by the fan-out (fanout.h). */
static int check_send_list(const cJSON *st, int i, struct herr *err)
{
    if (!json_member(st, "list"))
        return herr_set(err, HR_INVAL, "steps[%d]: send-list needs list", i);
    return HR_OK;
}

static bool exec_send_list(struct step_out *o, const cJSON *st, const cJSON *ctx,
                           const cJSON *run, struct job_result *r)
{
    const char *list = json_str(st, "list");
    const char *tmpl = json_str(st, "template") ? json_str(st, "template")
                                                : json_str(ctx, "template");
    const char *brand = json_str(st, "brand") ? json_str(st, "brand") : json_str(ctx, "brand");
    cJSON *msg = cJSON_CreateObject(), *to = cJSON_AddObjectToObject(msg, "to");
    if (!list || !tmpl) {
        cJSON_Delete(msg);
        fail(o, "send-list: %s", !list ? "list must be a list id or pattern"
                                       : "no template (set the step's or the run's template)");
        return true;
    }
    cJSON_AddStringToObject(to, store_list_is_pattern(str_c(list)) ? "list_pattern" : "list_id",
                            list);
    cJSON_AddStringToObject(msg, "template", tmpl);
    cJSON_AddItemToObject(msg, "data", merge(json_obj(ctx, "data"), json_obj(st, "data"),
                                             "overwrite"));
    if (brand)
        cJSON_AddStringToObject(msg, "brand_id", brand);
    if (json_obj(st, "override"))
        cJSON_AddItemToObject(msg, "providers", cJSON_Duplicate(json_obj(st, "override"), 1));
    return step_send(o, msg, "send-list", "requestId");
}

static bool exec_delay(struct step_out *o, const cJSON *st, const cJSON *ctx, const cJSON *run,
                      struct job_result *r)
{
    const cJSON *d = json_member(st, "duration");
    const char *until = json_str(st, "until");
    int64_t ms = 0, at = 0, now = o->started;
    if (cJSON_IsNumber(d))
        ms = (int64_t)d->valuedouble;
    else if (cJSON_IsString(d) && automation_parse_duration(d->valuestring, &ms) < 0)
        return fail(o, "delay: cannot read duration \"%.200s\"", d->valuestring);
    if (until && until_ms(until, &at) < 0)
        return fail(o, "delay: cannot read until \"%.200s\"", until);
    o->next_at = at > now + ms ? at : now + ms;
    o->outcome = cJSON_CreateObject();
    cJSON_AddNumberToObject(o->outcome, "until", (double)o->next_at);
    return true;
}

static bool exec_cancel(struct step_out *o, const cJSON *st, const cJSON *ctx, const cJSON *run,
                       struct job_result *r)
{
    const char *tok = json_str(st, "cancelation_token");
    struct arena *a = arena_new(8192);
    struct doc_rec *docs = NULL;
    size_t n = 0;
    char *prefix;
    struct engine *e = o->e;
    if (!tok || !tok[0]) {
        arena_free(a);
        return fail(o, "cancel: the cancelation_token resolved to nothing%s", NULL);
    }
    prefix = pair_prefix(tok);
    o->cancel_runs = cJSON_CreateArray();
    o->cancel_msgs = cJSON_CreateArray();
    if (store_doc_list(e->store, C_TOKENS, str_c(prefix), STR_NULL, 1000, a, &docs, &n) == HR_OK)
        for (size_t i = 0; i < n; i++) {
            cJSON *k = cJSON_ParseWithLength(docs[i].id.p, docs[i].id.len);
            const char *rid = cJSON_IsArray(k) ? cJSON_GetArrayItem(k, 1)->valuestring : NULL;
            if (rid && strcmp(rid, o->run_id)) {
                struct message_filter f = {.run_id = str_c(rid), .limit = 1000};
                struct message_rec *ms = NULL;
                size_t nm = 0;
                cJSON_AddItemToArray(o->cancel_runs, cJSON_CreateString(rid));
                if (store_message_list(e->store, &f, a, &ms, &nm) == HR_OK)
                    for (size_t j = 0; j < nm; j++)
                        if (!send__is_final(ms[j].status))
                            cJSON_AddItemToArray(o->cancel_msgs, cJSON_CreateString(ms[j].id.p));
            }
            cJSON_Delete(k);
        }
    free(prefix);
    arena_free(a);
    o->outcome = cJSON_CreateObject();
    cJSON_AddStringToObject(o->outcome, "cancelation_token", tok);
    return true;
}

/* exec_fetch_data: returns false when the job should be retried (transient failure). */
static bool exec_fetch_data(struct step_out *o, const cJSON *st, const cJSON *ctx, const cJSON *run,
                           struct job_result *r)
{
    const cJSON *w = json_obj(st, "webhook"), *it;
    const char *url = json_str(w, "url"), *method = json_str(w, "method");
    struct http_client_req req;
    struct http_client_resp resp;
    struct curl_slist *hdrs = NULL;
    struct buf full;
    char *body = NULL;
    cJSON *json = NULL;
    bool ok = true;
    int rc;

    memset(&req, 0, sizeof req);
    buf_init(&full, 8192);
    if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
        fail(o, "fetch-data: webhook.url must be an http(s) URL%s", NULL);
        goto out;
    }

    if (buf_append_c(&full, url) < 0)
        goto toolong;
    if (json_obj(w, "params")) {
        char sep = strchr(url, '?') ? '&' : '?';
        cJSON_ArrayForEach(it, json_obj(w, "params"))
        {
            char *k = curl_easy_escape(NULL, it->string, 0);
            char *v = curl_easy_escape(NULL, cJSON_IsString(it) ? it->valuestring : "", 0);
            rc = buf_printf(&full, "%c%s=%s", sep, k ? k : "", v ? v : "");
            curl_free(k);
            curl_free(v);
            sep = '&';
            if (rc < 0)
                goto toolong;
        }
    }
    cJSON_ArrayForEach(it, json_obj(w, "headers")) if (cJSON_IsString(it) &&
                                                      !strpbrk(it->valuestring, "\r\n") &&
                                                      !strpbrk(it->string, "\r\n:"))
        http_client_header_add(&hdrs, "%s: %s", it->string, it->valuestring);
    req.method = method ? method : "GET";
    req.url = buf_cstr(&full);
    if (json_member(w, "body")) {
        body = json_print(json_member(w, "body"));
        req.body = str_c(body);
        req.content_type = "application/json";
    }
    req.headers = hdrs;
    req.timeout_ms = FETCH_TIMEOUT_MS;
    req.guard = "fetch-data";
    http_client_resp_init(&resp);
    rc = http_client_perform(&req, &resp);
    if (rc == HR_PERM || rc == HR_INVAL) {
        /* refused by the egress guard (or unusable): the same next time, no retry */
        char why[CURL_ERROR_SIZE + 16];
        snprintf(why, sizeof why, "%s%s", rc == HR_PERM ? "" : ": ", resp.error);
        fail(o, rc == HR_PERM ? "fetch-data %s" : "fetch-data%s", why);
    } else if (rc < 0 || resp.status == 429 || resp.status >= 500) {
        char shown[200];
        r->outcome = JOB_OUT_RETRY;
        r->retry_at_ms = resp.retry_after_ms > 0 ? hclock_now(o->e->clock) + resp.retry_after_ms : 0;
        /* the URL without credentials or query (either may hold a secret) */
        http_client_url_redacted(url, shown, sizeof shown);
        snprintf(r->error, sizeof r->error, "fetch-data %.200s: %.256s", shown,
                 rc < 0 ? resp.error : "server error");
        ok = false;
    } else if (resp.status >= 300) {
        char st_txt[16];
        snprintf(st_txt, sizeof st_txt, "%d", resp.status);
        fail(o, "fetch-data: the server answered %s", st_txt);
    } else if (resp.truncated) {
        fail(o, "fetch-data: the response is larger than 64 KB%s", NULL);
    } else {
        json = http_client_resp_json(&resp);
        if (resp.body.len && !cJSON_IsObject(json)) {
            fail(o, "fetch-data: the response is not a JSON object%s", NULL);
        } else {
            const char *strategy = json_str(st, "merge_strategy");
            o->data = merge(json_obj(ctx, "data"), json ? json : cJSON_CreateObject(),
                            strategy ? strategy : "replace");
            o->outcome = cJSON_CreateObject();
            cJSON_AddNumberToObject(o->outcome, "status", resp.status);
            if (json)
                cJSON_AddItemToObject(o->outcome, "body", cJSON_Duplicate(json, 1));
        }
    }
    http_client_resp_cleanup(&resp);
    goto out;
toolong:
    fail(o, "fetch-data: the URL is too long%s", NULL);
out:
    cJSON_Delete(json);
    curl_slist_free_all(hdrs);
    free(body);
    buf_cleanup(&full);
    return ok;
}

static bool exec_get_profile(struct step_out *o, const cJSON *st, const cJSON *ctx, const cJSON *run,
                            struct job_result *r)
{
    const char *uid = json_str(st, "user_id");
    const char *strategy = json_str(st, "merge_strategy");
    cJSON *p = NULL;
    if (!uid)
        uid = json_str(ctx, "recipient");
    if (!uid)
        return fail(o, "get-profile: no user_id%s", NULL);
    if (doc_load(NULL, o->e->store, "profiles", str_c(uid), &p) == HR_NOTFOUND)
        p = cJSON_CreateObject();
    if (!p)
        return fail(o, "get-profile: cannot read the profile%s", NULL);
    o->profile = merge(json_obj(ctx, "profile"), p, strategy ? strategy : "soft-merge");
    o->outcome = p;
    return true;
}

static bool exec_update_profile(struct step_out *o, const cJSON *st, const cJSON *ctx,
                                const cJSON *run, struct job_result *r)
{
    const char *uid = json_str(st, "recipient_id");
    const char *m = json_str(st, "merge") ? json_str(st, "merge") : json_str(st, "merge_strategy");
    if (!uid)
        uid = json_str(ctx, "recipient");
    if (!uid || !json_obj(st, "profile"))
        return fail(o, "update-profile: needs recipient_id (or a run recipient) and a profile "
                       "object%s",
                    NULL);
    o->profile_id = strdup(uid);
    o->profile_set = cJSON_Duplicate(json_obj(st, "profile"), 1);
    o->merge = m && !strcmp(m, "replace")      ? "replace"
               : m && !strcmp(m, "soft-merge") ? "soft-merge"
               : m && !strcmp(m, "none")       ? "none"
                                               : "overwrite";
    return true;
}

static bool exec_invoke(struct step_out *o, const cJSON *st, const cJSON *ctx, const cJSON *run,
                        struct job_result *r)
{
    const cJSON *c = json_obj(st, "context"), *src = json_obj(run, "source");
    const char *target = json_str(st, "template"), *root = json_str(src, "root");
    int64_t depth = 0;
    char seed[128];
    json_i64(src, "depth", &depth);
    if (depth >= AUTOMATION_MAX_DEPTH) {
        char why[96];
        snprintf(why, sizeof why, "%d", AUTOMATION_MAX_DEPTH);
        return fail(o, "invoke: depth limit reached: %s nested invokes (does an automation "
                       "invoke itself, directly or through others?)",
                    why);
    }
    o->invoke_depth = depth + 1;
    snprintf(o->invoke_root, sizeof o->invoke_root, "%s", root ? root : o->run_id);
    o->invoke_id = xstrdup(target);
    o->invoke_ctx = c ? cJSON_Duplicate(c, 1) : cJSON_Duplicate(ctx, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(o->invoke_ctx, "refs");
    snprintf(seed, sizeof seed, "invoke:%s:%lld", o->run_id, (long long)o->step);
    id_derive(seed, id_time_ms(o->run_id), o->invoke_run);
    o->outcome = cJSON_CreateObject();
    cJSON_AddStringToObject(o->outcome, "runId", o->invoke_run);
    return true;
}

/* prepare_invoke: the resolved template must be an automation id. */
static int prepare_invoke(const cJSON *st, struct herr *err)
{
    const char *target = json_str(st, "template");
    char got[96];
    if (!target || !automation_id_ok(str_c(target))) {
        describe(json_member(st, "template"), got, sizeof got);
        return herr_set(err, HR_INVAL, "invoke: template must resolve to an automation id, got %s",
                        got);
    }
    return HR_OK;
}

/* prepare_fetch_data: the resolved webhook.url is a clean http(s) URL, the method known. */
static int prepare_fetch_data(const cJSON *st, struct herr *err)
{
    const cJSON *w = json_obj(st, "webhook"), *mv = json_member(w, "method");
    const char *url = json_str(w, "url");
    char got[96];
    if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
        return herr_set(err, HR_INVAL, "fetch-data: webhook.url must be an http(s) URL");
    if (!url_clean(url))
        return herr_set(err, HR_INVAL, "fetch-data: webhook.url holds a space or control character");
    if (mv && !cJSON_IsNull(mv) && !method_ok(json_str(w, "method"))) {
        describe(mv, got, sizeof got);
        return herr_set(err, HR_INVAL,
                        "fetch-data: webhook.method must be GET, POST, PUT, PATCH or DELETE, got %s",
                        got);
    }
    return HR_OK;
}

int automation_step_prepare(const cJSON *raw, const cJSON *ctx, cJSON **out, bool *skipped,
                            struct herr *err)
{
    const char *action = json_str(raw, "action"), *cond = json_str(raw, "if");
    const struct step_type *t;
    cJSON *copy, *st = NULL;
    int rc;
    *out = NULL;
    *skipped = false;
    if (cond) {
        struct expr *x = NULL;
        struct herr e2;
        herr_clear(&e2);
        if (expr_compile(cond, strlen(cond), &x, &e2) < 0)
            return herr_set(err, HR_INVAL, "if: %s", e2.msg);
        *skipped = !expr_truthy(x, ctx);
        expr_unref(x);
        if (*skipped)
            return HR_OK;
    }
    /* resolve accessors everywhere except the condition (already evaluated) */
    copy = cJSON_Duplicate(raw, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "if");
    rc = refs_resolve(copy, ctx, &st, err);
    cJSON_Delete(copy);
    if (rc < 0)
        return rc;
    /* an accessor can bring in anything (missing, null, a number, CR LF): what reaches a
     * string use is checked again here, after resolution */
    t = action ? step_type_find(action) : NULL;
    if (t && t->prepare)
        rc = t->prepare(st, err);
    if (rc < 0) {
        cJSON_Delete(st);
        return rc;
    }
    *out = st;
    return HR_OK;
}

/* invoke_commit: inside t, start the run an invoke step asked for, counted against its
 * tree's budget (run_trees/<root>: how many runs the tree's invokes started). Past the
 * budget, or for a missing automation, the step fails (o->status) and rc stays HR_OK. */
static int invoke_commit(struct store_txn *t, struct step_out *o, int64_t now)
{
    cJSON *src = cJSON_CreateObject(), *tree = NULL;
    int64_t started = 0;
    int rc = doc_load(t, NULL, C_TREES, str_c(o->invoke_root), &tree);
    if (rc == HR_NOTFOUND) {
        tree = cJSON_CreateObject();
        rc = HR_OK;
    }
    if (rc < 0)
        goto out;
    json_i64(tree, "started", &started);
    if (started >= AUTOMATION_MAX_TREE_RUNS) {
        char why[160];
        snprintf(why, sizeof why, "%d runs (started by run %.40s and the runs it invoked)",
                 AUTOMATION_MAX_TREE_RUNS, o->invoke_root);
        fail(o, "invoke: fan-out limit reached: this invoke tree started %s already", why);
        goto out;
    }
    cJSON_AddStringToObject(src, "invoked_by", o->run_id);
    cJSON_AddStringToObject(src, "root", o->invoke_root);
    cJSON_AddNumberToObject(src, "depth", (double)o->invoke_depth);
    rc = automation_start_by_id(o->e, t, str_c(o->invoke_id), o->invoke_ctx, o->invoke_run, src);
    if (rc == HR_CONFLICT) {
        rc = HR_OK; /* started by an earlier attempt of this step */
    } else if (rc == HR_NOTFOUND) {
        rc = HR_OK;
        fail(o, "invoke: no automation %.200s", o->invoke_id);
    } else if (rc == HR_OK) {
        cJSON_DeleteItemFromObjectCaseSensitive(tree, "started");
        cJSON_AddNumberToObject(tree, "started", (double)(started + 1));
        rc = doc_save(t, C_TREES, o->invoke_root, tree, now);
    }
out:
    cJSON_Delete(src);
    cJSON_Delete(tree);
    return rc;
}

/* step_apply: inside t, the effects of step o (when done) and the run's new state, made
 * in run (the caller's, saved by the caller), with the next step's job enqueued. Returns
 * HR_OK or the store's error (then t's savepoint must be rolled back). */
static int step_apply(struct store_txn *t, struct step_out *o, cJSON *run, int64_t now)
{
    struct engine *e = o->e;
    cJSON *ctx, *res, *refs, *it;
    const cJSON *steps, *st;
    int rc = HR_OK;
    steps = json_arr(run, "steps");
    st = cJSON_GetArrayItem(steps, (int)o->step);
    ctx = run_ctx(run);

    /* the step's effects */
    if (!strcmp(o->status, "done")) {
        if (o->send) {
            cJSON *origin = cJSON_CreateObject();
            cJSON_AddStringToObject(origin, "automation", json_str(run, "automation_id"));
            cJSON_AddNumberToObject(origin, "step", (double)o->step);
            cJSON_AddStringToObject(origin, "run", o->run_id);
            rc = engine_send_enqueue_ev(e, t, o->send, o->msg_id, o->run_id, origin,
                                        o->data_event);
            cJSON_Delete(origin);
            if (rc == HR_CONFLICT)
                rc = HR_OK; /* sent by an earlier attempt of this step */
        }
        if (rc == HR_OK && o->profile_id) {
            cJSON *p = NULL, *np;
            rc = doc_load(t, NULL, "profiles", str_c(o->profile_id), &p);
            if (rc == HR_NOTFOUND)
                rc = HR_OK;
            if (rc == HR_OK) {
                np = merge(p, o->profile_set, o->merge);
                rc = doc_save(t, "profiles", o->profile_id, np, now);
                cJSON_Delete(np);
            }
            cJSON_Delete(p);
        }
        cJSON_ArrayForEach(it, o->cancel_runs)
        {
            cJSON *other = NULL;
            if (rc < 0)
                break;
            rc = doc_load(t, NULL, C_RUNS, str_c(it->valuestring), &other);
            if (rc == HR_NOTFOUND) {
                rc = HR_OK;
                continue;
            }
            if (rc == HR_OK && !run_final(other)) {
                cJSON_ReplaceItemInObjectCaseSensitive(other, "status", cJSON_CreateString("CANCELED"));
                cJSON_DeleteItemFromObjectCaseSensitive(other, "waiting_until");
                cJSON_DeleteItemFromObjectCaseSensitive(other, "updated");
                cJSON_AddNumberToObject(other, "updated", (double)now);
                cJSON_AddNumberToObject(other, "canceled", (double)now);
                rc = run_save(t, it->valuestring, other, now);
            }
            cJSON_Delete(other);
        }
        cJSON_ArrayForEach(it, o->cancel_msgs) if (rc == HR_OK)
        {
            rc = engine_message_cancel(t, str_c(it->valuestring), now);
            if (rc == HR_CONFLICT || rc == HR_NOTFOUND)
                rc = HR_OK;
        }
        if (rc == HR_OK && o->invoke_id)
            rc = invoke_commit(t, o, now);
        if (rc < 0)
            goto out;
    }

    /* the run's new state */
    if (o->data) { /* no longer the event's: stored with the run from now on */
        cJSON_DeleteItemFromObjectCaseSensitive(run, SPEC_DATA_EVENT);
        cJSON_DeleteItemFromObjectCaseSensitive(ctx, "data");
        cJSON_AddItemToObject(ctx, "data", cJSON_Duplicate(o->data, 1));
    }
    if (o->profile)
        cJSON_ReplaceItemInObjectCaseSensitive(ctx, "profile", cJSON_Duplicate(o->profile, 1));
    res = cJSON_CreateObject();
    cJSON_AddNumberToObject(res, "index", (double)o->step);
    cJSON_AddStringToObject(res, "action", json_str(st, "action") ? json_str(st, "action") : "");
    cJSON_AddStringToObject(res, "status", o->status);
    cJSON_AddNumberToObject(res, "started", (double)o->started);
    cJSON_AddNumberToObject(res, "finished", (double)now);
    if (o->outcome)
        cJSON_AddItemToObject(res, "outcome", cJSON_Duplicate(o->outcome, 1));
    if (o->error[0])
        cJSON_AddStringToObject(res, "error", o->error);
    cJSON_AddItemToArray(json_arr(run, "results"), res);
    if (json_str(st, "ref")) {
        cJSON *rv = o->outcome ? cJSON_Duplicate(o->outcome, 1) : cJSON_CreateObject();
        refs = json_obj(ctx, "refs");
        if (!refs)
            refs = cJSON_AddObjectToObject(ctx, "refs");
        if (!o->outcome) /* a step with no outcome of its own: its status */
            cJSON_AddStringToObject(rv, "status", o->status);
        cJSON_DeleteItemFromObjectCaseSensitive(refs, json_str(st, "ref"));
        cJSON_AddItemToObject(refs, json_str(st, "ref"), rv);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(run, "waiting_until");
    cJSON_DeleteItemFromObjectCaseSensitive(run, "current");
    cJSON_DeleteItemFromObjectCaseSensitive(run, "updated");
    cJSON_AddNumberToObject(run, "updated", (double)now);
    if (!strcmp(o->status, "failed")) {
        cJSON_ReplaceItemInObjectCaseSensitive(run, "status", cJSON_CreateString("FAILED"));
        cJSON_DeleteItemFromObjectCaseSensitive(run, "error");
        cJSON_AddStringToObject(run, "error", o->error);
        cJSON_AddNumberToObject(run, "current", (double)o->step);
    } else if (o->step + 1 >= cJSON_GetArraySize(steps)) {
        cJSON_ReplaceItemInObjectCaseSensitive(run, "status", cJSON_CreateString("COMPLETED"));
        cJSON_AddNumberToObject(run, "current", (double)(o->step + 1));
    } else {
        bool wait = o->next_at > now;
        cJSON_ReplaceItemInObjectCaseSensitive(run, "status",
                                               cJSON_CreateString(wait ? "WAITING" : "RUNNING"));
        cJSON_AddNumberToObject(run, "current", (double)(o->step + 1));
        if (wait)
            cJSON_AddNumberToObject(run, "waiting_until", (double)o->next_at);
        rc = enqueue_step(t, o->run_id, o->step + 1, wait ? o->next_at : 0);
    }
out:
    return rc;
}

static int step_commit(struct store_txn *t, void *arg)
{
    struct step_out *o = arg;
    cJSON *run = NULL;
    int64_t now = hclock_now(o->e->clock), cur = -1;
    int rc = doc_load(t, NULL, C_RUNS, str_c(o->run_id), &run);
    if (rc == HR_NOTFOUND) {
        rc = HR_OK;
        goto out;
    }
    if (rc < 0)
        goto out;
    json_i64(run, "current", &cur);
    if (run_final(run) || cur != o->step)
        goto out; /* canceled meanwhile, or a duplicate job */
    rc = step_apply(t, o, run, now);
    if (rc == HR_OK)
        rc = run_save(t, o->run_id, run, now);
out:
    cJSON_Delete(run);
    return rc;
}

/* step_take: step o->step of run (raw, the stored step) prepared and run into o, on the
 * calling thread; r gets a transient failure's retry. False when the step must be
 * retried (r says when and why); a step that failed is o->status "failed", true. */
static bool step_take(struct step_out *o, const cJSON *raw, const cJSON *run,
                      struct job_result *r)
{
    const cJSON *ctx = run_ctx(run);
    const char *action = json_str(raw, "action");
    const struct step_type *ty = action ? step_type_find(action) : NULL;
    cJSON *st = NULL;
    bool skipped = false, ok = true;
    struct herr err;
    int rc;

    herr_clear(&err);
    o->status = "done";
    rc = automation_step_prepare(raw, ctx, &st, &skipped, &err);
    if (rc < 0)
        fail(o, "%s", err.msg);
    else if (skipped)
        o->status = "skipped";
    else if (!action)
        fail(o, "step has no action%s", NULL);
    else if (!ty)
        fail(o, "unknown action %.64s", action);
    else
        ok = ty->run(o, st, ctx, run, r);
    if (ok && !strcmp(o->status, "failed"))
        LOG_W("automation.step_failed", "run=%s step=%lld error=\"%s\"", o->run_id,
              (long long)o->step, o->error);
    cJSON_Delete(st);
    return ok;
}

/* step_first: inside t, a new run's first step when its type is pure (step_type.pure):
 * taken and applied at once, in run (the caller saves it), instead of a job of its own:
 * the common automation (a send, or a delay) costs no step job, run reload or second
 * run write. *taken says whether it was (if not, the caller enqueues step 0). Returns
 * HR_OK or the store's error. */
static int step_first(struct engine *e, struct store_txn *t, cJSON *run, const char *run_id,
                      int64_t now, bool *taken)
{
    const cJSON *raw = cJSON_GetArrayItem(json_arr(run, "steps"), 0);
    const char *action = json_str(raw, "action");
    const struct step_type *ty = action ? step_type_find(action) : NULL;
    struct step_out o;
    struct job_result r;
    int rc = HR_OK;

    *taken = false;
    if (!ty || !ty->pure)
        return HR_OK;
    memset(&o, 0, sizeof o);
    memset(&r, 0, sizeof r);
    o.e = e;
    snprintf(o.run_id, sizeof o.run_id, "%s", run_id);
    o.step = 0;
    o.started = now;
    if (step_take(&o, raw, run, &r)) {
        rc = step_apply(t, &o, run, now);
        *taken = rc == HR_OK;
    }
    step_out_free(&o);
    return rc;
}

void automation_step_run(void *vctx, const struct job *j, struct arena *a, struct job_result *r)
{
    struct engine *e = vctx;
    cJSON *p = cJSON_ParseWithLength(j->payload.p, j->payload.len), *run = NULL;
    const char *rid = json_str(p, "run");
    struct step_out *o = arena_zalloc(a, sizeof *o);
    int64_t step = -1, cur = -1;
    int rc;

    arena_defer(a, step_out_free, o);
    r->outcome = JOB_OUT_DONE;
    if (!rid || !json_i64(p, "step", &step)) {
        r->outcome = JOB_OUT_FAIL;
        snprintf(r->error, sizeof r->error, "automation step job without run or step");
        goto out;
    }
    rc = run_load(e, str_c(rid), &run);
    if (rc == HR_NOTFOUND)
        goto out;
    if (rc == HR_INVAL) { /* its event's data cannot be had: no retry brings it back */
        r->outcome = JOB_OUT_FAIL;
        snprintf(r->error, sizeof r->error, "run %s: its event's data cannot be read", rid);
        goto out;
    }
    if (rc < 0) {
        r->outcome = JOB_OUT_RETRY;
        snprintf(r->error, sizeof r->error, "cannot load run: %s", hr_rc_str(rc));
        goto out;
    }
    json_i64(run, "current", &cur);
    if (run_final(run) || cur != step)
        goto out; /* canceled, finished, or a duplicate job */
    o->e = e;
    snprintf(o->run_id, sizeof o->run_id, "%s", rid);
    o->step = step;
    o->started = hclock_now(e->clock);
    if (!step_take(o, cJSON_GetArrayItem(json_arr(run, "steps"), (int)step), run, r)) {
        r->commit = NULL;
        goto out; /* transient: the queue retries this step */
    }
    r->commit = step_commit;
    r->commit_arg = o;
out:
    cJSON_Delete(p);
    cJSON_Delete(run);
}

/* ---- the step types ----------------------------------------------------------------- */

/* step_types: every step an automation can hold; adding a step type is one entry here
 * (and its check/prepare/exec functions above). The order is the one error messages list. */
static const struct step_type step_types[] = {
    {"send", check_send, NULL, exec_send, false, true},
    {"send-list", check_send_list, NULL, exec_send_list, false, true},
    {"delay", check_delay, NULL, exec_delay, false, true},
    {"cancel", check_cancel, NULL, exec_cancel, false, false},
    {"fetch-data", check_fetch_data, prepare_fetch_data, exec_fetch_data, false, false},
    {"update-profile", check_update_profile, NULL, exec_update_profile, false, false},
    {"get-profile", check_get_profile, NULL, exec_get_profile, false, false},
    {"invoke", check_invoke, prepare_invoke, exec_invoke, true, false},
};
#define N_STEP_TYPES (sizeof step_types / sizeof step_types[0])

static const struct step_type *step_type_find(const char *action)
{
    for (size_t k = 0; k < N_STEP_TYPES; k++)
        if (!strcmp(action, step_types[k].action))
            return &step_types[k];
    return NULL;
}

/* step_type_names: writes "send, delay, ..., invoke" (for error messages) into out; out. */
static const char *step_type_names(char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t k = 0; k < N_STEP_TYPES && n < cap; k++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", k ? ", " : "", step_types[k].action);
    return out;
}
