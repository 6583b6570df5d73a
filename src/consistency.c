#include "consistency.h"

#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "config.h"
#include "forward.h"
#include "fsm.h"
#include "route.h"
#include "util.h"

#define READ_INDEX_PATH "/internal/barrier"

struct consistency_wait {
    struct consistency *c;
    consistency_cb cb;
    void *data;
    uint64_t min_seq;
    uint64_t min_index; /* a read index to apply first */
    uv_timer_t timer;
    int index_pending; /* a barrier or read-index request holds @w */
    int timer_open;    /* 1 open, 2 closing, 0 closed */
    int finished;
    struct consistency_wait *prev, *next;
};

/* A follower's linearizable reads of one loop iteration, waiting for one
 * read index from the leader: asked for after all of them arrived, it
 * covers every write committed before any of them. */
struct read_index_group {
    struct buf waits; /* struct consistency_wait pointers, back to back */
    char leader_http[CONFIG_ADDR_MAX];
};

void consistency_init(struct consistency *c, uv_loop_t *loop, struct fsm *fsm,
                      struct cluster *cluster, struct route *route, struct forward *forward,
                      unsigned timeout_ms)
{
    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->fsm = fsm;
    c->cluster = cluster;
    c->route = route;
    c->forward = forward;
    c->timeout_ms = timeout_ms;
}

static void wait_release(struct consistency_wait *w);

static void wait_timer_closed(uv_handle_t *h)
{
    struct consistency_wait *w = h->data;
    w->timer_open = 0;
    wait_release(w);
}

/* Free once neither the timer nor a barrier still points at @w. */
static void wait_release(struct consistency_wait *w)
{
    if (!w->finished) {
        return;
    }
    if (w->timer_open == 1) {
        w->timer_open = 2;
        uv_close((uv_handle_t *)&w->timer, wait_timer_closed);
        return;
    }
    if (w->timer_open == 0 && !w->index_pending) {
        free(w);
    }
}

/* End @w: unlink it, report @status (unless cancelled) and let it go. */
static void wait_finish(struct consistency_wait *w, enum consistency_status status)
{
    struct consistency *c = w->c;
    consistency_cb cb = w->cb;
    if (w->finished) {
        return;
    }
    w->finished = 1;
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else if (c->waits == w) {
        c->waits = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    }
    w->prev = w->next = NULL;
    w->cb = NULL;
    if (cb != NULL) {
        cb(w->data, status);
    }
    wait_release(w);
}

static void wait_timeout(uv_timer_t *t)
{
    wait_finish(t->data, CONSISTENCY_TIMEOUT);
}

void consistency_cancel(struct consistency_wait *w)
{
    w->cb = NULL;
    wait_finish(w, CONSISTENCY_UNAVAILABLE);
}

static int satisfied(const struct consistency *c, const struct consistency_wait *w)
{
    /* raft's count includes barriers and configuration entries, which a
     * read index may point at; entries still queued for a deferred apply
     * do not count */
    return fsm_applied_raft_index(c->fsm) >= w->min_index && c->fsm->last_seq >= w->min_seq;
}

/* @w's barrier or read index has come back (@ok) with @index: read once
 * the read model holds everything up to it, and still honour a min_seq
 * beyond that. */
static void wait_read_index(struct consistency_wait *w, int ok, uint64_t index)
{
    w->index_pending = 0;
    if (w->finished) {
        wait_release(w);
        return;
    }
    if (!ok) {
        wait_finish(w, CONSISTENCY_UNAVAILABLE);
        return;
    }
    w->min_index = index;
    if (satisfied(w->c, w)) {
        wait_finish(w, CONSISTENCY_READY);
    }
}

/* The leader's shared barrier (leadership confirmed if @status is 0). */
static void barrier_cb(void *data, int status, uint64_t index)
{
    wait_read_index(data, status == 0, index);
}

/* The leader answered a read-index request (@reply NULL: never sent). */
static void read_index_cb(void *data, const struct forward_reply *reply)
{
    struct read_index_group *g = data;
    int ok = reply != NULL && reply->ok && reply->status == 200 && reply->index != 0;
    struct consistency_wait **waits = (void *)g->waits.data;
    size_t i, n = g->waits.len / sizeof *waits;

    for (i = 0; i < n; i++) {
        wait_read_index(waits[i], ok, ok ? reply->index : 0);
    }
    buf_free(&g->waits);
    free(g);
}

/* Add @w to this iteration's read-index request to the leader at
 * @http_addr. Returns 0 or -1 (out of memory). */
static int read_index_join(struct consistency *c, struct consistency_wait *w, const char *http_addr)
{
    struct read_index_group *g = c->group;

    if (g != NULL && strcmp(g->leader_http, http_addr) != 0) {
        consistency_flush(c);
        g = NULL;
    }
    if (g == NULL) {
        g = calloc(1, sizeof *g);
        if (g == NULL) {
            return -1;
        }
        buf_init(&g->waits);
        util_copy(g->leader_http, sizeof g->leader_http, http_addr);
        c->group = g;
    }
    if (buf_append(&g->waits, &w, sizeof w) != 0) {
        return -1;
    }
    w->index_pending = 1;
    return 0;
}

void consistency_flush(struct consistency *c)
{
    struct read_index_group *g = c->group;

    if (g == NULL) {
        return;
    }
    c->group = NULL;
    if (forward_post(c->forward, g->leader_http, READ_INDEX_PATH, "", 0, c->timeout_ms,
                     read_index_cb, g) != 0) {
        read_index_cb(g, NULL);
    }
}

int consistency_ready(const struct consistency *c, uint64_t min_seq, int linearizable)
{
    return !linearizable && min_seq <= c->fsm->last_seq;
}

enum consistency_status consistency_start(struct consistency *c, uint64_t min_seq, int linearizable,
                                          consistency_cb cb, void *data,
                                          struct consistency_wait **wait)
{
    struct consistency_wait *w;
    const char *leader_http = NULL;
    enum route_target to = ROUTE_HERE;

    *wait = NULL;
    if (consistency_ready(c, min_seq, linearizable)) {
        return CONSISTENCY_READY;
    }
    if (c->closed) {
        return CONSISTENCY_UNAVAILABLE;
    }
    if (linearizable) {
        to = route_leader(c->route, &leader_http);
        if (to == ROUTE_NONE) {
            return CONSISTENCY_NO_LEADER;
        }
    }
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        return CONSISTENCY_NO_MEMORY;
    }
    w->c = c;
    w->cb = cb;
    w->data = data;
    w->min_seq = min_seq;
    uv_timer_init(c->loop, &w->timer);
    w->timer.data = w;
    w->timer_open = 1;
    uv_timer_start(&w->timer, wait_timeout, c->timeout_ms, 0);
    w->next = c->waits;
    if (c->waits != NULL) {
        c->waits->prev = w;
    }
    c->waits = w;
    *wait = w;
    if (!linearizable) {
        return CONSISTENCY_WAITING;
    }
    if (to == ROUTE_LEADER) {
        if (read_index_join(c, w, leader_http) != 0) {
            w->cb = NULL;
            wait_finish(w, CONSISTENCY_UNAVAILABLE);
            *wait = NULL;
            return CONSISTENCY_UNAVAILABLE;
        }
    } else if (cluster_barrier_join(c->cluster, barrier_cb, w) == 0) {
        w->index_pending = 1;
    } else {
        /* the node is closing, or out of memory: leadership unconfirmed */
        w->cb = NULL;
        wait_finish(w, CONSISTENCY_UNAVAILABLE);
        *wait = NULL;
        return CONSISTENCY_UNAVAILABLE;
    }
    return CONSISTENCY_WAITING;
}

void consistency_applied(struct consistency *c)
{
    struct consistency_wait *w = c->waits;
    while (w != NULL) {
        struct consistency_wait *next = w->next;
        if (!w->index_pending && satisfied(c, w)) {
            wait_finish(w, CONSISTENCY_READY);
        }
        w = next;
    }
}

void consistency_close(struct consistency *c)
{
    c->closed = 1;
    if (c->group != NULL) {
        struct read_index_group *g = c->group;
        c->group = NULL;
        read_index_cb(g, NULL);
    }
    while (c->waits != NULL) {
        wait_finish(c->waits, CONSISTENCY_UNAVAILABLE);
    }
}
