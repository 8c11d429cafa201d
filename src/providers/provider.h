/* provider.h: one interface for every delivery provider. A provider takes one rendered
 * message for one recipient on its channel and hands it to the outside world (an SMTP
 * server, an HTTP API), then reports what happened, sorted so the engine can decide:
 * SENT, TRANSIENT (retry later: timeouts, connection errors, 429, 5xx, SMTP 4xx) or
 * PERMANENT (fail over or give up: other 4xx, SMTP 5xx, invalid address).
 *
 * Providers never touch the store and never log secrets. They are called from worker
 * threads, concurrently; send() blocks for at most d->timeout_ms. */
#ifndef HERALD_PROVIDERS_PROVIDER_H
#define HERALD_PROVIDERS_PROVIDER_H

#include "../util/channel.h"
#include "../util/rc.h"

#include <cjson/cJSON.h>
#include <stdint.h>

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
    const char *name;           /* "smtp", "webhook", "twilio", "sendgrid", "console" */
    enum channel channel;       /* the channel it delivers */
    const char *const *secret_fields; /* settings keys never returned in full (NULL-ended) */
    /* validate: check settings at configuration time; HR_INVAL with a message naming
     * the bad field. */
    int (*validate)(const cJSON *settings, struct herr *err);
    /* addressable: can this profile receive on this provider (e.g. has an email)? */
    int (*addressable)(const cJSON *profile, const cJSON *settings);
    /* send: one attempt. Always fills r. */
    void (*send)(const struct delivery *d, struct delivery_result *r);
};

/* provider_find: the provider named `name`, or NULL. */
const struct provider_ops *provider_find(const char *name);
/* provider_all: the NULL-terminated table of every provider. */
const struct provider_ops *const *provider_all(void);
/* provider_global_init / _cleanup: once per process (curl_global_init). */
int provider_global_init(void);
void provider_global_cleanup(void);

#endif
