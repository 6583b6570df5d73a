#include "tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)

/* The first OpenSSL error queued, as text (and the queue emptied). */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_get_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r != NULL ? r : "unknown error";
}

static int load_pair(SSL_CTX *ctx, const char *what_cert, const char *cert, const char *what_key,
                     const char *key, char *err, size_t err_size)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, err_size, "--%s %s: %s", what_cert, cert, ssl_reason());
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) {
            snprintf(err, err_size, "--%s %s does not match --%s %s", what_key, key, what_cert,
                     cert);
            ERR_clear_error();
        } else {
            snprintf(err, err_size, "--%s %s: %s", what_key, key, ssl_reason());
        }
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_size, "--%s %s does not match --%s %s", what_key, key, what_cert, cert);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static int load_ca(SSL_CTX *ctx, const char *what, const char *ca, char *err, size_t err_size)
{
    STACK_OF(X509_NAME) * names;
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        snprintf(err, err_size, "--%s %s: %s", what, ca, ssl_reason());
        return -1;
    }
    /* the CA names a server sends with its certificate request */
    names = SSL_load_client_CA_file(ca);
    if (names != NULL) {
        STACK_OF(X509_NAME) *have = SSL_CTX_get_client_CA_list(ctx);
        if (have != NULL && sk_X509_NAME_num(have) > 0) {
            int i;
            for (i = 0; i < sk_X509_NAME_num(names); i++) {
                X509_NAME *name = X509_NAME_dup(sk_X509_NAME_value(names, i));
                if (name != NULL) {
                    sk_X509_NAME_push(have, name);
                }
            }
            sk_X509_NAME_pop_free(names, X509_NAME_free);
        } else {
            SSL_CTX_set_client_CA_list(ctx, names);
        }
    }
    ERR_clear_error();
    return 0;
}

SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *client_ca,
                        const char *also_ca, char *err, size_t err_size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, err_size, "TLS: %s", ssl_reason());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (load_pair(ctx, "tls-cert", cert, "tls-key", key, err, err_size) != 0) {
        goto fail;
    }
    if (client_ca != NULL) {
        if (load_ca(ctx, "tls-client-ca", client_ca, err, err_size) != 0 ||
            (also_ca != NULL && load_ca(ctx, "peer-tls-ca", also_ca, err, err_size) != 0)) {
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tls_peer_ctx(const char *cert, const char *key, const char *ca, char *err, size_t err_size)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (ctx == NULL) {
        snprintf(err, err_size, "TLS: %s", ssl_reason());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
    /* long-lived connections: no session cache to keep */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (load_pair(ctx, "peer-tls-cert", cert, "peer-tls-key", key, err, err_size) != 0 ||
        load_ca(ctx, "peer-tls-ca", ca, err, err_size) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return ctx;
}

/* ---- the pump ----------------------------------------------------------------- */

struct tls_pump {
    uv_tcp_t tcp;      /* the network side: TLS records */
    uv_pipe_t inner;   /* our end of the pair: plaintext */
    uv_os_fd_t app_fd; /* the other end, until handed out */
    SSL *ssl;
    BIO *rbio, *wbio; /* records in, records out */
    tls_pump_ready_cb cb;
    void *data;
    int started, ready, ending;
    int open;                     /* handles not yet closed */
    int tcp_paused, inner_paused; /* reading stopped: the other side's queue is full */
};

struct chunk {
    uv_write_t w;
    struct tls_pump *p;
    char data[];
};

static void pump_closed(uv_handle_t *h)
{
    struct tls_pump *p = h->data;
    if (--p->open == 0) {
        SSL_free(p->ssl); /* frees both BIOs */
        free(p);
    }
}

static void pump_end(struct tls_pump *p)
{
    if (p->ending) {
        return;
    }
    p->ending = 1;
    if (p->app_fd >= 0) {
        close(p->app_fd);
        p->app_fd = -1;
    }
    uv_close((uv_handle_t *)&p->tcp, pump_closed);
    uv_close((uv_handle_t *)&p->inner, pump_closed);
}

static void fail(struct tls_pump *p, const char *why)
{
    if (!p->ready && p->cb != NULL && !p->ending) {
        tls_pump_ready_cb cb = p->cb;
        p->cb = NULL;
        cb(p->data, -1, why, -1);
    }
    pump_end(p);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(READ_CHUNK);
    buf->len = buf->base != NULL ? READ_CHUNK : 0;
}

static void tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void inner_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void written(uv_write_t *w, int status)
{
    struct chunk *c = (struct chunk *)w;
    struct tls_pump *p = c->p;
    free(c);
    if (status == UV_ECANCELED || p->ending) {
        return;
    }
    if (status != 0) {
        fail(p, "the connection failed");
        return;
    }
    /* a queue drained: read the side that fills it again */
    if (p->tcp_paused && p->inner.write_queue_size < TLS_PUMP_QUEUE_MAX) {
        p->tcp_paused = 0;
        uv_read_start((uv_stream_t *)&p->tcp, on_alloc, tcp_read);
    }
    if (p->inner_paused && p->tcp.write_queue_size < TLS_PUMP_QUEUE_MAX) {
        p->inner_paused = 0;
        uv_read_start((uv_stream_t *)&p->inner, on_alloc, inner_read);
    }
}

/* Queue @c (len bytes of its data) on @stream; takes @c. */
static int queue_write(struct tls_pump *p, uv_stream_t *stream, struct chunk *c, size_t len)
{
    uv_buf_t b = uv_buf_init(c->data, (unsigned)len);
    c->p = p;
    if (uv_write(&c->w, stream, &b, 1, written) != 0) {
        free(c);
        return -1;
    }
    return 0;
}

/* Send what OpenSSL has produced. */
static int flush_records(struct tls_pump *p)
{
    size_t pending = BIO_ctrl_pending(p->wbio);
    struct chunk *c;
    if (pending == 0) {
        return 0;
    }
    c = malloc(sizeof *c + pending);
    if (c == NULL || BIO_read(p->wbio, c->data, (int)pending) != (int)pending) {
        free(c);
        return -1;
    }
    if (queue_write(p, (uv_stream_t *)&p->tcp, c, pending) != 0) {
        return -1;
    }
    if (p->tcp.write_queue_size >= TLS_PUMP_QUEUE_MAX && !p->inner_paused && p->ready) {
        p->inner_paused = 1;
        uv_read_stop((uv_stream_t *)&p->inner);
    }
    return 0;
}

/* Pass on what can be decrypted. */
static int deliver(struct tls_pump *p)
{
    for (;;) {
        struct chunk *c = malloc(sizeof *c + READ_CHUNK);
        int n;
        if (c == NULL) {
            return -1;
        }
        n = SSL_read(p->ssl, c->data, READ_CHUNK);
        if (n <= 0) {
            int e = SSL_get_error(p->ssl, n);
            free(c);
            if (e == SSL_ERROR_WANT_READ) {
                break;
            }
            return -1; /* close_notify, or a bad record */
        }
        if (queue_write(p, (uv_stream_t *)&p->inner, c, (size_t)n) != 0) {
            return -1;
        }
    }
    if (p->inner.write_queue_size >= TLS_PUMP_QUEUE_MAX && !p->tcp_paused) {
        p->tcp_paused = 1;
        uv_read_stop((uv_stream_t *)&p->tcp);
    }
    return flush_records(p); /* TLS 1.3 answers some records (key updates) */
}

static void handshake_step(struct tls_pump *p)
{
    int rv = SSL_do_handshake(p->ssl);
    if (rv == 1) {
        tls_pump_ready_cb cb = p->cb;
        uv_os_fd_t fd = p->app_fd;
        if (flush_records(p) != 0) {
            fail(p, "the connection failed");
            return;
        }
        p->ready = 1;
        p->cb = NULL;
        p->app_fd = -1;
        if (uv_read_start((uv_stream_t *)&p->inner, on_alloc, inner_read) != 0) {
            close(fd);
            cb(p->data, -1, "the connection failed", -1);
            pump_end(p);
            return;
        }
        cb(p->data, 0, NULL, fd);
        if (!p->ending && deliver(p) != 0) {
            pump_end(p);
        }
        return;
    }
    if (SSL_get_error(p->ssl, rv) == SSL_ERROR_WANT_READ) {
        if (flush_records(p) != 0) {
            fail(p, "the connection failed");
        }
        return;
    }
    {
        long verify = SSL_get_verify_result(p->ssl);
        char why[160];
        if (verify != X509_V_OK) {
            snprintf(why, sizeof why, "TLS: its certificate: %s",
                     X509_verify_cert_error_string(verify));
            ERR_clear_error();
        } else {
            snprintf(why, sizeof why, "TLS: %s", ssl_reason());
        }
        flush_records(p); /* the alert, for the other end's log */
        fail(p, why);
    }
}

static void tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct tls_pump *p = s->data;
    if (n > 0 && BIO_write(p->rbio, buf->base, (int)n) != (int)n) {
        n = UV_ENOMEM;
    }
    free(buf->base);
    if (n == 0) {
        return;
    }
    if (n < 0) {
        fail(p, p->ready ? NULL : "TLS: it closed the connection during the handshake");
        return;
    }
    if (!p->ready) {
        handshake_step(p);
    } else if (deliver(p) != 0) {
        pump_end(p);
    }
}

static void inner_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct tls_pump *p = s->data;
    int failed = 0;
    if (n > 0) {
        failed = SSL_write(p->ssl, buf->base, (int)n) != (int)n || flush_records(p) != 0;
    }
    free(buf->base);
    if (n < 0 || failed) {
        /* the stream's owner closed it: say so to the other end */
        if (n == UV_EOF) {
            SSL_shutdown(p->ssl);
            flush_records(p);
        }
        pump_end(p);
    }
}

struct tls_pump *tls_pump_new(uv_loop_t *loop, SSL_CTX *ctx, int server)
{
    struct tls_pump *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return NULL;
    }
    p->ssl = SSL_new(ctx);
    p->rbio = BIO_new(BIO_s_mem());
    p->wbio = BIO_new(BIO_s_mem());
    if (p->ssl == NULL || p->rbio == NULL || p->wbio == NULL) {
        SSL_free(p->ssl);
        BIO_free(p->rbio);
        BIO_free(p->wbio);
        free(p);
        return NULL;
    }
    SSL_set_bio(p->ssl, p->rbio, p->wbio);
    if (server) {
        SSL_set_accept_state(p->ssl);
    } else {
        SSL_set_connect_state(p->ssl);
    }
    p->app_fd = -1;
    uv_tcp_init(loop, &p->tcp);
    uv_pipe_init(loop, &p->inner, 0);
    p->tcp.data = p;
    p->inner.data = p;
    p->open = 2;
    return p;
}

uv_tcp_t *tls_pump_tcp(struct tls_pump *p)
{
    return &p->tcp;
}

int tls_pump_start(struct tls_pump *p, tls_pump_ready_cb cb, void *data)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
        pump_end(p);
        return -1;
    }
    if (uv_pipe_open(&p->inner, fds[0]) != 0) {
        close(fds[0]);
        close(fds[1]);
        pump_end(p);
        return -1;
    }
    p->app_fd = fds[1];
    p->cb = cb;
    p->data = data;
    p->started = 1;
    if (uv_read_start((uv_stream_t *)&p->tcp, on_alloc, tcp_read) != 0) {
        p->cb = NULL;
        pump_end(p);
        return -1;
    }
    if (SSL_is_server(p->ssl) == 0) {
        int rv = SSL_do_handshake(p->ssl); /* the ClientHello */
        if ((rv != 1 && SSL_get_error(p->ssl, rv) != SSL_ERROR_WANT_READ) ||
            flush_records(p) != 0) {
            p->cb = NULL;
            pump_end(p);
            return -1;
        }
    }
    return 0;
}

void tls_pump_close(struct tls_pump *p)
{
    p->cb = NULL;
    pump_end(p);
}
