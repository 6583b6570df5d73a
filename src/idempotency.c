#include "idempotency.h"

#include <string.h>

int idempotency_check(struct store *st, const char *key, const uint8_t *hash, size_t hash_len,
                      struct idempotency_record *rec)
{
    struct store_idempotency row;
    int rv = store_idempotency_get(st, key, &row);

    if (rv <= 0) {
        return rv < 0 ? rv : IDEMPOTENCY_NONE;
    }
    if (hash == NULL || row.hash_len != hash_len ||
        (hash_len > 0 && memcmp(row.hash, hash, hash_len) != 0)) {
        return IDEMPOTENCY_MISMATCH;
    }
    rec->status = row.status;
    rec->body = row.body;
    rec->body_len = row.body_len;
    return IDEMPOTENCY_MATCH;
}

int idempotency_record(struct store *st, const char *key, const uint8_t *hash, size_t hash_len,
                       int64_t time_ms, int status, const char *body)
{
    int rv = store_idempotency_put(st, key, hash, hash != NULL ? hash_len : 0, time_ms, status,
                                   body != NULL ? body : "");
    return rv < 0 ? rv : 0;
}

int idempotency_prune(struct store *st, int64_t now_ms, int64_t keep_ms, uint64_t keep)
{
    return store_idempotency_prune(st, now_ms - keep_ms, keep);
}
