/* GET /api_v2/cluster and GET /api_v2/nodes: the raft configuration joined
 * with the HTTP addresses the members announced through the log. */
#include <string.h>

#include "api.h"
#include "cluster.h"
#include "codec.h"
#include "config.h"
#include "fsm.h"
#include "store.h"
#include "util.h"

static const char *role_name(int role)
{
    switch (role) {
    case RAFT_VOTER:
        return "voter";
    case RAFT_STANDBY:
        return "standby";
    case RAFT_SPARE:
        return "spare";
    default:
        return "unknown";
    }
}

/* {"Id","RaftAddress","HttpAddress","Role"} without the closing brace. */
static void member_fields(struct api *api, const struct raft_server *srv, struct buf *out)
{
    char raft[CONFIG_ADDR_MAX], http[CONFIG_ADDR_MAX];
    buf_append_str(out, "{\"Id\":");
    buf_append_int(out, (long long)srv->id);
    buf_append_str(out, ",\"RaftAddress\":");
    codec_write_string(out, srv->address);
    buf_append_str(out, ",\"HttpAddress\":");
    if (store_node_addresses(api->store, srv->id, raft, http, sizeof http)) {
        codec_write_string(out, http);
    } else {
        buf_append_str(out, "null");
    }
    buf_append_str(out, ",\"Role\":\"");
    buf_append_str(out, role_name(srv->role));
    buf_append_str(out, "\"");
}

void api_nodes(struct api *api, h2o_req_t *req, char **params)
{
    const struct raft_configuration *conf = &api->cluster->raft.configuration;
    struct buf out;
    unsigned i;

    (void)params;
    buf_init(&out);
    buf_append_str(&out, "[");
    for (i = 0; i < conf->n; i++) {
        if (i > 0) {
            buf_append_str(&out, ",");
        }
        member_fields(api, &conf->servers[i], &out);
        buf_append_str(&out, "}");
    }
    buf_append_str(&out, "]");
    http_reply_json(req, 200, out.data, out.len);
    buf_free(&out);
}

void api_cluster(struct api *api, h2o_req_t *req, char **params)
{
    struct raft *r = &api->cluster->raft;
    const struct raft_configuration *conf = &r->configuration;
    int leader = cluster_is_leader(api->cluster);
    uint64_t leader_id = cluster_leader_id(api->cluster);
    struct buf out;
    unsigned i;

    (void)params;
    buf_init(&out);
    buf_append_str(&out, "{\"Leader\":");
    if (leader_id != 0) {
        buf_append_int(&out, (long long)leader_id);
    } else {
        buf_append_str(&out, "null");
    }
    buf_append_str(&out, ",\"Term\":");
    buf_append_int(&out, (long long)r->current_term);
    buf_append_str(&out, ",\"CommitIndex\":");
    buf_append_int(&out, (long long)r->commit_index);
    buf_append_str(&out, ",\"Members\":[");
    for (i = 0; i < conf->n; i++) {
        const struct raft_server *srv = &conf->servers[i];
        if (i > 0) {
            buf_append_str(&out, ",");
        }
        member_fields(api, srv, &out);
        /* Replication progress is known only to the leader. */
        if (leader && srv->id == r->id) {
            buf_append_str(&out, ",\"Reachable\":true,\"MatchIndex\":");
            buf_append_int(&out, (long long)raft_last_index(r));
        } else if (leader) {
            raft_index match = 0;
            buf_append_str(&out, ",\"Reachable\":");
            buf_append_str(&out, cluster_peer_reachable(api->cluster, srv->id) ? "true" : "false");
            buf_append_str(&out, ",\"MatchIndex\":");
            raft_match_index(r, srv->id, &match);
            buf_append_int(&out, (long long)match);
        } else {
            buf_append_str(&out, ",\"Reachable\":null,\"MatchIndex\":null");
        }
        buf_append_str(&out, "}");
    }
    buf_append_str(&out, "],\"Node\":{\"Id\":");
    buf_append_int(&out, (long long)api->config->id);
    buf_append_str(&out, ",\"Role\":\"");
    buf_append_str(&out, cluster_role(api->cluster));
    buf_append_str(&out, "\",\"AppliedIndex\":");
    buf_append_int(&out, (long long)api->fsm->applied_index);
    buf_append_str(&out, ",\"AppliedSeq\":");
    buf_append_int(&out, (long long)api->fsm->last_seq);
    buf_append_str(&out, "}}");
    http_reply_json(req, 200, out.data, out.len);
    buf_free(&out);
}
