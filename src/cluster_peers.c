/* What this node hears from the other servers, which raft 0.22 keeps to
 * itself (a leader's progress array is private; the public API gives only
 * the match index), and what follows from it: whether a follower is
 * reachable, the voter to hand leadership to, and the hand-over itself.
 * Part of the cluster module (cluster.h). */
#include "cluster_peers.h"

#include <stdlib.h>

#include "log.h"

static struct cluster_peer *peer_find(struct cluster *c, raft_id id)
{
    unsigned i;
    for (i = 0; i < c->n_peers; i++) {
        if (c->peers[i].id == id) {
            return &c->peers[i];
        }
    }
    return NULL;
}

void cluster_peers_note(struct cluster *c, struct raft_message *msg)
{
    if (msg->type == RAFT_APPEND_ENTRIES_RESULT) {
        struct cluster_peer *p = peer_find(c, msg->server_id);
        if (p == NULL) {
            struct cluster_peer *grown = realloc(c->peers, (c->n_peers + 1) * sizeof *c->peers);
            if (grown != NULL) {
                c->peers = grown;
                p = &c->peers[c->n_peers++];
                p->id = msg->server_id;
            }
        }
        if (p != NULL) {
            p->last_result = c->io.time(&c->io);
            p->result_term = msg->append_entries_result.term;
            p->rejected = msg->append_entries_result.rejected != 0;
        }
    } else if (msg->type == RAFT_INSTALL_SNAPSHOT && c->raft.snapshot.installing) {
        /* raft 0.22.1 ignores a snapshot that arrives while it installs
         * one (src/replication.c, replicationInstallSnapshot) and forgets
         * to free it: a follower catching up leaked every copy the leader
         * resent meanwhile (LeakSanitizer: 28 MB in 179 messages in one
         * fault test). Its data is never used then, so it is freed here and
         * raft gets the message without it (it still takes the term and the
         * leader from it). Fixed upstream after 0.22.1. */
        struct raft_install_snapshot *is = &msg->install_snapshot;
        raft_free(is->data.base);
        is->data.base = NULL;
        is->data.len = 0;
        raft_configuration_close(&is->conf);
        raft_configuration_init(&is->conf);
    }
}

int cluster_peer_heard(struct cluster *c, raft_id id, int streaming)
{
    const struct cluster_peer *p = peer_find(c, id);
    raft_time now = c->io.time(&c->io);

    if (p == NULL || p->result_term != c->raft.current_term || now < p->last_result ||
        now - p->last_result >= c->raft.election_timeout) {
        return 0;
    }
    return !streaming || !p->rejected;
}

int cluster_peer_reachable(struct cluster *c, uint64_t id)
{
    if (c->closing || raft_state(&c->raft) != RAFT_LEADER) {
        return 0;
    }
    return id == c->raft.id || cluster_peer_heard(c, id, 0);
}

uint64_t cluster_best_transferee(struct cluster *c)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    uint64_t best = 0;
    raft_index best_match = 0;
    unsigned i;

    for (i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        raft_index match = 0;
        if (s->id == c->raft.id || s->role != RAFT_VOTER || !cluster_peer_reachable(c, s->id) ||
            raft_match_index(&c->raft, s->id, &match) != 0) {
            continue;
        }
        if (best == 0 || match > best_match) {
            best = s->id;
            best_match = match;
        }
    }
    return best;
}

static void handover_cb(struct raft_transfer *t)
{
    struct cluster *c = t->data;
    c->handover_pending = 0;
}

void cluster_hand_over(struct cluster *c, const char *why)
{
    uint64_t target;
    if (c->handover_pending || c->closing || raft_state(&c->raft) != RAFT_LEADER) {
        return;
    }
    target = cluster_best_transferee(c);
    if (target == 0) {
        return;
    }
    c->handover.data = c;
    if (raft_transfer(&c->raft, &c->handover, target, handover_cb) == 0) {
        c->handover_pending = 1;
        log_warn("handing leadership to node %llu: %s", (unsigned long long)target, why);
    }
}

int cluster_peer_is_member(struct cluster *c, raft_id id)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    unsigned i;
    for (i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return 1;
        }
    }
    return conf->n == 0;
}

void cluster_peers_discard(struct raft_message *msg)
{
    if (msg->type == RAFT_APPEND_ENTRIES && msg->append_entries.n_entries > 0) {
        raft_free(msg->append_entries.entries[0].batch);
        raft_free(msg->append_entries.entries);
    } else if (msg->type == RAFT_INSTALL_SNAPSHOT) {
        raft_configuration_close(&msg->install_snapshot.conf);
        raft_free(msg->install_snapshot.data.base);
    }
}

int cluster_peer_is_member_cb(void *data, raft_id id)
{
    return cluster_peer_is_member(data, id);
}
