/* crypto.c: wrappers over OpenSSL libcrypto. */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void rand_fill(void *out, size_t n)
{
    if (RAND_bytes(out, (int)n) != 1) {
        fprintf(stderr, "herald: RAND_bytes failed\n");
        abort();
    }
}

/* A per-thread pool of random bytes for small requests (a lease token, an id): one
 * RAND_bytes call per RAND_POOL bytes instead of one per request. OpenSSL 3's RAND_bytes
 * costs microseconds a call, and the store writer's lease tokens alone were 2.5 % of its
 * time in the flow profile. Each byte is handed out once and wiped from the pool. herald
 * never forks, so no two processes share a pool. */
#define RAND_POOL 1024
#define RAND_POOL_MAX_REQ 64 /* larger requests go to RAND_bytes directly */

static _Thread_local struct {
    unsigned char b[RAND_POOL];
    size_t left; /* the unused bytes are the last `left` of b */
} tl_rand;

void crypto_random(void *out, size_t n)
{
    unsigned char *src;
    if (n > RAND_POOL_MAX_REQ) {
        rand_fill(out, n);
        return;
    }
    if (tl_rand.left < n) {
        rand_fill(tl_rand.b, RAND_POOL);
        tl_rand.left = RAND_POOL;
    }
    src = tl_rand.b + (RAND_POOL - tl_rand.left);
    memcpy(out, src, n);
    OPENSSL_cleanse(src, n);
    tl_rand.left -= n;
}

/* SHA-256 with the algorithm fetched once and a context per thread. OpenSSL 3's SHA256()
 * fetches the algorithm (a lock on the provider store) and allocates, zeroes and frees a
 * context at every call: with a request per connection thread hashing its API key, that
 * was 3 % of herald's samples under the /v1/track bench. A thread's context is freed when
 * the thread ends (a connection's thread does). */
static EVP_MD *g_sha256;
static pthread_key_t g_sha_ctx_key;
static pthread_once_t g_sha_once = PTHREAD_ONCE_INIT;

static void sha_ctx_free(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void sha_init(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!g_sha256 || pthread_key_create(&g_sha_ctx_key, sha_ctx_free) != 0) {
        fprintf(stderr, "herald: cannot set up SHA-256\n");
        abort();
    }
}

void crypto_sha256(const void *p, size_t n, uint8_t out[32])
{
    EVP_MD_CTX *ctx;
    unsigned int len = 32;
    pthread_once(&g_sha_once, sha_init);
    ctx = pthread_getspecific(g_sha_ctx_key);
    if (!ctx) {
        ctx = EVP_MD_CTX_new();
        if (!ctx || pthread_setspecific(g_sha_ctx_key, ctx) != 0) {
            fprintf(stderr, "herald: out of memory for a SHA-256 context\n");
            abort();
        }
    }
    if (EVP_DigestInit_ex(ctx, g_sha256, NULL) != 1 || EVP_DigestUpdate(ctx, p, n) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1) {
        fprintf(stderr, "herald: SHA-256 failed\n");
        abort();
    }
}

void crypto_hmac_sha256(struct str key, const void *p, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key.p ? key.p : "", (int)key.len, p, n, out, &len);
}

void crypto_hmac_sha1(struct str key, const void *p, size_t n, uint8_t out[20])
{
    unsigned int len = 20;
    HMAC(EVP_sha1(), key.p ? key.p : "", (int)key.len, p, n, out, &len);
}

bool crypto_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return false;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

void crypto_hex(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t crypto_b64_encode(const void *p, size_t n, char *out, size_t cap)
{
    size_t need = 4 * ((n + 2) / 3) + 1;
    if (cap < need) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    return (size_t)EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int crypto_b64_decode(struct str in, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t n = in.len, o = 0;
    uint32_t acc = 0;
    int bits = 0;
    while (n > 0 && in.p[n - 1] == '=')
        n--;
    if (in.len - n > 2)
        return HR_INVAL;
    for (size_t i = 0; i < n; i++) {
        int v = b64v((unsigned char)in.p[i]);
        if (v < 0)
            return HR_INVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return HR_INVAL;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *outlen = o;
    return HR_OK;
}

void crypto_token(char *out, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint8_t r[64];
    size_t i = 0;
    while (i < n) {
        crypto_random(r, sizeof r);
        for (size_t k = 0; k < sizeof r && i < n; k++)
            if (r[k] < 248) /* 248 = 4*62: unbiased */
                out[i++] = al[r[k] % 62];
    }
    out[n] = '\0';
}
