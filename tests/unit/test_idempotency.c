/* Idempotency records: none, match (with the recorded outcome), mismatch,
 * and pruning by log time and count. */
#include "apply.h"
#include "idempotency.h"
#include "testlib.h"

static void test_none_match_mismatch(void)
{
    struct harness h;
    struct idempotency_record rec;
    uint8_t a[32] = {1}, b[32] = {2};
    harness_open(&h);
    CHECK_INT(store_begin(&h.store), 0);
    CHECK_INT(idempotency_check(&h.store, "k", a, 32, &rec), IDEMPOTENCY_NONE);
    CHECK_INT(idempotency_record(&h.store, "k", a, 32, 1000, 201, "{\"Seq\":1}"), 0);
    CHECK_INT(idempotency_check(&h.store, "k", a, 32, &rec), IDEMPOTENCY_MATCH);
    CHECK_INT(rec.status, 201);
    CHECK_INT(rec.body_len, 9);
    CHECK(memcmp(rec.body, "{\"Seq\":1}", 9) == 0);
    /* another request, a hash of another length, or no hash at all */
    CHECK_INT(idempotency_check(&h.store, "k", b, 32, &rec), IDEMPOTENCY_MISMATCH);
    CHECK_INT(idempotency_check(&h.store, "k", a, 31, &rec), IDEMPOTENCY_MISMATCH);
    CHECK_INT(idempotency_check(&h.store, "k", NULL, 0, &rec), IDEMPOTENCY_MISMATCH);
    /* a record without a hash: matches only an empty hash, NULL body as "" */
    CHECK_INT(idempotency_record(&h.store, "n", NULL, 32, 1000, 400, NULL), 0);
    CHECK_INT(idempotency_check(&h.store, "n", NULL, 0, &rec), IDEMPOTENCY_MISMATCH);
    CHECK_INT(idempotency_check(&h.store, "n", (const uint8_t *)"", 0, &rec), IDEMPOTENCY_MATCH);
    CHECK_INT(rec.status, 400);
    CHECK_INT(rec.body_len, 0);
    /* recording again replaces */
    CHECK_INT(idempotency_record(&h.store, "k", b, 32, 1000, 200, "{}"), 0);
    CHECK_INT(idempotency_check(&h.store, "k", b, 32, &rec), IDEMPOTENCY_MATCH);
    CHECK_INT(rec.status, 200);
    CHECK_INT(store_commit(&h.store), 0);
    harness_close(&h);
}

static void test_prune(void)
{
    struct harness h;
    struct idempotency_record rec;
    uint8_t a[32] = {1};
    char key[16];
    int i;
    harness_open(&h);
    CHECK_INT(store_begin(&h.store), 0);
    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK_INT(idempotency_record(&h.store, key, a, 32, 1000 * i, 200, "{}"), 0);
    }
    /* older than 5 s before t=9 s, i.e. k0..k3, but the newest 8 stay: k0, k1 go */
    CHECK_INT(idempotency_prune(&h.store, 9000, 5000, 8), 2);
    CHECK_INT(idempotency_check(&h.store, "k1", a, 32, &rec), IDEMPOTENCY_NONE);
    CHECK_INT(idempotency_check(&h.store, "k2", a, 32, &rec), IDEMPOTENCY_MATCH);
    /* keep nothing by count: the age decides alone */
    CHECK_INT(idempotency_prune(&h.store, 9000, 5000, 0), 2);
    CHECK_INT(idempotency_check(&h.store, "k3", a, 32, &rec), IDEMPOTENCY_NONE);
    CHECK_INT(idempotency_check(&h.store, "k4", a, 32, &rec), IDEMPOTENCY_MATCH);
    CHECK_INT(idempotency_prune(&h.store, 9000, 5000, 0), 0);
    CHECK_INT(store_commit(&h.store), 0);
    harness_close(&h);
}

int main(void)
{
    RUN(test_none_match_mismatch);
    RUN(test_prune);
    return test_report("idempotency");
}
