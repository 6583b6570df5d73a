/* Client side of command forwarding: a follower posts log entries to the
 * leader's /internal/apply over libcurl's multi interface, driven by the
 * node's libuv loop, over a pool of persistent HTTP/1.1 connections (no new
 * connection per command; many commands in flight). */
#ifndef VARASTO_FORWARD_H
#define VARASTO_FORWARD_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "peer_auth.h"
#include "queue.h"
#include "util.h"

#define FORWARD_ADDR_MAX 128
#define FORWARD_NONCES 16 /* receivers whose nonce is kept */

struct forward_reply {
    int ok;         /* 0: no answer (connection failed, timed out) */
    long status;    /* HTTP status from the leader */
    uint64_t index; /* X-Varasto-Index (a read index from /internal/barrier), or 0 */
    const char *body;
    size_t len;
    const char *error; /* when !ok */
};

typedef void (*forward_cb)(void *data, const struct forward_reply *reply);

/* How the other nodes' HTTP port is reached. */
struct forward_tls {
    int https;        /* they serve HTTPS (--tls-cert): so is every request */
    const char *ca;   /* verify their certificate against this CA file, without a
                       * host name check (peer TLS); NULL: the system's, with one */
    const char *cert; /* the client certificate presented, and its key; NULL: none */
    const char *key;
};

struct forward {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct peer_http *peer;        /* borrowed: signs every request */
    const struct forward_tls *tls; /* borrowed */
    struct {
        char addr[FORWARD_ADDR_MAX];
        char nonce[PEER_HTTP_NONCE_HEX + 1];
    } nonces[FORWARD_NONCES]; /* each receiver's, as its last 401 said */
    unsigned next_nonce;
    unsigned in_flight;
    struct queue requests; /* in flight */
    struct queue sockets;  /* polled for curl */
    int closing;
};

/* Set up on @loop; @peer (borrowed) signs each request for the node it
 * goes to (peer_auth.h); a 401 handing out that node's nonce is answered by
 * one more try, signed for it. @tls (borrowed; NULL: plain HTTP) says how to reach the
 * others. Returns 0 or -1. */
int forward_init(struct forward *f, uv_loop_t *loop, struct peer_http *peer,
                 const struct forward_tls *tls);

/* Post @len bytes of @data (copied) to http(s)://@http_addr@path; @cb fires
 * once, on the loop, within @timeout_ms. Returns 0 or -1 (then no cb). */
int forward_post(struct forward *f, const char *http_addr, const char *path, const void *data,
                 size_t len, unsigned timeout_ms, forward_cb cb, void *cb_data);

/* Abort the transfers in flight (their callbacks fire with ok = 0, before
 * this returns), refuse new ones, and close curl's connections and the
 * handles (their close completes on the loop). */
void forward_close(struct forward *f);

#endif
