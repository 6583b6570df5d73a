"""Every endpoint of one real node: commands, reads, consistency, keys."""
import threading
import time

from harness import Suite, check, expect, wait_until
from sse import SSE
from ws import WS


def seq_of(resp):
    return int(resp.header("x-varasto-seq"))


def test_directories(s):
    n = s.node()
    r = expect(n.command("directory.Create", {"Parent": "root", "Name": "music"}), 200)
    body = r.json()
    check(set(body) == {"Seq", "Index", "Id"}, body)
    check(body["Seq"] == 1 and seq_of(r) == 1)
    # a command's answer has a Content-Length (simple clients need no chunked decoding)
    check(r.header("content-length") == str(len(r.body)) and r.header("transfer-encoding") is None,
          r.headers)
    d = body["Id"]
    sub = expect(n.command("directory.Create", {"Parent": d, "Name": "jazz"}), 200).json()["Id"]
    expect(n.command("directory.Rename", {"Id": sub, "Name": "blues"}), 200)
    expect(n.command("directory.ChangeDescription", {"Id": sub, "Description": "old"}), 200)
    expect(n.command("directory.SetType", {"Id": sub, "Type": "albums"}), 200)
    expect(n.command("directory.ChangeSensitivity", {"Id": sub, "Sensitivity": 1}), 200)
    view = expect(n.request("GET", "/api_v2/directories/" + sub), 200).json()
    check(view["Directory"]["Name"] == "blues", view)
    check(view["Directory"]["Description"] == "old")
    check(view["Directory"]["Type"] == "albums")
    check(view["Directory"]["Sensitivity"] == 1)
    check(view["Directory"]["Created"].endswith("Z") and len(view["Directory"]["Created"]) == 24)
    check([p["Id"] for p in view["Parents"]] == ["root", d], view["Parents"])
    check(view["SubDirectories"] == [] and view["Collections"] == [])
    other = expect(n.command("directory.Create", {"Parent": "root", "Name": "films"}), 200).json()["Id"]
    expect(n.command("directory.Move", {"Id": sub, "Directory": other}), 200)
    view = expect(n.request("GET", "/api_v2/directories/" + other), 200).json()
    check([x["Id"] for x in view["SubDirectories"]] == [sub])
    expect(n.command("directory.Delete", {"Id": sub}), 200)
    expect(n.request("GET", "/api_v2/directories/" + sub), 404, "not_found")
    root = expect(n.request("GET", "/api_v2/directories/root"), 200).json()
    check(root["Directory"]["Id"] == "root" and root["Directory"]["Name"] == "root")
    check(root["Parents"] == [])


def test_collections_and_changesets(s):
    n = s.node()
    d = n.command("directory.Create", {"Parent": "root", "Name": "d"}).json()["Id"]
    c = expect(n.command("collection.Create", {"ParentDir": d, "Name": "c"}), 200).json()["Id"]
    c2 = n.command("collection.Create", {"ParentDir": d, "Name": "c2"}).json()["Id"]
    col = expect(n.request("GET", "/api_v2/collections/" + c), 200).json()
    check(col["Rating"] is None and col["Head"] == "" and col["Tags"] == [] and
          col["Changesets"] == [] and col["Files"] == [], col)
    for k in ("Id", "Created", "Directory", "Name", "Description", "Sensitivity"):
        check(k in col, k)
    expect(n.command("collection.Rename", {"Collection": c, "Name": "cc"}), 200)
    expect(n.command("collection.ChangeDescription", {"Collection": c, "Description": "x"}), 200)
    expect(n.command("collection.Tag", {"Id": c, "Tag": "b"}), 200)
    expect(n.command("collection.Tag", {"Id": c, "Tag": "a"}), 200)
    expect(n.command("collection.Untag", {"Id": c, "Tag": "b"}), 200)
    expect(n.command("collection.Rate", {"Collection": c, "Rating": 4}), 200)
    expect(n.command("collection.ChangeSensitivity", {"Id": c, "Sensitivity": 2}), 200)
    f = {"Path": "b.flac", "Sha256": "00", "Created": "2026-01-01T00:00:00.000Z",
         "Modified": "2026-01-01T00:00:00.000Z", "Size": 10, "BlobRefs": ["r1"]}
    g = dict(f, Path="a.flac")
    r = expect(n.request("POST", "/api_v2/collections/%s/changesets" % c,
                         body={"ID": "cs1", "Parent": "", "Created": "2026-01-01T00:00:00.000Z",
                               "FilesCreated": [f, g], "FilesUpdated": [], "FilesDeleted": []}),
               200)
    check("Seq" in r.json())
    expect(n.request("POST", "/api_v2/collections/%s/changesets" % c,
                     body={"ID": "cs2", "Parent": "", "Created": "2026-01-01T00:00:00.000Z",
                           "FilesCreated": [], "FilesUpdated": [], "FilesDeleted": []}),
           409, "conflict")
    expect(n.request("POST", "/api_v2/collections/%s/changesets" % c,
                     body={"ID": "cs2", "Parent": "cs1", "Created": "2026-01-02T00:00:00.000Z",
                           "FilesCreated": [], "FilesUpdated": [], "FilesDeleted": ["b.flac"]}),
           200)
    col = n.request("GET", "/api_v2/collections/" + c).json()
    check(col["Name"] == "cc" and col["Description"] == "x" and col["Tags"] == ["a"], col)
    check(col["Rating"] == 4 and col["Sensitivity"] == 2 and col["Head"] == "cs2")
    check([x["Id"] for x in col["Changesets"]] == ["cs1", "cs2"])
    check(col["Changesets"][0]["Parent"] == "" and col["Changesets"][1]["Parent"] == "cs1")
    check([x["Path"] for x in col["Files"]] == ["a.flac"] and col["Files"][0]["BlobRefs"] == ["r1"])
    expect(n.command("collection.Move", {"Collections": [c, c2], "Directory": "root"}), 200)
    root = n.request("GET", "/api_v2/directories/root").json()
    check(sorted(x["Id"] for x in root["Collections"]) == sorted([c, c2]))
    expect(n.command("collection.Delete", {"Collection": c, "Name": "nope"}), 409, "conflict")
    expect(n.command("collection.Delete", {"Collection": c, "Name": "cc"}), 200)
    expect(n.request("GET", "/api_v2/collections/" + c), 404, "not_found")
    expect(n.request("POST", "/api_v2/collections/nope/changesets",
                     body={"ID": "x", "Parent": "", "Created": "t"}), 404, "not_found")


def test_events_page(s):
    n = s.node()
    d = n.command("directory.Create", {"Parent": "root", "Name": "a"}).json()["Id"]
    c = n.command("collection.Create", {"ParentDir": d, "Name": "c"}).json()["Id"]
    n.command("collection.Move", {"Collections": [c], "Directory": "root"})
    n.command("directory.Rename", {"Id": d, "Name": "b"})
    evs = expect(n.request("GET", "/api_v2/events"), 200).json()
    check([e["Seq"] for e in evs] == [1, 2, 3, 4], evs)
    check([e["Type"] for e in evs] == ["directory.Created", "collection.Created",
                                       "collection.Moved", "directory.Renamed"])
    check(evs[0]["Data"] == {"Id": d, "Parent": "root", "Name": "a"}, evs[0])
    check(evs[2]["Data"] == {"Collection": c, "Directory": "root"}, evs[2])
    check(evs[3]["Data"] == {"Id": d, "Name": "b"})
    check(all(e["Time"].endswith("Z") for e in evs))
    page = n.request("GET", "/api_v2/events?after=1&limit=2").json()
    check([e["Seq"] for e in page] == [2, 3])
    page = n.request("GET", "/api_v2/events?types=directory.").json()
    check([e["Seq"] for e in page] == [1, 4])
    page = n.request("GET", "/api_v2/events?types=collection.Moved,directory.Renamed").json()
    check([e["Seq"] for e in page] == [3, 4])
    check(n.request("GET", "/api_v2/events?after=99").json() == [])
    expect(n.request("GET", "/api_v2/events?limit=0"), 400, "bad_request")
    expect(n.request("GET", "/api_v2/events?limit=10001"), 400, "bad_request")
    expect(n.request("GET", "/api_v2/events?after=x"), 400, "bad_request")
    check(len(n.request("GET", "/api_v2/events?limit=10000").json()) == 4)


def test_health_and_seq_header(s):
    n = s.node()
    r = expect(n.request("GET", "/api_v2/health", auth=False), 200)
    h = r.json()
    check(h == {"Status": "ok", "Role": "leader", "Leader": 1, "AppliedSeq": 0}, h)
    check(seq_of(r) == 0)
    n.command("directory.Create", {"Parent": "root", "Name": "a"})
    for path in ("/api_v2/health", "/api_v2/directories/root", "/api_v2/events",
                 "/api_v2/nothing-here", "/api_v2/directories/nope"):
        r = n.request("GET", path)
        check(seq_of(r) == 1, (path, r.headers))
    r = n.command("directory.Create", {"Parent": "root", "Name": "a"})
    check(r.status == 409 and seq_of(r) == 1)
    r = n.request("GET", "/api_v2/health", auth=False)
    check(r.json()["AppliedSeq"] == 1)


def test_min_seq_and_linearizable(s):
    n = s.node(extra=["--min-seq-timeout-ms", "500"])
    n.command("directory.Create", {"Parent": "root", "Name": "a"})
    expect(n.request("GET", "/api_v2/directories/root?min_seq=1"), 200)
    expect(n.request("GET", "/api_v2/directories/root", headers={"X-Varasto-Min-Seq": "1"}), 200)
    # a seq not reached yet: wait, then 504
    started = time.monotonic()
    expect(n.request("GET", "/api_v2/directories/root?min_seq=5"), 504, "timeout")
    check(0.4 < time.monotonic() - started < 5)
    # a seq reached while waiting: answered as soon as it is applied
    result = {}

    def reader():
        other = n.client()
        result["r"] = other.request("GET", "/api_v2/events?min_seq=2")
        other.close_conn()
    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.1)
    n.command("directory.Create", {"Parent": "root", "Name": "b"})
    t.join(10)
    check(result["r"].status == 200 and len(result["r"].json()) == 2, result)
    expect(n.request("GET", "/api_v2/directories/root?min_seq=x"), 400, "bad_request")
    r = expect(n.request("GET", "/api_v2/directories/root?consistency=linearizable"), 200)
    check(len(r.json()["SubDirectories"]) == 2)
    expect(n.request("GET", "/api_v2/directories/root?consistency=bogus"), 400, "bad_request")


def test_reads_match_their_seq_under_load(s):
    """Every read shows exactly the state as of the X-Varasto-Seq it carries,
    and a writer reads its own write back at once, while other clients read
    concurrently (reads in one loop iteration share a read transaction,
    which must end before the node applies the next entries)."""
    n = s.node()
    d = expect(n.command("directory.Create", {"Parent": "root", "Name": "v0"}), 200).json()
    renames = {d["Seq"]: "v0"}
    done = threading.Event()
    seen, errors = [], []

    def reader():
        c = n.client()
        try:
            for _ in range(3000):
                if done.is_set():
                    break
                r = c.request("GET", "/api_v2/directories/" + d["Id"])
                if r.status != 200:
                    errors.append(r)
                    break
                seen.append((seq_of(r), r.json()["Directory"]["Name"]))
                e = c.request("GET", "/api_v2/events?after=%d&limit=1" % d["Seq"])
                seen.append((seq_of(e), "events", len(e.json())))
        finally:
            c.close_conn()
    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        for i in range(1, 151):
            name = "v%d" % i
            r = expect(n.command("directory.Rename", {"Id": d["Id"], "Name": name}), 200)
            renames[r.json()["Seq"]] = name
            view = expect(n.request("GET", "/api_v2/directories/" + d["Id"]), 200)
            check(view.json()["Directory"]["Name"] == name and seq_of(view) >= r.json()["Seq"],
                  (name, view.json(), view.headers))
    finally:
        done.set()
        for t in readers:
            t.join(30)
    check(not errors, errors)
    check(len(seen) > 100, len(seen))
    seqs = sorted(renames)
    for item in seen:
        at = item[0]
        latest = max(q for q in seqs if q <= at)
        if item[1] == "events":
            # events after the create: as many as renames up to the seq, at most one
            check(item[2] == min(1, seqs.index(latest)), item)
        else:
            check(item[1] == renames[latest], (item, latest, renames[latest]))


def test_apikeys(s):
    n = s.node()
    r = expect(n.command("apikey.Create", {"Name": "ci"}, key="k1"), 200).json()
    token, kid = r["Token"], r["Id"]
    check(len(token) >= 16)
    # a key without a Scope has write: reads and commands, but not cluster.*
    # or apikey.* (SPEC 7.2)
    expect(n.request("GET", "/api_v2/directories/root", token=token), 200)
    expect(n.command("directory.Create", {"Parent": "root", "Name": "x"}, token=token), 200)
    expect(n.command("apikey.Create", {"Name": "more"}, token=token), 403, "forbidden")
    expect(n.command("cluster.TransferLeadership", {}, token=token), 403, "forbidden")
    # "cluster%2ERemoveNode" is cluster.RemoveNode once decoded
    expect(n.request("POST", "/command/cluster%2ERemoveNode", body={"Id": 1}, token=token), 403)
    # a replay does not show the token again
    again = expect(n.command("apikey.Create", {"Name": "ci"}, key="k1"), 200)
    check(again.header("idempotent-replayed") == "true")
    check("Token" not in again.json() and again.json()["Id"] == kid, again)
    # the event never carries the token
    r = n.request("GET", "/api_v2/events?types=apikey.")
    evs = r.json()
    check(evs[0]["Data"] == {"Id": kid, "Name": "ci", "Scope": "write"}, evs)
    # a filtered page says how far it looked: here, the whole log
    check(r.header("x-varasto-scanned") == r.header("x-varasto-seq"), r.headers)
    check(token not in str(n.request("GET", "/api_v2/events").body))
    expect(n.command("apikey.Remove", {"Id": kid}), 200)
    expect(n.request("GET", "/api_v2/directories/root", token=token), 401, "unauthorized")
    expect(n.command("apikey.Remove", {"Id": kid}), 404, "not_found")


def test_apikey_scopes(s):
    n = s.node()
    keys = {}
    for scope in ("read", "write", "admin"):
        keys[scope] = expect(n.command("apikey.Create", {"Name": scope, "Scope": scope}),
                             200).json()["Token"]
    expect(n.command("apikey.Create", {"Name": "x", "Scope": "root"}), 400, "bad_request")
    expect(n.command("apikey.Create", {"Name": "x", "Scope": 3}), 400, "bad_request")
    reads = [("GET", "/api_v2/directories/root"), ("GET", "/api_v2/events"),
             ("GET", "/api_v2/cluster"), ("GET", "/api_v2/subscriptions")]
    for scope, token in keys.items():
        for method, path in reads:
            expect(n.request(method, path, token=token), 200)
        want = 403 if scope == "read" else 200
        r = expect(n.command("directory.Create", {"Parent": "root", "Name": "by-" + scope},
                             token=token), want)
        if want == 403:
            check(r.json()["Code"] == "forbidden" and "read" in r.json()["Error"], r.json())
        want = 200 if scope == "admin" else 403
        expect(n.command("apikey.Create", {"Name": "by-" + scope}, token=token), want)
        r = n.command("cluster.TransferLeadership", {}, token=token)
        check((r.status == 403) == (want == 403), (scope, r))
    # a read key streams
    stream = SSE(n, "/api_v2/events/stream?after=0",
                 headers={"Authorization": "Bearer " + keys["read"]})
    check(stream.status == 200)
    stream.close()


def test_removed_key_ends_its_streams(s):
    n = s.node()
    made = expect(n.command("apikey.Create", {"Name": "r", "Scope": "read"}), 200).json()
    other = expect(n.command("apikey.Create", {"Name": "o", "Scope": "read"}), 200).json()
    sse = SSE(n, "/api_v2/events/stream?after=0",
              headers={"Authorization": "Bearer " + made["Token"]})
    kept = SSE(n, "/api_v2/events/stream?after=0",
               headers={"Authorization": "Bearer " + other["Token"]})
    ws = WS(n, "/api_v2/events/ws?after=0", token=made["Token"])
    check(sse.status == 200 and kept.status == 200 and ws.status == 101)
    check(len(sse.events(2)) == 2 and len(ws.events(2)) == 2 and len(kept.events(2)) == 2)
    started = time.monotonic()
    expect(n.command("apikey.Remove", {"Id": made["Id"]}), 200)
    # both streams of the removed key end, each after the event that removed it at most
    while True:
        e = sse.next_event(timeout=2)
        if e is None or e[1] != "apikey.Removed":
            break
    check(e is None, e)
    check(time.monotonic() - started < 1.5, time.monotonic() - started)
    while True:
        e = ws.next_event(timeout=2)
        if e is None:
            break
        check(e["Type"] == "apikey.Removed", e)
    check(ws.close_code is not None, "the WebSocket was not closed")
    check(time.monotonic() - started < 3, time.monotonic() - started)
    # the other key's stream goes on
    expect(n.command("directory.Create", {"Parent": "root", "Name": "after"}), 200)
    seen = kept.events(2)
    check([e[1] for e in seen] == ["apikey.Removed", "directory.Created"], seen)
    for c in (sse, kept, ws):
        c.close()


def test_idempotency(s):
    n = s.node()
    body = {"Parent": "root", "Name": "once"}
    first = expect(n.command("directory.Create", body, key="abc-1"), 200)
    check(first.header("idempotent-replayed") is None)
    again = expect(n.command("directory.Create", body, key="abc-1"), 200)
    check(again.header("idempotent-replayed") == "true")
    check(again.json() == first.json())
    check(again.header("content-length") == str(len(again.body)), again.headers)
    # whitespace and key order do not make it a different command
    raw = b'{ "Name": "once",   "Parent": "root" }'
    r = n.request("POST", "/command/directory.Create", raw=raw,
                  headers={"Idempotency-Key": "abc-1"})
    check(r.status == 200 and r.json() == first.json())
    expect(n.command("directory.Create", {"Parent": "root", "Name": "other"}, key="abc-1"),
           422, "idempotency_mismatch")
    expect(n.command("directory.Rename", {"Id": "root", "Name": "x"}, key="abc-1"),
           422, "idempotency_mismatch")
    check(len(n.request("GET", "/api_v2/events").json()) == 1)
    # survives a restart
    check(n.stop() == 0)
    n.start()
    again = expect(n.command("directory.Create", body, key="abc-1"), 200)
    check(again.json() == first.json() and again.header("idempotent-replayed") == "true")
    check(len(n.request("GET", "/api_v2/events").json()) == 1)


def test_clean_restart(s):
    n = s.node()
    ids = []
    for i in range(30):
        ids.append(n.command("directory.Create", {"Parent": "root", "Name": "d%d" % i}).json()["Id"])
    before = n.request("GET", "/api_v2/directories/root").json()
    events = n.request("GET", "/api_v2/events?limit=1000").json()
    check(n.stop() == 0, "SIGTERM exits 0")
    check("stopped" in n.read_log())
    n.start()
    check(n.request("GET", "/api_v2/directories/root").json() == before)
    check(n.request("GET", "/api_v2/events?limit=1000").json() == events)
    r = expect(n.command("directory.Create", {"Parent": "root", "Name": "after"}), 200)
    check(r.json()["Seq"] == 31)
    # SIGINT stops cleanly too
    check(n.stop(__import__("signal").SIGINT) == 0)


def test_stop_right_after_start(s):
    """SIGTERM exits 0 even when it comes within milliseconds of the node
    becoming ready, while its first log appends still wait for the first
    segment file (raft 0.15 crashed closing with several appends pending)."""
    for i in range(12):
        n = s.node(start=False)
        n.start(wait=False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            check(n.proc.poll() is None, n.read_log())
            try:
                if n.request("GET", "/api_v2/health", auth=False, timeout=1).status == 200:
                    break
            except OSError:
                n.close_conn()
            time.sleep(0.001)
        rc = n.stop()
        check(rc == 0, ("exit status", rc, "start %d" % i, n.read_log()))


def test_generated_admin_token(s):
    import os
    import stat
    from harness import Node
    w = s.workdir()
    n = Node(s.varastod, w, 1, None, None)  # no --token-file
    s.nodes.append(n)
    n.start(wait=False)
    path = os.path.join(n.data_dir, "admin-token")
    wait_until(lambda: os.path.exists(path), 10, what="the generated token")
    check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, oct(os.stat(path).st_mode))
    token = open(path).read().strip()
    check(len(token) >= 16, ("the generated token", token))
    n.wait_ready()
    check(path in n.read_log(), "the node logs where the token is")
    expect(n.request("GET", "/api_v2/directories/root", token=token), 200)
    expect(n.request("GET", "/api_v2/directories/root"), 401)  # the harness token is not it
    # a restart keeps the same token
    rc = n.stop()
    check(rc == 0, ("exit status", rc, n.read_log()[-3000:]))
    n.start()
    check(open(path).read().strip() == token, ("the token after a restart", token))
    expect(n.request("GET", "/api_v2/directories/root", token=token), 200)


if __name__ == "__main__":
    Suite().run([test_directories, test_collections_and_changesets, test_events_page,
                 test_health_and_seq_header, test_min_seq_and_linearizable,
                 test_reads_match_their_seq_under_load, test_apikeys, test_apikey_scopes,
                 test_removed_key_ends_its_streams,
                 test_idempotency, test_clean_restart, test_stop_right_after_start,
                 test_generated_admin_token])
