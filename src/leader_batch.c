#include "leader_batch.h"

#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "entry.h"
#include "fsm.h"
#include "submit_op.h"

/* A follower's entries riding in a batch. */
struct batch_answer {
    leader_batch_answer_fn cb;
    void *data;
    struct batch_answer *next;
};

struct leader_batch {
    struct raft_apply req;
    struct leader_batcher *lb;
    struct batch_answer *answers; /* forwarded entries in this batch */
    struct leader_batch *next;    /* lb->applying, in index order */
    raft_term term;               /* raft's term when appended */
    uint64_t index;               /* raft index of the batch's entry */
    unsigned n, done;             /* ops[0..done) have their outcome; a NULL
                                   * op is a follower's command: no one waits here */
    size_t bytes;                 /* the frames' total size */
    int raft_done;                /* raft's callback has fired (or never will) */
    int queued;                   /* in lb->applying */
    struct submit_op *ops[SUBMIT_BATCH_MAX];
    struct raft_buffer bufs[SUBMIT_BATCH_MAX]; /* the frames, until the flush */
};

void leader_batch_init(struct leader_batcher *lb, struct cluster *cluster)
{
    memset(lb, 0, sizeof *lb);
    lb->cluster = cluster;
}

static void batch_release(struct leader_batch *b)
{
    if (b->raft_done && !b->queued) {
        free(b);
    }
}

static void batch_dequeue(struct leader_batch *b)
{
    struct leader_batcher *lb = b->lb;
    struct leader_batch **p = &lb->applying;
    while (*p != NULL && *p != b) {
        p = &(*p)->next;
    }
    if (*p == b) {
        *p = b->next;
    }
    if (lb->applying_tail == b) {
        struct leader_batch *t = lb->applying;
        while (t != NULL && t->next != NULL) {
            t = t->next;
        }
        lb->applying_tail = t;
    }
    b->next = NULL;
    b->queued = 0;
}

/* Answer ops[done..n) of @b with a 503 and let the batch go. */
static void batch_fail(struct leader_batch *b, const char *message)
{
    while (b->done < b->n) {
        struct submit_op *op = b->ops[b->done++];
        if (op != NULL) {
            submit_op_finish_unavailable(op, message);
        }
    }
    if (b->queued) {
        batch_dequeue(b);
    }
    batch_release(b);
}

static void fail_applying(struct leader_batcher *lb, const char *message)
{
    while (lb->applying != NULL) {
        batch_fail(lb->applying, message);
    }
}

static void batch_cb(struct raft_apply *req, int status, void *result)
{
    struct leader_batch *b = req->data;
    (void)result; /* delivered by leader_batch_applied */
    b->raft_done = 1;
    if (status != 0) {
        batch_fail(b, SUBMIT_LOST_LEADERSHIP);
        return;
    }
    batch_release(b);
}

void leader_batch_applied(struct leader_batcher *lb, const struct fsm_result *r)
{
    struct leader_batch *b = lb->applying;
    struct submit_op *op;

    if (b == NULL) {
        return;
    }
    if (!cluster_is_leader(lb->cluster) || lb->cluster->raft.current_term != b->term) {
        /* the entry at this index may not be ours any more */
        fail_applying(lb, SUBMIT_LOST_LEADERSHIP);
        return;
    }
    while (b != NULL && r->index > b->index) {
        batch_fail(b, SUBMIT_LOST_LEADERSHIP); /* skipped: cannot happen while leading */
        b = lb->applying;
    }
    if (b == NULL || r->index < b->index || r->pos < b->done || r->pos >= b->n) {
        return;
    }
    while (b->done < r->pos) {
        op = b->ops[b->done++];
        if (op != NULL) {
            submit_op_finish_unavailable(op, SUBMIT_LOST_LEADERSHIP);
        }
    }
    op = b->ops[b->done++];
    if (op != NULL) {
        if (r->status == 0) {
            submit_op_deliver_unavailable(op, SUBMIT_LOST_LEADERSHIP);
        } else {
            submit_op_deliver_applied(op, r);
        }
        submit_op_backend_done(op);
    }
    if (b->done == b->n) {
        batch_dequeue(b);
        batch_release(b);
    }
}

void leader_batch_check_leadership(struct leader_batcher *lb)
{
    if (lb->applying != NULL && !cluster_is_leader(lb->cluster)) {
        fail_applying(lb, SUBMIT_LOST_LEADERSHIP);
    }
}

/* Tell the followers whose commands are in @b: the entry's index once raft
 * took it (@error NULL), else @error. */
static void batch_answer(struct leader_batch *b, const char *error)
{
    while (b->answers != NULL) {
        struct batch_answer *a = b->answers;
        b->answers = a->next;
        a->cb(a->data, error, error == NULL ? b->index : 0);
        free(a);
    }
}

/* A batch raft never took: nothing of it can be applied. */
static void batch_refuse(struct leader_batch *b, const char *message)
{
    unsigned i;
    for (i = 0; i < b->n; i++) {
        raft_free(b->bufs[i].base);
    }
    batch_answer(b, message);
    b->raft_done = 1;
    batch_fail(b, message);
}

/* The batch's frames, back to back in one raft_malloc'ed buffer: one log
 * entry. raft 0.22's raft_apply takes one buffer (src/legacy.c asserts
 * n == 1, and a release build drops the others), and an entry per command
 * cost a disk append and an AppendEntries per follower each. */
static int batch_pack(struct leader_batch *b, struct raft_buffer *out)
{
    uint8_t *p;
    unsigned i;

    if (b->n == 1) {
        *out = b->bufs[0];
        b->bufs[0].base = NULL;
        return 0;
    }
    p = raft_malloc(b->bytes);
    if (p == NULL) {
        return -1;
    }
    out->base = p;
    out->len = b->bytes;
    for (i = 0; i < b->n; i++) {
        memcpy(p, b->bufs[i].base, b->bufs[i].len);
        p += b->bufs[i].len;
        raft_free(b->bufs[i].base);
        b->bufs[i].base = NULL;
    }
    return 0;
}

void leader_batch_flush(struct leader_batcher *lb)
{
    struct leader_batch *b = lb->open;
    struct raft_buffer entry;

    if (b == NULL) {
        return;
    }
    lb->open = NULL;
    if (b->n == 0) {
        free(b); /* emptied again: an out-of-memory rollback */
        return;
    }
    if (batch_pack(b, &entry) != 0) {
        batch_refuse(b, "out of memory; retry");
        return;
    }
    b->req.data = b;
    b->term = lb->cluster->raft.current_term;
    if (cluster_submit(lb->cluster, &b->req, &entry, 1, batch_cb) != 0) {
        raft_free(entry.base);
        batch_refuse(b, "the log is not accepting commands now; retry");
        return;
    }
    b->index = b->req.index;
    batch_answer(b, NULL);
    b->queued = 1;
    if (lb->applying_tail != NULL) {
        lb->applying_tail->next = b;
    } else {
        lb->applying = b;
    }
    lb->applying_tail = b;
}

/* The batch this iteration's entries go to, or NULL without memory. */
static struct leader_batch *batch_open(struct leader_batcher *lb)
{
    struct leader_batch *b = lb->open;
    if (b == NULL) {
        /* Only the header is cleared: ops and bufs (6 KiB) are filled as
         * entries come, and clearing them cost more than the rest of the
         * batch's bookkeeping. */
        b = malloc(sizeof *b);
        if (b == NULL) {
            return NULL;
        }
        memset(b, 0, offsetof(struct leader_batch, ops));
        b->lb = lb;
        lb->open = b;
    }
    return b;
}

void leader_batch_add(struct leader_batcher *lb, struct submit_op *op, struct raft_buffer buf)
{
    struct leader_batch *b;
    if (lb->open != NULL && lb->open->bytes + buf.len > LEADER_BATCH_BYTES) {
        leader_batch_flush(lb);
    }
    b = batch_open(lb);
    if (b == NULL) {
        raft_free(buf.base);
        submit_op_finish_unavailable(op, "out of memory; retry");
        return;
    }
    b->ops[b->n] = op;
    b->bufs[b->n] = buf;
    b->bytes += buf.len;
    b->n++;
    if (b->n == SUBMIT_BATCH_MAX) {
        leader_batch_flush(lb);
    }
}

int leader_batch_add_frames(struct leader_batcher *lb, const uint8_t *frames, size_t len,
                            unsigned n, leader_batch_answer_fn cb, void *data)
{
    struct leader_batch *b;
    struct batch_answer *a;
    unsigned start;
    size_t off, size;

    if (lb->open != NULL &&
        (lb->open->n + n > SUBMIT_BATCH_MAX || lb->open->bytes + len > LEADER_BATCH_BYTES)) {
        leader_batch_flush(lb);
    }
    a = calloc(1, sizeof *a);
    b = a != NULL ? batch_open(lb) : NULL;
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
                b->n--;
                b->bytes -= b->bufs[b->n].len;
                raft_free(b->bufs[b->n].base);
            }
            free(a);
            return -1;
        }
        memcpy(b->bufs[b->n].base, frames + off, size);
        b->bufs[b->n].len = size;
        b->bytes += size;
        b->ops[b->n] = NULL;
        b->n++;
    }
    a->cb = cb;
    a->data = data;
    a->next = b->answers;
    b->answers = a;
    if (b->n == SUBMIT_BATCH_MAX) {
        leader_batch_flush(lb);
    }
    return 0;
}

void leader_batch_abort(struct leader_batcher *lb, const char *not_sent, const char *unknown)
{
    if (lb->open != NULL) {
        struct leader_batch *b = lb->open;
        lb->open = NULL;
        batch_refuse(b, not_sent);
    }
    fail_applying(lb, unknown);
}
