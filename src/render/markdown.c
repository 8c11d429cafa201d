/* markdown.c: CommonMark to HTML (cmark, safe mode) and to plain text (a walk of cmark's
 * tree with an explicit container stack, so deep nesting costs no C stack). */
#include "markdown.h"

#include <cmark.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* check_input: refuse what cmark would take too long on. Debian's libcmark 0.30.2 is
 * quadratic in the brackets of unclosed links and images ("![[]()" repeated: 240 KB took
 * 7.8 s), so both the size and the bracket count of one block are capped. */
static int check_input(const char *md, size_t len, struct herr *err)
{
    size_t brackets = 0;
    if (len > MARKDOWN_MAX_IN)
        return herr_set(err, HR_TOOBIG, "markdown block is %zu bytes, over the limit of %u", len,
                        MARKDOWN_MAX_IN);
    for (size_t i = 0; md && i < len; i++)
        brackets += md[i] == '[';
    if (brackets > MARKDOWN_MAX_BRACKETS)
        return herr_set(err, HR_TOOBIG,
                        "markdown block has %zu '[' (links and images), over the limit of %u",
                        brackets, MARKDOWN_MAX_BRACKETS);
    return HR_OK;
}

int markdown_to_html(const char *md, size_t len, struct buf *out, struct herr *err)
{
    char *html;
    int rc = check_input(md, len, err);
    if (rc < 0)
        return rc;
    html = cmark_markdown_to_html(md ? md : "", md ? len : 0, CMARK_OPT_DEFAULT);
    rc = buf_append_c(out, html);
    free(html);
    if (rc < 0)
        return herr_set(err, rc, "markdown output over %zu bytes", out->max);
    return HR_OK;
}

/* ------------------------------------------------------------------ plain text */

#define MT_STACK 32 /* containers that get a prefix; deeper ones are flattened */
#define MT_LINKS 8

struct mt_ctr {
    char kind; /* 'q' block quote, 'l' list, 'i' list item */
    bool tight, ordered, marked;
    char delim;
    int next;       /* 'l': number of the next ordered item */
    char mark[16];  /* 'i': "- " or "12. " */
};

struct mt {
    struct buf *b;
    size_t start;
    int rc;
    int pending; /* newlines owed before the next output */
    bool bol;    /* at the beginning of a line: the prefix is owed */
    unsigned depth;
    struct mt_ctr st[MT_STACK];
    size_t link_at[MT_LINKS];
    unsigned nlink;
    bool skip; /* inside raw <script> or <style>: its text is not text */
};

static void app(struct mt *m, const char *p, size_t n)
{
    if (m->rc == 0 && n)
        m->rc = buf_append(m->b, p, n);
}

static void want(struct mt *m, int n)
{
    if (m->pending < n)
        m->pending = n;
}

static void prefix(struct mt *m)
{
    unsigned n = m->depth < MT_STACK ? m->depth : MT_STACK;
    for (unsigned i = 0; i < n; i++) {
        struct mt_ctr *c = &m->st[i];
        if (c->kind == 'q') {
            app(m, "> ", 2);
        } else if (c->kind == 'i') {
            size_t w = strlen(c->mark);
            if (!c->marked) {
                app(m, c->mark, w);
                c->marked = true;
            } else {
                app(m, "          ", w < 10 ? w : 10);
            }
        }
    }
}

/* flush: write owed newlines and the line prefix, as if output were about to start. */
static void flush(struct mt *m)
{
    if (m->pending) {
        if (m->b->len > m->start)
            for (int i = 0; i < m->pending; i++)
                app(m, "\n", 1);
        m->pending = 0;
        m->bol = true;
    }
    if (m->bol) {
        prefix(m);
        m->bol = false;
    }
}

static void put(struct mt *m, const char *p, size_t n)
{
    while (n && m->rc == 0) {
        const char *nl;
        size_t k;
        flush(m);
        nl = memchr(p, '\n', n);
        k = nl ? (size_t)(nl - p) : n;
        app(m, p, k);
        if (nl) {
            app(m, "\n", 1);
            m->bol = true;
            k++;
        }
        p += k;
        n -= k;
    }
}

static void put_c(struct mt *m, const char *s)
{
    if (s)
        put(m, s, strlen(s));
}

/* put_literal: a code or HTML block's text without its final newline. */
static void put_literal(struct mt *m, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    put(m, s, n);
}

/* ---- raw HTML in Markdown: its text, without tags ----------------------------------- */

/* html_tag: at s[0] == '<', the length of the tag, comment or declaration through its
 * '>', or 0 when s starts none (a lone '<' is text). name gets the lowercased tag name,
 * "/b" for a closing tag, "" for a comment or declaration. */
static size_t html_tag(const char *s, size_t n, char *name, size_t cap)
{
    size_t i = 1, k = 0;
    char q = 0;
    name[0] = '\0';
    if (n >= 4 && memcmp(s, "<!--", 4) == 0) {
        const char *e = memmem(s + 4, n - 4, "-->", 3);
        return e ? (size_t)(e - s) + 3 : n;
    }
    if (i < n && s[i] == '/' && k + 1 < cap)
        name[k++] = s[i++];
    if (i >= n || !(isalpha((unsigned char)s[i]) || s[i] == '!' || s[i] == '?'))
        return 0;
    while (i < n && isalnum((unsigned char)s[i])) {
        if (k + 1 < cap)
            name[k++] = (char)tolower((unsigned char)s[i]);
        i++;
    }
    name[k] = '\0';
    for (; i < n; i++) {
        if (q) {
            if (s[i] == q)
                q = 0;
        } else if (s[i] == '"' || s[i] == '\'') {
            q = s[i];
        } else if (s[i] == '>') {
            return i + 1;
        }
    }
    return 0;
}

/* utf8: code point c as UTF-8 into out (>= 4 bytes); 0 for a surrogate, NUL or > U+10FFFF. */
static size_t utf8(unsigned long c, char *out)
{
    if (c == 0 || (c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
        return 0;
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* entity: at s[0] == '&', a numeric entity or one of the common named ones, decoded into
 * out (>= 4 bytes, *outn bytes); returns the bytes consumed, 0 when s starts none. */
static size_t entity(const char *s, size_t n, char *out, size_t *outn)
{
    static const struct {
        const char *name;
        const char *text;
    } named[] = {{"amp;", "&"},  {"lt;", "<"},   {"gt;", ">"},     {"quot;", "\""},
                 {"apos;", "'"}, {"nbsp;", " "}, {"#39;", "'"}};
    for (size_t k = 0; k < sizeof named / sizeof named[0]; k++) {
        size_t l = strlen(named[k].name);
        if (n > l && memcmp(s + 1, named[k].name, l) == 0) {
            *outn = strlen(named[k].text);
            memcpy(out, named[k].text, *outn);
            return l + 1;
        }
    }
    if (n > 3 && s[1] == '#') {
        bool hex = s[2] == 'x' || s[2] == 'X';
        size_t i = hex ? 3 : 2, d = 0;
        unsigned long c = 0;
        for (; i < n && d < 8 && (hex ? isxdigit((unsigned char)s[i]) : isdigit((unsigned char)s[i])); i++, d++)
            c = c * (hex ? 16 : 10) +
                (unsigned long)(isdigit((unsigned char)s[i]) ? s[i] - '0' : (tolower((unsigned char)s[i]) - 'a' + 10));
        if (d && i < n && s[i] == ';' && (*outn = utf8(c, out)) > 0)
            return i + 1;
    }
    return 0;
}

/* html_text: append the text of raw HTML s[0..n) to out: tags and comments dropped,
 * <br> and block-level tags as line breaks, <script>/<style> content dropped (*skip
 * carries that across calls), entities decoded. */
static int html_text(const char *s, size_t n, struct buf *out, bool *skip)
{
    static const char *const blocks[] = {"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5",
                                         "h6", "ul", "ol", "table", "blockquote", "hr",
                                         "section", "header", "footer", NULL};
    char name[16], dec[8];
    size_t i = 0, t, dn;
    int rc = HR_OK;
    while (i < n && rc == HR_OK) {
        if (s[i] == '<' && (t = html_tag(s + i, n - i, name, sizeof name)) > 0) {
            const char *bare = name[0] == '/' ? name + 1 : name;
            i += t;
            if (*skip) {
                *skip = !(name[0] == '/' && (!strcmp(bare, "script") || !strcmp(bare, "style")));
                continue;
            }
            if (name[0] != '/' && (!strcmp(bare, "script") || !strcmp(bare, "style"))) {
                *skip = true;
            } else if (!strcmp(bare, "br")) {
                rc = buf_putc(out, '\n');
            } else if (bare[0]) {
                for (int k = 0; blocks[k]; k++)
                    if (!strcmp(bare, blocks[k]) && out->len && out->p[out->len - 1] != '\n')
                        rc = buf_putc(out, '\n');
            }
            continue;
        }
        if (*skip) {
            i++;
        } else if (s[i] == '&' && (t = entity(s + i, n - i, dec, &dn)) > 0) {
            rc = buf_append(out, dec, dn);
            i += t;
        } else {
            rc = buf_putc(out, s[i++]);
        }
    }
    return rc;
}

/* put_html: raw HTML from the Markdown as text (html_text); block: an HTML block (its
 * final newlines dropped, like put_literal). */
static void put_html(struct mt *m, const char *s, bool block)
{
    struct buf t;
    size_t n;
    if (m->rc < 0 || !s)
        return;
    buf_init(&t, m->b->max);
    m->rc = html_text(s, strlen(s), &t, &m->skip);
    n = t.len;
    while (block && n && (t.p[n - 1] == '\n' || t.p[n - 1] == '\r' || t.p[n - 1] == ' '))
        n--;
    if (m->rc == 0 && n)
        put(m, t.p, n);
    buf_cleanup(&t);
}

static struct mt_ctr *push(struct mt *m, char kind)
{
    struct mt_ctr *c = NULL;
    if (m->depth < MT_STACK) {
        c = &m->st[m->depth];
        memset(c, 0, sizeof *c);
        c->kind = kind;
    }
    m->depth++;
    return c;
}

static struct mt_ctr *top(struct mt *m)
{
    return m->depth && m->depth <= MT_STACK ? &m->st[m->depth - 1] : NULL;
}

/* in_tight: node's parent is a list item of a tight list. */
static bool in_tight(cmark_node *node)
{
    cmark_node *item = cmark_node_parent(node);
    cmark_node *list = item ? cmark_node_parent(item) : NULL;
    return item && list && cmark_node_get_type(item) == CMARK_NODE_ITEM &&
           cmark_node_get_list_tight(list);
}

static void enter(struct mt *m, cmark_node *node)
{
    struct mt_ctr *c;
    switch (cmark_node_get_type(node)) {
    case CMARK_NODE_BLOCK_QUOTE:
        want(m, 2);
        push(m, 'q');
        break;
    case CMARK_NODE_LIST:
        want(m, in_tight(node) ? 1 : 2);
        c = push(m, 'l');
        if (c) {
            c->ordered = cmark_node_get_list_type(node) == CMARK_ORDERED_LIST;
            c->tight = cmark_node_get_list_tight(node) != 0;
            c->next = cmark_node_get_list_start(node);
            c->delim = cmark_node_get_list_delim(node) == CMARK_PAREN_DELIM ? ')' : '.';
        }
        break;
    case CMARK_NODE_ITEM: {
        struct mt_ctr *l = top(m);
        bool tight = l ? l->tight : cmark_node_get_list_tight(cmark_node_parent(node)) != 0;
        want(m, tight ? 1 : 2);
        c = push(m, 'i');
        if (c) {
            if (l && l->kind == 'l' && l->ordered)
                snprintf(c->mark, sizeof c->mark, "%d%c ", l->next++ % 1000000000, l->delim);
            else
                memcpy(c->mark, "- ", 3);
        }
        break;
    }
    case CMARK_NODE_PARAGRAPH:
        want(m, in_tight(node) ? 1 : 2);
        break;
    case CMARK_NODE_HEADING:
        want(m, 2);
        break;
    case CMARK_NODE_THEMATIC_BREAK:
        want(m, 2);
        put_c(m, "---");
        break;
    case CMARK_NODE_CODE_BLOCK:
        want(m, 2);
        put_literal(m, cmark_node_get_literal(node));
        break;
    case CMARK_NODE_HTML_BLOCK:
        want(m, 2);
        put_html(m, cmark_node_get_literal(node), true);
        break;
    case CMARK_NODE_HTML_INLINE:
        put_html(m, cmark_node_get_literal(node), false);
        break;
    case CMARK_NODE_TEXT:
        if (!m->skip)
            put_c(m, cmark_node_get_literal(node));
        break;
    case CMARK_NODE_CODE:
        put_c(m, cmark_node_get_literal(node));
        break;
    case CMARK_NODE_SOFTBREAK:
    case CMARK_NODE_LINEBREAK:
        put(m, "\n", 1);
        break;
    case CMARK_NODE_LINK:
        flush(m);
        if (m->nlink < MT_LINKS)
            m->link_at[m->nlink] = m->b->len;
        m->nlink++;
        break;
    case CMARK_NODE_IMAGE:
        put(m, "[", 1);
        break;
    default:
        break;
    }
}

static void leave(struct mt *m, cmark_node *node)
{
    switch (cmark_node_get_type(node)) {
    case CMARK_NODE_BLOCK_QUOTE:
    case CMARK_NODE_LIST:
        m->depth--;
        want(m, 2);
        break;
    case CMARK_NODE_ITEM:
        m->depth--;
        break;
    case CMARK_NODE_LINK: {
        const char *url = cmark_node_get_url(node);
        size_t ul = url ? strlen(url) : 0;
        m->nlink--;
        if (ul && m->nlink < MT_LINKS && m->rc == 0) {
            size_t at = m->link_at[m->nlink], tl = m->b->len - at;
            const char *t = m->b->p ? m->b->p + at : "";
            if (tl == 0)
                put(m, url, ul);
            else if (!(tl == ul && memcmp(t, url, ul) == 0) &&
                     !(ul > 7 && strncmp(url, "mailto:", 7) == 0 && tl == ul - 7 &&
                       memcmp(t, url + 7, tl) == 0)) {
                put(m, " (", 2);
                put(m, url, ul);
                put(m, ")", 1);
            }
        }
        break;
    }
    case CMARK_NODE_IMAGE:
        put(m, "]", 1);
        break;
    default:
        break;
    }
}

int markdown_to_text(const char *md, size_t len, struct buf *out, struct herr *err)
{
    struct mt m = {.b = out, .start = out->len, .bol = true};
    cmark_node *doc;
    cmark_iter *it;
    cmark_event_type ev;
    int rc = check_input(md, len, err);
    if (rc < 0)
        return rc;
    doc = cmark_parse_document(md ? md : "", md ? len : 0, CMARK_OPT_DEFAULT);
    it = cmark_iter_new(doc);
    while (m.rc == 0 && (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
        cmark_node *node = cmark_iter_get_node(it);
        if (ev == CMARK_EVENT_ENTER)
            enter(&m, node);
        else if (ev == CMARK_EVENT_EXIT)
            leave(&m, node);
    }
    cmark_iter_free(it);
    cmark_node_free(doc);
    if (m.rc < 0) {
        out->len = m.start;
        if (out->p)
            out->p[m.start] = '\0';
        return herr_set(err, m.rc, "text output over %zu bytes", out->max);
    }
    return HR_OK;
}
