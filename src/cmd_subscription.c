/* subscription.*: durable subscriptions, each a name, a type filter and the
 * cursor its consumer has acked. */
#include <string.h>

#include "commands.pb-c.h"
#include "domain_internal.h"
#include "type_filter.h"
#include "util.h"

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
    rv = buf_append_str(&types, "");
    for (i = 0; rv == 0 && i < c->n_types; i++) {
        if (i > 0) {
            rv = buf_append_str(&types, ",");
        }
        rv = rv != 0 ? rv : buf_append_str(&types, c->types[i]);
    }
    if (rv != 0) {
        buf_free(&types);
        return err_set(&ctx->err, ERR_INTERNAL, "out of memory");
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
