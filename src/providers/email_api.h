/* email_api.h: what the HTTP email API providers (SendGrid, Postmark, Resend, Mailgun) share: the
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

/* email_api_begin: the checks before a call. parse_rc and err are what the provider's
 * settings parse gave: below 0, r gets "<who> settings: <err>". Then the recipient: the
 * profile's email must be a valid address and d must have a text or html part. Returns
 * that address, or NULL with r filled (PERMANENT, the reason). */
const char *email_api_begin(const struct delivery *d, int parse_rc, const struct herr *err,
                            const char *who, struct delivery_result *r);

/* email_api_mailbox: "addr" without a name, "Name <addr>" when the name is plain words,
 * "\"Na\\\"me\" <addr>" (an RFC 5322 quoted string) when it has specials; control
 * characters in the name become spaces. Caller frees. */
char *email_api_mailbox(const char *name, const char *addr);

/* One HTTP POST to an email API. */
struct email_api_post {
    const char *who;           /* the provider's name: reasons and the egress guard */
    const char *default_base;  /* the API's own endpoint, used without a base_url */
    const char *path;          /* appended to the base (its trailing '/' dropped) */
    const char *content_type;
    struct str body;
    struct curl_slist *hdrs;   /* extra header lines (not owned), may be NULL */
    const char *user;          /* HTTP Basic user with the key as password, or NULL */
};

/* email_api_post: fill req (initialised) with the POST p for d: the URL, content type,
 * headers, Basic credentials, d's timeout, the key as a secret the answer must not echo,
 * and the egress guard when the settings chose a base_url. HR_OK, or HR_INVAL with r
 * PERMANENT ("<who> settings: base_url is too long"). */
int email_api_post(const struct delivery *d, const struct email_api_conf *c,
                   const struct email_api_post *p, struct transport_req *req,
                   struct delivery_result *r);

/* email_api_reference: r->reference = the first n bytes of id as one line (cut to fit);
 * NULL id leaves it alone. */
void email_api_reference(struct delivery_result *r, const char *id, size_t n);

/* email_api_reason: r->reason = "<who> <status>: <msg>" plus " (<detail>)" when detail is
 * non-empty; msg and detail are cut and made one-line. Leaves r alone when msg is NULL. */
void email_api_reason(struct delivery_result *r, const char *who, int status, const char *msg,
                      const char *detail);

/* One-click unsubscribe (RFC 8058): the value of List-Unsubscribe-Post. */
#define EMAIL_LIST_UNSUB_POST "List-Unsubscribe=One-Click"
#define EMAIL_LIST_UNSUB_MAX 1400 /* bytes: a link (<= 900) and a mailto */
/* email_api_list_unsub_ok: ct carries a List-Unsubscribe value safe to send as a header
 * (no control characters, at most EMAIL_LIST_UNSUB_MAX bytes). */
bool email_api_list_unsub_ok(const struct content *ct);
/* email_api_list_unsub: when ct carries one, add parent.member = the List-Unsubscribe and
 * List-Unsubscribe-Post headers: an object {name: value} (SendGrid, Resend), or with
 * pairs an array [{Name, Value}] (Postmark, SES v2). */
void email_api_list_unsub(const struct content *ct, cJSON *parent, const char *member,
                          bool pairs);

#endif
