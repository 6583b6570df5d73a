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

/* "... AND (substr(type, 1, length(?4)) = ?4 OR ...)": one bound
 * parameter per prefix (the SQL holds placeholders only). */
static sqlite3_stmt *filtered_stmt(struct store *st, const struct type_filter *filter)
{
    char sql[256 + TYPE_FILTER_MAX * 48];
    size_t n;
    unsigned i;
    sqlite3_stmt *s = NULL;
    n = (size_t)snprintf(sql, sizeof sql,
                         "SELECT seq, type, json FROM events WHERE seq > ?1 AND seq <= ?2 AND (");
    for (i = 0; i < filter->n; i++) {
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%ssubstr(type, 1, length(?%u)) = ?%u",
                              i > 0 ? " OR " : "", i + 3, i + 3);
    }
    snprintf(sql + n, sizeof sql - n, ") ORDER BY seq");
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
        snprintf(st->errmsg, sizeof st->errmsg, "filtered events: %s", sqlite3_errmsg(st->db));
        sqlite3_finalize(s);
        return NULL;
    }
    for (i = 0; i < filter->n; i++) {
        sqlite3_bind_text(s, (int)i + 3, filter->prefixes[i], -1, SQLITE_STATIC);
    }
    return s;
}

int store_events_filtered(struct store *st, uint64_t after, uint64_t below, unsigned limit,
                          unsigned budget, const struct type_filter *filter, store_event_fn cb,
                          void *data, uint64_t *scanned)
{
    sqlite3_stmt *s, *last = store_stmt(st, STORE_STMT_EVENT_LAST);
    uint64_t end = 0, lo = after, looked = 0;
    int n = 0, rv = SQLITE_DONE, stopped = 0;

    *scanned = after;
    store_read_begin(st);
    if (sqlite3_step(last) == SQLITE_ROW) {
        end = (uint64_t)sqlite3_column_int64(last, 0);
    }
    sqlite3_reset(last);
    if (below > 0 && below - 1 < end) {
        end = below - 1;
    }
    if (filter->n == 0 || lo >= end || limit == 0) {
        *scanned = lo > end ? lo : end;
        return 0;
    }
    if ((s = filtered_stmt(st, filter)) == NULL) {
        return -1;
    }
    while (lo < end && looked < budget && !stopped) {
        uint64_t hi = end - lo > STORE_SCAN_WINDOW ? lo + STORE_SCAN_WINDOW : end;
        sqlite3_bind_int64(s, 1, (int64_t)lo);
        sqlite3_bind_int64(s, 2, (int64_t)hi);
        while (!stopped && (rv = sqlite3_step(s)) == SQLITE_ROW) {
            uint64_t seq = (uint64_t)sqlite3_column_int64(s, 0);
            n++;
            stopped = cb(data, seq, store_text(s, 1), store_text(s, 2),
                         (size_t)sqlite3_column_bytes(s, 2)) != 0 ||
                      (unsigned)n >= limit;
            *scanned = seq;
        }
        sqlite3_reset(s);
        if (rv != SQLITE_ROW && rv != SQLITE_DONE) {
            snprintf(st->errmsg, sizeof st->errmsg, "filtered events: %s", sqlite3_errmsg(st->db));
            sqlite3_finalize(s);
            return -1;
        }
        if (!stopped) {
            *scanned = hi;
        }
        looked += hi - lo;
        lo = hi;
    }
    sqlite3_finalize(s);
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
