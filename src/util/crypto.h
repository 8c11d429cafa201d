/* crypto.h: the few primitives herald needs, over OpenSSL libcrypto: random bytes,
 * SHA-256, HMAC (SHA-1 for Segment signatures, SHA-256 for webhooks), constant-time
 * comparison, hex and base64. */
#ifndef HERALD_UTIL_CRYPTO_H
#define HERALD_UTIL_CRYPTO_H

#include "rc.h"
#include "str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* crypto_random: fill out with n cryptographically random bytes; aborts on failure. */
void crypto_random(void *out, size_t n);
void crypto_sha256(const void *p, size_t n, uint8_t out[32]);
void crypto_hmac_sha256(struct str key, const void *p, size_t n, uint8_t out[32]);
void crypto_hmac_sha1(struct str key, const void *p, size_t n, uint8_t out[20]);
/* crypto_ct_equal: constant-time equality of two equal-length byte strings; false when
 * lengths differ (the length itself is not secret). */
bool crypto_ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* crypto_hex: lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void crypto_hex(const uint8_t *p, size_t n, char *out);
/* crypto_b64_encode: standard base64 of p into out (cap >= 4*((n+2)/3)+1); returns length. */
size_t crypto_b64_encode(const void *p, size_t n, char *out, size_t cap);
/* crypto_b64_decode: decode standard base64 (padding optional, no whitespace) into out
 * (cap >= 3*len/4+3); returns 0 with *outlen, or HR_INVAL. */
int crypto_b64_decode(struct str in, uint8_t *out, size_t cap, size_t *outlen);
/* crypto_token: a random token of n characters from [A-Za-z0-9] into out (n+1 bytes). */
void crypto_token(char *out, size_t n);

#endif
