/* Submission: from "a command for the log" to "its outcome, applied on this
 * node". An entry is appended here when this node leads, otherwise forwarded
 * to the leader, and answered once this node has applied it (read-your-writes
 * on the accepting node). A membership command (which is not a log entry) is
 * run by the leader: here, or relayed to the leader's HTTP API. Both wait
 * while no leader (or its address) is known, and are bounded by the command
 * timeout: the outcome is then a 503 saying whether the command may still be
 * applied.
 *
 * Outcomes are reported by callback; this module writes no HTTP. */
#ifndef VARASTO_SUBMIT_H
#define VARASTO_SUBMIT_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "errors.h"
#include "forward_batch.h"
#include "leader_batch.h"
#include "queue.h"

struct cluster;
struct config;
struct forward;
struct fsm;
struct fsm_result;
struct route;
struct ProtobufCMessage;

/* The outcome of one submission, valid during the callback. */
struct submit_result {
    int status;       /* HTTP status */
    const char *body; /* JSON */
    size_t len;
    int replayed;   /* Idempotency-Key replay */
    uint64_t index; /* raft index of the entry, 0 if unknown */
    int retry;      /* 503: set Retry-After */
};

/* Called once per submission, on the loop. */
typedef void (*submit_cb)(void *data, const struct submit_result *r);

/* Call @cb with the error outcome @code and @message (its status and body;
 * Retry-After for ERR_UNAVAILABLE): how every error outcome is made. */
void submit_answer_error(submit_cb cb, void *data, enum err_code code, const char *message);

/* Runs a relayed command on the leader (the membership module): calls @cb
 * once, possibly before returning. @body (JSON, @len bytes) is borrowed. */
typedef void (*submit_exec_fn)(void *exec_data, const char *command, const char *body, size_t len,
                               submit_cb cb, void *cb_data);

struct submit {
    uv_loop_t *loop;
    const struct config *config; /* borrowed: node id, command timeout */
    struct cluster *cluster;     /* borrowed */
    struct fsm *fsm;             /* borrowed: the applied index */
    struct route *route;         /* borrowed: where the leader is */
    struct forward *forward;     /* borrowed: relays */
    submit_exec_fn exec;         /* runs relayed commands on the leader */
    void *exec_data;
    struct queue parked;             /* ops waiting for a leader (or its address) */
    uv_timer_t retry;                /* retries parked ops while there are any */
    struct queue relaying;           /* relayed ops run or forwarded, not answered */
    int stopping;                    /* submit_abort_all was called: refuse new ops */
    struct leader_batcher leader;    /* entries appended here */
    struct forward_batcher follower; /* entries forwarded to the leader */
};

/* Bind @s to the node's modules (all borrowed). */
void submit_init(struct submit *s, uv_loop_t *loop, const struct config *config,
                 struct cluster *cluster, struct fsm *fsm, struct route *route,
                 struct forward *forward);

/* Close @s's timer and release what it holds; after submit_abort_all. */
void submit_close(struct submit *s);

/* The function that runs relayed commands when this node leads. */
void submit_set_exec(struct submit *s, submit_exec_fn exec, void *exec_data);

/* Submit the framed entry @buf (raft_malloc'ed; always taken). @cb fires
 * exactly once, possibly before this returns. */
void submit_entry(struct submit *s, struct raft_buffer buf, submit_cb cb, void *data);

/* Frame @msg as the entry of @command (accepted by this node, now) and
 * submit it. Returns 0, or -1 when out of memory (then no @cb). */
int submit_message(struct submit *s, const char *command, const struct ProtobufCMessage *msg,
                   submit_cb cb, void *data);

/* Have the leader run @command with the JSON @body (copied): the exec
 * function here, or POST /command/@command to the leader. @cb fires exactly
 * once, possibly before this returns. */
void submit_relay(struct submit *s, const char *command, const char *body, size_t len, submit_cb cb,
                  void *data);

/* Leader: add a follower's @n checked entry frames (back to back in @frames,
 * at most SUBMIT_BATCH_MAX; copied) to this iteration's batch; @cb reports
 * their first index once raft has taken the batch. Returns 0, or -1 when out
 * of memory (then nothing was added and no @cb). */
int submit_append_forwarded(struct submit *s, const uint8_t *frames, size_t len, unsigned n,
                            leader_batch_answer_fn cb, void *data);

/* Append (leader) or forward the entries gathered in this loop iteration.
 * Once per iteration. */
void submit_flush(struct submit *s);

/* The FSM applied the entry @r->index: deliver the submissions it settles. */
void submit_applied(struct submit *s, const struct fsm_result *r);

/* The read model was replaced by a snapshot up to @index. */
void submit_restored(struct submit *s, uint64_t index);

/* Try again to send what waits for a leader (also done after each apply
 * and every SUBMIT_RETRY_MS while anything waits). */
void submit_retry_parked(struct submit *s);

/* Fail every waiting submission, and refuse new ones from now on (the node
 * is stopping). */
void submit_abort_all(struct submit *s);

#endif
