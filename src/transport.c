#include "transport.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tls.h"
#include "util.h"

#define WARNINGS_PER_SECOND 10

enum shake_step {
    STEP_START,     /* nothing under way yet */
    STEP_RESOLVE,   /* outgoing: the peer's address */
    STEP_CONNECT,   /* outgoing */
    STEP_TLS,       /* peer TLS: the TLS handshake */
    STEP_HELLO,     /* incoming: reading its fixed part, then the address */
    STEP_CHALLENGE, /* outgoing: reading the acceptor's answer */
    STEP_PROOF,     /* incoming: reading the connector's proof */
    STEP_LAST_WRITE /* outgoing: the proof is on its way */
};

/* One connection being authenticated. Its stream is raft_malloc'd: raft
 * frees it with raft_free once it has closed it. Without TLS the stream is
 * the TCP socket; with it, the plaintext end of a TLS pump (tls.h), which
 * owns the socket. */
struct shake {
    struct queue link;
    struct transport *t;
    int outgoing;
    enum shake_step step;
    uv_stream_t *stream;   /* what the handshake, then raft, reads and writes */
    struct tls_pump *pump; /* TLS: until its handshake ends */
    uv_timer_t timer;
    uv_getaddrinfo_t resolve;
    uv_connect_t connect;
    uv_write_t write;
    struct raft_uv_connect *req; /* outgoing */
    raft_uv_connect_cb cb;
    int status; /* what the connect callback gets */
    int failed;
    struct peer_hello hello;
    uint8_t nonce[PEER_NONCE_BYTES]; /* the acceptor's */
    uint8_t out[PEER_HELLO_MAX];
    uint8_t in[PEER_HELLO_MAX];
    size_t have, need;
    int open; /* handles still to close */
    char peer[80];
};

/* One WARN line per refused peer, at most WARNINGS_PER_SECOND a second (a
 * flood of bad connections must not flood the log); the rest are counted
 * in the next line. */
static void refuse_log(struct transport *t, const struct shake *s, const char *why)
{
    uint64_t second = util_mono_ms() / 1000;
    if (second != t->warn_second) {
        t->warn_second = second;
        t->warned = 0;
    }
    if (t->warned >= WARNINGS_PER_SECOND) {
        t->unlogged++;
        return;
    }
    t->warned++;
    if (t->unlogged > 0) {
        log_warn("refused a raft connection %s %s: %s (and %u more not logged)",
                 s->outgoing ? "to" : "from", s->peer, why, t->unlogged);
        t->unlogged = 0;
    } else {
        log_warn("refused a raft connection %s %s: %s", s->outgoing ? "to" : "from", s->peer, why);
    }
}

static void maybe_closed(struct transport *t)
{
    if (t->closing && !t->listening && queue_empty(&t->shakes) && t->close_cb != NULL) {
        raft_uv_transport_close_cb cb = t->close_cb;
        t->close_cb = NULL;
        cb(&t->outer);
    }
}

static void shake_free(struct shake *s)
{
    struct transport *t = s->t;
    queue_remove(&s->link);
    if (!s->outgoing) {
        t->n_incoming--;
    }
    if (s->outgoing && s->cb != NULL) {
        s->cb(s->req, NULL, s->status);
    }
    free(s);
    maybe_closed(t);
}

static void handle_closed(uv_handle_t *h)
{
    struct shake *s = h->data;
    if (h != (uv_handle_t *)&s->timer) {
        raft_free(h);
    }
    if (--s->open == 0) {
        shake_free(s);
    }
}

/* End a handshake that failed (@why: logged, NULL: not worth a line). */
static void shake_fail(struct shake *s, int status, const char *why)
{
    if (s->failed) {
        return;
    }
    s->failed = 1;
    if (why != NULL) {
        refuse_log(s->t, s, why);
    }
    s->status = status;
    uv_timer_stop(&s->timer);
    if (s->step == STEP_RESOLVE) {
        /* the resolve request ends in resolved(), which frees s */
        uv_cancel((uv_req_t *)&s->resolve);
        return;
    }
    if (s->pump != NULL) {
        tls_pump_close(s->pump);
        s->pump = NULL;
    }
    uv_close((uv_handle_t *)s->stream, handle_closed);
    uv_close((uv_handle_t *)&s->timer, handle_closed);
}

/* The socket is raft's from here on; only the timer is left to close. */
static void shake_done(struct shake *s)
{
    struct transport *t = s->t;
    uv_stream_t *stream = s->stream;
    uv_timer_stop(&s->timer);
    stream->data = NULL;
    s->open = 1;
    if (s->outgoing) {
        raft_uv_connect_cb cb = s->cb;
        s->cb = NULL;
        cb(s->req, stream, 0);
    } else {
        t->accept_cb(&t->outer, s->hello.from, s->hello.address, stream);
    }
    uv_close((uv_handle_t *)&s->timer, handle_closed);
}

static void timed_out(uv_timer_t *timer)
{
    struct shake *s = timer->data;
    shake_fail(s, RAFT_NOCONNECTION, "the handshake did not finish in time");
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct shake *s = h->data;
    (void)suggested;
    /* exactly what the step needs: bytes after the handshake are raft's */
    buf->base = (char *)s->in + s->have;
    buf->len = s->need - s->have;
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf);

static void expect(struct shake *s, enum shake_step step, size_t need)
{
    s->step = step;
    s->have = 0;
    s->need = need;
    if (uv_read_start(s->stream, on_alloc, on_read) != 0) {
        shake_fail(s, RAFT_NOCONNECTION, NULL);
    }
}

static void written(uv_write_t *w, int status)
{
    struct shake *s = w->data;
    if (status == UV_ECANCELED) {
        return; /* closing already */
    }
    if (status != 0) {
        shake_fail(s, RAFT_NOCONNECTION, NULL);
    } else if (s->step == STEP_LAST_WRITE) {
        shake_done(s);
    }
}

static int send_bytes(struct shake *s, const uint8_t *p, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    s->write.data = s;
    return uv_write(&s->write, s->stream, &b, 1, written);
}

/* The acceptor has the connector's whole hello. */
static void hello_received(struct shake *s)
{
    struct transport *t = s->t;
    if (s->hello.to != t->id) {
        shake_fail(s, 0, "it asked for another node id");
        return;
    }
    util_random_bytes(s->nonce, sizeof s->nonce);
    peer_challenge_encode(t->keys, &s->hello, t->id, s->nonce, s->out);
    if (send_bytes(s, s->out, PEER_CHALLENGE_SIZE) != 0) {
        shake_fail(s, 0, NULL);
        return;
    }
    expect(s, STEP_PROOF, PEER_PROOF_SIZE);
}

static void step_complete(struct shake *s)
{
    struct transport *t = s->t;
    size_t address_len;
    uint8_t proof[PEER_PROOF_SIZE];

    uv_read_stop(s->stream);
    switch (s->step) {
    case STEP_HELLO:
        if (s->need == PEER_HELLO_FIXED) {
            if (peer_hello_decode_fixed(s->in, &s->hello, &address_len) != 0) {
                shake_fail(s, 0, "not a varasto peer handshake");
                return;
            }
            s->step = STEP_HELLO;
            s->need = PEER_HELLO_FIXED + address_len;
            if (uv_read_start(s->stream, on_alloc, on_read) != 0) {
                shake_fail(s, 0, NULL);
            }
            return;
        }
        if (peer_hello_decode_address(s->in + PEER_HELLO_FIXED, s->need - PEER_HELLO_FIXED,
                                      &s->hello) != 0) {
            shake_fail(s, 0, "a malformed raft address in its handshake");
            return;
        }
        hello_received(s);
        return;
    case STEP_CHALLENGE:
        if (peer_challenge_check(t->keys, &s->hello, s->in, proof) != 0) {
            shake_fail(s, RAFT_NOCONNECTION,
                       "it did not prove it holds the cluster token, or is another node");
            return;
        }
        memcpy(s->out, proof, sizeof proof);
        s->step = STEP_LAST_WRITE;
        if (send_bytes(s, s->out, sizeof proof) != 0) {
            shake_fail(s, RAFT_NOCONNECTION, NULL);
        }
        return;
    case STEP_PROOF:
        if (peer_proof_check(t->keys, &s->hello, t->id, s->nonce, s->in) != 0) {
            shake_fail(s, 0, "it did not prove it holds the cluster token");
            return;
        }
        if (t->is_member != NULL && !t->is_member(t->member_data, s->hello.from)) {
            char why[64];
            snprintf(why, sizeof why, "node %llu is not in the configuration",
                     (unsigned long long)s->hello.from);
            shake_fail(s, 0, why);
            return;
        }
        shake_done(s);
        return;
    default:
        return;
    }
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct shake *s = stream->data;
    (void)buf;
    if (n < 0) {
        shake_fail(s, RAFT_NOCONNECTION,
                   s->outgoing ? NULL : "it closed the connection during the handshake");
        return;
    }
    s->have += (size_t)n;
    if (s->have == s->need) {
        step_complete(s);
    }
}

static struct shake *shake_new(struct transport *t, int outgoing)
{
    struct shake *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    if (t->tls != NULL) {
        s->pump = tls_pump_new(t->loop, t->tls, !outgoing);
        s->stream = raft_malloc(sizeof(uv_pipe_t));
        if (s->pump == NULL || s->stream == NULL) {
            if (s->pump != NULL) {
                tls_pump_close(s->pump);
            }
            raft_free(s->stream);
            free(s);
            return NULL;
        }
        uv_pipe_init(t->loop, (uv_pipe_t *)s->stream, 0);
    } else {
        s->stream = raft_malloc(sizeof(uv_tcp_t));
        if (s->stream == NULL) {
            free(s);
            return NULL;
        }
        uv_tcp_init(t->loop, (uv_tcp_t *)s->stream);
    }
    s->t = t;
    s->outgoing = outgoing;
    uv_timer_init(t->loop, &s->timer);
    s->stream->data = s;
    s->timer.data = s;
    s->open = 2;
    queue_insert_tail(&t->shakes, &s->link);
    if (!outgoing) {
        t->n_incoming++;
    }
    uv_timer_start(&s->timer, timed_out, t->handshake_ms, 0);
    return s;
}

/* The TCP socket: the stream's, or the pump's. */
static uv_tcp_t *tcp_of(struct shake *s)
{
    return s->pump != NULL ? tls_pump_tcp(s->pump) : (uv_tcp_t *)s->stream;
}

static void send_hello(struct shake *s);

/* Peer TLS: the TLS handshake has ended; ours runs inside it. */
static void tls_ready(void *data, int status, const char *why, uv_os_fd_t fd)
{
    struct shake *s = data;
    s->pump = NULL; /* it ends by itself from here on */
    if (status != 0) {
        shake_fail(s, RAFT_NOCONNECTION, why);
        return;
    }
    if (uv_pipe_open((uv_pipe_t *)s->stream, fd) != 0) {
        close(fd);
        shake_fail(s, RAFT_NOCONNECTION, NULL);
        return;
    }
    if (s->outgoing) {
        send_hello(s);
    } else {
        expect(s, STEP_HELLO, PEER_HELLO_FIXED);
    }
}

/* The TCP connection is up: on to TLS, or to our handshake. */
static void tcp_up(struct shake *s)
{
    uv_tcp_nodelay(tcp_of(s), 1);
    if (s->pump != NULL) {
        s->step = STEP_TLS;
        if (tls_pump_start(s->pump, tls_ready, s) != 0) {
            s->pump = NULL; /* closed */
            shake_fail(s, RAFT_NOCONNECTION, NULL);
        }
    } else if (s->outgoing) {
        send_hello(s);
    } else {
        expect(s, STEP_HELLO, PEER_HELLO_FIXED);
    }
}

/* ---- outgoing ----------------------------------------------------------------- */

static void connected(uv_connect_t *c, int status)
{
    struct shake *s = c->data;
    if (status == UV_ECANCELED) {
        return;
    }
    if (status != 0) {
        shake_fail(s, RAFT_NOCONNECTION, NULL);
        return;
    }
    tcp_up(s);
}

static void send_hello(struct shake *s)
{
    size_t len = peer_hello_encode(&s->hello, s->out);
    if (send_bytes(s, s->out, len) != 0) {
        shake_fail(s, RAFT_NOCONNECTION, NULL);
        return;
    }
    expect(s, STEP_CHALLENGE, PEER_CHALLENGE_SIZE);
}

static void start_connect(struct shake *s, const struct sockaddr *addr)
{
    s->step = STEP_CONNECT;
    s->connect.data = s;
    if (uv_tcp_connect(&s->connect, tcp_of(s), addr, connected) != 0) {
        shake_fail(s, RAFT_NOCONNECTION, NULL);
    }
}

static void resolved(uv_getaddrinfo_t *r, int status, struct addrinfo *res)
{
    struct shake *s = r->data;
    if (s->failed || status != 0 || res == NULL) {
        /* failed, or cancelled by shake_fail */
        uv_freeaddrinfo(res);
        s->failed = 1;
        if (s->status == 0) {
            s->status = RAFT_NOCONNECTION;
        }
        uv_timer_stop(&s->timer);
        if (s->pump != NULL) {
            tls_pump_close(s->pump);
            s->pump = NULL;
        }
        uv_close((uv_handle_t *)s->stream, handle_closed);
        uv_close((uv_handle_t *)&s->timer, handle_closed);
        return;
    }
    start_connect(s, res->ai_addr);
    uv_freeaddrinfo(res);
}

/* "HOST:PORT" or "[V6]:PORT" into @host and @port. */
static int split_address(const char *address, char *host, size_t host_size, char *port,
                         size_t port_size)
{
    const char *colon = strrchr(address, ':');
    size_t hlen;
    if (colon == NULL || colon == address || colon[1] == '\0' || strlen(colon + 1) >= port_size) {
        return -1;
    }
    hlen = (size_t)(colon - address);
    if (address[0] == '[' && hlen >= 2 && address[hlen - 1] == ']') {
        address++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_size) {
        return -1;
    }
    memcpy(host, address, hlen);
    host[hlen] = '\0';
    util_copy(port, port_size, colon + 1);
    return 0;
}

static int t_connect(struct raft_uv_transport *outer, struct raft_uv_connect *req, raft_id id,
                     const char *address, raft_uv_connect_cb cb)
{
    struct transport *t = outer->impl;
    char host[PEER_ADDRESS_MAX + 1], port[8];
    struct sockaddr_storage sa;
    struct addrinfo hints;
    struct shake *s;

    if (t->closing || split_address(address, host, sizeof host, port, sizeof port) != 0 ||
        strlen(t->address) > PEER_ADDRESS_MAX) {
        snprintf(outer->errmsg, sizeof outer->errmsg, "bad raft address %s", address);
        return RAFT_NOCONNECTION;
    }
    s = shake_new(t, 1);
    if (s == NULL) {
        return RAFT_NOMEM;
    }
    s->req = req;
    s->cb = cb;
    s->hello.from = t->id;
    s->hello.to = id;
    util_random_bytes(s->hello.nonce, sizeof s->hello.nonce);
    util_copy(s->hello.address, sizeof s->hello.address, t->address);
    snprintf(s->peer, sizeof s->peer, "node %llu at %s", (unsigned long long)id, address);
    /* literal addresses without the thread pool (a busy pool would hold
     * every reconnection back) */
    if (uv_ip4_addr(host, atoi(port), (struct sockaddr_in *)&sa) == 0 ||
        uv_ip6_addr(host, atoi(port), (struct sockaddr_in6 *)&sa) == 0) {
        start_connect(s, (const struct sockaddr *)&sa);
        return 0;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    s->step = STEP_RESOLVE;
    s->resolve.data = s;
    if (uv_getaddrinfo(t->loop, &s->resolve, resolved, host, port, &hints) != 0) {
        s->step = STEP_CONNECT; /* no request to wait for */
        shake_fail(s, RAFT_NOCONNECTION, NULL);
    }
    return 0;
}

/* ---- incoming ----------------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status)
{
    struct transport *t = listener->data;
    struct sockaddr_storage sa;
    int len = sizeof sa;
    struct shake *s;

    if (status != 0) {
        return;
    }
    s = shake_new(t, 0);
    if (s == NULL) {
        return;
    }
    if (uv_accept(listener, (uv_stream_t *)tcp_of(s)) != 0) {
        shake_fail(s, 0, NULL);
        return;
    }
    util_copy(s->peer, sizeof s->peer, "?");
    if (uv_tcp_getpeername(tcp_of(s), (struct sockaddr *)&sa, &len) == 0) {
        char ip[64];
        int port = 0;
        if (sa.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        } else {
            uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        }
        snprintf(s->peer, sizeof s->peer, "%s:%d", ip, port);
    }
    if (t->closing || t->n_incoming > TRANSPORT_MAX_HANDSHAKES) {
        shake_fail(s, 0, "too many handshakes under way");
        return;
    }
    tcp_up(s);
}

/* ---- raft_uv_transport -------------------------------------------------------- */

static int t_init(struct raft_uv_transport *outer, raft_id id, const char *address)
{
    struct transport *t = outer->impl;
    if (strlen(address) > PEER_ADDRESS_MAX) {
        snprintf(outer->errmsg, sizeof outer->errmsg, "raft address %s is too long", address);
        return RAFT_INVALID;
    }
    t->id = id;
    util_copy(t->address, sizeof t->address, address);
    return 0;
}

static int t_listen(struct raft_uv_transport *outer, raft_uv_accept_cb cb)
{
    struct transport *t = outer->impl;
    char host[PEER_ADDRESS_MAX + 1], port[8];
    struct sockaddr_storage sa;
    int rv;

    if (split_address(t->address, host, sizeof host, port, sizeof port) != 0 ||
        (uv_ip4_addr(host, atoi(port), (struct sockaddr_in *)&sa) != 0 &&
         uv_ip6_addr(host, atoi(port), (struct sockaddr_in6 *)&sa) != 0)) {
        snprintf(outer->errmsg, sizeof outer->errmsg,
                 "raft address %s: want an IP address and a port", t->address);
        return RAFT_INVALID;
    }
    t->accept_cb = cb;
    rv = uv_tcp_bind(&t->listener, (const struct sockaddr *)&sa, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&t->listener, TRANSPORT_BACKLOG, on_connection);
    }
    if (rv != 0) {
        snprintf(outer->errmsg, sizeof outer->errmsg, "listen on %s: %s", t->address,
                 uv_strerror(rv));
        return RAFT_IOERR;
    }
    return 0;
}

static void listener_closed(uv_handle_t *h)
{
    struct transport *t = h->data;
    t->listening = 0;
    maybe_closed(t);
}

static void t_close(struct raft_uv_transport *outer, raft_uv_transport_close_cb cb)
{
    struct transport *t = outer->impl;
    struct queue *q;
    t->closing = 1;
    t->close_cb = cb;
    for (q = t->shakes.next; q != &t->shakes;) {
        struct shake *s = QUEUE_DATA(q, struct shake, link);
        q = q->next;
        if (s->open == 2) {
            shake_fail(s, RAFT_CANCELED, NULL);
        }
    }
    /* always a close to wait for: raft_uv is called back from the loop */
    uv_close((uv_handle_t *)&t->listener, listener_closed);
}

int transport_init(struct transport *t, uv_loop_t *loop, const struct peer_keys *keys, SSL_CTX *tls,
                   transport_member_cb is_member, void *member_data)
{
    memset(t, 0, sizeof *t);
    t->loop = loop;
    t->keys = keys;
    t->tls = tls;
    t->is_member = is_member;
    t->member_data = member_data;
    t->handshake_ms = TRANSPORT_HANDSHAKE_MS;
    queue_init(&t->shakes);
    uv_tcp_init(loop, &t->listener);
    t->listener.data = t;
    t->listening = 1; /* the handle is open until t_close */
    /* raft 0.22 refuses a transport whose version is unset */
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
    /* raft_uv never started: nothing but the listener's handle is open */
    if (!t->closing && t->listening) {
        t->closing = 1;
        uv_close((uv_handle_t *)&t->listener, listener_closed);
    }
}
