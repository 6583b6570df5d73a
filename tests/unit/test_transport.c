/* The raft transport: connections it makes and accepts carry raft messages
 * with Nagle's algorithm off (TCP_NODELAY), in both directions. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"
#include "transport.h"

static uv_loop_t loop;
static struct transport server, client;
static struct raft_uv_connect connect_req;
static uv_timer_t guard;
static int accepted_nodelay = -1, connected_nodelay = -1, connect_status = -1;
static unsigned long long accepted_id;
static int closed;

static int nodelay_of(struct uv_stream_s *stream)
{
    uv_os_fd_t fd;
    int v = 0;
    socklen_t len = sizeof v;
    if (uv_fileno((uv_handle_t *)stream, &fd) != 0 ||
        getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) != 0) {
        return -1;
    }
    return v != 0;
}

static void free_stream(uv_handle_t *h)
{
    free(h);
}

static void transport_closed(struct raft_uv_transport *t)
{
    (void)t;
    if (++closed == 2) {
        uv_close((uv_handle_t *)&guard, NULL);
    }
}

static void finish(void)
{
    if (accepted_nodelay >= 0 && connected_nodelay >= 0) {
        server.outer.close(&server.outer, transport_closed);
        client.outer.close(&client.outer, transport_closed);
    }
}

static void on_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                      struct uv_stream_s *stream)
{
    (void)address;
    CHECK(t == &server.outer);
    accepted_id = id;
    accepted_nodelay = nodelay_of(stream);
    uv_close((uv_handle_t *)stream, free_stream);
    finish();
}

static void on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    CHECK(req == &connect_req);
    connect_status = status;
    if (status == 0) {
        connected_nodelay = nodelay_of(stream);
        uv_close((uv_handle_t *)stream, free_stream);
    } else {
        connected_nodelay = 0;
    }
    finish();
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "transport test timed out\n");
    test_failures++;
    uv_stop(&loop);
}

/* A loopback port nothing listens on right now. */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
}

static void test_nodelay_both_ways(void)
{
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%d", free_port());
    uv_loop_init(&loop);
    CHECK_INT(transport_init(&server, &loop), 0);
    CHECK_INT(transport_init(&client, &loop), 0);
    CHECK_INT(server.outer.init(&server.outer, 1, address), 0);
    CHECK_INT(client.outer.init(&client.outer, 2, "127.0.0.1:1"), 0);
    CHECK_INT(server.outer.listen(&server.outer, on_accept), 0);
    CHECK_INT(client.outer.connect(&client.outer, &connect_req, 1, address, on_connect), 0);
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, on_guard, 5000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(connect_status, 0);
    CHECK_INT(accepted_id, 2);
    CHECK_INT(accepted_nodelay, 1);
    CHECK_INT(connected_nodelay, 1);
    CHECK_INT(closed, 2);
    transport_close(&server);
    transport_close(&client);
    uv_loop_close(&loop);
}

int main(void)
{
    RUN(test_nodelay_both_ways);
    return test_report("transport");
}
