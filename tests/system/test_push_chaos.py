"""Exactly-once push under chaos: a subscriber that stores its cursor with
its processing follows a follower while writers issue commands; its
connection is cut several times and it resumes on a random other node; the
node it follows is killed with kill -9 once. Every Seq is processed exactly
once, in order, and equals the log. Plus: a stalled subscriber does not slow
writers by more than 2x."""
import random
import socket
import threading
import time

from harness import (TOKEN, Suite, all_events, check, create_with_retries, expect, leader_of,
                     wait_until)
from sse import SSE


def start_writers(nodes, count_threads, per_thread, acked, errors, stop):
    def run(k):
        clients = [n.client() for n in nodes]
        for i in range(per_thread):
            if stop.is_set():
                break
            name = "c%d-%d" % (k, i)
            r = create_with_retries(clients, k, name, stop=stop)
            if r is not None and r.status == 200:
                acked.append(name)
            elif r is not None:
                errors.append(r)
        for c in clients:
            c.close_conn()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(count_threads)]
    for t in threads:
        t.start()
    return threads


def test_exactly_once_under_chaos(s):
    rnd = random.Random(20261126)
    nodes = s.cluster(3, extra=["--command-timeout-ms", "3000"])
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    acked, errors = [], []
    stop = threading.Event()
    writers = start_writers(nodes, 4, 500, acked, errors, stop)

    processed = []          # the subscriber's own store: seqs, in order
    cursor = 0              # stored with the processing
    dead = set()
    killed = False
    current = [n for n in nodes if n is not leader][0]
    cuts = 0
    deadline = time.monotonic() + 120
    final_seq = None
    while time.monotonic() < deadline:
        st = None
        try:
            st = SSE(current, "/api_v2/events/stream", headers={"Last-Event-ID": str(cursor)},
                     timeout=5)
            check(st.status == 200, st.status)
            budget = rnd.randint(50, 400)
            while budget > 0:
                ev = st.next_event(timeout=1.0)
                if ev is None:
                    break
                seq, _, data = ev
                check(seq == cursor + 1, "gap or duplicate: got %d after %d" % (seq, cursor))
                check(data["Seq"] == seq)
                processed.append(seq)
                cursor = seq
                budget -= 1
                if not killed and len(processed) > 600:
                    # the node we follow dies mid-stream
                    killed = True
                    current.kill9()
                    dead.add(current.id)
                    break
        except OSError:
            pass
        finally:
            if st is not None:
                st.close()
        cuts += 1
        if killed and dead and len(processed) > 1200:
            for n in nodes:
                if n.id in dead:
                    n.start(wait=False)
                    dead.discard(n.id)
        if final_seq is None and all(not t.is_alive() for t in writers):
            live = [n for n in nodes if n.id not in dead]
            final_seq = max(n.request("GET", "/api_v2/health", auth=False).json()["AppliedSeq"]
                            for n in live)
        if final_seq is not None and cursor >= final_seq:
            break
        # resume on a random other live node, with the stored cursor
        live = [n for n in nodes if n.id not in dead and n is not current]
        current = rnd.choice(live)
    stop.set()
    for t in writers:
        t.join(60)
    check(not errors, errors[:3])
    check(killed and cuts >= 3, (killed, cuts))
    check(final_seq is not None and cursor == final_seq, (cursor, final_seq))
    check(processed == list(range(1, final_seq + 1)), "not exactly 1..N once")
    for n in nodes:
        if n.proc.poll() is not None:
            n.start(wait=False)
    for n in nodes:
        n.wait_ready(30)
    log = [e["Seq"] for e in all_events(nodes[0], min_seq=final_seq)]
    check(log == processed, "the processed seqs are the log")
    check(len(set(acked)) == len(acked) and len(acked) >= 1000, len(acked))


def test_stalled_subscriber_costs_writers_little(s):
    n = s.node()
    d = expect(n.command("directory.Create", {"Parent": "root", "Name": "d"}), 200).json()["Id"]
    pad = "p" * 2000

    def write_burst(count):
        started = time.monotonic()
        for i in range(count):
            expect(n.command("directory.ChangeDescription", {"Id": d, "Description": pad + str(i)}),
                   200)
        return time.monotonic() - started

    def stall(count):
        """Subscribers from the start that never read: the kernel buffers
        fill, then the node holds one batch each and pulls no more."""
        socks = []
        for _ in range(count):
            raw = socket.create_connection(("127.0.0.1", n.http_port))
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            raw.sendall(("GET /api_v2/events/stream?after=0 HTTP/1.1\r\nHost: x\r\n"
                         "Authorization: Bearer %s\r\n\r\n" % TOKEN).encode())
            socks.append(raw)
        time.sleep(0.5)  # until their buffers are full and they are paused
        return socks

    write_burst(50)  # warm up
    # Bursts without and with stalled subscribers, alternating, so that
    # whatever else loads the machine meanwhile weighs on both sides.
    baseline, loaded = [], []
    for _ in range(3):
        baseline.append(write_burst(200))
        stalled = stall(20)
        loaded.append(write_burst(200))
        for raw in stalled:
            raw.close()
    check(min(loaded) < 2 * min(baseline),
          "writers slowed %.2fx (bursts %s without, %s with stalled subscribers)"
          % (min(loaded) / min(baseline), ["%.2f" % t for t in baseline],
             ["%.2f" % t for t in loaded]))
    stalled = stall(20)
    # a healthy subscriber still gets everything
    last = n.request("GET", "/api_v2/health", auth=False).json()["AppliedSeq"]
    st = SSE(n, "/api_v2/events/stream?after=0")
    seqs = [e[0] for e in st.events(last, timeout=30)]
    check(seqs == list(range(1, last + 1)), len(seqs))
    st.close()
    for raw in stalled:
        raw.close()


def test_thousand_subscribers(s):
    import re
    import resource
    import selectors
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1000
    if soft < want + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    n = s.node()
    sel = selectors.DefaultSelector()
    socks = []
    for i in range(want):
        raw = socket.create_connection(("127.0.0.1", n.http_port), timeout=10)
        raw.sendall(("GET /api_v2/events/stream?after=0 HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer %s\r\n\r\n" % TOKEN).encode())
        raw.setblocking(False)
        sel.register(raw, selectors.EVENT_READ, i)
        socks.append(raw)
    events = 20
    started = time.monotonic()
    for i in range(events):
        expect(n.command("directory.Create", {"Parent": "root", "Name": "f%d" % i}), 200)
    write_time = time.monotonic() - started
    data = [b""] * want
    done = set()
    deadline = time.monotonic() + 60
    pattern = re.compile(rb"(?:^|\n)id: (\d+)\n")
    while len(done) < want and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            i = key.data
            try:
                chunk = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            data[i] += chunk
            if i not in done and data[i].count(b"\nid: ") >= events:
                done.add(i)
    for raw in socks:
        sel.unregister(raw)
        raw.close()
    check(len(done) == want, "%d of %d subscribers got everything" % (len(done), want))
    for i in (0, want // 2, want - 1):
        seqs = [int(x) for x in pattern.findall(data[i])]
        check(seqs == list(range(1, events + 1)), (i, seqs))
    # 1,000 open streams do not make commands slow
    check(write_time < 10, write_time)
    check(n.request("GET", "/api_v2/health", auth=False).status == 200)


if __name__ == "__main__":
    Suite().run([test_exactly_once_under_chaos, test_stalled_subscriber_costs_writers_little,
                 test_thousand_subscribers])
