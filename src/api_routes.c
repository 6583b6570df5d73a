/* The route table: method, path pattern, handler, and whether the route is
 * public (no Authorization) or a read (honours min_seq and consistency). */
#include "api.h"

const struct http_route api_routes[] = {
    {"POST", "/command/*", api_command, 0, 0},
    {"POST", "/api_v2/collections/*/changesets", api_changeset, 0, 0},
    {"GET", "/api_v2/directories/*", api_directory_get, 0, 1},
    {"GET", "/api_v2/collections/*", api_collection_get, 0, 1},
    {"GET", "/api_v2/events", api_events_page, 0, 1},
    {"GET", "/api_v2/events/stream", api_events_stream, 0, 0},
    {"GET", "/api_v2/events/ws", api_events_ws, 0, 0},
    {"GET", "/api_v2/health", api_health, 1, 0},
    {"GET", "/api_v2/cluster", api_cluster, 0, 0},
    {"GET", "/api_v2/subscriptions", api_subscriptions, 0, 1},
    {"GET", "/api_v2/nodes", api_nodes, 0, 0},
    /* public_: they check for the cluster token themselves (not API keys) */
    {"POST", "/internal/apply", api_internal_apply, 1, 0},
    {"POST", "/internal/barrier", api_internal_barrier, 1, 0},
};

const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];
