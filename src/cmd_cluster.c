/* cluster.*: where members serve, and completed membership changes.
 * Membership itself is raft's; these only record it in the read model. */
#include "commands.pb-c.h"
#include "domain_internal.h"

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
