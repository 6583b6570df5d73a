/* GET /api_v2/events/ws: the event stream over a WebSocket (h2o + wslay),
 * one text frame per event. The client may send {"Ack": n} text frames when
 * it follows a durable subscription; acks are batched into one
 * subscription.Ack log entry at a time, so a fast consumer does not cost an
 * entry per event. Flow control: a batch is pulled from the push hub only
 * while wslay holds less than WS_QUEUE_BYTES unsent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H2O_USE_LIBUV 1
#include <h2o/websocket.h>

#include "api.h"
#include "commands.pb-c.h"
#include "config.h"
#include "fsm.h"
#include "log.h"
#include "push.h"
#include "retention.h"
#include "submit.h"

#define WS_QUEUE_BYTES (256 * 1024)
#define WS_RETRY_MS 10
#define WS_ACK_FLUSH_MS 200
#define WS_CLOSE_GONE 4410 /* private-use close code: events were pruned */
#define WS_GONE_LINGER_MS 30000
#define WS_MAX_CLIENT_MESSAGE (64 * 1024) /* bytes; a longer one closes with 1009 */

struct ws_stream {
    h2o_websocket_conn_t *conn;
    struct api *api;
    struct push_sub sub;
    struct buf out;
    uv_timer_t timer; /* pump retries and pings */
    uv_timer_t ack_timer;
    uint64_t last_ping;
    char subscription[128];
    uint64_t acked;    /* highest Ack received */
    uint64_t ack_sent; /* highest Ack submitted to the log */
    int ack_in_flight;
    int closed;
    int gone; /* closing with WS_CLOSE_GONE */
    int handles_open;
};

static void ws_frame(struct buf *out, uint64_t seq, const char *type, const char *json, size_t len)
{
    (void)seq;
    (void)type;
    buf_append(out, json, len);
    buf_append(out, "\n", 1); /* event JSON never holds a raw newline */
}

static void ws_free_handle(uv_handle_t *h)
{
    struct ws_stream *w = h->data;
    if (--w->handles_open == 0 && !w->ack_in_flight) {
        buf_free(&w->out);
        free(w);
    }
}

static void ws_close(struct ws_stream *w)
{
    if (w->closed) {
        return;
    }
    w->closed = 1;
    push_unsubscribe(&w->sub);
    if (w->conn != NULL) {
        h2o_websocket_close(w->conn);
        w->conn = NULL;
    }
    uv_timer_stop(&w->timer);
    uv_timer_stop(&w->ack_timer);
    uv_close((uv_handle_t *)&w->timer, ws_free_handle);
    uv_close((uv_handle_t *)&w->ack_timer, ws_free_handle);
}

static void ws_timer_cb(uv_timer_t *t);
static void ack_flush(uv_timer_t *t);

/* Retention pruned events this subscriber has not read: never skip it
 * ahead. The socket closes with code WS_CLOSE_GONE and the oldest kept Seq
 * (an SSE stream ends with `event: gone`; a reconnect from the same cursor
 * gets 410). */
static void ws_close_with(struct ws_stream *w, uint16_t code, const char *reason, int n)
{
    push_unsubscribe(&w->sub);
    w->gone = 1;
    wslay_event_queue_close(w->conn->ws_ctx, code, (const uint8_t *)reason, (size_t)n);
    h2o_websocket_proceed(w->conn);
    /* the client answers the close; one that does not is closed on */
    uv_timer_start(&w->timer, ws_timer_cb, WS_GONE_LINGER_MS, 0);
}

static void ws_gone(struct ws_stream *w)
{
    char reason[64];
    int n = snprintf(reason, sizeof reason, "{\"Code\":\"gone\",\"OldestSeq\":%llu}",
                     (unsigned long long)w->api->retention->oldest_seq);
    ws_close_with(w, WS_CLOSE_GONE, reason, n);
}

/* The key it was opened with was removed: 1008, policy violation. */
static void ws_revoked(struct push_sub *sub)
{
    static const char reason[] =
        "{\"Code\":\"unauthorized\",\"Error\":\"the API key was removed\"}";
    struct ws_stream *w = sub->data;
    if (!w->closed && !w->gone && w->conn != NULL) {
        ws_close_with(w, 1008, reason, (int)sizeof reason - 1);
    }
}

static void ws_pump(struct ws_stream *w)
{
    if (w->closed || w->gone) {
        return;
    }
    if (w->conn->sock == NULL) {
        /* the 101 response is still on its way: h2o hands the socket over
         * once it is written */
        uv_timer_start(&w->timer, ws_timer_cb, WS_RETRY_MS, 0);
        return;
    }
    if (retention_pruned_after(w->api->retention, w->sub.cursor)) {
        ws_gone(w);
        return;
    }
    while (wslay_event_get_queued_msg_length(w->conn->ws_ctx) < WS_QUEUE_BYTES) {
        const char *p, *end, *nl;
        w->out.len = 0;
        while (w->out.len == 0 && !w->sub.waiting) {
            push_pull(&w->sub, &w->out);
        }
        if (w->out.len == 0) {
            break; /* caught up: the hub wakes us */
        }
        for (p = w->out.data, end = p + w->out.len; p < end; p = nl + 1) {
            struct wslay_event_msg msg;
            nl = memchr(p, '\n', (size_t)(end - p));
            msg.opcode = WSLAY_TEXT_FRAME;
            msg.msg = (const uint8_t *)p;
            msg.msg_length = (size_t)(nl - p);
            wslay_event_queue_msg(w->conn->ws_ctx, &msg);
        }
    }
    h2o_websocket_proceed(w->conn);
    if (!w->sub.waiting) {
        /* more to send once the socket drains */
        uv_timer_start(&w->timer, ws_timer_cb, WS_RETRY_MS, 0);
    } else {
        uv_timer_start(&w->timer, ws_timer_cb, w->api->config->heartbeat_ms, 0);
    }
}

static void ws_timer_cb(uv_timer_t *t)
{
    struct ws_stream *w = t->data;
    uint64_t now = util_mono_ms();
    if (w->closed) {
        return;
    }
    if (w->gone) {
        ws_close(w); /* the client did not answer the close in time */
        return;
    }
    if (w->conn->sock != NULL && now - w->last_ping >= w->api->config->heartbeat_ms) {
        struct wslay_event_msg ping = {WSLAY_PING, (const uint8_t *)"", 0};
        w->last_ping = now;
        wslay_event_queue_msg(w->conn->ws_ctx, &ping);
    }
    ws_pump(w);
}

static void ws_wake(struct push_sub *sub)
{
    ws_pump(sub->data);
}

static void ws_end(struct push_sub *sub)
{
    ws_close(sub->data);
}

static void ack_done(void *data, const struct submit_result *r)
{
    struct ws_stream *w = data;
    w->ack_in_flight = 0;
    if (r->status != 200) {
        log_debug("websocket ack: %d %.*s", r->status, (int)r->len, r->body);
        w->ack_sent = 0; /* retry with the next flush */
    }
    if (w->closed) {
        if (w->handles_open == 0) {
            buf_free(&w->out);
            free(w);
        }
        return;
    }
    if (w->acked > w->ack_sent) {
        uv_timer_start(&w->ack_timer, ack_flush, WS_ACK_FLUSH_MS, 0);
    }
}

static void ack_flush(uv_timer_t *t)
{
    struct ws_stream *w = t->data;
    Varasto__SubscriptionAck msg = VARASTO__SUBSCRIPTION_ACK__INIT;
    if (w->closed || w->ack_in_flight || w->acked <= w->ack_sent) {
        return;
    }
    msg.name = w->subscription;
    msg.seq = w->acked;
    if (submit_message(w->api->submit, "subscription.Ack", &msg.base, ack_done, w) == 0) {
        w->ack_in_flight = 1;
        w->ack_sent = w->acked;
    }
}

static void on_ws_message(h2o_websocket_conn_t *conn, const struct wslay_event_on_msg_recv_arg *arg)
{
    struct ws_stream *w = conn->data;
    cJSON *json, *ack;

    if (arg == NULL) {
        ws_close(w); /* the peer went away: h2o wants h2o_websocket_close */
        return;
    }
    if (arg->opcode != WSLAY_TEXT_FRAME || w->subscription[0] == '\0') {
        return;
    }
    json = cJSON_ParseWithLength((const char *)arg->msg, arg->msg_length);
    ack = cJSON_GetObjectItemCaseSensitive(json, "Ack");
    if (cJSON_IsNumber(ack) && ack->valuedouble >= 0 && ack->valuedouble > (double)w->acked &&
        ack->valuedouble <= (double)w->api->fsm->last_seq) {
        w->acked = (uint64_t)ack->valuedouble;
        if (!uv_is_active((uv_handle_t *)&w->ack_timer)) {
            uv_timer_start(&w->ack_timer, ack_flush, WS_ACK_FLUSH_MS, 0);
        }
    }
    cJSON_Delete(json);
}

void api_events_ws(struct api *api, h2o_req_t *req, char **params)
{
    struct type_filter filter;
    char name[sizeof((struct ws_stream *)0)->subscription];
    const char *client_key;
    struct ws_stream *w;
    uint64_t after;

    (void)params;
    if (h2o_is_websocket_handshake(req, &client_key) != 0 || client_key == NULL) {
        http_reply_error(req, ERR_BAD_REQUEST, "expected a WebSocket handshake");
        return;
    }
    /* Browsers send no Last-Event-ID on a WebSocket: ?after is the cursor. */
    if (api_stream_start(api, req, 0, &filter, &after, name, sizeof name) != 0) {
        return;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        http_reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    memcpy(w->subscription, name, sizeof name);
    w->sub.filter = filter;
    w->acked = w->ack_sent = after;
    w->api = api;
    buf_init(&w->out);
    w->sub.cursor = after;
    w->sub.frame = ws_frame;
    w->sub.wake = ws_wake;
    w->sub.end = ws_end;
    w->sub.revoked = ws_revoked;
    api_stream_key(api, req, &w->sub);
    w->sub.data = w;
    w->last_ping = util_mono_ms();
    uv_timer_init(api->loop, &w->timer);
    uv_timer_init(api->loop, &w->ack_timer);
    w->timer.data = w->ack_timer.data = w;
    w->handles_open = 2;
    w->conn = h2o_upgrade_to_websocket(req, client_key, w, on_ws_message);
    /* SPEC 7.3: wslay buffers a message whole before handing it over; past
     * this it stops reading and closes with 1009 */
    wslay_event_config_set_max_recv_msg_length(w->conn->ws_ctx, WS_MAX_CLIENT_MESSAGE);
    push_subscribe(api->push, &w->sub);
    ws_pump(w);
}
