#include "forward_batch.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "forward.h"
#include "fsm.h"
#include "leader_batch.h"
#include "log.h"
#include "submit_op.h"
#include "util.h"

#define INTERNAL_APPLY_PATH "/internal/apply"
#define FORWARD_BUCKETS 1024

#define OUTCOME_UNKNOWN                                                                            \
    "the leader changed before the command's outcome was known; it may have been "                 \
    "applied: retry with the same Idempotency-Key"

struct forward_batch {
    struct forward_batcher *fb;
    char addr[CONFIG_ADDR_MAX];
    struct buf body;
    struct buf ops; /* struct submit_op pointers, back to back */
};

void forward_batch_init(struct forward_batcher *fb, struct forward *forward, const struct fsm *fsm,
                        unsigned timeout_ms)
{
    memset(fb, 0, sizeof *fb);
    fb->forward = forward;
    fb->fsm = fsm;
    fb->timeout_ms = timeout_ms;
    queue_init(&fb->waits);
}

void forward_batch_close(struct forward_batcher *fb)
{
    free(fb->buckets);
    fb->buckets = NULL;
}

/* Wait for the entry with @op's fingerprint to be applied here. Appended at
 * the bucket's tail: byte-identical entries match in submission order. */
static int track(struct forward_batcher *fb, struct submit_op *op, const struct raft_buffer *buf)
{
    unsigned i;
    if (fb->buckets == NULL) {
        fb->buckets = malloc(FORWARD_BUCKETS * sizeof *fb->buckets);
        if (fb->buckets == NULL) {
            return -1;
        }
        for (i = 0; i < FORWARD_BUCKETS; i++) {
            queue_init(&fb->buckets[i]);
        }
    }
    op->hash = util_hash64(buf->base, buf->len);
    queue_insert_tail(&fb->buckets[op->hash & (FORWARD_BUCKETS - 1)], &op->hash_link);
    return 0;
}

static void settle_waits(struct forward_batcher *fb, uint64_t index)
{
    struct queue *q = fb->waits.next;
    while (q != &fb->waits) {
        struct submit_op *op = QUEUE_DATA(q, struct submit_op, link);
        q = q->next;
        if (op->wait_index <= index) {
            /* applied here, and the entry at its index was not this one */
            submit_op_deliver_unavailable(op, OUTCOME_UNKNOWN);
            submit_op_release(op);
        }
    }
}

void forward_batch_applied(struct forward_batcher *fb, const struct fsm_result *r)
{
    if (fb->buckets != NULL && r->status != 0) {
        struct queue *head = &fb->buckets[r->entry_hash & (FORWARD_BUCKETS - 1)];
        struct queue *q;
        for (q = head->next; q != head; q = q->next) {
            struct submit_op *op = QUEUE_DATA(q, struct submit_op, hash_link);
            if (op->hash == r->entry_hash) {
                submit_op_deliver_applied(op, r); /* unlinks it */
                submit_op_release(op);
                break;
            }
        }
    }
    if (!queue_empty(&fb->waits)) {
        settle_waits(fb, fb->fsm->applied_index);
    }
}

void forward_batch_applied_index(struct forward_batcher *fb, uint64_t index)
{
    settle_waits(fb, index);
}

static void batch_free(struct forward_batch *b)
{
    buf_free(&b->body);
    buf_free(&b->ops);
    free(b);
}

/* The request that carried @b is over: the batch lets go of its ops. With
 * @refused, the leader refused the batch (nothing of it was appended); with
 * @unknown, the outcome of the undelivered ones is not known. */
static void batch_finish(struct forward_batch *b, const struct forward_reply *refused,
                         const char *unknown)
{
    struct submit_op **ops = (void *)b->ops.data;
    size_t i, n = b->ops.len / sizeof *ops;
    for (i = 0; i < n; i++) {
        struct submit_op *op = ops[i];
        if (!op->delivered && refused != NULL) {
            struct submit_result r;
            submit_result_of_reply(&r, refused);
            submit_op_deliver(op, &r);
        } else if (!op->delivered && unknown != NULL) {
            submit_op_deliver_unavailable(op, unknown);
        }
        submit_op_backend_done(op); /* an undelivered op waits to be applied */
    }
    batch_free(b);
}

static void batch_done(void *data, const struct forward_reply *reply)
{
    struct forward_batch *b = data;
    struct forward_batcher *fb = b->fb;
    struct submit_op **ops = (void *)b->ops.data;
    size_t i, n = b->ops.len / sizeof *ops;
    cJSON *answer, *first;

    if (!reply->ok) {
        log_warn("forward to leader failed: %s", reply->error);
        batch_finish(b, NULL,
                     "the leader did not answer; the command may have been applied: "
                     "retry with the same Idempotency-Key");
        return;
    }
    if (reply->status != 200) {
        batch_finish(b, reply, NULL);
        return;
    }
    answer = cJSON_ParseWithLength(reply->body, reply->len);
    first = cJSON_GetObjectItem(answer, "Index");
    if (!cJSON_IsNumber(first) || first->valuedouble < 1) {
        cJSON_Delete(answer);
        batch_finish(b, NULL,
                     "malformed answer from the leader; the command may have been "
                     "applied: retry with the same Idempotency-Key");
        return;
    }
    /* The leader put the commands in one entry, at that index unless
     * leadership changes; once this node has applied the entry there and
     * found them not in it, they are gone. */
    for (i = 0; i < n; i++) {
        struct submit_op *op = ops[i];
        if (op->delivered) {
            continue;
        }
        op->wait_index = (uint64_t)first->valuedouble;
        if (fb->fsm->applied_index >= op->wait_index) {
            submit_op_deliver_unavailable(op, OUTCOME_UNKNOWN);
        } else {
            queue_insert_tail(&fb->waits, &op->link);
        }
    }
    cJSON_Delete(answer);
    batch_finish(b, NULL, NULL);
}

void forward_batch_flush(struct forward_batcher *fb)
{
    struct forward_batch *b = fb->open;

    if (b == NULL) {
        return;
    }
    fb->open = NULL;
    if (forward_post(fb->forward, b->addr, INTERNAL_APPLY_PATH, b->body.data, b->body.len,
                     fb->timeout_ms, batch_done, b) != 0) {
        batch_finish(b, NULL, "cannot reach the leader; retry");
    }
}

static void add_failed(struct submit_op *op, struct raft_buffer buf)
{
    raft_free(buf.base);
    submit_op_finish_unavailable(op, "out of memory; retry");
}

void forward_batch_add(struct forward_batcher *fb, const char *http_addr, struct submit_op *op,
                       struct raft_buffer buf)
{
    struct forward_batch *b = fb->open;
    size_t body_len, ops_len;

    /* another leader, or a body that would pass what the leader reads */
    if (b != NULL &&
        (strcmp(b->addr, http_addr) != 0 || b->body.len + buf.len > FORWARD_BODY_MAX)) {
        forward_batch_flush(fb);
        b = NULL;
    }
    if (b == NULL) {
        b = calloc(1, sizeof *b);
        if (b == NULL) {
            add_failed(op, buf);
            return;
        }
        b->fb = fb;
        util_copy(b->addr, sizeof b->addr, http_addr);
        buf_init(&b->body);
        buf_init(&b->ops);
        fb->open = b;
    }
    body_len = b->body.len;
    ops_len = b->ops.len;
    if (track(fb, op, &buf) != 0 || buf_append(&b->body, buf.base, buf.len) != 0 ||
        buf_append(&b->ops, &op, sizeof op) != 0) {
        queue_remove(&op->hash_link);
        b->body.len = body_len;
        b->ops.len = ops_len;
        add_failed(op, buf);
        return;
    }
    raft_free(buf.base);
    if (b->ops.len / sizeof op >= SUBMIT_BATCH_MAX || b->body.len >= FORWARD_BATCH_BYTES) {
        forward_batch_flush(fb);
    }
}

void forward_batch_abort(struct forward_batcher *fb, const char *message)
{
    unsigned i;
    while (!queue_empty(&fb->waits)) {
        struct submit_op *op = QUEUE_DATA(fb->waits.next, struct submit_op, link);
        submit_op_deliver_unavailable(op, message); /* unlinks it */
        submit_op_release(op);
    }
    for (i = 0; fb->buckets != NULL && i < FORWARD_BUCKETS; i++) {
        while (!queue_empty(&fb->buckets[i])) {
            /* still with its forward request, which lets it go */
            struct submit_op *op = QUEUE_DATA(fb->buckets[i].next, struct submit_op, hash_link);
            submit_op_deliver_unavailable(op, message);
        }
    }
}
