"""A full disk under a node's data dir: a tmpfs of its own, mounted in a
mount namespace made for the node (nothing is mounted where the rest of the
machine sees it), filled with a balloon file. Needs root; exits 77
(skipped) when it cannot make the namespace."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "system"))

import threading  # noqa: E402

from harness import Suite, all_events, check, expect, leader_of, wait_until  # noqa: E402

TMPFS_MB = 160  # raft preallocates three 32 MiB segments; the rest is the read model's


def usable():
    if os.geteuid() != 0:
        return "needs root (a mount namespace and tmpfs)"
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return "cannot make a mount namespace: %s" % r.stderr.strip()
    return None


def on_tmpfs(n, mb):
    """Start @n (later) with its data dir on a tmpfs of @mb MiB of its own."""
    os.makedirs(n.data_dir, exist_ok=True)
    n.wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c",
              'mount -t tmpfs -o size=%dm tmpfs "$0" && exec "$@"' % mb, n.data_dir]


def in_node_ns(n, script):
    """Run the shell @script in @n's mount namespace (where its tmpfs is)."""
    return subprocess.run(["nsenter", "-t", str(n.proc.pid), "-m", "--", "sh", "-c", script],
                          capture_output=True, text=True)


def test_full_disk_refuses_commands_and_recovers(s):
    """SPEC 1.1: a full disk never stops a node: commands get 503 saying
    why, reads go on, one ERROR line, and once there is room again the node
    takes commands by itself, with nothing lost."""
    n = s.node(start=False)
    os.makedirs(n.data_dir, exist_ok=True)
    n.wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c",
              'mount -t tmpfs -o size=%dm tmpfs "$0" && exec "$@"' % TMPFS_MB, n.data_dir]
    n.start()
    names = []
    for i in range(20):
        names.append("before%d" % i)
        expect(n.command("directory.Create", {"Parent": "root", "Name": names[-1]}), 200)
    r = in_node_ns(n, 'dd if=/dev/zero of="%s/balloon" bs=1M 2>/dev/null; sync; df -k "%s"'
                   % (n.data_dir, n.data_dir))
    check("100%" in r.stdout, r.stdout + r.stderr)
    big = "x" * 4000
    refused = None
    for i in range(3000):  # until the read model's WAL has no room to grow
        r = n.command("directory.ChangeDescription", {"Id": "root", "Description": big + str(i)},
                      timeout=15)
        if r.status == 503:
            refused = r
            break
        check(r.status == 200, (r.status, r.body))
    check(refused is not None, "no command was refused on a full disk")
    r = n.command("directory.Create", {"Parent": "root", "Name": "refused"}, timeout=15)
    check(r.status == 503 and "full" in r.json()["Error"], (r.status, r.body))
    check(r.headers.get("retry-after") == "1", r.headers)
    # reads go on, from what the node holds
    root = expect(n.request("GET", "/api_v2/directories/root"), 200).json()
    check(set(names) <= {d["Name"] for d in root["SubDirectories"]}, root)
    check(n.proc.poll() is None, n.read_log())
    check(n.read_log().count(" ERROR ") == 1, n.read_log())
    # room again: commands are taken by themselves
    in_node_ns(n, 'rm -f "%s/balloon"' % n.data_dir)
    wait_until(lambda: n.command("directory.Create", {"Parent": "root", "Name": "after"},
                                 timeout=15).status == 200, 20, interval=0.5,
               what="commands taken again")
    root = expect(n.request("GET", "/api_v2/directories/root"), 200).json()
    got = {d["Name"] for d in root["SubDirectories"]}
    check(set(names) <= got and "after" in got, got)
    check("refused" not in got, got)
    check("written again" in n.read_log(), n.read_log())


def test_follower_raft_log_outgrows_a_full_disk(s):
    """A follower whose disk is full while the leader writes more than its
    raft log has room for (its open segment and the ones raft_uv prepared
    ahead, 3 x 32 MiB): its read model stops, then raft cannot create the
    next segment and retries; the cluster goes on with the other two; the
    follower does not exit, and once there is room it catches up to every
    entry and the same events."""
    # few events kept, so that the read model stays small: the follower's
    # disk must hold the whole raft log once the balloon is gone
    nodes = s.cluster(start=False, extra=["--retain-events", "1000"])
    full = nodes[2]
    on_tmpfs(full, 1024)
    for n in nodes:
        n.start(wait=False)
    for n in nodes:
        n.wait_ready(30)
    leader = wait_until(lambda: leader_of(nodes), 15, what="a leader")
    if leader is full:
        expect(leader.command("cluster.TransferLeadership", {"Id": nodes[0].id}, timeout=15),
               200)
        leader = wait_until(lambda: leader_of(nodes[:2]), 15, what="a leader")
    # fill it, and again once the segment raft_uv was preparing is removed
    r = in_node_ns(full, 'for k in 1 2 3; do dd if=/dev/zero of="%s/balloon$k" bs=1M '
                   '2>/dev/null; sleep 0.3; done; df -k "%s"' % (full.data_dir, full.data_dir))
    check("100%" in r.stdout, r.stdout + r.stderr)
    big = "y" * 4000  # the longest Description is 4096 bytes
    total = 30000  # 30,000 x 4 KB: more than the follower's three segments
    sent, errors = [0], []

    def writer(k):
        c = leader.client()
        while True:
            with lock:
                i = sent[0]
                sent[0] += 1
            if i >= total:
                break
            r = c.command("directory.ChangeDescription",
                          {"Id": "root", "Description": big + str(i)}, timeout=30)
            if r.status != 200:
                errors.append((r.status, r.body[:200]))
                break
        c.close_conn()
    lock = threading.Lock()
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    check(not errors, errors[:3])
    check(full.proc.poll() is None, full.read_log())
    check(" ERROR " in full.read_log(), "the follower's read model stopped")
    # its raft log filled its segments and could not get another one
    st = expect(leader.request("GET", "/api_v2/cluster"), 200).json()
    match = [m["MatchIndex"] for m in st["Members"] if m["Id"] == full.id][0]
    check(match < st["CommitIndex"], st)
    in_node_ns(full, 'rm -f "%s"/balloon*' % full.data_dir)
    seq = expect(leader.request("GET", "/api_v2/health", auth=False), 200).json()["AppliedSeq"]
    wait_until(lambda: (full.request("GET", "/api_v2/health", auth=False).json()
                        .get("AppliedSeq", 0) >= seq), 90, interval=0.5,
               what="the follower to catch up")

    def latest(n):  # the last 500 events (1000 are kept) and the root
        evs = expect(n.request("GET", "/api_v2/events?after=%d&limit=1000&min_seq=%d"
                               % (seq - 500, seq)), 200).json()
        return evs, expect(n.request("GET", "/api_v2/directories/root?min_seq=%d" % seq),
                           200).json()
    evs, root = latest(full)
    check(len(evs) == 500 and root["Directory"]["Description"].startswith(big),
          (len(evs), root["Directory"]["Description"][:40]))
    check((evs, root) == latest(leader), "the same events and directories")
    check(full.proc.poll() is None, full.read_log())


if __name__ == "__main__":
    why = usable()
    if why is not None:
        print("skipped: %s" % why)
        sys.exit(77)
    Suite().run([test_full_disk_refuses_commands_and_recovers,
                 test_follower_raft_log_outgrows_a_full_disk])
