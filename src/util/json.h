/* json.h: bounded JSON input over cJSON, plus small accessors. cJSON does not check
 * UTF-8 and recurses per nesting level, so every outside document goes through
 * json_parse_bounded(): one pass validates UTF-8 and the nesting depth, then cJSON
 * parses. */
#ifndef HERALD_UTIL_JSON_H
#define HERALD_UTIL_JSON_H

#include "rc.h"
#include "str.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH_DEFAULT 64

/* json_use_xalloc: route every cJSON allocation through xalloc (cJSON_InitHooks), so an
 * exhausted heap aborts at once with "out of memory allocating N bytes" instead of a
 * NULL surfacing deep inside cJSON (a parse or print that fails for no visible reason,
 * a Create* result used unchecked). Call once at process start, before any thread. */
void json_use_xalloc(void);

/* utf8_valid: true when p[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
bool utf8_valid(const char *p, size_t n);

/* json_parse_bounded: parse p[0..n) as one JSON value. Fails with HR_INVAL and a message
 * naming the problem (invalid UTF-8, a NUL byte or a \u0000 escape in a string, too deep,
 * malformed at offset) in err. Repeated member names are kept (JSON Patch must refuse
 * them: RFC 6902 A.13); see json_drop_duplicate_members. On success
 * *out is owned by the caller (cJSON_Delete). */
int json_parse_bounded(const char *p, size_t n, int max_depth, cJSON **out, struct herr *err)
    HR_MUSTCHECK;

/* json_drop_duplicate_members: in v and every object below it (v's depth must already
 * be bounded, as json_parse_bounded's output is), keep only the first member of each
 * name, so a check and the code that applies a value read the same one. Objects of many
 * members cost n log n. For documents from callers that must not steer delivery (a
 * public write key's events). */
void json_drop_duplicate_members(cJSON *v);

/* json_member: obj's first child named key (case-sensitive), exactly as
 * cJSON_GetObjectItemCaseSensitive finds it (it too stops at a child without a name),
 * but cheaper; NULL when there is none. Belongs to obj. */
cJSON *json_member(const cJSON *obj, const char *key);

/* Accessors: NULL/default when the key is absent or of another type. */
const char *json_str(const cJSON *obj, const char *key);
bool json_i64(const cJSON *obj, const char *key, int64_t *out);
bool json_bool(const cJSON *obj, const char *key, bool dflt);
cJSON *json_obj(const cJSON *obj, const char *key);
cJSON *json_arr(const cJSON *obj, const char *key);

/* json_print: compact serialization, the same bytes cJSON_PrintUnformatted writes (but
 * faster; json.c); "null" where cJSON would fail. Caller frees with free(). Never NULL. */
char *json_print(const cJSON *v);

#endif
