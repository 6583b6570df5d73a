/* The raft state machine: applies committed entries to the store, one SQLite
 * transaction per entry, and takes and restores snapshots.
 *
 * Determinism: apply reads only the entry and the database. The entry's raft
 * index is stored with its effects, so an entry that the database already
 * holds (after a restart replays the log) is skipped, never applied twice. */
#ifndef VARASTO_FSM_H
#define VARASTO_FSM_H

#include <raft.h>
#include <stdint.h>

#include "domain.h"
#include "store.h"
#include "util.h"

/* The outcome of applying one command, for the node that accepted it. Valid
 * during the observer's on_commit call for that command. Every node
 * computes the same outcome from the same entry. A log entry carries one or
 * more commands (entry.h frames). */
struct fsm_result {
    int status;          /* HTTP status; 0 when the entry was already applied */
    int replayed;        /* an Idempotency-Key replay */
    uint64_t seq;        /* last event seq after this command */
    uint64_t index;      /* raft index of the entry */
    unsigned pos;        /* the command's place in the entry, from 0 */
    uint64_t entry_hash; /* util_hash64 of the command's frame */
    struct buf body;     /* response body JSON */
};

struct fsm;

/* A snapshot copies the whole read model, so with a fixed threshold its
 * cost per entry grows with the database. The automatic threshold keeps it
 * near FSM_SNAPSHOT_BYTES_PER_ENTRY copied per entry applied, and bounds the
 * entries raft holds in memory between snapshots. */
#define FSM_SNAPSHOT_THRESHOLD_MIN 65536
#define FSM_SNAPSHOT_THRESHOLD_MAX 262144
#define FSM_SNAPSHOT_BYTES_PER_ENTRY 256

/* Called on the loop after each command is applied (inside the read
 * model's open transaction with group commit; f->result holds its outcome).
 * For an entry's last command, f->applied_index is already the entry's. */
struct fsm_observer {
    void *data;
    void (*on_commit)(void *data, const struct domain_event *events, unsigned n, uint64_t last_seq);
    /* The database was replaced by a snapshot. */
    void (*on_restore)(void *data, uint64_t last_seq);
};

struct fsm {
    struct raft_fsm raft_fsm;
    struct raft *raft; /* to learn each entry's index; set before start */
    struct store *store;
    struct fsm_observer observer;
    uint64_t applied_index;   /* applied here, committed to SQLite or not */
    uint64_t last_seq;        /* the last event applied */
    uint64_t committed_index; /* what the database holds (meta row) */
    uint64_t committed_seq;
    uint64_t idempotency_keep;   /* keys kept at least (count) */
    int64_t idempotency_keep_ms; /* keys kept at least (age) */
    struct fsm_result result;
    /* Group commit: entries applied in one loop iteration share a SQLite
     * transaction, committed by fsm_flush. Each entry's effects and index
     * still commit together, so a restart never splits or repeats one. */
    int group_commit;
    /* Deferred apply: raft's apply callback only queues the entry, and the
     * node applies the queue once per loop iteration (fsm_flush). Raft sends
     * a follower's AppendEntries result after its apply callback returns, so
     * the read model stays off the commit path. Entries stay queued until
     * the transaction holding their effects commits: [0, pending_off) are
     * applied in the open transaction, the rest not yet. */
    int defer;
    struct buf pending;
    size_t pending_off;
    uint64_t applying; /* the entry being applied (its commands one by one), or 0 */
    /* A write to the read model failed (a full disk, an I/O error): the
     * open transaction was rolled back and the entries it held are applied
     * again every retry_ms until a commit succeeds. Meanwhile the node
     * serves reads of the last committed state and refuses commands. Only
     * with deferred apply: without it, a failure is permanent. */
    int failed;
    uint64_t retry_at; /* monotonic ms of the next try */
    unsigned retry_ms;
    char errmsg[320]; /* why it failed */
    int in_tx;
    unsigned tx_entries;
    uint64_t tx_began_ms; /* monotonic */
    /* Automatic snapshot threshold: after each snapshot, raft's threshold
     * becomes its size over FSM_SNAPSHOT_BYTES_PER_ENTRY, within
     * [FSM_SNAPSHOT_THRESHOLD_MIN, FSM_SNAPSHOT_THRESHOLD_MAX]. */
    int snapshot_auto;
    /* The store's reader connection is in use by a snapshot or checkpoint. */
    int reader_busy;
    /* raft is taking a snapshot of this FSM: from fsm_snapshot until its
     * finalize (or a failed copy). */
    int snapshot_taking;
    uint64_t snap_index, snap_seq, snap_started;
    unsigned snap_generation;
};

/* Bind @f to an open @store. Returns 0. */
int fsm_init(struct fsm *f, struct store *store);
void fsm_close(struct fsm *f);

/* Take snapshots synchronously (FSM version 2); raft 0.22 runs version 3's
 * snapshot_async on the loop too, so this differs only in the version it
 * reports. Call before raft_init. */
void fsm_use_sync_snapshots(struct fsm *f);

/* Apply the deferred entries and commit the open read-model transaction,
 * if any. Snapshot, restore, close and the node's commit pacing call it.
 * Returns 0, or -1 while the read model cannot be written (fsm_failed). */
int fsm_flush(struct fsm *f);

/* Apply the deferred entries (in the open transaction, not committed).
 * Once per loop iteration; while failed, it retries when due. */
void fsm_apply_pending(struct fsm *f);

/* Whether the read model cannot be written now; then f->errmsg says why. */
int fsm_failed(const struct fsm *f);

/* Queue the entry @buf (copied) at @index for fsm_apply_pending: what
 * raft's apply callback does with deferred apply. Returns 0, or -1 when out
 * of memory. */
int fsm_queue_entry(struct fsm *f, const struct raft_buffer *buf, uint64_t index);

/* Drop queued entries (a snapshot is replacing the database). */
void fsm_forget_pending(struct fsm *f);

/* Read the applied index and seq back from a replaced database. */
void fsm_reload(struct fsm *f);

/* Set raft_fsm's snapshot and restore methods (fsm_snapshot.c). */
void fsm_snapshot_setup(struct fsm *f);

/* Queue committed entries in raft's apply callback and apply them in
 * fsm_flush (see struct fsm). Call before raft starts. */
void fsm_defer_apply(struct fsm *f);

/* The automatic snapshot threshold after a snapshot of @snapshot_bytes. */
unsigned fsm_snapshot_threshold_for(size_t snapshot_bytes);

/* Raft's applied index as far as the read model has caught up with it:
 * entries still queued by a deferred apply do not count, nor the entry
 * being applied until its last command is (observers called between its
 * commands must not serve a read for its index). */
uint64_t fsm_applied_raft_index(const struct fsm *f);

/* Apply one framed entry at @index (for tests and for the raft callback).
 * Returns 0, or -1 when the read model could not be written (fsm_failed). */
int fsm_apply_entry(struct fsm *f, const struct raft_buffer *buf, uint64_t index);

#endif
