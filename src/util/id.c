/* id.c: Courier-style ids. */
#include "id.h"

#include "crypto.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* fmt: "1-<8 hex seconds>-<3 hex ms><21 hex>" of at_ms and hex21 into out */
static void fmt(int64_t at_ms, const char *hex21, char out[ID_LEN + 1])
{
    if (at_ms < 0)
        at_ms = 0;
    snprintf(out, ID_LEN + 1, "1-%08x-%03x%.21s", (unsigned)(at_ms / 1000),
             (unsigned)(at_ms % 1000), hex21);
}

void id_new(int64_t now_ms, char out[ID_LEN + 1])
{
    uint8_t r[11];
    char hex[23];
    crypto_random(r, sizeof r);
    crypto_hex(r, sizeof r, hex);
    fmt(now_ms, hex, out);
}

/* seed_hex: SHA-256(seed) in hex into hex (65 bytes) */
static void seed_hex(const char *seed, char hex[65])
{
    uint8_t dig[32];
    crypto_sha256(seed, strlen(seed), dig);
    crypto_hex(dig, sizeof dig, hex);
}

void id_derive(const char *seed, int64_t at_ms, char out[ID_LEN + 1])
{
    char hex[65];
    seed_hex(seed, hex);
    fmt(at_ms, hex, out); /* its first 21 digits */
}

void id_derive_hashed(const char *seed, char out[ID_LEN + 1])
{
    char hex[65];
    seed_hex(seed, hex);
    snprintf(out, ID_LEN + 1, "1-%.8s-%.24s", hex, hex + 8);
}

/* hex_at: n lowercase hex digits of s as a number into *v; false at any other char
 * (the string's NUL included, so s may be shorter than n) */
static bool hex_at(const char *s, int n, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        *v = *v << 4 | d;
    }
    return true;
}

int64_t id_time_ms(const char *id)
{
    uint32_t secs, ms;
    if (!id || id[0] != '1' || id[1] != '-' || !hex_at(id + 2, 8, &secs) || id[10] != '-')
        return 0; /* id[10] is read only once 8 digits were: it is in the string */
    if (!hex_at(id + 11, 3, &ms) || ms > 999)
        ms = 0;
    return (int64_t)secs * 1000 + ms;
}

void id_prefixed(const char *prefix, char *out, unsigned cap)
{
    uint8_t r[16];
    char hex[33];
    crypto_random(r, sizeof r);
    crypto_hex(r, sizeof r, hex);
    snprintf(out, cap, "%s%s", prefix, hex);
}
