/* str.h: strings that carry their length (not NUL-terminated unless said). */
#ifndef HERALD_UTIL_STR_H
#define HERALD_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct str {
    const char *p; /* not owned; may be NULL when len == 0 */
    size_t len;
};

#define STR_LIT(s) ((struct str){(s), sizeof(s) - 1})
#define STR_NULL ((struct str){NULL, 0})
#define STR_FMT(s) (int)(s).len, (s).p /* use with "%.*s" */

/* str_c: view of a C string (NULL gives the empty string). */
struct str str_c(const char *s);
bool str_eq(struct str a, struct str b);
bool str_eq_c(struct str a, const char *b);
bool str_ieq_c(struct str a, const char *b); /* ASCII case-insensitive */
bool str_starts_with(struct str s, struct str prefix);

/* str_to_i64: parse a whole decimal integer (optional sign); returns 0 or HR_INVAL. */
int str_to_i64(struct str s, int64_t *out);

/* str_copy: copy s into dst of capacity cap, always NUL-terminated; returns the
 * length copied (truncated to cap - 1). */
size_t str_copy(char *dst, size_t cap, struct str s);
/* str_id_chars_ok: s is 1..max bytes of [A-Za-z0-9_.:-] (the shape of template and topic
 * ids). Pure. */
bool str_id_chars_ok(struct str s, size_t max);

#endif
