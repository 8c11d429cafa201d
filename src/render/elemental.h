/* elemental.h: Courier Elemental content (and its sugar form) to per-channel output.
 *
 * Content is either sugar {"title": "...", "body": "<markdown>"} or full Elemental
 * {"version": "2022-01-01", "elements": [...]}, or both (title/body come first, then the
 * elements). Every string field of an element is a Handlebars template (hbs.h: {{x}},
 * {x}, helpers) rendered against the context {data, profile, brand, tenant, ...}:
 * HBS_HTML for email HTML text, HBS_TEXT for everything else (subjects, plain text, sms,
 * push, chat, webhook JSON). Colours, widths and URLs are rendered as text, then checked
 * (layout_css_color / layout_url; a failing one is dropped) and escaped into attributes.
 *
 * Elements: meta (title), text (content, format "markdown", text_style text|h1|h2|subtext,
 * align, color, bold, italic, strikethrough, underline), action (content, href, style
 * button|link, background_color, align), image (src, href, alt_text/altText, width,
 * align left|center|right|full), divider (color), quote (content, border_color, format),
 * html (content; email only), list (list_type ordered|unordered, elements: list-item with
 * elements or content), group (elements), channel (top level only: channel, elements or
 * raw), comment. Sugar body and text with format "markdown" are CommonMark (safe mode:
 * raw HTML is dropped); other text is escaped by hbs with newlines kept as <br>. `html`
 * content is trusted author HTML (data in it still escaped by {{x}}) and appears in the
 * email HTML only, not in any text part. An
 * element's `locales.<ctx.locale>.<field>` replaces `<field>` when present.
 *
 * Control flow on any element, in this order: `channels` (names as channel_parse; render
 * only there), `loop` (a path to an array; the element repeats per item with
 * {{$.item}} and {{$.index}}, an inner loop's `$` hiding the outer one; not an array:
 * nothing), then `if` per repetition, so it may test $.item. `ref` is
 * ignored. `if` is a small safe subset of JavaScript (full expressions are the engine's
 * business, for step conditions): `path`, `!path` (JS truthiness), `a OP b` with OP one
 * of === !== == != and each side a path or a literal ("s", 's', number, true, false,
 * null, undefined). Paths: a.b.c, a[0], a["k"]; a bare path tries data, then profile,
 * then the context (as hbs); `$.item` / `$.index` reach the loop; "$.data.x" is data.x.
 * A boolean `if` is taken as is.
 *
 * Top-level `channel` elements: if any exists, only the first whose `channel` matches
 * (and whose `if` holds) renders, and nothing else at the top level (sugar title still
 * applies as the default title); none matching: empty output for that channel. `raw`
 * (strings resolved through hbs, text mode; email "html" in HTML mode):
 *   email {subject, html, text} (html used as the whole document), sms {text|body},
 *   push {title, body, data}, direct_message {text, title} (also copied to json),
 *   webhook: the whole raw becomes json.
 *
 * Output (struct content, heap-owned; title/subject NULL when no title):
 *   email: subject = meta title, else sugar title; html = full layout.c document with the
 *     brand header/footer; text = plain alternative (markdown as text, actions
 *     "label: href", images "[alt]", dividers "---", lists "- " / "1. ", brand footer).
 *   sms: text = plain body, or the title when the body is empty.
 *   push: title, body (plain); json = {"title","body"} plus "data" from content.data or
 *     a push raw's data (resolved).
 *   direct_message: title, text = Markdown (markdown kept as written; headings "# ").
 *   webhook: json = channel raw, else {"title","body" (Markdown),"text" (plain)}; title,
 *     body and text are set too.
 * Missing data renders as nothing and never fails. */
#ifndef HERALD_RENDER_ELEMENTAL_H
#define HERALD_RENDER_ELEMENTAL_H

#include "../util/channel.h"
#include "../util/rc.h"
#include "hbs.h"

#include <cjson/cJSON.h>

#define ELEM_MAX_ELEMENTS 500        /* element nodes in one document (validate) */
#define ELEM_MAX_DEPTH 16            /* nesting of elements */
#define ELEM_MAX_LOOP 1000           /* items of one loop */
#define ELEM_MAX_VISITS 20000        /* elements rendered, loop repetitions included */
#define ELEM_MAX_OUT (1u << 20)      /* bytes of any one output field */
#define ELEM_MAX_RAW_DEPTH 32        /* nesting inside a channel raw */
#define ELEM_TMPL_STEPS 200000u      /* hbs step budget per field */

/* elemental_render: render content for channel ch into out (zeroed first; on failure it
 * is left empty). ctx: the render context (object, may be NULL; only read; ctx.brand may
 * be null or a Courier brand; ctx.locale an optional locale name). cache may be NULL
 * (templates are then compiled per call). Returns 0, HR_INVAL (content not an object, a
 * template syntax error, an unsupported `if`, a helper refusing input) or HR_TOOBIG (a
 * cap), with "elements[2].content: line 1, column 5: ..." style messages in err. Any
 * thread (the cache is thread-safe). */
int elemental_render(const cJSON *content, enum channel ch, const cJSON *ctx,
                     struct hbs_cache *cache, struct content *out, struct herr *err) HR_MUSTCHECK;

/* elemental_validate: save-time checks of content: shape (types of fields, known element
 * types, list-item only inside list, channel elements only at top level and not mixed
 * with other elements (comments aside) nor with a sugar body, channel has elements or
 * raw), `if` in the supported subset, `loop` a path, every template compiles (errors
 * with their element path and line/column), and the caps (HR_TOOBIG). Returns 0 or the
 * failure with a message in err. Any thread. */
int elemental_validate(const cJSON *content, struct herr *err) HR_MUSTCHECK;

#endif
