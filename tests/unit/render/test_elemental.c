/* test_elemental.c: Elemental and sugar content to per-channel output: Markdown, escaping,
 * each element type, control flow (channels, if, loop), channel elements and raw, brand
 * layout, validation errors and caps. Also the markdown wrapper on its own. */
#include "../../../src/render/elemental.h"
#include "../../../src/render/hbs.h"
#include "../../../src/render/layout.h"
#include "../../../src/render/markdown.h"
#include "../../../src/util/buf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* J: parse JSON written with ' for " (so documents fit in C strings). */
static cJSON *J(const char *json)
{
    char *s = strdup(json);
    cJSON *j;
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    j = cJSON_Parse(s);
    free(s);
    if (!j)
        fail_msg("bad test JSON: %s", json);
    return j;
}

/* R: render content for ch with ctx (JSON texts), failing the test on error. */
static void R(const char *content, enum channel ch, const char *ctx, struct content *out)
{
    cJSON *c = J(content), *x = ctx ? J(ctx) : NULL;
    struct herr err = {0};
    int rc = elemental_render(c, ch, x, NULL, out, &err);
    cJSON_Delete(c);
    cJSON_Delete(x);
    if (rc != 0)
        fail_msg("render (%s) failed: rc %d: %s\ncontent: %s", channel_name(ch), rc, err.msg,
                 content);
}

/* render_err: rendering fails with want_rc and a message containing part. */
static void render_err(const char *content, enum channel ch, const char *ctx, int want_rc,
                       const char *part)
{
    cJSON *c = J(content), *x = ctx ? J(ctx) : NULL;
    struct herr err = {0};
    struct content out;
    int rc = elemental_render(c, ch, x, NULL, &out, &err);
    cJSON_Delete(c);
    cJSON_Delete(x);
    if (rc != want_rc || !strstr(err.msg, part))
        fail_msg("render: rc %d (want %d), msg [%s] (want [%s])", rc, want_rc, err.msg, part);
    assert_null(out.html);
    assert_null(out.text);
    assert_null(out.json);
    content_cleanup(&out);
}

static void validate_err(const char *content, int want_rc, const char *part)
{
    cJSON *c = J(content);
    struct herr err = {0};
    int rc = elemental_validate(c, &err);
    cJSON_Delete(c);
    if (rc != want_rc || !strstr(err.msg, part))
        fail_msg("validate: rc %d (want %d), msg [%s] (want [%s])\ncontent: %s", rc, want_rc,
                 err.msg, part, content);
}

static void validate_ok(const char *content)
{
    cJSON *c = J(content);
    struct herr err = {0};
    int rc = elemental_validate(c, &err);
    cJSON_Delete(c);
    if (rc != 0)
        fail_msg("validate: rc %d: %s\ncontent: %s", rc, err.msg, content);
}

/* fail_msg_full: cmocka truncates long messages; print the whole haystack to stderr. */
static void fail_msg_full(const char *what, const char *needle, const char *hay)
{
    fprintf(stderr, "%s [%s] in:\n%s\n", what, needle, hay ? hay : "(null)");
    fail();
}

#define HAS(hay, needle)                                                                           \
    do {                                                                                           \
        const char *h_ = (hay);                                                                    \
        if (!h_ || !strstr(h_, (needle)))                                                          \
            fail_msg_full("missing", (needle), h_);                                                \
    } while (0)

#define LACKS(hay, needle)                                                                         \
    do {                                                                                           \
        const char *h_ = (hay);                                                                    \
        if (h_ && strstr(h_, (needle)))                                                            \
            fail_msg_full("unexpected", (needle), h_);                                             \
    } while (0)

static void eq_str(const char *got, const char *want)
{
    if (!got || strcmp(got, want) != 0) {
        fprintf(stderr, "\n got: [%s]\nwant: [%s]\n", got ? got : "(null)", want);
        fail();
    }
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ------------------------------------------------------------------ sugar */

#define SUGAR                                                                                      \
    "{'title':'Hello {name}','body':'Hi **{{name}}**, see [the docs](https://x.io/d?a=1&b=2).'}"
#define ANN "{'data':{'name':'Ann'}}"

static void test_sugar_email(void **state)
{
    struct content c;
    (void)state;
    R(SUGAR, CH_EMAIL, ANN, &c);
    assert_int_equal(c.channel, CH_EMAIL);
    eq_str(c.subject, "Hello Ann");
    HAS(c.html, "<!DOCTYPE html>");
    HAS(c.html, "<title>Hello Ann</title>");
    HAS(c.html, "max-width:600px");
    HAS(c.html, "<strong>Ann</strong>");
    HAS(c.html, "<a href=\"https://x.io/d?a=1&amp;b=2\">the docs</a>");
    eq_str(c.text, "Hi Ann, see the docs (https://x.io/d?a=1&b=2).");
    assert_null(c.title);
    assert_null(c.json);
    content_cleanup(&c);
}

static void test_sugar_other_channels(void **state)
{
    struct content c;
    (void)state;
    R(SUGAR, CH_SMS, ANN, &c);
    eq_str(c.text, "Hi Ann, see the docs (https://x.io/d?a=1&b=2).");
    assert_null(c.html);
    assert_null(c.subject);
    content_cleanup(&c);

    R(SUGAR, CH_PUSH, ANN, &c);
    eq_str(c.title, "Hello Ann");
    eq_str(c.body, "Hi Ann, see the docs (https://x.io/d?a=1&b=2).");
    eq_str(jstr(c.json, "title"), "Hello Ann");
    eq_str(jstr(c.json, "body"), c.body);
    assert_null(cJSON_GetObjectItem(c.json, "data"));
    content_cleanup(&c);

    R(SUGAR, CH_CHAT, ANN, &c);
    eq_str(c.title, "Hello Ann");
    eq_str(c.text, "Hi **Ann**, see [the docs](https://x.io/d?a=1&b=2).");
    assert_null(c.html);
    content_cleanup(&c);

    R(SUGAR, CH_WEBHOOK, ANN, &c);
    eq_str(jstr(c.json, "title"), "Hello Ann");
    eq_str(jstr(c.json, "body"), "Hi **Ann**, see [the docs](https://x.io/d?a=1&b=2).");
    eq_str(jstr(c.json, "text"), "Hi Ann, see the docs (https://x.io/d?a=1&b=2).");
    content_cleanup(&c);

    /* sms: the title only when there is no body */
    R("{'title':'Only {name}'}", CH_SMS, ANN, &c);
    eq_str(c.text, "Only Ann");
    content_cleanup(&c);

    /* push data from content.data, resolved */
    R("{'title':'t','body':'b','data':{'id':'{{name}}','n':3}}", CH_PUSH, ANN, &c);
    eq_str(jstr(cJSON_GetObjectItem(c.json, "data"), "id"), "Ann");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(c.json, "data"), "n")->valueint, 3);
    content_cleanup(&c);
}

/* ------------------------------------------------------------------ markdown */

static void test_markdown_body(void **state)
{
    struct content c;
    const char *md = "{'body':'# Title\\n\\nSome *em* and **bold** and a [link](https://a.b/c).\\n\\n"
                     "- one\\n- two\\n  - nested\\n\\n1. first\\n2. second\\n\\n> quoted\\n\\n---\\n\\n"
                     "![logo](https://a.b/l.png)\\n\\n    code line'}";
    (void)state;
    R(md, CH_EMAIL, NULL, &c);
    HAS(c.html, "<h1>Title</h1>");
    HAS(c.html, "<em>em</em>");
    HAS(c.html, "<strong>bold</strong>");
    HAS(c.html, "<a href=\"https://a.b/c\">link</a>");
    HAS(c.html, "<ul>\n<li>one</li>\n<li>two\n<ul>\n<li>nested</li>");
    HAS(c.html, "<ol>\n<li>first</li>");
    HAS(c.html, "<blockquote>");
    eq_str(c.text, "Title\n\nSome em and bold and a link (https://a.b/c).\n\n"
                   "- one\n- two\n  - nested\n\n1. first\n2. second\n\n> quoted\n\n---\n\n"
                   "[logo]\n\ncode line");
    content_cleanup(&c);
}

#define TEXT_OF(s) markdown_to_text((s), strlen(s), &b, &err)

static void test_markdown_wrapper(void **state)
{
    struct buf b;
    struct herr err = {0};
    (void)state;
    buf_init(&b, 1 << 16);
    assert_int_equal(TEXT_OF("a <https://x.y> [https://x.y](https://x.y) [me](mailto:me@x.y)\\\nb"),
                     0);
    eq_str(buf_cstr(&b), "a https://x.y https://x.y me (mailto:me@x.y)\nb");
    buf_reset(&b);
    assert_int_equal(TEXT_OF("1) a\n\n   para\n2) b\n"), 0);
    eq_str(buf_cstr(&b), "1) a\n\n   para\n\n2) b");
    buf_reset(&b);
    assert_int_equal(TEXT_OF("> a\n> - x\n> - y"), 0);
    eq_str(buf_cstr(&b), "> a\n\n> - x\n> - y");
    buf_reset(&b);
    /* safe mode: raw HTML and javascript: links are dropped from HTML */
    assert_int_equal(markdown_to_html("<b>x</b> [y](javascript:alert(1))", 33, &b, &err), 0);
    LACKS(buf_cstr(&b), "<b>");
    LACKS(buf_cstr(&b), "javascript");
    HAS(buf_cstr(&b), "raw HTML omitted");
    buf_cleanup(&b);
    /* caps */
    buf_init(&b, 8);
    assert_int_equal(markdown_to_html("hello world", 11, &b, &err), HR_TOOBIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(markdown_to_text("hello world", 11, &b, &err), HR_TOOBIG);
    assert_int_equal(b.len, 0);
    buf_cleanup(&b);
}

/* ------------------------------------------------------------------ escaping */

static void test_escaping(void **state)
{
    struct content c;
    const char *ctx = "{'data':{'x':'<script>alert(1)</script>','u':'a&b'}}";
    (void)state;
    /* markdown (sugar body) and a plain text element */
    R("{'title':'T {{x}}','body':'md {{x}}','elements':[{'type':'text','content':'t {{x}} {{u}}'}]}",
      CH_EMAIL, ctx, &c);
    LACKS(c.html, "<script>");
    HAS(c.html, "md &lt;script&gt;alert(1)&lt;/script&gt;");
    HAS(c.html, "t &lt;script&gt;alert(1)&lt;/script&gt; a&amp;b");
    HAS(c.html, "<title>T &lt;script&gt;alert(1)&lt;/script&gt;</title>");
    eq_str(c.subject, "T <script>alert(1)</script>");
    HAS(c.text, "md <script>alert(1)</script>");
    HAS(c.text, "t <script>alert(1)</script> a&b");
    content_cleanup(&c);

    R("{'body':'{{x}}'}", CH_SMS, ctx, &c);
    eq_str(c.text, "<script>alert(1)</script>");
    content_cleanup(&c);

    /* subjects and titles are one line whatever the data holds */
    R("{'title':'Hi {{n}}','body':'b'}", CH_EMAIL, "{'data':{'n':'a\\r\\nBcc: x@y'}}", &c);
    eq_str(c.subject, "Hi a  Bcc: x@y");
    content_cleanup(&c);
    R("{'elements':[{'type':'meta','title':'{{n}}'}]}", CH_PUSH, "{'data':{'n':'a\\nb'}}", &c);
    eq_str(c.title, "a b");
    content_cleanup(&c);
}

/* test_markdown_input_caps: cmark 0.30.2 is quadratic on "![[]()" repeated (240 KB took
 * 7.8 s): a block with too many brackets, or over 64 KB, is refused before cmark sees it. */
static void test_markdown_input_caps(void **state)
{
    (void)state;
    struct buf b;
    struct herr err = {0};
    size_t reps = 40000, n = reps * 6;
    char *md = malloc(n + 1);
    for (size_t i = 0; i < reps; i++)
        memcpy(md + 6 * i, "![[]()", 6);
    md[n] = '\0';
    buf_init(&b, 1 << 22);
    assert_int_equal(markdown_to_html(md, n, &b, &err), HR_TOOBIG);
    assert_non_null(strstr(err.msg, "over the limit"));
    assert_int_equal(markdown_to_text(md, n, &b, &err), HR_TOOBIG);
    /* under the size cap, the bracket count alone refuses it */
    n = 2000 * 6;
    assert_int_equal(markdown_to_html(md, n, &b, &err), HR_TOOBIG);
    assert_non_null(strstr(err.msg, "'['"));
    assert_int_equal(b.len, 0);
    /* a block just under both caps renders */
    n = 1000 * 6;
    assert_int_equal(markdown_to_html(md, n, &b, &err), 0);
    assert_true(b.len > 0);
    buf_reset(&b);
    memset(md, 'a', 64 * 1024 + 1);
    assert_int_equal(markdown_to_text(md, 64 * 1024 + 1, &b, &err), HR_TOOBIG);
    assert_int_equal(markdown_to_text(md, 64 * 1024, &b, &err), 0);
    buf_cleanup(&b);
    free(md);
}

static void test_markdown_raw_html_not_executed(void **state)
{
    struct content c;
    const char *ctx = "{'data':{'h':'<img src=x onerror=alert(1)>','l':'javascript:alert(1)'}}";
    (void)state;
    /* triple-stash puts the data in unescaped; cmark's safe mode drops it */
    R("{'body':'a {{{h}}} <i>author</i> [click]({{{l}}})\\n\\n<div>block</div>'}", CH_EMAIL, ctx,
      &c);
    LACKS(c.html, "onerror");
    LACKS(c.html, "<i>author");
    LACKS(c.html, "<div>block");
    LACKS(c.html, "javascript:");
    HAS(c.html, "raw HTML omitted");
    content_cleanup(&c);
}

/* The text part of raw HTML a template's Markdown contains: its text, not its tags
 * (issue 13: "<b>on its way</b>" reached the text/plain part as written). Data with
 * "<" in it is text and stays, as the HTML part shows it. */
static void test_markdown_raw_html_text_part(void **state)
{
    struct content c;
    struct buf b;
    struct herr err = {0};
    (void)state;
    R("{'title':'Shipped','body':'Your order is <b>on its way</b>, {{who}}.<br>Thanks &amp; bye'}",
      CH_EMAIL, "{'data':{'who':'Tom <tom@x.y> & co'}}", &c);
    eq_str(c.text, "Your order is on its way, Tom <tom@x.y> & co.\nThanks & bye");
    LACKS(c.html, "<b>");
    HAS(c.html, "Tom &lt;tom@x.y&gt; &amp; co");
    content_cleanup(&c);
    /* the same for SMS and push, which read the plain text too */
    R("{'body':'<i>{{n}}</i> arrives'}", CH_SMS, "{'data':{'n':'<x>'}}", &c);
    eq_str(c.text, "<x> arrives");
    content_cleanup(&c);

    buf_init(&b, 1 << 16);
    /* HTML blocks: tags dropped, block tags break lines, entities decoded */
    assert_int_equal(TEXT_OF("<div>Hello &amp; <i>world</i></div>\n\n<p>caf&#233; &#x263A; &lt;3</p>\n\nend"), 0);
    eq_str(buf_cstr(&b), "Hello & world\n\ncaf\xc3\xa9 \xe2\x98\xba <3\n\nend");
    buf_reset(&b);
    assert_int_equal(TEXT_OF("<table><tr><td>a</td></tr><tr><td>b</td></tr></table>"), 0);
    eq_str(buf_cstr(&b), "a\nb");
    buf_reset(&b);
    /* script and style content is not text; comments vanish; a lone "<" stays */
    assert_int_equal(TEXT_OF("<style>p{color:red}</style>\n\na <script>x()</script>b <!-- c --> 1 < 2 <a href=\"/x>y\">link</a>"), 0);
    eq_str(buf_cstr(&b), "a b  1 < 2 link");
    buf_reset(&b);
    /* entities that are not ones: kept */
    assert_int_equal(TEXT_OF("<p>&#0; &#xD800; &bogus; &#99999999;</p>"), 0);
    eq_str(buf_cstr(&b), "&#0; &#xD800; &bogus; &#99999999;");
    buf_cleanup(&b);
}

/* ------------------------------------------------------------------ element types */

#define ALL_ELEMENTS                                                                               \
    "{'version':'2022-01-01','elements':["                                                         \
    "{'type':'meta','title':'Order {{data.id}}'},"                                                 \
    "{'type':'text','content':'Welcome {{name}}','text_style':'h1','align':'center',"              \
    "'color':'#112233'},"                                                                          \
    "{'type':'text','content':'Line one\\nline two','bold':true,'italic':true,'underline':true,"   \
    "'strikethrough':true},"                                                                       \
    "{'type':'text','content':'small print','text_style':'subtext'},"                              \
    "{'type':'text','content':'*md* text','format':'markdown'},"                                   \
    "{'type':'action','content':'Track {{data.id}}','href':'https://t.co/{{data.id}}',"            \
    "'background_color':'#ff0000','align':'left'},"                                                \
    "{'type':'action','content':'Docs','href':'https://docs.x','style':'link'},"                   \
    "{'type':'image','src':'https://i.x/p.png','href':'https://shop.x','alt_text':'Product',"      \
    "'width':'300px'},"                                                                            \
    "{'type':'divider','color':'#abcdef'},"                                                        \
    "{'type':'quote','content':'Great service','border_color':'#00ff00'},"                         \
    "{'type':'html','content':'<table class=\\'raw\\'><tr><td>{{name}}</td></tr></table>'},"       \
    "{'type':'list','list_type':'ordered','elements':["                                            \
    "{'type':'list-item','content':'first'},"                                                      \
    "{'type':'list-item','elements':[{'type':'text','content':'second'},"                          \
    "{'type':'list','elements':[{'type':'list-item','content':'inner'}]}]}]},"                     \
    "{'type':'group','elements':[{'type':'text','content':'in group'}]},"                          \
    "{'type':'comment','content':'not shown'},"                                                    \
    "{'type':'mystery','content':'skipped'}]}"

static void test_elements_email(void **state)
{
    struct content c;
    (void)state;
    R(ALL_ELEMENTS, CH_EMAIL, "{'data':{'id':'A1','name':'Bo'}}", &c);
    eq_str(c.subject, "Order A1");
    HAS(c.html, "<h1 class=\"hr-text\" style=\"margin:0 0 16px 0;font-size:28px;");
    HAS(c.html, "text-align:center;color:#112233;\">Welcome Bo</h1>");
    HAS(c.html, "font-weight:700;font-style:italic;text-decoration:underline line-through;\">"
                "Line one<br>\nline two</div>");
    HAS(c.html, "font-size:13px;");
    HAS(c.html, "<p><em>md</em> text</p>");
    HAS(c.html, "<td align=\"left\">");
    HAS(c.html, "bgcolor=\"#ff0000\"");
    HAS(c.html, "<a href=\"https://t.co/A1\" target=\"_blank\" style=\"display:inline-block;");
    HAS(c.html, ">Track A1</a>");
    HAS(c.html, "<a href=\"https://docs.x\" target=\"_blank\" style=\"color:#2563eb;"
                "text-decoration:underline;\">Docs</a>");
    HAS(c.html, "<a href=\"https://shop.x\" target=\"_blank\"><img src=\"https://i.x/p.png\" "
                "alt=\"Product\" width=\"300\"");
    HAS(c.html, "width:300px;");
    HAS(c.html, "border-top:1px solid #abcdef;");
    HAS(c.html, "border-left:4px solid #00ff00;");
    HAS(c.html, ">Great service</blockquote>");
    HAS(c.html, "<table class=\"raw\"><tr><td>Bo</td></tr></table>");
    HAS(c.html, "<ol class=\"hr-list\"");
    HAS(c.html, "<li style=\"margin:0 0 4px 0;\"><div class=\"hr-text\" style=\"margin:0;\">first"
                "</div>\n</li>");
    HAS(c.html, "<ul class=\"hr-list\"");
    HAS(c.html, ">inner</div>\n</li>");
    HAS(c.html, ">in group</div>");
    LACKS(c.html, "not shown");
    LACKS(c.html, "skipped");
    eq_str(c.text, "Welcome Bo\n\nLine one\nline two\n\nsmall print\n\nmd text\n\n"
                   "Track A1: https://t.co/A1\n\nDocs: https://docs.x\n\n[Product]\n\n---\n\n"
                   "> Great service\n\n1. first\n2. second\n   - inner\n\nin group");
    content_cleanup(&c);
}

static void test_elements_chat_and_sms(void **state)
{
    struct content c;
    (void)state;
    R(ALL_ELEMENTS, CH_CHAT, "{'data':{'id':'A1','name':'Bo'}}", &c);
    eq_str(c.title, "Order A1");
    eq_str(c.text, "# Welcome Bo\n\nLine one\nline two\n\nsmall print\n\n*md* text\n\n"
                   "[Track A1](https://t.co/A1)\n\n[Docs](https://docs.x)\n\n"
                   "[![Product](https://i.x/p.png)](https://shop.x)\n\n---\n\n"
                   "> Great service\n\n1. first\n2. second\n   - inner\n\nin group");
    content_cleanup(&c);

    R(ALL_ELEMENTS, CH_SMS, "{'data':{'id':'A1','name':'Bo'}}", &c);
    HAS(c.text, "Welcome Bo\n\nLine one");
    LACKS(c.text, "<");
    LACKS(c.text, "Order A1");
    content_cleanup(&c);

    R("{'elements':[{'type':'text','content':'Bold','bold':true},"
      "{'type':'text','content':'two\\nlines','text_style':'h2'}]}",
      CH_CHAT, NULL, &c);
    eq_str(c.text, "**Bold**\n\n## two\nlines");
    content_cleanup(&c);
}

static void test_attribute_safety(void **state)
{
    struct content c;
    (void)state;
    R("{'elements':[{'type':'action','content':'x','href':'{{u}}'},"
      "{'type':'image','src':'javascript:alert(1)','alt_text':'a\\u0022b'},"
      "{'type':'text','content':'c','color':'{{col}}'},"
      "{'type':'divider','color':'red;background:url(x)'},"
      "{'type':'image','src':'https://i/x.png','alt_text':'q\\u0022 onload=\\u0022x'}]}",
      CH_EMAIL, "{'data':{'u':'javascript:alert(1)','col':'red\\u0022 onclick=\\u0022x'}}", &c);
    LACKS(c.html, "javascript:");
    LACKS(c.html, "onclick");
    LACKS(c.html, "url(x)");
    LACKS(c.html, "\" onload");
    HAS(c.html, "alt=\"q&quot; onload=&quot;x\"");
    HAS(c.html, "border-top:1px solid #e5e7eb;");
    /* the plain part carries the text as written */
    HAS(c.text, "x: javascript:alert(1)");
    content_cleanup(&c);
}

/* ------------------------------------------------------------------ control flow */

static void test_channels_filter(void **state)
{
    struct content c;
    const char *doc = "{'elements':[{'type':'text','content':'all'},"
                      "{'type':'text','content':'mail only','channels':['email']},"
                      "{'type':'text','content':'phones','channels':['sms','push']},"
                      "{'type':'text','content':'chat','channels':['chat']}]}";
    (void)state;
    R(doc, CH_EMAIL, NULL, &c);
    eq_str(c.text, "all\n\nmail only");
    content_cleanup(&c);
    R(doc, CH_SMS, NULL, &c);
    eq_str(c.text, "all\n\nphones");
    content_cleanup(&c);
    R(doc, CH_PUSH, NULL, &c);
    eq_str(c.body, "all\n\nphones");
    content_cleanup(&c);
    R(doc, CH_CHAT, NULL, &c);
    eq_str(c.text, "all\n\nchat");
    content_cleanup(&c);
}

static void test_if(void **state)
{
    struct content c;
    const char *doc =
        "{'elements':["
        "{'type':'text','content':'a','if':'data.vip'},"
        "{'type':'text','content':'b','if':'!data.vip'},"
        "{'type':'text','content':'c','if':'data.missing'},"
        "{'type':'text','content':'d','if':'!data.missing'},"
        "{'type':'text','content':'e','if':'data.plan === \\u0022pro\\u0022'},"
        "{'type':'text','content':'f','if':'plan !== \\u0027pro\\u0027'},"
        "{'type':'text','content':'g','if':'data.count == \\u00223\\u0022'},"
        "{'type':'text','content':'h','if':'data.count === 3'},"
        "{'type':'text','content':'i','if':'data.count === \\u00223\\u0022'},"
        "{'type':'text','content':'j','if':'data.missing == null'},"
        "{'type':'text','content':'k','if':'data.missing === null'},"
        "{'type':'text','content':'l','if':'profile.email != null'},"
        "{'type':'text','content':'m','if':'data.tags[1] === \\u0022y\\u0022'},"
        "{'type':'text','content':'n','if':'data.vip === true'},"
        "{'type':'text','content':'o','if':false},"
        "{'type':'text','content':'p','if':'data.zero'},"
        "{'type':'text','content':'q','if':'data.empty'},"
        "{'type':'text','content':'r','if':'!!data.obj'},"
        "{'type':'text','content':'s','if':'data.arr'}]}"; /* [] is truthy, as in JS */
    const char *ctx = "{'data':{'vip':true,'plan':'pro','count':3,'tags':['x','y'],'zero':0,"
                      "'empty':'','obj':{},'arr':[]},'profile':{'email':'a@b'}}";
    (void)state;
    R(doc, CH_SMS, ctx, &c);
    eq_str(c.text, "a\n\nd\n\ne\n\ng\n\nh\n\nj\n\nl\n\nm\n\nn\n\nr\n\ns");
    content_cleanup(&c);
    /* all data missing: only negations and null checks hold */
    R(doc, CH_SMS, "{}", &c);
    eq_str(c.text, "b\n\nd\n\nf\n\nj"); /* undefined != null is false, as in JS */
    content_cleanup(&c);
    render_err("{'elements':[{'type':'text','content':'a'},{'type':'text','content':'x',"
               "'if':'data.a > 1'}]}",
               CH_SMS, NULL, HR_INVAL, "elements[1].if: unsupported condition");
}

static void test_loop(void **state)
{
    struct content c;
    const char *doc =
        "{'elements':[{'type':'list','list_type':'ordered','elements':["
        "{'type':'list-item','loop':'data.items','if':'$.item.qty',"
        "'content':'{{$.item.name}} x{{$.item.qty}} (#{{add $.index 1}}) for {{name}}'}]},"
        "{'type':'group','loop':'items','elements':["
        "{'type':'text','content':'[{{$.index}}:{{$.item.name}}]'},"
        "{'type':'text','loop':'$.item.tags','content':'tag {{$.item}}/{{$.index}}'}]},"
        "{'type':'text','loop':'data.nothing','content':'never'},"
        "{'type':'text','loop':'data.name','content':'not an array'}]}";
    const char *ctx = "{'data':{'name':'Zed','items':[{'name':'Pen','qty':2,'tags':['a','b']},"
                      "{'name':'Cup','qty':0},{'name':'Ink','qty':1,'tags':[]}]}}";
    (void)state;
    R(doc, CH_EMAIL, ctx, &c);
    eq_str(c.text, "1. Pen x2 (#1) for Zed\n2. Ink x1 (#3) for Zed\n\n[0:Pen]\n\ntag a/0\n\n"
                   "tag b/1\n\n[1:Cup]\n\n[2:Ink]");
    HAS(c.html, "<ol class=\"hr-list\"");
    HAS(c.html, ">Pen x2 (#1) for Zed</div>\n</li>");
    content_cleanup(&c);
}

/* ------------------------------------------------------------------ channel elements */

static void test_channel_elements(void **state)
{
    struct content c;
    const char *doc =
        "{'title':'Default','elements':["
        "{'type':'channel','channel':'email','elements':["
        "{'type':'meta','title':'Mail for {{name}}'},{'type':'text','content':'email body'}]},"
        "{'type':'channel','channel':'sms','if':'data.short','elements':["
        "{'type':'text','content':'short sms'}]},"
        "{'type':'channel','channel':'sms','elements':[{'type':'text','content':'long sms'}]},"
        "{'type':'channel','channel':'webhook','raw':{'event':'order',"
        "'who':'{{name}}','n':[1,'{{data.id}}',{'deep':'<{{name}}>'}],'ok':true,'nil':null}},"
        "{'type':'channel','channel':'direct_message','raw':{'text':'*hi* {{name}}',"
        "'blocks':[{'type':'section','text':'{{name}}'}]}}]}";
    const char *ctx = "{'data':{'name':'Ann','id':7}}";
    (void)state;
    R(doc, CH_EMAIL, ctx, &c);
    eq_str(c.subject, "Mail for Ann");
    HAS(c.html, "email body");
    eq_str(c.text, "email body");
    content_cleanup(&c);

    R(doc, CH_SMS, ctx, &c);
    eq_str(c.text, "long sms");
    content_cleanup(&c);
    R(doc, CH_SMS, "{'data':{'short':true}}", &c);
    eq_str(c.text, "short sms");
    content_cleanup(&c);

    /* no channel element for push: nothing but the sugar title */
    R(doc, CH_PUSH, ctx, &c);
    eq_str(c.title, "Default");
    eq_str(c.body, "");
    content_cleanup(&c);

    R(doc, CH_WEBHOOK, ctx, &c);
    {
        char *s = cJSON_PrintUnformatted(c.json);
        eq_str(s, "{\"event\":\"order\",\"who\":\"Ann\",\"n\":[1,\"7\",{\"deep\":\"<Ann>\"}],"
                  "\"ok\":true,\"nil\":null}");
        free(s);
    }
    content_cleanup(&c);

    R(doc, CH_CHAT, ctx, &c);
    eq_str(c.text, "*hi* Ann");
    eq_str(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(c.json, "blocks"), 0), "text"), "Ann");
    content_cleanup(&c);

    /* email raw, push raw */
    R("{'elements':[{'type':'channel','channel':'email','raw':{'subject':'S {{name}}',"
      "'html':'<p>{{name}}</p>','text':'T {{name}}'}},"
      "{'type':'channel','channel':'push','raw':{'title':'P','body':'B {{name}}',"
      "'data':{'k':'{{name}}'}}}]}",
      CH_EMAIL, "{'data':{'name':'<b>'}}", &c);
    eq_str(c.subject, "S <b>");
    eq_str(c.html, "<p>&lt;b&gt;</p>");
    eq_str(c.text, "T <b>");
    content_cleanup(&c);
    R("{'elements':[{'type':'channel','channel':'push','raw':{'title':'P','body':'B {{name}}',"
      "'data':{'k':'{{name}}'}}}]}",
      CH_PUSH, ANN, &c);
    eq_str(c.title, "P");
    eq_str(c.body, "B Ann");
    eq_str(jstr(cJSON_GetObjectItem(c.json, "data"), "k"), "Ann");
    content_cleanup(&c);
}

/* ------------------------------------------------------------------ brand */

static void test_brand(void **state)
{
    struct content c;
    const char *ctx =
        "{'data':{'name':'Ann'},'brand':{'id':'b1','name':'Acme & Co','settings':{"
        "'colors':{'primary':'#9d3789','secondary':'#333333'},"
        "'email':{'header':{'logo':{'href':'https://acme.x','image':'https://acme.x/logo.png'}},"
        "'footer':{'content':'Acme Inc, **1 Main St** for {{name}}'}}}}}";
    (void)state;
    R("{'title':'Hi','body':'Body','elements':[{'type':'action','content':'Go','href':'https://g'}]}",
      CH_EMAIL, ctx, &c);
    HAS(c.html, "class=\"hr-bar\" style=\"height:6px;line-height:6px;font-size:0;"
                "border-radius:6px 6px 0 0;background-color:#9d3789;\"");
    HAS(c.html, "<a href=\"https://acme.x\" target=\"_blank\"><img src=\"https://acme.x/logo.png\" "
                "alt=\"Acme &amp; Co\"");
    HAS(c.html, "class=\"hr-pad hr-footer\"");
    HAS(c.html, "<p>Acme Inc, <strong>1 Main St</strong> for Ann</p>");
    HAS(c.html, "bgcolor=\"#9d3789\""); /* button in the brand colour */
    HAS(c.html, "a{color:#9d3789;}");
    eq_str(c.text, "Body\n\nGo: https://g\n\nAcme Inc, 1 Main St for Ann");
    content_cleanup(&c);

    /* barColor wins over primary; an unsafe colour and logo are dropped */
    R("{'body':'x'}", CH_EMAIL,
      "{'brand':{'settings':{'colors':{'primary':'red;x:y'},'email':{'header':{'barColor':'#010203',"
      "'logo':{'image':'javascript:x'}}}}}}",
      &c);
    HAS(c.html, "background-color:#010203;\">&nbsp;");
    LACKS(c.html, "red;x");
    LACKS(c.html, "javascript");
    LACKS(c.html, "hr-logo");
    LACKS(c.html, "hr-footer");
    content_cleanup(&c);

    /* no brand: no bar, no logo, no footer */
    R("{'body':'x'}", CH_EMAIL, "{'brand':null}", &c);
    LACKS(c.html, "hr-bar");
    LACKS(c.html, "<img");
    content_cleanup(&c);
}

static void test_locales(void **state)
{
    struct content c;
    (void)state;
    R("{'elements':[{'type':'text','content':'Hello','locales':{'fr':{'content':'Bonjour'}}}]}",
      CH_SMS, "{'locale':'fr'}", &c);
    eq_str(c.text, "Bonjour");
    content_cleanup(&c);
    R("{'elements':[{'type':'text','content':'Hello','locales':{'fr':{'content':'Bonjour'}}}]}",
      CH_SMS, "{'locale':'de'}", &c);
    eq_str(c.text, "Hello");
    content_cleanup(&c);
}

/* ------------------------------------------------------------------ errors and caps */

static void test_render_errors(void **state)
{
    struct content c;
    (void)state;
    render_err("{'elements':[{'type':'text','content':'ok'},{'type':'group','elements':["
               "{'type':'text','content':'a {{#if x}}b'}]}]}",
               CH_EMAIL, NULL, HR_INVAL, "elements[1].elements[0].content: line 1, column");
    render_err("{'title':'{{/if}}'}", CH_SMS, NULL, HR_INVAL, "title: line 1, column 1");
    render_err("{'body':'{{nohelper a b}}'}", CH_PUSH, NULL, HR_INVAL, "body: line 1");
    render_err("[1]", CH_EMAIL, NULL, HR_INVAL, "content must be an object");
    render_err("{'elements':[{'type':'channel','channel':'webhook','raw':{'a':['{{#x}}']}}]}",
               CH_WEBHOOK, NULL, HR_INVAL, "elements[0].raw.a[0]: line 1");
    /* missing data never errors */
    R("{'title':'{{a.b.c}}','body':'x{{nope}}{{profile.none}}{missing}y'}", CH_EMAIL, "{}", &c);
    assert_null(c.subject);
    eq_str(c.text, "xy");
    content_cleanup(&c);
    R("{'body':'{{x}}'}", CH_SMS, NULL, &c);
    eq_str(c.text, "");
    content_cleanup(&c);
}

static void test_validate(void **state)
{
    (void)state;
    validate_err(ALL_ELEMENTS, HR_INVAL, "elements[14].type: unknown element type \"mystery\"");
    {
        char *doc = strdup(ALL_ELEMENTS), *cut = strstr(doc, ",{'type':'mystery'");
        memcpy(cut, "]}", 3);
        validate_ok(doc);
        free(doc);
    }
    validate_ok(SUGAR);
    validate_ok("{'elements':[{'type':'comment'},{'type':'channel','channel':'email','elements':["
                "{'type':'text','content':'x','loop':'data.items','if':'!$.item.hidden'}]},"
                "{'type':'channel','channel':'webhook','raw':{'a':'{{b}}'}}]}");
    validate_err("{'elements':[{'type':'text','content':'a'},{'type':'fancy'}]}", HR_INVAL,
                 "elements[1].type: unknown element type \"fancy\"");
    validate_err("{'elements':[{'type':'group','elements':[{'type':'text','content':'ok'},"
                 "{'type':'text','content':'oops {{#each x}}'}]}]}",
                 HR_INVAL, "elements[0].elements[1].content: line 1, column");
    validate_err("{'elements':[{'type':'text','content':'a\\nb {{ }}'}]}", HR_INVAL,
                 "elements[0].content: line 2, column ");
    validate_err("{'title':'{{#if}}'}", HR_INVAL, "title: line 1");
    validate_err("{'elements':[{'type':'channel','channel':'email','elements':[]},"
                 "{'type':'text','content':'x'}]}",
                 HR_INVAL, "elements[1]: channel elements cannot be mixed");
    validate_err("{'body':'b','elements':[{'type':'channel','channel':'email','elements':[]}]}",
                 HR_INVAL, "body: cannot be combined with channel elements");
    validate_err("{'elements':[{'type':'group','elements':[{'type':'channel','channel':'sms',"
                 "'elements':[]}]}]}",
                 HR_INVAL, "elements[0].elements[0]: channel elements are allowed only at the top");
    validate_err("{'elements':[{'type':'channel','channel':'sms'}]}", HR_INVAL,
                 "needs elements or raw");
    validate_err("{'elements':[{'type':'list-item','content':'x'}]}", HR_INVAL,
                 "list-item is allowed only inside a list");
    validate_err("{'elements':[{'type':'list','elements':[{'type':'text','content':'x'}]}]}",
                 HR_INVAL, "a list holds only list-item elements");
    validate_err("{'elements':[{'type':'text','content':'x','if':'a && b'}]}", HR_INVAL,
                 "elements[0].if: unsupported condition");
    validate_err("{'elements':[{'type':'text','content':'x','if':'f(1)'}]}", HR_INVAL,
                 "unsupported condition");
    validate_err("{'elements':[{'type':'text','content':'x','loop':'a..b'}]}", HR_INVAL,
                 "elements[0].loop: must be a path");
    validate_err("{'elements':[{'type':'text','content':'x','channels':'email'}]}", HR_INVAL,
                 "elements[0].channels: must be an array");
    validate_err("{'elements':[{'type':'text','content':'x','text_style':'h9'}]}", HR_INVAL,
                 "elements[0].text_style: must be one of text, h1, h2, subtext");
    validate_err("{'elements':[{'type':'text','content':'x','bold':'yes'}]}", HR_INVAL,
                 "elements[0].bold: must be true or false");
    validate_err("{'elements':[{'type':'text','content':'x','locales':{'fr':{'content':'{{'}}}]}",
                 HR_INVAL, "elements[0].locales.fr.content: line 1");
    validate_err("{'elements':[{'type':'channel','channel':'webhook','raw':{'x':[1,'{{/a}}']}}]}",
                 HR_INVAL, "elements[0].raw.x[1]: line 1");
    validate_err("{'elements':[{'content':'x'}]}", HR_INVAL, "elements[0].type: missing");
    validate_err("{'elements':{}}", HR_INVAL, "elements: must be an array");
    validate_err("{'title':5}", HR_INVAL, "title: must be a string");
    validate_err("{}", HR_INVAL, "needs a title, a body or elements");
    validate_err("[]", HR_INVAL, "content must be an object");
}

/* nest: a document with groups nested n deep around one text element. */
static char *nest(int n)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    assert_int_equal(buf_append_c(&b, "{'elements':["), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(buf_append_c(&b, "{'type':'group','elements':["), 0);
    assert_int_equal(buf_append_c(&b, "{'type':'text','content':'deep'}"), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(buf_append_c(&b, "]}"), 0);
    assert_int_equal(buf_append_c(&b, "]}"), 0);
    return buf_steal(&b, NULL);
}

static void test_caps(void **state)
{
    struct content c;
    struct buf b;
    char *doc;
    (void)state;
    /* nesting: 16 levels of groups (depth 0..16) is fine, 17 is not */
    doc = nest(16);
    validate_ok(doc);
    R(doc, CH_SMS, NULL, &c);
    eq_str(c.text, "deep");
    content_cleanup(&c);
    free(doc);
    doc = nest(17);
    validate_err(doc, HR_TOOBIG, "nested deeper than 16");
    render_err(doc, CH_SMS, NULL, HR_TOOBIG, "nested deeper than 16");
    free(doc);

    /* element count */
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_append_c(&b, "{'elements':["), 0);
    for (int i = 0; i < ELEM_MAX_ELEMENTS + 1; i++)
        assert_int_equal(buf_append_c(&b, i ? ",{'type':'divider'}" : "{'type':'divider'}"), 0);
    assert_int_equal(buf_append_c(&b, "]}"), 0);
    validate_err(buf_cstr(&b), HR_TOOBIG, "more than 500 elements");
    buf_cleanup(&b);

    /* loop items */
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_append_c(&b, "{'data':{'items':["), 0);
    for (int i = 0; i < ELEM_MAX_LOOP + 1; i++)
        assert_int_equal(buf_printf(&b, i ? ",%d" : "%d", i), 0);
    assert_int_equal(buf_append_c(&b, "]}}"), 0);
    render_err("{'elements':[{'type':'text','loop':'data.items','content':'{{$.item}}'}]}",
               CH_SMS, buf_cstr(&b), HR_TOOBIG, "elements[0].loop: 1001 items");
    buf_cleanup(&b);

    /* output: 1000 items of 2 KiB each pass 1 MiB */
    buf_init(&b, 1 << 22);
    assert_int_equal(buf_append_c(&b, "{'data':{'big':'"), 0);
    for (int i = 0; i < 2048; i++)
        assert_int_equal(buf_putc(&b, 'x'), 0);
    assert_int_equal(buf_append_c(&b, "','items':["), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_printf(&b, i ? ",%d" : "%d", i), 0);
    assert_int_equal(buf_append_c(&b, "]}}"), 0);
    render_err("{'elements':[{'type':'text','loop':'data.items','content':'{{big}}'}]}", CH_SMS,
               buf_cstr(&b), HR_TOOBIG, "elements[0]");
    render_err("{'elements':[{'type':'text','loop':'data.items','content':'{{big}}'}]}",
               CH_EMAIL, buf_cstr(&b), HR_TOOBIG, "elements[0]");
    buf_cleanup(&b);

    /* visits: nested loops multiply */
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_append_c(&b, "{'data':{'items':["), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(buf_printf(&b, i ? ",%d" : "%d", i), 0);
    assert_int_equal(buf_append_c(&b, "]}}"), 0);
    render_err("{'elements':[{'type':'group','loop':'data.items','elements':[{'type':'group',"
               "'loop':'data.items','elements':[{'type':'divider'}]}]}]}",
               CH_SMS, buf_cstr(&b), HR_TOOBIG, "more than 20000 elements rendered");
    buf_cleanup(&b);
}

static void test_cache(void **state)
{
    struct hbs_cache *cache = hbs_cache_new(64, 0);
    struct hbs_cache_stats st;
    struct herr err = {0};
    struct content c;
    cJSON *doc = J(SUGAR), *ctx = J(ANN);
    (void)state;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(elemental_render(doc, CH_EMAIL, ctx, cache, &c, &err), 0);
        eq_str(c.subject, "Hello Ann");
        content_cleanup(&c);
    }
    hbs_cache_stats(cache, &st);
    assert_true(st.hits >= 4);
    assert_true(st.entries >= 2);
    hbs_cache_free(cache);
    cJSON_Delete(doc);
    cJSON_Delete(ctx);
}

static void test_layout_checks(void **state)
{
    (void)state;
    assert_true(layout_css_color("#abc"));
    assert_true(layout_css_color("#AABBCCDD"));
    assert_true(layout_css_color("rebeccapurple"));
    assert_true(layout_css_color("rgba(1, 2, 3, 0.5)"));
    assert_false(layout_css_color("#abcd1"));
    assert_false(layout_css_color("red;"));
    assert_false(layout_css_color("url(x)"));
    assert_false(layout_css_color("rgb(1,2,3);x"));
    assert_false(layout_css_color(""));
    assert_true(layout_url("https://a.b/c?d=e#f"));
    assert_true(layout_url("HTTP://a"));
    assert_true(layout_url("mailto:a@b"));
    assert_true(layout_url("/relative/path:x"));
    assert_false(layout_url("javascript:alert(1)"));
    assert_false(layout_url("JavaScript:x"));
    assert_false(layout_url("java\tscript:x"));
    assert_false(layout_url("data:text/html,x"));
    assert_false(layout_url(" https://a"));
    assert_false(layout_url(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sugar_email),
        cmocka_unit_test(test_sugar_other_channels),
        cmocka_unit_test(test_markdown_body),
        cmocka_unit_test(test_markdown_wrapper),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_markdown_raw_html_not_executed),
        cmocka_unit_test(test_markdown_raw_html_text_part),
        cmocka_unit_test(test_markdown_input_caps),
        cmocka_unit_test(test_elements_email),
        cmocka_unit_test(test_elements_chat_and_sms),
        cmocka_unit_test(test_attribute_safety),
        cmocka_unit_test(test_channels_filter),
        cmocka_unit_test(test_if),
        cmocka_unit_test(test_loop),
        cmocka_unit_test(test_channel_elements),
        cmocka_unit_test(test_brand),
        cmocka_unit_test(test_locales),
        cmocka_unit_test(test_render_errors),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_layout_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
