/* The SQLite read model: schema, prepared statements, and the queries that
 * the domain (writes, inside apply) and the REST API (reads) need.
 *
 * One connection, used only from the loop thread. Statements are prepared
 * once at open. Every write happens inside store_begin/store_commit, which
 * the FSM brackets around one log entry. */
#ifndef VARASTO_STORE_H
#define VARASTO_STORE_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* Prepared statements, by purpose. */
enum store_stmt {
    ST_BEGIN,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_META_SET_APPLIED,
    ST_META_GET_APPLIED,
    ST_DIR_GET,
    ST_DIR_INSERT,
    ST_DIR_SET_NAME,
    ST_DIR_SET_DESCRIPTION,
    ST_DIR_SET_TYPE,
    ST_DIR_SET_SENSITIVITY,
    ST_DIR_SET_PARENT,
    ST_DIR_DELETE,
    ST_DIR_CHILDREN,
    ST_DIR_HAS_CHILD,
    ST_DIR_HAS_COLLECTION,
    ST_COLL_GET,
    ST_COLL_INSERT,
    ST_COLL_SET_NAME,
    ST_COLL_SET_DESCRIPTION,
    ST_COLL_SET_DIRECTORY,
    ST_COLL_SET_RATING,
    ST_COLL_SET_SENSITIVITY,
    ST_COLL_SET_HEAD,
    ST_COLL_DELETE,
    ST_COLL_IN_DIR,
    ST_TAG_ADD,
    ST_TAG_REMOVE,
    ST_TAG_LIST,
    ST_TAG_DELETE_ALL,
    ST_CS_INSERT,
    ST_CS_EXISTS,
    ST_CS_LIST,
    ST_CS_DELETE_ALL,
    ST_FILE_EXISTS,
    ST_FILE_UPSERT,
    ST_FILE_DELETE,
    ST_FILE_LIST,
    ST_FILE_DELETE_ALL,
    ST_KEY_INSERT,
    ST_KEY_EXISTS,
    ST_KEY_DELETE,
    ST_KEY_BY_HASH,
    ST_EVENT_INSERT,
    ST_EVENT_PAGE,
    ST_SUB_INSERT,
    ST_SUB_GET,
    ST_SUB_ACK,
    ST_SUB_DELETE,
    ST_SUB_LIST,
    ST_SUB_MIN_CURSOR,
    ST_EVENT_OLDEST,
    ST_EVENT_PRUNE,
    ST_NODE_PUT,
    ST_NODE_GET,
    ST_NODE_LIST,
    ST_NODE_DELETE,
    ST_IDEM_GET,
    ST_IDEM_PUT,
    ST_IDEM_PRUNE,
    ST__COUNT
};

struct store {
    sqlite3 *db;       /* the loop thread's connection: all writes, all reads */
    sqlite3 *reader;   /* background work (snapshot copy, checkpoint) */
    pthread_mutex_t reader_lock; /* held while a worker thread uses reader */
    int lock_ready;
    sqlite3_stmt *stmts[ST__COUNT];
    unsigned wal_pages; /* WAL size after the last commit */
    int wal_fd;         /* the WAL file, to start its writeback (or -1) */
    unsigned generation; /* bumped when store_replace swaps the database */
    int read_tx;        /* store_read_begin opened a read transaction on db */
    char path[1024];
    char errmsg[256];
    char reader_errmsg[256];
};

/* Process-wide SQLite settings; call once, before any other store call.
 * Memory statistics are off: with them on, every sqlite3_malloc and
 * sqlite3_free takes a global mutex to count bytes, which we never read. */
void store_library_init(void);

/* Open (creating if needed) the database at @path and prepare statements.
 * Returns 0, or -1 with st->errmsg set. */
int store_open(struct store *st, const char *path);

/* Finalize statements and close the connection. */
void store_close(struct store *st);

/* Statement @id, reset and with bindings cleared, ready to bind. */
sqlite3_stmt *store_stmt(struct store *st, enum store_stmt id);

/* Bind values by a format string to statement @id and step it once.
 * Formats: 's' const char *, 'i' int64_t, 'b' blob (const void *, int len),
 * 'n' NULL. Returns the sqlite step result (SQLITE_ROW or SQLITE_DONE), or an
 * error code. The statement stays positioned on the row for reading. */
int store_run(struct store *st, enum store_stmt id, const char *fmt, ...);

/* Transaction control; return 0 or -1. */
int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);
int store_savepoint(struct store *st);
void store_rollback_to_savepoint(struct store *st);
int store_release_savepoint(struct store *st);

/* The applied raft index and the last event seq (one row, one statement). */
int store_meta_set_applied(struct store *st, uint64_t index, uint64_t seq);
void store_meta_get_applied(struct store *st, uint64_t *index, uint64_t *seq);

/* ---- background work on the reader connection ----
 * The caller serializes uses of the reader (one job at a time). */

/* Start a read transaction on the reader: a stable view of everything
 * committed so far, while the loop keeps writing. Loop thread. */
int store_reader_begin(struct store *st);
/* An image of the reader's view of the whole database, if the database is
 * still generation @generation (a restore in between makes the view stale:
 * -1). Free it with store_image_free. Any thread. */
int store_reader_serialize(struct store *st, unsigned generation, unsigned char **data,
                           size_t *size);
void store_image_free(void *image);
/* End the reader's transaction. Loop thread. */
void store_reader_end(struct store *st);
/* Copy WAL frames back into the database without blocking the writer
 * (PASSIVE checkpoint). Any thread. Returns 0 or -1. */
int store_reader_checkpoint(struct store *st);

/* PASSIVE checkpoint on the loop's own connection (it fsyncs). */
int store_checkpoint_now(struct store *st);

/* Replace the database file with @data (a store_reader_serialize image) and reopen.
 * Returns 0 or -1 with st->errmsg set. */
int store_replace(struct store *st, const unsigned char *data, size_t size);

/* ---- reads for the REST API: documents appended to a buffer ---- */

struct buf;

/* The GET /api_v2/directories/{id} document; returns 1, or 0 if no such
 * directory (then @out holds a partial document to discard). */
int store_directory_view(struct store *st, const char *id, struct buf *out);
/* The GET /api_v2/collections/{id} document; same returns. */
int store_collection_view(struct store *st, const char *id, struct buf *out);

/* Reads on the loop thread share one read transaction until
 * store_read_end: BEGIN and COMMIT take and drop SQLite's file locks
 * (fcntl) and its WAL read mark, which cost a small read as much as its
 * queries. The node ends it once per loop iteration before it applies
 * entries, and store_begin, store_replace, store_checkpoint_now,
 * store_prune_events and store_close end it first: the connection writes
 * only in those, so a read never sees less than this node has committed.
 * Inside a write transaction reads join that instead. */
void store_read_begin(struct store *st);
void store_read_end(struct store *st);

/* Run a view function in the shared read transaction (store_read_begin),
 * so its queries see one WAL snapshot. */
int store_read(struct store *st, int (*view)(struct store *, const char *, struct buf *),
               const char *id, struct buf *out);

/* Append events with seq > @after (at most @limit, matching @types when
 * non-NULL) to @out as a JSON array body "[...]". Returns the number. */
struct type_filter; /* type_filter.h */
int store_events_page(struct store *st, uint64_t after, unsigned limit,
                      const struct type_filter *types, struct buf *out);

/* The announced raft and HTTP addresses of node @id; returns 1, or 0 if the
 * node has not announced itself. */
int store_node_addresses(struct store *st, uint64_t id, char *raft, char *http, size_t size);

/* Durable subscription @name: its type filter (when @types is not NULL)
 * and acked cursor. Returns 1, or 0 if there is none. */
int store_subscription(struct store *st, const char *name, struct type_filter *types,
                       uint64_t *cursor);
/* The GET /api_v2/subscriptions document. */
void store_subscriptions_json(struct store *st, uint64_t last_seq, struct buf *out);
/* The lowest durable cursor; returns 0 when there are no subscriptions. */
int store_min_subscription_cursor(struct store *st, uint64_t *cursor);

/* The oldest event kept (0 if none) and pruning up to @upto (inclusive);
 * prune returns the number removed or -1. */
uint64_t store_oldest_event(struct store *st);
int store_prune_events(struct store *st, uint64_t upto);

/* Whether @token_hash (32 bytes) is an API key's hash. */
int store_apikey_valid(struct store *st, const uint8_t token_hash[32]);

#endif
