/* segment.h: turns the body of a Segment tracking-API request into validated, normalised
 * events (docs: shared/reference/segment.md). Pure: no I/O, no store, no HTTP. Callers:
 *   POST /v1/{batch,import,track,identify,page,screen,group,alias} and /v1/{b,t,i,p,s,g,a}
 *       -> seg_kind_from_path() + seg_parse();  /v1/m -> SEG_METRICS: accept and discard;
 *   POST /inbound/segment (Segment's Webhooks destination) -> seg_parse_destination();
 *   POST /inbound/courier (Courier's track API) -> seg_parse_courier().
 *
 * Rules applied to every accepted event (segment.md §6, §8):
 *   - `type` valid; a single-event route sets it from the path, overriding the body;
 *   - `userId` or `anonymousId` a non-empty string (numeric ids, and numeric groupId and
 *     previousId, are converted to strings); `event` for track, `groupId` for group,
 *     `previousId` for alias; `properties`/`traits`/`context`/`integrations` objects when
 *     present (a JSON null counts as absent and is dropped);
 *   - `messageId` a string of at most message_id_max characters (code points); when absent
 *     or "" one is generated: "herald-" + 32 random hex;
 *   - batch-level `context` and `integrations` merged into each item, shallowly, item keys
 *     winning; batch-level `sentAt` copied into items lacking one; `writeKey` removed;
 *   - `receivedAt` = arrival time, ISO-8601 ms UTC (always overwritten);
 *   - if `originalTimestamp` is missing it is set to `timestamp`, else to receivedAt; then
 *     timestamp = receivedAt - (sentAt - originalTimestamp), sentAt taken from the event,
 *     else the batch, else receivedAt. When a date does not parse, the fields are kept as
 *     given (and `timestamp`, if absent, is set to receivedAt);
 *   - later duplicates of the top-level keys this module reads are dropped (the first one
 *     wins, as in cJSON), so every reader of the stored event sees the same values;
 *   - the compact serialized event is at most event_max bytes (measured on the stored,
 *     normalised form). Unknown fields are kept.
 * Thread-safe: no shared state. */
#ifndef HERALD_INGEST_SEGMENT_H
#define HERALD_INGEST_SEGMENT_H

#include "../util/rc.h"
#include "../util/str.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a call carries: a batch, one event of a given type, or browser metrics. */
enum seg_kind {
    SEG_BATCH = 0,
    SEG_TRACK,
    SEG_IDENTIFY,
    SEG_PAGE,
    SEG_SCREEN,
    SEG_GROUP,
    SEG_ALIAS,
    SEG_METRICS, /* /v1/m: the caller accepts and discards the body */
};

struct seg_limits {
    size_t request_max;    /* body bytes, after gunzip (500 KB); over it: HR_TOOBIG */
    size_t event_max;      /* bytes of one normalised event, compact JSON (32 KB) */
    size_t batch_max;      /* events in a batch or destination array (2,500) */
    size_t message_id_max; /* longest messageId, in characters (99: Segment wants < 100) */
    size_t expand_max;     /* summed bytes of all serialized events of one request (8 MB):
                            * bounds what batch-level context merging can inflate */
    int depth_max;         /* JSON nesting (64) */
};

/* seg_limits_default: Segment's limits above. seg_limits_destination: the same, but
 * 4 MB and 4,000 events per request, since Segment's Webhooks (Actions) destination
 * batches up to 4,000 events. */
void seg_limits_default(struct seg_limits *l);
void seg_limits_destination(struct seg_limits *l);

#define SEG_REJECT_MSG 128

struct seg_event {
    enum seg_kind type;     /* SEG_TRACK .. SEG_ALIAS */
    size_t index;           /* position in the request: array index, 0 for a single event */
    cJSON *json;            /* the normalised event; owned by the result; treat read-only */
    const char *user_id;    /* inside json; NULL when absent, null or "" */
    const char *message_id; /* inside json; never NULL */
    char *serialized;       /* compact JSON of json, NUL-terminated; owned by the result */
    size_t serialized_len;
};

struct seg_reject {
    size_t index;               /* position in the request */
    char msg[SEG_REJECT_MSG];   /* why, safe to show to the API caller */
};

/* Caller's storage; filled by the seg_parse* functions (which zero it first, so cleanup is
 * always safe after a call, whatever it returned). To keep an event's json or serialized
 * text past cleanup, copy the pointer and set the field to NULL. */
struct seg_result {
    struct seg_event *events; /* accepted events, in request order */
    size_t n_events;
    struct seg_reject *rejects; /* invalid items, in request order; one by one, they do not
                                 * stop their siblings */
    size_t n_rejects;
    char *write_key; /* top-level `writeKey` string of the body (batch or single event),
                      * for auth when there is no Basic header; NULL if none */
    bool client;     /* set by the caller before ingest_accept: the events come from a
                      * client-scope write key, so src/ingest/ingest.c limits what they may
                      * change (never set by the parsers) */
};

/* seg_result_cleanup: free everything r owns and zero it; r may be NULL. */
void seg_result_cleanup(struct seg_result *r);

/* seg_kind_from_path: map the path part after "/v1/" ("batch", "b", "import", "track",
 * "t", "identify", "i", "page", "p", "screen", "s", "group", "g", "alias", "a", "m"; one
 * trailing '/' tolerated) to a kind. Returns 0, or HR_NOTFOUND. */
int seg_kind_from_path(struct str suffix, enum seg_kind *out);

/* seg_kind_name: "batch", "track", ..., "metrics"; static, never NULL. */
const char *seg_kind_name(enum seg_kind k);

/* seg_parse: parse a tracking-API body of the given kind (SEG_BATCH or one event type),
 * received at received_at_ms (ms since the epoch); lim NULL means seg_limits_default().
 * Request-level problems return a negative rc with a message naming the problem in err:
 * HR_TOOBIG (body over request_max, or the normalised batch over expand_max: answer 413)
 * or HR_INVAL (invalid UTF-8, malformed or too deeply nested JSON, body not an object, batch
 * without a `batch` array, batch over batch_max, batch-level context/integrations not
 * objects: answer 400). Otherwise returns 0 with each item either in out->events or in
 * out->rejects (a single-event call yields exactly one of the two). SEG_METRICS yields 0
 * and an empty result without reading the body. */
int seg_parse(const char *body, size_t len, enum seg_kind kind, int64_t received_at_ms,
              const struct seg_limits *lim, struct seg_result *out, struct herr *err)
    HR_MUSTCHECK;

/* seg_parse_destination: as seg_parse, for Segment's Webhooks destination: the body is one
 * event or a JSON array of events, each typed by its own `type`. A body that is neither an
 * object nor an array of objects is HR_INVAL. There is no batch-level context; write_key
 * is taken from a single-object body only. */
int seg_parse_destination(const char *body, size_t len, int64_t received_at_ms,
                          const struct seg_limits *lim, struct seg_result *out,
                          struct herr *err) HR_MUSTCHECK;

/* seg_parse_courier: parse Courier's track API body (POST /inbound/courier):
 * {event: string (required), messageId: string (required, <= message_id_max characters),
 * type: "track" (required), userId?: string or null, properties: object (required)} plus
 * any other fields, into the same normalised track event (no userId/anonymousId needed).
 * Returns 0 with exactly one event, or HR_TOOBIG / HR_INVAL with a message in err (an
 * invalid event is a request-level error here). */
int seg_parse_courier(const char *body, size_t len, int64_t received_at_ms,
                      const struct seg_limits *lim, struct seg_result *out, struct herr *err)
    HR_MUSTCHECK;

/* seg_catalog_name: the event-catalog name of a (normalised) event, in Courier's naming:
 * "track/<event>", "identify", "group", "page/<name>" or "page", "screen/<name>" or
 * "screen", "alias". Returns a heap string the caller frees with free(), or NULL when the
 * type is unknown or a track event has no event name. */
char *seg_catalog_name(const cJSON *event);

/* seg_run_data_new: the automation run `data` object for an event: a deep copy of the
 * whole event, plus each `properties` key copied to the top level (replacing what was
 * there) unless the name is a Segment field (type, event, userId, anonymousId, messageId,
 * timestamp, context, properties, traits, integrations, receivedAt, sentAt,
 * originalTimestamp, channel, version, groupId, previousId, name, category). The caller
 * owns the result (cJSON_Delete); never NULL (an empty object when event is not one).
 * Stored runs and messages derive their data again with it (engine.event_data, wired by
 * main): its output for an event already stored must not change from one herald to the
 * next (test_segment's test_run_data pins it to the byte). */
cJSON *seg_run_data_new(const cJSON *event);
/* seg_run_data_take: seg_run_data_new(event), made of event itself (taken: the caller
 * must not use or free it after; NULL or not an object gives an empty object): for an
 * event parsed only to derive its data, without the deep copy. */
cJSON *seg_run_data_take(cJSON *event);
/* seg_run_data_view: seg_run_data_new(event) made of references into event (new, caller
 * owns; its values are event's): valid only while event is, and not to be changed in
 * place. For a run's context while the event that starts it is at hand (the accept),
 * without the deep copy. Prints the same bytes. */
cJSON *seg_run_data_view(const cJSON *event);

#endif
