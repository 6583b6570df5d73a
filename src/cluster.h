/* Raft setup and the write path into the log: bootstrap or resume, submit
 * entries, and watch leadership. */
#ifndef VARASTO_CLUSTER_H
#define VARASTO_CLUSTER_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "config.h"
#include "fsm.h"
#include "snapshot_hold.h"
#include "transport.h"

struct barrier_group;

/* A peer's raft address as this node hands it to raft_uv: kept until the
 * node stops (see io_send in cluster.c). */
struct cluster_address {
    raft_id id;
    char address[CONFIG_ADDR_MAX];
};

/* What this node has heard from one other server (see cluster_recv). */
struct cluster_peer {
    raft_id id;
    raft_time last_result; /* raft_uv's clock at its last AppendEntries result */
    raft_term result_term; /* the term that result carried; 0 for none */
    int rejected;          /* that result rejected the entries sent */
};

struct cluster {
    uv_loop_t *loop;
    const struct config *config;
    struct fsm *fsm;
    struct raft raft;
    struct raft_io io;
    struct transport transport;
    uv_timer_t watch;              /* leadership watch */
    struct raft_barrier nudge;     /* see cluster_nudge */
    struct raft_transfer handover; /* see cluster_hand_over */
    int handover_pending;
    int nudge_pending;
    int was_leader;
    raft_index seen_can_apply; /* see cluster_after_iteration */
    uint64_t commit_moved_ms;
    int fast_heartbeat; /* fast_tick runs */
    uv_timer_t fast_tick;
    int (*io_start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                    raft_io_recv_cb recv); /* raft_uv's, wrapped */
    raft_io_tick_cb tick;                  /* raft's tick, to run it early */
    raft_io_recv_cb recv;                  /* raft's receive callback, wrapped */
    struct cluster_peer *peers;            /* every server heard from, unordered */
    unsigned n_peers;
    struct snapshot_hold held; /* see snapshot_hold.h */
    int (*io_send)(struct raft_io *io, struct raft_io_send *req, const struct raft_message *message,
                   raft_io_send_cb cb); /* raft_uv's, wrapped (see io_send) */
    struct cluster_address **addresses; /* every peer address handed to raft_uv */
    unsigned n_addresses;
    int closing;
    uint64_t dropped_warned_ms; /* see io_recv */
    int raft_closed;            /* raft closed; raft_uv not yet released */
    uint64_t close_started_ms;
    void (*close_cb)(struct cluster *c);
    char raft_dir[CONFIG_PATH_MAX + 16];
    struct barrier_group *barrier_group; /* see cluster_barrier_join */
    char errmsg[512];                    /* why cluster_start failed */
};

/* Whether config->data_dir holds no raft state yet (no metadata file). */
int cluster_dir_pristine(const struct config *config);

/* Set up raft over @fsm with data under config->data_dir/raft, bootstrap on a
 * directory without a term unless told to --join, and start; raft's
 * connections use mutual TLS with @peer_tls (borrowed; NULL: none). Returns
 * 0, or ERR_INTERNAL with c->errmsg set. */
int cluster_start(struct cluster *c, uv_loop_t *loop, const struct config *config, struct fsm *fsm,
                  const struct peer_keys *keys, SSL_CTX *peer_tls);

/* Whether this node is the raft leader now. */
int cluster_is_leader(struct cluster *c);

/* The id of the known leader, or 0. */
uint64_t cluster_leader_id(struct cluster *c);

/* Whether server @id is in the current raft configuration. */
int cluster_is_member(struct cluster *c, uint64_t id);

/* Leader: whether server @id answered an AppendEntries of the current term
 * within the last election timeout (this node is always reachable). raft
 * 0.22 keeps the same facts in its private progress array. */
int cluster_peer_reachable(struct cluster *c, uint64_t id);

/* Leader: the voter to hand leadership to, one this node hears from with
 * the most of the log; 0 if none is reachable. (raft's own choice is the
 * last voter in its configuration unless one has the whole log at that
 * instant, so under writes it often picked one cut off from it.) */
uint64_t cluster_best_transferee(struct cluster *c);

/* Leader: hand leadership to the best voter because of @why (logged), unless
 * a hand-over is under way or no voter is reachable. */
void cluster_hand_over(struct cluster *c, const char *why);

/* Role name of this node: "leader", "follower", "candidate", "unavailable". */
const char *cluster_role(struct cluster *c);

/* Append the @n buffers of @bufs (raft_malloc'ed; taken on success) as
 * consecutive command entries; req->index is then the first one's index.
 * @req must stay valid until @cb fires, which raft does once, right after
 * the first entry is applied (or when the entries are lost). Returns 0, or
 * ERR_UNAVAILABLE when raft does not take them (not the leader, closing). */
int cluster_submit(struct cluster *c, struct raft_apply *req, const struct raft_buffer *bufs,
                   unsigned n, raft_apply_cb cb);

/* Leader: have @cb(@data, status, index) called once a barrier appended
 * after this call has been applied (status 0; index is the barrier's), or
 * has failed (a RAFT_* status). Every caller of one loop iteration shares
 * one barrier, appended by cluster_barrier_flush at the iteration's end: a
 * barrier committed in the current term after a request arrived confirms
 * this node's leadership for that request and covers everything committed
 * before it, so linearizable reads need one log entry per iteration, not
 * one each. Returns 0, or ERR_UNAVAILABLE (closing) or ERR_INTERNAL (out of
 * memory), and @cb is not called. The callback's status is raft's (0 or a
 * RAFT_* code). */
typedef void (*cluster_barrier_done)(void *data, int status, uint64_t index);
int cluster_barrier_join(struct cluster *c, cluster_barrier_done cb, void *data);

/* Append the barrier the iteration's cluster_barrier_join callers share;
 * fails them when this node cannot (not the leader, closing). Once per
 * loop iteration, and from cluster_close. */
void cluster_barrier_flush(struct cluster *c);

/* Leader: make followers learn the current commit index now rather than at
 * the next heartbeat. Appending any entry sends AppendEntries at once, and
 * they carry the commit index; a barrier is the entry that changes nothing.
 * At most one is in flight, so under load it costs nothing extra. */
void cluster_nudge(struct cluster *c);

/* Once per loop iteration. A follower learns that an entry is committed
 * from the leader's next AppendEntries, and applies it at once only when
 * that message carries no new entries (otherwise after writing them), and
 * only if it has written the entry. So when, in this iteration, the commit
 * index has moved or a follower has written entries the leader had already
 * committed (and every follower is streaming, not probing), the leader runs
 * raft's tick at once with a heartbeat timeout of 0, which sends every
 * follower the commit index, and keeps sending it from a 1 ms timer of its
 * own for a while (100 ms after the last move): an event reaches
 * subscribers on followers right after its commit. Otherwise raft ticks
 * every 10 ms and heartbeats every CLUSTER_HEARTBEAT_MS. */
void cluster_after_iteration(struct cluster *c);

/* Close raft and its I/O; @cb fires once raft is closed. */
void cluster_close(struct cluster *c, void (*cb)(struct cluster *c));

/* Release raft_uv's memory after cluster_close's callback, once the loop
 * has stopped running (no callback of raft_uv can come any more). */
void cluster_release(struct cluster *c);

#endif
