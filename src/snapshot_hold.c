#include "snapshot_hold.h"

#include "log.h"
#include "util.h"

void snapshot_hold_drop(struct snapshot_hold *h)
{
    if (h->holding) {
        raft_free(h->msg.install_snapshot.data.base);
        raft_configuration_close(&h->msg.install_snapshot.conf);
        h->holding = 0;
    }
}

int snapshot_hold_take(struct snapshot_hold *h, const struct raft_message *msg, int taking,
                       int ignored)
{
    if (msg->type != RAFT_INSTALL_SNAPSHOT || !taking || ignored) {
        return 0;
    }
    snapshot_hold_drop(h);
    h->msg = *msg;
    util_copy(h->address, sizeof h->address, msg->server_address);
    h->msg.server_address = h->address;
    h->holding = 1;
    log_debug("holding an InstallSnapshot at index %llu from %llu until our snapshot is written",
              (unsigned long long)msg->install_snapshot.last_index,
              (unsigned long long)msg->server_id);
    return 1;
}

int snapshot_hold_release(struct snapshot_hold *h, int taking, struct raft_message *out)
{
    if (!h->holding || taking) {
        return 0;
    }
    *out = h->msg;
    h->holding = 0;
    return 1;
}
