"""Nodes talk only to nodes that prove they hold the cluster token (SPEC
7.1): the attacks of issue 15 replayed against a running 3-node cluster,
each refused, and the cluster still working after each probe."""
import socket
import threading
import time

import peer
from harness import TOKEN, Suite, check, expect, leader_of, wait_until


def status(node):
    return node.request("GET", "/api_v2/cluster").json()


def still_works(nodes, name):
    leader = leader_of(nodes)
    for n in nodes:
        expect(n.command("directory.Create", {"Parent": "root", "Name": "%s-%d" % (name, n.id)}),
               200)
    return leader


def test_raft_port_refuses_strangers(s):
    nodes = s.cluster(3)
    leader = leader_of(nodes)
    before = status(leader)
    term = before["Term"]

    # 1. libraft's own handshake and a RequestVote with a huge term, from a
    # server id no one knows: before, the leader stepped down for it
    sock = socket.create_connection(("127.0.0.1", leader.raft_port), timeout=5)
    sock.sendall(peer.raft_uv_tcp_hello(99, "127.0.0.1:9") +
                 peer.request_vote(term + 1000, 99, 1 << 40, 1 << 40))
    check(peer.closed_within(sock, 2), "a stranger's RequestVote connection stayed open")
    # 2. our handshake with another cluster's token: the node's answer does
    # not prove that key, and the node closes once the proof is wrong
    check(peer.handshake("127.0.0.1", leader.raft_port, "not-the-cluster-token-at-all",
                         2, leader.id, "127.0.0.1:9") is None)
    # 3. a holder of the token claiming an id that is not a member
    sock = peer.handshake("127.0.0.1", leader.raft_port, TOKEN, 99, leader.id, "127.0.0.1:9")
    check(sock is not None, "the node did not prove it holds the key")
    if sock is not None:
        sock.sendall(peer.request_vote(1000000, 99, 1 << 40, 1 << 40))
        check(peer.closed_within(sock, 2), "a non-member's connection stayed open")
    time.sleep(1.5)  # what a disrupted leader needed to step down before
    after = status(leader)
    check(after["Node"]["Role"] == "leader", after)
    check(after["Term"] == term and after["Leader"] == leader.id, (before, after))
    log = leader.read_log()
    check("refused a raft connection from 127.0.0.1" in log, log[-2000:])
    check("not a varasto peer handshake" in log)
    check("node 99 is not in the configuration" in log)
    still_works(nodes, "after-probes")


def test_idle_handshakes_are_dropped(s):
    nodes = s.cluster(3)
    leader = leader_of(nodes)
    held = []
    for _ in range(300):
        held.append(socket.create_connection(("127.0.0.1", leader.raft_port), timeout=10))
    # the cluster keeps working while they hang
    still_works(nodes, "while-idle")
    started = time.monotonic()
    closed = [0]

    def wait_closed(c):
        if peer.closed_within(c, 6):
            closed[0] += 1
    threads = [threading.Thread(target=wait_closed, args=(c,)) for c in held]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(closed[0] == 300, closed[0])
    check(time.monotonic() - started < 5.5, time.monotonic() - started)
    still_works(nodes, "after-idle")


def test_http_between_nodes_is_signed(s):
    nodes = s.cluster(3)
    leader = leader_of(nodes)
    follower = [n for n in nodes if n is not leader][0]
    # the admin token is not what internal endpoints take any more
    expect(leader.request("POST", "/internal/barrier", raw=b""), 401)
    expect(leader.request("POST", "/internal/apply", raw=b"junk"), 401)
    # another cluster's key: refused, and no nonce handed out for it
    r, _ = peer.signed_request(leader, peer.Signer("another-cluster-token-x", 2),
                               "/internal/barrier")
    expect(r, 401)
    check("x-varasto-peer-nonce" not in r.headers, r.headers)
    signer = peer.Signer(TOKEN, follower.id)
    r, auth = peer.signed_request(leader, signer, "/internal/barrier")
    expect(r, 200)
    # the same request again (a recording replayed): refused
    again = leader.request("POST", "/internal/barrier", raw=b"", auth=False,
                           headers={"Authorization": auth})
    expect(again, 401)
    # a signature is for one body: the same header with other bytes
    r = leader.request("POST", "/internal/apply", raw=b"other", auth=False,
                       headers={"Authorization": auth.replace(".%d." % signer.counter,
                                                              ".%d." % (signer.counter + 1))})
    expect(r, 401)
    # signed for the leader's process, shown to another node: a stale
    # nonce, and the follower hands out its own
    leader_nonce = auth.split(".")[3]
    r = follower.request("POST", "/internal/barrier", raw=b"", auth=False,
                         headers={"Authorization": signer.sign("POST", "/internal/barrier", b"",
                                                               leader_nonce)})
    expect(r, 401)
    check(r.headers.get("x-varasto-peer-nonce") not in (None, "", leader_nonce), r.headers)
    # signed junk reaches the handler: 400, not an append
    r, _ = peer.signed_request(leader, signer, "/internal/apply", b"junk")
    expect(r, 400)
    # forwarding and relays still work: a command through each follower,
    # and a cluster.* command relayed to the leader
    still_works(nodes, "signed")
    expect(follower.command("cluster.TransferLeadership", {"Id": follower.id}), 200)
    wait_until(lambda: status(follower)["Node"]["Role"] == "leader", 10,
               what="the follower to lead")
    still_works(nodes, "after-transfer")


if __name__ == "__main__":
    Suite().run([test_raft_port_refuses_strangers, test_idle_handshakes_are_dropped,
                 test_http_between_nodes_is_signed])
