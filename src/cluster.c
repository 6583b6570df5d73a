#include "cluster.h"
#include "cluster_peers.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "errors.h"
#include "log.h"
#include "util.h"

#define WATCH_INTERVAL_MS 50
/* raft_uv ticks raft every TICK_MS (the heartbeat timeout at start fixes
 * that interval), and the leader heartbeats every CLUSTER_HEARTBEAT_MS.
 * While commits move, the leader's own fast timer also ticks raft every
 * FAST_TICK_MS with a heartbeat timeout of 0 (see cluster_after_iteration);
 * a 1 ms raft_uv tick cost an idle node ~2% of a core. */
#define TICK_MS 10
#define CLUSTER_HEARTBEAT_MS 20
#define FAST_TICK_MS 1
/* While commits move, every fast tick sends each follower an AppendEntries
 * with the commit index, even right after one that carried entries (a
 * follower applies those only after writing them). */
#define FAST_HEARTBEAT_MS 0
#define FAST_HEARTBEAT_FOR_MS 100
/* raft_uv closes a full open segment on the loop thread, and its
 * io_destroy waits for an RCU grace period: 27-52 ms on each node here, all
 * three at once since they roll over at the same index. 32 MiB segments
 * (raft's default is 8) make those stalls four times rarer, for 96 MiB of
 * preallocated segment files per node instead of 24. */
#define SEGMENT_BYTES (32u << 20)

static void fast_tick_cb(uv_timer_t *t)
{
    struct cluster *c = t->data;
    if (c->tick != NULL) {
        c->tick(&c->io);
    }
}

static void fast_start(struct cluster *c)
{
    if (!c->fast_heartbeat) {
        c->fast_heartbeat = 1;
        raft_set_heartbeat_timeout(&c->raft, FAST_HEARTBEAT_MS);
        uv_timer_start(&c->fast_tick, fast_tick_cb, FAST_TICK_MS, FAST_TICK_MS);
    }
}

static void fast_stop(struct cluster *c)
{
    if (c->fast_heartbeat) {
        c->fast_heartbeat = 0;
        raft_set_heartbeat_timeout(&c->raft, CLUSTER_HEARTBEAT_MS);
        uv_timer_stop(&c->fast_tick);
    }
}

/* Leadership changes go to the log. raft 0.22 itself appends a barrier when
 * it wins an election with entries of earlier terms past its commit index
 * (src/convert.c, convertToLeader), so they commit without a command. */
static void watch_cb(uv_timer_t *t)
{
    struct cluster *c = t->data;
    int leader = raft_state(&c->raft) == RAFT_LEADER;

    if (leader && !c->was_leader) {
        log_info("became leader (term %llu)", (unsigned long long)c->raft.current_term);
    } else if (!leader && c->was_leader) {
        log_info("lost leadership");
    }
    c->was_leader = leader;
    if (c->fast_heartbeat &&
        (!leader || util_mono_ms() - c->commit_moved_ms > FAST_HEARTBEAT_FOR_MS)) {
        fast_stop(c);
    }
}

static struct cluster *cluster_of_io(struct raft_io *io)
{
    return (struct cluster *)((char *)io - offsetof(struct cluster, io));
}

/* raft's receive callback, wrapped: messages from a node that has left the
 * configuration since its connection was accepted are dropped (SPEC 7.1);
 * see also cluster_peers_note. */
static void io_recv(struct raft_io *io, struct raft_message *msg)
{
    struct cluster *c = cluster_of_io(io);
    if (!cluster_peer_is_member(c, msg->server_id)) {
        uint64_t now = util_mono_ms();
        if (now - c->dropped_warned_ms >= 10000) {
            c->dropped_warned_ms = now;
            log_warn("dropped raft messages from node %llu, which is not in the configuration",
                     (unsigned long long)msg->server_id);
        }
        cluster_peers_discard(msg);
        return;
    }
    cluster_peers_note(c, msg);
    if (!snapshot_hold_take(&c->held, msg, c->fsm->snapshot_taking,
                            c->raft.snapshot.installing || c->closing)) {
        c->recv(io, msg);
    }
}

/* A stable copy of the address raft has for server @id: raft 0.22.1 can
 * hand raft_uv a message whose server_address points into a configuration
 * it has freed since (under AddressSanitizer, a leader that had just added
 * a node read the freed address in raft_uv's send, a 45 s nemesis run in
 * CI). The address is looked up by id in raft's current configuration (or,
 * for a server no longer in it, the last one known), copied once, and kept
 * until the node stops; @fallback when the id was never seen. */
static const char *stable_address(struct cluster *c, raft_id id, const char *fallback)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    const char *current = NULL, *last = fallback;
    struct cluster_address *a, **grown;
    unsigned i;

    for (i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            current = conf->servers[i].address;
        }
    }
    for (i = 0; i < c->n_addresses; i++) {
        if (c->addresses[i]->id != id) {
            continue;
        }
        if (current == NULL) {
            last = c->addresses[i]->address;
        } else if (strcmp(c->addresses[i]->address, current) == 0) {
            return c->addresses[i]->address;
        }
    }
    if (current == NULL) {
        return last;
    }
    a = malloc(sizeof *a);
    grown = a != NULL ? realloc(c->addresses, (c->n_addresses + 1) * sizeof *grown) : NULL;
    if (grown == NULL) {
        free(a);
        return current; /* valid now, which is what raft_uv needs: it copies */
    }
    a->id = id;
    util_copy(a->address, sizeof a->address, current);
    c->addresses = grown;
    c->addresses[c->n_addresses++] = a;
    return a->address;
}

/* raft_uv's send, wrapped: the message goes out with a stable address
 * (raft_uv encodes the message and copies the address before it returns). */
static int io_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *message,
                   raft_io_send_cb cb)
{
    struct cluster *c = cluster_of_io(io);
    struct raft_message m = *message;
    m.server_address = stable_address(c, m.server_id, m.server_address);
    return c->io_send(io, req, &m, cb);
}

/* raft_uv's start, wrapped to keep raft's tick callback, which
 * cluster_after_iteration and the fast timer run between raft_uv's ticks,
 * and to see what raft receives (io_recv). */
static int io_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv)
{
    struct cluster *c = cluster_of_io(io);
    c->tick = tick;
    c->recv = recv;
    return c->io_start(io, msecs, tick, io_recv);
}

/* In probe state raft resends, at every heartbeat, all entries from the
 * follower's next index, so fast heartbeats wait until every follower
 * streams (see cluster_peer_heard). */
static int any_follower_probing(struct cluster *c)
{
    struct raft *r = &c->raft;
    unsigned i;
    for (i = 0; i < r->configuration.n; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        /* raft does not replicate to spares */
        if (s->id != r->id && s->role != RAFT_SPARE && !cluster_peer_heard(c, s->id, 1)) {
            return 1;
        }
    }
    return 0;
}

/* What the followers could apply if they knew the commit index: the sum
 * over followers of min(their match index, the commit index). It grows when
 * the commit index moves, and when a follower that was behind the commit
 * has written more of the log. */
static raft_index followers_can_apply(struct raft *r)
{
    raft_index sum = 0;
    unsigned i;
    for (i = 0; i < r->configuration.n; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        raft_index match = 0;
        if (s->id != r->id && s->role != RAFT_SPARE && raft_match_index(r, s->id, &match) == 0) {
            sum += match < r->commit_index ? match : r->commit_index;
        }
    }
    return sum;
}

void cluster_after_iteration(struct cluster *c)
{
    struct raft_message held;
    raft_index can_apply;

    if (!c->closing && snapshot_hold_release(&c->held, c->fsm->snapshot_taking, &held)) {
        c->recv(&c->io, &held);
    }

    /* A closing cluster is draining its appends: nothing more to tell. */
    if (c->closing || raft_state(&c->raft) != RAFT_LEADER) {
        return;
    }
    if (any_follower_probing(c)) {
        fast_stop(c);
        return;
    }
    can_apply = followers_can_apply(&c->raft);
    if (can_apply == c->seen_can_apply) {
        return;
    }
    c->seen_can_apply = can_apply;
    c->commit_moved_ms = util_mono_ms();
    fast_start(c);
    /* Tell the followers now rather than at the next fast tick (up to a
     * millisecond away): with a heartbeat timeout of 0, raft's tick sends
     * every follower the commit index. A follower applies only entries it
     * has written, so one that wrote its copy after the commit needs
     * telling again. */
    if (c->tick != NULL) {
        c->tick(&c->io);
    }
}

int cluster_dir_pristine(const struct config *config)
{
    char meta[CONFIG_PATH_MAX + 32];
    struct stat sb;
    snprintf(meta, sizeof meta, "%s/raft/metadata1", config->data_dir);
    if (stat(meta, &sb) == 0) {
        return 0;
    }
    snprintf(meta, sizeof meta, "%s/raft/metadata2", config->data_dir);
    return stat(meta, &sb) != 0;
}

int cluster_start(struct cluster *c, uv_loop_t *loop, const struct config *config, struct fsm *fsm,
                  const struct peer_keys *keys, SSL_CTX *peer_tls)
{
    struct raft_configuration conf;
    unsigned i;
    int rv;

    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->config = config;
    c->fsm = fsm;
    snprintf(c->raft_dir, sizeof c->raft_dir, "%s/raft", config->data_dir);
    if (util_mkdir_p(c->raft_dir) != 0) {
        snprintf(c->errmsg, sizeof c->errmsg, "cannot create %s: %s", c->raft_dir, strerror(errno));
        return ERR_INTERNAL;
    }
    rv = transport_init(&c->transport, loop, keys, peer_tls, cluster_peer_is_member_cb, c);
    if (rv != 0) {
        snprintf(c->errmsg, sizeof c->errmsg, "raft transport: %s", raft_strerror(rv));
        return ERR_INTERNAL;
    }
    rv = raft_uv_init(&c->io, loop, c->raft_dir, &c->transport.outer);
    if (rv != 0) {
        snprintf(c->errmsg, sizeof c->errmsg, "raft storage in %s: %s", c->raft_dir, c->io.errmsg);
        transport_close(&c->transport);
        return ERR_INTERNAL;
    }
    /* A corrupt segment must stop the node with a clear message rather than
     * be renamed away with the entries in it. */
    raft_uv_set_auto_recovery(&c->io, false);
    c->io_start = c->io.start;
    c->io.start = io_start;
    c->io_send = c->io.send;
    c->io.send = io_send;
    raft_uv_set_segment_size(&c->io, SEGMENT_BYTES);
    rv = raft_init(&c->raft, &c->io, &fsm->raft_fsm, config->id, config->raft);
    if (rv != 0) {
        snprintf(c->errmsg, sizeof c->errmsg, "raft init: %s", raft_errmsg(&c->raft));
        raft_uv_close(&c->io);
        transport_close(&c->transport);
        return ERR_INTERNAL;
    }
    fsm->raft = &c->raft;
    raft_set_election_timeout(&c->raft, 1000);
    raft_set_heartbeat_timeout(&c->raft, TICK_MS);
    raft_set_pre_vote(&c->raft, true);
    /* raft 0.22 refuses entries (RAFT_NOSPACE) while a majority of voters
     * report less than 4 MiB of prepared log space (raft_init's default
     * threshold, src/client.c clientCapacityIsWithinThreshold). The leader
     * takes its own figure once, when it wins the election, and raft_uv
     * reports 0 until its first segment is prepared, and its figure in KiB
     * in an unsigned short (src/uv.c uvUpdateCapacity), which our 32 MiB
     * segments wrap. A single node refused every command. Disk space is
     * the read model's concern here (the node's disk-full handling). */
    raft_set_capacity_threshold(&c->raft, 0);
    {
        /* Trailing entries kept after a snapshot let a follower a little
         * behind catch up from the log instead of installing a snapshot. */
        unsigned threshold = config->snapshot_threshold, trailing;
        if (threshold == 0) {
            threshold = FSM_SNAPSHOT_THRESHOLD_MIN;
            fsm->snapshot_auto = 1;
            trailing = 8192;
        } else {
            trailing = threshold / 2 < 1024 ? threshold / 2 : 1024;
        }
        raft_set_snapshot_threshold(&c->raft, threshold);
        raft_set_snapshot_trailing(&c->raft, trailing);
    }

    /* Bootstrap unless told to join; raft refuses (and the node resumes)
     * when the directory holds a term. A --join node never bootstraps: it
     * may hold a metadata file without a term (its first write met a full
     * disk, say) and would otherwise start a cluster of its own. */
    raft_configuration_init(&conf);
    if (config->n_members == 0) {
        rv = raft_configuration_add(&conf, config->id, config->raft, RAFT_VOTER);
    } else {
        rv = 0;
        for (i = 0; i < config->n_members && rv == 0; i++) {
            rv = raft_configuration_add(&conf, config->members[i].id, config->members[i].raft,
                                        RAFT_VOTER);
        }
    }
    if (rv == 0 && config->join[0] == '\0') {
        rv = raft_bootstrap(&c->raft, &conf);
        if (rv == RAFT_CANTBOOTSTRAP) {
            log_info("resuming from %s", c->raft_dir);
            rv = 0;
        } else if (rv == 0) {
            log_info("bootstrapped a new cluster of %u node(s) in %s", conf.n, c->raft_dir);
        }
    }
    raft_configuration_close(&conf);
    if (rv != 0) {
        snprintf(c->errmsg, sizeof c->errmsg, "raft bootstrap: %s", raft_errmsg(&c->raft));
        goto err_raft;
    }
    rv = raft_start(&c->raft);
    if (rv != 0) {
        snprintf(c->errmsg, sizeof c->errmsg, "raft start: %s", raft_errmsg(&c->raft));
        goto err_raft;
    }
    raft_set_heartbeat_timeout(&c->raft, CLUSTER_HEARTBEAT_MS);
    uv_timer_init(loop, &c->watch);
    c->watch.data = c;
    uv_timer_init(loop, &c->fast_tick);
    c->fast_tick.data = c;
    uv_timer_start(&c->watch, watch_cb, 0, WATCH_INTERVAL_MS);
    return 0;

err_raft:
    /* raft_close is asynchronous; the caller exits after reporting. */
    return ERR_INTERNAL;
}

int cluster_is_leader(struct cluster *c)
{
    return !c->closing && raft_state(&c->raft) == RAFT_LEADER;
}

uint64_t cluster_leader_id(struct cluster *c)
{
    raft_id id = 0;
    const char *address = NULL;
    if (c->closing) {
        return 0;
    }
    raft_leader(&c->raft, &id, &address);
    return id;
}

int cluster_is_member(struct cluster *c, uint64_t id)
{
    unsigned i;
    for (i = 0; i < c->raft.configuration.n; i++) {
        if (c->raft.configuration.servers[i].id == id) {
            return 1;
        }
    }
    return 0;
}

const char *cluster_role(struct cluster *c)
{
    switch (c->closing ? RAFT_UNAVAILABLE : raft_state(&c->raft)) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_CANDIDATE:
        return "candidate";
    default:
        return "unavailable";
    }
}

int cluster_submit(struct cluster *c, struct raft_apply *req, const struct raft_buffer *bufs,
                   unsigned n, raft_apply_cb cb)
{
    if (c->closing || raft_apply(&c->raft, req, bufs, n, cb) != 0) {
        return ERR_UNAVAILABLE;
    }
    return 0;
}

struct barrier_member {
    cluster_barrier_done cb;
    void *data;
};

struct barrier_group {
    struct raft_barrier req;
    struct buf members; /* struct barrier_member, back to back */
};

int cluster_barrier_join(struct cluster *c, cluster_barrier_done cb, void *data)
{
    struct barrier_group *g = c->barrier_group;
    struct barrier_member m = {cb, data};

    if (c->closing) {
        return ERR_UNAVAILABLE;
    }
    if (g == NULL) {
        g = calloc(1, sizeof *g);
        if (g == NULL) {
            return ERR_INTERNAL;
        }
        buf_init(&g->members);
        c->barrier_group = g;
    }
    return buf_append(&g->members, &m, sizeof m) == 0 ? 0 : ERR_INTERNAL;
}

static void barrier_group_finish(struct barrier_group *g, int status, uint64_t index)
{
    const struct barrier_member *m = (const void *)g->members.data;
    size_t i, n = g->members.len / sizeof *m;
    for (i = 0; i < n; i++) {
        m[i].cb(m[i].data, status, index);
    }
    buf_free(&g->members);
    free(g);
}

static void barrier_group_cb(struct raft_barrier *req, int status)
{
    struct barrier_group *g = req->data;
    barrier_group_finish(g, status, req->index);
}

void cluster_barrier_flush(struct cluster *c)
{
    struct barrier_group *g = c->barrier_group;
    int rv;

    if (g == NULL) {
        return;
    }
    c->barrier_group = NULL;
    g->req.data = g;
    rv = c->closing ? RAFT_SHUTDOWN : raft_barrier(&c->raft, &g->req, barrier_group_cb);
    if (rv != 0) {
        barrier_group_finish(g, rv, 0);
    }
}

static void nudge_cb(struct raft_barrier *req, int status)
{
    struct cluster *c = req->data;
    (void)status;
    c->nudge_pending = 0;
}

void cluster_nudge(struct cluster *c)
{
    if (c->nudge_pending || c->closing || raft_state(&c->raft) != RAFT_LEADER) {
        return;
    }
    c->nudge.data = c;
    if (raft_barrier(&c->raft, &c->nudge, nudge_cb) == 0) {
        c->nudge_pending = 1;
    }
}

/* raft_close's callback. raft_uv's own memory is released by
 * cluster_release once the loop has stopped, when no callback queued on the
 * loop can reach it any more (libuv's rule for handles, applied to the
 * library that owns them). */
static void raft_closed(struct raft *r)
{
    struct cluster *c = (struct cluster *)((char *)r - offsetof(struct cluster, raft));
    c->raft_closed = 1;
    if (c->close_cb != NULL) {
        c->close_cb(c);
    }
}

void cluster_release(struct cluster *c)
{
    if (c->raft_closed) {
        c->raft_closed = 0;
        raft_uv_close(&c->io);
        transport_close(&c->transport);
        free(c->peers);
        c->peers = NULL;
        c->n_peers = 0;
        while (c->n_addresses > 0) {
            free(c->addresses[--c->n_addresses]);
        }
        free(c->addresses);
        c->addresses = NULL;
    }
}

static void watch_closed(uv_handle_t *h)
{
    struct cluster *c = h->data;
    raft_close(&c->raft, raft_closed);
}

/* Closing raft_uv cancels the appends still waiting to be written, and
 * raft 0.15's leader, for each cancelled append in turn, releases its
 * entries and then truncates the log from it: the next cancelled append's
 * entries are gone by then and raft dereferences NULL. A node stopped while
 * two appends waited (its first segment file still being prepared, say)
 * crashed. So the close waits, at most CLOSE_DRAIN_MS, until everything
 * appended is on disk; closing already refuses new entries. */
#define CLOSE_DRAIN_MS 3000

static void drain_cb(uv_timer_t *t)
{
    struct cluster *c = t->data;
    if (c->raft.last_stored < raft_last_index(&c->raft) &&
        util_mono_ms() - c->close_started_ms < CLOSE_DRAIN_MS) {
        return;
    }
    /* A leader tells its followers the commit index once more: what it
     * answered may be known as committed to none of them yet (raft says so
     * at the next heartbeat, which a stop would not send), and a follower
     * left alone could not learn it until a leader is elected again.
     * raft_uv writes the messages now, before raft_close closes its
     * connections. */
    if (raft_state(&c->raft) == RAFT_LEADER && c->tick != NULL) {
        raft_set_heartbeat_timeout(&c->raft, 0);
        c->tick(&c->io);
    }
    uv_close((uv_handle_t *)&c->fast_tick, NULL);
    uv_timer_stop(&c->watch);
    uv_close((uv_handle_t *)&c->watch, watch_closed);
}

void cluster_close(struct cluster *c, void (*cb)(struct cluster *c))
{
    c->closing = 1;
    c->close_cb = cb;
    c->close_started_ms = util_mono_ms();
    snapshot_hold_drop(&c->held);
    fast_stop(c);
    cluster_barrier_flush(c); /* fails its members: nothing more is appended */
    /* the watch timer polls the drain from now on */
    uv_timer_start(&c->watch, drain_cb, 0, 1);
}
