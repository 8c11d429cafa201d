/* routes.c: the declarative table of every public route: method, pattern, handler,
 * who may call it, the metrics label, flags and body cap. One row per route. */
#include "api.h"

#define SEGMENT_MAX_BODY (500 * 1024)             /* Segment: 500 KB per request */
#define DESTINATION_MAX_BODY (4 * 1024 * 1024)    /* Actions batches of up to 4,000 */
#define SEG_FLAGS (ROUTE_ANY_CTYPE | ROUTE_GZIP)  /* clients send text/plain, gzip */

const struct http_route api_routes[] = {
    {HTTP_GET, "/healthz", api_health, AUTH_PUBLIC, "health", 0, 0},
    {HTTP_GET, "/readyz", api_ready, AUTH_PUBLIC, "ready", 0, 0},
    {HTTP_GET, "/metrics", api_metrics, AUTH_PUBLIC, "metrics", 0, 0},

    /* Segment tracking API and Courier's inbound routes */
    {HTTP_POST, "/v1/:kind", api_v1, AUTH_WRITE, "segment.v1", SEG_FLAGS, SEGMENT_MAX_BODY},
    {HTTP_POST, "/inbound/segment", api_inbound_segment, AUTH_ADMIN, "inbound.segment", SEG_FLAGS,
     DESTINATION_MAX_BODY},
    {HTTP_POST, "/inbound/courier", api_inbound_courier, AUTH_ADMIN, "inbound.courier", 0, 0},

    /* Courier's Profiles API */
    {HTTP_GET, "/profiles/:id", api_profile_get, AUTH_ADMIN, "profiles.get", 0, 0},
    {HTTP_POST, "/profiles/:id", api_profile_merge, AUTH_ADMIN, "profiles.merge", 0, 0},
    {HTTP_PUT, "/profiles/:id", api_profile_replace, AUTH_ADMIN, "profiles.replace", 0, 0},
    {HTTP_PATCH, "/profiles/:id", api_profile_patch, AUTH_ADMIN, "profiles.patch", 0, 0},
    {HTTP_DELETE, "/profiles/:id", api_profile_delete, AUTH_ADMIN, "profiles.delete", 0, 0},

    /* herald's own: event catalog, settings, queue */
    {HTTP_GET, "/catalog/events", api_catalog_list, AUTH_ADMIN, "catalog.list", 0, 0},
    {HTTP_GET, "/catalog/events/*", api_catalog_get, AUTH_ADMIN, "catalog.get", 0, 0},
    {HTTP_GET, "/settings", api_settings_get, AUTH_ADMIN, "settings.get", 0, 0},
    {HTTP_PUT, "/settings", api_settings_put, AUTH_ADMIN, "settings.put", 0, 0},
    {HTTP_GET, "/admin/queue", api_admin_queue, AUTH_ADMIN, "admin.queue", 0, 0},
    {HTTP_POST, "/admin/jobs/ping", api_admin_ping, AUTH_ADMIN, "admin.jobs.ping", 0, 0},
    {0},
};
