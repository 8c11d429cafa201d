/* xalloc.h: the one out-of-memory policy. x* functions never return NULL (they log
 * the size and abort); try_* may return NULL and are for sizes taken from input. */
#ifndef HERALD_UTIL_XALLOC_H
#define HERALD_UTIL_XALLOC_H

#include <stddef.h>
#include <stdint.h>

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

/* xalloc_allocated: the bytes the allocator has handed out and not yet had back, in
 * *bytes: jemalloc's stats.allocated less the freed objects its thread caches keep, when
 * the binary links it (the release build), else
 * glibc's mallinfo2 (in-use chunks, glibc's thread caches among them, plus mmapped ones;
 * under ASan or TSan it reads glibc's unused arenas: zeros, taken as "cannot say").
 * Unlike RSS it falls as soon as
 * memory is freed, so a burst that is over does not read as growth. Returns 0, or -1
 * when the allocator cannot say (*bytes untouched). Takes the allocator's locks: for a
 * metrics scrape, not a hot path. */
int xalloc_allocated(uint64_t *bytes);

#endif
