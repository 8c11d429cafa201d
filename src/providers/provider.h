/* provider.h: one interface for every delivery provider. A provider takes one rendered
 * message for one recipient on its channel and hands it to the outside world (an SMTP
 * server, an HTTP API), then reports what happened, sorted so the engine can decide:
 * SENT, TRANSIENT (retry later: timeouts, connection errors, 429, 5xx, SMTP 4xx) or
 * PERMANENT (fail over or give up: other 4xx, SMTP 5xx, invalid address).
 *
 * A provider that calls out is a request builder plus a response classifier: build()
 * turns a delivery into a transport request (HTTP or SMTP, transport.h), classify() turns
 * the transport's answer into a delivery_result. The transport (one libcurl multi loop)
 * runs the call, so no thread waits on the network unless it asks to:
 *   provider_start(ops, d, done, arg)  async: build, submit, classify on completion, done()
 *   ops->send(d, r)                    blocking: the same, waiting (provider_send)
 * A provider without build (console) does its work in send() and completes at once.
 *
 * Providers never touch the store and never log secrets. They are called from any thread
 * but the transport's loop thread, concurrently; send() blocks for at most about
 * d->timeout_ms. */
#ifndef HERALD_PROVIDERS_PROVIDER_H
#define HERALD_PROVIDERS_PROVIDER_H

#include "../util/channel.h"
#include "../util/rc.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

struct transport_req;
struct transport_resp;

enum delivery_outcome {
    DELIVERY_SENT = 0,      /* accepted by the provider */
    DELIVERY_TRANSIENT = 1, /* try again later (same provider) */
    DELIVERY_PERMANENT = 2, /* this provider will never take it: fail over */
};

struct delivery {
    const char *message_id;      /* herald's message id */
    const char *idempotency_key; /* stable per message + channel + provider */
    const char *provider_id;     /* the configured provider's id (for logs) */
    const struct content *content;
    const cJSON *profile;        /* merged recipient profile: email, phone_number, webhook... */
    const cJSON *settings;       /* the provider's configured settings (with secrets) */
    const cJSON *override;       /* optional message-level providers.<key>.override */
    int64_t timeout_ms;          /* whole attempt; default 10000 */
    int64_t now_ms;              /* for signatures */
};

struct delivery_result {
    int outcome;              /* enum delivery_outcome */
    int64_t retry_after_ms;   /* TRANSIENT: provider asked for this delay (0: none) */
    int remote_status;        /* HTTP status or SMTP reply code; 0 when none */
    char reason[512];         /* the provider's words or our diagnosis; no secrets */
    char reference[256];      /* provider's id for the message (SendGrid X-Message-Id,
                                 Twilio sid, SMTP Message-ID), may be empty */
};

struct provider_ops {
    int version;                /* 1 */
    const char *name;           /* "smtp", "webhook", "twilio", "sendgrid", "console", "ses",
                                   "vonage", "messagebird" */
    enum channel channel;       /* the channel it delivers */
    const char *const *secret_fields; /* settings keys never returned in full (NULL-ended) */
    /* validate: check settings at configuration time; HR_INVAL with a message naming
     * the bad field. */
    int (*validate)(const cJSON *settings, struct herr *err);
    /* addressable: can this profile receive on this provider (e.g. has an email)? */
    int (*addressable)(const cJSON *profile, const cJSON *settings);
    /* send: one attempt, blocking. Always fills r. Providers with build/classify set it
     * to a one-line call of provider_send(). */
    void (*send)(const struct delivery *d, struct delivery_result *r);
    /* build: fill req (initialised by the caller) for one attempt and return HR_OK; or,
     * when the attempt ends before any call (bad settings, no address, no content),
     * fill r and return a negative rc. NULL for providers that never call out. */
    int (*build)(const struct delivery *d, struct transport_req *req, struct delivery_result *r);
    /* classify: fill r (zeroed by the caller) from the transport's answer to the request
     * build() made for d. Runs on the transport's loop thread for provider_start. */
    void (*classify)(const struct delivery *d, const struct transport_resp *resp,
                     struct delivery_result *r);
    /* receipts: the provider's delivery receipts come to POST /receipts/{id}
     * (src/api/receipts.c), which finds their message by the attempt's reference: only
     * then is the reference indexed (store_msgref_put) */
    bool receipts;
};

/* provider_done_fn: the end of one provider_start attempt. r is valid during the call. */
typedef void (*provider_done_fn)(void *arg, const struct delivery_result *r);

/* provider_start: one attempt without blocking: build, submit to the process's transport,
 * classify when the answer comes. done(arg, r) runs exactly once: on the transport's loop
 * thread when a call was made, or on the calling thread before provider_start returns
 * when none was (no build: ops->send ran; build refused; the transport refused, e.g.
 * full: TRANSIENT). d and everything it points to must stay valid until done runs; done
 * must not block (it runs on the loop thread). */
void provider_start(const struct provider_ops *ops, const struct delivery *d,
                    provider_done_fn done, void *arg);
/* provider_send: one attempt, blocking: build + transport_perform + classify. Always
 * fills r. Any thread but the transport's loop thread. */
void provider_send(const struct provider_ops *ops, const struct delivery *d,
                   struct delivery_result *r);

/* provider_find: the provider named `name`, or NULL. */
const struct provider_ops *provider_find(const char *name);
/* provider_all: the NULL-terminated table of every provider. */
const struct provider_ops *const *provider_all(void);
/* provider_global_init / _cleanup: once per process (curl_global_init; cleanup also
 * stops the process's transport, cancelling what is in flight). */
int provider_global_init(void);
void provider_global_cleanup(void);

#endif
