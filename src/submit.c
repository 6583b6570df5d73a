#include "submit.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "codec.h"
#include <cjson/cJSON.h>
#include "forward.h"
#include "http.h"
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
    struct raft_buffer entry; /* parked: no leader (or its address) known yet */
    /* forwarded: the entry's fingerprint, and its index once the leader
     * has answered (node->submit_waits) */
    uint64_t hash;
    int fwd_waiting;        /* in node->fwd_table */
    struct submit_op *hnext;
    uint64_t wait_index;
    struct submit_op *prev, *next; /* node->submit_waits or submit_parked */
};

static void unpark(struct submit_op *op);
static void batch_add(struct node *node, const char *addr, struct submit_op *op,
                      struct raft_buffer buf);
static void fwd_unlink(struct submit_op *op);
static void fwd_match(struct node *node, const struct fsm_result *r);

static void op_timer_closed(uv_handle_t *h)
{
    free(h->data);
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
        op->wait_index = 0;
    }
    fwd_unlink(op);
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

/* Nothing will answer for @op any more but this 503: let it go. */
static void finish_unavailable(struct submit_op *op, const char *message)
{
    op->backend_done = 1;
    deliver_unavailable(op, message);
    op_release(op);
}

/* Answer a parked op (its entry was never sent) and let it go. */
static void fail_parked(struct submit_op *op, const char *message)
{
    unpark(op);
    raft_free(op->entry.base);
    op->entry.base = NULL;
    finish_unavailable(op, message);
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

#define LOST_LEADERSHIP                                                                      \
    "leadership was lost; the command may have been applied: retry with the same "           \
    "Idempotency-Key"

/* Answer @op with the outcome this node's FSM computed for its entry
 * (r->status is not 0: the entry was applied here just now). */
static void deliver_fsm_result(struct submit_op *op, const struct fsm_result *r)
{
    struct submit_result out;
    memset(&out, 0, sizeof out);
    out.status = r->status;
    out.body = r->body.data;
    out.len = r->body.len;
    out.replayed = r->replayed;
    out.index = r->index;
    deliver(op, &out);
}

/* ---- appending in batches (this node leads) ----
 * Entries accepted in one loop iteration go to raft in one raft_apply: one
 * disk write and one AppendEntries per follower for all of them, instead of
 * one each. Raft calls back once per raft_apply (after its first entry is
 * applied), so each entry's outcome is taken from the FSM as it is applied
 * (submit_result_applied); the callback only reports a batch that failed. */

/* A follower's POST /internal/apply whose entries ride in a batch: it is
 * answered with their index once raft has taken the batch. */
struct fwd_answer {
    struct req_ref ref;
    unsigned offset, n; /* the entries' place in the batch */
    struct fwd_answer *next;
};

struct raft_batch {
    struct raft_apply req;
    struct node *node;
    struct fwd_answer *answers; /* forwarded entries in this batch */
    struct raft_batch *next; /* node->applying, in index order */
    raft_term term;          /* raft's term when appended */
    uint64_t first;          /* raft index of ops[0] */
    unsigned n, done;        /* ops[0..done) have their outcome; a NULL
                              * op is a follower's entry: no one waits here */
    int raft_done;           /* raft's callback has fired (or never will) */
    int queued;              /* in node->applying */
    struct submit_op *ops[SUBMIT_BATCH_MAX];
    struct raft_buffer bufs[SUBMIT_BATCH_MAX];
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
        if (op != NULL) {
            finish_unavailable(op, message);
        }
    }
    if (b->queued) {
        raft_batch_dequeue(b);
    }
    raft_batch_release(b);
}

/* Answer every appended submission still waiting for its outcome with a
 * 503 @message (which says it may have been applied). */
static void fail_applying(struct node *node, const char *message)
{
    while (node->applying != NULL) {
        raft_batch_fail(node->applying, message);
    }
}

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
    struct submit_op *op;

    fwd_match(node, r);
    if (b == NULL) {
        return;
    }
    if (!cluster_is_leader(&node->cluster) || node->cluster.raft.current_term != b->term) {
        /* the entry at this index may not be ours any more */
        fail_applying(node, LOST_LEADERSHIP);
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
        op = b->ops[b->done++];
        if (op != NULL) {
            finish_unavailable(op, LOST_LEADERSHIP);
        }
    }
    op = b->ops[b->done++];
    if (op != NULL) {
        op->backend_done = 1;
        if (r->status == 0) {
            deliver_unavailable(op, LOST_LEADERSHIP);
        } else {
            deliver_fsm_result(op, r);
        }
        op_release(op);
    }
    if (b->done == b->n) {
        raft_batch_dequeue(b);
        raft_batch_release(b);
    }
}

/* Answer the followers whose entries are in @b: with their index once
 * raft took the batch (@message NULL), else with a 503 @message. */
static void raft_batch_answer(struct raft_batch *b, const char *message)
{
    while (b->answers != NULL) {
        struct fwd_answer *a = b->answers;
        h2o_req_t *req = req_ref_detach(&a->ref);
        b->answers = a->next;
        if (req != NULL && message != NULL) {
            http_reply_unavailable(b->node, req, message);
        } else if (req != NULL) {
            char body[64];
            int len = snprintf(body, sizeof body, "{\"Index\":%llu,\"Count\":%u}",
                               (unsigned long long)(b->req.index + a->offset), a->n);
            http_reply_json(b->node, req, 200, body, (size_t)len);
        }
        free(a);
    }
}

/* A batch raft never took: nothing of it can be applied. */
static void raft_batch_refuse(struct raft_batch *b, const char *message)
{
    unsigned i;
    for (i = 0; i < b->n; i++) {
        raft_free(b->bufs[i].base);
    }
    raft_batch_answer(b, message);
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
    if (b->n == 0) {
        free(b); /* emptied again: an out-of-memory rollback */
        return;
    }
    b->req.data = b;
    b->term = node->cluster.raft.current_term;
    if (cluster_submit(&node->cluster, &b->req, b->bufs, b->n, raft_batch_cb) != 0) {
        raft_batch_refuse(b, "the log is not accepting commands now; retry");
        return;
    }
    raft_batch_answer(b, NULL);
    b->first = b->req.index;
    b->queued = 1;
    if (node->applying_tail != NULL) {
        node->applying_tail->next = b;
    } else {
        node->applying = b;
    }
    node->applying_tail = b;
}

/* The batch this iteration's entries go to, or NULL without memory. */
static struct raft_batch *raft_batch_current(struct node *node)
{
    struct raft_batch *b = node->raft_batch;
    if (b == NULL) {
        /* Only the header is cleared: ops and bufs (6 KiB) are filled as
         * entries come, and clearing them cost more than the rest of the
         * batch's bookkeeping. */
        b = malloc(sizeof *b);
        if (b == NULL) {
            return NULL;
        }
        memset(b, 0, offsetof(struct raft_batch, ops));
        b->node = node;
        node->raft_batch = b;
    }
    return b;
}

static void raft_batch_add(struct node *node, struct submit_op *op, struct raft_buffer buf)
{
    struct raft_batch *b = raft_batch_current(node);
    if (b == NULL) {
        raft_free(buf.base);
        finish_unavailable(op, "out of memory; retry");
        return;
    }
    b->ops[b->n] = op;
    b->bufs[b->n] = buf;
    b->n++;
    if (b->n == SUBMIT_BATCH_MAX) {
        raft_batch_flush(node);
    }
}

int submit_append_forwarded(struct node *node, struct st_h2o_req_t *req, const uint8_t *frames,
                            size_t len, unsigned n)
{
    struct raft_batch *b;
    struct fwd_answer *a;
    unsigned start;
    size_t off, size;

    if (node->raft_batch != NULL && node->raft_batch->n + n > SUBMIT_BATCH_MAX) {
        raft_batch_flush(node);
    }
    a = calloc(1, sizeof *a);
    b = a != NULL ? raft_batch_current(node) : NULL;
    if (b == NULL) {
        free(a);
        return -1;
    }
    start = b->n;
    for (off = 0; b->n - start < n; off += size) {
        size = entry_frame_size(frames + off, len - off);
        b->bufs[b->n].base = raft_malloc(size);
        if (b->bufs[b->n].base == NULL) {
            while (b->n > start) {
                raft_free(b->bufs[--b->n].base);
            }
            free(a);
            return -1;
        }
        memcpy(b->bufs[b->n].base, frames + off, size);
        b->bufs[b->n].len = size;
        b->ops[b->n] = NULL;
        b->n++;
    }
    req_ref_attach(&a->ref, req);
    a->offset = start;
    a->n = n;
    a->next = b->answers;
    b->answers = a;
    if (b->n == SUBMIT_BATCH_MAX) {
        raft_batch_flush(node);
    }
    return 0;
}

/* ---- forwarding in batches (another node leads) ----
 * Entries forwarded in one loop iteration go to the leader in one request
 * (frames back to back, at most SUBMIT_BATCH_MAX). The leader appends them
 * with its own iteration's entries and answers with the index of the first
 * as soon as raft has taken them; it does not wait for the commit. Each entry's
 * outcome is then taken from this node's own FSM as it applies the entry
 * (every node computes the same outcome from the same entry), found by the
 * entry's fingerprint. So the answer comes once this node has applied the
 * command (read-your-writes here), without a second hop for the result. */

#define FORWARD_BATCH_BYTES (512 * 1024)
#define FWD_BUCKETS 1024

#define OUTCOME_UNKNOWN                                                                      \
    "the leader changed before the command's outcome was known; it may have been "           \
    "applied: retry with the same Idempotency-Key"

struct fwd_batch {
    struct node *node;
    char addr[CONFIG_ADDR_MAX];
    struct buf body;
    struct submit_op **ops;
    unsigned n, cap;
};

static struct submit_op **fwd_bucket(struct node *node, uint64_t hash)
{
    return &node->fwd_table[hash & (FWD_BUCKETS - 1)];
}

static void fwd_unlink(struct submit_op *op)
{
    struct submit_op **p;
    if (!op->fwd_waiting) {
        return;
    }
    op->fwd_waiting = 0;
    for (p = fwd_bucket(op->node, op->hash); *p != NULL; p = &(*p)->hnext) {
        if (*p == op) {
            *p = op->hnext;
            break;
        }
    }
    op->hnext = NULL;
}

/* Wait for the entry with @op's fingerprint to be applied here. Appended at
 * the bucket's tail: byte-identical entries match in submission order. */
static int fwd_wait(struct submit_op *op, const struct raft_buffer *buf)
{
    struct node *node = op->node;
    struct submit_op **p;
    if (node->fwd_table == NULL) {
        node->fwd_table = calloc(FWD_BUCKETS, sizeof *node->fwd_table);
        if (node->fwd_table == NULL) {
            return -1;
        }
    }
    op->hash = util_hash64(buf->base, buf->len);
    for (p = fwd_bucket(node, op->hash); *p != NULL; p = &(*p)->hnext) {
    }
    op->hnext = NULL;
    *p = op;
    op->fwd_waiting = 1;
    return 0;
}

static void fwd_match(struct node *node, const struct fsm_result *r)
{
    struct submit_op *op;

    if (node->fwd_table == NULL) {
        return;
    }
    for (op = *fwd_bucket(node, r->entry_hash); op != NULL; op = op->hnext) {
        if (op->hash == r->entry_hash) {
            break;
        }
    }
    if (op == NULL || r->status == 0) {
        return;
    }
    deliver_fsm_result(op, r); /* unlinks it */
    op_release(op);
}

static void batch_free(struct fwd_batch *b)
{
    buf_free(&b->body);
    free(b->ops);
    free(b);
}

/* The request that carried @b is over: the batch lets go of its ops. */
static void batch_finish(struct fwd_batch *b, const struct forward_reply *refused,
                         const char *unknown)
{
    unsigned i;
    for (i = 0; i < b->n; i++) {
        struct submit_op *op = b->ops[i];
        op->backend_done = 1;
        if (!op->delivered && refused != NULL) {
            /* the leader refused the batch: nothing of it was appended */
            struct submit_result r;
            memset(&r, 0, sizeof r);
            r.status = (int)refused->status;
            r.body = refused->len ? refused->body : "{}";
            r.len = refused->len ? refused->len : 2;
            r.retry = refused->status == 503;
            deliver(op, &r);
        } else if (!op->delivered && unknown != NULL) {
            deliver_unavailable(op, unknown);
        }
        op_release(op);
    }
    batch_free(b);
}

static void batch_done(void *data, const struct forward_reply *reply)
{
    struct fwd_batch *b = data;
    struct node *node = b->node;
    cJSON *answer = NULL, *first;
    unsigned i;

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
        batch_finish(b, NULL, "malformed answer from the leader; the command may have been "
                              "applied: retry with the same Idempotency-Key");
        return;
    }
    /* Each entry is at its index unless leadership changes; once this node
     * has applied an index and the entry there was not ours, ours is gone. */
    for (i = 0; i < b->n; i++) {
        struct submit_op *op = b->ops[i];
        if (op->delivered) {
            continue;
        }
        op->wait_index = (uint64_t)first->valuedouble + i;
        if (node->fsm.applied_index >= op->wait_index) {
            deliver_unavailable(op, OUTCOME_UNKNOWN);
        } else {
            list_push(&node->submit_waits, op);
        }
    }
    cJSON_Delete(answer);
    batch_finish(b, NULL, NULL);
}

void submit_flush(struct node *node)
{
    struct fwd_batch *b;

    raft_batch_flush(node);
    if (node->applying != NULL && !cluster_is_leader(&node->cluster)) {
        fail_applying(node, LOST_LEADERSHIP);
    }
    b = node->fwd_batch;
    if (b == NULL) {
        return;
    }
    node->fwd_batch = NULL;
    if (forward_post(&node->forward, b->addr, INTERNAL_APPLY_PATH, b->body.data, b->body.len,
                     node->config.command_timeout_ms, batch_done, b) != 0) {
        batch_finish(b, NULL, "cannot reach the leader; retry");
    }
}

static void batch_add_failed(struct submit_op *op, struct raft_buffer buf)
{
    raft_free(buf.base);
    finish_unavailable(op, "out of memory; retry");
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
    if (fwd_wait(op, &buf) != 0 || buf_append(&b->body, buf.base, buf.len) != 0) {
        fwd_unlink(op);
        batch_add_failed(op, buf);
        return;
    }
    b->ops[b->n++] = op;
    raft_free(buf.base);
    if (b->n >= SUBMIT_BATCH_MAX || b->body.len >= FORWARD_BATCH_BYTES) {
        submit_flush(node);
    }
}

/* The leader's HTTP address is looked up again at least this often (it
 * changes only when a node restarts with another --http). */
#define LEADER_CACHE_MS 200

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
        if (leader == 0) {
            return 1;
        }
        if (leader != node->leader_cache_id ||
            util_mono_ms() - node->leader_cache_ms > LEADER_CACHE_MS) {
            if (!store_node_addresses(&node->store, leader, raft_addr, http_addr,
                                      sizeof http_addr)) {
                return 1;
            }
            node->leader_cache_id = leader;
            node->leader_cache_ms = util_mono_ms();
            util_copy(node->leader_cache_http, sizeof node->leader_cache_http, http_addr);
        }
        op->entry.base = NULL;
        batch_add(node, node->leader_cache_http, op, buf);
        return 0;
    }
}

void submit_entry(struct node *node, struct raft_buffer buf, submit_cb cb,
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
            /* applied here, and the entry at its index was not this one */
            deliver_unavailable(op, OUTCOME_UNKNOWN);
            op_release(op);
        }
        op = next;
    }
}

/* A command in the log (here or at the leader) whose outcome this node
 * will not see: it may still be committed and applied. */
#define STOPPING_UNKNOWN                                                                     \
    "the node is stopping; the command may have been applied: retry with the same "          \
    "Idempotency-Key"
/* A command that never reached the log. */
#define STOPPING_NOT_SENT "the node is stopping; retry on another node"

void submit_abort_all(struct node *node)
{
    if (node->raft_batch != NULL) {
        struct raft_batch *b = node->raft_batch;
        node->raft_batch = NULL;
        raft_batch_refuse(b, STOPPING_NOT_SENT);
    }
    fail_applying(node, STOPPING_UNKNOWN);
    while (node->submit_parked != NULL) {
        fail_parked(node->submit_parked, STOPPING_NOT_SENT);
    }
    while (node->submit_waits != NULL) {
        struct submit_op *op = node->submit_waits;
        deliver_unavailable(op, STOPPING_UNKNOWN);
        op_release(op);
    }
    if (node->fwd_table != NULL) {
        unsigned i;
        for (i = 0; i < FWD_BUCKETS; i++) {
            while (node->fwd_table[i] != NULL) {
                /* still with its forward request, which the stop abandons */
                deliver_unavailable(node->fwd_table[i], STOPPING_UNKNOWN);
            }
        }
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
    submit_entry(node, buf, cb, data);
    return 0;
}
