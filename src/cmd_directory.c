/* directory.*: the directory tree. Names are unique among siblings (the
 * store's (parent, name) index says so), the root stays, and a move never
 * makes a cycle. */
#include <string.h>

#include "commands.pb-c.h"
#include "domain_internal.h"
#include "util.h"

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

/* Walk up from directory @from towards the root, at most DOMAIN_MAX_DEPTH
 * steps: 1 when it meets @stop (NULL: none) on the way, 0 when it reaches
 * the root, -1 with ctx->err set (409 when @from is deeper than
 * DOMAIN_MAX_DEPTH; @what names the field in the message). */
static int walk_up(struct domain_ctx *ctx, const char *from, const char *stop, const char *what)
{
    struct store_dir row;
    char cur[128];
    unsigned depth;
    int rv;

    util_copy(cur, sizeof cur, from);
    for (depth = 0; depth < DOMAIN_MAX_DEPTH; depth++) {
        if (stop != NULL && strcmp(cur, stop) == 0) {
            return 1;
        }
        if (strcmp(cur, DOMAIN_ROOT_ID) == 0) {
            return 0;
        }
        if ((rv = store_dir_get(ctx->store, cur, &row)) < 0) {
            domain_store_failed(ctx);
            return -1;
        }
        if (rv == 0 || row.parent[0] == '\0') {
            return 0;
        }
        util_copy(cur, sizeof cur, row.parent);
    }
    err_set(&ctx->err, ERR_CONFLICT, "%s: directories nest at most %d levels below the root", what,
            DOMAIN_MAX_DEPTH);
    return -1;
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
    if (walk_up(ctx, c->parent, NULL, "Parent") < 0) {
        return ctx->err.code;
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

/* After a set of one directory column (@rv), checked to exist first. */
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
    if ((rv = walk_up(ctx, c->directory, c->id, "Directory")) < 0) {
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
