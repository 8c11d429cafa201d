/* refs.c: resolve Courier accessors ("refs.x", {"$ref": "x"}, "${expr}") in step
 * definitions against a run context (see refs.h). Paths go through path.c and
 * expressions through expr.c; this file only walks, copies and budgets. */
#include "refs.h"

#include "../expr/expr.h"
#include "../expr/path.h"

#include "../util/buf.h"
#include "../util/json.h"
#include "../util/str.h"
#include "../util/xalloc.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_COST 16

struct walk {
    const cJSON *ctx;
    size_t budget; /* bytes left of REFS_MAX_OUT */
    char loc[128]; /* where in the definition we are, for messages */
    size_t loc_len;
    struct herr *err;
};

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "herald: out of memory in cJSON\n");
        abort();
    }
    return p;
}

/* add: append item to array o (key NULL) or object o. */
static void add(cJSON *o, const char *key, cJSON *item)
{
    if (!(key ? cJSON_AddItemToObject(o, key, item) : cJSON_AddItemToArray(o, item)))
        must(NULL);
}

static const char *where(const struct walk *w)
{
    return w->loc_len ? w->loc : "value";
}

static size_t loc_push_key(struct walk *w, const char *key)
{
    size_t prev = w->loc_len;
    int n = snprintf(w->loc + prev, sizeof w->loc - prev, "%s%s", prev ? "." : "", key);
    if (n > 0)
        w->loc_len = prev + (size_t)n < sizeof w->loc ? prev + (size_t)n : sizeof w->loc - 1;
    return prev;
}

static size_t loc_push_index(struct walk *w, int i)
{
    size_t prev = w->loc_len;
    int n = snprintf(w->loc + prev, sizeof w->loc - prev, "[%d]", i);
    if (n > 0)
        w->loc_len = prev + (size_t)n < sizeof w->loc ? prev + (size_t)n : sizeof w->loc - 1;
    return prev;
}

static void loc_pop(struct walk *w, size_t prev)
{
    w->loc_len = prev;
    w->loc[prev] = '\0';
}

static int charge(struct walk *w, size_t n)
{
    if (n > w->budget)
        return herr_set(w->err, HR_TOOBIG, "%s: resolved value larger than %d bytes", where(w),
                        REFS_MAX_OUT);
    w->budget -= n;
    return HR_OK;
}

/* copy: a bounded deep copy of a context node into *out. */
static int copy(struct walk *w, const cJSON *v, int depth, cJSON **out)
{
    int rc;
    cJSON *o = NULL;
    *out = NULL;
    if (depth > REFS_MAX_COPY_DEPTH)
        return herr_set(w->err, HR_TOOBIG, "%s: context value nested deeper than %d", where(w),
                        REFS_MAX_COPY_DEPTH);
    if ((rc = charge(w, NODE_COST + (v->string ? strlen(v->string) : 0))) < 0)
        return rc;
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        o = must(cJSON_IsArray(v) ? cJSON_CreateArray() : cJSON_CreateObject());
        for (const cJSON *c = v->child; c; c = c->next) {
            cJSON *cc;
            if ((rc = copy(w, c, depth + 1, &cc)) < 0) {
                cJSON_Delete(o);
                return rc;
            }
            add(o, cJSON_IsObject(v) ? (c->string ? c->string : "") : NULL, cc);
        }
    } else if (cJSON_IsString(v)) {
        if ((rc = charge(w, strlen(v->valuestring))) < 0)
            return rc;
        o = must(cJSON_CreateString(v->valuestring));
    } else if (cJSON_IsNumber(v)) {
        o = must(cJSON_CreateNumber(v->valuedouble));
    } else if (cJSON_IsBool(v)) {
        o = must(cJSON_CreateBool(cJSON_IsTrue(v)));
    } else {
        o = must(cJSON_CreateNull());
    }
    *out = o;
    return HR_OK;
}

/* lookup: parse path (lenient) and fetch it; *node is NULL when missing. */
static int lookup(const cJSON *ctx, const char *path, size_t len, const cJSON **node,
                  struct herr *err)
{
    struct path *p = xmalloc(sizeof *p); /* ~3.6 KB: kept off the stack */
    int rc;
    *node = NULL;
    rc = path_parse((struct str){path, len}, PATH_LENIENT, p, err);
    if (rc == HR_OK)
        *node = path_get(ctx, p);
    free(p);
    return rc;
}

const cJSON *refs_lookup(const cJSON *ctx, const char *path, size_t len)
{
    const cJSON *node;
    if (!path || lookup(ctx, path, len, &node, NULL) < 0)
        return NULL;
    return node;
}

/* at_path: the copied value at path, or JSON null when missing. */
static int at_path(struct walk *w, const char *path, cJSON **out)
{
    struct herr e = {0};
    const cJSON *node;
    int rc = lookup(w->ctx, path, strlen(path), &node, &e);
    *out = NULL;
    if (rc < 0)
        return herr_set(w->err, rc, "%s: bad path \"%.60s\": %s", where(w), path, e.msg);
    if (!node) {
        if ((rc = charge(w, NODE_COST)) < 0)
            return rc;
        *out = must(cJSON_CreateNull());
        return HR_OK;
    }
    return copy(w, node, 0, out);
}

/* find_close: index of the '}' closing the "${" whose body starts at i, skipping
 * quoted strings; s.len when there is none. */
static size_t find_close(struct str s, size_t i)
{
    int depth = 0;
    char q = 0;
    for (; i < s.len; i++) {
        char c = s.p[i];
        if (q) {
            if (c == '\\')
                i++;
            else if (c == q)
                q = 0;
        } else if (c == '"' || c == '\'' || c == '`') {
            q = c;
        } else if (c == '{') {
            depth++;
        } else if (c == '}') {
            if (depth == 0)
                return i;
            depth--;
        }
    }
    return s.len;
}

/* eval_at: compile and evaluate the expression s[b..e) (the body of a "${" opened at
 * offset open) into *v; *ex keeps it alive while *v is used. */
static int eval_at(struct walk *w, struct str s, size_t open, size_t b, size_t e,
                   struct expr **ex, struct expr_value *v)
{
    struct herr er = {0};
    int rc = expr_compile(s.p + b, e - b, ex, &er);
    if (rc < 0)
        return herr_set(w->err, rc, "%s: ${...} at offset %zu: %s", where(w), open, er.msg);
    if ((rc = expr_eval(*ex, w->ctx, v)) < 0)
        return herr_set(w->err, rc, "%s: ${...} at offset %zu: value too large to convert",
                        where(w), open);
    return HR_OK;
}

/* value_json: the JSON form of an expression result (undefined, NaN, Infinity: null). */
static int value_json(struct walk *w, const struct expr_value *v, cJSON **out)
{
    int rc;
    *out = NULL;
    switch (v->type) {
    case EXPR_ARRAY:
    case EXPR_OBJECT:
        return copy(w, v->json, 0, out);
    case EXPR_STRING:
        if ((rc = charge(w, NODE_COST + v->s.len)) < 0)
            return rc;
        *out = must(cJSON_CreateString(v->s.p)); /* s.p is NUL-terminated at s.len */
        return HR_OK;
    default:
        break;
    }
    if ((rc = charge(w, NODE_COST)) < 0)
        return rc;
    if (v->type == EXPR_BOOL)
        *out = must(cJSON_CreateBool(v->b));
    else if (v->type == EXPR_NUMBER && isfinite(v->num))
        *out = must(cJSON_CreateNumber(v->num));
    else
        *out = must(cJSON_CreateNull());
    return HR_OK;
}

/* append_text: the text form of an interpolated value (see refs.h). */
static int append_text(const struct expr_value *v, struct buf *b)
{
    int rc;
    switch (v->type) {
    case EXPR_UNDEFINED:
    case EXPR_NULL:
        return HR_OK;
    case EXPR_ARRAY:
    case EXPR_OBJECT: {
        char *j = json_print(v->json);
        rc = buf_append_c(b, j);
        free(j);
        return rc;
    }
    default:
        return expr_value_text(v, b);
    }
}

static int interpolate(struct walk *w, struct str s, cJSON **out)
{
    struct buf b;
    struct expr *ex = NULL;
    struct expr_value v;
    size_t i = 0;
    int rc = HR_OK;

    *out = NULL;
    buf_init(&b, REFS_MAX_TEXT);
    while (i < s.len) {
        const char *hit = memmem(s.p + i, s.len - i, "${", 2);
        size_t open = hit ? (size_t)(hit - s.p) : s.len;
        if ((rc = buf_append(&b, s.p + i, open - i)) < 0)
            goto toobig;
        if (!hit)
            break;
        size_t close = find_close(s, open + 2);
        if (close == s.len) {
            rc = herr_set(w->err, HR_INVAL, "%s: unterminated ${ at offset %zu", where(w), open);
            goto out;
        }
        if ((rc = eval_at(w, s, open, open + 2, close, &ex, &v)) < 0)
            goto out;
        if (open == 0 && close == s.len - 1) { /* exactly one ${...}: keep the type */
            rc = value_json(w, &v, out);
            goto out;
        }
        rc = append_text(&v, &b);
        expr_unref(ex);
        ex = NULL;
        if (rc < 0)
            goto toobig;
        i = close + 1;
    }
    if ((rc = charge(w, NODE_COST + b.len)) < 0)
        goto out;
    *out = must(cJSON_CreateString(buf_cstr(&b)));
    goto out;
toobig:
    rc = herr_set(w->err, rc == HR_NOMEM ? HR_NOMEM : HR_TOOBIG,
                  "%s: interpolated text longer than %d bytes", where(w), REFS_MAX_TEXT);
out:
    expr_unref(ex);
    buf_cleanup(&b);
    return rc;
}

/* ref_object_path: the path when v is exactly {"$ref": "<string>"}, else NULL. */
static const char *ref_object_path(const cJSON *v)
{
    const cJSON *c = v->child;
    if (!c || c->next || !c->string || strcmp(c->string, "$ref") != 0 || !cJSON_IsString(c))
        return NULL;
    return c->valuestring;
}

static int resolve(struct walk *w, const cJSON *v, int depth, cJSON **out)
{
    int rc, i = 0;
    cJSON *o = NULL;
    *out = NULL;
    if (depth > REFS_MAX_DEPTH)
        return herr_set(w->err, HR_TOOBIG, "%s: definition nested deeper than %d", where(w),
                        REFS_MAX_DEPTH);
    if (cJSON_IsString(v)) {
        struct str s = str_c(v->valuestring);
        if (str_starts_with(s, STR_LIT("refs.")))
            return at_path(w, v->valuestring, out);
        if (memmem(s.p, s.len, "${", 2))
            return interpolate(w, s, out);
        if ((rc = charge(w, NODE_COST + s.len)) < 0)
            return rc;
        *out = must(cJSON_CreateString(v->valuestring));
        return HR_OK;
    }
    if (cJSON_IsObject(v)) {
        const char *path = ref_object_path(v);
        if (path) {
            size_t prev = loc_push_key(w, "$ref");
            rc = at_path(w, path, out);
            loc_pop(w, prev);
            return rc;
        }
    }
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return copy(w, v, 0, out);

    if ((rc = charge(w, NODE_COST)) < 0)
        return rc;
    o = must(cJSON_IsArray(v) ? cJSON_CreateArray() : cJSON_CreateObject());
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        cJSON *r;
        bool obj = cJSON_IsObject(v);
        const char *key = c->string ? c->string : "";
        size_t prev = obj ? loc_push_key(w, key) : loc_push_index(w, i);
        rc = obj ? charge(w, strlen(key)) : HR_OK;
        if (rc == HR_OK)
            rc = resolve(w, c, depth + 1, &r);
        loc_pop(w, prev);
        if (rc < 0) {
            cJSON_Delete(o);
            return rc;
        }
        add(o, obj ? key : NULL, r);
    }
    *out = o;
    return HR_OK;
}

int refs_resolve(const cJSON *def, const cJSON *ctx, cJSON **out, struct herr *err)
{
    struct walk w = {0};
    cJSON *null_def = NULL;
    int rc;
    *out = NULL;
    w.ctx = ctx;
    w.budget = REFS_MAX_OUT;
    w.err = err;
    if (!def)
        def = null_def = must(cJSON_CreateNull());
    rc = resolve(&w, def, 0, out);
    cJSON_Delete(null_def);
    return rc;
}

int refs_validate(const cJSON *def, struct herr *err)
{
    cJSON *out = NULL;
    int rc = refs_resolve(def, NULL, &out, err);
    cJSON_Delete(out);
    return rc;
}
