/* layout.h: the email HTML document around rendered content blocks: a responsive,
 * table-based frame (max-width 600px, inline styles, system font stack), an optional
 * brand header (colour bar, logo) and footer. Pure; any thread. */
#ifndef HERALD_RENDER_LAYOUT_H
#define HERALD_RENDER_LAYOUT_H

#include "../util/buf.h"
#include "../util/rc.h"

#include <stdbool.h>

/* Brand parts of the layout. Colours and URLs must already be checked (layout_css_color,
 * layout_url); footer_html is trusted HTML (herald's Markdown output). Any may be NULL. */
struct layout_brand {
    const char *bar_color;   /* header bar; no bar when NULL */
    const char *link_color;  /* colour of links in content and footer */
    const char *logo_src;    /* logo <img> src */
    const char *logo_href;   /* link around the logo */
    const char *name;        /* logo alt text (plain text, escaped here) */
    const char *footer_html; /* footer content */
};

/* layout_email: append the whole document to out: title (plain text, escaped here) goes
 * into <title>, blocks_html (trusted) into the content cell. Fails with HR_TOOBIG (out's
 * cap), leaving out as it was, with a message in err. */
int layout_email(const char *title, const char *blocks_html, const struct layout_brand *brand,
                 struct buf *out, struct herr *err) HR_MUSTCHECK;

/* layout_esc: append s HTML-escaped (& < > " ') for text or a quoted attribute value. */
int layout_esc(struct buf *out, const char *s) HR_MUSTCHECK;

/* layout_css_color: true when s is a safe CSS colour: #rgb..#rrggbbaa, a name of letters,
 * or rgb()/rgba()/hsl()/hsla() with digits, dots, commas, percent signs and spaces. */
bool layout_css_color(const char *s);

/* layout_url: true when s is safe as an href/src: no whitespace or control bytes, not
 * empty, and either relative or with scheme http, https, mailto or tel. */
bool layout_url(const char *s);

/* Font stack used by the layout, for blocks that set their own font. */
#define LAYOUT_FONT                                                                                \
    "-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"

#endif
