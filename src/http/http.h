/* http.h: herald's HTTP server on libmicrohttpd. It knows nothing of herald's
 * resources: the caller hands it a declarative route table and an authenticator.
 * It owns: listening, request ids, reading bodies under a cap (413), gzip request
 * bodies, routing (404, 405 with Allow), auth dispatch from the headers (401/403,
 * before any body is read), in-flight and buffered-bytes limits (503 + Retry-After),
 * connection caps (total and per address) and read deadlines, request framing checks
 * (400), CORS, JSON error bodies, access logs and HTTP metrics, and a graceful stop.
 *
 * Threads: a thread per connection; handlers run on it and may block on the store,
 * holding up only their own connection. */
#ifndef HERALD_HTTP_HTTP_H
#define HERALD_HTTP_HTTP_H

#include "../util/arena.h"
#include "../util/buf.h"
#include "../util/rc.h"
#include "../util/str.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum http_method {
    HTTP_GET = 1,
    HTTP_HEAD = 2,
    HTTP_POST = 4,
    HTTP_PUT = 8,
    HTTP_PATCH = 16,
    HTTP_DELETE = 32,
    HTTP_OPTIONS = 64,
};

/* Who may call a route. The authenticator decides what a credential is. */
enum http_auth {
    AUTH_PUBLIC = 0, /* no credential needed */
    AUTH_ADMIN = 1,  /* an admin API key (Bearer) */
    AUTH_WRITE = 2,  /* a Segment write key (Basic, or writeKey in the body) */
};

/* Route flags */
#define ROUTE_ANY_CTYPE 0x1u /* do not require a JSON Content-Type on bodies */
#define ROUTE_GZIP 0x2u      /* accept Content-Encoding: gzip (inflated under the cap) */
#define ROUTE_NO_IDEMPOTENCY 0x4u /* Idempotency-Key is ignored (public POSTs: no key to scope it) */

#define HTTP_MAX_PARAMS 6

struct http_principal {
    int kind;        /* enum key_kind of the store (0: none) */
    int64_t key_id;  /* the key that authenticated */
    int scope;       /* enum key_scope of the store (0: server) */
};

struct http_req {
    struct arena *arena;     /* per request; freed after the response is sent */
    int method;              /* enum http_method */
    struct str path;         /* raw path, without the query string */
    char rid[65];            /* request id (from X-Request-Id when sane, else new) */
    struct str body;         /* after gzip inflation; NUL-terminated; len 0 if none */
    struct str params[HTTP_MAX_PARAMS]; /* ":name" path segments, percent-decoded */
    int nparams;
    const struct http_route *route;
    struct http_principal auth;
    void *impl;              /* server-private */
};

struct http_header {
    const char *name, *value;    /* arena-owned */
    struct http_header *next;
};

struct http_resp {
    int status;               /* 200 by default */
    const char *content_type; /* default "application/json" */
    struct buf body;          /* capped at 64 MiB */
    struct http_header *headers;
    struct arena *arena;      /* the request's arena */
};

typedef void (*http_handler_fn)(void *ctx, struct http_req *req, struct http_resp *resp);

struct http_route {
    int method;               /* one enum http_method value */
    const char *pattern;      /* "/profiles/:id"; ":x" matches one segment; "*" at the end
                                 matches the rest (params[last]) */
    http_handler_fn fn;
    int auth;                 /* enum http_auth */
    const char *name;         /* metrics label, e.g. "profiles.get" */
    unsigned flags;           /* ROUTE_* */
    size_t max_body;          /* 0: server default */
};

/* The authenticator: decide whether req may call its route (req->route->auth).
 * Fill req->auth and return 0; HR_PERM for a missing or wrong credential (401);
 * HR_CONFLICT for a valid credential of the wrong kind (403). It runs as soon as the
 * headers are read, before any of the body (req->body is empty then): it reads
 * headers only. `msg` (cap 256) gets the sentence for the error body. */
typedef int (*http_auth_fn)(void *ctx, struct http_req *req, char *msg);

/* A wrapper around every handler call (after auth): it may answer by itself, or call
 * next(next_ctx, req, resp) and look at the response afterwards. Used for
 * Idempotency-Key replay. */
typedef void (*http_wrap_fn)(void *wrap_ctx, struct http_req *req, struct http_resp *resp,
                             http_handler_fn next, void *next_ctx);

struct http_cfg {
    const char *listen;       /* "127.0.0.1:8080", "[::1]:8080", ":8080" */
    size_t max_body;          /* default 6 MiB */
    int max_inflight;         /* above it: 503 + Retry-After; default 1024 */
    int max_conns;            /* open connections in all; 0: half the open-file limit,
                                 at most 16384 (never above the limit less a reserve) */
    int max_conns_per_ip;     /* per IPv4 address or IPv6 /64; 0: 256; < 0: no limit */
    int header_timeout_s;     /* headers complete within this of the accept or of the
                                 previous answer (so also the keep-alive idle limit);
                                 0: 10 */
    int body_timeout_s;       /* a body may take this long plus 1 s per HTTP_BODY_MIN_RATE
                                 bytes received; 0: 20 */
    size_t max_buffered;      /* request body bytes held in memory across all requests;
                                 above it 503 + Retry-After; 0: 256 MiB */
    const char *cors_allow;   /* comma-separated origins that may call non-/v1 routes
                                 cross-origin ("*": any); NULL or "": same-origin only */
    int64_t shutdown_ms;      /* grace for requests in flight; default 10000 */
    const struct http_route *routes; /* terminated by a zero route; must outlive server */
    void *handler_ctx;        /* passed to every handler */
    http_auth_fn auth;
    void *auth_ctx;
    http_wrap_fn wrap;        /* optional */
    void *wrap_ctx;
};

#define HTTP_BODY_MIN_RATE 1024 /* bytes/s a slow body must keep up (see body_timeout_s) */

struct http_server;

/* http_server_start: bind and start serving. *out owned by caller (http_server_stop).
 * Returns 0, or HR_IO / HR_INVAL with err filled. */
int http_server_start(const struct http_cfg *cfg, struct http_server **out, struct herr *err)
    HR_MUSTCHECK;
/* http_server_port: the bound port (useful with port 0). */
int http_server_port(const struct http_server *srv);
/* http_server_stop: stop accepting, wait up to cfg.shutdown_ms for requests in flight,
 * then close everything and free srv. NULL is a no-op. */
void http_server_stop(struct http_server *srv);

/* ---- request accessors (valid during the handler) ---- */
const char *http_req_header(struct http_req *req, const char *name); /* NULL if absent */
const char *http_req_query(struct http_req *req, const char *name);  /* decoded; NULL if absent */
/* http_req_query_each: call fn(arg, name, value) for every query argument in the order
 * sent, repeated names included (value is NULL for a bare "?name"); stops early when fn
 * returns false. Returns how many arguments fn saw. */
int http_req_query_each(struct http_req *req,
                        bool (*fn)(void *arg, const char *name, const char *value), void *arg);
/* http_req_peer: the client's address as text (arena-owned). */
const char *http_req_peer(struct http_req *req);

/* ---- responses ---- */
void http_resp_header(struct http_resp *resp, const char *name, const char *value); /* copied */
/* http_resp_json: status and a serialized copy of v (v stays the caller's). */
void http_resp_json(struct http_resp *resp, int status, const cJSON *v);
/* http_resp_raw: status, body bytes and content type (copied). */
void http_resp_raw(struct http_resp *resp, int status, const char *ctype, struct str body);
/* http_resp_error: {"message": <formatted>, "type": type} with status. */
void http_resp_error(struct http_resp *resp, int status, const char *type, const char *fmt, ...)
    HR_PRINTF(4, 5);
/* http_error_type: Courier's error "type" for a status: invalid_request_error (4xx),
 * authentication_error (401), authorization_error (403), rate_limit_error (429),
 * api_error (5xx). */
const char *http_error_type(int status);

/* ---- routing (exposed for unit tests and the generated auth test) ---- */
/* http_route_match: find the route for method+path. Returns the route and fills
 * params (percent-decoded into arena a); when the path matches only under other
 * methods, returns NULL and sets *allowed to their bitmask (405); else NULL and 0 (404);
 * NULL and -1 when the matched route's params hold an invalid %-escape, an escaped NUL
 * or bytes that are not UTF-8 once decoded (400). */
const struct http_route *http_route_match(const struct http_route *routes, int method,
                                          struct str path, struct arena *a,
                                          struct str *params, int *nparams, int *allowed);
/* http_method_parse: "GET" -> HTTP_GET; 0 when unknown. */
int http_method_parse(const char *m);
const char *http_method_name(int m);

#endif
