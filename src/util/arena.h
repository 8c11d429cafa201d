/* arena.h: a region allocator, one per HTTP request and per job attempt. Nothing in
 * it is freed one by one; arena_free() releases everything and runs the deferred
 * cleanups (last registered first), like nginx pool cleanups. */
#ifndef HERALD_UTIL_ARENA_H
#define HERALD_UTIL_ARENA_H

#include "rc.h"
#include "str.h"

#include <stddef.h>

struct arena;

struct arena *arena_new(size_t chunk); /* caller owns; free with arena_free */
void arena_free(struct arena *a);      /* NULL is a no-op */
void arena_reset(struct arena *a);     /* runs cleanups, keeps the first chunk */
void *arena_alloc(struct arena *a, size_t n);  /* 16-byte aligned, never NULL */
void *arena_zalloc(struct arena *a, size_t n); /* zeroed */
char *arena_strndup(struct arena *a, const char *s, size_t n); /* NUL-terminated */
char *arena_strdup(struct arena *a, const char *s);
struct str arena_str(struct arena *a, struct str s); /* copy, NUL-terminated */
char *arena_sprintf(struct arena *a, const char *fmt, ...) HR_PRINTF(2, 3);
/* arena_defer: run fn(arg) when the arena is reset or freed. */
void arena_defer(struct arena *a, void (*fn)(void *), void *arg);
size_t arena_used(const struct arena *a); /* bytes handed out, for caps and tests */

#endif
