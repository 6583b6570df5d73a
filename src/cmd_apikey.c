/* apikey.*: API keys. The accepting node makes the token and puts only its
 * hash in the log entry; the token itself is never stored. */
#include <string.h>

#include "commands.pb-c.h"
#include "domain_internal.h"

/* The scope a key is created with ("write" when none is given). */
static const char *scope_of(const Varasto__ApikeyCreate *c)
{
    return c->scope != NULL && c->scope[0] != '\0' ? c->scope : "write";
}

int apikey_create_check(const ProtobufCMessage *m, struct err *e)
{
    const Varasto__ApikeyCreate *c = (const void *)m;
    const char *scope = scope_of(c);
    if (strcmp(scope, "read") != 0 && strcmp(scope, "write") != 0 && strcmp(scope, "admin") != 0) {
        return err_set(e, ERR_BAD_REQUEST, "Scope: read, write or admin");
    }
    return domain_check_nonempty(c->name, "Name", e);
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
    rv = store_apikey_insert(ctx->store, ctx->generated_id, c->name, scope_of(c), ctx->token_hash,
                             ctx->time_ms);
    if (rv < 0) {
        return domain_store_failed(ctx);
    }
    ev.id = (char *)ctx->generated_id;
    ev.name = c->name;
    ev.scope = (char *)scope_of(c);
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
