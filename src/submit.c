#include "submit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "config.h"
#include "entry.h"
#include "errors.h"
#include "forward.h"
#include "fsm.h"
#include "route.h"
#include "submit_op.h"
#include "util.h"

/* A command in the log (here or at the leader) whose outcome this node
 * will not see: it may still be committed and applied. */
#define STOPPING_UNKNOWN                                                                           \
    "the node is stopping; the command may have been applied: retry with the same "                \
    "Idempotency-Key"
/* A command that never reached the log. */
#define STOPPING_NOT_SENT "the node is stopping; retry on another node"

/* How often parked ops look for a leader again (besides after each apply:
 * an election or a leader's first announce may apply nothing here). */
#define SUBMIT_RETRY_MS 100

static void retry_tick(uv_timer_t *t)
{
    submit_retry_parked(t->data);
}

void submit_init(struct submit *s, uv_loop_t *loop, const struct config *config,
                 struct cluster *cluster, struct fsm *fsm, struct route *route,
                 struct forward *forward)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->config = config;
    s->cluster = cluster;
    s->fsm = fsm;
    s->route = route;
    s->forward = forward;
    queue_init(&s->parked);
    queue_init(&s->relaying);
    uv_timer_init(loop, &s->retry);
    s->retry.data = s;
    leader_batch_init(&s->leader, cluster);
    forward_batch_init(&s->follower, forward, fsm, config->command_timeout_ms);
}

void submit_close(struct submit *s)
{
    uv_close((uv_handle_t *)&s->retry, NULL);
    forward_batch_close(&s->follower);
}

void submit_set_exec(struct submit *s, submit_exec_fn exec, void *exec_data)
{
    s->exec = exec;
    s->exec_data = exec_data;
}

/* ---- one op's life ---- */

static void op_timer_closed(uv_handle_t *h)
{
    struct submit_op *op = h->data;
    free(op->body);
    free(op);
}

void submit_op_release(struct submit_op *op)
{
    if (op->delivered && op->backend_done && !op->closing) {
        op->closing = 1;
        uv_timer_stop(&op->timer);
        uv_close((uv_handle_t *)&op->timer, op_timer_closed);
    }
}

void submit_op_backend_done(struct submit_op *op)
{
    op->backend_done = 1;
    submit_op_release(op);
}

void submit_op_deliver(struct submit_op *op, const struct submit_result *r)
{
    if (op->delivered) {
        return;
    }
    op->delivered = 1;
    queue_remove(&op->link);
    queue_remove(&op->hash_link);
    op->wait_index = 0;
    uv_timer_stop(&op->timer);
    op->cb(op->data, r);
}

void submit_answer_error(submit_cb cb, void *data, enum err_code code, const char *message)
{
    struct submit_result r;
    struct buf b;
    buf_init(&b);
    memset(&r, 0, sizeof r);
    r.status = err_http_status(code);
    r.retry = code == ERR_UNAVAILABLE;
    if (err_write_body(&b, code, message, NULL) == 0) {
        r.body = b.data;
        r.len = b.len;
    } else {
        r.body = "{}";
        r.len = 2;
    }
    cb(data, &r);
    buf_free(&b);
}

void submit_result_of_reply(struct submit_result *r, const struct forward_reply *reply)
{
    memset(r, 0, sizeof *r);
    r->status = (int)reply->status;
    r->body = reply->len ? reply->body : "{}";
    r->len = reply->len ? reply->len : 2;
    r->retry = reply->status == 503;
}

static void deliver_to_op(void *op, const struct submit_result *r)
{
    submit_op_deliver(op, r);
}

void submit_op_deliver_unavailable(struct submit_op *op, const char *message)
{
    submit_answer_error(deliver_to_op, op, ERR_UNAVAILABLE, message);
}

void submit_op_finish_unavailable(struct submit_op *op, const char *message)
{
    op->backend_done = 1;
    submit_op_deliver_unavailable(op, message);
    submit_op_release(op);
}

void submit_op_deliver_applied(struct submit_op *op, const struct fsm_result *r)
{
    struct submit_result out;
    memset(&out, 0, sizeof out);
    out.status = r->status;
    out.body = r->body.data;
    out.len = r->body.len;
    out.replayed = r->replayed;
    out.index = r->index;
    submit_op_deliver(op, &out);
}

/* Answer a parked op (nothing of it was sent) and let it go. */
static void fail_parked(struct submit_op *op, const char *message)
{
    queue_remove(&op->link);
    raft_free(op->entry.base);
    op->entry.base = NULL;
    submit_op_finish_unavailable(op, message);
}

static void op_timeout(uv_timer_t *t)
{
    struct submit_op *op = t->data;
    if (op->kind == SUBMIT_ENTRY && op->entry.base == NULL) {
        submit_op_deliver_unavailable(
            op, op->wait_index != 0 ? "the command was committed but this node has not applied it "
                                      "yet; retry with the same Idempotency-Key"
                                    : "the command was not committed in time; it may still be "
                                      "applied: retry with the same Idempotency-Key");
        submit_op_release(op);
        return;
    }
    /* still parked: nothing was sent, so nothing can have been applied */
    fail_parked(op, "no leader was reachable in time; retry");
}

static struct submit_op *op_new(struct submit *s, enum submit_kind kind, submit_cb cb, void *data)
{
    struct submit_op *op = s->stopping ? NULL : calloc(1, sizeof *op);
    if (op == NULL) {
        return NULL;
    }
    op->s = s;
    op->kind = kind;
    op->cb = cb;
    op->data = data;
    queue_init(&op->link);
    queue_init(&op->hash_link);
    uv_timer_init(s->loop, &op->timer);
    op->timer.data = op;
    uv_timer_start(&op->timer, op_timeout, s->config->command_timeout_ms, 0);
    return op;
}

/* No op could be made: the node is stopping, or out of memory (then the
 * answer is a constant: nothing more is allocated for it). */
static void answer_refused(struct submit *s, submit_cb cb, void *data)
{
    static const char oom[] = "{\"Error\":\"out of memory\",\"Code\":\"unavailable\"}";
    struct submit_result r;
    if (s->stopping) {
        submit_answer_error(cb, data, ERR_UNAVAILABLE, STOPPING_NOT_SENT);
        return;
    }
    memset(&r, 0, sizeof r);
    r.status = 503;
    r.body = oom;
    r.len = sizeof oom - 1;
    r.retry = 1;
    cb(data, &r);
}

/* ---- relayed commands ---- */

static void relay_done(void *data, const struct submit_result *r)
{
    struct submit_op *op = data;
    submit_op_deliver(op, r);
    submit_op_backend_done(op);
}

static void relay_forwarded(void *data, const struct forward_reply *reply)
{
    struct submit_op *op = data;
    struct submit_result r;
    if (!reply->ok) {
        submit_op_deliver_unavailable(op, "the leader did not answer; retry");
        submit_op_backend_done(op);
        return;
    }
    submit_result_of_reply(&r, reply);
    relay_done(op, &r);
}

/* ---- routing: here, to the leader, or wait ---- */

/* Send @op to raft here or to the leader. Returns 0 when sent, 1 when there
 * is nowhere to send it yet (no leader, or its address is not known): the
 * caller parks it until the next try or the timeout. */
static int try_send(struct submit_op *op)
{
    struct submit *s = op->s;
    const char *leader_http;
    enum route_target to = route_leader(s->route, &leader_http);
    struct raft_buffer buf = op->entry;
    char path[SUBMIT_COMMAND_MAX + 16];

    if (to == ROUTE_NONE || (op->kind == SUBMIT_RELAY && to == ROUTE_HERE && s->exec == NULL)) {
        return 1;
    }
    if (op->kind == SUBMIT_ENTRY) {
        op->entry.base = NULL;
        if (to == ROUTE_HERE) {
            leader_batch_add(&s->leader, op, buf);
        } else {
            forward_batch_add(&s->follower, leader_http, op, buf);
        }
        return 0;
    }
    /* A relay is bounded by its backend from here on: raft's membership
     * changes by raft, the forward by its own timeout. */
    uv_timer_stop(&op->timer);
    queue_insert_tail(&s->relaying, &op->link);
    if (to == ROUTE_HERE) {
        s->exec(s->exec_data, op->command, op->body, op->body_len, relay_done, op);
        return 0;
    }
    snprintf(path, sizeof path, "/command/%s", op->command);
    if (forward_post(s->forward, leader_http, path, op->body, op->body_len,
                     s->config->command_timeout_ms, relay_forwarded, op) != 0) {
        submit_op_finish_unavailable(op, "cannot reach the leader; retry");
    }
    return 0;
}

static void send_or_park(struct submit_op *op)
{
    if (try_send(op) == 1) {
        /* an election is under way, or the leader's address is on its way */
        queue_insert_tail(&op->s->parked, &op->link);
        if (!uv_is_active((uv_handle_t *)&op->s->retry)) {
            uv_timer_start(&op->s->retry, retry_tick, SUBMIT_RETRY_MS, SUBMIT_RETRY_MS);
        }
    }
}

/* The read model cannot be written: this node cannot answer a command
 * (it answers once it has applied it), so it says so at once. */
static void answer_read_model_failed(struct submit *s, submit_cb cb, void *data)
{
    char message[sizeof s->fsm->errmsg + 96];
    snprintf(message, sizeof message,
             "this node cannot write its read model now (%s); retry on another node",
             s->fsm->errmsg);
    submit_answer_error(cb, data, ERR_UNAVAILABLE, message);
}

void submit_entry(struct submit *s, struct raft_buffer buf, submit_cb cb, void *data)
{
    struct submit_op *op;

    if (fsm_failed(s->fsm)) {
        raft_free(buf.base);
        answer_read_model_failed(s, cb, data);
        return;
    }
    op = op_new(s, SUBMIT_ENTRY, cb, data);
    if (op == NULL) {
        raft_free(buf.base);
        answer_refused(s, cb, data);
        return;
    }
    op->entry = buf;
    send_or_park(op);
}

void submit_relay(struct submit *s, const char *command, const char *body, size_t len, submit_cb cb,
                  void *data)
{
    struct submit_op *op = op_new(s, SUBMIT_RELAY, cb, data);
    if (op != NULL) {
        op->body = malloc(len + 1);
    }
    if (op == NULL || op->body == NULL || strlen(command) >= sizeof op->command) {
        if (op != NULL) {
            op->backend_done = 1;
            op->delivered = 1;
            submit_op_release(op);
        }
        answer_refused(s, cb, data);
        return;
    }
    util_copy(op->command, sizeof op->command, command);
    memcpy(op->body, body, len);
    op->body[len] = '\0';
    op->body_len = len;
    send_or_park(op);
}

int submit_message(struct submit *s, const char *command, const ProtobufCMessage *msg, submit_cb cb,
                   void *data)
{
    Varasto__Entry e = VARASTO__ENTRY__INIT;
    struct raft_buffer buf;
    uint8_t *payload = malloc(protobuf_c_message_get_packed_size(msg) + 1);
    int rv;

    if (payload == NULL) {
        return -1;
    }
    e.command = (char *)command;
    e.payload.len = protobuf_c_message_pack(msg, payload);
    e.payload.data = payload;
    e.nodeid = s->config->id;
    e.timems = util_now_ms();
    rv = entry_encode(&e, &buf);
    free(payload);
    if (rv != 0) {
        return -1;
    }
    submit_entry(s, buf, cb, data);
    return 0;
}

int submit_append_forwarded(struct submit *s, const uint8_t *frames, size_t len, unsigned n,
                            leader_batch_answer_fn cb, void *data)
{
    return leader_batch_add_frames(&s->leader, frames, len, n, cb, data);
}

void submit_flush(struct submit *s)
{
    leader_batch_flush(&s->leader);
    leader_batch_check_leadership(&s->leader);
    forward_batch_flush(&s->follower);
}

void submit_retry_parked(struct submit *s)
{
    struct queue parked;
    /* Take the list: an op that still has nowhere to go parks again. */
    if (queue_empty(&s->parked)) {
        uv_timer_stop(&s->retry);
        return;
    }
    parked = s->parked;
    parked.next->prev = &parked;
    parked.prev->next = &parked;
    queue_init(&s->parked);
    while (!queue_empty(&parked)) {
        struct submit_op *op = QUEUE_DATA(parked.next, struct submit_op, link);
        queue_remove(&op->link);
        send_or_park(op);
    }
    if (queue_empty(&s->parked)) {
        uv_timer_stop(&s->retry);
    }
}

void submit_applied(struct submit *s, const struct fsm_result *r)
{
    forward_batch_applied(&s->follower, r);
    leader_batch_applied(&s->leader, r);
    submit_retry_parked(s);
}

void submit_restored(struct submit *s, uint64_t index)
{
    forward_batch_applied_index(&s->follower, index);
}

void submit_abort_all(struct submit *s)
{
    s->stopping = 1;
    leader_batch_abort(&s->leader, STOPPING_NOT_SENT, STOPPING_UNKNOWN);
    while (!queue_empty(&s->parked)) {
        fail_parked(QUEUE_DATA(s->parked.next, struct submit_op, link), STOPPING_NOT_SENT);
    }
    uv_timer_stop(&s->retry);
    while (!queue_empty(&s->relaying)) {
        /* its backend still answers, and lets it go */
        submit_op_deliver_unavailable(QUEUE_DATA(s->relaying.next, struct submit_op, link),
                                      STOPPING_UNKNOWN);
    }
    forward_batch_abort(&s->follower, STOPPING_UNKNOWN);
}
