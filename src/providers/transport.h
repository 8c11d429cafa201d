/* transport.h: every outbound call of herald (HTTP for webhooks, SendGrid, Twilio and the
 * automation fetch-data step; SMTP for email) runs here, on ONE thread that drives one
 * libcurl multi handle. Any thread submits a request and returns at once; the loop runs
 * thousands of transfers at the same time, reuses connections through the multi's cache
 * (HTTP keep-alive, open SMTP sessions) and calls the submitter's callback, on the loop
 * thread, with the result.
 *
 *   submitter thread                        loop thread (transport_main)
 *   transport_submit(req) --lock-> queue --eventfd-> add to multi -> epoll_wait ->
 *                                   curl_multi_socket_action ... done -> done(arg, resp)
 *
 * What it owns: the request (moved in at submit), the easy handle, the response buffers
 * (capped as HTTP_CLIENT_BODY_MAX / HTTP_CLIENT_HEADERS_MAX), the connections. What it
 * applies to every transfer: the per-transfer timeout, the egress guard for requests
 * with req->guard (checked on every connection after DNS; no proxy, no redirects, and a
 * connection pool of their own, so a connection opened unchecked is never reused by a
 * guarded request), the scrubbing of secrets out of the answer, Retry-After.
 *
 * Threads: transport_submit and transport_perform from any thread but the loop thread;
 * callbacks run on the loop thread and must not block (no transport_perform there). */
#ifndef HERALD_PROVIDERS_TRANSPORT_H
#define HERALD_PROVIDERS_TRANSPORT_H

#include "http_client.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRANSPORT_MAX_DEFAULT 16384 /* transfers queued + in flight per transport */
#define TRANSPORT_IDLE_KEEP 1024     /* idle connections kept at least (transport.c keep_idle):
                                      * the calls one provider may have in flight at the
                                      * default --provider-concurrency (1,000); at most a
                                      * sixteenth of the open-file limit per cache */

enum transport_kind {
    TRANSPORT_HTTP = 0, /* http:// or https:// */
    TRANSPORT_SMTP = 1, /* smtp:// or smtps://: one message to the rcpts */
};

/* One request. Every pointer is owned by the request (transport_req_cleanup frees them);
 * transport_submit moves it into the transfer. */
struct transport_req {
    int kind;                   /* enum transport_kind */
    char *url;
    char *method;               /* HTTP: "POST" (NULL), "GET", "PUT", "PATCH", "DELETE" */
    struct curl_slist *headers; /* HTTP: full "Name: value" lines, Content-Type included */
    char *body;                 /* HTTP body, or the SMTP message (MIME, CRLF lines) */
    size_t body_len;
    char *username, *password;  /* HTTP Basic, or SMTP AUTH; NULL when none */
    char *guard;                /* non-NULL: a user-chosen target, named so in a refusal */
    char **secrets;             /* values an answer must not echo (NULL-ended), or NULL */
    int64_t timeout_ms;         /* whole transfer; <= 0: HTTP_CLIENT_TIMEOUT_DEFAULT */
    int64_t now_ms;             /* for Retry-After dates; 0: the wall clock */
    /* SMTP only */
    char *mail_from;            /* "<a@b>" */
    struct curl_slist *rcpts;   /* "<x@y>" lines */
    bool smtp_tls;              /* require TLS (STARTTLS on smtp://, implicit on smtps://) */
    bool tls_verify;            /* verify the peer (SMTP; HTTP always verifies) */
};

struct transport_resp {
    int rc;                     /* HR_OK: an answer arrived (HTTP status, or SMTP: the
                                   message was accepted); HR_TIMEOUT, HR_IO: none did (or an
                                   SMTP error reply, see smtp_reply); HR_INVAL: a bad
                                   request; HR_PERM: the egress guard refused the target;
                                   HR_AGAIN: the transport was full; HR_UNAVAIL: it was shut
                                   down. http.error says why whenever rc < 0. */
    struct http_client_resp http; /* status (HTTP status / SMTP last code), curl_code,
                                     error, body, headers, retry_after_ms */
    char smtp_reply[256];       /* SMTP: the server's first 4xx/5xx line, "" when none */
};

/* transport_done_fn: called once per submitted request, on the loop thread. resp is
 * the transport's: it is cleaned up after the callback returns (take what you need, or
 * move it with transport_resp_move). */
typedef void (*transport_done_fn)(void *arg, struct transport_resp *resp);

struct transport;

void transport_req_init(struct transport_req *req);
void transport_req_cleanup(struct transport_req *req); /* NULL is a no-op */
/* transport_req_secret: add a copy of s to req->secrets (NULL or "" is ignored). */
void transport_req_secret(struct transport_req *req, const char *s);
/* transport_req_from_http: a request copied from an http_client_req (headers copied after
 * "Content-Type: <content_type>" and "Expect:"). req must be initialised. */
void transport_req_from_http(struct transport_req *req, const struct http_client_req *in);

void transport_resp_init(struct transport_resp *resp);
void transport_resp_cleanup(struct transport_resp *resp); /* NULL is a no-op */
/* transport_resp_move: *to = *from (to cleaned first); from is left empty, initialised. */
void transport_resp_move(struct transport_resp *to, struct transport_resp *from);

/* transport_new: start a transport (its loop thread) that holds at most max_transfers
 * (<= 0: TRANSPORT_MAX_DEFAULT) queued or in flight. NULL when libcurl or the thread
 * cannot be started. Free with transport_free. */
struct transport *transport_new(int max_transfers);
/* transport_free: cancel every transfer still queued or in flight (each callback runs
 * with rc HR_UNAVAIL, "canceled: the transport is shutting down"), close the connections
 * (SMTP says QUIT), join the loop thread. Not from the loop thread. NULL is a no-op. */
void transport_free(struct transport *t);

/* transport_submit: hand req to the loop; *req is emptied (re-initialised) whatever
 * happens. HR_OK: done(arg, resp) will run once on the loop thread. Otherwise done is
 * never called and err says why: HR_INVAL (not a URL of req->kind's schemes), HR_AGAIN
 * (max_transfers reached: "transport: N transfers in flight; try again later"),
 * HR_UNAVAIL (shut down). Any thread but the loop thread. */
int transport_submit(struct transport *t, struct transport_req *req, transport_done_fn done,
                     void *arg, struct herr *err) HR_MUSTCHECK;

/* transport_perform: submit and wait; resp (initialised) gets the result, including a
 * refusal by transport_submit (resp->rc and resp->http.error). Returns resp->rc. */
int transport_perform(struct transport *t, struct transport_req *req,
                      struct transport_resp *resp);

/* transport_in_flight: transfers queued or in flight now (a snapshot). Any thread. */
int transport_in_flight(struct transport *t);

/* ---- the process's transport -------------------------------------------------------
 * Providers and http_client_perform share one transport, started on first use and
 * stopped by provider_global_cleanup(). */

/* transport_default: the process's transport (started now when needed), or NULL when it
 * cannot be started. */
struct transport *transport_default(void);
/* transport_default_stop: free the process's transport (a later use starts a new one). */
void transport_default_stop(void);

#endif
