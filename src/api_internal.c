/* Endpoints nodes use among themselves, authenticated with the cluster's
 * admin token: POST /internal/apply takes a framed log entry from a follower
 * and answers with its outcome once the leader has applied it. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "entry.h"
#include "node.h"
#include "submit.h"

static void internal_done(void *data, const struct submit_result *r)
{
    struct req_ref *ref = data;
    h2o_req_t *req = req_ref_detach(ref);
    struct node *node = req != NULL ? ref->data : NULL;

    if (req != NULL) {
        char index[24];
        http_prepare(node, req, r->status);
        if (r->index != 0) {
            snprintf(index, sizeof index, "%llu", (unsigned long long)r->index);
            http_add_header(req, "x-varasto-index", index);
        }
        if (r->replayed) {
            http_add_header(req, "idempotent-replayed", "true");
        }
        if (r->retry) {
            http_add_header(req, "retry-after", "1");
        }
        h2o_send_inline(req, r->body, r->len);
        /* the follower answers once it has applied the entry too */
        cluster_nudge(&node->cluster);
    }
    free(ref);
}

void api_internal_apply(struct node *node, h2o_req_t *req, char **params)
{
    struct raft_buffer buf;
    struct raft_buffer view;
    Varasto__Entry *e;
    struct req_ref *ref;

    (void)params;
    if (!node_is_admin(node, req)) {
        http_reply_error(node, req, ERR_UNAUTHORIZED, "internal endpoints need the cluster token");
        return;
    }
    view.base = req->entity.base;
    view.len = req->entity.len;
    e = view.base != NULL ? entry_decode(&view) : NULL;
    if (e == NULL || view.len % 8 != 0) {
        if (e != NULL) {
            varasto__entry__free_unpacked(e, NULL);
        }
        http_reply_error(node, req, ERR_BAD_REQUEST, "not a log entry");
        return;
    }
    varasto__entry__free_unpacked(e, NULL);
    buf.len = view.len;
    buf.base = raft_malloc(buf.len);
    ref = calloc(1, sizeof *ref);
    if (buf.base == NULL || ref == NULL) {
        raft_free(buf.base);
        free(ref);
        http_reply_error(node, req, ERR_INTERNAL, "out of memory");
        return;
    }
    memcpy(buf.base, view.base, buf.len);
    req_ref_attach(ref, req);
    ref->data = node;
    submit_entry(node, buf, 1, internal_done, ref);
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
