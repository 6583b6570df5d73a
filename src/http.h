/* The HTTP server (h2o on the node's libuv loop): listener, routing, auth,
 * and the response helpers every api_* module uses. */
#ifndef VARASTO_HTTP_H
#define VARASTO_HTTP_H

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <uv.h>

#include "errors.h"

#define HTTP_MAX_BODY (1024 * 1024)   /* SPEC §2: larger bodies get 413 */
#define HTTP_MAX_PARAMS 2

struct node;

/* A route handler. @params are the URL-decoded `*` segments of the pattern. */
typedef void (*http_handler_fn)(struct node *node, h2o_req_t *req, char **params);

struct http_route {
    const char *method;
    const char *pattern;  /* '*' matches one path segment */
    http_handler_fn handler;
    int public_;          /* no Authorization needed */
    int read;             /* honours min_seq and consistency */
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

struct read_index_group;

struct http_server {
    struct node *node;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    int listening;
    struct http_wait *waits;  /* requests parked on min_seq or a barrier */
    struct read_index_group *read_index; /* see http_flush */
};

/* Listen on @addr (HOST:PORT). Returns 0 or -1 with a message in @err. */
int http_start(struct http_server *s, struct node *node, uv_loop_t *loop, const char *addr,
               char *err, size_t err_size);

/* Stop accepting, fail parked requests, and release h2o state. */
void http_stop(struct http_server *s);

/* Once per loop iteration: a follower asks the leader for one read index
 * for all the linearizable reads that arrived in the iteration. */
void http_flush(struct http_server *s);

/* The node applied events up to @seq: resume requests waiting for it. */
void http_seq_applied(struct http_server *s, unsigned long long seq);

/* Bind @ref to @req (see struct req_ref). */
void req_ref_attach(struct req_ref *ref, h2o_req_t *req);

/* Stop following the request (before @ref's memory is released); returns
 * the request, or NULL if it is already gone. */
h2o_req_t *req_ref_detach(struct req_ref *ref);

/* ---- responses: all add Content-Type and X-Varasto-Seq ---- */

/* Set the common headers on @req (status not sent yet). */
void http_prepare(struct node *node, h2o_req_t *req, int status);
void http_reply_json(struct node *node, h2o_req_t *req, int status, const char *body, size_t len);
/* Send the whole response body (after http_prepare and any headers). */
void http_send_body(h2o_req_t *req, const char *body, size_t len);
void http_reply_error(struct node *node, h2o_req_t *req, enum err_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 503 with Retry-After. */
void http_reply_unavailable(struct node *node, h2o_req_t *req, const char *message);

/* ---- request helpers ---- */

/* Copy the URL-decoded query parameter @name into @out. Returns 1 if
 * present, 0 if absent, -1 if it does not fit or is malformed. */
int http_query(h2o_req_t *req, const char *name, char *out, size_t size);

/* Copy the request header @name (lower case) into @out; same returns. */
int http_header(h2o_req_t *req, const char *name, char *out, size_t size);

/* Parse a non-negative integer parameter: query @qname or header @hname.
 * Returns 1 found, 0 absent, -1 malformed. */
int http_u64_param(h2o_req_t *req, const char *qname, const char *hname,
                   unsigned long long *out);

void http_add_header(h2o_req_t *req, const char *name, const char *value);

#endif
