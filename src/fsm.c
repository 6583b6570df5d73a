#include "fsm.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "entry.h"
#include "idempotency.h"
#include "log.h"

#define SNAPSHOT_MAGIC 0x5641525354534e50ull /* "VARSTSNP" */
#define SNAPSHOT_HEADER 32
#define IDEMPOTENCY_PRUNE_EVERY 1024
#define FSM_MAX_TX_ENTRIES 4096

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

static void result_error(struct fsm_result *r, enum err_code code, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    char *text;
    cJSON_AddStringToObject(o, "Error", message);
    cJSON_AddStringToObject(o, "Code", err_code_string(code));
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    r->status = err_http_status(code);
    r->body.len = 0;
    if (text != NULL) {
        buf_append(&r->body, text, strlen(text));
        free(text);
    }
}

static void fsm_fatal(struct fsm *f, const char *what, uint64_t index);

/* The entry's request hash, or NULL when it carries none. */
static const uint8_t *request_hash(const Varasto__Entry *e)
{
    if (!e->has_requesthash) {
        return NULL;
    }
    return e->requesthash.data != NULL ? e->requesthash.data : (const uint8_t *)"";
}

/* Replay or reject by the idempotency record; returns 1 if handled. */
static int idempotency_lookup(struct fsm *f, const Varasto__Entry *e, uint64_t index)
{
    struct idempotency_record rec;
    int rv =
        idempotency_check(f->store, e->idempotencykey, request_hash(e), e->requesthash.len, &rec);

    if (rv < 0) {
        fsm_fatal(f, "idempotency read", index);
    }
    if (rv == IDEMPOTENCY_NONE) {
        return 0;
    }
    if (rv == IDEMPOTENCY_MATCH) {
        f->result.status = rec.status;
        f->result.replayed = 1;
        f->result.body.len = 0;
        buf_append(&f->result.body, rec.body, rec.body_len);
    } else {
        result_error(&f->result, ERR_IDEMPOTENCY_MISMATCH,
                     "Idempotency-Key was already used with a different command");
    }
    return 1;
}

/* Record the entry's outcome under its key; 0, or -1 when the read model
 * could not be written (st->errmsg says why). */
static int idempotency_store(struct fsm *f, const Varasto__Entry *e, uint64_t index)
{
    if (idempotency_record(f->store, e->idempotencykey, request_hash(e), e->requesthash.len,
                           e->timems, f->result.status, f->result.body.data) != 0) {
        return -1;
    }
    /* Pruning is decided by the log alone (entry index and time), so every
     * node keeps the same keys. */
    if (index % IDEMPOTENCY_PRUNE_EVERY == 0 &&
        idempotency_prune(f->store, e->timems, f->idempotency_keep_ms, f->idempotency_keep) < 0) {
        return -1;
    }
    return 0;
}

static void apply_command(struct fsm *f, const Varasto__Entry *e, uint64_t index,
                          struct domain_ctx *ctx)
{
    const struct domain_command *cmd = domain_find(e->command);
    ProtobufCMessage *msg;
    int rv;

    if (cmd == NULL) {
        result_error(&f->result, ERR_NOT_FOUND, "unknown command");
        return;
    }
    msg = protobuf_c_message_unpack(cmd->desc, NULL, e->payload.len, e->payload.data);
    if (msg == NULL) {
        result_error(&f->result, ERR_BAD_REQUEST, "malformed command payload");
        return;
    }
    ctx->store = f->store;
    ctx->time_ms = e->timems;
    ctx->generated_id = e->generatedid;
    ctx->token_hash = e->has_tokenhash && e->tokenhash.len == 32 ? e->tokenhash.data : NULL;
    ctx->seq = f->last_seq;
    if (cmd->creates_id && (ctx->generated_id == NULL || ctx->generated_id[0] == '\0')) {
        result_error(&f->result, ERR_BAD_REQUEST, "entry carries no generated id");
        protobuf_c_message_free_unpacked(msg, NULL);
        return;
    }
    /* Most commands check everything before they write, so a rejection
     * leaves nothing behind; the few that may refuse half-way run inside a
     * savepoint. A storage failure mid-command (ERR_INTERNAL) stops the
     * node: the database would no longer match the log, and a restart
     * replays it. */
    if (cmd->savepoint) {
        store_savepoint(f->store);
    }
    rv = domain_apply(cmd, ctx, msg);
    if (rv == ERR_INTERNAL) {
        log_error("apply %s at index %llu: %s", e->command, (unsigned long long)index,
                  ctx->err.message);
        fsm_fatal(f, "apply", index);
    }
    if (rv != 0) {
        if (cmd->savepoint) {
            store_rollback_to_savepoint(f->store);
        }
        domain_ctx_reset(ctx);
        ctx->seq = f->last_seq;
        result_error(&f->result, (enum err_code)rv, ctx->err.message);
    } else {
        if (cmd->savepoint) {
            store_release_savepoint(f->store);
        }
        f->result.status = 200;
        f->result.body.len = 0;
        buf_append_str(&f->result.body, "{\"Seq\":");
        buf_append_int(&f->result.body, (long long)ctx->seq);
        buf_append_str(&f->result.body, ",\"Index\":");
        buf_append_int(&f->result.body, (long long)index);
        if (cmd->creates_id) {
            buf_append_str(&f->result.body, ",\"Id\":");
            codec_write_string(&f->result.body, ctx->generated_id);
        }
        buf_append(&f->result.body, "}", 1);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* A failure to write the read model after raft committed the entry: the
 * database no longer matches the log. Stop; a restart replays the log. */
static void fsm_fatal(struct fsm *f, const char *what, uint64_t index)
{
    log_error("read model %s failed at index %llu: %s; stopping (a restart replays the log)",
              what, (unsigned long long)index, f->store->errmsg);
    abort();
}

unsigned fsm_snapshot_threshold_for(size_t snapshot_bytes)
{
    size_t t = snapshot_bytes / FSM_SNAPSHOT_BYTES_PER_ENTRY;
    t = t < FSM_SNAPSHOT_THRESHOLD_MIN ? FSM_SNAPSHOT_THRESHOLD_MIN : t;
    t = t > FSM_SNAPSHOT_THRESHOLD_MAX ? FSM_SNAPSHOT_THRESHOLD_MAX : t;
    return (unsigned)t;
}

static void fsm_commit(struct fsm *f)
{
    if (!f->in_tx) {
        return;
    }
    f->in_tx = 0;
    f->tx_entries = 0;
    if (store_meta_set_applied(f->store, f->applied_index, f->last_seq) != 0) {
        fsm_fatal(f, "write", f->applied_index);
    }
    if (store_commit(f->store) != 0) {
        fsm_fatal(f, "commit", f->applied_index);
    }
}

/* Deferred entries are kept as records: index (8 bytes), length (8 bytes),
 * the framed entry padded to 8 bytes. */
#define PENDING_HEADER 16

static uint64_t pending_index(const struct fsm *f, size_t off)
{
    uint64_t v;
    memcpy(&v, f->pending.data + off, sizeof v);
    return v;
}

void fsm_apply_pending(struct fsm *f)
{
    while (f->pending_off < f->pending.len) {
        struct raft_buffer buf;
        uint64_t index = pending_index(f, f->pending_off), len;
        memcpy(&len, f->pending.data + f->pending_off + 8, sizeof len);
        buf.base = f->pending.data + f->pending_off + PENDING_HEADER;
        buf.len = (size_t)len;
        f->pending_off += PENDING_HEADER + ((len + 7) & ~(uint64_t)7);
        fsm_apply_entry(f, &buf, index);
    }
    f->pending.len = 0;
    f->pending_off = 0;
}

int fsm_flush(struct fsm *f)
{
    fsm_apply_pending(f);
    fsm_commit(f);
    return 0;
}

void fsm_defer_apply(struct fsm *f)
{
    f->defer = 1;
}

uint64_t fsm_applied_raft_index(const struct fsm *f)
{
    if (f->pending_off < f->pending.len) {
        return pending_index(f, f->pending_off) - 1;
    }
    return raft_last_applied(f->raft);
}

int fsm_apply_entry(struct fsm *f, const struct raft_buffer *buf, uint64_t index)
{
    struct domain_ctx ctx;
    Varasto__Entry *e;

    memset(&ctx, 0, sizeof ctx);
    f->result.status = 0;
    f->result.replayed = 0;
    f->result.index = index;
    f->result.entry_hash = util_hash64(buf->base, buf->len);
    f->result.seq = f->last_seq;
    f->result.body.len = 0;
    if (index <= f->applied_index) {
        return 0; /* the database already holds this entry */
    }
    if (!f->in_tx) {
        if (store_begin(f->store) != 0) {
            fsm_fatal(f, "begin", index);
        }
        f->in_tx = 1;
        f->tx_began_ms = util_mono_ms();
    }
    e = entry_decode(buf);
    if (e == NULL) {
        log_warn("apply index %llu: malformed entry skipped", (unsigned long long)index);
        result_error(&f->result, ERR_BAD_REQUEST, "malformed log entry");
    } else if (e->idempotencykey == NULL || !idempotency_lookup(f, e, index)) {
        apply_command(f, e, index, &ctx);
        if (e->idempotencykey != NULL && idempotency_store(f, e, index) != 0) {
            fsm_fatal(f, "idempotency record", index);
        }
    }
    if (ctx.seq < f->last_seq) {
        ctx.seq = f->last_seq;
    }
    /* The entry's index goes into the same transaction as its effects: the
     * applied row is written once, when the transaction commits. */
    f->applied_index = index;
    f->last_seq = ctx.seq;
    f->result.seq = ctx.seq;
    if (++f->tx_entries >= FSM_MAX_TX_ENTRIES || !f->group_commit) {
        fsm_commit(f);
    }
    if (f->observer.on_commit != NULL) {
        f->observer.on_commit(f->observer.data, ctx.events, ctx.n_events, f->last_seq);
    }
    domain_ctx_reset(&ctx);
    if (e != NULL) {
        varasto__entry__free_unpacked(e, NULL);
    }
    return 0;
}

static int fsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct fsm *f = rf->data;
    /* raft applies entries in order and sets last_applied after each one, so
     * during apply the entry's index is the one after last_applied. */
    uint64_t index = raft_last_applied(f->raft) + 1;
    int rv = 0;

    if (f->defer) {
        static const uint8_t pad[8];
        uint64_t len = buf->len;
        if (buf_append(&f->pending, &index, sizeof index) != 0 ||
            buf_append(&f->pending, &len, sizeof len) != 0 ||
            buf_append(&f->pending, buf->base, buf->len) != 0 ||
            buf_append(&f->pending, pad, (8 - buf->len % 8) % 8) != 0) {
            log_error("apply index %llu: out of memory; stopping", (unsigned long long)index);
            abort();
        }
        *result = NULL;
        return 0;
    }
    rv = fsm_apply_entry(f, buf, index);
    *result = &f->result;
    return rv;
}

/* Snapshot, in three steps (raft FSM version 3): on the loop, take a stable
 * read view of the committed database (cheap); on a worker thread, copy it;
 * on the loop again, release the copy and the view. Applies go on meanwhile. */
static int fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct fsm *f = rf->data;

    fsm_flush(f);
    if (f->reader_busy) {
        return RAFT_BUSY; /* a checkpoint is running; raft retries later */
    }
    if (store_reader_begin(f->store) != 0) {
        log_error("snapshot: %s", f->store->errmsg);
        return RAFT_BUSY;
    }
    f->reader_busy = 1;
    f->snap_index = f->applied_index;
    f->snap_seq = f->last_seq;
    f->snap_started = util_mono_ms();
    f->snap_generation = f->store->generation;
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
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
        return RAFT_IOERR;
    }
    *bufs = raft_malloc(2 * sizeof **bufs);
    p = raft_calloc(1, SNAPSHOT_HEADER);
    if (*bufs == NULL || p == NULL) {
        raft_free(*bufs);
        *bufs = NULL;
        raft_free(p);
        store_image_free(image);
        return RAFT_NOMEM;
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

/* The same snapshot taken in one go on the loop, for raft_io backends
 * without async_work (raft's in-memory fixture). */
static int fsm_snapshot_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[],
                                 unsigned *n_bufs);

static int fsm_snapshot_sync(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    int rv = fsm_snapshot(rf, bufs, n_bufs);
    if (rv != 0) {
        return rv;
    }
    rv = fsm_snapshot_async(rf, bufs, n_bufs);
    if (rv != 0) {
        fsm_snapshot_finalize(rf, bufs, n_bufs);
    }
    return rv;
}

void fsm_use_sync_snapshots(struct fsm *f)
{
    f->raft_fsm.version = 2;
    f->raft_fsm.snapshot = fsm_snapshot_sync;
    f->raft_fsm.snapshot_async = NULL;
}

static int fsm_snapshot_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[],
                                 unsigned *n_bufs)
{
    struct fsm *f = rf->data;
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
    fsm_flush(f);
    if (index <= f->applied_index) {
        /* Startup: our database is already at or past the snapshot. */
        log_info("restore: database at index %llu already covers snapshot at %llu",
                 (unsigned long long)f->applied_index, (unsigned long long)index);
    } else if (store_replace(f->store, p + SNAPSHOT_HEADER, buf->len - SNAPSHOT_HEADER) != 0) {
        log_error("restore: %s", f->store->errmsg);
        rv = RAFT_IOERR;
    } else {
        store_meta_get_applied(f->store, &f->applied_index, &f->last_seq);
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

int fsm_init(struct fsm *f, struct store *store)
{
    memset(f, 0, sizeof *f);
    f->store = store;
    f->raft_fsm.version = 3;
    f->raft_fsm.snapshot_async = fsm_snapshot_async;
    f->raft_fsm.data = f;
    f->raft_fsm.apply = fsm_apply;
    f->raft_fsm.snapshot = fsm_snapshot;
    f->raft_fsm.snapshot_finalize = fsm_snapshot_finalize;
    f->raft_fsm.restore = fsm_restore;
    store_meta_get_applied(store, &f->applied_index, &f->last_seq);
    f->idempotency_keep = 100000;
    f->idempotency_keep_ms = 24LL * 3600 * 1000;
    buf_init(&f->result.body);
    buf_init(&f->pending);
    return 0;
}

void fsm_close(struct fsm *f)
{
    fsm_flush(f);
    buf_free(&f->result.body);
    buf_free(&f->pending);
}
