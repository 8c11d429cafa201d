/* list_id.c: Courier's list ids and list patterns, shared by both backends and the API:
 * validation, matching, and the literal prefix a backend can bound its index walk with.
 * An id is up to four dot-separated parts ("team.eng.backend"); in a pattern a part may
 * be `*` (exactly one part) and the last part `**` (one or more parts). Pure functions. */
#include "store.h"

#include <string.h>

static bool part_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == ':' || c == '@' || c == '+';
}

/* next_part: the part of s starting at *pos (up to the next '.' or the end) into *part;
 * *pos moves past the '.'. Returns false when nothing is left. */
static bool next_part(struct str s, size_t *pos, struct str *part)
{
    size_t i = *pos;
    if (i > s.len)
        return false;
    while (i < s.len && s.p[i] != '.')
        i++;
    *part = (struct str){s.p + *pos, i - *pos};
    *pos = i + 1;
    return true;
}

static bool literal_part(struct str part)
{
    if (part.len == 0)
        return false;
    for (size_t i = 0; i < part.len; i++)
        if (!part_char(part.p[i]))
            return false;
    return true;
}

/* check: id (wild false) or pattern (wild true) shape. */
static bool check(struct str s, bool wild)
{
    size_t pos = 0, nparts = 0, nliteral = 0;
    struct str part;
    bool after_globstar = false;

    if (s.len == 0 || s.len > LIST_ID_MAX)
        return false;
    while (next_part(s, &pos, &part)) {
        if (after_globstar || ++nparts > LIST_PARTS_MAX)
            return false;
        if (wild && str_eq(part, STR_LIT("*")))
            continue;
        if (wild && str_eq(part, STR_LIT("**"))) {
            after_globstar = true;
            continue;
        }
        if (!literal_part(part))
            return false;
        nliteral++;
    }
    return nliteral > 0;
}

bool store_list_id_valid(struct str id)
{
    return check(id, false);
}

bool store_list_pattern_valid(struct str pattern)
{
    return check(pattern, true);
}

bool store_list_is_pattern(struct str pattern)
{
    return memchr(pattern.p ? pattern.p : "", '*', pattern.len) != NULL;
}

bool store_list_match(struct str pattern, struct str id)
{
    size_t pp = 0, ip = 0;
    struct str pat, part;

    while (next_part(pattern, &pp, &pat)) {
        if (str_eq(pat, STR_LIT("**")))
            return ip < id.len; /* one or more parts left */
        if (!next_part(id, &ip, &part))
            return false;
        if (!str_eq(pat, STR_LIT("*")) && !str_eq(pat, part))
            return false;
    }
    return ip > id.len; /* the id has no part left either */
}

size_t store_list_pattern_prefix(struct str pattern)
{
    size_t pos = 0, start = 0;
    struct str part;
    while (start = pos, next_part(pattern, &pos, &part))
        if (str_eq(part, STR_LIT("*")) || str_eq(part, STR_LIT("**")))
            return start;
    return pattern.len;
}
