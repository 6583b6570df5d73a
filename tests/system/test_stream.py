"""The Server-Sent Events stream: live, resume, filter, heartbeat, backlog,
and a stalled subscriber that must not hold anything up."""
import re
import socket
import threading
import time

from harness import TOKEN, Suite, check, expect, wait_until
from sse import SSE


def mkdirs(n, count, prefix="d", key=None):
    for i in range(count):
        expect(n.command("directory.Create", {"Parent": "root", "Name": "%s%d" % (prefix, i)}), 200)


def test_live_and_backlog(s):
    n = s.node()
    mkdirs(n, 3)
    st = SSE(n, "/api_v2/events/stream?after=0")
    check(st.status == 200 and st.headers["content-type"].startswith("text/event-stream"))
    check(st.headers.get("x-varasto-seq") == "3")
    evs = st.events(3)
    check([e[0] for e in evs] == [1, 2, 3], evs)
    check(all(t == "directory.Created" for _, t, _ in evs))
    check(evs[0][2]["Seq"] == 1 and evs[0][2]["Type"] == "directory.Created" and
          evs[0][2]["Data"]["Name"] == "d0", evs[0])
    # live: a new command's event arrives without reconnecting
    mkdirs(n, 2, prefix="live")
    evs = st.events(2)
    check([e[0] for e in evs] == [4, 5], evs)
    check(st.next_event(timeout=0.3) is None)  # nothing more
    st.close()


def test_resume_after_and_last_event_id(s):
    n = s.node()
    mkdirs(n, 6)
    st = SSE(n, "/api_v2/events/stream?after=4")
    check([e[0] for e in st.events(2)] == [5, 6])
    st.close()
    # Last-Event-ID wins over ?after (a browser resends the original URL)
    st = SSE(n, "/api_v2/events/stream?after=1", headers={"Last-Event-ID": "3"})
    check([e[0] for e in st.events(3)] == [4, 5, 6])
    st.close()
    # a cursor ahead of the log waits for the log to get there
    st = SSE(n, "/api_v2/events/stream?after=7")
    mkdirs(n, 2, prefix="x")
    check([e[0] for e in st.events(1)] == [8])
    st.close()
    bad = SSE(n, "/api_v2/events/stream?after=abc")
    check(bad.status == 400)
    bad.close()


def test_type_filter(s):
    n = s.node()
    d = n.command("directory.Create", {"Parent": "root", "Name": "a"}).json()["Id"]
    c = n.command("collection.Create", {"ParentDir": d, "Name": "c"}).json()["Id"]
    n.command("collection.Tag", {"Id": c, "Tag": "t"})
    n.command("directory.Rename", {"Id": d, "Name": "b"})
    st = SSE(n, "/api_v2/events/stream?types=collection.Tagged,directory.Renamed")
    evs = st.events(2)
    check([(e[0], e[1]) for e in evs] == [(3, "collection.Tagged"), (4, "directory.Renamed")], evs)
    n.command("collection.Untag", {"Id": c, "Tag": "t"})
    n.command("directory.Rename", {"Id": d, "Name": "c"})
    check([e[0] for e in st.events(1)] == [6])
    st.close()


def test_heartbeat(s):
    n = s.node(extra=["--heartbeat-ms", "100"])
    st = SSE(n)
    check(st.next_event(timeout=0.6) is None)
    check(st.comments >= 3, st.comments)
    st.close()


def test_backlog_from_store_after_restart(s):
    # After a restart the in-memory ring is empty: the backlog comes from
    # SQLite in pages; more events than one page.
    n = s.node()
    total = 2500
    threads = []
    def writer(k):
        c = n.client()
        for i in range(total // 5):
            expect(c.command("directory.Create", {"Parent": "root", "Name": "w%d-%d" % (k, i)}), 200)
        c.close_conn()
    for k in range(5):
        t = threading.Thread(target=writer, args=(k,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(120)
    n.stop()
    n.start()
    st = SSE(n, "/api_v2/events/stream?after=0")
    evs = st.events(total, timeout=60)
    check([e[0] for e in evs] == list(range(1, total + 1)), (len(evs), evs[-1:] if evs else None))
    st.close()


def test_stalled_subscriber_does_not_block(s):
    n = s.node()
    # A subscriber that never reads: its socket buffers fill up.
    raw = socket.create_connection(("127.0.0.1", n.http_port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    raw.sendall(("GET /api_v2/events/stream?after=0 HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer %s\r\n\r\n" % TOKEN).encode())
    live = SSE(n)
    pad = "p" * 3000
    started = time.monotonic()
    count = 400
    for i in range(count):
        r = n.command("directory.Create", {"Parent": "root", "Name": "n%d" % i})
        expect(r, 200)
        n.command("directory.ChangeDescription", {"Id": r.json()["Id"], "Description": pad})
    elapsed = time.monotonic() - started
    # the healthy subscriber got everything, in order
    evs = live.events(2 * count, timeout=30)
    check([e[0] for e in evs] == list(range(1, 2 * count + 1)), len(evs))
    # reads still answer quickly
    t0 = time.monotonic()
    expect(n.request("GET", "/api_v2/health", auth=False), 200)
    check(time.monotonic() - t0 < 1.0)
    # the stalled one, once it reads, gets everything in order too
    data = b""
    raw.settimeout(5)
    deadline = time.monotonic() + 30
    want = 2 * count
    while time.monotonic() < deadline and data.count(b"\nid: ") + data.startswith(b"id: ") < want:
        try:
            chunk = raw.recv(1 << 16)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    seqs = [int(x) for x in re.findall(rb"(?:^|\n)id: (\d+)\n", data)]
    check(seqs == list(range(1, want + 1)), (len(seqs), seqs[-3:]))
    raw.close()
    live.close()
    check(elapsed < 60, elapsed)


def test_disconnects_are_cleaned_up(s):
    n = s.node()
    for _ in range(50):
        st = SSE(n)
        st.close()
    # abrupt resets while events flow
    socks = []
    for _ in range(20):
        raw = socket.create_connection(("127.0.0.1", n.http_port))
        raw.sendall(("GET /api_v2/events/stream HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer %s\r\n\r\n" % TOKEN).encode())
        socks.append(raw)
    mkdirs(n, 5)
    for raw in socks:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        raw.close()
    mkdirs(n, 5, prefix="y")
    st = SSE(n, "/api_v2/events/stream?after=0")
    check([e[0] for e in st.events(10)] == list(range(1, 11)))
    st.close()
    check(n.stop() == 0)


if __name__ == "__main__":
    Suite().run([test_live_and_backlog, test_resume_after_and_last_event_id, test_type_filter,
                 test_heartbeat, test_backlog_from_store_after_restart,
                 test_stalled_subscriber_does_not_block, test_disconnects_are_cleaned_up])
