/* http_client.h: the one piece of libcurl plumbing the providers share. It keeps a
 * small cache of easy handles per thread (so consecutive sends reuse connections:
 * HTTP keep-alive, an open SMTP session), performs bounded HTTP POST/PUT requests with
 * a capped response, and turns a status or a transport error into the provider
 * outcome (SENT / TRANSIENT / PERMANENT) with Retry-After honoured.
 *
 * Threads: everything here works on the calling thread's own handles; no locking.
 * A thread's handles are freed when it exits, or by http_client_thread_cleanup(). */
#ifndef HERALD_PROVIDERS_HTTP_CLIENT_H
#define HERALD_PROVIDERS_HTTP_CLIENT_H

#include "../util/buf.h"
#include "../util/rc.h"
#include "../util/str.h"
#include "provider.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#define HTTP_CLIENT_BODY_MAX (64 * 1024)     /* response body kept (the rest is dropped) */
#define HTTP_CLIENT_HEADERS_MAX (16 * 1024)  /* response header bytes kept */
#define HTTP_CLIENT_TIMEOUT_DEFAULT 10000    /* ms, when the delivery gives none */

/* ---- per-thread easy handles ---------------------------------------------------- */

/* http_client_easy: the calling thread's easy handle for `key` (a connection identity
 * such as "smtp|host|port|secure|user"; NULL or "" for the shared HTTP handle), created
 * on first use, with all options at their defaults and its connections kept alive.
 * Returns NULL only when libcurl cannot make a handle. The handle stays owned by the
 * thread: hand it back with http_client_easy_release() before returning. */
CURL *http_client_easy(const char *key);
/* http_client_easy_release: forget the options of the transfer just done (they may
 * point at the caller's stack) but keep the handle's live connections. */
void http_client_easy_release(CURL *h);
/* http_client_thread_cleanup: free the calling thread's handles now (closing their
 * connections). Runs by itself at thread exit; call it on the main thread before
 * provider_global_cleanup(). */
void http_client_thread_cleanup(void);

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

/* http_client_perform: send req on the thread's shared handle. Returns HR_OK when a
 * response status arrived (whatever it is), HR_TIMEOUT or HR_IO (resp->error says why)
 * when none did, HR_INVAL for a bad request (e.g. an URL that is not http/https).
 * resp must have been initialised; it is overwritten. */
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
 * transport errors TRANSIENT (with retry_after_ms); everything else PERMANENT with
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
 * and no control characters or spaces. */
bool http_client_url_ok(const char *s);
/* http_client_text: copy at most max bytes of s into out (cap) as a one-line text
 * safe for reasons and logs: control characters become spaces, a UTF-8 character is
 * never cut in half. */
void http_client_text(char *out, size_t cap, struct str s, size_t max);
/* http_client_timeout: d->timeout_ms, or the default when <= 0. */
int64_t http_client_timeout(int64_t timeout_ms);

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

#endif
