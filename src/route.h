/* Where a request that only the leader can serve goes from this node: here,
 * to the leader's HTTP address (announced through the log), or nowhere yet.
 * The one leader lookup of the node: commands, membership commands and
 * linearizable reads all ask it. */
#ifndef VARASTO_ROUTE_H
#define VARASTO_ROUTE_H

#include <stdint.h>

#include "config.h"

struct cluster;
struct store;

enum route_target {
    ROUTE_NONE,   /* no leader, or its HTTP address is not known yet */
    ROUTE_HERE,   /* this node leads */
    ROUTE_LEADER, /* another node leads; its address is in the answer */
};

struct route {
    struct cluster *cluster; /* borrowed */
    struct store *store;     /* borrowed: the announced addresses */
    uint64_t cached_id;      /* leader whose address is cached */
    uint64_t cached_ms;      /* when it was looked up (monotonic) */
    char cached_http[CONFIG_ADDR_MAX];
};

/* Bind @r to the node's cluster and store (both borrowed). */
void route_init(struct route *r, struct cluster *cluster, struct store *store);

/* Where to send now. For ROUTE_LEADER, *@http_addr points at the leader's
 * HTTP address (owned by @r, valid until the next call). */
enum route_target route_leader(struct route *r, const char **http_addr);

#endif
