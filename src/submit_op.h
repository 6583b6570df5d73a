/* One submission, shared by the files of the submission module (submit.c,
 * leader_batch.c, forward_batch.c); not for use outside them. */
#ifndef VARASTO_SUBMIT_OP_H
#define VARASTO_SUBMIT_OP_H

#include <raft.h>
#include <stdint.h>
#include <uv.h>

#include "queue.h"
#include "submit.h"

#define SUBMIT_COMMAND_MAX 64

enum submit_kind {
    SUBMIT_ENTRY, /* a log entry */
    SUBMIT_RELAY, /* a command the leader runs (membership) */
};

/* Freed once the outcome is delivered, the backend (raft, curl or the exec
 * function) is done with it, and its timer is closed. */
struct submit_op {
    struct submit *s;
    enum submit_kind kind;
    submit_cb cb;
    void *data;
    uv_timer_t timer; /* the command timeout */
    int delivered;
    int backend_done; /* raft, the forward reply or exec has answered */
    int closing;
    struct raft_buffer entry;         /* parked: an entry not sent yet */
    char command[SUBMIT_COMMAND_MAX]; /* relay: what to run */
    char *body;                       /* relay: its JSON body */
    size_t body_len;
    uint64_t hash;          /* forwarded entry: its fingerprint */
    uint64_t wait_index;    /* forwarded entry: its index, once known */
    struct queue link;      /* parked, relaying, or waiting for wait_index */
    struct queue hash_link; /* forwarded entry: in its fingerprint bucket */
};

/* Deliver @r to @op's callback (once; later calls are ignored) and unlink
 * @op from every list. */
void submit_op_deliver(struct submit_op *op, const struct submit_result *r);

struct forward_reply;

/* The outcome a leader's HTTP answer @reply gives (borrowing its body). */
void submit_result_of_reply(struct submit_result *r, const struct forward_reply *reply);

/* Deliver a 503 with Retry-After and @message. */
void submit_op_deliver_unavailable(struct submit_op *op, const char *message);

/* Deliver the outcome this node's FSM computed for @op's entry. */
void submit_op_deliver_applied(struct submit_op *op, const struct fsm_result *r);

/* Free @op if it is delivered and its backend is done with it. */
void submit_op_release(struct submit_op *op);

/* The backend is done with @op: free it once delivered. */
void submit_op_backend_done(struct submit_op *op);

/* Nothing will answer for @op but this 503: deliver it and let @op go. */
void submit_op_finish_unavailable(struct submit_op *op, const char *message);

#define SUBMIT_LOST_LEADERSHIP                                                                     \
    "leadership was lost; the command may have been applied: retry with the same "                 \
    "Idempotency-Key"

#endif
