/* Endpoints nodes use among themselves, authenticated with the cluster's
 * admin token: POST /internal/apply takes a framed log entry from a follower
 * and answers with its outcome once the leader has applied it. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "entry.h"
#include "node.h"
#include "submit.h"

/* A batch of entries from one follower: answered when every entry has its
 * outcome, as a JSON array in the order of the frames. */
struct apply_batch {
    struct req_ref ref;
    struct node *node;
    unsigned n, done;
    struct apply_item {
        struct apply_batch *batch;
        int status;
        uint64_t index;
        int replayed;
        char *body;
        size_t len;
    } items[];
};

static void apply_batch_answer(struct apply_batch *b)
{
    h2o_req_t *req = req_ref_detach(&b->ref);
    unsigned i;

    if (req != NULL) {
        struct buf out;
        buf_init(&out);
        buf_append_str(&out, "[");
        for (i = 0; i < b->n; i++) {
            struct apply_item *it = &b->items[i];
            buf_append_str(&out, i == 0 ? "{\"Status\":" : ",{\"Status\":");
            buf_append_int(&out, it->status);
            buf_append_str(&out, ",\"Index\":");
            buf_append_int(&out, (long long)it->index);
            buf_append_str(&out, it->replayed ? ",\"Replayed\":true,\"Body\":"
                                              : ",\"Replayed\":false,\"Body\":");
            buf_append(&out, it->body, it->len);
            buf_append_str(&out, "}");
        }
        buf_append_str(&out, "]");
        http_reply_json(b->node, req, 200, out.data, out.len);
        buf_free(&out);
        /* the followers answer once they have applied these too */
        cluster_nudge(&b->node->cluster);
    }
    for (i = 0; i < b->n; i++) {
        free(b->items[i].body);
    }
    free(b);
}

static void apply_item_done(void *data, const struct submit_result *r)
{
    struct apply_item *it = data;
    struct apply_batch *b = it->batch;

    it->status = r->status;
    it->index = r->index;
    it->replayed = r->replayed;
    it->body = malloc(r->len + 1);
    if (it->body != NULL) {
        memcpy(it->body, r->body, r->len);
        it->len = r->len;
    } else {
        it->body = NULL;
        it->len = 0;
    }
    if (it->len == 0) {
        free(it->body);
        it->body = strdup("{}");
        it->len = 2;
    }
    if (++b->done == b->n) {
        apply_batch_answer(b);
    }
}

/* POST /internal/apply: log entries from a follower (frames back to back),
 * appended here verbatim. */
void api_internal_apply(struct node *node, h2o_req_t *req, char **params)
{
    const uint8_t *p = (const uint8_t *)req->entity.base;
    size_t len = req->entity.len, off, n = 0, size;
    struct apply_batch *b;
    unsigned i;

    (void)params;
    if (!node_is_admin(node, req)) {
        http_reply_error(node, req, ERR_UNAUTHORIZED, "internal endpoints need the cluster token");
        return;
    }
    /* Check every frame before appending any. */
    for (off = 0; p != NULL && off < len; off += size, n++) {
        struct raft_buffer view;
        Varasto__Entry *e;
        size = entry_frame_size(p + off, len - off);
        view.base = (void *)(p + off);
        view.len = size;
        e = size != 0 ? entry_decode(&view) : NULL;
        if (e == NULL) {
            http_reply_error(node, req, ERR_BAD_REQUEST, "not a log entry");
            return;
        }
        varasto__entry__free_unpacked(e, NULL);
    }
    if (n == 0) {
        http_reply_error(node, req, ERR_BAD_REQUEST, "not a log entry");
        return;
    }
    if (!cluster_is_leader(&node->cluster)) {
        http_reply_unavailable(node, req, "this node is not the leader; retry");
        return;
    }
    b = calloc(1, sizeof *b + n * sizeof b->items[0]);
    if (b == NULL) {
        http_reply_error(node, req, ERR_INTERNAL, "out of memory");
        return;
    }
    b->node = node;
    b->n = (unsigned)n;
    req_ref_attach(&b->ref, req);
    for (i = 0, off = 0; i < n; i++, off += size) {
        struct raft_buffer buf;
        size = entry_frame_size(p + off, len - off);
        b->items[i].batch = b;
        buf.len = size;
        buf.base = raft_malloc(size);
        if (buf.base == NULL) {
            static const char oom[] = "{\"Error\":\"out of memory\",\"Code\":\"unavailable\"}";
            struct submit_result r;
            memset(&r, 0, sizeof r);
            r.status = 503;
            r.body = oom;
            r.len = sizeof oom - 1;
            r.retry = 1;
            apply_item_done(&b->items[i], &r);
            continue;
        }
        memcpy(buf.base, p + off, size);
        submit_entry(node, buf, 1, apply_item_done, &b->items[i]);
    }
}

/* POST /internal/barrier: a follower's linearizable read. The leader appends
 * a barrier (confirming its leadership with a quorum) and answers with the
 * index the follower must apply before it reads (a read index). */
struct barrier_req {
    struct raft_barrier barrier;
    struct req_ref ref;
    struct node *node;
};

static void internal_barrier_cb(struct raft_barrier *b, int status)
{
    struct barrier_req *br = b->data;
    h2o_req_t *req = req_ref_detach(&br->ref);

    if (req != NULL) {
        if (status != 0) {
            http_reply_unavailable(br->node, req, "leadership could not be confirmed; retry");
        } else {
            char index[24];
            snprintf(index, sizeof index, "%llu", (unsigned long long)b->index);
            http_add_header(req, "x-varasto-index", index);
            http_reply_json(br->node, req, 200, "{}", 2);
            cluster_nudge(&br->node->cluster);
        }
    }
    free(br);
}

void api_internal_barrier(struct node *node, h2o_req_t *req, char **params)
{
    struct barrier_req *br;

    (void)params;
    if (!node_is_admin(node, req)) {
        http_reply_error(node, req, ERR_UNAUTHORIZED, "internal endpoints need the cluster token");
        return;
    }
    if (!cluster_is_leader(&node->cluster)) {
        http_reply_unavailable(node, req, "this node is not the leader; retry");
        return;
    }
    br = calloc(1, sizeof *br);
    if (br == NULL) {
        http_reply_error(node, req, ERR_INTERNAL, "out of memory");
        return;
    }
    br->node = node;
    br->barrier.data = br;
    if (cluster_barrier(&node->cluster, &br->barrier, internal_barrier_cb) != 0) {
        free(br);
        http_reply_unavailable(node, req, "this node is not the leader; retry");
        return;
    }
    req_ref_attach(&br->ref, req);
}
