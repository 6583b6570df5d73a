#include "node.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "checkpoint.h"
#include "cluster.h"
#include "config.h"
#include "consistency.h"
#include "forward.h"
#include "fsm.h"
#include "http.h"
#include "log.h"
#include "membership.h"
#include "push.h"
#include "retention.h"
#include "route.h"
#include "store.h"
#include "submit.h"
#include "tls.h"
#include "util.h"

/* The read model commits at most every COMMIT_INTERVAL_MS (or
 * COMMIT_ENTRIES entries): a commit writes every page the entries touched to
 * the WAL, and under load most of them are the same pages again. Reads see
 * applied entries at once (they share the writer's connection); durability
 * is the raft log's, and a restart re-applies what the database lacks. */
#define COMMIT_INTERVAL_MS 10
#define COMMIT_ENTRIES 2048
/* In raft/: the identity of the log (see raft_log_identity). */
#define RAFT_LOG_ID_FILE "varasto-log-id"

struct node {
    struct config config;
    uv_loop_t loop;
    struct store store;
    struct fsm fsm;
    struct cluster cluster;
    struct push push;
    struct auth auth;
    struct route route;
    struct forward forward;
    struct forward_tls forward_tls;
    struct submit submit;
    struct consistency reads;
    struct membership membership;
    struct retention retention;
    struct checkpoint checkpoint;
    struct api api;
    struct http_server http;
    SSL_CTX *client_tls; /* --tls-*: HTTPS for clients; NULL: plain HTTP/1.1 */
    SSL_CTX *peer_tls;   /* --peer-tls-*: mutual TLS between nodes */
    uv_signal_t sigint, sigterm;
    uv_check_t iteration;  /* the per-iteration work, after I/O */
    uv_timer_t commit;     /* commits the read model's open transaction when due */
    uv_idle_t wake_idle;   /* wakes stream subscribers in slices */
    uv_timer_t stop_guard; /* reports a stop that does not end */
    int raft_closed;
    int checkpoint_stopped;
    int stopping;
    int exit_code;
};

/* ---- applying ---- */

static void on_commit(void *data, const struct domain_event *events, unsigned n, uint64_t last_seq)
{
    struct node *node = data;
    push_publish(&node->push, events, n, last_seq);
    consistency_applied(&node->reads);
    submit_applied(&node->submit, &node->fsm.result);
}

static void on_restore(void *data, uint64_t last_seq)
{
    struct node *node = data;
    retention_restored(&node->retention);
    push_reset(&node->push, last_seq);
    consistency_applied(&node->reads);
    submit_restored(&node->submit, node->fsm.applied_index);
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

/* ---- committing the read model ---- */

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
 * due, send what the iteration gathered (appends, forwards, barriers,
 * read-index requests), prune, and copy a grown WAL back into the database
 * off the loop thread. */
static void on_iteration(uv_check_t *h)
{
    struct node *node = h->data;
    store_read_end(&node->store);
    fsm_apply_pending(&node->fsm);
    commit_when_due(node);
    cluster_after_iteration(&node->cluster);
    if (fsm_failed(&node->fsm)) {
        /* a leader that cannot apply answers no command: another voter
         * takes the cluster's writes meanwhile */
        cluster_hand_over(&node->cluster, "this node cannot write its read model");
    }
    submit_flush(&node->submit);
    cluster_barrier_flush(&node->cluster);
    consistency_flush(&node->reads);
    retention_pass(&node->retention, node->fsm.last_seq);
    /* barriers and configuration entries advance raft's applied index
     * without an FSM apply, and an entry counts for reads only once all its
     * commands are applied (fsm_applied_raft_index): wake reads waiting on
     * a read index */
    consistency_applied(&node->reads);
    if (!node->stopping) {
        checkpoint_maybe_start(&node->checkpoint);
    }
}

/* ---- stopping ----
 * In order: stop taking work (listener, timers, streams), answer what
 * waits (reads, commands, forwards), close raft (it drains its appends),
 * then close the node's own handles and end the remaining connections. The
 * loop then runs out of work by itself; a guard timer reports (and stops)
 * a stop that leaves a handle open. */

#define STOP_GUARD_MS 10000

static void walk_open(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h) && (arg == NULL || uv_is_active(h))) {
        log_error("handle left %s: %s", arg == NULL ? "open at exit" : "active",
                  uv_handle_type_name(uv_handle_get_type(h)));
    }
}

static void on_stop_guard(uv_timer_t *t)
{
    struct node *node = t->data;
    log_error("still not stopped %d ms after raft closed; stopping the loop", STOP_GUARD_MS);
    node->exit_code = 1;
    uv_walk(&node->loop, walk_open, node);
    uv_stop(&node->loop);
}

static void close_handles(struct node *node)
{
    uv_close((uv_handle_t *)&node->sigint, NULL);
    uv_close((uv_handle_t *)&node->sigterm, NULL);
    uv_close((uv_handle_t *)&node->iteration, NULL);
    uv_close((uv_handle_t *)&node->commit, NULL);
    uv_close((uv_handle_t *)&node->wake_idle, NULL);
    submit_close(&node->submit);
    http_shutdown(&node->http, NULL);
    /* only reports a stop that never ends: it keeps nothing alive */
    uv_timer_init(&node->loop, &node->stop_guard);
    node->stop_guard.data = node;
    uv_timer_start(&node->stop_guard, on_stop_guard, STOP_GUARD_MS, 0);
    uv_unref((uv_handle_t *)&node->stop_guard);
}

/* The last steps, once raft is closed and no checkpoint runs. */
static void maybe_stopped(struct node *node)
{
    if (node->raft_closed && node->checkpoint_stopped) {
        close_handles(node);
    }
}

static void checkpoint_stopped(struct checkpoint *c)
{
    struct node *node = (struct node *)((char *)c - offsetof(struct node, checkpoint));
    node->checkpoint_stopped = 1;
    maybe_stopped(node);
}

static void cluster_closed(struct cluster *c)
{
    struct node *node = (struct node *)((char *)c - offsetof(struct node, cluster));
    log_info("raft closed");
    uv_check_stop(&node->iteration);
    uv_timer_stop(&node->commit);
    fsm_flush(&node->fsm);
    node->raft_closed = 1;
    maybe_stopped(node);
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
    uv_idle_stop(&node->wake_idle);
    http_stop_listening(&node->http);
    http_request_shutdown(&node->http);
    push_end_all(&node->push);
    consistency_close(&node->reads);
    membership_close(&node->membership);
    submit_abort_all(&node->submit);
    forward_close(&node->forward);
    checkpoint_stop(&node->checkpoint, checkpoint_stopped);
    cluster_close(&node->cluster, cluster_closed);
}

/* Close what is left after the loop has stopped (h2o's own timers), run
 * the closes, and check that nothing is left open. */
static int close_loop(struct node *node)
{
    int rv;
    if (!uv_is_closing((uv_handle_t *)&node->stop_guard)) {
        uv_close((uv_handle_t *)&node->stop_guard, NULL);
    }
    /* after the guard fired, something never closes: do not wait for it */
    uv_run(&node->loop, node->exit_code == 0 ? UV_RUN_DEFAULT : UV_RUN_NOWAIT);
    rv = uv_loop_close(&node->loop);
    if (rv != 0) {
        uv_walk(&node->loop, walk_open, NULL);
        log_error("the loop did not close: %s", uv_strerror(rv));
        return -1;
    }
    return 0;
}

/* ---- starting ---- */

/* Move the read model files at @path aside (suffix @why and the time),
 * keeping them for inspection; the name they went to is in @aside. */
static int move_aside(const char *path, const char *why, char *aside, size_t size)
{
    static const char *const sides[] = {"", "-wal", "-shm"};
    long long ms = (long long)util_now_ms();
    size_t i;
    snprintf(aside, size, "%s.%s-%lld", path, why, ms);
    for (i = 0; i < sizeof sides / sizeof sides[0]; i++) {
        char from[CONFIG_PATH_MAX + 48], to[CONFIG_PATH_MAX + 96];
        snprintf(from, sizeof from, "%s%s", path, sides[i]);
        snprintf(to, sizeof to, "%s%s", aside, sides[i]);
        if (rename(from, to) != 0 && errno != ENOENT) {
            return -1;
        }
    }
    return 0;
}

/* The identity of this node's raft log: a random number in a file inside
 * raft/ (raft_uv ignores files it does not know), so that it goes wherever
 * the log goes; made together with the log, and made again if it is
 * missing or unreadable (@made). Returns 0, or -1 after one line on
 * stderr. */
static int raft_log_identity(const struct config *config, uint64_t *id, int *made)
{
    char dir[CONFIG_PATH_MAX + 8], path[CONFIG_PATH_MAX + 32], text[32];
    unsigned long long v = 0;
    FILE *f;
    int n;

    snprintf(dir, sizeof dir, "%s/raft", config->data_dir);
    snprintf(path, sizeof path, "%s/" RAFT_LOG_ID_FILE, dir);
    *made = 0;
    f = fopen(path, "r");
    if (f != NULL) {
        n = fscanf(f, "%20llu", &v);
        fclose(f);
        if (n == 1 && v != 0) {
            *id = v;
            return 0;
        }
    } else if (errno != ENOENT) {
        fprintf(stderr, "varastod: %s: %s\n", path, strerror(errno));
        return -1;
    }
    *id = util_random_u64();
    n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)*id);
    if (util_mkdir_p(dir) != 0 || util_write_file_durably(dir, path, text, (size_t)n) != 0) {
        fprintf(stderr, "varastod: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    *made = 1;
    return 0;
}

/* Open the read model. It is derived from raft's log and snapshot, and
 * records the identity of the log it was built from: one that is no sound
 * database, or that holds entries and records another log than this
 * node's (raft/ was replaced, removed, or copied from elsewhere) is never
 * trusted: it is moved aside and rebuilt from the log and the snapshot
 * (SPEC 1.1). Returns 0, or -1 after one line on stderr. */
static int open_read_model(struct node *node, const char *path)
{
    char why[CONFIG_PATH_MAX + 128], aside[CONFIG_PATH_MAX + 64];
    uint64_t index = 0, seq = 0, log_id, recorded = 0;
    int pristine = cluster_dir_pristine(&node->config), made;

    if (raft_log_identity(&node->config, &log_id, &made) != 0) {
        return -1;
    }
    if (store_open(&node->store, path) == 0) {
        store_meta_get_applied(&node->store, &index, &seq);
        recorded = store_recorded_log_id(&node->store);
        if (index == 0 || recorded == log_id) {
            goto adopt;
        }
        store_close(&node->store);
        if (pristine) {
            snprintf(why, sizeof why,
                     "holds entries up to index %llu but the raft log is empty (it belongs to "
                     "another log)",
                     (unsigned long long)index);
        } else if (made) {
            snprintf(why, sizeof why,
                     "holds entries up to index %llu but raft/%s was missing (the log cannot be "
                     "confirmed as the one it was built from)",
                     (unsigned long long)index, RAFT_LOG_ID_FILE);
        } else {
            snprintf(why, sizeof why,
                     "was built from another raft log (log %llu; this node's is %llu)",
                     (unsigned long long)recorded, (unsigned long long)log_id);
        }
    } else if (node->store.corrupt) {
        snprintf(why, sizeof why, "is not a sound database (%s)", node->store.errmsg);
    } else {
        fprintf(stderr, "varastod: %s\n", node->store.errmsg);
        return -1;
    }
    if (move_aside(path, index != 0 ? "foreign" : "corrupt", aside, sizeof aside) != 0) {
        fprintf(stderr, "varastod: read model %s %s, and it cannot be moved aside: %s\n", path, why,
                strerror(errno));
        return -1;
    }
    log_warn("read model %s %s; moved to %s, rebuilding it from the raft log and snapshot", path,
             why, aside);
    if (store_open(&node->store, path) != 0) {
        fprintf(stderr, "varastod: %s\n", node->store.errmsg);
        return -1;
    }
    recorded = 0;
adopt:
    node->store.log_id = log_id;
    if (recorded != log_id && store_set_log_id(&node->store, log_id) != 0) {
        fprintf(stderr, "varastod: read model %s: %s\n", path, node->store.errmsg);
        store_close(&node->store);
        return -1;
    }
    return 0;
}

static int fail(struct node *node, const char *message)
{
    if (message != NULL) {
        fprintf(stderr, "varastod: %s\n", message);
    }
    store_close(&node->store);
    return 1;
}

/* The TLS contexts the flags ask for (SPEC 7.1, 7.2), and how this node
 * reaches the others' HTTP port: https when clients get TLS, with the peer
 * certificate as client certificate and the peer CA to verify theirs when
 * peer TLS is on (decisions.md). Prints why and returns -1 on a bad file. */
static int open_tls(struct node *node)
{
    const struct config *c = &node->config;
    char err[CONFIG_PATH_MAX + 128];
    if (c->peer_tls_cert[0] != '\0') {
        node->peer_tls = tls_peer_ctx(c->peer_tls_cert, c->peer_tls_key, c->peer_tls_ca, err,
                                      sizeof err);
        if (node->peer_tls == NULL) {
            fprintf(stderr, "varastod: %s\n", err);
            return -1;
        }
        node->forward_tls.ca = c->peer_tls_ca;
        node->forward_tls.cert = c->peer_tls_cert;
        node->forward_tls.key = c->peer_tls_key;
    }
    if (c->tls_cert[0] != '\0') {
        node->client_tls = tls_server_ctx(c->tls_cert, c->tls_key,
                                          c->tls_client_ca[0] != '\0' ? c->tls_client_ca : NULL,
                                          c->tls_client_ca[0] != '\0' ? c->peer_tls_ca : NULL, err,
                                          sizeof err);
        if (node->client_tls == NULL) {
            fprintf(stderr, "varastod: %s\n", err);
            return -1;
        }
        node->forward_tls.https = 1;
    }
    return 0;
}

int node_run(const struct config *config)
{
    static struct node node; /* one per process; reachable for leak checks */
    struct http_deps deps;
    char path[CONFIG_PATH_MAX + 32];

    memset(&node, 0, sizeof node);
    node.config = *config;
    config = &node.config;
    log_init(config->id, (enum log_level)config->log_level);
    if (util_mkdir_p(config->data_dir) != 0 || access(config->data_dir, R_OK | W_OK | X_OK) != 0) {
        fprintf(stderr, "varastod: data dir %s: %s\n", config->data_dir, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/readmodel.db", config->data_dir);
    store_library_init();
    if (open_read_model(&node, path) != 0) {
        return 1;
    }
    if (auth_init(&node.auth, config, &node.store) != 0) {
        return fail(&node, node.auth.errmsg);
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
    uv_check_init(&node.loop, &node.iteration);
    node.iteration.data = &node;
    uv_check_start(&node.iteration, on_iteration);
    push_init(&node.push, &node.store, node.fsm.last_seq);
    uv_idle_init(&node.loop, &node.wake_idle);
    node.wake_idle.data = &node;
    node.push.on_backlog = on_push_backlog;
    node.push.on_backlog_data = &node;
    retention_init(&node.retention, config, &node.store);
    checkpoint_init(&node.checkpoint, &node.loop, &node.store, &node.fsm);
    route_init(&node.route, &node.cluster, &node.store);
    if (open_tls(&node) != 0) {
        return fail(&node, NULL);
    }
    if (forward_init(&node.forward, &node.loop, &node.auth.peer, &node.forward_tls) != 0) {
        return fail(&node, "cannot initialise libcurl");
    }
    submit_init(&node.submit, &node.loop, config, &node.cluster, &node.fsm, &node.route,
                &node.forward);
    consistency_init(&node.reads, &node.loop, &node.fsm, &node.cluster, &node.route, &node.forward,
                     config->min_seq_timeout_ms);
    node.api = (struct api){
        .config = config,
        .loop = &node.loop,
        .store = &node.store,
        .fsm = &node.fsm,
        .cluster = &node.cluster,
        .push = &node.push,
        .submit = &node.submit,
        .auth = &node.auth,
        .retention = &node.retention,
    };
    deps = (struct http_deps){
        .routes = api_routes,
        .n_routes = api_n_routes,
        .api = &node.api,
        .auth = &node.auth,
        .reads = &node.reads,
        .applied_seq = &node.fsm.last_seq,
        .max_connections = config->max_connections,
        .ssl_ctx = node.client_tls,
    };
    if (http_start(&node.http, &node.loop, config->http, &deps) != 0) {
        return fail(&node, node.http.errmsg);
    }
    if (cluster_start(&node.cluster, &node.loop, config, &node.fsm, &node.auth.keys,
                      node.peer_tls) != 0) {
        return fail(&node, node.cluster.errmsg);
    }
    membership_start(&node.membership, &node.loop, config, &node.cluster, &node.store, &node.submit,
                     &node.forward);
    uv_signal_init(&node.loop, &node.sigint);
    uv_signal_init(&node.loop, &node.sigterm);
    node.sigint.data = node.sigterm.data = &node;
    uv_signal_start(&node.sigint, on_signal, SIGINT);
    uv_signal_start(&node.sigterm, on_signal, SIGTERM);
    log_info("node %llu serving HTTP on %s (announced as %s), raft on %s, data in %s, "
             "applied index %llu seq %llu",
             (unsigned long long)config->id, config->http, config->http_advertise, config->raft,
             config->data_dir, (unsigned long long)node.fsm.applied_index,
             (unsigned long long)node.fsm.last_seq);

    uv_run(&node.loop, UV_RUN_DEFAULT);

    cluster_release(&node.cluster);
    if (close_loop(&node) != 0) {
        node.exit_code = 1;
    }
    push_close(&node.push);
    fsm_close(&node.fsm);
    store_close(&node.store);
    SSL_CTX_free(node.client_tls);
    SSL_CTX_free(node.peer_tls);
    log_info("stopped");
    return node.exit_code;
}
