/* Idempotency-Key records: the outcome of the first attempt of a command,
 * kept by key with the hash of its request. Apply decides from them (every
 * node the same, from the log), and the accepting node answers a retry
 * early from them when it has already applied the first attempt. */
#ifndef VARASTO_IDEMPOTENCY_H
#define VARASTO_IDEMPOTENCY_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum idempotency_outcome {
    IDEMPOTENCY_NONE = 0,     /* no record: a first attempt */
    IDEMPOTENCY_MATCH = 1,    /* the same request: replay the record */
    IDEMPOTENCY_MISMATCH = 2, /* the key was used for another request */
};

/* A recorded outcome; borrowed, valid until the next call on the store. */
struct idempotency_record {
    int status;
    const char *body;
    size_t body_len;
};

/* Look up @key for a request hashing to @hash (@hash_len bytes; NULL when
 * the request carries no hash, which matches nothing). On a MATCH, @rec
 * holds the recorded outcome. Returns an enum idempotency_outcome, or a
 * negative enum store_rc with st->errmsg set. */
int idempotency_check(struct store *st, const char *key, const uint8_t *hash, size_t hash_len,
                      struct idempotency_record *rec);

/* Record the outcome (@status, @body, NUL-terminated; NULL as "") of the
 * request hashing to @hash under @key, at log time @time_ms. Returns 0 or a
 * negative enum store_rc with st->errmsg set. */
int idempotency_record(struct store *st, const char *key, const uint8_t *hash, size_t hash_len,
                       int64_t time_ms, int status, const char *body);

/* Forget records older than @keep_ms before @now_ms, but keep at least the
 * newest @keep. Judged by log time only, so every node keeps the same keys.
 * Returns the number removed or a negative enum store_rc. */
int idempotency_prune(struct store *st, int64_t now_ms, int64_t keep_ms, uint64_t keep);

#endif
