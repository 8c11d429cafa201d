/* json.c: UTF-8 and depth validation before cJSON, and accessors. */
#include "json.h"

#include "xalloc.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_use_xalloc(void)
{
    /* cJSON then grows printed text by allocate + copy (it keeps realloc only for the
     * plain malloc/free pair); buffers double, so the cost stays linear */
    cJSON_Hooks h = {.malloc_fn = xmalloc, .free_fn = free};
    cJSON_InitHooks(&h);
}

bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            /* ASCII, most of every document: 8 bytes at a time while none has its high bit */
            uint64_t w;
            i++;
            while (n - i >= 8) {
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ULL)
                    break;
                i += 8;
            }
            continue;
        }
        size_t need;
        unsigned min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= need)
            return false;
        unsigned cp = c & (0x3f >> need);
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

/* scan_ok: scan brackets outside strings; returns false when depth exceeds max, and
 * sets *nul when a string holds the escape \u0000 (cJSON would end the C string there,
 * silently cutting an id or a name short). */
static bool scan_ok(const char *p, size_t n, int max, bool *nul)
{
    int depth = 0;
    bool in_str = false;
    *nul = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\') {
                if (i + 5 < n && p[i + 1] == 'u' && memcmp(p + i + 2, "0000", 4) == 0)
                    *nul = true;
                i++;
            } else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '{' || c == '[') {
            if (++depth > max)
                return false;
        } else if (c == '}' || c == ']')
            depth--;
    }
    return true;
}

/* ---- duplicate member names ------------------------------------------------------- */

/* A repeated member name is read differently by different code: cJSON's lookups take
 * the first, a merge (jp_merge) or a JavaScript client the last. A check that reads one
 * copy while other code applies another is how a filter is bypassed (a client key's
 * `"traits":{"webhook":0,"webhook":{...}}`); json_drop_duplicate_members() keeps only
 * the first member of each name, at every level. */

struct member_ref {
    const char *name;
    size_t pos;
    cJSON *item;
};

static int member_cmp(const void *a, const void *b)
{
    const struct member_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* drop_later_members: delete every later member of obj whose name an earlier one has.
 * Small objects compare pairwise; larger ones sort (name, position), so a hostile
 * object of many members costs n log n, not n^2. */
static void drop_later_members(cJSON *obj)
{
    size_t n = 0;
    for (cJSON *it = obj->child; it; it = it->next)
        n++;
    if (n < 2)
        return;
    if (n <= 16) {
        for (cJSON *it = obj->child; it; it = it->next) {
            cJSON *k = it->next;
            while (k) {
                cJSON *next = k->next;
                if (it->string && k->string && it->string[0] == k->string[0] &&
                    strcmp(it->string, k->string) == 0)
                    cJSON_Delete(cJSON_DetachItemViaPointer(obj, k));
                k = next;
            }
        }
        return;
    }
    struct member_ref *refs = xcalloc(n, sizeof *refs);
    size_t i = 0;
    for (cJSON *it = obj->child; it; it = it->next, i++)
        refs[i] = (struct member_ref){.name = it->string ? it->string : "", .pos = i, .item = it};
    qsort(refs, n, sizeof *refs, member_cmp);
    /* the first of each run of equal names is kept (it has the lowest position) and
     * is what later ones compare against: a deleted member's name is gone with it */
    for (size_t keep = 0, j = 1; j < n; j++) {
        if (strcmp(refs[j].name, refs[keep].name) == 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(obj, refs[j].item));
        else
            keep = j;
    }
    free(refs);
}

void json_drop_duplicate_members(cJSON *v)
{
    if (cJSON_IsObject(v))
        drop_later_members(v);
    if (cJSON_IsObject(v) || cJSON_IsArray(v))
        for (cJSON *it = v->child; it; it = it->next)
            json_drop_duplicate_members(it);
}

int json_parse_bounded(const char *p, size_t n, int max_depth, cJSON **out, struct herr *err)
{
    const char *end = NULL;
    cJSON *v;
    bool nul;
    *out = NULL;
    if (n == 0)
        return herr_set(err, HR_INVAL, "request body is empty; expected JSON");
    if (!utf8_valid(p, n))
        return herr_set(err, HR_INVAL, "request body is not valid UTF-8");
    if (memchr(p, '\0', n))
        return herr_set(err, HR_INVAL, "request body contains a NUL byte");
    if (!scan_ok(p, n, max_depth, &nul))
        return herr_set(err, HR_INVAL, "JSON nesting is deeper than %d levels", max_depth);
    if (nul)
        return herr_set(err, HR_INVAL,
                        "a JSON string holds \\u0000 (NUL), which herald does not accept");
    v = cJSON_ParseWithLengthOpts(p, n, &end, 0);
    if (!v) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = (at && at >= p && at <= p + n) ? (size_t)(at - p) : 0;
        return herr_set(err, HR_INVAL, "malformed JSON near byte %zu", off);
    }
    /* trailing garbage other than whitespace is an error */
    if (end) {
        while (end < p + n && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
        if (end < p + n) {
            cJSON_Delete(v);
            return herr_set(err, HR_INVAL, "malformed JSON: trailing data at byte %zu",
                            (size_t)(end - p));
        }
    }
    *out = v;
    return HR_OK;
}

cJSON *json_member(const cJSON *obj, const char *key)
{
    /* cJSON_GetObjectItemCaseSensitive's answer (it too stops at a member without a
     * name), without a strcmp call per member: most names differ in their first byte */
    if (!obj || !key)
        return NULL;
    for (cJSON *it = obj->child; it && it->string; it = it->next)
        if (it->string[0] == key[0] && strcmp(it->string, key) == 0)
            return it;
    return NULL;
}

const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = json_member(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool json_i64(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *v = json_member(obj, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble > 9.2e18 ||
        v->valuedouble < -9.2e18)
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

bool json_bool(const cJSON *obj, const char *key, bool dflt)
{
    const cJSON *v = json_member(obj, key);
    if (cJSON_IsTrue(v))
        return true;
    if (cJSON_IsFalse(v))
        return false;
    return dflt;
}

cJSON *json_obj(const cJSON *obj, const char *key)
{
    cJSON *v = json_member(obj, key);
    return cJSON_IsObject(v) ? v : NULL;
}

cJSON *json_arr(const cJSON *obj, const char *key)
{
    cJSON *v = json_member(obj, key);
    return cJSON_IsArray(v) ? v : NULL;
}

/* ---- json_print ----------------------------------------------------------------------
 * cJSON_PrintUnformatted's output, byte for byte (test_util.c and fuzz_json.c compare the
 * two), without its costs on herald's documents: cJSON prints every number with sprintf
 * "%1.15g" and reads it back with sscanf, and it copies strings a byte at a time. Here
 * integers of up to 15 digits (a millisecond timestamp, a count) are written digit by
 * digit, strings in runs between the bytes that need escaping, into one buffer that
 * doubles. */

struct jw {
    char *p;
    size_t len, cap;
};

/* jw_grow: make room for n more bytes (the slow path of jw_room). */
static void jw_grow(struct jw *w, size_t n)
{
    size_t cap = w->cap ? w->cap : 1024; /* one allocation for most documents */
    while (cap - w->len < n)
        cap *= 2;
    w->p = xrealloc(w->p, cap);
    w->cap = cap;
}

static inline char *jw_room(struct jw *w, size_t n)
{
    if (w->cap - w->len < n)
        jw_grow(w, n);
    return w->p + w->len;
}

static inline void jw_put(struct jw *w, const char *s, size_t n)
{
    memcpy(jw_room(w, n), s, n);
    w->len += n;
}

static inline void jw_putc(struct jw *w, char c)
{
    *jw_room(w, 1) = c;
    w->len++;
}

/* jw_decimal: write d as "%1.15g" would when that has at most 15 significant digits,
 * all within 1e-4 <= |d| < 1e15 (where %g writes no exponent), without printf's
 * multi-precision path (a price like 49.99 cost a snprintf and a strtod). It looks for
 * the fewest decimals p for which M = round(d * 10^p) has M / 10^p == d: the division
 * of two exact doubles (M < 2^53, 10^p <= 10^15) is rounded once, as strtod rounds the
 * decimal M.10^-p, so that text reads back as d; and d lies within half an ulp
 * (< 1.2e-16 |d|) of it, closer than 15 digits resolve, so "%1.15g" rounds d to the same
 * digits and drops the zeros after them. false (nothing written) when no p works. */
static bool jw_decimal(struct jw *w, double d)
{
    static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    double a = fabs(d);
    char tmp[40], *e = tmp + sizeof tmp, *q = e;
    int digits = 0, p;
    if (!(a >= 1e-4 && a < 1e15))
        return false;
    while (a >= p10[digits])
        digits++; /* before the point (p10 is exact; a < 1e15 ends the walk) */
    for (p = 1; digits + p <= 15; p++) {
        double m = nearbyint(a * p10[p]);
        if (m < 9007199254740992.0 && m / p10[p] == a)
            break;
    }
    if (digits + p > 15)
        return false;
    {
        uint64_t u = (uint64_t)nearbyint(a * p10[p]);
        for (int i = 0; i < p; i++, u /= 10)
            *--q = (char)('0' + u % 10);
        *--q = '.';
        do {
            *--q = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (d < 0)
            *--q = '-';
    }
    jw_put(w, q, (size_t)(e - q));
    return true;
}

static void jw_number(struct jw *w, double d)
{
    char tmp[64];
    int n;
    if (isnan(d) || isinf(d)) {
        jw_put(w, "null", 4);
        return;
    }
    if (d > -1e15 && d < 1e15 && d == (double)(int64_t)d && !(d == 0 && signbit(d))) {
        /* what "%1.15g" prints for an integer of at most 15 digits (cJSON 1.7.15 prints
         * every number that way first; 1e15 and up it writes as "1e+15") */
        int64_t v = (int64_t)d;
        uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        char *e = tmp + sizeof tmp, *q = e;
        do {
            *--q = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0)
            *--q = '-';
        jw_put(w, q, (size_t)(e - q));
        return;
    }
    if (jw_decimal(w, d))
        return;
    /* cJSON's rule: 15 significant digits if they read back as the same double, else 17 */
    n = snprintf(tmp, sizeof tmp, "%1.15g", d);
    {
        double back = strtod(tmp, NULL);
        double big = fabs(back) > fabs(d) ? fabs(back) : fabs(d);
        if (!(fabs(back - d) <= big * DBL_EPSILON))
            n = snprintf(tmp, sizeof tmp, "%1.17g", d);
    }
    jw_put(w, tmp, (size_t)n);
}

static void jw_string(struct jw *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    jw_putc(w, '"');
    for (;;) {
        const unsigned char *run = p;
        while (*p >= 32 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            jw_put(w, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (*p) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            n = 6;
        }
        jw_put(w, esc, n);
        p++;
    }
    jw_putc(w, '"');
}

/* jw_value: false when cJSON would fail (a raw item without text, an invalid type) */
static bool jw_value(struct jw *w, const cJSON *v)
{
    const cJSON *c;
    switch (v->type & 0xff) {
    case cJSON_NULL:
        jw_put(w, "null", 4);
        return true;
    case cJSON_False:
        jw_put(w, "false", 5);
        return true;
    case cJSON_True:
        jw_put(w, "true", 4);
        return true;
    case cJSON_Number:
        jw_number(w, v->valuedouble);
        return true;
    case cJSON_String:
        jw_string(w, v->valuestring);
        return true;
    case cJSON_Raw:
        if (!v->valuestring)
            return false;
        jw_put(w, v->valuestring, strlen(v->valuestring));
        return true;
    case cJSON_Array:
        jw_putc(w, '[');
        for (c = v->child; c; c = c->next) {
            if (!jw_value(w, c))
                return false;
            if (c->next)
                jw_putc(w, ',');
        }
        jw_putc(w, ']');
        return true;
    case cJSON_Object:
        jw_putc(w, '{');
        for (c = v->child; c; c = c->next) {
            jw_string(w, c->string);
            jw_putc(w, ':');
            if (!jw_value(w, c))
                return false;
            if (c->next)
                jw_putc(w, ',');
        }
        jw_putc(w, '}');
        return true;
    default:
        return false;
    }
}

char *json_print(const cJSON *v)
{
    struct jw w = {NULL, 0, 0};
    if (!v || !jw_value(&w, v)) {
        free(w.p);
        return xstrdup("null");
    }
    jw_putc(&w, '\0');
    return w.p;
}
