"""Faults on network namespaces (netns.py): nodes cut off from the others
while they are asked to act on them. Needs root; exits 77 (skipped) when it
cannot make namespaces."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "system"))

import netns  # noqa: E402
from harness import Node, Suite, check, expect, leader_of, wait_until  # noqa: E402

NET = None
HTTP_PORT = 8080
RAFT_PORT = 9090


def cluster(s, size=3):
    """@size nodes, node i on host i of the network, formed with one
    --cluster list."""
    workdir = s.workdir()
    token = s.token_file(workdir)
    nodes = []
    for i in range(size):
        n = Node(s.varastod, workdir, i + 1, None, token)
        n.host = NET.address(i)
        n.http_port = HTTP_PORT
        n.raft_port = RAFT_PORT
        n.wrap = NET.wrap(i)
        nodes.append(n)
    members = ",".join("%d=%s:%d" % (n.id, n.host, n.raft_port) for n in nodes)
    for n in nodes:
        n.extra = ["--cluster", members]
        s.nodes.append(n)
        n.start(wait=False)
    for n in nodes:
        n.wait_ready(30)
    return nodes


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


def inside(net):
    global NET
    NET = net
    Suite().run([test_transfer_to_an_isolated_follower])
    return 0


if __name__ == "__main__":
    sys.exit(netns.main_inside(inside))
