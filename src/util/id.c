/* id.c: Courier-style ids. */
#include "id.h"

#include "crypto.h"

#include <stdio.h>

void id_new(int64_t now_ms, char out[ID_LEN + 1])
{
    uint8_t r[12];
    char hex[25];
    crypto_random(r, sizeof r);
    crypto_hex(r, sizeof r, hex);
    snprintf(out, ID_LEN + 1, "1-%08x-%s", (unsigned)(now_ms / 1000), hex);
}

void id_prefixed(const char *prefix, char *out, unsigned cap)
{
    uint8_t r[16];
    char hex[33];
    crypto_random(r, sizeof r);
    crypto_hex(r, sizeof r, hex);
    snprintf(out, cap, "%s%s", prefix, hex);
}
