/* test_mime.c: the email builder. The message is parsed back with decoders written
 * here (not mime.c's): multipart/alternative with both parts, RFC 2047 subjects and
 * display names that decode to the input, CR/LF injection neutralised, quoted-printable
 * round trips with line limits, stable Message-IDs, RFC 5322 dates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/providers/mime.h"
#include "../../../src/util/buf.h"
#include "../../../src/util/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- decoders ------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* qp_decode: RFC 2045 decoding; returns a malloc'd NUL-terminated string. */
static char *qp_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' && i + 1 < n && s[i + 1] == '\r') {
            assert_true(i + 2 < n && s[i + 2] == '\n');
            i += 2; /* soft break */
        } else if (s[i] == '=') {
            assert_true(i + 2 < n);
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            assert_true(hi >= 0 && lo >= 0);
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* rfc2047_decode: decode encoded words (B and Q, UTF-8) in an unfolded header value;
 * whitespace between two adjacent encoded words is dropped. malloc'd result. */
static char *rfc2047_decode(const char *v)
{
    struct buf b;
    int prev_ew = 0;
    buf_init(&b, 1 << 20);
    while (*v) {
        const char *ws = v;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strncmp(v, "=?", 2) == 0) {
            const char *q1 = strchr(v + 2, '?');
            assert_non_null(q1);
            assert_true(strncasecmp(v + 2, "UTF-8", (size_t)(q1 - v - 2)) == 0);
            char enc = q1[1];
            assert_int_equal(q1[2], '?');
            const char *text = q1 + 3;
            const char *end = strstr(text, "?=");
            assert_non_null(end);
            assert_true(end - v + 2 <= 75); /* RFC 2047: an encoded word is <= 75 chars */
            if (!prev_ew)
                assert_int_equal(buf_append(&b, ws, (size_t)(v - ws)), 0);
            if (enc == 'B' || enc == 'b') {
                uint8_t raw[256];
                size_t rn = 0;
                assert_int_equal(
                    crypto_b64_decode((struct str){text, (size_t)(end - text)}, raw,
                                      sizeof raw, &rn),
                    0);
                assert_int_equal(buf_append(&b, raw, rn), 0);
            } else {
                for (const char *p = text; p < end; p++) {
                    if (*p == '_')
                        assert_int_equal(buf_putc(&b, ' '), 0);
                    else if (*p == '=') {
                        assert_int_equal(buf_putc(&b, (char)(hexval(p[1]) * 16 + hexval(p[2]))), 0);
                        p += 2;
                    } else
                        assert_int_equal(buf_putc(&b, *p), 0);
                }
            }
            v = end + 2;
            prev_ew = 1;
        } else {
            const char *e = v;
            while (*e && *e != ' ' && *e != '\t')
                e++;
            assert_int_equal(buf_append(&b, ws, (size_t)(e - ws)), 0);
            v = e;
            prev_ew = 0;
        }
    }
    return buf_steal(&b, NULL);
}

/* ---- message parsing ------------------------------------------------------------ */

struct parsed {
    char *head;   /* raw header block, CRLF line ends, without the blank line */
    char *body;   /* raw body */
};

static void parse(const char *msg, struct parsed *p)
{
    const char *sep = strstr(msg, "\r\n\r\n");
    assert_non_null(sep);
    p->head = strndup(msg, (size_t)(sep - msg) + 2);
    p->body = strdup(sep + 4);
}

static void parsed_free(struct parsed *p)
{
    free(p->head);
    free(p->body);
}

/* header: the unfolded value of the first header `name` in head (malloc'd), or NULL. */
static char *header(const char *head, const char *name)
{
    size_t nl = strlen(name);
    const char *p = head;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            struct buf b;
            const char *v = p + nl + 1;
            buf_init(&b, 1 << 20);
            while (*v == ' ')
                v++;
            for (;;) {
                assert_int_equal(buf_append(&b, v, (size_t)(eol - v)), 0);
                if (eol[2] == ' ' || eol[2] == '\t') {
                    v = eol + 2; /* unfold: drop CRLF, keep the blank */
                    eol = strstr(v, "\r\n");
                    continue;
                }
                break;
            }
            return buf_steal(&b, NULL);
        }
        p = eol + 2;
    }
    return NULL;
}

/* check_lines: CRLF only, no line over max characters. */
static void check_lines(const char *s, size_t max)
{
    size_t col = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\n') {
            assert_true(p > s && p[-1] == '\r');
            col = 0;
            continue;
        }
        if (*p == '\r') {
            assert_int_equal(p[1], '\n');
            continue;
        }
        col++;
        assert_true(col <= max);
    }
}

/* header_names_ok: every header line is a continuation or "Name:" from the allowed set. */
static void check_header_names(const char *head)
{
    static const char *allowed[] = {"Date", "From", "To", "Reply-To", "Subject", "Message-ID",
                                    "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
                                    NULL};
    const char *p = head;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        if (*p != ' ' && *p != '\t') {
            int ok = 0;
            for (int i = 0; allowed[i]; i++) {
                size_t n = strlen(allowed[i]);
                if (strncmp(p, allowed[i], n) == 0 && p[n] == ':')
                    ok = 1;
            }
            if (!ok)
                fail_msg("unexpected header line: %.*s", (int)(eol - p), p);
        }
        p = eol + 2;
    }
}

static char *build(const struct mime_msg *m)
{
    struct buf out;
    struct herr err = {0};
    buf_init(&out, 1 << 22);
    assert_int_equal(mime_build(m, &out, &err), HR_OK);
    return buf_steal(&out, NULL);
}

/* crlf: s with every LF not preceded by CR turned into CRLF (malloc'd). */
static char *crlf(const char *s)
{
    struct buf b;
    buf_init(&b, 1 << 22);
    for (const char *p = s; *p; p++) {
        if (*p == '\n' && (p == s || p[-1] != '\r'))
            assert_int_equal(buf_putc(&b, '\r'), 0);
        assert_int_equal(buf_putc(&b, *p), 0);
    }
    return buf_steal(&b, NULL);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_multipart_alternative(void **state)
{
    char mid[MIME_MSGID_MAX];
    const char *text = "Hello Ada,\nyour order #42 is ready.\n\n-- \nherald";
    const char *html = "<p>Hello <b>Ada</b>,</p>\n<p>your order #42 is ready.</p>";
    mime_message_id("msg-1/email/smtp", mid, sizeof mid);
    struct mime_msg m = {.from = "noreply@herald.test", .from_name = "Herald",
                         .to = "ada@example.com",
                         .reply_to = "help@herald.test", .subject = "Your order", .text = text,
                         .html = html, .message_id = mid, .date_ms = 0};
    char *msg = build(&m);
    struct parsed p;
    char *ct, *v;
    char boundary[128];

    check_lines(msg, 998);
    parse(msg, &p);
    check_header_names(p.head);
    v = header(p.head, "Date");
    assert_string_equal(v, "Thu, 01 Jan 1970 00:00:00 +0000");
    free(v);
    v = header(p.head, "From");
    assert_string_equal(v, "\"Herald\" <noreply@herald.test>");
    free(v);
    v = header(p.head, "To");
    assert_string_equal(v, "ada@example.com");
    free(v);
    v = header(p.head, "Reply-To");
    assert_string_equal(v, "help@herald.test");
    free(v);
    v = header(p.head, "Subject");
    assert_string_equal(v, "Your order");
    free(v);
    v = header(p.head, "Message-ID");
    assert_string_equal(v, mid);
    free(v);
    v = header(p.head, "MIME-Version");
    assert_string_equal(v, "1.0");
    free(v);

    ct = header(p.head, "Content-Type");
    assert_non_null(ct);
    assert_true(strncmp(ct, "multipart/alternative;", 22) == 0);
    const char *bp = strstr(ct, "boundary=\"");
    assert_non_null(bp);
    bp += 10;
    const char *be = strchr(bp, '"');
    assert_non_null(be);
    snprintf(boundary, sizeof boundary, "--%.*s", (int)(be - bp), bp);
    free(ct);

    /* body: --b CRLF part1 --b CRLF part2 --b-- */
    const char *want_type[2] = {"text/plain; charset=utf-8", "text/html; charset=utf-8"};
    const char *want_body[2] = {text, html};
    const char *cur = strstr(p.body, boundary);
    assert_non_null(cur);
    for (int i = 0; i < 2; i++) {
        const char *start = cur + strlen(boundary);
        assert_true(strncmp(start, "\r\n", 2) == 0);
        start += 2;
        const char *next = strstr(start, boundary);
        assert_non_null(next);
        char *part = strndup(start, (size_t)(next - start));
        struct parsed pp;
        parse(part, &pp);
        v = header(pp.head, "Content-Type");
        assert_string_equal(v, want_type[i]);
        free(v);
        v = header(pp.head, "Content-Transfer-Encoding");
        assert_string_equal(v, "quoted-printable");
        free(v);
        /* the part body ends with the CRLF that belongs to the next boundary line */
        size_t bl = strlen(pp.body);
        assert_true(bl >= 2 && strcmp(pp.body + bl - 2, "\r\n") == 0);
        char *dec = qp_decode(pp.body, bl - 2);
        char *want = crlf(want_body[i]);
        assert_string_equal(dec, want);
        free(dec);
        free(want);
        parsed_free(&pp);
        free(part);
        cur = next;
    }
    assert_true(strncmp(cur + strlen(boundary), "--\r\n", 4) == 0);
    parsed_free(&p);
    free(msg);
}

static void test_single_part(void **state)
{
    char mid[MIME_MSGID_MAX];
    mime_message_id("k", mid, sizeof mid);
    struct mime_msg m = {.from = "a@b.test", .to = "c@d.test", .subject = "s",
                         .html = "<p>only html</p>", .message_id = mid, .date_ms = 1700000000000};
    char *msg = build(&m);
    struct parsed p;
    parse(msg, &p);
    char *v = header(p.head, "Content-Type");
    assert_string_equal(v, "text/html; charset=utf-8");
    free(v);
    v = header(p.head, "From");
    assert_string_equal(v, "a@b.test");
    free(v);
    v = header(p.head, "Date");
    assert_string_equal(v, "Tue, 14 Nov 2023 22:13:20 +0000");
    free(v);
    parsed_free(&p);
    free(msg);
}

/* RFC 8058: List-Unsubscribe (folded after its comma) and List-Unsubscribe-Post; none
 * without a value; a value with CR/LF is refused, never a header split. */
static void test_list_unsubscribe(void **state)
{
    char mid[MIME_MSGID_MAX];
    struct buf out;
    struct herr err = {0};
    mime_message_id("k", mid, sizeof mid);
    struct mime_msg m = {.from = "a@b.test", .to = "c@d.test", .subject = "s", .text = "t",
                         .message_id = mid, .date_ms = 1700000000000};
    char *msg = build(&m), *v;
    struct parsed p;
    assert_null(strstr(msg, "List-Unsubscribe"));
    free(msg);
    m.list_unsub = "<https://h.test/u/61.62.1.ff>, <mailto:u@h.test?subject=unsubscribe>";
    msg = build(&m);
    assert_non_null(strstr(msg, "List-Unsubscribe: <https://h.test/u/61.62.1.ff>,\r\n <mailto:"));
    parse(msg, &p);
    v = header(p.head, "List-Unsubscribe");
    assert_string_equal(v, "<https://h.test/u/61.62.1.ff>, <mailto:u@h.test?subject=unsubscribe>");
    free(v);
    v = header(p.head, "List-Unsubscribe-Post");
    assert_string_equal(v, "List-Unsubscribe=One-Click");
    free(v);
    parsed_free(&p);
    free(msg);
    m.list_unsub = "<https://h.test/u/1>\r\nBcc: evil@x.test";
    buf_init(&out, 1 << 20);
    assert_int_equal(mime_build(&m, &out, &err), HR_INVAL);
    buf_cleanup(&out);
}

static void test_subject_rfc2047(void **state)
{
    char mid[MIME_MSGID_MAX];
    const char *subjects[] = {
        "Ваш заказ №42 готов — ünïcödé ✓ and then some more words to force folding 🎉🎉🎉",
        "短い件名",
        "Plain ASCII but =?UTF-8?B?Zm9v?= looks like an encoded word",
        ("A long plain ASCII subject line that goes on and on well past the seventy-eight "
         "character preferred limit so that it has to be folded at spaces"),
    };
    mime_message_id("k", mid, sizeof mid);
    for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++) {
        struct mime_msg m = {.from = "a@b.test", .to = "c@d.test", .subject = subjects[i],
                             .text = "x", .message_id = mid};
        char *msg = build(&m);
        struct parsed p;
        parse(msg, &p);
        check_lines(p.head, 78);
        char *raw = header(p.head, "Subject");
        assert_non_null(raw);
        if (i < 3)
            assert_non_null(strstr(raw, "=?UTF-8?B?")); /* non-ASCII or "=?": encoded */
        else
            assert_null(strstr(raw, "=?")); /* plain ASCII stays readable */
        for (const char *c = raw; *c; c++)
            assert_true((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
        char *dec = rfc2047_decode(raw);
        assert_string_equal(dec, subjects[i]);
        free(dec);
        free(raw);
        parsed_free(&p);
        free(msg);
    }
}

static void test_from_name_encoded(void **state)
{
    char mid[MIME_MSGID_MAX];
    mime_message_id("k", mid, sizeof mid);
    struct mime_msg m = {.from = "news@herald.test", .from_name = "Zoë \"the\" Café",
                         .to = "c@d.test",
                         .subject = "s", .text = "x", .message_id = mid};
    char *msg = build(&m);
    struct parsed p;
    parse(msg, &p);
    char *raw = header(p.head, "From");
    const char *lt = strrchr(raw, '<');
    assert_non_null(lt);
    assert_string_equal(lt, "<news@herald.test>");
    char *name = strndup(raw, (size_t)(lt - raw - 1));
    char *dec = rfc2047_decode(name);
    assert_string_equal(dec, "Zoë \"the\" Café");
    free(dec);
    free(name);
    free(raw);
    parsed_free(&p);
    free(msg);

    /* ASCII names are quoted-strings with escapes */
    m.from_name = "Ops \"Team\" \\ Bot";
    msg = build(&m);
    parse(msg, &p);
    raw = header(p.head, "From");
    assert_string_equal(raw, "\"Ops \\\"Team\\\" \\\\ Bot\" <news@herald.test>");
    free(raw);
    parsed_free(&p);
    free(msg);
}

static void test_header_injection(void **state)
{
    char mid[MIME_MSGID_MAX];
    struct buf out;
    struct herr err = {0};
    mime_message_id("k", mid, sizeof mid);
    const char *evil_subjects[] = {"Hello\r\nBcc: x@y", "Hello\nBcc: x@y", "Hello\rBcc: x@y",
                                   "Héllo\r\nBcc: x@y", "\r\n\r\nbody injection"};
    for (size_t i = 0; i < sizeof evil_subjects / sizeof evil_subjects[0]; i++) {
        struct mime_msg m = {.from = "a@b.test", .from_name = "Evil\r\nBcc: a@b", .to = "c@d.test",
                             .subject = evil_subjects[i], .text = "x", .html = "<p>x</p>",
                             .message_id = mid};
        char *msg = build(&m);
        struct parsed p;
        check_lines(msg, 998);
        parse(msg, &p);
        check_header_names(p.head); /* no Bcc: line, nothing but our headers */
        assert_null(header(p.head, "Bcc"));
        /* the words survive as text inside the Subject, on one logical line */
        char *raw = header(p.head, "Subject");
        char *dec = rfc2047_decode(raw);
        assert_null(strchr(dec, '\r'));
        assert_null(strchr(dec, '\n'));
        if (i < 4)
            assert_non_null(strstr(dec, "Bcc: x@y"));
        free(dec);
        free(raw);
        /* the body did not start early: the first body line is the MIME preamble boundary */
        assert_true(strncmp(p.body, "--=_herald_", 11) == 0);
        parsed_free(&p);
        free(msg);
    }

    /* addresses with CR/LF, spaces or specials are refused outright */
    const char *bad[] = {"c@d.test\r\nBcc: x@y", "c@d.test\nBcc: x@y", "c d@e.test", "cd.test",
                         "@d.test", "c@", "<c@d.test>", "c@d.test,e@f.test", "c@@d.test",
                         "c@d.test;", "\"c\"@d.test", "c.@d.test", ".c@d.test", "c@d.test.",
                         "c@.d.test", "c..d@e.test", "ü@d.test", "", NULL};
    for (int i = 0; bad[i]; i++) {
        assert_false(mime_addr_valid(bad[i]));
        struct mime_msg m = {.from = "a@b.test", .to = bad[i], .text = "x", .message_id = mid};
        buf_init(&out, 1 << 20);
        assert_int_equal(mime_build(&m, &out, &err), HR_INVAL);
        buf_cleanup(&out);
        m.to = "c@d.test";
        m.from = bad[i];
        buf_init(&out, 1 << 20);
        assert_int_equal(mime_build(&m, &out, &err), HR_INVAL);
        buf_cleanup(&out);
        m.from = "a@b.test";
        m.reply_to = bad[0];
        buf_init(&out, 1 << 20);
        assert_int_equal(mime_build(&m, &out, &err), HR_INVAL);
        buf_cleanup(&out);
    }
    assert_false(mime_addr_valid(NULL));
    assert_true(mime_addr_valid("first.last+tag@sub.example.co.uk"));
    assert_true(mime_addr_valid("a@localhost"));

    /* a Message-ID with CR/LF is refused too */
    struct mime_msg m = {.from = "a@b.test", .to = "c@d.test", .text = "x",
                         .message_id = "<a@b>\r\nBcc: x@y"};
    buf_init(&out, 1 << 20);
    assert_int_equal(mime_build(&m, &out, &err), HR_INVAL);
    buf_cleanup(&out);
}

static void qp_roundtrip(const char *in, size_t n)
{
    struct buf out;
    struct buf want;
    buf_init(&out, 1 << 22);
    buf_init(&want, 1 << 22);
    assert_int_equal(mime_qp_encode((struct str){in, n}, &out), 0);
    check_lines(buf_cstr(&out), 76);
    for (size_t i = 0; i < out.len; i++) {
        unsigned char c = (unsigned char)out.p[i];
        assert_true(c == '\r' || c == '\n' || (c >= 0x20 && c < 0x7f));
    }
    /* no line starts with '.', no line ends in a blank */
    for (size_t i = 0; i < out.len; i++) {
        if (i == 0 || out.p[i - 1] == '\n')
            assert_true(out.p[i] != '.');
        if (out.p[i] == '\r')
            assert_true(i == 0 || (out.p[i - 1] != ' ' && out.p[i - 1] != '\t'));
    }
    if (out.len)
        assert_true(out.p[out.len - 1] != ' ' && out.p[out.len - 1] != '\t');
    /* expected: line ends normalised to CRLF */
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n') {
            assert_int_equal(buf_append_c(&want, "\r\n"), 0);
            i++;
        } else if (in[i] == '\r' || in[i] == '\n') {
            assert_int_equal(buf_append_c(&want, "\r\n"), 0);
        } else {
            assert_int_equal(buf_putc(&want, in[i]), 0);
        }
    }
    char *dec = qp_decode(out.p ? out.p : "", out.len);
    assert_int_equal(strlen(dec), want.len); /* inputs here have no NUL */
    assert_memory_equal(dec, buf_cstr(&want), want.len);
    free(dec);
    buf_cleanup(&out);
    buf_cleanup(&want);
}

static void test_qp_roundtrip(void **state)
{
    char longline[1200];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    longline[300] = '=';
    longline[500] = ' ';
    qp_roundtrip(longline, strlen(longline));

    const char *cases[] = {
        "",
        "short",
        "trailing blank \nand tab\t\r\nend ",
        ".leading dot\n.\n..two",
        "equals = sign == and =3D",
        ("ünïcödé ✓ 日本語のテキストがここにあります。"
         "日本語のテキストがここにあります。日本語のテキスト"),
        "mixed\r\nline\rends\n\nblank lines\r\n\r\n",
        ("tab\tin\tthe\tmiddle and a very long line with words that keeps going beyond the "
         "seventy-six character limit of quoted-printable lines, so soft breaks are needed"),
        "ctrl \x01\x02\x7f chars",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        qp_roundtrip(cases[i], strlen(cases[i]));

    /* random bytes (no NUL) */
    srand(42);
    for (int k = 0; k < 200; k++) {
        char r[600];
        size_t n = (size_t)(rand() % 599);
        for (size_t i = 0; i < n; i++)
            r[i] = (char)(1 + rand() % 255);
        r[n] = '\0';
        qp_roundtrip(r, n);
    }
}

static void test_message_id(void **state)
{
    char a[MIME_MSGID_MAX], b[MIME_MSGID_MAX], c[MIME_MSGID_MAX], e1[MIME_MSGID_MAX],
        e2[MIME_MSGID_MAX], l[MIME_MSGID_MAX];
    mime_message_id("1-65f240a0-47a6a120c8374de9bcf9f22c:email:smtp", a, sizeof a);
    mime_message_id("1-65f240a0-47a6a120c8374de9bcf9f22c:email:smtp", b, sizeof b);
    mime_message_id("1-65f240a0-47a6a120c8374de9bcf9f22c:email:sendgrid", c, sizeof c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_true(a[0] == '<');
    assert_non_null(strstr(a, "@herald>"));
    assert_true(strncmp(a, "<1-65f240a0-47a6a120c8374de9bcf9f22c-email-smtp.", 48) == 0);
    /* keys that sanitize the same still differ */
    mime_message_id("a:b", b, sizeof b);
    mime_message_id("a/b", c, sizeof c);
    assert_string_not_equal(b, c);
    /* only [A-Za-z0-9.-] before the @, no empty dot-atoms */
    mime_message_id("..\r\n<evil> key..with..dots.", l, sizeof l);
    const char *at = strchr(l, '@');
    for (const char *p = l + 1; p < at; p++) {
        assert_true((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-');
        if (*p == '.')
            assert_true(p > l + 1 && p[-1] != '.' && p[1] != '@');
    }
    /* a long key is cut but stays bounded */
    char longkey[500];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    mime_message_id(longkey, l, sizeof l);
    assert_true(strlen(l) < 100);
    /* no key: random */
    mime_message_id(NULL, e1, sizeof e1);
    mime_message_id("", e2, sizeof e2);
    assert_string_not_equal(e1, e2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multipart_alternative),
        cmocka_unit_test(test_single_part),
        cmocka_unit_test(test_list_unsubscribe),
        cmocka_unit_test(test_subject_rfc2047),
        cmocka_unit_test(test_from_name_encoded),
        cmocka_unit_test(test_header_injection),
        cmocka_unit_test(test_qp_roundtrip),
        cmocka_unit_test(test_message_id),
    };
    return cmocka_run_group_tests_name("mime", tests, NULL, NULL);
}
