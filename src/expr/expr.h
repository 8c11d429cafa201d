/* expr.h: a bounded evaluator for the JavaScript-style conditions of automation step
 * `if` fields, Elemental `if` and `${...}` interpolation. Pure: no I/O, no globals.
 *
 * Grammar (JavaScript precedence, lowest first):
 *   or      := and ( "||" and )*
 *   and     := eq ( "&&" eq )*
 *   eq      := rel ( ("===" | "!==" | "==" | "!=") rel )*
 *   rel     := unary ( ("<" | "<=" | ">" | ">=") unary )*
 *   unary   := ("!" | "-") unary | postfix
 *   postfix := primary ( "." name | "?." name | "[" int "]" | "[" string "]"
 *                      | ".includes(" or ")" )*
 *   primary := number | string | true | false | null | undefined | NaN | Infinity
 *            | name | "(" or ")"
 * A leading name is a root of the run context, resolved per path.h (so
 * `refs.data.userId` is data.userId and `refs.step1.status` the step ref step1).
 * Semantics are JavaScript's for these types: == / != with null/undefined and
 * number/string/boolean coercion (arrays and objects compare through their string
 * form), === strict, relational ops on two strings compare bytes (UTF-8 order) and
 * otherwise numbers, NaN unequal to all, && and || short-circuit and yield an
 * operand, `.length` of strings (UTF-16 units) and arrays, `.includes(x)` on strings
 * (x converted to a string) and arrays (SameValueZero). Every member access is
 * optional: a missing path is undefined, never an error. There is no `+`, no other
 * calls, no assignment, no loops: evaluation is linear in the expression size (plus
 * the size of strings and arrays that `.includes` and string conversions read).
 *
 * Limits: EXPR_MAX_SRC bytes of source, EXPR_MAX_NODES syntax nodes (path parts
 * count), nesting EXPR_MAX_DEPTH (parentheses, unary chains and tree height, so a
 * chain of more than 63 binary operators is refused: group it with parentheses). */
#ifndef HERALD_EXPR_EXPR_H
#define HERALD_EXPR_EXPR_H

#include "../util/buf.h"
#include "../util/rc.h"
#include "../util/str.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define EXPR_MAX_SRC 4096
#define EXPR_MAX_NODES 512
#define EXPR_MAX_DEPTH 64
#define EXPR_MAX_TEXT (64 * 1024) /* string conversions done while evaluating */
#define EXPR_NUM_TEXT_MAX 32      /* bytes expr_num_text may write, with the NUL */

struct expr; /* compiled, immutable; refcounted */

enum expr_type {
    EXPR_UNDEFINED = 0,
    EXPR_NULL,
    EXPR_BOOL,
    EXPR_NUMBER,
    EXPR_STRING,
    EXPR_ARRAY,
    EXPR_OBJECT,
};

/* A value produced by evaluation. Strings and JSON nodes are borrowed from the
 * context or from the expression: valid while both live and the context is not
 * modified. s.p[s.len] is always '\0'. */
struct expr_value {
    enum expr_type type;
    bool b;            /* EXPR_BOOL */
    double num;        /* EXPR_NUMBER */
    struct str s;      /* EXPR_STRING */
    const cJSON *json; /* EXPR_ARRAY, EXPR_OBJECT */
};

/* expr_compile: parse src[0..len) into *out (refcount 1; release with expr_unref).
 * Returns HR_OK; HR_INVAL on a syntax error (err->msg names the problem and
 * "at offset N", N counted in bytes from the start of src), HR_TOOBIG when a limit
 * is hit. Empty or all-blank source is a syntax error. Any thread. */
int expr_compile(const char *src, size_t len, struct expr **out, struct herr *err) HR_MUSTCHECK;

/* expr_ref / expr_unref: share a compiled expression (atomic; any thread). unref
 * frees on the last reference; NULL is a no-op for both. */
struct expr *expr_ref(struct expr *e);
void expr_unref(struct expr *e);

/* expr_eval: evaluate e against ctx (a cJSON object whose members are the roots:
 * data, profile, refs, recipient, ...; NULL acts as {}). The result borrows from
 * e and ctx (see struct expr_value). Returns HR_OK, or HR_TOOBIG when a string
 * conversion needed by a comparison or .includes exceeds EXPR_MAX_TEXT (*out is
 * then undefined). Never allocates beyond such temporaries; e is not modified, so
 * many threads may evaluate one expression at once. */
int expr_eval(const struct expr *e, const cJSON *ctx, struct expr_value *out) HR_MUSTCHECK;

/* expr_truthy: evaluate and apply JS truthiness; an evaluation error is false. */
bool expr_truthy(const struct expr *e, const cJSON *ctx);

/* expr_value_truthy: JS truthiness (undefined, null, false, 0, NaN, "" are false;
 * every array and object, even empty, is true). */
bool expr_value_truthy(const struct expr_value *v);

/* expr_value_from_json: the value of a JSON node (NULL gives undefined); borrowed. */
struct expr_value expr_value_from_json(const cJSON *j);

/* expr_value_text: append JavaScript's String(v) to out: "undefined", "null",
 * "true", numbers as Number#toString, arrays joined with "," (null/undefined
 * elements empty), objects "[object Object]". Returns HR_OK or HR_TOOBIG (out's cap). */
int expr_value_text(const struct expr_value *v, struct buf *out) HR_MUSTCHECK;

/* expr_num_text: Number#toString(v) into out (EXPR_NUM_TEXT_MAX bytes, NUL-terminated:
 * "NaN", "-Infinity", "0", "1.5", "1e+21", "1e-7", ...); returns its length. */
size_t expr_num_text(double v, char *out);

/* expr_utf16_len: JavaScript's String#length of UTF-8 text s (UTF-16 units: 4-byte
 * sequences count twice). */
size_t expr_utf16_len(struct str s);

#endif
