/* The write path from "a framed log entry" to "its outcome, applied on this
 * node": append it to raft here when this node leads, otherwise forward it to
 * the leader and wait until this node has applied it too. Bounded in time:
 * the outcome is a 503 when no leader commits it within the command timeout
 * (saying the command may still be applied). */
#ifndef VARASTO_SUBMIT_H
#define VARASTO_SUBMIT_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

struct node;

struct submit_result {
    int status;         /* HTTP status */
    const char *body;   /* JSON */
    size_t len;
    int replayed;       /* Idempotency-Key replay */
    uint64_t index;     /* raft index of the entry, 0 if unknown */
    int retry;          /* 503: set Retry-After */
};

/* Called once per submission, on the loop. @r is valid during the call. */
typedef void (*submit_cb)(void *data, const struct submit_result *r);

/* Submit the framed entry @buf (raft_malloc'ed; always taken). @cb fires
 * exactly once, possibly before this returns. */
void submit_entry(struct node *node, struct raft_buffer buf, submit_cb cb, void *data);

/* Frame @msg as the entry of @command (accepted by this node, now) and
 * submit it. Returns 0, or -1 when out of memory (then no @cb). */
struct ProtobufCMessage;
int submit_message(struct node *node, const char *command, const struct ProtobufCMessage *msg,
                   submit_cb cb, void *data);

/* Append (leader) or forward the entries gathered in this loop iteration.
 * The node calls it once per iteration (and submit_entry when a batch is
 * full). */
void submit_flush(struct node *node);

/* Most entries one raft_apply takes, and so one forward request carries. */
#define SUBMIT_BATCH_MAX 256

/* Leader: copy a follower's @n (at most SUBMIT_BATCH_MAX) checked entry
 * frames, back to back in @frames, into this iteration's batch, and answer
 * @req with the index of the first once raft has taken the batch
 * ({"Index":i,"Count":n}), or with a 503 if it refuses it. Returns 0, or -1
 * when out of memory (then nothing was added). */
struct st_h2o_req_t;
int submit_append_forwarded(struct node *node, struct st_h2o_req_t *req, const uint8_t *frames,
                            size_t len, unsigned n);

/* The FSM applied the entry at r->index: if this node appended it as
 * leader, answer its submission with @r. */
struct fsm_result;
void submit_result_applied(struct node *node, const struct fsm_result *r);

/* The node applied entries up to @index: finish submissions waiting for it. */
void submit_applied(struct node *node, uint64_t index);

/* Try again to send entries parked while no leader (or its address) was
 * known. The node calls it on a timer and after each apply. */
void submit_retry_parked(struct node *node);

/* Fail every waiting submission (the node is stopping). */
void submit_abort_all(struct node *node);

#endif
