/* Private to the cluster module (cluster.c, cluster_peers.c). */
#ifndef VARASTO_CLUSTER_PEERS_H
#define VARASTO_CLUSTER_PEERS_H

#include "cluster.h"

/* Note what @msg, just received, says about its sender before raft takes
 * it: each AppendEntries result (time, term, rejection). It also frees the
 * data of a snapshot that arrives while one is being installed: raft 0.22.1
 * ignores it then and never frees it (fixed upstream after 0.22.1); raft
 * still gets the message, for its term and leader. */
void cluster_peers_note(struct cluster *c, struct raft_message *msg);

/* Whether server @id answered an AppendEntries of the current term within
 * the last election timeout; with @streaming, also that it took the
 * entries. This mirrors raft 0.22's own view: its leader puts every
 * follower in probe state on election, in pipeline state on the first
 * successful result, and back in probe on a rejection or when the follower
 * has not answered for an election timeout (src/replication.c,
 * replicationUpdate; src/timeout.c, checkContactQuorum). */
int cluster_peer_heard(struct cluster *c, raft_id id, int streaming);

/* Whether node @id may talk raft to this node: it is in the configuration
 * (the newest, committed or not), or this node has none yet (a node that
 * waits to be added hears first from a leader it does not know). */
int cluster_peer_is_member(struct cluster *c, raft_id id);

/* The same as the transport asks it (@data: the cluster). */
int cluster_peer_is_member_cb(void *data, raft_id id);

/* Release what raft would have released of @msg, which it never gets. */
void cluster_peers_discard(struct raft_message *msg);

#endif
