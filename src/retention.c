#include "retention.h"

#include "config.h"
#include "log.h"
#include "store.h"

#define RETENTION_EVERY_EVENTS 256

void retention_init(struct retention *r, const struct config *config, struct store *store)
{
    r->config = config;
    r->store = store;
    r->pruned_at_seq = 0;
    r->oldest_seq = store_oldest_event(store);
}

void retention_restored(struct retention *r)
{
    r->oldest_seq = store_oldest_event(r->store);
}

int retention_pruned_after(const struct retention *r, uint64_t after)
{
    return r->oldest_seq > 1 && after + 1 < r->oldest_seq;
}

void retention_pass(struct retention *r, uint64_t last_seq)
{
    uint64_t keep = r->config->retain_events, upto, cursor;
    int n;

    if (keep == 0 || last_seq - r->pruned_at_seq < RETENTION_EVERY_EVENTS || last_seq <= keep) {
        return;
    }
    r->pruned_at_seq = last_seq;
    upto = last_seq - keep;
    if (r->config->retain_holds_subscriptions && store_min_subscription_cursor(r->store, &cursor) &&
        cursor < upto) {
        upto = cursor;
    }
    if (upto == 0 || upto < r->oldest_seq) {
        return;
    }
    n = store_prune_events(r->store, upto);
    if (n < 0) {
        log_warn("retention: %s", r->store->errmsg);
        return;
    }
    r->oldest_seq = store_oldest_event(r->store);
    if (n > 0) {
        log_debug("retention: pruned %d events, oldest kept %llu", n,
                  (unsigned long long)r->oldest_seq);
    }
}
