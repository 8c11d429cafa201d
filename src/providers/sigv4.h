/* sigv4.h: AWS Signature Version 4 (header form) for the providers that call AWS (SES):
 * the canonical request, the string to sign, the signing key and the Authorization
 * header value, over util/crypto (OpenSSL libcrypto HMAC-SHA256 / SHA-256).
 *
 * Algorithm: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 * Checked against AWS's published test suite (tests/unit/providers/sigv4/).
 *
 * What it does not do: the S3 variants (UNSIGNED-PAYLOAD, no path double-encoding),
 * presigned URLs, chunked payloads, dot-segment removal in paths. The caller passes
 * every header it wants signed (host and x-amz-date included) and sends those exact
 * values. Pure functions; any thread. */
#ifndef HERALD_PROVIDERS_SIGV4_H
#define HERALD_PROVIDERS_SIGV4_H

#include "../util/buf.h"
#include "../util/rc.h"
#include "../util/str.h"

#include <stddef.h>
#include <stdint.h>

#define SIGV4_MAX_HEADERS 16 /* headers one request may sign */

struct sigv4_header {
    const char *name;  /* any case; signed lowercased */
    const char *value; /* signed trimmed, inner runs of spaces collapsed */
};

struct sigv4_req {
    const char *method;   /* "GET", "POST", ... */
    const char *path;     /* the request path as sent ("/v2/email/outbound-emails"); "" = "/" */
    const char *query;    /* the raw query without '?', or NULL */
    const struct sigv4_header *headers; /* the headers to sign (host, x-amz-date, ...) */
    size_t nheaders;      /* <= SIGV4_MAX_HEADERS */
    struct str payload;   /* the body exactly as sent */
};

struct sigv4_cred {
    const char *access_key_id;
    const char *secret_access_key;
    const char *region;   /* "us-east-1" */
    const char *service;  /* "ses" */
};

/* sigv4_amz_date: now_ms (Unix ms, UTC) as the ISO 8601 basic form AWS signs,
 * "20150830T123600Z", into out. */
void sigv4_amz_date(int64_t now_ms, char out[17]);

/* sigv4_canonical_request: the canonical request of req appended to out (method, URI,
 * sorted query, sorted lowercase headers, signed header list, hex SHA-256 of the
 * payload, '\n' between). HR_INVAL when req has too many headers or a header without a
 * name; HR_TOOBIG when out's cap is reached. */
int sigv4_canonical_request(const struct sigv4_req *req, struct buf *out) HR_MUSTCHECK;

/* sigv4_string_to_sign: "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(creq)>"
 * appended to out, scope being <yyyymmdd>/<region>/<service>/aws4_request. */
int sigv4_string_to_sign(const char *amz_date, const struct sigv4_cred *cred,
                         struct str canonical_request, struct buf *out) HR_MUSTCHECK;

/* sigv4_authorization: sign req as of amz_date ("20150830T123600Z", the same value the
 * request's x-amz-date header carries) and append the Authorization header value
 * "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=<64 hex>" to out.
 * Returns HR_OK or the error of sigv4_canonical_request / the buffer. */
int sigv4_authorization(const struct sigv4_req *req, const struct sigv4_cred *cred,
                        const char *amz_date, struct buf *out) HR_MUSTCHECK;

#endif
