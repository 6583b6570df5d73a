/* The TLS pump under raft's connections: two pumps on a loopback TCP
 * connection carry 8 MiB each way intact (more than the pump queues, so
 * reading pauses and resumes), the end of one application side reaches the
 * other as an end; a peer whose certificate another CA signed, or that has
 * none, is refused with the reason; a pump given up before its handshake
 * closes without a callback. Certificates are made here, in memory. Every
 * test runs on its own loop and closes it. */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include "testlib.h"
#include "tls.h"

#define GUARD_MS 10000
#define BIG (8u << 20)

static char dir[] = "/tmp/varasto-test-tls-XXXXXX";
static char ca_pem[128], node_pem[128], node_key[128], other_pem[128], other_key[128],
    other_ca_pem[128];

/* ---- a small PKI ---- */

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int ca,
                       long serial)
{
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                              ca ? "critical,CA:TRUE" : "CA:FALSE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256());
    return x;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL) {
        return;
    }
    if (cert != NULL) {
        PEM_write_X509(f, cert);
    }
    if (key != NULL) {
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    }
    fclose(f);
}

/* A CA with one node certificate, and another CA with one of its own. */
static void make_pki(void)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *node = EVP_EC_gen("P-256");
    EVP_PKEY *other_ca_key = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    X509 *ca = make_cert(ca_key, "test CA", NULL, NULL, 1, 1);
    X509 *node_cert = make_cert(node, "node", ca, ca_key, 0, 2);
    X509 *other_ca = make_cert(other_ca_key, "other CA", NULL, NULL, 1, 1);
    X509 *other_cert = make_cert(other, "node", other_ca, other_ca_key, 0, 2);

    CHECK(mkdtemp(dir) != NULL);
    snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", dir);
    snprintf(node_pem, sizeof node_pem, "%s/node.pem", dir);
    snprintf(node_key, sizeof node_key, "%s/node.key", dir);
    snprintf(other_ca_pem, sizeof other_ca_pem, "%s/other-ca.pem", dir);
    snprintf(other_pem, sizeof other_pem, "%s/other.pem", dir);
    snprintf(other_key, sizeof other_key, "%s/other.key", dir);
    write_pem(ca_pem, ca, NULL);
    write_pem(node_pem, node_cert, NULL);
    write_pem(node_key, NULL, node);
    write_pem(other_ca_pem, other_ca, NULL);
    write_pem(other_pem, other_cert, NULL);
    write_pem(other_key, NULL, other);
    X509_free(ca);
    X509_free(node_cert);
    X509_free(other_ca);
    X509_free(other_cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(node);
    EVP_PKEY_free(other_ca_key);
    EVP_PKEY_free(other);
}

static void remove_pki(void)
{
    const char *files[] = {ca_pem, node_pem, node_key, other_ca_pem, other_pem, other_key};
    size_t i;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        unlink(files[i]);
    }
    rmdir(dir);
}

/* ---- one connection through two pumps ---- */

struct side {
    const char *name;
    struct tls_pump *pump;
    uv_pipe_t app;
    int ready, status, eof, opened, closed_app;
    char why[160];
    size_t got;
    int corrupt;
    uv_write_t write;
    int write_done;
};

static uv_loop_t loop;
static uv_tcp_t listener;
static uv_connect_t connect_req;
static uv_timer_t guard;
static struct side server, client;
static SSL_CTX *server_ctx, *client_ctx;
static unsigned char *pattern;
static int send_big; /* the ready sides send BIG bytes each */

static void stop_all(void);

static void app_closed(uv_handle_t *h)
{
    struct side *s = h->data;
    s->closed_app = 1;
}

static void close_app(struct side *s)
{
    if (s->opened && !uv_is_closing((uv_handle_t *)&s->app)) {
        uv_close((uv_handle_t *)&s->app, app_closed);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = suggested;
}

static void maybe_finish(struct side *s)
{
    /* the client ends once it has everything and its own bytes are out */
    if (s == &client && s->got == BIG && s->write_done) {
        close_app(s);
    }
}

static void app_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    struct side *s = stream->data;
    if (n > 0) {
        size_t i;
        for (i = 0; i < (size_t)n; i++) {
            if ((unsigned char)buf->base[i] != pattern[(s->got + i) % BIG]) {
                s->corrupt = 1;
            }
        }
        s->got += (size_t)n;
        maybe_finish(s);
    } else if (n < 0) {
        s->eof = 1;
        close_app(s);
        if (s == &server) {
            stop_all();
        }
    }
    free(buf->base);
}

static void app_written(uv_write_t *w, int status)
{
    struct side *s = w->data;
    CHECK_INT(status, 0);
    s->write_done = 1;
    maybe_finish(s);
}

static void ready(struct side *s, int status, const char *why, uv_os_fd_t fd)
{
    s->ready = 1;
    s->status = status;
    if (why != NULL) {
        snprintf(s->why, sizeof s->why, "%s", why);
    }
    s->pump = NULL; /* it runs by itself now */
    if (status != 0) {
        CHECK_INT(fd, -1);
        if (&server == s) {
            stop_all();
        }
        return;
    }
    uv_pipe_init(&loop, &s->app, 0);
    s->app.data = s;
    CHECK_INT(uv_pipe_open(&s->app, fd), 0);
    s->opened = 1;
    uv_read_start((uv_stream_t *)&s->app, on_alloc, app_read);
    if (send_big) {
        uv_buf_t b = uv_buf_init((char *)pattern, BIG);
        s->write.data = s;
        CHECK_INT(uv_write(&s->write, (uv_stream_t *)&s->app, &b, 1, app_written), 0);
    }
}

static void server_ready(void *data, int status, const char *why, uv_os_fd_t fd)
{
    (void)data;
    ready(&server, status, why, fd);
}

static void client_ready(void *data, int status, const char *why, uv_os_fd_t fd)
{
    (void)data;
    ready(&client, status, why, fd);
}

static void on_connection(uv_stream_t *l, int status)
{
    CHECK_INT(status, 0);
    server.pump = tls_pump_new(&loop, server_ctx, 1);
    CHECK_INT(uv_accept(l, (uv_stream_t *)tls_pump_tcp(server.pump)), 0);
    CHECK_INT(tls_pump_start(server.pump, server_ready, NULL), 0);
}

static void on_connect(uv_connect_t *req, int status)
{
    (void)req;
    CHECK_INT(status, 0);
    CHECK_INT(tls_pump_start(client.pump, client_ready, NULL), 0);
}

static void stop_all(void)
{
    close_app(&server);
    close_app(&client);
    if (!uv_is_closing((uv_handle_t *)&listener)) {
        uv_close((uv_handle_t *)&listener, NULL);
    }
    if (!uv_is_closing((uv_handle_t *)&guard)) {
        uv_close((uv_handle_t *)&guard, NULL);
    }
}

static void timed_out(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "[%s] timed out: server got %zu, client got %zu\n", test_current, server.got,
            client.got);
    test_failures++;
    if (server.pump != NULL) {
        tls_pump_close(server.pump);
        server.pump = NULL;
    }
    if (client.pump != NULL) {
        tls_pump_close(client.pump);
        client.pump = NULL;
    }
    stop_all();
}

/* Connect a client with @cctx to a server with @sctx and run the loop. */
static void run_pair(SSL_CTX *sctx, SSL_CTX *cctx, int big)
{
    struct sockaddr_in addr;
    int len = sizeof addr;

    memset(&server, 0, sizeof server);
    memset(&client, 0, sizeof client);
    server_ctx = sctx;
    client_ctx = cctx;
    send_big = big;
    uv_loop_init(&loop);
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, timed_out, GUARD_MS, 0);
    uv_tcp_init(&loop, &listener);
    uv_ip4_addr("127.0.0.1", 0, &addr);
    CHECK_INT(uv_tcp_bind(&listener, (struct sockaddr *)&addr, 0), 0);
    CHECK_INT(uv_listen((uv_stream_t *)&listener, 8, on_connection), 0);
    uv_tcp_getsockname(&listener, (struct sockaddr *)&addr, &len);
    client.pump = tls_pump_new(&loop, cctx, 0);
    CHECK_INT(uv_tcp_connect(&connect_req, tls_pump_tcp(client.pump), (struct sockaddr *)&addr,
                             on_connect),
              0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static SSL_CTX *ctx_of(const char *cert, const char *key, const char *ca)
{
    char err[256];
    SSL_CTX *ctx = tls_peer_ctx(cert, key, ca, err, sizeof err);
    if (ctx == NULL) {
        fprintf(stderr, "%s\n", err);
    }
    CHECK(ctx != NULL);
    return ctx;
}

static void test_both_ways_intact_then_the_end(void)
{
    SSL_CTX *ctx = ctx_of(node_pem, node_key, ca_pem);
    run_pair(ctx, ctx, 1);
    CHECK_INT(server.status, 0);
    CHECK_INT(client.status, 0);
    CHECK_INT(server.got, BIG);
    CHECK_INT(client.got, BIG);
    CHECK(!server.corrupt && !client.corrupt);
    CHECK(server.eof); /* the client's close reached the server's application */
    CHECK(server.closed_app && client.closed_app);
    SSL_CTX_free(ctx);
}

static void test_another_ca_is_refused(void)
{
    SSL_CTX *ours = ctx_of(node_pem, node_key, ca_pem);
    SSL_CTX *theirs = ctx_of(other_pem, other_key, ca_pem); /* trusts us, we do not it */
    run_pair(ours, theirs, 0);
    CHECK(server.ready);
    CHECK(server.status != 0);
    CHECK_CONTAINS(server.why, "certificate");
    CHECK(!server.opened);
    SSL_CTX_free(ours);
    SSL_CTX_free(theirs);
}

static void test_no_certificate_is_refused(void)
{
    SSL_CTX *ours = ctx_of(node_pem, node_key, ca_pem);
    SSL_CTX *anonymous = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(anonymous, SSL_VERIFY_NONE, NULL);
    run_pair(ours, anonymous, 0);
    CHECK(server.ready && server.status != 0);
    CHECK_CONTAINS(server.why, "certificate");
    SSL_CTX_free(ours);
    SSL_CTX_free(anonymous);
}

static void test_close_before_the_handshake(void)
{
    SSL_CTX *ctx = ctx_of(node_pem, node_key, ca_pem);
    struct tls_pump *p;
    uv_loop_init(&loop);
    p = tls_pump_new(&loop, ctx, 0);
    CHECK(p != NULL);
    tls_pump_close(p);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    SSL_CTX_free(ctx);
}

static void test_bad_files(void)
{
    char err[256];
    CHECK(tls_peer_ctx(node_pem, other_key, ca_pem, err, sizeof err) == NULL);
    CHECK_CONTAINS(err, "does not match");
    CHECK(tls_peer_ctx("/nonexistent.pem", node_key, ca_pem, err, sizeof err) == NULL);
    CHECK_CONTAINS(err, "--peer-tls-cert /nonexistent.pem");
    CHECK(tls_server_ctx(node_pem, node_key, "/nonexistent-ca.pem", NULL, err, sizeof err) == NULL);
    CHECK_CONTAINS(err, "--tls-client-ca /nonexistent-ca.pem");
}

int main(void)
{
    size_t i;
    pattern = malloc(BIG);
    for (i = 0; i < BIG; i++) {
        pattern[i] = (unsigned char)(i * 7 + i / 65521);
    }
    make_pki();
    RUN(test_both_ways_intact_then_the_end);
    RUN(test_another_ca_is_refused);
    RUN(test_no_certificate_is_refused);
    RUN(test_close_before_the_handshake);
    RUN(test_bad_files);
    remove_pki();
    free(pattern);
    return test_report("tls");
}
