/* prefs.h: subscription topics, a user's preferences per topic, their evaluation at the
 * route stage, and the signed one-click unsubscribe tokens (RFC 8058).
 *
 * Storage: documents in two collections. "topics": id = topic id, body
 * {"topic_name", "default_status"}. "user_prefs": id = user id, body
 * {"<topic id>": {"status", "has_custom_routing", "custom_routing": [...]}}.
 * A status is OPTED_IN, OPTED_OUT or REQUIRED. A topic that no document defines behaves
 * as OPTED_IN. A REQUIRED topic cannot be opted out of (the user's status is kept but
 * never filters; Courier answers such a PUT with 400, and so does the API).
 *
 * Tokens: "<hex user id>.<hex topic id>.<issued s>.<32 hex of HMAC-SHA256>", keyed by a
 * random secret made once per store (meta "prefs.unsub_secret"). They expire only when
 * the engine's unsub_ttl_s is set. */
#ifndef HERALD_ENGINE_PREFS_H
#define HERALD_ENGINE_PREFS_H

#include "send.h"

#include "../util/json.h"

#include <stdbool.h>

#define PREFS_COLL_TOPICS "topics"
#define PREFS_COLL_USERS "user_prefs"
#define PREFS_TOPIC_ID_MAX 128
#define PREFS_USER_ID_MAX 256
#define PREFS_TOPIC_NAME_MAX 256
#define PREFS_TOKEN_MAX (2 * PREFS_USER_ID_MAX + 2 * PREFS_TOPIC_ID_MAX + 64)
#define PREFS_URL_MAX (PREFS_TOKEN_MAX + 512)
#define PREFS_LINK_MAX 900 /* longest unsubscribe link made: it must fit a header line */

/* prefs_topic_id_valid: 1..PREFS_TOPIC_ID_MAX bytes of [A-Za-z0-9_.:-]. */
bool prefs_topic_id_valid(struct str id);
/* prefs_status_valid: s is OPTED_IN, OPTED_OUT or REQUIRED. */
bool prefs_status_valid(const char *s);
/* prefs_channel_valid: s is one of Courier's channel classifications (direct_message,
 * email, push, sms, webhook, inbox). */
bool prefs_channel_valid(const char *s);

/* prefs_message_check: message.preferences on /send: absent, null, or an object whose
 * only honoured member is subscription_topic_id (a valid topic id). HR_INVAL with err
 * naming the field otherwise. */
int prefs_message_check(const cJSON *prefs, struct herr *err);

/* prefs_topic_pref_check: the `topic` body of PUT /users/:id/preferences/:topic
 * ({status, has_custom_routing?, custom_routing?}). HR_INVAL with err naming the field. */
int prefs_topic_pref_check(const cJSON *topic, struct herr *err);

/* What the route stage decides for one message. */
struct prefs_decision {
    char topic_id[PREFS_TOPIC_ID_MAX + 1]; /* "" when the message has no topic */
    const char *status;                    /* effective status (static string) */
    bool filtered;                         /* opted out: the message ends FILTERED */
    cJSON *channels;                       /* custom routing: allowed channels, or NULL */
    char unsub_url[PREFS_URL_MAX];         /* "" when none (no topic, REQUIRED, no
                                              public URL, no user id, or a link longer
                                              than PREFS_LINK_MAX) */
};

/* prefs_decide: the topic of the message (spec.preferences.subscription_topic_id, else
 * tmpl.subscription.topic_id) and the user's effective status for it. public_url may be
 * NULL (no links). Returns HR_OK or a store error (the caller retries). Release d with
 * prefs_decision_cleanup. */
int prefs_decide(struct engine *e, const cJSON *spec, const cJSON *tmpl, const char *user_id,
                 struct prefs_decision *d) HR_MUSTCHECK;
void prefs_decision_cleanup(struct prefs_decision *d);
/* prefs_channel_allowed: custom routing allows channel ch (always, without one). */
bool prefs_channel_allowed(const struct prefs_decision *d, const char *ch);
/* prefs_list_unsubscribe: the List-Unsubscribe header value for d ("<url>" plus
 * ", <mailto:...>" when e->unsub_mailto is set) into out; "" when d has no URL. */
void prefs_list_unsubscribe(const struct engine *e, const struct prefs_decision *d, char *out,
                            size_t cap);

/* prefs_token_make: a token for user uid and topic tid into out (PREFS_TOKEN_MAX).
 * HR_OK, HR_INVAL (ids too long), or a store error reading/creating the secret. */
int prefs_token_make(struct store *s, int64_t now_ms, struct str uid, struct str tid, char *out,
                     size_t cap) HR_MUSTCHECK;
/* prefs_token_parse: check token's signature (constant time) and age (ttl_s > 0), and
 * give its user and topic ids (NUL-terminated, caps PREFS_USER_ID_MAX+1 and
 * PREFS_TOPIC_ID_MAX+1). HR_NOTFOUND for any bad token (no detail), or a store error. */
int prefs_token_parse(struct store *s, int64_t now_ms, int64_t ttl_s, struct str token,
                      char *uid, char *tid) HR_MUSTCHECK;

/* prefs_user_topics: the items of GET /users/:id/preferences (Courier's TopicPreference:
 * topic_id, topic_name, default_status, status, has_custom_routing?, custom_routing?):
 * every defined topic, plus topics only the user has, in topic id order. Caller owns
 * *out. */
int prefs_user_topics(struct store *s, struct str uid, cJSON **out) HR_MUSTCHECK;
/* prefs_user_set: inside t, set the user's preference for topic tid to topic (checked
 * with prefs_topic_pref_check; copied). A topic with neither has_custom_routing nor
 * custom_routing keeps the stored custom routing (the hosted page changes the status
 * alone). HR_OK or a store error. */
int prefs_user_set(struct store_txn *t, struct str uid, struct str tid, const cJSON *topic,
                   int64_t now_ms) HR_MUSTCHECK;
/* prefs_topic_get: the topic document (caller owns *out), HR_NOTFOUND when undefined. */
int prefs_topic_get(struct store *s, struct str tid, cJSON **out) HR_MUSTCHECK;

#endif
