/* The state machine is a function of (read model, entries): the same
 * entries applied to two fresh read models leave them identical, row for
 * row, and give the same answers; none aborts whatever the commands say.
 * Input: records of [command selector][length][JSON body]. */
#include <stdint.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "domain.h"
#include "entry.h"
#include "fsm.h"
#include "store.h"
#include "util.h"

static const char *const commands[] = {
    "directory.Create",        "directory.Rename",    "directory.Move",
    "directory.Delete",        "directory.SetType",   "collection.Create",
    "collection.Move",         "collection.Tag",      "collection.Untag",
    "collection.Rate",         "collection.Delete",   "collection.CommitChangeset",
    "apikey.Create",           "apikey.Remove",       "subscription.Create",
    "subscription.Ack",        "subscription.Delete", "cluster.Announce",
    "cluster.RecordNodeAdded",
};

struct side {
    char path[96];
    struct store store;
    struct fsm fsm;
};

static void side_open(struct side *s, const char *name)
{
    char p[128];
    snprintf(s->path, sizeof s->path, "/tmp/varasto-fuzz-fsm-%d-%s.db", (int)getpid(), name);
    unlink(s->path);
    snprintf(p, sizeof p, "%s-wal", s->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", s->path);
    unlink(p);
    if (store_open(&s->store, s->path) != 0) {
        abort();
    }
    fsm_init(&s->fsm, &s->store);
}

static void side_close(struct side *s)
{
    fsm_close(&s->fsm);
    store_close(&s->store);
    unlink(s->path);
}

/* Every row of every table, as text. */
static void dump(struct side *s, struct buf *out)
{
    sqlite3_stmt *tables, *rows;
    sqlite3_prepare_v2(s->store.db,
                       "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", -1,
                       &tables, NULL);
    while (sqlite3_step(tables) == SQLITE_ROW) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", sqlite3_column_text(tables, 0));
        buf_append(out, sql, strlen(sql));
        if (sqlite3_prepare_v2(s->store.db, sql, -1, &rows, NULL) != SQLITE_OK) {
            abort();
        }
        while (sqlite3_step(rows) == SQLITE_ROW) {
            int i;
            for (i = 0; i < sqlite3_column_count(rows); i++) {
                const unsigned char *t = sqlite3_column_text(rows, i);
                buf_append(out, "|", 1);
                buf_append(out, t != NULL ? (const char *)t : "NULL",
                           t != NULL ? strlen((const char *)t) : 4);
            }
            buf_append(out, "\n", 1);
        }
        sqlite3_finalize(rows);
    }
    sqlite3_finalize(tables);
}

/* The entry for record @n, or 0 when its JSON is not that command's. */
static int entry_of(unsigned n, const char *command, const char *json, size_t len,
                    struct raft_buffer *out)
{
    const struct domain_command *cmd = domain_find(command);
    Varasto__Entry e = VARASTO__ENTRY__INIT;
    ProtobufCMessage *msg = NULL;
    struct err err;
    cJSON *doc = codec_parse_body(json, len, &err);
    uint8_t token_hash[32], *payload;
    char id[16];
    size_t plen;
    int ok;

    if (cmd == NULL || doc == NULL || codec_decode(cmd->desc, doc, &msg, &err) != 0) {
        cJSON_Delete(doc);
        return 0;
    }
    cJSON_Delete(doc);
    plen = protobuf_c_message_get_packed_size(msg);
    payload = malloc(plen + 1);
    protobuf_c_message_pack(msg, payload);
    protobuf_c_message_free_unpacked(msg, NULL);
    snprintf(id, sizeof id, "gen%u", n % 4); /* some ids collide on purpose */
    e.command = (char *)command;
    e.payload.data = payload;
    e.payload.len = plen;
    e.nodeid = 1;
    e.timems = 1764180000000LL + n;
    e.generatedid = id;
    util_sha256(&n, sizeof n, token_hash);
    e.has_tokenhash = 1;
    e.tokenhash.data = token_hash;
    e.tokenhash.len = 32;
    ok = entry_encode(&e, out) == 0;
    free(payload);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct side a, b;
    struct buf da, db;
    size_t off = 0;
    unsigned n = 0;
    uint64_t index = 0;

    side_open(&a, "a");
    side_open(&b, "b");
    while (off + 2 <= size && n < 64) {
        const char *command = commands[data[off] % (sizeof commands / sizeof commands[0])];
        size_t len = data[off + 1];
        struct raft_buffer entry;
        if (len > size - off - 2) {
            len = size - off - 2;
        }
        if (entry_of(n, command, (const char *)data + off + 2, len, &entry)) {
            int ra, rb;
            index++;
            ra = fsm_apply_entry(&a.fsm, &entry, index);
            rb = fsm_apply_entry(&b.fsm, &entry, index);
            if (ra != rb || a.fsm.result.status != b.fsm.result.status) {
                abort();
            }
            raft_free(entry.base);
        }
        off += 2 + len;
        n++;
    }
    fsm_flush(&a.fsm);
    fsm_flush(&b.fsm);
    buf_init(&da);
    buf_init(&db);
    dump(&a, &da);
    dump(&b, &db);
    if (da.len != db.len || memcmp(da.data, db.data, da.len) != 0) {
        abort();
    }
    buf_free(&da);
    buf_free(&db);
    side_close(&a);
    side_close(&b);
    return 0;
}
