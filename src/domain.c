#include "domain_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "commands.pb-c.h"
#include "type_filter.h"
#include "util.h"

/* ---- the table ---- */

#define D(msg) &varasto__##msg##__descriptor

static const struct domain_command commands[] = {
    {.name = "directory.Create",
     .desc = D(directory_create),
     .creates_id = 1,
     .check = directory_create_check,
     .apply = directory_create_apply},
    {.name = "directory.Rename",
     .desc = D(directory_rename),
     .check = directory_rename_check,
     .apply = directory_rename_apply},
    {.name = "directory.ChangeDescription",
     .desc = D(directory_change_description),
     .apply = directory_change_description_apply},
    {.name = "directory.SetType",
     .desc = D(directory_set_type),
     .check = directory_set_type_check,
     .apply = directory_set_type_apply},
    {.name = "directory.ChangeSensitivity",
     .desc = D(directory_change_sensitivity),
     .check = directory_change_sensitivity_check,
     .apply = directory_change_sensitivity_apply},
    {.name = "directory.Move", .desc = D(directory_move), .apply = directory_move_apply},
    {.name = "directory.Delete", .desc = D(directory_delete), .apply = directory_delete_apply},
    {.name = "collection.Create",
     .desc = D(collection_create),
     .creates_id = 1,
     .check = collection_create_check,
     .apply = collection_create_apply},
    {.name = "collection.Rename",
     .desc = D(collection_rename),
     .check = collection_rename_check,
     .apply = collection_rename_apply},
    {.name = "collection.ChangeDescription",
     .desc = D(collection_change_description),
     .apply = collection_change_description_apply},
    {.name = "collection.Move",
     .desc = D(collection_move),
     .check = collection_move_check,
     .apply = collection_move_apply},
    {.name = "collection.Tag",
     .desc = D(collection_tag),
     .check = collection_tag_check,
     .apply = collection_tag_apply},
    {.name = "collection.Untag",
     .desc = D(collection_untag),
     .check = collection_untag_check,
     .apply = collection_untag_apply},
    {.name = "collection.Rate",
     .desc = D(collection_rate),
     .check = collection_rate_check,
     .apply = collection_rate_apply},
    {.name = "collection.ChangeSensitivity",
     .desc = D(collection_change_sensitivity),
     .check = collection_change_sensitivity_check,
     .apply = collection_change_sensitivity_apply},
    {.name = "collection.Delete", .desc = D(collection_delete), .apply = collection_delete_apply},
    {.name = "collection.CommitChangeset",
     .desc = D(collection_commit_changeset),
     .api_only = 1,
     .check = collection_commit_changeset_check,
     .apply = collection_commit_changeset_apply,
     .savepoint = 1},
    {.name = "apikey.Create",
     .desc = D(apikey_create),
     .creates_id = 1,
     .check = apikey_create_check,
     .apply = apikey_create_apply},
    {.name = "apikey.Remove", .desc = D(apikey_remove), .apply = apikey_remove_apply},
    {.name = "subscription.Create",
     .desc = D(subscription_create),
     .check = subscription_create_check,
     .apply = subscription_create_apply},
    {.name = "subscription.Ack",
     .desc = D(subscription_ack),
     .check = subscription_ack_check,
     .apply = subscription_ack_apply},
    {.name = "subscription.Delete",
     .desc = D(subscription_delete),
     .check = subscription_delete_check,
     .apply = subscription_delete_apply},
    {.name = "cluster.Announce",
     .desc = D(cluster_announce),
     .api_only = 1,
     .check = cluster_announce_check,
     .apply = cluster_announce_apply},
    {.name = "cluster.RecordNodeAdded",
     .desc = D(cluster_add_node),
     .api_only = 1,
     .apply = cluster_record_node_added_apply},
    {.name = "cluster.RecordNodeRemoved",
     .desc = D(cluster_remove_node),
     .api_only = 1,
     .apply = cluster_record_node_removed_apply},
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

/* ---- shared by the commands ---- */

int domain_emit(struct domain_ctx *ctx, const char *type, const ProtobufCMessage *data)
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
    if (store_event_insert(ctx->store, ctx->seq + 1, type, json.data) < 0) {
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

int domain_store_failed(struct domain_ctx *ctx)
{
    return err_set(&ctx->err, ERR_INTERNAL, "store: %s", ctx->store->errmsg);
}

int domain_need_dir(struct domain_ctx *ctx, const char *id, const char *field)
{
    int rv = store_dir_get(ctx->store, id, NULL);
    if (rv < 0) {
        return domain_store_failed(ctx);
    }
    if (rv == 0) {
        return err_set(&ctx->err, ERR_NOT_FOUND, "%s: directory '%s' not found", field, id);
    }
    return 0;
}

int domain_need_coll(struct domain_ctx *ctx, const char *id, const char *field)
{
    int rv = store_coll_get(ctx->store, id, NULL);
    if (rv < 0) {
        return domain_store_failed(ctx);
    }
    if (rv == 0) {
        return err_set(&ctx->err, ERR_NOT_FOUND, "%s: collection '%s' not found", field, id);
    }
    return 0;
}

int domain_check_nonempty(const char *value, const char *field, struct err *e)
{
    if (value[0] == '\0') {
        return err_set(e, ERR_BAD_REQUEST, "field '%s': must not be empty", field);
    }
    return 0;
}

int domain_check_sensitivity(int32_t sensitivity, struct err *e)
{
    if (sensitivity < 0 || sensitivity > 2) {
        return err_set(e, ERR_BAD_REQUEST, "field 'Sensitivity': must be 0, 1 or 2");
    }
    return 0;
}

/* ---- directories ---- */

/* A write to directories that the (parent, name) unique index may refuse:
 * the index is the sibling-name check, so no query has to ask first. */
static int sibling_write(struct domain_ctx *ctx, int rv, const char *name)
{
    if (rv == STORE_CONSTRAINT_UNIQUE) {
        return err_set(&ctx->err, ERR_CONFLICT, "a directory named '%s' already exists there",
                       name);
    }
    if (rv == STORE_CONSTRAINT_PK) {
        return err_set(&ctx->err, ERR_CONFLICT, "id '%s' already exists",
                       ctx->generated_id ? ctx->generated_id : "");
    }
    return rv < 0 ? domain_store_failed(ctx) : 0;
}

int directory_create_check(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__DirectoryCreate *c = (const void *)m;
    int rv = domain_check_nonempty(c->parent, "Parent", e);
    return rv != 0 ? rv : domain_check_nonempty(c->name, "Name", e);
}

int directory_create_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectoryCreate *c = (const void *)m;
    Varasto__DirectoryCreated ev = VARASTO__DIRECTORY_CREATED__INIT;
    int rv;

    if ((rv = domain_need_dir(ctx, c->parent, "Parent")) != 0) {
        return rv;
    }
    rv = store_dir_insert(ctx->store, ctx->generated_id, ctx->time_ms, c->parent, c->name);
    if ((rv = sibling_write(ctx, rv, c->name)) != 0) {
        return rv;
    }
    ev.id = (char *)ctx->generated_id;
    ev.parent = c->parent;
    ev.name = c->name;
    return domain_emit(ctx, "directory.Created", &ev.base);
}

int directory_rename_check(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__DirectoryRename *c = (const void *)m;
    int rv = domain_check_nonempty(c->id, "Id", e);
    return rv != 0 ? rv : domain_check_nonempty(c->name, "Name", e);
}

int directory_rename_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectoryRename *c = (const void *)m;
    /* One statement: the unique index refuses a taken name, and no row
     * changed means no such directory. */
    int changed = store_dir_set_name(ctx->store, c->id, c->name);
    int rv = sibling_write(ctx, changed, c->name);

    if (rv != 0) {
        return rv;
    }
    if (changed == 0) {
        return err_set(&ctx->err, ERR_NOT_FOUND, "Id: directory '%s' not found", c->id);
    }
    return domain_emit(ctx, "directory.Renamed", m);
}

/* After a set of one column (@rv) of an entity checked to exist first. */
static int attribute_set(struct domain_ctx *ctx, const ProtobufCMessage *m, int rv,
                         const char *event)
{
    return rv < 0 ? domain_store_failed(ctx) : domain_emit(ctx, event, m);
}

int directory_change_description_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectoryChangeDescription *c = (const void *)m;
    int rv = domain_need_dir(ctx, c->id, "Id");
    if (rv != 0) {
        return rv;
    }
    return attribute_set(ctx, m, store_dir_set_description(ctx->store, c->id, c->description),
                         "directory.DescriptionChanged");
}

int directory_set_type_check(const ProtobufCMessage *m, struct err *e)
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

int directory_set_type_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectorySetType *c = (const void *)m;
    int rv = domain_need_dir(ctx, c->id, "Id");
    if (rv != 0) {
        return rv;
    }
    return attribute_set(ctx, m, store_dir_set_type(ctx->store, c->id, c->type),
                         "directory.TypeChanged");
}

int directory_change_sensitivity_check(const ProtobufCMessage *m, struct err *e)
{
    return domain_check_sensitivity(((const Varasto__DirectoryChangeSensitivity *)m)->sensitivity,
                                    e);
}

int directory_change_sensitivity_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectoryChangeSensitivity *c = (const void *)m;
    int rv = domain_need_dir(ctx, c->id, "Id");
    if (rv != 0) {
        return rv;
    }
    return attribute_set(ctx, m, store_dir_set_sensitivity(ctx->store, c->id, c->sensitivity),
                         "directory.SensitivityChanged");
}

/* Whether @target is @id or one of its descendants: walk up from @target
 * to the root. Returns 1, 0, or -1 with ctx->err set. */
static int is_within(struct domain_ctx *ctx, const char *target, const char *id)
{
    struct store_dir row;
    char cur[128];
    unsigned depth;
    int rv;

    util_copy(cur, sizeof cur, target);
    for (depth = 0; cur[0] != '\0' && depth < DOMAIN_MAX_TREE_DEPTH; depth++) {
        if (strcmp(cur, id) == 0) {
            return 1;
        }
        if ((rv = store_dir_get(ctx->store, cur, &row)) <= 0) {
            return rv < 0 ? (domain_store_failed(ctx), -1) : 0;
        }
        util_copy(cur, sizeof cur, row.parent);
    }
    return 0;
}

int directory_move_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectoryMove *c = (const void *)m;
    struct store_dir row;
    char name[256];
    int rv;

    if ((rv = domain_need_dir(ctx, c->id, "Id")) != 0 ||
        (rv = domain_need_dir(ctx, c->directory, "Directory")) != 0) {
        return rv;
    }
    if (strcmp(c->id, DOMAIN_ROOT_ID) == 0) {
        return err_set(&ctx->err, ERR_CONFLICT, "the root directory cannot be moved");
    }
    /* The new parent must not be the directory or one of its descendants. */
    if ((rv = is_within(ctx, c->directory, c->id)) < 0) {
        return ctx->err.code;
    }
    if (rv == 1) {
        return err_set(&ctx->err, ERR_CONFLICT,
                       "cannot move a directory into itself or its descendant");
    }
    if ((rv = store_dir_get(ctx->store, c->id, &row)) < 0) {
        return domain_store_failed(ctx);
    }
    util_copy(name, sizeof name, rv == 1 ? row.name : "");
    rv = sibling_write(ctx, store_dir_set_parent(ctx->store, c->id, c->directory), name);
    if (rv != 0) {
        return rv;
    }
    return domain_emit(ctx, "directory.Moved", m);
}

int directory_delete_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__DirectoryDelete *c = (const void *)m;
    int subdirs, colls;
    int rv;

    if ((rv = domain_need_dir(ctx, c->id, "Id")) != 0) {
        return rv;
    }
    if (strcmp(c->id, DOMAIN_ROOT_ID) == 0) {
        return err_set(&ctx->err, ERR_CONFLICT, "the root directory cannot be deleted");
    }
    subdirs = store_dir_has_subdirs(ctx->store, c->id);
    colls = subdirs == 0 ? store_dir_has_collections(ctx->store, c->id) : 0;
    if (subdirs < 0 || colls < 0) {
        return domain_store_failed(ctx);
    }
    if (subdirs || colls) {
        return err_set(&ctx->err, ERR_CONFLICT, "directory '%s' is not empty", c->id);
    }
    if (store_dir_delete(ctx->store, c->id) < 0) {
        return domain_store_failed(ctx);
    }
    return domain_emit(ctx, "directory.Deleted", m);
}

/* ---- collections ---- */

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

/* ---- API keys ---- */

int apikey_create_check(const ProtobufCMessage *m, struct err *e)
{
    return domain_check_nonempty(((const Varasto__ApikeyCreate *)m)->name, "Name", e);
}

int apikey_create_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__ApikeyCreate *c = (const void *)m;
    Varasto__ApikeyCreated ev = VARASTO__APIKEY_CREATED__INIT;
    int rv;

    if (ctx->token_hash == NULL) {
        return err_set(&ctx->err, ERR_BAD_REQUEST, "apikey.Create entry carries no token hash");
    }
    /* Asked first: a taken id must be a conflict even when the hash, which
     * the store checks first, is taken as well. */
    if ((rv = store_apikey_exists(ctx->store, ctx->generated_id)) != 0) {
        return rv < 0
                   ? domain_store_failed(ctx)
                   : err_set(&ctx->err, ERR_CONFLICT, "id '%s' already exists", ctx->generated_id);
    }
    rv = store_apikey_insert(ctx->store, ctx->generated_id, c->name, ctx->token_hash, ctx->time_ms);
    if (rv < 0) {
        return domain_store_failed(ctx);
    }
    ev.id = (char *)ctx->generated_id;
    ev.name = c->name;
    return domain_emit(ctx, "apikey.Created", &ev.base);
}

int apikey_remove_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__ApikeyRemove *c = (const void *)m;
    int rv = store_apikey_delete(ctx->store, c->id);
    if (rv < 0) {
        return domain_store_failed(ctx);
    }
    if (rv == 0) {
        return err_set(&ctx->err, ERR_NOT_FOUND, "Id: API key '%s' not found", c->id);
    }
    return domain_emit(ctx, "apikey.Removed", m);
}

/* ---- durable subscriptions ---- */

static int check_sub_name(const char *name, struct err *e)
{
    if (name[0] == '\0') {
        return err_set(e, ERR_BAD_REQUEST, "field 'Name': must not be empty");
    }
    return 0;
}

/* ERR_NOT_FOUND unless subscription @name exists. */
static int need_sub(struct domain_ctx *ctx, const char *name)
{
    int rv = store_sub_get(ctx->store, name, NULL);
    if (rv < 0) {
        return domain_store_failed(ctx);
    }
    if (rv == 0) {
        return err_set(&ctx->err, ERR_NOT_FOUND, "subscription '%s' not found", name);
    }
    return 0;
}

int subscription_create_check(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__SubscriptionCreate *c = (const void *)m;
    size_t i;
    if (check_sub_name(c->name, e) != 0) {
        return e->code;
    }
    if (c->n_types > TYPE_FILTER_MAX) {
        return err_set(e, ERR_BAD_REQUEST, "field 'Types': at most %d prefixes", TYPE_FILTER_MAX);
    }
    for (i = 0; i < c->n_types; i++) {
        if (c->types[i][0] == '\0' || strlen(c->types[i]) >= TYPE_FILTER_PREFIX ||
            strchr(c->types[i], ',')) {
            return err_set(e, ERR_BAD_REQUEST, "field 'Types[%zu]': 1 to 63 characters, no comma",
                           i);
        }
    }
    return 0;
}

int subscription_create_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__SubscriptionCreate *c = (const void *)m;
    struct buf types;
    size_t i;
    int rv;

    if ((rv = store_sub_get(ctx->store, c->name, NULL)) != 0) {
        return rv < 0
                   ? domain_store_failed(ctx)
                   : err_set(&ctx->err, ERR_CONFLICT, "subscription '%s' already exists", c->name);
    }
    /* Stored as the comma-separated list that type_filter_parse reads. */
    buf_init(&types);
    buf_append_str(&types, "");
    for (i = 0; i < c->n_types; i++) {
        if (i > 0) {
            buf_append_str(&types, ",");
        }
        buf_append_str(&types, c->types[i]);
    }
    rv = store_sub_insert(ctx->store, c->name, types.data, ctx->time_ms);
    buf_free(&types);
    if (rv < 0) {
        return domain_store_failed(ctx);
    }
    return domain_emit(ctx, "subscription.Created", m);
}

int subscription_ack_check(const ProtobufCMessage *m, struct err *e)
{
    return check_sub_name(((const Varasto__SubscriptionAck *)m)->name, e);
}

int subscription_ack_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__SubscriptionAck *c = (const void *)m;
    int rv = need_sub(ctx, c->name);
    if (rv != 0) {
        return rv;
    }
    if (c->seq > ctx->seq) {
        return err_set(&ctx->err, ERR_BAD_REQUEST, "field 'Seq': beyond the last event (%llu)",
                       (unsigned long long)ctx->seq);
    }
    /* never back; no event */
    return store_sub_ack(ctx->store, c->name, c->seq) < 0 ? domain_store_failed(ctx) : 0;
}

int subscription_delete_check(const ProtobufCMessage *m, struct err *e)
{
    return check_sub_name(((const Varasto__SubscriptionDelete *)m)->name, e);
}

int subscription_delete_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__SubscriptionDelete *c = (const void *)m;
    int rv = need_sub(ctx, c->name);
    if (rv != 0) {
        return rv;
    }
    if (store_sub_delete(ctx->store, c->name) < 0) {
        return domain_store_failed(ctx);
    }
    return domain_emit(ctx, "subscription.Deleted", m);
}

/* ---- cluster ---- */

int cluster_announce_check(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__ClusterAnnounce *c = (const void *)m;
    if (c->id == 0 || c->httpaddress[0] == '\0' || c->raftaddress[0] == '\0') {
        return err_set(e, ERR_BAD_REQUEST, "cluster.Announce needs Id and both addresses");
    }
    return 0;
}

int cluster_announce_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__ClusterAnnounce *c = (const void *)m;
    /* Where a member serves: node-level plumbing, not a domain event. */
    if (store_node_put(ctx->store, c->id, c->raftaddress, c->httpaddress) < 0) {
        return domain_store_failed(ctx);
    }
    return 0;
}

int cluster_record_node_added_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__ClusterAddNode *c = (const void *)m;
    if (store_node_put(ctx->store, c->id, c->raftaddress, c->httpaddress) < 0) {
        return domain_store_failed(ctx);
    }
    return domain_emit(ctx, "cluster.NodeAdded", m);
}

int cluster_record_node_removed_apply(struct domain_ctx *ctx, const ProtobufCMessage *m)
{
    const Varasto__ClusterRemoveNode *c = (const void *)m;
    if (store_node_delete(ctx->store, c->id) < 0) {
        return domain_store_failed(ctx);
    }
    return domain_emit(ctx, "cluster.NodeRemoved", m);
}
