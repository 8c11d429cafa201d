/* sigv4.c: AWS Signature Version 4, header form (see sigv4.h):
 *   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n
 *                      SignedHeaders \n hex(SHA256(payload))
 *   StringToSign     = "AWS4-HMAC-SHA256" \n AmzDate \n Scope \n hex(SHA256(CanonicalRequest))
 *   SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, yyyymmdd), region), service),
 *                           "aws4_request")
 *   Signature        = hex(HMAC(SigningKey, StringToSign))
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html */
#include "sigv4.h"

#include "../util/crypto.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIGV4_ALGO "AWS4-HMAC-SHA256"

void sigv4_amz_date(int64_t now_ms, char out[17])
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        memcpy(out, "19700101T000000Z", 17);
}

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* uri_encode: p[0..n) percent-decoded ("%41" -> 'A'; '+' kept), then re-encoded the AWS
 * way: unreserved bytes as they are, '/' too when keep_slash, every other byte as %XX
 * (uppercase hex). Appended to out. */
static int uri_encode(struct buf *out, const char *p, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = HR_OK;
    for (size_t i = 0; i < n && rc == HR_OK; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%' && i + 2 < n && isxdigit((unsigned char)p[i + 1]) &&
            isxdigit((unsigned char)p[i + 2])) {
            char h[3] = {p[i + 1], p[i + 2], '\0'};
            c = (unsigned char)strtoul(h, NULL, 16);
            i += 2;
        }
        if (unreserved(c) || (keep_slash && c == '/')) {
            rc = buf_putc(out, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = buf_append(out, e, 3);
        }
    }
    return rc;
}

/* One query parameter as it appears in the raw query (not yet encoded). */
struct qparam {
    const char *k, *v;
    size_t klen, vlen;
};

/* qparam_cmp: by encoded key, then encoded value; the raw forms of the vectors and of
 * what herald sends hold no escapes that would change the order, so compare bytes. */
static int qparam_cmp(const struct qparam *a, const struct qparam *b)
{
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->k, b->k, n);
    if (c == 0 && a->klen != b->klen)
        return a->klen < b->klen ? -1 : 1;
    if (c != 0)
        return c;
    n = a->vlen < b->vlen ? a->vlen : b->vlen;
    c = memcmp(a->v, b->v, n);
    if (c == 0 && a->vlen != b->vlen)
        return a->vlen < b->vlen ? -1 : 1;
    return c;
}

#define SIGV4_MAX_QUERY 64

/* canonical_query: the sorted, encoded "k=v&k=v" form of a raw query. */
static int canonical_query(const char *q, struct buf *out)
{
    struct qparam ps[SIGV4_MAX_QUERY];
    size_t n = 0;
    int rc = HR_OK;
    while (q && *q) {
        size_t len = strcspn(q, "&");
        if (len > 0) {
            const char *eq = memchr(q, '=', len);
            struct qparam p = {q, eq ? eq + 1 : q + len, eq ? (size_t)(eq - q) : len,
                               eq ? len - (size_t)(eq - q) - 1 : 0};
            size_t j = n;
            if (n == SIGV4_MAX_QUERY)
                return HR_INVAL;
            while (j > 0 && qparam_cmp(&ps[j - 1], &p) > 0) { /* insertion: stable */
                ps[j] = ps[j - 1];
                j--;
            }
            ps[j] = p;
            n++;
        }
        q += len + (q[len] == '&');
    }
    for (size_t i = 0; i < n && rc == HR_OK; i++) {
        if (i > 0)
            rc = buf_putc(out, '&');
        if (rc == HR_OK)
            rc = uri_encode(out, ps[i].k, ps[i].klen, false);
        if (rc == HR_OK)
            rc = buf_putc(out, '=');
        if (rc == HR_OK)
            rc = uri_encode(out, ps[i].v, ps[i].vlen, false);
    }
    return rc;
}

/* name_cmp: header names compared case-insensitively (they are signed lowercased). */
static int name_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int x = tolower((unsigned char)*a), y = tolower((unsigned char)*b);
        if (x != y || x == 0)
            return x - y;
    }
}

/* append_lower: name lowercased. */
static int append_lower(struct buf *out, const char *name)
{
    int rc = HR_OK;
    for (const char *p = name; *p && rc == HR_OK; p++)
        rc = buf_putc(out, (char)tolower((unsigned char)*p));
    return rc;
}

/* append_value: value trimmed, inner runs of spaces and tabs as one space. */
static int append_value(struct buf *out, const char *v)
{
    int rc = HR_OK;
    bool space = false, started = false;
    for (const char *p = v; *p && rc == HR_OK; p++) {
        if (*p == ' ' || *p == '\t') {
            space = started;
            continue;
        }
        if (space)
            rc = buf_putc(out, ' ');
        if (rc == HR_OK)
            rc = buf_putc(out, *p);
        space = false;
        started = true;
    }
    return rc;
}

/* sorted_headers: indexes of req's headers sorted by name (stable: repeated names keep
 * their order, as their values are joined with ',' in that order). */
static int sorted_headers(const struct sigv4_req *req, size_t idx[SIGV4_MAX_HEADERS])
{
    if (req->nheaders > SIGV4_MAX_HEADERS)
        return HR_INVAL;
    for (size_t i = 0; i < req->nheaders; i++) {
        size_t j = i;
        if (!req->headers[i].name || !req->headers[i].name[0] || !req->headers[i].value)
            return HR_INVAL;
        while (j > 0 && name_cmp(req->headers[idx[j - 1]].name, req->headers[i].name) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return HR_OK;
}

/* signed_headers: "a;b;c" (each name once) appended to out. */
static int signed_headers(const struct sigv4_req *req, const size_t *idx, struct buf *out)
{
    int rc = HR_OK;
    for (size_t i = 0; i < req->nheaders && rc == HR_OK; i++) {
        const char *name = req->headers[idx[i]].name;
        if (i > 0 && name_cmp(req->headers[idx[i - 1]].name, name) == 0)
            continue;
        if (i > 0)
            rc = buf_putc(out, ';');
        if (rc == HR_OK)
            rc = append_lower(out, name);
    }
    return rc;
}

int sigv4_canonical_request(const struct sigv4_req *req, struct buf *out)
{
    size_t idx[SIGV4_MAX_HEADERS];
    uint8_t hash[32];
    char hex[65];
    const char *path = req->path && req->path[0] ? req->path : "/";
    int rc = sorted_headers(req, idx);

    if (rc == HR_OK)
        rc = buf_printf(out, "%s\n", req->method ? req->method : "POST");
    if (rc == HR_OK)
        rc = uri_encode(out, path, strlen(path), true);
    if (rc == HR_OK)
        rc = buf_putc(out, '\n');
    if (rc == HR_OK)
        rc = canonical_query(req->query, out);
    if (rc == HR_OK)
        rc = buf_putc(out, '\n');
    for (size_t i = 0; i < req->nheaders && rc == HR_OK; i++) {
        const struct sigv4_header *h = &req->headers[idx[i]];
        bool same = i > 0 && name_cmp(req->headers[idx[i - 1]].name, h->name) == 0;
        bool last = i + 1 == req->nheaders ||
                    name_cmp(req->headers[idx[i + 1]].name, h->name) != 0;
        if (same) {
            rc = buf_putc(out, ',');
        } else {
            rc = append_lower(out, h->name);
            if (rc == HR_OK)
                rc = buf_putc(out, ':');
        }
        if (rc == HR_OK)
            rc = append_value(out, h->value);
        if (rc == HR_OK && last)
            rc = buf_putc(out, '\n');
    }
    if (rc == HR_OK)
        rc = buf_putc(out, '\n');
    if (rc == HR_OK)
        rc = signed_headers(req, idx, out);
    crypto_sha256(req->payload.p ? req->payload.p : "", req->payload.len, hash);
    crypto_hex(hash, sizeof hash, hex);
    if (rc == HR_OK)
        rc = buf_printf(out, "\n%s", hex);
    return rc;
}

int sigv4_string_to_sign(const char *amz_date, const struct sigv4_cred *cred,
                         struct str canonical_request, struct buf *out)
{
    uint8_t hash[32];
    char hex[65];
    crypto_sha256(canonical_request.p ? canonical_request.p : "", canonical_request.len, hash);
    crypto_hex(hash, sizeof hash, hex);
    return buf_printf(out, SIGV4_ALGO "\n%s\n%.8s/%s/%s/aws4_request\n%s", amz_date, amz_date,
                      cred->region, cred->service, hex);
}

/* signing_key: the derived key for the date (yyyymmdd, first 8 of amz_date), region and
 * service. */
static void signing_key(const struct sigv4_cred *cred, const char *amz_date, uint8_t key[32])
{
    struct buf k0;
    uint8_t a[32], b[32];
    buf_init(&k0, 4096);
    if (buf_printf(&k0, "AWS4%s", cred->secret_access_key) != HR_OK)
        buf_reset(&k0); /* a secret over 4 KB: signs with a key AWS will refuse */
    crypto_hmac_sha256(buf_str(&k0), amz_date, strnlen(amz_date, 8), a);
    crypto_hmac_sha256((struct str){(const char *)a, 32}, cred->region, strlen(cred->region), b);
    crypto_hmac_sha256((struct str){(const char *)b, 32}, cred->service, strlen(cred->service),
                       a);
    crypto_hmac_sha256((struct str){(const char *)a, 32}, "aws4_request", 12, key);
    buf_cleanup(&k0);
}

int sigv4_authorization(const struct sigv4_req *req, const struct sigv4_cred *cred,
                        const char *amz_date, struct buf *out)
{
    struct buf creq, sts;
    size_t idx[SIGV4_MAX_HEADERS];
    uint8_t key[32], sig[32];
    char hex[65];
    int rc;

    buf_init(&creq, (size_t)64 << 10);
    buf_init(&sts, 4096);
    rc = sigv4_canonical_request(req, &creq);
    if (rc == HR_OK)
        rc = sigv4_string_to_sign(amz_date, cred, buf_str(&creq), &sts);
    if (rc == HR_OK)
        rc = sorted_headers(req, idx);
    if (rc != HR_OK)
        goto out;
    signing_key(cred, amz_date, key);
    crypto_hmac_sha256((struct str){(const char *)key, 32}, sts.p, sts.len, sig);
    crypto_hex(sig, sizeof sig, hex);
    rc = buf_printf(out, SIGV4_ALGO " Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=",
                    cred->access_key_id, amz_date, cred->region, cred->service);
    if (rc == HR_OK)
        rc = signed_headers(req, idx, out);
    if (rc == HR_OK)
        rc = buf_printf(out, ", Signature=%s", hex);

out:
    buf_cleanup(&creq);
    buf_cleanup(&sts);
    return rc;
}
