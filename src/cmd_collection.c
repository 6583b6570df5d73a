/* collection.*: collections in the directory tree, their tags, and the
 * changesets that build up their files. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "commands.pb-c.h"
#include "domain_internal.h"
#include "util.h"

int collection_create_check(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__CollectionCreate *c = (const void *)m;
    int rv = domain_check_nonempty(c->parentdir, "ParentDir", e);
    return rv != 0 ? rv : domain_check_nonempty(c->name, "Name", e);
}

int collection_create_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionCreate *c = (const void *)m;
    Varasto__CollectionCreated ev = VARASTO__COLLECTION_CREATED__INIT;
    int rv;

    if ((rv = domain_need_dir(ctx, c->parentdir, "ParentDir")) != 0) {
        return rv;
    }
    rv = store_coll_insert(ctx->store, ctx->generated_id, ctx->time_ms, c->parentdir, c->name);
    if (rv == STORE_CONSTRAINT_PK) {
        return err_set(&ctx->err, ERR_CONFLICT, "id '%s' already exists", ctx->generated_id);
    }
    if (rv < 0) {
        return domain_store_failed(ctx);
    }
    ev.id = (char *)ctx->generated_id;
    ev.parentdir = c->parentdir;
    ev.name = c->name;
    return domain_emit(ctx, "collection.Created", &ev.base);
}

/* After a set of one column of collection @id (@rv), checked to exist
 * first. */
static int attribute_set(struct domain_ctx *ctx, const ProtobufCMessage *m, int rv,
                         const char *event)
{
    return rv < 0 ? domain_store_failed(ctx) : domain_emit(ctx, event, m);
}

int collection_rename_check(const ProtobufCMessage *m, struct err *e)
{
    return domain_check_nonempty(((const Varasto__CollectionRename *)m)->name, "Name", e);
}

int collection_rename_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionRename *c = (const void *)m;
    int rv = domain_need_coll(ctx, c->collection, "Collection");
    if (rv != 0) {
        return rv;
    }
    return attribute_set(ctx, m, store_coll_set_name(ctx->store, c->collection, c->name),
                         "collection.Renamed");
}

int collection_change_description_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionChangeDescription *c = (const void *)m;
    int rv = domain_need_coll(ctx, c->collection, "Collection");
    if (rv != 0) {
        return rv;
    }
    return attribute_set(ctx, m,
                         store_coll_set_description(ctx->store, c->collection, c->description),
                         "collection.DescriptionChanged");
}

int collection_rate_check(const ProtobufCMessage *m, struct err *e)
{
    int32_t r = ((const Varasto__CollectionRate *)m)->rating;
    if (r < 1 || r > 5) {
        return err_set(e, ERR_BAD_REQUEST, "field 'Rating': must be 1..5");
    }
    return 0;
}

int collection_rate_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionRate *c = (const void *)m;
    int rv = domain_need_coll(ctx, c->collection, "Collection");
    if (rv != 0) {
        return rv;
    }
    return attribute_set(ctx, m, store_coll_set_rating(ctx->store, c->collection, c->rating),
                         "collection.Rated");
}

int collection_change_sensitivity_check(const ProtobufCMessage *m, struct err *e)
{
    return domain_check_sensitivity(((const Varasto__CollectionChangeSensitivity *)m)->sensitivity,
                                    e);
}

int collection_change_sensitivity_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionChangeSensitivity *c = (const void *)m;
    int rv = domain_need_coll(ctx, c->id, "Id");
    if (rv != 0) {
        return rv;
    }
    return attribute_set(ctx, m, store_coll_set_sensitivity(ctx->store, c->id, c->sensitivity),
                         "collection.SensitivityChanged");
}

int collection_move_check(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__CollectionMove *c = (const void *)m;
    if (c->n_collections == 0) {
        return err_set(e, ERR_BAD_REQUEST, "field 'Collections': must not be empty");
    }
    return 0;
}

int collection_move_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionMove *c = (const void *)m;
    Varasto__CollectionMoved ev = VARASTO__COLLECTION_MOVED__INIT;
    size_t i, k;
    int rv;

    if ((rv = domain_need_dir(ctx, c->directory, "Directory")) != 0) {
        return rv;
    }
    /* All or nothing: check every id before changing anything. */
    for (i = 0; i < c->n_collections; i++) {
        if ((rv = domain_need_coll(ctx, c->collections[i], "Collections")) != 0) {
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
        if (store_coll_set_directory(ctx->store, c->collections[i], c->directory) < 0) {
            return domain_store_failed(ctx);
        }
        ev.collection = c->collections[i];
        ev.directory = c->directory;
        if ((rv = domain_emit(ctx, "collection.Moved", &ev.base)) != 0) {
            return rv;
        }
    }
    return 0;
}

int collection_tag_check(const ProtobufCMessage *m, struct err *e)
{
    return domain_check_nonempty(((const Varasto__CollectionTag *)m)->tag, "Tag", e);
}

int collection_tag_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionTag *c = (const void *)m;
    int rv = domain_need_coll(ctx, c->id, "Id");
    if (rv != 0) {
        return rv;
    }
    if ((rv = store_tag_add(ctx->store, c->id, c->tag)) < 0) {
        return domain_store_failed(ctx);
    }
    if (rv == 0) {
        return 0; /* already tagged: a set, so nothing changed and no event */
    }
    return domain_emit(ctx, "collection.Tagged", m);
}

int collection_untag_check(const ProtobufCMessage *m, struct err *e)
{
    return domain_check_nonempty(((const Varasto__CollectionUntag *)m)->tag, "Tag", e);
}

int collection_untag_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionUntag *c = (const void *)m;
    int rv = domain_need_coll(ctx, c->id, "Id");
    if (rv != 0) {
        return rv;
    }
    if ((rv = store_tag_remove(ctx->store, c->id, c->tag)) < 0) {
        return domain_store_failed(ctx);
    }
    if (rv == 0) {
        return 0;
    }
    return domain_emit(ctx, "collection.Untagged", m);
}

int collection_delete_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionDelete *c = (const void *)m;
    Varasto__CollectionDeleted ev = VARASTO__COLLECTION_DELETED__INIT;
    struct store_coll row;
    int rv = store_coll_get(ctx->store, c->collection, &row);

    if (rv < 0) {
        return domain_store_failed(ctx);
    }
    if (rv == 0) {
        return err_set(&ctx->err, ERR_NOT_FOUND, "Collection: collection '%s' not found",
                       c->collection);
    }
    if (strcmp(row.name, c->name) != 0) {
        return err_set(&ctx->err, ERR_CONFLICT,
                       "Name does not match the collection's name (a confirmation)");
    }
    if (store_coll_delete(ctx->store, c->collection) < 0) {
        return domain_store_failed(ctx);
    }
    ev.collection = c->collection;
    return domain_emit(ctx, "collection.Deleted", &ev.base);
}

int collection_commit_changeset_check(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__CollectionCommitChangeset *c = (const void *)m;
    size_t i;
    if (domain_check_nonempty(c->id, "ID", e) != 0) {
        return e->code;
    }
    for (i = 0; i < c->n_filescreated; i++) {
        if (c->filescreated[i]->path[0] == '\0' || c->filescreated[i]->size < 0) {
            return err_set(e, ERR_BAD_REQUEST,
                           "field 'FilesCreated[%zu]': empty Path or negative Size", i);
        }
    }
    for (i = 0; i < c->n_filesupdated; i++) {
        if (c->filesupdated[i]->path[0] == '\0' || c->filesupdated[i]->size < 0) {
            return err_set(e, ERR_BAD_REQUEST,
                           "field 'FilesUpdated[%zu]': empty Path or negative Size", i);
        }
    }
    return 0;
}

/* Store file @f of collection @coll, its blob references as a JSON array. */
static int put_file(struct domain_ctx *ctx, const char *coll, const Varasto__File *f)
{
    struct store_file row;
    cJSON *refs = cJSON_CreateArray();
    char *text = NULL;
    size_t i;
    int rv;

    for (i = 0; refs != NULL && i < f->n_blobrefs; i++) {
        cJSON *ref = cJSON_CreateString(f->blobrefs[i]);
        if (ref == NULL || !cJSON_AddItemToArray(refs, ref)) {
            cJSON_Delete(ref);
            break;
        }
    }
    if (refs != NULL && i == f->n_blobrefs) {
        text = cJSON_PrintUnformatted(refs);
    }
    cJSON_Delete(refs);
    if (text == NULL) {
        return err_set(&ctx->err, ERR_INTERNAL, "out of memory");
    }
    row.path = f->path;
    row.sha256 = f->sha256;
    row.created = f->created;
    row.modified = f->modified;
    row.size = f->size;
    row.blobrefs = text;
    row.blobrefs_len = strlen(text);
    rv = store_file_put(ctx->store, coll, &row);
    free(text);
    return rv < 0 ? domain_store_failed(ctx) : 0;
}

/* Unless file @path of @coll exists (@want 1) or does not (@want 0):
 * ERR_CONFLICT "@what: '@path' @complaint"; ERR_INTERNAL if the store fails. */
static int need_file(struct domain_ctx *ctx, const char *coll, const char *path, int want,
                     const char *what, const char *complaint)
{
    int rv = store_file_exists(ctx->store, coll, path);
    if (rv < 0) {
        return domain_store_failed(ctx);
    }
    if (rv != want) {
        return err_set(&ctx->err, ERR_CONFLICT, "%s: '%s' %s", what, path, complaint);
    }
    return 0;
}

int collection_commit_changeset_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__CollectionCommitChangeset *c = (const void *)m;
    struct store *st = ctx->store;
    struct store_changeset cs;
    struct store_coll row;
    char head[256];
    size_t i;
    int rv;

    if ((rv = store_coll_get(st, c->collection, &row)) <= 0) {
        return rv < 0 ? domain_store_failed(ctx)
                      : err_set(&ctx->err, ERR_NOT_FOUND, "Collection: collection '%s' not found",
                                c->collection);
    }
    util_copy(head, sizeof head, row.head);
    if (strcmp(head, c->parent) != 0) {
        return err_set(&ctx->err, ERR_CONFLICT, "Parent '%s' is not the collection's head '%s'",
                       c->parent, head);
    }
    if ((rv = store_changeset_exists(st, c->collection, c->id)) != 0) {
        return rv < 0 ? domain_store_failed(ctx)
                      : err_set(&ctx->err, ERR_CONFLICT, "changeset '%s' already exists", c->id);
    }
    for (i = 0; i < c->n_filescreated; i++) {
        if ((rv = need_file(ctx, c->collection, c->filescreated[i]->path, 0, "FilesCreated",
                            "already exists")) != 0 ||
            (rv = put_file(ctx, c->collection, c->filescreated[i])) != 0) {
            return rv;
        }
    }
    for (i = 0; i < c->n_filesupdated; i++) {
        if ((rv = need_file(ctx, c->collection, c->filesupdated[i]->path, 1, "FilesUpdated",
                            "does not exist")) != 0 ||
            (rv = put_file(ctx, c->collection, c->filesupdated[i])) != 0) {
            return rv;
        }
    }
    for (i = 0; i < c->n_filesdeleted; i++) {
        if ((rv = need_file(ctx, c->collection, c->filesdeleted[i], 1, "FilesDeleted",
                            "does not exist")) != 0) {
            return rv;
        }
        if (store_file_delete(st, c->collection, c->filesdeleted[i]) < 0) {
            return domain_store_failed(ctx);
        }
    }
    cs.id = c->id;
    cs.parent = c->parent;
    cs.created = c->created;
    if (store_changeset_insert(st, c->collection, &cs) < 0 ||
        store_coll_set_head(st, c->collection, c->id) < 0) {
        return domain_store_failed(ctx);
    }
    return domain_emit(ctx, "collection.ChangesetCommitted", m);
}
