/* receipt.h: delivery receipts and the suppression list.
 *
 * A provider's receipt (already verified and parsed by the API: src/api/receipts.c) is a
 * struct receipt_event. engine_receipt_apply finds the message by the provider's own
 * message id (store_msgref_get; deliver.c records it with every SENT outcome), adds a
 * history row carrying the provider's event name, moves the status forward only, and adds
 * the address to the suppression list on a hard bounce or a complaint.
 *
 * The status rule (docs/api.md "Delivery receipts"):
 *   SENT < DELIVERED < OPENED < CLICKED: a receipt moves the status only to a later one of
 *     these; an earlier or equal one (out of order, duplicate) adds history only.
 *   A bounce (hard or soft) while the status is SENT ends the message UNDELIVERABLE with
 *     reason BOUNCED and reasonCode "hard"/"soft". A bounce after DELIVERED (or later) is
 *     recorded in history (and suppresses on hard) but the status stays: it never goes
 *     backwards.
 *   A complaint adds history and suppresses; a complaint proves delivery, so SENT moves
 *     to DELIVERED.
 *   After UNDELIVERABLE, or any status a message has before SENT or instead of it
 *     (CANCELED, UNROUTABLE...), a receipt adds history only.
 *
 * Suppression: documents of the "suppressions" collection, id = the address normalised
 * (email: lower case; phone: as given, without spaces). A send to a suppressed address
 * ends UNDELIVERABLE reason SUPPRESSED before any provider call (deliver.c asks
 * engine_suppressed). */
#ifndef HERALD_ENGINE_RECEIPT_H
#define HERALD_ENGINE_RECEIPT_H

#include "../store/store.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

#define SUPPRESSIONS_COLL "suppressions"
#define RECEIPT_SEEN_COLL "receipt_seen"
#define SUPPRESSION_ADDRESS_MAX 320

enum receipt_kind {
    RECEIPT_OTHER = 0,      /* processed, deferred, queued...: history only */
    RECEIPT_DELIVERED,
    RECEIPT_OPENED,
    RECEIPT_CLICKED,
    RECEIPT_BOUNCE_SOFT,
    RECEIPT_BOUNCE_HARD,
    RECEIPT_COMPLAINT,
};

struct receipt_event {
    char provider[32];       /* provider name ("sendgrid") */
    char provider_id[128];   /* the configuration that received it */
    char reference[512];     /* the provider's message id */
    char event[64];          /* the provider's own event name ("bounce", "Delivery") */
    int kind;                /* enum receipt_kind */
    char address[SUPPRESSION_ADDRESS_MAX + 1]; /* recipient (email or phone), may be "" */
    char detail[512];        /* the provider's words (bounce reason), may be "" */
    char link[1024];         /* clicked URL, may be "" */
    char event_id[256];      /* the provider's id of this event, "" if none: a second
                                receipt with the same id is a duplicate and ignored */
    int64_t ts_ms;           /* when the provider saw it; 0 unknown */
};

/* receipt_rank: the order of the statuses a receipt moves: 1 SENT, 2 DELIVERED,
 * 3 OPENED, 4 CLICKED; 0 for any other status. Pure. */
int receipt_rank(struct str status);

/* receipt_next_status: the status a message in `status` moves to on a receipt of `kind`,
 * or NULL when it stays (the rule above). *reason_code gets "hard"/"soft" for a bounce
 * that ends the message, else NULL. Pure. */
const char *receipt_next_status(struct str status, int kind, const char **reason_code);

/* receipt_kind_name: "DELIVERED", "OPENED", "CLICKED", "BOUNCED", "COMPLAINED", "OTHER"
 * (the history row's type is the Courier status; this names the kind). Pure. */
const char *receipt_kind_name(int kind);

/* receipt_normalize_address: the suppression key of an address into out (cap bytes):
 * lower case for an email (has '@'), spaces, dashes and parentheses dropped for a phone.
 * false when empty or too long. Pure. */
bool receipt_normalize_address(const char *address, char *out, size_t cap);

/* engine_receipt_apply: inside t, apply one receipt (rule above). *found is set false
 * when no message has this reference (the receipt is then acknowledged and ignored),
 * *duplicate when its event_id was seen before. Returns 0 or a store error. */
int engine_receipt_apply(struct store_txn *t, const struct receipt_event *ev, int64_t now_ms,
                         bool *found, bool *duplicate) HR_MUSTCHECK;

/* engine_receipt_seen: inside t, record nonce (a signature, token or delivery id of a
 * provider's request) as seen for provider_id. HR_CONFLICT when it was seen before (a
 * replay). */
int engine_receipt_seen(struct store_txn *t, const char *provider_id, const char *nonce,
                        int64_t now_ms) HR_MUSTCHECK;

/* engine_suppression_add: inside t, add address to the suppression list with reason
 * ("BOUNCED", "COMPLAINED", "MANUAL"), provider (may be ""), the receipt's event name
 * and message id (may be ""). An address already listed keeps its first entry
 * (HR_CONFLICT). HR_INVAL for an empty or too long address. */
int engine_suppression_add(struct store_txn *t, const char *address, const char *reason,
                           const char *provider, const char *event, const char *message_id,
                           int64_t now_ms) HR_MUSTCHECK;

/* engine_suppression_entry: the JSON of one stored entry with its created time (caller
 * owns), from a "suppressions" document. */
cJSON *engine_suppression_entry(const struct doc_rec *d);

/* engine_suppressed: whether the address this profile has for channel ("email":
 * profile.email, "sms": profile.phone_number) is suppressed; the address goes to addr
 * (cap bytes). Returns 1 suppressed, 0 not (or no address), or a store error. Any
 * thread (a read). */
int engine_suppressed(struct store *s, const char *channel, const cJSON *profile, char *addr,
                      size_t cap);

/* receipt_suppressed_history: inside t, the history row of a delivery not attempted
 * because the address is suppressed (UNDELIVERABLE, reason SUPPRESSED, detail). */
int receipt_suppressed_history(struct store_txn *t, struct str id, const char *channel,
                               const char *detail, int64_t now_ms) HR_MUSTCHECK;

#endif
