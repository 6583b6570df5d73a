#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.pb-c.h"
#include "entry.h"
#include "log.h"
#include "submit.h"
#include "util.h"

#define TOKEN_MIN_LEN 16
#define GENERATED_TOKEN_LEN 40

static int mkdir_p(const char *path)
{
    char tmp[CONFIG_PATH_MAX];
    char *p;
    snprintf(tmp, sizeof tmp, "%s", path);
    for (p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static int read_token(const char *path, char *out, size_t size, char *err, size_t err_size)
{
    FILE *f = fopen(path, "r");
    size_t n;
    if (f == NULL) {
        snprintf(err, err_size, "token file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fgets(out, (int)size, f) == NULL) {
        out[0] = '\0';
    }
    fclose(f);
    n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ')) {
        out[--n] = '\0';
    }
    if (n < TOKEN_MIN_LEN) {
        snprintf(err, err_size, "token file %s: the token must be at least %d characters", path,
                 TOKEN_MIN_LEN);
        return -1;
    }
    return 0;
}

/* The admin token: from --token-file, or generated once into the data dir. */
static int load_token(struct node *node, char *err, size_t err_size)
{
    char path[CONFIG_PATH_MAX + 16], tmp[CONFIG_PATH_MAX + 24];
    int fd, ok;

    if (node->config.token_file[0] != '\0') {
        return read_token(node->config.token_file, node->admin_token, sizeof node->admin_token,
                          err, err_size);
    }
    snprintf(path, sizeof path, "%s/admin-token", node->config.data_dir);
    if (access(path, F_OK) == 0) {
        return read_token(path, node->admin_token, sizeof node->admin_token, err, err_size);
    }
    util_random_id(node->admin_token, GENERATED_TOKEN_LEN);
    /* Written aside and renamed into place: the file never exists half
     * written, neither to a reader nor after a crash. */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ok = fd >= 0 && write(fd, node->admin_token, GENERATED_TOKEN_LEN) == GENERATED_TOKEN_LEN &&
         write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0) {
        ok = 0;
    }
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, err_size, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    log_info("generated an admin token into %s", path);
    return 0;
}

static const char *bearer(h2o_req_t *req, char *value, size_t size)
{
    if (http_header(req, "authorization", value, size) != 1 ||
        strncasecmp(value, "Bearer ", 7) != 0) {
        return NULL;
    }
    return value + 7;
}

int node_is_admin(struct node *node, h2o_req_t *req)
{
    char value[512];
    const char *token = bearer(req, value, sizeof value);
    return token != NULL && util_secure_streq(token, node->admin_token);
}

int node_authorized(struct node *node, h2o_req_t *req)
{
    char value[512];
    const char *token = bearer(req, value, sizeof value);
    uint8_t hash[32];

    if (token == NULL) {
        return 0;
    }
    if (util_secure_streq(token, node->admin_token)) {
        return 1;
    }
    util_sha256(token, strlen(token), hash);
    return store_apikey_valid(&node->store, hash);
}

static void on_commit(void *data, const struct domain_event *events, unsigned n,
                      uint64_t last_seq)
{
    struct node *node = data;
    push_publish(&node->push, events, n, last_seq);
    http_seq_applied(&node->http, last_seq);
    submit_result_applied(node, &node->fsm.result);
    submit_applied(node, node->fsm.applied_index);
    if (node->submit_parked != NULL) {
        submit_retry_parked(node);
    }
}

static void on_restore(void *data, uint64_t last_seq)
{
    struct node *node = data;
    node->oldest_seq = store_oldest_event(&node->store);
    push_reset(&node->push, last_seq);
    http_seq_applied(&node->http, last_seq);
    submit_applied(node, node->fsm.applied_index);
}

/* ---- announcing this node's addresses through the log ---- */

#define ANNOUNCE_INTERVAL_MS 100

static void announce_done(void *data, const struct submit_result *r)
{
    struct node *node = data;
    node->announcing = 0;
    if (r->status != 200) {
        log_debug("announce: %d %.*s", r->status, (int)r->len, r->body);
    } else {
        log_info("announced HTTP address %s to the cluster", node->config.http_advertise);
    }
}

static void announce_tick(uv_timer_t *t)
{
    struct node *node = t->data;
    Varasto__ClusterAnnounce msg = VARASTO__CLUSTER_ANNOUNCE__INIT;
    char raft[CONFIG_ADDR_MAX], http[CONFIG_ADDR_MAX];

    if (node->submit_parked != NULL) {
        submit_retry_parked(node);
    }
    if (node->announcing || node->stopping || cluster_leader_id(&node->cluster) == 0 ||
        !cluster_is_member(&node->cluster, node->config.id)) {
        return;
    }
    if (store_node_addresses(&node->store, node->config.id, raft, http, sizeof http) &&
        strcmp(raft, node->config.raft) == 0 && strcmp(http, node->config.http_advertise) == 0) {
        return;
    }
    msg.id = node->config.id;
    msg.raftaddress = node->config.raft;
    msg.httpaddress = node->config.http_advertise;
    if (submit_message(node, "cluster.Announce", &msg.base, announce_done, node) == 0) {
        node->announcing = 1;
    }
}

/* ---- --join: ask a member to add this node ---- */

#define JOIN_RETRY_MS 1000

static void join_tick(uv_timer_t *t);

static void join_done(void *data, const struct forward_reply *reply)
{
    struct node *node = data;
    if (reply->ok && reply->status == 200) {
        log_info("joined the cluster through %s", node->config.join);
        uv_timer_stop(&node->join);
        return;
    }
    if (reply->ok && (reply->status == 400 || reply->status == 401 || reply->status == 409)) {
        log_error("joining through %s refused: %ld %.*s", node->config.join, reply->status,
                  (int)reply->len, reply->body);
        uv_timer_stop(&node->join);
        return;
    }
    log_warn("joining through %s: %s; retrying", node->config.join,
             reply->ok ? "no leader yet" : reply->error);
    uv_timer_start(&node->join, join_tick, JOIN_RETRY_MS, 0);
}

static void join_tick(uv_timer_t *t)
{
    struct node *node = t->data;
    char body[512];
    const char *target = node->config.join;
    char host[CONFIG_PATH_MAX];
    size_t len;
    int n;

    if (node->stopping) {
        return;
    }
    if (strncmp(target, "http://", 7) == 0) {
        target += 7;
    }
    util_copy(host, sizeof host, target);
    len = strlen(host);
    while (len > 0 && host[len - 1] == '/') {
        host[--len] = '\0';
    }
    n = snprintf(body, sizeof body,
                 "{\"Id\":%llu,\"RaftAddress\":\"%s\",\"HttpAddress\":\"%s\"}",
                 (unsigned long long)node->config.id, node->config.raft,
                 node->config.http_advertise);
    if (forward_post(&node->forward, host, "/command/cluster.AddNode", body, (size_t)n,
                     node->config.command_timeout_ms + 30000, join_done, node) != 0) {
        uv_timer_start(&node->join, join_tick, JOIN_RETRY_MS, 0);
    }
}

/* ---- retention (--retain-events) ---- */

#define RETENTION_EVERY_EVENTS 256

/* Prune events older than the last N, but never past a durable
 * subscription's cursor. Node-local: it changes what this node can replay,
 * not the log, and every Seq stays the same event everywhere. */
static void retention_pass(struct node *node)
{
    uint64_t keep = node->config.retain_events;
    uint64_t last = node->fsm.last_seq, upto, cursor;
    int n;

    if (keep == 0 || last - node->pruned_at_seq < RETENTION_EVERY_EVENTS || last <= keep) {
        return;
    }
    node->pruned_at_seq = last;
    upto = last - keep;
    if (node->config.retain_holds_subscriptions &&
        store_min_subscription_cursor(&node->store, &cursor) && cursor < upto) {
        upto = cursor;
    }
    if (upto == 0 || upto < node->oldest_seq) {
        return;
    }
    n = store_prune_events(&node->store, upto);
    if (n < 0) {
        log_warn("retention: %s", node->store.errmsg);
        return;
    }
    node->oldest_seq = store_oldest_event(&node->store);
    if (n > 0) {
        log_debug("retention: pruned %d events, oldest kept %llu", n,
                  (unsigned long long)node->oldest_seq);
    }
}

/* ---- waking stream subscribers in slices ---- */

static void wake_idle_cb(uv_idle_t *h)
{
    struct node *node = h->data;
    if (push_wake_some(&node->push, PUSH_WAKE_SLICE) == 0) {
        uv_idle_stop(h);
    }
}

static void on_push_backlog(void *data)
{
    struct node *node = data;
    uv_idle_start(&node->wake_idle, wake_idle_cb);
}

#define CHECKPOINT_WAL_PAGES 512  /* 2 MiB of WAL at 4 KiB pages */
#define WAL_CATCH_UP_PAGES 8192   /* 32 MiB */

static void checkpoint_work(uv_work_t *w)
{
    struct node *node = w->data;
    if (store_reader_checkpoint(&node->store) != 0) {
        log_warn("%s", node->store.reader_errmsg);
    }
}

static void checkpoint_done(uv_work_t *w, int status)
{
    struct node *node = w->data;
    (void)status;
    node->fsm.reader_busy = 0;
    node->checkpointing = 0;
    /* Under a steady write load the worker never catches the writer: the
     * WAL restarts only when every frame is copied back at the start of a
     * write, and it would grow without bound. Past WAL_CATCH_UP_PAGES the
     * loop copies the few frames written during the worker's checkpoint
     * itself, so the next write restarts the WAL (and the file is cut back
     * to the journal size limit). */
    if (node->store.wal_pages >= WAL_CATCH_UP_PAGES && !node->fsm.in_tx) {
        store_checkpoint_now(&node->store);
    }
    if (node->raft_closed) {
        uv_stop(&node->loop);
    }
}

/* The read model commits at most every COMMIT_INTERVAL_MS (or
 * COMMIT_ENTRIES entries): a commit writes every page the entries touched to
 * the WAL, and under load most of them are the same pages again. Reads see
 * applied entries at once (they share the writer's connection); durability
 * is the raft log's, and a restart re-applies what the database lacks. */
#define COMMIT_INTERVAL_MS 10
#define COMMIT_ENTRIES 2048

static void on_commit_due(uv_timer_t *t)
{
    struct node *node = t->data;
    fsm_flush(&node->fsm);
}

static void commit_when_due(struct node *node)
{
    struct fsm *f = &node->fsm;
    if (!f->in_tx) {
        return;
    }
    if (f->tx_entries >= COMMIT_ENTRIES || util_mono_ms() - f->tx_began_ms >= COMMIT_INTERVAL_MS ||
        node->stopping) {
        uv_timer_stop(&node->commit);
        fsm_flush(f);
    } else if (!uv_is_active((uv_handle_t *)&node->commit)) {
        uv_timer_start(&node->commit, on_commit_due, COMMIT_INTERVAL_MS, 0);
    }
}

/* After each loop iteration's I/O: end the iteration's shared read
 * transaction, apply what raft committed in it, commit the read model when
 * due, and copy a grown WAL back into the database off the loop thread (it
 * fsyncs). */
static void on_check(uv_check_t *h)
{
    struct node *node = h->data;
    uint64_t applied;
    store_read_end(&node->store);
    fsm_apply_pending(&node->fsm);
    commit_when_due(node);
    cluster_after_iteration(&node->cluster);
    applied = raft_last_applied(&node->cluster.raft);
    submit_flush(node);
    cluster_barrier_flush(&node->cluster);
    http_flush(&node->http);
    retention_pass(node);
    if (applied != node->seen_applied) {
        /* barriers and configuration entries advance raft's applied index
         * without an FSM apply: wake reads waiting on a read index */
        node->seen_applied = applied;
        http_seq_applied(&node->http, node->fsm.last_seq);
    }
    if (node->store.wal_pages >= CHECKPOINT_WAL_PAGES && !node->fsm.reader_busy &&
        !node->stopping) {
        node->fsm.reader_busy = 1;
        node->checkpointing = 1;
        node->store.wal_pages = 0;
        node->checkpoint.data = node;
        uv_queue_work(&node->loop, &node->checkpoint, checkpoint_work, checkpoint_done);
    }
}

static void cluster_closed(struct cluster *c)
{
    struct node *node = (struct node *)((char *)c - offsetof(struct node, cluster));
    log_info("raft closed");
    uv_check_stop(&node->flush);
    uv_timer_stop(&node->commit);
    fsm_flush(&node->fsm);
    node->raft_closed = 1;
    if (!node->checkpointing) {
        uv_stop(&node->loop);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct node *node = h->data;
    if (node->stopping) {
        return;
    }
    node->stopping = 1;
    log_info("received signal %d, stopping", signum);
    uv_signal_stop(&node->sigint);
    uv_signal_stop(&node->sigterm);
    uv_timer_stop(&node->announce);
    uv_timer_stop(&node->join);
    uv_idle_stop(&node->wake_idle);
    http_stop(&node->http);
    submit_abort_all(node);
    forward_close(&node->forward);
    cluster_close(&node->cluster, cluster_closed);
}

int node_run(const struct config *config)
{
    static struct node node; /* one per process; reachable for leak checks */
    char err[512];
    char path[CONFIG_PATH_MAX + 32];

    memset(&node, 0, sizeof node);
    node.config = *config;
    log_init(config->id, (enum log_level)config->log_level);
    if (mkdir_p(config->data_dir) != 0 || access(config->data_dir, R_OK | W_OK | X_OK) != 0) {
        fprintf(stderr, "varastod: data dir %s: %s\n", config->data_dir, strerror(errno));
        return 1;
    }
    if (load_token(&node, err, sizeof err) != 0) {
        fprintf(stderr, "varastod: %s\n", err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/readmodel.db", config->data_dir);
    store_library_init();
    if (store_open(&node.store, path) != 0) {
        fprintf(stderr, "varastod: %s\n", node.store.errmsg);
        return 1;
    }
    uv_loop_init(&node.loop);
    fsm_init(&node.fsm, &node.store);
    fsm_defer_apply(&node.fsm);
    node.fsm.observer.data = &node;
    node.fsm.observer.on_commit = on_commit;
    node.fsm.observer.on_restore = on_restore;
    node.fsm.group_commit = 1;
    uv_timer_init(&node.loop, &node.commit);
    node.commit.data = &node;
    uv_check_init(&node.loop, &node.flush);
    node.flush.data = &node;
    uv_check_start(&node.flush, on_check);
    push_init(&node.push, &node.store, node.fsm.last_seq);
    node.oldest_seq = store_oldest_event(&node.store);
    uv_idle_init(&node.loop, &node.wake_idle);
    node.wake_idle.data = &node;
    node.push.on_backlog = on_push_backlog;
    node.push.on_backlog_data = &node;
    node.pruned_at_seq = 0;
    if (http_start(&node.http, &node, &node.loop, config->http, err, sizeof err) != 0) {
        fprintf(stderr, "varastod: %s\n", err);
        store_close(&node.store);
        return 1;
    }
    if (cluster_start(&node.cluster, &node.loop, &node.config, &node.fsm, err, sizeof err) != 0) {
        fprintf(stderr, "varastod: %s\n", err);
        store_close(&node.store);
        return 1;
    }
    if (forward_init(&node.forward, &node.loop, node.admin_token) != 0) {
        fprintf(stderr, "varastod: cannot initialise libcurl\n");
        store_close(&node.store);
        return 1;
    }
    uv_timer_init(&node.loop, &node.join);
    node.join.data = &node;
    if (config->join[0] != '\0' && node.cluster.pristine) {
        log_info("asking %s to add this node", config->join);
        uv_timer_start(&node.join, join_tick, 0, 0);
    }
    uv_timer_init(&node.loop, &node.announce);
    node.announce.data = &node;
    uv_timer_start(&node.announce, announce_tick, 0, ANNOUNCE_INTERVAL_MS);
    uv_signal_init(&node.loop, &node.sigint);
    uv_signal_init(&node.loop, &node.sigterm);
    node.sigint.data = node.sigterm.data = &node;
    uv_signal_start(&node.sigint, on_signal, SIGINT);
    uv_signal_start(&node.sigterm, on_signal, SIGTERM);
    log_info("node %llu serving HTTP on %s (announced as %s), raft on %s, data in %s, "
             "applied index %llu seq %llu",
             (unsigned long long)config->id, config->http, config->http_advertise, config->raft,
             config->data_dir,
             (unsigned long long)node.fsm.applied_index, (unsigned long long)node.fsm.last_seq);

    uv_run(&node.loop, UV_RUN_DEFAULT);

    cluster_release(&node.cluster);
    push_close(&node.push);
    fsm_close(&node.fsm);
    store_close(&node.store);
    log_info("stopped");
    return 0;
}
