/* Event retention (--retain-events N): this node prunes events older than
 * the last N, never past a durable subscription's cursor when
 * --retention-holds-subscriptions is on. Node-local: it changes what this
 * node can replay, not the log, and every Seq stays the same event on every
 * node. */
#ifndef VARASTO_RETENTION_H
#define VARASTO_RETENTION_H

#include <stdint.h>

struct config;
struct store;

struct retention {
    const struct config *config; /* borrowed */
    struct store *store;         /* borrowed */
    uint64_t oldest_seq;         /* oldest event kept, 0 if none */
    uint64_t pruned_at_seq;      /* last seq at the last pass */
};

/* Bind @r to @config and @store (borrowed) and read the oldest event. */
void retention_init(struct retention *r, const struct config *config, struct store *store);

/* Prune if due (every RETENTION_EVERY_EVENTS events); @last_seq is the
 * last applied event. Once per loop iteration, outside a write transaction. */
void retention_pass(struct retention *r, uint64_t last_seq);

/* The read model was replaced: read the oldest event again. */
void retention_restored(struct retention *r);

/* Whether events after @after were pruned here (a reader starting there
 * would miss some). */
int retention_pruned_after(const struct retention *r, uint64_t after);

#endif
