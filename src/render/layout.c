/* layout.c: herald's email HTML layout (see layout.h) and the checks that keep colours
 * and URLs coming from templates out of trouble inside style and href attributes. */
#include "layout.h"

#include <ctype.h>
#include <strings.h>
#include <string.h>

#define PAGE_BG "#f4f4f5"
#define CARD_BG "#ffffff"
#define TEXT_COLOR "#1f2933"
#define MUTED_COLOR "#6b7280"

int layout_esc(struct buf *out, const char *s)
{
    size_t start = out->len;
    int rc = HR_OK;
    const char *run = s;
    for (const char *p = s; p && *p && rc == 0; p++) {
        const char *rep;
        switch (*p) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        rc = buf_append(out, run, (size_t)(p - run));
        if (rc == 0)
            rc = buf_append_c(out, rep);
        run = p + 1;
    }
    if (rc == 0 && run)
        rc = buf_append_c(out, run);
    if (rc < 0) {
        out->len = start;
        if (out->p)
            out->p[start] = '\0';
    }
    return rc;
}

bool layout_css_color(const char *s)
{
    size_t n = s ? strlen(s) : 0, i;
    if (n == 0 || n > 64)
        return false;
    if (s[0] == '#') {
        if (n != 4 && n != 5 && n != 7 && n != 9)
            return false;
        for (i = 1; i < n; i++)
            if (!isxdigit((unsigned char)s[i]))
                return false;
        return true;
    }
    for (i = 0; i < n && isalpha((unsigned char)s[i]); i++)
        ;
    if (i == n)
        return n <= 32;
    if (s[i] != '(' || s[n - 1] != ')')
        return false;
    if (!((i == 3 && (strncmp(s, "rgb", 3) == 0 || strncmp(s, "hsl", 3) == 0)) ||
          (i == 4 && (strncmp(s, "rgba", 4) == 0 || strncmp(s, "hsla", 4) == 0))))
        return false;
    for (i++; i < n - 1; i++)
        if (!strchr("0123456789., %", s[i]))
            return false;
    return true;
}

bool layout_url(const char *s)
{
    size_t n = s ? strlen(s) : 0, i;
    if (n == 0)
        return false;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return false;
    /* the scheme: letters, digits, + - . before a ':' that precedes any / ? # */
    for (i = 0; i < n; i++) {
        if (s[i] == ':') {
            if (i == 0)
                return false;
            return (i == 4 && strncasecmp(s, "http", 4) == 0) ||
                   (i == 5 && strncasecmp(s, "https", 5) == 0) ||
                   (i == 6 && strncasecmp(s, "mailto", 6) == 0) ||
                   (i == 3 && strncasecmp(s, "tel", 3) == 0);
        }
        if (s[i] == '/' || s[i] == '?' || s[i] == '#')
            return true;
        if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '-' && s[i] != '.')
            return true;
    }
    return true;
}

/* out_c / out_esc: append unless an earlier append failed. */
static void out_c(int *rc, struct buf *b, const char *s)
{
    if (*rc == 0)
        *rc = buf_append_c(b, s);
}

static void out_esc(int *rc, struct buf *b, const char *s)
{
    if (*rc == 0)
        *rc = layout_esc(b, s);
}

int layout_email(const char *title, const char *blocks_html, const struct layout_brand *brand,
                 struct buf *out, struct herr *err)
{
    static const struct layout_brand none;
    const struct layout_brand *br = brand ? brand : &none;
    size_t start = out->len;
    int rc = HR_OK;

    out_c(&rc, out,
          "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"x-apple-disable-message-reformatting\">\n<title>");
    out_esc(&rc, out, title ? title : "");
    out_c(&rc, out,
          "</title>\n<style>\nbody{margin:0;padding:0;width:100%!important;"
          "-webkit-text-size-adjust:100%;-ms-text-size-adjust:100%;}\n"
          "img{border:0;outline:none;text-decoration:none;-ms-interpolation-mode:bicubic;}\n"
          "table{border-collapse:collapse;}\np{margin:0 0 12px 0;}\n");
    if (br->link_color) {
        out_c(&rc, out, "a{color:");
        out_c(&rc, out, br->link_color);
        out_c(&rc, out, ";}\n");
    }
    out_c(&rc, out,
          "@media only screen and (max-width:620px){.hr-container{width:100%!important;}"
          ".hr-pad{padding-left:16px!important;padding-right:16px!important;}}\n"
          "</style>\n</head>\n<body style=\"margin:0;padding:0;background-color:" PAGE_BG ";\">\n"
          "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" "
          "border=\"0\" style=\"width:100%;background-color:" PAGE_BG ";\">\n"
          "<tr><td align=\"center\" style=\"padding:24px 12px;\">\n"
          "<table role=\"presentation\" class=\"hr-container\" width=\"600\" cellpadding=\"0\" "
          "cellspacing=\"0\" border=\"0\" style=\"width:100%;max-width:600px;background-color:" CARD_BG
          ";border-radius:6px;\">\n");
    if (br->bar_color) {
        out_c(&rc, out, "<tr><td class=\"hr-bar\" style=\"height:6px;line-height:6px;font-size:0;"
                        "border-radius:6px 6px 0 0;background-color:");
        out_c(&rc, out, br->bar_color);
        out_c(&rc, out, ";\">&nbsp;</td></tr>\n");
    }
    if (br->logo_src) {
        out_c(&rc, out, "<tr><td class=\"hr-pad hr-logo\" style=\"padding:24px 32px 0 32px;\">");
        if (br->logo_href) {
            out_c(&rc, out, "<a href=\"");
            out_esc(&rc, out, br->logo_href);
            out_c(&rc, out, "\" target=\"_blank\">");
        }
        out_c(&rc, out, "<img src=\"");
        out_esc(&rc, out, br->logo_src);
        out_c(&rc, out, "\" alt=\"");
        out_esc(&rc, out, br->name ? br->name : "");
        out_c(&rc, out, "\" height=\"48\" style=\"display:block;height:48px;width:auto;"
                        "max-width:100%;border:0;\">");
        if (br->logo_href)
            out_c(&rc, out, "</a>");
        out_c(&rc, out, "</td></tr>\n");
    }
    out_c(&rc, out,
          "<tr><td class=\"hr-pad hr-content\" style=\"padding:24px 32px 8px 32px;font-family:" LAYOUT_FONT
          ";font-size:16px;line-height:1.5;color:" TEXT_COLOR ";text-align:left;\">\n");
    out_c(&rc, out, blocks_html ? blocks_html : "");
    out_c(&rc, out, "\n</td></tr>\n</table>\n");
    if (br->footer_html && br->footer_html[0]) {
        out_c(&rc, out,
              "<table role=\"presentation\" class=\"hr-container\" width=\"600\" cellpadding=\"0\" "
              "cellspacing=\"0\" border=\"0\" style=\"width:100%;max-width:600px;\">\n"
              "<tr><td class=\"hr-pad hr-footer\" style=\"padding:16px 32px;font-family:" LAYOUT_FONT
              ";font-size:12px;line-height:1.5;color:" MUTED_COLOR ";text-align:center;\">\n");
        out_c(&rc, out, br->footer_html);
        out_c(&rc, out, "\n</td></tr>\n</table>\n");
    }
    out_c(&rc, out, "</td></tr>\n</table>\n</body>\n</html>\n");
    if (rc < 0) {
        out->len = start;
        if (out->p)
            out->p[start] = '\0';
        return herr_set(err, rc, "email HTML over %zu bytes", out->max);
    }
    return HR_OK;
}
