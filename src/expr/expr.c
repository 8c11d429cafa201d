/* expr.c: compile and evaluate bounded JavaScript-style condition expressions
 * (see expr.h). Compilation builds a small tree in index-linked arrays; evaluation
 * walks it recursively (height <= EXPR_MAX_DEPTH) without allocating, except for
 * capped string conversions inside comparisons and .includes. */
#include "expr.h"

#include "path.h"

#include "../util/json.h"
#include "../util/xalloc.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum nkind {
    N_LIT,
    N_PATH, /* a = base node, or -1 for a context root; segs[seg_off .. +seg_n) */
    N_NOT,
    N_NEG,
    N_AND,
    N_OR,
    N_EQ,
    N_NE,
    N_SEQ,
    N_SNE,
    N_LT,
    N_LE,
    N_GT,
    N_GE,
    N_INCLUDES, /* a = receiver, b = argument */
};

struct node {
    enum nkind kind;
    int a, b;
    int height;
    size_t seg_off, seg_n;
    struct expr_value lit;
};

struct expr {
    atomic_int refs;
    struct node *nodes;
    struct path_seg *segs; /* keys point into pool */
    char *pool;            /* decoded names and string literals, each NUL-terminated */
    size_t n_nodes, n_segs;
    int root;
};

/* ------------------------------------------------------------------ values */

struct expr_value expr_value_from_json(const cJSON *j)
{
    struct expr_value v = {0};
    v.type = EXPR_UNDEFINED;
    if (!j)
        return v;
    if (cJSON_IsString(j) && j->valuestring) {
        v.type = EXPR_STRING;
        v.s = str_c(j->valuestring);
    } else if (cJSON_IsNumber(j)) {
        v.type = EXPR_NUMBER;
        v.num = j->valuedouble;
    } else if (cJSON_IsBool(j)) {
        v.type = EXPR_BOOL;
        v.b = cJSON_IsTrue(j);
    } else if (cJSON_IsNull(j)) {
        v.type = EXPR_NULL;
    } else if (cJSON_IsArray(j)) {
        v.type = EXPR_ARRAY;
        v.json = j;
    } else if (cJSON_IsObject(j)) {
        v.type = EXPR_OBJECT;
        v.json = j;
    }
    return v;
}

static struct expr_value mk_bool(bool b)
{
    struct expr_value v = {0};
    v.type = EXPR_BOOL;
    v.b = b;
    return v;
}

static struct expr_value mk_num(double n)
{
    struct expr_value v = {0};
    v.type = EXPR_NUMBER;
    v.num = n;
    return v;
}

static struct expr_value mk_undef(void)
{
    struct expr_value v = {0};
    v.type = EXPR_UNDEFINED;
    return v;
}

bool expr_value_truthy(const struct expr_value *v)
{
    switch (v->type) {
    case EXPR_UNDEFINED:
    case EXPR_NULL:
        return false;
    case EXPR_BOOL:
        return v->b;
    case EXPR_NUMBER:
        return v->num != 0 && !isnan(v->num);
    case EXPR_STRING:
        return v->s.len > 0;
    case EXPR_ARRAY:
    case EXPR_OBJECT:
        return true;
    }
    return false;
}

size_t expr_num_text(double v, char *out)
{
    char tmp[40], digits[24];
    size_t k = 0, o = 0;
    int exp10 = 0, p;
    if (isnan(v))
        return (size_t)snprintf(out, EXPR_NUM_TEXT_MAX, "NaN");
    if (isinf(v))
        return (size_t)snprintf(out, EXPR_NUM_TEXT_MAX, v < 0 ? "-Infinity" : "Infinity");
    if (v == 0)
        return (size_t)snprintf(out, EXPR_NUM_TEXT_MAX, "0");
    if (v < 0) {
        out[o++] = '-';
        v = -v;
    }
    /* shortest %e precision that reads back as v */
    for (p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    const char *t = tmp;
    for (; *t && *t != 'e'; t++)
        if (*t >= '0' && *t <= '9' && k < sizeof digits - 1)
            digits[k++] = *t;
    if (*t == 'e')
        exp10 = (int)strtol(t + 1, NULL, 10);
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    int n = exp10 + 1; /* decimal point position, as in ECMA-262 Number::toString */
    if ((int)k <= n && n <= 21) {
        memcpy(out + o, digits, k);
        o += k;
        for (int i = (int)k; i < n; i++)
            out[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(out + o, digits, (size_t)n);
        o += (size_t)n;
        out[o++] = '.';
        memcpy(out + o, digits + n, k - (size_t)n);
        o += k - (size_t)n;
    } else if (-6 < n && n <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -n; i++)
            out[o++] = '0';
        memcpy(out + o, digits, k);
        o += k;
    } else {
        out[o++] = digits[0];
        if (k > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, k - 1);
            o += k - 1;
        }
        o += (size_t)snprintf(out + o, EXPR_NUM_TEXT_MAX - o, "e%c%d", n - 1 >= 0 ? '+' : '-',
                              abs(n - 1));
    }
    out[o] = '\0';
    return o;
}

#define JOIN_MAX_DEPTH 32

static int value_text(const struct expr_value *v, struct buf *out, int depth);

/* join: Array#join(",") of an array node. */
static int join(const cJSON *arr, struct buf *out, int depth)
{
    int rc = HR_OK;
    bool first = true;
    if (depth > JOIN_MAX_DEPTH)
        return HR_TOOBIG;
    for (const cJSON *c = arr->child; c; c = c->next) {
        if (!first && (rc = buf_putc(out, ',')) < 0)
            return rc;
        first = false;
        struct expr_value ev = expr_value_from_json(c);
        if (ev.type == EXPR_UNDEFINED || ev.type == EXPR_NULL)
            continue;
        if ((rc = value_text(&ev, out, depth + 1)) < 0)
            return rc;
    }
    return rc;
}

static int value_text(const struct expr_value *v, struct buf *out, int depth)
{
    char num[EXPR_NUM_TEXT_MAX];
    switch (v->type) {
    case EXPR_UNDEFINED:
        return buf_append_c(out, "undefined");
    case EXPR_NULL:
        return buf_append_c(out, "null");
    case EXPR_BOOL:
        return buf_append_c(out, v->b ? "true" : "false");
    case EXPR_NUMBER:
        return buf_append(out, num, expr_num_text(v->num, num));
    case EXPR_STRING:
        return buf_append_str(out, v->s);
    case EXPR_ARRAY:
        return join(v->json, out, depth);
    case EXPR_OBJECT:
        return buf_append_c(out, "[object Object]");
    }
    return HR_INVAL;
}

int expr_value_text(const struct expr_value *v, struct buf *out)
{
    return value_text(v, out, 0);
}

static bool js_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static double radix_number(const char *p, size_t n, int base)
{
    double v = 0;
    if (n == 0)
        return NAN;
    for (size_t i = 0; i < n; i++) {
        int d;
        char c = p[i];
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'z')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'Z')
            d = c - 'A' + 10;
        else
            return NAN;
        if (d >= base)
            return NAN;
        v = v * base + d;
    }
    return v;
}

/* string_number: JavaScript's StringToNumber. s.p[s.len] must be '\0' (true of every
 * expr_value string and of buf contents), which bounds strtod. */
static double string_number(struct str s)
{
    size_t b = 0, e = s.len, i;
    while (b < e && js_space((unsigned char)s.p[b]))
        b++;
    while (e > b && js_space((unsigned char)s.p[e - 1]))
        e--;
    if (b == e)
        return 0;
    const char *p = s.p + b;
    size_t n = e - b;
    if (n > 2 && p[0] == '0') {
        char x = p[1];
        if (x == 'x' || x == 'X')
            return radix_number(p + 2, n - 2, 16);
        if (x == 'o' || x == 'O')
            return radix_number(p + 2, n - 2, 8);
        if (x == 'b' || x == 'B')
            return radix_number(p + 2, n - 2, 2);
    }
    i = 0;
    bool neg = false;
    if (p[0] == '+' || p[0] == '-') {
        neg = p[0] == '-';
        i = 1;
    }
    if (n - i == 8 && memcmp(p + i, "Infinity", 8) == 0)
        return neg ? -INFINITY : INFINITY;
    size_t d0 = i, digits = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++;
    digits += i - d0;
    if (i < n && p[i] == '.') {
        size_t f0 = ++i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        digits += i - f0;
    }
    if (digits == 0)
        return NAN;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        size_t x0 = i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == x0)
            return NAN;
    }
    if (i != n)
        return NAN;
    return strtod(p, NULL);
}

/* to_prim: ToPrimitive for arrays and objects: their string form, written to tmp.
 * Other values are returned unchanged. */
static int to_prim(const struct expr_value *v, struct buf *tmp, struct expr_value *out)
{
    int rc;
    if (v->type != EXPR_ARRAY && v->type != EXPR_OBJECT) {
        *out = *v;
        return HR_OK;
    }
    buf_reset(tmp);
    if ((rc = expr_value_text(v, tmp)) < 0)
        return rc;
    *out = mk_undef();
    out->type = EXPR_STRING;
    out->s = buf_str(tmp);
    return HR_OK;
}

/* to_number: ToNumber; tmp holds array/object string forms. */
static int to_number(const struct expr_value *v, struct buf *tmp, double *out)
{
    struct expr_value p;
    int rc = to_prim(v, tmp, &p);
    if (rc < 0)
        return rc;
    switch (p.type) {
    case EXPR_NULL:
        *out = 0;
        break;
    case EXPR_BOOL:
        *out = p.b ? 1 : 0;
        break;
    case EXPR_NUMBER:
        *out = p.num;
        break;
    case EXPR_STRING:
        *out = string_number(p.s);
        break;
    default:
        *out = NAN;
        break;
    }
    return HR_OK;
}

static bool strict_eq(const struct expr_value *a, const struct expr_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case EXPR_UNDEFINED:
    case EXPR_NULL:
        return true;
    case EXPR_BOOL:
        return a->b == b->b;
    case EXPR_NUMBER:
        return a->num == b->num;
    case EXPR_STRING:
        return str_eq(a->s, b->s);
    case EXPR_ARRAY:
    case EXPR_OBJECT:
        return a->json == b->json;
    }
    return false;
}

static bool nullish(const struct expr_value *v)
{
    return v->type == EXPR_UNDEFINED || v->type == EXPR_NULL;
}

static bool is_obj(const struct expr_value *v)
{
    return v->type == EXPR_ARRAY || v->type == EXPR_OBJECT;
}

/* loose_eq: the Abstract Equality Comparison (==). */
static int loose_eq(const struct expr_value *a, const struct expr_value *b, struct buf *tmp,
                    bool *out)
{
    struct expr_value x = *a, y = *b;
    int rc;
    for (int round = 0; round < 4; round++) {
        if (x.type == y.type || (is_obj(&x) && is_obj(&y))) {
            *out = strict_eq(&x, &y);
            return HR_OK;
        }
        if (nullish(&x) || nullish(&y)) {
            *out = nullish(&x) && nullish(&y);
            return HR_OK;
        }
        if (x.type == EXPR_BOOL) {
            x = mk_num(x.b ? 1 : 0);
        } else if (y.type == EXPR_BOOL) {
            y = mk_num(y.b ? 1 : 0);
        } else if (x.type == EXPR_NUMBER && y.type == EXPR_STRING) {
            *out = x.num == string_number(y.s);
            return HR_OK;
        } else if (x.type == EXPR_STRING && y.type == EXPR_NUMBER) {
            *out = string_number(x.s) == y.num;
            return HR_OK;
        } else if (is_obj(&x)) {
            if ((rc = to_prim(&x, tmp, &x)) < 0)
                return rc;
        } else if (is_obj(&y)) {
            if ((rc = to_prim(&y, tmp, &y)) < 0)
                return rc;
        } else {
            *out = false;
            return HR_OK;
        }
    }
    *out = false;
    return HR_OK;
}

/* compare: three-way relational comparison; *cmp is -1/0/1, or 2 when unordered
 * (a NaN was involved), as in the Abstract Relational Comparison. */
static int compare(const struct expr_value *a, const struct expr_value *b, int *cmp)
{
    struct buf ta, tb;
    struct expr_value x, y;
    double nx, ny;
    int rc;
    buf_init(&ta, EXPR_MAX_TEXT);
    buf_init(&tb, EXPR_MAX_TEXT);
    if ((rc = to_prim(a, &ta, &x)) < 0 || (rc = to_prim(b, &tb, &y)) < 0)
        goto out;
    if (x.type == EXPR_STRING && y.type == EXPR_STRING) {
        size_t n = x.s.len < y.s.len ? x.s.len : y.s.len;
        int c = n ? memcmp(x.s.p, y.s.p, n) : 0;
        if (c == 0)
            c = x.s.len < y.s.len ? -1 : x.s.len > y.s.len ? 1 : 0;
        *cmp = c < 0 ? -1 : c > 0 ? 1 : 0;
        goto out;
    }
    if ((rc = to_number(&x, &ta, &nx)) < 0 || (rc = to_number(&y, &tb, &ny)) < 0)
        goto out;
    if (isnan(nx) || isnan(ny))
        *cmp = 2;
    else
        *cmp = nx < ny ? -1 : nx > ny ? 1 : 0;
out:
    buf_cleanup(&ta);
    buf_cleanup(&tb);
    return rc;
}

size_t expr_utf16_len(struct str s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if ((c & 0xc0) != 0x80)
            n++;
        if (c >= 0xf0)
            n++;
    }
    return n;
}

static struct expr_value member(const struct expr_value *v, const struct path_seg *seg)
{
    bool is_length = seg->kind == PATH_KEY && str_eq_c(seg->key, "length");
    switch (v->type) {
    case EXPR_ARRAY:
        if (is_length)
            return mk_num(cJSON_GetArraySize(v->json));
        return expr_value_from_json(path_child(v->json, seg));
    case EXPR_OBJECT:
        return expr_value_from_json(path_child(v->json, seg));
    case EXPR_STRING:
        if (is_length)
            return mk_num((double)expr_utf16_len(v->s));
        return mk_undef();
    default:
        return mk_undef();
    }
}

static bool same_value_zero(const struct expr_value *a, const struct expr_value *b)
{
    if (a->type == EXPR_NUMBER && b->type == EXPR_NUMBER && isnan(a->num) && isnan(b->num))
        return true;
    return strict_eq(a, b);
}

static int includes(const struct expr_value *recv, const struct expr_value *arg,
                    struct expr_value *out)
{
    int rc = HR_OK;
    *out = mk_undef();
    if (recv->type == EXPR_ARRAY) {
        bool hit = false;
        for (const cJSON *c = recv->json->child; c && !hit; c = c->next) {
            struct expr_value ev = expr_value_from_json(c);
            hit = same_value_zero(&ev, arg);
        }
        *out = mk_bool(hit);
    } else if (recv->type == EXPR_STRING) {
        struct buf tmp;
        struct str needle = arg->s;
        buf_init(&tmp, EXPR_MAX_TEXT);
        if (arg->type != EXPR_STRING) {
            if ((rc = expr_value_text(arg, &tmp)) < 0) {
                buf_cleanup(&tmp);
                return rc;
            }
            needle = buf_str(&tmp);
        }
        *out = mk_bool(needle.len == 0 ||
                       memmem(recv->s.p, recv->s.len, needle.p, needle.len) != NULL);
        buf_cleanup(&tmp);
    }
    return rc;
}

/* ---------------------------------------------------------------- evaluate */

static int eval(const struct expr *e, int idx, const cJSON *ctx, struct expr_value *out)
{
    const struct node *n = &e->nodes[idx];
    struct expr_value a, b;
    int rc, cmp;
    bool eq;
    double num;

    switch (n->kind) {
    case N_LIT:
        *out = n->lit;
        return HR_OK;
    case N_PATH: {
        const struct path_seg *segs = e->segs + n->seg_off;
        size_t i = 0;
        if (n->a < 0) {
            const cJSON *root = path_root(ctx, segs, n->seg_n, &i);
            a = expr_value_from_json(root);
        } else if ((rc = eval(e, n->a, ctx, &a)) < 0) {
            return rc;
        }
        for (; i < n->seg_n && a.type != EXPR_UNDEFINED; i++)
            a = member(&a, &segs[i]);
        *out = a;
        return HR_OK;
    }
    case N_NOT:
        if ((rc = eval(e, n->a, ctx, &a)) < 0)
            return rc;
        *out = mk_bool(!expr_value_truthy(&a));
        return HR_OK;
    case N_NEG: {
        struct buf tmp;
        if ((rc = eval(e, n->a, ctx, &a)) < 0)
            return rc;
        buf_init(&tmp, EXPR_MAX_TEXT);
        rc = to_number(&a, &tmp, &num);
        buf_cleanup(&tmp);
        if (rc < 0)
            return rc;
        *out = mk_num(-num);
        return HR_OK;
    }
    case N_AND:
    case N_OR:
        if ((rc = eval(e, n->a, ctx, &a)) < 0)
            return rc;
        if (expr_value_truthy(&a) == (n->kind == N_OR)) {
            *out = a;
            return HR_OK;
        }
        return eval(e, n->b, ctx, out);
    case N_INCLUDES:
        if ((rc = eval(e, n->a, ctx, &a)) < 0 || (rc = eval(e, n->b, ctx, &b)) < 0)
            return rc;
        return includes(&a, &b, out);
    default:
        break;
    }

    if ((rc = eval(e, n->a, ctx, &a)) < 0 || (rc = eval(e, n->b, ctx, &b)) < 0)
        return rc;
    switch (n->kind) {
    case N_SEQ:
        *out = mk_bool(strict_eq(&a, &b));
        return HR_OK;
    case N_SNE:
        *out = mk_bool(!strict_eq(&a, &b));
        return HR_OK;
    case N_EQ:
    case N_NE: {
        struct buf tmp;
        buf_init(&tmp, EXPR_MAX_TEXT);
        rc = loose_eq(&a, &b, &tmp, &eq);
        buf_cleanup(&tmp);
        if (rc < 0)
            return rc;
        *out = mk_bool(n->kind == N_EQ ? eq : !eq);
        return HR_OK;
    }
    default:
        break;
    }
    if ((rc = compare(&a, &b, &cmp)) < 0)
        return rc;
    switch (n->kind) {
    case N_LT:
        *out = mk_bool(cmp == -1);
        break;
    case N_LE:
        *out = mk_bool(cmp == -1 || cmp == 0);
        break;
    case N_GT:
        *out = mk_bool(cmp == 1);
        break;
    case N_GE:
        *out = mk_bool(cmp == 1 || cmp == 0);
        break;
    default:
        *out = mk_undef();
        break;
    }
    return HR_OK;
}

int expr_eval(const struct expr *e, const cJSON *ctx, struct expr_value *out)
{
    int rc = eval(e, e->root, ctx, out);
    if (rc < 0)
        *out = mk_undef();
    return rc;
}

bool expr_truthy(const struct expr *e, const cJSON *ctx)
{
    struct expr_value v;
    if (expr_eval(e, ctx, &v) < 0)
        return false;
    return expr_value_truthy(&v);
}

/* ------------------------------------------------------------------- parse */

enum tok {
    T_EOF,
    T_NUM,
    T_STR,
    T_NAME,
    T_LP,
    T_RP,
    T_AND,
    T_OR,
    T_NOT,
    T_MINUS,
    T_EQ,
    T_NE,
    T_SEQ,
    T_SNE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_BAD,
};

struct parser {
    struct str src;
    size_t pos;
    struct expr *e;
    size_t nodes_cap, segs_cap;
    size_t pool_len, pool_cap;
    int depth;
    struct herr *err;
};

static size_t skip_ws(const struct parser *p, size_t i)
{
    while (i < p->src.len && js_space((unsigned char)p->src.p[i]))
        i++;
    return i;
}

/* peek: the token at p->pos (after blanks); *start and *end bound it. */
static enum tok peek(const struct parser *p, size_t *start, size_t *end)
{
    size_t i = skip_ws(p, p->pos);
    const char *s = p->src.p;
    size_t n = p->src.len;
    *start = i;
    *end = i + 1;
    if (i >= n) {
        *end = i;
        return T_EOF;
    }
    char c = s[i], c1 = i + 1 < n ? s[i + 1] : '\0', c2 = i + 2 < n ? s[i + 2] : '\0';
    if ((c >= '0' && c <= '9') || (c == '.' && c1 >= '0' && c1 <= '9'))
        return T_NUM;
    if (c == '"' || c == '\'')
        return T_STR;
    if (path_ident_start((unsigned char)c))
        return T_NAME;
    switch (c) {
    case '(':
        return T_LP;
    case ')':
        return T_RP;
    case '-':
        return T_MINUS;
    case '&':
        if (c1 != '&')
            return T_BAD;
        *end = i + 2;
        return T_AND;
    case '|':
        if (c1 != '|')
            return T_BAD;
        *end = i + 2;
        return T_OR;
    case '!':
    case '=':
        if (c1 == '=' && c2 == '=') {
            *end = i + 3;
            return c == '!' ? T_SNE : T_SEQ;
        }
        if (c1 == '=') {
            *end = i + 2;
            return c == '!' ? T_NE : T_EQ;
        }
        return c == '!' ? T_NOT : T_BAD;
    case '<':
    case '>':
        if (c1 == '=') {
            *end = i + 2;
            return c == '<' ? T_LE : T_GE;
        }
        return c == '<' ? T_LT : T_GT;
    default:
        return T_BAD;
    }
}

/* unexpected: the syntax error for the token at start. */
static int unexpected(struct parser *p, size_t start, const char *expected)
{
    if (start >= p->src.len)
        return herr_set(p->err, HR_INVAL, "expected %s at offset %zu (end of input)", expected,
                        start);
    unsigned char c = (unsigned char)p->src.p[start];
    if (c == '=')
        return herr_set(p->err, HR_INVAL, "unexpected '=' at offset %zu (use === to compare)",
                        start);
    if (c == '`')
        return herr_set(p->err, HR_INVAL,
                        "unexpected '`' at offset %zu (template literals are not supported)",
                        start);
    if (c >= 0x21 && c < 0x7f)
        return herr_set(p->err, HR_INVAL, "unexpected '%c' at offset %zu; expected %s", c, start,
                        expected);
    return herr_set(p->err, HR_INVAL, "unexpected character at offset %zu; expected %s", start,
                    expected);
}

static int new_node(struct parser *p, enum nkind kind, int a, int b, size_t at, int *out)
{
    struct expr *e = p->e;
    int h = 0;
    if (e->n_nodes + e->n_segs >= EXPR_MAX_NODES)
        return herr_set(p->err, HR_TOOBIG, "expression has more than %d parts (at offset %zu)",
                        EXPR_MAX_NODES, at);
    if (a >= 0)
        h = e->nodes[a].height;
    if (b >= 0 && e->nodes[b].height > h)
        h = e->nodes[b].height;
    if (h + 1 > EXPR_MAX_DEPTH)
        return herr_set(p->err, HR_TOOBIG, "expression nested deeper than %d (at offset %zu)",
                        EXPR_MAX_DEPTH, at);
    if (e->n_nodes == p->nodes_cap) {
        p->nodes_cap = p->nodes_cap ? p->nodes_cap * 2 : 16;
        e->nodes = xrealloc(e->nodes, p->nodes_cap * sizeof *e->nodes);
    }
    struct node *n = &e->nodes[e->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->a = a;
    n->b = b;
    n->height = h + 1;
    n->lit.type = EXPR_UNDEFINED;
    *out = (int)e->n_nodes++;
    return HR_OK;
}

/* add_seg: append seg, copying a key that still points into the source to the pool. */
static int add_seg(struct parser *p, const struct path_seg *seg, size_t at)
{
    struct expr *e = p->e;
    struct path_seg s = *seg;
    if (e->n_nodes + e->n_segs >= EXPR_MAX_NODES)
        return herr_set(p->err, HR_TOOBIG, "expression has more than %d parts (at offset %zu)",
                        EXPR_MAX_NODES, at);
    if (s.kind == PATH_KEY) {
        char *dst = e->pool + p->pool_len;
        if (s.key.p != dst) /* a name in the source; quoted keys were decoded in place */
            memcpy(dst, s.key.p, s.key.len);
        dst[s.key.len] = '\0';
        s.key.p = dst;
        p->pool_len += s.key.len + 1;
    }
    if (e->n_segs == p->segs_cap) {
        p->segs_cap = p->segs_cap ? p->segs_cap * 2 : 16;
        e->segs = xrealloc(e->segs, p->segs_cap * sizeof *e->segs);
    }
    e->segs[e->n_segs++] = s;
    return HR_OK;
}

static int parse_or(struct parser *p, int *out);

static int enter(struct parser *p, size_t at)
{
    if (++p->depth > EXPR_MAX_DEPTH)
        return herr_set(p->err, HR_TOOBIG, "expression nested deeper than %d (at offset %zu)",
                        EXPR_MAX_DEPTH, at);
    return HR_OK;
}

static bool is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static int parse_number(struct parser *p, size_t start, int *out)
{
    const char *s = p->src.p;
    size_t n = p->src.len, i = start;
    double v;
    int rc;
    if (i + 1 < n && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        size_t h0 = i += 2;
        while (i < n && is_hex((unsigned char)s[i]))
            i++;
        if (i == h0)
            return herr_set(p->err, HR_INVAL, "bad number at offset %zu", start);
        v = radix_number(s + h0, i - h0, 16);
    } else {
        char tmp[64];
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i < n && s[i] == '.') {
            i++;
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
        }
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
            size_t x0;
            i++;
            if (i < n && (s[i] == '+' || s[i] == '-'))
                i++;
            x0 = i;
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == x0)
                return herr_set(p->err, HR_INVAL, "bad number at offset %zu", start);
        }
        if (i - start >= sizeof tmp)
            return herr_set(p->err, HR_TOOBIG, "number at offset %zu is too long", start);
        memcpy(tmp, s + start, i - start);
        tmp[i - start] = '\0';
        v = strtod(tmp, NULL);
    }
    if (i < n && (path_ident_char((unsigned char)s[i]) || s[i] == '.'))
        return herr_set(p->err, HR_INVAL, "unexpected '%c' after number at offset %zu", s[i], i);
    if ((rc = new_node(p, N_LIT, -1, -1, start, out)) < 0)
        return rc;
    p->e->nodes[*out].lit = mk_num(v);
    p->pos = i;
    return HR_OK;
}

static int parse_string(struct parser *p, size_t start, int *out)
{
    size_t i = start, len = 0;
    char *dst = p->e->pool + p->pool_len;
    int rc = path_string(p->src, &i, dst, p->pool_cap - p->pool_len, &len, p->err);
    if (rc < 0)
        return rc;
    if ((rc = new_node(p, N_LIT, -1, -1, start, out)) < 0)
        return rc;
    p->pool_len += len + 1;
    struct expr_value *v = &p->e->nodes[*out].lit;
    v->type = EXPR_STRING;
    v->s = (struct str){dst, len};
    p->pos = i;
    return HR_OK;
}

/* keyword: the literal a reserved name stands for; false when name is a path root. */
static bool keyword(struct str name, struct expr_value *v)
{
    *v = mk_undef();
    if (str_eq_c(name, "true") || str_eq_c(name, "false")) {
        *v = mk_bool(str_eq_c(name, "true"));
        return true;
    }
    if (str_eq_c(name, "null")) {
        v->type = EXPR_NULL;
        return true;
    }
    if (str_eq_c(name, "NaN")) {
        *v = mk_num(NAN);
        return true;
    }
    if (str_eq_c(name, "Infinity")) {
        *v = mk_num(INFINITY);
        return true;
    }
    return str_eq_c(name, "undefined");
}

/* parse_primary: a literal or a parenthesized expression (names are handled by
 * parse_postfix). */
static int parse_primary(struct parser *p, int *out)
{
    size_t start, end;
    int rc;
    switch (peek(p, &start, &end)) {
    case T_NUM:
        return parse_number(p, start, out);
    case T_STR:
        return parse_string(p, start, out);
    case T_LP:
        if ((rc = enter(p, start)) < 0)
            return rc;
        p->pos = end;
        if ((rc = parse_or(p, out)) < 0)
            return rc;
        if (peek(p, &start, &end) != T_RP)
            return unexpected(p, start, "')'");
        p->pos = end;
        p->depth--;
        return HR_OK;
    default:
        return unexpected(p, start, "an expression");
    }
}

/* finish_path: turn the segments gathered since seg_off into an N_PATH over base. */
static int finish_path(struct parser *p, int base, size_t seg_off, size_t at, int *cur)
{
    int rc, idx;
    if ((rc = new_node(p, N_PATH, base, -1, at, &idx)) < 0)
        return rc;
    p->e->nodes[idx].seg_off = seg_off;
    p->e->nodes[idx].seg_n = p->e->n_segs - seg_off;
    *cur = idx;
    return HR_OK;
}

static int parse_postfix(struct parser *p, int *out)
{
    struct expr *e = p->e;
    size_t start, end, seg_off;
    int rc, cur = -1;
    bool root_path = false;
    struct expr_value kw;

    if (peek(p, &start, &end) == T_NAME) {
        struct path_seg seg;
        size_t i = start;
        if ((rc = path_first(p->src, &i, PATH_STRICT, &seg, p->err)) < 0)
            return rc;
        p->pos = i;
        if (keyword(seg.key, &kw)) {
            if ((rc = new_node(p, N_LIT, -1, -1, start, &cur)) < 0)
                return rc;
            e->nodes[cur].lit = kw;
            seg_off = e->n_segs;
        } else {
            seg_off = e->n_segs;
            if ((rc = add_seg(p, &seg, start)) < 0)
                return rc;
            root_path = true;
        }
    } else {
        if ((rc = parse_primary(p, &cur)) < 0)
            return rc;
        seg_off = e->n_segs;
    }

    while (1) {
        struct path_seg seg;
        size_t i = skip_ws(p, p->pos), at = i;
        char *scratch = e->pool + p->pool_len;
        rc = path_next(p->src, &i, PATH_STRICT, scratch, p->pool_cap - p->pool_len, &seg, p->err);
        if (rc == HR_NOTFOUND)
            break;
        if (rc < 0)
            return rc;
        size_t j = skip_ws(p, i);
        if (seg.kind == PATH_KEY && str_eq_c(seg.key, "includes") && j < p->src.len &&
            p->src.p[j] == '(') {
            int recv = cur, arg, call;
            if (root_path || e->n_segs > seg_off) {
                if ((rc = finish_path(p, cur, seg_off, at, &recv)) < 0)
                    return rc;
            }
            root_path = false;
            if ((rc = enter(p, j)) < 0)
                return rc;
            p->pos = j + 1;
            if ((rc = parse_or(p, &arg)) < 0)
                return rc;
            if (peek(p, &start, &end) != T_RP) {
                if (start < p->src.len && p->src.p[start] == ',')
                    return herr_set(p->err, HR_INVAL,
                                    "includes() takes one argument (offset %zu)", start);
                return unexpected(p, start, "')'");
            }
            p->pos = end;
            p->depth--;
            if ((rc = new_node(p, N_INCLUDES, recv, arg, at, &call)) < 0)
                return rc;
            cur = call;
            seg_off = e->n_segs;
            continue;
        }
        if ((rc = add_seg(p, &seg, at)) < 0)
            return rc;
        p->pos = i;
    }
    if (root_path || e->n_segs > seg_off) {
        if ((rc = finish_path(p, cur, seg_off, p->pos, &cur)) < 0)
            return rc;
    }
    *out = cur;
    return HR_OK;
}

static int parse_unary(struct parser *p, int *out)
{
    size_t start, end;
    int rc, child;
    enum tok t = peek(p, &start, &end);
    if (t != T_NOT && t != T_MINUS)
        return parse_postfix(p, out);
    if (t == T_MINUS && end < p->src.len && p->src.p[end] == '-')
        return herr_set(p->err, HR_INVAL, "unexpected '--' at offset %zu", start);
    if ((rc = enter(p, start)) < 0)
        return rc;
    p->pos = end;
    if ((rc = parse_unary(p, &child)) < 0)
        return rc;
    p->depth--;
    return new_node(p, t == T_NOT ? N_NOT : N_NEG, child, -1, start, out);
}

/* binary: one left-associative precedence level. */
static int binary(struct parser *p, int (*next)(struct parser *, int *), const enum tok *toks,
                  const enum nkind *kinds, size_t n, int *out)
{
    size_t start, end;
    int rc, left, right;
    if ((rc = next(p, &left)) < 0)
        return rc;
    while (1) {
        enum tok t = peek(p, &start, &end);
        size_t k;
        for (k = 0; k < n && toks[k] != t; k++)
            ;
        if (k == n)
            break;
        p->pos = end;
        if ((rc = next(p, &right)) < 0)
            return rc;
        if ((rc = new_node(p, kinds[k], left, right, start, &left)) < 0)
            return rc;
    }
    *out = left;
    return HR_OK;
}

static int parse_rel(struct parser *p, int *out)
{
    static const enum tok t[] = {T_LT, T_LE, T_GT, T_GE};
    static const enum nkind k[] = {N_LT, N_LE, N_GT, N_GE};
    return binary(p, parse_unary, t, k, 4, out);
}

static int parse_eq(struct parser *p, int *out)
{
    static const enum tok t[] = {T_EQ, T_NE, T_SEQ, T_SNE};
    static const enum nkind k[] = {N_EQ, N_NE, N_SEQ, N_SNE};
    return binary(p, parse_rel, t, k, 4, out);
}

static int parse_and(struct parser *p, int *out)
{
    static const enum tok t[] = {T_AND};
    static const enum nkind k[] = {N_AND};
    return binary(p, parse_eq, t, k, 1, out);
}

static int parse_or(struct parser *p, int *out)
{
    static const enum tok t[] = {T_OR};
    static const enum nkind k[] = {N_OR};
    return binary(p, parse_and, t, k, 1, out);
}

static void expr_destroy(struct expr *e)
{
    if (!e)
        return;
    free(e->nodes);
    free(e->segs);
    free(e->pool);
    free(e);
}

int expr_compile(const char *src, size_t len, struct expr **out, struct herr *err)
{
    struct parser p = {0};
    struct expr *e = NULL;
    size_t start, end;
    int rc = HR_OK;

    *out = NULL;
    if (len > EXPR_MAX_SRC) {
        rc = herr_set(err, HR_TOOBIG, "expression longer than %d bytes", EXPR_MAX_SRC);
        goto out;
    }
    if (len && !utf8_valid(src, len)) {
        rc = herr_set(err, HR_INVAL, "expression is not valid UTF-8");
        goto out;
    }
    e = xcalloc(1, sizeof *e);
    atomic_init(&e->refs, 1);
    p.src = (struct str){len ? src : "", len};
    p.e = e;
    p.err = err;
    /* names and literals never decode longer than their source, plus a NUL each */
    p.pool_cap = 2 * len + 2;
    e->pool = xmalloc(p.pool_cap);
    if ((rc = parse_or(&p, &e->root)) < 0)
        goto out;
    if (peek(&p, &start, &end) != T_EOF) {
        rc = unexpected(&p, start, "an operator or the end");
        goto out;
    }
    *out = e;
    e = NULL;
out:
    expr_destroy(e);
    return rc;
}

struct expr *expr_ref(struct expr *e)
{
    if (e)
        atomic_fetch_add(&e->refs, 1);
    return e;
}

void expr_unref(struct expr *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1)
        expr_destroy(e);
}
