/* refs.h: Courier-style accessors in automation step definitions, resolved against a
 * run context (a cJSON object with roots data, profile, refs, recipient, brand,
 * template, ...). Pure: no I/O, no globals; any thread.
 *
 * refs_resolve walks a step value and builds a new one:
 *  - a string starting with "refs." is a path (path.h, lenient names):
 *    "refs.data.userId" -> ctx.data.userId; "refs.fetch1.body.x" -> ctx.refs.fetch1.body.x
 *    when the context has no root named fetch1 (a root wins over a step ref);
 *  - an object that is exactly {"$ref": "<path>"} is replaced by the value at the path
 *    ("data.email", "data.properties.plan", "profile.x", "fetch1.body", "refs.data.x");
 *  - a string holding "${expr}" (expr.h) has each one evaluated and substituted as
 *    text: strings as-is, numbers as JS prints them, booleans "true"/"false",
 *    undefined and null as "" (not JS's "undefined"), objects and arrays as compact
 *    JSON. A string that is exactly one "${expr}" yields the value itself with its
 *    type (undefined, NaN and Infinity become null). "${" always opens an expression;
 *    there is no escape;
 *  - other objects and arrays are walked; other values are copied.
 * A missing path resolves to null. Values taken from the context are copied as they
 * are and never resolved again (a "${...}" inside data stays text).
 * Errors are for the definition (a bad path, a bad expression, an unterminated "${")
 * and for limits; refs_validate finds the former at save time. */
#ifndef HERALD_ENGINE_REFS_H
#define HERALD_ENGINE_REFS_H

#include "../util/rc.h"

#include <cjson/cJSON.h>
#include <stddef.h>

#define REFS_MAX_DEPTH 32          /* nesting of the step definition walked */
#define REFS_MAX_COPY_DEPTH 64     /* nesting of a context value copied into the result */
#define REFS_MAX_OUT (1024 * 1024) /* result budget: string and key bytes + 16 per value */
#define REFS_MAX_TEXT (256 * 1024) /* one interpolated string */

/* refs_lookup: the node at path[0..len) in ctx (path.h syntax, lenient names, root
 * rules included, e.g. "data.email", "refs.data.userId", "data.items[0].name",
 * "data[\"a b\"]"), or NULL when it is missing or the path does not parse. Borrowed
 * from ctx. */
const cJSON *refs_lookup(const cJSON *ctx, const char *path, size_t len);

/* refs_resolve: resolve def (a step value; NULL is treated as JSON null) against ctx
 * (NULL acts as {}) into *out, a new value the caller owns (cJSON_Delete).
 * Returns HR_OK; HR_INVAL for a bad accessor in def, HR_TOOBIG past a limit above;
 * err->msg says where ("data.url: ..."). On failure *out is NULL. */
int refs_resolve(const cJSON *def, const cJSON *ctx, cJSON **out, struct herr *err)
    HR_MUSTCHECK;

/* refs_validate: check every accessor in def parses (paths, "${...}" expressions,
 * nesting); for save-time validation. Returns HR_OK, HR_INVAL or HR_TOOBIG as
 * refs_resolve would. */
int refs_validate(const cJSON *def, struct herr *err) HR_MUSTCHECK;

#endif
