/* record.h: Courier's MessageDetails for a stored message: what GET /messages/{id}
 * answers, and the `data` of a status webhook's message:updated event. */
#ifndef HERALD_ENGINE_RECORD_H
#define HERALD_ENGINE_RECORD_H

#include "../store/store.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

/* engine_message_record: the record of m (new object, caller owns): id, requestId, status,
 * recipient, event, notification, enqueued/sent/delivered/opened/clicked/canceledAt,
 * reason, error, runId, traceId, tags, and with_providers the per-channel providers.
 * Pure; any thread. */
cJSON *engine_message_record(const struct message_rec *m, bool with_providers);

#endif
