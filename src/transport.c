#include "transport.h"

#include <stdlib.h>
#include <string.h>

struct connect_req {
    struct raft_uv_connect inner;
    struct raft_uv_connect *outer;
    raft_uv_connect_cb cb;
};

static void no_delay(struct uv_stream_s *stream)
{
    if (stream != NULL && stream->type == UV_TCP) {
        uv_tcp_nodelay((uv_tcp_t *)stream, 1);
    }
}

static int t_init(struct raft_uv_transport *outer, raft_id id, const char *address)
{
    struct transport *t = outer->impl;
    int rv = t->tcp.init(&t->tcp, id, address);
    if (rv != 0) {
        memcpy(outer->errmsg, t->tcp.errmsg, sizeof outer->errmsg);
    }
    return rv;
}

static void t_accepted(struct raft_uv_transport *tcp, raft_id id, const char *address,
                       struct uv_stream_s *stream)
{
    struct transport *t = tcp->data;
    no_delay(stream);
    t->accept_cb(&t->outer, id, address, stream);
}

static int t_listen(struct raft_uv_transport *outer, raft_uv_accept_cb cb)
{
    struct transport *t = outer->impl;
    int rv;
    t->accept_cb = cb;
    rv = t->tcp.listen(&t->tcp, t_accepted);
    if (rv != 0) {
        memcpy(outer->errmsg, t->tcp.errmsg, sizeof outer->errmsg);
    }
    return rv;
}

static void t_connected(struct raft_uv_connect *inner, struct uv_stream_s *stream, int status)
{
    struct connect_req *req = inner->data;
    struct raft_uv_connect *outer = req->outer;
    raft_uv_connect_cb cb = req->cb;
    free(req);
    if (status == 0) {
        no_delay(stream);
    }
    cb(outer, stream, status);
}

static int t_connect(struct raft_uv_transport *outer, struct raft_uv_connect *out_req, raft_id id,
                     const char *address, raft_uv_connect_cb cb)
{
    struct transport *t = outer->impl;
    struct connect_req *req = calloc(1, sizeof *req);
    int rv;
    if (req == NULL) {
        return RAFT_NOMEM;
    }
    req->inner.data = req;
    req->outer = out_req;
    req->cb = cb;
    rv = t->tcp.connect(&t->tcp, &req->inner, id, address, t_connected);
    if (rv != 0) {
        memcpy(outer->errmsg, t->tcp.errmsg, sizeof outer->errmsg);
        free(req);
    }
    return rv;
}

static void t_tcp_closed(struct raft_uv_transport *tcp)
{
    struct transport *t = tcp->data;
    if (t->close_cb != NULL) {
        t->close_cb(&t->outer);
    }
}

static void t_close(struct raft_uv_transport *outer, raft_uv_transport_close_cb cb)
{
    struct transport *t = outer->impl;
    t->close_cb = cb;
    t->tcp.close(&t->tcp, t_tcp_closed);
}

int transport_init(struct transport *t, uv_loop_t *loop)
{
    int rv;
    memset(t, 0, sizeof *t);
    /* raft 0.22 refuses a transport whose version is unset (raft_uv_tcp_init
     * checks it is 1 before it starts, raft_uv_init that it is not 0). */
    t->tcp.version = 1;
    rv = raft_uv_tcp_init(&t->tcp, loop);
    if (rv != 0) {
        return rv;
    }
    t->tcp.data = t;
    t->outer.version = 1;
    t->outer.impl = t;
    t->outer.init = t_init;
    t->outer.listen = t_listen;
    t->outer.connect = t_connect;
    t->outer.close = t_close;
    return 0;
}

void transport_close(struct transport *t)
{
    raft_uv_tcp_close(&t->tcp);
}
