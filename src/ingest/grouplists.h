/* grouplists.h: Courier lists kept in step with Segment groups (issue 15 point 1).
 *
 * The operator links groups to lists with the workspace setting `group_lists`
 * ({"prefix": "groups.", "allow_client": false}, or null: unlinked), stored in the meta
 * key GROUPLISTS_META_KEY; PUT /settings checks it with grouplists_parse. While linked, a
 * Segment group call with a userId subscribes that user to the list <prefix><groupId>,
 * creating the list when it is missing (named from the group's traits.name), inside the
 * events job's transaction, so the subscription is as durable and as deduplicated as the
 * event. A groupId that cannot form a valid list id (or a userId longer than a list
 * subscription takes) is skipped, logged and counted; the event itself still applies. A
 * deleted list is left alone. A client-scope write key's group call subscribes nobody
 * unless allow_client (ingest.c decides that). The job makes the subscriptions after its
 * events applied, sorted by (list id, user id): the lock order in ingest.c. Nothing is
 * ever unsubscribed here (Segment has no "leave group" call). */
#ifndef HERALD_INGEST_GROUPLISTS_H
#define HERALD_INGEST_GROUPLISTS_H

#include "../store/store.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GROUPLISTS_META_KEY "group_lists"
#define GROUPLISTS_PREFIX_MAX 128 /* bytes of a prefix */
#define GROUPLISTS_NAME_MAX 256   /* bytes of a list name taken from traits.name */

/* The link between groups and lists (the setting, parsed). */
struct grouplists_link {
    bool on;                                /* linked; false: group calls leave lists alone */
    bool allow_client;                      /* client-scope keys' group calls subscribe too */
    char prefix[GROUPLISTS_PREFIX_MAX + 1]; /* NUL-terminated */
};

/* grouplists_parse: the setting's JSON value into *out: null gives an unlinked link; an
 * object needs `prefix` (1..GROUPLISTS_PREFIX_MAX bytes that start a valid list id:
 * prefix + "x" passes store_list_id_valid) and may have `allow_client` (a boolean,
 * default false); nothing else. Returns 0, or HR_INVAL with the reason (for an API
 * caller, naming group_lists) in err. Pure. */
int grouplists_parse(const cJSON *v, struct grouplists_link *out, struct herr *err);

/* grouplists_json: l as the setting's JSON value: {"prefix", "allow_client"} when on, a
 * JSON null when off. New; the caller owns it. Pure. */
cJSON *grouplists_json(const struct grouplists_link *l);

/* grouplists_load: the link stored in s (unlinked when the setting is absent or empty; a
 * stored value that does not parse is taken as unlinked, with a warning). Returns 0 or
 * the store's error. Any thread. */
int grouplists_load(struct store *s, struct grouplists_link *out);

/* grouplists_list_id: prefix + group_id into out (cap bytes) when that is a valid list id
 * and fits; false otherwise (out is then empty). Pure. */
bool grouplists_list_id(const struct grouplists_link *l, const char *group_id, char *out,
                        size_t cap);

/* One subscription a job's group call asked for. Strings are heap, owned by the pending
 * set. */
struct grouplists_sub {
    char *list_id, *user_id;
    char *name;    /* the group's traits.name then, or NULL: the list's name if created */
    int64_t at_ms; /* the event's receive time */
    size_t seq;    /* order of asking: the latest name of a list wins */
};

/* The subscriptions a job's events asked for, in the order asked (until commit sorts
 * them). Zero-initialised is empty. */
struct grouplists_pending {
    struct grouplists_sub *v;
    size_t n, cap, seq;
};

/* grouplists_note: the list effect of one group event of user_id in group_id (the caller
 * checked that l is on and that the key may subscribe): adds the subscription to p, or,
 * when group_id cannot form a list id or user_id is too long for a subscription, skips
 * it with an ingest.group_list_skipped warning and herald_ingest_group_list_skipped_total
 * {reason}. name (may be NULL) is the group's traits.name; it is kept only when it is a
 * usable list name. Copies what it keeps. Returns true when added. */
bool grouplists_note(const struct grouplists_link *l, struct grouplists_pending *p,
                     const char *group_id, struct str user_id, const char *name,
                     int64_t event_id, int64_t at_ms);

/* grouplists_pending_truncate: drop the entries from index n on (those of events whose
 * savepoint was rolled back); 0 empties p. */
void grouplists_pending_truncate(struct grouplists_pending *p, size_t n);

/* grouplists_pending_cleanup: free everything p holds; p is empty afterwards. */
void grouplists_pending_cleanup(struct grouplists_pending *p);

/* grouplists_commit: inside t, make p's subscriptions in (list id, user id) order: each
 * list is created (store_list_create, named from its latest asked name, else its id)
 * unless it exists, then its users are subscribed unless already (store_list_sub_add:
 * existing preferences stay; a deleted list gets nobody). Sorts p in place. Returns 0
 * or the store's error. */
int grouplists_commit(struct store_txn *t, struct grouplists_pending *p);

#endif
