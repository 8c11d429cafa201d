/* tracking.c: open and click tracking (tracking.h): signed tokens, the HTML rewrite done
 * at render time, and the OPENED / CLICKED record. */
#include "tracking.h"

#include "receipt.h"
#include "send_int.h"

#include "../util/buf.h"
#include "../util/crypto.h"
#include "../util/json.h"
#include "../util/log.h"
#include "../util/xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_DOMAIN "herald-track-v1\n"

/* ---- the key ------------------------------------------------------------------------- */

static pthread_mutex_t key_mu = PTHREAD_MUTEX_INITIALIZER;
static struct store *key_store; /* the store the cached key came from */
static uint8_t key_cache[32];

static int key_add_tx(struct store_txn *t, void *arg)
{
    int rc = store_meta_add(t, TRACK_SECRET_META, *(struct str *)arg);
    return rc == HR_CONFLICT ? HR_OK : rc; /* another node made it first: read theirs */
}

int tracking_key(struct store *s, uint8_t out[32])
{
    struct arena *a = NULL;
    struct str v;
    uint8_t raw[32];
    char hex[65];
    size_t n = 0;
    int rc = HR_OK;
    pthread_mutex_lock(&key_mu);
    if (key_store == s) {
        memcpy(out, key_cache, 32);
        goto out;
    }
    a = arena_new(1024);
    rc = store_meta_get(s, TRACK_SECRET_META, a, &v);
    if (rc == HR_NOTFOUND) {
        struct str nv;
        struct herr err = {0};
        crypto_random(raw, sizeof raw);
        crypto_hex(raw, sizeof raw, hex);
        nv = str_c(hex);
        rc = store_write(s, key_add_tx, &nv, &err);
        if (rc == HR_OK)
            rc = store_meta_get(s, TRACK_SECRET_META, a, &v);
    }
    if (rc < 0)
        goto out;
    if (v.len != 64) {
        rc = HR_INVAL;
        goto out;
    }
    for (size_t i = 0; i < 32; i++) {
        unsigned b;
        char two[3] = {v.p[2 * i], v.p[2 * i + 1], 0};
        char *end;
        b = (unsigned)strtoul(two, &end, 16);
        if (*end) {
            rc = HR_INVAL;
            goto out;
        }
        key_cache[n++] = (uint8_t)b;
    }
    key_store = s;
    memcpy(out, key_cache, 32);
out:
    pthread_mutex_unlock(&key_mu);
    arena_free(a);
    return rc;
}

/* ---- tokens -------------------------------------------------------------------------- */

/* b64url: base64url without padding of p into out (cap >= 4*((n+2)/3)+1); length. */
static size_t b64url(const void *p, size_t n, char *out, size_t cap)
{
    size_t len = crypto_b64_encode(p, n, out, cap);
    for (size_t i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    while (len && out[len - 1] == '=')
        out[--len] = 0;
    return len;
}

/* unb64url: decode base64url (no padding) into out (cap bytes). HR_INVAL when bad. */
static int unb64url(struct str in, uint8_t *out, size_t cap, size_t *outlen)
{
    char tmp[TRACK_TOKEN_MAX + 4];
    size_t n = in.len;
    if (n > TRACK_TOKEN_MAX || n % 4 == 1)
        return HR_INVAL;
    for (size_t i = 0; i < n; i++) {
        char c = in.p[i];
        if (c == '+' || c == '/' || c == '=')
            return HR_INVAL; /* one spelling only */
        tmp[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    while (n % 4)
        tmp[n++] = '=';
    if (cap < 3 * n / 4 + 3 || crypto_b64_decode((struct str){tmp, n}, out, cap, outlen) < 0)
        return HR_INVAL;
    { /* one spelling only: unused low bits of the last character must be zero */
        char again[TRACK_TOKEN_MAX + 4];
        size_t m = b64url(out, *outlen, again, sizeof again);
        if (m != in.len || memcmp(again, in.p, m) != 0)
            return HR_INVAL;
    }
    return HR_OK;
}

static void mac_of(const uint8_t key[32], const void *p, size_t n, uint8_t out[32])
{
    struct buf b;
    buf_init(&b, n + 64);
    if (buf_append_c(&b, TOKEN_DOMAIN) == HR_OK && buf_append(&b, p, n) == HR_OK)
        crypto_hmac_sha256((struct str){(const char *)key, 32}, b.p, b.len, out);
    else
        memset(out, 0, 32);
    buf_cleanup(&b);
}

char *tracking_token(const uint8_t key[32], char kind, const char *message_id, const char *link)
{
    size_t n = 1 + strlen(message_id) + 1 + strlen(link);
    char *payload = xmalloc(n + 1), *out;
    size_t cap = 4 * ((n + 2) / 3) + 1 + 1 + 44, len;
    uint8_t mac[32];
    snprintf(payload, n + 1, "%c%s\n%s", kind, message_id, link);
    mac_of(key, payload, n, mac);
    out = xmalloc(cap);
    len = b64url(payload, n, out, cap);
    out[len++] = '.';
    b64url(mac, sizeof mac, out + len, cap - len);
    free(payload);
    return out;
}

/* link_ok: an absolute http(s) URL without control characters, spaces or quotes. */
static bool link_ok(const char *s, size_t n)
{
    if (n > TRACK_LINK_MAX)
        return false;
    if (!(n > 7 && strncasecmp(s, "http://", 7) == 0) &&
        !(n > 8 && strncasecmp(s, "https://", 8) == 0))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == '"' || s[i] == '<' ||
            s[i] == '>' || s[i] == '\\')
            return false;
    return true;
}

int tracking_token_check(const uint8_t key[32], struct str token, char *kind, char *id,
                         size_t id_cap, char *link, size_t link_cap)
{
    uint8_t payload[TRACK_TOKEN_MAX], mac[40], want[32];
    size_t plen = 0, mlen = 0, dot = token.len, idlen;
    const char *nl;
    if (token.len == 0 || token.len > TRACK_TOKEN_MAX)
        return HR_NOTFOUND;
    while (dot > 0 && token.p[dot - 1] != '.')
        dot--;
    if (dot == 0)
        return HR_NOTFOUND;
    if (unb64url((struct str){token.p, dot - 1}, payload, sizeof payload, &plen) < 0 ||
        unb64url((struct str){token.p + dot, token.len - dot}, mac, sizeof mac, &mlen) < 0 ||
        mlen != 32 || plen < 3)
        return HR_NOTFOUND;
    mac_of(key, payload, plen, want);
    if (!crypto_ct_equal(want, 32, mac, 32))
        return HR_NOTFOUND;
    /* signed by us; still check the shape */
    if (payload[0] != 'o' && payload[0] != 'c')
        return HR_NOTFOUND;
    nl = memchr(payload + 1, '\n', plen - 1);
    if (!nl)
        return HR_NOTFOUND;
    idlen = (size_t)(nl - (const char *)payload) - 1;
    if (idlen == 0 || idlen >= id_cap || memchr(payload + 1, 0, idlen))
        return HR_NOTFOUND;
    {
        const char *l = nl + 1;
        size_t llen = plen - (size_t)(l - (const char *)payload);
        if (llen >= link_cap || (payload[0] == 'c' ? !link_ok(l, llen) : llen != 0))
            return HR_NOTFOUND;
        memcpy(link, l, llen);
        link[llen] = 0;
    }
    *kind = (char)payload[0];
    memcpy(id, payload + 1, idlen);
    id[idlen] = 0;
    return HR_OK;
}

/* ---- the HTML rewrite ---------------------------------------------------------------- */

/* ci_prefix: s (n bytes) starts with lowercase word w, ASCII case-insensitively. */
static bool ci_prefix(const char *s, size_t n, const char *w)
{
    size_t k = strlen(w);
    return n >= k && strncasecmp(s, w, k) == 0;
}

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* unescape_amp: v (n bytes) with "&amp;" turned into "&" into out (cap); false when it
 * does not fit or holds another character reference (left alone). */
static bool unescape_amp(const char *v, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (o + 1 >= cap)
            return false;
        if (v[i] == '&') {
            if (n - i >= 5 && memcmp(v + i, "&amp;", 5) == 0) {
                out[o++] = '&';
                i += 4;
                continue;
            }
            return false;
        }
        out[o++] = v[i];
    }
    out[o] = 0;
    return true;
}

/* href_span: inside the tag at s[0..n) (after "<a"), the value of its href attribute:
 * *vs, *vn and its quote (0 when unquoted). False when none. */
static bool href_span(const char *s, size_t n, size_t *vs, size_t *vn, char *quote)
{
    size_t i = 0;
    while (i < n && s[i] != '>') {
        if (s[i] == '"' || s[i] == '\'') { /* a quoted value of another attribute */
            const char *q = memchr(s + i + 1, s[i], n - i - 1);
            if (!q)
                return false;
            i = (size_t)(q - s) + 1;
            continue;
        }
        if (space(s[i - (i > 0)]) && ci_prefix(s + i, n - i, "href")) {
            size_t j = i + 4;
            while (j < n && space(s[j]))
                j++;
            if (j >= n || s[j] != '=') {
                i = j;
                continue;
            }
            j++;
            while (j < n && space(s[j]))
                j++;
            if (j < n && (s[j] == '"' || s[j] == '\'')) {
                const char *q = memchr(s + j + 1, s[j], n - j - 1);
                if (!q)
                    return false;
                *quote = s[j];
                *vs = j + 1;
                *vn = (size_t)(q - s) - j - 1;
            } else {
                size_t k = j;
                while (k < n && !space(s[k]) && s[k] != '>')
                    k++;
                *quote = 0;
                *vs = j;
                *vn = k - j;
            }
            return true;
        }
        i++;
    }
    return false;
}

char *tracking_rewrite_html(const char *html, const uint8_t key[32], const char *base,
                            const char *message_id, bool opens, bool clicks)
{
    size_t n = strlen(html), i = 0, body_end = n;
    struct buf b;
    char link[TRACK_LINK_MAX + 1];
    bool changed = false, ok = true;
    if ((!opens && !clicks) || n == 0)
        return NULL; /* nothing to track in an empty body */
    buf_init(&b, TRACK_HTML_MAX);
    while (ok && i < n) {
        const char *lt = memchr(html + i, '<', n - i);
        size_t at, vs, vn;
        char quote;
        if (!lt) {
            ok = buf_append(&b, html + i, n - i) == HR_OK;
            break;
        }
        at = (size_t)(lt - html);
        if (clicks && n - at > 2 && (html[at + 1] == 'a' || html[at + 1] == 'A') &&
            space(html[at + 2]) && href_span(html + at + 2, n - at - 2, &vs, &vn, &quote) &&
            unescape_amp(html + at + 2 + vs, vn, link, sizeof link) &&
            link_ok(link, strlen(link))) {
            char *tok = tracking_token(key, 'c', message_id, link);
            size_t v0 = at + 2 + vs;
            ok = buf_append(&b, html + i, v0 - i) == HR_OK &&
                 (quote || buf_putc(&b, '"') == HR_OK) &&
                 buf_printf(&b, "%s/t/c/%s", base, tok) == HR_OK &&
                 (quote || buf_putc(&b, '"') == HR_OK);
            free(tok);
            i = v0 + vn;
            changed = true;
            continue;
        }
        ok = buf_append(&b, html + i, at + 1 - i) == HR_OK;
        i = at + 1;
    }
    if (ok && opens) {
        char *tok = tracking_token(key, 'o', message_id, "");
        struct buf out;
        const char *end = NULL;
        /* the pixel goes just before the last </body>, else at the end */
        for (size_t k = b.len; k >= 7; k--)
            if (strncasecmp(b.p + k - 7, "</body>", 7) == 0) {
                end = b.p + k - 7;
                break;
            }
        body_end = end ? (size_t)(end - b.p) : b.len;
        buf_init(&out, TRACK_HTML_MAX);
        ok = buf_append(&out, b.p, body_end) == HR_OK &&
             buf_printf(&out,
                        "<img src=\"%s/t/o/%s\" width=\"1\" height=\"1\" alt=\"\" "
                        "style=\"display:block;width:1px;height:1px;border:0\">",
                        base, tok) == HR_OK &&
             buf_append(&out, b.p + body_end, b.len - body_end) == HR_OK;
        free(tok);
        buf_cleanup(&b);
        b = out;
        changed = true;
    }
    if (!ok || !changed) {
        buf_cleanup(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

/* ---- engine glue --------------------------------------------------------------------- */

int engine_tracking_apply(struct engine *e, const cJSON *tmpl, const char *message_id,
                          struct content *c)
{
    const cJSON *tr = json_obj(tmpl, "tracking");
    bool opens = json_bool(tr, "opens", false), clicks = json_bool(tr, "clicks", false);
    uint8_t key[32];
    char *html;
    int rc;
    if (!tr || (!opens && !clicks) || c->channel != CH_EMAIL || !c->html || !e->track_url)
        return HR_OK;
    rc = tracking_key(e->store, key);
    if (rc < 0) { /* the message goes out untracked rather than not at all */
        LOG_W("tracking.no_key", "message=%s rc=%d msg=\"tracking key unreadable; sent "
                                 "without tracking\"", message_id, rc);
        return HR_OK;
    }
    html = tracking_rewrite_html(c->html, key, e->track_url, message_id, opens, clicks);
    if (html) {
        free(c->html);
        c->html = html;
    }
    return HR_OK;
}


int engine_track_record(struct store_txn *t, char kind, const char *message_id,
                        const char *link, int64_t now)
{
    struct arena *a = arena_new(4096);
    struct message_rec m;
    cJSON *state = NULL, *tr, *h = NULL;
    const char *to = kind == 'c' ? "CLICKED" : "OPENED";
    int64_t clicks = 0, opened = 0;
    bool log = true;
    int rc = store_message_get_txn(t, str_c(message_id), a, &m);
    if (rc < 0)
        goto out;
    state = cJSON_ParseWithLength(m.state.p, m.state.len);
    if (!cJSON_IsObject(state)) {
        cJSON_Delete(state);
        state = cJSON_CreateObject();
    }
    tr = json_obj(state, "tracking");
    if (!tr)
        tr = cJSON_AddObjectToObject(state, "tracking");
    json_i64(tr, "clicks", &clicks);
    if (kind == 'c') {
        log = clicks < TRACK_CLICKS_LOGGED;
        cJSON_DeleteItemFromObjectCaseSensitive(tr, "clicks");
        cJSON_AddNumberToObject(tr, "clicks", (double)(clicks + 1));
        if (!json_member(tr, "clicked"))
            cJSON_AddNumberToObject(tr, "clicked", (double)now);
    } else {
        log = !json_i64(tr, "opened", &opened); /* the first open only */
    }
    if (!json_member(tr, "opened")) /* a click implies an open */
        cJSON_AddNumberToObject(tr, "opened", (double)now);
    m.state = send__json_str(a, state);
    /* one order for receipts and tracking (receipt.h); 0 for statuses off it */
    if (receipt_rank(m.status) > 0 && receipt_rank(str_c(to)) > receipt_rank(m.status))
        m.status = str_c(to);
    m.updated_ms = now;
    rc = store_message_update(t, &m);
    if (rc == HR_OK && log) {
        h = cJSON_CreateObject();
        if (kind == 'c')
            cJSON_AddStringToObject(h, "link", link);
        rc = send__history(t, m.id, now, to, h);
    }
out:
    cJSON_Delete(h);
    cJSON_Delete(state);
    arena_free(a);
    return rc;
}
