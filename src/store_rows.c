/* Typed rows of the catalog: directories, collections and what a collection
 * holds (tags, changesets, files). */
#include "store_internal.h"

/* ---- directories ---- */

static void dir_row(sqlite3_stmt *s, struct store_dir *row)
{
    row->id = store_text(s, 0);
    row->created = sqlite3_column_int64(s, 1);
    row->parent = store_text(s, 2);
    row->name = store_text(s, 3);
    row->description = store_text(s, 4);
    row->type = store_text(s, 5);
    row->sensitivity = sqlite3_column_int64(s, 6);
}

int store_dir_get(struct store *st, const char *id, struct store_dir *row)
{
    int rv = store_run(st, STORE_STMT_DIR_GET, "s", id);
    if (rv == SQLITE_ROW && row != NULL) {
        dir_row(st->stmts[STORE_STMT_DIR_GET], row);
    }
    return store_get_result(st, STORE_STMT_DIR_GET, rv, row != NULL);
}

int store_dir_insert(struct store *st, const char *id, int64_t created, const char *parent,
                     const char *name)
{
    return store_write_result(st, STORE_STMT_DIR_INSERT,
                              store_run(st, STORE_STMT_DIR_INSERT, "siss", id, created, parent,
                                        name));
}

/* UPDATE ... SET <column> = @text WHERE id = @id */
static int set_text(struct store *st, enum store_stmt stmt, const char *id, const char *text)
{
    return store_write_result(st, stmt, store_run(st, stmt, "ss", text, id));
}

static int set_int(struct store *st, enum store_stmt stmt, const char *id, int64_t v)
{
    return store_write_result(st, stmt, store_run(st, stmt, "is", v, id));
}

int store_dir_set_name(struct store *st, const char *id, const char *name)
{
    return set_text(st, STORE_STMT_DIR_SET_NAME, id, name);
}

int store_dir_set_parent(struct store *st, const char *id, const char *parent)
{
    return set_text(st, STORE_STMT_DIR_SET_PARENT, id, parent);
}

int store_dir_set_description(struct store *st, const char *id, const char *description)
{
    return set_text(st, STORE_STMT_DIR_SET_DESCRIPTION, id, description);
}

int store_dir_set_type(struct store *st, const char *id, const char *type)
{
    return set_text(st, STORE_STMT_DIR_SET_TYPE, id, type);
}

int store_dir_set_sensitivity(struct store *st, const char *id, int64_t sensitivity)
{
    return set_int(st, STORE_STMT_DIR_SET_SENSITIVITY, id, sensitivity);
}

/* Statements that take one or two text keys and run once. */
static int write_keys(struct store *st, enum store_stmt stmt, const char *a, const char *b)
{
    int rv = b != NULL ? store_run(st, stmt, "ss", a, b) : store_run(st, stmt, "s", a);
    return store_write_result(st, stmt, rv);
}

static int exists_keys(struct store *st, enum store_stmt stmt, const char *a, const char *b)
{
    int rv = b != NULL ? store_run(st, stmt, "ss", a, b) : store_run(st, stmt, "s", a);
    return store_get_result(st, stmt, rv, 0);
}

int store_dir_delete(struct store *st, const char *id)
{
    return write_keys(st, STORE_STMT_DIR_DELETE, id, NULL);
}

int store_dir_has_subdirs(struct store *st, const char *id)
{
    return exists_keys(st, STORE_STMT_DIR_HAS_CHILD, id, NULL);
}

int store_dir_has_collections(struct store *st, const char *id)
{
    return exists_keys(st, STORE_STMT_DIR_HAS_COLLECTION, id, NULL);
}

int store_dir_children(struct store *st, const char *parent, store_dir_fn cb, void *data)
{
    sqlite3_stmt *s = store_stmt(st, STORE_STMT_DIR_CHILDREN);
    struct store_dir row;
    int n = 0, rv;
    sqlite3_bind_text(s, 1, parent, -1, SQLITE_STATIC);
    while ((rv = sqlite3_step(s)) == SQLITE_ROW) {
        dir_row(s, &row);
        n++;
        if (cb(data, &row) != 0) {
            break;
        }
    }
    return store_scan_result(st, STORE_STMT_DIR_CHILDREN, rv, n);
}

/* ---- collections ---- */

static void coll_row(sqlite3_stmt *s, struct store_coll *row)
{
    row->id = store_text(s, 0);
    row->created = sqlite3_column_int64(s, 1);
    row->directory = store_text(s, 2);
    row->name = store_text(s, 3);
    row->description = store_text(s, 4);
    row->sensitivity = sqlite3_column_int64(s, 5);
    row->has_rating = sqlite3_column_type(s, 6) != SQLITE_NULL;
    row->rating = row->has_rating ? sqlite3_column_int64(s, 6) : 0;
    row->head = store_text(s, 7);
}

int store_coll_get(struct store *st, const char *id, struct store_coll *row)
{
    int rv = store_run(st, STORE_STMT_COLL_GET, "s", id);
    if (rv == SQLITE_ROW && row != NULL) {
        coll_row(st->stmts[STORE_STMT_COLL_GET], row);
    }
    return store_get_result(st, STORE_STMT_COLL_GET, rv, row != NULL);
}

int store_coll_insert(struct store *st, const char *id, int64_t created, const char *directory,
                      const char *name)
{
    return store_write_result(st, STORE_STMT_COLL_INSERT,
                              store_run(st, STORE_STMT_COLL_INSERT, "siss", id, created, directory,
                                        name));
}

int store_coll_set_name(struct store *st, const char *id, const char *name)
{
    return set_text(st, STORE_STMT_COLL_SET_NAME, id, name);
}

int store_coll_set_description(struct store *st, const char *id, const char *description)
{
    return set_text(st, STORE_STMT_COLL_SET_DESCRIPTION, id, description);
}

int store_coll_set_directory(struct store *st, const char *id, const char *directory)
{
    return set_text(st, STORE_STMT_COLL_SET_DIRECTORY, id, directory);
}

int store_coll_set_head(struct store *st, const char *id, const char *head)
{
    return set_text(st, STORE_STMT_COLL_SET_HEAD, id, head);
}

int store_coll_set_rating(struct store *st, const char *id, int64_t rating)
{
    return set_int(st, STORE_STMT_COLL_SET_RATING, id, rating);
}

int store_coll_set_sensitivity(struct store *st, const char *id, int64_t sensitivity)
{
    return set_int(st, STORE_STMT_COLL_SET_SENSITIVITY, id, sensitivity);
}

int store_coll_delete(struct store *st, const char *id)
{
    static const enum store_stmt contents[] = {STORE_STMT_TAG_DELETE_ALL, STORE_STMT_CS_DELETE_ALL,
                                               STORE_STMT_FILE_DELETE_ALL};
    size_t i;
    int rv;
    for (i = 0; i < sizeof contents / sizeof contents[0]; i++) {
        if ((rv = write_keys(st, contents[i], id, NULL)) < 0) {
            return rv;
        }
    }
    return write_keys(st, STORE_STMT_COLL_DELETE, id, NULL);
}

int store_dir_collections(struct store *st, const char *dir, store_coll_fn cb, void *data)
{
    sqlite3_stmt *s = store_stmt(st, STORE_STMT_COLL_IN_DIR);
    struct store_coll row;
    int n = 0, rv;
    sqlite3_bind_text(s, 1, dir, -1, SQLITE_STATIC);
    while ((rv = sqlite3_step(s)) == SQLITE_ROW) {
        coll_row(s, &row);
        n++;
        if (cb(data, &row) != 0) {
            break;
        }
    }
    return store_scan_result(st, STORE_STMT_COLL_IN_DIR, rv, n);
}

/* ---- tags ---- */

int store_tag_add(struct store *st, const char *coll, const char *tag)
{
    return write_keys(st, STORE_STMT_TAG_ADD, coll, tag);
}

int store_tag_remove(struct store *st, const char *coll, const char *tag)
{
    return write_keys(st, STORE_STMT_TAG_REMOVE, coll, tag);
}

int store_tags(struct store *st, const char *coll, store_tag_fn cb, void *data)
{
    sqlite3_stmt *s = store_stmt(st, STORE_STMT_TAG_LIST);
    int n = 0, rv;
    sqlite3_bind_text(s, 1, coll, -1, SQLITE_STATIC);
    while ((rv = sqlite3_step(s)) == SQLITE_ROW) {
        n++;
        if (cb(data, store_text(s, 0)) != 0) {
            break;
        }
    }
    return store_scan_result(st, STORE_STMT_TAG_LIST, rv, n);
}

/* ---- changesets ---- */

int store_changeset_insert(struct store *st, const char *coll, const struct store_changeset *cs)
{
    return store_write_result(st, STORE_STMT_CS_INSERT,
                              store_run(st, STORE_STMT_CS_INSERT, "ssss", coll, cs->id, cs->parent,
                                        cs->created));
}

int store_changeset_exists(struct store *st, const char *coll, const char *id)
{
    return exists_keys(st, STORE_STMT_CS_EXISTS, coll, id);
}

int store_changesets(struct store *st, const char *coll, store_changeset_fn cb, void *data)
{
    sqlite3_stmt *s = store_stmt(st, STORE_STMT_CS_LIST);
    struct store_changeset row;
    int n = 0, rv;
    sqlite3_bind_text(s, 1, coll, -1, SQLITE_STATIC);
    while ((rv = sqlite3_step(s)) == SQLITE_ROW) {
        row.id = store_text(s, 0);
        row.parent = store_text(s, 1);
        row.created = store_text(s, 2);
        n++;
        if (cb(data, &row) != 0) {
            break;
        }
    }
    return store_scan_result(st, STORE_STMT_CS_LIST, rv, n);
}

/* ---- files ---- */

int store_file_exists(struct store *st, const char *coll, const char *path)
{
    return exists_keys(st, STORE_STMT_FILE_EXISTS, coll, path);
}

int store_file_put(struct store *st, const char *coll, const struct store_file *f)
{
    return store_write_result(st, STORE_STMT_FILE_UPSERT,
                              store_run(st, STORE_STMT_FILE_UPSERT, "sssssis", coll, f->path,
                                        f->sha256, f->created, f->modified, f->size, f->blobrefs));
}

int store_file_delete(struct store *st, const char *coll, const char *path)
{
    return write_keys(st, STORE_STMT_FILE_DELETE, coll, path);
}

int store_files(struct store *st, const char *coll, store_file_fn cb, void *data)
{
    sqlite3_stmt *s = store_stmt(st, STORE_STMT_FILE_LIST);
    struct store_file row;
    int n = 0, rv;
    sqlite3_bind_text(s, 1, coll, -1, SQLITE_STATIC);
    while ((rv = sqlite3_step(s)) == SQLITE_ROW) {
        row.path = store_text(s, 0);
        row.sha256 = store_text(s, 1);
        row.created = store_text(s, 2);
        row.modified = store_text(s, 3);
        row.size = sqlite3_column_int64(s, 4);
        row.blobrefs = store_text(s, 5);
        row.blobrefs_len = (size_t)sqlite3_column_bytes(s, 5);
        n++;
        if (cb(data, &row) != 0) {
            break;
        }
    }
    return store_scan_result(st, STORE_STMT_FILE_LIST, rv, n);
}
