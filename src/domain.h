/* The domain: one validate+apply function per command, dispatched from one
 * table. Apply runs inside the FSM's transaction and is a pure function of
 * the database and the log entry: no clock, no randomness, no I/O. */
#ifndef VARASTO_DOMAIN_H
#define VARASTO_DOMAIN_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "errors.h"
#include "store.h"

/* An event produced by apply, handed to subscribers after commit. */
struct domain_event {
    uint64_t seq;
    char type[48];
    char *json; /* the whole event document, owned */
    size_t len;
};

/* What apply needs from the log entry, and what it produces. */
struct domain_ctx {
    struct store *store;
    int64_t time_ms;           /* when the accepting node took the command */
    const char *generated_id;  /* for commands that create an entity */
    const uint8_t *token_hash; /* apikey.Create: 32 bytes */
    uint64_t seq;              /* last event seq; advanced by domain_emit */
    /* Events emitted by this command, in order. */
    struct domain_event *events;
    unsigned n_events;
    unsigned cap_events;
    struct err err; /* set when apply rejects the command */
};

struct domain_command {
    const char *name;                       /* e.g. "directory.Create" */
    const ProtobufCMessageDescriptor *desc; /* its message type */
    int creates_id;                         /* accepting node generates Id */
    int api_only;                           /* not reachable via /command/ */
    /* Checks that need no state (ranges, enums, empty names): 400. */
    int (*check)(const ProtobufCMessage *m, struct err *e);
    /* Applies against the store; returns 0 or an err_code with ctx->err.
     * Unless @savepoint is set, it must reject before its first write. */
    int (*apply)(struct domain_ctx *ctx, const ProtobufCMessage *m);
    int savepoint; /* may refuse after writing: apply inside a savepoint */
};

/* The command named @name, or NULL. */
const struct domain_command *domain_find(const char *name);

/* Run the command's stateless checks; 0 or an err_code with @e set. */
int domain_check(const struct domain_command *cmd, const ProtobufCMessage *m, struct err *e);

/* Apply: checks again (a log entry is trusted no more than a request), then
 * changes the store and emits events. Returns 0 or an err_code; on error the
 * caller rolls back. */
int domain_apply(const struct domain_command *cmd, struct domain_ctx *ctx,
                 const ProtobufCMessage *m);

/* Release the events collected in @ctx. */
void domain_ctx_reset(struct domain_ctx *ctx);

#endif
