/* jsonpatch.h: JSON document edits over cJSON for the profile API: RFC 6901 JSON
 * Pointer lookup, RFC 6902 JSON Patch (applied atomically), a shallow top-level merge
 * (POST /profiles, Segment identify, alias) and JSON equality. Debian's libcjson ships
 * no cJSON_Utils, so this is ours. Pure functions over caller-owned documents: no
 * globals, any thread may call them on documents it does not share.
 *
 * Bounds: a patch has at most JP_MAX_OPS operations and pointers of at most
 * JP_MAX_POINTER bytes; a patch may not make a document nest deeper than JP_MAX_DEPTH
 * (the json_parse_bounded() default) nor grow it past about JP_MAX_SIZE bytes (so
 * `copy` cannot double a document a thousand times). Recursion never goes deeper than
 * the documents passed in. */
#ifndef HERALD_UTIL_JSONPATCH_H
#define HERALD_UTIL_JSONPATCH_H

#include "json.h"
#include "rc.h"
#include "str.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define JP_MAX_OPS 1000
#define JP_MAX_POINTER 1024
#define JP_MAX_DEPTH JSON_MAX_DEPTH_DEFAULT
#define JP_MAX_SIZE ((size_t)8 << 20) /* approximate serialized bytes */

/* jp_pointer_get: resolve the RFC 6901 pointer ptr ("" is the whole document, "/a/b",
 * "/arr/0", "~0" for '~' and "~1" for '/') in doc. On success *out points into doc
 * (borrowed; valid while doc is unchanged). Returns HR_INVAL for a malformed pointer
 * (not "" or "/...", a '~' not followed by 0 or 1, a NUL byte, longer than
 * JP_MAX_POINTER) or for a token that is no array index ("-", "01", "x") applied to an
 * array, or for a NULL doc; HR_NOTFOUND when a member or element does not exist or the path goes
 * through a scalar. *out is NULL on failure. */
int jp_pointer_get(const cJSON *doc, struct str ptr, const cJSON **out) HR_MUSTCHECK;

/* jp_apply_patch: apply the RFC 6902 operation array ops (add, remove, replace, move,
 * copy, test; members other than op/path/value/from are ignored) to a copy of doc.
 * doc is never modified. On success *out is the patched document, owned by the caller
 * (cJSON_Delete); on failure *out is NULL and nothing was applied. err names the
 * failing operation by its 0-based index and says why, e.g.
 * "patch operation 2 (replace /email): path does not exist".
 * Returns HR_INVAL when ops is not an array of well-formed operation objects (unknown
 * or repeated op, missing path/value/from, malformed pointer, a token that is no array
 * index applied to an array, "-" where an existing element is needed, removing the whole
 * document, moving a value into its own child); HR_CONFLICT
 * when the document does not fit the patch (target or its parent missing, index out of
 * range, parent is a scalar, a `test` that fails); HR_TOOBIG beyond JP_MAX_OPS ops or
 * when the result would be deeper than JP_MAX_DEPTH or larger than JP_MAX_SIZE. */
int jp_apply_patch(const cJSON *doc, const cJSON *ops, cJSON **out, struct herr *err) HR_MUSTCHECK;

/* jp_merge: shallow merge of object src into object target: every top-level member of
 * src replaces (in place) or is appended to target's member of that name, as a deep
 * copy; with null_deletes, a src member that is null removes target's member instead.
 * Nested objects are replaced whole, not merged. src is not changed and may alias
 * target or live inside it. When src repeats a key the last one wins; when target
 * repeats a key only the first is replaced or removed. Does nothing unless both are
 * objects. Cost O((n + m) log(n + m)) for n and m top-level members. */
void jp_merge(cJSON *target, const cJSON *src, bool null_deletes);

/* jp_equal: JSON equality: same type; numbers by value (1 == 1.0); strings byte for
 * byte; arrays element by element in order; objects with the same members in any order
 * (a repeated key is matched in its order of appearance). Two NULLs are equal. */
bool jp_equal(const cJSON *a, const cJSON *b);

#endif
