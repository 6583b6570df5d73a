/* The push hub over the real FSM and store: events reach subscribers in
 * order from the ring or, for an old cursor, from SQLite; pulls are bounded;
 * filters skip events but move the cursor; waiting subscribers are woken
 * once, a slice at a time. */
#include <stdlib.h>

#include "apply.h"
#include "push.h"
#include "testlib.h"

/* What the frame function saw, in order. */
#define SEEN_MAX 4096
static struct {
    uint64_t seq[SEEN_MAX];
    char type[SEEN_MAX][48];
    unsigned n;
} seen;

static void frame(struct buf *out, uint64_t seq, const char *type, const char *json, size_t len)
{
    if (seen.n < SEEN_MAX) {
        seen.seq[seen.n] = seq;
        util_copy(seen.type[seen.n], sizeof seen.type[0], type);
    }
    seen.n++;
    buf_appendf(out, "%llu %s ", (unsigned long long)seq, type);
    buf_append(out, json, len);
    buf_append(out, "\n", 1);
}

/* The node's wiring: the FSM's observer feeds the hub. */
struct fixture {
    struct harness h;
    struct push push;
    unsigned backlog_calls;
};

static void on_commit(void *data, const struct domain_event *events, unsigned n, uint64_t last_seq)
{
    struct fixture *f = data;
    push_publish(&f->push, events, n, last_seq);
}

static void on_restore(void *data, uint64_t last_seq)
{
    struct fixture *f = data;
    push_reset(&f->push, last_seq);
}

static void on_backlog(void *data)
{
    struct fixture *f = data;
    f->backlog_calls++;
}

static struct fixture *fixture_open(void)
{
    struct fixture *f = calloc(1, sizeof *f);
    harness_open(&f->h);
    push_init(&f->push, &f->h.store, f->h.fsm.last_seq);
    f->push.on_backlog = on_backlog;
    f->push.on_backlog_data = f;
    f->h.fsm.observer.data = f;
    f->h.fsm.observer.on_commit = on_commit;
    f->h.fsm.observer.on_restore = on_restore;
    memset(&seen, 0, sizeof seen);
    return f;
}

static void fixture_close(struct fixture *f)
{
    push_close(&f->push);
    harness_close(&f->h);
    free(f);
}

/* @n directory.Created events. */
static void create_dirs(struct harness *h, const char *prefix, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        char json[96], id[32];
        snprintf(json, sizeof json, "{\"Parent\":\"root\",\"Name\":\"%s%u\"}", prefix, i);
        snprintf(id, sizeof id, "%s%u", prefix, i);
        CHECK_INT(harness_apply(h, "directory.Create", json, id, NULL), 200);
    }
}

/* @n directory.DescriptionChanged events of about 4 KiB each. */
static void describe_root(struct harness *h, unsigned n)
{
    static char json[4200];
    unsigned i;
    int len = snprintf(json, sizeof json, "{\"Id\":\"root\",\"Description\":\"");
    memset(json + len, 'd', 4000);
    for (i = 0; i < n; i++) {
        json[len] = (char)('a' + i % 26); /* each a real change */
        snprintf(json + len + 4000, sizeof json - (size_t)len - 4000, "\"}");
        CHECK_INT(harness_apply(h, "directory.ChangeDescription", json, NULL, NULL), 200);
    }
}

static void subscribe(struct push *p, struct push_sub *s, uint64_t cursor, const char *types,
                      void (*wake)(struct push_sub *))
{
    memset(s, 0, sizeof *s);
    s->cursor = cursor;
    CHECK_INT(type_filter_parse(&s->filter, types), 0);
    s->frame = frame;
    s->wake = wake;
    push_subscribe(p, s);
}

/* Pull until caught up; returns the batches pulled, and checks each pull's
 * byte bound (a batch stops once it reaches the bound: one frame over). */
static unsigned drain(struct push_sub *s, size_t max_frame)
{
    unsigned pulls = 0, guard;
    for (guard = 0; guard < 100000 && !s->waiting; guard++) {
        struct buf out;
        buf_init(&out);
        push_pull(s, &out);
        CHECK(out.len < PUSH_BATCH_BYTES + max_frame);
        if (out.len > 0) {
            pulls++;
        }
        buf_free(&out);
    }
    CHECK(s->waiting);
    return pulls;
}

/* Pull into @out until the subscriber waits, at most @limit times (a pull
 * that makes no progress must not hang the test). */
static void pull_all(struct push_sub *s, struct buf *out, unsigned limit)
{
    unsigned i;
    for (i = 0; i < limit && !s->waiting; i++) {
        push_pull(s, out);
    }
    CHECK(s->waiting);
}

/* seen.seq is exactly @first..@last. */
static void check_seen_range(uint64_t first, uint64_t last)
{
    unsigned i, bad = 0;
    CHECK_INT(seen.n, last - first + 1);
    for (i = 0; i < seen.n && i < SEEN_MAX; i++) {
        if (seen.seq[i] != first + i) {
            bad++;
        }
    }
    CHECK_INT(bad, 0);
}

static void no_wake(struct push_sub *s)
{
    (void)s;
    CHECK(!"unexpected wake");
}

static void test_publish_and_pull_in_order(void)
{
    struct fixture *f = fixture_open();
    struct push_sub s;
    struct buf out;

    subscribe(&f->push, &s, 0, "", no_wake);
    create_dirs(&f->h, "a", 5);
    CHECK_INT(f->push.last_seq, 5);
    buf_init(&out);
    CHECK_INT(push_pull(&s, &out), 5);
    CHECK_INT(s.cursor, 5);
    check_seen_range(1, 5);
    CHECK_STR(seen.type[0], "directory.Created");
    /* the frame carries the event document as the FSM committed it */
    CHECK_CONTAINS(out.data, "1 directory.Created {\"Seq\":1,");
    CHECK_CONTAINS(out.data, "\"Name\":\"a4\"");
    CHECK(!s.waiting);
    /* caught up: nothing appended, and now waiting to be woken */
    out.len = 0;
    CHECK_INT(push_pull(&s, &out), 0);
    CHECK_INT(out.len, 0);
    CHECK(s.waiting);
    buf_free(&out);
    push_unsubscribe(&s);
    CHECK_INT(f->push.n_subs, 0);
    fixture_close(f);
}

/* A cursor older than the ring pages its backlog from SQLite, in order and
 * without a gap or repeat where the ring takes over. */
static void test_backlog_from_store(void)
{
    struct fixture *f = fixture_open();
    struct push_sub s, late;
    unsigned pulls;

    /* 1500 events committed before the hub existed (a restart): only in
     * SQLite, more than one PUSH_PAGE_EVENTS page. */
    f->h.fsm.observer.on_commit = NULL;
    create_dirs(&f->h, "old", 1500);
    push_init(&f->push, &f->h.store, f->h.fsm.last_seq);
    f->h.fsm.observer.on_commit = on_commit;
    create_dirs(&f->h, "new", 20);
    CHECK_INT(f->push.last_seq, 1520);
    CHECK_INT(f->push.ring_first, 1501);

    subscribe(&f->push, &s, 0, "", no_wake);
    pulls = drain(&s, 512);
    check_seen_range(1, 1520);
    CHECK_INT(s.cursor, 1520);
    /* ~150-byte events: 64 KiB batches, so several pulls */
    CHECK(pulls >= 3);

    /* a cursor inside the backlog resumes right after it */
    memset(&seen, 0, sizeof seen);
    subscribe(&f->push, &late, 1498, "", no_wake);
    drain(&late, 512);
    check_seen_range(1499, 1520);
    push_unsubscribe(&s);
    push_unsubscribe(&late);
    fixture_close(f);
}

/* Events below the ring that SQLite no longer has (retention pruned them):
 * the pull makes no progress and leaves the subscriber waiting, so that its
 * transport's pull loop ends instead of spinning on the loop thread. */
static void test_missing_backlog_waits_instead_of_spinning(void)
{
    struct fixture *f = fixture_open();
    struct push_sub s;
    struct buf out;

    f->h.fsm.observer.on_commit = NULL;
    create_dirs(&f->h, "old", 30);
    push_init(&f->push, &f->h.store, f->h.fsm.last_seq);
    f->h.fsm.observer.on_commit = on_commit;
    create_dirs(&f->h, "new", 5);
    CHECK_INT(f->push.ring_first, 31);
    CHECK_INT(store_prune_events(&f->h.store, 30), 30);

    subscribe(&f->push, &s, 0, "", no_wake);
    buf_init(&out);
    CHECK_INT(push_pull(&s, &out), 0);
    CHECK_INT(out.len, 0);
    CHECK_INT(s.cursor, 0); /* never skipped ahead */
    CHECK(s.waiting);
    push_unsubscribe(&s);
    /* nor with a filter, which reads only matching rows and would find
     * none left below the ring */
    subscribe(&f->push, &s, 0, "directory.", no_wake);
    CHECK_INT(push_pull(&s, &out), 0);
    CHECK_INT(s.cursor, 0);
    CHECK(s.waiting);
    buf_free(&out);
    push_unsubscribe(&s);
    fixture_close(f);
}

/* One pull appends at most about PUSH_BATCH_BYTES, from the ring and from
 * SQLite alike, and the next pull carries on where it stopped. */
static void test_batch_bytes_bound(void)
{
    struct fixture *f = fixture_open();
    struct push_sub s;
    struct buf out;
    unsigned n;

    describe_root(&f->h, 60); /* ~250 KiB of events in the ring */
    subscribe(&f->push, &s, 0, "", no_wake);
    buf_init(&out);
    n = push_pull(&s, &out);
    CHECK(n > 0 && n < 60);
    CHECK(out.len >= PUSH_BATCH_BYTES);
    CHECK(out.len < PUSH_BATCH_BYTES + 4300);
    CHECK_INT(s.cursor, n);
    out.len = 0;
    CHECK(push_pull(&s, &out) > 0);
    CHECK(out.len < PUSH_BATCH_BYTES + 4300);
    buf_free(&out);
    drain(&s, 4300);
    check_seen_range(1, 60);

    /* the same events again, now only in SQLite */
    push_reset(&f->push, f->h.fsm.last_seq);
    memset(&seen, 0, sizeof seen);
    s.cursor = 0;
    s.waiting = 0;
    buf_init(&out);
    n = push_pull(&s, &out);
    CHECK(n > 0 && n < 60);
    CHECK(out.len >= PUSH_BATCH_BYTES);
    CHECK(out.len < PUSH_BATCH_BYTES + 4300);
    buf_free(&out);
    drain(&s, 4300);
    check_seen_range(1, 60);
    push_unsubscribe(&s);
    fixture_close(f);
}

/* Events a filter rejects are not delivered, but the cursor moves past
 * them, so a caught-up filtered subscriber waits instead of rescanning. */
static void test_filter_skips_and_advances(void)
{
    struct fixture *f = fixture_open();
    struct push_sub s, none;
    struct buf out;

    create_dirs(&f->h, "a", 3); /* seq 1-3 */
    describe_root(&f->h, 2);    /* seq 4-5 */
    create_dirs(&f->h, "b", 3); /* seq 6-8 */
    subscribe(&f->push, &s, 0, "directory.Desc", no_wake);
    buf_init(&out);
    CHECK_INT(push_pull(&s, &out), 2);
    CHECK_INT(seen.n, 2);
    CHECK_INT(seen.seq[0], 4);
    CHECK_INT(seen.seq[1], 5);
    CHECK_INT(s.cursor, 8);
    out.len = 0;
    CHECK_INT(push_pull(&s, &out), 0);
    CHECK(s.waiting);

    /* a filter that matches nothing: caught up with nothing delivered */
    memset(&seen, 0, sizeof seen);
    subscribe(&f->push, &none, 0, "collection.", no_wake);
    out.len = 0;
    CHECK_INT(push_pull(&none, &out), 0);
    CHECK_INT(none.cursor, 8);
    CHECK(none.waiting);

    /* and the same from SQLite */
    push_reset(&f->push, f->h.fsm.last_seq);
    s.cursor = none.cursor = 0;
    s.waiting = none.waiting = 0;
    out.len = 0;
    pull_all(&s, &out, 10);
    CHECK_INT(seen.n, 2);
    CHECK_INT(seen.seq[0], 4);
    CHECK_INT(s.cursor, 8);
    pull_all(&none, &out, 10);
    CHECK_INT(none.cursor, 8);
    CHECK_INT(seen.n, 2);
    buf_free(&out);
    push_unsubscribe(&s);
    push_unsubscribe(&none);
    fixture_close(f);
}

/* A filter over a backlog that holds nothing for it: each pull looks at a
 * bounded number of events, moves the cursor over them and asks to be
 * woken from the next loop iteration, until it reaches what it wants. */
static void test_filtered_backlog_is_bounded_per_pull(void)
{
    struct fixture *f = fixture_open();
    struct push_sub s;
    struct buf out;
    unsigned pulls = 0, calls_before;

    f->h.fsm.observer.on_commit = NULL;
    create_dirs(&f->h, "old", 3 * PUSH_SCAN_BUDGET / 2);
    describe_root(&f->h, 1); /* the one event the filter passes, still below the ring */
    push_init(&f->push, &f->h.store, f->h.fsm.last_seq);
    f->push.on_backlog = on_backlog;
    f->push.on_backlog_data = f;
    f->h.fsm.observer.on_commit = on_commit;
    subscribe(&f->push, &s, 0, "directory.Desc", no_wake);
    buf_init(&out);
    calls_before = f->backlog_calls;
    CHECK_INT(push_pull(&s, &out), 0);
    CHECK(s.waiting);
    CHECK(s.cursor >= PUSH_SCAN_BUDGET && s.cursor < (uint64_t)3 * PUSH_SCAN_BUDGET / 2);
    CHECK_INT(f->backlog_calls, calls_before + 1);
    while (seen.n == 0 && pulls < 10) {
        s.waiting = 0; /* what push_wake_some does */
        push_pull(&s, &out);
        pulls++;
    }
    CHECK_INT(seen.n, 1);
    CHECK_INT(seen.seq[0], 3 * PUSH_SCAN_BUDGET / 2 + 1);
    CHECK(pulls <= 2);
    buf_free(&out);
    push_unsubscribe(&s);
    fixture_close(f);
}

static unsigned wakes;
static void count_wake(struct push_sub *s)
{
    (void)s;
    wakes++;
}

/* A waiting subscriber is woken once when events arrive, and not again
 * until it has pulled and waits again; one that is not waiting is never
 * woken. */
static void test_wake_once(void)
{
    struct fixture *f = fixture_open();
    struct push_sub s, busy;
    struct buf out;

    wakes = 0;
    subscribe(&f->push, &s, 0, "", count_wake);
    subscribe(&f->push, &busy, 0, "", count_wake);
    buf_init(&out);
    CHECK_INT(push_pull(&s, &out), 0);
    CHECK(s.waiting);
    create_dirs(&f->h, "a", 1);
    CHECK_INT(wakes, 1);
    CHECK(!s.waiting);
    create_dirs(&f->h, "b", 2);
    CHECK_INT(wakes, 1);
    CHECK_INT(push_pull(&s, &out), 3);
    CHECK_INT(push_pull(&s, &out), 0);
    create_dirs(&f->h, "c", 1);
    CHECK_INT(wakes, 2);
    /* an apply that emits no event (a rejected command) wakes no one */
    CHECK_INT(push_pull(&s, &out), 1);
    CHECK_INT(push_pull(&s, &out), 0);
    CHECK_INT(harness_apply(&f->h, "directory.Delete", "{\"Id\":\"nope\"}", NULL, NULL), 404);
    CHECK_INT(wakes, 2);
    buf_free(&out);
    push_unsubscribe(&s);
    push_unsubscribe(&busy);
    fixture_close(f);
}

/* A large fan-out is woken PUSH_WAKE_SLICE at a time: the first slice at
 * publish, and the owner is told (once) to wake the rest later. */
static void test_wake_budget_and_backlog(void)
{
    enum { N = 3 * PUSH_WAKE_SLICE + 8 };
    struct fixture *f = fixture_open();
    struct push_sub *subs = calloc(N, sizeof *subs);
    struct buf out;
    unsigned i;

    wakes = 0;
    buf_init(&out);
    for (i = 0; i < N; i++) {
        subscribe(&f->push, &subs[i], 0, "", count_wake);
        push_pull(&subs[i], &out);
    }
    create_dirs(&f->h, "a", 1);
    CHECK_INT(wakes, PUSH_WAKE_SLICE);
    CHECK_INT(f->backlog_calls, 1);
    CHECK_INT(push_wake_some(&f->push, PUSH_WAKE_SLICE), N - 2 * PUSH_WAKE_SLICE);
    CHECK_INT(wakes, 2 * PUSH_WAKE_SLICE);
    /* events arriving meanwhile wake the next slice, none twice, and the
     * owner is told again that some are left */
    create_dirs(&f->h, "b", 1);
    CHECK_INT(wakes, 3 * PUSH_WAKE_SLICE);
    CHECK_INT(f->backlog_calls, 2);
    CHECK_INT(push_wake_some(&f->push, PUSH_WAKE_SLICE), 0);
    CHECK_INT(wakes, N);
    CHECK_INT(push_wake_some(&f->push, PUSH_WAKE_SLICE), 0);
    CHECK_INT(wakes, N);
    for (i = 0; i < N; i++) {
        CHECK(!subs[i].waiting);
    }

    /* a fan-out within one slice needs no help from the owner */
    for (i = 0; i < N; i++) {
        out.len = 0;
        pull_all(&subs[i], &out, 10);
        if (i >= PUSH_WAKE_SLICE) {
            push_unsubscribe(&subs[i]);
        }
    }
    wakes = 0;
    f->backlog_calls = 0;
    create_dirs(&f->h, "c", 1);
    CHECK_INT(wakes, PUSH_WAKE_SLICE);
    CHECK_INT(f->backlog_calls, 0);
    for (i = 0; i < PUSH_WAKE_SLICE; i++) {
        push_unsubscribe(&subs[i]);
    }
    CHECK_INT(f->push.n_subs, 0);
    buf_free(&out);
    free(subs);
    fixture_close(f);
}

/* After a snapshot restore the ring's events are another history: the hub
 * forgets them, wakes waiting subscribers, and serves the restored events
 * from SQLite. */
static void test_reset_after_restore(void)
{
    struct fixture *f = fixture_open();
    struct harness a;
    struct raft_buffer *bufs = NULL, copy;
    unsigned n = 0, i;
    size_t off = 0;
    struct push_sub s;
    struct buf out;

    /* this node's history: 3 events in the ring, read by the subscriber */
    wakes = 0;
    create_dirs(&f->h, "local", 3);
    subscribe(&f->push, &s, 0, "", count_wake);
    buf_init(&out);
    pull_all(&s, &out, 10);
    /* the leader's: 10 events */
    harness_open(&a);
    create_dirs(&a, "leader", 10);
    CHECK_INT(a.fsm.raft_fsm.snapshot(&a.fsm.raft_fsm, &bufs, &n), 0);
    CHECK_INT(a.fsm.raft_fsm.snapshot_async(&a.fsm.raft_fsm, &bufs, &n), 0);
    copy.len = 0;
    for (i = 0; i < n; i++) {
        copy.len += bufs[i].len;
    }
    copy.base = raft_malloc(copy.len);
    for (i = 0; i < n; i++) {
        memcpy((char *)copy.base + off, bufs[i].base, bufs[i].len);
        off += bufs[i].len;
    }
    CHECK_INT(a.fsm.raft_fsm.snapshot_finalize(&a.fsm.raft_fsm, &bufs, &n), 0);
    CHECK_INT(f->h.fsm.raft_fsm.restore(&f->h.fsm.raft_fsm, &copy), 0);

    CHECK_INT(f->push.last_seq, 10);
    CHECK_INT(f->push.ring_first, 11);
    CHECK_INT(wakes, 1);
    /* a fresh reader gets the restored history, not this node's old one */
    memset(&seen, 0, sizeof seen);
    s.cursor = 0;
    s.waiting = 0;
    buf_free(&out);
    buf_init(&out);
    pull_all(&s, &out, 10);
    check_seen_range(1, 10);
    CHECK(out.len > 0);
    CHECK_CONTAINS(out.data, "\"Name\":\"leader0\"");
    CHECK(out.data == NULL || strstr(out.data, "local") == NULL);
    buf_free(&out);
    push_unsubscribe(&s);
    harness_close(&a);
    fixture_close(f);
}

/* A wake callback may unsubscribe and free its own subscriber (its
 * transport failed): the others are still woken. */
static struct push_sub *dying;
static void wake_and_die(struct push_sub *s)
{
    wakes++;
    if (s == dying) {
        push_unsubscribe(s);
        free(s);
    }
}

static void test_unsubscribe_during_wake(void)
{
    struct fixture *f = fixture_open();
    struct push_sub *subs[5];
    struct buf out;
    unsigned i;

    wakes = 0;
    buf_init(&out);
    for (i = 0; i < 5; i++) {
        subs[i] = malloc(sizeof *subs[i]);
        subscribe(&f->push, subs[i], 0, "", wake_and_die);
        push_pull(subs[i], &out);
    }
    dying = subs[2];
    create_dirs(&f->h, "a", 1);
    CHECK_INT(wakes, 5);
    CHECK_INT(f->push.n_subs, 4);
    /* the list still holds the other four, and only them */
    for (i = 0; i < 5; i++) {
        if (i != 2) {
            CHECK_INT(push_pull(subs[i], &out), 1);
            push_pull(subs[i], &out);
        }
    }
    dying = NULL;
    create_dirs(&f->h, "b", 1);
    CHECK_INT(wakes, 9);
    for (i = 0; i < 5; i++) {
        if (i != 2) {
            push_unsubscribe(subs[i]);
            free(subs[i]);
        }
    }
    CHECK_INT(f->push.n_subs, 0);
    CHECK(f->push.subs == NULL);
    buf_free(&out);
    fixture_close(f);
}

int main(void)
{
    RUN(test_publish_and_pull_in_order);
    RUN(test_backlog_from_store);
    RUN(test_missing_backlog_waits_instead_of_spinning);
    RUN(test_batch_bytes_bound);
    RUN(test_filter_skips_and_advances);
    RUN(test_filtered_backlog_is_bounded_per_pull);
    RUN(test_wake_once);
    RUN(test_wake_budget_and_backlog);
    RUN(test_reset_after_restore);
    RUN(test_unsubscribe_during_wake);
    return test_report("push");
}
