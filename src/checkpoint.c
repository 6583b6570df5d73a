#include "checkpoint.h"

#include "fsm.h"
#include "log.h"
#include "store.h"

#define CHECKPOINT_WAL_PAGES 512 /* 2 MiB of WAL at 4 KiB pages */
#define WAL_CATCH_UP_PAGES 8192  /* 32 MiB */

void checkpoint_init(struct checkpoint *c, uv_loop_t *loop, struct store *store, struct fsm *fsm)
{
    c->loop = loop;
    c->store = store;
    c->fsm = fsm;
    c->running = 0;
    c->stopping = 0;
    c->work.data = c;
}

static void checkpoint_work(uv_work_t *w)
{
    struct checkpoint *c = w->data;
    if (store_reader_checkpoint(c->store) != 0) {
        log_warn("%s", c->store->reader_errmsg);
    }
}

static void checkpoint_done(uv_work_t *w, int status)
{
    struct checkpoint *c = w->data;
    (void)status;
    c->fsm->reader_busy = 0;
    c->running = 0;
    /* Under a steady write load the worker never catches the writer: the
     * WAL restarts only when every frame is copied back at the start of a
     * write, and it would grow without bound. Past WAL_CATCH_UP_PAGES the
     * loop copies the few frames written during the worker's checkpoint
     * itself, so the next write restarts the WAL (and the file is cut back
     * to the journal size limit). */
    if (c->store->wal_pages >= WAL_CATCH_UP_PAGES && !c->fsm->in_tx && !c->stopping) {
        store_checkpoint_now(c->store);
    }
    if (c->stopping && c->stopped_cb != NULL) {
        c->stopped_cb(c);
    }
}

void checkpoint_maybe_start(struct checkpoint *c)
{
    if (c->store->wal_pages < CHECKPOINT_WAL_PAGES || c->fsm->reader_busy || c->stopping) {
        return;
    }
    c->fsm->reader_busy = 1;
    c->running = 1;
    c->store->wal_pages = 0;
    uv_queue_work(c->loop, &c->work, checkpoint_work, checkpoint_done);
}

void checkpoint_stop(struct checkpoint *c, void (*cb)(struct checkpoint *c))
{
    c->stopping = 1;
    c->stopped_cb = cb;
    if (!c->running && cb != NULL) {
        cb(c);
    }
}
