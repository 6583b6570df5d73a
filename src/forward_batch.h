/* A follower's forwarding: entries submitted in one loop iteration go to the
 * leader in one POST /internal/apply (frames back to back, at most
 * SUBMIT_BATCH_MAX or FORWARD_BATCH_BYTES). The leader appends them with its
 * own iteration's entries and answers with the index of the first as soon as
 * raft has taken them; it does not wait for the commit. Each entry's outcome
 * is then taken from this node's own FSM as it applies the entry (every node
 * computes the same outcome from the same entry), found by the entry's
 * fingerprint. So the answer comes once this node has applied the command
 * (read-your-writes here), without a second hop for the result. Part of the
 * submission module (submit.h). */
#ifndef VARASTO_FORWARD_BATCH_H
#define VARASTO_FORWARD_BATCH_H

#include <raft.h>
#include <stdint.h>

#include "queue.h"

#define FORWARD_BATCH_BYTES (512 * 1024)
/* The most one forward may carry: what the leader reads of a body
 * (http.h HTTP_MAX_ENTITY; api_internal.c checks they agree). */
#define FORWARD_BODY_MAX (1024 * 1024 + 4096)

struct forward;
struct forward_batch;
struct fsm;
struct fsm_result;
struct submit_op;

struct forward_batcher {
    struct forward *forward;    /* borrowed */
    const struct fsm *fsm;      /* borrowed: the applied index */
    unsigned timeout_ms;        /* of one forward request */
    struct forward_batch *open; /* this iteration's entries */
    struct queue *buckets;      /* forwarded entries by fingerprint (lazy) */
    struct queue waits;         /* answered: waiting to apply their index */
};

void forward_batch_init(struct forward_batcher *fb, struct forward *forward, const struct fsm *fsm,
                        unsigned timeout_ms);
void forward_batch_close(struct forward_batcher *fb);

/* Forward @op's entry @buf (taken) to the leader at @http_addr. */
void forward_batch_add(struct forward_batcher *fb, const char *http_addr, struct submit_op *op,
                       struct raft_buffer buf);

/* Send this iteration's batch. */
void forward_batch_flush(struct forward_batcher *fb);

/* The FSM applied @r: deliver the forwarded entry it is, and settle those
 * whose index it passed without being them. */
void forward_batch_applied(struct forward_batcher *fb, const struct fsm_result *r);

/* This node applied everything up to @index (a snapshot restore). */
void forward_batch_applied_index(struct forward_batcher *fb, uint64_t index);

/* Stopping: deliver @message to every forwarded entry still waiting. */
void forward_batch_abort(struct forward_batcher *fb, const char *message);

#endif
