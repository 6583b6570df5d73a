#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "log.h"
#include "node.h"

/* h2o's own limit sits above ours so that bodies between 1 MiB and this get
 * our JSON 413 from the handler rather than h2o's plain-text one. */
#define H2O_ENTITY_LIMIT (8 * 1024 * 1024)
#define HTTP_SEGMENT_MAX 512

static const struct http_route routes[] = {
    {"POST", "/command/*", api_command, 0, 0},
    {"POST", "/api_v2/collections/*/changesets", api_changeset, 0, 0},
    {"GET", "/api_v2/directories/*", api_directory_get, 0, 1},
    {"GET", "/api_v2/collections/*", api_collection_get, 0, 1},
    {"GET", "/api_v2/events", api_events_page, 0, 1},
    {"GET", "/api_v2/events/stream", api_events_stream, 0, 0},
    {"GET", "/api_v2/events/ws", api_events_ws, 0, 0},
    {"GET", "/api_v2/health", api_health, 1, 0},
    {"GET", "/api_v2/cluster", api_cluster, 0, 0},
    {"GET", "/api_v2/subscriptions", api_subscriptions, 0, 1},
    {"GET", "/api_v2/nodes", api_nodes, 0, 0},
    /* public_: it checks for the cluster token itself (not API keys) */
    {"POST", "/internal/apply", api_internal_apply, 1, 0},
    {"POST", "/internal/barrier", api_internal_barrier, 1, 0},
};

struct app_handler {
    h2o_handler_t super;
    struct http_server *server;
};

/* A request parked until the node applies a seq, or until a barrier. */
struct http_wait {
    struct req_ref ref;
    struct http_server *server;
    const struct http_route *route;
    char *params[HTTP_MAX_PARAMS];
    unsigned long long min_seq;
    unsigned long long min_index; /* a follower's read index */
    uv_timer_t timer;
    int barrier_pending;
    int timer_open;
    int finished;
    struct http_wait *prev, *next;
};

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

void http_prepare(struct node *node, h2o_req_t *req, int status)
{
    char *seq = h2o_mem_alloc_pool(&req->pool, 24);
    unsigned long long v = node->fsm.last_seq;
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
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-varasto-seq"), 0, NULL,
                          seq, n);
}

void http_send_body(h2o_req_t *req, const char *body, size_t len)
{
    req->res.content_length = len; /* not chunked: fewer bytes and less work */
    h2o_send_inline(req, body, len);
}

void http_reply_json(struct node *node, h2o_req_t *req, int status, const char *body, size_t len)
{
    http_prepare(node, req, status);
    http_send_body(req, body, len);
}

static void reply_error_va(struct node *node, h2o_req_t *req, enum err_code code,
                           const char *fmt, va_list ap)
{
    char message[512];
    cJSON *o = cJSON_CreateObject();
    char *text;

    vsnprintf(message, sizeof message, fmt, ap);
    cJSON_AddStringToObject(o, "Error", message);
    cJSON_AddStringToObject(o, "Code", err_code_string(code));
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    http_reply_json(node, req, err_http_status(code), text ? text : "{}",
                    text ? strlen(text) : 2);
    free(text);
}

void http_reply_error(struct node *node, h2o_req_t *req, enum err_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_error_va(node, req, code, fmt, ap);
    va_end(ap);
}

void http_reply_unavailable(struct node *node, h2o_req_t *req, const char *message)
{
    http_add_header(req, "retry-after", "1");
    http_reply_error(node, req, ERR_UNAVAILABLE, "%s", message);
}

/* ---- request helpers ---------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Percent-decode @len bytes of @src into @out; '+' is a space in queries. */
static int url_decode(const char *src, size_t len, char *out, size_t size, int plus_is_space)
{
    size_t i, o = 0;
    for (i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len) {
                return -1;
            }
            hi = hexval(src[i + 1]);
            lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (o + 1 >= size || c == '\0') {
            return -1;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

int http_query(h2o_req_t *req, const char *name, char *out, size_t size)
{
    const char *p, *end;
    size_t nlen = strlen(name);

    if (req->query_at == SIZE_MAX) {
        return 0;
    }
    p = req->path.base + req->query_at + 1;
    end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : stop;
            return url_decode(v, (size_t)(stop - v), out, size, 1) == 0 ? 1 : -1;
        }
        p = stop + 1;
    }
    return 0;
}

int http_header(h2o_req_t *req, const char *name, char *out, size_t size)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    h2o_iovec_t v;
    if (i < 0) {
        return 0;
    }
    v = req->headers.entries[i].value;
    if (v.len + 1 > size) {
        return -1;
    }
    memcpy(out, v.base, v.len);
    out[v.len] = '\0';
    return 1;
}

int http_u64_param(h2o_req_t *req, const char *qname, const char *hname,
                   unsigned long long *out)
{
    char text[32];
    char *end;
    int rv = 0;

    if (hname != NULL) {
        rv = http_header(req, hname, text, sizeof text);
    }
    if (rv == 0 && qname != NULL) {
        rv = http_query(req, qname, text, sizeof text);
    }
    if (rv <= 0) {
        return rv;
    }
    if (text[0] < '0' || text[0] > '9') {
        return -1;
    }
    *out = strtoull(text, &end, 10);
    return *end == '\0' ? 1 : -1;
}

/* ---- routing -------------------------------------------------------------------- */

/* Match @path (without query) against @pattern; fill @params from the pool. */
static int route_match(h2o_req_t *req, const char *pattern, const char *path, size_t len,
                       char **params)
{
    const char *p = path, *end = path + len;
    unsigned n = 0;

    while (*pattern != '\0') {
        if (*pattern == '*') {
            const char *slash = memchr(p, '/', (size_t)(end - p));
            const char *stop = slash ? slash : end;
            char seg[HTTP_SEGMENT_MAX];
            size_t l;
            if (stop == p || n == HTTP_MAX_PARAMS ||
                url_decode(p, (size_t)(stop - p), seg, sizeof seg, 0) != 0) {
                return 0;
            }
            l = strlen(seg);
            params[n] = h2o_mem_alloc_pool(&req->pool, l + 1);
            memcpy(params[n], seg, l + 1);
            n++;
            p = stop;
            pattern++;
            continue;
        }
        if (p == end || *p != *pattern) {
            return 0;
        }
        p++;
        pattern++;
    }
    return p == end;
}

static void run_route(struct node *node, h2o_req_t *req, const struct http_route *route,
                      char **params)
{
    route->handler(node, req, params);
}

static void wait_release(struct http_wait *w);
static void wait_finish(struct http_wait *w, int run);

static void wait_finish(struct http_wait *w, int run)
{
    struct http_server *s = w->server;
    if (w->finished) {
        return;
    }
    w->finished = 1;
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else if (s->waits == w) {
        s->waits = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    }
    w->prev = w->next = NULL;
    {
        h2o_req_t *req = req_ref_detach(&w->ref);
        if (req == NULL) {
            /* the client is gone */
        } else if (run == 1) {
            run_route(s->node, req, w->route, w->params);
        } else if (run == 0) {
            http_reply_error(s->node, req, ERR_TIMEOUT,
                             "timed out waiting for this node to apply seq %llu", w->min_seq);
        } else {
            http_reply_unavailable(s->node, req, "could not confirm leadership; retry");
        }
    }
    wait_release(w);
}

static void wait_timer_closed(uv_handle_t *h)
{
    struct http_wait *w = h->data;
    w->timer_open = 0;
    wait_release(w);
}

/* Free once neither the timer nor a barrier still points at @w. */
static void wait_release(struct http_wait *w)
{
    if (!w->finished) {
        return;
    }
    if (w->timer_open == 1) {
        w->timer_open = 2; /* closing */
        uv_close((uv_handle_t *)&w->timer, wait_timer_closed);
        return;
    }
    if (w->timer_open == 0 && !w->barrier_pending) {
        free(w);
    }
}

static void wait_timeout(uv_timer_t *t)
{
    struct http_wait *w = t->data;
    wait_finish(w, 0);
}

static void wait_gone(struct req_ref *ref)
{
    struct http_wait *w = (struct http_wait *)ref;
    wait_finish(w, 2);
}

/* @w's barrier or read index has come back (@ok) with @index: read once
 * the read model holds everything up to it (raft counts deferred entries as
 * applied already), and still honour a min_seq beyond that. */
static void wait_read_index(struct http_wait *w, int ok, uint64_t index)
{
    struct node *node = w->server->node;

    w->barrier_pending = 0;
    if (w->finished) {
        wait_release(w);
        return;
    }
    if (!ok) {
        wait_finish(w, 2);
        return;
    }
    w->min_index = index;
    if (fsm_applied_raft_index(&node->fsm) >= w->min_index && node->fsm.last_seq >= w->min_seq) {
        wait_finish(w, 1);
    }
}

/* The leader's shared barrier (leadership confirmed if @status is 0). */
static void wait_barrier_cb(void *data, int status, uint64_t index)
{
    wait_read_index(data, status == 0, index);
}

static struct http_wait *wait_new(struct http_server *s, h2o_req_t *req,
                                  const struct http_route *route, char **params,
                                  unsigned long long min_seq, unsigned timeout_ms)
{
    struct http_wait *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return NULL;
    }
    w->server = s;
    w->route = route;
    memcpy(w->params, params, sizeof w->params);
    w->min_seq = min_seq;
    req_ref_attach(&w->ref, req);
    w->ref.on_gone = wait_gone;
    uv_timer_init(s->ctx.loop, &w->timer);
    w->timer.data = w;
    w->timer_open = 1;
    uv_timer_start(&w->timer, wait_timeout, timeout_ms, 0);
    w->next = s->waits;
    if (s->waits != NULL) {
        s->waits->prev = w;
    }
    s->waits = w;
    return w;
}

void http_seq_applied(struct http_server *s, unsigned long long seq)
{
    /* raft's count includes barriers and configuration entries, which a
     * read index may point at */
    unsigned long long index = fsm_applied_raft_index(&s->node->fsm);
    struct http_wait *w = s->waits;
    while (w != NULL) {
        struct http_wait *next = w->next;
        if (!w->barrier_pending && w->min_seq <= seq && w->min_index <= index) {
            wait_finish(w, 1);
        }
        w = next;
    }
}

/* A follower's linearizable reads of one loop iteration, waiting for one
 * read index from the leader: asked for after all of them arrived, it
 * covers every write committed before any of them. */
struct read_index_group {
    struct http_server *server;
    struct buf waits; /* struct http_wait pointers, back to back */
    char leader_http[CONFIG_ADDR_MAX];
};

/* The leader answered a read-index request (@reply NULL: it was never
 * sent). */
static void read_index_cb(void *data, const struct forward_reply *reply)
{
    struct read_index_group *g = data;
    int ok = reply != NULL && reply->ok && reply->status == 200 && reply->index != 0;
    struct http_wait **waits = (void *)g->waits.data;
    size_t i, n = g->waits.len / sizeof *waits;

    for (i = 0; i < n; i++) {
        wait_read_index(waits[i], ok, ok ? reply->index : 0);
    }
    buf_free(&g->waits);
    free(g);
}

/* Add @w to this iteration's read-index request to the leader at
 * @http_addr. Returns 0 or -1 (out of memory). */
static int read_index_join(struct http_server *s, struct http_wait *w, const char *http_addr)
{
    struct read_index_group *g = s->read_index;

    if (g != NULL && strcmp(g->leader_http, http_addr) != 0) {
        http_flush(s);
        g = NULL;
    }
    if (g == NULL) {
        g = calloc(1, sizeof *g);
        if (g == NULL) {
            return -1;
        }
        g->server = s;
        buf_init(&g->waits);
        util_copy(g->leader_http, sizeof g->leader_http, http_addr);
        s->read_index = g;
    }
    if (buf_append(&g->waits, &w, sizeof w) != 0) {
        return -1;
    }
    w->barrier_pending = 1;
    return 0;
}

void http_flush(struct http_server *s)
{
    struct read_index_group *g = s->read_index;
    struct node *node = s->node;

    if (g == NULL) {
        return;
    }
    s->read_index = NULL;
    if (forward_post(&node->forward, g->leader_http, "/internal/barrier", "", 0,
                     node->config.min_seq_timeout_ms, read_index_cb, g) != 0) {
        read_index_cb(g, NULL);
    }
}

/* Consistency options of a read: min_seq and consistency=linearizable. */
static void dispatch_read(struct http_server *s, h2o_req_t *req, const struct http_route *route,
                          char **params)
{
    struct node *node = s->node;
    unsigned long long min_seq = 0;
    char consistency[32];
    int linearizable = 0;
    int rv;

    rv = http_u64_param(req, "min_seq", "x-varasto-min-seq", &min_seq);
    if (rv < 0) {
        http_reply_error(node, req, ERR_BAD_REQUEST, "min_seq must be a non-negative integer");
        return;
    }
    rv = http_query(req, "consistency", consistency, sizeof consistency);
    if (rv < 0 || (rv == 1 && strcmp(consistency, "linearizable") != 0 &&
                   strcmp(consistency, "local") != 0)) {
        http_reply_error(node, req, ERR_BAD_REQUEST,
                         "consistency must be 'linearizable' or 'local'");
        return;
    }
    linearizable = rv == 1 && strcmp(consistency, "linearizable") == 0;
    if (!linearizable && min_seq <= node->fsm.last_seq) {
        run_route(node, req, route, params);
        return;
    }
    {
        uint64_t leader = cluster_leader_id(&node->cluster);
        char raft_addr[CONFIG_ADDR_MAX], http_addr[CONFIG_ADDR_MAX];
        int here = cluster_is_leader(&node->cluster);
        if (linearizable && !here &&
            (leader == 0 || !store_node_addresses(&node->store, leader, raft_addr, http_addr,
                                                  sizeof http_addr))) {
            http_reply_unavailable(node, req, "no leader is reachable for a linearizable read");
            return;
        }
        if (linearizable && !here) {
            struct http_wait *w = wait_new(s, req, route, params, min_seq,
                                           node->config.min_seq_timeout_ms);
            if (w == NULL) {
                http_reply_error(node, req, ERR_INTERNAL, "out of memory");
                return;
            }
            if (read_index_join(s, w, http_addr) != 0) {
                wait_finish(w, 2);
            }
            return;
        }
    }
    {
        struct http_wait *w = wait_new(s, req, route, params, min_seq,
                                       node->config.min_seq_timeout_ms);
        if (w == NULL) {
            http_reply_error(node, req, ERR_INTERNAL, "out of memory");
            return;
        }
        if (linearizable) {
            if (cluster_barrier_join(&node->cluster, wait_barrier_cb, w) != 0) {
                wait_finish(w, 2);
                return;
            }
            w->barrier_pending = 1;
        }
    }
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct http_server *s = ((struct app_handler *)self)->server;
    struct node *node = s->node;
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char *params[HTTP_MAX_PARAMS] = {NULL, NULL};
    const struct http_route *route = NULL;
    int path_known = 0;
    size_t i;

    for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!route_match(req, routes[i].pattern, req->path.base, path_len, params)) {
            continue;
        }
        path_known = 1;
        if (h2o_memis(req->method.base, req->method.len, routes[i].method,
                      strlen(routes[i].method))) {
            route = &routes[i];
            break;
        }
    }
    if (route == NULL) {
        http_reply_error(node, req, ERR_NOT_FOUND, path_known ? "method not allowed on this path"
                                                              : "unknown path");
        return 0;
    }
    if (!route->public_ && !node_authorized(node, req)) {
        http_reply_error(node, req, ERR_UNAUTHORIZED, "missing or invalid bearer token");
        return 0;
    }
    if (route->read) {
        dispatch_read(s, req, route, params);
    } else {
        run_route(node, req, route, params);
    }
    return 0;
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    uv_tcp_t *conn;
    h2o_socket_t *sock;

    if (status != 0) {
        return;
    }
    conn = h2o_mem_alloc(sizeof *conn);
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    sock = h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free);
    h2o_accept(&s->accept_ctx, sock);
}

int http_start(struct http_server *s, struct node *node, uv_loop_t *loop, const char *addr,
               char *err, size_t err_size)
{
    h2o_hostconf_t *hostconf;
    h2o_pathconf_t *pathconf;
    struct app_handler *handler;
    struct sockaddr_in sin;
    char host[CONFIG_ADDR_MAX];
    int port, rv;

    memset(s, 0, sizeof *s);
    s->node = node;
    if (config_split_addr(addr, host, &port) != 0 || uv_ip4_addr(host, port, &sin) != 0) {
        snprintf(err, err_size, "--http: '%s' is not an IPv4 HOST:PORT", addr);
        return -1;
    }
    h2o_config_init(&s->config);
    s->config.max_request_entity_size = H2O_ENTITY_LIMIT;
    s->config.server_name = h2o_iovec_init(H2O_STRLIT("varasto"));
    hostconf = h2o_config_register_host(&s->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(hostconf, "/", 0);
    handler = (struct app_handler *)h2o_create_handler(pathconf, sizeof *handler);
    handler->super.on_req = on_req;
    handler->server = s;
    h2o_context_init(&s->ctx, loop, &s->config);
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->config.hosts;

    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    rv = uv_tcp_bind(&s->listener, (struct sockaddr *)&sin, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&s->listener, 1024, on_accept);
    }
    if (rv != 0) {
        snprintf(err, err_size, "--http %s: %s", addr, uv_strerror(rv));
        uv_close((uv_handle_t *)&s->listener, NULL);
        return -1;
    }
    s->listening = 1;
    return 0;
}

void http_stop(struct http_server *s)
{
    if (s->read_index != NULL) {
        struct read_index_group *g = s->read_index;
        s->read_index = NULL;
        read_index_cb(g, NULL);
    }
    while (s->waits != NULL) {
        wait_finish(s->waits, 2);
    }
    if (s->listening) {
        s->listening = 0;
        uv_close((uv_handle_t *)&s->listener, NULL);
    }
}
