/* test_tracking.c: open/click tracking tokens and the HTML rewrite (src/engine/tracking.h):
 * round trips, every single-character edit of a token refused, tokens of another key,
 * kind or shape refused, links that are not http(s) never signed or rewritten, hrefs
 * in their spellings (quotes, case, &amp;, other attributes first), the pixel before
 * </body>, and nothing to change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/engine/tracking.h"
#include "../../../src/util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
#define MSG "1-6b136ddf-8205edcf1e962cefe4efab1b"
#define BASE "https://t.example"

static int check(const uint8_t *key, const char *tok, char *kind, char *id, char *link)
{
    return tracking_token_check(key, str_c(tok), kind, id, 256, link, TRACK_LINK_MAX + 1);
}

static void round_trip(void **state)
{
    char kind, id[256], link[TRACK_LINK_MAX + 1];
    char *t = tracking_token(KEY, 'c', MSG, "https://example.com/a?x=1&y=2#frag");
    assert_int_equal(check(KEY, t, &kind, id, link), HR_OK);
    assert_int_equal(kind, 'c');
    assert_string_equal(id, MSG);
    assert_string_equal(link, "https://example.com/a?x=1&y=2#frag");
    free(t);
    t = tracking_token(KEY, 'o', MSG, "");
    assert_int_equal(check(KEY, t, &kind, id, link), HR_OK);
    assert_int_equal(kind, 'o');
    assert_string_equal(link, "");
    for (const char *p = t; *p; p++) /* URL-safe as it stands */
        assert_true(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", *p));
    free(t);
}

static void every_edit_refused(void **state)
{
    char kind, id[256], link[TRACK_LINK_MAX + 1];
    char *t = tracking_token(KEY, 'c', MSG, "https://example.com/");
    size_t n = strlen(t);
    static const char alphabet[] = "AZaz09-_.+/=%";
    for (size_t i = 0; i < n; i++) {
        char keep = t[i];
        for (const char *c = alphabet; *c; c++) {
            if (*c == keep)
                continue;
            t[i] = *c;
            if (check(KEY, t, &kind, id, link) != HR_NOTFOUND)
                fail_msg("edit at %zu to '%c' accepted: %s", i, *c, t);
        }
        t[i] = keep;
    }
    /* truncated, extended, empty, no dot, overlong */
    for (size_t k = 0; k < n; k++) {
        char *cut = strndup(t, k);
        assert_int_equal(check(KEY, cut, &kind, id, link), HR_NOTFOUND);
        free(cut);
    }
    {
        char longer[8192];
        snprintf(longer, sizeof longer, "%sAA", t);
        assert_int_equal(check(KEY, longer, &kind, id, link), HR_NOTFOUND);
        memset(longer, 'A', TRACK_TOKEN_MAX + 10);
        longer[TRACK_TOKEN_MAX + 10] = 0;
        longer[100] = '.';
        assert_int_equal(check(KEY, longer, &kind, id, link), HR_NOTFOUND);
    }
    { /* the same bytes spelled differently (unused low bits of the last character) */
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        int v = (int)(strchr(b64, t[n - 1]) - b64);
        t[n - 1] = b64[v ^ 1];
        assert_int_equal(check(KEY, t, &kind, id, link), HR_NOTFOUND);
        t[n - 1] = b64[v];
        assert_int_equal(check(KEY, t, &kind, id, link), HR_OK);
    }
    assert_int_equal(check(KEY, "", &kind, id, link), HR_NOTFOUND);
    assert_int_equal(check(KEY, "abc", &kind, id, link), HR_NOTFOUND);
    assert_int_equal(check(KEY, ".", &kind, id, link), HR_NOTFOUND);
    free(t);
}

static void other_key_or_shape_refused(void **state)
{
    char kind, id[256], link[TRACK_LINK_MAX + 1];
    uint8_t other[32];
    char *t = tracking_token(KEY, 'c', MSG, "https://example.com/");
    memcpy(other, KEY, 32);
    other[31] ^= 1;
    assert_int_equal(check(other, t, &kind, id, link), HR_NOTFOUND);
    free(t);
    /* signed with our key but not a valid shape: other kinds, links not http(s), an
     * open token with a link, no message id */
    const struct { char kind; const char *id, *link; } bad[] = {
        {'x', MSG, "https://example.com/"}, {'c', MSG, "javascript:alert(1)"},
        {'c', MSG, "//evil.test/"},         {'c', MSG, "https://a.test/\r\nSet-Cookie: x"},
        {'c', MSG, ""},                     {'o', MSG, "https://example.com/"},
        {'c', "", "https://example.com/"},  {'c', MSG, "ftp://example.com/"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = tracking_token(KEY, bad[i].kind, bad[i].id, bad[i].link);
        if (check(KEY, t, &kind, id, link) != HR_NOTFOUND)
            fail_msg("case %zu accepted", i);
        free(t);
    }
}

/* count: occurrences of needle in s. */
static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* first_link: the link inside the first click token in html. */
static void first_link(const char *html, char *link)
{
    char kind, id[256], tok[TRACK_TOKEN_MAX + 1];
    const char *p = strstr(html, BASE "/t/c/");
    size_t n;
    assert_non_null(p);
    p += strlen(BASE "/t/c/");
    n = strcspn(p, "\"' >");
    assert_true(n < sizeof tok);
    memcpy(tok, p, n);
    tok[n] = 0;
    assert_int_equal(check(KEY, tok, &kind, id, link), HR_OK);
    assert_int_equal(kind, 'c');
}

static void rewrite(void **state)
{
    char link[TRACK_LINK_MAX + 1];
    struct { const char *in, *link; } cases[] = {
        {"<a href=\"https://e.test/x?a=1&amp;b=2\">x</a>", "https://e.test/x?a=1&b=2"},
        {"<A class=\"b\" HREF='http://e.test/y'>y</A>", "http://e.test/y"},
        {"<a title=\"href=https://no.test/\" href=\"https://yes.test/\">z</a>", "https://yes.test/"},
        {"<a href=https://e.test/u>u</a>", "https://e.test/u"},
        {"<a\thref = \"https://e.test/s\">s</a>", "https://e.test/s"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = tracking_rewrite_html(cases[i].in, KEY, BASE, MSG, false, true);
        assert_non_null(out);
        first_link(out, link);
        if (strcmp(link, cases[i].link))
            fail_msg("case %zu: %s -> %s (link %s)", i, cases[i].in, out, link);
        assert_int_equal(count(out, "/t/c/"), 1);
        free(out);
    }
    /* left alone: not http(s), relative, anchors, mailto, other entities, <abbr>, <area> */
    const char *alone[] = {"<a href=\"mailto:a@b.test\">m</a>", "<a href=\"#top\">t</a>",
                           "<a href=\"/rel\">r</a>", "<a href=\"javascript:x()\">j</a>",
                           "<a href=\"https://e.test/?a=1&lt;\">e</a>", "<abbr href=\"https://e.test/\">",
                           "<a name=\"x\">no href</a>", "plain text, no tags", "<a href=\"https://e.test/"};
    for (size_t i = 0; i < sizeof alone / sizeof alone[0]; i++) {
        char *out = tracking_rewrite_html(alone[i], KEY, BASE, MSG, false, true);
        if (out)
            fail_msg("case %zu changed: %s -> %s", i, alone[i], out);
    }
    /* opens only: the pixel before the last </body>; links untouched */
    {
        char *out = tracking_rewrite_html("<html><body><a href=\"https://e.test/\">x</a></BODY></html>",
                                          KEY, BASE, MSG, true, false);
        const char *px = strstr(out, "<img src=\"" BASE "/t/o/");
        assert_non_null(px);
        assert_true(px < strstr(out, "</BODY>"));
        assert_int_equal(count(out, "https://e.test/"), 1);
        free(out);
        out = tracking_rewrite_html("no body", KEY, BASE, MSG, true, true);
        assert_non_null(strstr(out, "no body<img src="));
        free(out);
        assert_null(tracking_rewrite_html("<a href=\"https://e.test/\">", KEY, BASE, MSG, false, false));
        assert_null(tracking_rewrite_html("", KEY, BASE, MSG, true, true)); /* found by fuzz_tracking */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(every_edit_refused),
        cmocka_unit_test(other_key_or_shape_refused),
        cmocka_unit_test(rewrite),
    };
    json_use_xalloc();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
