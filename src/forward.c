#include "forward.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define FORWARD_MAX_CONNECTIONS 64
#define NONCE_HEADER "x-varasto-peer-nonce:"

struct forward_req {
    struct forward *f;
    struct queue link; /* f->requests */
    CURL *easy;
    struct curl_slist *headers;
    struct buf body;
    uint64_t index;
    forward_cb cb;
    void *data;
    char addr[FORWARD_ADDR_MAX];
    char path[128];
    void *sent; /* a copy of the body, to sign again */
    size_t len;
    unsigned timeout_ms;
    int resent;
    char nonce[PEER_HTTP_NONCE_HEX + 1]; /* the receiver's, from its 401 */
    char url[256];
    char errbuf[CURL_ERROR_SIZE];
};

/* One uv_poll per socket curl uses. */
struct forward_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct forward *f;
    struct queue link; /* f->sockets, until closed */
};

static void req_free(struct forward_req *r)
{
    queue_remove(&r->link);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    buf_free(&r->body);
    free(r->sent);
    free(r);
}

static int post(struct forward *f, const char *http_addr, const char *path, const void *data,
                size_t len, unsigned timeout_ms, forward_cb cb, void *cb_data, int resent);

/* The receiver's nonce as this node last heard it ("" when never). */
static const char *nonce_of(const struct forward *f, const char *addr)
{
    unsigned i;
    for (i = 0; i < FORWARD_NONCES; i++) {
        if (strcmp(f->nonces[i].addr, addr) == 0) {
            return f->nonces[i].nonce;
        }
    }
    return "";
}

static void nonce_learn(struct forward *f, const char *addr, const char *nonce)
{
    unsigned i;
    for (i = 0; i < FORWARD_NONCES; i++) {
        if (strcmp(f->nonces[i].addr, addr) == 0) {
            break;
        }
    }
    if (i == FORWARD_NONCES) {
        i = f->next_nonce++ % FORWARD_NONCES;
        util_copy(f->nonces[i].addr, sizeof f->nonces[i].addr, addr);
    }
    util_copy(f->nonces[i].nonce, sizeof f->nonces[i].nonce, nonce);
}

/* A 401 that hands out the receiver's nonce: this node signed for another
 * process at that address (or knew none yet). Sent once more, signed for
 * this one; 1 when it was. */
static int resend_for_nonce(struct forward *f, struct forward_req *r,
                            const struct forward_reply *reply)
{
    if (!reply->ok || reply->status != 401 || r->nonce[0] == '\0' || r->resent) {
        return 0;
    }
    nonce_learn(f, r->addr, r->nonce);
    return post(f, r->addr, r->path, r->sent, r->len, r->timeout_ms, r->cb, r->data, 1) == 0;
}

static void check_done(struct forward *f)
{
    CURLMsg *msg;
    int pending;

    while ((msg = curl_multi_info_read(f->multi, &pending)) != NULL) {
        struct forward_req *r = NULL;
        struct forward_reply reply;
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        memset(&reply, 0, sizeof reply);
        if (msg->data.result == CURLE_OK) {
            reply.ok = 1;
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &reply.status);
            reply.index = r->index;
            reply.body = r->body.data ? r->body.data : "";
            reply.len = r->body.len;
        } else {
            reply.error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(msg->data.result);
        }
        curl_multi_remove_handle(f->multi, r->easy);
        f->in_flight--;
        queue_remove(&r->link);
        if (!resend_for_nonce(f, r, &reply)) {
            r->cb(r->data, &reply);
        }
        req_free(r);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct forward_sock *s = h->data;
    int flags = 0;
    int running;

    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) {
            flags |= CURL_CSELECT_IN;
        }
        if (events & UV_WRITABLE) {
            flags |= CURL_CSELECT_OUT;
        }
    }
    curl_multi_socket_action(s->f->multi, s->fd, flags, &running);
    check_done(s->f);
}

static void on_timer(uv_timer_t *t)
{
    struct forward *f = t->data;
    int running;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(f);
}

static int timer_function(CURLM *multi, long timeout_ms, void *userp)
{
    struct forward *f = userp;
    (void)multi;
    if (timeout_ms < 0) {
        uv_timer_stop(&f->timer);
    } else {
        /* 0 means "as soon as possible": the next loop iteration (this is
         * called from inside curl, which must not be re-entered). A 1 ms
         * timer here delayed every forwarded batch by up to a millisecond. */
        uv_timer_start(&f->timer, on_timer, (uint64_t)timeout_ms, 0);
    }
    return 0;
}

static void sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sock_close(struct forward_sock *s)
{
    queue_remove(&s->link);
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static int socket_function(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct forward *f = userp;
    struct forward_sock *s = socketp;
    int events = 0;
    (void)easy;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            sock_close(s);
            curl_multi_assign(f->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL) {
            return -1;
        }
        s->fd = fd;
        s->f = f;
        queue_insert_tail(&f->sockets, &s->link);
        uv_poll_init_socket(f->loop, &s->poll, fd);
        s->poll.data = s;
        curl_multi_assign(f->multi, fd, s);
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= UV_READABLE;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= UV_WRITABLE;
    }
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

int forward_init(struct forward *f, uv_loop_t *loop, struct peer_http *peer,
                 const struct forward_tls *tls)
{
    memset(f, 0, sizeof *f);
    f->loop = loop;
    f->peer = peer;
    static const struct forward_tls plain = {0, NULL, NULL, NULL};
    f->tls = tls != NULL ? tls : &plain;
    queue_init(&f->requests);
    queue_init(&f->sockets);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return -1;
    }
    f->multi = curl_multi_init();
    if (f->multi == NULL) {
        curl_global_cleanup();
        return -1;
    }
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, socket_function);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_function);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    /* HTTP/1.1 keep-alive: each connection carries one command at a time
     * and is reused for the next; up to FORWARD_MAX_CONNECTIONS at once.
     * (h2c to h2o 2.2.5 fails in libcurl 7.88 with "Error in the HTTP2
     * framing layer" once a response is delayed; see docs/decisions.md.) */
    curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)FORWARD_MAX_CONNECTIONS);
    curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, (long)FORWARD_MAX_CONNECTIONS * 2);
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *userp)
{
    struct forward_req *r = userp;
    return buf_append(&r->body, ptr, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *userp)
{
    struct forward_req *r = userp;
    size_t len = size * n;
    if (len > 16 && strncasecmp(ptr, "x-varasto-index:", 16) == 0) {
        r->index = strtoull(ptr + 16, NULL, 10);
    } else if (len >= sizeof NONCE_HEADER - 1 + PEER_HTTP_NONCE_HEX &&
               strncasecmp(ptr, NONCE_HEADER, sizeof NONCE_HEADER - 1) == 0) {
        const char *v = ptr + sizeof NONCE_HEADER - 1;
        size_t rest = len - (sizeof NONCE_HEADER - 1);
        while (rest > 0 && *v == ' ') {
            v++, rest--;
        }
        if (rest >= PEER_HTTP_NONCE_HEX) {
            memcpy(r->nonce, v, PEER_HTTP_NONCE_HEX);
            r->nonce[PEER_HTTP_NONCE_HEX] = '\0';
        }
    }
    return len;
}

int forward_post(struct forward *f, const char *http_addr, const char *path, const void *data,
                 size_t len, unsigned timeout_ms, forward_cb cb, void *cb_data)
{
    return post(f, http_addr, path, data, len, timeout_ms, cb, cb_data, 0);
}

static int post(struct forward *f, const char *http_addr, const char *path, const void *data,
                size_t len, unsigned timeout_ms, forward_cb cb, void *cb_data, int resent)
{
    char auth[PEER_HTTP_HEADER_MAX + 32];
    struct forward_req *r;

    if (f->closing || strlen(http_addr) >= sizeof r->addr || strlen(path) >= sizeof r->path) {
        return -1;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        return -1;
    }
    r->f = f;
    queue_init(&r->link);
    r->cb = cb;
    r->data = cb_data;
    r->len = len;
    r->timeout_ms = timeout_ms;
    r->resent = resent;
    util_copy(r->addr, sizeof r->addr, http_addr);
    util_copy(r->path, sizeof r->path, path);
    buf_init(&r->body);
    snprintf(r->url, sizeof r->url, "%s://%s%s", f->tls->https ? "https" : "http", http_addr, path);
    /* the admin token never leaves the node: a signature of this request,
     * for the process at that address (peer_auth.h) */
    memcpy(auth, "Authorization: ", 15);
    peer_http_sign(f->peer, nonce_of(f, http_addr), "POST", path, data, len, auth + 15);
    r->sent = malloc(len > 0 ? len : 1);
    r->easy = curl_easy_init();
    r->headers = curl_slist_append(NULL, auth);
    r->headers = curl_slist_append(r->headers, "Content-Type: application/octet-stream");
    if (r->sent == NULL || r->easy == NULL || r->headers == NULL) {
        curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free(r->sent);
        free(r);
        return -1;
    }
    if (len > 0) {
        memcpy(r->sent, data, len);
    }
    curl_easy_setopt(r->easy, CURLOPT_URL, r->url);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->sent);
    curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    if (f->tls->https && f->tls->ca != NULL) {
        /* nodes are known by address; the cluster's CA says who they are */
        curl_easy_setopt(r->easy, CURLOPT_CAINFO, f->tls->ca);
        curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (f->tls->https && f->tls->cert != NULL) {
        curl_easy_setopt(r->easy, CURLOPT_SSLCERT, f->tls->cert);
        curl_easy_setopt(r->easy, CURLOPT_SSLKEY, f->tls->key);
    }
    if (curl_multi_add_handle(f->multi, r->easy) != CURLM_OK) {
        curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free(r->sent);
        free(r);
        return -1;
    }
    f->in_flight++;
    queue_insert_tail(&f->requests, &r->link);
    return 0;
}

void forward_close(struct forward *f)
{
    if (f->multi == NULL || f->closing) {
        return;
    }
    f->closing = 1;
    uv_timer_stop(&f->timer);
    while (!queue_empty(&f->requests)) {
        struct forward_req *r = QUEUE_DATA(f->requests.next, struct forward_req, link);
        struct forward_reply reply;
        memset(&reply, 0, sizeof reply);
        reply.error = "the node is stopping";
        curl_multi_remove_handle(f->multi, r->easy);
        f->in_flight--;
        queue_remove(&r->link);
        r->cb(r->data, &reply);
        req_free(r);
    }
    curl_multi_cleanup(f->multi); /* closes curl's kept-alive connections */
    f->multi = NULL;
    while (!queue_empty(&f->sockets)) {
        sock_close(QUEUE_DATA(f->sockets.next, struct forward_sock, link));
    }
    uv_close((uv_handle_t *)&f->timer, NULL);
    curl_global_cleanup();
}
