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

/* xalloc_tune: set the C library allocator for a server's load; call once at start,
 * before any thread. With glibc it turns off the fast bins (mallopt M_MXFAST 0): a
 * request above the small sizes, such as a job's ticket or an arena's chunk, otherwise
 * first merges every freed small chunk of its arena (malloc_consolidate), and that was
 * ~8 % of the server's CPU in the flow profile. The per-thread caches (tcache) still
 * serve small sizes. A no-op elsewhere. The release binary links jemalloc ahead of libc
 * (Makefile), so this only tunes the sanitizer builds' and the unit tests' glibc malloc:
 * jemalloc has no fast bins, and glibc's mallopt does not reach it. */
void xalloc_tune(void);

#endif
