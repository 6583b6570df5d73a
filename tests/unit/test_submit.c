/* The submission module's routing, parking and refusals, on a real libuv
 * loop with raft's state set by hand (no raft I/O is reached here): what
 * waits for a leader, what a relayed (membership) command does once one is
 * known, and the answers a stopping node and an unwritable read model give. */
#include <string.h>

#include "cluster.h"
#include "config.h"
#include "entry.h"
#include "forward.h"
#include "fsm.h"
#include "route.h"
#include "submit.h"
#include "testlib.h"

static uv_loop_t loop;
static struct config config;
static struct cluster cluster;
static struct fsm fsm;
static struct route route;
static struct forward forward;
static struct peer_keys keys;
static struct peer_http peer;
static struct submit submit;

struct answer {
    int calls;
    int status;
    int retry;
    char body[512];
};

static void answered(void *data, const struct submit_result *r)
{
    struct answer *a = data;
    a->calls++;
    a->status = r->status;
    a->retry = r->retry;
    snprintf(a->body, sizeof a->body, "%.*s", (int)r->len, r->body);
}

struct exec_call {
    int calls;
    char command[64];
    char body[128];
};
static struct exec_call exec_seen;

/* The leader's runner of relayed commands: answers 200 at once. */
static void exec(void *data, const char *command, const char *body, size_t len, submit_cb cb,
                 void *cb_data)
{
    struct submit_result r = {200, "{\"Leader\":1}", 12, 0, 0, 0};
    (void)data;
    exec_seen.calls++;
    snprintf(exec_seen.command, sizeof exec_seen.command, "%s", command);
    snprintf(exec_seen.body, sizeof exec_seen.body, "%.*s", (int)len, body);
    cb(cb_data, &r);
}

static void setup(unsigned timeout_ms)
{
    uv_loop_init(&loop);
    config_defaults(&config);
    config.id = 1;
    config.command_timeout_ms = timeout_ms;
    memset(&cluster, 0, sizeof cluster);
    cluster.raft.state = RAFT_UNAVAILABLE; /* no leader known */
    memset(&fsm, 0, sizeof fsm);
    route_init(&route, &cluster, NULL);
    CHECK_INT(peer_keys_derive(&keys, "token-token-token"), 0);
    peer_http_init(&peer, &keys, 1);
    CHECK_INT(forward_init(&forward, &loop, &peer, NULL), 0);
    submit_init(&submit, &loop, &config, &cluster, &fsm, &route, &forward);
    submit_set_exec(&submit, exec, NULL);
    memset(&exec_seen, 0, sizeof exec_seen);
}

static void teardown(void)
{
    submit_abort_all(&submit);
    forward_close(&forward);
    submit_close(&submit);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* Run the loop until @a has an answer, at most @ms of loop time. */
static void run_until(struct answer *a, unsigned ms)
{
    uint64_t end = uv_now(&loop) + ms;
    while (a->calls == 0 && uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
}

static struct raft_buffer an_entry(void)
{
    Varasto__Entry e = VARASTO__ENTRY__INIT;
    struct raft_buffer buf;
    e.command = "directory.Create";
    e.nodeid = 1;
    CHECK_INT(entry_encode(&e, &buf), 0);
    return buf;
}

static void test_no_leader_parks_until_the_timeout(void)
{
    struct answer a = {0};
    setup(100);
    submit_entry(&submit, an_entry(), answered, &a);
    CHECK_INT(a.calls, 0); /* parked, not refused */
    run_until(&a, 2000);
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.status, 503);
    CHECK_INT(a.retry, 1);
    CHECK_CONTAINS(a.body, "no leader was reachable in time");
    teardown();
}

/* A membership command sent while this node knows no leader waits like any
 * command, and runs once the node leads (or relays once it knows where). */
static void test_relay_waits_for_a_leader_then_runs(void)
{
    struct answer a = {0};
    setup(5000);
    submit_relay(&submit, "cluster.RemoveNode", "{\"Id\":3}", 8, answered, &a);
    CHECK_INT(a.calls, 0);
    CHECK_INT(exec_seen.calls, 0);
    cluster.raft.state = RAFT_LEADER; /* won an election */
    submit_retry_parked(&submit);
    CHECK_INT(exec_seen.calls, 1);
    CHECK_STR(exec_seen.command, "cluster.RemoveNode");
    CHECK_STR(exec_seen.body, "{\"Id\":3}");
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.status, 200);
    CHECK_STR(a.body, "{\"Leader\":1}");
    cluster.raft.state = RAFT_UNAVAILABLE;
    teardown();
}

/* The parked ones look again on their own, without an apply. */
static void test_parked_ops_retry_on_a_timer(void)
{
    struct answer a = {0};
    setup(5000);
    submit_relay(&submit, "cluster.TransferLeadership", "{}", 2, answered, &a);
    cluster.raft.state = RAFT_LEADER;
    run_until(&a, 2000);
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.status, 200);
    cluster.raft.state = RAFT_UNAVAILABLE;
    teardown();
}

static void test_stopping_answers_and_refuses(void)
{
    struct answer parked = {0}, later = {0}, relay = {0};
    setup(5000);
    submit_entry(&submit, an_entry(), answered, &parked);
    submit_abort_all(&submit);
    CHECK_INT(parked.calls, 1);
    CHECK_INT(parked.status, 503);
    CHECK_CONTAINS(parked.body, "stopping; retry on another node");
    /* nothing new is taken once stopping */
    submit_entry(&submit, an_entry(), answered, &later);
    CHECK_INT(later.calls, 1);
    CHECK_INT(later.status, 503);
    CHECK_CONTAINS(later.body, "stopping");
    submit_relay(&submit, "cluster.AddNode", "{}", 2, answered, &relay);
    CHECK_INT(relay.calls, 1);
    CHECK_INT(relay.status, 503);
    teardown();
}

static void test_unwritable_read_model_refuses_commands(void)
{
    struct answer a = {0};
    setup(5000);
    fsm.failed = 1;
    snprintf(fsm.errmsg, sizeof fsm.errmsg, "read model commit failed: database or disk is full");
    submit_entry(&submit, an_entry(), answered, &a);
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.status, 503);
    CHECK_INT(a.retry, 1);
    CHECK_CONTAINS(a.body, "disk is full");
    CHECK_CONTAINS(a.body, "\"Code\":\"unavailable\"");
    fsm.failed = 0;
    teardown();
}

int main(void)
{
    RUN(test_no_leader_parks_until_the_timeout);
    RUN(test_relay_waits_for_a_leader_then_runs);
    RUN(test_parked_ops_retry_on_a_timer);
    RUN(test_stopping_answers_and_refuses);
    RUN(test_unwritable_read_model_refuses_commands);
    return test_report("submit");
}
