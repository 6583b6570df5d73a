/* The read model's WAL checkpoints, scheduled by the node: once the WAL has
 * grown past CHECKPOINT_WAL_PAGES, a PASSIVE checkpoint runs on the store's
 * reader connection in libuv's thread pool (it fsyncs), never on the loop. */
#ifndef VARASTO_CHECKPOINT_H
#define VARASTO_CHECKPOINT_H

#include <uv.h>

struct fsm;
struct store;

struct checkpoint {
    uv_loop_t *loop;
    struct store *store; /* borrowed */
    struct fsm *fsm;     /* borrowed: shares the reader with snapshots */
    uv_work_t work;
    int running;
    int stopping;                             /* start no more */
    void (*stopped_cb)(struct checkpoint *c); /* see checkpoint_stop */
};

void checkpoint_init(struct checkpoint *c, uv_loop_t *loop, struct store *store, struct fsm *fsm);

/* Start a checkpoint if the WAL is big enough and the reader is free. */
void checkpoint_maybe_start(struct checkpoint *c);

/* Start no more checkpoints; @cb fires once none is running (possibly
 * before this returns). */
void checkpoint_stop(struct checkpoint *c, void (*cb)(struct checkpoint *c));

#endif
