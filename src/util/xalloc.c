/* xalloc.c: allocation wrappers that abort on exhaustion (see xalloc.h). */
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static void oom(size_t n)
{
    fprintf(stderr, "herald: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom(nmemb * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *try_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

void xalloc_tune(void)
{
#ifdef __GLIBC__
    (void)mallopt(M_MXFAST, 0);
#endif
}

/* jemalloc's control interface, weak: resolved when the binary links jemalloc (the
 * release herald), NULL in the sanitizer builds and the unit tests, which keep libc's
 * allocator */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

/* MALLCTL_ARENAS_ALL: the arena index that sums every arena's statistics */
#define JE_ARENAS_ALL "4096"

int xalloc_allocated(uint64_t *bytes)
{
    if (mallctl) {
        uint64_t epoch = 1;
        size_t n = sizeof epoch, a = 0, c = 0;

        /* the statistics are a snapshot taken at the last epoch: refresh it first */
        if (mallctl("epoch", &epoch, &n, &epoch, sizeof epoch) != 0)
            return -1;
        n = sizeof a;
        if (mallctl("stats.allocated", &a, &n, NULL, 0) != 0)
            return -1;
        /* freed objects a thread keeps in its cache for its next malloc count as
         * allocated; after a burst the caches of ~70 threads held 15-30 MiB of them */
        n = sizeof c;
        if (mallctl("stats.arenas." JE_ARENAS_ALL ".tcache_bytes", &c, &n, NULL, 0) != 0)
            return -1;
        *bytes = c <= a ? a - c : 0;
        return 0;
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();
    uint64_t n = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;

    if (n == 0) /* under ASan or TSan, glibc's own arenas are unused: zeros; cannot say */
        return -1;
    *bytes = n;
    return 0;
#else
    return -1;
#endif
}
