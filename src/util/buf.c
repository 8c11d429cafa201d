/* buf.c: capped growable buffer. */
#include "buf.h"

#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void buf_cleanup(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

static int grow(struct buf *b, size_t extra)
{
    size_t need, ncap;
    if (extra > b->max || b->len > b->max - extra)
        return HR_TOOBIG;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return HR_OK;
    ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap = ncap * 2;
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    b->p = xrealloc(b->p, ncap);
    b->cap = ncap;
    return HR_OK;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    int rc = grow(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return HR_OK;
}

int buf_append_str(struct buf *b, struct str s)
{
    return buf_append(b, s.p, s.len);
}

int buf_append_c(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;
    char small[256];
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return HR_INVAL;
    if ((size_t)n < sizeof small)
        return buf_append(b, small, (size_t)n);
    rc = grow(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return HR_OK;
}

const char *buf_cstr(const struct buf *b)
{
    return b->p ? b->p : "";
}

struct str buf_str(const struct buf *b)
{
    return (struct str){buf_cstr(b), b->len};
}

char *buf_steal(struct buf *b, size_t *len)
{
    char *p = b->p ? b->p : xstrdup("");
    if (len)
        *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}
