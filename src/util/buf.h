/* buf.h: a growable byte buffer with a hard cap (curl's dynbuf idea). Appends past the
 * cap fail with HR_TOOBIG and leave the buffer as it was. Contents are kept
 * NUL-terminated so buf_cstr() is always valid. */
#ifndef HERALD_UTIL_BUF_H
#define HERALD_UTIL_BUF_H

#include "rc.h"
#include "str.h"

#include <stddef.h>

struct buf {
    char *p;    /* owned; NULL until the first append */
    size_t len; /* bytes used, excluding the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* hard cap on len */
};

void buf_init(struct buf *b, size_t max);
void buf_cleanup(struct buf *b);        /* frees; b may be reused after buf_init */
void buf_reset(struct buf *b);          /* len = 0, keeps memory */
int buf_append(struct buf *b, const void *p, size_t n) HR_MUSTCHECK;
int buf_append_str(struct buf *b, struct str s) HR_MUSTCHECK;
int buf_append_c(struct buf *b, const char *s) HR_MUSTCHECK;
int buf_putc(struct buf *b, char c) HR_MUSTCHECK;
int buf_printf(struct buf *b, const char *fmt, ...) HR_PRINTF(2, 3) HR_MUSTCHECK;
const char *buf_cstr(const struct buf *b); /* "" when empty; owned by b */
struct str buf_str(const struct buf *b);
/* buf_steal: hand the bytes to the caller (free() them); b is reset to empty. */
char *buf_steal(struct buf *b, size_t *len);

#endif
