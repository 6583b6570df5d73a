/* The leader's appends: commands accepted in one loop iteration (this
 * node's own and followers' forwarded ones) go to raft together at the
 * iteration's end, as one log entry that carries them all (frames back to
 * back, entry.h). Each command's outcome is taken from the FSM as it is
 * applied (leader_batch_applied, by entry index and place in the entry);
 * raft's callback only reports a batch that failed. Part of the submission
 * module (submit.h). */
#ifndef VARASTO_LEADER_BATCH_H
#define VARASTO_LEADER_BATCH_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

/* Most commands one log entry carries, and so one forward request. */
#define SUBMIT_BATCH_MAX 256
/* An entry is closed before it grows past this many bytes (a single larger
 * command still gets an entry of its own). */
#define LEADER_BATCH_BYTES (4u << 20)

struct cluster;
struct fsm_result;
struct leader_batch;
struct submit_op;

/* A follower's commands were taken by raft (@error NULL; @index is the
 * entry's that carries them), or refused with @error (nothing of them was
 * appended). */
typedef void (*leader_batch_answer_fn)(void *data, const char *error, uint64_t index);

struct leader_batcher {
    struct cluster *cluster;       /* borrowed */
    struct leader_batch *open;     /* this iteration's entries */
    struct leader_batch *applying; /* appended, waiting for outcomes, in order */
    struct leader_batch *applying_tail;
};

void leader_batch_init(struct leader_batcher *lb, struct cluster *cluster);

/* Add @op's entry @buf (taken). On out of memory @op gets a 503. */
void leader_batch_add(struct leader_batcher *lb, struct submit_op *op, struct raft_buffer buf);

/* Add @n frames from @frames (copied) with no local submission; @cb answers
 * for them at the flush. Returns 0 or -1 (out of memory; nothing added). */
int leader_batch_add_frames(struct leader_batcher *lb, const uint8_t *frames, size_t len,
                            unsigned n, leader_batch_answer_fn cb, void *data);

/* Hand this iteration's batch to raft. */
void leader_batch_flush(struct leader_batcher *lb);

/* The FSM applied the command at @r->index, @r->pos: deliver its outcome if
 * this node appended it, and fail commands that leadership changes
 * skipped. */
void leader_batch_applied(struct leader_batcher *lb, const struct fsm_result *r);

/* Fail what waits for an outcome if this node no longer leads. */
void leader_batch_check_leadership(struct leader_batcher *lb);

/* Stopping: refuse the open batch with @not_sent and fail the appended ones
 * with @unknown (they may still commit). */
void leader_batch_abort(struct leader_batcher *lb, const char *not_sent, const char *unknown);

#endif
