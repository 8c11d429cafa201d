/* email_api.h: what the HTTP email API providers (Postmark, Resend, Mailgun) share: the
 * settings every one of them has (a key, the sender, an optional base_url), the checks
 * before a call (an email address, some content), the endpoint URL, the "Name <addr>"
 * mailbox their APIs take, and the request shell (JSON or form, egress guard on a
 * base_url, the key never echoed back). Pure functions; any thread. */
#ifndef HERALD_PROVIDERS_EMAIL_API_H
#define HERALD_PROVIDERS_EMAIL_API_H

#include "../util/buf.h"
#include "../util/rc.h"
#include "provider.h"
#include "transport.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>

struct email_api_conf {
    const char *key;       /* the API key / server token (a secret) */
    const char *from;      /* sender address */
    const char *from_name; /* display name, may be NULL */
    const char *reply_to;  /* may be NULL */
    const char *base_url;  /* NULL: the provider's own endpoint */
};

/* email_api_conf_parse: key (settings.<key_field>, required, no control characters), from,
 * from_name, reply_to (mime_sender_parse) and base_url (an http(s) URL) from s. Strings
 * point into s. HR_OK, or HR_INVAL with a message naming the field. */
int email_api_conf_parse(const cJSON *s, const char *key_field, struct email_api_conf *c,
                         struct herr *err);

/* email_api_addressable: provider_ops.addressable for these providers: the profile has a
 * valid email address. */
int email_api_addressable(const cJSON *profile, const cJSON *settings);

/* email_api_recipient: the profile's email when d can be sent (a valid address and a
 * text or html part); NULL with r filled (PERMANENT, the reason) otherwise. */
const char *email_api_recipient(const struct delivery *d, struct delivery_result *r);

/* email_api_url: base (trailing '/' dropped) followed by path into url. HR_OK, or
 * HR_TOOBIG past url's cap. */
int email_api_url(struct buf *url, const char *base, const char *path) HR_MUSTCHECK;

/* email_api_mailbox: "addr" without a name, "Name <addr>" when the name is plain words,
 * "\"Na\\\"me\" <addr>" (an RFC 5322 quoted string) when it has specials; control
 * characters in the name become spaces. Caller frees. */
char *email_api_mailbox(const char *name, const char *addr);

/* email_api_request: fill req (initialised) with a POST of body to url: content_type,
 * the extra header lines hdrs (not owned), HTTP Basic user/password when user is
 * non-NULL, d's timeout, the key as a secret the answer must not echo, and the egress
 * guard named `who` when the settings chose a base_url. */
void email_api_request(const struct delivery *d, const struct email_api_conf *c,
                       const char *who, const char *url, const char *content_type,
                       struct str body, struct curl_slist *hdrs, const char *user,
                       struct transport_req *req);

/* email_api_reason: r->reason = "<who> <status>: <msg>" plus " (<detail>)" when detail is
 * non-empty; msg and detail are cut and made one-line. Leaves r alone when msg is NULL. */
void email_api_reason(struct delivery_result *r, const char *who, int status, const char *msg,
                      const char *detail);

#endif
