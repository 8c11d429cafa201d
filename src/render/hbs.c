/* hbs.c: Handlebars-compatible templates. Compiling cuts the source into text and tag
 * tokens (lex), applies ~ and standalone-line whitespace rules to the text tokens
 * (ws_pass), then builds an immutable tree in the template's arena (parse_*). Rendering
 * walks that tree over a cJSON context; helper temporaries live in a per-render scratch
 * stack released after each tag, so memory stays bounded however long the loop. */
#include "hbs.h"

#include "../expr/expr.h"
#include "../expr/path.h"
#include "../util/arena.h"
#include "../util/clock.h"
#include "../util/json.h"
#include "../util/str.h"
#include "../util/xalloc.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_HASH 8          /* hash arguments of one call */
#define MAX_PATH_SEGS 64    /* segments of one path */
#define JSON_PARSE_DEPTH 32 /* json-parse helper */

/* ------------------------------------------------------------------ values */

enum vkind { V_UNDEF, V_NULL, V_BOOL, V_NUM, V_STR, V_JSON };

/* A render-time value. V_STR points into the context, the template or the scratch
 * stack; V_JSON is an object or array of the context (or of a json-parse result). */
struct val {
    unsigned char k; /* enum vkind */
    bool b;
    double n;
    const char *s;
    size_t len;
    const cJSON *j;
};

static struct val v_undef(void) { return (struct val){.k = V_UNDEF}; }

static struct val v_bool(bool b) { return (struct val){.k = V_BOOL, .b = b}; }

static struct val v_num(double n) { return (struct val){.k = V_NUM, .n = n}; }

static struct val v_str(const char *s, size_t len)
{
    return (struct val){.k = V_STR, .s = s ? s : "", .len = len};
}

static struct val from_json(const cJSON *j)
{
    if (!j)
        return v_undef();
    if (cJSON_IsNull(j))
        return (struct val){.k = V_NULL};
    if (cJSON_IsBool(j))
        return v_bool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j))
        return v_num(j->valuedouble);
    if (cJSON_IsString(j))
        return v_str(j->valuestring, j->valuestring ? strlen(j->valuestring) : 0);
    if (cJSON_IsArray(j) || cJSON_IsObject(j))
        return (struct val){.k = V_JSON, .j = j};
    return v_undef();
}

static bool nullish(struct val v) { return v.k == V_UNDEF || v.k == V_NULL; }

/* truthy: Handlebars #if and Courier's and/or/not: false for missing, null, false, 0,
 * NaN, "" and []. */
static bool truthy(struct val v)
{
    switch (v.k) {
    case V_BOOL:
        return v.b;
    case V_NUM:
        return v.n != 0 && !isnan(v.n);
    case V_STR:
        return v.len > 0;
    case V_JSON:
        return !cJSON_IsArray(v.j) || v.j->child != NULL;
    default:
        return false;
    }
}

/* is_empty: Handlebars isEmpty (#with, includeZero): like !truthy, but 0 is not empty. */
static bool is_empty(struct val v) { return !truthy(v) && !(v.k == V_NUM && v.n == 0); }

/* ------------------------------------------------------------------ tree */

enum ekind { E_LIT, E_PATH, E_CALL };

struct helper;
struct hexpr;

struct hpair {
    struct str key;
    struct hexpr *val;
};

struct hpath {
    struct str *seg; /* decoded names, in the arena */
    unsigned short nseg, up;
    bool data;   /* began with @ */
    bool scoped; /* began with this, ./ or ../: no fallback to the top-level roots */
};

struct call {
    const struct helper *h;
    struct hexpr *argv;
    struct hpair *hash;
    unsigned short argc, nhash;
};

struct hexpr {
    unsigned char kind; /* enum ekind */
    union {
        struct val lit;
        struct hpath path;
        struct call call;
    };
};

enum nkind { N_TEXT, N_OUT, N_BLOCK };
enum bkind { B_IF, B_UNLESS, B_EACH, B_WITH, B_SECTION };

struct node {
    struct node *next;
    unsigned char kind;  /* enum nkind */
    unsigned char bkind; /* enum bkind */
    bool raw;            /* N_OUT: never escaped */
    struct str text;     /* N_TEXT */
    struct hexpr e;       /* N_OUT: the value; N_BLOCK: the argument */
    struct hexpr *izero;  /* #if/#unless includeZero=, or NULL */
    struct node *body, *inverse;
};

struct hbs_tmpl {
    struct arena *a; /* owns everything, this struct included */
    int refs;
    const char *src;
    size_t len;
    struct node *root;
};

/* ------------------------------------------------------------------ render state */

struct schunk {
    struct schunk *prev;
    size_t cap, used;
    char data[];
};

struct owned {
    struct owned *next;
    cJSON *j;
};

/* Scratch stack for helper results; mark before a tag, release after it. */
struct scratch {
    struct schunk *top;
    struct owned *owned;
    size_t total;
};

struct smark {
    struct schunk *top;
    size_t used;
    struct owned *owned;
};

struct frame {
    const struct frame *parent;
    struct val ctx;
    struct val key; /* @key */
    size_t index;   /* @index */
    bool root, data, first, last;
};

struct rs {
    const cJSON *ctx, *data, *profile;
    struct buf *out;
    struct herr *err;
    bool esc, failed;
    uint64_t steps, max_steps;
    struct scratch sc;
};

struct hval {
    struct str key;
    struct val v;
};

typedef int (*helper_fn)(struct rs *r, const struct frame *f, const struct val *a, size_t n,
                         const struct hval *h, size_t nh, struct val *out);

struct helper {
    const char *name;
    helper_fn fn;
    signed char min, max; /* argument count; max < 0: any */
};

static const struct helper *helper_find(struct str name);

/* ------------------------------------------------------------------ compile: errors */

enum tkind { T_TEXT, T_COMMENT, T_OUT, T_RAW, T_OPEN, T_INVERT, T_ELSE, T_CLOSE };

struct tok {
    unsigned char kind; /* enum tkind */
    bool strip_l, strip_r;
    const char *at; /* start of the tag in the source */
    struct str s;   /* text: current range; tag: body between sigil and closer */
    struct str orig;
};

struct cc {
    struct arena *a;
    const char *src;
    size_t len;
    struct herr *err;
    struct tok *tok;
    size_t ntok, captok, ti;
};

static int cerr(struct cc *c, int rc, const char *at, const char *fmt, ...) HR_PRINTF(4, 5);

static int cerr(struct cc *c, int rc, const char *at, const char *fmt, ...)
{
    char msg[200];
    unsigned line = 1, col = 1;
    va_list ap;
    for (const char *p = c->src; p < at && p < c->src + c->len; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return herr_set(c->err, rc, "line %u, column %u: %s", line, col, msg);
}

static bool is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* id_char: a byte of a Handlebars ID (anything but whitespace and these punctuators). */
static bool id_char(unsigned char ch)
{
    if (ch <= ' ')
        return false;
    return strchr("!\"#%&'()*+,./;<=>@[\\]^`{|}~", ch) == NULL;
}

static bool alpha_(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static bool digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }

/* ------------------------------------------------------------------ compile: lexer */

static void push_tok(struct cc *c, const struct tok *t)
{
    if (c->ntok == c->captok) {
        c->captok = c->captok ? c->captok * 2 : 64;
        c->tok = xrealloc(c->tok, c->captok * sizeof *c->tok);
    }
    c->tok[c->ntok++] = *t;
}

static void push_text(struct cc *c, const char *p, size_t n)
{
    if (n) {
        struct tok t = {.kind = T_TEXT, .at = p, .s = {p, n}, .orig = {p, n}};
        push_tok(c, &t);
    }
}

/* single_brace: length of a Courier `{path}` variable starting at p, or 0. */
static size_t single_brace(const char *p, const char *end)
{
    const char *q = p + 1;
    if (q >= end || !alpha_((unsigned char)*q))
        return 0;
    for (; q < end && *q != '}'; q++) {
        unsigned char ch = (unsigned char)*q;
        if (!(alpha_(ch) || digit(ch) || ch == '-' || ch == '.'))
            return 0;
        if (ch == '.' && (q[-1] == '.' || q + 1 >= end || q[1] == '.' || q[1] == '}'))
            return 0;
    }
    return q < end ? (size_t)(q + 1 - p) : 0;
}

static int lex_comment(struct cc *c, struct tok *t, const char *p, const char **pp)
{
    const char *end = c->src + c->len;
    t->kind = T_COMMENT;
    if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
        for (const char *q = p + 2; q + 1 < end; q++) {
            if (q[0] != '-' || q[1] != '-')
                continue;
            if (end - q >= 4 && q[2] == '}' && q[3] == '}') {
                *pp = q + 4;
            } else if (end - q >= 5 && q[2] == '~' && q[3] == '}' && q[4] == '}') {
                t->strip_r = true;
                *pp = q + 5;
            } else {
                continue;
            }
            push_tok(c, t);
            return HR_OK;
        }
    } else {
        for (const char *q = p; q + 1 < end; q++) {
            if (q[0] == '}' && q[1] == '}') {
                t->strip_r = q > p && q[-1] == '~';
                *pp = q + 2;
                push_tok(c, t);
                return HR_OK;
            }
        }
    }
    return cerr(c, HR_INVAL, t->at, "comment is not closed");
}

static struct str trim(struct str s)
{
    while (s.len && is_ws(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len && is_ws(s.p[s.len - 1]))
        s.len--;
    return s;
}

/* lex_tag: *pp points at "{{"; push one tag token and move *pp past its closer. */
static int lex_tag(struct cc *c, const char **pp)
{
    const char *at = *pp, *p = at + 2, *end = c->src + c->len, *q;
    struct tok t = {.at = at};
    bool triple = false;
    if (p < end && *p == '{') {
        if (p + 1 < end && p[1] == '{')
            return cerr(c, HR_INVAL, at, "raw blocks ({{{{) are not supported");
        triple = true;
        p++;
    }
    if (p < end && *p == '~') {
        t.strip_l = true;
        p++;
    }
    t.kind = triple ? T_RAW : T_OUT;
    if (!triple && p < end) {
        switch (*p) {
        case '!':
            return lex_comment(c, &t, p + 1, pp);
        case '#':
            p++;
            if (p < end && (*p == '>' || *p == '*'))
                return cerr(c, HR_INVAL, at, "partial blocks and decorators are not supported");
            t.kind = T_OPEN;
            break;
        case '/':
            p++;
            t.kind = T_CLOSE;
            break;
        case '^':
            p++;
            t.kind = T_INVERT;
            break;
        case '&':
            p++;
            t.kind = T_RAW;
            break;
        case '>':
            return cerr(c, HR_INVAL, at, "partials are not supported");
        case '*':
            return cerr(c, HR_INVAL, at, "decorators are not supported");
        default:
            break;
        }
    }
    for (q = p; q < end; q++) {
        if (*q == '"' || *q == '\'') {
            char qc = *q++;
            while (q < end && *q != qc)
                q += (*q == '\\' && q + 1 < end) ? 2 : 1;
            if (q >= end)
                break;
            continue;
        }
        if (*q == '}' && q + 1 < end && q[1] == '}')
            break;
    }
    if (q >= end)
        return cerr(c, HR_INVAL, at, "'{{' is not closed by '}}'");
    if (triple && (q + 2 >= end || q[2] != '}'))
        return cerr(c, HR_INVAL, at, "'{{{' is not closed by '}}}'");
    t.s = (struct str){p, (size_t)(q - p)};
    if (q > p && q[-1] == '~') {
        t.strip_r = true;
        t.s.len--;
    }
    *pp = q + (triple ? 3 : 2);
    if (t.kind == T_OUT) {
        struct str b = trim(t.s);
        if (b.len >= 4 && memcmp(b.p, "else", 4) == 0 && (b.len == 4 || is_ws(b.p[4]))) {
            t.kind = T_ELSE;
            t.s = (struct str){b.p + 4, b.len - 4};
        }
    } else if (t.kind == T_INVERT && trim(t.s).len == 0) {
        t.kind = T_ELSE;
    }
    push_tok(c, &t);
    return HR_OK;
}

static int lex(struct cc *c)
{
    const char *p = c->src, *end = c->src + c->len, *text = p;
    int rc;
    while (p < end) {
        if (*p == '\\') {
            if (end - p >= 4 && p[1] == '\\' && p[2] == '{' && p[3] == '{') {
                /* \\{{x}}: a literal backslash, then a real tag */
                push_text(c, text, (size_t)(p + 1 - text));
                p += 2;
                text = p;
                continue;
            }
            if (end - p >= 2 && p[1] == '{' &&
                ((end - p >= 3 && p[2] == '{') || single_brace(p + 1, end))) {
                /* \{{x}} or \{x}: the braces are literal text */
                push_text(c, text, (size_t)(p - text));
                text = ++p;
                while (p < end && *p == '{')
                    p++;
                continue;
            }
            p++;
            continue;
        }
        if (*p != '{') {
            p++;
            continue;
        }
        if (p + 1 < end && p[1] == '{') {
            push_text(c, text, (size_t)(p - text));
            rc = lex_tag(c, &p);
            if (rc < 0)
                return rc;
            text = p;
            continue;
        }
        size_t n = single_brace(p, end);
        if (n) {
            struct tok t = {.kind = T_OUT, .at = p, .s = {p + 1, n - 2}};
            push_text(c, text, (size_t)(p - text));
            push_tok(c, &t);
            p += n;
            text = p;
            continue;
        }
        p++;
    }
    push_text(c, text, (size_t)(end - text));
    return HR_OK;
}

/* ------------------------------------------------------------------ compile: whitespace */

/* prev_ws / next_ws: Handlebars' standalone test on the original text around tag i. */
static bool prev_ws(const struct cc *c, size_t i)
{
    const struct tok *t;
    size_t n;
    if (i == 0)
        return true;
    t = &c->tok[i - 1];
    if (t->kind != T_TEXT)
        return false;
    for (n = t->orig.len; n > 0 && is_ws(t->orig.p[n - 1]); n--)
        if (t->orig.p[n - 1] == '\n')
            return true;
    return n == 0 && i == 1;
}

static bool next_ws(const struct cc *c, size_t i)
{
    const struct tok *t;
    size_t k;
    if (i + 1 >= c->ntok)
        return true;
    t = &c->tok[i + 1];
    if (t->kind != T_TEXT)
        return false;
    for (k = 0; k < t->orig.len && is_ws(t->orig.p[k]); k++)
        if (t->orig.p[k] == '\n')
            return true;
    return k == t->orig.len && i + 2 >= c->ntok;
}

static void ws_pass(struct cc *c)
{
    for (size_t i = 0; i < c->ntok; i++) {
        struct tok *t = &c->tok[i];
        struct tok *prev = i > 0 && c->tok[i - 1].kind == T_TEXT ? &c->tok[i - 1] : NULL;
        struct tok *next = i + 1 < c->ntok && c->tok[i + 1].kind == T_TEXT ? &c->tok[i + 1] : NULL;
        bool alone;
        if (t->kind == T_TEXT)
            continue;
        alone = t->kind != T_OUT && t->kind != T_RAW && prev_ws(c, i) && next_ws(c, i);
        if (t->strip_l && prev)
            while (prev->s.len && is_ws(prev->s.p[prev->s.len - 1]))
                prev->s.len--;
        if (t->strip_r && next)
            while (next->s.len && is_ws(next->s.p[0])) {
                next->s.p++;
                next->s.len--;
            }
        if (!alone)
            continue;
        if (prev)
            while (prev->s.len &&
                   (prev->s.p[prev->s.len - 1] == ' ' || prev->s.p[prev->s.len - 1] == '\t'))
                prev->s.len--;
        if (next) {
            size_t k = 0;
            while (k < next->s.len && (next->s.p[k] == ' ' || next->s.p[k] == '\t'))
                k++;
            if (k < next->s.len && next->s.p[k] == '\r')
                k++;
            if (k < next->s.len && next->s.p[k] == '\n')
                k++;
            next->s.p += k;
            next->s.len -= k;
        }
    }
}

/* ------------------------------------------------------------------ compile: expressions */

struct xp {
    struct cc *c;
    const char *p, *end;
    int depth;
};

/* Positional arguments, hash arguments and the head of one call, before resolution. */
struct parts {
    struct hexpr head;
    const char *head_at;
    struct str head_text;
    struct hexpr argv[HBS_MAX_ARGS];
    struct hpair hash[MAX_HASH];
    unsigned short argc, nhash;
};

static void xp_ws(struct xp *x)
{
    while (x->p < x->end && is_ws(*x->p))
        x->p++;
}

/* delim: q ends a literal (Handlebars' lookahead: whitespace, ) } = ~ | or the end). */
static bool delim(const struct xp *x, const char *q)
{
    return q >= x->end || is_ws(*q) || strchr(")}=~|", *q) != NULL;
}

static int parse_parts(struct xp *x, struct parts *pt, char closer);

static int parse_string(struct xp *x, struct hexpr *e)
{
    char qc = *x->p;
    const char *s = x->p + 1, *q = s;
    char *o;
    size_t n = 0;
    while (q < x->end && *q != qc)
        q += (*q == '\\' && q + 1 < x->end) ? 2 : 1;
    if (q >= x->end)
        return cerr(x->c, HR_INVAL, x->p, "string is not closed");
    o = arena_alloc(x->c->a, (size_t)(q - s) + 1);
    for (const char *r = s; r < q; r++) {
        if (*r == '\\' && r + 1 < q && r[1] == qc)
            r++; /* Handlebars unescapes only the quote itself */
        o[n++] = *r;
    }
    o[n] = '\0';
    e->kind = E_LIT;
    e->lit = v_str(o, n);
    x->p = q + 1;
    return HR_OK;
}

/* parse_path: @data paths, ../ ./ this prefixes, [literal] segments, . or / separators. */
static int parse_path(struct xp *x, struct hexpr *e)
{
    struct str segs[MAX_PATH_SEGS];
    struct hpath *hp = &e->path;
    const char *start = x->p, *p = x->p, *end = x->end;
    size_t n = 0;
    memset(hp, 0, sizeof *hp);
    e->kind = E_PATH;
    if (p < end && *p == '@') {
        hp->data = true;
        p++;
    }
    for (;;) {
        bool first = n == 0 && !hp->data;
        if (p < end && *p == '[') {
            const char *q = memchr(p + 1, ']', (size_t)(end - p - 1));
            if (!q)
                return cerr(x->c, HR_INVAL, p, "'[' is not closed");
            if (n == MAX_PATH_SEGS)
                return cerr(x->c, HR_TOOBIG, start, "path has more than %d segments",
                            MAX_PATH_SEGS);
            segs[n++] = (struct str){p + 1, (size_t)(q - p - 1)};
            p = q + 1;
        } else if (end - p >= 2 && p[0] == '.' && p[1] == '.' &&
                   (end - p == 2 || p[2] == '/' || delim(x, p + 2))) {
            if (!first || (hp->scoped && hp->up == 0))
                return cerr(x->c, HR_INVAL, start, "'..' may only start a path");
            hp->up++;
            hp->scoped = true;
            p += 2;
        } else if (p < end && *p == '.' && (end - p == 1 || p[1] == '/' || delim(x, p + 1))) {
            if (!first || hp->scoped)
                return cerr(x->c, HR_INVAL, start, "'.' may only start a path");
            hp->scoped = true;
            p++;
        } else {
            const char *q = p;
            while (q < end && id_char((unsigned char)*q))
                q++;
            if (q == p)
                return cerr(x->c, HR_INVAL, p, "expected a name");
            if (first && !hp->scoped && q - p == 4 && memcmp(p, "this", 4) == 0) {
                hp->scoped = true;
            } else {
                if (n == MAX_PATH_SEGS)
                    return cerr(x->c, HR_TOOBIG, start, "path has more than %d segments",
                                MAX_PATH_SEGS);
                segs[n++] = (struct str){p, (size_t)(q - p)};
            }
            p = q;
        }
        if (p < end && (*p == '.' || *p == '/') && p + 1 < end &&
            (id_char((unsigned char)p[1]) || p[1] == '[' || p[1] == '.')) {
            p++;
            continue;
        }
        break;
    }
    if (hp->data && n == 0)
        return cerr(x->c, HR_INVAL, start, "expected a name after '@'");
    if (p < end && !delim(x, p) && *p != '(')
        return cerr(x->c, HR_INVAL, p, "unexpected '%c' in a path", *p);
    hp->nseg = (unsigned short)n;
    if (n) {
        hp->seg = arena_alloc(x->c->a, n * sizeof *segs);
        for (size_t i = 0; i < n; i++)
            hp->seg[i] = arena_str(x->c->a, segs[i]);
    }
    x->p = p;
    return HR_OK;
}

static bool keyword(const struct xp *x, const char *kw)
{
    size_t n = strlen(kw);
    return (size_t)(x->end - x->p) >= n && memcmp(x->p, kw, n) == 0 && delim(x, x->p + n);
}

static int make_value(struct xp *x, struct parts *pt, struct hexpr *e, bool sub);

/* parse_param: one literal, path or (subexpression). */
static int parse_param(struct xp *x, struct hexpr *e)
{
    const char *p = x->p, *q;
    if (p >= x->end)
        return cerr(x->c, HR_INVAL, p, "expected a value");
    if (*p == '"' || *p == '\'')
        return parse_string(x, e);
    if (*p == '(') {
        struct parts *pt;
        int rc;
        if (x->depth >= HBS_MAX_DEPTH)
            return cerr(x->c, HR_TOOBIG, p, "subexpressions nested deeper than %d", HBS_MAX_DEPTH);
        pt = xcalloc(1, sizeof *pt);
        x->depth++;
        x->p++;
        rc = parse_parts(x, pt, ')');
        if (rc == HR_OK) {
            if (x->p >= x->end || *x->p != ')')
                rc = cerr(x->c, HR_INVAL, p, "'(' is not closed");
            else
                x->p++;
        }
        if (rc == HR_OK)
            rc = make_value(x, pt, e, true);
        x->depth--;
        free(pt);
        return rc;
    }
    q = p;
    if (q < x->end && *q == '-')
        q++;
    if (q < x->end && digit((unsigned char)*q)) {
        while (q < x->end && digit((unsigned char)*q))
            q++;
        if (q + 1 < x->end && *q == '.' && digit((unsigned char)q[1]))
            for (q++; q < x->end && digit((unsigned char)*q); q++)
                ;
        if (delim(x, q)) {
            char tmp[64];
            str_copy(tmp, sizeof tmp, (struct str){p, (size_t)(q - p)});
            e->kind = E_LIT;
            e->lit = v_num(strtod(tmp, NULL));
            x->p = q;
            return HR_OK;
        }
    }
    if (keyword(x, "true") || keyword(x, "false")) {
        e->kind = E_LIT;
        e->lit = v_bool(*p == 't');
        x->p += *p == 't' ? 4 : 5;
        return HR_OK;
    }
    if (keyword(x, "null") || keyword(x, "undefined")) {
        e->kind = E_LIT;
        e->lit = (struct val){.k = *p == 'n' ? V_NULL : V_UNDEF};
        x->p += *p == 'n' ? 4 : 9;
        return HR_OK;
    }
    return parse_path(x, e);
}

/* parse_parts: head, then positional arguments, then key=value pairs, up to closer
 * (or the end of the tag when closer is 0). */
static int parse_parts(struct xp *x, struct parts *pt, char closer)
{
    int rc;
    xp_ws(x);
    pt->head_at = x->p;
    if (x->p >= x->end || *x->p == closer)
        return cerr(x->c, HR_INVAL, x->p, "empty expression");
    rc = parse_param(x, &pt->head);
    if (rc < 0)
        return rc;
    pt->head_text = (struct str){pt->head_at, (size_t)(x->p - pt->head_at)};
    for (;;) {
        const char *q;
        xp_ws(x);
        if (x->p >= x->end || (closer && *x->p == closer))
            break;
        if (*x->p == '|' || (*x->p == 'a' && keyword(x, "as")))
            return cerr(x->c, HR_INVAL, x->p, "block parameters (as |x|) are not supported");
        for (q = x->p; q < x->end && id_char((unsigned char)*q); q++)
            ;
        if (q > x->p && q < x->end && *q == '=') {
            struct hpair *hp;
            if (pt->nhash == MAX_HASH)
                return cerr(x->c, HR_TOOBIG, x->p, "more than %d hash arguments", MAX_HASH);
            hp = &pt->hash[pt->nhash];
            hp->key = arena_str(x->c->a, (struct str){x->p, (size_t)(q - x->p)});
            hp->val = arena_zalloc(x->c->a, sizeof *hp->val);
            x->p = q + 1;
            xp_ws(x);
            rc = parse_param(x, hp->val);
            if (rc < 0)
                return rc;
            pt->nhash++;
            continue;
        }
        if (pt->nhash)
            return cerr(x->c, HR_INVAL, x->p, "positional argument after a hash argument");
        if (pt->argc == HBS_MAX_ARGS)
            return cerr(x->c, HR_TOOBIG, x->p, "more than %d arguments", HBS_MAX_ARGS);
        rc = parse_param(x, &pt->argv[pt->argc]);
        if (rc < 0)
            return rc;
        pt->argc++;
    }
    return HR_OK;
}

static bool simple_name(const struct hexpr *e)
{
    return e->kind == E_PATH && e->path.nseg == 1 && !e->path.data && !e->path.scoped;
}

static int check_condition_op(struct xp *x, const struct parts *pt);

/* make_value: turn parts into an expression: a helper call when there are arguments (or
 * a subexpression names a helper), else the head's value (a variable or literal). */
static int make_value(struct xp *x, struct parts *pt, struct hexpr *e, bool sub)
{
    const struct helper *h = NULL;
    struct call *cl;
    if (simple_name(&pt->head) && (pt->argc || pt->nhash || sub))
        h = helper_find(pt->head.path.seg[0]);
    if (!pt->argc && !pt->nhash && !h) {
        *e = pt->head;
        return HR_OK;
    }
    if (!simple_name(&pt->head))
        return cerr(x->c, HR_INVAL, pt->head_at, "'%.*s' is not a helper", STR_FMT(pt->head_text));
    if (!h)
        return cerr(x->c, HR_INVAL, pt->head_at, "unknown helper '%.*s'", STR_FMT(pt->head_text));
    if (pt->argc < h->min || (h->max >= 0 && pt->argc > h->max)) {
        if (h->max == h->min)
            return cerr(x->c, HR_INVAL, pt->head_at, "helper '%s' takes %d argument%s", h->name,
                        h->min, h->min == 1 ? "" : "s");
        if (h->max < 0)
            return cerr(x->c, HR_INVAL, pt->head_at, "helper '%s' takes at least %d argument%s",
                        h->name, h->min, h->min == 1 ? "" : "s");
        return cerr(x->c, HR_INVAL, pt->head_at, "helper '%s' takes %d to %d arguments", h->name,
                    h->min, h->max);
    }
    if (strcmp(h->name, "condition") == 0) {
        int rc = check_condition_op(x, pt);
        if (rc < 0)
            return rc;
    }
    e->kind = E_CALL;
    cl = &e->call;
    memset(cl, 0, sizeof *cl);
    cl->h = h;
    cl->argc = pt->argc;
    cl->nhash = pt->nhash;
    if (pt->argc) {
        cl->argv = arena_alloc(x->c->a, pt->argc * sizeof *cl->argv);
        memcpy(cl->argv, pt->argv, pt->argc * sizeof *cl->argv);
    }
    if (pt->nhash) {
        cl->hash = arena_alloc(x->c->a, pt->nhash * sizeof *cl->hash);
        memcpy(cl->hash, pt->hash, pt->nhash * sizeof *cl->hash);
    }
    return HR_OK;
}

/* ------------------------------------------------------------------ compile: blocks */

static struct node *new_node(struct cc *c, int kind)
{
    struct node *n = arena_zalloc(c->a, sizeof *n);
    n->kind = (unsigned char)kind;
    return n;
}

static int parse_tag_parts(struct cc *c, const struct tok *t, struct parts *pt)
{
    struct xp x = {c, t->s.p, t->s.p + t->s.len, 0};
    int rc = parse_parts(&x, pt, 0);
    if (rc == HR_OK && x.p < x.end)
        rc = cerr(c, HR_INVAL, x.p, "unexpected '%c'", *x.p);
    return rc;
}

static int parse_out(struct cc *c, const struct tok *t, struct node **out)
{
    struct parts *pt = xcalloc(1, sizeof *pt);
    struct node *n = new_node(c, N_OUT);
    struct xp x = {c, t->s.p, t->s.p + t->s.len, 0};
    int rc = parse_tag_parts(c, t, pt);
    if (rc == HR_OK)
        rc = make_value(&x, pt, &n->e, false);
    free(pt);
    n->raw = t->kind == T_RAW;
    *out = n;
    return rc;
}

/* block_head: the block node for "#name args" (or the "else name args" of a chain). */
static int block_head(struct cc *c, const struct tok *t, struct node **out, struct str *name)
{
    static const struct {
        const char *name;
        int kind;
    } builtins[] = {{"if", B_IF}, {"unless", B_UNLESS}, {"each", B_EACH}, {"with", B_WITH}};
    struct parts *pt = xcalloc(1, sizeof *pt);
    struct node *n = new_node(c, N_BLOCK);
    struct xp x = {c, t->s.p, t->s.p + t->s.len, 0};
    int rc = parse_tag_parts(c, t, pt);
    if (rc < 0)
        goto out;
    *name = pt->head_text;
    n->bkind = B_SECTION;
    for (size_t i = 0; simple_name(&pt->head) && i < sizeof builtins / sizeof builtins[0]; i++)
        if (str_eq_c(pt->head.path.seg[0], builtins[i].name))
            n->bkind = (unsigned char)builtins[i].kind;
    if (n->bkind == B_SECTION) {
        if (pt->head.kind == E_LIT && !pt->argc)
            rc = cerr(c, HR_INVAL, pt->head_at, "a block needs a name");
        else
            rc = make_value(&x, pt, &n->e, false);
        goto out;
    }
    if (pt->argc != 1) {
        rc = cerr(c, HR_INVAL, pt->head_at, "'#%.*s' takes one argument", STR_FMT(pt->head_text));
        goto out;
    }
    n->e = pt->argv[0];
    for (size_t i = 0; i < pt->nhash; i++) {
        if ((n->bkind == B_IF || n->bkind == B_UNLESS) &&
            str_eq_c(pt->hash[i].key, "includeZero")) {
            n->izero = pt->hash[i].val;
        } else {
            rc = cerr(c, HR_INVAL, pt->head_at, "'#%.*s' has no option '%.*s'",
                      STR_FMT(pt->head_text), STR_FMT(pt->hash[i].key));
            goto out;
        }
    }
out:
    free(pt);
    *out = n;
    return rc;
}

static int parse_list(struct cc *c, int depth, struct node **head, const struct tok **stop);

static int parse_block(struct cc *c, int depth, const struct tok *open, struct node **out)
{
    struct node *n, *cur;
    const struct tok *stop = NULL;
    struct str name, close;
    bool plain_else = false;
    int rc;
    if (depth > HBS_MAX_DEPTH)
        return cerr(c, HR_TOOBIG, open->at, "blocks nested deeper than %d", HBS_MAX_DEPTH);
    rc = block_head(c, open, &n, &name);
    *out = n;
    if (rc < 0)
        return rc;
    rc = parse_list(c, depth, &n->body, &stop);
    cur = n;
    while (rc == HR_OK && stop && stop->kind == T_ELSE) {
        if (plain_else)
            return cerr(c, HR_INVAL, stop->at, "'{{else}}' after '{{else}}' in '{{#%.*s}}'",
                        STR_FMT(name));
        if (trim(stop->s).len) {
            struct node *nb;
            struct str ignored;
            if (++depth > HBS_MAX_DEPTH)
                return cerr(c, HR_TOOBIG, stop->at, "blocks nested deeper than %d", HBS_MAX_DEPTH);
            rc = block_head(c, stop, &nb, &ignored);
            if (rc < 0)
                return rc;
            cur->inverse = nb;
            cur = nb;
            rc = parse_list(c, depth, &cur->body, &stop);
        } else {
            plain_else = true;
            rc = parse_list(c, depth, &cur->inverse, &stop);
        }
    }
    if (rc < 0)
        return rc;
    if (!stop)
        return cerr(c, HR_INVAL, open->at, "'{{#%.*s}}' is not closed", STR_FMT(name));
    close = trim(stop->s);
    if (!str_eq(close, name))
        return cerr(c, HR_INVAL, stop->at, "'{{/%.*s}}' does not close '{{#%.*s}}'", STR_FMT(close),
                    STR_FMT(name));
    if (open->kind == T_INVERT) {
        struct node *tmp = n->body;
        n->body = n->inverse;
        n->inverse = tmp;
    }
    return HR_OK;
}

/* parse_list: nodes from c->ti up to an else or close tag (consumed, returned in *stop)
 * or the end of the tokens (*stop = NULL). */
static int parse_list(struct cc *c, int depth, struct node **head, const struct tok **stop)
{
    struct node **tail = head;
    int rc = HR_OK;
    *stop = NULL;
    while (c->ti < c->ntok) {
        const struct tok *t = &c->tok[c->ti++];
        struct node *n = NULL;
        switch (t->kind) {
        case T_TEXT:
            if (t->s.len) {
                n = new_node(c, N_TEXT);
                n->text = t->s;
            }
            break;
        case T_COMMENT:
            break;
        case T_OUT:
        case T_RAW:
            rc = parse_out(c, t, &n);
            break;
        case T_OPEN:
        case T_INVERT:
            rc = parse_block(c, depth + 1, t, &n);
            break;
        default: /* T_ELSE, T_CLOSE */
            *stop = t;
            return HR_OK;
        }
        if (rc < 0)
            return rc;
        if (n) {
            *tail = n;
            tail = &n->next;
        }
    }
    return HR_OK;
}

static int parse_top(struct cc *c, struct node **root)
{
    const struct tok *stop;
    int rc = parse_list(c, 0, root, &stop);
    if (rc < 0 || !stop)
        return rc;
    if (stop->kind == T_ELSE)
        return cerr(c, HR_INVAL, stop->at, "'{{else}}' outside a block");
    return cerr(c, HR_INVAL, stop->at, "'{{/%.*s}}' closes no open block", STR_FMT(trim(stop->s)));
}

/* ------------------------------------------------------------------ render: scratch */

static int rfail(struct rs *r, int rc, const char *fmt, ...) HR_PRINTF(3, 4);

static int rfail(struct rs *r, int rc, const char *fmt, ...)
{
    if (!r->failed && r->err) {
        va_list ap;
        r->err->rc = rc;
        va_start(ap, fmt);
        vsnprintf(r->err->msg, sizeof r->err->msg, fmt, ap);
        va_end(ap);
    }
    r->failed = true;
    return rc;
}

static struct smark smark(const struct rs *r)
{
    return (struct smark){r->sc.top, r->sc.top ? r->sc.top->used : 0, r->sc.owned};
}

static void srelease(struct rs *r, struct smark m)
{
    while (r->sc.top != m.top) {
        struct schunk *c = r->sc.top;
        r->sc.top = c->prev;
        r->sc.total -= c->cap;
        free(c);
    }
    if (r->sc.top)
        r->sc.top->used = m.used;
    while (r->sc.owned != m.owned) {
        struct owned *o = r->sc.owned;
        r->sc.owned = o->next;
        cJSON_Delete(o->j);
        free(o);
    }
}

/* salloc: n bytes of scratch, alive until the enclosing tag's release; NULL past the cap. */
static char *salloc(struct rs *r, size_t n)
{
    struct schunk *c = r->sc.top;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 4096 ? n : 4096;
        if (n > HBS_SCRATCH_MAX || r->sc.total + cap > HBS_SCRATCH_MAX) {
            rfail(r, HR_TOOBIG, "helper temporaries exceed %u bytes", HBS_SCRATCH_MAX);
            return NULL;
        }
        c = xmalloc(sizeof *c + cap);
        c->prev = r->sc.top;
        c->cap = cap;
        c->used = 0;
        r->sc.top = c;
        r->sc.total += cap;
    }
    c->used += n;
    return c->data + c->used - n;
}

static int sdup(struct rs *r, const char *p, size_t n, struct val *out)
{
    char *s = salloc(r, n + 1);
    if (!s)
        return HR_TOOBIG;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    *out = v_str(s, n);
    return HR_OK;
}

/* ------------------------------------------------------------------ render: text forms */

/* prim_str: the text of a non-array value; numbers are written into tmp (>= 32 bytes). */
static struct str prim_str(struct val v, char *tmp)
{
    switch (v.k) {
    case V_BOOL:
        return v.b ? STR_LIT("true") : STR_LIT("false");
    case V_NUM:
        return (struct str){tmp, expr_num_text(v.n, tmp)};
    case V_STR:
        return (struct str){v.s, v.len};
    case V_JSON:
        return STR_LIT("[object Object]");
    default:
        return STR_LIT("");
    }
}

static int put(struct buf *b, const char *p, size_t n, bool esc)
{
    size_t run = 0;
    int rc;
    if (!esc)
        return buf_append(b, p, n);
    for (size_t i = 0; i < n; i++) {
        const char *ent;
        switch (p[i]) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#x27;";
            break;
        case '`':
            ent = "&#x60;";
            break;
        case '=':
            ent = "&#x3D;";
            break;
        default:
            continue;
        }
        rc = buf_append(b, p + run, i - run);
        if (rc == HR_OK)
            rc = buf_append_c(b, ent);
        if (rc < 0)
            return rc;
        run = i + 1;
    }
    return buf_append(b, p + run, n - run);
}

/* write_val: append v's text form to b (arrays joined with ",", as JavaScript does). */
static int write_val(struct buf *b, struct val v, bool esc, int depth)
{
    char tmp[32];
    struct str s;
    int rc = HR_OK;
    if (v.k == V_JSON && cJSON_IsArray(v.j)) {
        if (depth >= HBS_MAX_DEPTH)
            return HR_OK;
        for (const cJSON *c = v.j->child; c && rc == HR_OK; c = c->next) {
            if (c != v.j->child)
                rc = buf_putc(b, ',');
            if (rc == HR_OK)
                rc = write_val(b, from_json(c), esc, depth + 1);
        }
        return rc;
    }
    s = prim_str(v, tmp);
    return put(b, s.p, s.len, esc && v.k == V_STR);
}

/* to_str: the text form of v, in scratch when it had to be built. */
static int to_str(struct rs *r, struct val v, struct str *out)
{
    char tmp[32];
    struct buf b;
    struct val sv = v_undef();
    int rc;
    if (v.k != V_NUM && !(v.k == V_JSON && cJSON_IsArray(v.j))) {
        *out = prim_str(v, tmp);
        return HR_OK;
    }
    buf_init(&b, HBS_SCRATCH_MAX);
    rc = write_val(&b, v, false, 0);
    if (rc == HR_OK)
        rc = sdup(r, buf_cstr(&b), b.len, &sv);
    else
        rc = rfail(r, rc, "helper temporaries exceed %u bytes", HBS_SCRATCH_MAX);
    buf_cleanup(&b);
    if (rc == HR_OK)
        *out = (struct str){sv.s, sv.len};
    return rc;
}

/* ------------------------------------------------------------------ render: lookup */

static struct val member(struct val v, struct str k)
{
    if (v.k == V_JSON && cJSON_IsObject(v.j)) {
        if (k.len && memchr(k.p, '\0', k.len))
            return v_undef(); /* cJSON keys cannot hold NUL */
        /* strncmp stops at the key's NUL, so c->string[k.len] is only read when in bounds */
        for (const cJSON *c = v.j->child; c; c = c->next)
            if (c->string && strncmp(c->string, k.p, k.len) == 0 && c->string[k.len] == '\0')
                return from_json(c);
        return v_undef();
    }
    if (v.k == V_JSON) {
        size_t idx, i = 0;
        if (str_eq_c(k, "length"))
            return v_num((double)cJSON_GetArraySize(v.j));
        if (!path_index_name(k, &idx))
            return v_undef();
        for (const cJSON *c = v.j->child; c; c = c->next, i++)
            if (i == idx)
                return from_json(c);
        return v_undef();
    }
    if (v.k == V_STR && str_eq_c(k, "length"))
        return v_num((double)expr_utf16_len((struct str){v.s, v.len}));
    return v_undef();
}

static struct val walk(struct val v, const struct str *seg, size_t n)
{
    for (size_t i = 0; i < n && v.k != V_UNDEF; i++)
        v = member(v, seg[i]);
    return v;
}

/* root_lookup: the top-level rule: data, then profile, then the context itself. */
static struct val root_lookup(const struct rs *r, const struct str *seg, size_t n)
{
    struct val v;
    if (n == 0)
        return from_json(r->ctx);
    if (r->data) {
        v = walk(from_json(r->data), seg, n);
        if (v.k != V_UNDEF)
            return v;
    }
    if (r->profile) {
        v = walk(from_json(r->profile), seg, n);
        if (v.k != V_UNDEF)
            return v;
    }
    return r->ctx ? walk(from_json(r->ctx), seg, n) : v_undef();
}

static struct val resolve(const struct rs *r, const struct frame *f, const struct hpath *p)
{
    const struct frame *fr = f;
    struct val v;
    if (p->data) {
        struct str name = p->seg[0];
        if (str_eq_c(name, "root"))
            return root_lookup(r, p->seg + 1, p->nseg - 1u);
        while (fr && !fr->data)
            fr = fr->parent;
        if (!fr)
            return v_undef();
        if (str_eq_c(name, "index"))
            v = v_num((double)fr->index);
        else if (str_eq_c(name, "key"))
            v = fr->key;
        else if (str_eq_c(name, "first"))
            v = v_bool(fr->first);
        else if (str_eq_c(name, "last"))
            v = v_bool(fr->last);
        else
            return v_undef();
        return walk(v, p->seg + 1, p->nseg - 1u);
    }
    for (unsigned i = 0; i < p->up && fr->parent; i++)
        fr = fr->parent;
    if (fr->root)
        return root_lookup(r, p->seg, p->nseg);
    v = walk(fr->ctx, p->seg, p->nseg);
    if (v.k != V_UNDEF || p->scoped)
        return v;
    return root_lookup(r, p->seg, p->nseg);
}

/* resolve_str: a path given as a string (var/path helpers): "a.b", "a[0].b", "a['k']",
 * "$.data.a"; resolved like a bare {{path}}. */
static struct val resolve_str(const struct rs *r, const struct frame *f, struct str s)
{
    struct str seg[MAX_PATH_SEGS];
    struct hpath p = {.seg = seg};
    size_t i = 0, n = 0;
    if (s.len && s.p[0] == '$') {
        i = 1;
        if (i < s.len && s.p[i] == '.')
            i++;
    }
    while (i < s.len) {
        size_t j = i;
        if (n == MAX_PATH_SEGS)
            return v_undef();
        if (s.p[i] == '[') {
            const char *q = memchr(s.p + i + 1, ']', s.len - i - 1);
            size_t a, b;
            if (!q)
                return v_undef();
            a = i + 1;
            b = (size_t)(q - s.p);
            if (b - a >= 2 && (s.p[a] == '\'' || s.p[a] == '"') && s.p[b - 1] == s.p[a]) {
                a++;
                b--;
            }
            seg[n++] = (struct str){s.p + a, b - a};
            i = (size_t)(q - s.p) + 1;
        } else {
            while (j < s.len && s.p[j] != '.' && s.p[j] != '[')
                j++;
            if (j == i)
                return v_undef();
            seg[n++] = (struct str){s.p + i, j - i};
            i = j;
        }
        if (i < s.len && s.p[i] == '.') {
            i++;
            if (i == s.len)
                return v_undef();
        }
    }
    p.nseg = (unsigned short)n;
    return resolve(r, f, &p);
}

/* ------------------------------------------------------------------ helpers */

#define HELPER(fn)                                                                                 \
    static int fn(struct rs *r, const struct frame *f, const struct val *a, size_t n,              \
                  const struct hval *h, size_t nh, struct val *out)

static bool as_num(struct val v, double *d)
{
    char tmp[64], *end;
    struct str s;
    if (v.k == V_NUM) {
        *d = v.n;
        return !isnan(v.n);
    }
    if (v.k != V_STR)
        return false;
    s = trim((struct str){v.s, v.len});
    if (s.len == 0 || s.len >= sizeof tmp)
        return false;
    str_copy(tmp, sizeof tmp, s);
    if (!(digit((unsigned char)tmp[0]) || tmp[0] == '-' || tmp[0] == '+' || tmp[0] == '.'))
        return false; /* no "inf", "nan" or hex */
    if (strchr(tmp, 'x') || strchr(tmp, 'X'))
        return false;
    *d = strtod(tmp, &end);
    return *end == '\0' && !isnan(*d);
}

static bool strict_eq(struct val a, struct val b)
{
    if (a.k != b.k)
        return false;
    switch (a.k) {
    case V_BOOL:
        return a.b == b.b;
    case V_NUM:
        return a.n == b.n;
    case V_STR:
        return a.len == b.len && (a.len == 0 || memcmp(a.s, b.s, a.len) == 0);
    case V_JSON:
        return a.j == b.j;
    default:
        return true;
    }
}

/* loose_eq: condition's "==": strict, or both nullish, or equal as numbers, or the same
 * text (so true == "true" and 1 == "1"). */
static bool loose_eq(struct val a, struct val b)
{
    char ta[32], tb[32];
    double x, y;
    if (strict_eq(a, b))
        return true;
    if (nullish(a) || nullish(b))
        return nullish(a) && nullish(b);
    if (a.k == V_JSON || b.k == V_JSON)
        return false;
    if (as_num(a, &x) && as_num(b, &y))
        return x == y;
    return str_eq(prim_str(a, ta), prim_str(b, tb));
}

/* compare: numbers (or numeric strings) numerically, other strings bytewise; false
 * (no order) otherwise. */
static bool compare(struct val a, struct val b, int *cmp)
{
    double x, y;
    if (as_num(a, &x) && as_num(b, &y)) {
        *cmp = x < y ? -1 : x > y;
        return true;
    }
    if (a.k == V_STR && b.k == V_STR) {
        size_t m = a.len < b.len ? a.len : b.len;
        int c = m ? memcmp(a.s, b.s, m) : 0;
        *cmp = c ? (c < 0 ? -1 : 1) : (a.len < b.len ? -1 : a.len > b.len);
        return true;
    }
    return false;
}

HELPER(h_eq)
{
    *out = v_bool(strict_eq(a[0], a[1]));
    return HR_OK;
}

HELPER(h_ne)
{
    *out = v_bool(!strict_eq(a[0], a[1]));
    return HR_OK;
}

HELPER(h_gt)
{
    int c;
    *out = v_bool(compare(a[0], a[1], &c) && c > 0);
    return HR_OK;
}

HELPER(h_gte)
{
    int c;
    *out = v_bool(compare(a[0], a[1], &c) && c >= 0);
    return HR_OK;
}

HELPER(h_lt)
{
    int c;
    *out = v_bool(compare(a[0], a[1], &c) && c < 0);
    return HR_OK;
}

HELPER(h_lte)
{
    int c;
    *out = v_bool(compare(a[0], a[1], &c) && c <= 0);
    return HR_OK;
}

HELPER(h_and)
{
    bool all = true;
    for (size_t i = 0; i < n && all; i++)
        all = truthy(a[i]);
    *out = v_bool(all);
    return HR_OK;
}

HELPER(h_or)
{
    bool any = false;
    for (size_t i = 0; i < n && !any; i++)
        any = truthy(a[i]);
    *out = v_bool(any);
    return HR_OK;
}

HELPER(h_not)
{
    *out = v_bool(!truthy(a[0]));
    return HR_OK;
}

static const char *const cond_ops[] = {"==", "===", "!=", "!==", ">", ">=", "<", "<=", "&&", "||"};

static int cond_op(struct str op)
{
    for (size_t i = 0; i < sizeof cond_ops / sizeof cond_ops[0]; i++)
        if (str_eq_c(op, cond_ops[i]))
            return (int)i;
    return -1;
}

static int check_condition_op(struct xp *x, const struct parts *pt)
{
    const struct hexpr *op = &pt->argv[1];
    if (op->kind == E_LIT &&
        (op->lit.k != V_STR || cond_op((struct str){op->lit.s, op->lit.len}) < 0))
        return cerr(x->c, HR_INVAL, pt->head_at, "condition: unsupported operator");
    return HR_OK;
}

HELPER(h_condition)
{
    int c = 0, op = a[1].k == V_STR ? cond_op((struct str){a[1].s, a[1].len}) : -1;
    bool res = false;
    switch (op) {
    case 0:
        res = loose_eq(a[0], a[2]);
        break;
    case 1:
        res = strict_eq(a[0], a[2]);
        break;
    case 2:
        res = !loose_eq(a[0], a[2]);
        break;
    case 3:
        res = !strict_eq(a[0], a[2]);
        break;
    case 4:
    case 5:
    case 6:
    case 7:
        if (compare(a[0], a[2], &c))
            res = op == 4 ? c > 0 : op == 5 ? c >= 0 : op == 6 ? c < 0 : c <= 0;
        break;
    case 8:
        res = truthy(a[0]) && truthy(a[2]);
        break;
    case 9:
        res = truthy(a[0]) || truthy(a[2]);
        break;
    default:
        return rfail(r, HR_INVAL, "condition: unsupported operator");
    }
    *out = v_bool(res);
    return HR_OK;
}

HELPER(h_default)
{
    *out = v_undef();
    for (size_t i = 0; i < n; i++) {
        if (!nullish(a[i])) {
            *out = a[i];
            break;
        }
    }
    return HR_OK;
}

HELPER(h_var)
{
    *out = a[0].k == V_STR ? resolve_str(r, f, (struct str){a[0].s, a[0].len}) : v_undef();
    return HR_OK;
}

HELPER(h_lookup)
{
    char tmp[32];
    *out = a[1].k == V_STR || a[1].k == V_NUM ? member(a[0], prim_str(a[1], tmp)) : v_undef();
    return HR_OK;
}

HELPER(h_json_parse)
{
    cJSON *j = NULL;
    struct owned *o;
    *out = v_undef();
    if (a[0].k != V_STR)
        return HR_OK;
    if (json_parse_bounded(a[0].s, a[0].len, JSON_PARSE_DEPTH, &j, NULL) < 0)
        return HR_OK; /* not JSON: nothing, like a missing value */
    o = xmalloc(sizeof *o);
    o->j = j;
    o->next = r->sc.owned;
    r->sc.owned = o;
    *out = from_json(j);
    return HR_OK;
}

static char ascii_upper(char ch) { return ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch; }

static char ascii_lower(char ch) { return ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch; }

/* map_str: copy of a[0]'s text with fn applied to byte 0 (first) or to all bytes. */
static int map_str(struct rs *r, struct val v, char (*fn)(char), bool first, struct val *out)
{
    struct str s;
    int rc = to_str(r, v, &s);
    if (rc == HR_OK)
        rc = sdup(r, s.p, s.len, out);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < out->len && (!first || i == 0); i++)
        ((char *)out->s)[i] = fn(out->s[i]);
    return HR_OK;
}

HELPER(h_capitalize) { return map_str(r, a[0], ascii_upper, true, out); }

HELPER(h_uppercase) { return map_str(r, a[0], ascii_upper, false, out); }

HELPER(h_lowercase) { return map_str(r, a[0], ascii_lower, false, out); }

HELPER(h_concat)
{
    struct str sep = STR_LIT(""), parts[HBS_MAX_ARGS];
    size_t total = 0, o = 0;
    char *p;
    int rc = HR_OK;
    for (size_t i = 0; i < nh; i++)
        if (str_eq_c(h[i].key, "separator"))
            rc = to_str(r, h[i].v, &sep);
    for (size_t i = 0; i < n && rc == HR_OK; i++) {
        rc = to_str(r, a[i], &parts[i]);
        total += parts[i].len + (i ? sep.len : 0);
    }
    if (rc < 0)
        return rc;
    p = salloc(r, total + 1);
    if (!p)
        return HR_TOOBIG;
    for (size_t i = 0; i < n; i++) {
        if (i && sep.len) {
            memcpy(p + o, sep.p, sep.len);
            o += sep.len;
        }
        if (parts[i].len)
            memcpy(p + o, parts[i].p, parts[i].len);
        o += parts[i].len;
    }
    p[o] = '\0';
    *out = v_str(p, o);
    return HR_OK;
}

static int trim_sides(struct rs *r, struct val v, bool left, bool right, struct val *out)
{
    struct str s;
    int rc = to_str(r, v, &s);
    if (rc < 0)
        return rc;
    while (left && s.len && is_ws(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (right && s.len && is_ws(s.p[s.len - 1]))
        s.len--;
    *out = v_str(s.p, s.len);
    return HR_OK;
}

HELPER(h_trim) { return trim_sides(r, a[0], true, true, out); }

HELPER(h_trim_left) { return trim_sides(r, a[0], true, false, out); }

HELPER(h_trim_right) { return trim_sides(r, a[0], false, true, out); }

HELPER(h_trim_one_char_right)
{
    struct str s;
    int rc = to_str(r, a[0], &s);
    if (rc < 0)
        return rc;
    if (s.len) {
        s.len--;
        while (s.len && ((unsigned char)s.p[s.len] & 0xc0) == 0x80)
            s.len--;
    }
    *out = v_str(s.p, s.len);
    return HR_OK;
}

HELPER(h_truncate)
{
    struct str s, suffix = STR_LIT("");
    double lim;
    size_t cps = 0, cut;
    int rc = to_str(r, a[0], &s);
    if (rc == HR_OK && n > 2)
        rc = to_str(r, a[2], &suffix);
    if (rc < 0)
        return rc;
    if (!as_num(a[1], &lim)) {
        *out = v_str(s.p, s.len);
        return HR_OK;
    }
    if (lim < 0)
        lim = 0;
    for (cut = 0; cut < s.len; cut++) {
        if (((unsigned char)s.p[cut] & 0xc0) != 0x80) {
            if ((double)cps >= lim)
                break;
            cps++;
        }
    }
    if (cut == s.len) {
        *out = v_str(s.p, s.len);
        return HR_OK;
    }
    char *p = salloc(r, cut + suffix.len + 1);
    if (!p)
        return HR_TOOBIG;
    memcpy(p, s.p, cut);
    if (suffix.len)
        memcpy(p + cut, suffix.p, suffix.len);
    p[cut + suffix.len] = '\0';
    *out = v_str(p, cut + suffix.len);
    return HR_OK;
}

/* h_format: "%s" text, "%d"/"%i" integer, "%f" number, "%%"; like Node's util.format,
 * a placeholder without an argument stays as written and extra arguments are appended
 * with spaces. The format is never given to printf. */
HELPER(h_format)
{
    struct buf b;
    struct str fmt, s;
    size_t ai = 1;
    int rc = to_str(r, a[0], &fmt);
    if (rc < 0)
        return rc;
    buf_init(&b, HBS_SCRATCH_MAX);
    for (size_t i = 0; i < fmt.len && rc == HR_OK; i++) {
        char ch = i + 1 < fmt.len ? fmt.p[i + 1] : 0;
        if (fmt.p[i] != '%' || !ch || !strchr("sdif%", ch)) {
            rc = buf_putc(&b, fmt.p[i]);
            continue;
        }
        i++;
        if (ch == '%') {
            rc = buf_putc(&b, '%');
        } else if (ai >= n) {
            rc = buf_putc(&b, '%');
            if (rc == HR_OK)
                rc = buf_putc(&b, ch);
        } else if (ch == 's') {
            rc = write_val(&b, a[ai++], false, 0);
        } else {
            double d;
            char tmp[32];
            if (!as_num(a[ai++], &d))
                d = NAN;
            if (ch != 'f')
                d = trunc(d);
            rc = buf_append(&b, tmp, expr_num_text(d, tmp));
        }
    }
    for (; ai < n && rc == HR_OK; ai++) {
        rc = buf_putc(&b, ' ');
        if (rc == HR_OK)
            rc = write_val(&b, a[ai], false, 0);
    }
    if (rc == HR_OK) {
        s = buf_str(&b);
        rc = sdup(r, s.p, s.len, out);
    } else {
        rc = rfail(r, rc, "format: result larger than %u bytes", HBS_SCRATCH_MAX);
    }
    buf_cleanup(&b);
    return rc;
}

/* to_ms: a datetime given as ms since the epoch (number or digit string) or ISO-8601. */
static bool to_ms(struct val v, int64_t *ms)
{
    double d;
    if (v.k == V_NUM) {
        if (!isfinite(v.n) || fabs(v.n) > 8.64e15)
            return false;
        *ms = (int64_t)floor(v.n);
        return true;
    }
    if (v.k != V_STR)
        return false;
    if (time_parse_iso(v.s, v.len, ms) == 0)
        return true;
    if (as_num(v, &d) && isfinite(d) && fabs(d) <= 8.64e15) {
        *ms = (int64_t)floor(d);
        return true;
    }
    return false;
}

static const char *const months[] = {"January",   "February", "March",    "April",
                                     "May",       "June",     "July",     "August",
                                     "September", "October",  "November", "December"};
static const char *const wdays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                    "Thursday", "Friday", "Saturday"};

/* fmt_date: moment-style tokens (YYYY YY MMMM MMM MM M Do DD D dddd ddd HH H hh h mm m ss
 * s SSS A a Z ZZ X x, [literal]); other bytes are copied. */
static int fmt_date(struct buf *b, struct str fmt, int64_t ms, const struct tm *tm)
{
    static const struct {
        const char *tok;
        int id;
    } toks[] = {{"YYYY", 1}, {"YY", 2},   {"MMMM", 3}, {"MMM", 4},   {"MM", 5},   {"M", 6},
                {"Do", 7},   {"DD", 8},   {"D", 9},    {"dddd", 10}, {"ddd", 11}, {"HH", 12},
                {"H", 13},   {"hh", 14},  {"h", 15},   {"mm", 16},   {"m", 17},   {"ss", 18},
                {"s", 19},   {"SSS", 20}, {"A", 21},   {"a", 22},    {"ZZ", 23},  {"Z", 24},
                {"X", 25},   {"x", 26}};
    int rc = HR_OK, h12 = tm->tm_hour % 12 ? tm->tm_hour % 12 : 12;
    long long frac = ((ms % 1000) + 1000) % 1000;
    for (size_t i = 0; i < fmt.len && rc == HR_OK;) {
        int id = 0;
        size_t tl = 0;
        if (fmt.p[i] == '[') {
            const char *q = memchr(fmt.p + i + 1, ']', fmt.len - i - 1);
            if (q) {
                rc = buf_append(b, fmt.p + i + 1, (size_t)(q - fmt.p - i - 1));
                i = (size_t)(q - fmt.p) + 1;
                continue;
            }
        }
        for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
            tl = strlen(toks[k].tok);
            if (fmt.len - i >= tl && memcmp(fmt.p + i, toks[k].tok, tl) == 0) {
                id = toks[k].id;
                break;
            }
        }
        if (!id) {
            rc = buf_putc(b, fmt.p[i++]);
            continue;
        }
        i += tl;
        switch (id) {
        case 1:
            rc = buf_printf(b, "%04d", tm->tm_year + 1900);
            break;
        case 2:
            rc = buf_printf(b, "%02d", (tm->tm_year + 1900) % 100);
            break;
        case 3:
            rc = buf_append_c(b, months[tm->tm_mon]);
            break;
        case 4:
            rc = buf_append(b, months[tm->tm_mon], 3);
            break;
        case 5:
            rc = buf_printf(b, "%02d", tm->tm_mon + 1);
            break;
        case 6:
            rc = buf_printf(b, "%d", tm->tm_mon + 1);
            break;
        case 7: {
            int d = tm->tm_mday;
            const char *suf = (d % 100 >= 11 && d % 100 <= 13) ? "th"
                              : d % 10 == 1                    ? "st"
                              : d % 10 == 2                    ? "nd"
                              : d % 10 == 3                    ? "rd"
                                                               : "th";
            rc = buf_printf(b, "%d%s", d, suf);
            break;
        }
        case 8:
            rc = buf_printf(b, "%02d", tm->tm_mday);
            break;
        case 9:
            rc = buf_printf(b, "%d", tm->tm_mday);
            break;
        case 10:
            rc = buf_append_c(b, wdays[tm->tm_wday]);
            break;
        case 11:
            rc = buf_append(b, wdays[tm->tm_wday], 3);
            break;
        case 12:
            rc = buf_printf(b, "%02d", tm->tm_hour);
            break;
        case 13:
            rc = buf_printf(b, "%d", tm->tm_hour);
            break;
        case 14:
            rc = buf_printf(b, "%02d", h12);
            break;
        case 15:
            rc = buf_printf(b, "%d", h12);
            break;
        case 16:
            rc = buf_printf(b, "%02d", tm->tm_min);
            break;
        case 17:
            rc = buf_printf(b, "%d", tm->tm_min);
            break;
        case 18:
            rc = buf_printf(b, "%02d", tm->tm_sec);
            break;
        case 19:
            rc = buf_printf(b, "%d", tm->tm_sec);
            break;
        case 20:
            rc = buf_printf(b, "%03lld", frac);
            break;
        case 21:
            rc = buf_append_c(b, tm->tm_hour < 12 ? "AM" : "PM");
            break;
        case 22:
            rc = buf_append_c(b, tm->tm_hour < 12 ? "am" : "pm");
            break;
        case 23:
            rc = buf_append_c(b, "+0000");
            break;
        case 24:
            rc = buf_append_c(b, "+00:00");
            break;
        case 25:
            rc = buf_printf(b, "%lld", (long long)((ms - frac) / 1000));
            break;
        default:
            rc = buf_printf(b, "%lld", (long long)ms);
            break;
        }
    }
    return rc;
}

HELPER(h_datetime_format)
{
    int64_t ms;
    time_t secs;
    struct tm tm;
    struct buf b;
    struct str fmt = STR_LIT("YYYY-MM-DDTHH:mm:ss.SSS[Z]");
    int rc = HR_OK;
    *out = v_undef();
    if (!to_ms(a[0], &ms))
        return HR_OK;
    if (n > 1 && !nullish(a[1])) {
        rc = to_str(r, a[1], &fmt);
        if (rc < 0)
            return rc;
    }
    secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    if (!gmtime_r(&secs, &tm))
        return HR_OK;
    buf_init(&b, 64 * 1024);
    rc = fmt_date(&b, fmt, ms, &tm);
    if (rc == HR_OK)
        rc = sdup(r, buf_cstr(&b), b.len, out);
    else
        rc = rfail(r, rc, "datetime-format: result too large");
    buf_cleanup(&b);
    return rc;
}

enum mop { M_ADD, M_SUB, M_MUL, M_DIV, M_MOD, M_ABS, M_CEIL, M_FLOOR, M_ROUND, M_INC };

static int math(const struct val *a, size_t n, int op, struct val *out)
{
    double x, y = 0, z;
    *out = v_undef();
    if (!as_num(a[0], &x) || (n > 1 && !as_num(a[1], &y)))
        return HR_OK;
    switch (op) {
    case M_ADD:
        z = x + y;
        break;
    case M_SUB:
        z = x - y;
        break;
    case M_MUL:
        z = x * y;
        break;
    case M_DIV:
        if (y == 0)
            return HR_OK;
        z = x / y;
        break;
    case M_MOD:
        if (y == 0)
            return HR_OK;
        z = fmod(x, y);
        break;
    case M_ABS:
        z = fabs(x);
        break;
    case M_CEIL:
        z = ceil(x);
        break;
    case M_FLOOR:
        z = floor(x);
        break;
    case M_ROUND:
        z = floor(x + 0.5); /* JavaScript Math.round */
        break;
    default:
        z = x + 1;
        break;
    }
    *out = v_num(z);
    return HR_OK;
}

#define MATH_HELPER(fn, op)                                                                        \
    HELPER(fn) { return math(a, n, op, out); }
MATH_HELPER(h_add, M_ADD)
MATH_HELPER(h_sub, M_SUB)
MATH_HELPER(h_mul, M_MUL)
MATH_HELPER(h_div, M_DIV)
MATH_HELPER(h_mod, M_MOD)
MATH_HELPER(h_abs, M_ABS)
MATH_HELPER(h_ceil, M_CEIL)
MATH_HELPER(h_floor, M_FLOOR)
MATH_HELPER(h_round, M_ROUND)
MATH_HELPER(h_inc, M_INC)

static const struct helper helpers[] = {
    {"eq", h_eq, 2, 2},
    {"ne", h_ne, 2, 2},
    {"gt", h_gt, 2, 2},
    {"gte", h_gte, 2, 2},
    {"lt", h_lt, 2, 2},
    {"lte", h_lte, 2, 2},
    {"and", h_and, 0, -1},
    {"or", h_or, 0, -1},
    {"not", h_not, 1, 1},
    {"condition", h_condition, 3, 3},
    {"default", h_default, 1, -1},
    {"var", h_var, 1, 1},
    {"path", h_var, 1, 1},
    {"lookup", h_lookup, 2, 2},
    {"json-parse", h_json_parse, 1, 1},
    {"capitalize", h_capitalize, 1, 1},
    {"concat", h_concat, 0, -1},
    {"trim", h_trim, 1, 1},
    {"trim-left", h_trim_left, 1, 1},
    {"trim-right", h_trim_right, 1, 1},
    {"trim-one-char-right", h_trim_one_char_right, 1, 1},
    {"truncate", h_truncate, 2, 3},
    {"format", h_format, 1, -1},
    {"uppercase", h_uppercase, 1, 1},
    {"lowercase", h_lowercase, 1, 1},
    {"datetime-format", h_datetime_format, 1, 2},
    {"add", h_add, 2, 2},
    {"subtract", h_sub, 2, 2},
    {"sub", h_sub, 2, 2},
    {"multiply", h_mul, 2, 2},
    {"divide", h_div, 2, 2},
    {"mod", h_mod, 2, 2},
    {"abs", h_abs, 1, 1},
    {"ceil", h_ceil, 1, 1},
    {"floor", h_floor, 1, 1},
    {"round", h_round, 1, 1},
    {"inc", h_inc, 1, 1},
};

static const struct helper *helper_find(struct str name)
{
    for (size_t i = 0; i < sizeof helpers / sizeof helpers[0]; i++)
        if (str_eq_c(name, helpers[i].name))
            return &helpers[i];
    return NULL;
}

/* ------------------------------------------------------------------ render: tree walk */

static int step(struct rs *r)
{
    if (++r->steps <= r->max_steps)
        return HR_OK;
    return rfail(r, HR_TOOBIG, "render budget of %llu steps exceeded",
                 (unsigned long long)r->max_steps);
}

/* charge: a helper's work by bytes touched, one step per HBS_BYTES_PER_STEP, so an O(n)
 * helper on a long string costs what it does and not one step. */
static int charge(struct rs *r, size_t bytes)
{
    r->steps += bytes / HBS_BYTES_PER_STEP;
    if (r->steps <= r->max_steps)
        return HR_OK;
    return rfail(r, HR_TOOBIG, "render budget of %llu steps exceeded (helpers are charged "
                 "one step per %u bytes they read or write)",
                 (unsigned long long)r->max_steps, HBS_BYTES_PER_STEP);
}

static int eval(struct rs *r, const struct frame *f, const struct hexpr *e, struct val *out)
{
    size_t bytes = 0;
    struct val argv[HBS_MAX_ARGS];
    struct hval hv[MAX_HASH];
    const struct call *c = &e->call;
    int rc = step(r);
    if (rc < 0)
        return rc;
    switch (e->kind) {
    case E_LIT:
        *out = e->lit;
        return HR_OK;
    case E_PATH:
        *out = resolve(r, f, &e->path);
        return HR_OK;
    default:
        break;
    }
    for (size_t i = 0; i < c->argc; i++) {
        rc = eval(r, f, &c->argv[i], &argv[i]);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < c->nhash; i++) {
        hv[i].key = c->hash[i].key;
        rc = eval(r, f, c->hash[i].val, &hv[i].v);
        if (rc < 0)
            return rc;
        if (hv[i].v.k == V_STR)
            bytes += hv[i].v.len;
    }
    for (size_t i = 0; i < c->argc; i++)
        if (argv[i].k == V_STR)
            bytes += argv[i].len;
    if ((rc = charge(r, bytes)) < 0) /* its input, before it runs */
        return rc;
    rc = c->h->fn(r, f, argv, c->argc, hv, c->nhash, out);
    if (rc == HR_OK && out->k == V_STR)
        rc = charge(r, out->len); /* and its output */
    return rc;
}

static int emit(struct rs *r, struct val v, bool esc)
{
    int rc = write_val(r->out, v, esc, 0);
    if (rc < 0)
        return rfail(r, rc, "output is larger than %zu bytes", r->out->max);
    return HR_OK;
}

static int render_list(struct rs *r, const struct frame *f, const struct node *n);

/* iterate: #each (and sections over arrays): the body once per element, with @index,
 * @key, @first, @last; the inverse when there is none. */
static int iterate(struct rs *r, const struct frame *f, const struct node *n, struct val v)
{
    size_t i = 0;
    int rc = HR_OK;
    if (v.k == V_JSON) {
        bool obj = cJSON_IsObject(v.j);
        for (const cJSON *c = v.j->child; c && rc == HR_OK; c = c->next, i++) {
            struct frame fr = {.parent = f,
                               .ctx = from_json(c),
                               .index = i,
                               .data = true,
                               .first = i == 0,
                               .last = c->next == NULL};
            fr.key = obj ? v_str(c->string, c->string ? strlen(c->string) : 0) : v_num((double)i);
            rc = step(r);
            if (rc == HR_OK)
                rc = render_list(r, &fr, n->body);
        }
    }
    if (rc == HR_OK && i == 0)
        rc = render_list(r, f, n->inverse);
    return rc;
}

static int render_block(struct rs *r, const struct frame *f, const struct node *n)
{
    struct val v, iz;
    bool t;
    int rc = eval(r, f, &n->e, &v);
    if (rc < 0)
        return rc;
    switch (n->bkind) {
    case B_IF:
    case B_UNLESS:
        t = truthy(v);
        if (!t && n->izero) {
            rc = eval(r, f, n->izero, &iz);
            if (rc < 0)
                return rc;
            t = truthy(iz) && !is_empty(v);
        }
        if (n->bkind == B_UNLESS)
            t = !t;
        return render_list(r, f, t ? n->body : n->inverse);
    case B_EACH:
        return iterate(r, f, n, v);
    case B_WITH:
        if (is_empty(v))
            return render_list(r, f, n->inverse);
        {
            struct frame fr = {.parent = f, .ctx = v};
            return render_list(r, &fr, n->body);
        }
    default: /* B_SECTION: Handlebars' blockHelperMissing */
        if (v.k == V_BOOL && v.b)
            return render_list(r, f, n->body);
        if (nullish(v) || v.k == V_BOOL)
            return render_list(r, f, n->inverse);
        if (v.k == V_JSON && cJSON_IsArray(v.j))
            return iterate(r, f, n, v);
        {
            struct frame fr = {.parent = f, .ctx = v};
            return render_list(r, &fr, n->body);
        }
    }
}

static int render_list(struct rs *r, const struct frame *f, const struct node *n)
{
    int rc = HR_OK;
    for (; n && rc == HR_OK; n = n->next) {
        struct smark m;
        struct val v;
        rc = step(r);
        if (rc < 0)
            break;
        if (n->kind == N_TEXT) {
            if (buf_append(r->out, n->text.p, n->text.len) < 0)
                rc = rfail(r, HR_TOOBIG, "output is larger than %zu bytes", r->out->max);
            continue;
        }
        m = smark(r);
        if (n->kind == N_OUT) {
            rc = eval(r, f, &n->e, &v);
            if (rc == HR_OK)
                rc = emit(r, v, r->esc && !n->raw);
        } else {
            rc = render_block(r, f, n);
        }
        srelease(r, m);
    }
    return rc;
}

/* ------------------------------------------------------------------ public: templates */

int hbs_compile(const char *src, size_t len, struct hbs_tmpl **out, struct herr *err)
{
    struct cc c = {0};
    struct hbs_tmpl *t;
    struct arena *a;
    int rc;
    *out = NULL;
    if (!src && len)
        return herr_set(err, HR_INVAL, "template source is NULL");
    if (len > HBS_MAX_SRC)
        return herr_set(err, HR_TOOBIG, "template is %zu bytes, over the limit of %u", len,
                        HBS_MAX_SRC);
    a = arena_new(len < 2048 ? 4096 : 2 * len);
    t = arena_zalloc(a, sizeof *t);
    t->a = a;
    t->refs = 1;
    t->src = arena_strndup(a, src ? src : "", len);
    t->len = len;
    c.a = a;
    c.src = t->src;
    c.len = len;
    c.err = err;
    rc = lex(&c);
    if (rc == HR_OK) {
        ws_pass(&c);
        rc = parse_top(&c, &t->root);
    }
    free(c.tok);
    if (rc < 0) {
        arena_free(a);
        return rc;
    }
    *out = t;
    return HR_OK;
}

struct hbs_tmpl *hbs_ref(struct hbs_tmpl *t)
{
    if (t)
        __atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
    return t;
}

void hbs_unref(struct hbs_tmpl *t)
{
    if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
        arena_free(t->a);
}

const char *hbs_source(const struct hbs_tmpl *t, size_t *len)
{
    if (len)
        *len = t->len;
    return t->src;
}

int hbs_render_ex(const struct hbs_tmpl *t, const cJSON *ctx, const struct hbs_render_opts *o,
                  struct buf *out, struct herr *err)
{
    struct rs r = {0};
    struct frame root = {.root = true};
    size_t start = out->len;
    int rc;
    r.ctx = cJSON_IsObject(ctx) ? ctx : NULL;
    r.data = r.ctx ? json_member(r.ctx, "data") : NULL;
    r.profile = r.ctx ? json_member(r.ctx, "profile") : NULL;
    r.out = out;
    r.err = err;
    r.esc = !o || o->mode == HBS_HTML;
    r.max_steps = o && o->max_steps ? o->max_steps : HBS_DEFAULT_STEPS;
    root.ctx = from_json(r.ctx);
    rc = render_list(&r, &root, t->root);
    srelease(&r, (struct smark){0});
    if (rc < 0) {
        out->len = start;
        if (out->p)
            out->p[start] = '\0';
    }
    return rc;
}

int hbs_render(const struct hbs_tmpl *t, const cJSON *ctx, enum hbs_mode mode, struct buf *out,
               struct herr *err)
{
    struct hbs_render_opts o = {.mode = mode};
    return hbs_render_ex(t, ctx, &o, out, err);
}

/* ------------------------------------------------------------------ public: cache */

struct centry {
    struct centry *hnext;       /* bucket chain */
    struct centry *prev, *next; /* LRU list, head = most recently used */
    uint64_t hash;
    size_t bytes;
    struct hbs_tmpl *t;
};

struct hbs_cache {
    pthread_mutex_t mu;
    struct centry **bucket;
    size_t nbucket; /* power of two */
    struct centry *head, *tail;
    size_t n, max_entries, bytes, max_bytes;
    uint64_t hits, misses, evictions;
};

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

struct hbs_cache *hbs_cache_new(size_t max_entries, size_t max_bytes)
{
    struct hbs_cache *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->max_entries = max_entries ? max_entries : 1;
    c->max_bytes = max_bytes;
    c->nbucket = 16;
    while (c->nbucket < 2 * c->max_entries && c->nbucket < ((size_t)1 << 20))
        c->nbucket *= 2;
    c->bucket = xcalloc(c->nbucket, sizeof *c->bucket);
    return c;
}

static void lru_unlink(struct hbs_cache *c, struct centry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(struct hbs_cache *c, struct centry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

/* find: the entry for src (caller holds mu). */
static struct centry *find(struct hbs_cache *c, uint64_t h, const char *src, size_t len)
{
    for (struct centry *e = c->bucket[h & (c->nbucket - 1)]; e; e = e->hnext)
        if (e->hash == h && e->t->len == len && (len == 0 || memcmp(e->t->src, src, len) == 0))
            return e;
    return NULL;
}

/* remove_entry: unlink e from bucket and LRU (caller holds mu); returns its template. */
static struct hbs_tmpl *remove_entry(struct hbs_cache *c, struct centry *e)
{
    struct centry **pp = &c->bucket[e->hash & (c->nbucket - 1)];
    struct hbs_tmpl *t = e->t;
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    c->n--;
    c->bytes -= e->bytes;
    free(e);
    return t;
}

void hbs_cache_free(struct hbs_cache *c)
{
    if (!c)
        return;
    while (c->head)
        hbs_unref(remove_entry(c, c->head));
    free(c->bucket);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int hbs_cache_get(struct hbs_cache *c, const char *src, size_t len, struct hbs_tmpl **out,
                  struct herr *err)
{
    uint64_t h = fnv1a(src ? src : "", src ? len : 0);
    struct hbs_tmpl *t = NULL, *victims[8];
    struct centry *e;
    size_t nv = 0;
    int rc;
    *out = NULL;
    if ((!src && len) || len > HBS_MAX_SRC)
        return hbs_compile(src, len, out, err); /* fails with the reason */
    pthread_mutex_lock(&c->mu);
    e = find(c, h, src, len);
    if (e) {
        c->hits++;
        lru_unlink(c, e);
        lru_push_front(c, e);
        *out = hbs_ref(e->t);
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    if (*out)
        return HR_OK;
    rc = hbs_compile(src, len, &t, err); /* outside the lock: compiles run in parallel */
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&c->mu);
    e = find(c, h, src, len);
    if (e) { /* another thread won the race: share its template */
        *out = hbs_ref(e->t);
        victims[nv++] = t;
    } else {
        e = xcalloc(1, sizeof *e);
        e->hash = h;
        e->t = t;
        e->bytes = len + arena_used(t->a);
        e->hnext = c->bucket[h & (c->nbucket - 1)];
        c->bucket[h & (c->nbucket - 1)] = e;
        lru_push_front(c, e);
        c->n++;
        c->bytes += e->bytes;
        *out = hbs_ref(t);
        while (c->tail != e && nv < sizeof victims / sizeof victims[0] &&
               (c->n > c->max_entries || (c->max_bytes && c->bytes > c->max_bytes))) {
            victims[nv++] = remove_entry(c, c->tail);
            c->evictions++;
        }
    }
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < nv; i++)
        hbs_unref(victims[i]);
    return HR_OK;
}

void hbs_cache_stats(struct hbs_cache *c, struct hbs_cache_stats *st)
{
    pthread_mutex_lock(&c->mu);
    st->hits = c->hits;
    st->misses = c->misses;
    st->evictions = c->evictions;
    st->entries = c->n;
    st->bytes = c->bytes;
    pthread_mutex_unlock(&c->mu);
}
