/* tracking.h: open and click tracking for email (off by default; a template turns it on
 * with "tracking": {"opens": true, "clicks": true}).
 *
 * At render time (send.route), the email HTML of a tracked template gets every http(s)
 * href rewritten to <public url>/t/c/<token> and, for opens, a 1x1 image
 * <public url>/t/o/<token> before </body>. A token is
 *   base64url("o"|"c" + message id + "\n" + link) "." base64url(HMAC-SHA256(key, ...))
 * with a key kept in the store's meta (TRACK_SECRET_META, 32 random bytes made at first
 * use), so the link a click redirects to is inside the signed token: it can never be
 * turned into an open redirect. GET /t/o and /t/c record OPENED / CLICKED (the link in
 * the history); the status only moves forward: SENT < DELIVERED < OPENED < CLICKED. */
#ifndef HERALD_ENGINE_TRACKING_H
#define HERALD_ENGINE_TRACKING_H

#include "../store/store.h"
#include "../util/channel.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#define TRACK_SECRET_META "tracking.secret"
#define TRACK_TOKEN_MAX 4096     /* bytes of a token accepted from a request */
#define TRACK_LINK_MAX 2048      /* bytes of a link that is rewritten (longer: left alone) */
#define TRACK_HTML_MAX (8u << 20) /* rewritten HTML; past it the HTML is left as it was */
#define TRACK_CLICKS_LOGGED 20   /* CLICKED history rows kept per message, at most */

struct engine;

/* tracking_key: the process's tracking key (32 bytes), read from the store's meta or
 * created there at first use (one winner over racing nodes); cached after. Any thread
 * but the store's writer. Returns 0 or a store error. */
int tracking_key(struct store *s, uint8_t out[32]) HR_MUSTCHECK;

/* tracking_token: a token of kind 'o' or 'c' for message_id and link ("" for opens)
 * (malloc'd, caller frees). Pure. */
char *tracking_token(const uint8_t key[32], char kind, const char *message_id, const char *link);

/* tracking_token_check: verify token (constant-time MAC compare) and split it: *kind,
 * message id and link into the caller's buffers (NUL-terminated). HR_NOTFOUND for any
 * token that is malformed, too long, forged or edited, or whose link is not http(s).
 * Pure. */
int tracking_token_check(const uint8_t key[32], struct str token, char *kind, char *id,
                         size_t id_cap, char *link, size_t link_cap);

/* tracking_rewrite_html: html with its http(s) hrefs turned into click links (clicks)
 * and an open pixel added (opens), under base (the public URL, no trailing slash).
 * Returns a malloc'd string, or NULL when there is nothing to change or the result
 * would pass TRACK_HTML_MAX. Pure. */
char *tracking_rewrite_html(const char *html, const uint8_t key[32], const char *base,
                            const char *message_id, bool opens, bool clicks);

/* engine_tracking_apply: when template tmpl (may be NULL) turns tracking on and c is an
 * email with HTML, rewrite c->html in place for message_id. Returns 0 (when the key
 * cannot be read, the HTML is left untracked and a warning logged). Called by
 * send.route before the output is kept; not on the store's writer thread. */
int engine_tracking_apply(struct engine *e, const cJSON *tmpl, const char *message_id,
                          struct content *c) HR_MUSTCHECK;

/* engine_track_record: inside t, record an open ('o') or a click ('c', with link) of
 * message_id at now: history OPENED / CLICKED (clicks past TRACK_CLICKS_LOGGED are
 * counted, not logged), the first times in the state, and the status moved forward
 * only. HR_NOTFOUND when the message is gone. */
int engine_track_record(struct store_txn *t, char kind, const char *message_id,
                        const char *link, int64_t now) HR_MUSTCHECK;

#endif
