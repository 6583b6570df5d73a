/* Raft's TCP transport with Nagle's algorithm off.
 *
 * raft_uv_tcp (libraft 0.15) leaves TCP_NODELAY unset. Each raft connection
 * carries messages one way (AppendEntries out, results back on the peer's
 * own connection), so the receiver has no data to piggyback its ACK on and
 * delays it by up to 40 ms; meanwhile Nagle holds the sender's next small
 * message. Under load that stalled commits for ~40 ms at a time. This
 * wrapper delegates everything to raft_uv_tcp and turns TCP_NODELAY on for
 * every connection it makes or accepts. */
#ifndef VARASTO_TRANSPORT_H
#define VARASTO_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

struct transport {
    struct raft_uv_transport outer; /* what raft_uv uses */
    struct raft_uv_transport tcp;   /* raft_uv_tcp doing the work */
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
};

/* Returns 0 or a RAFT_* error. */
int transport_init(struct transport *t, uv_loop_t *loop);

/* Release it once raft_uv is closed (like raft_uv_tcp_close). */
void transport_close(struct transport *t);

#endif
