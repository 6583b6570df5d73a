/* Command forwarding against a minimal HTTP/1.1 server on loopback, both on
 * the test's libuv loop: the reply reaches the callback once, with the
 * leader's index; each request is signed for the receiving process (the
 * first one again once that process has handed out its nonce), and the
 * admin token never goes along; a refused connection and a
 * silent server end in ok = 0; a closed forwarder takes no new posts. Every
 * test runs on its own loop and closes it cleanly. */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <strings.h>
#include <uv.h>

#include "forward.h"
#include "peer_auth.h"
#include "testlib.h"
#include "util.h"

#define GUARD_MS 5000 /* no test waits longer than this for a callback */
#define TOKEN "sekrit-token-of-the-cluster"

static struct peer_keys keys;   /* the cluster's, on every test node */
static struct peer_http sender; /* node 7, the forwarding one */
#define REPLY_BODY "{\"Applied\":true}"

/* ---- the server ---------------------------------------------------------- */

struct conn {
    uv_tcp_t tcp;
    struct server *srv;
    struct buf in;
    struct conn *prev, *next;
};

struct server {
    uv_tcp_t listener;
    int port;
    int answer; /* reply to requests, or read them and stay silent */
    unsigned connections;
    unsigned requests;
    unsigned refused;      /* 401s */
    struct peer_http peer; /* checks signatures as a node would */
    char path[64];
    char auth[320];
    char body[256];
    struct conn *conns;
};

struct write_req {
    uv_write_t req;
    char data[256];
};

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        c->srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    buf_free(&c->in);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
    }
}

static void written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

/* The value of header @name in the head [p, end), copied to @out. */
static void header_value(const char *p, const char *end, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    out[0] = '\0';
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) {
            eol = end;
        }
        if ((size_t)(eol - p) > n + 1 && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            size_t len;
            while (*v == ' ') {
                v++;
            }
            len = (size_t)(eol - v);
            if (len > 0 && v[len - 1] == '\r') {
                len--;
            }
            if (len >= size) {
                len = size - 1;
            }
            memcpy(out, v, len);
            out[len] = '\0';
        }
        p = eol + 1;
    }
}

/* Serve every whole request in c->in. */
static void serve(struct conn *c)
{
    struct server *s = c->srv;
    for (;;) {
        const char *head = c->in.data;
        const char *end = c->in.len > 0 ? memmem(head, c->in.len, "\r\n\r\n", 4) : NULL;
        char value[32];
        size_t head_len, body_len, total;
        if (end == NULL) {
            return;
        }
        head_len = (size_t)(end - head) + 4;
        header_value(head, end, "Content-Length", value, sizeof value);
        body_len = (size_t)strtoul(value, NULL, 10);
        total = head_len + body_len;
        if (c->in.len < total) {
            return;
        }
        s->requests++;
        {
            const char *sp = memchr(head, ' ', head_len);
            const char *sp2 = sp ? memchr(sp + 1, ' ', (size_t)(end - sp - 1)) : NULL;
            size_t n = sp && sp2 ? (size_t)(sp2 - sp - 1) : 0;
            if (n >= sizeof s->path) {
                n = sizeof s->path - 1;
            }
            memcpy(s->path, sp ? sp + 1 : "", n);
            s->path[n] = '\0';
        }
        header_value(head, end, "Authorization", s->auth, sizeof s->auth);
        {
            size_t n = body_len < sizeof s->body - 1 ? body_len : sizeof s->body - 1;
            memcpy(s->body, head + head_len, n);
            s->body[n] = '\0';
        }
        if (s->answer) {
            struct write_req *w = malloc(sizeof *w);
            uv_buf_t b;
            uint64_t from = 0;
            enum peer_verdict v = peer_http_verify(&s->peer, s->auth, "POST", s->path,
                                                   head + head_len, body_len, &from);
            int n;
            if (v == PEER_OK && from == 7) {
                n = snprintf(w->data, sizeof w->data,
                             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "X-Varasto-Index: 42\r\nContent-Length: %zu\r\n\r\n%s",
                             strlen(REPLY_BODY), REPLY_BODY);
            } else {
                s->refused++;
                n = snprintf(w->data, sizeof w->data,
                             "HTTP/1.1 401 Unauthorized\r\n%s%s%sContent-Length: 2\r\n\r\n{}",
                             v == PEER_STALE ? "X-Varasto-Peer-Nonce: " : "",
                             v == PEER_STALE ? s->peer.nonce : "", v == PEER_STALE ? "\r\n" : "");
            }
            b = uv_buf_init(w->data, (unsigned)n);
            if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, written) != 0) {
                free(w);
            }
        }
        memmove(c->in.data, c->in.data + total, c->in.len - total);
        c->in.len -= total;
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static char slab[65536];
    (void)h;
    (void)suggested;
    *b = uv_buf_init(slab, sizeof slab);
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = stream->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    buf_append(&c->in, b->base, (size_t)n);
    serve(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct server *s = listener->data;
    struct conn *c;
    if (status != 0) {
        return;
    }
    c = calloc(1, sizeof *c);
    c->srv = s;
    buf_init(&c->in);
    uv_tcp_init(listener->loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    }
    s->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    s->connections++;
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

/* Listen on an ephemeral port of 127.0.0.1. */
static void server_start(struct server *s, uv_loop_t *loop, int answer)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    memset(s, 0, sizeof *s);
    s->answer = answer;
    peer_http_init(&s->peer, &keys, 1);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    CHECK_INT(uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0), 0);
    CHECK_INT(uv_listen((uv_stream_t *)&s->listener, 16, on_connection), 0);
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void server_stop(struct server *s)
{
    struct conn *c;
    uv_close((uv_handle_t *)&s->listener, NULL);
    for (c = s->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
}

/* ---- the loop ------------------------------------------------------------ */

struct result {
    unsigned calls;
    struct forward_reply reply;
    char body[256];
    char error[CURL_ERROR_SIZE];
    uint64_t at; /* uv_now when the callback fired */
    uv_loop_t *loop;
};

static void on_reply(void *data, const struct forward_reply *reply)
{
    struct result *r = data;
    size_t n = reply->len < sizeof r->body - 1 ? reply->len : sizeof r->body - 1;
    r->calls++;
    r->reply = *reply;
    r->at = uv_now(r->loop);
    memcpy(r->body, reply->body ? reply->body : "", reply->body ? n : 0);
    r->body[reply->body ? n : 0] = '\0';
    util_copy(r->error, sizeof r->error, reply->error ? reply->error : "");
    r->reply.body = r->body;
    r->reply.error = reply->error ? r->error : NULL;
}

static int expired;
static void on_guard(uv_timer_t *t)
{
    (void)t;
    expired = 1;
}

/* Run @loop until *@flag is set or @ms pass; returns whether @flag got set. */
static int run_until(uv_loop_t *loop, const unsigned *flag, unsigned ms)
{
    uv_timer_t guard;
    expired = 0;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, on_guard, ms, 0);
    while (*flag == 0 && !expired) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag != 0;
}

static void print_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "  open handle: %s%s\n", uv_handle_type_name(h->type),
            uv_is_closing(h) ? " (closing)" : "");
}

/* forward_close releases curl and closes the forwarder's handles. */
static void forward_release(struct forward *f)
{
    forward_close(f);
}

/* Let close callbacks run, then check libuv's verdict on the loop. */
static void loop_finish(uv_loop_t *loop)
{
    int i, rv;
    for (i = 0; i < 100; i++) {
        if (uv_run(loop, UV_RUN_NOWAIT) == 0) {
            break;
        }
    }
    rv = uv_loop_close(loop);
    CHECK_INT(rv, 0);
    if (rv != 0) {
        uv_walk(loop, print_handle, NULL);
    }
}

/* ---- tests --------------------------------------------------------------- */

static struct peer_keys srv_other_keys;

static void test_reply_reaches_callback_once(void)
{
    uv_loop_t loop;
    struct server srv;
    struct forward f;
    struct result r, r2;
    char addr[32];
    unsigned stop = 0;

    uv_loop_init(&loop);
    server_start(&srv, &loop, 1);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
    CHECK_INT(forward_init(&f, &loop, &sender, NULL), 0);
    memset(&r, 0, sizeof r);
    r.loop = &loop;
    CHECK_INT(forward_post(&f, addr, "/internal/apply", "entry bytes", 11, 2000, on_reply, &r), 0);
    CHECK(run_until(&loop, &r.calls, GUARD_MS));
    CHECK_INT(r.reply.ok, 1);
    CHECK_INT(r.reply.status, 200);
    CHECK_INT(r.reply.index, 42);
    CHECK_INT(r.reply.len, strlen(REPLY_BODY));
    CHECK_STR(r.body, REPLY_BODY);
    CHECK(r.reply.error == NULL);
    /* what the leader received: the request signed without a nonce, its
     * 401 with the nonce, the request again signed for it */
    CHECK_INT(srv.requests, 2);
    CHECK_INT(srv.refused, 1);
    CHECK_STR(srv.path, "/internal/apply");
    CHECK(strncmp(srv.auth, "VarastoPeer 7.", 14) == 0);
    CHECK(strstr(srv.auth, TOKEN) == NULL);
    CHECK(strstr(srv.auth, srv.peer.nonce) != NULL);
    CHECK_STR(srv.body, "entry bytes");
    /* once: nothing more arrives while the loop runs on */
    run_until(&loop, &stop, 100);
    CHECK_INT(r.calls, 1);
    CHECK_INT(f.in_flight, 0);

    /* the next command reuses the persistent connection */
    memset(&r2, 0, sizeof r2);
    r2.loop = &loop;
    CHECK_INT(forward_post(&f, addr, "/internal/barrier", "", 0, 2000, on_reply, &r2), 0);
    CHECK(run_until(&loop, &r2.calls, GUARD_MS));
    CHECK_INT(r2.reply.ok, 1);
    CHECK_STR(srv.path, "/internal/barrier");
    CHECK_INT(srv.requests, 3); /* the nonce is known now: once */
    CHECK_INT(srv.refused, 1);
    CHECK_INT(srv.connections, 1);

    /* another process at that address (a restart): a new nonce, one more try */
    peer_http_init(&srv.peer, &keys, 1);
    memset(&r2, 0, sizeof r2);
    r2.loop = &loop;
    CHECK_INT(forward_post(&f, addr, "/internal/barrier", "x", 1, 2000, on_reply, &r2), 0);
    CHECK(run_until(&loop, &r2.calls, GUARD_MS));
    CHECK_INT(r2.reply.status, 200);
    CHECK_INT(srv.requests, 5);
    CHECK_INT(srv.refused, 2);

    /* a receiver of another cluster key refuses outright: no second try */
    peer_keys_derive(&srv_other_keys, "another-cluster-token-here");
    peer_http_init(&srv.peer, &srv_other_keys, 1);
    memset(&r2, 0, sizeof r2);
    r2.loop = &loop;
    CHECK_INT(forward_post(&f, addr, "/internal/barrier", "y", 1, 2000, on_reply, &r2), 0);
    CHECK(run_until(&loop, &r2.calls, GUARD_MS));
    CHECK_INT(r2.reply.ok, 1);
    CHECK_INT(r2.reply.status, 401);
    CHECK_INT(srv.requests, 6);
    CHECK_INT(r2.calls, 1);

    forward_release(&f);
    server_stop(&srv);
    loop_finish(&loop);
}

static void test_connection_refused(void)
{
    uv_loop_t loop;
    struct server srv;
    struct forward f;
    struct result r;
    char addr[32];

    uv_loop_init(&loop);
    /* a port that was just free, and is closed again */
    server_start(&srv, &loop, 1);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
    server_stop(&srv);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_INT(forward_init(&f, &loop, &sender, NULL), 0);
    memset(&r, 0, sizeof r);
    r.loop = &loop;
    CHECK_INT(forward_post(&f, addr, "/internal/apply", "x", 1, 2000, on_reply, &r), 0);
    CHECK(run_until(&loop, &r.calls, GUARD_MS));
    CHECK_INT(r.calls, 1);
    CHECK_INT(r.reply.ok, 0);
    CHECK(r.reply.error != NULL && r.reply.error[0] != '\0');
    CHECK_INT(f.in_flight, 0);
    forward_release(&f);
    loop_finish(&loop);
}

static void test_silent_server_times_out(void)
{
    uv_loop_t loop;
    struct server srv;
    struct forward f;
    struct result r;
    char addr[32];
    uint64_t start;

    uv_loop_init(&loop);
    server_start(&srv, &loop, 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
    CHECK_INT(forward_init(&f, &loop, &sender, NULL), 0);
    memset(&r, 0, sizeof r);
    r.loop = &loop;
    uv_update_time(&loop);
    start = uv_now(&loop);
    CHECK_INT(forward_post(&f, addr, "/internal/apply", "x", 1, 300, on_reply, &r), 0);
    CHECK(run_until(&loop, &r.calls, GUARD_MS));
    CHECK_INT(r.calls, 1);
    CHECK_INT(r.reply.ok, 0);
    CHECK_CONTAINS(r.reply.error, "timed out");
    /* the request did reach the server, which kept it */
    CHECK_INT(srv.requests, 1);
    /* it waited for the timeout, and not much longer */
    CHECK(r.at - start >= 290);
    CHECK(r.at - start < 2000);
    forward_release(&f);
    server_stop(&srv);
    loop_finish(&loop);
}

/* A node that stops with a transfer in flight: the callback fires once,
 * at once, with ok = 0, and nothing is left open (loop_finish). */
static void test_close_aborts_transfers_in_flight(void)
{
    uv_loop_t loop;
    struct server srv;
    struct forward f;
    struct result r;
    char addr[32];
    unsigned requests = 0;

    uv_loop_init(&loop);
    server_start(&srv, &loop, 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
    CHECK_INT(forward_init(&f, &loop, &sender, NULL), 0);
    memset(&r, 0, sizeof r);
    r.loop = &loop;
    CHECK_INT(forward_post(&f, addr, "/internal/apply", "x", 1, 10000, on_reply, &r), 0);
    while (srv.requests == 0 && requests++ < 1000) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK_INT(srv.requests, 1);
    CHECK_INT(r.calls, 0);
    forward_close(&f);
    CHECK_INT(r.calls, 1);
    CHECK_INT(r.reply.ok, 0);
    CHECK_CONTAINS(r.reply.error, "stopping");
    CHECK_INT(f.in_flight, 0);
    server_stop(&srv);
    loop_finish(&loop);
    CHECK_INT(r.calls, 1);
}

static void test_closed_refuses_posts(void)
{
    uv_loop_t loop;
    struct server srv;
    struct forward f;
    struct result r;
    char addr[32];
    unsigned stop = 0;

    uv_loop_init(&loop);
    server_start(&srv, &loop, 1);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", srv.port);
    CHECK_INT(forward_init(&f, &loop, &sender, NULL), 0);
    forward_close(&f);
    memset(&r, 0, sizeof r);
    r.loop = &loop;
    CHECK_INT(forward_post(&f, addr, "/internal/apply", "x", 1, 2000, on_reply, &r), -1);
    run_until(&loop, &stop, 100);
    CHECK_INT(r.calls, 0);
    CHECK_INT(srv.connections, 0);
    CHECK_INT(f.in_flight, 0);
    forward_release(&f);
    server_stop(&srv);
    loop_finish(&loop);
}

int main(void)
{
    CHECK_INT(peer_keys_derive(&keys, TOKEN), 0);
    peer_http_init(&sender, &keys, 7);
    RUN(test_reply_reaches_callback_once);
    RUN(test_connection_refused);
    RUN(test_silent_server_times_out);
    RUN(test_closed_refuses_posts);
    RUN(test_close_aborts_transfers_in_flight);
    curl_global_cleanup();
    return test_report("forward");
}
