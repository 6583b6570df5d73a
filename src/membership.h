/* Membership: the raft configuration changes behind cluster.AddNode,
 * cluster.RemoveNode and cluster.TransferLeadership, run by the leader (the
 * submission module relays them there) and each recorded through the log
 * once done, so that it shows in /api_v2/nodes and as a cluster.NodeAdded /
 * NodeRemoved event; and this node's own place in the cluster: announcing
 * its addresses through the log, and --join. No HTTP here: outcomes are
 * submit_results. */
#ifndef VARASTO_MEMBERSHIP_H
#define VARASTO_MEMBERSHIP_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "errors.h"
#include "submit.h"

struct cluster;
struct forward;
struct store;

enum membership_kind { MEMBERSHIP_ADD, MEMBERSHIP_REMOVE, MEMBERSHIP_TRANSFER };

/* A decoded, checked membership command. */
struct membership_cmd {
    enum membership_kind kind;
    uint64_t id; /* the node; 0 for "any" in a transfer */
    int role;    /* RAFT_VOTER, RAFT_STANDBY or RAFT_SPARE (add) */
    char raft_addr[CONFIG_ADDR_MAX];
    char http_addr[CONFIG_ADDR_MAX];
};

/* The longest request body of a membership command, in bytes. */
#define MEMBERSHIP_BODY_MAX 1023

struct member_op;

struct membership {
    const struct config *config; /* borrowed */
    struct cluster *cluster;     /* borrowed */
    struct store *store;         /* borrowed: announced addresses */
    struct submit *submit;       /* borrowed: records, relays */
    struct forward *forward;     /* borrowed: --join */
    uv_timer_t announce;         /* makes sure the cluster knows our addresses */
    uv_timer_t join;             /* --join: asks a member to add us */
    uv_timer_t settle;           /* hand-overs: learning the new leader, deadlines */
    struct member_op *settling;  /* hand-overs waiting to learn the new leader */
    struct member_op *transfers; /* hand-overs raft holds (struct raft_transfer) */
    int announcing;
    int stopping;
};

/* Whether @name is one of the membership commands. */
int membership_is_command(const char *name);

/* Decode and check the body @json (borrowed) of command @name into @cmd.
 * Returns 0, or an err_code with @e set. */
int membership_parse(const char *name, const cJSON *json, struct membership_cmd *cmd,
                     struct err *e);

/* Set up @m (every pointer borrowed), register it as the submission
 * module's runner of relayed commands, start announcing, and with --join
 * ask config->join to add this node unless the configuration it holds
 * already has it (a node that stopped before it was added asks again). */
void membership_start(struct membership *m, uv_loop_t *loop, const struct config *config,
                      struct cluster *cluster, struct store *store, struct submit *submit,
                      struct forward *forward);

/* Stop the timers (the node is stopping) and close their handles. */
void membership_close(struct membership *m);

/* The leader's runner of relayed commands (a submit_exec_fn; @data is the
 * struct membership). */
void membership_exec(void *data, const char *command, const char *body, size_t len, submit_cb cb,
                     void *cb_data);

#endif
