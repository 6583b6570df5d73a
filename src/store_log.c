/* Typed rows beside the catalog: the event log, durable subscriptions, API
 * keys, cluster members and idempotency records. */
#include "store_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "type_filter.h"
#include "util.h"

/* ---- API keys ---- */

int store_apikey_insert(struct store *st, const char *id, const char *name, const char *scope,
                        const uint8_t token_hash[32], int64_t created)
{
    return store_write_result(st, STORE_STMT_KEY_INSERT,
                              store_run(st, STORE_STMT_KEY_INSERT, "sssbi", id, name, scope,
                                        token_hash, 32, created));
}

int store_apikey_exists(struct store *st, const char *id)
{
    return store_get_result(st, STORE_STMT_KEY_EXISTS,
                            store_run(st, STORE_STMT_KEY_EXISTS, "s", id), 0);
}

int store_apikey_delete(struct store *st, const char *id)
{
    return store_write_result(st, STORE_STMT_KEY_DELETE,
                              store_run(st, STORE_STMT_KEY_DELETE, "s", id));
}

int store_apikey_scope(struct store *st, const uint8_t token_hash[32], char *id, size_t size)
{
    sqlite3_stmt *s = st->stmts[STORE_STMT_KEY_BY_HASH];
    int scope = 0;
    store_read_begin(st);
    if (store_run(st, STORE_STMT_KEY_BY_HASH, "b", token_hash, 32) == SQLITE_ROW) {
        const char *text = store_text(s, 1);
        scope = strcmp(text, "admin") == 0  ? STORE_SCOPE_ADMIN
                : strcmp(text, "read") == 0 ? STORE_SCOPE_READ
                                            : STORE_SCOPE_WRITE;
        if (id != NULL) {
            util_copy(id, size, store_text(s, 0));
        }
    }
    sqlite3_reset(s);
    return scope;
}

/* ---- the event log ---- */

int store_event_insert(struct store *st, uint64_t seq, const char *type, const char *json)
{
    return store_write_result(st, STORE_STMT_EVENT_INSERT,
                              store_run(st, STORE_STMT_EVENT_INSERT, "iss", (int64_t)seq, type,
                                        json));
}

int store_events_scan(struct store *st, uint64_t after, unsigned limit, store_event_fn cb,
                      void *data)
{
    sqlite3_stmt *s;
    int n = 0, rv;

    store_read_begin(st);
    s = store_stmt(st, STORE_STMT_EVENT_PAGE);
    sqlite3_bind_int64(s, 1, (int64_t)after);
    sqlite3_bind_int64(s, 2, limit > 0 ? (int64_t)limit : -1);
    while ((rv = sqlite3_step(s)) == SQLITE_ROW) {
        const char *type = store_text(s, 1);
        const char *json = store_text(s, 2);
        n++;
        if (cb(data, (uint64_t)sqlite3_column_int64(s, 0), type, json,
               (size_t)sqlite3_column_bytes(s, 2)) != 0) {
            break;
        }
    }
    return store_scan_result(st, STORE_STMT_EVENT_PAGE, rv, n);
}

uint64_t store_oldest_event(struct store *st)
{
    uint64_t v = 0;
    if (store_run(st, STORE_STMT_EVENT_OLDEST, "") == SQLITE_ROW &&
        sqlite3_column_type(st->stmts[STORE_STMT_EVENT_OLDEST], 0) != SQLITE_NULL) {
        v = (uint64_t)sqlite3_column_int64(st->stmts[STORE_STMT_EVENT_OLDEST], 0);
    }
    sqlite3_reset(st->stmts[STORE_STMT_EVENT_OLDEST]);
    return v;
}

int store_prune_events(struct store *st, uint64_t upto)
{
    store_read_end(st);
    return store_write_result(st, STORE_STMT_EVENT_PRUNE,
                              store_run(st, STORE_STMT_EVENT_PRUNE, "i", (int64_t)upto));
}

/* ---- durable subscriptions ---- */

int store_sub_insert(struct store *st, const char *name, const char *types, int64_t created)
{
    return store_write_result(st, STORE_STMT_SUB_INSERT,
                              store_run(st, STORE_STMT_SUB_INSERT, "ssi", name, types, created));
}

int store_sub_get(struct store *st, const char *name, struct store_sub *row)
{
    int rv = store_run(st, STORE_STMT_SUB_GET, "s", name);
    if (rv == SQLITE_ROW && row != NULL) {
        sqlite3_stmt *s = st->stmts[STORE_STMT_SUB_GET];
        row->name = name;
        row->types = store_text(s, 0);
        row->cursor = (uint64_t)sqlite3_column_int64(s, 1);
    }
    return store_get_result(st, STORE_STMT_SUB_GET, rv, row != NULL);
}

int store_sub_ack(struct store *st, const char *name, uint64_t seq)
{
    return store_write_result(st, STORE_STMT_SUB_ACK,
                              store_run(st, STORE_STMT_SUB_ACK, "is", (int64_t)seq, name));
}

int store_sub_delete(struct store *st, const char *name)
{
    return store_write_result(st, STORE_STMT_SUB_DELETE,
                              store_run(st, STORE_STMT_SUB_DELETE, "s", name));
}

int store_subs(struct store *st, store_sub_fn cb, void *data)
{
    sqlite3_stmt *s = store_stmt(st, STORE_STMT_SUB_LIST);
    struct store_sub row;
    int n = 0, rv;
    while ((rv = sqlite3_step(s)) == SQLITE_ROW) {
        row.name = store_text(s, 0);
        row.types = store_text(s, 1);
        row.cursor = (uint64_t)sqlite3_column_int64(s, 2);
        n++;
        if (cb(data, &row) != 0) {
            break;
        }
    }
    return store_scan_result(st, STORE_STMT_SUB_LIST, rv, n);
}

int store_subscription(struct store *st, const char *name, struct type_filter *types,
                       uint64_t *cursor)
{
    struct store_sub row = {0};
    int rv = store_sub_get(st, name, &row);
    if (rv != 1) {
        return rv; /* 0: none; < 0: the store failed (st->errmsg) */
    }
    if (types != NULL) {
        type_filter_parse(types, row.types);
    }
    *cursor = row.cursor;
    return 1;
}

int store_min_subscription_cursor(struct store *st, uint64_t *cursor)
{
    sqlite3_stmt *s = st->stmts[STORE_STMT_SUB_MIN_CURSOR];
    int found = store_run(st, STORE_STMT_SUB_MIN_CURSOR, "") == SQLITE_ROW &&
                sqlite3_column_type(s, 0) != SQLITE_NULL;
    if (found) {
        *cursor = (uint64_t)sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    return found;
}

/* ---- cluster members ---- */

int store_node_put(struct store *st, uint64_t id, const char *raft, const char *http)
{
    return store_write_result(st, STORE_STMT_NODE_PUT,
                              store_run(st, STORE_STMT_NODE_PUT, "iss", (int64_t)id, raft, http));
}

int store_node_delete(struct store *st, uint64_t id)
{
    return store_write_result(st, STORE_STMT_NODE_DELETE,
                              store_run(st, STORE_STMT_NODE_DELETE, "i", (int64_t)id));
}

int store_node_addresses(struct store *st, uint64_t id, char *raft, char *http, size_t size)
{
    sqlite3_stmt *s = st->stmts[STORE_STMT_NODE_GET];
    int found = store_run(st, STORE_STMT_NODE_GET, "i", (int64_t)id) == SQLITE_ROW;
    if (found) {
        util_copy(raft, size, store_text(s, 0));
        util_copy(http, size, store_text(s, 1));
    }
    sqlite3_reset(s);
    return found;
}

/* The event types the log holds, each once: a skip-scan of the type index,
 * one seek per type. */
static int event_types(struct store *st, char (*types)[TYPE_FILTER_PREFIX], unsigned max)
{
    sqlite3_stmt *s = store_stmt(st, STORE_STMT_EVENT_TYPES);
    unsigned n = 0;
    int rv;
    while ((rv = sqlite3_step(s)) == SQLITE_ROW) {
        const char *t = store_text(s, 0);
        if (n == max || strlen(t) >= TYPE_FILTER_PREFIX) {
            /* the code emits a few dozen types, each short */
            sqlite3_reset(s);
            snprintf(st->errmsg, sizeof st->errmsg, "more event types than %u, or a long one", max);
            return -1;
        }
        strcpy(types[n++], t);
    }
    return store_scan_result(st, STORE_STMT_EVENT_TYPES, rv, (int)n);
}

/* The next row of @s: 1, or 0 at its end (@failed set on an error). */
static int step(sqlite3_stmt *s, int *failed)
{
    int rv = sqlite3_step(s);
    if (rv != SQLITE_ROW && rv != SQLITE_DONE) {
        *failed = 1;
    }
    return rv == SQLITE_ROW;
}

int store_events_filtered(struct store *st, uint64_t after, uint64_t below, unsigned limit,
                          const struct type_filter *filter, store_event_fn cb, void *data,
                          int *exhausted)
{
    char types[STORE_EVENT_TYPES_MAX][TYPE_FILTER_PREFIX];
    sqlite3_stmt *cur[STORE_EVENT_TYPES_MAX];
    int live[STORE_EVENT_TYPES_MAX];
    unsigned n_types, k = 0, i;
    int n = 0, rv, stopped = 0, failed = 0;

    *exhausted = 0;
    store_read_begin(st);
    rv = event_types(st, types, STORE_EVENT_TYPES_MAX);
    if (rv < 0) {
        return rv;
    }
    n_types = (unsigned)rv;
    /* one cursor per matching type, each in seq order on the type index */
    for (i = 0; i < n_types; i++) {
        if (!type_filter_match(filter, types[i])) {
            continue;
        }
        if (sqlite3_prepare_v2(st->db, store_sql_events_of_type, -1, &cur[k], NULL) != SQLITE_OK) {
            snprintf(st->errmsg, sizeof st->errmsg, "events by type: %s", sqlite3_errmsg(st->db));
            while (k > 0) {
                sqlite3_finalize(cur[--k]);
            }
            return -1;
        }
        sqlite3_bind_text(cur[k], 1, types[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(cur[k], 2, (int64_t)after);
        sqlite3_bind_int64(cur[k], 3, below > 0 ? (int64_t)below : INT64_MAX);
        k++;
        live[k - 1] = step(cur[k - 1], &failed);
    }
    /* merge by seq: each row read is one handed on, but for one per type */
    while ((unsigned)n < limit && !stopped && !failed) {
        int best = -1;
        for (i = 0; i < k; i++) {
            if (live[i] && (best < 0 ||
                            sqlite3_column_int64(cur[i], 0) < sqlite3_column_int64(cur[best], 0))) {
                best = (int)i;
            }
        }
        if (best < 0) {
            *exhausted = 1;
            break;
        }
        n++;
        stopped = cb(data, (uint64_t)sqlite3_column_int64(cur[best], 0), store_text(cur[best], 1),
                     store_text(cur[best], 2), (size_t)sqlite3_column_bytes(cur[best], 2)) != 0;
        live[best] = step(cur[best], &failed);
    }
    for (i = 0; i < k; i++) {
        sqlite3_finalize(cur[i]);
    }
    if (failed) {
        snprintf(st->errmsg, sizeof st->errmsg, "events by type: %s", sqlite3_errmsg(st->db));
        return -1;
    }
    return n;
}

/* ---- idempotency records ---- */

int store_idempotency_get(struct store *st, const char *key, struct store_idempotency *row)
{
    sqlite3_stmt *s = st->stmts[STORE_STMT_IDEM_GET];
    int rv = store_run(st, STORE_STMT_IDEM_GET, "s", key);
    if (rv == SQLITE_ROW) {
        row->hash = sqlite3_column_blob(s, 0);
        row->hash_len = (size_t)sqlite3_column_bytes(s, 0);
        row->status = sqlite3_column_int(s, 1);
        row->body = store_text(s, 2);
        row->body_len = (size_t)sqlite3_column_bytes(s, 2);
    }
    return store_get_result(st, STORE_STMT_IDEM_GET, rv, 1);
}

int store_idempotency_put(struct store *st, const char *key, const uint8_t *hash, size_t hash_len,
                          int64_t time_ms, int status, const char *body)
{
    return store_write_result(st, STORE_STMT_IDEM_PUT,
                              store_run(st, STORE_STMT_IDEM_PUT, "sbiis", key,
                                        hash != NULL ? hash : (const uint8_t *)"", (int)hash_len,
                                        time_ms, (int64_t)status, body));
}

int store_idempotency_prune(struct store *st, int64_t before_ms, uint64_t keep)
{
    return store_write_result(st, STORE_STMT_IDEM_PRUNE,
                              store_run(st, STORE_STMT_IDEM_PRUNE, "ii", before_ms, (int64_t)keep));
}
