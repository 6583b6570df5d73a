#include "domain_internal.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "commands.pb-c.h"
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
