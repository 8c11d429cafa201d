/* hbs.h: a Handlebars-compatible template engine with Courier's helpers. Pure: no I/O,
 * no globals, no locale or clock reads. Compile once into an immutable tree, render many
 * times, from any number of threads at once.
 *
 * Syntax: {{path}} (escaped in HBS_HTML), {{{raw}}} and {{& raw}}, {{! c }} and
 * {{!-- c --}}, ~ whitespace control, Handlebars "standalone line" stripping for block,
 * else and comment tags, \{{ for a literal {{, paths a.b.c a/b this this.x ./x ../x
 * [any key] @index @key @first @last @root.x, literals ("s" 's' 12 -1.5 true false null
 * undefined), hash args k=v, subexpressions (helper a b). Blocks: #if / else / else if,
 * #unless, #each (arrays and objects; else when empty), #with (else), {{^x}} inverted
 * sections, and {{#x}} sections on any other value or value helper ({{#eq a b}}..{{/eq}}).
 * Courier's single-brace variables: `{name}` == `{{name}}` when `{` is followed by
 * [A-Za-z_] and the run of [A-Za-z0-9_.-] is closed by `}`; anything else (`{ x }`,
 * `{"a": 1}`, `{0}`) stays literal, and `\{name}` is a literal `{name}`.
 * Not supported (compile error): partials, decorators, raw blocks, block params (as |x|).
 *
 * Lookup: the render context is a cJSON object {data, profile, brand, tenant, ...}. At
 * the top level a path is tried against data, then profile, then the context itself;
 * the first root where the whole path exists wins (so {{name}} is data.name, else
 * profile.name, and {{profile.email}} / {{brand.x}} reach those roots). Inside #each and
 * #with a path is tried against the current item first, then the top-level rules;
 * this.x, ./x and ../x are scoped (no fallback). @root.x uses the top-level rules.
 * A missing value renders as nothing. Numbers render as JavaScript does (3, 0.5, 1e+21),
 * booleans as true/false, null as nothing, objects as [object Object], arrays joined
 * with ",".
 *
 * Helpers (Courier): eq ne gt gte lt lte and or not condition (a "op" b, op one of
 * == === != !== > >= < <= && ||), default, var "path", path "path", lookup, json-parse,
 * capitalize concat (separator="") trim trim-left trim-right trim-one-char-right
 * truncate (s n [suffix]) format ("%s %d %i %f %%") uppercase lowercase
 * datetime-format (ISO string or ms number, moment-style tokens, UTC), add subtract sub
 * multiply divide mod abs ceil floor round inc. Math on a non-number, or x/0, gives
 * nothing. A name followed by arguments must be a known helper (compile error
 * "unknown helper"); a bare name with no arguments is always a variable lookup, so
 * data keys called "path" or "format" still work. Case changes are ASCII-only.
 */
#ifndef HERALD_RENDER_HBS_H
#define HERALD_RENDER_HBS_H

#include "../util/buf.h"
#include "../util/rc.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define HBS_MAX_SRC (1u << 20)     /* bytes of template source */
#define HBS_MAX_DEPTH 32           /* nesting of blocks and subexpressions */
#define HBS_MAX_ARGS 16            /* positional arguments of one helper call */
#define HBS_DEFAULT_STEPS 1000000u /* render budget: nodes + iterations + calls, plus */
#define HBS_BYTES_PER_STEP 16u     /* one per this many bytes a helper reads or writes */
#define HBS_SCRATCH_MAX (8u << 20) /* bytes of helper temporaries alive at once */

enum hbs_mode {
    HBS_HTML, /* {{x}} escapes & < > " ' ` = ; {{{x}}} does not */
    HBS_TEXT  /* nothing is escaped */
};

struct hbs_tmpl; /* opaque, refcounted, immutable once compiled */

/* hbs_compile: parse src[0..len) (need not be NUL-terminated; it is copied). On success
 * *out holds one reference (release with hbs_unref). Fails with HR_TOOBIG (source over
 * HBS_MAX_SRC, nesting over HBS_MAX_DEPTH) or HR_INVAL (syntax, unknown helper, wrong
 * argument count), with "line L, column C: ..." in err. Any thread. */
int hbs_compile(const char *src, size_t len, struct hbs_tmpl **out, struct herr *err) HR_MUSTCHECK;

/* hbs_ref: take another reference; returns t. hbs_unref: drop one, freeing the template
 * on the last (NULL is a no-op). Both are atomic and callable from any thread. */
struct hbs_tmpl *hbs_ref(struct hbs_tmpl *t);
void hbs_unref(struct hbs_tmpl *t);

/* hbs_source: the template's own copy of its source (NUL-terminated); lives as long as t. */
const char *hbs_source(const struct hbs_tmpl *t, size_t *len);

/* Render options; a zeroed struct means HBS_HTML with the default budget. */
struct hbs_render_opts {
    enum hbs_mode mode;
    uint64_t max_steps; /* 0: HBS_DEFAULT_STEPS */
};

/* hbs_render: render t with ctx (a cJSON object, may be NULL; only read) and append the
 * result to out, whose cap bounds the output. Fails with HR_TOOBIG (output over out's
 * cap, step budget or scratch exhausted) or HR_INVAL (a helper refused its input, e.g.
 * an unsupported condition operator), with a message in err; on failure out is restored
 * to its length on entry. Thread-safe: many threads may render one t at once, each with
 * its own out. */
int hbs_render(const struct hbs_tmpl *t, const cJSON *ctx, enum hbs_mode mode, struct buf *out,
               struct herr *err) HR_MUSTCHECK;
int hbs_render_ex(const struct hbs_tmpl *t, const cJSON *ctx, const struct hbs_render_opts *o,
                  struct buf *out, struct herr *err) HR_MUSTCHECK;

/* A bounded, thread-safe cache of compiled templates keyed by source text (hash, then
 * a full compare), evicting the least recently used entry when either bound is passed. */
struct hbs_cache;

struct hbs_cache_stats {
    uint64_t hits, misses, evictions;
    size_t entries, bytes; /* bytes: source plus compiled tree, approximately */
};

/* hbs_cache_new: a cache of at most max_entries templates and about max_bytes bytes
 * (0 = no byte bound). Caller owns; free with hbs_cache_free once no thread uses it. */
struct hbs_cache *hbs_cache_new(size_t max_entries, size_t max_bytes);
void hbs_cache_free(struct hbs_cache *c); /* drops the cache's references; NULL is a no-op */

/* hbs_cache_get: the compiled template for src[0..len), compiling it on a miss. On
 * success *out is a new reference the caller releases with hbs_unref (eviction never
 * frees a template still in use). Compile failures are returned as by hbs_compile and are
 * not cached. Any thread. */
int hbs_cache_get(struct hbs_cache *c, const char *src, size_t len, struct hbs_tmpl **out,
                  struct herr *err) HR_MUSTCHECK;

void hbs_cache_stats(struct hbs_cache *c, struct hbs_cache_stats *st);

#endif
