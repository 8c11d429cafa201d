/* http_client.h: what the providers share for HTTP: a bounded request (run on the
 * transport's loop thread, transport.h: one libcurl code path, connections reused through
 * its cache), a capped response, and the mapping from a status or a transport error to
 * the provider outcome (SENT / TRANSIENT / PERMANENT) with Retry-After honoured.
 *
 * Threads: any thread but the transport's loop thread (http_client_perform waits). */
#ifndef HERALD_PROVIDERS_HTTP_CLIENT_H
#define HERALD_PROVIDERS_HTTP_CLIENT_H

#include "../util/buf.h"
#include "../util/netaddr.h"
#include "../util/rc.h"
#include "../util/str.h"
#include "provider.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#define HTTP_CLIENT_BODY_MAX (64 * 1024)     /* response body kept (the rest is dropped) */
#define HTTP_CLIENT_HEADERS_MAX (16 * 1024)  /* response header bytes kept */
#define HTTP_CLIENT_TIMEOUT_DEFAULT 10000    /* ms, when the delivery gives none */

/* ---- one HTTP request ------------------------------------------------------------- */

struct http_client_req {
    const char *method;        /* "POST" (NULL), "GET" (no body), "PUT", "PATCH", "DELETE" */
    const char *url;           /* http:// or https:// only */
    const char *content_type;  /* e.g. "application/json" */
    struct str body;           /* request body (not owned) */
    struct curl_slist *headers; /* extra "Name: value" lines (not owned), may be NULL */
    const char *username;      /* HTTP Basic when non-NULL (secret: password) */
    const char *password;
    int64_t timeout_ms;        /* whole request; <= 0 means the default */
    int64_t now_ms;            /* for Retry-After dates; 0 means the wall clock */
    const char *guard;         /* non-NULL: a user-controlled target (webhook, fetch-data),
                                  named so in a refusal ("webhook"); see the egress guard */
    const char *const *secrets; /* NULL-ended values the answer must not echo back (API
                                  keys, tokens, header values), or NULL; see below */
};

struct http_client_resp {
    int status;                /* final HTTP status; 0 when none arrived */
    int curl_code;             /* CURLcode of the transfer */
    bool truncated;            /* the body was longer than HTTP_CLIENT_BODY_MAX */
    char error[CURL_ERROR_SIZE]; /* transport error text when status == 0 */
    struct buf body;           /* first HTTP_CLIENT_BODY_MAX bytes */
    struct buf headers;        /* raw header lines of the final response */
    int64_t retry_after_ms;    /* from Retry-After; 0 when absent or unparsable */
};

void http_client_resp_init(struct http_client_resp *resp);
void http_client_resp_cleanup(struct http_client_resp *resp); /* NULL is a no-op */

/* ---- the egress guard --------------------------------------------------------------
 * A request with req->guard set goes to a target a user chose (a webhook URL, a profile's
 * webhook, a fetch-data step). Every connection it opens is checked after DNS, on the
 * address actually connected to (so DNS rebinding and odd literals like 2130706433 are
 * caught): a non-public address (netaddr_classify) is refused unless the operator's
 * allowlist holds it. Such requests never use a proxy from the environment (http_proxy,
 * HTTPS_PROXY...: the check would see the proxy, not the target), never follow
 * redirects, and use a connection pool of their own, so a connection opened unchecked for an
 * operator-configured provider (SMTP, and Twilio or SendGrid at their own default URLs: not
 * guarded; a base_url set through the API is) is never reused. */

/* http_client_egress_allow: set the allowlist (copied; defined in transport.c, which
 * applies it). Any thread; NULL or an empty list allows public addresses only. */
void http_client_egress_allow(const struct netaddr_allow *allow);

/* Secrets in answers: a server may quote the request back in an error ("bad key: Bearer
 * SG.xyz"), and reasons built from the answer reach the message history. So
 * http_client_perform replaces, in the response body, headers and error text, every
 * occurrence of each req->secrets value, of req->password and of the password in the
 * URL (user:pass@), and of the base64 "user:password" a Basic header carries, with
 * "****". Values shorter than HTTP_CLIENT_SCRUB_MIN bytes are left alone (replacing
 * every "t" of a text helps nobody; such a secret is no secret). */
#define HTTP_CLIENT_SCRUB_MIN 4

/* http_client_resp_scrub: the replacement above, in resp, for these secrets (NULL-ended,
 * may be NULL), user/password and the password of url (NULLs allowed). */
void http_client_resp_scrub(struct http_client_resp *resp, const char *const *secrets,
                            const char *user, const char *password, const char *url);

/* http_client_perform: send req through the process's transport (transport_default) and
 * wait for the answer. Returns HR_OK when a
 * response status arrived (whatever it is), HR_TIMEOUT or HR_IO (resp->error says why)
 * when none did, HR_INVAL for a bad request (e.g. an URL that is not http/https), HR_PERM
 * when the egress guard refused every address of the target (resp->error: "target
 * 127.0.0.1 is a loopback address; refused (allow it with --egress-allow)"), HR_AGAIN
 * when the transport is full, HR_UNAVAIL when it is shut down. req is copied: the
 * caller's memory is not used after the call. resp must have been initialised; it is
 * overwritten. */
int http_client_perform(const struct http_client_req *req, struct http_client_resp *resp);

/* http_client_header: copy the value of response header `name` (case-insensitive,
 * first occurrence, trimmed) into out; false when absent. */
bool http_client_header(const struct http_client_resp *resp, const char *name, char *out,
                        size_t cap);

/* http_client_resp_json: the response body parsed as JSON (bounded), or NULL when it
 * is empty, truncated or not JSON. Caller frees with cJSON_Delete. */
cJSON *http_client_resp_json(const struct http_client_resp *resp);

/* http_client_retry_after: a Retry-After value (delay seconds or an HTTP date) as a
 * delay in ms from now_ms; 0 when unparsable or in the past. Capped at one day. */
int64_t http_client_retry_after(const char *value, int64_t now_ms);

/* http_client_classify: fill r from a finished request: 2xx SENT; 408, 429, 5xx and
 * transport errors TRANSIENT (with retry_after_ms); a refusal of the egress guard
 * PERMANENT with "<who> <resp->error>"; everything else PERMANENT with
 * "<who> <status>: <first 200 bytes of the body>" as reason. `rc` is what
 * http_client_perform returned. Leaves r->reference alone. */
void http_client_classify(int rc, const struct http_client_resp *resp, const char *who,
                          struct delivery_result *r);

/* ---- small helpers -------------------------------------------------------------- */

/* http_client_header_add: append one "Name: value" line to *list; aborts on OOM like
 * xmalloc. The caller frees the list with curl_slist_free_all. */
void http_client_header_add(struct curl_slist **list, const char *fmt, ...) HR_PRINTF(2, 3);
/* http_client_form_add: append name=value (x-www-form-urlencoded, '&' between pairs). */
int http_client_form_add(struct buf *b, const char *name, const char *value) HR_MUSTCHECK;
/* http_client_header_value_ok: true when s may go into a header line: no CR, LF or
 * other control characters except tab, at most 8 KB. */
bool http_client_header_value_ok(const char *s);
/* http_client_url_ok: true when s is an absolute http:// or https:// URL with a host
 * and no control characters or spaces, at most 2,048 characters. Each thread remembers
 * the last URL it found good (a repeat is answered without parsing it again). */
bool http_client_url_ok(const char *s);
/* http_client_scrub: replace every occurrence of secret (NULL or shorter than
 * HTTP_CLIENT_SCRUB_MIN does nothing) in the NUL-terminated text, in place, by "****". */
void http_client_scrub(char *text, const char *secret);
/* http_client_scrub_basic: http_client_scrub of password and of the base64 forms of
 * "user:password" (HTTP Basic, SMTP AUTH LOGIN/PLAIN carry these). */
void http_client_scrub_basic(char *text, const char *user, const char *password);
/* http_client_url_mask_password: when url carries a password (user:pass@host), url with
 * that password replaced by "****" into out (cap; the URL as libcurl writes it back) and
 * true; false otherwise (out untouched). */
bool http_client_url_mask_password(const char *url, char *out, size_t cap);
/* http_client_url_redacted: url as "scheme://host[:port]/path" into out (cap), without
 * user, password, query or fragment, for messages and logs; "(an unparsable URL)" when
 * url is not one. */
void http_client_url_redacted(const char *url, char *out, size_t cap);
/* http_client_text: copy at most max bytes of s into out (cap) as a one-line text
 * safe for reasons and logs: control characters become spaces, a UTF-8 character is
 * never cut in half. */
void http_client_text(char *out, size_t cap, struct str s, size_t max);
/* http_client_timeout: d->timeout_ms, or the default when <= 0. */
int64_t http_client_timeout(int64_t timeout_ms);
/* http_client_url_join: base without its trailing '/'s, then path, appended to url.
 * HR_TOOBIG when url's cap is reached. */
int http_client_url_join(struct buf *url, const char *base, const char *path) HR_MUSTCHECK;
/* http_client_json_reference: when the answer's body is JSON with a string at key (the
 * provider's message id), that string as r->reference (one line, cut to fit); r is left
 * alone otherwise. */
void http_client_json_reference(const struct http_client_resp *resp, const char *key,
                                struct delivery_result *r);

/* ---- settings checks (validate) --------------------------------------------------- */
/* Each reads obj[key] and fails with HR_INVAL and "<path>.<key> ..." in err when the
 * value has the wrong type or range. An absent key leaves *out alone (a string is set
 * to NULL) and is an error only for a required string, which must also be non-empty. */
int http_client_setting_str(const cJSON *obj, const char *path, const char *key, bool required,
                            const char **out, struct herr *err) HR_MUSTCHECK;
int http_client_setting_int(const cJSON *obj, const char *path, const char *key, int64_t min,
                            int64_t max, int64_t *out, struct herr *err) HR_MUSTCHECK;
int http_client_setting_bool(const cJSON *obj, const char *path, const char *key, bool *out,
                             struct herr *err) HR_MUSTCHECK;
/* http_client_setting_base_url: the optional settings.base_url of an HTTP API provider
 * (a test double, a regional endpoint): absent (*out NULL) or an http:// or https:// URL. */
int http_client_setting_base_url(const cJSON *s, const char **out, struct herr *err) HR_MUSTCHECK;

#endif
