/* The read model's schema and every statement the store prepares. */
#include "store_internal.h"

const char store_schema[] =
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS directories ("
    "  id TEXT PRIMARY KEY, created INTEGER NOT NULL, parent TEXT NOT NULL,"
    "  name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',"
    "  type TEXT NOT NULL DEFAULT 'generic', sensitivity INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX IF NOT EXISTS directories_sibling ON directories(parent, name);"
    "CREATE TABLE IF NOT EXISTS collections ("
    "  id TEXT PRIMARY KEY, created INTEGER NOT NULL, directory TEXT NOT NULL,"
    "  name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',"
    "  sensitivity INTEGER NOT NULL DEFAULT 0, rating INTEGER, head TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS collections_dir ON collections(directory, name);"
    "CREATE TABLE IF NOT EXISTS collection_tags ("
    "  collection TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY(collection, tag)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS changesets ("
    "  collection TEXT NOT NULL, id TEXT NOT NULL, parent TEXT NOT NULL, created TEXT NOT NULL,"
    "  ord INTEGER NOT NULL, PRIMARY KEY(collection, id));"
    "CREATE TABLE IF NOT EXISTS files ("
    "  collection TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, created TEXT NOT NULL,"
    "  modified TEXT NOT NULL, size INTEGER NOT NULL, blobrefs TEXT NOT NULL,"
    "  PRIMARY KEY(collection, path)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS apikeys ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE,"
    "  created INTEGER NOT NULL, scope TEXT NOT NULL DEFAULT 'write');"
    "CREATE TABLE IF NOT EXISTS events ("
    "  seq INTEGER PRIMARY KEY, type TEXT NOT NULL, json TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS idempotency ("
    "  key TEXT PRIMARY KEY, hash BLOB NOT NULL, time_ms INTEGER NOT NULL,"
    "  status INTEGER NOT NULL, body TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS idempotency_time ON idempotency(time_ms);"
    "INSERT OR IGNORE INTO directories(id, created, parent, name) VALUES('root', 0, '', 'root');"
    "CREATE TABLE IF NOT EXISTS subscriptions ("
    "  name TEXT PRIMARY KEY, types TEXT NOT NULL, cursor INTEGER NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS nodes ("
    "  id INTEGER PRIMARY KEY, raft TEXT NOT NULL, http TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS applied ("
    "  id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, seq INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO applied(id, idx, seq) VALUES(1, 0, 0);";

#define DIR_COLS "id, created, parent, name, description, type, sensitivity"
#define COLL_COLS "id, created, directory, name, description, sensitivity, rating, head"

const char *const store_sql[STORE_STMT__COUNT] = {
    [STORE_STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STORE_STMT_BEGIN_READ] = "BEGIN",
    [STORE_STMT_COMMIT] = "COMMIT",
    [STORE_STMT_ROLLBACK] = "ROLLBACK",
    [STORE_STMT_SAVEPOINT] = "SAVEPOINT cmd",
    [STORE_STMT_RELEASE] = "RELEASE cmd",
    [STORE_STMT_ROLLBACK_TO] = "ROLLBACK TO cmd",
    [STORE_STMT_SUB_INSERT] =
        "INSERT INTO subscriptions(name, types, cursor, created) VALUES(?, ?, 0, ?)",
    [STORE_STMT_SUB_GET] = "SELECT types, cursor FROM subscriptions WHERE name = ?",
    [STORE_STMT_SUB_ACK] = "UPDATE subscriptions SET cursor = MAX(cursor, ?) WHERE name = ?",
    [STORE_STMT_SUB_DELETE] = "DELETE FROM subscriptions WHERE name = ?",
    [STORE_STMT_SUB_LIST] = "SELECT name, types, cursor FROM subscriptions ORDER BY name",
    [STORE_STMT_SUB_MIN_CURSOR] = "SELECT MIN(cursor) FROM subscriptions",
    [STORE_STMT_EVENT_OLDEST] = "SELECT MIN(seq) FROM events",
    [STORE_STMT_EVENT_PRUNE] = "DELETE FROM events WHERE seq <= ?",
    [STORE_STMT_NODE_PUT] = "INSERT OR REPLACE INTO nodes(id, raft, http) VALUES(?, ?, ?)",
    [STORE_STMT_NODE_GET] = "SELECT raft, http FROM nodes WHERE id = ?",
    [STORE_STMT_NODE_DELETE] = "DELETE FROM nodes WHERE id = ?",
    /* One row, found by rowid: this runs once per applied entry. */
    [STORE_STMT_META_SET_APPLIED] = "UPDATE applied SET idx = ?, seq = ? WHERE id = 1",
    [STORE_STMT_META_GET_APPLIED] = "SELECT idx, seq FROM applied WHERE id = 1",
    [STORE_STMT_DIR_GET] = "SELECT " DIR_COLS " FROM directories WHERE id = ?",
    [STORE_STMT_DIR_INSERT] =
        "INSERT INTO directories(id, created, parent, name) VALUES(?, ?, ?, ?)",
    [STORE_STMT_DIR_SET_NAME] = "UPDATE directories SET name = ? WHERE id = ?",
    [STORE_STMT_DIR_SET_DESCRIPTION] = "UPDATE directories SET description = ? WHERE id = ?",
    [STORE_STMT_DIR_SET_TYPE] = "UPDATE directories SET type = ? WHERE id = ?",
    [STORE_STMT_DIR_SET_SENSITIVITY] = "UPDATE directories SET sensitivity = ? WHERE id = ?",
    [STORE_STMT_DIR_SET_PARENT] = "UPDATE directories SET parent = ? WHERE id = ?",
    [STORE_STMT_DIR_DELETE] = "DELETE FROM directories WHERE id = ?",
    [STORE_STMT_DIR_CHILDREN] = "SELECT " DIR_COLS
                                " FROM directories WHERE parent = ? ORDER BY name",
    [STORE_STMT_DIR_HAS_CHILD] = "SELECT 1 FROM directories WHERE parent = ? LIMIT 1",
    [STORE_STMT_DIR_HAS_COLLECTION] = "SELECT 1 FROM collections WHERE directory = ? LIMIT 1",
    [STORE_STMT_COLL_GET] = "SELECT " COLL_COLS " FROM collections WHERE id = ?",
    [STORE_STMT_COLL_INSERT] =
        "INSERT INTO collections(id, created, directory, name) VALUES(?, ?, ?, ?)",
    [STORE_STMT_COLL_SET_NAME] = "UPDATE collections SET name = ? WHERE id = ?",
    [STORE_STMT_COLL_SET_DESCRIPTION] = "UPDATE collections SET description = ? WHERE id = ?",
    [STORE_STMT_COLL_SET_DIRECTORY] = "UPDATE collections SET directory = ? WHERE id = ?",
    [STORE_STMT_COLL_SET_RATING] = "UPDATE collections SET rating = ? WHERE id = ?",
    [STORE_STMT_COLL_SET_SENSITIVITY] = "UPDATE collections SET sensitivity = ? WHERE id = ?",
    [STORE_STMT_COLL_SET_HEAD] = "UPDATE collections SET head = ? WHERE id = ?",
    [STORE_STMT_COLL_DELETE] = "DELETE FROM collections WHERE id = ?",
    [STORE_STMT_COLL_IN_DIR] = "SELECT " COLL_COLS
                               " FROM collections WHERE directory = ? ORDER BY name, id",
    [STORE_STMT_TAG_ADD] = "INSERT OR IGNORE INTO collection_tags(collection, tag) VALUES(?, ?)",
    [STORE_STMT_TAG_REMOVE] = "DELETE FROM collection_tags WHERE collection = ? AND tag = ?",
    [STORE_STMT_TAG_LIST] = "SELECT tag FROM collection_tags WHERE collection = ? ORDER BY tag",
    [STORE_STMT_TAG_DELETE_ALL] = "DELETE FROM collection_tags WHERE collection = ?",
    [STORE_STMT_CS_INSERT] =
        "INSERT INTO changesets(collection, id, parent, created, ord) "
        "VALUES(?, ?, ?, ?, (SELECT COUNT(*) FROM changesets WHERE collection = ?1))",
    [STORE_STMT_CS_EXISTS] = "SELECT 1 FROM changesets WHERE collection = ? AND id = ?",
    [STORE_STMT_CS_LIST] =
        "SELECT id, parent, created FROM changesets WHERE collection = ? ORDER BY ord",
    [STORE_STMT_CS_DELETE_ALL] = "DELETE FROM changesets WHERE collection = ?",
    [STORE_STMT_FILE_EXISTS] = "SELECT 1 FROM files WHERE collection = ? AND path = ?",
    [STORE_STMT_FILE_UPSERT] =
        "INSERT OR REPLACE INTO files(collection, path, sha256, created, modified, "
        "size, blobrefs) VALUES(?, ?, ?, ?, ?, ?, ?)",
    [STORE_STMT_FILE_DELETE] = "DELETE FROM files WHERE collection = ? AND path = ?",
    [STORE_STMT_FILE_LIST] = "SELECT path, sha256, created, modified, size, blobrefs FROM files "
                             "WHERE collection = ? ORDER BY path",
    [STORE_STMT_FILE_DELETE_ALL] = "DELETE FROM files WHERE collection = ?",
    [STORE_STMT_KEY_INSERT] =
        "INSERT INTO apikeys(id, name, scope, token_hash, created) VALUES(?, ?, ?, ?, ?)",
    [STORE_STMT_KEY_EXISTS] = "SELECT 1 FROM apikeys WHERE id = ?",
    [STORE_STMT_KEY_DELETE] = "DELETE FROM apikeys WHERE id = ?",
    [STORE_STMT_KEY_BY_HASH] = "SELECT id, scope FROM apikeys WHERE token_hash = ?",
    [STORE_STMT_EVENT_INSERT] = "INSERT INTO events(seq, type, json) VALUES(?, ?, ?)",
    [STORE_STMT_EVENT_PAGE] =
        "SELECT seq, type, json FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
    [STORE_STMT_EVENT_LAST] = "SELECT MAX(seq) FROM events",
    [STORE_STMT_IDEM_GET] = "SELECT hash, status, body FROM idempotency WHERE key = ?",
    [STORE_STMT_IDEM_PUT] = "INSERT OR REPLACE INTO idempotency(key, hash, time_ms, status, body) "
                            "VALUES(?, ?, ?, ?, ?)",
    [STORE_STMT_IDEM_PRUNE] = "DELETE FROM idempotency WHERE time_ms < ? AND rowid <= "
                              "(SELECT MAX(rowid) FROM idempotency) - ?",
};
