"""Acknowledged writes survive kill -9; restarts after snapshots restore the
same state; nothing is applied twice."""
import threading
import time

from harness import Suite, all_events, check, expect, wait_until


def writers(n, count_threads, stop, acked, errors, prefix):
    def run(k):
        c = n.client()
        i = 0
        while not stop.is_set() and i < 100000:
            name = "%s%d-%d" % (prefix, k, i)
            key = "key-" + name
            try:
                r = c.command("directory.Create", {"Parent": "root", "Name": name}, key=key,
                              timeout=5)
            except OSError:
                break  # the node died: this command is unknown, not acknowledged
            if r.status == 200:
                acked.append((name, r.json()["Id"], r.json()["Seq"]))
            else:
                errors.append(r)
            i += 1
        c.close_conn()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(count_threads)]
    for t in threads:
        t.start()
    return threads


def test_kill9_during_writes(s):
    n = s.node(extra=["--snapshot-threshold", "256"])
    stop = threading.Event()
    acked, errors = [], []
    threads = writers(n, 8, stop, acked, errors, "a")
    wait_until(lambda: len(acked) >= 1500, 60, what="1500 acknowledged writes")
    n.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    check(not errors, errors[:3])
    n.start()
    root = n.request("GET", "/api_v2/directories/root").json()
    names = [d["Name"] for d in root["SubDirectories"]]
    check(len(names) == len(set(names)), "a name twice")
    present = set(names)
    missing = [a for a in acked if a[0] not in present]
    check(not missing, "acknowledged but lost: %r" % missing[:5])
    evs = all_events(n)
    check([e["Seq"] for e in evs] == list(range(1, len(evs) + 1)), "gap in seqs")
    created = [e["Data"]["Name"] for e in evs if e["Type"] == "directory.Created"]
    check(len(created) == len(set(created)), "an event twice")
    check(set(created) == present)
    # every acknowledged Seq is the event that carried that command
    by_seq = {e["Seq"]: e for e in evs}
    for name, did, seq in acked[:200]:
        check(by_seq[seq]["Data"]["Id"] == did, (name, seq))
    # retrying an acknowledged command after the crash replays it
    name, did, seq = acked[0]
    r = expect(n.command("directory.Create", {"Parent": "root", "Name": name}, key="key-" + name), 200)
    check(r.json()["Id"] == did and r.header("idempotent-replayed") == "true")
    # the node takes writes again and continues the sequence
    r = expect(n.command("directory.Create", {"Parent": "root", "Name": "after-crash"}), 200)
    check(r.json()["Seq"] == len(evs) + 1)


def test_restart_after_snapshots(s):
    n = s.node(extra=["--snapshot-threshold", "64"])
    c = n.command("collection.Create", {"ParentDir": "root", "Name": "c"}).json()["Id"]
    for i in range(400):
        expect(n.command("collection.Tag", {"Id": c, "Tag": "t%03d" % i}), 200)
        if i % 3 == 0:
            expect(n.command("collection.Untag", {"Id": c, "Tag": "t%03d" % (i // 2)}), 200)
    before = n.request("GET", "/api_v2/collections/" + c).json()
    evs = all_events(n)
    check("snapshot at index" in n.read_log(), "snapshots were taken")
    for round_ in range(3):
        if round_ == 1:
            n.kill9()
        else:
            check(n.stop() == 0)
        n.start()
        check(n.request("GET", "/api_v2/collections/" + c).json() == before, round_)
        check(all_events(n) == evs, round_)
    raft_dir = n.data_dir + "/raft"
    import os
    segments = [f for f in os.listdir(raft_dir) if f[0].isdigit()]
    # compaction: far fewer entries kept than written (the log was truncated)
    check(len(evs) > 500 and len(segments) <= 6, segments)


def test_kill9_with_subscriber_resume(s):
    # a subscriber that stores its cursor sees every event exactly once
    # across a node crash
    from sse import SSE
    n = s.node()
    for i in range(50):
        n.command("directory.Create", {"Parent": "root", "Name": "x%d" % i})
    st = SSE(n, "/api_v2/events/stream?after=0")
    seen = [e[0] for e in st.events(30)]
    n.kill9()
    st.close()
    n.start()
    for i in range(20):
        n.command("directory.Create", {"Parent": "root", "Name": "y%d" % i})
    st = SSE(n, "/api_v2/events/stream", headers={"Last-Event-ID": str(seen[-1])})
    seen += [e[0] for e in st.events(40)]
    st.close()
    check(seen == list(range(1, 71)), seen)


if __name__ == "__main__":
    Suite().run([test_kill9_during_writes, test_restart_after_snapshots,
                 test_kill9_with_subscriber_resume])
