/* elemental.c: Courier Elemental content to per-channel output (see elemental.h). One walk
 * of the element tree per channel writes up to three sinks at once: email HTML blocks,
 * plain text and Markdown; the channel's fields are then assembled from them. */
#include "elemental.h"

#include "../expr/expr.h"
#include "../util/buf.h"
#include "../util/json.h"
#include "../util/xalloc.h"
#include "layout.h"
#include "markdown.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_LEN 384      /* element path in messages: "elements[1].elements[0]" */
#define EPATH_SEGS 32     /* segments of an if/loop path */
#define DEFAULT_ACCENT "#2563eb"
#define DIVIDER_COLOR "#e5e7eb"
#define QUOTE_COLOR "#d1d5db"
#define MUTED "#6b7280"

/* ------------------------------------------------------------------ paths */

struct seg {
    const char *p;
    size_t len;
};

struct epath {
    struct seg s[EPATH_SEGS];
    unsigned n;
};

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$' || c == '@';
}

/* parse_path: s[0..n) as a.b[0]["k"].c; false on a syntax error. Segments point into s. */
static bool parse_path(const char *s, size_t n, struct epath *out)
{
    size_t i = 0;
    out->n = 0;
    if (n == 0)
        return false;
    while (i < n) {
        struct seg sg;
        if (out->n == EPATH_SEGS)
            return false;
        if (s[i] == '[') {
            size_t j = i + 1;
            if (j < n && (s[j] == '"' || s[j] == '\'')) {
                const char *q = memchr(s + j + 1, s[j], n - j - 1);
                if (!q || (size_t)(q - s) + 1 >= n || q[1] != ']')
                    return false;
                sg = (struct seg){s + j + 1, (size_t)(q - s) - j - 1};
                i = (size_t)(q - s) + 2;
            } else {
                while (j < n && isdigit((unsigned char)s[j]))
                    j++;
                if (j == i + 1 || j >= n || s[j] != ']' || j - i - 1 > 9)
                    return false;
                sg = (struct seg){s + i + 1, j - i - 1};
                i = j + 1;
            }
        } else {
            size_t j = i;
            if (i > 0) {
                if (s[i] != '.')
                    return false;
                j = ++i;
            }
            while (j < n && ident_char(s[j]))
                j++;
            if (j == i)
                return false;
            sg = (struct seg){s + i, j - i};
            i = j;
        }
        out->s[out->n++] = sg;
    }
    return true;
}

static const cJSON *member(const cJSON *v, struct seg sg)
{
    if (cJSON_IsObject(v)) {
        for (const cJSON *c = v->child; c; c = c->next)
            if (c->string && strlen(c->string) == sg.len && memcmp(c->string, sg.p, sg.len) == 0)
                return c;
        return NULL;
    }
    if (cJSON_IsArray(v) && sg.len && sg.len <= 9) {
        int idx = 0;
        for (size_t i = 0; i < sg.len; i++) {
            if (!isdigit((unsigned char)sg.p[i]))
                return NULL;
            idx = idx * 10 + (sg.p[i] - '0');
        }
        return cJSON_GetArrayItem(v, idx);
    }
    return NULL;
}

static const cJSON *walk(const cJSON *v, const struct epath *p, unsigned from)
{
    for (unsigned i = from; v && i < p->n; i++)
        v = member(v, p->s[i]);
    return v;
}

/* lookup: the value at p in ctx, or NULL (undefined). A bare path tries data, then
 * profile, then ctx itself (as hbs does); "$.x" is the loop variable, else "x". */
static const cJSON *lookup(const cJSON *ctx, const struct epath *p)
{
    const cJSON *v;
    unsigned from = 0;
    if (p->n == 0 || !cJSON_IsObject(ctx))
        return NULL;
    if (p->s[0].len == 1 && p->s[0].p[0] == '$') {
        if ((v = walk(ctx, p, 0)) != NULL)
            return v;
        from = 1;
        if (p->n == 1)
            return NULL;
    }
    if ((v = walk(json_member(ctx, "data"), p, from)) != NULL)
        return v;
    if ((v = walk(json_member(ctx, "profile"), p, from)) != NULL)
        return v;
    return walk(ctx, p, from);
}

/* ------------------------------------------------------------------ conditions */

enum cop { COP_NONE, COP_SEQ, COP_SNE, COP_EQ, COP_NE };

struct operand {
    bool is_path;
    struct epath path;
    struct expr_value lit; /* a string literal points into the source, without NUL */
};

struct cond {
    unsigned neg; /* leading ! count */
    struct operand a, b;
    enum cop op;
};

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && isspace((unsigned char)*p))
        p++;
    return p;
}

/* parse_operand: a literal or a path at *pp; advances *pp. */
static bool parse_operand(const char **pp, const char *end, struct operand *o)
{
    const char *p = *pp, *q;
    memset(o, 0, sizeof *o);
    if (p >= end)
        return false;
    if (*p == '"' || *p == '\'') {
        q = p + 1;
        while (q < end && *q != *p && *q != '\\')
            q++;
        if (q >= end || *q != *p)
            return false;
        o->lit = (struct expr_value){.type = EXPR_STRING, .s = {p + 1, (size_t)(q - p - 1)}};
        *pp = q + 1;
        return true;
    }
    if (isdigit((unsigned char)*p) || *p == '-' || *p == '+' || *p == '.') {
        char tmp[64], *e;
        size_t n = 0;
        for (q = p; q < end && (isalnum((unsigned char)*q) || *q == '.' || *q == '-' || *q == '+');
             q++)
            n++;
        if (n == 0 || n >= sizeof tmp)
            return false;
        memcpy(tmp, p, n);
        tmp[n] = '\0';
        o->lit.type = EXPR_NUMBER;
        o->lit.num = strtod(tmp, &e);
        if (*e || !isfinite(o->lit.num))
            return false;
        *pp = q;
        return true;
    }
    /* a path: identifier characters, dots and bracket groups */
    for (q = p; q < end;) {
        if (ident_char(*q) || *q == '.') {
            q++;
        } else if (*q == '[') {
            const char *r = q + 1;
            if (r < end && (*r == '"' || *r == '\'')) {
                const char *c = memchr(r + 1, *r, (size_t)(end - r - 1));
                if (!c)
                    return false;
                r = c + 1;
            }
            r = memchr(r, ']', (size_t)(end - r));
            if (!r)
                return false;
            q = r + 1;
        } else {
            break;
        }
    }
    if (q == p)
        return false;
#define IS_WORD(w) ((size_t)(q - p) == sizeof(w) - 1 && memcmp(p, w, sizeof(w) - 1) == 0)
    if (IS_WORD("true") || IS_WORD("false"))
        o->lit = (struct expr_value){.type = EXPR_BOOL, .b = IS_WORD("true")};
    else if (IS_WORD("null"))
        o->lit.type = EXPR_NULL;
    else if (IS_WORD("undefined"))
        o->lit.type = EXPR_UNDEFINED;
    else if (parse_path(p, (size_t)(q - p), &o->path))
        o->is_path = true;
    else
        return false;
#undef IS_WORD
    *pp = q;
    return true;
}

/* parse_cond: the supported `if` subset (elemental.h); false when unsupported. */
static bool parse_cond(const char *s, struct cond *c)
{
    const char *p = s, *end = s + strlen(s);
    memset(c, 0, sizeof *c);
    p = skip_ws(p, end);
    while (p < end && *p == '!' && !(p + 1 < end && p[1] == '=')) {
        if (++c->neg > 8)
            return false;
        p = skip_ws(p + 1, end);
    }
    if (!parse_operand(&p, end, &c->a))
        return false;
    p = skip_ws(p, end);
    if (p == end)
        return true;
    if (end - p >= 3 && memcmp(p, "===", 3) == 0)
        c->op = COP_SEQ, p += 3;
    else if (end - p >= 3 && memcmp(p, "!==", 3) == 0)
        c->op = COP_SNE, p += 3;
    else if (end - p >= 2 && memcmp(p, "==", 2) == 0)
        c->op = COP_EQ, p += 2;
    else if (end - p >= 2 && memcmp(p, "!=", 2) == 0)
        c->op = COP_NE, p += 2;
    else
        return false;
    p = skip_ws(p, end);
    if (!parse_operand(&p, end, &c->b))
        return false;
    return skip_ws(p, end) == end;
}

static struct expr_value operand_val(const cJSON *ctx, const struct operand *o)
{
    return o->is_path ? expr_value_from_json(lookup(ctx, &o->path)) : o->lit;
}

/* JavaScript equality (objects compare by identity); truthiness is expr_value_truthy. */
static bool js_strict_eq(struct expr_value a, struct expr_value b)
{
    if (a.type != b.type)
        return false;
    switch (a.type) {
    case EXPR_BOOL: return a.b == b.b;
    case EXPR_NUMBER: return a.num == b.num;
    case EXPR_STRING: return str_eq(a.s, b.s);
    case EXPR_ARRAY:
    case EXPR_OBJECT: return a.json == b.json;
    default: return true;
    }
}

/* str_num: JavaScript's ToNumber for a string ("" and blanks are 0, junk is NaN). */
static double str_num(struct expr_value v)
{
    struct str s = v.s;
    char tmp[64], *e;
    size_t i = 0, n = s.len;
    double d;
    while (i < n && isspace((unsigned char)s.p[i]))
        i++;
    while (n > i && isspace((unsigned char)s.p[n - 1]))
        n--;
    if (i == n)
        return 0;
    if (n - i >= sizeof tmp)
        return NAN;
    memcpy(tmp, s.p + i, n - i);
    tmp[n - i] = '\0';
    d = strtod(tmp, &e);
    return *e ? NAN : d;
}

static bool js_loose_eq(struct expr_value a, struct expr_value b)
{
    bool an = a.type == EXPR_UNDEFINED || a.type == EXPR_NULL,
         bn = b.type == EXPR_UNDEFINED || b.type == EXPR_NULL;
    if (an || bn)
        return an && bn;
    if (a.type == b.type)
        return js_strict_eq(a, b);
    if (a.type == EXPR_BOOL)
        return js_loose_eq((struct expr_value){.type = EXPR_NUMBER, .num = a.b ? 1 : 0}, b);
    if (b.type == EXPR_BOOL)
        return js_loose_eq(a, (struct expr_value){.type = EXPR_NUMBER, .num = b.b ? 1 : 0});
    if (a.type == EXPR_NUMBER && b.type == EXPR_STRING)
        return a.num == str_num(b);
    if (a.type == EXPR_STRING && b.type == EXPR_NUMBER)
        return str_num(a) == b.num;
    return false;
}

static bool cond_eval(const struct cond *c, const cJSON *ctx)
{
    struct expr_value a = operand_val(ctx, &c->a), b;
    bool r;
    if (c->neg)
        a = (struct expr_value){.type = EXPR_BOOL,
                                .b = (c->neg % 2) ? !expr_value_truthy(&a) : expr_value_truthy(&a)};
    if (c->op == COP_NONE)
        return expr_value_truthy(&a);
    b = operand_val(ctx, &c->b);
    r = (c->op == COP_SEQ || c->op == COP_SNE) ? js_strict_eq(a, b) : js_loose_eq(a, b);
    return (c->op == COP_SNE || c->op == COP_NE) ? !r : r;
}

/* ------------------------------------------------------------------ element kinds */

enum ekind {
    EK_UNKNOWN,
    EK_META,
    EK_TEXT,
    EK_ACTION,
    EK_IMAGE,
    EK_DIVIDER,
    EK_QUOTE,
    EK_HTML,
    EK_LIST,
    EK_LIST_ITEM,
    EK_GROUP,
    EK_CHANNEL,
    EK_COMMENT
};

static enum ekind kind_of(const char *type)
{
    static const struct {
        const char *name;
        enum ekind k;
    } kinds[] = {
        {"meta", EK_META},       {"text", EK_TEXT},       {"action", EK_ACTION},
        {"image", EK_IMAGE},     {"divider", EK_DIVIDER}, {"quote", EK_QUOTE},
        {"html", EK_HTML},       {"list", EK_LIST},       {"list-item", EK_LIST_ITEM},
        {"group", EK_GROUP},     {"channel", EK_CHANNEL}, {"comment", EK_COMMENT},
    };
    for (size_t i = 0; type && i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(type, kinds[i].name) == 0)
            return kinds[i].k;
    return EK_UNKNOWN;
}

static bool one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

static const char *const ALIGNS[] = {"left", "center", "right", "full", "justify", NULL};
static const char *const TEXT_STYLES[] = {"text", "h1", "h2", "subtext", NULL};
static const char *const ACTION_STYLES[] = {"button", "link", NULL};
static const char *const LIST_TYPES[] = {"ordered", "unordered", NULL};
static const char *const FORMATS[] = {"markdown", "text", NULL};

/* path_join: "<path>.<name>" or "<name>" at the top level, into dst. */
static void path_join(char *dst, size_t cap, const char *path, const char *name, int idx)
{
    int n;
    if (idx >= 0)
        n = snprintf(dst, cap, "%s%s%s[%d]", path, *path && *name ? "." : "", name, idx);
    else
        n = snprintf(dst, cap, "%s%s%s", path, *path ? "." : "", name);
    if (n < 0)
        dst[0] = '\0';
}

/* ------------------------------------------------------------------ render state */

struct sinks {
    struct buf html;  /* email content blocks */
    struct buf plain; /* plain text */
    struct buf md;    /* Markdown (chat, webhook body) */
};

struct lstate {
    bool ordered;
    int n; /* items so far */
};

struct er {
    enum channel ch;
    bool want_html, want_plain, want_md;
    struct hbs_cache *cache;
    struct herr *err;
    const char *locale;
    char accent[72]; /* brand primary (checked) or DEFAULT_ACCENT */
    char *meta_title;
    unsigned visits;
    int in_list;         /* > 0 inside a list item: compact spacing */
    struct lstate *list; /* the list whose items are being rendered */
};

static void sinks_init(struct sinks *s)
{
    buf_init(&s->html, ELEM_MAX_OUT);
    buf_init(&s->plain, ELEM_MAX_OUT);
    buf_init(&s->md, ELEM_MAX_OUT);
}

static void sinks_cleanup(struct sinks *s)
{
    buf_cleanup(&s->html);
    buf_cleanup(&s->plain);
    buf_cleanup(&s->md);
}

static int too_big(struct er *r, const char *path, int rc)
{
    if (rc == HR_TOOBIG)
        return herr_set(r->err, rc, "%s: output over %u bytes", *path ? path : "content",
                        ELEM_MAX_OUT);
    return herr_set(r->err, rc, "%s: %s", *path ? path : "content", hr_rc_str(rc));
}

/* fstr: the string field key (or alias) of el, preferring el.locales.<locale>. */
static const char *fstr(const struct er *r, const cJSON *el, const char *key, const char *alias)
{
    const char *s = NULL;
    if (r && r->locale) {
        const cJSON *loc = json_obj(json_obj(el, "locales"), r->locale);
        s = json_str(loc, key);
        if (!s && alias)
            s = json_str(loc, alias);
        if (s)
            return s;
    }
    s = json_str(el, key);
    if (!s && alias)
        s = json_str(el, alias);
    return s;
}

/* tpl: render the template src (field of the element at path) in mode, appending to out. */
static int tpl(struct er *r, const cJSON *ctx, const char *path, const char *field,
               const char *src, enum hbs_mode mode, struct buf *out)
{
    struct hbs_tmpl *t = NULL;
    struct herr e = {0};
    struct hbs_render_opts o = {.mode = mode, .max_steps = ELEM_TMPL_STEPS};
    size_t n = strlen(src);
    int rc = r->cache ? hbs_cache_get(r->cache, src, n, &t, &e) : hbs_compile(src, n, &t, &e);
    if (rc == 0)
        rc = hbs_render_ex(t, ctx, &o, out, &e);
    hbs_unref(t);
    if (rc < 0)
        return herr_set(r->err, rc, "%s%s%s: %s", path, *path && *field ? "." : "", field, e.msg);
    return HR_OK;
}

/* tpl_dup: like tpl into a new heap string (*out NULL when src is NULL). */
static int tpl_dup(struct er *r, const cJSON *ctx, const char *path, const char *field,
                   const char *src, enum hbs_mode mode, char **out)
{
    struct buf b;
    int rc;
    *out = NULL;
    if (!src)
        return HR_OK;
    buf_init(&b, ELEM_MAX_OUT);
    rc = tpl(r, ctx, path, field, src, mode, &b);
    if (rc == 0)
        *out = buf_steal(&b, NULL);
    buf_cleanup(&b);
    return rc;
}

/* one_line: titles and subjects are single lines (no header folding tricks downstream). */
static void one_line(char *s)
{
    for (; s && *s; s++)
        if (*s == '\r' || *s == '\n' || *s == '\t')
            *s = ' ';
}

static void trim_inplace(char *s)
{
    size_t n, i = 0;
    if (!s)
        return;
    n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    while (i < n && isspace((unsigned char)s[i]))
        i++;
    if (i)
        memmove(s, s + i, n - i + 1);
}

/* field_checked: render field key/alias as text, trimmed; *out is "" when absent or when
 * check rejects it (so it is dropped). */
static int field_checked(struct er *r, const cJSON *ctx, const cJSON *el, const char *path,
                         const char *key, const char *alias, bool (*check)(const char *),
                         char *out, size_t cap)
{
    char *v = NULL;
    int rc = tpl_dup(r, ctx, path, key, fstr(r, el, key, alias), HBS_TEXT, &v);
    out[0] = '\0';
    trim_inplace(v);
    if (rc == 0 && v && check(v) && strlen(v) < cap)
        memcpy(out, v, strlen(v) + 1);
    free(v);
    return rc;
}

/* width_ok: digits (1-4) optionally followed by px or %. */
static bool width_ok(const char *s)
{
    size_t i = 0;
    while (isdigit((unsigned char)s[i]))
        i++;
    if (i == 0 || i > 4)
        return false;
    return s[i] == '\0' || strcmp(s + i, "px") == 0 || strcmp(s + i, "%") == 0;
}

/* enum_field: a literal (untemplated) enumerated field, or dflt when absent or unknown. */
static const char *enum_field(const cJSON *el, const char *key, const char *alias,
                              const char *const *set, const char *dflt)
{
    const char *s = fstr(NULL, el, key, alias);
    return s && one_of(s, set) ? s : dflt;
}

/* sep: start a new block in a text sink: a blank line (one newline in compact mode). */
static int sep(const struct er *r, struct buf *b)
{
    size_t want = r->in_list ? 1 : 2, have = 0;
    while (have < want && have < b->len && b->p[b->len - 1 - have] == '\n')
        have++;
    if (b->len == 0)
        return HR_OK;
    for (; have < want; have++) {
        int rc = buf_putc(b, '\n');
        if (rc < 0)
            return rc;
    }
    return HR_OK;
}

/* rtrim_nl: drop trailing whitespace lines of a text sink. */
static void rtrim_nl(struct buf *b)
{
    while (b->len && (b->p[b->len - 1] == '\n' || b->p[b->len - 1] == ' '))
        b->p[--b->len] = '\0';
}

/* append_prefixed: append src, putting first before the first line and rest before each
 * later non-empty line (empty lines get rest_empty). */
static int append_prefixed(struct buf *b, const char *src, const char *first, const char *rest,
                           const char *rest_empty)
{
    const char *p = src;
    bool line1 = true;
    int rc = HR_OK;
    while (rc == 0) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *pre = line1 ? first : (n ? rest : rest_empty);
        rc = buf_append_c(b, pre);
        if (rc == 0)
            rc = buf_append(b, p, n);
        if (rc < 0 || !nl)
            break;
        rc = buf_putc(b, '\n');
        p = nl + 1;
        line1 = false;
    }
    return rc;
}

/* nl2br: append HTML s with each newline as <br>. */
static int nl2br(struct buf *b, const char *s)
{
    int rc = HR_OK;
    while (rc == 0 && *s) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        rc = buf_append(b, s, n);
        if (rc == 0 && nl)
            rc = buf_append_c(b, "<br>\n");
        s += n + (nl ? 1 : 0);
    }
    return rc;
}

static const char *margin(const struct er *r)
{
    return r->in_list ? "margin:0;" : "margin:0 0 16px 0;";
}

/* ------------------------------------------------------------------ element renderers */

static int render_list(struct er *r, const cJSON *ctx, const cJSON *arr, const char *path,
                       int depth, struct sinks *s);

/* text_body: the three renderings of a text-like field. html gets the inner HTML,
 * plain the plain text, md the Markdown; each only when wanted. *empty tells whether
 * the field rendered to nothing (then callers write no block). The plain text of
 * Markdown is read from the HTML-mode rendering, as the HTML part is: data arrives
 * entity-escaped, so it stays text (cmark decodes it), while raw HTML the template
 * itself wrote is markup and markdown_to_text drops its tags. */
static int text_body(struct er *r, const cJSON *ctx, const char *path, const char *field,
                     const char *src, bool markdown, struct sinks *t, bool *empty)
{
    struct buf txt, htm;
    struct herr me = {0};
    bool want_txt = r->want_md || (r->want_plain && !markdown);
    bool want_htm = r->want_html || (r->want_plain && markdown);
    int rc = HR_OK;
    *empty = true;
    if (!src)
        return HR_OK;
    buf_init(&txt, ELEM_MAX_OUT);
    buf_init(&htm, ELEM_MAX_OUT);
    if (want_txt) {
        rc = tpl(r, ctx, path, field, src, HBS_TEXT, &txt);
        if (rc == 0 && txt.len) {
            *empty = false;
            if (r->want_plain && !markdown)
                rc = buf_append(&t->plain, txt.p, txt.len);
            if (rc == 0 && r->want_md)
                rc = buf_append(&t->md, txt.p, txt.len);
        }
    }
    if (rc == 0 && want_htm) {
        rc = tpl(r, ctx, path, field, src, HBS_HTML, &htm);
        if (rc == 0 && htm.len) {
            *empty = false;
            if (r->want_plain && markdown)
                rc = markdown_to_text(htm.p, htm.len, &t->plain, &me);
            if (rc == 0 && r->want_html)
                rc = markdown ? markdown_to_html(htm.p, htm.len, &t->html, &me)
                              : nl2br(&t->html, htm.p);
        }
    }
    buf_cleanup(&txt);
    buf_cleanup(&htm);
    if (rc < 0 && r->err->rc == 0)
        rc = herr_set(r->err, rc, "%s%s%s: %s", path, *path ? "." : "", field,
                      me.msg[0] ? me.msg : "output too large");
    return rc;
}

static bool is_markdown(const cJSON *el, bool dflt)
{
    const char *f = json_str(el, "format");
    return f ? strcmp(f, "markdown") == 0 : dflt;
}

/* text_style_css: CSS for text_style, align, color and the emphasis flags of el. */
static int text_style_css(struct er *r, const cJSON *ctx, const cJSON *el, const char *path,
                          const char *ts, struct buf *st)
{
    char color[72];
    const char *align = enum_field(el, "align", NULL, ALIGNS, NULL);
    bool u = json_bool(el, "underline", false), x = json_bool(el, "strikethrough", false);
    int rc = field_checked(r, ctx, el, path, "color", NULL, layout_css_color, color, sizeof color);
    if (rc == 0)
        rc = buf_append_c(st, margin(r));
    if (rc == 0 && strcmp(ts, "h1") == 0)
        rc = buf_append_c(st, "font-size:28px;line-height:1.25;font-weight:700;");
    else if (rc == 0 && strcmp(ts, "h2") == 0)
        rc = buf_append_c(st, "font-size:22px;line-height:1.3;font-weight:700;");
    else if (rc == 0 && strcmp(ts, "subtext") == 0)
        rc = buf_append_c(st, "font-size:13px;line-height:1.4;color:" MUTED ";");
    if (rc == 0 && align && strcmp(align, "full") != 0)
        rc = buf_printf(st, "text-align:%s;", align);
    if (rc == 0 && color[0])
        rc = buf_printf(st, "color:%s;", color);
    if (rc == 0 && json_bool(el, "bold", false))
        rc = buf_append_c(st, "font-weight:700;");
    if (rc == 0 && json_bool(el, "italic", false))
        rc = buf_append_c(st, "font-style:italic;");
    if (rc == 0 && (u || x))
        rc = buf_printf(st, "text-decoration:%s%s%s;", u ? "underline" : "", u && x ? " " : "",
                        x ? "line-through" : "");
    return rc;
}

/* md_decorate: the Markdown form of a plain (non-markdown) text element. */
static int md_decorate(const cJSON *el, const char *ts, const char *txt, struct buf *md)
{
    const char *wrap = "";
    int rc = HR_OK;
    if (strcmp(ts, "h1") == 0 || strcmp(ts, "h2") == 0)
        return append_prefixed(md, txt, strcmp(ts, "h1") == 0 ? "# " : "## ", "", "");
    if (!strchr(txt, '\n')) {
        if (json_bool(el, "bold", false))
            wrap = "**";
        else if (json_bool(el, "italic", false))
            wrap = "_";
        else if (json_bool(el, "strikethrough", false))
            wrap = "~~";
    }
    rc = buf_append_c(md, wrap);
    if (rc == 0)
        rc = buf_append_c(md, txt);
    if (rc == 0)
        rc = buf_append_c(md, wrap);
    return rc;
}

/* put_block: append a rendered block to the caller's sinks (block separators added). */
static int put_text_blocks(struct er *r, struct sinks *s, const struct sinks *t)
{
    int rc = HR_OK;
    if (r->want_plain && t->plain.len && (rc = sep(r, &s->plain)) == 0)
        rc = buf_append(&s->plain, t->plain.p, t->plain.len);
    if (rc == 0 && r->want_md && t->md.len && (rc = sep(r, &s->md)) == 0)
        rc = buf_append(&s->md, t->md.p, t->md.len);
    return rc;
}

static int r_text(struct er *r, const cJSON *ctx, const cJSON *el, const char *path,
                  const char *field, const char *src, bool markdown, struct sinks *s)
{
    struct sinks t;
    struct buf st;
    const char *ts = enum_field(el, "text_style", "textStyle", TEXT_STYLES, "text");
    bool empty, heading = !markdown && (strcmp(ts, "h1") == 0 || strcmp(ts, "h2") == 0);
    int rc;
    sinks_init(&t);
    buf_init(&st, 4096);
    rc = text_body(r, ctx, path, field, src, markdown, &t, &empty);
    if (rc < 0 || empty)
        goto out;
    if (r->want_md && !markdown) {
        char *plain = buf_steal(&t.md, NULL);
        rc = md_decorate(el, ts, plain, &t.md);
        free(plain);
        if (rc < 0)
            goto out;
    }
    rc = put_text_blocks(r, s, &t);
    if (rc == 0 && r->want_html && t.html.len) {
        rc = text_style_css(r, ctx, el, path, ts, &st);
        if (rc == 0)
            rc = buf_printf(&s->html, "<%s class=\"hr-text\" style=\"%s\">", heading ? ts : "div",
                            buf_cstr(&st));
        if (rc == 0)
            rc = buf_append(&s->html, t.html.p, t.html.len);
        if (rc == 0)
            rc = buf_printf(&s->html, "</%s>\n", heading ? ts : "div");
    }
out:
    if (rc < 0 && r->err->rc == 0)
        rc = too_big(r, path, rc);
    buf_cleanup(&st);
    sinks_cleanup(&t);
    return rc;
}

static int r_quote(struct er *r, const cJSON *ctx, const cJSON *el, const char *path,
                   struct sinks *s)
{
    struct sinks t;
    char color[72];
    const char *align = enum_field(el, "align", NULL, ALIGNS, NULL);
    bool empty;
    int rc;
    sinks_init(&t);
    rc = text_body(r, ctx, path, "content", fstr(r, el, "content", NULL), is_markdown(el, false),
                   &t, &empty);
    if (rc < 0 || empty)
        goto out;
    if (r->want_plain && (rc = sep(r, &s->plain)) == 0)
        rc = append_prefixed(&s->plain, buf_cstr(&t.plain), "> ", "> ", ">");
    if (rc == 0 && r->want_md && (rc = sep(r, &s->md)) == 0)
        rc = append_prefixed(&s->md, buf_cstr(&t.md), "> ", "> ", ">");
    if (rc == 0 && r->want_html) {
        rc = field_checked(r, ctx, el, path, "border_color", "borderColor", layout_css_color, color,
                           sizeof color);
        if (rc == 0)
            rc = buf_printf(&s->html,
                            "<blockquote class=\"hr-quote\" style=\"%spadding:4px 0 4px 16px;"
                            "border-left:4px solid %s;color:#4b5563;%s%s%s\">",
                            margin(r), color[0] ? color : QUOTE_COLOR, align ? "text-align:" : "",
                            align && strcmp(align, "full") ? align : "", align ? ";" : "");
        if (rc == 0)
            rc = buf_append(&s->html, t.html.p, t.html.len);
        if (rc == 0)
            rc = buf_append_c(&s->html, "</blockquote>\n");
    }
out:
    if (rc < 0 && r->err->rc == 0)
        rc = too_big(r, path, rc);
    sinks_cleanup(&t);
    return rc;
}

static int r_action(struct er *r, const cJSON *ctx, const cJSON *el, const char *path,
                    struct sinks *s)
{
    char *label = NULL, *href = NULL, *label_html = NULL, bg[72];
    const char *style = enum_field(el, "style", NULL, ACTION_STYLES, "button");
    const char *align = enum_field(el, "align", NULL, ALIGNS, "center");
    int rc;
    rc = tpl_dup(r, ctx, path, "href", fstr(r, el, "href", NULL), HBS_TEXT, &href);
    trim_inplace(href);
    if (rc == 0)
        rc = tpl_dup(r, ctx, path, "content", fstr(r, el, "content", NULL), HBS_TEXT, &label);
    if (rc < 0)
        goto out;
    if (!label || !label[0]) {
        if (!href || !href[0])
            goto out;
        free(label);
        label = xstrdup(href);
    }
    if (r->want_plain && (rc = sep(r, &s->plain)) == 0)
        rc = (href && href[0] && strcmp(href, label) != 0)
                 ? buf_printf(&s->plain, "%s: %s", label, href)
                 : buf_append_c(&s->plain, label);
    if (rc == 0 && r->want_md && (rc = sep(r, &s->md)) == 0)
        rc = href && href[0] ? buf_printf(&s->md, "[%s](%s)", label, href)
                             : buf_append_c(&s->md, label);
    if (rc < 0 || !r->want_html)
        goto out;
    rc = tpl_dup(r, ctx, path, "content", fstr(r, el, "content", NULL), HBS_HTML, &label_html);
    if (rc == 0)
        rc = field_checked(r, ctx, el, path, "background_color", "backgroundColor",
                           layout_css_color, bg, sizeof bg);
    if (rc < 0)
        goto out;
    if (strcmp(align, "full") == 0 || strcmp(align, "justify") == 0)
        align = "center";
    if (strcmp(style, "link") == 0) {
        rc = buf_printf(&s->html, "<div class=\"hr-action\" style=\"%stext-align:%s;\"><a",
                        margin(r), align);
    } else {
        const char *c = bg[0] ? bg : r->accent;
        rc = buf_printf(&s->html,
                        "<table role=\"presentation\" class=\"hr-action\" width=\"100%%\" "
                        "cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"%s\"><tr><td "
                        "align=\"%s\"><table role=\"presentation\" cellpadding=\"0\" "
                        "cellspacing=\"0\" border=\"0\"><tr><td bgcolor=\"%s\" "
                        "style=\"border-radius:4px;background-color:%s;\"><a",
                        margin(r), align, c, c);
    }
    if (rc == 0 && href && layout_url(href)) {
        rc = buf_append_c(&s->html, " href=\"");
        if (rc == 0)
            rc = layout_esc(&s->html, href);
        if (rc == 0)
            rc = buf_append_c(&s->html, "\" target=\"_blank\"");
    }
    if (rc == 0 && strcmp(style, "link") == 0)
        rc = buf_printf(&s->html, " style=\"color:%s;text-decoration:underline;\">",
                        r->accent);
    else if (rc == 0)
        rc = buf_append_c(&s->html,
                          " style=\"display:inline-block;padding:12px 24px;font-family:" LAYOUT_FONT
                          ";font-size:16px;font-weight:600;line-height:1.2;color:#ffffff;"
                          "text-decoration:none;border-radius:4px;\">");
    if (rc == 0)
        rc = label_html && label_html[0] ? buf_append_c(&s->html, label_html)
                                         : layout_esc(&s->html, label);
    if (rc == 0)
        rc = buf_append_c(&s->html, strcmp(style, "link") == 0
                                        ? "</a></div>\n"
                                        : "</a></td></tr></table></td></tr></table>\n");
out:
    if (rc < 0 && r->err->rc == 0)
        rc = too_big(r, path, rc);
    free(label);
    free(href);
    free(label_html);
    return rc;
}

static int r_image(struct er *r, const cJSON *ctx, const cJSON *el, const char *path,
                   struct sinks *s)
{
    char *src = NULL, *alt = NULL, *href = NULL, width[72] = "";
    const char *align = enum_field(el, "align", NULL, ALIGNS, "center");
    const cJSON *w = json_member(el, "width");
    int rc;
    rc = tpl_dup(r, ctx, path, "src", fstr(r, el, "src", NULL), HBS_TEXT, &src);
    if (rc == 0)
        rc = tpl_dup(r, ctx, path, "alt_text", fstr(r, el, "alt_text", "altText"), HBS_TEXT, &alt);
    if (rc == 0)
        rc = tpl_dup(r, ctx, path, "href", fstr(r, el, "href", NULL), HBS_TEXT, &href);
    if (rc < 0)
        goto out;
    trim_inplace(src);
    trim_inplace(href);
    if (cJSON_IsNumber(w) && w->valuedouble >= 1 && w->valuedouble <= 9999)
        snprintf(width, sizeof width, "%d", (int)w->valuedouble);
    else if (cJSON_IsString(w))
        rc = field_checked(r, ctx, el, path, "width", NULL, width_ok, width, sizeof width);
    if (rc < 0)
        goto out;
    if (r->want_plain && (rc = sep(r, &s->plain)) == 0)
        rc = buf_printf(&s->plain, "[%s]", alt && alt[0] ? alt : "image");
    if (rc == 0 && r->want_md && src && src[0] && (rc = sep(r, &s->md)) == 0)
        rc = href && href[0] ? buf_printf(&s->md, "[![%s](%s)](%s)", alt ? alt : "", src, href)
                             : buf_printf(&s->md, "![%s](%s)", alt ? alt : "", src);
    if (rc < 0 || !r->want_html || !src || !layout_url(src))
        goto out;
    rc = buf_printf(&s->html, "<div class=\"hr-image\" style=\"%stext-align:%s;\">", margin(r),
                    strcmp(align, "full") == 0 || strcmp(align, "justify") == 0 ? "center" : align);
    if (rc == 0 && href && layout_url(href)) {
        rc = buf_append_c(&s->html, "<a href=\"");
        if (rc == 0)
            rc = layout_esc(&s->html, href);
        if (rc == 0)
            rc = buf_append_c(&s->html, "\" target=\"_blank\">");
    }
    if (rc == 0)
        rc = buf_append_c(&s->html, "<img src=\"");
    if (rc == 0)
        rc = layout_esc(&s->html, src);
    if (rc == 0)
        rc = buf_append_c(&s->html, "\" alt=\"");
    if (rc == 0)
        rc = layout_esc(&s->html, alt ? alt : "");
    if (rc == 0) {
        size_t wl = strlen(width);
        bool pct = wl && width[wl - 1] == '%', full = strcmp(align, "full") == 0;
        int wn = wl ? (int)strtol(width, NULL, 10) : 0;
        if (wl && !pct && !full)
            rc = buf_printf(&s->html, "\" width=\"%d", wn);
        if (rc == 0)
            rc = buf_append_c(&s->html, "\" style=\"display:inline-block;max-width:100%;"
                                        "height:auto;border:0;");
        if (rc == 0 && full)
            rc = buf_append_c(&s->html, "width:100%;");
        else if (rc == 0 && wl)
            rc = buf_printf(&s->html, "width:%d%s;", wn, pct ? "%" : "px");
        if (rc == 0)
            rc = buf_append_c(&s->html, "\">");
    }
    if (rc == 0 && href && layout_url(href))
        rc = buf_append_c(&s->html, "</a>");
    if (rc == 0)
        rc = buf_append_c(&s->html, "</div>\n");
out:
    if (rc < 0 && r->err->rc == 0)
        rc = too_big(r, path, rc);
    free(src);
    free(alt);
    free(href);
    return rc;
}

static int r_divider(struct er *r, const cJSON *ctx, const cJSON *el, const char *path,
                     struct sinks *s)
{
    char color[72];
    int rc = HR_OK;
    if (r->want_plain && (rc = sep(r, &s->plain)) == 0)
        rc = buf_append_c(&s->plain, "---");
    if (rc == 0 && r->want_md && (rc = sep(r, &s->md)) == 0)
        rc = buf_append_c(&s->md, "---");
    if (rc == 0 && r->want_html) {
        rc = field_checked(r, ctx, el, path, "color", NULL, layout_css_color, color, sizeof color);
        if (rc == 0)
            rc = buf_printf(&s->html,
                            "<hr class=\"hr-divider\" style=\"border:0;border-top:1px solid %s;"
                            "height:0;margin:16px 0;\">\n",
                            color[0] ? color : DIVIDER_COLOR);
    }
    if (rc < 0 && r->err->rc == 0)
        rc = too_big(r, path, rc);
    return rc;
}

static int r_html(struct er *r, const cJSON *ctx, const cJSON *el, const char *path,
                  struct sinks *s)
{
    const char *src = fstr(r, el, "content", NULL);
    int rc;
    if (!r->want_html || !src)
        return HR_OK;
    rc = tpl(r, ctx, path, "content", src, HBS_HTML, &s->html);
    if (rc == 0 && (rc = buf_putc(&s->html, '\n')) < 0)
        rc = too_big(r, path, rc);
    return rc;
}

/* r_list_item: one <li> (one repetition of a looped item) into the list's sinks. */
static int r_list_item(struct er *r, const cJSON *ctx, const cJSON *el, const char *path,
                       int depth, struct sinks *s)
{
    struct sinks t;
    const char *content = fstr(r, el, "content", NULL);
    const cJSON *kids = json_arr(el, "elements");
    struct lstate *list = r->list;
    char mark[24], indent[24];
    int rc = HR_OK;
    sinks_init(&t);
    r->list = NULL;
    r->in_list++;
    if (content)
        rc = r_text(r, ctx, el, path, "content", content, is_markdown(el, false), &t);
    if (rc == 0 && kids)
        rc = render_list(r, ctx, kids, path, depth + 1, &t);
    r->in_list--;
    r->list = list;
    if (rc < 0)
        goto out;
    if (!list) { /* a list-item outside a list: its content, like a group */
        rc = put_text_blocks(r, s, &t);
        if (rc == 0 && r->want_html)
            rc = buf_append(&s->html, t.html.p, t.html.len);
        goto out;
    }
    list->n++;
    rtrim_nl(&t.plain);
    rtrim_nl(&t.md);
    if (list->ordered)
        snprintf(mark, sizeof mark, "%d. ", list->n);
    else
        memcpy(mark, "- ", 3);
    memset(indent, ' ', strlen(mark));
    indent[strlen(mark)] = '\0';
    if (r->want_plain) {
        if (s->plain.len)
            rc = buf_putc(&s->plain, '\n');
        if (rc == 0)
            rc = append_prefixed(&s->plain, buf_cstr(&t.plain), mark, indent, "");
    }
    if (rc == 0 && r->want_md) {
        if (s->md.len)
            rc = buf_putc(&s->md, '\n');
        if (rc == 0)
            rc = append_prefixed(&s->md, buf_cstr(&t.md), mark, indent, "");
    }
    if (rc == 0 && r->want_html)
        rc = buf_printf(&s->html, "<li style=\"margin:0 0 4px 0;\">%s</li>\n", buf_cstr(&t.html));
out:
    if (rc < 0 && r->err->rc == 0)
        rc = too_big(r, path, rc);
    sinks_cleanup(&t);
    return rc;
}

static int r_list(struct er *r, const cJSON *ctx, const cJSON *el, const char *path, int depth,
                  struct sinks *s)
{
    struct sinks t;
    struct lstate st = {0}, *saved = r->list;
    const cJSON *kids = json_arr(el, "elements");
    const char *lt = enum_field(el, "list_type", "listType", LIST_TYPES, "unordered");
    int rc = HR_OK;
    if (!kids)
        return HR_OK;
    st.ordered = strcmp(lt, "ordered") == 0;
    sinks_init(&t);
    r->list = &st;
    rc = render_list(r, ctx, kids, path, depth + 1, &t);
    r->list = saved;
    if (rc < 0 || st.n == 0)
        goto out;
    rc = put_text_blocks(r, s, &t);
    if (rc == 0 && r->want_html)
        rc = buf_printf(&s->html,
                        "<%s class=\"hr-list\" style=\"%spadding:0 0 0 24px;\">\n%s</%s>\n",
                        st.ordered ? "ol" : "ul", margin(r), buf_cstr(&t.html),
                        st.ordered ? "ol" : "ul");
out:
    if (rc < 0 && r->err->rc == 0)
        rc = too_big(r, path, rc);
    sinks_cleanup(&t);
    return rc;
}

/* render_one: el once, with ctx (the loop variable already bound). */
static int render_one(struct er *r, const cJSON *ctx, const cJSON *el, const char *path,
                      int depth, struct sinks *s)
{
    const char *cs = json_str(el, "if");
    const cJSON *ifv = json_member(el, "if");
    struct lstate *list = r->list;
    char *title = NULL;
    int rc = HR_OK;
    if (cs) {
        struct cond c;
        if (!parse_cond(cs, &c))
            return herr_set(r->err, HR_INVAL, "%s.if: unsupported condition \"%.64s\"", path, cs);
        if (!cond_eval(&c, ctx))
            return HR_OK;
    } else if (cJSON_IsBool(ifv) && !cJSON_IsTrue(ifv)) {
        return HR_OK;
    }
    switch (kind_of(json_str(el, "type"))) {
    case EK_META:
        rc = tpl_dup(r, ctx, path, "title", fstr(r, el, "title", NULL), HBS_TEXT, &title);
        trim_inplace(title);
        if (rc == 0 && title && title[0] && !r->meta_title) {
            r->meta_title = title;
            title = NULL;
        }
        free(title);
        return rc;
    case EK_TEXT:
        return r_text(r, ctx, el, path, "content", fstr(r, el, "content", NULL),
                      is_markdown(el, false), s);
    case EK_ACTION:
        return r_action(r, ctx, el, path, s);
    case EK_IMAGE:
        return r_image(r, ctx, el, path, s);
    case EK_DIVIDER:
        return r_divider(r, ctx, el, path, s);
    case EK_QUOTE:
        return r_quote(r, ctx, el, path, s);
    case EK_HTML:
        return r_html(r, ctx, el, path, s);
    case EK_LIST:
        return r_list(r, ctx, el, path, depth, s);
    case EK_LIST_ITEM:
        return r_list_item(r, ctx, el, path, depth, s);
    case EK_GROUP:
        r->list = NULL;
        rc = render_list(r, ctx, json_arr(el, "elements"), path, depth + 1, s);
        r->list = list;
        return rc;
    default: /* channel below the top level, comment, unknown: nothing */
        return HR_OK;
    }
}

/* loop_ctx: ctx plus "$": {item, index}; the result references ctx and item (it must
 * not outlive them) and is freed with cJSON_Delete. NULL on allocation failure. */
static cJSON *loop_ctx(const cJSON *ctx, const cJSON *item, int index)
{
    cJSON *w = cJSON_CreateObject(), *d = cJSON_CreateObject();
    bool ok = w && d;
    for (const cJSON *c = cJSON_IsObject(ctx) ? ctx->child : NULL; ok && c; c = c->next)
        if (c->string && strcmp(c->string, "$") != 0)
            ok = cJSON_AddItemReferenceToObject(w, c->string, (cJSON *)c);
    ok = ok && cJSON_AddItemReferenceToObject(d, "item", (cJSON *)item) &&
         cJSON_AddNumberToObject(d, "index", index) != NULL;
    if (ok && cJSON_AddItemToObject(w, "$", d))
        return w;
    cJSON_Delete(w);
    cJSON_Delete(d);
    return NULL;
}

static bool in_channels(const cJSON *chs, enum channel ch)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, chs)
    {
        if (cJSON_IsString(c) && channel_parse(c->valuestring) == ch)
            return true;
    }
    return false;
}

/* render_node: control flow (channels, loop, if), then the element. */
static int render_node(struct er *r, const cJSON *ctx, const cJSON *el, const char *path,
                       int depth, struct sinks *s)
{
    const cJSON *chs = json_member(el, "channels");
    const char *loop;
    const cJSON *arr;
    struct epath lp;
    int rc = HR_OK, i = 0, n;
    if (!cJSON_IsObject(el))
        return HR_OK;
    if (depth > ELEM_MAX_DEPTH)
        return herr_set(r->err, HR_TOOBIG, "%s: elements nested deeper than %d", path,
                        ELEM_MAX_DEPTH);
    if (++r->visits > ELEM_MAX_VISITS)
        return herr_set(r->err, HR_TOOBIG, "%s: more than %d elements rendered", path,
                        ELEM_MAX_VISITS);
    if (cJSON_IsArray(chs) && !in_channels(chs, r->ch))
        return HR_OK;
    loop = json_str(el, "loop");
    if (!loop)
        return render_one(r, ctx, el, path, depth, s);
    if (!parse_path(loop, strlen(loop), &lp))
        return herr_set(r->err, HR_INVAL, "%s.loop: not a path: \"%.64s\"", path, loop);
    arr = lookup(ctx, &lp);
    if (!cJSON_IsArray(arr))
        return HR_OK;
    n = cJSON_GetArraySize(arr);
    if (n > ELEM_MAX_LOOP)
        return herr_set(r->err, HR_TOOBIG, "%s.loop: %d items, over the limit of %d", path, n,
                        ELEM_MAX_LOOP);
    for (const cJSON *item = arr->child; item && rc == 0; item = item->next, i++) {
        cJSON *lc;
        if (i > 0 && ++r->visits > ELEM_MAX_VISITS)
            return herr_set(r->err, HR_TOOBIG, "%s: more than %d elements rendered", path,
                            ELEM_MAX_VISITS);
        lc = loop_ctx(ctx, item, i);
        if (!lc)
            return herr_set(r->err, HR_NOMEM, "%s: out of memory", path);
        rc = render_one(r, lc, el, path, depth, s);
        cJSON_Delete(lc);
    }
    return rc;
}

static int render_list(struct er *r, const cJSON *ctx, const cJSON *arr, const char *path,
                       int depth, struct sinks *s)
{
    char cpath[PATH_LEN];
    int i = 0, rc = HR_OK;
    const cJSON *el;
    cJSON_ArrayForEach(el, arr)
    {
        path_join(cpath, sizeof cpath, path, "elements", i++);
        rc = render_node(r, ctx, el, cpath, depth, s);
        if (rc < 0)
            break;
    }
    return rc;
}

/* ------------------------------------------------------------------ raw and assembly */

/* resolve_raw: a copy of j with every string rendered through hbs in mode. */
static int resolve_raw(struct er *r, const cJSON *ctx, const cJSON *j, const char *path,
                       int depth, enum hbs_mode mode, size_t *budget, cJSON **out)
{
    char cpath[PATH_LEN];
    cJSON *res = NULL;
    int rc = HR_OK, i = 0;
    *out = NULL;
    if (depth > ELEM_MAX_RAW_DEPTH)
        return herr_set(r->err, HR_TOOBIG, "%s: nested deeper than %d", path, ELEM_MAX_RAW_DEPTH);
    if (cJSON_IsString(j)) {
        struct buf b;
        buf_init(&b, *budget);
        rc = tpl(r, ctx, path, "", j->valuestring, mode, &b);
        if (rc == 0) {
            *budget -= b.len;
            res = cJSON_CreateString(buf_cstr(&b));
        }
        buf_cleanup(&b);
    } else if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
        const cJSON *c;
        res = cJSON_IsArray(j) ? cJSON_CreateArray() : cJSON_CreateObject();
        cJSON_ArrayForEach(c, j)
        {
            cJSON *v = NULL;
            if (cJSON_IsArray(j))
                path_join(cpath, sizeof cpath, path, "", i++);
            else
                path_join(cpath, sizeof cpath, path, c->string ? c->string : "", -1);
            rc = resolve_raw(r, ctx, c, cpath, depth + 1, mode, budget, &v);
            if (rc < 0)
                break;
            if (!res || !(cJSON_IsArray(j) ? cJSON_AddItemToArray(res, v)
                                           : cJSON_AddItemToObject(res, c->string, v))) {
                cJSON_Delete(v);
                rc = herr_set(r->err, HR_NOMEM, "%s: out of memory", path);
                break;
            }
        }
    } else {
        res = cJSON_Duplicate(j, false);
    }
    if (rc == 0 && !res)
        rc = herr_set(r->err, HR_NOMEM, "%s: out of memory", path);
    if (rc < 0) {
        cJSON_Delete(res);
        return rc;
    }
    *out = res;
    return HR_OK;
}

/* raw_str: raw.<key> (a template) rendered in mode, into a new heap string or NULL. */
static int raw_str(struct er *r, const cJSON *ctx, const cJSON *raw, const char *path,
                   const char *key, enum hbs_mode mode, char **out)
{
    char cpath[PATH_LEN];
    path_join(cpath, sizeof cpath, path, "raw", -1);
    return tpl_dup(r, ctx, cpath, key, json_str(raw, key), mode, out);
}

/* brand: the checked brand parts for the layout; strings point into ctx or into the
 * caller's arrays. footer is a new heap string (HTML) or NULL, footer_text likewise. */
struct brand_parts {
    char bar[72], accent[72];
    struct layout_brand lb;
    char *footer_html, *footer_text;
};

static int brand_parts(struct er *r, const cJSON *ctx, struct brand_parts *b)
{
    const cJSON *brand = json_obj(ctx, "brand");
    const cJSON *settings = json_obj(brand, "settings");
    const cJSON *email = json_obj(settings, "email");
    const cJSON *header = json_obj(email, "header");
    const cJSON *logo = json_obj(header, "logo");
    const char *primary = json_str(json_obj(settings, "colors"), "primary");
    const char *bar = json_str(header, "barColor");
    const char *img = json_str(logo, "image"), *href = json_str(logo, "href");
    const char *footer = json_str(json_obj(email, "footer"), "content");
    bool empty;
    int rc = HR_OK;
    memset(b, 0, sizeof *b);
    if (primary && layout_css_color(primary))
        snprintf(b->accent, sizeof b->accent, "%s", primary);
    if (bar && layout_css_color(bar))
        snprintf(b->bar, sizeof b->bar, "%s", bar);
    else if (b->accent[0])
        memcpy(b->bar, b->accent, sizeof b->bar);
    b->lb.bar_color = b->bar[0] ? b->bar : NULL;
    b->lb.link_color = b->accent[0] ? b->accent : NULL;
    b->lb.logo_src = img && layout_url(img) ? img : NULL;
    b->lb.logo_href = b->lb.logo_src && href && layout_url(href) ? href : NULL;
    b->lb.name = json_str(brand, "name");
    if (footer && r->ch == CH_EMAIL) {
        struct sinks t;
        sinks_init(&t);
        rc = text_body(r, ctx, "brand.settings.email.footer", "content", footer, true, &t, &empty);
        if (rc == 0 && !empty) {
            b->footer_html = buf_steal(&t.html, NULL);
            b->footer_text = buf_steal(&t.plain, NULL);
            b->lb.footer_html = b->footer_html;
        }
        sinks_cleanup(&t);
    }
    return rc;
}

static char *dup_or(const char *s, const char *dflt)
{
    return s ? xstrdup(s) : dflt ? xstrdup(dflt) : NULL;
}

/* assemble: the channel's fields of out from the sinks, title and raw. */
static int assemble(struct er *r, const cJSON *content, const cJSON *ctx, struct sinks *s,
                    char *title, const cJSON *raw, const char *raw_path, struct content *out)
{
    struct brand_parts bp;
    struct buf doc;
    size_t budget = ELEM_MAX_OUT;
    cJSON *j = NULL, *data = NULL;
    char cpath[PATH_LEN];
    int rc = HR_OK;
    memset(&bp, 0, sizeof bp);
    buf_init(&doc, ELEM_MAX_OUT);
    rtrim_nl(&s->plain);
    rtrim_nl(&s->md);
    path_join(cpath, sizeof cpath, raw_path, "raw", -1);
    switch (r->ch) {
    case CH_EMAIL:
        if (raw) {
            rc = raw_str(r, ctx, raw, raw_path, "subject", HBS_TEXT, &out->subject);
            if (rc == 0)
                rc = raw_str(r, ctx, raw, raw_path, "html", HBS_HTML, &out->html);
            if (rc == 0)
                rc = raw_str(r, ctx, raw, raw_path, "text", HBS_TEXT, &out->text);
            if (rc < 0)
                break;
            if (!out->subject)
                out->subject = dup_or(title, NULL);
        } else {
            out->subject = dup_or(title, NULL);
        }
        if (!out->html) {
            rc = brand_parts(r, ctx, &bp);
            if (rc == 0)
                rc = layout_email(title, buf_cstr(&s->html), &bp.lb, &doc, r->err);
            if (rc < 0)
                break;
            out->html = buf_steal(&doc, NULL);
        }
        if (!out->text) {
            if (bp.footer_text && bp.footer_text[0] && !raw) {
                r->in_list = 0;
                if ((rc = sep(r, &s->plain)) == 0)
                    rc = buf_append_c(&s->plain, bp.footer_text);
                if (rc < 0) {
                    rc = too_big(r, "text", rc);
                    break;
                }
            }
            out->text = xstrdup(buf_cstr(&s->plain));
        }
        break;
    case CH_SMS:
        if (raw) {
            rc = raw_str(r, ctx, raw, raw_path, json_str(raw, "text") ? "text" : "body", HBS_TEXT,
                         &out->text);
            if (rc < 0)
                break;
        }
        if (!out->text)
            out->text = xstrdup(s->plain.len ? buf_cstr(&s->plain) : title ? title : "");
        break;
    case CH_PUSH:
        if (raw) {
            rc = raw_str(r, ctx, raw, raw_path, "title", HBS_TEXT, &out->title);
            if (rc == 0)
                rc = raw_str(r, ctx, raw, raw_path, "body", HBS_TEXT, &out->body);
            if (rc == 0 && json_member(raw, "data")) {
                char dpath[PATH_LEN];
                path_join(dpath, sizeof dpath, cpath, "data", -1);
                rc = resolve_raw(r, ctx, json_member(raw, "data"), dpath, 0,
                                 HBS_TEXT, &budget, &data);
            }
            if (rc < 0)
                break;
        }
        if (!out->title)
            out->title = dup_or(title, NULL);
        if (!out->body)
            out->body = xstrdup(buf_cstr(&s->plain));
        if (!data && json_member(content, "data")) {
            rc = resolve_raw(r, ctx, json_member(content, "data"), "data", 0,
                             HBS_TEXT, &budget, &data);
            if (rc < 0)
                break;
        }
        j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "title", out->title ? out->title : "");
        cJSON_AddStringToObject(j, "body", out->body);
        if (data) {
            cJSON_AddItemToObject(j, "data", data);
            data = NULL;
        }
        out->json = j;
        j = NULL;
        break;
    case CH_CHAT:
        if (raw) {
            rc = raw_str(r, ctx, raw, raw_path, "text", HBS_TEXT, &out->text);
            if (rc == 0)
                rc = raw_str(r, ctx, raw, raw_path, "title", HBS_TEXT, &out->title);
            if (rc == 0)
                rc = resolve_raw(r, ctx, raw, cpath, 0, HBS_TEXT, &budget, &out->json);
            if (rc < 0)
                break;
        }
        if (!out->title)
            out->title = dup_or(title, NULL);
        if (!out->text)
            out->text = xstrdup(buf_cstr(&s->md));
        break;
    case CH_WEBHOOK:
        out->title = dup_or(title, NULL);
        out->body = xstrdup(buf_cstr(&s->md));
        out->text = xstrdup(buf_cstr(&s->plain));
        if (raw) {
            rc = resolve_raw(r, ctx, raw, cpath, 0, HBS_TEXT, &budget, &out->json);
            break;
        }
        j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "title", title ? title : "");
        cJSON_AddStringToObject(j, "body", out->body);
        cJSON_AddStringToObject(j, "text", out->text);
        out->json = j;
        j = NULL;
        break;
    default:
        rc = herr_set(r->err, HR_INVAL, "unknown channel");
        break;
    }
    if (rc == 0 && (r->ch == CH_PUSH || r->ch == CH_WEBHOOK) && !out->json)
        rc = herr_set(r->err, HR_NOMEM, "out of memory");
    cJSON_Delete(j);
    cJSON_Delete(data);
    free(bp.footer_html);
    free(bp.footer_text);
    buf_cleanup(&doc);
    return rc;
}

/* ------------------------------------------------------------------ public: render */

static bool is_channel_node(const cJSON *el)
{
    return kind_of(json_str(el, "type")) == EK_CHANNEL;
}

int elemental_render(const cJSON *content, enum channel ch, const cJSON *ctx,
                     struct hbs_cache *cache, struct content *out, struct herr *err)
{
    struct er r = {0};
    struct sinks s;
    struct herr local = {0};
    const cJSON *elements = json_arr(content, "elements"), *el, *raw = NULL;
    char *sugar_title = NULL, cpath[PATH_LEN] = "";
    bool has_channel = false;
    int rc = HR_OK, i = 0;
    memset(out, 0, sizeof *out);
    out->channel = ch;
    sinks_init(&s);
    r.err = err ? err : &local;
    r.err->rc = 0;
    r.err->msg[0] = '\0';
    if (!cJSON_IsObject(content)) {
        rc = herr_set(r.err, HR_INVAL, "content must be an object");
        goto out;
    }
    if (ch <= CH_NONE || ch >= CH_COUNT) {
        rc = herr_set(r.err, HR_INVAL, "unknown channel");
        goto out;
    }
    r.ch = ch;
    r.cache = cache;
    r.want_html = ch == CH_EMAIL;
    r.want_plain = ch != CH_CHAT;
    r.want_md = ch == CH_CHAT || ch == CH_WEBHOOK;
    r.locale = json_str(ctx, "locale");
    {
        const char *primary =
            json_str(json_obj(json_obj(json_obj(ctx, "brand"), "settings"), "colors"), "primary");
        snprintf(r.accent, sizeof r.accent, "%s",
                 primary && layout_css_color(primary) ? primary : DEFAULT_ACCENT);
    }

    rc = tpl_dup(&r, ctx, "", "title", json_str(content, "title"), HBS_TEXT, &sugar_title);
    if (rc < 0)
        goto out;
    trim_inplace(sugar_title);
    if (sugar_title && !sugar_title[0]) {
        free(sugar_title);
        sugar_title = NULL;
    }
    cJSON_ArrayForEach(el, elements)
    {
        if (is_channel_node(el))
            has_channel = true;
    }
    if (has_channel) {
        const cJSON *found = NULL;
        cJSON_ArrayForEach(el, elements)
        {
            const char *cs = json_str(el, "if");
            path_join(cpath, sizeof cpath, "", "elements", i++);
            if (!is_channel_node(el) || channel_parse(json_str(el, "channel")) != ch)
                continue;
            if (cs) {
                struct cond c;
                if (!parse_cond(cs, &c)) {
                    rc = herr_set(r.err, HR_INVAL, "%s.if: unsupported condition \"%.64s\"",
                                  cpath, cs);
                    goto out;
                }
                if (!cond_eval(&c, ctx))
                    continue;
            }
            found = el;
            break;
        }
        if (found) {
            raw = json_member(found, "raw");
            if (raw && cJSON_IsNull(raw))
                raw = NULL;
            r.visits++;
            rc = render_list(&r, ctx, json_arr(found, "elements"), cpath, 1, &s);
        }
    } else {
        const char *body = json_str(content, "body");
        if (body)
            rc = r_text(&r, ctx, NULL, "", "body", body, true, &s);
        if (rc == 0)
            rc = render_list(&r, ctx, elements, "", 0, &s);
    }
    if (rc < 0)
        goto out;
    one_line(sugar_title);
    one_line(r.meta_title);
    rc = assemble(&r, content, ctx, &s, r.meta_title ? r.meta_title : sugar_title,
                  raw, raw ? cpath : "", out);
    if (rc == 0) {
        one_line(out->subject);
        one_line(out->title);
    }
out:
    if (rc < 0) {
        content_cleanup(out);
        out->channel = ch;
    }
    free(sugar_title);
    free(r.meta_title);
    sinks_cleanup(&s);
    return rc;
}

/* ------------------------------------------------------------------ public: validate */

struct ev {
    struct herr *err;
    unsigned count;
};

static int v_tmpl(struct ev *v, const char *path, const char *field, const char *src)
{
    struct hbs_tmpl *t = NULL;
    struct herr e = {0};
    int rc = hbs_compile(src, strlen(src), &t, &e);
    hbs_unref(t);
    if (rc < 0)
        return herr_set(v->err, rc, "%s%s%s: %s", path, *path && *field ? "." : "", field, e.msg);
    return HR_OK;
}

static int v_raw(struct ev *v, const cJSON *j, const char *path, int depth)
{
    char cpath[PATH_LEN];
    const cJSON *c;
    int i = 0, rc = HR_OK;
    if (depth > ELEM_MAX_RAW_DEPTH)
        return herr_set(v->err, HR_TOOBIG, "%s: nested deeper than %d", path, ELEM_MAX_RAW_DEPTH);
    if (cJSON_IsString(j))
        return v_tmpl(v, path, "", j->valuestring);
    cJSON_ArrayForEach(c, j)
    {
        if (cJSON_IsArray(j))
            path_join(cpath, sizeof cpath, path, "", i++);
        else
            path_join(cpath, sizeof cpath, path, c->string ? c->string : "", -1);
        if ((rc = v_raw(v, c, cpath, depth + 1)) < 0)
            break;
    }
    return rc;
}

enum vparent { VP_TOP, VP_LIST, VP_OTHER };

static int v_nodes(struct ev *v, const cJSON *arr, const char *path, int depth,
                   enum vparent parent);

/* v_enum: a literal enumerated field, when present, is a string of set. */
static int v_enum(struct ev *v, const cJSON *el, const char *path, const char *key,
                  const char *const *set)
{
    const cJSON *f = json_member(el, key);
    char names[96] = "";
    size_t n = 0;
    if (!f || (cJSON_IsString(f) && one_of(f->valuestring, set)))
        return HR_OK;
    for (; *set && n + strlen(*set) + 3 < sizeof names; set++) {
        memcpy(names + n, *set, strlen(*set));
        n += strlen(*set);
        if (set[1])
            memcpy(names + n, ", ", 2), n += 2;
    }
    names[n] = '\0';
    return herr_set(v->err, HR_INVAL, "%s.%s: must be one of %s", path, key, names);
}

static bool is_key(const char *k, const char *const *set)
{
    return k && one_of(k, set);
}

static int v_node(struct ev *v, const cJSON *el, const char *path, int depth,
                  enum vparent parent)
{
    static const char *const CONTROL[] = {"type", "channels", "if", "loop", "ref", "id",
                                          "checksum", "action_id", "version", "channel",
                                          "elements", "raw", "locales", NULL};
    static const char *const ENUMS[] = {"align", "text_style", "textStyle", "style", "list_type",
                                        "listType", "format", NULL};
    static const char *const FLAGS[] = {"bold", "italic", "strikethrough", "underline", NULL};
    const char *type = json_str(el, "type"), *s;
    const cJSON *f, *c;
    enum ekind k;
    struct epath lp;
    struct cond cd;
    char cpath[PATH_LEN];
    int rc = HR_OK;

    if (!cJSON_IsObject(el))
        return herr_set(v->err, HR_INVAL, "%s: an element must be an object", path);
    if (++v->count > ELEM_MAX_ELEMENTS)
        return herr_set(v->err, HR_TOOBIG, "%s: more than %d elements", path, ELEM_MAX_ELEMENTS);
    if (depth > ELEM_MAX_DEPTH)
        return herr_set(v->err, HR_TOOBIG, "%s: elements nested deeper than %d", path,
                        ELEM_MAX_DEPTH);
    if (!type)
        return herr_set(v->err, HR_INVAL, "%s.type: missing or not a string", path);
    k = kind_of(type);
    if (k == EK_UNKNOWN)
        return herr_set(v->err, HR_INVAL, "%s.type: unknown element type \"%.40s\"", path, type);
    if (k == EK_CHANNEL && parent != VP_TOP)
        return herr_set(v->err, HR_INVAL, "%s: channel elements are allowed only at the top level",
                        path);
    if (k == EK_LIST_ITEM && parent != VP_LIST)
        return herr_set(v->err, HR_INVAL, "%s: list-item is allowed only inside a list", path);
    if (parent == VP_LIST && k != EK_LIST_ITEM && k != EK_COMMENT)
        return herr_set(v->err, HR_INVAL, "%s: a list holds only list-item elements", path);

    /* control flow */
    f = json_member(el, "channels");
    if (f) {
        if (!cJSON_IsArray(f))
            return herr_set(v->err, HR_INVAL, "%s.channels: must be an array of strings", path);
        cJSON_ArrayForEach(c, f)
        {
            if (!cJSON_IsString(c))
                return herr_set(v->err, HR_INVAL, "%s.channels: must be an array of strings", path);
        }
    }
    f = json_member(el, "if");
    if (f && !cJSON_IsBool(f) && !(cJSON_IsString(f) && parse_cond(f->valuestring, &cd)))
        return herr_set(v->err, HR_INVAL,
                        "%s.if: unsupported condition (supported here: path, !path, and "
                        "path ===, !==, == or != a string, number, true, false or null)",
                        path);
    f = json_member(el, "loop");
    if (f && !(cJSON_IsString(f) && parse_path(f->valuestring, strlen(f->valuestring), &lp)))
        return herr_set(v->err, HR_INVAL, "%s.loop: must be a path such as data.items", path);
    f = json_member(el, "ref");
    if (f && !cJSON_IsString(f))
        return herr_set(v->err, HR_INVAL, "%s.ref: must be a string", path);

    /* enumerations and flags */
    if ((rc = v_enum(v, el, path, "align", ALIGNS)) < 0 ||
        (rc = v_enum(v, el, path, "text_style", TEXT_STYLES)) < 0 ||
        (rc = v_enum(v, el, path, "textStyle", TEXT_STYLES)) < 0 ||
        (rc = v_enum(v, el, path, "list_type", LIST_TYPES)) < 0 ||
        (rc = v_enum(v, el, path, "listType", LIST_TYPES)) < 0 ||
        (rc = v_enum(v, el, path, "format", FORMATS)) < 0 ||
        (k == EK_ACTION && (rc = v_enum(v, el, path, "style", ACTION_STYLES)) < 0))
        return rc;
    for (const char *const *fl = FLAGS; *fl; fl++) {
        f = json_member(el, *fl);
        if (f && !cJSON_IsBool(f))
            return herr_set(v->err, HR_INVAL, "%s.%s: must be true or false", path, *fl);
    }
    f = json_member(el, "width");
    if (f && !cJSON_IsString(f) && !cJSON_IsNumber(f))
        return herr_set(v->err, HR_INVAL, "%s.width: must be a number or a string", path);

    /* every other string field is a template */
    cJSON_ArrayForEach(f, el)
    {
        if (!cJSON_IsString(f) || is_key(f->string, CONTROL) || is_key(f->string, ENUMS))
            continue;
        if ((rc = v_tmpl(v, path, f->string ? f->string : "", f->valuestring)) < 0)
            return rc;
    }
    f = json_member(el, "locales");
    if (f && !cJSON_IsObject(f))
        return herr_set(v->err, HR_INVAL, "%s.locales: must be an object", path);
    cJSON_ArrayForEach(c, f)
    {
        const cJSON *x;
        char lpath[PATH_LEN];
        path_join(lpath, sizeof lpath, path, "locales", -1);
        path_join(cpath, sizeof cpath, lpath, c->string ? c->string : "", -1);
        if (!cJSON_IsObject(c))
            return herr_set(v->err, HR_INVAL, "%s: must be an object", cpath);
        cJSON_ArrayForEach(x, c)
        {
            if (cJSON_IsString(x) && (rc = v_tmpl(v, cpath, x->string, x->valuestring)) < 0)
                return rc;
        }
    }

    /* per kind */
    f = json_member(el, "elements");
    switch (k) {
    case EK_CHANNEL: {
        const cJSON *raw = json_member(el, "raw");
        s = json_str(el, "channel");
        if (!s || !s[0] || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(s))
            return herr_set(v->err, HR_INVAL, "%s.channel: must be a channel name such as email",
                            path);
        if (f && !cJSON_IsArray(f))
            return herr_set(v->err, HR_INVAL, "%s.elements: must be an array", path);
        if (!f && (!raw || cJSON_IsNull(raw)))
            return herr_set(v->err, HR_INVAL, "%s: a channel element needs elements or raw", path);
        if (raw) {
            path_join(cpath, sizeof cpath, path, "raw", -1);
            if ((rc = v_raw(v, raw, cpath, 0)) < 0)
                return rc;
        }
        return f ? v_nodes(v, f, path, depth + 1, VP_OTHER) : HR_OK;
    }
    case EK_LIST:
    case EK_LIST_ITEM:
    case EK_GROUP:
        if (f && !cJSON_IsArray(f))
            return herr_set(v->err, HR_INVAL, "%s.elements: must be an array", path);
        return f ? v_nodes(v, f, path, depth + 1, k == EK_LIST ? VP_LIST : VP_OTHER) : HR_OK;
    default:
        return HR_OK;
    }
}

static int v_nodes(struct ev *v, const cJSON *arr, const char *path, int depth,
                   enum vparent parent)
{
    char cpath[PATH_LEN];
    const cJSON *el;
    int i = 0, rc = HR_OK;
    cJSON_ArrayForEach(el, arr)
    {
        path_join(cpath, sizeof cpath, path, "elements", i++);
        if ((rc = v_node(v, el, cpath, depth, parent)) < 0)
            break;
    }
    return rc;
}

int elemental_validate(const cJSON *content, struct herr *err)
{
    struct ev v = {.err = err};
    const cJSON *title, *body, *elements, *version, *el, *first_ch = NULL, *first_other = NULL;
    char cpath[PATH_LEN];
    int rc;
    if (!cJSON_IsObject(content))
        return herr_set(err, HR_INVAL, "content must be an object");
    title = json_member(content, "title");
    body = json_member(content, "body");
    elements = json_member(content, "elements");
    version = json_member(content, "version");
    if (title && !cJSON_IsString(title))
        return herr_set(err, HR_INVAL, "title: must be a string");
    if (body && !cJSON_IsString(body))
        return herr_set(err, HR_INVAL, "body: must be a string");
    if (version && !cJSON_IsString(version))
        return herr_set(err, HR_INVAL, "version: must be a string");
    if (elements && !cJSON_IsArray(elements))
        return herr_set(err, HR_INVAL, "elements: must be an array");
    if (!title && !body && !elements)
        return herr_set(err, HR_INVAL, "content needs a title, a body or elements");
    if (title && (rc = v_tmpl(&v, "", "title", title->valuestring)) < 0)
        return rc;
    if (body && (rc = v_tmpl(&v, "", "body", body->valuestring)) < 0)
        return rc;
    cJSON_ArrayForEach(el, elements)
    {
        const char *type = json_str(el, "type");
        if (type && strcmp(type, "channel") == 0) {
            if (!first_ch)
                first_ch = el;
        } else if (!(type && strcmp(type, "comment") == 0) && !first_other) {
            first_other = el;
        }
    }
    if (first_ch && (first_other || body)) {
        int idx = 0;
        cJSON_ArrayForEach(el, elements)
        {
            if (el == (first_other ? first_other : first_ch))
                break;
            idx++;
        }
        if (!first_other)
            return herr_set(err, HR_INVAL,
                            "body: cannot be combined with channel elements (put it inside them)");
        path_join(cpath, sizeof cpath, "", "elements", idx);
        return herr_set(err, HR_INVAL,
                        "%s: channel elements cannot be mixed with other elements at the top level",
                        cpath);
    }
    return v_nodes(&v, elements, "", 0, VP_TOP);
}
