/* markdown.h: a thin wrapper over libcmark (CommonMark). HTML output is cmark's safe
 * mode: raw HTML in the source is replaced by a comment and javascript:/vbscript:/file:
 * /data: (non-image) link targets are dropped. Plain-text output is herald's own walk of
 * cmark's tree, for text/plain email parts, SMS and push. Pure; any thread. */
#ifndef HERALD_RENDER_MARKDOWN_H
#define HERALD_RENDER_MARKDOWN_H

#include "../util/buf.h"
#include "../util/rc.h"

#include <stddef.h>

#define MARKDOWN_MAX_IN (64u * 1024)  /* bytes of one markdown block */
#define MARKDOWN_MAX_BRACKETS 2048u    /* '[' in one block (cmark is quadratic in them) */

/* markdown_to_html: append the HTML of md[0..len) to out (safe mode, CMARK_OPT_DEFAULT).
 * Fails with HR_TOOBIG (input over MARKDOWN_MAX_IN or MARKDOWN_MAX_BRACKETS, or out's
 * cap) leaving out as it was, with a message in err. */
int markdown_to_html(const char *md, size_t len, struct buf *out, struct herr *err) HR_MUSTCHECK;

/* markdown_to_text: append a plain-text reading of md[0..len) to out: emphasis marks
 * dropped, links as "text (url)" (just "url" when the text is the url), images as
 * "[alt]", lists as "- " / "1. " with nested items indented, block quotes as "> ",
 * thematic breaks as "---", code as is; raw HTML as its text: tags and comments dropped,
 * <br> and block-level tags as line breaks, <script>/<style> content dropped, entities
 * (&amp; &lt; &#233; ...) decoded.
 * Blocks are separated by a blank line; no trailing newline. Fails as markdown_to_html. */
int markdown_to_text(const char *md, size_t len, struct buf *out, struct herr *err) HR_MUSTCHECK;

#endif
