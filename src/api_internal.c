/* Endpoints nodes use among themselves, each request signed with the
 * cluster key (http.c checks it by route, peer_auth.h): POST
 * /internal/apply appends a follower's framed commands and answers with
 * the index of the entry that carries them; POST /internal/barrier gives a
 * follower a read index. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cluster.h"
#include "entry.h"
#include "forward_batch.h"
#include "submit.h"

_Static_assert(FORWARD_BODY_MAX <= HTTP_MAX_ENTITY,
               "a follower's forwarded batch must fit what the leader reads");

/* POST /internal/apply: commands from a follower (frames back to back),
 * appended here verbatim, in one entry with the rest of this loop
 * iteration's commands. The answer is that entry's index, as soon as raft
 * has taken it: the follower answers its clients as it applies the entry
 * itself, and learns from that index if leadership changes lost them. */
/* A follower's request whose entries ride in this iteration's batch. */
struct apply_answer {
    struct req_ref ref;
    unsigned n;
};

static void appended(void *data, const char *error, uint64_t index)
{
    struct apply_answer *a = data;
    h2o_req_t *req = req_ref_detach(&a->ref);
    if (req != NULL && error != NULL) {
        http_reply_unavailable(req, error);
    } else if (req != NULL) {
        char body[64];
        int len = snprintf(body, sizeof body, "{\"Index\":%llu,\"Count\":%u}",
                           (unsigned long long)index, a->n);
        http_reply_json(req, 200, body, (size_t)len);
    }
    free(a);
}

void api_internal_apply(struct api *api, h2o_req_t *req, char **params)
{
    const uint8_t *p = (const uint8_t *)req->entity.base;
    size_t len = req->entity.len;
    /* every frame checked before any is appended */
    size_t n = entry_frames_check(p, len);
    struct apply_answer *a;

    (void)params;
    if (n == 0) {
        http_reply_error(req, ERR_BAD_REQUEST, "not a log entry");
        return;
    }
    if (n > SUBMIT_BATCH_MAX) {
        http_reply_error(req, ERR_BAD_REQUEST, "at most %u entries per request",
                         (unsigned)SUBMIT_BATCH_MAX);
        return;
    }
    if (!cluster_is_leader(api->cluster)) {
        http_reply_unavailable(req, "this node is not the leader; retry");
        return;
    }
    a = calloc(1, sizeof *a);
    if (a == NULL) {
        http_reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    a->n = (unsigned)n;
    if (submit_append_forwarded(api->submit, p, len, a->n, appended, a) != 0) {
        free(a);
        http_reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    req_ref_attach(&a->ref, req);
}

/* POST /internal/barrier: a follower's linearizable read. The leader appends
 * a barrier, shared with the other linearizable reads of its loop iteration
 * (confirming its leadership with a quorum), and answers with the
 * index the follower must apply before it reads (a read index). */
struct barrier_req {
    struct req_ref ref;
    struct api *api;
};

static void internal_barrier_cb(void *data, int status, uint64_t barrier_index)
{
    struct barrier_req *br = data;
    h2o_req_t *req = req_ref_detach(&br->ref);

    if (req != NULL) {
        if (status != 0) {
            http_reply_unavailable(req, "leadership could not be confirmed; retry");
        } else {
            char index[24];
            snprintf(index, sizeof index, "%llu", (unsigned long long)barrier_index);
            http_add_header(req, "x-varasto-index", index);
            http_reply_json(req, 200, "{}", 2);
            cluster_nudge(br->api->cluster);
        }
    }
    free(br);
}

void api_internal_barrier(struct api *api, h2o_req_t *req, char **params)
{
    struct barrier_req *br;

    (void)params;
    if (!cluster_is_leader(api->cluster)) {
        http_reply_unavailable(req, "this node is not the leader; retry");
        return;
    }
    br = calloc(1, sizeof *br);
    if (br == NULL) {
        http_reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    br->api = api;
    if (cluster_barrier_join(api->cluster, internal_barrier_cb, br) != 0) {
        free(br);
        http_reply_unavailable(req, "this node is not the leader; retry");
        return;
    }
    req_ref_attach(&br->ref, req);
}
