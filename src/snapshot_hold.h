/* A workaround for raft 0.22.1: an InstallSnapshot that arrives while raft
 * takes a snapshot of its own is held back here until that snapshot is
 * written. raft itself puts such an install on hold and, once its own
 * snapshot is written, starts the held one from a pointer it has just set
 * to NULL (src/legacy.c, takeSnapshotCb): the follower dies with SIGSEGV.
 * A 600 s nemesis run found it; it is not fixed upstream yet. The leader
 * waits for the follower's answer meanwhile, so nothing is lost but the
 * time the follower's own snapshot takes. */
#ifndef VARASTO_SNAPSHOT_HOLD_H
#define VARASTO_SNAPSHOT_HOLD_H

#include <raft.h>

struct snapshot_hold {
    struct raft_message msg; /* the newest InstallSnapshot held */
    int holding;
    char address[256]; /* its sender's, which raft_uv frees with the connection */
};

/* Whether to hold @msg, just received, back from raft, taking it over: an
 * InstallSnapshot while raft takes a snapshot (@taking) and would not
 * ignore it (@ignored: it installs one already, or stops). An older held
 * copy is freed: the newest one is kept. */
int snapshot_hold_take(struct snapshot_hold *h, const struct raft_message *msg, int taking,
                       int ignored);

/* Once @taking is over, move the held message to @out for raft (1), else
 * 0. */
int snapshot_hold_release(struct snapshot_hold *h, int taking, struct raft_message *out);

/* Free a held message (the node is stopping). */
void snapshot_hold_drop(struct snapshot_hold *h);

#endif
