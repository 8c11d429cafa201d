/* xalloc.h: the one out-of-memory policy. x* functions never return NULL (they log
 * the size and abort); try_* may return NULL and are for sizes taken from input. */
#ifndef HERALD_UTIL_XALLOC_H
#define HERALD_UTIL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n); /* result is NUL-terminated */
void *try_malloc(size_t n);

#endif
