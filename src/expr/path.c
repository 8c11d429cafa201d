/* path.c: value paths into a run context (parser, string literals, JS-style lookup);
 * the single implementation behind expr.c and refs.c. */
#include "path.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

bool path_ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' || c >= 0x80;
}

bool path_ident_char(unsigned char c)
{
    return path_ident_start(c) || (c >= '0' && c <= '9');
}

static bool lenient_char(unsigned char c)
{
    if (c <= 0x20 || c == 0x7f)
        return false;
    return strchr(".[]\"'(){},", c) == NULL;
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* put_cp: append code point cp as UTF-8; false when out is full. */
static bool put_cp(char *out, size_t cap, size_t *n, uint32_t cp)
{
    unsigned char b[4];
    size_t k;
    if (cp >= 0xd800 && cp <= 0xdfff)
        cp = 0xfffd;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        k = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    if (cap == 0 || *n + k > cap - 1)
        return false;
    memcpy(out + *n, b, k);
    *n += k;
    return true;
}

/* hex_n: read exactly n hex digits at src.p[i]; -1 when they are not there. */
static long hex_n(struct str src, size_t i, size_t n)
{
    long v = 0;
    if (i + n > src.len)
        return -1;
    for (size_t k = 0; k < n; k++) {
        int h = hexval((unsigned char)src.p[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* read_u_escape: src.p[*i] is the char after "\u"; decodes XXXX or {X..} and moves
 * *i past it. Returns the code point or -1 when malformed. */
static long read_u_escape(struct str src, size_t *i)
{
    if (*i < src.len && src.p[*i] == '{') {
        size_t k = *i + 1;
        long v = 0;
        size_t digits = 0;
        while (k < src.len && hexval((unsigned char)src.p[k]) >= 0) {
            v = v * 16 + hexval((unsigned char)src.p[k]);
            if (v > 0x10ffff)
                return -1;
            k++;
            digits++;
        }
        if (digits == 0 || k >= src.len || src.p[k] != '}')
            return -1;
        *i = k + 1;
        return v;
    }
    long v = hex_n(src, *i, 4);
    if (v < 0)
        return -1;
    *i += 4;
    return v;
}

int path_string(struct str src, size_t *pos, char *out, size_t cap, size_t *out_len,
                struct herr *err)
{
    size_t start = *pos, i = *pos + 1, n = 0;
    char q = src.p[start];
    while (1) {
        if (i >= src.len)
            return herr_set(err, HR_INVAL, "unterminated string starting at offset %zu", start);
        unsigned char c = (unsigned char)src.p[i];
        if (c == (unsigned char)q)
            break;
        if (c == '\n' || c == '\r')
            return herr_set(err, HR_INVAL, "line break inside a string at offset %zu", i);
        if (c != '\\') {
            if (cap == 0 || n + 1 > cap - 1)
                return herr_set(err, HR_TOOBIG, "string at offset %zu is too long", start);
            out[n++] = (char)c;
            i++;
            continue;
        }
        size_t esc = i;
        if (++i >= src.len)
            return herr_set(err, HR_INVAL, "unterminated string starting at offset %zu", start);
        c = (unsigned char)src.p[i++];
        long cp;
        switch (c) {
        case 'n': cp = '\n'; break;
        case 't': cp = '\t'; break;
        case 'r': cp = '\r'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'v': cp = '\v'; break;
        case '0': cp = 0; break;
        case 'x':
            cp = hex_n(src, i, 2);
            i += 2;
            break;
        case 'u':
            cp = read_u_escape(src, &i);
            if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < src.len && src.p[i] == '\\' &&
                src.p[i + 1] == 'u') {
                size_t j = i + 2;
                long lo = read_u_escape(src, &j);
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i = j;
                }
            }
            break;
        case '\r':
            if (i < src.len && src.p[i] == '\n')
                i++;
            continue; /* line continuation */
        case '\n':
            continue;
        default:
            cp = c; /* \<any>: the byte itself */
            if (c >= 0x80) {
                i--; /* a UTF-8 sequence: copy its bytes unchanged */
                continue;
            }
            break;
        }
        if (cp < 0)
            return herr_set(err, HR_INVAL, "bad escape sequence at offset %zu", esc);
        if (!put_cp(out, cap, &n, (uint32_t)cp))
            return herr_set(err, HR_TOOBIG, "string at offset %zu is too long", start);
    }
    if (cap == 0)
        return herr_set(err, HR_TOOBIG, "string at offset %zu is too long", start);
    out[n] = '\0';
    *out_len = n;
    *pos = i + 1;
    return HR_OK;
}

/* read_name: the name at src.p[*pos] per mode; HR_INVAL when there is none. */
static int read_name(struct str src, size_t *pos, enum path_mode mode, struct path_seg *seg,
                     const char *what, struct herr *err)
{
    size_t i = *pos;
    if (mode == PATH_STRICT) {
        if (i >= src.len || !path_ident_start((unsigned char)src.p[i]))
            return herr_set(err, HR_INVAL, "expected a name %s at offset %zu", what, i);
        while (i < src.len && path_ident_char((unsigned char)src.p[i]))
            i++;
    } else {
        while (i < src.len && lenient_char((unsigned char)src.p[i]))
            i++;
        if (i == *pos)
            return herr_set(err, HR_INVAL, "expected a name %s at offset %zu", what, i);
    }
    seg->kind = PATH_KEY;
    seg->key = (struct str){src.p + *pos, i - *pos};
    seg->index = 0;
    *pos = i;
    return HR_OK;
}

int path_first(struct str src, size_t *pos, enum path_mode mode, struct path_seg *seg,
               struct herr *err)
{
    return read_name(src, pos, mode, seg, "", err);
}

static size_t skip_space(struct str src, size_t i)
{
    while (i < src.len && is_space((unsigned char)src.p[i]))
        i++;
    return i;
}

/* read_bracket: src.p[i] is '['; reads `[12]`, `["k"]` or `['k']`. */
static int read_bracket(struct str src, size_t *pos, char *scratch, size_t cap,
                        struct path_seg *seg, struct herr *err)
{
    size_t open = *pos, i = skip_space(src, *pos + 1);
    int rc;
    if (i < src.len && (src.p[i] == '"' || src.p[i] == '\'')) {
        size_t klen = 0;
        rc = path_string(src, &i, scratch, cap, &klen, err);
        if (rc < 0)
            return rc;
        seg->kind = PATH_KEY;
        seg->key = (struct str){scratch, klen};
        seg->index = 0;
    } else if (i < src.len && src.p[i] >= '0' && src.p[i] <= '9') {
        size_t v = 0;
        while (i < src.len && src.p[i] >= '0' && src.p[i] <= '9') {
            v = v * 10 + (size_t)(src.p[i] - '0');
            if (v > PATH_MAX_INDEX)
                return herr_set(err, HR_INVAL, "index too large at offset %zu", open + 1);
            i++;
        }
        seg->kind = PATH_INDEX;
        seg->key = STR_NULL;
        seg->index = v;
    } else {
        return herr_set(err, HR_INVAL,
                        "expected a number or a quoted key inside [ ] at offset %zu", i);
    }
    i = skip_space(src, i);
    if (i >= src.len || src.p[i] != ']')
        return herr_set(err, HR_INVAL, "expected ']' at offset %zu", i);
    *pos = i + 1;
    return HR_OK;
}

int path_next(struct str src, size_t *pos, enum path_mode mode, char *scratch, size_t cap,
              struct path_seg *seg, struct herr *err)
{
    size_t i = *pos;
    int rc;
    if (i + 1 < src.len && src.p[i] == '?' && src.p[i + 1] == '.') {
        i++;
        if (i + 1 < src.len && src.p[i + 1] == '[') {
            i++;
            rc = read_bracket(src, &i, scratch, cap, seg, err);
            if (rc == HR_OK)
                *pos = i;
            return rc;
        }
    }
    if (i >= src.len)
        return HR_NOTFOUND;
    if (src.p[i] == '[') {
        rc = read_bracket(src, &i, scratch, cap, seg, err);
        if (rc == HR_OK)
            *pos = i;
        return rc;
    }
    if (src.p[i] != '.')
        return HR_NOTFOUND;
    i++;
    if (mode == PATH_STRICT)
        i = skip_space(src, i);
    rc = read_name(src, &i, mode, seg, "after '.'", err);
    if (rc == HR_OK)
        *pos = i;
    return rc;
}

int path_parse(struct str src, enum path_mode mode, struct path *out, struct herr *err)
{
    size_t pos = 0, used = 0;
    int rc;
    out->n = 0;
    if (src.len > PATH_MAX_LEN)
        return herr_set(err, HR_TOOBIG, "path longer than %d bytes", PATH_MAX_LEN);
    rc = path_first(src, &pos, mode, &out->segs[0], err);
    if (rc < 0)
        return rc;
    out->n = 1;
    while (pos < src.len) {
        struct path_seg seg;
        char *scratch = out->buf + used;
        if (out->n == PATH_MAX_SEGS)
            return herr_set(err, HR_TOOBIG, "path has more than %d parts", PATH_MAX_SEGS);
        rc = path_next(src, &pos, mode, scratch, sizeof out->buf - used, &seg, err);
        if (rc == HR_NOTFOUND)
            return herr_set(err, HR_INVAL, "unexpected character at offset %zu", pos);
        if (rc < 0)
            return rc;
        if (seg.kind == PATH_KEY && seg.key.p == scratch)
            used += seg.key.len + 1;
        out->segs[out->n++] = seg;
    }
    return HR_OK;
}

/* obj_get: the member of object o named key (the last one, as JSON.parse keeps). */
static const cJSON *obj_get(const cJSON *o, struct str key)
{
    const cJSON *hit = NULL;
    if (!cJSON_IsObject(o))
        return NULL;
    for (const cJSON *c = o->child; c; c = c->next) {
        if (c->string && strlen(c->string) == key.len &&
            (key.len == 0 || memcmp(c->string, key.p, key.len) == 0))
            hit = c;
    }
    return hit;
}

bool path_index_name(struct str key, size_t *out)
{
    size_t v = 0;
    if (key.len == 0 || key.len > 10 || (key.len > 1 && key.p[0] == '0'))
        return false;
    for (size_t i = 0; i < key.len; i++) {
        if (key.p[i] < '0' || key.p[i] > '9')
            return false;
        v = v * 10 + (size_t)(key.p[i] - '0');
    }
    if (v > PATH_MAX_INDEX)
        return false;
    *out = v;
    return true;
}

const cJSON *path_child(const cJSON *node, const struct path_seg *seg)
{
    size_t idx;
    if (!node)
        return NULL;
    if (cJSON_IsObject(node)) {
        if (seg->kind == PATH_KEY)
            return obj_get(node, seg->key);
        char num[24];
        int n = snprintf(num, sizeof num, "%zu", seg->index);
        return obj_get(node, (struct str){num, (size_t)n});
    }
    if (cJSON_IsArray(node)) {
        if (seg->kind == PATH_INDEX)
            idx = seg->index;
        else if (!path_index_name(seg->key, &idx))
            return NULL;
        return cJSON_GetArrayItem(node, (int)idx);
    }
    return NULL;
}

const cJSON *path_root(const cJSON *ctx, const struct path_seg *segs, size_t n, size_t *used)
{
    const cJSON *r;
    *used = 1;
    if (n == 0 || segs[0].kind != PATH_KEY || !cJSON_IsObject(ctx))
        return NULL;
    if (n >= 2 && segs[1].kind == PATH_KEY && str_eq_c(segs[0].key, "refs")) {
        r = obj_get(ctx, segs[1].key);
        if (r) {
            *used = 2;
            return r;
        }
    }
    r = obj_get(ctx, segs[0].key);
    if (r)
        return r;
    return obj_get(obj_get(ctx, STR_LIT("refs")), segs[0].key);
}

const cJSON *path_get(const cJSON *ctx, const struct path *p)
{
    size_t used;
    const cJSON *node = path_root(ctx, p->segs, p->n, &used);
    for (size_t i = used; node && i < p->n; i++)
        node = path_child(node, &p->segs[i]);
    return node;
}
