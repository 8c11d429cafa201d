/* id.c: Courier-style ids. */
#include "id.h"

#include "crypto.h"

#include <stdio.h>
#include <string.h>

void id_new(int64_t now_ms, char out[ID_LEN + 1])
{
    uint8_t r[12];
    char hex[25];
    crypto_random(r, sizeof r);
    crypto_hex(r, sizeof r, hex);
    snprintf(out, ID_LEN + 1, "1-%08x-%s", (unsigned)(now_ms / 1000), hex);
}

void id_derive(const char *seed, uint32_t secs, char out[ID_LEN + 1])
{
    uint8_t dig[32];
    char hex[65];
    crypto_sha256(seed, strlen(seed), dig);
    crypto_hex(dig, 12, hex);
    snprintf(out, ID_LEN + 1, "1-%08x-%.24s", (unsigned)secs, hex);
}

uint32_t id_secs(const char *id)
{
    uint32_t v = 0;
    if (!id || id[0] != '1' || id[1] != '-')
        return 0;
    for (int i = 2; i < 10; i++) {
        char c = id[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return 0;
        v = v << 4 | d;
    }
    return id[10] == '-' ? v : 0; /* 8 digits were read: id[10] is in the string */
}

void id_prefixed(const char *prefix, char *out, unsigned cap)
{
    uint8_t r[16];
    char hex[33];
    crypto_random(r, sizeof r);
    crypto_hex(r, sizeof r, hex);
    snprintf(out, cap, "%s%s", prefix, hex);
}
