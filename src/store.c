#define _GNU_SOURCE /* sync_file_range */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int store_prepare(struct store *st)
{
    int i;
    for (i = 0; i < STORE_STMT__COUNT; i++) {
        if (sqlite3_prepare_v3(st->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmts[i],
                               NULL) != SQLITE_OK) {
            snprintf(st->errmsg, sizeof st->errmsg, "prepare statement %d: %s", i,
                     sqlite3_errmsg(st->db));
            return -1;
        }
    }
    return 0;
}

static void store_finalize(struct store *st)
{
    int i;
    st->held = NULL;
    for (i = 0; i < STORE_STMT__COUNT; i++) {
        sqlite3_finalize(st->stmts[i]);
        st->stmts[i] = NULL;
    }
}

static int wal_hook(void *data, sqlite3 *db, const char *name, int pages);

/* Columns added since a read model could first be written: one from an
 * older build (or restored from its snapshot) is upgraded in place, the
 * same way on every node, so it reads as a fresh one built from the log.
 * API keys made before scopes existed keep the default, write. */
static int upgrade(struct store *st, char **errmsg)
{
    sqlite3_stmt *probe = NULL;
    int has = sqlite3_prepare_v2(st->db, "SELECT scope FROM apikeys LIMIT 0", -1, &probe, NULL) ==
              SQLITE_OK;
    sqlite3_finalize(probe);
    return has ? SQLITE_OK
               : sqlite3_exec(st->db,
                              "ALTER TABLE apikeys ADD COLUMN scope TEXT NOT NULL DEFAULT 'write'",
                              NULL, NULL, errmsg);
}

int store_open(struct store *st, const char *path)
{
    char *errmsg = NULL;

    memset(st->stmts, 0, sizeof st->stmts);
    st->held = NULL;
    st->reader = NULL;
    if (!st->lock_ready) {
        /* once: store_replace reopens the store with the lock in use */
        pthread_mutex_init(&st->reader_lock, NULL);
        st->lock_ready = 1;
    }
    st->wal_pages = 0;
    st->wal_fd = -1;
    st->errmsg[0] = '\0';
    st->corrupt = 0;
    snprintf(st->path, sizeof st->path, "%s", path);
    /* NOMUTEX: each connection is used by one thread at a time (the reader
     * is handed between the loop and one worker under reader_busy and
     * reader_lock), so SQLite's per-call connection mutex is pure cost. */
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(st->errmsg, sizeof st->errmsg, "open %s: %s", path,
                 st->db ? sqlite3_errmsg(st->db) : "out of memory");
        sqlite3_close(st->db);
        st->db = NULL;
        return -1;
    }
    /* The read model is rebuilt from raft (snapshot + log) after a crash, so
     * WAL with synchronous=NORMAL is enough: a commit survives a process kill,
     * and what a power loss takes back, the raft log replays. Checkpoints
     * (which fsync) run on the reader connection off the loop thread, so
     * the automatic ones are off. */
    sqlite3_busy_timeout(st->db, 5000);
    if (sqlite3_exec(st->db,
                     "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;"
                     "PRAGMA journal_size_limit=33554432;"
                     "PRAGMA synchronous=NORMAL;"
                     "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-65536;",
                     NULL, NULL, &errmsg) != SQLITE_OK ||
        sqlite3_exec(st->db, store_schema, NULL, NULL, &errmsg) != SQLITE_OK ||
        upgrade(st, &errmsg) != SQLITE_OK) {
        int rc = sqlite3_errcode(st->db) & 0xff;
        st->corrupt = rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
        snprintf(st->errmsg, sizeof st->errmsg, "init %s: %s", path,
                 errmsg ? errmsg : sqlite3_errmsg(st->db));
        sqlite3_free(errmsg);
        sqlite3_close(st->db);
        st->db = NULL;
        return -1;
    }
    if (store_prepare(st) != 0) {
        store_finalize(st);
        sqlite3_close(st->db);
        st->db = NULL;
        return -1;
    }
    sqlite3_wal_hook(st->db, wal_hook, st);
    if (sqlite3_open_v2(path, &st->reader, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(st->errmsg, sizeof st->errmsg, "open reader %s: %s", path,
                 st->reader ? sqlite3_errmsg(st->reader) : "out of memory");
        store_close(st);
        return -1;
    }
    sqlite3_busy_timeout(st->reader, 5000);
    sqlite3_exec(st->reader, "PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
    return 0;
}

/* After each commit: note the WAL's size, and start writing its new pages
 * to the disk now, without waiting. Otherwise they stay in the page cache
 * until the checkpoint's fsync sends megabytes at once, and every raft
 * log write on the same disk (each one a device flush) waits behind them,
 * a large part of the commit latency's tail. */
static int wal_hook(void *data, sqlite3 *db, const char *name, int pages)
{
    struct store *st = data;
    (void)db;
    (void)name;
    st->wal_pages = (unsigned)pages;
    if (st->wal_fd < 0) {
        char wal[sizeof st->path + 8];
        snprintf(wal, sizeof wal, "%s-wal", st->path);
        st->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);
    }
    if (st->wal_fd >= 0) {
        sync_file_range(st->wal_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
    return SQLITE_OK;
}

void store_library_init(void)
{
    /* SQLITE_MISUSE if SQLite is already initialized: then it keeps its
     * defaults, which are only slower. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

void store_close(struct store *st)
{
    store_read_end(st);
    if (st->wal_fd >= 0) {
        close(st->wal_fd);
        st->wal_fd = -1;
    }
    if (st->reader != NULL) {
        sqlite3_close(st->reader);
        st->reader = NULL;
    }
    if (st->db == NULL) {
        return;
    }
    store_finalize(st);
    sqlite3_close(st->db);
    st->db = NULL;
}

int store_reader_begin(struct store *st)
{
    sqlite3_stmt *s = NULL;
    int rv;
    /* BEGIN is lazy: the SELECT takes the read snapshot now. */
    if (sqlite3_exec(st->reader, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->reader, "SELECT v FROM meta LIMIT 1", -1, &s, NULL) != SQLITE_OK) {
        snprintf(st->errmsg, sizeof st->errmsg, "reader begin: %s", sqlite3_errmsg(st->reader));
        sqlite3_exec(st->reader, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    rv = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rv != SQLITE_ROW && rv != SQLITE_DONE) {
        snprintf(st->errmsg, sizeof st->errmsg, "reader begin: %s", sqlite3_errmsg(st->reader));
        sqlite3_exec(st->reader, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

void store_reader_end(struct store *st)
{
    sqlite3_exec(st->reader, "COMMIT", NULL, NULL, NULL);
}

int store_checkpoint_now(struct store *st)
{
    int log_frames = 0, done = 0;
    store_read_end(st);
    if (sqlite3_wal_checkpoint_v2(st->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done) !=
        SQLITE_OK) {
        snprintf(st->errmsg, sizeof st->errmsg, "checkpoint: %s", sqlite3_errmsg(st->db));
        return -1;
    }
    return 0;
}

int store_reader_checkpoint(struct store *st)
{
    int log_frames = 0, done = 0;
    int rv;
    pthread_mutex_lock(&st->reader_lock);
    rv = sqlite3_wal_checkpoint_v2(st->reader, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                   &done);
    pthread_mutex_unlock(&st->reader_lock);
    if (rv != SQLITE_OK) {
        snprintf(st->reader_errmsg, sizeof st->reader_errmsg, "checkpoint: %s",
                 sqlite3_errmsg(st->reader));
        return -1;
    }
    return 0;
}

void store_release(struct store *st)
{
    if (st->held != NULL) {
        sqlite3_reset(st->held);
        st->held = NULL;
    }
}

sqlite3_stmt *store_stmt(struct store *st, enum store_stmt id)
{
    sqlite3_stmt *s = st->stmts[id];
    store_release(st);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

int store_run(struct store *st, enum store_stmt id, const char *fmt, ...)
{
    sqlite3_stmt *s = store_stmt(st, id);
    va_list ap;
    int i = 1;
    int rv;

    va_start(ap, fmt);
    for (; *fmt != '\0'; fmt++, i++) {
        switch (*fmt) {
        case 's':
            sqlite3_bind_text(s, i, va_arg(ap, const char *), -1, SQLITE_STATIC);
            break;
        case 'i':
            sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
            break;
        case 'b': {
            const void *p = va_arg(ap, const void *);
            int len = va_arg(ap, int);
            sqlite3_bind_blob(s, i, p, len, SQLITE_STATIC);
            break;
        }
        default:
            break;
        }
    }
    va_end(ap);
    rv = sqlite3_step(s);
    if (rv != SQLITE_ROW && rv != SQLITE_DONE) {
        snprintf(st->errmsg, sizeof st->errmsg, "%s: %s", store_sql[id], sqlite3_errmsg(st->db));
    }
    return rv;
}

int store_write_result(struct store *st, enum store_stmt id, int rv)
{
    int code = STORE_ERROR;
    if (rv == SQLITE_DONE) {
        code = sqlite3_changes(st->db);
    } else if (rv == SQLITE_CONSTRAINT) {
        int ext = sqlite3_extended_errcode(st->db);
        if (ext == SQLITE_CONSTRAINT_UNIQUE) {
            code = STORE_CONSTRAINT_UNIQUE;
        } else if (ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
            code = STORE_CONSTRAINT_PK;
        }
    } else if (rv == SQLITE_ROW) {
        snprintf(st->errmsg, sizeof st->errmsg, "%s: returned a row", store_sql[id]);
    }
    sqlite3_reset(st->stmts[id]);
    return code;
}

int store_get_result(struct store *st, enum store_stmt id, int rv, int hold)
{
    if (rv == SQLITE_ROW && hold) {
        st->held = st->stmts[id];
        return 1;
    }
    sqlite3_reset(st->stmts[id]);
    if (rv == SQLITE_ROW) {
        return 1;
    }
    return rv == SQLITE_DONE ? 0 : STORE_ERROR;
}

int store_scan_result(struct store *st, enum store_stmt id, int rv, int n)
{
    if (rv != SQLITE_ROW && rv != SQLITE_DONE) {
        snprintf(st->errmsg, sizeof st->errmsg, "%s: %s", store_sql[id], sqlite3_errmsg(st->db));
        n = STORE_ERROR;
    }
    sqlite3_reset(st->stmts[id]);
    return n;
}

const char *store_text(sqlite3_stmt *s, int col)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    return t != NULL ? t : "";
}

static int run_simple(struct store *st, enum store_stmt id)
{
    int rv = store_run(st, id, "");
    sqlite3_reset(st->stmts[id]);
    return rv == SQLITE_DONE ? 0 : -1;
}

void store_read_begin(struct store *st)
{
    if (!st->read_tx && st->db != NULL && sqlite3_get_autocommit(st->db) &&
        run_simple(st, STORE_STMT_BEGIN_READ) == 0) {
        st->read_tx = 1;
    }
}

void store_read_end(struct store *st)
{
    store_release(st);
    if (st->read_tx) {
        st->read_tx = 0;
        run_simple(st, STORE_STMT_COMMIT);
    }
}

int store_begin(struct store *st)
{
    store_read_end(st);
    return run_simple(st, STORE_STMT_BEGIN);
}

int store_commit(struct store *st)
{
    return run_simple(st, STORE_STMT_COMMIT);
}

void store_rollback(struct store *st)
{
    run_simple(st, STORE_STMT_ROLLBACK);
}

int store_savepoint(struct store *st)
{
    return run_simple(st, STORE_STMT_SAVEPOINT);
}

int store_release_savepoint(struct store *st)
{
    return run_simple(st, STORE_STMT_RELEASE);
}

void store_rollback_to_savepoint(struct store *st)
{
    run_simple(st, STORE_STMT_ROLLBACK_TO);
    run_simple(st, STORE_STMT_RELEASE);
}

/* SQLite's own copy of the database as the reader sees it, marked as a
 * rollback-journal database (header bytes 18-19) so that it opens anywhere;
 * store_open switches it back to WAL. Freed with store_image_free. */
static int serialize_db(sqlite3 *db, char *errmsg, size_t errsize, unsigned char **data,
                        size_t *size)
{
    sqlite3_int64 n = 0;
    unsigned char *p = sqlite3_serialize(db, "main", &n, 0);
    if (p == NULL) {
        snprintf(errmsg, errsize, "serialize: %s", sqlite3_errmsg(db));
        return -1;
    }
    if (n >= 20) {
        p[18] = 1;
        p[19] = 1;
    }
    *data = p;
    *size = (size_t)n;
    return 0;
}

void store_image_free(void *image)
{
    sqlite3_free(image);
}

void store_meta_get_applied(struct store *st, uint64_t *index, uint64_t *seq)
{
    *index = *seq = 0;
    if (store_run(st, STORE_STMT_META_GET_APPLIED, "") == SQLITE_ROW) {
        *index = (uint64_t)sqlite3_column_int64(st->stmts[STORE_STMT_META_GET_APPLIED], 0);
        *seq = (uint64_t)sqlite3_column_int64(st->stmts[STORE_STMT_META_GET_APPLIED], 1);
    }
    sqlite3_reset(st->stmts[STORE_STMT_META_GET_APPLIED]);
}

int store_meta_set_applied(struct store *st, uint64_t index, uint64_t seq)
{
    int rv = store_run(st, STORE_STMT_META_SET_APPLIED, "ii", (int64_t)index, (int64_t)seq);
    sqlite3_reset(st->stmts[STORE_STMT_META_SET_APPLIED]);
    return rv == SQLITE_DONE ? 0 : -1;
}

uint64_t store_recorded_log_id(struct store *st)
{
    sqlite3_stmt *s;
    uint64_t id = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT v FROM meta WHERE k = 'log_id'", -1, &s, NULL) !=
        SQLITE_OK) {
        return 0;
    }
    if (sqlite3_step(s) == SQLITE_ROW) {
        id = (uint64_t)sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return id;
}

int store_set_log_id(struct store *st, uint64_t id)
{
    sqlite3_stmt *s;
    int rv;
    if (sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO meta(k, v) VALUES('log_id', ?)", -1, &s,
                           NULL) != SQLITE_OK) {
        snprintf(st->errmsg, sizeof st->errmsg, "record the log identity: %s",
                 sqlite3_errmsg(st->db));
        return -1;
    }
    sqlite3_bind_int64(s, 1, (sqlite3_int64)id);
    rv = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rv != SQLITE_DONE) {
        snprintf(st->errmsg, sizeof st->errmsg, "record the log identity: %s",
                 sqlite3_errmsg(st->db));
        return -1;
    }
    st->log_id = id;
    return 0;
}

int store_reader_serialize(struct store *st, unsigned generation, unsigned char **data,
                           size_t *size)
{
    int rv;
    pthread_mutex_lock(&st->reader_lock);
    if (st->reader == NULL || st->generation != generation) {
        snprintf(st->reader_errmsg, sizeof st->reader_errmsg,
                 "the database was replaced during the snapshot");
        pthread_mutex_unlock(&st->reader_lock);
        return -1;
    }
    rv = serialize_db(st->reader, st->reader_errmsg, sizeof st->reader_errmsg, data, size);
    pthread_mutex_unlock(&st->reader_lock);
    return rv;
}

static int write_file(const char *path, const unsigned char *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t off = 0;
    if (fd < 0) {
        return -1;
    }
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        close(fd);
        return -1;
    }
    return close(fd);
}

int store_replace(struct store *st, const unsigned char *data, size_t size)
{
    char tmp[1100], side[1100];
    char path[1024];

    snprintf(path, sizeof path, "%s", st->path);
    snprintf(tmp, sizeof tmp, "%s.restore", path);
    if (write_file(tmp, data, size) != 0) {
        snprintf(st->errmsg, sizeof st->errmsg, "write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    store_read_end(st);
    /* Wait for background work on the reader, and end its view. */
    pthread_mutex_lock(&st->reader_lock);
    if (st->reader != NULL && !sqlite3_get_autocommit(st->reader)) {
        sqlite3_exec(st->reader, "ROLLBACK", NULL, NULL, NULL);
    }
    store_close(st);
    st->generation++;
    pthread_mutex_unlock(&st->reader_lock);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    if (rename(tmp, path) != 0) {
        snprintf(st->errmsg, sizeof st->errmsg, "rename %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (store_open(st, path) != 0) {
        return -1;
    }
    /* The image is another node's (or an older one): it records that
     * node's log. Should this fail (a full disk), the restore still
     * stands; the next start finds the mismatch and rebuilds. */
    if (st->log_id != 0 && store_set_log_id(st, st->log_id) != 0) {
        log_warn("read model: %s (the next start rebuilds it)", st->errmsg);
    }
    return 0;
}
