/* nats-load: a small load generator for NATS JetStream, so that
 * bench/peers-nats can compare against it in the same run with the same
 * shapes as our own benchmarks (Debian ships nats-server but no client tool).
 * It speaks the NATS text protocol over plain sockets, one thread, epoll.
 *
 *   nats-load pub ADDR SUBJECT CONNS SECONDS [INFLIGHT [COUNT]]
 *       JetStream publishes, each connection keeping INFLIGHT (default 1)
 *       unacknowledged; prints "rps P50_MS P99_MS ACKED ERRORS". With COUNT
 *       it stops sending once about COUNT are out (to fill a stream; what is
 *       in flight then is still acknowledged, so a few more may land).
 *   nats-load latency PUB_ADDR SUB_ADDR SUBJECT STREAM RATE SECONDS
 *       publishes RATE messages/s on PUB_ADDR while an ephemeral push
 *       consumer on SUB_ADDR receives them; prints the latency from the
 *       publish being sent and from its acknowledgement to its delivery:
 *       "SEEN SENT SEND_P50 SEND_P99 SEND_MAX ACK_P50 ACK_P99 ACK_MAX" (ms).
 *   nats-load replay ADDR STREAM N
 *       an ephemeral push consumer from the start of STREAM; prints
 *       "N SECONDS MSGS_PER_S" once N messages have arrived.
 *
 * ADDR is 127.0.0.1:PORT. Exit status 1 on any error. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF (1 << 20)

struct conn {
    int fd;
    int id;
    char *in;
    size_t in_len;
    char out[1 << 16];
    size_t out_len;
    /* pub: publishes in flight and their send times, by sequence */
    unsigned long next, inflight;
    double sent[4096];
};

/* What a MSG or HMSG carried. */
struct msg {
    const char *subject;
    size_t subject_len;
    unsigned long sid;
    const char *reply;
    size_t reply_len;
    const char *payload;
    size_t payload_len;
    int has_headers;
};

typedef void (*on_msg_fn)(struct conn *c, const struct msg *m, void *ctx);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nats-load: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void flush_out(struct conn *c)
{
    size_t off = 0;
    while (off < c->out_len) {
        ssize_t n = write(c->fd, c->out + off, c->out_len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            die("write: %s", strerror(errno));
        }
        off += (size_t)n;
    }
    c->out_len = 0;
}

static void put(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(c->out + c->out_len, sizeof c->out - c->out_len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof c->out - c->out_len) {
        flush_out(c);
        va_start(ap, fmt);
        n = vsnprintf(c->out, sizeof c->out, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= sizeof c->out) {
            die("message too long");
        }
    }
    c->out_len += (size_t)n;
}

static void conn_open(struct conn *c, const char *addr, int id)
{
    struct sockaddr_in sa;
    char host[64];
    const char *colon = strrchr(addr, ':');
    int one = 1;

    memset(c, 0, sizeof *c);
    c->id = id;
    c->in = malloc(RBUF);
    if (c->in == NULL || colon == NULL || (size_t)(colon - addr) >= sizeof host) {
        die("bad address %s", addr);
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        die("bad address %s", addr);
    }
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        die("connect %s: %s", addr, strerror(errno));
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    put(c, "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,"
           "\"no_responders\":true,\"protocol\":1,\"name\":\"nats-load\"}\r\n");
}

/* Parse every complete protocol message in c->in (-ERR ends the run). */
static void conn_parse(struct conn *c, on_msg_fn on_msg, void *ctx)
{
    size_t pos = 0;
    while (pos < c->in_len) {
        char *line = c->in + pos;
        char *eol = memmem(line, c->in_len - pos, "\r\n", 2);
        size_t line_len;
        if (eol == NULL) {
            break;
        }
        line_len = (size_t)(eol - line);
        if (line_len >= 4 && (memcmp(line, "MSG ", 4) == 0 || memcmp(line, "HMSG", 4) == 0)) {
            /* MSG subject sid [reply] bytes | HMSG subject sid [reply] hbytes bytes */
            char *f[6];
            size_t fl[6];
            int nf = 0, hm = line[0] == 'H';
            size_t i = 0, total, hdr = 0;
            struct msg m;
            while (i < line_len && nf < 6) {
                while (i < line_len && line[i] == ' ') {
                    i++;
                }
                if (i == line_len) {
                    break;
                }
                f[nf] = line + i;
                while (i < line_len && line[i] != ' ') {
                    i++;
                }
                fl[nf] = (size_t)(line + i - f[nf]);
                nf++;
            }
            if (nf < 4 + hm) {
                die("bad line: %.*s", (int)line_len, line);
            }
            total = strtoul(f[nf - 1], NULL, 10);
            if (hm) {
                hdr = strtoul(f[nf - 2], NULL, 10);
            }
            if (pos + line_len + 2 + total + 2 > c->in_len) {
                if (line_len + 4 + total > RBUF) {
                    die("message larger than the buffer");
                }
                break; /* the payload is not all here yet */
            }
            memset(&m, 0, sizeof m);
            m.subject = f[1];
            m.subject_len = fl[1];
            m.sid = strtoul(f[2], NULL, 10);
            if (nf == 5 + hm) {
                m.reply = f[3];
                m.reply_len = fl[3];
            }
            m.payload = eol + 2 + hdr;
            m.payload_len = total - hdr;
            m.has_headers = hm;
            on_msg(c, &m, ctx);
            pos += line_len + 2 + total + 2;
            continue;
        }
        if (line_len >= 4 && memcmp(line, "PING", 4) == 0) {
            put(c, "PONG\r\n");
        } else if (line_len >= 4 && memcmp(line, "-ERR", 4) == 0) {
            die("server: %.*s", (int)line_len, line);
        }
        pos += line_len + 2; /* INFO, PONG, +OK */
    }
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
}

static void conn_read(struct conn *c, on_msg_fn on_msg, void *ctx)
{
    ssize_t n = read(c->fd, c->in + c->in_len, RBUF - c->in_len);
    if (n == 0) {
        die("the server closed the connection");
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            return;
        }
        die("read: %s", strerror(errno));
    }
    c->in_len += (size_t)n;
    conn_parse(c, on_msg, ctx);
}

/* ---- a blocking request/reply for the JetStream API ---- */

struct reply_wait {
    char *body;
    on_msg_fn other; /* messages that are not the answer */
    void *ctx;
};

static void on_reply(struct conn *c, const struct msg *m, void *ctx)
{
    struct reply_wait *w = ctx;
    if (m->sid == 999) {
        w->body = strndup(m->payload, m->payload_len);
    } else if (w->other != NULL) {
        w->other(c, m, w->ctx);
    }
}

/* Send @payload to @subject and wait (5 s) for the answer; other messages
 * that arrive meanwhile go to @other. */
static char *request(struct conn *c, const char *subject, const char *payload, on_msg_fn other,
                     void *ctx)
{
    struct reply_wait w = {NULL, other, ctx};
    double deadline = now_s() + 5;
    put(c, "SUB _INBOX.req.%d 999\r\nPUB %s _INBOX.req.%d %zu\r\n%s\r\n", c->id, subject, c->id,
        strlen(payload), payload);
    flush_out(c);
    while (w.body == NULL) {
        if (now_s() > deadline) {
            die("no answer from %s", subject);
        }
        conn_read(c, on_reply, &w);
        flush_out(c);
    }
    put(c, "UNSUB 999\r\n");
    flush_out(c);
    return w.body;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    return v[(size_t)(p * (double)(n - 1))];
}

struct samples {
    double *v;
    size_t n, cap;
};

static void sample_add(struct samples *s, double x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (s->v == NULL) {
            die("out of memory");
        }
    }
    s->v[s->n++] = x;
}

/* ---- pub ---- */

struct pub_state {
    const char *subject;
    struct samples lat;
    unsigned long acked, errors, count;
    int stopping;
};

static void pub_one(struct conn *c, struct pub_state *st)
{
    char payload[64];
    int len = snprintf(payload, sizeof payload, "{\"c\":%d,\"n\":%lu}", c->id, c->next);
    c->sent[c->next % 4096] = now_s();
    put(c, "PUB %s _INBOX.p%d.%lu %d\r\n%s\r\n", st->subject, c->id, c->next, len, payload);
    c->next++;
    c->inflight++;
}

static void pub_on_msg(struct conn *c, const struct msg *m, void *ctx)
{
    struct pub_state *st = ctx;
    const char *dot = memrchr(m->subject, '.', m->subject_len);
    unsigned long k;
    if (m->sid != 1 || dot == NULL) {
        return;
    }
    k = strtoul(dot + 1, NULL, 10);
    if (m->has_headers || memmem(m->payload, m->payload_len, "\"error\"", 7) != NULL) {
        st->errors++;
        if (st->errors == 1) {
            fprintf(stderr, "nats-load: publish failed: %.*s\n", (int)m->payload_len, m->payload);
        }
    } else {
        st->acked++;
        sample_add(&st->lat, (now_s() - c->sent[k % 4096]) * 1000);
    }
    c->inflight--;
}

static int run_pub(int argc, char **argv)
{
    const char *addr = argv[2];
    struct pub_state st;
    int conns = atoi(argv[4]), i, ep;
    double seconds = atof(argv[5]), started, took;
    unsigned long inflight = argc > 6 ? strtoul(argv[6], NULL, 10) : 1;
    struct conn *cs;
    struct epoll_event ev, evs[256];

    memset(&st, 0, sizeof st);
    st.subject = argv[3];
    st.count = argc > 7 ? strtoul(argv[7], NULL, 10) : 0;
    if (conns < 1 || conns > 1024 || inflight < 1 || inflight > 4096 || seconds <= 0) {
        die("bad arguments");
    }
    cs = calloc((size_t)conns, sizeof *cs);
    ep = epoll_create1(0);
    for (i = 0; i < conns; i++) {
        conn_open(&cs[i], addr, i);
        put(&cs[i], "SUB _INBOX.p%d.* 1\r\nPING\r\n", i);
        flush_out(&cs[i]);
        ev.events = EPOLLIN;
        ev.data.ptr = &cs[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    usleep(200000); /* let the subscriptions settle */
    started = now_s();
    for (i = 0; i < conns; i++) {
        unsigned long k;
        for (k = 0; k < inflight; k++) {
            pub_one(&cs[i], &st);
        }
        flush_out(&cs[i]);
    }
    for (;;) {
        int n = epoll_wait(ep, evs, 256, 1000), j, busy = 0;
        double t = now_s();
        if (t - started >= seconds || (st.count && st.acked + st.errors >= st.count)) {
            st.stopping = 1;
        }
        for (j = 0; j < n; j++) {
            struct conn *c = evs[j].data.ptr;
            conn_read(c, pub_on_msg, &st);
            while (!st.stopping && c->inflight < inflight &&
                   (!st.count || c->next * (unsigned long)conns < st.count + inflight * conns)) {
                pub_one(c, &st);
            }
            flush_out(c);
        }
        for (i = 0; i < conns; i++) {
            busy += cs[i].inflight > 0;
        }
        if (st.stopping && (busy == 0 || t - started > seconds + 10)) {
            break;
        }
    }
    took = now_s() - started;
    qsort(st.lat.v, st.lat.n, sizeof *st.lat.v, cmp_double);
    printf("%.0f %.3f %.3f %lu %lu\n", (double)st.acked / took, pct(st.lat.v, st.lat.n, 0.5),
           pct(st.lat.v, st.lat.n, 0.99), st.acked, st.errors);
    return st.errors ? 1 : 0;
}

/* ---- push consumers ---- */

static void create_consumer(struct conn *c, const char *stream, const char *deliver,
                            const char *policy, on_msg_fn other, void *ctx)
{
    char subject[256], body[512];
    char *answer;
    snprintf(subject, sizeof subject, "$JS.API.CONSUMER.CREATE.%s", stream);
    snprintf(body, sizeof body,
             "{\"stream_name\":\"%s\",\"config\":{\"deliver_subject\":\"%s\","
             "\"deliver_policy\":\"%s\",\"ack_policy\":\"none\",\"replay_policy\":\"instant\"}}",
             stream, deliver, policy);
    answer = request(c, subject, body, other, ctx);
    if (strstr(answer, "\"error\"") != NULL) {
        die("consumer: %s", answer);
    }
    free(answer);
}

struct lat_state {
    double *sent, *acked, *arrived;
    unsigned long cap, seen;
};

static void lat_on_msg(struct conn *c, const struct msg *m, void *ctx)
{
    struct lat_state *st = ctx;
    double t = now_s();
    unsigned long k;
    (void)c;
    if (m->sid == 1) { /* an acknowledgement: _INBOX.l.K */
        const char *dot = memrchr(m->subject, '.', m->subject_len);
        k = dot ? strtoul(dot + 1, NULL, 10) : st->cap;
        if (k < st->cap && !m->has_headers) {
            st->acked[k] = t;
        }
    } else if (m->sid == 2 && !m->has_headers) { /* a delivery: payload K */
        k = strtoul(m->payload, NULL, 10);
        if (k < st->cap && st->arrived[k] == 0) {
            st->arrived[k] = t;
            st->seen++;
        }
    }
}

static int run_latency(char **argv)
{
    struct conn pubc, subc;
    const char *subject = argv[4], *stream = argv[5];
    double rate = atof(argv[6]), seconds = atof(argv[7]), started, interval;
    struct lat_state st;
    struct samples from_send = {0}, from_ack = {0};
    unsigned long k = 0, i;
    int ep;
    struct epoll_event ev, evs[16];

    if (rate <= 0 || seconds <= 0) {
        die("bad arguments");
    }
    memset(&st, 0, sizeof st);
    st.cap = (unsigned long)(rate * seconds) + 16;
    st.sent = calloc(st.cap, sizeof(double));
    st.acked = calloc(st.cap, sizeof(double));
    st.arrived = calloc(st.cap, sizeof(double));
    conn_open(&subc, argv[3], 1);
    put(&subc, "SUB deliver.lat 2\r\n");
    create_consumer(&subc, stream, "deliver.lat", "new", NULL, NULL);
    conn_open(&pubc, argv[2], 0);
    put(&pubc, "SUB _INBOX.l.* 1\r\nPING\r\n");
    flush_out(&pubc);
    ep = epoll_create1(0);
    ev.events = EPOLLIN;
    ev.data.ptr = &pubc;
    epoll_ctl(ep, EPOLL_CTL_ADD, pubc.fd, &ev);
    ev.data.ptr = &subc;
    epoll_ctl(ep, EPOLL_CTL_ADD, subc.fd, &ev);
    usleep(300000);
    interval = 1.0 / rate;
    started = now_s();
    for (;;) {
        double t = now_s(), due = started + (double)k * interval;
        int timeout, n, j;
        if (t - started < seconds && k < st.cap && t >= due) {
            char payload[32];
            int len = snprintf(payload, sizeof payload, "%lu", k);
            st.sent[k] = now_s();
            put(&pubc, "PUB %s _INBOX.l.%lu %d\r\n%s\r\n", subject, k, len, payload);
            flush_out(&pubc);
            k++;
            continue;
        }
        if (t - started >= seconds && (st.seen >= k || t - started > seconds + 10)) {
            break;
        }
        timeout = t - started < seconds ? (int)((due - t) * 1000) : 100;
        n = epoll_wait(ep, evs, 16, timeout < 0 ? 0 : timeout);
        for (j = 0; j < n; j++) {
            conn_read(evs[j].data.ptr, lat_on_msg, &st);
            flush_out(evs[j].data.ptr);
        }
    }
    for (i = 0; i < k; i++) {
        if (st.arrived[i] > 0) {
            sample_add(&from_send, (st.arrived[i] - st.sent[i]) * 1000);
            if (st.acked[i] > 0) {
                sample_add(&from_ack, (st.arrived[i] - st.acked[i]) * 1000);
            }
        }
    }
    qsort(from_send.v, from_send.n, sizeof(double), cmp_double);
    qsort(from_ack.v, from_ack.n, sizeof(double), cmp_double);
    printf("%lu %lu %.3f %.3f %.3f %.3f %.3f %.3f\n", st.seen, k,
           pct(from_send.v, from_send.n, 0.5), pct(from_send.v, from_send.n, 0.99),
           pct(from_send.v, from_send.n, 1), pct(from_ack.v, from_ack.n, 0.5),
           pct(from_ack.v, from_ack.n, 0.99), pct(from_ack.v, from_ack.n, 1));
    return st.seen == k ? 0 : 1;
}

struct replay_state {
    unsigned long seen;
};

static void replay_on_msg(struct conn *c, const struct msg *m, void *ctx)
{
    struct replay_state *st = ctx;
    (void)c;
    if (m->sid == 2 && !m->has_headers) {
        st->seen++;
    }
}

static int run_replay(char **argv)
{
    struct conn c;
    struct replay_state st = {0};
    unsigned long want = strtoul(argv[4], NULL, 10);
    double started, last = now_s();

    conn_open(&c, argv[2], 2);
    put(&c, "SUB deliver.replay 2\r\n");
    started = now_s();
    create_consumer(&c, argv[3], "deliver.replay", "all", replay_on_msg, &st);
    while (st.seen < want) {
        size_t before = st.seen;
        conn_read(&c, replay_on_msg, &st);
        flush_out(&c);
        if (st.seen != before) {
            last = now_s();
        } else if (now_s() - last > 10) {
            die("replay stalled at %lu of %lu", st.seen, want);
        }
    }
    printf("%lu %.3f %.0f\n", st.seen, now_s() - started, (double)st.seen / (now_s() - started));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "pub") == 0) {
        return run_pub(argc, argv);
    }
    if (argc == 8 && strcmp(argv[1], "latency") == 0) {
        return run_latency(argv);
    }
    if (argc == 5 && strcmp(argv[1], "replay") == 0) {
        return run_replay(argv);
    }
    fprintf(stderr, "usage: nats-load pub ADDR SUBJECT CONNS SECONDS [INFLIGHT [COUNT]]\n"
                    "       nats-load latency PUB_ADDR SUB_ADDR SUBJECT STREAM RATE SECONDS\n"
                    "       nats-load replay ADDR STREAM N\n");
    return 2;
}
