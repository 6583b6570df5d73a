#include "domain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "commands.pb-c.h"
#include "type_filter.h"
#include "util.h"

#define ROOT_ID "root"
#define MAX_TREE_DEPTH 100000

/* ---- helpers ---------------------------------------------------------------- */

/* Record an event: store it with the next seq and keep it for the push hub. */
static int domain_emit(struct domain_ctx *ctx, const char *type, const ProtobufCMessage *data)
{
    struct domain_event *ev;
    struct buf json;
    char when[40];
    int rv;

    if (ctx->n_events == ctx->cap_events) {
        unsigned cap = ctx->cap_events ? ctx->cap_events * 2 : 4;
        struct domain_event *p = realloc(ctx->events, cap * sizeof *p);
        if (p == NULL) {
            return err_set(&ctx->err, ERR_INTERNAL, "out of memory");
        }
        ctx->events = p;
        ctx->cap_events = cap;
    }
    /* {"Seq":n,"Type":"...","Time":"...","Data":{...}}; Data comes from the
     * generic codec, Type is one of our own constants. */
    util_format_time(ctx->time_ms, when, sizeof when);
    buf_init(&json);
    rv = buf_append_str(&json, "{\"Seq\":");
    rv |= buf_append_int(&json, (long long)(ctx->seq + 1));
    rv |= buf_append_str(&json, ",\"Type\":\"");
    rv |= buf_append_str(&json, type);
    rv |= buf_append_str(&json, "\",\"Time\":\"");
    rv |= buf_append_str(&json, when);
    rv |= buf_append_str(&json, "\",\"Data\":");
    rv |= codec_write_json(data, &json);
    rv |= buf_append(&json, "}", 1);
    if (rv != 0) {
        buf_free(&json);
        return err_set(&ctx->err, ERR_INTERNAL, "out of memory");
    }
    rv = store_run(ctx->store, ST_EVENT_INSERT, "iss", (int64_t)(ctx->seq + 1), type, json.data);
    if (rv != SQLITE_DONE) {
        buf_free(&json);
        return err_set(&ctx->err, ERR_INTERNAL, "store event: %s", ctx->store->errmsg);
    }
    ctx->seq++;
    ev = &ctx->events[ctx->n_events++];
    ev->seq = ctx->seq;
    util_copy(ev->type, sizeof ev->type, type);
    ev->len = json.len;
    ev->json = buf_steal(&json);
    return 0;
}

void domain_ctx_reset(struct domain_ctx *ctx)
{
    unsigned i;
    for (i = 0; i < ctx->n_events; i++) {
        free(ctx->events[i].json);
    }
    free(ctx->events);
    ctx->events = NULL;
    ctx->n_events = 0;
    ctx->cap_events = 0;
}

/* Whether a row exists for a query that takes one or two text keys. */
static int exists(struct store *st, enum store_stmt id, const char *a, const char *b)
{
    int rv = b ? store_run(st, id, "ss", a, b) : store_run(st, id, "s", a);
    sqlite3_reset(store_stmt(st, id));
    return rv == SQLITE_ROW;
}

/* Run a write statement; map failure to ERR_INTERNAL. */
static int write_ok(struct domain_ctx *ctx, int rv)
{
    if (rv != SQLITE_DONE) {
        return err_set(&ctx->err, ERR_INTERNAL, "store: %s", ctx->store->errmsg);
    }
    return 0;
}

/* A write to directories that the (parent, name) unique index may refuse:
 * the index is the sibling-name check, so no query has to ask first. */
static int write_sibling(struct domain_ctx *ctx, int rv, const char *name)
{
    if (rv == SQLITE_CONSTRAINT) {
        int ext = sqlite3_extended_errcode(ctx->store->db);
        if (ext == SQLITE_CONSTRAINT_UNIQUE) {
            return err_set(&ctx->err, ERR_CONFLICT,
                           "a directory named '%s' already exists there", name);
        }
        if (ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
            return err_set(&ctx->err, ERR_CONFLICT, "id '%s' already exists",
                           ctx->generated_id ? ctx->generated_id : "");
        }
    }
    return write_ok(ctx, rv);
}

static int need_dir(struct domain_ctx *ctx, const char *id, const char *field)
{
    if (!exists(ctx->store, ST_DIR_GET, id, NULL)) {
        return err_set(&ctx->err, ERR_NOT_FOUND, "%s: directory '%s' not found", field, id);
    }
    return 0;
}

static int need_coll(struct domain_ctx *ctx, const char *id, const char *field)
{
    if (!exists(ctx->store, ST_COLL_GET, id, NULL)) {
        return err_set(&ctx->err, ERR_NOT_FOUND, "%s: collection '%s' not found", field, id);
    }
    return 0;
}

/* The name of collection @id into @out (empty if none). */
static void coll_name(struct store *st, const char *id, char *out, size_t size)
{
    out[0] = '\0';
    if (store_run(st, ST_COLL_GET, "s", id) == SQLITE_ROW) {
        util_copy(out, size, (const char *)sqlite3_column_text(st->stmts[ST_COLL_GET], 3));
    }
    sqlite3_reset(st->stmts[ST_COLL_GET]);
}

/* ---- stateless checks ---------------------------------------------------------- */

static int check_name(const char *name, const char *field, struct err *e)
{
    if (name[0] == '\0') {
        return err_set(e, ERR_BAD_REQUEST, "field '%s': must not be empty", field);
    }
    return 0;
}

static int check_id(const char *id, const char *field, struct err *e)
{
    if (id[0] == '\0') {
        return err_set(e, ERR_BAD_REQUEST, "field '%s': must not be empty", field);
    }
    return 0;
}

static int check_sensitivity(int32_t s, struct err *e)
{
    if (s < 0 || s > 2) {
        return err_set(e, ERR_BAD_REQUEST, "field 'Sensitivity': must be 0, 1 or 2");
    }
    return 0;
}

static int chk_dir_create(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__DirectoryCreate *c = (const void *)m;
    return check_id(c->parent, "Parent", e) ?: check_name(c->name, "Name", e);
}

static int chk_dir_rename(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__DirectoryRename *c = (const void *)m;
    return check_id(c->id, "Id", e) ?: check_name(c->name, "Name", e);
}

static int chk_dir_set_type(const ProtobufCMessage *m, struct err *e)
{
    static const char *types[] = {"generic", "albums", "movies", "series", "games", "podcasts"};
    const Varasto__DirectorySetType *c = (const void *)m;
    size_t i;
    for (i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(c->type, types[i]) == 0) {
            return 0;
        }
    }
    return err_set(e, ERR_BAD_REQUEST,
                   "field 'Type': must be one of generic albums movies series games podcasts");
}

static int chk_dir_sensitivity(const ProtobufCMessage *m, struct err *e)
{
    return check_sensitivity(((const Varasto__DirectoryChangeSensitivity *)m)->sensitivity, e);
}

static int chk_coll_create(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__CollectionCreate *c = (const void *)m;
    return check_id(c->parentdir, "ParentDir", e) ?: check_name(c->name, "Name", e);
}

static int chk_coll_rename(const ProtobufCMessage *m, struct err *e)
{
    return check_name(((const Varasto__CollectionRename *)m)->name, "Name", e);
}

static int chk_coll_move(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__CollectionMove *c = (const void *)m;
    if (c->n_collections == 0) {
        return err_set(e, ERR_BAD_REQUEST, "field 'Collections': must not be empty");
    }
    return 0;
}

static int chk_coll_tag(const ProtobufCMessage *m, struct err *e)
{
    return check_name(((const Varasto__CollectionTag *)m)->tag, "Tag", e);
}

static int chk_coll_untag(const ProtobufCMessage *m, struct err *e)
{
    return check_name(((const Varasto__CollectionUntag *)m)->tag, "Tag", e);
}

static int chk_coll_rate(const ProtobufCMessage *m, struct err *e)
{
    int32_t r = ((const Varasto__CollectionRate *)m)->rating;
    if (r < 1 || r > 5) {
        return err_set(e, ERR_BAD_REQUEST, "field 'Rating': must be 1..5");
    }
    return 0;
}

static int chk_coll_sensitivity(const ProtobufCMessage *m, struct err *e)
{
    return check_sensitivity(((const Varasto__CollectionChangeSensitivity *)m)->sensitivity, e);
}

static int chk_changeset(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__CollectionCommitChangeset *c = (const void *)m;
    size_t i;
    if (check_id(c->id, "ID", e) != 0) {
        return e->code;
    }
    for (i = 0; i < c->n_filescreated; i++) {
        if (c->filescreated[i]->path[0] == '\0' || c->filescreated[i]->size < 0) {
            return err_set(e, ERR_BAD_REQUEST, "field 'FilesCreated[%zu]': empty Path or negative Size", i);
        }
    }
    for (i = 0; i < c->n_filesupdated; i++) {
        if (c->filesupdated[i]->path[0] == '\0' || c->filesupdated[i]->size < 0) {
            return err_set(e, ERR_BAD_REQUEST, "field 'FilesUpdated[%zu]': empty Path or negative Size", i);
        }
    }
    return 0;
}

static int chk_apikey_create(const ProtobufCMessage *m, struct err *e)
{
    return check_name(((const Varasto__ApikeyCreate *)m)->name, "Name", e);
}

/* ---- directories --------------------------------------------------------------- */

static int ap_dir_create(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectoryCreate *c = (const void *)m;
    Varasto__DirectoryCreated ev = VARASTO__DIRECTORY_CREATED__INIT;
    int rv;

    if ((rv = need_dir(ctx, c->parent, "Parent")) != 0) {
        return rv;
    }
    rv = write_sibling(ctx, store_run(ctx->store, ST_DIR_INSERT, "siss", ctx->generated_id,
                                      ctx->time_ms, c->parent, c->name), c->name);
    if (rv != 0) {
        return rv;
    }
    ev.id = (char *)ctx->generated_id;
    ev.parent = c->parent;
    ev.name = c->name;
    return domain_emit(ctx, "directory.Created", &ev.base);
}

static int ap_dir_rename(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectoryRename *c = (const void *)m;
    int rv;

    /* One statement: the unique index refuses a taken name, and no row
     * changed means no such directory. */
    rv = write_sibling(ctx, store_run(ctx->store, ST_DIR_SET_NAME, "ss", c->name, c->id), c->name);
    if (rv != 0) {
        return rv;
    }
    if (sqlite3_changes(ctx->store->db) == 0) {
        return err_set(&ctx->err, ERR_NOT_FOUND, "Id: directory '%s' not found", c->id);
    }
    return domain_emit(ctx, "directory.Renamed", m);
}

/* Update one directory column by statement, after checking the id exists. */
static int dir_set(struct domain_ctx *ctx, const ProtobufCMessage *m, const char *id,
                   enum store_stmt stmt, const char *fmt, const void *value, const char *event)
{
    int rv;
    if ((rv = need_dir(ctx, id, "Id")) != 0) {
        return rv;
    }
    if (fmt[0] == 's') {
        rv = store_run(ctx->store, stmt, "ss", (const char *)value, id);
    } else {
        rv = store_run(ctx->store, stmt, "is", (int64_t) * (const int32_t *)value, id);
    }
    if ((rv = write_ok(ctx, rv)) != 0) {
        return rv;
    }
    return domain_emit(ctx, event, m);
}

static int ap_dir_description(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectoryChangeDescription *c = (const void *)m;
    return dir_set(ctx, m, c->id, ST_DIR_SET_DESCRIPTION, "s", c->description,
                   "directory.DescriptionChanged");
}

static int ap_dir_set_type(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectorySetType *c = (const void *)m;
    return dir_set(ctx, m, c->id, ST_DIR_SET_TYPE, "s", c->type, "directory.TypeChanged");
}

static int ap_dir_sensitivity(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectoryChangeSensitivity *c = (const void *)m;
    return dir_set(ctx, m, c->id, ST_DIR_SET_SENSITIVITY, "i", &c->sensitivity,
                   "directory.SensitivityChanged");
}

static int ap_dir_move(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectoryMove *c = (const void *)m;
    struct store *st = ctx->store;
    char cur[128], name[256];
    unsigned depth;
    int rv;

    if ((rv = need_dir(ctx, c->id, "Id")) != 0 ||
        (rv = need_dir(ctx, c->directory, "Directory")) != 0) {
        return rv;
    }
    if (strcmp(c->id, ROOT_ID) == 0) {
        return err_set(&ctx->err, ERR_CONFLICT, "the root directory cannot be moved");
    }
    /* The new parent must not be the directory or one of its descendants:
     * walk up from the new parent to the root. */
    util_copy(cur, sizeof cur, c->directory);
    for (depth = 0; cur[0] != '\0' && depth < MAX_TREE_DEPTH; depth++) {
        if (strcmp(cur, c->id) == 0) {
            return err_set(&ctx->err, ERR_CONFLICT,
                           "cannot move a directory into itself or its descendant");
        }
        if (store_run(st, ST_DIR_GET, "s", cur) != SQLITE_ROW) {
            sqlite3_reset(st->stmts[ST_DIR_GET]);
            break;
        }
        util_copy(cur, sizeof cur, (const char *)sqlite3_column_text(st->stmts[ST_DIR_GET], 2));
        sqlite3_reset(st->stmts[ST_DIR_GET]);
    }
    store_run(st, ST_DIR_GET, "s", c->id);
    util_copy(name, sizeof name, (const char *)sqlite3_column_text(st->stmts[ST_DIR_GET], 3));
    sqlite3_reset(st->stmts[ST_DIR_GET]);
    rv = write_sibling(ctx, store_run(st, ST_DIR_SET_PARENT, "ss", c->directory, c->id), name);
    if (rv != 0) {
        return rv;
    }
    return domain_emit(ctx, "directory.Moved", m);
}

static int ap_dir_delete(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectoryDelete *c = (const void *)m;
    int rv;

    if ((rv = need_dir(ctx, c->id, "Id")) != 0) {
        return rv;
    }
    if (strcmp(c->id, ROOT_ID) == 0) {
        return err_set(&ctx->err, ERR_CONFLICT, "the root directory cannot be deleted");
    }
    if (exists(ctx->store, ST_DIR_HAS_CHILD, c->id, NULL) ||
        exists(ctx->store, ST_DIR_HAS_COLLECTION, c->id, NULL)) {
        return err_set(&ctx->err, ERR_CONFLICT, "directory '%s' is not empty", c->id);
    }
    if ((rv = write_ok(ctx, store_run(ctx->store, ST_DIR_DELETE, "s", c->id))) != 0) {
        return rv;
    }
    return domain_emit(ctx, "directory.Deleted", m);
}

/* ---- collections ----------------------------------------------------------------- */

static int ap_coll_create(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionCreate *c = (const void *)m;
    Varasto__CollectionCreated ev = VARASTO__COLLECTION_CREATED__INIT;
    int rv;

    if ((rv = need_dir(ctx, c->parentdir, "ParentDir")) != 0) {
        return rv;
    }
    if (exists(ctx->store, ST_COLL_GET, ctx->generated_id, NULL)) {
        return err_set(&ctx->err, ERR_CONFLICT, "id '%s' already exists", ctx->generated_id);
    }
    rv = write_ok(ctx, store_run(ctx->store, ST_COLL_INSERT, "siss", ctx->generated_id,
                                 ctx->time_ms, c->parentdir, c->name));
    if (rv != 0) {
        return rv;
    }
    ev.id = (char *)ctx->generated_id;
    ev.parentdir = c->parentdir;
    ev.name = c->name;
    return domain_emit(ctx, "collection.Created", &ev.base);
}

static int coll_set(struct domain_ctx *ctx, const ProtobufCMessage *m, const char *id,
                    const char *field, enum store_stmt stmt, const char *text, int64_t number,
                    const char *event)
{
    int rv;
    if ((rv = need_coll(ctx, id, field)) != 0) {
        return rv;
    }
    rv = text ? store_run(ctx->store, stmt, "ss", text, id)
              : store_run(ctx->store, stmt, "is", number, id);
    if ((rv = write_ok(ctx, rv)) != 0) {
        return rv;
    }
    return domain_emit(ctx, event, m);
}

static int ap_coll_rename(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionRename *c = (const void *)m;
    return coll_set(ctx, m, c->collection, "Collection", ST_COLL_SET_NAME, c->name, 0,
                    "collection.Renamed");
}

static int ap_coll_description(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionChangeDescription *c = (const void *)m;
    return coll_set(ctx, m, c->collection, "Collection", ST_COLL_SET_DESCRIPTION,
                    c->description, 0, "collection.DescriptionChanged");
}

static int ap_coll_rate(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionRate *c = (const void *)m;
    return coll_set(ctx, m, c->collection, "Collection", ST_COLL_SET_RATING, NULL, c->rating,
                    "collection.Rated");
}

static int ap_coll_sensitivity(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionChangeSensitivity *c = (const void *)m;
    return coll_set(ctx, m, c->id, "Id", ST_COLL_SET_SENSITIVITY, NULL, c->sensitivity,
                    "collection.SensitivityChanged");
}

static int ap_coll_move(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionMove *c = (const void *)m;
    Varasto__CollectionMoved ev = VARASTO__COLLECTION_MOVED__INIT;
    size_t i, k;
    int rv;

    if ((rv = need_dir(ctx, c->directory, "Directory")) != 0) {
        return rv;
    }
    /* All or nothing: check every id before changing anything. */
    for (i = 0; i < c->n_collections; i++) {
        if ((rv = need_coll(ctx, c->collections[i], "Collections")) != 0) {
            return rv;
        }
    }
    for (i = 0; i < c->n_collections; i++) {
        int dup = 0;
        for (k = 0; k < i; k++) {
            dup |= strcmp(c->collections[k], c->collections[i]) == 0;
        }
        if (dup) {
            continue;
        }
        rv = store_run(ctx->store, ST_COLL_SET_DIRECTORY, "ss", c->directory, c->collections[i]);
        if ((rv = write_ok(ctx, rv)) != 0) {
            return rv;
        }
        ev.collection = c->collections[i];
        ev.directory = c->directory;
        if ((rv = domain_emit(ctx, "collection.Moved", &ev.base)) != 0) {
            return rv;
        }
    }
    return 0;
}

static int ap_coll_tag(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionTag *c = (const void *)m;
    int rv;
    if ((rv = need_coll(ctx, c->id, "Id")) != 0) {
        return rv;
    }
    if ((rv = write_ok(ctx, store_run(ctx->store, ST_TAG_ADD, "ss", c->id, c->tag))) != 0) {
        return rv;
    }
    if (sqlite3_changes(ctx->store->db) == 0) {
        return 0; /* already tagged: a set, so nothing changed and no event */
    }
    return domain_emit(ctx, "collection.Tagged", m);
}

static int ap_coll_untag(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionUntag *c = (const void *)m;
    int rv;
    if ((rv = need_coll(ctx, c->id, "Id")) != 0) {
        return rv;
    }
    if ((rv = write_ok(ctx, store_run(ctx->store, ST_TAG_REMOVE, "ss", c->id, c->tag))) != 0) {
        return rv;
    }
    if (sqlite3_changes(ctx->store->db) == 0) {
        return 0;
    }
    return domain_emit(ctx, "collection.Untagged", m);
}

static int ap_coll_delete(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionDelete *c = (const void *)m;
    Varasto__CollectionDeleted ev = VARASTO__COLLECTION_DELETED__INIT;
    static const enum store_stmt cleanup[] = {ST_TAG_DELETE_ALL, ST_CS_DELETE_ALL,
                                              ST_FILE_DELETE_ALL, ST_COLL_DELETE};
    char name[512];
    size_t i;
    int rv;

    if ((rv = need_coll(ctx, c->collection, "Collection")) != 0) {
        return rv;
    }
    coll_name(ctx->store, c->collection, name, sizeof name);
    if (strcmp(name, c->name) != 0) {
        return err_set(&ctx->err, ERR_CONFLICT,
                       "Name does not match the collection's name (a confirmation)");
    }
    for (i = 0; i < sizeof cleanup / sizeof cleanup[0]; i++) {
        if ((rv = write_ok(ctx, store_run(ctx->store, cleanup[i], "s", c->collection))) != 0) {
            return rv;
        }
    }
    ev.collection = c->collection;
    return domain_emit(ctx, "collection.Deleted", &ev.base);
}

static int put_file(struct domain_ctx *ctx, const char *coll, const Varasto__File *f)
{
    cJSON *refs = cJSON_CreateArray();
    char *text;
    size_t i;
    int rv;

    for (i = 0; i < f->n_blobrefs; i++) {
        cJSON_AddItemToArray(refs, cJSON_CreateString(f->blobrefs[i]));
    }
    text = cJSON_PrintUnformatted(refs);
    cJSON_Delete(refs);
    if (text == NULL) {
        return err_set(&ctx->err, ERR_INTERNAL, "out of memory");
    }
    rv = store_run(ctx->store, ST_FILE_UPSERT, "sssssis", coll, f->path, f->sha256, f->created,
                   f->modified, (int64_t)f->size, text);
    free(text);
    return write_ok(ctx, rv);
}

static int ap_changeset(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionCommitChangeset *c = (const void *)m;
    struct store *st = ctx->store;
    char head[256];
    size_t i;
    int rv;

    if ((rv = need_coll(ctx, c->collection, "Collection")) != 0) {
        return rv;
    }
    store_run(st, ST_COLL_GET, "s", c->collection);
    util_copy(head, sizeof head, (const char *)sqlite3_column_text(st->stmts[ST_COLL_GET], 7));
    sqlite3_reset(st->stmts[ST_COLL_GET]);
    if (strcmp(head, c->parent) != 0) {
        return err_set(&ctx->err, ERR_CONFLICT, "Parent '%s' is not the collection's head '%s'",
                       c->parent, head);
    }
    if (exists(st, ST_CS_EXISTS, c->collection, c->id)) {
        return err_set(&ctx->err, ERR_CONFLICT, "changeset '%s' already exists", c->id);
    }
    for (i = 0; i < c->n_filescreated; i++) {
        if (exists(st, ST_FILE_EXISTS, c->collection, c->filescreated[i]->path)) {
            return err_set(&ctx->err, ERR_CONFLICT, "FilesCreated: '%s' already exists",
                           c->filescreated[i]->path);
        }
        if ((rv = put_file(ctx, c->collection, c->filescreated[i])) != 0) {
            return rv;
        }
    }
    for (i = 0; i < c->n_filesupdated; i++) {
        if (!exists(st, ST_FILE_EXISTS, c->collection, c->filesupdated[i]->path)) {
            return err_set(&ctx->err, ERR_CONFLICT, "FilesUpdated: '%s' does not exist",
                           c->filesupdated[i]->path);
        }
        if ((rv = put_file(ctx, c->collection, c->filesupdated[i])) != 0) {
            return rv;
        }
    }
    for (i = 0; i < c->n_filesdeleted; i++) {
        if (!exists(st, ST_FILE_EXISTS, c->collection, c->filesdeleted[i])) {
            return err_set(&ctx->err, ERR_CONFLICT, "FilesDeleted: '%s' does not exist",
                           c->filesdeleted[i]);
        }
        rv = store_run(st, ST_FILE_DELETE, "ss", c->collection, c->filesdeleted[i]);
        if ((rv = write_ok(ctx, rv)) != 0) {
            return rv;
        }
    }
    rv = store_run(st, ST_CS_INSERT, "ssss", c->collection, c->id, c->parent, c->created);
    if ((rv = write_ok(ctx, rv)) != 0) {
        return rv;
    }
    rv = store_run(st, ST_COLL_SET_HEAD, "ss", c->id, c->collection);
    if ((rv = write_ok(ctx, rv)) != 0) {
        return rv;
    }
    return domain_emit(ctx, "collection.ChangesetCommitted", m);
}

/* ---- API keys ------------------------------------------------------------------- */

static int ap_apikey_create(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__ApikeyCreate *c = (const void *)m;
    Varasto__ApikeyCreated ev = VARASTO__APIKEY_CREATED__INIT;
    int rv;

    if (ctx->token_hash == NULL) {
        return err_set(&ctx->err, ERR_BAD_REQUEST, "apikey.Create entry carries no token hash");
    }
    if (exists(ctx->store, ST_KEY_EXISTS, ctx->generated_id, NULL)) {
        return err_set(&ctx->err, ERR_CONFLICT, "id '%s' already exists", ctx->generated_id);
    }
    rv = store_run(ctx->store, ST_KEY_INSERT, "ssbi", ctx->generated_id, c->name, ctx->token_hash,
                   32, ctx->time_ms);
    if ((rv = write_ok(ctx, rv)) != 0) {
        return rv;
    }
    ev.id = (char *)ctx->generated_id;
    ev.name = c->name;
    return domain_emit(ctx, "apikey.Created", &ev.base);
}

static int ap_apikey_remove(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__ApikeyRemove *c = (const void *)m;
    int rv;
    if (!exists(ctx->store, ST_KEY_EXISTS, c->id, NULL)) {
        return err_set(&ctx->err, ERR_NOT_FOUND, "Id: API key '%s' not found", c->id);
    }
    if ((rv = write_ok(ctx, store_run(ctx->store, ST_KEY_DELETE, "s", c->id))) != 0) {
        return rv;
    }
    return domain_emit(ctx, "apikey.Removed", m);
}

/* ---- durable subscriptions ------------------------------------------------------- */

static int chk_sub_name(const char *name, struct err *e)
{
    if (name[0] == '\0') {
        return err_set(e, ERR_BAD_REQUEST, "field 'Name': must not be empty");
    }
    return 0;
}

static int chk_sub_create(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__SubscriptionCreate *c = (const void *)m;
    size_t i;
    if (chk_sub_name(c->name, e) != 0) {
        return e->code;
    }
    if (c->n_types > TYPE_FILTER_MAX) {
        return err_set(e, ERR_BAD_REQUEST, "field 'Types': at most %d prefixes", TYPE_FILTER_MAX);
    }
    for (i = 0; i < c->n_types; i++) {
        if (c->types[i][0] == '\0' || strlen(c->types[i]) >= 64 || strchr(c->types[i], ',')) {
            return err_set(e, ERR_BAD_REQUEST,
                           "field 'Types[%zu]': 1 to 63 characters, no comma", i);
        }
    }
    return 0;
}

static int chk_sub_ack(const ProtobufCMessage *m, struct err *e)
{
    return chk_sub_name(((const Varasto__SubscriptionAck *)m)->name, e);
}

static int chk_sub_delete(const ProtobufCMessage *m, struct err *e)
{
    return chk_sub_name(((const Varasto__SubscriptionDelete *)m)->name, e);
}

static int ap_sub_create(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__SubscriptionCreate *c = (const void *)m;
    struct buf types;
    uint64_t cursor;
    size_t i;
    int rv;

    if (store_subscription(ctx->store, c->name, NULL, &cursor)) {
        return err_set(&ctx->err, ERR_CONFLICT, "subscription '%s' already exists", c->name);
    }
    buf_init(&types);
    buf_append_str(&types, "");
    for (i = 0; i < c->n_types; i++) {
        if (i > 0) {
            buf_append_str(&types, ",");
        }
        buf_append_str(&types, c->types[i]);
    }
    rv = write_ok(ctx, store_run(ctx->store, ST_SUB_INSERT, "ssi", c->name, types.data,
                                 ctx->time_ms));
    buf_free(&types);
    return rv != 0 ? rv : domain_emit(ctx, "subscription.Created", m);
}

static int ap_sub_ack(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__SubscriptionAck *c = (const void *)m;
    uint64_t cursor;
    if (!store_subscription(ctx->store, c->name, NULL, &cursor)) {
        return err_set(&ctx->err, ERR_NOT_FOUND, "subscription '%s' not found", c->name);
    }
    if (c->seq > ctx->seq) {
        return err_set(&ctx->err, ERR_BAD_REQUEST, "field 'Seq': beyond the last event (%llu)",
                       (unsigned long long)ctx->seq);
    }
    /* never back; no event */
    return write_ok(ctx, store_run(ctx->store, ST_SUB_ACK, "is", (int64_t)c->seq, c->name));
}

static int ap_sub_delete(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__SubscriptionDelete *c = (const void *)m;
    uint64_t cursor;
    int rv;
    if (!store_subscription(ctx->store, c->name, NULL, &cursor)) {
        return err_set(&ctx->err, ERR_NOT_FOUND, "subscription '%s' not found", c->name);
    }
    rv = write_ok(ctx, store_run(ctx->store, ST_SUB_DELETE, "s", c->name));
    return rv != 0 ? rv : domain_emit(ctx, "subscription.Deleted", m);
}

/* ---- cluster ----------------------------------------------------------------------- */

static int chk_announce(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__ClusterAnnounce *c = (const void *)m;
    if (c->id == 0 || c->httpaddress[0] == '\0' || c->raftaddress[0] == '\0') {
        return err_set(e, ERR_BAD_REQUEST, "cluster.Announce needs Id and both addresses");
    }
    return 0;
}

static int ap_announce(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__ClusterAnnounce *c = (const void *)m;
    /* Where a member serves: node-level plumbing, not a domain event. */
    return write_ok(ctx, store_run(ctx->store, ST_NODE_PUT, "iss", (int64_t)c->id,
                                   c->raftaddress, c->httpaddress));
}

/* Membership itself is raft's; these record a completed change in the read
 * model and the event log. */
static int ap_node_added(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__ClusterAddNode *c = (const void *)m;
    int rv = write_ok(ctx, store_run(ctx->store, ST_NODE_PUT, "iss", (int64_t)c->id,
                                     c->raftaddress, c->httpaddress));
    return rv != 0 ? rv : domain_emit(ctx, "cluster.NodeAdded", m);
}

static int ap_node_removed(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__ClusterRemoveNode *c = (const void *)m;
    int rv = write_ok(ctx, store_run(ctx->store, ST_NODE_DELETE, "i", (int64_t)c->id));
    return rv != 0 ? rv : domain_emit(ctx, "cluster.NodeRemoved", m);
}

/* ---- the table -------------------------------------------------------------------- */

#define D(msg) &varasto__##msg##__descriptor

static const struct domain_command commands[] = {
    {"directory.Create", D(directory_create), 1, 0, chk_dir_create, ap_dir_create, 0},
    {"directory.Rename", D(directory_rename), 0, 0, chk_dir_rename, ap_dir_rename, 0},
    {"directory.ChangeDescription", D(directory_change_description), 0, 0, NULL,
     ap_dir_description, 0},
    {"directory.SetType", D(directory_set_type), 0, 0, chk_dir_set_type, ap_dir_set_type, 0},
    {"directory.ChangeSensitivity", D(directory_change_sensitivity), 0, 0, chk_dir_sensitivity,
     ap_dir_sensitivity, 0},
    {"directory.Move", D(directory_move), 0, 0, NULL, ap_dir_move, 0},
    {"directory.Delete", D(directory_delete), 0, 0, NULL, ap_dir_delete, 0},
    {"collection.Create", D(collection_create), 1, 0, chk_coll_create, ap_coll_create, 0},
    {"collection.Rename", D(collection_rename), 0, 0, chk_coll_rename, ap_coll_rename, 0},
    {"collection.ChangeDescription", D(collection_change_description), 0, 0, NULL,
     ap_coll_description, 0},
    {"collection.Move", D(collection_move), 0, 0, chk_coll_move, ap_coll_move, 0},
    {"collection.Tag", D(collection_tag), 0, 0, chk_coll_tag, ap_coll_tag, 0},
    {"collection.Untag", D(collection_untag), 0, 0, chk_coll_untag, ap_coll_untag, 0},
    {"collection.Rate", D(collection_rate), 0, 0, chk_coll_rate, ap_coll_rate, 0},
    {"collection.ChangeSensitivity", D(collection_change_sensitivity), 0, 0,
     chk_coll_sensitivity, ap_coll_sensitivity, 0},
    {"collection.Delete", D(collection_delete), 0, 0, NULL, ap_coll_delete, 0},
    {"collection.CommitChangeset", D(collection_commit_changeset), 0, 1, chk_changeset,
     ap_changeset, 1},
    {"apikey.Create", D(apikey_create), 1, 0, chk_apikey_create, ap_apikey_create, 0},
    {"apikey.Remove", D(apikey_remove), 0, 0, NULL, ap_apikey_remove, 0},
    {"subscription.Create", D(subscription_create), 0, 0, chk_sub_create, ap_sub_create, 0},
    {"subscription.Ack", D(subscription_ack), 0, 0, chk_sub_ack, ap_sub_ack, 0},
    {"subscription.Delete", D(subscription_delete), 0, 0, chk_sub_delete, ap_sub_delete, 0},
    {"cluster.Announce", D(cluster_announce), 0, 1, chk_announce, ap_announce, 0},
    {"cluster.RecordNodeAdded", D(cluster_add_node), 0, 1, NULL, ap_node_added, 0},
    {"cluster.RecordNodeRemoved", D(cluster_remove_node), 0, 1, NULL, ap_node_removed, 0},
};

const struct domain_command *domain_find(const char *name)
{
    size_t i;
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

int domain_check(const struct domain_command *cmd, const ProtobufCMessage *m, struct err *e)
{
    return cmd->check != NULL ? cmd->check(m, e) : 0;
}

int domain_apply(const struct domain_command *cmd, struct domain_ctx *ctx,
                 const ProtobufCMessage *m)
{
    int rv = domain_check(cmd, m, &ctx->err);
    if (rv != 0) {
        return rv;
    }
    return cmd->apply(ctx, m);
}
