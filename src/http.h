/* The HTTP server (h2o on the node's libuv loop): listener, routing (the
 * table is the caller's), authentication and read consistency applied by
 * route flags, and the response helpers every api_* module uses. */
#ifndef VARASTO_HTTP_H
#define VARASTO_HTTP_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <stdint.h>
#include <uv.h>

#include "errors.h"
#include "queue.h"

#define HTTP_MAX_BODY (1024 * 1024) /* SPEC §2: larger bodies get 413 */
/* What h2o reads of a body at most before it answers 413 itself: a client
 * body over HTTP_MAX_BODY is refused by the handler within this slack; a
 * follower's forwarded batch stays within it (one command's log entry is
 * its body's protobuf and at most a few hundred bytes more). */
#define HTTP_MAX_ENTITY (HTTP_MAX_BODY + 4096)
#define HTTP_MAX_PARAMS 2

struct api;
struct auth;
struct consistency;

/* A route handler. @params are the URL-decoded `*` segments of the pattern;
 * @api is the handlers' context (borrowed; http.c never looks inside). */
typedef void (*http_handler_fn)(struct api *api, h2o_req_t *req, char **params);

#define HTTP_AUTH_HEADER_MAX 512 /* longest Authorization value looked at */

struct http_route {
    const char *method;
    const char *pattern; /* '*' matches one path segment */
    http_handler_fn handler;
    int public_; /* no Authorization needed */
    int peer;    /* only for other nodes: a peer signature (peer_auth.h), no token */
    int read;    /* honours min_seq and consistency */
    /* the least scope (enum auth_scope) a request needs, from its path
     * parameters; NULL: read for GET, write otherwise */
    int (*scope_of)(char **params);
};

/* A weak reference to a request: @req becomes NULL when h2o disposes of it
 * (client gone), and @on_gone runs then. Lets callbacks that outlive the
 * request (raft commit, timers, streams) tell whether they may answer. */
struct req_ref {
    h2o_req_t *req;
    void (*on_gone)(struct req_ref *ref);
    void *data;            /* the owner's, untouched here */
    struct req_ref **slot; /* in the request's pool; points back here */
};

/* What the server works with besides its address; all borrowed: the route
 * table, the handlers' context (never looked into here), auth, read
 * consistency, and the applied seq for X-Varasto-Seq. */
struct http_deps {
    const struct http_route *routes;
    size_t n_routes;
    struct api *api;
    struct auth *auth;
    struct consistency *reads;
    const uint64_t *applied_seq;
    unsigned max_connections; /* past it a new connection is closed at once */
    SSL_CTX *ssl_ctx;         /* HTTPS with it (HTTP/2 by ALPN); NULL: plain HTTP/1.1 */
};

struct http_server {
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    int listening;
    int started; /* h2o's context is set up */
    struct http_deps deps;
    struct queue conns; /* open client connections */
    unsigned n_conns;   /* how many */
    uint64_t refused;   /* connections closed at once for the cap */
    int ending;         /* http_shutdown was called */
    uv_timer_t finish;  /* disposes h2o once no connection is left */
    void (*shutdown_cb)(struct http_server *s);
    char errmsg[256]; /* why http_start failed */
};

/* Listen on @addr (HOST:PORT). Returns 0, or ERR_UNAVAILABLE (a bad or
 * busy address) with s->errmsg set. */
int http_start(struct http_server *s, uv_loop_t *loop, const char *addr,
               const struct http_deps *deps);

/* Stop accepting new connections (the close completes on the loop). */
void http_stop_listening(struct http_server *s);

/* Ask open connections to close once their current response is done. */
void http_request_shutdown(struct http_server *s);

/* End every open connection as if its client had gone (the reading side of
 * its socket is shut down, so h2o reads EOF and closes it through its own
 * paths: requests disposed, streams stopped; the writing side too for those
 * still open after a grace period); once none is left, release
 * h2o's state (its timers and queue, which keep the loop alive) and call
 * @cb. After http_stop_listening. */
void http_shutdown(struct http_server *s, void (*cb)(struct http_server *s));

/* Bind @ref to @req (see struct req_ref). */
void req_ref_attach(struct req_ref *ref, h2o_req_t *req);

/* Stop following the request (before @ref's memory is released); returns
 * the request, or NULL if it is already gone. */
h2o_req_t *req_ref_detach(struct req_ref *ref);

/* ---- responses: all add Content-Type and X-Varasto-Seq ---- */

/* Set the common headers on @req (status not sent yet). */
void http_prepare(h2o_req_t *req, int status);
void http_reply_json(h2o_req_t *req, int status, const char *body, size_t len);
/* Send the whole response body (after http_prepare and any headers). */
void http_send_body(h2o_req_t *req, const char *body, size_t len);
void http_reply_error(h2o_req_t *req, enum err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 503 with Retry-After. */
void http_reply_unavailable(h2o_req_t *req, const char *message);

/* ---- request helpers ---- */

/* Copy the URL-decoded query parameter @name into @out. Returns 1 if
 * present, 0 if absent, -1 if it does not fit or is malformed. */
int http_query(h2o_req_t *req, const char *name, char *out, size_t size);

/* Copy the request header @name (lower case) into @out; same returns. */
int http_header(h2o_req_t *req, const char *name, char *out, size_t size);

/* Parse a non-negative integer parameter: query @qname or header @hname.
 * Returns 1 found, 0 absent, -1 malformed or above 2^63-1. */
int http_u64_param(h2o_req_t *req, const char *qname, const char *hname, unsigned long long *out);

void http_add_header(h2o_req_t *req, const char *name, const char *value);

/* ---- parsing, exposed for tests ---- */

/* Percent-decode @len bytes of @src into @out ('+' is a space when
 * @plus_is_space); a NUL, a result that is no UTF-8, or an over-long one
 * fails. Returns 0 or -1. */
int http_url_decode(const char *src, size_t len, char *out, size_t size, int plus_is_space);

/* Match @path (@len bytes, no query) against @pattern, URL-decoding each
 * '*' segment into @params (allocated from @pool). Returns 1, 0 (no
 * match), or -1 (a segment is malformed, holds NUL or is no UTF-8). */
int http_route_match(h2o_mem_pool_t *pool, const char *pattern, const char *path, size_t len,
                     char **params);

#endif
