/* The node: owns the loop and wires config, store, FSM, raft, push hub and
 * HTTP together; runs until SIGINT/SIGTERM and then closes everything. */
#ifndef VARASTO_NODE_H
#define VARASTO_NODE_H

#include <uv.h>

#include "cluster.h"
#include "config.h"
#include "forward.h"
#include "fsm.h"
#include "http.h"
#include "push.h"
#include "store.h"

struct submit_op;
struct fwd_batch;
struct raft_batch;

struct node {
    struct config config;
    uv_loop_t loop;
    struct store store;
    struct fsm fsm;
    struct cluster cluster;
    struct push push;
    struct http_server http;
    uv_signal_t sigint, sigterm;
    uv_check_t flush; /* applies committed entries once per loop iteration */
    uv_timer_t commit; /* commits the read model's open transaction when due */
    uv_work_t checkpoint;
    int checkpointing;
    int raft_closed;
    struct forward forward;
    struct submit_op *submit_waits; /* forwarded commands waiting for local apply */
    struct submit_op *submit_parked; /* commands waiting for a leader to be known */
    struct fwd_batch *fwd_batch;     /* entries to forward at the end of this iteration */
    struct raft_batch *raft_batch;   /* entries to append at the end of this iteration */
    struct raft_batch *applying, *applying_tail; /* appended, waiting for their outcome */
    struct submit_op **fwd_table;    /* forwarded, by entry fingerprint */
    uint64_t leader_cache_id, leader_cache_ms;
    char leader_cache_http[CONFIG_ADDR_MAX];
    uv_timer_t announce;            /* makes sure the cluster knows our HTTP address */
    uv_timer_t join;                /* --join: asks a member to add us */
    uv_idle_t wake_idle;            /* wakes stream subscribers in slices */
    int announcing;
    uint64_t seen_applied;          /* raft's applied index at the last check */
    uint64_t oldest_seq;            /* oldest event kept (retention), 0 if none */
    uint64_t pruned_at_seq;         /* last_seq at the last retention pass */
    char admin_token[256];
    int stopping;
    int exit_code;
};

/* Run a node with @config until it is stopped. Returns the process exit
 * code: 0 after a clean stop, 1 on a startup error (one line on stderr). */
int node_run(const struct config *config);

/* Whether the Authorization header of @req carries the admin token or a live
 * API key. */
int node_authorized(struct node *node, h2o_req_t *req);

/* Whether @req carries the admin (cluster) token itself. */
int node_is_admin(struct node *node, h2o_req_t *req);

#endif
