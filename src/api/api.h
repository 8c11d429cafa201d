/* api.h: herald's public HTTP resources. One file per resource; this header holds what
 * they share: the context every handler gets, the route table, the authenticator, and
 * helpers for JSON bodies and errors. The api layer is the only one that knows both
 * HTTP (src/http/http.h types) and the layers below it. */
#ifndef HERALD_API_API_H
#define HERALD_API_API_H

#include "../http/http.h"
#include "../queue/queue.h"
#include "../store/store.h"
#include "../util/clock.h"

#include <cjson/cJSON.h>

struct ingest;
struct engine;

struct api_ctx {
    struct store *store;  /* not owned */
    struct ingest *ingest;/* not owned */
    struct engine *engine;/* not owned */
    struct queue *queue;  /* not owned; may be NULL in CLI tools */
    struct hclock *clock; /* not owned */
};

/* The route table, terminated by a zero entry. */
extern const struct http_route api_routes[];

/* api_authenticate: the http_auth_fn for api_routes (ctx is a struct api_ctx *).
 * Admin routes take `Authorization: Bearer <admin key>`; write-key routes take
 * `Authorization: Basic base64(writeKey[:])` or Bearer. A valid key of the other kind
 * is HR_CONFLICT (403); a missing or unknown one HR_PERM (401).
 * Write-key routes without an Authorization header pass with req->auth.kind == 0: the
 * key may be `writeKey` in the body, so their handler must authenticate after parsing
 * and before storing anything. */
int api_authenticate(void *ctx, struct http_req *req, char *msg);

/* api_key_check: hash `key`, find it in the store and compare in constant time.
 * Returns 0 and fills *out, HR_PERM when unknown or revoked, or a store error. A write
 * key found valid is remembered per store for API_KEY_CACHE_TTL_MS (hash -> record),
 * so the ingest path skips the store lookup; a revocation therefore reaches a running
 * server within that TTL for write keys (admin keys are never cached: at once). */
int api_key_check(struct store *s, struct str key, struct key_rec *out);

#define API_KEY_CACHE_TTL_MS 5000
/* api_key_cache_clear: forget every remembered key (call after revoking a key in this
 * process). api_key_cache_set_ttl: change the TTL (tests; 0 turns the cache off). */
void api_key_cache_clear(void);
void api_key_cache_set_ttl(int64_t ttl_ms);

#define API_KEY_MAX 64        /* bytes for a key with its NUL */
#define API_KEY_PREFIX_LEN 12 /* characters stored in clear to name a key */

/* api_key_create: make a new key of `kind` (enum key_kind) and `scope` (enum key_scope;
 * KEY_SCOPE_CLIENT only for a write key) named `name`, store its hash, and write the key
 * (shown once, never stored) into out (API_KEY_MAX bytes). */
int api_key_create(struct store *s, int kind, int scope, const char *name, int64_t now_ms,
                   char *out, struct herr *err) HR_MUSTCHECK;
/* api_bootstrap: on a store's first start, create the workspace with one admin key
 * and one client-scope write key (into admin_key/write_key, API_KEY_MAX bytes each) and set
 * *created; on later starts do nothing (*created = false). Of several nodes starting at
 * once on one empty store, exactly one creates keys (store_meta_add decides). */
int api_bootstrap(struct store *s, int64_t now_ms, char *admin_key, char *write_key,
                  bool *created, struct herr *err) HR_MUSTCHECK;

/* api_parse_json: parse the request body as a JSON object (bounded, UTF-8 checked).
 * On failure answers 400 on resp and returns < 0. *out is owned by the caller. */
int api_parse_json(struct http_req *req, struct http_resp *resp, cJSON **out);

/* api_doc_delete: DELETE of the document named by the path's first parameter in coll:
 * 204, or 404 naming the `noun` ("brand", "profile"...). */
void api_doc_delete(struct api_ctx *ctx, struct http_req *req, struct http_resp *resp,
                    const char *coll, const char *noun);

/* api_status_for_rc: the HTTP status for a herald result code. */
int api_status_for_rc(int rc);
/* api_error_rc: answer resp with the status for rc and err's message (429 and 503 with
 * Retry-After; HR_FULL as api_error_store_full). */
void api_error_rc(struct http_resp *resp, int rc, const struct herr *err);
/* api_error_store_full: 503 {"message", "type": "api_error", "code": "store_full"} with
 * Retry-After: the store cannot write because its disk is full; reads still work and
 * writes succeed again once space returns. */
#define API_STORE_FULL_MSG \
    "the store's disk is full: nothing was written; retry after space is freed"
#define API_STORE_FULL_RETRY_S "5"
void api_error_store_full(struct http_resp *resp);

/* Handlers, by resource file. */
void api_health(void *ctx, struct http_req *req, struct http_resp *resp);
void api_ready(void *ctx, struct http_req *req, struct http_resp *resp);
void api_debug(void *ctx, struct http_req *req, struct http_resp *resp);
void api_metrics(void *ctx, struct http_req *req, struct http_resp *resp);
void api_openapi(void *ctx, struct http_req *req, struct http_resp *resp);
void api_admin_queue(void *ctx, struct http_req *req, struct http_resp *resp);
void api_admin_ping(void *ctx, struct http_req *req, struct http_resp *resp);
void api_v1(void *ctx, struct http_req *req, struct http_resp *resp);
void api_inbound_segment(void *ctx, struct http_req *req, struct http_resp *resp);
void api_inbound_courier(void *ctx, struct http_req *req, struct http_resp *resp);
void api_profile_get(void *ctx, struct http_req *req, struct http_resp *resp);
/* prefs.c */
void api_topics_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_topic_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_topic_put(void *ctx, struct http_req *req, struct http_resp *resp);
void api_topic_delete(void *ctx, struct http_req *req, struct http_resp *resp);
void api_user_prefs_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_user_pref_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_user_pref_put(void *ctx, struct http_req *req, struct http_resp *resp);
void api_unsub_page(void *ctx, struct http_req *req, struct http_resp *resp);
void api_unsub_post(void *ctx, struct http_req *req, struct http_resp *resp);
/* api_prefs_profile: a profile's `preferences` ({categories: {<topic>: {status,
 * channel_preferences?}} or null, notifications: {}}) from the user's stored choices.
 * Caller owns the result. */
cJSON *api_prefs_profile(struct api_ctx *ctx, struct str uid);
void api_profile_merge(void *ctx, struct http_req *req, struct http_resp *resp);
void api_profile_replace(void *ctx, struct http_req *req, struct http_resp *resp);
void api_profile_patch(void *ctx, struct http_req *req, struct http_resp *resp);
void api_profile_delete(void *ctx, struct http_req *req, struct http_resp *resp);
void api_catalog_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_catalog_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_settings_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_settings_put(void *ctx, struct http_req *req, struct http_resp *resp);
void api_send(void *ctx, struct http_req *req, struct http_resp *resp);
void api_messages_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_message_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_message_history(void *ctx, struct http_req *req, struct http_resp *resp);
void api_message_output(void *ctx, struct http_req *req, struct http_resp *resp);
void api_message_cancel(void *ctx, struct http_req *req, struct http_resp *resp);
void api_automation_put(void *ctx, struct http_req *req, struct http_resp *resp);
void api_automation_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_automation_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_automation_delete(void *ctx, struct http_req *req, struct http_resp *resp);
void api_automation_from_event(void *ctx, struct http_req *req, struct http_resp *resp);
void api_automation_invoke_adhoc(void *ctx, struct http_req *req, struct http_resp *resp);
void api_automation_invoke(void *ctx, struct http_req *req, struct http_resp *resp);
void api_automation_run_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_link_create(void *ctx, struct http_req *req, struct http_resp *resp);
void api_link_delete(void *ctx, struct http_req *req, struct http_resp *resp);
void api_link_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_automation_runs_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_lists_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_list_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_list_put(void *ctx, struct http_req *req, struct http_resp *resp);
void api_list_delete(void *ctx, struct http_req *req, struct http_resp *resp);
void api_list_restore(void *ctx, struct http_req *req, struct http_resp *resp);
void api_list_subs_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_list_subs_add(void *ctx, struct http_req *req, struct http_resp *resp);
void api_list_subs_replace(void *ctx, struct http_req *req, struct http_resp *resp);
void api_list_sub_put(void *ctx, struct http_req *req, struct http_resp *resp);
void api_list_sub_delete(void *ctx, struct http_req *req, struct http_resp *resp);
void api_profile_lists_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_profile_lists_subscribe(void *ctx, struct http_req *req, struct http_resp *resp);
void api_profile_lists_delete(void *ctx, struct http_req *req, struct http_resp *resp);
void api_bulk_create(void *ctx, struct http_req *req, struct http_resp *resp);
void api_bulk_add_users(void *ctx, struct http_req *req, struct http_resp *resp);
void api_bulk_run(void *ctx, struct http_req *req, struct http_resp *resp);
void api_bulk_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_bulk_users(void *ctx, struct http_req *req, struct http_resp *resp);
void api_bulk_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_render(void *ctx, struct http_req *req, struct http_resp *resp);
void api_webhooks_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_webhook_create(void *ctx, struct http_req *req, struct http_resp *resp);
void api_webhook_get(void *ctx, struct http_req *req, struct http_resp *resp);
void api_webhook_replace(void *ctx, struct http_req *req, struct http_resp *resp);
void api_webhook_delete(void *ctx, struct http_req *req, struct http_resp *resp);
void api_webhook_deliveries(void *ctx, struct http_req *req, struct http_resp *resp);
void api_webhook_replay(void *ctx, struct http_req *req, struct http_resp *resp);
void api_track_open(void *ctx, struct http_req *req, struct http_resp *resp);
void api_track_click(void *ctx, struct http_req *req, struct http_resp *resp);
void api_ui_index(void *ctx, struct http_req *req, struct http_resp *resp);
void api_ui_file(void *ctx, struct http_req *req, struct http_resp *resp);
void api_receipt(void *ctx, struct http_req *req, struct http_resp *resp);
/* api_receipt_settings_check: the receipt settings of a provider's configuration
 * (webhook_public_key, status_callback_url, webhook_secret, webhook_username/password,
 * webhook_signing_key, sns_topic_arn), when present, are usable: HR_INVAL with err naming
 * the field otherwise. Absent ones are fine (that provider's receipts are then refused
 * with 409). */
int api_receipt_settings_check(const char *provider, const cJSON *settings, struct herr *err);
void api_suppressions_list(void *ctx, struct http_req *req, struct http_resp *resp);
void api_suppressions_add(void *ctx, struct http_req *req, struct http_resp *resp);
void api_suppressions_delete(void *ctx, struct http_req *req, struct http_resp *resp);

/* api_idempotency_wrap: the http_wrap_fn (wrap_ctx: struct api_ctx *) that gives every
 * POST Courier's Idempotency-Key semantics. */
void api_idempotency_wrap(void *ctx, struct http_req *req, struct http_resp *resp,
                          http_handler_fn next, void *next_ctx);
/* api_idempotent_id: a Courier-style id derived from the request's Idempotency-Key and
 * API key into out; HR_NOTFOUND when the request has no key. */
int api_idempotent_id(struct http_req *req, char *out, size_t cap);

#endif
