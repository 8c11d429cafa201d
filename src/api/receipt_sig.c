/* receipt_sig.c: the providers' receipt signatures (see receipt_sig.h for the docs each
 * check follows). OpenSSL libcrypto for ECDSA and RSA; HMACs through util/crypto. */
#include "receipt_sig.h"

#include "../util/arena.h"
#include "../util/buf.h"
#include "../util/crypto.h"
#include "../util/json.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SIG_MAX 1024   /* decoded signature bytes */
#define KEY_MAX 4096   /* decoded key bytes */

bool receipt_ts_fresh(const char *ts, int64_t now_ms, int64_t tolerance_s)
{
    int64_t v, now = now_ms / 1000;
    if (!ts || str_to_i64(str_c(ts), &v) < 0)
        return false;
    return v >= now - tolerance_s && v <= now + tolerance_s;
}

/* b64: decode s (whitespace dropped) into out; 0 or HR_INVAL. */
static int b64(const char *s, uint8_t *out, size_t cap, size_t *n)
{
    char tmp[KEY_MAX * 2];
    size_t k = 0;
    for (; s && *s; s++) {
        if (isspace((unsigned char)*s))
            continue;
        if (k + 1 >= sizeof tmp)
            return HR_INVAL;
        tmp[k++] = *s;
    }
    if (k == 0 || cap < 3 * k / 4 + 3)
        return HR_INVAL;
    return crypto_b64_decode((struct str){tmp, k}, out, cap, n);
}

/* verify: EVP signature check of data with key; HR_OK or HR_PERM. */
static int verify(EVP_PKEY *key, const EVP_MD *md, const void *data, size_t n, const uint8_t *sig,
                  size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, data, n) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? HR_OK : HR_PERM;
}

int receipt_sig_sendgrid(const char *public_key, const char *sig_b64, const char *ts,
                         struct str body)
{
    uint8_t der[KEY_MAX], sig[SIG_MAX];
    size_t der_len = 0, sig_len = 0;
    const unsigned char *p = der;
    EVP_PKEY *key = NULL;
    struct buf data;
    char pk[KEY_MAX];
    const char *k = public_key;
    int rc = HR_OK;

    buf_init(&data, body.len + 64);
    if (!public_key || !public_key[0]) {
        rc = HR_INVAL;
        goto out;
    }
    if (strstr(public_key, "-----BEGIN")) { /* PEM: keep the base64 between the lines */
        const char *b = strchr(strstr(public_key, "-----BEGIN") + 10, '\n');
        const char *e = strstr(public_key, "-----END");
        size_t n = b && e && e > b ? (size_t)(e - b) : 0;
        if (n == 0 || n >= sizeof pk) {
            rc = HR_INVAL;
            goto out;
        }
        memcpy(pk, b, n);
        pk[n] = '\0';
        k = pk;
    }
    if (b64(k, der, sizeof der, &der_len) < 0 ||
        !(key = d2i_PUBKEY(NULL, &p, (long)der_len)) || EVP_PKEY_base_id(key) != EVP_PKEY_EC) {
        rc = HR_INVAL;
        goto out;
    }
    if (!sig_b64 || !ts || b64(sig_b64, sig, sizeof sig, &sig_len) < 0 ||
        buf_append_c(&data, ts) < 0 || buf_append_str(&data, body) < 0) {
        rc = HR_PERM;
        goto out;
    }
    rc = verify(key, EVP_sha256(), data.p, data.len, sig, sig_len);
out:
    EVP_PKEY_free(key);
    buf_cleanup(&data);
    return rc;
}

struct kv {
    const char *name, *value;
};

static int kv_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

int receipt_sig_twilio(const char *auth_token, const char *url, const char *const *names,
                       const char *const *values, size_t n, const char *sig_b64)
{
    struct kv kvs[RECEIPT_FORM_MAX];
    struct buf data;
    uint8_t mac[20];
    char want[64];
    int rc = HR_PERM;
    if (!auth_token || !auth_token[0] || !url || !url[0])
        return HR_INVAL;
    if (!sig_b64 || n > RECEIPT_FORM_MAX)
        return HR_PERM;
    for (size_t i = 0; i < n; i++)
        kvs[i] = (struct kv){names[i], values[i]};
    qsort(kvs, n, sizeof *kvs, kv_cmp);
    buf_init(&data, 1 << 20);
    if (buf_append_c(&data, url) < 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (buf_append_c(&data, kvs[i].name) < 0 || buf_append_c(&data, kvs[i].value) < 0)
            goto out;
    crypto_hmac_sha1(str_c(auth_token), data.p, data.len, mac);
    crypto_b64_encode(mac, sizeof mac, want, sizeof want);
    rc = crypto_ct_equal(want, strlen(want), sig_b64, strlen(sig_b64)) ? HR_OK : HR_PERM;
out:
    buf_cleanup(&data);
    return rc;
}

int receipt_sig_svix(const char *secret, const char *id, const char *ts, struct str body,
                     const char *sig_header)
{
    uint8_t key[KEY_MAX], mac[32];
    size_t key_len = 0;
    char want[64];
    struct buf data;
    const char *s;
    int rc = HR_PERM;
    if (!secret || strncmp(secret, "whsec_", 6) != 0 ||
        b64(secret + 6, key, sizeof key, &key_len) < 0)
        return HR_INVAL;
    if (!id || !ts || !sig_header || !id[0] || !ts[0])
        return HR_PERM;
    buf_init(&data, body.len + 512);
    if (buf_printf(&data, "%s.%s.", id, ts) < 0 || buf_append_str(&data, body) < 0)
        goto out;
    crypto_hmac_sha256((struct str){(const char *)key, key_len}, data.p, data.len, mac);
    crypto_b64_encode(mac, sizeof mac, want, sizeof want);
    for (s = sig_header; *s;) {
        const char *e;
        while (*s == ' ')
            s++;
        e = s;
        while (*e && *e != ' ')
            e++;
        if (e - s > 3 && strncmp(s, "v1,", 3) == 0 &&
            crypto_ct_equal(want, strlen(want), s + 3, (size_t)(e - s - 3))) {
            rc = HR_OK;
            break;
        }
        s = e;
    }
out:
    buf_cleanup(&data);
    return rc;
}

int receipt_sig_mailgun(const char *signing_key, const char *ts, const char *token,
                        const char *sig_hex)
{
    uint8_t mac[32];
    char want[65];
    struct buf data;
    int rc = HR_PERM;
    if (!signing_key || !signing_key[0])
        return HR_INVAL;
    if (!ts || !token || !sig_hex || !token[0])
        return HR_PERM;
    buf_init(&data, 4096);
    if (buf_append_c(&data, ts) < 0 || buf_append_c(&data, token) < 0)
        goto out;
    crypto_hmac_sha256(str_c(signing_key), data.p, data.len, mac);
    crypto_hex(mac, sizeof mac, want);
    rc = strlen(sig_hex) == 64 && crypto_ct_equal(want, 64, sig_hex, 64) ? HR_OK : HR_PERM;
out:
    buf_cleanup(&data);
    return rc;
}

int receipt_sig_basic(const char *auth_header, const char *user, const char *password)
{
    char want[1024], got[1024];
    size_t got_len = 0;
    int n;
    if (!user || !password || !user[0] || !password[0])
        return HR_INVAL;
    if (!auth_header || strncasecmp(auth_header, "Basic ", 6) != 0)
        return HR_PERM;
    n = snprintf(want, sizeof want, "%s:%s", user, password);
    if (n < 0 || (size_t)n >= sizeof want)
        return HR_INVAL;
    if (b64(auth_header + 6, (uint8_t *)got, sizeof got - 1, &got_len) < 0)
        return HR_PERM;
    return crypto_ct_equal(want, (size_t)n, got, got_len) ? HR_OK : HR_PERM;
}

int receipt_sns_string_to_sign(const cJSON *msg, char **out)
{
    static const char *const notif[] = {"Message", "MessageId", "Subject", "Timestamp",
                                        "TopicArn", "Type", NULL};
    static const char *const sub[] = {"Message", "MessageId", "SubscribeURL", "Timestamp",
                                      "Token", "TopicArn", "Type", NULL};
    const char *type = json_str(msg, "Type");
    const char *const *keys;
    struct buf b;
    int rc = HR_OK;
    *out = NULL;
    if (!type)
        return HR_PERM;
    keys = strcmp(type, "Notification") == 0 ? notif : sub;
    buf_init(&b, 1 << 20);
    for (int i = 0; keys[i]; i++) {
        const char *v = json_str(msg, keys[i]);
        if (!v) {
            if (strcmp(keys[i], "Subject") == 0)
                continue;
            rc = HR_PERM;
            goto out;
        }
        if (buf_printf(&b, "%s\n", keys[i]) < 0 || buf_append_c(&b, v) < 0 ||
            buf_putc(&b, '\n') < 0) {
            rc = HR_PERM;
            goto out;
        }
    }
    *out = buf_steal(&b, NULL);
out:
    buf_cleanup(&b);
    return rc;
}

int receipt_sig_sns(const cJSON *msg, const char *cert_pem, size_t cert_len)
{
    const char *ver = json_str(msg, "SignatureVersion"), *sig_b64 = json_str(msg, "Signature");
    uint8_t sig[SIG_MAX];
    size_t sig_len = 0;
    char *sts = NULL;
    BIO *bio = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    const EVP_MD *md;
    int rc;

    if (!ver || (strcmp(ver, "1") && strcmp(ver, "2")) || !sig_b64 ||
        b64(sig_b64, sig, sizeof sig, &sig_len) < 0) {
        rc = HR_PERM;
        goto out;
    }
    md = strcmp(ver, "1") == 0 ? EVP_sha1() : EVP_sha256();
    if ((rc = receipt_sns_string_to_sign(msg, &sts)) < 0)
        goto out;
    bio = BIO_new_mem_buf(cert_pem, (int)cert_len);
    if (!bio || !(cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) ||
        !(key = X509_get_pubkey(cert))) {
        rc = HR_PERM;
        goto out;
    }
    rc = verify(key, md, sts, strlen(sts), sig, sig_len);
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    BIO_free(bio);
    free(sts);
    return rc;
}

bool receipt_sns_url_ok(const char *url, const char *allow_prefix, bool cert)
{
    const char *host, *p;
    size_t n;
    if (!url)
        return false;
    if (strpbrk(url, " \t\r\n\\@"))
        return false;
    if (allow_prefix && allow_prefix[0])
        return strncmp(url, allow_prefix, strlen(allow_prefix)) == 0;
    if (strncmp(url, "https://sns.", 12) != 0)
        return false;
    host = url + 12;
    for (p = host; *p && *p != '.'; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
            return false;
    if (p == host || strncmp(p, ".amazonaws.com/", 15) != 0)
        return false;
    if (!cert)
        return true;
    n = strlen(p);
    return n > 4 + 15 && strcmp(p + n - 4, ".pem") == 0 && !strchr(p, '?');
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* decode: percent-decoding of s[0..n) into a ('+' is a space); NULL when malformed. */
static const char *decode(struct arena *a, const char *s, size_t n)
{
    char *o = arena_alloc(a, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            o[k++] = ' ';
        } else if (s[i] == '%') {
            int h, l;
            if (i + 2 >= n)
                return NULL;
            h = hexval(s[i + 1]);
            l = hexval(s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return NULL;
            o[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
    return o;
}

int receipt_form_parse(struct str body, struct arena *a, const char **names, const char **values,
                       size_t max)
{
    size_t n = 0, i = 0;
    while (i < body.len) {
        size_t j = i, eq;
        while (j < body.len && body.p[j] != '&')
            j++;
        if (j > i) {
            if (n == max)
                return HR_INVAL;
            for (eq = i; eq < j && body.p[eq] != '='; eq++)
                ;
            names[n] = decode(a, body.p + i, eq - i);
            values[n] = eq < j ? decode(a, body.p + eq + 1, j - eq - 1) : "";
            if (!names[n] || !values[n])
                return HR_INVAL;
            n++;
        }
        i = j + 1;
    }
    return (int)n;
}
