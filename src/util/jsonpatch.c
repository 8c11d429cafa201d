/* jsonpatch.c: RFC 6901 pointers, RFC 6902 patches, shallow merge and equality over
 * cJSON (see jsonpatch.h). A patch runs on a private copy that replaces nothing until
 * every operation has succeeded. */
#include "jsonpatch.h"

#include "xalloc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XSTR(x) STR(x)
#define STR(x) #x
#define TOO_DEEP "result would nest deeper than " XSTR(JP_MAX_DEPTH) " levels"

/* must: cJSON reports allocation failure as NULL; herald's policy is to abort. */
static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "herald: out of memory in cJSON\n");
        abort();
    }
    return p;
}

static void must_ok(cJSON_bool ok)
{
    if (!ok) {
        fprintf(stderr, "herald: cJSON refused a link (out of memory)\n");
        abort();
    }
}

/* ---- pointers ---------------------------------------------------------------- */

/* One decoded reference token; a pointer of JP_MAX_POINTER bytes decodes shorter. */
struct tok {
    char s[JP_MAX_POINTER + 1]; /* NUL-terminated */
    size_t len;
};

/* ptr_check: HR_OK when p is "" or "/..." with only ~0/~1 escapes, no NUL and at most
 * JP_MAX_POINTER bytes; else HR_INVAL with *why. */
static int ptr_check(struct str p, const char **why)
{
    if (p.len > JP_MAX_POINTER) {
        *why = "pointer is longer than " XSTR(JP_MAX_POINTER) " bytes";
        return HR_INVAL;
    }
    if (p.len > 0 && p.p[0] != '/') {
        *why = "pointer must be empty or start with '/'";
        return HR_INVAL;
    }
    for (size_t i = 0; i < p.len; i++) {
        if (p.p[i] == '\0') {
            *why = "pointer contains a NUL byte";
            return HR_INVAL;
        }
        if (p.p[i] == '~' && (i + 1 == p.len || (p.p[i + 1] != '0' && p.p[i + 1] != '1'))) {
            *why = "pointer has a '~' not followed by '0' or '1'";
            return HR_INVAL;
        }
    }
    return HR_OK;
}

/* next_tok: decode the token at the head of *rest (checked, starts with '/') into t
 * and advance *rest past it. ~01 decodes to "~1": each escape is read once. */
static void next_tok(struct str *rest, struct tok *t)
{
    size_t i = 1;
    t->len = 0;
    while (i < rest->len && rest->p[i] != '/') {
        char c = rest->p[i++];
        if (c == '~')
            c = rest->p[i++] == '0' ? '~' : '/';
        t->s[t->len++] = c;
    }
    t->s[t->len] = '\0';
    rest->p += i;
    rest->len -= i;
}

/* arr_index: t as an index into an array of size elements. allow_end accepts "-" and
 * size itself (the append position). HR_INVAL for a token that is no array-index
 * (RFC 6901: "0" or digits without a leading zero), HR_NOTFOUND when out of range. */
static int arr_index(const struct tok *t, int size, bool allow_end, int *out, const char **why)
{
    long long v = 0;
    if (t->len == 1 && t->s[0] == '-') {
        if (!allow_end) {
            *why = "'-' names no existing array element";
            return HR_INVAL;
        }
        *out = size;
        return HR_OK;
    }
    if (t->len == 0 || (t->len > 1 && t->s[0] == '0')) {
        *why = "invalid array index";
        return HR_INVAL;
    }
    for (size_t i = 0; i < t->len; i++) {
        if (t->s[i] < '0' || t->s[i] > '9') {
            *why = "invalid array index";
            return HR_INVAL;
        }
        if (v <= INT_MAX)
            v = v * 10 + (t->s[i] - '0');
    }
    if (v > size || (v == size && !allow_end)) {
        *why = "array index out of range";
        return HR_NOTFOUND;
    }
    *out = (int)v;
    return HR_OK;
}

/* step: the child of cur named by t, or HR_NOTFOUND/HR_INVAL with *why. */
static int step(cJSON *cur, const struct tok *t, cJSON **child, const char **why)
{
    int rc = HR_OK, idx = 0;
    *child = NULL;
    if (cJSON_IsObject(cur)) {
        *child = json_member(cur, t->s);
    } else if (cJSON_IsArray(cur)) {
        rc = arr_index(t, cJSON_GetArraySize(cur), false, &idx, why);
        if (rc < 0)
            return rc;
        *child = cJSON_GetArrayItem(cur, idx);
    }
    if (!*child) {
        *why = "path does not exist";
        rc = HR_NOTFOUND;
    }
    return rc;
}

/* walk: follow the checked pointer p from root. With parent, stop before the last token
 * and leave it in *last (p must not be ""). *ntok counts all tokens of p. The walk only
 * reads; root is not const so that callers can edit what it finds. */
static int walk(cJSON *root, struct str p, bool parent, cJSON **at, struct tok *last, int *ntok,
                const char **why)
{
    int rc = HR_OK;
    cJSON *cur = root;
    *ntok = 0;
    while (p.len > 0) {
        next_tok(&p, last);
        ++*ntok;
        if (parent && p.len == 0)
            break;
        rc = step(cur, last, &cur, why);
        if (rc < 0)
            break;
    }
    *at = rc < 0 ? NULL : cur;
    return rc;
}

int jp_pointer_get(const cJSON *doc, struct str ptr, const cJSON **out)
{
    struct tok t;
    const char *why = NULL;
    cJSON *at = NULL;
    int ntok = 0, rc;
    *out = NULL;
    if (!doc)
        return HR_INVAL;
    rc = ptr_check(ptr, &why);
    if (rc < 0)
        return rc;
    rc = walk((cJSON *)doc, ptr, false, &at, &t, &ntok, &why);
    if (rc == HR_OK)
        *out = at;
    return rc;
}

/* ---- equality and ordering of members ------------------------------------------- */

struct member {
    const cJSON *v;
    size_t pos; /* position among its siblings, for a stable order */
};

static const char *key_of(const cJSON *v)
{
    return v->string ? v->string : "";
}

static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    int c = strcmp(key_of(x->v), key_of(y->v));
    if (c)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* members: obj's children sorted by (key, position); caller frees. *n is the count. */
static struct member *members(const cJSON *obj, size_t *n)
{
    size_t cnt = 0, i = 0;
    struct member *m;
    for (const cJSON *c = obj->child; c; c = c->next)
        cnt++;
    m = xmalloc(cnt * sizeof(*m));
    for (const cJSON *c = obj->child; c; c = c->next, i++)
        m[i] = (struct member){c, i};
    qsort(m, cnt, sizeof(*m), member_cmp);
    *n = cnt;
    return m;
}

/* find_member: the first member of sorted m named key, or NULL. */
static const struct member *find_member(const struct member *m, size_t n, const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(key_of(m[mid].v), key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && strcmp(key_of(m[lo].v), key) == 0 ? &m[lo] : NULL;
}

static bool objects_equal(const cJSON *a, const cJSON *b)
{
    size_t na, nb;
    struct member *ma = members(a, &na), *mb = members(b, &nb);
    bool eq = na == nb;
    for (size_t i = 0; eq && i < na; i++)
        eq = strcmp(key_of(ma[i].v), key_of(mb[i].v)) == 0 && jp_equal(ma[i].v, mb[i].v);
    free(ma);
    free(mb);
    return eq;
}

bool jp_equal(const cJSON *a, const cJSON *b)
{
    if (!a || !b)
        return a == b;
    if ((a->type & 0xff) != (b->type & 0xff))
        return false;
    if (cJSON_IsNumber(a))
        return a->valuedouble == b->valuedouble;
    if (cJSON_IsString(a) || cJSON_IsRaw(a))
        return strcmp(a->valuestring ? a->valuestring : "", b->valuestring ? b->valuestring : "") ==
               0;
    if (cJSON_IsArray(a)) {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!jp_equal(x, y))
                return false;
        return !x && !y;
    }
    if (cJSON_IsObject(a))
        return objects_equal(a, b);
    return true; /* null, true, false: the type says it all */
}

/* ---- merge ----------------------------------------------------------------------- */

void jp_merge(cJSON *target, const cJSON *src, bool null_deletes)
{
    cJSON *copy, *c;
    struct member *sm, *tm;
    cJSON **match;
    bool *last;
    size_t sn, tn, pos = 0;
    if (!cJSON_IsObject(target) || !cJSON_IsObject(src))
        return;
    /* a private copy: src may be target or sit inside it, and its members move over */
    copy = must(cJSON_Duplicate(src, true));
    sm = members(copy, &sn);
    tm = members(target, &tn);
    last = xcalloc(sn ? sn : 1, sizeof(*last));
    match = xcalloc(sn ? sn : 1, sizeof(*match));
    /* decide everything before editing target: tm points at target's members */
    for (size_t i = 0; i < sn; i++) {
        const struct member *t;
        if (i + 1 < sn && strcmp(key_of(sm[i].v), key_of(sm[i + 1].v)) == 0)
            continue; /* a later member of src has the same key and wins */
        last[sm[i].pos] = true;
        t = find_member(tm, tn, key_of(sm[i].v));
        match[sm[i].pos] = t ? (cJSON *)t->v : NULL;
    }
    while ((c = copy->child)) {
        cJSON *old = match[pos];
        bool keep = last[pos++];
        cJSON_DetachItemViaPointer(copy, c);
        if (!keep || (null_deletes && cJSON_IsNull(c))) {
            if (keep && old)
                cJSON_Delete(cJSON_DetachItemViaPointer(target, old));
            cJSON_Delete(c);
        } else if (old) {
            must_ok(cJSON_ReplaceItemViaPointer(target, old, c)); /* c keeps its key */
        } else {
            char *k = c->string; /* hand the key over without aliasing it */
            c->string = NULL;
            must_ok(cJSON_AddItemToObject(target, k ? k : "", c));
            cJSON_free(k);
        }
    }
    free(match);
    free(last);
    free(tm);
    free(sm);
    cJSON_Delete(copy);
}

/* ---- patch ----------------------------------------------------------------------- */

enum op_kind { OP_ADD, OP_REMOVE, OP_REPLACE, OP_MOVE, OP_COPY, OP_TEST };

static const char *const op_names[] = {"add", "remove", "replace", "move", "copy", "test"};

struct op {
    enum op_kind kind;
    struct str path, from;
    const cJSON *value; /* borrowed from the ops document */
};

/* The working copy and what we know about it. */
struct pctx {
    cJSON *root;     /* owned */
    size_t size;     /* measure() of root */
    const char *why; /* static reason for the last failure */
};

/* measure: approximate serialized size of v (its own key excluded, its members' keys
 * included) and, in *depth, its nesting (0 for a scalar, 1 for [] or {}). */
static size_t measure(const cJSON *v, int *depth)
{
    size_t n = 1;
    int d = 0;
    if ((cJSON_IsString(v) || cJSON_IsRaw(v)) && v->valuestring)
        n += strlen(v->valuestring);
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        d = 1;
        for (const cJSON *c = v->child; c; c = c->next) {
            int cd = 0;
            n += measure(c, &cd) + (c->string ? strlen(c->string) : 0);
            if (cd + 1 > d)
                d = cd + 1;
        }
    }
    *depth = d;
    return n;
}

/* grow_ok: may the document go from c->size by +add -drop? Shrinking always may. */
static int grow_ok(struct pctx *c, size_t add, size_t drop)
{
    if (add > drop && c->size - drop + add > JP_MAX_SIZE) {
        c->why = "result would be larger than the document size limit";
        return HR_TOOBIG;
    }
    return HR_OK;
}

static void strip_key(cJSON *v)
{
    if (v->string && !(v->type & cJSON_StringIsConst))
        cJSON_free(v->string);
    v->string = NULL;
    v->type &= ~cJSON_StringIsConst;
}

/* Where a non-empty path points: its container and, when present, the member. */
struct loc {
    cJSON *parent;
    cJSON *item; /* NULL: missing member, or the append position of an array */
    int index;   /* arrays: position */
    int ntok;
    struct tok last;
};

/* locate: resolve non-empty path to its parent container. allow_end admits "-" and
 * index == size for arrays (item NULL). A missing object member is not an error here. */
static int locate(struct pctx *c, struct str path, bool allow_end, struct loc *l)
{
    int rc = walk(c->root, path, true, &l->parent, &l->last, &l->ntok, &c->why);
    l->item = NULL;
    l->index = 0;
    if (rc < 0)
        return rc;
    if (cJSON_IsObject(l->parent)) {
        l->item = json_member(l->parent, l->last.s);
    } else if (cJSON_IsArray(l->parent)) {
        int size = cJSON_GetArraySize(l->parent);
        rc = arr_index(&l->last, size, allow_end, &l->index, &c->why);
        if (rc == HR_OK && l->index < size)
            l->item = cJSON_GetArrayItem(l->parent, l->index);
    } else {
        c->why = "parent of the path is not an object or array";
        rc = HR_NOTFOUND;
    }
    return rc;
}

/* set_root: v (owned, always consumed) becomes the whole document. */
static int set_root(struct pctx *c, cJSON *v)
{
    int rc = HR_OK, depth = 0;
    size_t n = measure(v, &depth);
    if (depth > JP_MAX_DEPTH) {
        c->why = TOO_DEEP;
        rc = HR_TOOBIG;
        goto out;
    }
    rc = grow_ok(c, n, c->size);
    if (rc < 0)
        goto out;
    strip_key(v);
    cJSON_Delete(c->root);
    c->root = v;
    c->size = n;
    v = NULL;
out:
    cJSON_Delete(v);
    return rc;
}

/* array_insert: link v in front of at, an element of arr. By hand because Debian's
 * libcjson 1.7.15 (its CVE-2023-50471 backport) makes cJSON_InsertItemInArray refuse any
 * position but 0 and the end when the new item has no prev link. cJSON keeps the first
 * child's prev pointing at the last child; inserting never changes the last one. */
static void array_insert(cJSON *arr, cJSON *at, cJSON *v)
{
    v->next = at;
    v->prev = at->prev;
    if (at == arr->child)
        arr->child = v;
    else
        at->prev->next = v;
    at->prev = v;
}

/* put: link v (owned, always consumed) at l. An existing object member is replaced; an
 * existing array element is replaced unless insert, which shifts it right. */
static int put(struct pctx *c, struct loc *l, cJSON *v, bool insert)
{
    int rc = HR_OK, depth = 0, d = 0;
    size_t n = measure(v, &depth), drop = 0;
    bool obj = cJSON_IsObject(l->parent);
    bool replacing = l->item && (obj || !insert); /* add on an object member replaces it */
    if (l->ntok + depth > JP_MAX_DEPTH) {
        c->why = TOO_DEEP;
        rc = HR_TOOBIG;
        goto out;
    }
    if (obj)
        n += l->last.len;
    if (replacing)
        drop = measure(l->item, &d) + (obj ? l->last.len : 0);
    rc = grow_ok(c, n, drop);
    if (rc < 0)
        goto out;
    strip_key(v);
    if (obj) {
        if (l->item)
            must_ok(cJSON_ReplaceItemInObjectCaseSensitive(l->parent, l->last.s, v));
        else
            must_ok(cJSON_AddItemToObject(l->parent, l->last.s, v));
    } else {
        if (replacing)
            must_ok(cJSON_ReplaceItemViaPointer(l->parent, l->item, v));
        else if (l->item)
            array_insert(l->parent, l->item, v);
        else
            must_ok(cJSON_AddItemToArray(l->parent, v));
    }
    c->size = c->size - drop + n;
    v = NULL;
out:
    cJSON_Delete(v);
    return rc;
}

/* op_add: RFC 6902 4.1; v owned, always consumed. */
static int op_add(struct pctx *c, struct str path, cJSON *v)
{
    struct loc l;
    int rc;
    if (path.len == 0)
        return set_root(c, v);
    rc = locate(c, path, true, &l);
    if (rc < 0) {
        cJSON_Delete(v);
        return rc;
    }
    return put(c, &l, v, true);
}

/* op_remove: RFC 6902 4.2; with out, the detached value goes to the caller. */
static int op_remove(struct pctx *c, struct str path, cJSON **out)
{
    struct loc l;
    int rc, d = 0;
    if (path.len == 0) {
        c->why = "cannot remove the whole document";
        return HR_INVAL;
    }
    rc = locate(c, path, false, &l);
    if (rc < 0)
        return rc;
    if (!l.item) {
        c->why = "path does not exist";
        return HR_NOTFOUND;
    }
    c->size -= measure(l.item, &d) + (cJSON_IsObject(l.parent) ? l.last.len : 0);
    cJSON_DetachItemViaPointer(l.parent, l.item);
    if (out)
        *out = l.item;
    else
        cJSON_Delete(l.item);
    return HR_OK;
}

/* op_replace: RFC 6902 4.3; v owned, always consumed. */
static int op_replace(struct pctx *c, struct str path, cJSON *v)
{
    struct loc l;
    int rc;
    if (path.len == 0)
        return set_root(c, v);
    rc = locate(c, path, false, &l);
    if (rc == HR_OK && !l.item) {
        c->why = "path does not exist";
        rc = HR_NOTFOUND;
    }
    if (rc < 0) {
        cJSON_Delete(v);
        return rc;
    }
    return put(c, &l, v, false);
}

/* get_at: the value at checked pointer p in the working copy; why names from/path. */
static int get_at(struct pctx *c, struct str p, bool is_from, cJSON **out)
{
    struct tok t;
    int ntok = 0;
    int rc = walk(c->root, p, false, out, &t, &ntok, &c->why);
    if (rc == HR_NOTFOUND)
        c->why = is_from ? "'from' location does not exist" : "path does not exist";
    return rc;
}

/* op_move: RFC 6902 4.4: remove at from, add at path. */
static int op_move(struct pctx *c, struct str from, struct str path)
{
    cJSON *v = NULL;
    int rc;
    if (str_eq(from, path))
        return get_at(c, from, true, &v); /* a no-op, but from must exist */
    if (path.len > from.len && memcmp(path.p, from.p, from.len) == 0 && path.p[from.len] == '/') {
        c->why = "cannot move a value into one of its own children";
        return HR_INVAL;
    }
    rc = op_remove(c, from, &v);
    if (rc < 0) {
        if (rc == HR_NOTFOUND)
            c->why = "'from' location does not exist";
        return rc;
    }
    return op_add(c, path, v);
}

/* op_copy: RFC 6902 4.5. */
static int op_copy(struct pctx *c, struct str from, struct str path)
{
    cJSON *v = NULL;
    int rc = get_at(c, from, true, &v);
    if (rc < 0)
        return rc;
    return op_add(c, path, must(cJSON_Duplicate(v, true)));
}

/* op_test: RFC 6902 4.6. */
static int op_test(struct pctx *c, struct str path, const cJSON *value)
{
    cJSON *v = NULL;
    int rc = get_at(c, path, false, &v);
    if (rc < 0)
        return rc;
    if (!jp_equal(v, value)) {
        c->why = "test failed: the value differs";
        return HR_CONFLICT;
    }
    return HR_OK;
}

/* shown: a printable, bounded copy of s for messages: control bytes become '?', long
 * strings are cut on a UTF-8 boundary and marked "...". */
static const char *shown(char *dst, size_t cap, const char *s)
{
    size_t n = 0, max = cap - 4;
    for (; s[n] && n < max; n++)
        dst[n] = ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
    if (s[n]) {
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--; /* s[n] starts a character; everything before it is whole */
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
    return dst;
}

/* member_once: the first member of o named key, counting how often key appears. */
static const cJSON *member_once(const cJSON *o, const char *key, int *count)
{
    const cJSON *found = NULL;
    *count = 0;
    for (const cJSON *m = o->child; m; m = m->next) {
        if (m->string && strcmp(m->string, key) == 0) {
            if (!found)
                found = m;
            ++*count;
        }
    }
    return found;
}

/* parse_op: read and validate operation i; HR_INVAL with err set when malformed. */
static int parse_op(const cJSON *o, int i, struct op *op, struct herr *err)
{
    static const char *const names[] = {"op", "path", "value", "from"};
    const cJSON *m[4];
    const char *why = NULL;
    char a[80], b[80];
    int k, count;
    if (!cJSON_IsObject(o))
        return herr_set(err, HR_INVAL, "patch operation %d: not a JSON object", i);
    for (k = 0; k < 4; k++) {
        m[k] = member_once(o, names[k], &count);
        if (count > 1)
            return herr_set(err, HR_INVAL, "patch operation %d: \"%s\" appears more than once", i,
                            names[k]);
    }
    if (!cJSON_IsString(m[0]))
        return herr_set(err, HR_INVAL, "patch operation %d: \"op\" %s", i,
                        m[0] ? "must be a string" : "is missing");
    for (k = 0; k < 6 && strcmp(m[0]->valuestring, op_names[k]) != 0; k++)
        ;
    if (k == 6)
        return herr_set(err, HR_INVAL, "patch operation %d: unknown op \"%s\"", i,
                        shown(a, sizeof(a), m[0]->valuestring));
    op->kind = (enum op_kind)k;
    if (!cJSON_IsString(m[1]))
        return herr_set(err, HR_INVAL, "patch operation %d (%s): \"path\" %s", i, op_names[k],
                        m[1] ? "must be a string" : "is missing");
    op->path = str_c(m[1]->valuestring);
    if (ptr_check(op->path, &why) < 0)
        return herr_set(err, HR_INVAL, "patch operation %d (%s %s): invalid path: %s", i,
                        op_names[k], shown(a, sizeof(a), m[1]->valuestring), why);
    op->value = m[2];
    if ((op->kind == OP_ADD || op->kind == OP_REPLACE || op->kind == OP_TEST) && !m[2])
        return herr_set(err, HR_INVAL, "patch operation %d (%s %s): \"value\" is missing", i,
                        op_names[k], shown(a, sizeof(a), m[1]->valuestring));
    op->from = STR_NULL;
    if (op->kind == OP_MOVE || op->kind == OP_COPY) {
        if (!cJSON_IsString(m[3]))
            return herr_set(err, HR_INVAL, "patch operation %d (%s %s): \"from\" %s", i,
                            op_names[k], shown(a, sizeof(a), m[1]->valuestring),
                            m[3] ? "must be a string" : "is missing");
        op->from = str_c(m[3]->valuestring);
        if (ptr_check(op->from, &why) < 0)
            return herr_set(err, HR_INVAL, "patch operation %d (%s %s): invalid from %s: %s", i,
                            op_names[k], shown(a, sizeof(a), m[1]->valuestring),
                            shown(b, sizeof(b), m[3]->valuestring), why);
    }
    return HR_OK;
}

static int apply_one(struct pctx *c, const struct op *op)
{
    switch (op->kind) {
    case OP_ADD:
        return op_add(c, op->path, must(cJSON_Duplicate(op->value, true)));
    case OP_REMOVE:
        return op_remove(c, op->path, NULL);
    case OP_REPLACE:
        return op_replace(c, op->path, must(cJSON_Duplicate(op->value, true)));
    case OP_MOVE:
        return op_move(c, op->from, op->path);
    case OP_COPY:
        return op_copy(c, op->from, op->path);
    case OP_TEST:
        return op_test(c, op->path, op->value);
    }
    return HR_INVAL;
}

int jp_apply_patch(const cJSON *doc, const cJSON *ops, cJSON **out, struct herr *err)
{
    struct pctx c = {0};
    struct op op;
    const cJSON *o;
    char a[80];
    int rc = HR_OK, i = 0, depth = 0;
    *out = NULL;
    herr_clear(err);
    if (!doc) {
        rc = herr_set(err, HR_INVAL, "no document to patch");
        goto out;
    }
    if (!cJSON_IsArray(ops)) {
        rc = herr_set(err, HR_INVAL, "a JSON Patch must be an array of operations");
        goto out;
    }
    /* validate every operation before touching anything */
    cJSON_ArrayForEach(o, ops)
    {
        if (i >= JP_MAX_OPS) {
            rc =
                herr_set(err, HR_TOOBIG, "a JSON Patch may have at most %d operations", JP_MAX_OPS);
            goto out;
        }
        rc = parse_op(o, i++, &op, err);
        if (rc < 0)
            goto out;
    }
    c.root = must(cJSON_Duplicate(doc, true));
    c.size = measure(c.root, &depth);
    i = 0;
    cJSON_ArrayForEach(o, ops)
    {
        rc = parse_op(o, i, &op, err); /* cannot fail: validated above */
        if (rc < 0)
            goto out;
        c.why = NULL;
        rc = apply_one(&c, &op);
        if (rc < 0) {
            if (rc == HR_NOTFOUND)
                rc = HR_CONFLICT; /* the document, not the request, lacks the target */
            rc = herr_set(err, rc, "patch operation %d (%s %s): %s", i, op_names[op.kind],
                          op.path.len ? shown(a, sizeof(a), op.path.p) : "\"\"",
                          c.why ? c.why : hr_rc_str(rc));
            goto out;
        }
        i++;
    }
    *out = c.root;
    c.root = NULL;
out:
    cJSON_Delete(c.root);
    return rc;
}
