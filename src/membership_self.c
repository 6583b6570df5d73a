/* This node's own place in the cluster: announcing its addresses through
 * the log, and --join. Part of the membership module (membership.h). */
#include "membership_self.h"

#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "commands.pb-c.h"
#include "forward.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define ANNOUNCE_INTERVAL_MS 100
#define JOIN_RETRY_MS 1000

/* ---- announcing this node's addresses through the log ---- */

static void announce_done(void *data, const struct submit_result *r)
{
    struct membership *m = data;
    m->announcing = 0;
    if (r->status != 200) {
        log_debug("announce: %d %.*s", r->status, (int)r->len, r->body);
    } else {
        log_info("announced HTTP address %s to the cluster", m->config->http_advertise);
    }
}

static void announce_tick(uv_timer_t *t)
{
    struct membership *m = t->data;
    const struct config *config = m->config;
    Varasto__ClusterAnnounce msg = VARASTO__CLUSTER_ANNOUNCE__INIT;
    char raft[CONFIG_ADDR_MAX], http[CONFIG_ADDR_MAX];

    if (m->announcing || m->stopping || cluster_leader_id(m->cluster) == 0 ||
        !cluster_is_member(m->cluster, config->id)) {
        return;
    }
    if (store_node_addresses(m->store, config->id, raft, http, sizeof http) &&
        strcmp(raft, config->raft) == 0 && strcmp(http, config->http_advertise) == 0) {
        return;
    }
    msg.id = config->id;
    msg.raftaddress = (char *)config->raft;
    msg.httpaddress = (char *)config->http_advertise;
    if (submit_message(m->submit, "cluster.Announce", &msg.base, announce_done, m) == 0) {
        m->announcing = 1;
    }
}

/* ---- --join: ask a member to add this node ---- */

static void join_tick(uv_timer_t *t);

static void join_done(void *data, const struct forward_reply *reply)
{
    struct membership *m = data;
    if (m->stopping) {
        return;
    }
    if (reply->ok && reply->status == 200) {
        log_info("joined the cluster through %s", m->config->join);
        return;
    }
    if (reply->ok && (reply->status == 400 || reply->status == 401 || reply->status == 409)) {
        log_error("joining through %s refused: %ld %.*s", m->config->join, reply->status,
                  (int)reply->len, reply->body);
        return;
    }
    log_warn("joining through %s: %s; retrying", m->config->join,
             reply->ok ? "no leader yet" : reply->error);
    uv_timer_start(&m->join, join_tick, JOIN_RETRY_MS, 0);
}

static void join_tick(uv_timer_t *t)
{
    struct membership *m = t->data;
    const struct config *config = m->config;
    const char *target = config->join;
    char body[512], host[CONFIG_PATH_MAX];
    size_t len;
    int n;

    if (m->stopping) {
        return;
    }
    /* the scheme is this node's own (forward.h): all serve alike */
    if (strncmp(target, "http://", 7) == 0) {
        target += 7;
    } else if (strncmp(target, "https://", 8) == 0) {
        target += 8;
    }
    util_copy(host, sizeof host, target);
    len = strlen(host);
    while (len > 0 && host[len - 1] == '/') {
        host[--len] = '\0';
    }
    n = snprintf(body, sizeof body, "{\"Id\":%llu,\"RaftAddress\":\"%s\",\"HttpAddress\":\"%s\"}",
                 (unsigned long long)config->id, config->raft, config->http_advertise);
    if (forward_post(m->forward, host, "/command/cluster.AddNode", body, (size_t)n,
                     config->command_timeout_ms + 30000, join_done, m) != 0) {
        uv_timer_start(&m->join, join_tick, JOIN_RETRY_MS, 0);
    }
}

void membership_self_start(struct membership *m, uv_loop_t *loop)
{
    const struct config *config = m->config;
    uv_timer_init(loop, &m->join);
    m->join.data = m;
    if (config->join[0] != '\0' && !cluster_is_member(m->cluster, config->id)) {
        log_info("asking %s to add this node", config->join);
        uv_timer_start(&m->join, join_tick, 0, 0);
    }
    uv_timer_init(loop, &m->announce);
    m->announce.data = m;
    uv_timer_start(&m->announce, announce_tick, 0, ANNOUNCE_INTERVAL_MS);
}

void membership_self_close(struct membership *m)
{
    uv_close((uv_handle_t *)&m->announce, NULL);
    uv_close((uv_handle_t *)&m->join, NULL);
}
