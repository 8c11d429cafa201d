/* mime.c: RFC 5322 headers (RFC 2047 encoded words, folding), quoted-printable bodies
 * and the multipart/alternative layout of herald's emails. */
#include "mime.h"

#include "../util/crypto.h"
#include "http_client.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define HDR_FOLD 78        /* preferred line length of a header (RFC 5322 2.1.1) */
#define HDR_TEXT_MAX 4096  /* longest subject / display name kept, in bytes */
#define EW_BYTES 39        /* UTF-8 bytes per encoded word: 52 base64 chars, 64 in all */

/* ---- text helpers ----------------------------------------------------------------- */

/* utf8_len: bytes of the character starting with lead byte c (1 for invalid leads). */
static size_t utf8_len(unsigned char c)
{
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    return 1;
}

/* char_end: the end of the character starting at s[i] (never past n). */
static size_t char_end(const char *s, size_t i, size_t n)
{
    size_t e = i + utf8_len((unsigned char)s[i]);
    for (size_t k = i + 1; k < e && k < n; k++)
        if (((unsigned char)s[k] & 0xc0) != 0x80)
            return k; /* broken sequence: stop before the first non-continuation */
    return e > n ? n : e;
}

/* clean_text: s with every control character (CR and LF included) turned into a space,
 * cut to at most HDR_TEXT_MAX bytes on a character boundary, into out (reset). */
static int clean_text(const char *s, struct buf *out)
{
    int rc = HR_OK;
    size_t n = s ? strlen(s) : 0, i = 0;
    buf_reset(out);
    while (i < n && rc == HR_OK) {
        size_t e = char_end(s, i, n);
        if (out->len + (e - i) > HDR_TEXT_MAX)
            break;
        if (e - i == 1) {
            unsigned char c = (unsigned char)s[i];
            rc = buf_putc(out, (c < 0x20 || c == 0x7f) ? ' ' : (char)c);
        } else {
            rc = buf_append(out, s + i, e - i);
        }
        i = e;
    }
    return rc;
}

/* plain_ascii: printable ASCII with no "=?" (which readers could take for an encoded
 * word) and no run without spaces long enough to break the 998-byte line limit. */
static bool plain_ascii(struct str s)
{
    size_t run = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c > 0x7e)
            return false;
        if (c == '=' && i + 1 < s.len && s.p[i + 1] == '?')
            return false;
        run = c == ' ' ? 0 : run + 1;
        if (run > 900)
            return false;
    }
    return true;
}

/* encoded_words: s as RFC 2047 B-encoded words joined by CRLF SP (folding). */
static int encoded_words(struct buf *out, struct str s)
{
    int rc = HR_OK;
    size_t i = 0;
    char b64[4 * ((EW_BYTES + 2) / 3) + 1];
    while (i < s.len && rc == HR_OK) {
        size_t start = i;
        while (i < s.len) {
            size_t e = char_end(s.p, i, s.len);
            if (e - start > EW_BYTES && i > start)
                break;
            i = e;
        }
        crypto_b64_encode(s.p + start, i - start, b64, sizeof b64);
        rc = buf_printf(out, "%s=?UTF-8?B?%s?=", start ? "\r\n " : "", b64);
    }
    return rc;
}

int mime_header_text(struct buf *out, const char *name, const char *value)
{
    int rc;
    struct buf t;
    struct str s;
    buf_init(&t, HDR_TEXT_MAX);
    rc = clean_text(value, &t);
    if (rc < 0)
        goto out;
    s = buf_str(&t);
    rc = buf_printf(out, "%s: ", name);
    if (rc < 0)
        goto out;
    if (plain_ascii(s)) {
        /* fold before a space once the line would pass HDR_FOLD */
        size_t col = strlen(name) + 2, i = 0;
        while (i < s.len && rc == HR_OK) {
            size_t j = i;
            while (j < s.len && s.p[j] == ' ')
                j++;
            while (j < s.len && s.p[j] != ' ')
                j++;
            if (col + (j - i) > HDR_FOLD && s.p[i] == ' ' && col > strlen(name) + 2) {
                rc = buf_append_c(out, "\r\n");
                col = 0;
            }
            if (rc == HR_OK)
                rc = buf_append(out, s.p + i, j - i);
            col += j - i;
            i = j;
        }
    } else {
        rc = encoded_words(out, s);
    }
    if (rc == HR_OK)
        rc = buf_append_c(out, "\r\n");
out:
    buf_cleanup(&t);
    return rc;
}

/* mailbox: `phrase <addr>` (or the bare address when there is no name). An ASCII name
 * becomes a quoted-string, any other an encoded-word phrase. */
static int mailbox(struct buf *out, const char *name, const char *addr)
{
    int rc = HR_OK;
    struct buf t;
    struct str s;
    buf_init(&t, HDR_TEXT_MAX);
    if (name)
        rc = clean_text(name, &t);
    s = buf_str(&t);
    if (rc < 0 || s.len == 0) {
        if (rc == HR_OK)
            rc = buf_append_c(out, addr);
        goto out;
    }
    if (plain_ascii(s) && s.len <= 256) {
        rc = buf_putc(out, '"');
        for (size_t i = 0; i < s.len && rc == HR_OK; i++) {
            if (s.p[i] == '"' || s.p[i] == '\\')
                rc = buf_putc(out, '\\');
            if (rc == HR_OK)
                rc = buf_putc(out, s.p[i]);
        }
        if (rc == HR_OK)
            rc = buf_putc(out, '"');
    } else {
        rc = encoded_words(out, s);
    }
    if (rc == HR_OK)
        rc = buf_printf(out, " <%s>", addr);
out:
    buf_cleanup(&t);
    return rc;
}

/* ---- addresses and ids ---------------------------------------------------------- */

bool mime_addr_valid(const char *addr)
{
    size_t n;
    const char *at;
    if (!addr)
        return false;
    n = strlen(addr);
    if (n < 3 || n > 254)
        return false;
    at = strchr(addr, '@');
    if (!at || at != strrchr(addr, '@') || at == addr || at - addr > 64 || !at[1])
        return false;
    for (const char *p = addr; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || strchr("<>()[],;:\"\\", c))
            return false;
        if (c == '.' && (p == addr || p[-1] == '.' || p[-1] == '@' || p[1] == '@' || !p[1]))
            return false;
    }
    return true;
}

void mime_message_id(const char *key, char *out, size_t cap)
{
    char local[64 + 1 + 16 + 1];
    size_t o = 0;
    uint8_t h[32];
    char hex[65];
    if (!key || !key[0]) {
        char tok[33];
        crypto_token(tok, 32);
        snprintf(out, cap, "<%s@herald>", tok);
        return;
    }
    for (const char *p = key; *p && o < 64; p++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || (c == '.' && o > 0 && local[o - 1] != '.');
        local[o++] = ok ? c : '-';
    }
    if (o > 0 && local[o - 1] == '.')
        local[o - 1] = '-';
    crypto_sha256(key, strlen(key), h);
    crypto_hex(h, 8, hex);
    if (o > 0)
        local[o++] = '.';
    memcpy(local + o, hex, 16);
    local[o + 16] = '\0';
    snprintf(out, cap, "<%s@herald>", local);
}

/* ---- bodies ------------------------------------------------------------------------ */

int mime_qp_encode(struct str in, struct buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = HR_OK;
    size_t i = 0;
    while (i < in.len && rc == HR_OK) {
        size_t e = i, col = 0;
        while (e < in.len && in.p[e] != '\r' && in.p[e] != '\n')
            e++;
        for (size_t k = i; k < e && rc == HR_OK; k++) {
            unsigned char c = (unsigned char)in.p[k];
            bool last = k + 1 == e;
            bool enc = c == '=' || c < 0x20 || c >= 0x7f || (c == ' ' && last) ||
                       (c == '.' && col == 0);
            size_t tok = enc ? 3 : 1;
            if (col + tok > (last ? 76u : 75u)) {
                rc = buf_append_c(out, "=\r\n"); /* soft line break */
                col = 0;
                if (c == '.')
                    enc = true, tok = 3;
            }
            if (rc < 0)
                break;
            if (enc) {
                char t[3] = {'=', hex[c >> 4], hex[c & 15]};
                rc = buf_append(out, t, 3);
            } else {
                rc = buf_putc(out, (char)c);
            }
            col += tok;
        }
        if (rc < 0 || e == in.len)
            break;
        rc = buf_append_c(out, "\r\n");
        i = e + ((in.p[e] == '\r' && e + 1 < in.len && in.p[e + 1] == '\n') ? 2 : 1);
    }
    return rc;
}

static int part(struct buf *out, const char *type, const char *body)
{
    int rc = buf_printf(out,
                        "Content-Type: %s; charset=utf-8\r\n"
                        "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                        type);
    if (rc == HR_OK)
        rc = mime_qp_encode(str_c(body), out);
    if (rc == HR_OK)
        rc = buf_append_c(out, "\r\n");
    return rc;
}

/* rfc5322_date: "Thu, 01 Jan 2026 00:00:00 +0000" (no locale involved). */
static void rfc5322_date(int64_t ms, char *out, size_t cap)
{
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}

static bool msgid_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 3 || n >= MIME_MSGID_MAX || s[0] != '<' || s[n - 1] != '>')
        return false;
    for (size_t i = 1; i + 1 < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '<' ||
            s[i] == '>')
            return false;
    return true;
}

/* list_unsub_header: List-Unsubscribe (folded after its commas) and List-Unsubscribe-Post:
 * One-Click (RFC 8058). HR_INVAL for a value with control characters. */
static int list_unsub_header(struct buf *out, const char *v, struct herr *err)
{
    int rc;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return herr_set(err, HR_INVAL, "invalid List-Unsubscribe value");
    rc = buf_printf(out, "List-Unsubscribe: ");
    for (const char *p = v; rc == HR_OK && *p; p++)
        rc = p[0] == ',' && p[1] == ' ' ? buf_printf(out, ",\r\n") : buf_printf(out, "%c", *p);
    if (rc == HR_OK)
        rc = buf_printf(out, "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
    return rc;
}

int mime_build(const struct mime_msg *m, struct buf *out, struct herr *err)
{
    int rc = HR_OK;
    char date[64];
    char boundary[40];
    bool reply = m->reply_to && m->reply_to[0];

    if (!mime_addr_valid(m->from))
        return herr_set(err, HR_INVAL, "invalid From address");
    if (!mime_addr_valid(m->to))
        return herr_set(err, HR_INVAL, "invalid email address");
    if (reply && !mime_addr_valid(m->reply_to))
        return herr_set(err, HR_INVAL, "invalid Reply-To address");
    if (!msgid_valid(m->message_id))
        return herr_set(err, HR_INVAL, "invalid Message-ID");

    rfc5322_date(m->date_ms, date, sizeof date);
    rc = buf_printf(out, "Date: %s\r\nFrom: ", date);
    if (rc == HR_OK)
        rc = mailbox(out, m->from_name, m->from);
    if (rc == HR_OK)
        rc = buf_printf(out, "\r\nTo: %s\r\n", m->to);
    if (rc == HR_OK && reply)
        rc = buf_printf(out, "Reply-To: %s\r\n", m->reply_to);
    if (rc == HR_OK)
        rc = mime_header_text(out, "Subject", m->subject ? m->subject : "");
    if (rc == HR_OK)
        rc = buf_printf(out, "Message-ID: %s\r\nMIME-Version: 1.0\r\n", m->message_id);
    if (rc == HR_OK && m->list_unsub && m->list_unsub[0])
        rc = list_unsub_header(out, m->list_unsub, err);
    if (rc < 0)
        goto out;

    if (m->text && m->html) {
        /* "=_" cannot occur in quoted-printable text, so the boundary cannot either */
        char tok[25];
        crypto_token(tok, 24);
        snprintf(boundary, sizeof boundary, "=_herald_%s", tok);
        rc = buf_printf(out, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n",
                        boundary);
        if (rc == HR_OK)
            rc = buf_printf(out, "--%s\r\n", boundary);
        if (rc == HR_OK)
            rc = part(out, "text/plain", m->text);
        if (rc == HR_OK)
            rc = buf_printf(out, "--%s\r\n", boundary);
        if (rc == HR_OK)
            rc = part(out, "text/html", m->html);
        if (rc == HR_OK)
            rc = buf_printf(out, "--%s--\r\n", boundary);
    } else if (m->html) {
        rc = part(out, "text/html", m->html);
    } else {
        rc = part(out, "text/plain", m->text ? m->text : "");
    }
out:
    if (rc == HR_TOOBIG)
        herr_set(err, rc, "the email is larger than %zu bytes", out->max);
    return rc;
}

int mime_sender_parse(const cJSON *s, const char **from, const char **from_name,
                      const char **reply_to, struct herr *err)
{
    int rc = http_client_setting_str(s, "settings", "from", true, from, err);
    if (rc == HR_OK && !mime_addr_valid(*from))
        rc = herr_set(err, HR_INVAL, "settings.from must be an email address");
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "from_name", false, from_name, err);
    if (rc == HR_OK)
        rc = http_client_setting_str(s, "settings", "reply_to", false, reply_to, err);
    if (rc == HR_OK && *reply_to && !mime_addr_valid(*reply_to))
        rc = herr_set(err, HR_INVAL, "settings.reply_to must be an email address");
    return rc;
}
