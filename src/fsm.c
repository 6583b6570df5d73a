#include "fsm.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "entry.h"
#include "idempotency.h"
#include "log.h"

#define IDEMPOTENCY_PRUNE_EVERY 1024
#define FSM_MAX_TX_ENTRIES 4096
#define FSM_RETRY_MS 1000

static void result_error(struct fsm_result *r, enum err_code code, const char *message)
{
    r->status = err_http_status(code);
    r->body.len = 0;
    err_write_body(&r->body, code, message, NULL);
}

static void fsm_fail(struct fsm *f, const char *what, uint64_t index);

/* The entry's request hash, or NULL when it carries none. */
static const uint8_t *request_hash(const Varasto__Entry *e)
{
    if (!e->has_requesthash) {
        return NULL;
    }
    return e->requesthash.data != NULL ? e->requesthash.data : (const uint8_t *)"";
}

/* Replay or reject by the idempotency record; returns 1 if handled, 0 if
 * not, -1 when the read model failed. */
static int idempotency_lookup(struct fsm *f, const Varasto__Entry *e, uint64_t index)
{
    struct idempotency_record rec;
    int rv = idempotency_check(f->store, e->idempotencykey, request_hash(e), e->requesthash.len,
                               &rec);

    if (rv < 0) {
        fsm_fail(f, "idempotency read", index);
        return -1;
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

/* Record the command's outcome under its key, and prune old keys when
 * @index (the entry's index, given for its first command only, else 0) says
 * so; 0, or -1 when the read model could not be written (st->errmsg says
 * why). */
static int idempotency_store(struct fsm *f, const Varasto__Entry *e, uint64_t index)
{
    if (idempotency_record(f->store, e->idempotencykey, request_hash(e), e->requesthash.len,
                           e->timems, f->result.status, f->result.body.data) != 0) {
        return -1;
    }
    /* Pruning is decided by the log alone (entry index and time), so every
     * node keeps the same keys. */
    if (index != 0 && index % IDEMPOTENCY_PRUNE_EVERY == 0 &&
        idempotency_prune(f->store, e->timems, f->idempotency_keep_ms, f->idempotency_keep) < 0) {
        return -1;
    }
    return 0;
}

/* Apply a decoded entry: its outcome goes to f->result. Returns 0, or -1
 * when the read model failed. */
static int apply_command(struct fsm *f, const Varasto__Entry *e, uint64_t index,
                         struct domain_ctx *ctx)
{
    const struct domain_command *cmd = domain_find(e->command);
    ProtobufCMessage *msg;
    int rv;

    if (cmd == NULL) {
        result_error(&f->result, ERR_NOT_FOUND, "unknown command");
        return 0;
    }
    msg = protobuf_c_message_unpack(cmd->desc, NULL, e->payload.len, e->payload.data);
    if (msg == NULL) {
        result_error(&f->result, ERR_BAD_REQUEST, "malformed command payload");
        return 0;
    }
    ctx->store = f->store;
    ctx->time_ms = e->timems;
    ctx->generated_id = e->generatedid;
    ctx->token_hash = e->has_tokenhash && e->tokenhash.len == 32 ? e->tokenhash.data : NULL;
    ctx->seq = f->last_seq;
    if (cmd->creates_id && (ctx->generated_id == NULL || ctx->generated_id[0] == '\0')) {
        result_error(&f->result, ERR_BAD_REQUEST, "entry carries no generated id");
        protobuf_c_message_free_unpacked(msg, NULL);
        return 0;
    }
    /* Most commands check everything before they write, so a rejection
     * leaves nothing behind; the few that may refuse half-way run inside a
     * savepoint. A storage failure mid-command (ERR_INTERNAL) fails the
     * whole transaction: the database must never hold part of an entry. */
    if (cmd->savepoint && store_savepoint(f->store) != 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        fsm_fail(f, "savepoint", index);
        return -1;
    }
    rv = domain_apply(cmd, ctx, msg);
    if (rv == ERR_INTERNAL) {
        util_copy(f->store->errmsg, sizeof f->store->errmsg, ctx->err.message);
        protobuf_c_message_free_unpacked(msg, NULL);
        fsm_fail(f, e->command, index);
        return -1;
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
    return 0;
}

/* A write to the read model failed after raft committed the entry: roll
 * the open transaction back, so that the database holds whole entries only,
 * rewind to what it holds, and try again later (the entries stay queued);
 * commands are refused meanwhile. One ERROR line until it recovers. */
static void fsm_fail(struct fsm *f, const char *what, uint64_t index)
{
    if (!f->failed) {
        snprintf(f->errmsg, sizeof f->errmsg, "read model %s failed at index %llu: %s", what,
                 (unsigned long long)index, f->store->errmsg);
        log_error("%s; refusing commands and retrying every %u ms", f->errmsg, f->retry_ms);
    }
    f->failed = 1;
    f->retry_at = util_mono_ms() + f->retry_ms;
    if (f->in_tx) {
        store_rollback(f->store);
        f->in_tx = 0;
        f->tx_entries = 0;
    }
    f->applied_index = f->committed_index;
    f->last_seq = f->committed_seq;
    f->pending_off = 0;
}

int fsm_failed(const struct fsm *f)
{
    return f->failed;
}

/* Keep only the entries not yet applied in the queue. */
static void pending_trim(struct fsm *f)
{
    size_t rest = f->pending.len - f->pending_off;
    if (rest > 0 && f->pending_off > 0) {
        memmove(f->pending.data, f->pending.data + f->pending_off, rest);
    }
    f->pending.len = rest;
    f->pending_off = 0;
}

static int fsm_commit(struct fsm *f)
{
    if (!f->in_tx) {
        return f->failed ? -1 : 0;
    }
    if (store_meta_set_applied(f->store, f->applied_index, f->last_seq) != 0) {
        fsm_fail(f, "write", f->applied_index);
        return -1;
    }
    if (store_commit(f->store) != 0) {
        fsm_fail(f, "commit", f->applied_index);
        return -1;
    }
    f->in_tx = 0;
    f->tx_entries = 0;
    f->committed_index = f->applied_index;
    f->committed_seq = f->last_seq;
    pending_trim(f);
    if (f->failed) {
        f->failed = 0;
        log_info("read model written again up to index %llu; taking commands",
                 (unsigned long long)f->committed_index);
    }
    return 0;
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

/* Apply queued entries; a retry of a failed read model commits at once to
 * find out whether it can be written again. */
static void apply_queue(struct fsm *f)
{
    if (f->failed && util_mono_ms() < f->retry_at) {
        return;
    }
    if (f->failed && f->pending.len == 0 && !f->in_tx) {
        f->failed = 0; /* nothing is left to write */
    }
    while (f->pending_off < f->pending.len) {
        struct raft_buffer buf;
        size_t off = f->pending_off;
        uint64_t index = pending_index(f, off), len;
        memcpy(&len, f->pending.data + off + 8, sizeof len);
        buf.base = f->pending.data + off + PENDING_HEADER;
        buf.len = (size_t)len;
        f->pending_off += PENDING_HEADER + ((len + 7) & ~(uint64_t)7);
        if (fsm_apply_entry(f, &buf, index) != 0) {
            return; /* rolled back and rewound */
        }
    }
    if (f->failed) {
        fsm_commit(f); /* clears it when the database takes the entries */
    } else if (!f->in_tx) {
        pending_trim(f);
    }
}

void fsm_apply_pending(struct fsm *f)
{
    apply_queue(f);
}

int fsm_flush(struct fsm *f)
{
    apply_queue(f);
    return fsm_commit(f);
}

int fsm_queue_entry(struct fsm *f, const struct raft_buffer *buf, uint64_t index)
{
    static const uint8_t pad[8];
    uint64_t len = buf->len;
    size_t old = f->pending.len;
    if (buf_append(&f->pending, &index, sizeof index) != 0 ||
        buf_append(&f->pending, &len, sizeof len) != 0 ||
        buf_append(&f->pending, buf->base, buf->len) != 0 ||
        buf_append(&f->pending, pad, (8 - buf->len % 8) % 8) != 0) {
        f->pending.len = old;
        return -1;
    }
    return 0;
}

void fsm_forget_pending(struct fsm *f)
{
    if (f->in_tx) {
        store_rollback(f->store);
        f->in_tx = 0;
        f->tx_entries = 0;
    }
    f->pending.len = 0;
    f->pending_off = 0;
    f->failed = 0;
    f->applied_index = f->committed_index;
    f->last_seq = f->committed_seq;
}

void fsm_reload(struct fsm *f)
{
    store_meta_get_applied(f->store, &f->applied_index, &f->last_seq);
    f->committed_index = f->applied_index;
    f->committed_seq = f->last_seq;
    f->failed = 0;
}

void fsm_defer_apply(struct fsm *f)
{
    f->defer = 1;
}

uint64_t fsm_applied_raft_index(const struct fsm *f)
{
    if (f->applying != 0) {
        return f->applying - 1;
    }
    if (f->pending_off < f->pending.len) {
        return pending_index(f, f->pending_off) - 1;
    }
    return raft_last_applied(f->raft);
}

/* Apply the command framed in @frame, the @pos'th of the entry at @index;
 * its outcome goes to f->result. Returns 0, or -1 when the read model
 * failed (rolled back and rewound). */
static int apply_frame(struct fsm *f, const struct raft_buffer *frame, uint64_t index, unsigned pos,
                       int last)
{
    struct domain_ctx ctx;
    Varasto__Entry *e;

    memset(&ctx, 0, sizeof ctx);
    f->result.status = 0;
    f->result.replayed = 0;
    f->result.index = index;
    f->result.pos = pos;
    f->result.entry_hash = util_hash64(frame->base, frame->len);
    f->result.seq = f->last_seq;
    f->result.body.len = 0;
    e = entry_decode(frame);
    if (e == NULL) {
        log_warn("apply index %llu: malformed command %u skipped", (unsigned long long)index, pos);
        result_error(&f->result, ERR_BAD_REQUEST, "malformed log entry");
    } else {
        int handled = e->idempotencykey != NULL ? idempotency_lookup(f, e, index) : 0;
        if (handled < 0 || (handled == 0 && apply_command(f, e, index, &ctx) != 0)) {
            goto failed;
        }
        if (handled == 0 && e->idempotencykey != NULL &&
            idempotency_store(f, e, pos == 0 ? index : 0) != 0) {
            fsm_fail(f, "idempotency record", index);
            goto failed;
        }
    }
    if (ctx.seq < f->last_seq) {
        ctx.seq = f->last_seq;
    }
    f->last_seq = ctx.seq;
    f->result.seq = ctx.seq;
    /* The entry's index goes into the same transaction as its effects: the
     * applied row is written once, when the transaction commits, and only
     * after the entry's last command. */
    if (last) {
        f->applied_index = index;
        if ((++f->tx_entries >= FSM_MAX_TX_ENTRIES || !f->group_commit) && fsm_commit(f) != 0) {
            goto failed;
        }
    }
    if (f->observer.on_commit != NULL) {
        f->observer.on_commit(f->observer.data, ctx.events, ctx.n_events, f->last_seq);
    }
    domain_ctx_reset(&ctx);
    if (e != NULL) {
        varasto__entry__free_unpacked(e, NULL);
    }
    return 0;

failed:
    domain_ctx_reset(&ctx);
    if (e != NULL) {
        varasto__entry__free_unpacked(e, NULL);
    }
    return -1;
}

int fsm_apply_entry(struct fsm *f, const struct raft_buffer *buf, uint64_t index)
{
    const uint8_t *p = buf->base;
    size_t off = 0;
    unsigned pos = 0;

    f->result.status = 0;
    f->result.index = index;
    if (index <= f->applied_index) {
        return 0; /* the database already holds this entry */
    }
    if (f->failed && !f->defer) {
        return -1; /* nothing can bring the skipped entries back */
    }
    if (!f->in_tx) {
        if (store_begin(f->store) != 0) {
            fsm_fail(f, "begin", index);
            return -1;
        }
        f->in_tx = 1;
        f->tx_began_ms = util_mono_ms();
    }
    /* An entry carries one or more commands, frames back to back (what a
     * leader accepted in one loop iteration). What does not parse as a
     * frame is one malformed command. Until the last is applied the entry
     * does not count as applied for reads (fsm_applied_raft_index): a
     * linearizable read served between two of its commands saw half of a
     * batch (a 45 s nemesis run, a register read back a value overwritten
     * in the same entry). */
    f->applying = index;
    do {
        struct raft_buffer frame;
        size_t size = entry_frame_size(p + off, buf->len - off);
        frame.base = (void *)(p + off);
        frame.len = size != 0 ? size : buf->len - off;
        off += frame.len;
        if (apply_frame(f, &frame, index, pos++, off >= buf->len) != 0) {
            f->applying = 0;
            return -1;
        }
    } while (off < buf->len);
    f->applying = 0;
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
        if (fsm_queue_entry(f, buf, index) != 0) {
            /* raft counts the entry as applied once this returns: losing
             * it would leave the read model behind the log for good */
            log_error("apply index %llu: out of memory; stopping (a restart replays the log)",
                      (unsigned long long)index);
            abort();
        }
        *result = NULL;
        return 0;
    }
    rv = fsm_apply_entry(f, buf, index);
    *result = &f->result;
    return rv;
}

int fsm_init(struct fsm *f, struct store *store)
{
    memset(f, 0, sizeof *f);
    f->store = store;
    f->raft_fsm.data = f;
    f->raft_fsm.apply = fsm_apply;
    fsm_snapshot_setup(f);
    store_meta_get_applied(store, &f->applied_index, &f->last_seq);
    f->committed_index = f->applied_index;
    f->committed_seq = f->last_seq;
    f->retry_ms = FSM_RETRY_MS;
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
