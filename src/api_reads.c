/* REST reads, served from this node's read model. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "node.h"
#include "util.h"

#define EVENTS_DEFAULT_LIMIT 100
#define EVENTS_MAX_LIMIT 10000

/* Answer with the document a store view function writes, or 404. */
static void reply_view(struct node *node, h2o_req_t *req, const char *id, const char *what,
                       int (*view)(struct store *, const char *, struct buf *))
{
    struct buf out;
    int found;
    buf_init(&out);
    found = store_read(&node->store, view, id, &out);
    if (!found) {
        http_reply_error(node, req, ERR_NOT_FOUND, "%s '%s' not found", what, id);
    } else {
        http_reply_json(node, req, 200, out.data, out.len);
    }
    buf_free(&out);
}

void api_directory_get(struct node *node, h2o_req_t *req, char **params)
{
    reply_view(node, req, params[0], "directory", store_directory_view);
}

void api_collection_get(struct node *node, h2o_req_t *req, char **params)
{
    reply_view(node, req, params[0], "collection", store_collection_view);
}

void api_events_page(struct node *node, h2o_req_t *req, char **params)
{
    unsigned long long after = 0, limit = EVENTS_DEFAULT_LIMIT;
    struct type_filter filter = {0};
    struct buf out;
    int rv;

    (void)params;
    if (http_u64_param(req, "after", NULL, &after) < 0) {
        http_reply_error(node, req, ERR_BAD_REQUEST, "after must be a non-negative integer");
        return;
    }
    rv = http_u64_param(req, "limit", NULL, &limit);
    if (rv < 0 || limit < 1 || limit > EVENTS_MAX_LIMIT) {
        http_reply_error(node, req, ERR_BAD_REQUEST, "limit must be an integer in 1..%d",
                         EVENTS_MAX_LIMIT);
        return;
    }
    if (api_parse_types(node, req, &filter) != 0) {
        return;
    }
    if (api_reply_gone_if_pruned(node, req, after)) {
        return;
    }
    buf_init(&out);
    store_events_page(&node->store, after, (unsigned)limit, &filter, &out);
    http_reply_json(node, req, 200, out.data, out.len);
    buf_free(&out);
}

void api_health(struct node *node, h2o_req_t *req, char **params)
{
    uint64_t leader = cluster_leader_id(&node->cluster);
    struct buf out;

    (void)params;
    buf_init(&out);
    buf_appendf(&out, "{\"Status\":\"%s\",\"Role\":\"%s\",\"Leader\":",
                leader != 0 ? "ok" : "unavailable", cluster_role(&node->cluster));
    if (leader != 0) {
        buf_appendf(&out, "%llu", (unsigned long long)leader);
    } else {
        buf_appendf(&out, "null");
    }
    buf_appendf(&out, ",\"AppliedSeq\":%llu}", (unsigned long long)node->fsm.last_seq);
    if (leader == 0) {
        http_add_header(req, "retry-after", "1");
    }
    http_reply_json(node, req, leader != 0 ? 200 : 503, out.data, out.len);
    buf_free(&out);
}

void api_subscriptions(struct node *node, h2o_req_t *req, char **params)
{
    struct buf out;
    (void)params;
    buf_init(&out);
    store_subscriptions_json(&node->store, node->fsm.last_seq, &out);
    http_reply_json(node, req, 200, out.data, out.len);
    buf_free(&out);
}

int api_reply_gone_if_pruned(struct node *node, h2o_req_t *req, uint64_t after)
{
    if (node->oldest_seq > 1 && after + 1 < node->oldest_seq) {
        char body[200];
        int n = snprintf(body, sizeof body,
                         "{\"Error\":\"events after %llu are no longer kept; the oldest is %llu\","
                         "\"Code\":\"gone\",\"OldestSeq\":%llu}",
                         (unsigned long long)after, (unsigned long long)node->oldest_seq,
                         (unsigned long long)node->oldest_seq);
        http_reply_json(node, req, 410, body, (size_t)n);
        return 1;
    }
    return 0;
}
