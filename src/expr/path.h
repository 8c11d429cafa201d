/* path.h: the one parser and walker for value paths into a run context, shared by
 * expressions (expr.c) and accessors (refs.c). A path is a root name followed by
 * accessors: `.name`, `[3]`, `["any key"]`, `['any key']` (`?.` is read as `.`).
 *
 * Two modes:
 *  - PATH_STRICT (expressions): names are JavaScript identifiers
 *    ([A-Za-z_$] then [A-Za-z0-9_$], bytes >= 0x80 allowed), whitespace may follow
 *    a `.` and pad the inside of brackets, as in JS.
 *  - PATH_LENIENT (`refs.` strings and `{"$ref": ...}`): a name is any run of bytes
 *    other than whitespace, controls and . [ ] " ' ( ) { } , -- so `data.x-api-key`
 *    and `data.items.0.name` work as lodash `get` would read them.
 *
 * Lookup follows JavaScript property access: `[0]` on an object is key "0", a
 * canonical index name ("0", "12", not "01") on an array is an element. A missing
 * step yields NULL, never an error.
 *
 * Root resolution (path_root), one rule for both modules:
 *  1. `refs.X...` where the context has a root X: starts at ctx.X (so
 *     `refs.data.userId` is ctx.data.userId, as in Courier);
 *  2. `K...` where the context has a root K: starts at ctx.K (so `refs.fetch1` is
 *     ctx.refs.fetch1 when there is no root named fetch1);
 *  3. `K...` where ctx.refs has K: starts at ctx.refs.K (a step ref used as root).
 *  A root name wins over a step ref of the same name.
 *
 * Everything here is pure (no I/O, no globals) and safe from any thread. */
#ifndef HERALD_EXPR_PATH_H
#define HERALD_EXPR_PATH_H

#include "../util/rc.h"
#include "../util/str.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define PATH_MAX_LEN 1024    /* bytes of a whole path given to path_parse */
#define PATH_MAX_SEGS 64     /* segments in one path */
#define PATH_MAX_INDEX 1000000000u /* largest [index] accepted */

enum path_mode { PATH_STRICT, PATH_LENIENT };
enum path_kind { PATH_KEY, PATH_INDEX };

struct path_seg {
    enum path_kind kind;
    struct str key; /* PATH_KEY: the decoded name (into the source or a scratch buffer) */
    size_t index;   /* PATH_INDEX */
};

/* A whole parsed path; keys point into src or into buf. */
struct path {
    struct path_seg segs[PATH_MAX_SEGS];
    size_t n;
    char buf[PATH_MAX_LEN + 1];
};

bool path_ident_start(unsigned char c); /* JS identifier start byte */
bool path_ident_char(unsigned char c);  /* JS identifier continuation byte */

/* path_string: decode the JavaScript string literal whose opening quote (' or ") is
 * at src.p[*pos]. Escapes: \n \t \r \b \f \v \0 \xHH \uXXXX \u{X..} and \<any>
 * (the character itself); lone surrogates become U+FFFD. Raw line breaks are refused.
 * Writes the bytes to out (NUL-terminated; a cap of src.len - *pos + 1 always
 * suffices since decoding never grows), sets *out_len and moves *pos past the
 * closing quote. Returns HR_OK, or HR_INVAL (err names the offset) / HR_TOOBIG. */
int path_string(struct str src, size_t *pos, char *out, size_t cap, size_t *out_len,
                struct herr *err) HR_MUSTCHECK;

/* path_first: read the root name at src.p[*pos] (no leading dot) into seg, which
 * points into src. Returns HR_OK or HR_INVAL with the offset in err. */
int path_first(struct str src, size_t *pos, enum path_mode mode, struct path_seg *seg,
               struct herr *err) HR_MUSTCHECK;

/* path_next: read one accessor (`.name`, `?.name`, `[12]`, `["k"]`, `['k']`) at
 * src.p[*pos]; quoted keys are decoded into scratch (cap bytes, see path_string).
 * Returns HR_OK, HR_NOTFOUND when src.p[*pos] starts no accessor (pos unchanged,
 * err untouched), or HR_INVAL / HR_TOOBIG with the offset in err. */
int path_next(struct str src, size_t *pos, enum path_mode mode, char *scratch, size_t cap,
              struct path_seg *seg, struct herr *err) HR_MUSTCHECK;

/* path_parse: parse all of src as one path. Returns HR_OK, HR_TOOBIG (longer than
 * PATH_MAX_LEN or more than PATH_MAX_SEGS segments) or HR_INVAL; err has the offset.
 * out's keys point into src and out->buf: keep src alive while using out. */
int path_parse(struct str src, enum path_mode mode, struct path *out, struct herr *err)
    HR_MUSTCHECK;

/* path_index_name: key names an array element: "0" or [1-9][0-9]* no larger than
 * PATH_MAX_INDEX (not "01", "-1", "1.0"); the index in *out. */
bool path_index_name(struct str key, size_t *out);

/* path_child: the member of node named by seg (JS property rules above), or NULL.
 * Borrowed from node. */
const cJSON *path_child(const cJSON *node, const struct path_seg *seg);

/* path_root: apply the root rules above to segs[0..n) (segs[0] must be a key).
 * Returns the borrowed start node or NULL, and in *used how many segments the root
 * consumed (1 or 2). ctx may be NULL. */
const cJSON *path_root(const cJSON *ctx, const struct path_seg *segs, size_t n, size_t *used);

/* path_get: path_root then path_child for every remaining segment; borrowed or NULL. */
const cJSON *path_get(const cJSON *ctx, const struct path *p);

#endif
