#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth.h"
#include "config.h"
#include "consistency.h"
#include "log.h"
#include "util.h"

/* Where h2o's errordoc filter fetches the body of a 413 it made itself
 * (a body past HTTP_MAX_BODY): our JSON error instead of its plain text. */
#define TOO_LARGE_DOC "/.varasto/413"
static h2o_errordoc_t too_large_doc = {413, {TOO_LARGE_DOC, sizeof TOO_LARGE_DOC - 1}};

/* h2o 2.2.5's errordoc filter has no dispose: its list of documents and
 * their copied URLs outlive h2o_config_dispose. This is that filter's
 * layout (lib/handler/errordoc.c, unchanged since 2015), freed here. */
struct errordoc_filter {
    h2o_filter_t super;
    H2O_VECTOR(h2o_errordoc_t) errordocs;
};

static void errordoc_dispose(h2o_filter_t *filter)
{
    struct errordoc_filter *f = (struct errordoc_filter *)filter;
    size_t i;
    for (i = 0; i < f->errordocs.size; i++) {
        free(f->errordocs.entries[i].url.base);
    }
    free(f->errordocs.entries);
}

static void errordoc_add(h2o_pathconf_t *pathconf)
{
    h2o_errordoc_register(pathconf, &too_large_doc, 1);
    /* h2o_create_filter puts a new filter first */
    pathconf->filters.entries[0]->dispose = errordoc_dispose;
}
/* How long connections may take to finish their responses at shutdown. */
#define HTTP_END_GRACE_MS 1000

/* An accepted connection; h2o owns it, we only track it. */
struct http_conn {
    uv_tcp_t tcp;
    struct http_server *server;
    struct queue link; /* server->conns */
};

struct app_handler {
    h2o_handler_t super;
    struct http_server *server;
};

static struct http_server *server_of(h2o_req_t *req)
{
    return (struct http_server *)((char *)req->conn->ctx - offsetof(struct http_server, ctx));
}

/* ---- req_ref ----------------------------------------------------------- */

static void req_ref_dispose(void *p)
{
    struct req_ref *ref = *(struct req_ref **)p;
    if (ref == NULL) {
        return;
    }
    ref->req = NULL;
    ref->slot = NULL;
    if (ref->on_gone != NULL) {
        ref->on_gone(ref);
    }
}

void req_ref_attach(struct req_ref *ref, h2o_req_t *req)
{
    struct req_ref **slot = h2o_mem_alloc_shared(&req->pool, sizeof *slot, req_ref_dispose);
    *slot = ref;
    ref->slot = slot;
    ref->req = req;
}

h2o_req_t *req_ref_detach(struct req_ref *ref)
{
    h2o_req_t *req = ref->req;
    if (ref->slot != NULL) {
        *ref->slot = NULL;
        ref->slot = NULL;
    }
    ref->req = NULL;
    ref->on_gone = NULL;
    return req;
}

/* ---- responses ------------------------------------------------------------ */

void http_add_header(h2o_req_t *req, const char *name, const char *value)
{
    size_t len = strlen(value);
    char *v = h2o_mem_alloc_pool(&req->pool, len + 1);
    memcpy(v, value, len + 1);
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, v, len);
}

void http_prepare(h2o_req_t *req, int status)
{
    char *seq = h2o_mem_alloc_pool(&req->pool, 24);
    unsigned long long v = *server_of(req)->deps.applied_seq;
    char tmp[24];
    size_t n = 0;

    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : "Error";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (v = 0; v < n; v++) {
        seq[v] = tmp[n - 1 - v];
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-varasto-seq"), 0, NULL, seq,
                          n);
}

void http_send_body(h2o_req_t *req, const char *body, size_t len)
{
    req->res.content_length = len; /* not chunked: fewer bytes and less work */
    h2o_send_inline(req, body, len);
}

void http_reply_json(h2o_req_t *req, int status, const char *body, size_t len)
{
    http_prepare(req, status);
    http_send_body(req, body, len);
}

static void reply_error_va(h2o_req_t *req, enum err_code code, const char *fmt, va_list ap)
{
    char message[512];
    struct buf body;

    vsnprintf(message, sizeof message, fmt, ap);
    buf_init(&body);
    if (err_write_body(&body, code, message, NULL) != 0) {
        http_reply_json(req, err_http_status(code), "{}", 2);
    } else {
        http_reply_json(req, err_http_status(code), body.data, body.len);
    }
    buf_free(&body);
}

void http_reply_error(h2o_req_t *req, enum err_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_error_va(req, code, fmt, ap);
    va_end(ap);
}

void http_reply_unavailable(h2o_req_t *req, const char *message)
{
    http_add_header(req, "retry-after", "1");
    http_reply_error(req, ERR_UNAVAILABLE, "%s", message);
}

/* ---- routing -------------------------------------------------------------------- */

/* A read parked until this node has applied what it asked for. */
struct parked_read {
    struct req_ref ref;
    struct http_server *server;
    const struct http_route *route;
    char *params[HTTP_MAX_PARAMS]; /* in the request's pool */
    unsigned long long min_seq;
    struct consistency_wait *wait;
};

static void parked_read_done(void *data, enum consistency_status status)
{
    struct parked_read *p = data;
    h2o_req_t *req = req_ref_detach(&p->ref);

    if (req == NULL) {
        /* the client is gone */
    } else if (status == CONSISTENCY_READY) {
        p->route->handler(p->server->deps.api, req, p->params);
    } else if (status == CONSISTENCY_TIMEOUT) {
        http_reply_error(req, ERR_TIMEOUT, "timed out waiting for this node to apply seq %llu",
                         p->min_seq);
    } else {
        http_reply_unavailable(req, "could not confirm leadership; retry");
    }
    free(p);
}

static void parked_read_gone(struct req_ref *ref)
{
    struct parked_read *p = (struct parked_read *)ref;
    consistency_cancel(p->wait);
    free(p);
}

/* Consistency options of a read: min_seq and consistency=linearizable. */
static void dispatch_read(struct http_server *s, h2o_req_t *req, const struct http_route *route,
                          char **params)
{
    unsigned long long min_seq = 0;
    char consistency[32];
    struct parked_read *p;
    int linearizable, rv;

    rv = http_u64_param(req, "min_seq", "x-varasto-min-seq", &min_seq);
    if (rv < 0) {
        http_reply_error(req, ERR_BAD_REQUEST, "min_seq must be a non-negative integer");
        return;
    }
    rv = http_query(req, "consistency", consistency, sizeof consistency);
    if (rv < 0 || (rv == 1 && strcmp(consistency, "linearizable") != 0 &&
                   strcmp(consistency, "local") != 0)) {
        http_reply_error(req, ERR_BAD_REQUEST, "consistency must be 'linearizable' or 'local'");
        return;
    }
    linearizable = rv == 1 && strcmp(consistency, "linearizable") == 0;
    if (consistency_ready(s->deps.reads, min_seq, linearizable)) {
        route->handler(s->deps.api, req, params); /* no wait: nothing to allocate */
        return;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        http_reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    p->server = s;
    p->route = route;
    memcpy(p->params, params, sizeof p->params);
    p->min_seq = min_seq;
    switch (
        consistency_start(s->deps.reads, min_seq, linearizable, parked_read_done, p, &p->wait)) {
    case CONSISTENCY_READY:
        free(p);
        route->handler(s->deps.api, req, params);
        return;
    case CONSISTENCY_WAITING:
        req_ref_attach(&p->ref, req);
        p->ref.on_gone = parked_read_gone;
        return;
    case CONSISTENCY_NO_LEADER:
        free(p);
        http_reply_unavailable(req, "no leader is reachable for a linearizable read");
        return;
    case CONSISTENCY_NO_MEMORY:
        free(p);
        http_reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    default:
        free(p);
        http_reply_unavailable(req, "could not confirm leadership; retry");
        return;
    }
}

/* Whether @req carries a valid signature of another node (@authorization);
 * if not, it has been answered: a signature for another process at this
 * address gets this one's nonce, to sign again with (peer_auth.h). */
static int peer_request_valid(struct http_server *s, h2o_req_t *req, const char *authorization)
{
    char *method = h2o_mem_alloc_pool(&req->pool, req->method.len + 1);
    char *path = h2o_mem_alloc_pool(&req->pool, req->path.len + 1);
    uint64_t from;
    enum peer_verdict v;

    memcpy(method, req->method.base, req->method.len);
    method[req->method.len] = '\0';
    memcpy(path, req->path.base, req->path.len);
    path[req->path.len] = '\0';
    v = peer_http_verify(&s->deps.auth->peer, authorization, method, path, req->entity.base,
                         req->entity.len, &from);
    if (v == PEER_OK) {
        return 1;
    }
    if (v == PEER_STALE) {
        http_add_header(req, "x-varasto-peer-nonce", s->deps.auth->peer.nonce);
        http_reply_error(req, ERR_UNAUTHORIZED,
                         "signed for another process; sign again with the nonce given");
    } else {
        http_reply_error(req, ERR_UNAUTHORIZED, "not a valid signature of another node");
    }
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct http_server *s = ((struct app_handler *)self)->server;
    if (h2o_memis(req->path.base, req->path.len, H2O_STRLIT(TOO_LARGE_DOC))) {
        http_reply_error(req, ERR_TOO_LARGE, "request body over %d bytes", HTTP_MAX_BODY);
        return 0;
    }
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char *params[HTTP_MAX_PARAMS] = {NULL, NULL};
    char authorization[HTTP_AUTH_HEADER_MAX];
    const struct http_route *route = NULL;
    int path_known = 0, has_auth, is_peer = 0;
    size_t i;

    for (i = 0; i < s->deps.n_routes; i++) {
        int m = http_route_match(&req->pool, s->deps.routes[i].pattern, req->path.base, path_len,
                                 params);
        if (m < 0) {
            http_reply_error(req, ERR_BAD_REQUEST,
                             "a path segment is malformed, holds NUL or is not UTF-8");
            return 0;
        }
        if (m == 0) {
            continue;
        }
        path_known = 1;
        if (h2o_memis(req->method.base, req->method.len, s->deps.routes[i].method,
                      strlen(s->deps.routes[i].method))) {
            route = &s->deps.routes[i];
            break;
        }
    }
    if (route == NULL) {
        http_reply_error(req, ERR_NOT_FOUND,
                         path_known ? "method not allowed on this path" : "unknown path");
        return 0;
    }
    has_auth = http_header(req, "authorization", authorization, sizeof authorization) == 1;
    if (has_auth && peer_http_is_signature(authorization)) {
        if (!peer_request_valid(s, req, authorization)) {
            return 0;
        }
        is_peer = 1;
    }
    if (route->peer && !is_peer) {
        http_reply_error(req, ERR_UNAUTHORIZED,
                         "internal endpoints take only another node's signature");
        return 0;
    }
    if (!route->public_ && !is_peer) {
        enum auth_scope scope = auth_scope(s->deps.auth, has_auth ? authorization : NULL, NULL, 0);
        int needed = route->scope_of != NULL ? route->scope_of(params)
                     : h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ? AUTH_READ
                                                                                       : AUTH_WRITE;
        if (scope == AUTH_NONE) {
            http_reply_error(req, ERR_UNAUTHORIZED, "missing or invalid bearer token");
            return 0;
        }
        if ((int)scope < needed) {
            http_reply_error(req, ERR_FORBIDDEN,
                             "this API key's scope (%s) does not allow this request (it needs %s)",
                             auth_scope_name(scope), auth_scope_name((enum auth_scope)needed));
            return 0;
        }
    }
    if (route->read) {
        dispatch_read(s, req, route, params);
    } else {
        route->handler(s->deps.api, req, params);
    }
    return 0;
}

static void finish_shutdown(uv_timer_t *t);

static void conn_closed(uv_handle_t *h)
{
    struct http_conn *c = (struct http_conn *)h;
    struct http_server *s = c->server;
    if (!queue_empty(&c->link)) {
        queue_remove(&c->link);
        s->n_conns--;
    }
    free(c);
    if (s->ending && queue_empty(&s->conns)) {
        uv_timer_start(&s->finish, finish_shutdown, 0, 0);
    }
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    struct http_conn *c;
    h2o_socket_t *sock;

    if (status != 0) {
        return;
    }
    c = h2o_mem_alloc(sizeof *c);
    c->server = s;
    queue_init(&c->link);
    uv_tcp_init(listener->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    if (s->deps.max_connections != 0 && s->n_conns >= s->deps.max_connections) {
        /* SPEC 7.3: past the cap a new connection is closed at once */
        if (s->refused++ % 1000 == 0) {
            log_warn("%u client connections open: closing new ones (--max-connections)",
                     s->n_conns);
        }
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    queue_insert_tail(&s->conns, &c->link);
    s->n_conns++;
    sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, conn_closed);
    h2o_accept(&s->accept_ctx, sock);
}

int http_start(struct http_server *s, uv_loop_t *loop, const char *addr,
               const struct http_deps *deps)
{
    h2o_hostconf_t *hostconf;
    h2o_pathconf_t *pathconf;
    struct app_handler *handler;
    struct sockaddr_in sin;
    char host[CONFIG_ADDR_MAX];
    int port, rv;

    memset(s, 0, sizeof *s);
    s->deps = *deps;
    queue_init(&s->conns);
    if (config_split_addr(addr, host, &port) != 0 || uv_ip4_addr(host, port, &sin) != 0) {
        snprintf(s->errmsg, sizeof s->errmsg, "--http: '%s' is not an IPv4 HOST:PORT", addr);
        return ERR_UNAVAILABLE;
    }
    h2o_config_init(&s->config);
    /* h2o refuses a body past the limit as soon as it knows (a
     * Content-Length over it, before reading any; a chunked one once it
     * passes), with a plain-text 413 that errordoc turns into ours */
    s->config.max_request_entity_size = HTTP_MAX_ENTITY;
    /* SPEC 7.2: cleartext is HTTP/1.1 only (no Upgrade: h2c, no prior
     * knowledge); HTTP/2 comes with TLS, by ALPN */
    s->config.http1.upgrade_to_http2 = 0;
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("varasto"));
    hostconf = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(hostconf, "/", 0);
    errordoc_add(pathconf);
    errordoc_add(&hostconf->fallback_path);
    handler = (struct app_handler *)h2o_create_handler(pathconf, sizeof *handler);
    handler->super.on_req = on_req;
    handler->server = s;
    h2o_context_init(&s->ctx, loop, &s->config);
    s->started = 1;
    uv_timer_init(loop, &s->finish);
    s->finish.data = s;
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;
    if (deps->ssl_ctx != NULL) {
        /* SPEC 7.2: HTTP/2 and HTTP/1.1 by ALPN, nothing in cleartext */
        h2o_ssl_register_alpn_protocols(deps->ssl_ctx, h2o_alpn_protocols);
        s->accept_ctx.ssl_ctx = deps->ssl_ctx;
    }

    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    rv = uv_tcp_bind(&s->listener, (struct sockaddr *)&sin, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&s->listener, 1024, on_accept);
    }
    if (rv != 0) {
        snprintf(s->errmsg, sizeof s->errmsg, "--http %s: %s", addr, uv_strerror(rv));
        uv_close((uv_handle_t *)&s->listener, NULL);
        return ERR_UNAVAILABLE;
    }
    s->listening = 1;
    return 0;
}

void http_stop_listening(struct http_server *s)
{
    if (s->listening) {
        s->listening = 0;
        uv_close((uv_handle_t *)&s->listener, NULL);
    }
}

void http_request_shutdown(struct http_server *s)
{
    if (s->started) {
        h2o_context_request_shutdown(&s->ctx);
    }
}

static void finish_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    if (s->shutdown_cb != NULL) {
        s->shutdown_cb(s);
    }
}

/* Whether h2o still has a deferred callback due (h2o_context_dispose
 * requires every timeout list to be empty). */
static int h2o_busy(h2o_context_t *ctx)
{
    h2o_timeout_t *lists[] = {&ctx->zero_timeout,
                              &ctx->one_sec_timeout,
                              &ctx->hundred_ms_timeout,
                              &ctx->handshake_timeout,
                              &ctx->http1.req_timeout,
                              &ctx->http2.idle_timeout,
                              &ctx->http2.graceful_shutdown_timeout,
                              &ctx->proxy.io_timeout};
    size_t i;
    for (i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        if (!h2o_linklist_is_empty(&lists[i]->_entries)) {
            return 1;
        }
    }
    return 0;
}

/* Shut down @how (SHUT_RD, SHUT_RDWR) on every connection's socket. */
static void shutdown_all(struct http_server *s, int how)
{
    struct queue *q;
    for (q = s->conns.next; q != &s->conns; q = q->next) {
        struct http_conn *c = QUEUE_DATA(q, struct http_conn, link);
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
            shutdown(fd, how);
        }
    }
}

/* Past the grace period, or once no connection is left. A connection
 * still open then has a response its client does not read (a stalled
 * stream): shutting down the writing side too makes h2o's pending write
 * fail, and h2o closes it. With none left, h2o's context can go once its
 * deferred callbacks have run (a timer callback, outside h2o's own call
 * stack). */
static void finish_shutdown(uv_timer_t *t)
{
    struct http_server *s = t->data;
    if (!queue_empty(&s->conns)) {
        shutdown_all(s, SHUT_RDWR);
        return; /* the last connection's close comes back here */
    }
    if (s->started && h2o_busy(&s->ctx)) {
        uv_timer_start(&s->finish, finish_shutdown, 1, 0);
        return;
    }
    if (s->started) {
        s->started = 0;
        h2o_context_dispose(&s->ctx);
        h2o_config_dispose(&s->config);
    }
    uv_close((uv_handle_t *)&s->finish, finish_closed);
}

void http_shutdown(struct http_server *s, void (*cb)(struct http_server *s))
{
    s->ending = 1;
    s->shutdown_cb = cb;
    shutdown_all(s, SHUT_RD);
    uv_timer_start(&s->finish, finish_shutdown, queue_empty(&s->conns) ? 0 : HTTP_END_GRACE_MS, 0);
}
