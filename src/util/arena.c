/* arena.c: chunked bump allocator with cleanup hooks. */
#include "arena.h"

#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    void (*fn)(void *);
    void *arg;
};

struct arena {
    struct chunk *head;
    struct cleanup *cleanups;
    size_t chunk_size;
    size_t total;
};

static struct chunk *chunk_new(size_t size)
{
    struct chunk *c = xmalloc(sizeof *c + size);
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

struct arena *arena_new(size_t chunk)
{
    struct arena *a = xcalloc(1, sizeof *a);
    a->chunk_size = chunk < 256 ? 256 : chunk;
    a->head = chunk_new(a->chunk_size);
    return a;
}

static void run_cleanups(struct arena *a)
{
    while (a->cleanups) {
        struct cleanup *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->arg);
    }
}

void arena_reset(struct arena *a)
{
    struct chunk *c, *keep = NULL;
    if (!a)
        return;
    run_cleanups(a);
    /* keep one chunk of the standard size, free the rest */
    c = a->head;
    while (c) {
        struct chunk *next = c->next;
        if (!keep && c->size == a->chunk_size)
            keep = c;
        else
            free(c);
        c = next;
    }
    if (!keep)
        keep = chunk_new(a->chunk_size);
    keep->next = NULL;
    keep->used = 0;
    a->head = keep;
    a->total = 0;
}

void arena_free(struct arena *a)
{
    struct chunk *c;
    if (!a)
        return;
    run_cleanups(a);
    c = a->head;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

void *arena_alloc(struct arena *a, size_t n)
{
    struct chunk *c = a->head;
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n)
        abort();
    if (c->size - c->used < need) {
        size_t sz = need > a->chunk_size ? need : a->chunk_size;
        if (need > a->chunk_size / 4 && need > c->size - c->used) {
            /* big block: own chunk, placed behind the head so the head keeps its space */
            struct chunk *big = chunk_new(need);
            big->used = need;
            big->next = c->next;
            c->next = big;
            a->total += need;
            return big->data;
        }
        c = chunk_new(sz);
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->total += need;
    return p;
}

void *arena_zalloc(struct arena *a, size_t n)
{
    void *p = arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

struct str arena_str(struct arena *a, struct str s)
{
    return (struct str){arena_strndup(a, s.p, s.len), s.len};
}

char *arena_sprintf(struct arena *a, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return arena_strdup(a, "");
    p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void arena_defer(struct arena *a, void (*fn)(void *), void *arg)
{
    struct cleanup *c = arena_alloc(a, sizeof *c);
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
}

size_t arena_used(const struct arena *a)
{
    return a->total;
}
