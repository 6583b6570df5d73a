#include "route.h"

#include "cluster.h"
#include "store.h"
#include "util.h"

/* The leader's HTTP address is looked up again at least this often (it
 * changes only when a node restarts with another --http-advertise). */
#define ROUTE_CACHE_MS 200

void route_init(struct route *r, struct cluster *cluster, struct store *store)
{
    r->cluster = cluster;
    r->store = store;
    r->cached_id = 0;
    r->cached_ms = 0;
    r->cached_http[0] = '\0';
}

enum route_target route_leader(struct route *r, const char **http_addr)
{
    char raft_addr[CONFIG_ADDR_MAX], http[CONFIG_ADDR_MAX];
    uint64_t leader;

    *http_addr = NULL;
    if (cluster_is_leader(r->cluster)) {
        return ROUTE_HERE;
    }
    leader = cluster_leader_id(r->cluster);
    if (leader == 0) {
        return ROUTE_NONE;
    }
    if (leader != r->cached_id || util_mono_ms() - r->cached_ms > ROUTE_CACHE_MS) {
        if (!store_node_addresses(r->store, leader, raft_addr, http, sizeof http)) {
            return ROUTE_NONE;
        }
        r->cached_id = leader;
        r->cached_ms = util_mono_ms();
        util_copy(r->cached_http, sizeof r->cached_http, http);
    }
    *http_addr = r->cached_http;
    return ROUTE_LEADER;
}
