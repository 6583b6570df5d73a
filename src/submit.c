#include "submit.h"

#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "codec.h"
#include <cjson/cJSON.h>
#include "forward.h"
#include "entry.h"
#include "log.h"
#include "util.h"
#include "node.h"

#define INTERNAL_APPLY_PATH "/internal/apply"

/* One submission. Freed once the outcome is delivered, raft (or curl) is
 * done with it, and its timer is closed. */
struct submit_op {
    struct node *node;
    submit_cb cb;
    void *data;
    uv_timer_t timer;
    int delivered;
    int backend_done;       /* raft callback or forward reply has fired */
    int closing;
    uint64_t wait_index;    /* forwarded: deliver once applied here */
    struct raft_buffer entry; /* parked: no leader (or its address) known yet */
    int local_only;
    struct submit_result result;
    struct buf body;        /* owns result.body while waiting */
    struct submit_op *prev, *next; /* node->submit_waits */
};

static void unpark(struct submit_op *op);
static void batch_add(struct node *node, const char *addr, struct submit_op *op,
                      struct raft_buffer buf);

static void op_timer_closed(uv_handle_t *h)
{
    struct submit_op *op = h->data;
    buf_free(&op->body);
    free(op);
}

static void op_release(struct submit_op *op)
{
    if (op->delivered && op->backend_done && !op->closing) {
        op->closing = 1;
        uv_timer_stop(&op->timer);
        uv_close((uv_handle_t *)&op->timer, op_timer_closed);
    }
}

/* Remove @op from the list at @head (submit_waits or submit_parked). */
static void list_remove(struct submit_op **head, struct submit_op *op)
{
    if (op->prev != NULL) {
        op->prev->next = op->next;
    } else if (*head == op) {
        *head = op->next;
    }
    if (op->next != NULL) {
        op->next->prev = op->prev;
    }
    op->prev = op->next = NULL;
}

static void list_push(struct submit_op **head, struct submit_op *op)
{
    op->prev = NULL;
    op->next = *head;
    if (*head != NULL) {
        (*head)->prev = op;
    }
    *head = op;
}

static void unlink_wait(struct submit_op *op)
{
    if (op->wait_index != 0) {
        list_remove(&op->node->submit_waits, op);
    }
}

static void deliver(struct submit_op *op, const struct submit_result *r)
{
    if (op->delivered) {
        return;
    }
    op->delivered = 1;
    unlink_wait(op);
    uv_timer_stop(&op->timer);
    op->cb(op->data, r);
}

static void deliver_unavailable(struct submit_op *op, const char *message)
{
    struct submit_result r;
    struct buf b;
    buf_init(&b);
    buf_append_str(&b, "{\"Error\":");
    codec_write_string(&b, message);
    buf_append_str(&b, ",\"Code\":\"unavailable\"}");
    memset(&r, 0, sizeof r);
    r.status = 503;
    r.body = b.data;
    r.len = b.len;
    r.retry = 1;
    deliver(op, &r);
    buf_free(&b);
}

/* Answer a parked op (its entry was never sent) and let it go. */
static void fail_parked(struct submit_op *op, const char *message)
{
    unpark(op);
    raft_free(op->entry.base);
    op->entry.base = NULL;
    op->backend_done = 1;
    deliver_unavailable(op, message);
    op_release(op);
}

static void op_timeout(uv_timer_t *t)
{
    struct submit_op *op = t->data;
    if (op->entry.base != NULL) {
        /* still parked: nothing was sent, so nothing can have been applied */
        fail_parked(op, "no leader was reachable in time; retry");
        return;
    }
    deliver_unavailable(op, op->wait_index != 0
                                ? "the command was committed but this node has not applied it "
                                  "yet; retry with the same Idempotency-Key"
                                : "the command was not committed in time; it may still be "
                                  "applied: retry with the same Idempotency-Key");
    op_release(op);
}

static void deliver_fsm_result(struct submit_op *op, const struct fsm_result *r)
{
    op->backend_done = 1;
    if (r->status == 0) {
        deliver_unavailable(op, "leadership was lost; the command may have been applied: "
                                "retry with the same Idempotency-Key");
    } else {
        struct submit_result out;
        memset(&out, 0, sizeof out);
        out.status = r->status;
        out.body = r->body.data;
        out.len = r->body.len;
        out.replayed = r->replayed;
        out.index = r->index;
        deliver(op, &out);
    }
    op_release(op);
}

/* ---- appending in batches (this node leads) ----
 * Entries accepted in one loop iteration go to raft in one raft_apply: one
 * disk write and one AppendEntries per follower for all of them, instead of
 * one each. Raft calls back once per raft_apply (after its first entry is
 * applied), so each entry's outcome is taken from the FSM as it is applied
 * (submit_result_applied); the callback only reports a batch that failed. */

#define RAFT_BATCH_MAX 256

struct raft_batch {
    struct raft_apply req;
    struct node *node;
    struct raft_batch *next; /* node->applying, in index order */
    raft_term term;          /* raft's term when appended */
    uint64_t first;          /* raft index of ops[0] */
    unsigned n, done;        /* ops[0..done) have their outcome */
    int raft_done;           /* raft's callback has fired (or never will) */
    int queued;              /* in node->applying */
    struct submit_op *ops[RAFT_BATCH_MAX];
    struct raft_buffer bufs[RAFT_BATCH_MAX];
};

static void raft_batch_release(struct raft_batch *b)
{
    if (b->raft_done && !b->queued) {
        free(b);
    }
}

static void raft_batch_dequeue(struct raft_batch *b)
{
    struct raft_batch **p = &b->node->applying;
    while (*p != NULL && *p != b) {
        p = &(*p)->next;
    }
    if (*p == b) {
        *p = b->next;
    }
    if (b->node->applying_tail == b) {
        struct raft_batch *t = b->node->applying;
        while (t != NULL && t->next != NULL) {
            t = t->next;
        }
        b->node->applying_tail = t;
    }
    b->next = NULL;
    b->queued = 0;
}

/* Answer ops[done..n) of @b with a 503 and let the batch go. */
static void raft_batch_fail(struct raft_batch *b, const char *message)
{
    while (b->done < b->n) {
        struct submit_op *op = b->ops[b->done++];
        op->backend_done = 1;
        deliver_unavailable(op, message);
        op_release(op);
    }
    if (b->queued) {
        raft_batch_dequeue(b);
    }
    raft_batch_release(b);
}

#define LOST_LEADERSHIP                                                                      \
    "leadership was lost; the command may have been applied: retry with the same "           \
    "Idempotency-Key"

static void raft_batch_cb(struct raft_apply *req, int status, void *result)
{
    struct raft_batch *b = req->data;
    (void)result; /* delivered by submit_result_applied */
    b->raft_done = 1;
    if (status != 0) {
        raft_batch_fail(b, LOST_LEADERSHIP);
        return;
    }
    raft_batch_release(b);
}

void submit_result_applied(struct node *node, const struct fsm_result *r)
{
    struct raft_batch *b = node->applying;

    if (b == NULL) {
        return;
    }
    if (!cluster_is_leader(&node->cluster) || node->cluster.raft.current_term != b->term) {
        /* the entry at this index may not be ours any more */
        submit_fail_applying(node);
        return;
    }
    while (b != NULL && r->index >= b->first + b->n) {
        raft_batch_fail(b, LOST_LEADERSHIP); /* skipped: cannot happen while leading */
        b = node->applying;
    }
    if (b == NULL || r->index < b->first + b->done) {
        return;
    }
    while (b->first + b->done < r->index) {
        struct submit_op *op = b->ops[b->done++];
        op->backend_done = 1;
        deliver_unavailable(op, LOST_LEADERSHIP);
        op_release(op);
    }
    deliver_fsm_result(b->ops[b->done++], r);
    if (b->done == b->n) {
        raft_batch_dequeue(b);
        raft_batch_release(b);
    }
}

void submit_fail_applying(struct node *node)
{
    while (node->applying != NULL) {
        raft_batch_fail(node->applying, LOST_LEADERSHIP);
    }
}

/* A batch raft never took: nothing of it can be applied. */
static void raft_batch_refuse(struct raft_batch *b, const char *message)
{
    unsigned i;
    for (i = 0; i < b->n; i++) {
        raft_free(b->bufs[i].base);
    }
    b->raft_done = 1;
    raft_batch_fail(b, message);
}

static void raft_batch_flush(struct node *node)
{
    struct raft_batch *b = node->raft_batch;

    if (b == NULL) {
        return;
    }
    node->raft_batch = NULL;
    b->req.data = b;
    b->term = node->cluster.raft.current_term;
    if (cluster_submit(&node->cluster, &b->req, b->bufs, b->n, raft_batch_cb) != 0) {
        raft_batch_refuse(b, "the log is not accepting commands now; retry");
        return;
    }
    b->first = b->req.index;
    b->queued = 1;
    if (node->applying_tail != NULL) {
        node->applying_tail->next = b;
    } else {
        node->applying = b;
    }
    node->applying_tail = b;
}

static void raft_batch_add(struct node *node, struct submit_op *op, struct raft_buffer buf)
{
    struct raft_batch *b = node->raft_batch;
    if (b == NULL) {
        b = calloc(1, sizeof *b);
        if (b == NULL) {
            raft_free(buf.base);
            op->backend_done = 1;
            deliver_unavailable(op, "out of memory; retry");
            op_release(op);
            return;
        }
        b->node = node;
        node->raft_batch = b;
    }
    b->ops[b->n] = op;
    b->bufs[b->n] = buf;
    b->n++;
    if (b->n == RAFT_BATCH_MAX) {
        raft_batch_flush(node);
    }
}

/* The leader's answer for one forwarded entry (or the failure of the
 * request that carried it). */
static void forwarded(struct submit_op *op, const struct forward_reply *reply)
{
    struct node *node = op->node;

    op->backend_done = 1;
    if (op->delivered) {
        op_release(op);
        return;
    }
    if (!reply->ok) {
        log_warn("forward to leader failed: %s", reply->error);
        deliver_unavailable(op, "the leader did not answer; the command may have been applied: "
                                "retry with the same Idempotency-Key");
        op_release(op);
        return;
    }
    memset(&op->result, 0, sizeof op->result);
    op->result.status = (int)reply->status;
    op->result.replayed = reply->replayed;
    op->result.index = reply->index;
    op->result.retry = reply->status == 503;
    buf_append(&op->body, reply->body, reply->len);
    op->result.body = op->body.data ? op->body.data : "";
    op->result.len = op->body.len;
    if (reply->index == 0 || node->fsm.applied_index >= reply->index) {
        deliver(op, &op->result);
    } else {
        /* Answer only once this node has applied it: read-your-writes. */
        op->wait_index = reply->index;
        list_push(&node->submit_waits, op);
    }
    op_release(op);
}

/* ---- forwarding in batches ----
 * Entries forwarded in one loop iteration go to the leader in one request
 * (frames back to back); it answers with one result per entry, in order.
 * One HTTP exchange per batch instead of per command. */

#define FORWARD_BATCH_MAX 256
#define FORWARD_BATCH_BYTES (512 * 1024)

struct fwd_batch {
    struct node *node;
    char addr[CONFIG_ADDR_MAX];
    struct buf body;
    struct submit_op **ops;
    unsigned n, cap;
};

static void batch_free(struct fwd_batch *b)
{
    buf_free(&b->body);
    free(b->ops);
    free(b);
}

static void batch_fail(struct fwd_batch *b, const char *error)
{
    struct forward_reply reply;
    unsigned i;
    memset(&reply, 0, sizeof reply);
    reply.error = error;
    for (i = 0; i < b->n; i++) {
        forwarded(b->ops[i], &reply);
    }
}

static void batch_done(void *data, const struct forward_reply *reply)
{
    struct fwd_batch *b = data;
    cJSON *arr = NULL;
    unsigned i;

    if (reply->ok && reply->status == 200) {
        arr = cJSON_ParseWithLength(reply->body, reply->len);
    }
    if (arr == NULL || !cJSON_IsArray(arr) || (unsigned)cJSON_GetArraySize(arr) != b->n) {
        if (reply->ok && reply->status != 200) {
            /* the leader refused the whole batch (e.g. it is no longer the
             * leader): every entry gets its answer */
            for (i = 0; i < b->n; i++) {
                forwarded(b->ops[i], reply);
            }
        } else {
            batch_fail(b, reply->ok ? "malformed batch answer" : reply->error);
        }
        cJSON_Delete(arr);
        batch_free(b);
        return;
    }
    for (i = 0; i < b->n; i++) {
        cJSON *item = cJSON_GetArrayItem(arr, (int)i);
        cJSON *body = cJSON_GetObjectItem(item, "Body");
        char *text = cJSON_PrintUnformatted(body);
        struct forward_reply one;
        memset(&one, 0, sizeof one);
        one.ok = 1;
        one.status = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(item, "Status"));
        one.index = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(item, "Index"));
        one.replayed = cJSON_IsTrue(cJSON_GetObjectItem(item, "Replayed"));
        one.body = text != NULL ? text : "{}";
        one.len = strlen(one.body);
        forwarded(b->ops[i], &one);
        free(text);
    }
    cJSON_Delete(arr);
    batch_free(b);
}

void submit_flush(struct node *node)
{
    struct fwd_batch *b;

    raft_batch_flush(node);
    if (node->applying != NULL && !cluster_is_leader(&node->cluster)) {
        submit_fail_applying(node);
    }
    b = node->fwd_batch;
    if (b == NULL) {
        return;
    }
    node->fwd_batch = NULL;
    if (forward_post(&node->forward, b->addr, INTERNAL_APPLY_PATH, b->body.data, b->body.len,
                     node->config.command_timeout_ms, batch_done, b) != 0) {
        batch_fail(b, "cannot reach the leader");
        batch_free(b);
    }
}

static void batch_add_failed(struct submit_op *op, struct raft_buffer buf)
{
    struct forward_reply reply;
    raft_free(buf.base);
    memset(&reply, 0, sizeof reply);
    reply.error = "out of memory";
    forwarded(op, &reply);
}

static void batch_add(struct node *node, const char *addr, struct submit_op *op,
                      struct raft_buffer buf)
{
    struct fwd_batch *b = node->fwd_batch;
    if (b != NULL && strcmp(b->addr, addr) != 0) {
        submit_flush(node);
        b = NULL;
    }
    if (b == NULL) {
        b = calloc(1, sizeof *b);
        if (b == NULL) {
            batch_add_failed(op, buf);
            return;
        }
        b->node = node;
        util_copy(b->addr, sizeof b->addr, addr);
        buf_init(&b->body);
        node->fwd_batch = b;
    }
    if (b->n == b->cap) {
        unsigned cap = b->cap ? b->cap * 2 : 16;
        struct submit_op **ops = realloc(b->ops, cap * sizeof *ops);
        if (ops == NULL) {
            batch_add_failed(op, buf);
            return;
        }
        b->ops = ops;
        b->cap = cap;
    }
    b->ops[b->n++] = op;
    buf_append(&b->body, buf.base, buf.len);
    raft_free(buf.base);
    if (b->n >= FORWARD_BATCH_MAX || b->body.len >= FORWARD_BATCH_BYTES) {
        submit_flush(node);
    }
}

static void park(struct submit_op *op)
{
    list_push(&op->node->submit_parked, op);
}

static void unpark(struct submit_op *op)
{
    list_remove(&op->node->submit_parked, op);
}

/* Send the op's entry to raft here or to the leader. Returns 0 when sent,
 * 1 when there is nowhere to send it yet (no leader, or its address is not
 * known): the caller parks it until the next try or the timeout. */
static int try_send(struct submit_op *op)
{
    struct node *node = op->node;
    struct raft_buffer buf = op->entry;

    if (cluster_is_leader(&node->cluster)) {
        op->entry.base = NULL;
        raft_batch_add(node, op, buf);
        return 0;
    }
    {
        uint64_t leader = cluster_leader_id(&node->cluster);
        char raft_addr[CONFIG_ADDR_MAX], http_addr[CONFIG_ADDR_MAX];
        if (op->local_only) {
            raft_free(buf.base);
            op->entry.base = NULL;
            op->backend_done = 1;
            deliver_unavailable(op, "this node is not the leader; retry");
            op_release(op);
            return 0;
        }
        if (leader == 0 || !store_node_addresses(&node->store, leader, raft_addr, http_addr,
                                                 sizeof http_addr)) {
            return 1;
        }
        op->entry.base = NULL;
        batch_add(node, http_addr, op, buf);
        return 0;
    }
}

void submit_entry(struct node *node, struct raft_buffer buf, int local_only, submit_cb cb,
                  void *data)
{
    struct submit_op *op = calloc(1, sizeof *op);

    if (op == NULL) {
        static const char oom[] = "{\"Error\":\"out of memory\",\"Code\":\"unavailable\"}";
        struct submit_result r;
        raft_free(buf.base);
        memset(&r, 0, sizeof r);
        r.status = 503;
        r.body = oom;
        r.len = sizeof oom - 1;
        r.retry = 1;
        cb(data, &r);
        return;
    }
    op->node = node;
    op->cb = cb;
    op->data = data;
    op->entry = buf;
    op->local_only = local_only;
    buf_init(&op->body);
    uv_timer_init(&node->loop, &op->timer);
    op->timer.data = op;
    uv_timer_start(&op->timer, op_timeout, node->config.command_timeout_ms, 0);
    if (try_send(op) == 1) {
        park(op); /* an election is under way, or the leader's address is on its way */
    }
}

void submit_retry_parked(struct node *node)
{
    struct submit_op *op = node->submit_parked;
    while (op != NULL) {
        struct submit_op *next = op->next;
        unpark(op);
        if (try_send(op) == 1) {
            park(op);
        }
        op = next;
    }
}

void submit_applied(struct node *node, uint64_t index)
{
    struct submit_op *op = node->submit_waits;
    while (op != NULL) {
        struct submit_op *next = op->next;
        if (op->wait_index <= index) {
            deliver(op, &op->result);
            op_release(op);
        }
        op = next;
    }
}

void submit_abort_all(struct node *node)
{
    if (node->raft_batch != NULL) {
        struct raft_batch *b = node->raft_batch;
        node->raft_batch = NULL;
        raft_batch_refuse(b, "the node is stopping; retry on another node");
    }
    submit_fail_applying(node);
    while (node->submit_parked != NULL) {
        fail_parked(node->submit_parked, "the node is stopping; retry on another node");
    }
    while (node->submit_waits != NULL) {
        struct submit_op *op = node->submit_waits;
        deliver_unavailable(op, "the node is stopping; retry on another node");
        op_release(op);
    }
}

int submit_message(struct node *node, const char *command, const ProtobufCMessage *msg,
                   submit_cb cb, void *data)
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
    e.nodeid = node->config.id;
    e.timems = util_now_ms();
    rv = entry_encode(&e, &buf);
    free(payload);
    if (rv != 0) {
        return -1;
    }
    submit_entry(node, buf, 0, cb, data);
    return 0;
}
