/* The FSM: one transaction per entry with its index, idempotency, restart
 * without double apply, snapshot and restore. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "entry.h"
#include "testlib.h"
#include "util.h"

static void test_index_recorded_and_not_reapplied(void)
{
    struct harness h;
    struct raft_buffer buf;
    harness_open(&h);
    CHECK_INT(harness_apply(&h, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"a\"}", "d1",
                            NULL),
              200);
    CHECK_INT(h.fsm.applied_index, 1);
    CHECK_INT(harness_scalar(&h, "SELECT idx FROM applied"), 1);
    /* restart: the database remembers index and seq */
    harness_reopen(&h);
    CHECK_INT(h.fsm.applied_index, 1);
    CHECK_INT(h.fsm.last_seq, 1);
    /* raft replays index 1 after a restart: skipped, no second directory */
    buf.base = NULL;
    buf.len = 0;
    CHECK_INT(fsm_apply_entry(&h.fsm, &buf, 1), 0);
    CHECK_INT(h.fsm.result.status, 0);
    CHECK_INT(harness_scalar(&h, "SELECT COUNT(*) FROM events"), 1);
    harness_close(&h);
}

static void test_malformed_entry_is_rejected_not_fatal(void)
{
    struct harness h;
    struct raft_buffer buf;
    char junk[16] = "not an entry!!!";
    harness_open(&h);
    buf.base = junk;
    buf.len = sizeof junk;
    CHECK_INT(fsm_apply_entry(&h.fsm, &buf, 1), 0);
    CHECK_INT(h.fsm.result.status, 400);
    CHECK_INT(h.fsm.applied_index, 1);
    harness_close(&h);
}

static void test_idempotency(void)
{
    struct harness h;
    char first[256];
    harness_open(&h);
    CHECK_INT(harness_apply(&h, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"a\"}", "d1",
                            "key-1"),
              200);
    snprintf(first, sizeof first, "%s", h.fsm.result.body.data);
    CHECK_INT(h.fsm.result.replayed, 0);
    /* the same key and body (a retry, with a different generated id): replay */
    CHECK_INT(harness_apply(&h, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"a\"}", "d2",
                            "key-1"),
              200);
    CHECK_INT(h.fsm.result.replayed, 1);
    CHECK_STR(h.fsm.result.body.data, first);
    CHECK_INT(harness_scalar(&h, "SELECT COUNT(*) FROM directories"), 2);
    CHECK_INT(harness_scalar(&h, "SELECT COUNT(*) FROM events"), 1);
    /* the same key with another body: 422 */
    CHECK_INT(harness_apply(&h, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"b\"}", "d3",
                            "key-1"),
              422);
    CHECK_CONTAINS(h.fsm.result.body.data, "idempotency_mismatch");
    /* survives a restart */
    harness_reopen(&h);
    h.index = h.fsm.applied_index;
    CHECK_INT(harness_apply(&h, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"a\"}", "d4",
                            "key-1"),
              200);
    CHECK_INT(h.fsm.result.replayed, 1);
    CHECK_STR(h.fsm.result.body.data, first);
    /* a rejected command's outcome is replayed too */
    CHECK_INT(harness_apply(&h, "directory.Delete", "{\"Id\":\"root\"}", NULL, "key-2"), 409);
    CHECK_INT(harness_apply(&h, "directory.Delete", "{\"Id\":\"root\"}", NULL, "key-2"), 409);
    CHECK_INT(h.fsm.result.replayed, 1);
    harness_close(&h);
}

static void test_idempotency_pruned_by_log_time(void)
{
    struct harness h;
    int i;
    harness_open(&h);
    h.fsm.idempotency_keep = 2;
    h.fsm.idempotency_keep_ms = 1000;
    CHECK_INT(harness_apply(&h, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"old\"}", "d0",
                            "old-key"),
              200);
    h.time_ms += 5000;
    /* prune runs every 1024 entries, judged by entry time and count */
    for (i = 0; i < 1100; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%d", i);
        harness_apply(&h, "directory.ChangeDescription", "{\"Id\":\"root\",\"Description\":\"x\"}",
                      NULL, key);
    }
    CHECK_INT(harness_scalar(&h, "SELECT COUNT(*) FROM idempotency WHERE key='old-key'"), 0);
    /* recent keys (within keep_ms) are kept */
    CHECK(harness_scalar(&h, "SELECT COUNT(*) FROM idempotency") > 1000);
    harness_close(&h);
}

/* Take a snapshot the way raft does with FSM version 3. */
static void take_snapshot(struct fsm *f, struct raft_buffer **bufs, unsigned *n)
{
    CHECK_INT(f->raft_fsm.snapshot(&f->raft_fsm, bufs, n), 0);
    CHECK_INT(f->raft_fsm.snapshot_async(&f->raft_fsm, bufs, n), 0);
}

/* The snapshot as raft stores and sends it: its buffers one after the other. */
static struct raft_buffer snapshot_bytes(const struct raft_buffer *bufs, unsigned n)
{
    struct raft_buffer out = {NULL, 0};
    unsigned i;
    size_t off = 0;
    for (i = 0; i < n; i++) {
        out.len += bufs[i].len;
    }
    out.base = raft_malloc(out.len);
    CHECK(out.base != NULL);
    for (i = 0; i < n; i++) {
        memcpy((char *)out.base + off, bufs[i].base, bufs[i].len);
        off += bufs[i].len;
    }
    return out;
}

static void test_snapshot_restore(void)
{
    struct harness a, b;
    struct raft_buffer *bufs = NULL;
    unsigned n = 0;
    struct raft_buffer copy;
    int i;

    harness_open(&a);
    for (i = 0; i < 50; i++) {
        char json[96], id[16];
        snprintf(json, sizeof json, "{\"Parent\":\"root\",\"Name\":\"n%d\"}", i);
        snprintf(id, sizeof id, "d%d", i);
        CHECK_INT(harness_apply(&a, "directory.Create", json, id, i % 2 ? "k" : NULL) > 0, 1);
    }
    take_snapshot(&a.fsm, &bufs, &n);
    CHECK(n >= 1);
    /* the snapshot is a stable view: applies go on while it is copied */
    CHECK_INT(harness_apply(&a, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"mid\"}", "dm",
                            NULL),
              200);

    /* restore into another node's empty database */
    harness_open(&b);
    copy = snapshot_bytes(bufs, n);
    CHECK_INT(a.fsm.raft_fsm.snapshot_finalize(&a.fsm.raft_fsm, &bufs, &n), 0);
    CHECK_INT(b.fsm.raft_fsm.restore(&b.fsm.raft_fsm, &copy), 0);
    CHECK_INT(b.fsm.applied_index, a.fsm.applied_index - 1);
    CHECK_INT(b.fsm.last_seq, a.fsm.last_seq - 1);
    CHECK_INT(harness_scalar(&b, "SELECT COUNT(*) FROM directories"),
              harness_scalar(&a, "SELECT COUNT(*) FROM directories") - 1);
    CHECK_INT(harness_scalar(&b, "SELECT COUNT(*) FROM directories WHERE name='mid'"), 0);
    CHECK_INT(harness_scalar(&b, "SELECT COUNT(*) FROM idempotency"), 1);
    /* the restored database is back in WAL mode */
    CHECK_INT(harness_scalar(&b, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);

    /* the restored node keeps applying after the snapshot */
    b.index = b.fsm.applied_index;
    CHECK_INT(harness_apply(&b, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"after\"}",
                            "dz", NULL),
              200);
    CHECK_INT(b.fsm.last_seq, a.fsm.last_seq);

    /* and after a restart it is still there, with no double apply */
    harness_reopen(&b);
    CHECK_INT(b.fsm.applied_index, a.fsm.applied_index);
    CHECK_INT(harness_scalar(&b, "SELECT COUNT(*) FROM directories WHERE name='after'"), 1);

    /* a snapshot older than the database is not restored over it (restart) */
    take_snapshot(&b.fsm, &bufs, &n);
    copy = snapshot_bytes(bufs, n);
    b.fsm.raft_fsm.snapshot_finalize(&b.fsm.raft_fsm, &bufs, &n);
    b.index = b.fsm.applied_index;
    CHECK_INT(harness_apply(&b, "directory.Create", "{\"Parent\":\"root\",\"Name\":\"later\"}",
                            "dy", NULL),
              200);
    CHECK_INT(b.fsm.raft_fsm.restore(&b.fsm.raft_fsm, &copy), 0);
    CHECK_INT(harness_scalar(&b, "SELECT COUNT(*) FROM directories WHERE name='later'"), 1);

    harness_close(&a);
    harness_close(&b);
}

static void test_restore_rejects_foreign_bytes(void)
{
    struct harness h;
    struct raft_buffer buf;
    harness_open(&h);
    buf.len = 64;
    buf.base = raft_calloc(1, 64);
    CHECK(h.fsm.raft_fsm.restore(&h.fsm.raft_fsm, &buf) != 0);
    raft_free(buf.base);
    harness_close(&h);
}

/* The automatic snapshot threshold: never below the minimum, then about
 * one entry per 256 bytes of snapshot (so its copy costs ~256 bytes per
 * entry), and capped so raft's in-memory log stays bounded. */
static int observed;

static void count_commit(void *data, const struct domain_event *events, unsigned n,
                         uint64_t last_seq)
{
    (void)data;
    (void)events;
    (void)n;
    (void)last_seq;
    observed++;
}

static void queue(struct harness *h, const char *name, uint64_t index)
{
    struct raft_buffer buf;
    char json[600], id[16];
    snprintf(json, sizeof json, "{\"Parent\":\"root\",\"Name\":\"%s\"}", name);
    snprintf(id, sizeof id, "d%llu", (unsigned long long)index);
    harness_entry("directory.Create", json, id, NULL, h->time_ms, &buf);
    CHECK_INT(fsm_queue_entry(&h->fsm, &buf, index), 0);
    raft_free(buf.base);
}

/* The disk under the read model fills up (SQLite's page limit stands in for
 * it): the transaction rolls back whole, the node refuses snapshots (raft
 * would drop entries the database lacks) and retries; with room again every
 * entry is applied exactly once, in order. */
static void test_write_failure_rolls_back_and_recovers(void)
{
    struct harness h;
    struct raft_buffer *bufs = NULL;
    unsigned n_bufs = 0;
    char name[300], sql[64];
    uint64_t i;

    harness_open(&h);
    fsm_defer_apply(&h.fsm);
    h.fsm.group_commit = 1;
    h.fsm.retry_ms = 0;
    h.fsm.observer.on_commit = count_commit;
    queue(&h, "first", 1);
    CHECK_INT(fsm_flush(&h.fsm), 0);
    CHECK_INT(h.fsm.committed_index, 1);

    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
             harness_scalar(&h, "PRAGMA page_count"));
    harness_exec(&h, sql);
    for (i = 2; i <= 200; i++) {
        snprintf(name, sizeof name, "%0250llu", (unsigned long long)i);
        queue(&h, name, i);
    }
    fsm_apply_pending(&h.fsm);
    CHECK(fsm_failed(&h.fsm));
    CHECK_CONTAINS(h.fsm.errmsg, "full");
    CHECK_INT(h.fsm.applied_index, 1);
    CHECK_INT(h.fsm.last_seq, 1);
    CHECK_INT(harness_scalar(&h, "SELECT COUNT(*) FROM directories"), 2);
    CHECK_INT(fsm_applied_raft_index(&h.fsm), 1);
    CHECK_INT(h.fsm.raft_fsm.snapshot(&h.fsm.raft_fsm, &bufs, &n_bufs), RAFT_BUSY);
    CHECK_INT(fsm_flush(&h.fsm), -1); /* still full */
    CHECK(fsm_failed(&h.fsm));

    harness_exec(&h, "PRAGMA max_page_count = 1073741823");
    observed = 0;
    CHECK_INT(fsm_flush(&h.fsm), 0);
    CHECK(!fsm_failed(&h.fsm));
    CHECK_INT(observed, 199);
    CHECK_INT(h.fsm.committed_index, 200);
    CHECK_INT(harness_scalar(&h, "SELECT idx FROM applied"), 200);
    CHECK_INT(harness_scalar(&h, "SELECT COUNT(*) FROM directories"), 201);
    CHECK_INT(harness_scalar(&h, "SELECT COUNT(*) FROM events"), 200);
    CHECK_INT(harness_scalar(&h, "SELECT MAX(seq) FROM events"), 200);
    CHECK_INT(h.fsm.pending.len, 0);
    harness_close(&h);
}

/* What each on_commit saw. */
static struct {
    uint64_t index, applied;
    unsigned pos;
    int status, replayed;
    uint64_t seq, hash;
} seen[8];

static void record_commit(void *data, const struct domain_event *events, unsigned n,
                          uint64_t last_seq)
{
    struct fsm *f = data;
    (void)events;
    (void)n;
    (void)last_seq;
    if (observed < 8) {
        seen[observed].index = f->result.index;
        seen[observed].applied = f->applied_index;
        seen[observed].pos = f->result.pos;
        seen[observed].status = f->result.status;
        seen[observed].replayed = f->result.replayed;
        seen[observed].seq = f->result.seq;
        seen[observed].hash = f->result.entry_hash;
    }
    observed++;
}

/* One log entry carries several commands, frames back to back: each gets
 * its own outcome, place and frame hash, in order; the entry's index is
 * applied once, after its last command; an Idempotency-Key repeated inside
 * the entry is a replay; bytes that are not a frame are one malformed
 * command, and the rest of the entry still counts as applied. */
static void test_entry_with_several_commands(void)
{
    struct harness h;
    struct raft_buffer f[3], packed;
    uint8_t *p;
    unsigned i;
    size_t total = 0;

    harness_open(&h);
    h.fsm.observer.on_commit = record_commit;
    h.fsm.observer.data = &h.fsm;
    harness_entry("directory.Create", "{\"Parent\":\"root\",\"Name\":\"m1\"}", "m1", "k1",
                  h.time_ms, &f[0]);
    harness_entry("directory.Create", "{\"Parent\":\"root\",\"Name\":\"m2\"}", "m2", NULL,
                  h.time_ms, &f[1]);
    harness_entry("directory.Create", "{\"Parent\":\"root\",\"Name\":\"m1\"}", "m1", "k1",
                  h.time_ms, &f[2]);
    for (i = 0; i < 3; i++) {
        total += f[i].len;
    }
    packed.base = p = raft_malloc(total + 8);
    for (i = 0; i < 3; i++) {
        memcpy(p, f[i].base, f[i].len);
        p += f[i].len;
    }
    packed.len = total;
    observed = 0;
    CHECK_INT(fsm_apply_entry(&h.fsm, &packed, 1), 0);
    CHECK_INT(observed, 3);
    for (i = 0; i < 3; i++) {
        CHECK_INT(seen[i].index, 1);
        CHECK_INT(seen[i].pos, i);
        CHECK_INT(seen[i].status, 200);
        CHECK_INT(seen[i].hash, util_hash64(f[i].base, f[i].len));
        CHECK_INT(seen[i].applied, i < 2 ? 0 : 1);
    }
    CHECK_INT(seen[0].seq, 1);
    CHECK_INT(seen[1].seq, 2);
    CHECK_INT(seen[2].replayed, 1);
    CHECK_INT(h.fsm.applied_index, 1);
    CHECK_INT(harness_scalar(&h, "SELECT COUNT(*) FROM directories"), 3);
    CHECK_INT(harness_scalar(&h, "SELECT COUNT(*) FROM events"), 2);
    CHECK_INT(harness_scalar(&h, "SELECT idx FROM applied"), 1);

    /* the same entry again is not applied twice */
    observed = 0;
    CHECK_INT(fsm_apply_entry(&h.fsm, &packed, 1), 0);
    CHECK_INT(observed, 0);

    /* a frame, then 8 bytes that are none */
    memcpy(packed.base, f[1].base, f[1].len);
    memset((uint8_t *)packed.base + f[1].len, 0xee, 8);
    packed.len = f[1].len + 8;
    observed = 0;
    CHECK_INT(fsm_apply_entry(&h.fsm, &packed, 2), 0);
    CHECK_INT(observed, 2);
    CHECK_INT(seen[0].status, 409); /* m2 exists */
    CHECK_INT(seen[1].status, 400);
    CHECK_INT(seen[1].pos, 1);
    CHECK_INT(h.fsm.applied_index, 2);
    for (i = 0; i < 3; i++) {
        raft_free(f[i].base);
    }
    raft_free(packed.base);
    harness_close(&h);
}

/* What fsm_applied_raft_index said at each on_commit. */
static uint64_t read_index_seen[8];

static void record_read_index(void *data, const struct domain_event *events, unsigned n,
                              uint64_t last_seq)
{
    (void)events;
    (void)n;
    (void)last_seq;
    if (observed < 8) {
        read_index_seen[observed] = fsm_applied_raft_index(data);
    }
    observed++;
}

/* A deferred entry of two commands counts as applied for reads only once
 * both are: an observer called after the first (the node answers waiting
 * reads from there) must not see its index as applied, or a linearizable
 * read is served half-way through a batch. */
static void test_a_batch_counts_for_reads_only_whole(void)
{
    struct harness h;
    struct raft r;
    struct raft_buffer f[2], packed;

    harness_open(&h);
    memset(&r, 0, sizeof r);
    h.fsm.raft = &r;
    fsm_defer_apply(&h.fsm);
    h.fsm.observer.on_commit = record_read_index;
    h.fsm.observer.data = &h.fsm;
    harness_entry("directory.Rename", "{\"Id\":\"root\",\"Name\":\"first\"}", NULL, NULL, h.time_ms,
                  &f[0]);
    harness_entry("directory.Rename", "{\"Id\":\"root\",\"Name\":\"second\"}", NULL, NULL,
                  h.time_ms, &f[1]);
    packed.len = f[0].len + f[1].len;
    packed.base = raft_malloc(packed.len);
    memcpy(packed.base, f[0].base, f[0].len);
    memcpy((uint8_t *)packed.base + f[0].len, f[1].base, f[1].len);
    /* raft hands the entry over and counts it applied */
    CHECK_INT(fsm_queue_entry(&h.fsm, &packed, 1), 0);
    r.last_applied = 1;
    CHECK_INT(fsm_applied_raft_index(&h.fsm), 0);
    observed = 0;
    fsm_apply_pending(&h.fsm);
    CHECK_INT(observed, 2);
    CHECK_INT(read_index_seen[0], 0); /* "second" is not applied yet */
    CHECK_INT(read_index_seen[1], 0); /* still inside the entry */
    CHECK_INT(fsm_applied_raft_index(&h.fsm), 1);
    CHECK_INT(harness_scalar(&h, "SELECT COUNT(*) FROM directories WHERE name = 'second'"), 1);
    CHECK_INT(fsm_flush(&h.fsm), 0);
    raft_free(f[0].base);
    raft_free(f[1].base);
    raft_free(packed.base);
    h.fsm.raft = NULL;
    harness_close(&h);
}

static void test_automatic_snapshot_threshold(void)
{
    CHECK_INT(fsm_snapshot_threshold_for(0), FSM_SNAPSHOT_THRESHOLD_MIN);
    CHECK_INT(fsm_snapshot_threshold_for(1 << 20), FSM_SNAPSHOT_THRESHOLD_MIN);
    CHECK_INT(fsm_snapshot_threshold_for((size_t)50 << 20), 204800);
    CHECK(fsm_snapshot_threshold_for((size_t)25 << 20) <
          fsm_snapshot_threshold_for((size_t)50 << 20));
    CHECK_INT(fsm_snapshot_threshold_for((size_t)4 << 30), FSM_SNAPSHOT_THRESHOLD_MAX);
}

int main(void)
{
    RUN(test_automatic_snapshot_threshold);
    RUN(test_entry_with_several_commands);
    RUN(test_a_batch_counts_for_reads_only_whole);
    RUN(test_write_failure_rolls_back_and_recovers);
    RUN(test_index_recorded_and_not_reapplied);
    RUN(test_malformed_entry_is_rejected_not_fatal);
    RUN(test_idempotency);
    RUN(test_idempotency_pruned_by_log_time);
    RUN(test_snapshot_restore);
    RUN(test_restore_rejects_foreign_bytes);
    return test_report("fsm");
}
