/* The push hub: committed events fan out to stream subscribers.
 *
 * Recent events stay in a fixed-size in-memory ring; a subscriber whose
 * cursor is older than the ring reads its backlog from SQLite in pages. A
 * subscriber pulls at most a bounded batch at a time and pulls again only
 * when its transport has written the previous batch, so a slow or stalled
 * subscriber costs bounded memory and never blocks the loop or others. */
#ifndef VARASTO_PUSH_H
#define VARASTO_PUSH_H

#include <stdint.h>

#include "domain.h"
#include "store.h"
#include "type_filter.h"
#include "util.h"

#define PUSH_RING_SIZE 8192          /* recent events kept in memory */
#define PUSH_BATCH_BYTES (64 * 1024) /* most bytes one pull appends */
#define PUSH_PAGE_EVENTS 1000        /* backlog rows read per SQLite page */
#define PUSH_WAKE_SLICE 64           /* subscribers woken per loop iteration */
#define PUSH_SCAN_BUDGET 8192        /* backlog events one pull looks at */

struct push_ring_slot {
    uint64_t seq;
    char type[48];
    char *json;
    size_t len;
};

struct push_sub;

/* Appends one event, framed for the transport, to @out. */
typedef void (*push_frame_fn)(struct buf *out, uint64_t seq, const char *type, const char *json,
                              size_t len);

#define PUSH_KEY_ID_MAX 64

struct push_sub {
    struct push *hub;
    char key_id[PUSH_KEY_ID_MAX]; /* the API key it was opened with; "" for the admin token */
    uint64_t cursor;              /* last seq delivered or skipped by filter */
    struct type_filter filter;
    push_frame_fn frame;
    int waiting; /* asked to be woken when events arrive */
    void (*wake)(struct push_sub *sub);
    void (*end)(struct push_sub *sub);     /* the node is stopping: end the stream */
    void (*revoked)(struct push_sub *sub); /* its API key was removed; NULL: end */
    void *data;
    struct push_sub *prev, *next;
};

struct push {
    struct store *store;
    struct push_ring_slot ring[PUSH_RING_SIZE];
    uint64_t last_seq;     /* highest committed seq */
    uint64_t ring_first;   /* lowest seq held in the ring (> last_seq: empty) */
    struct push_sub *subs; /* linked list of subscribers */
    unsigned n_subs;
    /* Called when subscribers are left to wake: the owner calls
     * push_wake_some on its next loop iterations until it returns 0. */
    void (*on_backlog)(void *data);
    void *on_backlog_data;
};

void push_init(struct push *p, struct store *store, uint64_t last_seq);
void push_close(struct push *p);

/* Committed events (FSM observer). Copies what it keeps. An
 * apikey.Removed among them ends every stream opened with that key. */
void push_publish(struct push *p, const struct domain_event *events, unsigned n, uint64_t last_seq);

/* The read model was replaced (snapshot restore): forget the ring. */
void push_reset(struct push *p, uint64_t last_seq);

/* Wake at most @budget waiting subscribers that have events to read;
 * returns how many are left to wake. */
unsigned push_wake_some(struct push *p, unsigned budget);

/* The node is stopping: call every subscriber's end (which unsubscribes it,
 * at once or once its transport has finished). */
void push_end_all(struct push *p);

/* Register @sub (caller-allocated, fields cursor/filter/frame/wake/end set). */
void push_subscribe(struct push *p, struct push_sub *sub);
void push_unsubscribe(struct push_sub *sub);

/* Append the next batch for @sub to @out (at most about PUSH_BATCH_BYTES)
 * and advance its cursor. Returns the number of events appended. 0 with
 * sub->waiting set: caught up (or the next events are missing here: the
 * caller checks retention), now waiting to be woken; 0 without it: a filter
 * skipped a whole batch, pull again. */
unsigned push_pull(struct push_sub *sub, struct buf *out);

#endif
