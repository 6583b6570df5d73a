/* Private to the store (store.c, store_rows.c): the prepared statements and
 * the helpers that run them. Nothing outside the store includes this. */
#ifndef VARASTO_STORE_INTERNAL_H
#define VARASTO_STORE_INTERNAL_H

#include <sqlite3.h>

#include "store.h"

/* Prepared statements, by purpose. */
enum store_stmt {
    STORE_STMT_BEGIN,
    STORE_STMT_BEGIN_READ,
    STORE_STMT_COMMIT,
    STORE_STMT_ROLLBACK,
    STORE_STMT_SAVEPOINT,
    STORE_STMT_RELEASE,
    STORE_STMT_ROLLBACK_TO,
    STORE_STMT_META_SET_APPLIED,
    STORE_STMT_META_GET_APPLIED,
    STORE_STMT_DIR_GET,
    STORE_STMT_DIR_INSERT,
    STORE_STMT_DIR_SET_NAME,
    STORE_STMT_DIR_SET_DESCRIPTION,
    STORE_STMT_DIR_SET_TYPE,
    STORE_STMT_DIR_SET_SENSITIVITY,
    STORE_STMT_DIR_SET_PARENT,
    STORE_STMT_DIR_DELETE,
    STORE_STMT_DIR_CHILDREN,
    STORE_STMT_DIR_HAS_CHILD,
    STORE_STMT_DIR_HAS_COLLECTION,
    STORE_STMT_COLL_GET,
    STORE_STMT_COLL_INSERT,
    STORE_STMT_COLL_SET_NAME,
    STORE_STMT_COLL_SET_DESCRIPTION,
    STORE_STMT_COLL_SET_DIRECTORY,
    STORE_STMT_COLL_SET_RATING,
    STORE_STMT_COLL_SET_SENSITIVITY,
    STORE_STMT_COLL_SET_HEAD,
    STORE_STMT_COLL_DELETE,
    STORE_STMT_COLL_IN_DIR,
    STORE_STMT_TAG_ADD,
    STORE_STMT_TAG_REMOVE,
    STORE_STMT_TAG_LIST,
    STORE_STMT_TAG_DELETE_ALL,
    STORE_STMT_CS_INSERT,
    STORE_STMT_CS_EXISTS,
    STORE_STMT_CS_LIST,
    STORE_STMT_CS_DELETE_ALL,
    STORE_STMT_FILE_EXISTS,
    STORE_STMT_FILE_UPSERT,
    STORE_STMT_FILE_DELETE,
    STORE_STMT_FILE_LIST,
    STORE_STMT_FILE_DELETE_ALL,
    STORE_STMT_KEY_INSERT,
    STORE_STMT_KEY_EXISTS,
    STORE_STMT_KEY_DELETE,
    STORE_STMT_KEY_BY_HASH,
    STORE_STMT_EVENT_INSERT,
    STORE_STMT_EVENT_PAGE,
    STORE_STMT_EVENT_LAST,
    STORE_STMT_EVENT_OLDEST,
    STORE_STMT_EVENT_PRUNE,
    STORE_STMT_SUB_INSERT,
    STORE_STMT_SUB_GET,
    STORE_STMT_SUB_ACK,
    STORE_STMT_SUB_DELETE,
    STORE_STMT_SUB_LIST,
    STORE_STMT_SUB_MIN_CURSOR,
    STORE_STMT_NODE_PUT,
    STORE_STMT_NODE_GET,
    STORE_STMT_NODE_DELETE,
    STORE_STMT_IDEM_GET,
    STORE_STMT_IDEM_PUT,
    STORE_STMT_IDEM_PRUNE,
    STORE_STMT__COUNT
};

_Static_assert(STORE_STMT__COUNT <= STORE_STMT_SLOTS, "raise STORE_STMT_SLOTS");

/* The schema, and the SQL of each statement (store_sql.c). */
extern const char store_schema[];
extern const char *const store_sql[STORE_STMT__COUNT];

/* Statement @id, reset and with bindings cleared, ready to bind. Releases
 * the row a get left held first (see struct store). */
sqlite3_stmt *store_stmt(struct store *st, enum store_stmt id);

/* Reset the statement a get left on its row, if any. */
void store_release(struct store *st);

/* Bind values by a format string to statement @id and step it once.
 * Formats: 's' const char *, 'i' int64_t, 'b' blob (const void *, int len).
 * Returns the sqlite step result (SQLITE_ROW or SQLITE_DONE), or an error
 * code with st->errmsg set. The statement stays positioned on the row. */
int store_run(struct store *st, enum store_stmt id, const char *fmt, ...);

/* A write that store_run stepped: the rows changed, or a negative enum
 * store_rc (constraint codes told apart). Resets the statement. */
int store_write_result(struct store *st, enum store_stmt id, int rv);

/* A get that store_run stepped: 1 (the statement held on its row when
 * @hold, so that the row's text stays valid; else reset), 0 or STORE_ERROR. */
int store_get_result(struct store *st, enum store_stmt id, int rv, int hold);

/* The end of a scan that stepped statement @id by hand until @rv: @n, or
 * STORE_ERROR with st->errmsg set. Resets the statement. */
int store_scan_result(struct store *st, enum store_stmt id, int rv, int n);

/* Column @col as text, "" for NULL. */
const char *store_text(sqlite3_stmt *s, int col);

#endif
