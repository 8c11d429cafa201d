/* routes.c: the declarative table of every public route: method, pattern, handler,
 * who may call it, and the metrics label. One row per route. */
#include "api.h"

const struct http_route api_routes[] = {
    {HTTP_GET, "/healthz", api_health, AUTH_PUBLIC, "health", 0, 0},
    {HTTP_GET, "/readyz", api_ready, AUTH_PUBLIC, "ready", 0, 0},
    {HTTP_GET, "/metrics", api_metrics, AUTH_PUBLIC, "metrics", 0, 0},
    {HTTP_GET, "/admin/queue", api_admin_queue, AUTH_ADMIN, "admin.queue", 0, 0},
    {HTTP_POST, "/admin/jobs/ping", api_admin_ping, AUTH_ADMIN, "admin.jobs.ping", 0, 0},
    {0},
};
