/* Snapshots and restores of the read model (raft FSM version 3): the
 * snapshot's header (magic, index, seq) and SQLite's own image of the
 * database, taken on the store's reader connection. raft 0.22 calls
 * snapshot_async on the loop thread right after snapshot (src/legacy.c,
 * legacyTakeSnapshot): the copy no longer runs off the loop. */
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "log.h"

#define SNAPSHOT_MAGIC 0x5641525354534e50ull /* "VARSTSNP" */
#define SNAPSHOT_HEADER 32

static void put_u64(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

unsigned fsm_snapshot_threshold_for(size_t snapshot_bytes)
{
    size_t t = snapshot_bytes / FSM_SNAPSHOT_BYTES_PER_ENTRY;
    t = t < FSM_SNAPSHOT_THRESHOLD_MIN ? FSM_SNAPSHOT_THRESHOLD_MIN : t;
    t = t > FSM_SNAPSHOT_THRESHOLD_MAX ? FSM_SNAPSHOT_THRESHOLD_MAX : t;
    return (unsigned)t;
}

/* Snapshot, in three steps (raft FSM version 3): take a stable read view of
 * the committed database (cheap); copy it (snapshot_async, which raft 0.15
 * ran on a worker thread and raft 0.22 runs on the loop); release the copy
 * and the view once raft has written it. */
static int fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct fsm *f = rf->data;

    if (fsm_flush(f) != 0) {
        /* the read model lags raft's applied index: a snapshot now would
         * let raft drop entries the database does not hold yet */
        return RAFT_BUSY;
    }
    if (f->reader_busy) {
        return RAFT_BUSY; /* a checkpoint is running; raft retries later */
    }
    if (store_reader_begin(f->store) != 0) {
        log_error("snapshot: %s", f->store->errmsg);
        return RAFT_BUSY;
    }
    f->reader_busy = 1;
    f->snapshot_taking = 1;
    f->snap_index = f->applied_index;
    f->snap_seq = f->last_seq;
    f->snap_started = util_mono_ms();
    f->snap_generation = f->store->generation;
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* The copy failed (@rv): raft 0.22 abandons the snapshot without calling
 * snapshot_finalize, so the read view ends here. */
static int snapshot_abandon(struct fsm *f, int rv)
{
    log_warn("snapshot at index %llu failed: %s", (unsigned long long)f->snap_index,
             rv == RAFT_NOMEM ? "out of memory" : f->store->reader_errmsg);
    store_reader_end(f->store);
    f->reader_busy = 0;
    f->snapshot_taking = 0;
    return rv;
}

/* The snapshot is two buffers, which raft writes one after the other: our
 * header and SQLite's own image of the database, handed over without a copy
 * (a copy of a large read model was most of a snapshot's cost). */
static int fsm_snapshot_async(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct fsm *f = rf->data;
    unsigned char *image = NULL;
    size_t size = 0;
    uint8_t *p;

    if (store_reader_serialize(f->store, f->snap_generation, &image, &size) != 0) {
        return snapshot_abandon(f, RAFT_IOERR);
    }
    *bufs = raft_malloc(2 * sizeof **bufs);
    p = raft_calloc(1, SNAPSHOT_HEADER);
    if (*bufs == NULL || p == NULL) {
        raft_free(*bufs);
        *bufs = NULL;
        raft_free(p);
        store_image_free(image);
        return snapshot_abandon(f, RAFT_NOMEM);
    }
    put_u64(p, SNAPSHOT_MAGIC);
    put_u64(p + 8, f->snap_index);
    put_u64(p + 16, f->snap_seq);
    (*bufs)[0].base = p;
    (*bufs)[0].len = SNAPSHOT_HEADER;
    (*bufs)[1].base = image;
    (*bufs)[1].len = size;
    *n_bufs = 2;
    return 0;
}

/* The same snapshot taken in one go (FSM version 2), as raft 0.22 takes a
 * version 3 one anyway. */
static int fsm_snapshot_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs);

static int fsm_snapshot_sync(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    int rv = fsm_snapshot(rf, bufs, n_bufs);
    if (rv != 0) {
        return rv;
    }
    return fsm_snapshot_async(rf, bufs, n_bufs); /* which ends the view if it fails */
}

void fsm_use_sync_snapshots(struct fsm *f)
{
    f->raft_fsm.version = 2;
    f->raft_fsm.snapshot = fsm_snapshot_sync;
    f->raft_fsm.snapshot_async = NULL;
}

static int fsm_snapshot_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct fsm *f = rf->data;
    f->snapshot_taking = 0;
    if (f->reader_busy) {
        if (*bufs != NULL && *n_bufs == 2) {
            log_info("snapshot at index %llu, seq %llu, %zu bytes, %llu ms",
                     (unsigned long long)f->snap_index, (unsigned long long)f->snap_seq,
                     (*bufs)[1].len, (unsigned long long)(util_mono_ms() - f->snap_started));
            if (f->snapshot_auto) {
                raft_set_snapshot_threshold(f->raft, fsm_snapshot_threshold_for((*bufs)[1].len));
            }
        } else {
            log_warn("snapshot at index %llu failed: %s", (unsigned long long)f->snap_index,
                     f->store->reader_errmsg);
        }
        store_reader_end(f->store);
        f->reader_busy = 0;
    }
    if (*bufs != NULL) {
        raft_free((*bufs)[0].base);
        if (*n_bufs == 2) {
            store_image_free((*bufs)[1].base);
        }
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct fsm *f = rf->data;
    const uint8_t *p = buf->base;
    uint64_t index, seq;
    int rv = 0;

    if (buf->len < SNAPSHOT_HEADER || get_u64(p) != SNAPSHOT_MAGIC) {
        log_error("restore: not a snapshot of ours");
        return RAFT_MALFORMED;
    }
    index = get_u64(p + 8);
    seq = get_u64(p + 16);
    if (fsm_flush(f) != 0) {
        /* the snapshot replaces whatever could not be written */
        fsm_forget_pending(f);
    }
    if (index <= f->applied_index) {
        /* Startup: our database is already at or past the snapshot. */
        log_info("restore: database at index %llu already covers snapshot at %llu",
                 (unsigned long long)f->applied_index, (unsigned long long)index);
    } else if (store_replace(f->store, p + SNAPSHOT_HEADER, buf->len - SNAPSHOT_HEADER) != 0) {
        log_error("restore: %s", f->store->errmsg);
        rv = RAFT_IOERR;
    } else {
        fsm_reload(f);
        log_info("restored snapshot at index %llu, seq %llu", (unsigned long long)index,
                 (unsigned long long)seq);
        if (f->observer.on_restore != NULL) {
            f->observer.on_restore(f->observer.data, f->last_seq);
        }
    }
    if (rv == 0) {
        raft_free(buf->base);
    }
    return rv;
}

void fsm_snapshot_setup(struct fsm *f)
{
    f->raft_fsm.version = 3;
    f->raft_fsm.snapshot = fsm_snapshot;
    f->raft_fsm.snapshot_async = fsm_snapshot_async;
    f->raft_fsm.snapshot_finalize = fsm_snapshot_finalize;
    f->raft_fsm.restore = fsm_restore;
}
