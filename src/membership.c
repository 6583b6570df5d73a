#include "membership.h"
#include "membership_self.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "codec.h"
#include "commands.pb-c.h"
#include "log.h"
#include "util.h"

/* After a hand-over, how often and how long to look for the new leader. */
#define SETTLE_POLL_MS 10
#define SETTLE_FOR_MS 2000
/* raft_transfer calls for one command before it answers 503. */
#define TRANSFER_ATTEMPTS 2
/* A hand-over answers within this long. raft keeps a transfer open while
 * no leader is known (a leader that lost its quorum meanwhile may not learn
 * one until the network heals); the request then answers 503 and its
 * memory waits for raft's callback. */
#define TRANSFER_ANSWER_MS 5000

/* One membership command on the leader, until its outcome is reported. */
struct member_op {
    struct raft_change change;
    struct raft_transfer transfer;
    struct membership *m;
    struct membership_cmd cmd;
    submit_cb cb;
    void *cb_data;
    char body[MEMBERSHIP_BODY_MAX + 1]; /* to relay after a leadership hand-over */
    size_t body_len;
    uint64_t settle_until;           /* a hand-over waiting to learn the new leader */
    uint64_t answer_by;              /* a hand-over's deadline */
    unsigned attempts;               /* raft_transfer calls so far */
    int answered;                    /* the client has its answer; raft still holds @transfer */
    int in_raft;                     /* on m->transfers: raft holds @transfer */
    struct member_op *next;          /* m->settling */
    struct member_op *next_transfer; /* m->transfers */
};

/* ---- outcomes ---- */

static void op_fail(struct member_op *op, enum err_code code, const char *message)
{
    submit_answer_error(op->cb, op->cb_data, code, message);
    free(op);
}

static void op_leader(struct member_op *op, uint64_t leader)
{
    struct submit_result r;
    char body[64];
    memset(&r, 0, sizeof r);
    r.status = 200;
    r.len = (size_t)snprintf(body, sizeof body, "{\"Leader\":%llu}", (unsigned long long)leader);
    r.body = body;
    op->cb(op->cb_data, &r);
    free(op);
}

static void recorded(void *data, const struct submit_result *r)
{
    struct member_op *op = data;
    op->cb(op->cb_data, r);
    free(op);
}

static void change_error(struct member_op *op, int status, const char *what)
{
    char message[320], busy[160] = "another membership change is in progress";
    enum err_code code = status == RAFT_CANTCHANGE || status == RAFT_DUPLICATEID ||
                                 status == RAFT_DUPLICATEADDRESS || status == RAFT_BADID
                             ? ERR_CONFLICT
                             : ERR_UNAVAILABLE;
    if (status == RAFT_CANTCHANGE) {
        /* what raft is waiting for (a 600 s nemesis run met this for over
         * 30 s while the leader committed commands) */
        const struct raft *r = &op->m->cluster->raft;
        log_warn("%s: configuration entry %llu uncommitted (commit index %llu), promoting %llu",
                 what, (unsigned long long)r->configuration_uncommitted_index,
                 (unsigned long long)r->commit_index,
                 (unsigned long long)(r->state == RAFT_LEADER ? r->leader_state.promotee_id : 0));
        /* a promotion holds every other change until the node has caught
         * up or raft gives up on it: up to rounds x duration (the 30 s and
         * more of the long runs: a re-joined node that could not catch up) */
        if (r->state == RAFT_LEADER && r->leader_state.promotee_id != 0) {
            snprintf(busy, sizeof busy,
                     "node %llu is catching up to become a voter (raft allows it %u rounds "
                     "of up to %u ms); retry",
                     (unsigned long long)r->leader_state.promotee_id, r->max_catch_up_rounds,
                     r->max_catch_up_round_duration);
        }
    }
    snprintf(message, sizeof message, "%s: %s", what,
             status == RAFT_CANTCHANGE ? busy
             : status == RAFT_NOTFOUND ? "no other voting member is reachable; retry"
                                       : raft_strerror(status));
    op_fail(op, code, message);
}

/* ---- the changes, on the leader ---- */

static void record_added(struct member_op *op)
{
    Varasto__ClusterAddNode msg = VARASTO__CLUSTER_ADD_NODE__INIT;
    static const char *roles[] = {"standby", "voter", "spare"};
    msg.id = op->cmd.id;
    msg.raftaddress = op->cmd.raft_addr;
    msg.httpaddress = op->cmd.http_addr;
    msg.role = (char *)roles[op->cmd.role];
    if (submit_message(op->m->submit, "cluster.RecordNodeAdded", &msg.base, recorded, op) != 0) {
        op_fail(op, ERR_INTERNAL, "out of memory");
    }
}

static void assign_cb(struct raft_change *change, int status)
{
    struct member_op *op = change->data;
    if (status != 0) {
        change_error(op, status,
                     "node added as a spare, but its promotion failed (retry "
                     "cluster.AddNode to promote it)");
        return;
    }
    record_added(op);
}

static void add_cb(struct raft_change *change, int status)
{
    struct member_op *op = change->data;
    int rv;
    if (status != 0) {
        change_error(op, status, "adding the node failed");
        return;
    }
    if (op->cmd.role == RAFT_SPARE) {
        record_added(op);
        return;
    }
    /* Promotion runs catch-up rounds first: a voter joins the quorum only
     * once it has the log. */
    op->change.data = op;
    rv = raft_assign(&op->m->cluster->raft, &op->change, op->cmd.id, op->cmd.role, assign_cb);
    if (rv != 0) {
        change_error(op, rv, "promoting the node failed");
    }
}

static void remove_cb(struct raft_change *change, int status)
{
    struct member_op *op = change->data;
    Varasto__ClusterRemoveNode msg = VARASTO__CLUSTER_REMOVE_NODE__INIT;
    if (status != 0) {
        change_error(op, status, "removing the node failed");
        return;
    }
    msg.id = op->cmd.id;
    if (submit_message(op->m->submit, "cluster.RecordNodeRemoved", &msg.base, recorded, op) != 0) {
        op_fail(op, ERR_INTERNAL, "out of memory");
    }
}

/* The configuration entry of @id, or NULL. */
static const struct raft_server *member(struct cluster *c, uint64_t id)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    unsigned i;
    for (i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return &conf->servers[i];
        }
    }
    return NULL;
}

/* The hand-over ended with @leader the leader (0: none known). */
static int start_transfer(struct member_op *op, uint64_t target);

static void transfer_done(struct member_op *op, uint64_t leader)
{
    /* raft gives up after an election timeout; the chosen voter, still
     * reachable, usually takes over on a second try (its first campaign can
     * meet a log the leader grew meanwhile) */
    if (leader == op->m->config->id && op->attempts < TRANSFER_ATTEMPTS && !op->m->stopping &&
        cluster_is_leader(op->m->cluster) &&
        start_transfer(op, op->cmd.kind == MEMBERSHIP_TRANSFER ? op->cmd.id : 0) == 0) {
        return;
    }
    if (leader == 0 || leader == op->m->config->id || (op->cmd.id != 0 && leader != op->cmd.id)) {
        log_warn("leadership transfer to %llu did not complete (leader now %llu)",
                 (unsigned long long)op->transfer.id, (unsigned long long)leader);
        op_fail(op, ERR_UNAVAILABLE, "leadership was not transferred in time; retry");
        return;
    }
    op_leader(op, leader);
}

/* Take @op off the list of hand-overs raft holds. */
static void transfer_unlink(struct member_op *op)
{
    struct member_op **p = &op->m->transfers;
    while (*p != NULL && *p != op) {
        p = &(*p)->next_transfer;
    }
    if (*p == op) {
        *p = op->next_transfer;
    }
    op->in_raft = 0;
    op->next_transfer = NULL;
}

/* Answer every hand-over raft still holds past its deadline (all of them
 * when the node stops). Returns whether one is left to answer. */
static int transfers_overdue(struct membership *m, uint64_t now)
{
    struct member_op *op;
    int waiting = 0;
    for (op = m->transfers; op != NULL; op = op->next_transfer) {
        if (op->answered) {
            continue;
        }
        if (now < op->answer_by && !m->stopping) {
            waiting = 1;
            continue;
        }
        log_warn("leadership transfer to %llu got no outcome within %d ms",
                 (unsigned long long)op->transfer.id, TRANSFER_ANSWER_MS);
        op->answered = 1;
        submit_answer_error(op->cb, op->cb_data, ERR_UNAVAILABLE,
                            m->stopping ? "the node is stopping; retry"
                                        : "leadership was not transferred in time; retry");
    }
    return waiting;
}

static void settle_tick(uv_timer_t *t)
{
    struct membership *m = t->data;
    struct member_op **p = &m->settling;
    uint64_t leader = cluster_leader_id(m->cluster);
    uint64_t now = util_mono_ms();

    while (*p != NULL) {
        struct member_op *op = *p;
        if (leader == 0 && now < op->settle_until && !m->stopping) {
            p = &op->next;
            continue;
        }
        *p = op->next;
        transfer_done(op, leader);
    }
    if (!transfers_overdue(m, now) && m->settling == NULL) {
        uv_timer_stop(t);
    }
}

static void watch_start(struct membership *m)
{
    if (!m->stopping && !uv_is_active((uv_handle_t *)&m->settle)) {
        uv_timer_start(&m->settle, settle_tick, SETTLE_POLL_MS, SETTLE_POLL_MS);
    }
}

static void transfer_cb(struct raft_transfer *t)
{
    struct member_op *op = t->data;
    struct membership *m = op->m;
    uint64_t leader = cluster_leader_id(m->cluster);

    transfer_unlink(op);
    if (op->answered) {
        free(op);
        return;
    }
    if (op->cmd.kind == MEMBERSHIP_REMOVE) {
        /* The leader handed over before removing itself: the new leader
         * carries out the removal, reached like any leader. */
        if (leader == m->config->id) {
            op_fail(op, ERR_UNAVAILABLE, "leadership could not be handed over; retry");
        } else {
            submit_relay(m->submit, "cluster.RemoveNode", op->body, op->body_len, op->cb,
                         op->cb_data);
            free(op);
        }
        return;
    }
    if (leader == 0 && !cluster_is_leader(m->cluster) && !m->stopping) {
        /* raft 0.22 reports the transfer as soon as this node steps down,
         * before the new leader has made itself known: wait for it */
        op->settle_until = util_mono_ms() + SETTLE_FOR_MS;
        op->next = m->settling;
        m->settling = op;
        watch_start(m);
        return;
    }
    transfer_done(op, leader);
}

/* Hand leadership to @target, or to the best voter for 0. */
static int start_transfer(struct member_op *op, uint64_t target)
{
    int rv;

    if (target == 0) {
        target = cluster_best_transferee(op->m->cluster);
        if (target == 0) {
            return RAFT_NOTFOUND;
        }
    }
    op->transfer.data = op;
    op->attempts++;
    rv = raft_transfer(&op->m->cluster->raft, &op->transfer, target, transfer_cb);
    if (rv != 0) {
        return rv;
    }
    if (op->answer_by == 0) {
        op->answer_by = util_mono_ms() + TRANSFER_ANSWER_MS;
    }
    op->in_raft = 1;
    op->next_transfer = op->m->transfers;
    op->m->transfers = op;
    watch_start(op->m);
    return 0;
}

/* Whether raft would refuse a change now (RAFT_CANTCHANGE). Asked before
 * raft_add and raft_remove: libraft 0.22.1 encodes the new configuration
 * before it finds it cannot submit it, and leaks the encoding then. */
static int change_pending(const struct raft *r)
{
    return r->state == RAFT_LEADER &&
           (r->configuration_uncommitted_index != 0 || r->leader_state.promotee_id != 0);
}

static void run(struct member_op *op)
{
    struct membership *m = op->m;
    struct raft *r = &m->cluster->raft;
    const struct membership_cmd *cmd = &op->cmd;
    const struct raft_server *srv = member(m->cluster, cmd->id);
    int rv;

    op->change.data = op;
    switch (cmd->kind) {
    case MEMBERSHIP_ADD:
        if (srv != NULL) {
            char raft[CONFIG_ADDR_MAX], http[CONFIG_ADDR_MAX];
            if (strcmp(srv->address, cmd->raft_addr) != 0) {
                op_fail(op, ERR_CONFLICT, "a node with this Id has another RaftAddress");
                return;
            }
            /* where every follower forwards to: only the node itself
             * moves it (cluster.Announce at its start) */
            if (store_node_addresses(m->store, cmd->id, raft, http, sizeof http) == 1 &&
                strcmp(http, cmd->http_addr) != 0) {
                op_fail(op, ERR_CONFLICT,
                        "a node with this Id has another HttpAddress (a member announces "
                        "its own; cluster.AddNode never changes it)");
                return;
            }
            if (srv->role == cmd->role) {
                record_added(op); /* already added: a no-op but for the record */
                return;
            }
            rv = raft_assign(r, &op->change, cmd->id, cmd->role, assign_cb);
        } else {
            rv = change_pending(r) ? RAFT_CANTCHANGE
                                   : raft_add(r, &op->change, cmd->id, cmd->raft_addr, add_cb);
        }
        if (rv != 0) {
            change_error(op, rv, "adding the node failed");
        }
        return;
    case MEMBERSHIP_REMOVE:
        if (srv == NULL) {
            op_fail(op, ERR_NOT_FOUND, "no node with this Id in the cluster");
            return;
        }
        if (cmd->id == m->config->id) {
            rv = start_transfer(op, 0);
            if (rv != 0) {
                change_error(op, rv, "handing over leadership before removal failed");
            }
            return;
        }
        rv = change_pending(r) ? RAFT_CANTCHANGE : raft_remove(r, &op->change, cmd->id, remove_cb);
        if (rv != 0) {
            change_error(op, rv, "removing the node failed");
        }
        return;
    case MEMBERSHIP_TRANSFER:
        if (cmd->id != 0 && (srv == NULL || srv->role != RAFT_VOTER)) {
            op_fail(op, srv == NULL ? ERR_NOT_FOUND : ERR_CONFLICT,
                    "the target must be a voting member");
            return;
        }
        if (cmd->id == m->config->id) {
            op_leader(op, cmd->id);
            return;
        }
        rv = start_transfer(op, cmd->id);
        if (rv != 0) {
            change_error(op, rv, "transferring leadership failed");
        }
        return;
    }
}

/* ---- commands ---- */

static int parse_role(const char *role)
{
    if (role == NULL || strcmp(role, "voter") == 0) {
        return RAFT_VOTER;
    }
    if (strcmp(role, "standby") == 0) {
        return RAFT_STANDBY;
    }
    if (strcmp(role, "spare") == 0) {
        return RAFT_SPARE;
    }
    return -1;
}

int membership_is_command(const char *name)
{
    return strcmp(name, "cluster.AddNode") == 0 || strcmp(name, "cluster.RemoveNode") == 0 ||
           strcmp(name, "cluster.TransferLeadership") == 0;
}

int membership_parse(const char *name, const cJSON *json, struct membership_cmd *cmd, struct err *e)
{
    const ProtobufCMessageDescriptor *desc =
        strcmp(name, "cluster.AddNode") == 0 ? &varasto__cluster_add_node__descriptor
        : strcmp(name, "cluster.RemoveNode") == 0
            ? &varasto__cluster_remove_node__descriptor
            : &varasto__cluster_transfer_leadership__descriptor;
    ProtobufCMessage *msg = NULL;
    char host[CONFIG_ADDR_MAX];
    int port, rv = 0;

    memset(cmd, 0, sizeof *cmd);
    if ((rv = codec_decode(desc, json, &msg, e)) != 0) {
        return rv;
    }
    if (desc == &varasto__cluster_add_node__descriptor) {
        const Varasto__ClusterAddNode *c = (const void *)msg;
        cmd->kind = MEMBERSHIP_ADD;
        cmd->id = c->id;
        cmd->role = parse_role(c->role);
        if (c->id == 0 || strlen(c->raftaddress) >= CONFIG_ADDR_MAX ||
            strlen(c->httpaddress) >= CONFIG_ADDR_MAX ||
            config_split_addr(c->raftaddress, host, &port) != 0 ||
            config_split_addr(c->httpaddress, host, &port) != 0 || cmd->role < 0) {
            rv = err_set(e, ERR_BAD_REQUEST,
                         "cluster.AddNode needs a positive Id, HOST:PORT addresses and a "
                         "Role of voter, standby or spare");
        } else {
            util_copy(cmd->raft_addr, sizeof cmd->raft_addr, c->raftaddress);
            util_copy(cmd->http_addr, sizeof cmd->http_addr, c->httpaddress);
        }
    } else if (desc == &varasto__cluster_remove_node__descriptor) {
        cmd->kind = MEMBERSHIP_REMOVE;
        cmd->id = ((const Varasto__ClusterRemoveNode *)msg)->id;
    } else {
        const Varasto__ClusterTransferLeadership *c = (const void *)msg;
        cmd->kind = MEMBERSHIP_TRANSFER;
        cmd->id = c->has_id ? c->id : 0;
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    return rv;
}

void membership_exec(void *data, const char *command, const char *body, size_t len, submit_cb cb,
                     void *cb_data)
{
    struct membership *m = data;
    struct member_op *op = calloc(1, sizeof *op);
    cJSON *json;
    struct err e;

    if (op == NULL) {
        static const char oom[] = "{\"Error\":\"out of memory\",\"Code\":\"internal\"}";
        struct submit_result r = {500, oom, sizeof oom - 1, 0, 0, 0};
        cb(cb_data, &r);
        return;
    }
    op->m = m;
    op->cb = cb;
    op->cb_data = cb_data;
    json = len <= MEMBERSHIP_BODY_MAX ? codec_parse_body(body, len, &e) : NULL;
    if (json == NULL) {
        op_fail(op, ERR_BAD_REQUEST, "malformed membership command");
        return;
    }
    if (membership_parse(command, json, &op->cmd, &e) != 0) {
        cJSON_Delete(json);
        op_fail(op, e.code, e.message);
        return;
    }
    cJSON_Delete(json);
    memcpy(op->body, body, len);
    op->body_len = len;
    run(op);
}

void membership_start(struct membership *m, uv_loop_t *loop, const struct config *config,
                      struct cluster *cluster, struct store *store, struct submit *submit,
                      struct forward *forward)
{
    memset(m, 0, sizeof *m);
    m->config = config;
    m->cluster = cluster;
    m->store = store;
    m->submit = submit;
    m->forward = forward;
    submit_set_exec(submit, membership_exec, m);
    uv_timer_init(loop, &m->settle);
    m->settle.data = m;
    membership_self_start(m, loop);
}

void membership_close(struct membership *m)
{
    m->stopping = 1;
    settle_tick(&m->settle); /* answers every waiting hand-over */
    uv_close((uv_handle_t *)&m->settle, NULL);
    membership_self_close(m);
}
