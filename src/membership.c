/* cluster.AddNode, cluster.RemoveNode and cluster.TransferLeadership: raft
 * configuration changes driven by the leader (a follower relays the request
 * to it), each completed change then recorded through the log so that it
 * shows in /api_v2/nodes and as a cluster.NodeAdded / NodeRemoved event. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec.h"
#include "commands.pb-c.h"
#include "config.h"
#include "log.h"
#include "membership.h"
#include "node.h"
#include "submit.h"

enum member_kind { MEMBER_ADD, MEMBER_REMOVE, MEMBER_TRANSFER };

struct member_op {
    struct raft_change change;
    struct raft_transfer transfer;
    struct req_ref ref;
    struct node *node;
    enum member_kind kind;
    uint64_t id;
    int role;
    char raft_addr[CONFIG_ADDR_MAX];
    char http_addr[CONFIG_ADDR_MAX];
    char body[1024];   /* the request, to relay after a leadership hand-over */
    size_t body_len;
};

static void op_reply_error(struct member_op *op, enum err_code code, const char *message)
{
    h2o_req_t *req = req_ref_detach(&op->ref);
    if (req != NULL) {
        if (code == ERR_UNAVAILABLE) {
            http_reply_unavailable(op->node, req, message);
        } else {
            http_reply_error(op->node, req, code, "%s", message);
        }
    }
    free(op);
}

static void relay_done(void *data, const struct forward_reply *reply)
{
    struct member_op *op = data;
    h2o_req_t *req = req_ref_detach(&op->ref);
    if (req != NULL) {
        if (!reply->ok) {
            http_reply_unavailable(op->node, req, "the leader did not answer; retry");
        } else {
            http_reply_json(op->node, req, (int)reply->status, reply->body, reply->len);
        }
    }
    free(op);
}

/* Send the request on to the current leader and relay its answer. */
static void relay_to_leader(struct member_op *op, const char *command)
{
    struct node *node = op->node;
    uint64_t leader = cluster_leader_id(&node->cluster);
    char raft_addr[CONFIG_ADDR_MAX], http_addr[CONFIG_ADDR_MAX], path[96];

    if (leader == 0 || leader == node->config.id ||
        !store_node_addresses(&node->store, leader, raft_addr, http_addr, sizeof http_addr)) {
        op_reply_error(op, ERR_UNAVAILABLE, "no leader is reachable; retry");
        return;
    }
    snprintf(path, sizeof path, "/command/%s", command);
    if (forward_post(&node->forward, http_addr, path, op->body, op->body_len,
                     node->config.command_timeout_ms, relay_done, op) != 0) {
        op_reply_error(op, ERR_UNAVAILABLE, "cannot reach the leader; retry");
    }
}

static void recorded(void *data, const struct submit_result *r)
{
    struct member_op *op = data;
    h2o_req_t *req = req_ref_detach(&op->ref);
    if (req != NULL) {
        api_reply_outcome(op->node, req, r, r->body, r->len);
    }
    free(op);
}

static void record_added(struct member_op *op)
{
    Varasto__ClusterAddNode msg = VARASTO__CLUSTER_ADD_NODE__INIT;
    static const char *roles[] = {"standby", "voter", "spare"};
    msg.id = op->id;
    msg.raftaddress = op->raft_addr;
    msg.httpaddress = op->http_addr;
    msg.role = (char *)roles[op->role];
    if (submit_message(op->node, "cluster.RecordNodeAdded", &msg.base, recorded, op) != 0) {
        op_reply_error(op, ERR_INTERNAL, "out of memory");
    }
}

static void change_error(struct member_op *op, int status, const char *what)
{
    char message[256];
    enum err_code code = status == RAFT_CANTCHANGE || status == RAFT_DUPLICATEID ||
                                 status == RAFT_DUPLICATEADDRESS || status == RAFT_BADID
                             ? ERR_CONFLICT
                             : ERR_UNAVAILABLE;
    snprintf(message, sizeof message, "%s: %s", what,
             status == RAFT_CANTCHANGE ? "another membership change is in progress"
                                       : raft_strerror(status));
    op_reply_error(op, code, message);
}

static void assign_cb(struct raft_change *change, int status)
{
    struct member_op *op = change->data;
    if (status != 0) {
        change_error(op, status, "node added as a spare, but its promotion failed (retry "
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
    if (op->role == RAFT_SPARE) {
        record_added(op);
        return;
    }
    /* Promotion runs catch-up rounds first: a voter joins the quorum only
     * once it has the log. */
    op->change.data = op;
    rv = raft_assign(&op->node->cluster.raft, &op->change, op->id, op->role, assign_cb);
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
    msg.id = op->id;
    if (submit_message(op->node, "cluster.RecordNodeRemoved", &msg.base, recorded, op) != 0) {
        op_reply_error(op, ERR_INTERNAL, "out of memory");
    }
}

/* The configuration entry of @id, or NULL. */
static const struct raft_server *member(struct node *node, uint64_t id)
{
    const struct raft_configuration *conf = &node->cluster.raft.configuration;
    unsigned i;
    for (i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return &conf->servers[i];
        }
    }
    return NULL;
}

static void transfer_cb(struct raft_transfer *t)
{
    struct member_op *op = t->data;
    struct node *node = op->node;
    uint64_t leader = cluster_leader_id(&node->cluster);

    if (op->kind == MEMBER_REMOVE) {
        /* The leader handed over before removing itself: the new leader
         * carries out the removal. */
        if (leader == 0 || leader == node->config.id) {
            op_reply_error(op, ERR_UNAVAILABLE, "leadership could not be handed over; retry");
        } else {
            relay_to_leader(op, "cluster.RemoveNode");
        }
        return;
    }
    if (leader == 0 || leader == node->config.id || (op->id != 0 && leader != op->id)) {
        op_reply_error(op, ERR_UNAVAILABLE, "leadership was not transferred in time; retry");
        return;
    }
    {
        h2o_req_t *req = req_ref_detach(&op->ref);
        if (req != NULL) {
            char body[64];
            int n = snprintf(body, sizeof body, "{\"Leader\":%llu}", (unsigned long long)leader);
            http_reply_json(node, req, 200, body, (size_t)n);
        }
        free(op);
    }
}

static int start_transfer(struct member_op *op, uint64_t target)
{
    op->transfer.data = op;
    return raft_transfer(&op->node->cluster.raft, &op->transfer, target, transfer_cb);
}

/* On the leader: carry out @op. */
static void run_on_leader(struct member_op *op)
{
    struct node *node = op->node;
    struct raft *r = &node->cluster.raft;
    const struct raft_server *srv = member(node, op->id);
    int rv;

    op->change.data = op;
    switch (op->kind) {
    case MEMBER_ADD:
        if (srv != NULL) {
            if (strcmp(srv->address, op->raft_addr) != 0) {
                op_reply_error(op, ERR_CONFLICT, "a node with this Id has another RaftAddress");
                return;
            }
            if (srv->role == op->role) {
                record_added(op); /* already added: a no-op but for the record */
                return;
            }
            rv = raft_assign(r, &op->change, op->id, op->role, assign_cb);
        } else {
            rv = raft_add(r, &op->change, op->id, op->raft_addr, add_cb);
        }
        if (rv != 0) {
            change_error(op, rv, "adding the node failed");
        }
        return;
    case MEMBER_REMOVE:
        if (srv == NULL) {
            op_reply_error(op, ERR_NOT_FOUND, "no node with this Id in the cluster");
            return;
        }
        if (op->id == node->config.id) {
            rv = start_transfer(op, 0);
            if (rv != 0) {
                change_error(op, rv, "handing over leadership before removal failed");
            }
            return;
        }
        rv = raft_remove(r, &op->change, op->id, remove_cb);
        if (rv != 0) {
            change_error(op, rv, "removing the node failed");
        }
        return;
    case MEMBER_TRANSFER:
        if (op->id != 0 && (srv == NULL || srv->role != RAFT_VOTER)) {
            op_reply_error(op, srv == NULL ? ERR_NOT_FOUND : ERR_CONFLICT,
                           "the target must be a voting member");
            return;
        }
        if (op->id == node->config.id) {
            h2o_req_t *req = req_ref_detach(&op->ref);
            if (req != NULL) {
                char body[64];
                int n = snprintf(body, sizeof body, "{\"Leader\":%llu}",
                                 (unsigned long long)op->id);
                http_reply_json(node, req, 200, body, (size_t)n);
            }
            free(op);
            return;
        }
        rv = start_transfer(op, op->id);
        if (rv != 0) {
            change_error(op, rv, "transferring leadership failed");
        }
        return;
    }
}

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

void membership_command(struct node *node, h2o_req_t *req, const char *name, const cJSON *json)
{
    const ProtobufCMessageDescriptor *desc =
        strcmp(name, "cluster.AddNode") == 0      ? &varasto__cluster_add_node__descriptor
        : strcmp(name, "cluster.RemoveNode") == 0 ? &varasto__cluster_remove_node__descriptor
                                                   : &varasto__cluster_transfer_leadership__descriptor;
    struct codec_error cerr;
    ProtobufCMessage *msg = NULL;
    struct member_op *op;
    char host[CONFIG_ADDR_MAX];
    int port;

    if (codec_decode(desc, json, &msg, &cerr) != 0) {
        http_reply_error(node, req, ERR_BAD_REQUEST, "%s", cerr.message);
        return;
    }
    op = calloc(1, sizeof *op);
    if (op == NULL) {
        protobuf_c_message_free_unpacked(msg, NULL);
        http_reply_error(node, req, ERR_INTERNAL, "out of memory");
        return;
    }
    op->node = node;
    if (desc == &varasto__cluster_add_node__descriptor) {
        const Varasto__ClusterAddNode *c = (const void *)msg;
        op->kind = MEMBER_ADD;
        op->id = c->id;
        op->role = parse_role(c->role);
        if (c->id == 0 || strlen(c->raftaddress) >= CONFIG_ADDR_MAX ||
            strlen(c->httpaddress) >= CONFIG_ADDR_MAX ||
            config_split_addr(c->raftaddress, host, &port) != 0 ||
            config_split_addr(c->httpaddress, host, &port) != 0 || op->role < 0) {
            http_reply_error(node, req, ERR_BAD_REQUEST,
                             "cluster.AddNode needs a positive Id, HOST:PORT addresses and a "
                             "Role of voter, standby or spare");
            goto fail;
        }
        util_copy(op->raft_addr, sizeof op->raft_addr, c->raftaddress);
        util_copy(op->http_addr, sizeof op->http_addr, c->httpaddress);
    } else if (desc == &varasto__cluster_remove_node__descriptor) {
        op->kind = MEMBER_REMOVE;
        op->id = ((const Varasto__ClusterRemoveNode *)msg)->id;
    } else {
        const Varasto__ClusterTransferLeadership *c = (const void *)msg;
        op->kind = MEMBER_TRANSFER;
        op->id = c->has_id ? c->id : 0;
    }
    protobuf_c_message_free_unpacked(msg, NULL);
    msg = NULL;
    if (req->entity.len >= sizeof op->body) {
        http_reply_error(node, req, ERR_BAD_REQUEST, "request too long for a cluster command");
        goto fail;
    }
    memcpy(op->body, req->entity.base, req->entity.len);
    op->body_len = req->entity.len;
    req_ref_attach(&op->ref, req);
    if (cluster_is_leader(&node->cluster)) {
        run_on_leader(op);
    } else {
        relay_to_leader(op, name);
    }
    return;
fail:
    if (msg != NULL) {
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    free(op);
}
