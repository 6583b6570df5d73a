#include "apply.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "domain.h"
#include "entry.h"
#include "testlib.h"
#include "util.h"

void harness_open(struct harness *h)
{
    memset(h, 0, sizeof *h);
    snprintf(h->path, sizeof h->path, "%s/readmodel.db", test_tmpdir());
    if (store_open(&h->store, h->path) != 0) {
        fprintf(stderr, "store_open: %s\n", h->store.errmsg);
        exit(2);
    }
    fsm_init(&h->fsm, &h->store);
    h->index = h->fsm.applied_index;
    h->time_ms = 1764180000000LL;
}

void harness_reopen(struct harness *h)
{
    fsm_close(&h->fsm);
    store_close(&h->store);
    if (store_open(&h->store, h->path) != 0) {
        fprintf(stderr, "store_open: %s\n", h->store.errmsg);
        exit(2);
    }
    fsm_init(&h->fsm, &h->store);
}

void harness_close(struct harness *h)
{
    fsm_close(&h->fsm);
    store_close(&h->store);
}

int harness_entry(const char *command, const char *json, const char *id, const char *key,
                  int64_t time_ms, struct raft_buffer *out)
{
    const struct domain_command *cmd = domain_find(command);
    Varasto__Entry e = VARASTO__ENTRY__INIT;
    ProtobufCMessage *msg = NULL;
    struct err err;
    uint8_t hash[32], token_hash[32];
    uint8_t *payload;
    size_t len;
    cJSON *doc = cJSON_Parse(json);

    if (cmd == NULL || doc == NULL || codec_decode(cmd->desc, doc, &msg, &err) != 0) {
        fprintf(stderr, "harness_apply: cannot build %s %s\n", command, json);
        exit(2);
    }
    cJSON_Delete(doc);
    len = protobuf_c_message_get_packed_size(msg);
    payload = malloc(len + 1);
    protobuf_c_message_pack(msg, payload);
    protobuf_c_message_free_unpacked(msg, NULL);
    e.command = (char *)command;
    e.payload.data = payload;
    e.payload.len = len;
    e.nodeid = 1;
    e.timems = time_ms;
    e.generatedid = (char *)id;
    if (key != NULL) {
        e.idempotencykey = (char *)key;
        util_sha256(payload, len, hash);
        e.has_requesthash = 1;
        e.requesthash.data = hash;
        e.requesthash.len = 32;
    }
    if (strcmp(command, "apikey.Create") == 0) {
        util_sha256("token", 5, token_hash);
        e.has_tokenhash = 1;
        e.tokenhash.data = token_hash;
        e.tokenhash.len = 32;
    }
    if (entry_encode(&e, out) != 0) {
        exit(2);
    }
    free(payload);
    return 0;
}

int harness_apply(struct harness *h, const char *command, const char *json, const char *id,
                  const char *key)
{
    struct raft_buffer buf;
    int rv;

    harness_entry(command, json, id, key, h->time_ms, &buf);
    h->index++;
    rv = fsm_apply_entry(&h->fsm, &buf, h->index);
    raft_free(buf.base);
    if (rv != 0) {
        return -rv;
    }
    return h->fsm.result.status;
}

long long harness_scalar(struct harness *h, const char *sql)
{
    sqlite3_stmt *s;
    long long v = -1;
    if (sqlite3_prepare_v2(h->store.db, sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "harness_scalar: %s\n", sqlite3_errmsg(h->store.db));
        exit(2);
    }
    if (sqlite3_step(s) == SQLITE_ROW) {
        v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return v;
}

void harness_exec(struct harness *h, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(h->store.db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "harness_exec %s: %s\n", sql, err ? err : "?");
        exit(2);
    }
}
