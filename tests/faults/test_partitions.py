"""Faults on network namespaces (netns.py): nodes cut off from the others
while they are asked to act on them. Needs root; exits 77 (skipped) when it
cannot make namespaces."""
import atexit
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "system"))

import netns  # noqa: E402
from harness import Suite, check, expect, leader_of, wait_until  # noqa: E402

NET = None


def cluster(s, size=3, extra=None):
    return netns.start_cluster(s, NET, size, extra)


def all_alive(nodes):
    for n in nodes:
        check(n.proc.poll() is None,
              ("node %d exited" % n.id, n.proc.returncode, n.read_log()))


def test_transfer_to_an_isolated_follower(s):
    """A leader asked to hand over to a follower it cannot reach answers 503
    once the transfer times out, and it and the cluster go on after the
    network heals. (The leader freed the transfer request while raft's
    TimeoutNow to the unreachable follower still waited in raft_uv; once
    the network healed, the write's callback ran into freed memory and the
    leader died with SIGSEGV within seconds, every time.)"""
    nodes = cluster(s)
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    target = [n for n in nodes if n is not leader][0]
    NET.isolate(nodes.index(target))
    try:
        r = leader.command("cluster.TransferLeadership", {"Id": target.id}, timeout=15)
        check(r.status == 503, (r.status, r.body))
        check("not transferred" in r.json()["Error"], r.json())
    finally:
        NET.heal(nodes.index(target))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        all_alive(nodes)
        time.sleep(0.2)
    lead = wait_until(lambda: leader_of(nodes), 15, what="a leader after the heal")
    expect(lead.command("directory.Create", {"Parent": "root", "Name": "after"}, timeout=15), 200)
    all_alive(nodes)


def test_transfer_from_a_leader_cut_off_from_everyone(s):
    """A leader cut off from both followers and asked to hand over to one of
    them answers 503 within seconds, though it steps down and learns no new
    leader until the network heals; after the heal it goes on as a
    follower. (raft keeps a transfer open while its node knows no leader:
    the request got no answer for as long as the partition lasted, 15 s
    and more in a 600 s nemesis run.)"""
    nodes = cluster(s)
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    others = [n for n in nodes if n is not leader]
    for o in others:
        NET.cut(nodes.index(leader), nodes.index(o))
    try:
        t0 = time.monotonic()
        r = leader.command("cluster.TransferLeadership", {"Id": others[0].id}, timeout=15)
        took = time.monotonic() - t0
        check(r.status == 503, (r.status, r.body))
        check(took < 8, "answered after %.1f s" % took)
    finally:
        for o in others:
            NET.uncut(nodes.index(leader), nodes.index(o))
    lead = wait_until(lambda: leader_of(nodes), 15, what="a leader after the heal")
    expect(lead.command("directory.Create", {"Parent": "root", "Name": "after"}, timeout=15), 200)
    all_alive(nodes)


def test_transfer_to_anyone_with_a_follower_isolated(s):
    """TransferLeadership {} hands leadership to the best voter: with one
    follower cut off and writes going on, the other one, every time. (Raft
    picks the last voter in its configuration unless one has the whole log
    at that instant, so under writes it often chose the isolated follower,
    and the transfer timed out with 503: 5 of 8 tries in a first run.)"""
    nodes = cluster(s)
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    isolated = [n for n in nodes if n is not leader][-1]
    NET.isolate(nodes.index(isolated))
    stop = threading.Event()
    writes = {"n": 0}

    def writer():
        while not stop.is_set():
            for n in nodes:
                if n is isolated:
                    continue
                try:
                    n.client().command("directory.Create", {"Parent": "root",
                                                            "Name": "w%d" % writes["n"]},
                                       timeout=5)
                    writes["n"] += 1
                except OSError:
                    pass
    threads = [threading.Thread(target=writer) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        answers = []
        for _ in range(8):
            lead = wait_until(lambda: leader_of([n for n in nodes if n is not isolated]), 15,
                              what="a leader")
            r = lead.command("cluster.TransferLeadership", {}, timeout=15)
            answers.append((r.status, r.body[:80]))
            time.sleep(0.3)
        check(all(a[0] == 200 for a in answers), answers)
        check(leader_of([n for n in nodes if n is not isolated]) is not None)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        NET.heal(nodes.index(isolated))
    all_alive(nodes)


def test_leader_with_a_full_disk_hands_over(s):
    """A leader whose read model cannot be written answers no command (it
    answers only what it has applied): it hands leadership to a healthy
    voter, so the cluster goes on taking writes; once it has room again it
    catches up. (Before, every command to any node got 503 for as long as
    the leader's disk stayed full: a 600 s nemesis run ended with the
    cluster stuck.)"""
    nodes = netns.start_cluster(s, NET, disks={0: 160, 1: 160, 2: 160})
    for n in nodes:
        atexit.register(n.disk.close)  # after the Suite has stopped the nodes
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    others = [n for n in nodes if n is not leader]
    for i in range(10):
        expect(others[0].command("directory.Create", {"Parent": "root", "Name": "a%d" % i},
                                 timeout=15), 200)
    df = leader.disk.fill()
    check("100%" in df, df)
    k = {"n": 0}

    def writes_go_on():
        k["n"] += 1
        r = others[k["n"] % 2].command("directory.ChangeDescription",
                                       {"Id": "root", "Description": "x" * 4000 + str(k["n"])},
                                       timeout=15)
        lead = leader_of(nodes)
        return r.status == 200 and lead is not None and lead is not leader
    wait_until(writes_go_on, 30, interval=0.05, what="writes taken by a new leader")
    check("handing leadership" in leader.read_log(), leader.read_log())
    check(" ERROR " in leader.read_log(), leader.read_log())
    leader.disk.empty()
    wait_until(lambda: len({applied_seq(n) for n in nodes}) == 1, 30, interval=0.2,
               what="the old leader to catch up")
    all_alive(nodes)


def applied_seq(n):
    try:
        return n.request("GET", "/api_v2/health", auth=False, timeout=2).json()["AppliedSeq"]
    except (OSError, ValueError):
        n.close_conn()
        return -1


def test_partitioned_follower_catches_up_by_snapshot(s):
    """A follower cut off for longer than the log the others keep (a small
    snapshot threshold) catches up by installing a snapshot once healed,
    while writes go on, and then holds the same events as the leader. The
    time it takes is printed (docs/reliability.md)."""
    nodes = cluster(s, extra=["--snapshot-threshold", "64"])
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    follower = [n for n in nodes if n is not leader][0]
    other = [n for n in nodes if n is not leader and n is not follower][0]
    # reset: what the leader still tried to send it (which holds those
    # entries in memory) is dropped, as a long partition's timeouts do
    NET.isolate(nodes.index(follower), reset=True)
    for i in range(600):  # far more than the 64 + trailing entries kept
        expect(leader.command("directory.Create", {"Parent": "root", "Name": "p%d" % i}), 200)
    NET.heal(nodes.index(follower))
    healed = time.monotonic()
    stop = {"n": 0}

    def caught_up():
        # writes go on meanwhile, one per poll
        expect(other.command("directory.Create", {"Parent": "root",
                                                  "Name": "q%d" % stop["n"]}, timeout=15), 200)
        stop["n"] += 1
        lead_seq = applied_seq(leader)
        return applied_seq(follower) >= lead_seq - 1 and lead_seq > 600
    wait_until(caught_up, 60, interval=0.05, what="the follower to catch up")
    took = time.monotonic() - healed
    print("caught up %.2fs after the heal (600 entries missed, %d written meanwhile)"
          % (took, stop["n"]), flush=True)
    check("restored snapshot" in follower.read_log(), "it installed a snapshot")
    seq = applied_seq(leader)
    ev_l = expect(leader.request("GET", "/api_v2/events?limit=10000&min_seq=%d" % seq), 200).json()
    ev_f = expect(follower.request("GET", "/api_v2/events?limit=10000&min_seq=%d" % seq),
                  200).json()
    check([e["Seq"] for e in ev_f[:seq]] == [e["Seq"] for e in ev_l[:seq]])
    check(ev_f[:seq] == ev_l[:seq], "the same events")
    all_alive(nodes)
    # the installed snapshot is the leader's database, but this node's read
    # model from now on: a restart trusts it and rebuilds nothing
    check(follower.stop() == 0)
    follower.start()
    check("moved to" not in follower.read_log(), follower.read_log())


def inside(net):
    global NET
    NET = net
    Suite().run([test_leader_with_a_full_disk_hands_over,
                 test_transfer_to_an_isolated_follower,
                 test_transfer_from_a_leader_cut_off_from_everyone,
                 test_transfer_to_anyone_with_a_follower_isolated,
                 test_partitioned_follower_catches_up_by_snapshot])
    return 0


if __name__ == "__main__":
    sys.exit(netns.main_inside(inside))
