/* The SQLite read model: schema, prepared statements, and typed rows for
 * the domain (writes, inside apply) and the REST API (reads). No other
 * module sees SQL, statements or columns.
 *
 * One connection, used only from the loop thread. Statements (store_sql.c)
 * are prepared once at open (store.c); the row accessors are in store_rows.c
 * (the catalog) and store_log.c (events and the rest). Every write
 * happens inside store_begin/store_commit, which the FSM brackets around one
 * log entry.
 *
 * Text in rows is borrowed from SQLite: a get's row is valid until the next
 * call on the store; a scan's row is valid during its callback, which must
 * not call into the store. Gets return 1 (found), 0 (none) or a negative
 * enum store_rc. Writes return the number of rows changed (>= 0) or a
 * negative enum store_rc, with st->errmsg set. */
#ifndef VARASTO_STORE_H
#define VARASTO_STORE_H

/* Not used here: http.c and others still get cJSON through this header. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Errors of the row accessors (negative), with st->errmsg set. */
enum store_rc {
    STORE_OK = 0,
    STORE_ERROR = -1,             /* SQLite failed */
    STORE_CONSTRAINT_UNIQUE = -2, /* a UNIQUE index refused the row */
    STORE_CONSTRAINT_PK = -3,     /* the primary key is taken */
};

/* Slots for the prepared statements (their list is private to the store). */
#define STORE_STMT_SLOTS 80

struct sqlite3;
struct sqlite3_stmt;

struct store {
    struct sqlite3 *db;          /* the loop thread's connection: all writes, all reads */
    struct sqlite3 *reader;      /* background work (snapshot copy, checkpoint) */
    pthread_mutex_t reader_lock; /* held while a worker thread uses reader */
    int lock_ready;
    struct sqlite3_stmt *stmts[STORE_STMT_SLOTS];
    /* A statement left on the row that a get returned, so that the row's
     * borrowed text stays valid; reset by the next call on the store. */
    struct sqlite3_stmt *held;
    unsigned wal_pages;  /* WAL size after the last commit */
    int wal_fd;          /* the WAL file, to start its writeback (or -1) */
    unsigned generation; /* bumped when store_replace swaps the database */
    int read_tx;         /* store_read_begin opened a read transaction on db */
    char path[1024];
    char errmsg[256];
    char reader_errmsg[256];
    int corrupt; /* store_open failed: the file is not a sound database */
    /* The identity of the raft log this read model belongs to (0: unset),
     * recorded again in a database that store_replace brings in. */
    uint64_t log_id;
};

/* Process-wide SQLite settings; call once, before any other store call.
 * Memory statistics are off: with them on, every sqlite3_malloc and
 * sqlite3_free takes a global mutex to count bytes, which we never read. */
void store_library_init(void);

/* Open (creating if needed) the database at @path and prepare statements.
 * Returns 0, or -1 with st->errmsg set (and st->corrupt when SQLite found
 * the file is no database or a damaged one). */
int store_open(struct store *st, const char *path);

/* Finalize statements and close the connection. */
void store_close(struct store *st);

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

/* The identity of the raft log the read model records it was built from
 * (0: none). */
uint64_t store_recorded_log_id(struct store *st);
/* Record @id as the read model's raft log, now and after every
 * store_replace. Returns 0 or -1 (st->errmsg set). */
int store_set_log_id(struct store *st, uint64_t id);

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

/* Reads on the loop thread share one read transaction until
 * store_read_end: BEGIN and COMMIT take and drop SQLite's file locks
 * (fcntl) and its WAL read mark, which cost a small read as much as its
 * queries. The node ends it once per loop iteration before it applies
 * entries, and store_begin, store_replace, store_checkpoint_now,
 * store_prune_events and store_close end it first: the connection writes
 * only in those, so a read never sees less than this node has committed.
 * Inside a write transaction reads join that instead. store_read_end also
 * releases a get's borrowed row. */
void store_read_begin(struct store *st);
void store_read_end(struct store *st);

/* ---- directories ---- */

struct store_dir {
    const char *id;
    int64_t created;    /* ms since the epoch */
    const char *parent; /* "" for the root */
    const char *name;
    const char *description;
    const char *type;
    int64_t sensitivity;
};

/* Called per row of a scan; return 0 to go on, non-zero to stop. */
typedef int (*store_dir_fn)(void *data, const struct store_dir *row);

/* Directory @id into @row (borrowed; @row may be NULL to ask whether it
 * exists). */
int store_dir_get(struct store *st, const char *id, struct store_dir *row);
/* STORE_CONSTRAINT_UNIQUE: @parent has a child named @name;
 * STORE_CONSTRAINT_PK: @id is taken. */
int store_dir_insert(struct store *st, const char *id, int64_t created, const char *parent,
                     const char *name);
/* 0 rows changed: no such directory. set_name and set_parent return
 * STORE_CONSTRAINT_UNIQUE when the (parent, name) pair is taken. */
int store_dir_set_name(struct store *st, const char *id, const char *name);
int store_dir_set_parent(struct store *st, const char *id, const char *parent);
int store_dir_set_description(struct store *st, const char *id, const char *description);
int store_dir_set_type(struct store *st, const char *id, const char *type);
int store_dir_set_sensitivity(struct store *st, const char *id, int64_t sensitivity);
int store_dir_delete(struct store *st, const char *id);
/* Whether directory @id holds a directory / a collection: 1, 0 or < 0. */
int store_dir_has_subdirs(struct store *st, const char *id);
int store_dir_has_collections(struct store *st, const char *id);
/* The directories under @parent, by name. Returns the rows passed to @cb. */
int store_dir_children(struct store *st, const char *parent, store_dir_fn cb, void *data);

/* ---- collections and what they hold ---- */

struct store_coll {
    const char *id;
    int64_t created; /* ms since the epoch */
    const char *directory;
    const char *name;
    const char *description;
    int64_t sensitivity;
    int has_rating; /* 0: not rated (rating is 0) */
    int64_t rating;
    const char *head; /* the last changeset's id, "" before the first */
};

typedef int (*store_coll_fn)(void *data, const struct store_coll *row);

/* Collection @id into @row (borrowed; NULL to ask whether it exists). */
int store_coll_get(struct store *st, const char *id, struct store_coll *row);
/* STORE_CONSTRAINT_PK: @id is taken. */
int store_coll_insert(struct store *st, const char *id, int64_t created, const char *directory,
                      const char *name);
/* 0 rows changed: no such collection. */
int store_coll_set_name(struct store *st, const char *id, const char *name);
int store_coll_set_description(struct store *st, const char *id, const char *description);
int store_coll_set_directory(struct store *st, const char *id, const char *directory);
int store_coll_set_head(struct store *st, const char *id, const char *head);
int store_coll_set_rating(struct store *st, const char *id, int64_t rating);
int store_coll_set_sensitivity(struct store *st, const char *id, int64_t sensitivity);
/* Delete collection @id with its tags, changesets and files. */
int store_coll_delete(struct store *st, const char *id);
/* The collections in directory @dir, by name then id. Returns the rows
 * passed to @cb. */
int store_dir_collections(struct store *st, const char *dir, store_coll_fn cb, void *data);

typedef int (*store_tag_fn)(void *data, const char *tag);

/* 1 row changed: added / removed; 0: it already was / was not there. */
int store_tag_add(struct store *st, const char *coll, const char *tag);
int store_tag_remove(struct store *st, const char *coll, const char *tag);
/* Collection @coll's tags, sorted. Returns the tags passed to @cb. */
int store_tags(struct store *st, const char *coll, store_tag_fn cb, void *data);

struct store_changeset {
    const char *id;
    const char *parent;
    const char *created;
};

typedef int (*store_changeset_fn)(void *data, const struct store_changeset *row);

/* STORE_CONSTRAINT_PK: @cs->id is already in @coll. */
int store_changeset_insert(struct store *st, const char *coll, const struct store_changeset *cs);
/* 1, 0 or < 0. */
int store_changeset_exists(struct store *st, const char *coll, const char *id);
/* Collection @coll's changesets, oldest first. Returns the rows passed. */
int store_changesets(struct store *st, const char *coll, store_changeset_fn cb, void *data);

struct store_file {
    const char *path;
    const char *sha256;
    const char *created;
    const char *modified;
    int64_t size;
    const char *blobrefs; /* a JSON array of strings, as stored */
    size_t blobrefs_len;
};

typedef int (*store_file_fn)(void *data, const struct store_file *row);

/* 1, 0 or < 0. */
int store_file_exists(struct store *st, const char *coll, const char *path);
/* Insert or replace @f (blobrefs NUL-terminated) in @coll. */
int store_file_put(struct store *st, const char *coll, const struct store_file *f);
int store_file_delete(struct store *st, const char *coll, const char *path);
/* Collection @coll's files, by path. Returns the rows passed to @cb. */
int store_files(struct store *st, const char *coll, store_file_fn cb, void *data);

/* ---- API keys ---- */

/* STORE_CONSTRAINT_PK: @id is taken; STORE_CONSTRAINT_UNIQUE: the hash is
 * (checked first, so it is the answer when both are). */
int store_apikey_insert(struct store *st, const char *id, const char *name, const char *scope,
                        const uint8_t token_hash[32], int64_t created);
/* 1, 0 or < 0. */
int store_apikey_exists(struct store *st, const char *id);
int store_apikey_delete(struct store *st, const char *id);
enum { STORE_SCOPE_READ = 1, STORE_SCOPE_WRITE, STORE_SCOPE_ADMIN };

/* The scope (STORE_SCOPE_*) of the API key whose token hashes to
 * @token_hash (32 bytes), its id copied into @id (@size bytes; NULL: not
 * wanted); 0 for none (in the shared read transaction). */
int store_apikey_scope(struct store *st, const uint8_t token_hash[32], char *id, size_t size);

/* ---- the event log ---- */

#define STORE_SCAN_WINDOW 1024 /* seqs one step of a filtered read looks at */

/* Called per event of a scan with borrowed text; 0 to go on, else stop. */
typedef int (*store_event_fn)(void *data, uint64_t seq, const char *type, const char *json,
                              size_t len);

/* STORE_CONSTRAINT_PK: @seq is taken. */
int store_event_insert(struct store *st, uint64_t seq, const char *type, const char *json);
/* Events with seq > @after in order, at most @limit (0: no limit), in the
 * shared read transaction. Returns the events passed to @cb, or < 0. */
int store_events_scan(struct store *st, uint64_t after, unsigned limit, store_event_fn cb,
                      void *data);

struct type_filter;

/* Events with @after < seq < @below (0: no upper bound) whose type passes
 * @filter, in seq order, at most @limit of them, looking at no more than
 * about @budget events: windows of STORE_SCAN_WINDOW seqs on the primary
 * key, the type test in SQL. *@scanned is where it stopped: every passing
 * event in (@after, *@scanned] went to @cb (when @cb or @limit stops it,
 * the seq of the last one). Returns the events passed to @cb, or < 0. */
int store_events_filtered(struct store *st, uint64_t after, uint64_t below, unsigned limit,
                          unsigned budget, const struct type_filter *filter, store_event_fn cb,
                          void *data, uint64_t *scanned);
/* The oldest event kept (0 if none) and pruning up to @upto (inclusive);
 * prune returns the number removed or < 0. */
uint64_t store_oldest_event(struct store *st);
int store_prune_events(struct store *st, uint64_t upto);

/* ---- durable subscriptions ---- */

struct store_sub {
    const char *name;
    const char *types; /* comma-separated type prefixes */
    uint64_t cursor;   /* the acked seq */
};

typedef int (*store_sub_fn)(void *data, const struct store_sub *row);

/* STORE_CONSTRAINT_PK: @name is taken. */
int store_sub_insert(struct store *st, const char *name, const char *types, int64_t created);
/* Subscription @name into @row (borrowed; NULL to ask whether it exists). */
int store_sub_get(struct store *st, const char *name, struct store_sub *row);
/* Move the cursor to @seq unless it is past it already; 0 rows: no such
 * subscription. */
int store_sub_ack(struct store *st, const char *name, uint64_t seq);
int store_sub_delete(struct store *st, const char *name);
/* All subscriptions, by name. Returns the rows passed to @cb. */
int store_subs(struct store *st, store_sub_fn cb, void *data);
/* Subscription @name's type filter (parsed into @types when not NULL) and
 * acked cursor. Returns 1, 0 if there is none, or a negative enum store_rc
 * with st->errmsg set. */
struct type_filter;
int store_subscription(struct store *st, const char *name, struct type_filter *types,
                       uint64_t *cursor);
/* The lowest durable cursor; returns 0 when there are no subscriptions. */
int store_min_subscription_cursor(struct store *st, uint64_t *cursor);

/* ---- cluster members ---- */

/* Insert or replace node @id's announced addresses. */
int store_node_put(struct store *st, uint64_t id, const char *raft, const char *http);
int store_node_delete(struct store *st, uint64_t id);
/* The announced raft and HTTP addresses of node @id, copied; returns 1, or
 * 0 if the node has not announced itself. */
int store_node_addresses(struct store *st, uint64_t id, char *raft, char *http, size_t size);

/* ---- idempotency records (see idempotency.h) ---- */

struct store_idempotency {
    const uint8_t *hash; /* the request hash, hash_len bytes */
    size_t hash_len;
    int status;
    const char *body; /* the response body, body_len bytes */
    size_t body_len;
};

/* The record for @key into @row (borrowed). */
int store_idempotency_get(struct store *st, const char *key, struct store_idempotency *row);
/* Insert or replace the record for @key. */
int store_idempotency_put(struct store *st, const char *key, const uint8_t *hash, size_t hash_len,
                          int64_t time_ms, int status, const char *body);
/* Delete records older than @before_ms, except the newest @keep. Returns
 * the number removed or < 0. */
int store_idempotency_prune(struct store *st, int64_t before_ms, uint64_t keep);

#endif
