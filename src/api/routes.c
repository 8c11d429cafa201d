/* routes.c: the declarative table of every public route: method, pattern, handler,
 * who may call it, the metrics label, flags and body cap. One row per route. */
#include "api.h"
#include "templates.h"

#define SEGMENT_MAX_BODY (500 * 1024)             /* Segment: 500 KB per request */
#define DESTINATION_MAX_BODY (4 * 1024 * 1024)    /* Actions batches of up to 4,000 */
#define RECEIPT_MAX_BODY (2 * 1024 * 1024)       /* SendGrid batches events */
#define SEG_FLAGS (ROUTE_ANY_CTYPE | ROUTE_GZIP)  /* clients send text/plain, gzip */

const struct http_route api_routes[] = {
    {HTTP_GET, "/healthz", api_health, AUTH_PUBLIC, "health", 0, 0},
    {HTTP_GET, "/readyz", api_ready, AUTH_PUBLIC, "ready", 0, 0},
    {HTTP_GET, "/metrics", api_metrics, AUTH_PUBLIC, "metrics", 0, 0},
    {HTTP_GET, "/openapi.json", api_openapi, AUTH_PUBLIC, "openapi", 0, 0},

    /* the admin web UI (web/, embedded at build time); its API calls carry the key */
    {HTTP_GET, "/ui", api_ui_index, AUTH_PUBLIC, "ui", 0, 0},
    {HTTP_GET, "/ui/", api_ui_index, AUTH_PUBLIC, "ui", 0, 0},
    {HTTP_GET, "/ui/*", api_ui_file, AUTH_PUBLIC, "ui", 0, 0},

    /* Segment tracking API and Courier's inbound routes */
    {HTTP_POST, "/v1/:kind", api_v1, AUTH_WRITE, "segment.v1", SEG_FLAGS, SEGMENT_MAX_BODY},
    {HTTP_POST, "/inbound/segment", api_inbound_segment, AUTH_ADMIN, "inbound.segment", SEG_FLAGS,
     DESTINATION_MAX_BODY},
    {HTTP_POST, "/inbound/courier", api_inbound_courier, AUTH_ADMIN, "inbound.courier", 0, 0},
    {HTTP_POST, "/debug", api_debug, AUTH_ADMIN, "debug", ROUTE_ANY_CTYPE, 0},

    /* Courier's Profiles API */
    {HTTP_GET, "/profiles/:id", api_profile_get, AUTH_ADMIN, "profiles.get", 0, 0},
    {HTTP_POST, "/profiles/:id", api_profile_merge, AUTH_ADMIN, "profiles.merge", 0, 0},
    {HTTP_PUT, "/profiles/:id", api_profile_replace, AUTH_ADMIN, "profiles.replace", 0, 0},
    {HTTP_PATCH, "/profiles/:id", api_profile_patch, AUTH_ADMIN, "profiles.patch", 0, 0},
    {HTTP_DELETE, "/profiles/:id", api_profile_delete, AUTH_ADMIN, "profiles.delete", 0, 0},
    {HTTP_GET, "/profiles/:id/lists", api_profile_lists_get, AUTH_ADMIN, "profiles.lists.get", 0, 0},
    {HTTP_POST, "/profiles/:id/lists", api_profile_lists_subscribe, AUTH_ADMIN,
     "profiles.lists.subscribe", 0, 0},
    {HTTP_DELETE, "/profiles/:id/lists", api_profile_lists_delete, AUTH_ADMIN,
     "profiles.lists.delete", 0, 0},

    /* Courier's Lists API (src/api/lists.c) */
    {HTTP_GET, "/lists", api_lists_list, AUTH_ADMIN, "lists.list", 0, 0},
    {HTTP_GET, "/lists/:id", api_list_get, AUTH_ADMIN, "lists.get", 0, 0},
    {HTTP_PUT, "/lists/:id", api_list_put, AUTH_ADMIN, "lists.put", 0, 0},
    {HTTP_DELETE, "/lists/:id", api_list_delete, AUTH_ADMIN, "lists.delete", 0, 0},
    {HTTP_PUT, "/lists/:id/restore", api_list_restore, AUTH_ADMIN, "lists.restore",
     ROUTE_ANY_CTYPE, 0},
    {HTTP_GET, "/lists/:id/subscriptions", api_list_subs_get, AUTH_ADMIN, "lists.subs.list", 0, 0},
    {HTTP_POST, "/lists/:id/subscriptions", api_list_subs_add, AUTH_ADMIN, "lists.subs.add", 0, 0},
    {HTTP_PUT, "/lists/:id/subscriptions", api_list_subs_replace, AUTH_ADMIN, "lists.subs.replace",
     0, 0},
    {HTTP_PUT, "/lists/:id/subscriptions/:user", api_list_sub_put, AUTH_ADMIN, "lists.subs.put",
     ROUTE_ANY_CTYPE, 0},
    {HTTP_DELETE, "/lists/:id/subscriptions/:user", api_list_sub_delete, AUTH_ADMIN,
     "lists.subs.delete", ROUTE_ANY_CTYPE, 0},

    /* subscription topics, users' preferences (src/api/prefs.c) and the public one-click
     * unsubscribe routes (signed token in the path, no key) */
    {HTTP_GET, "/preferences/topics", api_topics_list, AUTH_ADMIN, "topics.list", 0, 0},
    {HTTP_GET, "/preferences/topics/:id", api_topic_get, AUTH_ADMIN, "topics.get", 0, 0},
    {HTTP_PUT, "/preferences/topics/:id", api_topic_put, AUTH_ADMIN, "topics.put", 0, 0},
    {HTTP_DELETE, "/preferences/topics/:id", api_topic_delete, AUTH_ADMIN, "topics.delete", 0, 0},
    {HTTP_GET, "/users/:id/preferences", api_user_prefs_get, AUTH_ADMIN, "users.prefs.list", 0, 0},
    {HTTP_GET, "/users/:id/preferences/:topic", api_user_pref_get, AUTH_ADMIN, "users.prefs.get",
     0, 0},
    {HTTP_PUT, "/users/:id/preferences/:topic", api_user_pref_put, AUTH_ADMIN, "users.prefs.put",
     0, 0},
    {HTTP_GET, "/u/:token", api_unsub_page, AUTH_PUBLIC, "unsubscribe.page", 0, 0},
    {HTTP_POST, "/u/:token", api_unsub_post, AUTH_PUBLIC, "unsubscribe.post",
     ROUTE_ANY_CTYPE | ROUTE_NO_IDEMPOTENCY, 4096},

    /* Courier's Send and Messages APIs */
    {HTTP_POST, "/send", api_send, AUTH_ADMIN, "send", 0, 0},
    /* Courier's Bulk API (src/api/bulk.c) */
    {HTTP_POST, "/bulk", api_bulk_create, AUTH_ADMIN, "bulk.create", 0, 0},
    {HTTP_GET, "/bulk", api_bulk_list, AUTH_ADMIN, "bulk.list", 0, 0}, /* herald's own */
    {HTTP_POST, "/bulk/:id", api_bulk_add_users, AUTH_ADMIN, "bulk.add_users", 0, 0},
    {HTTP_POST, "/bulk/:id/run", api_bulk_run, AUTH_ADMIN, "bulk.run", ROUTE_ANY_CTYPE, 0},
    {HTTP_GET, "/bulk/:id", api_bulk_get, AUTH_ADMIN, "bulk.get", 0, 0},
    {HTTP_GET, "/bulk/:id/users", api_bulk_users, AUTH_ADMIN, "bulk.users", 0, 0},
    {HTTP_GET, "/messages", api_messages_list, AUTH_ADMIN, "messages.list", 0, 0},
    {HTTP_GET, "/messages/:id", api_message_get, AUTH_ADMIN, "messages.get", 0, 0},
    {HTTP_GET, "/messages/:id/history", api_message_history, AUTH_ADMIN, "messages.history", 0, 0},
    {HTTP_GET, "/messages/:id/output", api_message_output, AUTH_ADMIN, "messages.output", 0, 0},
    {HTTP_POST, "/messages/:id/cancel", api_message_cancel, AUTH_ADMIN, "messages.cancel", 0, 0},

    /* automations: Courier's invoke and runs, herald's definitions and links */
    {HTTP_POST, "/automations/invoke", api_automation_invoke_adhoc, AUTH_ADMIN, "automations.invoke_adhoc", 0, 0},
    {HTTP_POST, "/automations/from-event", api_automation_from_event, AUTH_ADMIN, "automations.from_event", 0, 0},
    {HTTP_GET, "/automations/runs", api_automation_runs_list, AUTH_ADMIN, "automations.runs", 0, 0},
    {HTTP_GET, "/automations/runs/:id", api_automation_run_get, AUTH_ADMIN, "automations.run", 0, 0},
    {HTTP_GET, "/automations", api_automation_list, AUTH_ADMIN, "automations.list", 0, 0},
    {HTTP_GET, "/automations/:id", api_automation_get, AUTH_ADMIN, "automations.get", 0, 0},
    {HTTP_PUT, "/automations/:id", api_automation_put, AUTH_ADMIN, "automations.put", 0, 0},
    {HTTP_DELETE, "/automations/:id", api_automation_delete, AUTH_ADMIN, "automations.delete", 0, 0},
    {HTTP_POST, "/automations/:id/invoke", api_automation_invoke, AUTH_ADMIN, "automations.invoke", 0, 0},
    {HTTP_GET, "/links", api_link_list, AUTH_ADMIN, "links.list", 0, 0},
    {HTTP_POST, "/links", api_link_create, AUTH_ADMIN, "links.create", 0, 0},
    {HTTP_DELETE, "/links", api_link_delete, AUTH_ADMIN, "links.delete", 0, 0},

    /* herald's own: event catalog, settings, queue */
    {HTTP_GET, "/catalog/events", api_catalog_list, AUTH_ADMIN, "catalog.list", 0, 0},
    {HTTP_GET, "/catalog/events/*", api_catalog_get, AUTH_ADMIN, "catalog.get", 0, 0},
    {HTTP_GET, "/settings", api_settings_get, AUTH_ADMIN, "settings.get", 0, 0},
    {HTTP_PUT, "/settings", api_settings_put, AUTH_ADMIN, "settings.put", 0, 0},
    {HTTP_POST, "/render", api_render, AUTH_ADMIN, "render", 0, TEMPLATE_BODY_MAX},
    {HTTP_GET, "/admin/queue", api_admin_queue, AUTH_ADMIN, "admin.queue", 0, 0},
    {HTTP_POST, "/admin/jobs/ping", api_admin_ping, AUTH_ADMIN, "admin.jobs.ping", 0, 0},

    /* status webhooks out (src/api/webhooks.c) and open/click tracking (src/api/track.c) */
    {HTTP_GET, "/webhooks", api_webhooks_list, AUTH_ADMIN, "webhooks.list", 0, 0},
    {HTTP_POST, "/webhooks", api_webhook_create, AUTH_ADMIN, "webhooks.create", 0, 0},
    {HTTP_GET, "/webhooks/:id", api_webhook_get, AUTH_ADMIN, "webhooks.get", 0, 0},
    {HTTP_PUT, "/webhooks/:id", api_webhook_replace, AUTH_ADMIN, "webhooks.replace", 0, 0},
    {HTTP_DELETE, "/webhooks/:id", api_webhook_delete, AUTH_ADMIN, "webhooks.delete", 0, 0},
    {HTTP_GET, "/webhooks/:id/deliveries", api_webhook_deliveries, AUTH_ADMIN,
     "webhooks.deliveries", 0, 0},
    {HTTP_POST, "/webhooks/:id/deliveries/:delivery/replay", api_webhook_replay, AUTH_ADMIN,
     "webhooks.replay", ROUTE_ANY_CTYPE, 0},
    {HTTP_GET, "/t/o/:token", api_track_open, AUTH_PUBLIC, "track.open", 0, 0},
    {HTTP_GET, "/t/c/:token", api_track_click, AUTH_PUBLIC, "track.click", 0, 0},

    /* Courier's notification templates, brands and provider configurations */
    {HTTP_POST, "/notifications", api_notification_create, AUTH_ADMIN, "notifications.create", 0,
     TEMPLATE_BODY_MAX},
    {HTTP_GET, "/notifications", api_notification_list, AUTH_ADMIN, "notifications.list", 0, 0},
    {HTTP_GET, "/notifications/:id", api_notification_get, AUTH_ADMIN, "notifications.get", 0, 0},
    {HTTP_PUT, "/notifications/:id", api_notification_replace, AUTH_ADMIN, "notifications.replace",
     0, TEMPLATE_BODY_MAX},
    {HTTP_DELETE, "/notifications/:id", api_notification_archive, AUTH_ADMIN,
     "notifications.archive", 0, 0},
    {HTTP_POST, "/notifications/:id/publish", api_notification_publish, AUTH_ADMIN,
     "notifications.publish", 0, 0},
    {HTTP_GET, "/notifications/:id/versions", api_notification_versions, AUTH_ADMIN,
     "notifications.versions", 0, 0},
    {HTTP_POST, "/brands", api_brand_create, AUTH_ADMIN, "brands.create", 0, TEMPLATE_BODY_MAX},
    {HTTP_GET, "/brands", api_brand_list, AUTH_ADMIN, "brands.list", 0, 0},
    {HTTP_GET, "/brands/:id", api_brand_get, AUTH_ADMIN, "brands.get", 0, 0},
    {HTTP_PUT, "/brands/:id", api_brand_replace, AUTH_ADMIN, "brands.replace", 0, TEMPLATE_BODY_MAX},
    {HTTP_DELETE, "/brands/:id", api_brand_delete, AUTH_ADMIN, "brands.delete", 0, 0},
    {HTTP_POST, "/providers", api_provider_create, AUTH_ADMIN, "providers.create", 0, 0},
    {HTTP_GET, "/providers", api_provider_list, AUTH_ADMIN, "providers.list", 0, 0},
    {HTTP_GET, "/providers/catalog", api_provider_catalog, AUTH_ADMIN, "providers.catalog", 0, 0},
    {HTTP_GET, "/providers/:id", api_provider_get, AUTH_ADMIN, "providers.get", 0, 0},
    {HTTP_PUT, "/providers/:id", api_provider_replace, AUTH_ADMIN, "providers.replace", 0, 0},
    {HTTP_DELETE, "/providers/:id", api_provider_delete, AUTH_ADMIN, "providers.delete", 0, 0},

    /* delivery receipts in (signed by each provider, src/api/receipts.c) and suppressions */
    {HTTP_POST, "/receipts/:id", api_receipt, AUTH_PUBLIC, "receipts", ROUTE_ANY_CTYPE,
     RECEIPT_MAX_BODY},
    {HTTP_GET, "/suppressions", api_suppressions_list, AUTH_ADMIN, "suppressions.list", 0, 0},
    {HTTP_POST, "/suppressions", api_suppressions_add, AUTH_ADMIN, "suppressions.add", 0, 0},
    {HTTP_DELETE, "/suppressions/:address", api_suppressions_delete, AUTH_ADMIN,
     "suppressions.delete", ROUTE_ANY_CTYPE, 0},
    {0},
};
