/* REST reads, served from this node's read model: the event log page,
 * durable subscriptions and health. Directories and collections have their
 * own files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_views.h"
#include "cluster.h"
#include "fsm.h"
#include "retention.h"
#include "store.h"
#include "type_filter.h"
#include "util.h"

#define EVENTS_DEFAULT_LIMIT 100
#define EVENTS_MAX_LIMIT 10000
#define EVENTS_SCAN_BUDGET (8 * STORE_SCAN_WINDOW) /* events a filtered page looks at */

/* A page of the event log being written into a JSON array. */
struct events_page {
    struct buf *out;
    const struct type_filter *types;
    unsigned limit;
    int n;
};

static int events_page_row(void *data, uint64_t seq, const char *type, const char *json, size_t len)
{
    struct events_page *p = data;
    (void)seq;
    (void)type;
    if (p->n > 0) {
        buf_append(p->out, ",", 1);
    }
    buf_append(p->out, json, len);
    return (unsigned)++p->n >= p->limit;
}

int api_events_view(struct store *st, uint64_t after, unsigned limit,
                    const struct type_filter *types, struct buf *out, uint64_t *scanned)
{
    struct events_page p = {out, types, limit, 0};
    int rv = 0;

    *scanned = 0;
    buf_append(out, "[", 1);
    /* a filter looks at a bounded number of events per page (SPEC 7.3) */
    if (limit > 0 && types != NULL && types->n > 0) {
        rv = store_events_filtered(st, after, 0, limit, EVENTS_SCAN_BUDGET, types, events_page_row,
                                   &p, scanned);
    } else if (limit > 0) {
        rv = store_events_scan(st, after, limit, events_page_row, &p);
    }
    buf_append(out, "]", 1);
    return rv < 0 ? rv : p.n;
}

void api_events_page(struct api *api, h2o_req_t *req, char **params)
{
    unsigned long long after = 0, limit = EVENTS_DEFAULT_LIMIT;
    struct type_filter filter = {0};
    uint64_t scanned;
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
    if (api_events_view(api->store, after, (unsigned)limit, &filter, &out, &scanned) < 0) {
        http_reply_error(req, ERR_INTERNAL, "store: %s", api->store->errmsg);
    } else {
        if (filter.n > 0) {
            /* where a filtered page stopped looking: the next page's after */
            char v[24];
            snprintf(v, sizeof v, "%llu", (unsigned long long)scanned);
            http_add_header(req, "x-varasto-scanned", v);
        }
        http_reply_json(req, 200, out.data, out.len);
    }
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

/* Durable subscriptions being written into a JSON array. */
struct subscriptions_doc {
    struct buf *out;
    uint64_t last_seq;
    int first;
};

static int subscription_json(void *data, const struct store_sub *row)
{
    struct subscriptions_doc *d = data;
    struct type_filter f;
    unsigned i;

    type_filter_parse(&f, row->types);
    api_put_text(d->out, d->first ? "{\"Name\":" : ",{\"Name\":", row->name);
    buf_append_str(d->out, ",\"Types\":[");
    for (i = 0; i < f.n; i++) {
        if (i > 0) {
            buf_append_str(d->out, ",");
        }
        codec_write_string(d->out, f.prefixes[i]);
    }
    buf_append_str(d->out, "]");
    api_put_int(d->out, ",\"Cursor\":", (long long)row->cursor);
    api_put_int(d->out, ",\"Lag\":",
                (long long)(d->last_seq > row->cursor ? d->last_seq - row->cursor : 0));
    buf_append_str(d->out, "}");
    d->first = 0;
    return 0;
}

int api_subscriptions_view(struct store *st, uint64_t last_seq, struct buf *out)
{
    struct subscriptions_doc d = {out, last_seq, 1};
    int rv;
    buf_append_str(out, "[");
    rv = store_subs(st, subscription_json, &d);
    buf_append_str(out, "]");
    return rv;
}

void api_subscriptions(struct api *api, h2o_req_t *req, char **params)
{
    struct buf out;
    (void)params;
    buf_init(&out);
    if (api_subscriptions_view(api->store, api->fsm->last_seq, &out) < 0) {
        http_reply_error(req, ERR_INTERNAL, "store: %s", api->store->errmsg);
    } else {
        http_reply_json(req, 200, out.data, out.len);
    }
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
