/* auth.c: API keys on requests. Keys are random tokens ("hk_..." admin, "wk_..." write);
 * the store keeps only their SHA-256. A request's key is hashed, looked up by hash
 * (the index walk compares hashes, which tells an attacker nothing about any key), and
 * the stored hash is then compared in constant time before it is trusted.
 *
 * Valid write keys are remembered (per store, by hash, for API_KEY_CACHE_TTL_MS) so that
 * /v1/batch and /v1/track skip the store lookup: a small direct-mapped table under one
 * mutex. Only positive answers are kept (a new key works at once) and only write keys
 * (an admin key's revocation applies at once). A clear bumps a generation, so a lookup
 * that raced with it does not put back what it read before. */
#include "api.h"

#include "../util/clock.h"
#include "../util/crypto.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define KEY_MAX 256
#define KEY_CACHE_SLOTS 64

struct key_slot {
    const struct store *s; /* NULL: empty */
    uint8_t hash[32];
    struct key_rec rec;
    int64_t expires_mono_ms;
};

static pthread_mutex_t key_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct key_slot key_cache[KEY_CACHE_SLOTS];
static uint64_t key_cache_gen;
static int64_t key_cache_ttl_ms = API_KEY_CACHE_TTL_MS;

void api_key_cache_clear(void)
{
    pthread_mutex_lock(&key_cache_mu);
    memset(key_cache, 0, sizeof key_cache);
    key_cache_gen++;
    pthread_mutex_unlock(&key_cache_mu);
}

void api_key_cache_set_ttl(int64_t ttl_ms)
{
    pthread_mutex_lock(&key_cache_mu);
    key_cache_ttl_ms = ttl_ms;
    memset(key_cache, 0, sizeof key_cache);
    key_cache_gen++;
    pthread_mutex_unlock(&key_cache_mu);
}

/* key_cached: true with *out when s's key with hash h is remembered and fresh; *gen is
 * the generation to hand to key_remember. */
static bool key_cached(const struct store *s, const uint8_t h[32], struct key_rec *out,
                       uint64_t *gen)
{
    bool hit = false;
    int64_t now = time_mono_ms();
    pthread_mutex_lock(&key_cache_mu);
    struct key_slot *k = &key_cache[h[0] % KEY_CACHE_SLOTS];
    *gen = key_cache_gen;
    if (k->s == s && now < k->expires_mono_ms && crypto_ct_equal(k->hash, 32, h, 32)) {
        *out = k->rec;
        hit = true;
    }
    pthread_mutex_unlock(&key_cache_mu);
    return hit;
}

static void key_remember(const struct store *s, const uint8_t h[32], const struct key_rec *rec,
                         uint64_t gen)
{
    int64_t now = time_mono_ms();
    pthread_mutex_lock(&key_cache_mu);
    if (gen == key_cache_gen && key_cache_ttl_ms > 0) {
        struct key_slot *k = &key_cache[h[0] % KEY_CACHE_SLOTS];
        k->s = s;
        memcpy(k->hash, h, 32);
        k->rec = *rec;
        k->expires_mono_ms = now + key_cache_ttl_ms;
    }
    pthread_mutex_unlock(&key_cache_mu);
}

int api_key_check(struct store *s, struct str key, struct key_rec *out)
{
    uint8_t h[32];
    uint64_t gen;
    int rc;
    if (key.len == 0 || key.len > KEY_MAX)
        return HR_PERM;
    crypto_sha256(key.p, key.len, h);
    if (key_cached(s, h, out, &gen))
        return HR_OK;
    rc = store_key_find_by_hash(s, h, out);
    if (rc == HR_NOTFOUND)
        return HR_PERM;
    if (rc < 0)
        return rc;
    if (!crypto_ct_equal(out->hash, sizeof out->hash, h, sizeof h) || out->revoked_ms != 0)
        return HR_PERM;
    if (out->kind == KEY_WRITE)
        key_remember(s, h, out, gen);
    return HR_OK;
}

/* credential: pull the key out of an Authorization header: "Bearer K" or
 * "Basic base64(K[:password])". Returns 0 with the key in buf, or HR_PERM. */
static int credential(const char *hdr, char *buf, size_t cap, struct str *key)
{
    size_t n;
    if (!hdr)
        return HR_PERM;
    while (*hdr == ' ')
        hdr++;
    if (strncasecmp(hdr, "Bearer ", 7) == 0) {
        const char *k = hdr + 7;
        while (*k == ' ')
            k++;
        n = strlen(k);
        while (n && k[n - 1] == ' ')
            n--;
        if (n == 0 || n >= cap)
            return HR_PERM;
        memcpy(buf, k, n);
        buf[n] = '\0';
        *key = (struct str){buf, n};
        return HR_OK;
    }
    if (strncasecmp(hdr, "Basic ", 6) == 0) {
        const char *b = hdr + 6;
        size_t len, blen;
        while (*b == ' ')
            b++;
        blen = strlen(b);
        while (blen && b[blen - 1] == ' ')
            blen--;
        if (blen == 0 || blen > 4 * (cap / 3))
            return HR_PERM;
        if (crypto_b64_decode((struct str){b, blen}, (uint8_t *)buf, cap - 1, &len) < 0)
            return HR_PERM;
        buf[len] = '\0';
        /* the user part is the key; a trailing ":" (empty password) is optional */
        char *colon = memchr(buf, ':', len);
        if (colon)
            len = (size_t)(colon - buf);
        if (len == 0)
            return HR_PERM;
        *key = (struct str){buf, len};
        return HR_OK;
    }
    return HR_PERM;
}

int api_authenticate(void *vctx, struct http_req *req, char *msg)
{
    struct api_ctx *ctx = vctx;
    char buf[KEY_MAX + 8];
    struct str key;
    struct key_rec k;
    int want = req->route->auth == AUTH_WRITE ? KEY_WRITE : KEY_ADMIN;
    const char *hdr = http_req_header(req, "Authorization");
    int rc;
    if (!hdr && want == KEY_WRITE) {
        req->auth.kind = 0; /* deferred: the handler checks writeKey in the body */
        return HR_OK;
    }
    rc = credential(hdr, buf, sizeof buf, &key);
    if (rc < 0) {
        snprintf(msg, 256, "%s", http_req_header(req, "Authorization")
                                     ? "unsupported Authorization header; use Bearer <api key>"
                                     : "missing Authorization header; use Bearer <api key>");
        return HR_PERM;
    }
    rc = api_key_check(ctx->store, key, &k);
    if (rc == HR_PERM) {
        snprintf(msg, 256, "invalid or revoked API key");
        return HR_PERM;
    }
    if (rc < 0) {
        snprintf(msg, 256, "could not check the API key: %s", hr_rc_str(rc));
        return rc;
    }
    if (k.kind != want) {
        snprintf(msg, 256, "this key is %s key; the route needs %s key",
                 k.kind == KEY_WRITE ? "a write" : "an admin",
                 want == KEY_WRITE ? "a write" : "an admin");
        return HR_CONFLICT;
    }
    req->auth.kind = k.kind;
    req->auth.key_id = k.id;
    req->auth.scope = k.scope;
    return HR_OK;
}
