/* The raft transport: a connection reaches raft only after both ends proved
 * they hold the cluster key and the connector meant this node and is a
 * member; the bytes after the handshake are raft's, untouched; anything
 * else is closed (a wrong key, another node id, a non-member, a stranger
 * that says nothing or speaks raft_uv_tcp's own handshake) within the
 * handshake time; Nagle's algorithm is off both ways; a close cancels a
 * connect under way. Every test runs on its own loop and closes it. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"
#include "transport.h"

#define GUARD_MS 5000
#define RAFT_BYTES "raft's first message, untouched"

static uv_loop_t loop;
static struct transport server, client;
static struct peer_keys keys, other_keys;
static struct raft_uv_connect connect_req;
static uv_timer_t guard, poll_timer;

/* what happened */
static int accepted, connected, connect_status, accepted_nodelay, connected_nodelay, closed;
static unsigned long long accepted_id;
static char accepted_address[64];
static char raft_got[64];
static size_t raft_got_len;
static raft_id refused_member; /* the server refuses this id as a non-member */
static int stranger_closed;

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

static int member(void *data, raft_id id)
{
    (void)data;
    return id != refused_member;
}

static void free_stream(uv_handle_t *h)
{
    raft_free(h);
}

static void close_stream(uv_stream_t *stream)
{
    if (!uv_is_closing((uv_handle_t *)stream)) {
        uv_close((uv_handle_t *)stream, free_stream);
    }
}

static void raft_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = raft_got + raft_got_len;
    buf->len = sizeof raft_got - 1 - raft_got_len;
}

static void raft_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n < 0) {
        close_stream(stream);
        return;
    }
    raft_got_len += (size_t)n;
    if (raft_got_len >= strlen(RAFT_BYTES)) {
        close_stream(stream);
    }
}

static void on_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                      struct uv_stream_s *stream)
{
    CHECK(t == &server.outer);
    accepted++;
    accepted_id = id;
    snprintf(accepted_address, sizeof accepted_address, "%s", address);
    accepted_nodelay = nodelay_of(stream);
    uv_read_start(stream, raft_alloc, raft_read);
}

static void raft_written(uv_write_t *w, int status)
{
    (void)status;
    close_stream(w->handle);
    free(w);
}

static void on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    CHECK(req == &connect_req);
    connected++;
    connect_status = status;
    if (status == 0) {
        uv_write_t *w = malloc(sizeof *w);
        uv_buf_t b = uv_buf_init(RAFT_BYTES, (unsigned)strlen(RAFT_BYTES));
        connected_nodelay = nodelay_of(stream);
        /* at once: it may reach the acceptor with the proof */
        uv_write(w, stream, &b, 1, raft_written);
    }
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
    fprintf(stderr, "[%s] transport test timed out\n", test_current);
    test_failures++;
    uv_stop(&loop);
}

static int (*done_when)(void);

static void on_poll(uv_timer_t *t)
{
    (void)t;
    if (done_when()) {
        uv_stop(&loop);
    }
}

/* Run the loop until @cond holds (or the guard fires). */
static void run_until(int (*cond)(void))
{
    done_when = cond;
    uv_timer_start(&guard, on_guard, GUARD_MS, 0);
    uv_timer_start(&poll_timer, on_poll, 5, 5);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_timer_stop(&guard);
    uv_timer_stop(&poll_timer);
}

static void transport_closed(struct raft_uv_transport *t)
{
    (void)t;
    closed++;
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

static char address[64];

/* Server node 1 listening with the cluster key; client node 2 with @ckeys. */
static void setup(const struct peer_keys *ckeys)
{
    accepted = connected = closed = stranger_closed = 0;
    connect_status = accepted_nodelay = connected_nodelay = -1;
    accepted_id = 0;
    accepted_address[0] = '\0';
    raft_got_len = 0;
    memset(raft_got, 0, sizeof raft_got);
    refused_member = 0;
    snprintf(address, sizeof address, "127.0.0.1:%d", free_port());
    uv_loop_init(&loop);
    uv_timer_init(&loop, &guard);
    uv_timer_init(&loop, &poll_timer);
    CHECK_INT(transport_init(&server, &loop, &keys, NULL, member, NULL), 0);
    CHECK_INT(transport_init(&client, &loop, ckeys, NULL, NULL, NULL), 0);
    server.handshake_ms = 300;
    CHECK_INT(server.outer.init(&server.outer, 1, address), 0);
    CHECK_INT(client.outer.init(&client.outer, 2, "127.0.0.1:7002"), 0);
    CHECK_INT(server.outer.listen(&server.outer, on_accept), 0);
}

static int both_closed(void)
{
    return closed == 2;
}

static void teardown(void)
{
    server.outer.close(&server.outer, transport_closed);
    client.outer.close(&client.outer, transport_closed);
    run_until(both_closed);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_close((uv_handle_t *)&poll_timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static int raft_bytes_arrived(void)
{
    return raft_got_len >= strlen(RAFT_BYTES);
}

static void test_members_with_the_key_reach_raft(void)
{
    setup(&keys);
    CHECK_INT(client.outer.connect(&client.outer, &connect_req, 1, address, on_connect), 0);
    run_until(raft_bytes_arrived);
    CHECK_INT(connected, 1);
    CHECK_INT(connect_status, 0);
    CHECK_INT(accepted, 1);
    CHECK_INT(accepted_id, 2);
    CHECK_STR(accepted_address, "127.0.0.1:7002");
    CHECK_STR(raft_got, RAFT_BYTES);
    CHECK_INT(accepted_nodelay, 1);
    CHECK_INT(connected_nodelay, 1);
    teardown();
}

static int connect_ended(void)
{
    return connected == 1 && queue_empty(&server.shakes);
}

static void test_another_key_is_refused_both_ways(void)
{
    setup(&other_keys);
    CHECK_INT(client.outer.connect(&client.outer, &connect_req, 1, address, on_connect), 0);
    run_until(connect_ended);
    CHECK_INT(connect_status, RAFT_NOCONNECTION); /* the server's answer did not prove the key */
    CHECK_INT(accepted, 0);
    teardown();
}

static void test_another_node_id_is_refused(void)
{
    setup(&keys);
    /* node 1 listens at that address; the client means node 5 */
    CHECK_INT(client.outer.connect(&client.outer, &connect_req, 5, address, on_connect), 0);
    run_until(connect_ended);
    CHECK_INT(connect_status, RAFT_NOCONNECTION);
    CHECK_INT(accepted, 0);
    teardown();
}

static int server_idle(void)
{
    return connected == 1 && queue_empty(&server.shakes) && server.n_incoming == 0;
}

static void test_a_non_member_is_refused(void)
{
    setup(&keys);
    refused_member = 2;
    CHECK_INT(client.outer.connect(&client.outer, &connect_req, 1, address, on_connect), 0);
    run_until(server_idle);
    CHECK_INT(accepted, 0);
    CHECK_INT(raft_got_len, 0);
    teardown();
}

/* ---- strangers: plain TCP clients ------------------------------------------- */

static uv_tcp_t stranger;
static uv_connect_t stranger_connect;
static uv_write_t stranger_write;
static char stranger_buf[256];
static const char *stranger_says;
static size_t stranger_says_len;

static void stranger_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(stranger_buf, sizeof stranger_buf);
}

static void stranger_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n < 0) {
        stranger_closed = 1;
        uv_close((uv_handle_t *)s, NULL);
    }
}

static void stranger_connected(uv_connect_t *c, int status)
{
    CHECK_INT(status, 0);
    if (stranger_says_len > 0) {
        uv_buf_t b = uv_buf_init((char *)stranger_says, (unsigned)stranger_says_len);
        uv_write(&stranger_write, c->handle, &b, 1, NULL);
    }
    uv_read_start(c->handle, stranger_alloc, stranger_read);
}

static int stranger_dropped(void)
{
    return stranger_closed && server.n_incoming == 0;
}

static void run_stranger(const char *says, size_t len)
{
    struct sockaddr_in a;
    stranger_says = says;
    stranger_says_len = len;
    uv_ip4_addr("127.0.0.1", atoi(strchr(address, ':') + 1), &a);
    uv_tcp_init(&loop, &stranger);
    uv_tcp_connect(&stranger_connect, &stranger, (const struct sockaddr *)&a, stranger_connected);
    run_until(stranger_dropped);
    CHECK_INT(accepted, 0);
}

static void test_a_silent_stranger_is_dropped_in_time(void)
{
    uint64_t started;
    setup(&keys);
    started = uv_now(&loop);
    run_stranger(NULL, 0);
    uv_update_time(&loop);
    CHECK(uv_now(&loop) - started >= server.handshake_ms - 10);
    teardown();
}

static void put64le(unsigned char *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static void test_raft_uv_tcp_handshake_is_refused_at_once(void)
{
    /* what libraft's own transport sends first (protocol 1, server id,
     * address length, address), then a RequestVote with a huge term */
    unsigned char raw[40 + 16 + 40];
    uint64_t started;
    memset(raw, 0, sizeof raw);
    put64le(raw, 1);
    put64le(raw + 8, 99);
    put64le(raw + 16, 16);
    memcpy(raw + 24, "127.0.0.1:9", 11);
    raw[40] = 3; /* RAFT_REQUEST_VOTE */
    raw[42] = 2; /* its version */
    put64le(raw + 48, 40);
    put64le(raw + 56, 1000000); /* term */
    put64le(raw + 64, 99);
    put64le(raw + 72, 1u << 30);
    put64le(raw + 80, 1000000);
    put64le(raw + 88, 1); /* disrupt the leader */
    setup(&keys);
    started = uv_now(&loop);
    run_stranger((const char *)raw, sizeof raw);
    uv_update_time(&loop);
    /* refused on its first bytes, not by the handshake timer */
    CHECK(uv_now(&loop) - started < server.handshake_ms);
    teardown();
}

/* ---- close while connecting ---------------------------------------------------- */

static uv_tcp_t mute_listener, mute_conn;

static void mute_accept(uv_stream_t *l, int status)
{
    (void)status;
    uv_tcp_init(&loop, &mute_conn);
    uv_accept(l, (uv_stream_t *)&mute_conn); /* and never answer */
}

static int connect_cancelled(void)
{
    return connected == 1;
}

static void test_close_cancels_a_connect_under_way(void)
{
    struct sockaddr_in a;
    char mute[64];
    int port = free_port();
    setup(&keys);
    uv_ip4_addr("127.0.0.1", port, &a);
    uv_tcp_init(&loop, &mute_listener);
    CHECK_INT(uv_tcp_bind(&mute_listener, (const struct sockaddr *)&a, 0), 0);
    CHECK_INT(uv_listen((uv_stream_t *)&mute_listener, 4, mute_accept), 0);
    snprintf(mute, sizeof mute, "127.0.0.1:%d", port);
    CHECK_INT(client.outer.connect(&client.outer, &connect_req, 1, mute, on_connect), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_INT(connected, 0);
    client.outer.close(&client.outer, transport_closed);
    run_until(connect_cancelled);
    CHECK_INT(connect_status, RAFT_CANCELED);
    server.outer.close(&server.outer, transport_closed);
    run_until(both_closed);
    uv_close((uv_handle_t *)&mute_listener, NULL);
    if (uv_is_active((uv_handle_t *)&mute_conn) || mute_conn.loop == &loop) {
        uv_close((uv_handle_t *)&mute_conn, NULL);
    }
    uv_close((uv_handle_t *)&guard, NULL);
    uv_close((uv_handle_t *)&poll_timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    CHECK_INT(peer_keys_derive(&keys, "the-cluster-token-0123"), 0);
    CHECK_INT(peer_keys_derive(&other_keys, "another-cluster-token"), 0);
    RUN(test_members_with_the_key_reach_raft);
    RUN(test_another_key_is_refused_both_ways);
    RUN(test_another_node_id_is_refused);
    RUN(test_a_non_member_is_refused);
    RUN(test_a_silent_stranger_is_dropped_in_time);
    RUN(test_raft_uv_tcp_handshake_is_refused_at_once);
    RUN(test_close_cancels_a_connect_under_way);
    return test_report("transport");
}
