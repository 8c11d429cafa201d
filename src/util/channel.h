/* channel.h: the delivery channels and the rendered content of one message on one
 * channel. Shared by render (which produces it), providers (which deliver it) and the
 * engine (which routes between them), so it lives in util. */
#ifndef HERALD_UTIL_CHANNEL_H
#define HERALD_UTIL_CHANNEL_H

#include <cjson/cJSON.h>

enum channel {
    CH_NONE = 0,
    CH_EMAIL,   /* "email": subject, html, text */
    CH_SMS,     /* "sms": text */
    CH_PUSH,    /* "push": title, body, data */
    CH_CHAT,    /* "direct_message" (alias "chat"): text (markdown), title */
    CH_WEBHOOK, /* "webhook": the JSON payload */
    CH_COUNT
};

/* channel_parse: "email" -> CH_EMAIL ("direct_message" and "chat" -> CH_CHAT); CH_NONE
 * when unknown. channel_name: the canonical name ("email", "sms", "push",
 * "direct_message", "webhook"). */
enum channel channel_parse(const char *name);
const char *channel_name(enum channel ch);

/* The output of rendering one message for one channel. Strings are heap-owned by the
 * struct (free with content_cleanup); absent parts are NULL. */
struct content {
    enum channel channel;
    char *subject; /* email */
    char *html;    /* email */
    char *text;    /* email plain-text part, sms, chat */
    char *title;   /* push, chat */
    char *body;    /* push */
    cJSON *json;   /* webhook payload; push data */
    char *list_unsub; /* email: List-Unsubscribe value ("<https://...>"); when set, the
                         message also carries List-Unsubscribe-Post: One-Click (RFC 8058) */
};

void content_cleanup(struct content *c);

#endif
