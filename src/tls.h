/* TLS (SPEC 7.1, 7.2): the OpenSSL contexts for clients' HTTPS and for
 * mutual TLS between nodes, and the pump that puts TLS under a raft
 * connection.
 *
 * Raft reads and writes a libuv stream it is handed; libuv has no TLS. A
 * pump owns the TCP socket and one end of a socketpair, and hands the other
 * end out as the stream: what arrives on TCP is decrypted (OpenSSL on
 * memory BIOs) and written to the pair, what the stream's owner writes to
 * the pair is encrypted and sent. Everything runs on the loop; each side's
 * queue is bounded (reading the other side stops past TLS_PUMP_QUEUE_MAX).
 * Peers are verified by the CA alone: nodes are named by id and address,
 * and the handshake of peer_auth.h, run inside the TLS, proves which node
 * it is. */
#ifndef VARASTO_TLS_H
#define VARASTO_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <uv.h>

#define TLS_PUMP_QUEUE_MAX (4u << 20)

/* A server context for HTTPS: TLS 1.2 or later, @cert (a PEM chain) and
 * @key; with @client_ca (may be NULL), client certificates signed by it
 * (or by @also_ca, may be NULL) are required. NULL with a one-line reason
 * in @err naming the file. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *client_ca,
                        const char *also_ca, char *err, size_t err_size);

/* A context for both ends of connections between nodes: TLS 1.3, @cert and
 * @key presented, the other end's certificate required and verified
 * against @ca. NULL with a reason in @err. */
SSL_CTX *tls_peer_ctx(const char *cert, const char *key, const char *ca, char *err,
                      size_t err_size);

struct tls_pump;

/* The handshake's end: @status 0 and @fd the plaintext end of the pair,
 * now the caller's; or nonzero and @why says what failed (the pump then
 * closes itself, and @fd is -1). */
typedef void (*tls_pump_ready_cb)(void *data, int status, const char *why, uv_os_fd_t fd);

/* A pump on @loop for @ctx (borrowed; must outlive it), the server end when
 * @server. The caller connects or accepts into tls_pump_tcp(), then calls
 * tls_pump_start(), or tls_pump_close(). NULL on out of memory. */
struct tls_pump *tls_pump_new(uv_loop_t *loop, SSL_CTX *ctx, int server);
uv_tcp_t *tls_pump_tcp(struct tls_pump *p);

/* Run the handshake over the connected socket; @cb fires once (never from
 * inside this call). Afterwards the pump ends by itself when either side
 * closes or fails. Returns 0, or -1 (the pump is closed, no callback). */
int tls_pump_start(struct tls_pump *p, tls_pump_ready_cb cb, void *data);

/* Give up on a pump whose handshake has not ended (no callback fires). */
void tls_pump_close(struct tls_pump *p);

#endif
