/* Raft's transport: TCP connections between nodes, each opened with the
 * handshake of peer_auth.h before raft sees a byte of it (SPEC 7.1).
 *
 * A connection that does not prove it holds the cluster token, that means
 * another node, or whose node is not in this node's configuration (asked
 * through @is_member) is closed, with one WARN line naming the remote
 * address. A handshake has TRANSPORT_HANDSHAKE_MS to finish and at most
 * TRANSPORT_MAX_HANDSHAKES run at once. After the handshake the socket is
 * raft's, as raft_uv_tcp's would be: nothing is added per message.
 * Nagle's algorithm is off on every connection (raft's messages go one way
 * per connection, so delayed ACKs would hold them back). */
#ifndef VARASTO_TRANSPORT_H
#define VARASTO_TRANSPORT_H

#include <raft.h>
#include <openssl/ssl.h>
#include <raft/uv.h>
#include <stdint.h>
#include <uv.h>

#include "peer_auth.h"
#include "queue.h"

#define TRANSPORT_HANDSHAKE_MS 3000
#define TRANSPORT_MAX_HANDSHAKES 256
#define TRANSPORT_BACKLOG 1024 /* a burst of connections waits in the kernel, not refused */

/* Whether node @id may talk raft to this one. */
typedef int (*transport_member_cb)(void *data, raft_id id);

struct transport {
    struct raft_uv_transport outer; /* what raft_uv uses */
    uv_loop_t *loop;
    const struct peer_keys *keys; /* borrowed */
    SSL_CTX *tls;                 /* borrowed; NULL: no TLS */
    transport_member_cb is_member;
    void *member_data;
    raft_id id;
    char address[PEER_ADDRESS_MAX + 1];
    unsigned handshake_ms; /* TRANSPORT_HANDSHAKE_MS unless a test says otherwise */
    uv_tcp_t listener;
    int listening;
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
    int closing;
    struct queue shakes; /* handshakes under way, both ways */
    unsigned n_incoming;
    uint64_t warn_second; /* refusals logged in this second of util_mono_ms */
    unsigned warned, unlogged;
};

/* Set up @t on @loop with @keys and @tls (borrowed, must outlive it; @tls
 * NULL for plain TCP, else every connection runs inside mutual TLS, tls.h);
 * @is_member is asked about every node that completes a handshake. Returns
 * 0 or a RAFT_* error. */
int transport_init(struct transport *t, uv_loop_t *loop, const struct peer_keys *keys, SSL_CTX *tls,
                   transport_member_cb is_member, void *member_data);

/* Release it once raft_uv is closed (nothing to release: the handles are
 * closed by raft_uv's close of the transport). */
void transport_close(struct transport *t);

#endif
