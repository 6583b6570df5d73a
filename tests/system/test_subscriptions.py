"""Durable subscriptions (through the log, readable and resumable on any
node) and retention with its 410 answer."""
import json
import time

from harness import Suite, check, expect, wait_until, leader_of
from sse import SSE
from ws import WS


def test_durable_subscription_across_nodes(s):
    nodes = s.cluster(3)
    wait_until(lambda: leader_of(nodes), 15, what="a leader")
    a, b, c = nodes
    r = expect(a.command("subscription.Create", {"Name": "indexer", "Types": ["directory."]}), 200)
    expect(b.command("subscription.Create", {"Name": "indexer"}), 409, "conflict")
    expect(b.command("subscription.Create", {"Name": ""}), 400, "bad_request")
    ids = []
    for i in range(6):
        d = expect(b.command("directory.Create", {"Parent": "root", "Name": "d%d" % i}), 200).json()
        ids.append(d["Id"])
        expect(c.command("collection.Create", {"ParentDir": d["Id"], "Name": "c%d" % i}), 200)
    last = c.request("GET", "/api_v2/health", auth=False).json()["AppliedSeq"]
    # every node knows the subscription and its lag
    for n in nodes:
        subs = expect(n.request("GET", "/api_v2/subscriptions?min_seq=%d" % last), 200).json()
        check(subs == [{"Name": "indexer", "Types": ["directory."], "Cursor": 0,
                        "Lag": last}], subs)
    # consume from a follower: only directory events, from the start
    st = SSE(b, "/api_v2/events/stream?subscription=indexer")
    got = st.events(6)
    check([e[1] for e in got] == ["directory.Created"] * 6, got)
    check([e[2]["Data"]["Id"] for e in got] == ids)
    st.close()
    # ack the third one (through any node), then resume on another node
    third = got[2][0]
    r = expect(a.command("subscription.Ack", {"Name": "indexer", "Seq": third}), 200)
    check(r.json()["Seq"] == last, "an ack produces no event")
    expect(a.command("subscription.Ack", {"Name": "indexer", "Seq": 1}), 200)  # never back
    expect(a.command("subscription.Ack", {"Name": "nope", "Seq": 1}), 404, "not_found")
    expect(a.command("subscription.Ack", {"Name": "indexer", "Seq": last + 100}), 400)
    st = SSE(c, "/api_v2/events/stream?subscription=indexer&min_seq=%d" % last)
    wait_until(lambda: c.request("GET", "/api_v2/subscriptions?min_seq=%d" % last).json()[0]
               ["Cursor"] == third, 5, what="the ack on node c")
    st.close()
    st = SSE(c, "/api_v2/events/stream?subscription=indexer")
    resumed = st.events(3)
    check([e[0] for e in resumed] == [g[0] for g in got[3:]], (resumed, got))
    st.close()
    subs = c.request("GET", "/api_v2/subscriptions").json()
    check(subs[0]["Cursor"] == third and subs[0]["Lag"] == last - third, subs)
    # delete: the stream is gone, and the log says so
    expect(b.command("subscription.Delete", {"Name": "indexer"}), 200)
    expect(b.command("subscription.Delete", {"Name": "indexer"}), 404, "not_found")
    gone = SSE(b, "/api_v2/events/stream?subscription=indexer")
    check(gone.status == 404)
    gone.close()
    types = [e["Type"] for e in b.request("GET", "/api_v2/events?types=subscription.").json()]
    check(types == ["subscription.Created", "subscription.Deleted"], types)


def test_retention_and_gone(s):
    n = s.node(extra=["--retain-events", "100"])
    expect(n.command("subscription.Create", {"Name": "slow"}), 200)
    for i in range(300):
        expect(n.command("directory.Create", {"Parent": "root", "Name": "a%d" % i}), 200)
    # the durable subscription at cursor 0 holds pruning back
    check(n.request("GET", "/api_v2/events?after=0&limit=1").status == 200)
    expect(n.command("subscription.Ack", {"Name": "slow", "Seq": 250}), 200)
    for i in range(300):
        expect(n.command("directory.Create", {"Parent": "root", "Name": "b%d" % i}), 200)
    last = n.request("GET", "/api_v2/health", auth=False).json()["AppliedSeq"]
    r = expect(n.request("GET", "/api_v2/events?after=0"), 410, "gone")
    oldest = r.json()["OldestSeq"]
    # at least the last 100 kept, and nothing past the subscription's cursor pruned
    check(1 < oldest <= min(last - 100, 250) + 1, (oldest, last))
    st = SSE(n, "/api_v2/events/stream?after=0")
    check(st.status == 410)
    st.close()
    # a cursor inside the kept range works
    page = expect(n.request("GET", "/api_v2/events?after=%d&limit=5" % (oldest - 1)), 200).json()
    check(page[0]["Seq"] == oldest)
    st = SSE(n, "/api_v2/events/stream?subscription=slow")
    check(st.status == 200 and st.events(1)[0][0] == 251)
    st.close()
    # once the subscription moves on, pruning follows
    expect(n.command("subscription.Ack", {"Name": "slow", "Seq": last}), 200)
    for i in range(300):
        expect(n.command("directory.Create", {"Parent": "root", "Name": "c%d" % i}), 200)
    r = expect(n.request("GET", "/api_v2/events?after=%d" % oldest), 410, "gone")
    check(r.json()["OldestSeq"] > oldest)


def test_websocket_stream_and_acks(s):
    nodes = s.cluster(3, extra=["--heartbeat-ms", "100"])
    wait_until(lambda: leader_of(nodes), 15, what="a leader")
    a, b, c = nodes
    for i in range(5):
        expect(a.command("directory.Create", {"Parent": "root", "Name": "w%d" % i}), 200)
    w = WS(b, "/api_v2/events/ws?after=2")
    check(w.status == 101)
    check([e["Seq"] for e in w.events(3)] == [3, 4, 5])
    expect(c.command("directory.Create", {"Parent": "root", "Name": "live"}), 200)
    ev = w.events(1)
    check(ev and ev[0]["Seq"] == 6 and ev[0]["Type"] == "directory.Created", ev)
    check(w.next_event(0.5) is None and w.pings >= 2, w.pings)
    w.close()
    # the same cursor and filter parameters as SSE
    expect(c.command("collection.Create", {"ParentDir": "root", "Name": "coll"}), 200)
    w = WS(b, "/api_v2/events/ws?after=0&types=collection.")
    ev = w.events(1)
    check(ev and ev[0]["Type"] == "collection.Created" and ev[0]["Seq"] == 7, ev)
    w.close()
    check(WS(b, "/api_v2/events/ws?after=x").status == 400)
    # not a handshake: 400; unknown subscription: 404; no token: 401
    expect(b.request("GET", "/api_v2/events/ws"), 400, "bad_request")
    check(WS(b, "/api_v2/events/ws?subscription=nope").status == 404)
    check(WS(b, "/api_v2/events/ws", token="wrong-token-wrong-token").status == 401)
    # SPEC 7.3: a client message over 64 KiB closes the socket with 1009
    # (wslay buffered any message whole: a 200 MiB one grew the node by 50
    # MiB); one of 64 KiB is taken
    w = WS(b, "/api_v2/events/ws?after=0")
    empty = len(json.dumps({"Ack": 0, "Pad": ""}))
    w.send(json.dumps({"Ack": 0, "Pad": "p" * (65536 - empty)}))
    check(len(w.events(7)) == 7 and w.close_code is None, w.close_code)
    w.send("x" * (65536 + 1))
    w.events(1, timeout=5)  # reads up to the close frame
    check(w.close_code == 1009, w.close_code)
    w.sock.close()
    # a durable subscription acked over the WebSocket, resumed elsewhere
    expect(a.command("subscription.Create", {"Name": "ws", "Types": ["directory.Created"]}), 200)
    for i in range(20):
        expect(a.command("directory.Create", {"Parent": "root", "Name": "x%d" % i}), 200)
    w = WS(b, "/api_v2/events/ws?subscription=ws")
    got = w.events(26)
    check(len(got) == 26 and all(e["Type"] == "directory.Created" for e in got), len(got))
    before = b.request("GET", "/api_v2/health", auth=False).json()["AppliedSeq"]
    for e in got[:20]:
        w.send(json.dumps({"Ack": e["Seq"]}))
    acked = got[19]["Seq"]
    wait_until(lambda: c.request("GET", "/api_v2/subscriptions").json()[0]["Cursor"] == acked,
               10, what="the WebSocket acks to reach every node")
    # acks are batched and produce no events
    check(b.request("GET", "/api_v2/health", auth=False).json()["AppliedSeq"] == before)
    w.close()
    w = WS(c, "/api_v2/events/ws?subscription=ws")
    rest = w.events(6)
    check([e["Seq"] for e in rest] == [e["Seq"] for e in got[20:]], (rest, got[20:]))
    w.close()


def test_websocket_behind_retention_is_never_skipped_ahead(s):
    """A WebSocket subscriber that reads nothing while retention prunes past
    its cursor: what it then reads has no gap, and ends with close code 4410
    (events were pruned) naming the oldest kept Seq, never with later
    events after a silent jump."""
    from ws import WS
    n = s.node(extra=["--retain-events", "50", "--retain-holds-subscriptions", "false"])
    expect(n.command("directory.Create", {"Parent": "root", "Name": "first"}), 200)
    w = WS(n, "/api_v2/events/ws?after=0")
    check(w.status == 101, w.status)
    text = "d" * 4000
    for i in range(10000):  # past the ring of recent events, ~40 MB, read by no one
        expect(n.command("directory.ChangeDescription",
                         {"Id": "root", "Description": text + str(i)}), 200)
    last = n.request("GET", "/api_v2/health", auth=False).json()["AppliedSeq"]
    seqs = []
    while True:
        ev = w.next_event(timeout=10)
        if ev is None:
            break
        seqs.append(ev["Seq"])
    check(seqs and seqs[0] == 1, seqs[:3])
    check(seqs == list(range(1, len(seqs) + 1)), "a gap after %r" % [
        (a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1][:3])
    if seqs[-1] != last:
        check(w.close_code == 4410, (w.close_code, w.close_reason, seqs[-1], last))
        check(json.loads(w.close_reason)["OldestSeq"] > seqs[-1] + 1, w.close_reason)
    w.sock.close()


def test_retention_past_subscriptions_when_told(s):
    n = s.node(extra=["--retain-events", "50", "--retain-holds-subscriptions", "false"])
    expect(n.command("subscription.Create", {"Name": "laggard"}), 200)
    for i in range(400):
        expect(n.command("directory.Create", {"Parent": "root", "Name": "a%d" % i}), 200)
    # the operator said durable cursors do not hold pruning back: the
    # laggard gets 410 with the oldest Seq, never a silent jump
    st = SSE(n, "/api_v2/events/stream?subscription=laggard")
    check(st.status == 410, st.status)
    st.close()
    r = expect(n.request("GET", "/api_v2/events?after=0"), 410, "gone")
    check(r.json()["OldestSeq"] > 1)


if __name__ == "__main__":
    Suite().run([test_durable_subscription_across_nodes, test_retention_and_gone,
                 test_websocket_stream_and_acks, test_retention_past_subscriptions_when_told,
                 test_websocket_behind_retention_is_never_skipped_ahead])
