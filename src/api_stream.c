/* GET /api_v2/events/stream: Server-Sent Events from the push hub.
 *
 * Each stream holds at most one batch (PUSH_BATCH_BYTES) in flight and pulls
 * the next only when h2o says the last one was written (proceed), so a
 * client that stops reading costs one batch of memory and nothing else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "config.h"
#include "log.h"
#include "push.h"
#include "retention.h"
#include "store.h"

struct sse_stream {
    h2o_generator_t generator; /* first: h2o hands it back to us */
    struct req_ref ref;
    struct api *api;
    struct push_sub sub;
    struct buf out; /* the batch h2o is writing */
    uv_timer_t heartbeat;
    int sending;
    int ending; /* the node is stopping: finish after this batch */
    int closed;
};

static void sse_frame(struct buf *out, uint64_t seq, const char *type, const char *json, size_t len)
{
    buf_appendf(out, "id: %llu\nevent: %s\ndata: ", (unsigned long long)seq, type);
    buf_append(out, json, len);
    buf_append(out, "\n\n", 2);
}

static void sse_free(uv_handle_t *h)
{
    struct sse_stream *s = h->data;
    buf_free(&s->out);
    free(s);
}

/* Tear down once: the request is gone or h2o stopped the response. */
static void sse_close(struct sse_stream *s)
{
    if (s->closed) {
        return;
    }
    s->closed = 1;
    req_ref_detach(&s->ref);
    push_unsubscribe(&s->sub);
    uv_timer_stop(&s->heartbeat);
    uv_close((uv_handle_t *)&s->heartbeat, sse_free);
}

static void sse_send(struct sse_stream *s)
{
    h2o_iovec_t iov = h2o_iovec_init(s->out.data, s->out.len);
    s->sending = 1;
    h2o_send(s->ref.req, &iov, 1, H2O_SEND_STATE_IN_PROGRESS);
}

static void sse_pump(struct sse_stream *s)
{
    if (s->closed || s->sending || s->ref.req == NULL) {
        return;
    }
    s->out.len = 0;
    if (retention_pruned_after(s->api->retention, s->sub.cursor)) {
        /* Retention pruned what this subscriber has not read: say so and
         * end the stream; it resumes from its cursor and gets 410. */
        char message[80], extra[48];
        snprintf(message, sizeof message, "events after %llu are no longer kept",
                 (unsigned long long)s->sub.cursor);
        snprintf(extra, sizeof extra, "\"OldestSeq\":%llu",
                 (unsigned long long)s->api->retention->oldest_seq);
        buf_append_str(&s->out, "event: gone\ndata: ");
        err_write_body(&s->out, ERR_GONE, message, extra);
        buf_append_str(&s->out, "\n\n");
        {
            h2o_iovec_t iov = h2o_iovec_init(s->out.data, s->out.len);
            h2o_req_t *req = s->ref.req;
            push_unsubscribe(&s->sub);
            s->sending = 1;
            h2o_send(req, &iov, 1, H2O_SEND_STATE_FINAL);
        }
        return;
    }
    /* An empty pull with the subscriber not waiting means a filter skipped a
     * whole batch: pull again (each pull advances the cursor). */
    while (s->out.len == 0 && !s->sub.waiting) {
        push_pull(&s->sub, &s->out);
    }
    if (s->out.len > 0) {
        sse_send(s);
    }
}

/* End the response (the node is stopping); the request's disposal then
 * closes the stream. */
static void sse_finish(struct sse_stream *s)
{
    if (s->closed || s->ref.req == NULL) {
        return;
    }
    s->sending = 1;
    h2o_send(s->ref.req, NULL, 0, H2O_SEND_STATE_FINAL);
}

static void sse_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    struct sse_stream *s = (struct sse_stream *)g;
    (void)req;
    s->sending = 0;
    if (s->ending) {
        sse_finish(s);
        return;
    }
    sse_pump(s);
}

static void sse_end(struct push_sub *sub)
{
    struct sse_stream *s = sub->data;
    push_unsubscribe(&s->sub);
    s->ending = 1;
    if (!s->sending) {
        sse_finish(s);
    }
}

static void sse_stop(h2o_generator_t *g, h2o_req_t *req)
{
    (void)req;
    sse_close((struct sse_stream *)g);
}

static void sse_gone(struct req_ref *ref)
{
    sse_close((struct sse_stream *)((char *)ref - offsetof(struct sse_stream, ref)));
}

static void sse_wake(struct push_sub *sub)
{
    sse_pump(sub->data);
}

static void sse_heartbeat(uv_timer_t *t)
{
    struct sse_stream *s = t->data;
    if (s->closed || s->sending || s->ref.req == NULL) {
        return;
    }
    s->out.len = 0;
    buf_append(&s->out, ": keepalive\n\n", 13);
    sse_send(s);
}

int api_parse_types(h2o_req_t *req, struct type_filter *filter)
{
    char types[TYPE_FILTER_MAX * 64];
    int rv = http_query(req, "types", types, sizeof types);
    filter->n = 0;
    if (rv < 0 || (rv == 1 && type_filter_parse(filter, types) != 0)) {
        http_reply_error(req, ERR_BAD_REQUEST, "types must be at most %d prefixes",
                         TYPE_FILTER_MAX);
        return -1;
    }
    return 0;
}

int api_stream_start(struct api *api, h2o_req_t *req, int use_last_event_id,
                     struct type_filter *filter, uint64_t *after, char *subscription, size_t size)
{
    unsigned long long cursor = 0;
    int has_last_event_id = 0;
    int rv = 0;

    /* Last-Event-ID (a browser's reconnect) wins over ?after. */
    if (use_last_event_id) {
        rv = http_u64_param(req, NULL, "last-event-id", &cursor);
        has_last_event_id = rv == 1;
    }
    if (rv == 0) {
        rv = http_u64_param(req, "after", NULL, &cursor);
    }
    if (rv < 0) {
        http_reply_error(req, ERR_BAD_REQUEST,
                         "after / Last-Event-ID must be a non-negative integer");
        return -1;
    }
    subscription[0] = '\0';
    rv = http_query(req, "subscription", subscription, size);
    if (rv < 0) {
        http_reply_error(req, ERR_BAD_REQUEST, "subscription: name too long");
        return -1;
    }
    if (rv == 1) {
        /* A durable subscription: its cursor and its filter. A reconnect's
         * Last-Event-ID (what the client has processed) still wins. */
        uint64_t acked;
        int found = store_subscription(api->store, subscription, filter, &acked);
        if (found < 0) {
            http_reply_error(req, ERR_INTERNAL, "read model: %s", api->store->errmsg);
            return -1;
        }
        if (found == 0) {
            http_reply_error(req, ERR_NOT_FOUND, "subscription '%s' not found", subscription);
            return -1;
        }
        if (!has_last_event_id) {
            cursor = acked;
        }
    } else if (api_parse_types(req, filter) != 0) {
        return -1;
    }
    if (api_reply_gone_if_pruned(api, req, cursor)) {
        return -1;
    }
    *after = cursor;
    return 0;
}

void api_events_stream(struct api *api, h2o_req_t *req, char **params)
{
    struct type_filter filter;
    char name[256];
    uint64_t after;
    struct sse_stream *s;

    (void)params;
    if (api_stream_start(api, req, 1, &filter, &after, name, sizeof name) != 0) {
        return;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        http_reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    s->sub.filter = filter;
    s->api = api;
    s->generator.proceed = sse_proceed;
    s->generator.stop = sse_stop;
    buf_init(&s->out);
    s->sub.cursor = after;
    s->sub.frame = sse_frame;
    s->sub.wake = sse_wake;
    s->sub.end = sse_end;
    s->sub.data = s;
    api_stream_key(api, req, &s->sub);
    req_ref_attach(&s->ref, req);
    s->ref.on_gone = sse_gone;
    uv_timer_init(api->loop, &s->heartbeat);
    s->heartbeat.data = s;
    uv_timer_start(&s->heartbeat, sse_heartbeat, api->config->heartbeat_ms,
                   api->config->heartbeat_ms);
    push_subscribe(api->push, &s->sub);

    http_prepare(req, 200);
    /* http_prepare set JSON; an event stream is text/event-stream. */
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE,
                   H2O_STRLIT("text/event-stream"), 1);
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, H2O_STRLIT("no-cache"),
                   1);
    h2o_start_response(req, &s->generator);
    /* Send the headers (and any backlog) at once so the client sees the
     * stream open. */
    s->out.len = 0;
    while (s->out.len == 0 && !s->sub.waiting) {
        push_pull(&s->sub, &s->out);
    }
    if (s->out.len == 0) {
        buf_append(&s->out, ": open\n\n", 8);
    }
    sse_send(s);
}

void api_stream_key(struct api *api, h2o_req_t *req, struct push_sub *sub)
{
    char authorization[HTTP_AUTH_HEADER_MAX];
    sub->key_id[0] = '\0';
    if (http_header(req, "authorization", authorization, sizeof authorization) == 1 &&
        !peer_http_is_signature(authorization)) {
        auth_scope(api->auth, authorization, sub->key_id, sizeof sub->key_id);
    }
}
