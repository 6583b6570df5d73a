"""A three-node cluster on loopback: any node takes any command, conflicts
are decided by the log, a leader's death loses nothing acknowledged, and a
lost quorum answers 503 in bounded time while local reads go on."""
import json
import os
import signal
import struct
import threading
import time

import peer
from harness import (TOKEN, Suite, all_events, check, create_with_retries, expect, free_port,
                     leader_of, wait_until)


def test_any_node_takes_commands(s):
    nodes = s.cluster(3)
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    last = 0
    for n in nodes:
        r = expect(n.command("directory.Create", {"Parent": "root", "Name": "from%d" % n.id}), 200)
        body = r.json()
        check(body["Seq"] > last and "Id" in body and "Index" in body, body)
        last = body["Seq"]
        # the node that answered has applied it: read-your-writes right there
        view = n.request("GET", "/api_v2/directories/" + body["Id"]).json()
        check(view["Directory"]["Name"] == "from%d" % n.id, view)
        # and every node shows it once it has applied that seq
        for m in nodes:
            v = expect(m.request("GET", "/api_v2/directories/%s?min_seq=%d"
                                 % (body["Id"], body["Seq"])), 200).json()
            check(v["Directory"]["Id"] == body["Id"])
    # errors and idempotency come back unchanged through a follower
    follower = [n for n in nodes if n is not leader][0]
    expect(follower.command("directory.Create", {"Parent": "root", "Name": "from1"}), 409, "conflict")
    expect(follower.command("directory.Delete", {"Id": "nope"}), 404, "not_found")
    first = expect(follower.command("directory.Create", {"Parent": "root", "Name": "k"}, key="k1"), 200)
    other = [n for n in nodes if n is not follower][0]
    again = expect(other.command("directory.Create", {"Parent": "root", "Name": "k"}, key="k1"), 200)
    check(again.json() == first.json() and again.header("idempotent-replayed") == "true")
    expect(other.command("directory.Create", {"Parent": "root", "Name": "kk"}, key="k1"),
           422, "idempotency_mismatch")
    # an API key made through a follower works on every node at once
    key = expect(follower.command("apikey.Create", {"Name": "ci"}), 200).json()
    for m in nodes:
        seq = key["Seq"]
        expect(m.request("GET", "/api_v2/events?min_seq=%d" % seq), 200)
        expect(m.request("GET", "/api_v2/directories/root", token=key["Token"]), 200)
    # the same Seq is the same event on every node
    logs = [all_events(n, min_seq=key["Seq"]) for n in nodes]
    check(logs[0] == logs[1] == logs[2] and len(logs[0]) == key["Seq"], [len(l) for l in logs])


def test_concurrent_conflict(s):
    nodes = s.cluster(3)
    wait_until(lambda: leader_of(nodes), 15, what="a leader")
    for round_ in range(5):
        barrier = threading.Barrier(3)
        results = [None] * 3

        def send(i):
            c = nodes[i].client()
            barrier.wait(5)
            results[i] = c.command("directory.Create", {"Parent": "root", "Name": "race%d" % round_})
            c.close_conn()
        threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        statuses = sorted(r.status for r in results)
        check(statuses == [200, 409, 409], (round_, results))
    root = nodes[0].request("GET", "/api_v2/directories/root?consistency=linearizable")
    if root.status == 503:  # not the leader: read with min_seq instead
        seq = max(int(n.request("GET", "/api_v2/health", auth=False).json()["AppliedSeq"])
                  for n in nodes)
        root = nodes[0].request("GET", "/api_v2/directories/root?min_seq=%d" % seq)
    names = [d["Name"] for d in root.json()["SubDirectories"]]
    check(sorted(names) == ["race%d" % i for i in range(5)], names)
    check_batched_outcomes(nodes)


def check_batched_outcomes(nodes):
    """Commands arriving together share one raft append; each still gets
    its own entry's outcome: its own Id, Seq and Index, and of eight creates
    of one name on the leader exactly one succeeds."""
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    follower = [n for n in nodes if n is not leader][0]
    for round_ in range(3):
        jobs = [(leader if i % 2 else follower, "b%d-%d" % (round_, i)) for i in range(16)]
        jobs += [(leader, "same%d" % round_)] * 8
        barrier = threading.Barrier(len(jobs))
        results = [None] * len(jobs)

        def send(i):
            node, name = jobs[i]
            c = node.client()
            barrier.wait(5)
            results[i] = c.command("directory.Create", {"Parent": "root", "Name": name})
            c.close_conn()
        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        distinct = [r for r in results[:16]]
        check(all(r is not None and r.status == 200 for r in distinct), (round_, distinct))
        bodies = [r.json() for r in distinct]
        # one event each; commands taken together share a log entry (and its
        # Index), and the log orders them as Seq does
        check(len({b["Seq"] for b in bodies}) == 16, bodies)
        by_seq = sorted(bodies, key=lambda b: b["Seq"])
        check(all(a["Index"] <= b["Index"] for a, b in zip(by_seq, by_seq[1:])), by_seq)
        for (node, name), b in zip(jobs, bodies):
            view = expect(leader.request("GET", "/api_v2/directories/%s?min_seq=%d"
                                         % (b["Id"], b["Seq"])), 200).json()
            check(view["Directory"]["Name"] == name, (name, view))
        same = sorted(r.status for r in results[16:])
        check(same == [200] + [409] * 7, (round_, results[16:]))


def test_leader_kill9_loses_nothing(s):
    nodes = s.cluster(3, extra=["--command-timeout-ms", "3000"])
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    stop = threading.Event()
    acked = {}
    lock = threading.Lock()
    errors = []

    def writer(k):
        clients = [n.client() for n in nodes]
        i = 0
        while not stop.is_set() and i < 400:
            name = "w%d-%d" % (k, i)
            r = create_with_retries(clients, k, name)
            if r is not None and r.status == 200:
                with lock:
                    acked[name] = r.json()
            elif r is not None:
                errors.append((name, r))
            i += 1
        for c in clients:
            c.close_conn()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 300, 60, what="300 acknowledged writes")
    killed_at = time.monotonic()
    leader.kill9()
    others = [n for n in nodes if n is not leader]
    new_leader = wait_until(lambda: leader_of(others), 15, what="a new leader")
    elect_time = time.monotonic() - killed_at
    wait_until(lambda: len(acked) >= 600, 60, what="writes after failover")
    stop.set()
    for t in threads:
        t.join(60)
    check(not errors, errors[:3])
    check(elect_time < 10, elect_time)
    leader.start(wait=False)
    leader.wait_ready(30)
    top = max(a["Seq"] for a in acked.values())
    logs = [all_events(n, min_seq=top) for n in nodes]
    check(logs[0] == logs[1] == logs[2], [len(l) for l in logs])
    created = [e["Data"]["Name"] for e in logs[0] if e["Type"] == "directory.Created"]
    check(len(created) == len(set(created)), "a command applied twice")
    check(set(acked) <= set(created), "acknowledged but lost: %r" % list(set(acked) - set(created))[:5])
    check([e["Seq"] for e in logs[0]] == list(range(1, len(logs[0]) + 1)))
    for name, body in list(acked.items())[:100]:
        check(logs[0][body["Seq"] - 1]["Data"]["Id"] == body["Id"], name)
    # read models agree too
    views = [n.request("GET", "/api_v2/directories/root?min_seq=%d" % top).json() for n in nodes]
    check(views[0] == views[1] == views[2])
    check(new_leader is not None)


def test_quorum_loss(s):
    nodes = s.cluster(3, extra=["--command-timeout-ms", "2000"])
    wait_until(lambda: leader_of(nodes), 15, what="a leader")
    r = expect(nodes[0].command("directory.Create", {"Parent": "root", "Name": "before"}), 200)
    seq = r.json()["Seq"]
    for n in nodes:
        expect(n.request("GET", "/api_v2/events?min_seq=%d" % seq), 200)
    nodes[1].kill9()
    nodes[2].kill9()
    survivor = nodes[0]
    started = time.monotonic()
    r = survivor.command("directory.Create", {"Parent": "root", "Name": "after"}, timeout=15)
    took = time.monotonic() - started
    expect(r, 503, "unavailable")
    check(r.header("retry-after") is not None)
    check(took < 5, took)
    # local reads still answer
    view = expect(survivor.request("GET", "/api_v2/directories/root"), 200).json()
    check([d["Name"] for d in view["SubDirectories"]] == ["before"])
    # health says there is no leader, within an election timeout or two
    wait_until(lambda: survivor.request("GET", "/api_v2/health", auth=False).status == 503, 10,
               what="health to report no leader")
    # a 503 never says "not applied" of a command the log went on to apply
    for n in nodes[1:]:
        n.start(wait=False)
    leader = wait_until(lambda: leader_of(nodes), 30, what="a leader again")
    names = [e["Data"]["Name"] for e in all_events(leader)
             if e["Type"] == "directory.Created"]
    if "after" in names:
        check("may" in r.json()["Error"], r.json())


def test_big_commands_through_a_follower(s):
    """Commands near the 1 MiB body limit, many at once through a follower:
    its forwards to the leader stay within what the leader reads (each
    batch flushed before it would pass it), so every one is applied."""
    nodes = s.cluster(3)
    leader = leader_of(nodes)
    follower = [n for n in nodes if n is not leader][0]
    d = expect(leader.command("directory.Create", {"Parent": "root", "Name": "big"}), 200)
    colls = [expect(leader.command("collection.Create", {"ParentDir": d.json()["Id"],
                                                         "Name": "c%d" % i}), 200).json()["Id"]
             for i in range(16)]
    files = [{"Path": ("p%04d-" % i) + "x" * 195, "Sha256": "0" * 64,
              "Created": "2026-01-01T00:00:00.000Z", "Modified": "2026-01-01T00:00:00.000Z",
              "Size": 10, "BlobRefs": ["r1"]} for i in range(2400)]
    results = {}

    def commit(c):
        # alternately ~0.45 and ~0.8 MiB of log entry: a batch that holds a
        # small one and then a big one would pass the leader's limit
        n = 1400 if colls.index(c) % 2 == 0 else 2400
        body = {"ID": "cs1", "Parent": "", "Created": "2026-01-01T00:00:00.000Z",
                "FilesCreated": files[:n], "FilesUpdated": [], "FilesDeleted": []}
        raw = json.dumps(body).encode()
        results[c] = (len(raw), follower.client().request(
            "POST", "/api_v2/collections/%s/changesets" % c, raw=raw, timeout=30).status)
    threads = [threading.Thread(target=commit, args=(c,)) for c in colls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(all(size < 1024 * 1024 for size, _ in results.values()), results)
    check(all(status == 200 for _, status in results.values()), results)
    for c in colls:
        check(leader.request("GET", "/api_v2/collections/" + c).json()["Head"] == "cs1", c)


def test_change_during_a_promotion_says_what_it_waits_for(s):
    """A node added as a voter that cannot catch up (nothing listens at its
    raft address) holds other membership changes back while raft runs its
    catch-up rounds: they get 409 naming the node being promoted."""
    nodes = s.cluster(3)
    leader = leader_of(nodes)
    answered = {}

    def add():
        answered["add"] = leader.client().command(
            "cluster.AddNode", {"Id": 7, "RaftAddress": "127.0.0.1:%d" % free_port(),
                                "HttpAddress": "127.0.0.1:%d" % free_port(), "Role": "voter"},
            timeout=90).status
    t = threading.Thread(target=add, daemon=True)
    t.start()
    seen = []

    def refused_naming_node_7():
        # before the add reaches raft node 7 is unknown (404); while the entry
        # that adds it is uncommitted the 409 is generic; never a 200
        r = leader.command("cluster.RemoveNode", {"Id": 7})
        seen.append((r.status, r.json().get("Error")))
        check(r.status == 409 or (r.status == 404 and all(st == 404 for st, _ in seen)), seen)
        return r if "node 7 is catching up to become a voter" in r.json()["Error"] else None
    wait_until(refused_naming_node_7, 20, interval=0.2,
               what="a change refused naming node 7 while it is promoted")
    check(leader.command("directory.Create", {"Parent": "root", "Name": "meanwhile"}).status
          == 200)


def test_membership_views_and_linearizable_reads(s):
    nodes = s.cluster(3)
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    # every node knows every node, with the HTTP addresses they announced
    want = {n.id: ("127.0.0.1:%d" % n.raft_port, n.http_addr) for n in nodes}

    def complete(n):
        got = n.request("GET", "/api_v2/nodes").json()
        return {m["Id"]: (m["RaftAddress"], m["HttpAddress"]) for m in got} == want
    for n in nodes:
        wait_until(lambda: complete(n), 10, what="node %d to know every address" % n.id)
        got = n.request("GET", "/api_v2/nodes").json()
        check(all(m["Role"] == "voter" for m in got), got)
        c = expect(n.request("GET", "/api_v2/cluster"), 200).json()
        check(c["Leader"] == leader.id and c["Term"] >= 1 and c["CommitIndex"] >= 1, c)
        check(c["Node"]["Id"] == n.id and c["Node"]["AppliedIndex"] >= 1, c)
        check(sorted(m["Id"] for m in c["Members"]) == [1, 2, 3])
        if n is leader:
            wait_until(lambda: all(m["Reachable"] for m in
                                   n.request("GET", "/api_v2/cluster").json()["Members"]), 5,
                       what="the leader to hear from everyone")
        else:
            check(c["Node"]["Role"] == "follower")
    expect(nodes[0].request("GET", "/api_v2/nodes", auth=False), 401)
    # a linearizable read on a follower sees a write acknowledged by another
    # node before it, with no min_seq
    followers = [n for n in nodes if n is not leader]
    for i in range(20):
        writer, reader = followers[i % 2], followers[(i + 1) % 2]
        d = expect(writer.command("directory.Create", {"Parent": "root", "Name": "l%d" % i}), 200)
        r = expect(reader.request("GET", "/api_v2/directories/%s?consistency=linearizable"
                                  % d.json()["Id"]), 200)
        check(r.json()["Directory"]["Name"] == "l%d" % i)
    # internal endpoints want another node's signature, not an API key
    # (the rest of their authentication: test_peers.py)
    key = leader.command("apikey.Create", {"Name": "k"}).json()["Token"]
    expect(leader.request("POST", "/internal/barrier", raw=b"", token=key), 401)
    signer = peer.Signer(TOKEN, 2)
    expect(peer.signed_request(leader, signer, "/internal/apply", b"junk")[0], 400)
    # a forward request bigger than one raft batch is refused whole
    # a well-formed entry (Command "x", empty Payload, NodeId 1, TimeMs 1),
    # framed as the log holds it: magic, length, protobuf, padding to 8
    entry = b"\x0a\x01x\x12\x00\x28\x01\x30\x01"
    frame = struct.pack("<II", 0x56415231, len(entry)) + entry + b"\0" * (-len(entry) % 8)
    before = leader.request("GET", "/api_v2/cluster").json()["CommitIndex"]
    r = expect(peer.signed_request(leader, signer, "/internal/apply", frame * 257)[0], 400,
               "bad_request")
    check("at most 256 entries" in r.json()["Error"], r.json())
    time.sleep(0.2)
    after = leader.request("GET", "/api_v2/cluster").json()["CommitIndex"]
    check(after - before < 257, (before, after))


def test_linearizable_reads_under_writes(s):
    # Linearizable reads on every node, many at once (they share barriers
    # and read indexes per loop iteration), while one writer renames a
    # directory again and again through the leader: every read shows the
    # last rename acknowledged before the read was sent, or a later one.
    nodes = s.cluster(3)
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    for n in nodes:
        knows_leader_address(n, leader)  # a follower asks it for read indexes
    d = expect(leader.command("directory.Create", {"Parent": "root", "Name": "v0"}), 200)
    d = d.json()["Id"]
    acked = [0]
    stop = threading.Event()
    errors, reads = [], [0]
    lock = threading.Lock()

    def write():
        c = leader.client()
        i = 0
        while not stop.is_set() and i < 2000:
            i += 1
            r = c.command("directory.Rename", {"Id": d, "Name": "v%d" % i})
            if r.status != 200:
                errors.append(("write", r))
                break
            acked[0] = i
        c.close_conn()

    def read(node):
        c = node.client()
        deadline = time.monotonic() + 20
        while not stop.is_set() and time.monotonic() < deadline:
            before = acked[0]
            r = c.request("GET", "/api_v2/directories/%s?consistency=linearizable" % d)
            if r.status != 200:
                errors.append(("read", node.id, r))
                break
            seen = int(r.json()["Directory"]["Name"][1:])
            if seen < before:
                errors.append(("stale", node.id, before, seen))
                break
            with lock:
                reads[0] += 1
        c.close_conn()

    threads = [threading.Thread(target=write)]
    threads += [threading.Thread(target=read, args=(n,)) for n in nodes for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: (reads[0] >= 1500 and acked[0] >= 200) or errors, 30,
                   what="1,500 linearizable reads and 200 writes")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    check(not errors, errors[:3])


def test_membership_changes(s):
    from harness import Node
    nodes = s.cluster(3, extra=["--snapshot-threshold", "64"])
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    for i in range(300):
        expect(nodes[i % 3].command("directory.Create", {"Parent": "root", "Name": "m%d" % i}), 200)
    seq = max(n.request("GET", "/api_v2/health", auth=False).json()["AppliedSeq"] for n in nodes)
    check(seq >= 300, seq)
    # a fourth node joins through a follower, catches up (the log was
    # compacted: through a snapshot) and serves reads
    follower = [n for n in nodes if n is not leader][0]
    fourth = Node(s.varastod, s.dirs[-1], 4, ["--join", "http://" + follower.http_addr,
                                              "--snapshot-threshold", "64"],
                  nodes[0].token_file)
    s.nodes.append(fourth)
    fourth.start(wait=False)
    fourth.wait_ready(30)
    evs = expect(fourth.request("GET", "/api_v2/events?limit=10000&min_seq=%d" % seq), 200).json()
    check([e["Seq"] for e in evs[:seq]] == list(range(1, seq + 1)))
    check("restored snapshot" in fourth.read_log(), "the new node installed a snapshot")
    root = fourth.request("GET", "/api_v2/directories/root?min_seq=%d" % seq).json()
    check(len(root["SubDirectories"]) == 300)
    # the role is raft's configuration; the address is recorded through the
    # log right after the promotion
    members = wait_until(lambda: [m for m in leader.request("GET", "/api_v2/nodes").json()
                                  if m["Id"] == 4 and m["Role"] == "voter" and
                                  m["HttpAddress"] == fourth.http_addr], 15,
                         what="node 4 to be a voter with its address")
    check(members[0]["RaftAddress"] == "127.0.0.1:%d" % fourth.raft_port, members)
    added = [e for e in leader.request("GET", "/api_v2/events?types=cluster.&limit=10000").json()]
    check(added and added[-1]["Type"] == "cluster.NodeAdded" and added[-1]["Data"]["Id"] == 4, added)
    # it takes commands too (forwarded to the leader)
    expect(fourth.command("directory.Create", {"Parent": "root", "Name": "via4"}), 200)
    # joining again is a no-op
    expect(leader.command("cluster.AddNode", {"Id": 4, "RaftAddress": "127.0.0.1:%d" % fourth.raft_port,
                                              "HttpAddress": fourth.http_addr}), 200)
    expect(leader.command("cluster.AddNode", {"Id": 4, "RaftAddress": "127.0.0.1:1",
                                              "HttpAddress": fourth.http_addr}), 409, "conflict")
    # nor its HTTP address: every follower would forward to it (SPEC 7.1)
    r = expect(follower.command("cluster.AddNode", {"Id": 4,
                                                    "RaftAddress": "127.0.0.1:%d" % fourth.raft_port,
                                                    "HttpAddress": "127.0.0.1:1"}), 409, "conflict")
    check("HttpAddress" in r.json()["Error"], r.json())
    for n in (leader, follower):
        check([m["HttpAddress"] for m in n.request("GET", "/api_v2/nodes").json()
               if m["Id"] == 4] == [fourth.http_addr])
    expect(leader.command("cluster.AddNode", {"Id": 9, "RaftAddress": "nope",
                                              "HttpAddress": "x"}), 400, "bad_request")
    # remove it, through a follower
    expect(follower.command("cluster.RemoveNode", {"Id": 4}), 200)
    check(4 not in [m["Id"] for m in leader.request("GET", "/api_v2/nodes").json()])
    last = leader.request("GET", "/api_v2/events?types=cluster.NodeRemoved").json()
    check(last and last[-1]["Data"] == {"Id": 4}, last)
    expect(leader.command("cluster.RemoveNode", {"Id": 4}), 404, "not_found")
    fourth.stop()
    # transfer leadership to a chosen node
    target = [n for n in nodes if n is not leader][1]
    r = expect(follower.command("cluster.TransferLeadership", {"Id": target.id}), 200)
    check(r.json() == {"Leader": target.id}, r)
    wait_until(lambda: leader_of(nodes) is target, 10, what="the new leader")
    # removing the leader hands leadership over first
    r = expect(follower.command("cluster.RemoveNode", {"Id": target.id}), 200)
    rest = [n for n in nodes if n is not target]
    new_leader = wait_until(lambda: leader_of(rest), 15, what="a leader among the rest")
    check(new_leader is not target)
    ids = [m["Id"] for m in new_leader.request("GET", "/api_v2/nodes").json()]
    check(sorted(ids) == sorted(n.id for n in rest), ids)
    # the two that remain still make a quorum
    expect(rest[0].command("directory.Create", {"Parent": "root", "Name": "after-removal"}), 200)


def test_join_node_restarted_before_it_was_added(s):
    """A node started with --join that stops before it is added (here: the
    member it asks is unreachable), with a raft metadata file but no term
    in it (its first metadata write met a full disk), and starts again, now
    with a reachable member, joins that cluster. (With a metadata file the
    node no longer looked new: it bootstrapped a one-node cluster of
    itself and never asked to join. A 600 s nemesis run found it: node 3,
    wiped and joining, had its disk filled, was killed and restarted, and
    went on with a log of its own.)"""
    from harness import Node, free_port
    nodes = s.cluster(3)
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    expect(leader.command("directory.Create", {"Parent": "root", "Name": "before"}), 200)
    fourth = Node(s.varastod, s.dirs[-1], 4, ["--join", "http://127.0.0.1:%d" % free_port()],
                  nodes[0].token_file)
    s.nodes.append(fourth)
    fourth.start(wait=False)
    wait_until(lambda: "asking http://127.0.0.1" in fourth.read_log(), 15, what="a join attempt")
    time.sleep(0.5)
    check(fourth.stop() == 0, fourth.read_log())
    # what raft_uv's first metadata write leaves when the disk is full
    meta = os.path.join(fourth.data_dir, "raft", "metadata1")
    if not os.path.exists(meta):
        open(meta, "wb").close()
    fourth.extra = ["--join", "http://" + leader.http_addr]
    fourth.start(wait=False)
    fourth.wait_ready(30)
    wait_until(lambda: [m for m in leader.request("GET", "/api_v2/nodes").json()
                        if m["Id"] == 4 and m["Role"] == "voter"], 20,
               what="node 4 to be added as a voter")
    check("bootstrapped" not in fourth.read_log(), fourth.read_log())
    root = expect(fourth.request("GET", "/api_v2/directories/root?min_seq=1"), 200).json()
    check([d["Name"] for d in root["SubDirectories"]] == ["before"], root)


def leader_named_by_all(nodes):
    """The leader's id once every node's /api_v2/health names the same
    leader, else None. It says nothing of whether a follower has the
    leader's HTTP address yet (see knows_leader_address)."""
    ids = []
    for n in nodes:
        if n.proc.poll() is not None:
            raise AssertionError("node %d exited with %s; log:\n%s"
                                 % (n.id, n.proc.returncode, n.read_log()))
        try:
            h = n.request("GET", "/api_v2/health", auth=False, timeout=2)
        except OSError:
            n.close_conn()
            return None
        if h.status != 200:
            return None
        ids.append(h.json().get("Leader"))
    return ids[0] if ids[0] and len(set(ids)) == 1 else None


def test_membership_command_through_a_follower_right_after_start(s):
    """A membership command sent to a follower right after the cluster
    forms, once every node's health names the leader but (most likely)
    before the follower has applied the leader's announced HTTP address,
    waits for that address like any command does, and is then relayed: it
    is not answered 503 at once. Each attempt is a fresh cluster: a
    cluster.TransferLeadership, or a cluster.RemoveNode sent together with a
    directory.Create (which waits today), then cluster.AddNode of the
    removed node back."""
    failures = []
    for attempt in range(4):
        nodes = s.cluster(3, start=False)
        for n in nodes:
            n.start(wait=False)
        # deliberately not knows_leader_address: only until health names it
        lead_id = wait_until(lambda: leader_named_by_all(nodes), 30, interval=0.002,
                             what="every node's health to name the leader")
        lead = [n for n in nodes if n.id == lead_id][0]
        follower, other = [n for n in nodes if n is not lead]
        if attempt % 2 == 0:
            r = follower.command("cluster.TransferLeadership", {"Id": other.id}, timeout=15)
            if r.status != 200:
                failures.append(("TransferLeadership", attempt, r,
                                 leader_address_known(follower, lead)))
            else:
                check(r.json() == {"Leader": other.id}, (attempt, r))
                wait_until(lambda: leader_named_by_all(nodes) == other.id, 10,
                           what="every node's health to name node %d" % other.id)
                d = expect(follower.command("directory.Create",
                                            {"Parent": "root", "Name": "after%d" % attempt}), 200)
                check("Id" in d.json() and d.json()["Seq"] >= 1, d)
        else:
            # directory.Create through the same follower, at the same time
            created = {}

            def create():
                c = follower.client()
                created["r"] = c.command("directory.Create",
                                         {"Parent": "root", "Name": "with%d" % attempt},
                                         timeout=15)
                c.close_conn()
            t = threading.Thread(target=create)
            t.start()
            r = follower.command("cluster.RemoveNode", {"Id": other.id}, timeout=15)
            t.join(20)
            d = created.get("r")
            check(d is not None and d.status == 200 and "Id" in d.json(), (attempt, d))
            if r.status != 200:
                failures.append(("RemoveNode", attempt, r, leader_address_known(follower, lead)))
            else:
                body = r.json()
                check(isinstance(body.get("Seq"), int) and isinstance(body.get("Index"), int),
                      (attempt, body))
                ids = [m["Id"] for m in expect(lead.request(
                    "GET", "/api_v2/nodes?min_seq=%d" % body["Seq"]), 200).json()]
                check(sorted(ids) == sorted([lead.id, follower.id]), (attempt, ids))
                ev = expect(lead.request("GET", "/api_v2/events?types=cluster.NodeRemoved"
                                         "&min_seq=%d" % body["Seq"]), 200).json()
                check(ev and ev[-1]["Data"] == {"Id": other.id}, (attempt, ev))
                # and back, through the same follower
                r = expect(follower.command("cluster.AddNode", {
                    "Id": other.id, "RaftAddress": "127.0.0.1:%d" % other.raft_port,
                    "HttpAddress": other.http_addr}, timeout=15), 200)
                seq = r.json()["Seq"]
                got = {m["Id"]: (m["Role"], m["HttpAddress"]) for m in expect(lead.request(
                    "GET", "/api_v2/nodes?min_seq=%d" % seq), 200).json()}
                check(got.get(other.id) == ("voter", other.http_addr), (attempt, got))
                ev = expect(lead.request("GET", "/api_v2/events?types=cluster.NodeAdded"
                                         "&min_seq=%d" % seq), 200).json()
                check(ev and ev[-1]["Data"]["Id"] == other.id, (attempt, ev))
                expect(other.command("directory.Create",
                                     {"Parent": "root", "Name": "back%d" % attempt}), 200)
        for n in nodes:
            n.stop(signal.SIGKILL)
    check(not failures, "a membership command through a follower was not relayed "
          "(command, attempt, answer, follower knew the leader's HTTP address afterwards): %r"
          % (failures,))


def test_stop_under_load(s):
    """Nodes stopped (SIGTERM) while every kind of work is in flight on them
    - commands through each node, linearizable reads, SSE and WebSocket
    subscribers, forwarded commands - exit 0 within a few seconds (under
    the sanitizers: with nothing leaked and every handle closed), and every
    command a client saw acknowledged is in the survivors' log."""
    from sse import SSE
    from ws import WS
    nodes = s.cluster(3)
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    for n in nodes:
        knows_leader_address(n, leader)
    stop = threading.Event()
    acked, errors = [], []

    def writer(node, tag):
        c = node.client()
        i = 0
        while not stop.is_set():
            try:
                r = c.command("directory.Create", {"Parent": "root", "Name": "%s-%d" % (tag, i)},
                              timeout=15)
                if r.status == 200:
                    acked.append(r.json()["Id"])
                elif r.status != 503:
                    errors.append(r.status)
            except OSError:
                c.close_conn()
                time.sleep(0.01)
            i += 1

    def reader(node):
        c = node.client()
        while not stop.is_set():
            try:
                r = c.request("GET", "/api_v2/directories/root?consistency=linearizable",
                              timeout=15)
                if r.status not in (200, 503, 504):  # 504: no read index in time
                    errors.append(r.status)
            except OSError:
                c.close_conn()
                time.sleep(0.01)

    threads = [threading.Thread(target=writer, args=(n, "w%d-%d" % (n.id, k))) for n in nodes
               for k in range(2)]
    threads += [threading.Thread(target=reader, args=(n,)) for n in nodes]
    streams = [SSE(n, "/api_v2/events/stream?after=0") for n in nodes]
    sockets = [WS(n, "/api_v2/events/ws?after=0") for n in nodes]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acked) >= 200, 30, what="200 acknowledged commands")
        follower = [n for n in nodes if n is not leader][0]
        for victim in (follower, leader):
            started = time.monotonic()
            rc = victim.stop(timeout=15)
            check(rc == 0, ("exit status of node %d" % victim.id, rc, victim.read_log()))
            check(time.monotonic() - started < 10, "stopped in %.1fs" % (time.monotonic() - started))
            check("handle left" not in victim.read_log(), victim.read_log())
            if victim is follower:
                wait_until(lambda: len(acked) >= 300, 30, what="more commands after a stop")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        for st in streams:
            st.conn.close()
        for w in sockets:
            w.sock.close()
    check(not errors, errors)
    last = [n for n in nodes if n is not leader and n is not follower][0]
    # the survivor has every acknowledged command (it applied them before
    # answering, or got them from the log)
    names = {d["Id"] for d in expect(last.request("GET", "/api_v2/directories/root"), 200)
             .json()["SubDirectories"]}
    missing = [i for i in acked if i not in names]
    check(not missing, ("acknowledged but missing", missing[:5], len(missing)))


def leader_address_known(node, lead):
    """Whether @node lists @lead's HTTP address now (for a failure's message)."""
    try:
        return lead.http_addr in [m["HttpAddress"] for m in
                                  node.request("GET", "/api_v2/nodes").json()]
    except OSError:
        node.close_conn()
        return None


def stop_with_a_command_in_flight(node, paused, name):
    """With @paused SIGSTOPped, send @node a directory.Create, stop @node
    (SIGTERM) while the command waits, and check that @node exits 0 and
    answers 503 saying the command may have been applied."""
    for n in paused:
        n.proc.send_signal(signal.SIGSTOP)
    try:
        result = {}

        def send():
            c = node.client()
            result["r"] = c.command("directory.Create", {"Parent": "root", "Name": name},
                                    timeout=15)
            c.close_conn()
        t = threading.Thread(target=send)
        t.start()
        time.sleep(0.3)  # taken and passed on; no answer can come
        rc = node.stop()
        t.join(15)
        check(rc == 0, ("exit status", rc, node.read_log()))
        r = result.get("r")
        check(r is not None and r.status == 503, r)
        check("may have been applied" in r.json()["Error"], r.json())
    finally:
        for n in paused:
            n.proc.send_signal(signal.SIGCONT)


def knows_leader_address(node, lead):
    """Wait until @node has @lead's HTTP address: the leader announces it
    through the log once elected, and until a node has it, a command sent
    there is parked, never forwarded."""
    wait_until(lambda: lead.http_addr in [m["HttpAddress"] for m in
                                          node.request("GET", "/api_v2/nodes").json()],
               10, what="node %d knows the leader's HTTP address" % node.id)


def test_advertised_http_address(s):
    """--http-advertise is the address the other nodes are told, and forward
    to (here a different spelling of loopback, so that the test can tell it
    from --http); a node that joins announces it too."""
    from harness import Node
    nodes = s.cluster(3, start=False)
    for n in nodes:
        n.extra += ["--http-advertise", "localhost:%d" % n.http_port]
        n.start(wait=False)
    for n in nodes:
        n.wait_ready(30)
    lead = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    joiner = Node(s.varastod, s.dirs[-1], 4, ["--join", "http://" + lead.http_addr,
                                               "--http-advertise", "localhost:0"],
                  nodes[0].token_file)
    joiner.extra[-1] = "localhost:%d" % joiner.http_port
    s.nodes.append(joiner)
    joiner.start()
    everyone = nodes + [joiner]
    want = {n.id: "localhost:%d" % n.http_port for n in everyone}
    for n in everyone:
        wait_until(lambda: {m["Id"]: m["HttpAddress"] for m in
                            n.request("GET", "/api_v2/nodes").json()} == want,
                   15, what="node %d to know every advertised address" % n.id)
    # a command through each other node reaches the leader at its advertised address
    for n in everyone:
        if n is not lead:
            expect(n.command("directory.Create", {"Parent": "root", "Name": "via%d" % n.id}), 200)


def test_stop_with_a_command_in_flight(s):
    """A leader stopped while a command it took waits for a quorum (the
    followers are paused) answers 503 saying the command may have been
    applied, and exits 0."""
    nodes = s.cluster(3)
    lead = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    stop_with_a_command_in_flight(lead, [n for n in nodes if n is not lead], "in-flight")


def test_follower_stop_with_a_forwarded_command(s):
    """A follower stopped while a command it forwarded to the leader awaits
    the leader's answer (the leader and the other follower are paused, so
    no answer comes and no election replaces the leader) tells the client
    the command may have been applied, and exits 0."""
    nodes = s.cluster(3)
    lead = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    follower, other = [n for n in nodes if n is not lead]
    knows_leader_address(follower, lead)
    stop_with_a_command_in_flight(follower, [lead, other], "forwarded")


def test_standby_stop_with_a_command_awaiting_apply(s):
    """A node stopped after the leader has appended a command it forwarded,
    while it waits to apply it, tells the client the command may have been
    applied. The node is a standby (it gets the log but does not count for
    the quorum) and both other voters are paused, so the entry can be
    appended but not committed."""
    from harness import Node
    nodes = s.cluster(3)
    lead = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    standby = Node(s.varastod, s.dirs[-1], 4, None, nodes[0].token_file)
    s.nodes.append(standby)
    expect(lead.command("cluster.AddNode", {"Id": 4, "RaftAddress": "127.0.0.1:%d" % standby.raft_port,
                                            "HttpAddress": standby.http_addr, "Role": "standby"}), 200)
    standby.extra = ["--join", "http://" + lead.http_addr]
    standby.start()
    knows_leader_address(standby, lead)
    stop_with_a_command_in_flight(standby, [n for n in nodes if n is not lead], "awaiting-apply")


if __name__ == "__main__":
    Suite().run([test_big_commands_through_a_follower,
                 test_change_during_a_promotion_says_what_it_waits_for, test_any_node_takes_commands, test_membership_views_and_linearizable_reads,
                 test_linearizable_reads_under_writes,
                 test_membership_changes,
                 test_join_node_restarted_before_it_was_added,
                 test_membership_command_through_a_follower_right_after_start,
                 test_advertised_http_address, test_concurrent_conflict,
                 test_leader_kill9_loses_nothing, test_quorum_loss,
                 test_stop_with_a_command_in_flight, test_follower_stop_with_a_forwarded_command,
                 test_standby_stop_with_a_command_awaiting_apply, test_stop_under_load])
