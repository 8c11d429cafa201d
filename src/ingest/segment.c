/* segment.c: Segment tracking-API bodies -> validated, normalised events (segment.h). */
#include "segment.h"

#include "../util/clock.h"
#include "../util/id.h"
#include "../util/json.h"
#include "../util/xalloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KB 1024
#define MB (1024 * 1024)

static const char *const kind_names[] = {
    [SEG_BATCH] = "batch",   [SEG_TRACK] = "track", [SEG_IDENTIFY] = "identify",
    [SEG_PAGE] = "page",     [SEG_SCREEN] = "screen", [SEG_GROUP] = "group",
    [SEG_ALIAS] = "alias",   [SEG_METRICS] = "metrics",
};

/* Top-level keys this module reads or writes; later duplicates of them are dropped. */
static const char *const managed_keys[] = {
    "type",       "userId",      "anonymousId", "groupId",   "previousId",
    "event",      "messageId",   "properties",  "traits",    "context",
    "integrations", "timestamp", "originalTimestamp", "sentAt", "receivedAt",
    "writeKey",   "name",
};
#define N_MANAGED (sizeof managed_keys / sizeof managed_keys[0])

/* Segment's own field names: never overwritten by properties in run data. */
static const char *const segment_fields[] = {
    "type",         "event",      "userId",     "anonymousId", "messageId",
    "timestamp",    "context",    "properties", "traits",      "integrations",
    "receivedAt",   "sentAt",     "originalTimestamp", "channel", "version",
    "groupId",      "previousId", "name",       "category",
};

struct ctx {
    const struct seg_limits *lim;
    int64_t recv_ms;
    char recv_iso[32];
    const cJSON *batch_context;      /* object or NULL */
    const cJSON *batch_integrations; /* object or NULL */
    const cJSON *batch_sent_at;      /* any non-null value or NULL */
    bool courier;                    /* Courier track API rules */
    size_t printed;                  /* serialized bytes so far, against expand_max */
    struct seg_result *res;
    size_t rej_cap;
};

/* ------------------------------------------------------------------ limits, kinds */

void seg_limits_default(struct seg_limits *l)
{
    l->request_max = 500 * KB;
    l->event_max = 32 * KB;
    l->batch_max = 2500;
    l->message_id_max = 99;
    l->expand_max = 8 * MB;
    l->depth_max = JSON_MAX_DEPTH_DEFAULT;
}

void seg_limits_destination(struct seg_limits *l)
{
    seg_limits_default(l);
    l->request_max = 4 * MB;
    l->batch_max = 4000;
    l->expand_max = 16 * MB;
}

const char *seg_kind_name(enum seg_kind k)
{
    if ((unsigned)k < sizeof kind_names / sizeof kind_names[0] && kind_names[k])
        return kind_names[k];
    return "unknown";
}

int seg_kind_from_path(struct str s, enum seg_kind *out)
{
    static const struct {
        const char *name;
        enum seg_kind kind;
    } map[] = {
        {"batch", SEG_BATCH},     {"b", SEG_BATCH},     {"import", SEG_BATCH},
        {"track", SEG_TRACK},     {"t", SEG_TRACK},     {"identify", SEG_IDENTIFY},
        {"i", SEG_IDENTIFY},      {"page", SEG_PAGE},   {"p", SEG_PAGE},
        {"screen", SEG_SCREEN},   {"s", SEG_SCREEN},    {"group", SEG_GROUP},
        {"g", SEG_GROUP},         {"alias", SEG_ALIAS}, {"a", SEG_ALIAS},
        {"m", SEG_METRICS},
    };
    if (s.len > 1 && s.p[s.len - 1] == '/')
        s.len--;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (str_eq_c(s, map[i].name)) {
            *out = map[i].kind;
            return HR_OK;
        }
    }
    return HR_NOTFOUND;
}

/* type_from_name: the event type named by s, or SEG_BATCH when s names none. */
static enum seg_kind type_from_name(const char *s)
{
    for (int k = SEG_TRACK; k <= SEG_ALIAS; k++)
        if (strcmp(s, kind_names[k]) == 0)
            return (enum seg_kind)k;
    return SEG_BATCH;
}

/* ------------------------------------------------------------------ cJSON helpers */

/* cJSON allocates with plain malloc unless hooks are set; treat NULL like xmalloc does. */
static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "herald: out of memory in cJSON\n");
        abort();
    }
    return p;
}

/* get: the first member named key, NULL when absent or JSON null. */
static cJSON *get(const cJSON *obj, const char *key)
{
    cJSON *v = json_member(obj, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

/* set: replace the first member named key with v (taking v), or append it. */
static void set(cJSON *obj, const char *key, cJSON *v)
{
    cJSON *old = json_member(obj, key);
    must(v);
    if (old == v)
        return; /* already obj's member under key: replacing it would free it */
    if (old) {
        /* ReplaceItemViaPointer keeps the new item's own key: give it old's, which it
         * then owns (old is deleted with the key it had) */
        if (v->string && !(v->type & cJSON_StringIsConst))
            cJSON_free(v->string); /* a duplicate's copy of its source's key */
        v->string = old->string;
        v->type = (v->type & ~cJSON_StringIsConst) | (old->type & cJSON_StringIsConst);
        old->string = NULL;
        if (!cJSON_ReplaceItemViaPointer(obj, old, v))
            must(NULL);
    } else if (!cJSON_AddItemToObject(obj, key, v)) {
        must(NULL);
    }
}

static void set_str(cJSON *obj, const char *key, const char *s)
{
    set(obj, key, cJSON_CreateString(s));
}

static void drop(cJSON *obj, const char *key)
{
    cJSON *v = json_member(obj, key);
    if (v)
        cJSON_Delete(cJSON_DetachItemViaPointer(obj, v));
}

static const char *nonempty_str(const cJSON *obj, const char *key)
{
    const cJSON *v = json_member(obj, key);
    return (cJSON_IsString(v) && v->valuestring[0]) ? v->valuestring : NULL;
}

/* drop_duplicates: delete every later occurrence of a managed top-level key. */
static void drop_duplicates(cJSON *ev)
{
    bool seen[N_MANAGED] = {false};
    cJSON *it = ev->child;
    while (it) {
        cJSON *next = it->next;
        for (size_t k = 0; it->string && k < N_MANAGED; k++) {
            if (it->string[0] != managed_keys[k][0] || strcmp(it->string, managed_keys[k]) != 0)
                continue;
            if (seen[k])
                cJSON_Delete(cJSON_DetachItemViaPointer(ev, it));
            seen[k] = true;
            break;
        }
        it = next;
    }
}

static int fail(char *why, size_t cap, const char *fmt, ...) HR_PRINTF(3, 4);
static int fail(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return HR_INVAL;
}

/* utf8_chars: code points in a valid UTF-8 string. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* id_field: accept key as a string, null or absent; convert a finite number to its
 * decimal string (integers without exponent or fraction). */
static int id_field(cJSON *ev, const char *key, char *why, size_t cap)
{
    cJSON *v = json_member(ev, key);
    char tmp[64];
    if (!v || cJSON_IsNull(v) || cJSON_IsString(v))
        return HR_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return fail(why, cap, "%s must be a string", key);
    double d = v->valuedouble;
    if (d == floor(d) && fabs(d) < 9.0e18) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)d);
    } else {
        snprintf(tmp, sizeof tmp, "%.15g", d);
        if (strtod(tmp, NULL) != d)
            snprintf(tmp, sizeof tmp, "%.17g", d);
    }
    set_str(ev, key, tmp);
    return HR_OK;
}

/* object_field: key must be an object when present; a JSON null is dropped. */
static int object_field(cJSON *ev, const char *key, char *why, size_t cap)
{
    cJSON *v = json_member(ev, key);
    if (!v || cJSON_IsObject(v))
        return HR_OK;
    if (cJSON_IsNull(v)) {
        drop(ev, key);
        return HR_OK;
    }
    return fail(why, cap, "%s must be an object", key);
}

/* merge_into: add to ev[key] each member of from that it lacks (shallow; ev keys win). */
static void merge_into(cJSON *ev, const char *key, const cJSON *from)
{
    cJSON *to = json_member(ev, key);
    if (!from)
        return;
    if (!to) {
        set(ev, key, cJSON_Duplicate(from, 1));
        return;
    }
    for (const cJSON *it = from->child; it; it = it->next) {
        if (!it->string || json_member(to, it->string))
            continue;
        if (!cJSON_AddItemToObject(to, it->string, must(cJSON_Duplicate(it, 1))))
            must(NULL);
    }
}

/* parse_time: a timestamp as clients send it: an ISO-8601 string, leniently ("2015-2-02T..."),
 * or an epoch number, seconds or milliseconds (as Segment's new-date reads them). */
static bool parse_time(const cJSON *v, int64_t *ms)
{
    if (cJSON_IsString(v))
        return time_parse_lenient(v->valuestring, strlen(v->valuestring), ms) == 0;
    return cJSON_IsNumber(v) && time_from_epoch(v->valuedouble, ms) == 0;
}

/* fix_times: originalTimestamp, sentAt and the skew-corrected timestamp (segment.md §6).
 * originalTimestamp keeps what the client sent (the event's timestamp when it sent none);
 * timestamp is always an ISO string: receivedAt - (sentAt - originalTimestamp) when the
 * client clock parses (an unparseable sentAt counts as receivedAt), else the event's own
 * timestamp when that parses, else receivedAt. */
static void fix_times(struct ctx *c, cJSON *ev)
{
    cJSON *ts = get(ev, "timestamp");
    cJSON *ot = get(ev, "originalTimestamp");
    cJSON *sent = get(ev, "sentAt");
    int64_t o = 0, s = c->recv_ms, t = c->recv_ms;
    char iso[32];

    if (!ot) {
        ot = must(ts ? cJSON_Duplicate(ts, 1) : cJSON_CreateString(c->recv_iso));
        set(ev, "originalTimestamp", ot);
    }
    if (!sent && c->batch_sent_at) {
        sent = must(cJSON_Duplicate(c->batch_sent_at, 1));
        set(ev, "sentAt", sent);
    }
    if (parse_time(ot, &o)) {
        if (!sent || !parse_time(sent, &s))
            s = c->recv_ms;
        t = c->recv_ms - (s - o);
    } else if (!ts || !parse_time(ts, &t)) {
        t = c->recv_ms;
    }
    if (t < TIME_ISO_MIN_MS || t > TIME_ISO_MAX_MS)
        t = c->recv_ms;
    time_fmt_iso(t, iso, sizeof iso);
    set_str(ev, "timestamp", iso);
}

/* ------------------------------------------------------------------ one event */

/* normalise: validate and normalise ev in place. path_kind SEG_BATCH means "type from the
 * body". Returns 0 and fills *out (which then refers into ev; the caller hands ev to the
 * result), HR_INVAL with the reason in why, or HR_TOOBIG when the request's expand_max is
 * spent (why says so). ev stays the caller's in every case. */
static int normalise(struct ctx *c, cJSON *ev, enum seg_kind path_kind, struct seg_event *out,
                     char *why, size_t cap)
{
    static const char *const ids[] = {"userId", "anonymousId", "groupId", "previousId"};
    static const char *const objs[] = {"properties", "traits", "context", "integrations"};
    enum seg_kind type = path_kind;
    const char *mid;
    char gen[48];
    char *text = NULL;
    int rc = HR_OK;

    if (!cJSON_IsObject(ev))
        return fail(why, cap, "event is not a JSON object");
    drop_duplicates(ev);

    /* type */
    if (c->courier) {
        const char *t = json_str(ev, "type");
        if (!t || strcmp(t, "track") != 0)
            return fail(why, cap, "type must be \"track\"");
        type = SEG_TRACK;
    } else if (path_kind != SEG_BATCH) {
        set_str(ev, "type", kind_names[path_kind]);
    } else {
        const char *t = json_str(ev, "type");
        if (!t)
            return fail(why, cap, "type is missing or not a string");
        type = type_from_name(t);
        if (type == SEG_BATCH) {
            size_t n = strnlen(t, 40); /* echo at most 40 bytes, whole characters */
            while (n > 0 && ((unsigned char)t[n] & 0xc0) == 0x80)
                n--;
            return fail(why, cap, "unknown type \"%.*s\"", (int)n, t);
        }
    }

    /* identities and type-specific required fields */
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if ((rc = id_field(ev, ids[i], why, cap)) < 0)
            return rc;
    if (!c->courier && !nonempty_str(ev, "userId") && !nonempty_str(ev, "anonymousId"))
        return fail(why, cap, "userId or anonymousId is required");
    if (type == SEG_TRACK && !nonempty_str(ev, "event"))
        return fail(why, cap, "track requires a non-empty string event");
    if (type == SEG_GROUP && !nonempty_str(ev, "groupId"))
        return fail(why, cap, "group requires a non-empty groupId");
    if (type == SEG_ALIAS && !nonempty_str(ev, "previousId"))
        return fail(why, cap, "alias requires a non-empty previousId");
    if (c->courier && !get(ev, "properties"))
        return fail(why, cap, "properties is required");
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++)
        if ((rc = object_field(ev, objs[i], why, cap)) < 0)
            return rc;

    /* messageId */
    {
        cJSON *m = get(ev, "messageId");
        if (m && !cJSON_IsString(m))
            return fail(why, cap, "messageId must be a string");
        if (!m || !m->valuestring[0]) {
            if (c->courier)
                return fail(why, cap, "messageId is required");
            id_prefixed("herald-", gen, sizeof gen);
            set_str(ev, "messageId", gen);
        } else {
            size_t n = utf8_chars(m->valuestring);
            if (n > c->lim->message_id_max)
                return fail(why, cap, "messageId is %zu characters; the limit is %zu", n,
                            c->lim->message_id_max);
        }
    }

    /* batch-level fields, arrival time, timestamps */
    drop(ev, "writeKey");
    merge_into(ev, "context", c->batch_context);
    merge_into(ev, "integrations", c->batch_integrations);
    set_str(ev, "receivedAt", c->recv_iso);
    fix_times(c, ev);

    /* serialize once; the size limit applies to the stored form */
    text = json_print(ev);
    size_t len = strlen(text);
    c->printed += len;
    if (c->printed > c->lim->expand_max) {
        free(text);
        snprintf(why, cap, "normalised events exceed %zu bytes", c->lim->expand_max);
        return HR_TOOBIG;
    }
    if (len > c->lim->event_max) {
        free(text);
        return fail(why, cap, "event is %zu bytes; the limit is %zu", len, c->lim->event_max);
    }
    mid = json_str(ev, "messageId");
    *out = (struct seg_event){
        .type = type,
        .json = ev,
        .user_id = nonempty_str(ev, "userId"),
        .message_id = mid,
        .serialized = text,
        .serialized_len = len,
    };
    return HR_OK;
}

static void add_reject(struct ctx *c, size_t index, const char *why)
{
    struct seg_result *r = c->res;
    if (r->n_rejects == c->rej_cap) {
        c->rej_cap = c->rej_cap ? c->rej_cap * 2 : 8;
        r->rejects = xrealloc(r->rejects, c->rej_cap * sizeof *r->rejects);
    }
    r->rejects[r->n_rejects].index = index;
    snprintf(r->rejects[r->n_rejects].msg, SEG_REJECT_MSG, "%s", why);
    r->n_rejects++;
}

/* item: normalise ev (taking it) into the result's events or rejects. Returns 0, or
 * HR_TOOBIG (request-level; err set). */
static int item(struct ctx *c, cJSON *ev, enum seg_kind path_kind, size_t index,
                struct herr *err)
{
    char why[SEG_REJECT_MSG];
    struct seg_event *e = &c->res->events[c->res->n_events];
    int rc = normalise(c, ev, path_kind, e, why, sizeof why);
    if (rc == HR_OK) {
        e->index = index;
        c->res->n_events++;
        return HR_OK;
    }
    cJSON_Delete(ev);
    if (rc == HR_TOOBIG)
        return herr_set(err, HR_TOOBIG, "%s", why);
    add_reject(c, index, why);
    return HR_OK;
}

/* ------------------------------------------------------------------ entry points */

void seg_result_cleanup(struct seg_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_events; i++) {
        cJSON_Delete(r->events[i].json);
        free(r->events[i].serialized);
    }
    free(r->events);
    free(r->rejects);
    free(r->write_key);
    memset(r, 0, sizeof *r);
}

/* begin: common start of every entry point: zero out, limits, size cap, bounded parse. */
static int begin(struct ctx *c, const char *body, size_t len, int64_t received_at_ms,
                 const struct seg_limits *lim, struct seg_limits *dflt, struct seg_result *out,
                 cJSON **root, struct herr *err)
{
    memset(out, 0, sizeof *out);
    memset(c, 0, sizeof *c);
    *root = NULL;
    if (!lim) {
        seg_limits_default(dflt);
        lim = dflt;
    }
    c->lim = lim;
    c->res = out;
    c->recv_ms = received_at_ms;
    time_fmt_iso(received_at_ms, c->recv_iso, sizeof c->recv_iso);
    if (len > lim->request_max)
        return herr_set(err, HR_TOOBIG, "request body is %zu bytes; the limit is %zu", len,
                        lim->request_max);
    int rc = json_parse_bounded(body, len, lim->depth_max, root, err);
    /* a repeated name at any level (traits.webhook twice) must not let a check read one
     * copy while the profile merge applies the other */
    if (rc == HR_OK)
        json_drop_duplicate_members(*root);
    return rc;
}

static void take_write_key(struct seg_result *out, const cJSON *root)
{
    const char *wk = json_str(root, "writeKey");
    if (wk)
        out->write_key = xstrdup(wk);
}

/* run_array: normalise every element of arr (detaching each), typed by the body. */
static int run_array(struct ctx *c, cJSON *arr, struct herr *err)
{
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    int rc = HR_OK;
    c->res->events = xcalloc(n ? n : 1, sizeof *c->res->events);
    for (cJSON *it = arr->child; it && rc == HR_OK; i++) {
        cJSON *next = it->next;
        rc = item(c, cJSON_DetachItemViaPointer(arr, it), SEG_BATCH, i, err);
        it = next;
    }
    return rc;
}

int seg_parse(const char *body, size_t len, enum seg_kind kind, int64_t received_at_ms,
              const struct seg_limits *lim, struct seg_result *out, struct herr *err)
{
    struct ctx c;
    struct seg_limits dflt;
    cJSON *root = NULL, *batch, *ev;
    size_t n;
    int rc;

    if (kind == SEG_METRICS) {
        memset(out, 0, sizeof *out);
        return HR_OK;
    }
    if ((unsigned)kind > SEG_ALIAS) {
        memset(out, 0, sizeof *out);
        return herr_set(err, HR_INVAL, "unknown call kind %d", (int)kind);
    }
    rc = begin(&c, body, len, received_at_ms, lim, &dflt, out, &root, err);
    if (rc < 0)
        goto out;
    if (!cJSON_IsObject(root)) {
        rc = herr_set(err, HR_INVAL, "request body must be a JSON object");
        goto out;
    }
    take_write_key(out, root);

    if (kind != SEG_BATCH) {
        ev = root;
        root = NULL;
        out->events = xcalloc(1, sizeof *out->events);
        rc = item(&c, ev, kind, 0, err);
        goto out;
    }

    batch = json_member(root, "batch");
    if (!cJSON_IsArray(batch)) {
        rc = herr_set(err, HR_INVAL, "batch request needs a \"batch\" array");
        goto out;
    }
    n = (size_t)cJSON_GetArraySize(batch);
    if (n > c.lim->batch_max) {
        rc = herr_set(err, HR_INVAL, "batch has %zu events; the limit is %zu", n,
                      c.lim->batch_max);
        goto out;
    }
    c.batch_context = get(root, "context");
    c.batch_integrations = get(root, "integrations");
    c.batch_sent_at = get(root, "sentAt");
    if (c.batch_context && !cJSON_IsObject(c.batch_context)) {
        rc = herr_set(err, HR_INVAL, "batch-level context must be an object");
        goto out;
    }
    if (c.batch_integrations && !cJSON_IsObject(c.batch_integrations)) {
        rc = herr_set(err, HR_INVAL, "batch-level integrations must be an object");
        goto out;
    }
    rc = run_array(&c, batch, err);
out:
    cJSON_Delete(root);
    if (rc < 0)
        seg_result_cleanup(out);
    return rc;
}

int seg_parse_destination(const char *body, size_t len, int64_t received_at_ms,
                          const struct seg_limits *lim, struct seg_result *out,
                          struct herr *err)
{
    struct ctx c;
    struct seg_limits dflt;
    cJSON *root = NULL, *ev;
    size_t n = 0;
    int rc = begin(&c, body, len, received_at_ms, lim, &dflt, out, &root, err);
    if (rc < 0)
        goto out;
    if (cJSON_IsObject(root)) {
        ev = root;
        root = NULL;
        take_write_key(out, ev);
        out->events = xcalloc(1, sizeof *out->events);
        rc = item(&c, ev, SEG_BATCH, 0, err);
        goto out;
    }
    if (!cJSON_IsArray(root)) {
        rc = herr_set(err, HR_INVAL, "request body must be a JSON object or an array of objects");
        goto out;
    }
    for (const cJSON *it = root->child; it; it = it->next, n++) {
        if (!cJSON_IsObject(it)) {
            rc = herr_set(err, HR_INVAL, "element %zu of the array is not a JSON object", n);
            goto out;
        }
    }
    if (n > c.lim->batch_max) {
        rc = herr_set(err, HR_INVAL, "array has %zu events; the limit is %zu", n,
                      c.lim->batch_max);
        goto out;
    }
    rc = run_array(&c, root, err);
out:
    cJSON_Delete(root);
    if (rc < 0)
        seg_result_cleanup(out);
    return rc;
}

int seg_parse_courier(const char *body, size_t len, int64_t received_at_ms,
                      const struct seg_limits *lim, struct seg_result *out, struct herr *err)
{
    struct ctx c;
    struct seg_limits dflt;
    cJSON *root = NULL, *ev;
    int rc = begin(&c, body, len, received_at_ms, lim, &dflt, out, &root, err);
    if (rc < 0)
        goto out;
    if (!cJSON_IsObject(root)) {
        rc = herr_set(err, HR_INVAL, "request body must be a JSON object");
        goto out;
    }
    c.courier = true;
    out->events = xcalloc(1, sizeof *out->events);
    ev = root;
    root = NULL;
    rc = item(&c, ev, SEG_BATCH, 0, err);
    if (rc == HR_OK && out->n_rejects)
        rc = herr_set(err, HR_INVAL, "%s", out->rejects[0].msg);
out:
    cJSON_Delete(root);
    if (rc < 0)
        seg_result_cleanup(out);
    return rc;
}

/* ------------------------------------------------------------------ helpers */

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + 1 + strlen(b) + 1;
    char *s = xmalloc(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

char *seg_catalog_name(const cJSON *event)
{
    const char *t = json_str(event, "type");
    enum seg_kind k = t ? type_from_name(t) : SEG_BATCH;
    const char *name;
    switch (k) {
    case SEG_TRACK:
        name = nonempty_str(event, "event");
        return name ? join("track", name) : NULL;
    case SEG_PAGE:
    case SEG_SCREEN:
        name = nonempty_str(event, "name");
        return name ? join(kind_names[k], name) : xstrdup(kind_names[k]);
    case SEG_IDENTIFY:
    case SEG_GROUP:
    case SEG_ALIAS:
        return xstrdup(kind_names[k]);
    default:
        return NULL;
    }
}

static bool is_segment_field(const char *key)
{
    for (size_t i = 0; i < sizeof segment_fields / sizeof segment_fields[0]; i++)
        if (strcmp(key, segment_fields[i]) == 0)
            return true;
    return false;
}

cJSON *seg_run_data_take(cJSON *event)
{
    const cJSON *props;
    if (!cJSON_IsObject(event)) {
        cJSON_Delete(event);
        return must(cJSON_CreateObject());
    }
    /* "properties" is a Segment field: set never replaces the object walked here */
    props = json_obj(event, "properties");
    for (const cJSON *it = props ? props->child : NULL; it; it = it->next) {
        if (!it->string || is_segment_field(it->string))
            continue;
        set(event, it->string, cJSON_Duplicate(it, 1));
    }
    return event;
}

/* ref_of: a new reference to item (its own node, item's value not owned). */
static cJSON *ref_of(const cJSON *item)
{
    cJSON *tmp = must(cJSON_CreateArray()), *ref;
    if (!cJSON_AddItemReferenceToArray(tmp, (cJSON *)item))
        must(NULL);
    ref = cJSON_DetachItemFromArray(tmp, 0);
    cJSON_Delete(tmp);
    return ref;
}

cJSON *seg_run_data_view(const cJSON *event)
{
    cJSON *data = must(cJSON_CreateObject());
    const cJSON *props, *it;
    if (!cJSON_IsObject(event))
        return data;
    for (it = event->child; it; it = it->next)
        if (it->string && !cJSON_AddItemReferenceToObject(data, it->string, (cJSON *)it))
            must(NULL);
    props = json_obj(event, "properties");
    for (it = props ? props->child : NULL; it; it = it->next) {
        if (!it->string || is_segment_field(it->string))
            continue;
        set(data, it->string, ref_of(it));
    }
    return data;
}

cJSON *seg_run_data_new(const cJSON *event)
{
    if (!cJSON_IsObject(event))
        return must(cJSON_CreateObject());
    return seg_run_data_take(must(cJSON_Duplicate(event, 1)));
}
