/* The store's typed rows: what the domain relies on when a write is refused
 * (constraint codes, rows changed), borrowed rows, scans and cascades. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "testlib.h"
#include "type_filter.h"
#include "util.h"

/* Count rows by callback; stop after @stop_after rows when it is not 0. */
struct counter {
    int n;
    int stop_after;
};

static int count_dir(void *data, const struct store_dir *row)
{
    struct counter *c = data;
    (void)row;
    return ++c->n == c->stop_after;
}

static int count_tag(void *data, const char *tag)
{
    struct counter *c = data;
    (void)tag;
    return ++c->n == c->stop_after;
}

static void test_directory_rows(void)
{
    struct harness h;
    struct store_dir row;
    struct counter c = {0, 0};
    harness_open(&h);
    CHECK_INT(store_begin(&h.store), 0);
    CHECK_INT(store_dir_insert(&h.store, "d1", 5, "root", "a"), 1);
    CHECK_INT(store_dir_insert(&h.store, "d2", 6, "root", "b"), 1);
    /* the sibling name and the primary key refuse with codes of their own */
    CHECK_INT(store_dir_insert(&h.store, "d3", 7, "root", "a"), STORE_CONSTRAINT_UNIQUE);
    CHECK_CONTAINS(h.store.errmsg, "UNIQUE");
    CHECK_INT(store_dir_insert(&h.store, "d1", 7, "d2", "x"), STORE_CONSTRAINT_PK);
    CHECK_INT(store_dir_set_name(&h.store, "d2", "a"), STORE_CONSTRAINT_UNIQUE);
    CHECK_INT(store_dir_set_parent(&h.store, "d2", "d1"), 1);
    /* a rename of a missing directory changes no row */
    CHECK_INT(store_dir_set_name(&h.store, "nope", "z"), 0);
    CHECK_INT(store_dir_set_description(&h.store, "nope", "z"), 0);
    CHECK_INT(store_dir_delete(&h.store, "nope"), 0);

    CHECK_INT(store_dir_get(&h.store, "nope", &row), 0);
    CHECK_INT(store_dir_get(&h.store, "d2", NULL), 1);
    CHECK_INT(store_dir_get(&h.store, "d2", &row), 1);
    CHECK_STR(row.id, "d2");
    CHECK_STR(row.parent, "d1");
    CHECK_STR(row.name, "b");
    CHECK_STR(row.type, "generic");
    CHECK_INT(row.created, 6);
    CHECK_INT(store_dir_has_subdirs(&h.store, "d1"), 1);
    CHECK_INT(store_dir_has_subdirs(&h.store, "d2"), 0);
    CHECK_INT(store_dir_has_collections(&h.store, "d1"), 0);
    CHECK_INT(store_dir_children(&h.store, "root", count_dir, &c), 1);
    CHECK_INT(c.n, 1);
    CHECK_INT(store_dir_insert(&h.store, "d4", 8, "root", "c"), 1);
    c.n = 0;
    c.stop_after = 1; /* a callback stops the scan */
    CHECK_INT(store_dir_children(&h.store, "root", count_dir, &c), 1);
    CHECK_INT(store_dir_delete(&h.store, "d4"), 1);
    CHECK_INT(store_commit(&h.store), 0);
    harness_close(&h);
}

static void test_collection_rows(void)
{
    struct harness h;
    struct store_coll row;
    struct store_changeset cs = {"cs1", "", "t"};
    struct store_file f = {"p", "ab", "x", "y", 3, "[\"r\"]", 5};
    struct counter c = {0, 0};
    harness_open(&h);
    CHECK_INT(store_begin(&h.store), 0);
    CHECK_INT(store_coll_insert(&h.store, "c1", 5, "root", "c"), 1);
    CHECK_INT(store_coll_insert(&h.store, "c1", 5, "root", "c"), STORE_CONSTRAINT_PK);
    CHECK_INT(store_coll_get(&h.store, "c1", &row), 1);
    CHECK_INT(row.has_rating, 0);
    CHECK_STR(row.head, "");
    CHECK_INT(store_coll_set_rating(&h.store, "c1", 3), 1);
    CHECK_INT(store_coll_set_rating(&h.store, "nope", 3), 0);
    CHECK_INT(store_coll_get(&h.store, "c1", &row), 1);
    CHECK_INT(row.has_rating, 1);
    CHECK_INT(row.rating, 3);
    /* tags are a set: adding twice changes one row, then none */
    CHECK_INT(store_tag_add(&h.store, "c1", "t"), 1);
    CHECK_INT(store_tag_add(&h.store, "c1", "t"), 0);
    CHECK_INT(store_tag_remove(&h.store, "c1", "u"), 0);
    CHECK_INT(store_changeset_insert(&h.store, "c1", &cs), 1);
    CHECK_INT(store_changeset_insert(&h.store, "c1", &cs), STORE_CONSTRAINT_PK);
    CHECK_INT(store_changeset_exists(&h.store, "c1", "cs1"), 1);
    CHECK_INT(store_file_put(&h.store, "c1", &f), 1);
    CHECK_INT(store_file_exists(&h.store, "c1", "p"), 1);
    CHECK_INT(store_file_delete(&h.store, "c1", "q"), 0);
    /* deleting the collection takes what it holds with it */
    CHECK_INT(store_coll_delete(&h.store, "c1"), 1);
    CHECK_INT(store_coll_delete(&h.store, "c1"), 0);
    CHECK_INT(store_tags(&h.store, "c1", count_tag, &c), 0);
    CHECK_INT(store_changeset_exists(&h.store, "c1", "cs1"), 0);
    CHECK_INT(store_file_exists(&h.store, "c1", "p"), 0);
    CHECK_INT(store_commit(&h.store), 0);
    harness_close(&h);
}

static void test_other_rows(void)
{
    struct harness h;
    struct store_sub sub;
    struct store_idempotency idem;
    uint8_t hash[32] = {1}, other[32] = {2};
    char raft[64], http[64];
    uint64_t cursor = 0;
    harness_open(&h);
    CHECK_INT(store_begin(&h.store), 0);
    CHECK_INT(store_apikey_insert(&h.store, "k1", "ci", "read", hash, 1), 1);
    CHECK_INT(store_apikey_insert(&h.store, "k1", "ci", "write", other, 1), STORE_CONSTRAINT_PK);
    CHECK_INT(store_apikey_insert(&h.store, "k2", "ci", "write", hash, 1), STORE_CONSTRAINT_UNIQUE);
    /* both taken: the hash's index speaks first */
    CHECK_INT(store_apikey_insert(&h.store, "k1", "ci", "write", hash, 1), STORE_CONSTRAINT_UNIQUE);
    CHECK_INT(store_apikey_exists(&h.store, "k1"), 1);
    CHECK_INT(store_apikey_scope(&h.store, hash, raft, sizeof raft), STORE_SCOPE_READ);
    CHECK_STR(raft, "k1");
    CHECK_INT(store_apikey_scope(&h.store, other, NULL, 0), 0);
    CHECK_INT(store_apikey_insert(&h.store, "k3", "ci", "admin", other, 1), 1);
    CHECK_INT(store_apikey_scope(&h.store, other, NULL, 0), STORE_SCOPE_ADMIN);
    CHECK_INT(store_apikey_delete(&h.store, "k1"), 1);
    CHECK_INT(store_apikey_scope(&h.store, hash, NULL, 0), 0);
    CHECK_INT(store_apikey_delete(&h.store, "k1"), 0);
    CHECK_INT(store_event_insert(&h.store, 1, "a.B", "{}"), 1);
    CHECK_INT(store_event_insert(&h.store, 1, "a.B", "{}"), STORE_CONSTRAINT_PK);
    CHECK_INT(store_sub_insert(&h.store, "s", "a.,b.", 1), 1);
    CHECK_INT(store_sub_insert(&h.store, "s", "", 1), STORE_CONSTRAINT_PK);
    CHECK_INT(store_sub_ack(&h.store, "s", 5), 1);
    CHECK_INT(store_sub_ack(&h.store, "s", 2), 1); /* never back */
    CHECK_INT(store_sub_ack(&h.store, "nope", 2), 0);
    CHECK_INT(store_sub_get(&h.store, "s", &sub), 1);
    CHECK_STR(sub.types, "a.,b.");
    CHECK_INT(sub.cursor, 5);
    CHECK_INT(store_sub_get(&h.store, "nope", &sub), 0);
    /* a stream's subscription lookup tells "none" from a failed read */
    CHECK_INT(store_subscription(&h.store, "nope", NULL, &cursor), 0);
    CHECK_INT(store_subscription(&h.store, "s", NULL, &cursor), 1);
    CHECK_INT(store_node_put(&h.store, 2, "r:1", "h:1"), 1);
    CHECK_INT(store_node_addresses(&h.store, 2, raft, http, sizeof raft), 1);
    CHECK_STR(http, "h:1");
    CHECK_INT(store_node_delete(&h.store, 2), 1);
    CHECK_INT(store_node_addresses(&h.store, 2, raft, http, sizeof raft), 0);
    CHECK_INT(store_idempotency_put(&h.store, "k", hash, 32, 10, 409, "{\"x\":1}"), 1);
    CHECK_INT(store_idempotency_get(&h.store, "k", &idem), 1);
    CHECK_INT(idem.status, 409);
    CHECK_INT(idem.hash_len, 32);
    CHECK_INT(idem.body_len, 7);
    CHECK_STR(idem.body, "{\"x\":1}");
    CHECK_INT(store_idempotency_get(&h.store, "other", &idem), 0);
    CHECK_INT(store_commit(&h.store), 0);
    /* ... and a read that fails is an error, not "none" (a stream would
     * answer 404 for a subscription that exists) */
    harness_exec(&h, "DROP TABLE subscriptions");
    CHECK(store_subscription(&h.store, "s", NULL, &cursor) < 0);
    harness_close(&h);
}

/* A get's row stays valid until the next call on the store, and that call
 * releases it: the statement does not stay open. */
static void test_borrowed_row_released(void)
{
    struct harness h;
    struct store_dir row;
    harness_open(&h);
    CHECK_INT(store_dir_get(&h.store, "root", &row), 1);
    CHECK_STR(row.name, "root");
    CHECK(h.store.held != NULL);
    store_read_end(&h.store);
    CHECK(h.store.held == NULL);
    CHECK_INT(store_dir_get(&h.store, "root", &row), 1);
    CHECK_INT(store_begin(&h.store), 0);
    CHECK(h.store.held == NULL);
    store_rollback(&h.store);
    harness_close(&h);
}

/* A read model written before keys had a scope is upgraded when opened:
 * its keys keep working, with the default scope (write). */
static void test_keys_from_before_scopes(void)
{
    struct harness h;
    sqlite3 *db;
    uint8_t hash[32] = {7};
    char id[16];
    harness_open(&h);
    CHECK_INT(sqlite3_open(h.path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db,
                           "DROP TABLE apikeys; CREATE TABLE apikeys (id TEXT PRIMARY KEY, "
                           "name TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE, "
                           "created INTEGER NOT NULL); INSERT INTO apikeys "
                           "VALUES('old', 'ci', x'07000000000000000000000000000000"
                           "00000000000000000000000000000000', 1)",
                           NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    harness_reopen(&h);
    CHECK_INT(store_apikey_scope(&h.store, hash, id, sizeof id), STORE_SCOPE_WRITE);
    CHECK_STR(id, "old");
    harness_close(&h);
}

static int collect_seq(void *data, uint64_t seq, const char *type, const char *json, size_t len)
{
    struct buf *b = data;
    char line[64];
    (void)json;
    (void)len;
    snprintf(line, sizeof line, "%llu:%s ", (unsigned long long)seq, type);
    buf_append(b, line, strlen(line));
    return 0;
}

/* A type-filtered read looks at a bounded number of events per call, in
 * seq windows, and says where it stopped; calls from there on see every
 * passing event once, in order (SPEC 7.3: a filter that matches little
 * cannot hold the loop for the whole log). */
static void test_filtered_events_are_bounded(void)
{
    static const char *types[] = {"directory.Created", "collection.Tagged", "apikey.Created",
                                  "directory.Renamed"};
    struct harness h;
    struct type_filter f;
    struct buf out;
    uint64_t scanned, after;
    int i, n, calls;
    harness_open(&h);
    CHECK_INT(store_begin(&h.store), 0);
    for (i = 1; i <= 12; i++) {
        CHECK_INT(store_event_insert(&h.store, (uint64_t)i, types[i % 4], "{}"), 1);
    }
    for (i = 13; i <= 5000; i++) {
        CHECK_INT(store_event_insert(&h.store, (uint64_t)i,
                                     i == 5000 ? "apikey.Removed" : "noise.X", "{}"),
                  1);
    }
    CHECK_INT(store_commit(&h.store), 0);
    type_filter_parse(&f, "directory.,apikey.");
    buf_init(&out);
    CHECK_INT(store_events_filtered(&h.store, 2, 13, 100, 100000, &f, collect_seq, &out, &scanned),
              8);
    buf_append(&out, "", 1);
    CHECK_STR(out.data, "3:directory.Renamed 4:directory.Created 6:apikey.Created "
                        "7:directory.Renamed 8:directory.Created 10:apikey.Created "
                        "11:directory.Renamed 12:directory.Created ");
    CHECK_INT(scanned, 12);
    /* the limit stops it right after the last one handed on */
    out.len = 0;
    CHECK_INT(store_events_filtered(&h.store, 0, 0, 2, 100000, &f, collect_seq, &out, &scanned), 2);
    CHECK_INT(scanned, 3); /* seq 2 and 3 passed */
    /* a budget: one window looked at, nothing found, and where to go on */
    out.len = 0;
    CHECK_INT(store_events_filtered(&h.store, 12, 0, 100, STORE_SCAN_WINDOW, &f, collect_seq, &out,
                                    &scanned),
              0);
    CHECK_INT(scanned, 12 + STORE_SCAN_WINDOW);
    /* going on from there finds the last event, once */
    for (after = scanned, n = 0, calls = 0; after < 5000 && calls < 10; calls++) {
        n += store_events_filtered(&h.store, after, 0, 100, STORE_SCAN_WINDOW, &f, collect_seq,
                                   &out, &scanned);
        after = scanned;
    }
    CHECK_INT(n, 1);
    CHECK_INT(after, 5000);
    CHECK(calls <= (5000 - 12) / STORE_SCAN_WINDOW + 1);
    buf_append(&out, "", 1);
    CHECK_STR(out.data, "5000:apikey.Removed ");
    buf_free(&out);
    harness_close(&h);
}

int main(void)
{
    RUN(test_directory_rows);
    RUN(test_collection_rows);
    RUN(test_other_rows);
    RUN(test_keys_from_before_scopes);
    RUN(test_filtered_events_are_bounded);
    RUN(test_borrowed_row_released);
    return test_report("store");
}
