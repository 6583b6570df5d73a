/* Read consistency: a read that asks for ?min_seq waits until this node has
 * applied that seq; a linearizable read waits for a read index, which the
 * leader gets from a barrier it appends (one per loop iteration, shared by
 * all the reads that arrived in it) and a follower asks the leader for (one
 * request per iteration), and then until this node has applied up to it.
 * Every wait is bounded by a timeout. No HTTP here: the caller gets a
 * callback. */
#ifndef VARASTO_CONSISTENCY_H
#define VARASTO_CONSISTENCY_H

#include <stdint.h>
#include <uv.h>

struct cluster;
struct consistency_wait;
struct forward;
struct fsm;
struct route;
struct read_index_group;

enum consistency_status {
    CONSISTENCY_READY,       /* read now */
    CONSISTENCY_WAITING,     /* the callback says when */
    CONSISTENCY_TIMEOUT,     /* min_seq not applied in time */
    CONSISTENCY_UNAVAILABLE, /* leadership could not be confirmed */
    CONSISTENCY_NO_LEADER,   /* linearizable, and no leader is known */
    CONSISTENCY_NO_MEMORY,
};

/* Called once, on the loop, with READY, TIMEOUT or UNAVAILABLE. */
typedef void (*consistency_cb)(void *data, enum consistency_status status);

struct consistency {
    uv_loop_t *loop;
    struct fsm *fsm;         /* borrowed: what is applied */
    struct cluster *cluster; /* borrowed: barriers */
    struct route *route;     /* borrowed: where the leader is */
    struct forward *forward; /* borrowed: read-index requests */
    unsigned timeout_ms;
    struct consistency_wait *waits; /* waiting reads */
    struct read_index_group *group; /* this iteration's read-index request */
    int closed;                     /* consistency_close was called */
};

/* Bind @c to the node's modules (all borrowed); waits end after @timeout_ms. */
void consistency_init(struct consistency *c, uv_loop_t *loop, struct fsm *fsm,
                      struct cluster *cluster, struct route *route, struct forward *forward,
                      unsigned timeout_ms);

/* Whether a read that needs seq @min_seq (and @linearizable) can be served
 * now without waiting: the common case, checked before any allocation. */
int consistency_ready(const struct consistency *c, uint64_t min_seq, int linearizable);

/* Start a read that needs seq @min_seq applied (0: none) and, with
 * @linearizable, a read index. Returns READY (no wait, no callback),
 * NO_LEADER, UNAVAILABLE or NO_MEMORY (no callback), or WAITING: then
 * *@wait identifies the wait and @cb fires once. */
enum consistency_status consistency_start(struct consistency *c, uint64_t min_seq, int linearizable,
                                          consistency_cb cb, void *data,
                                          struct consistency_wait **wait);

/* The reader is gone: no callback for @wait any more. */
void consistency_cancel(struct consistency_wait *wait);

/* The node applied entries (or raft's applied index moved): wake the waits
 * that are satisfied. */
void consistency_applied(struct consistency *c);

/* Once per loop iteration: send this iteration's read-index request. */
void consistency_flush(struct consistency *c);

/* Stopping: every wait ends with UNAVAILABLE, and reads that would wait
 * are refused (UNAVAILABLE) from now on. */
void consistency_close(struct consistency *c);

#endif
