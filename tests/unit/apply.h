/* Drive the real FSM without raft: encode a command as a log entry, as the
 * accepting node would, and apply it at the next index. */
#ifndef VARASTO_TEST_APPLY_H
#define VARASTO_TEST_APPLY_H

#include "fsm.h"
#include "store.h"

struct harness {
    struct store store;
    struct fsm fsm;
    uint64_t index;
    int64_t time_ms;
    char path[256];
};

/* Open a store in a fresh temp dir and bind an FSM to it. */
void harness_open(struct harness *h);
/* Close and reopen the same database (a restart). */
void harness_reopen(struct harness *h);
void harness_close(struct harness *h);

/* Apply @command with JSON body @json; @id is the generated id (or NULL),
 * @key an Idempotency-Key (or NULL). Returns the HTTP status of the result;
 * the body is in h->fsm.result.body. */
int harness_apply(struct harness *h, const char *command, const char *json, const char *id,
                  const char *key);

/* Frame @command with JSON body @json as a log entry in @out (raft_malloc'ed),
 * as the accepting node would. Returns 0 (exits on bad test input). */
int harness_entry(const char *command, const char *json, const char *id, const char *key,
                  int64_t time_ms, struct raft_buffer *out);

/* Count rows of a SQL query's first column (for assertions). */
long long harness_scalar(struct harness *h, const char *sql);

/* Run @sql on the store's connection (exits on error). */
void harness_exec(struct harness *h, const char *sql);

#endif
