/* The route table: method, path pattern, handler, and whether the route is
 * public (no Authorization) or a read (honours min_seq and consistency). */
#include "api.h"

const struct http_route api_routes[] = {
    {.method = "POST",
     .pattern = "/command/*",
     .handler = api_command,
     .scope_of = api_command_scope},
    {.method = "POST", .pattern = "/api_v2/collections/*/changesets", .handler = api_changeset},
    {.method = "GET", .pattern = "/api_v2/directories/*", .handler = api_directory_get, .read = 1},
    {.method = "GET", .pattern = "/api_v2/collections/*", .handler = api_collection_get, .read = 1},
    {.method = "GET", .pattern = "/api_v2/events", .handler = api_events_page, .read = 1},
    {.method = "GET", .pattern = "/api_v2/events/stream", .handler = api_events_stream},
    {.method = "GET", .pattern = "/api_v2/events/ws", .handler = api_events_ws},
    {.method = "GET", .pattern = "/api_v2/health", .handler = api_health, .public_ = 1},
    {.method = "GET", .pattern = "/api_v2/cluster", .handler = api_cluster},
    {.method = "GET", .pattern = "/api_v2/subscriptions", .handler = api_subscriptions, .read = 1},
    {.method = "GET", .pattern = "/api_v2/nodes", .handler = api_nodes},
    /* other nodes only, signed with the cluster key (peer_auth.h) */
    {.method = "POST", .pattern = "/internal/apply", .handler = api_internal_apply, .peer = 1},
    {.method = "POST", .pattern = "/internal/barrier", .handler = api_internal_barrier, .peer = 1},
};

const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];
