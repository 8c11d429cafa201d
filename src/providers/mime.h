/* mime.h: building one RFC 5322 / MIME email from rendered content: headers with
 * RFC 2047 encoded words for non-ASCII text, folded to line limits, and a
 * multipart/alternative body of quoted-printable text/plain and text/html parts.
 *
 * Header injection is impossible by construction: CR, LF and other control characters
 * in the subject and the display name become spaces before encoding, and addresses
 * are rejected unless they have the basic shape of one (mime_addr_valid).
 * Pure functions of their inputs (plus the random boundary); any thread. */
#ifndef HERALD_PROVIDERS_MIME_H
#define HERALD_PROVIDERS_MIME_H

#include "../util/buf.h"
#include "../util/rc.h"
#include "../util/str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define MIME_MSGID_MAX 128 /* bytes for mime_message_id's output */

struct mime_msg {
    const char *from;       /* From address (required) */
    const char *from_name;  /* display name, may be NULL */
    const char *to;         /* recipient address (required) */
    const char *reply_to;   /* may be NULL */
    const char *subject;    /* UTF-8, may be NULL */
    const char *text;       /* text/plain part, may be NULL */
    const char *html;       /* text/html part, may be NULL */
    const char *message_id; /* "<...>" from mime_message_id (required) */
    int64_t date_ms;        /* Date header, ms since the epoch */
    const char *list_unsub; /* List-Unsubscribe value ("<https://...>"), may be NULL; with
                               it List-Unsubscribe-Post: List-Unsubscribe=One-Click
                               (RFC 8058). Refused (HR_INVAL) with control characters */
};

/* mime_build: append the whole message (headers, blank line, body; CRLF line ends) to
 * out. Both parts present: multipart/alternative with a random boundary; one part:
 * that part alone. Returns HR_OK, HR_INVAL (err names the bad address) or HR_TOOBIG
 * when out's cap is reached. */
int mime_build(const struct mime_msg *m, struct buf *out, struct herr *err) HR_MUSTCHECK;

/* mime_message_id: "<key-derived.hash@herald>" into out (MIME_MSGID_MAX bytes): the
 * key sanitized to [A-Za-z0-9.-] (at most 64 characters) plus 16 hex digits of its
 * SHA-256, so it is stable per key and distinct across keys. A NULL or empty key gives
 * a random id. */
void mime_message_id(const char *key, char *out, size_t cap);

/* mime_addr_valid: the basic shape of an addr-spec: printable ASCII, no spaces, no
 * CR/LF, no <>()[],;:"\ characters, one '@' with a non-empty local part (<= 64) and a
 * domain with a dot-free edge, at most 254 bytes. */
bool mime_addr_valid(const char *addr);

/* mime_qp_encode: quoted-printable (RFC 2045) of in, appended to out: CRLF line ends
 * (input LF, CR or CRLF), encoded lines of at most 76 characters; '=', controls (tab
 * included), 8-bit bytes, a trailing space and a leading '.' are encoded. */
int mime_qp_encode(struct str in, struct buf *out) HR_MUSTCHECK;

/* mime_header_text: append `Name: value` for unstructured text (Subject): plain and
 * folded at spaces when it is printable ASCII, else RFC 2047 B-encoded words of at most
 * 75 characters split on character boundaries, one per folded line. Control characters
 * become spaces. Ends with CRLF. */
int mime_header_text(struct buf *out, const char *name, const char *value) HR_MUSTCHECK;

/* mime_sender_parse: the sender settings every email provider shares: `from` (required
 * address), `from_name` and `reply_to` (an address) from provider settings s. Strings
 * point into s. Returns 0 or HR_INVAL with a message naming the field. */
int mime_sender_parse(const cJSON *s, const char **from, const char **from_name,
                      const char **reply_to, struct herr *err);

#endif
