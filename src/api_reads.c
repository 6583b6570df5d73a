/* REST reads, served from this node's read model. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cluster.h"
#include "fsm.h"
#include "retention.h"
#include "store.h"
#include "util.h"

#define EVENTS_DEFAULT_LIMIT 100
#define EVENTS_MAX_LIMIT 10000

/* Answer with the document a store view function writes, or 404. */
static void reply_view(struct api *api, h2o_req_t *req, const char *id, const char *what,
                       int (*view)(struct store *, const char *, struct buf *))
{
    struct buf out;
    int found;
    buf_init(&out);
    found = store_read(api->store, view, id, &out);
    if (!found) {
        http_reply_error(req, ERR_NOT_FOUND, "%s '%s' not found", what, id);
    } else {
        http_reply_json(req, 200, out.data, out.len);
    }
    buf_free(&out);
}

void api_directory_get(struct api *api, h2o_req_t *req, char **params)
{
    reply_view(api, req, params[0], "directory", store_directory_view);
}

void api_collection_get(struct api *api, h2o_req_t *req, char **params)
{
    reply_view(api, req, params[0], "collection", store_collection_view);
}

void api_events_page(struct api *api, h2o_req_t *req, char **params)
{
    unsigned long long after = 0, limit = EVENTS_DEFAULT_LIMIT;
    struct type_filter filter = {0};
    struct buf out;
    int rv;

    (void)params;
    if (http_u64_param(req, "after", NULL, &after) < 0) {
        http_reply_error(req, ERR_BAD_REQUEST, "after must be a non-negative integer");
        return;
    }
    rv = http_u64_param(req, "limit", NULL, &limit);
    if (rv < 0 || limit < 1 || limit > EVENTS_MAX_LIMIT) {
        http_reply_error(req, ERR_BAD_REQUEST, "limit must be an integer in 1..%d",
                         EVENTS_MAX_LIMIT);
        return;
    }
    if (api_parse_types(req, &filter) != 0) {
        return;
    }
    if (api_reply_gone_if_pruned(api, req, after)) {
        return;
    }
    buf_init(&out);
    store_events_page(api->store, after, (unsigned)limit, &filter, &out);
    http_reply_json(req, 200, out.data, out.len);
    buf_free(&out);
}

void api_health(struct api *api, h2o_req_t *req, char **params)
{
    uint64_t leader = cluster_leader_id(api->cluster);
    struct buf out;

    (void)params;
    buf_init(&out);
    buf_appendf(&out, "{\"Status\":\"%s\",\"Role\":\"%s\",\"Leader\":",
                leader != 0 ? "ok" : "unavailable", cluster_role(api->cluster));
    if (leader != 0) {
        buf_appendf(&out, "%llu", (unsigned long long)leader);
    } else {
        buf_appendf(&out, "null");
    }
    buf_appendf(&out, ",\"AppliedSeq\":%llu}", (unsigned long long)api->fsm->last_seq);
    if (leader == 0) {
        http_add_header(req, "retry-after", "1");
    }
    http_reply_json(req, leader != 0 ? 200 : 503, out.data, out.len);
    buf_free(&out);
}

void api_subscriptions(struct api *api, h2o_req_t *req, char **params)
{
    struct buf out;
    (void)params;
    buf_init(&out);
    store_subscriptions_json(api->store, api->fsm->last_seq, &out);
    http_reply_json(req, 200, out.data, out.len);
    buf_free(&out);
}

int api_reply_gone_if_pruned(struct api *api, h2o_req_t *req, uint64_t after)
{
    uint64_t oldest = api->retention->oldest_seq;
    char message[128], extra[48];
    struct buf body;

    if (!retention_pruned_after(api->retention, after)) {
        return 0;
    }
    snprintf(message, sizeof message, "events after %llu are no longer kept; the oldest is %llu",
             (unsigned long long)after, (unsigned long long)oldest);
    snprintf(extra, sizeof extra, "\"OldestSeq\":%llu", (unsigned long long)oldest);
    buf_init(&body);
    if (err_write_body(&body, ERR_GONE, message, extra) != 0) {
        http_reply_error(req, ERR_INTERNAL, "out of memory");
    } else {
        http_reply_json(req, err_http_status(ERR_GONE), body.data, body.len);
    }
    buf_free(&body);
    return 1;
}
