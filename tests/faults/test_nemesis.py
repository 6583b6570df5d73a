"""Jepsen's way, on network namespaces (netns.py): three nodes, clients
that send commands to random nodes and retry on others with the same
Idempotency-Key, linearizable reads and writes of a few register
directories, subscribers that keep their cursor and reconnect to random
nodes, and a seeded nemesis that partitions, pauses, kills and changes
leadership meanwhile, with snapshots taken and installed during the faults
(a tiny threshold). Every operation goes to a history (JSON lines); after
the faults heal, the checkers (checks.py, linearizable.py) read it against
every node's log and read model.

    test_nemesis.py --varastod build/varastod [--seconds 40] [--seed N]
                    [--history FILE] [--peer-tls]

Needs root; exits 77 (skipped) when it cannot make namespaces. The seed is
printed first: the same seed replays the same nemesis schedule."""
import atexit
import http.client
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))
sys.path.insert(0, HERE)

import checks  # noqa: E402
import linearizable  # noqa: E402
import netns  # noqa: E402
from harness import TOKEN, Suite, check, expect, leader_of, wait_until  # noqa: E402

NET = None
OPTS = {"seconds": 40.0, "seed": None, "history": None, "peer_tls": False}
N_REGISTERS = 3
COMMAND_CLIENTS = 3
REGISTER_CLIENTS = 4
SUBSCRIBERS = 2
RETRY_FOR_S = 12  # a client gives up on one command after this long (info)
# node 3's data dir is a tmpfs this large that the nemesis fills now and then
# (raft preallocates three 32 MiB segments; the rest is snapshots and the
# read model's)
DISK_MB = 512


class History:
    """invoke/ok/fail/info records with monotonic times, thread-safe."""

    def __init__(self):
        self.records = []
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def add(self, process, type_, f, **kw):
        rec = dict(process=process, type=type_, f=f, time=round(time.monotonic() - self.t0, 6),
                   **kw)
        with self.lock:
            self.records.append(rec)
        return rec

    def write(self, path):
        with open(path, "w") as out:
            for r in self.records:
                out.write(json.dumps(r) + "\n")


def conn_for(node, timeout):
    return http.client.HTTPConnection(node.host, node.http_port, timeout=timeout)


def call(node, method, path, body=None, key=None, timeout=3.0):
    """One request on a fresh connection: (status, parsed body), or None
    when no answer came."""
    headers = {"Authorization": "Bearer " + TOKEN}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if key is not None:
        headers["Idempotency-Key"] = key
    c = conn_for(node, timeout)
    try:
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, raw
    except (OSError, http.client.HTTPException):
        return None
    finally:
        c.close()


def send_command(nodes, rng, name, body, key, stop):
    """A careful client: the same key to one node after another until an
    answer that settles it. Returns ("ok", body), ("fail", body) or
    ("info", why)."""
    deadline = time.monotonic() + RETRY_FOR_S
    order = list(nodes)
    rng.shuffle(order)
    attempt = 0
    while time.monotonic() < deadline and not stop.is_set():
        node = order[attempt % len(order)]
        attempt += 1
        got = call(node, "POST", "/command/" + name, body, key=key)
        if got is None or got[0] in (503, 504):
            time.sleep(0.05)
            continue
        status, answer = got
        if status == 200:
            return "ok", answer
        return "fail", {"status": status, "answer": answer}
    return "info", "no settling answer within %ds" % RETRY_FOR_S


def command_client(p, nodes, parent, hist, stop, seed):
    rng = random.Random(seed)
    k = 0
    while not stop.is_set():
        name = "c%d-%d" % (p, k)
        k += 1
        key = uuid.UUID(int=rng.getrandbits(128)).hex
        hist.add(p, "invoke", "create", id=name, key=key)
        kind, out = send_command(nodes, rng, "directory.Create",
                                 {"Parent": parent, "Name": name}, key, stop)
        if kind == "ok":
            hist.add(p, "ok", "create", id=name, key=key, seq=out["Seq"])
        else:
            hist.add(p, kind, "create", id=name, key=key, why=out)


def register_client(p, nodes, registers, hist, stop, seed):
    rng = random.Random(seed)
    k = 0
    while not stop.is_set():
        reg = rng.choice(registers)
        if rng.random() < 0.5:
            value = "r%d-%d" % (p, k)
            k += 1
            key = uuid.UUID(int=rng.getrandbits(128)).hex
            hist.add(p, "invoke", "write", key=reg, value=value)
            kind, out = send_command(nodes, rng, "directory.Rename",
                                     {"Id": reg, "Name": value}, key, stop)
            hist.add(p, kind, "write", key=reg, value=value, why=None if kind == "ok" else out)
        else:
            node = rng.choice(nodes)
            hist.add(p, "invoke", "read", key=reg, node=node.id)
            got = call(node, "GET", "/api_v2/directories/%s?consistency=linearizable" % reg)
            if got is not None and got[0] == 200:
                hist.add(p, "ok", "read", key=reg, value=got[1]["Directory"]["Name"])
            else:
                # a read changes nothing: one that got no answer is left out
                hist.add(p, "fail", "read", key=reg, why=got and got[0])
        time.sleep(rng.uniform(0, 0.02))


class Subscriber:
    """Follows the event stream with its cursor, reconnecting to a random
    node after an error, an end, or now and then."""

    def __init__(self, p, nodes, stop, seed):
        self.p, self.nodes, self.stop = p, nodes, stop
        self.rng = random.Random(seed)
        self.seqs = []
        self.reconnects = 0

    def run(self):
        while not self.stop.is_set():
            node = self.rng.choice(self.nodes)
            after = self.seqs[-1] if self.seqs else 0
            self.reconnects += 1
            self.follow(node, after, time.monotonic() + self.rng.uniform(1, 6))

    def follow(self, node, after, until):
        c = conn_for(node, 2)
        try:
            c.request("GET", "/api_v2/events/stream?after=%d" % after,
                      headers={"Authorization": "Bearer " + TOKEN,
                               "Accept": "text/event-stream"})
            r = c.getresponse()
            if r.status != 200:
                time.sleep(0.1)
                return
            ev_id = None
            while time.monotonic() < until and not self.stop.is_set():
                line = r.readline()
                if not line:
                    return
                line = line.decode().rstrip("\n")
                if line.startswith("id: "):
                    ev_id = int(line[4:])
                elif line == "" and ev_id is not None:
                    self.seqs.append(ev_id)
                    ev_id = None
                elif line.startswith("event: gone"):
                    raise AssertionError("subscriber %d: cursor %d is behind retention"
                                         % (self.p, after))
        except (OSError, http.client.HTTPException, ValueError):
            time.sleep(0.05)
        finally:
            c.close()


class Nemesis:
    """Seeded faults, one at a time, each healed before the next. Every
    step is printed with its time so a run can be read against the
    history."""

    def __init__(self, s, nodes, rng, hist):
        self.s, self.nodes, self.rng, self.hist = s, nodes, rng, hist
        self.log = []
        self.down = set()  # killed, not yet restarted

    def say(self, what):
        line = "nemesis %7.2fs %s" % (time.monotonic() - self.hist.t0, what)
        self.log.append(line)
        print(line, flush=True)

    def leader(self):
        live = [n for n in self.nodes if n.id not in self.down]
        try:
            return leader_of(live)
        except OSError:
            return None

    def idx(self, n):
        return self.nodes.index(n)

    def hold(self):
        time.sleep(self.rng.uniform(1.0, 4.0))

    def isolate_leader(self, lead):
        self.say("isolate the leader, node %d" % lead.id)
        NET.isolate(self.idx(lead))
        self.hold()
        NET.heal(self.idx(lead))

    def isolate_follower(self, lead):
        f = self.rng.choice([n for n in self.nodes if n is not lead])
        self.say("isolate follower %d" % f.id)
        NET.isolate(self.idx(f))
        self.hold()
        NET.heal(self.idx(f))

    def leader_in_minority(self, lead):
        others = [n for n in self.nodes if n is not lead]
        self.say("partition: node %d alone, %s together, clients reach all"
                 % (lead.id, [n.id for n in others]))
        for o in others:
            NET.cut(self.idx(lead), self.idx(o))
        self.hold()
        for o in others:
            NET.uncut(self.idx(lead), self.idx(o))

    def pause_leader(self, lead):
        self.say("SIGSTOP the leader, node %d" % lead.id)
        lead.proc.send_signal(signal.SIGSTOP)
        self.hold()
        lead.proc.send_signal(signal.SIGCONT)
        self.say("SIGCONT node %d" % lead.id)

    def kill_restart(self, lead):
        v = self.rng.choice(self.nodes)
        self.say("kill -9 node %d%s" % (v.id, " (the leader)" if v is lead else ""))
        v.kill9()
        self.down.add(v.id)
        self.hold()
        self.say("restart node %d" % v.id)
        v.start(wait=False)
        self.down.discard(v.id)

    def kill_in_minority(self, lead):
        others = [n for n in self.nodes if n is not lead]
        self.say("partition: node %d alone; kill -9 it and restart it there" % lead.id)
        for o in others:
            NET.cut(self.idx(lead), self.idx(o))
        time.sleep(self.rng.uniform(0.2, 1.5))
        lead.kill9()
        self.down.add(lead.id)
        time.sleep(self.rng.uniform(0.2, 1.5))
        lead.start(wait=False)
        self.down.discard(lead.id)
        self.hold()
        for o in others:
            NET.uncut(self.idx(lead), self.idx(o))

    def transfer_during_partition(self, lead):
        f = self.rng.choice([n for n in self.nodes if n is not lead])
        target = f.id if self.rng.random() < 0.5 else None
        self.say("isolate follower %d, ask node %d to transfer leadership to %s"
                 % (f.id, lead.id, target if target is not None else "anyone"))
        NET.isolate(self.idx(f))
        got = call(lead, "POST", "/command/cluster.TransferLeadership",
                   {"Id": target} if target is not None else {}, timeout=15)
        self.say("  transfer answered %s" % (got[0] if got else "nothing"))
        self.hold()
        NET.heal(self.idx(f))

    def remove_rejoin(self, lead):
        f = self.rng.choice([n for n in self.nodes if n is not lead])
        # SPEC 1.1: --join names a member. The third node may itself be
        # a removed one still joining (two such nodes asked each other
        # forever); the leader that removed f is a member.
        other = lead
        self.say("isolate follower %d, remove it through node %d" % (f.id, lead.id))
        NET.isolate(self.idx(f))
        got = call(lead, "POST", "/command/cluster.RemoveNode", {"Id": f.id}, timeout=15)
        self.say("  remove answered %s" % (got[0] if got else "nothing"))
        self.hold()
        NET.heal(self.idx(f))
        if got is None or got[0] != 200:
            # outcome unknown: the removal may still be committed by a later
            # leader; an operator retries until the answer is definite
            got = self.retry_removal(f)
            if got is None or got[0] not in (200, 404):
                return
        # a removed member comes back as a new one: empty data dir, --join
        rc = f.stop()
        check(rc == 0, ("node %d did not stop cleanly" % f.id, rc, f.read_log()))
        if f.disk is not None:
            f.disk.wipe()
        else:
            shutil.rmtree(f.data_dir, ignore_errors=True)
        f.extra = ["--join", "http://" + other.http_addr] + [
            a for i, a in enumerate(f.extra) if a != "--cluster" and
            (i == 0 or f.extra[i - 1] != "--cluster")]
        self.say("node %d joins again through node %d" % (f.id, other.id))
        f.start(wait=False)

    def retry_removal(self, f):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for n in self.nodes:
                if n is f:
                    continue
                got = call(n, "POST", "/command/cluster.RemoveNode", {"Id": f.id}, timeout=15)
                if got is not None and got[0] in (200, 404):
                    self.say("  remove retried through node %d: %d" % (n.id, got[0]))
                    return got
            time.sleep(0.5)
        self.say("  remove still unsettled after 30 s")
        return None

    def fill_disk(self, lead):
        n = [x for x in self.nodes if x.disk is not None][0]
        self.say("fill node %d's disk%s" % (n.id, " (the leader)" if n is lead else ""))
        df = n.disk.fill().split()
        self.say("  %s used" % (df[-2] if len(df) > 2 else "?"))
        self.hold()
        n.disk.empty()
        self.say("  room again on node %d" % n.id)

    FAULTS = ("isolate_leader", "isolate_follower", "leader_in_minority", "pause_leader",
              "kill_restart", "kill_in_minority", "transfer_during_partition", "remove_rejoin",
              "fill_disk")

    def run(self, stop, until):
        while time.monotonic() < until and not stop.is_set():
            lead = self.leader()
            fault = self.rng.choice(self.FAULTS)
            if lead is None:
                self.say("no leader known; waiting")
                time.sleep(1)
                continue
            getattr(self, fault)(lead)
            time.sleep(self.rng.uniform(0.5, 2.0))


def health(n):
    got = call(n, "GET", "/api_v2/health", timeout=2)
    return got[1] if got and got[0] == 200 else None


def settled(nodes):
    hs = [health(n) for n in nodes]
    if any(h is None for h in hs):
        return False
    return len({h["AppliedSeq"] for h in hs}) == 1


def events_of(n, upto):
    out, after = [], 0
    for _ in range(10000):
        got = call(n, "GET", "/api_v2/events?after=%d&limit=10000&min_seq=%d" % (after, upto),
                   timeout=30)
        check(got is not None and got[0] == 200, ("events of node %d" % n.id, got))
        if not got[1]:
            return out
        out += got[1]
        after = out[-1]["Seq"]
    raise AssertionError("too many pages")


def test_nemesis(s):
    seed = OPTS["seed"] if OPTS["seed"] is not None else random.randrange(1 << 32)
    print("seed %d (replay: --seed %d), %.0fs of faults" % (seed, seed, OPTS["seconds"]),
          flush=True)
    rng = random.Random(seed)
    node_extra = None
    if OPTS["peer_tls"]:
        # raft and forwarding between the nodes inside mutual TLS (SPEC 7.1)
        from pki import CA
        ca = CA(s.workdir(), "cluster")
        certs = [ca.issue("node%d" % (i + 1)) for i in range(3)]
        node_extra = lambda i: ["--peer-tls-cert", certs[i][0], "--peer-tls-key", certs[i][1],
                                "--peer-tls-ca", ca.cert]
        print("peer TLS on", flush=True)
    nodes = netns.start_cluster(s, NET, extra=["--snapshot-threshold", "64"],
                                disks={2: DISK_MB}, node_extra=node_extra)
    for n in nodes:
        if n.disk is not None:
            atexit.register(n.disk.close)  # after the Suite has stopped the nodes
    wait_until(lambda: leader_of(nodes), 15, what="a leader")
    hist = History()
    parent = expect(nodes[0].command("directory.Create", {"Parent": "root", "Name": "cmds"},
                                     timeout=15), 200).json()["Id"]
    registers = []
    for i in range(N_REGISTERS):
        registers.append(expect(nodes[0].command(
            "directory.Create", {"Parent": "root", "Name": "reg%d-init" % i}, timeout=15),
            200).json()["Id"])
    initial = {reg: "reg%d-init" % i for i, reg in enumerate(registers)}
    start_seq = health(nodes[0])["AppliedSeq"]

    stop = threading.Event()
    subs_stop = threading.Event()
    subs = [Subscriber(100 + i, nodes, subs_stop, rng.getrandbits(32))
            for i in range(SUBSCRIBERS)]
    threads = [threading.Thread(target=command_client,
                                args=(i, nodes, parent, hist, stop, rng.getrandbits(32)))
               for i in range(COMMAND_CLIENTS)]
    threads += [threading.Thread(target=register_client,
                                 args=(10 + i, nodes, registers, hist, stop, rng.getrandbits(32)))
                for i in range(REGISTER_CLIENTS)]
    sub_threads = [threading.Thread(target=sub.run) for sub in subs]
    for t in threads + sub_threads:
        t.daemon = True
        t.start()
    nem = Nemesis(s, nodes, random.Random(rng.getrandbits(32)), hist)
    try:
        nem.run(stop, time.monotonic() + OPTS["seconds"])
    finally:
        # heal everything; the workload goes on a little against a whole
        # cluster, then stops
        for i in range(len(nodes)):
            NET.heal(i)
            for j in range(i + 1, len(nodes)):
                NET.uncut(i, j)
        for n in nodes:
            if n.proc.poll() is None:
                n.proc.send_signal(signal.SIGCONT)
            else:
                n.start(wait=False)
        nem.say("healed")
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(RETRY_FOR_S + 10)
    path = OPTS["history"] or os.path.join(tempfile.gettempdir(),
                                           "varasto-nemesis-%d.jsonl" % seed)
    hist.write(path)
    print("history: %s (%d records)" % (path, len(hist.records)), flush=True)
    for n in nodes:  # the nodes' logs of the run, beside it (the work dir goes)
        shutil.copyfile(n.log_path, "%s-node%d.log" % (os.path.splitext(path)[0], n.id))

    # ---- checks ----
    for n in nodes:
        check(n.proc.poll() is None, ("node %d exited" % n.id, n.proc.returncode, n.read_log()))
    wait_until(lambda: settled(nodes), 60, interval=0.2, what="every node to apply the same Seq")
    last = health(nodes[0])["AppliedSeq"]
    # subscribers follow to the end of the log
    wait_until(lambda: all(sub.seqs and sub.seqs[-1] >= last for sub in subs), 60, interval=0.2,
               what="every subscriber to reach Seq %d" % last)
    subs_stop.set()
    for t in sub_threads:
        t.join(10)
    logs = [events_of(n, last) for n in nodes]
    for n, lg in zip(nodes[1:], logs[1:]):
        check(lg == logs[0], "node %d's log differs from node %d's" % (n.id, nodes[0].id))
    log = logs[0]
    seqs = [e["Seq"] for e in log]
    check(seqs == list(range(1, len(seqs) + 1)), "the log's Seqs are 1..n")

    # read models: the same directories everywhere
    views = []
    for n in nodes:
        got = call(n, "GET", "/api_v2/directories/%s?min_seq=%d" % (parent, last), timeout=30)
        check(got is not None and got[0] == 200, got)
        regs = [call(n, "GET", "/api_v2/directories/%s?min_seq=%d" % (r, last))[1]["Directory"]["Name"]
                for r in registers]
        views.append((sorted(d["Id"] for d in got[1]["SubDirectories"]), regs))
    check(all(v == views[0] for v in views), "read models differ")

    # commands: acknowledged ones exactly once, at the Seq they were told
    creates = [e for e in log if e["Type"] == "directory.Created"
               and e["Data"].get("Parent") == parent]
    invoked = {r["id"] for r in hist.records if r["f"] == "create" and r["type"] == "invoke"}
    acked = [{"id": r["id"], "seq": r["seq"]} for r in hist.records
             if r["f"] == "create" and r["type"] == "ok"]
    in_log = [{"Seq": e["Seq"], "Id": e["Data"]["Name"]} for e in creates]
    problems = checks.command_problems(acked, invoked, in_log)
    names = {d for d in views[0][0]}
    check(len(names) == len(creates), ("directories vs events", len(names), len(creates)))

    # registers: linearizable, and unknown writes the log shows took effect
    renamed = {}
    for e in log:
        if e["Type"] == "directory.Renamed" and e["Data"].get("Id") in initial:
            renamed.setdefault(e["Data"]["Id"], set()).add(e["Data"]["Name"])
    for reg in registers:
        ops = linearizable.from_history(hist.records, reg)
        for o in ops:
            if o["f"] == "write" and o["ret"] is None and o["value"] in renamed.get(reg, ()):
                o["required"] = True
        ok, why = linearizable.check(ops, initial[reg])
        if not ok:
            problems.append("register %s: %s" % (reg, why))
        writes_ok = {o["value"] for o in ops if o["f"] == "write" and o["ret"] is not None}
        missing = writes_ok - renamed.get(reg, set())
        if missing:
            problems.append("register %s: acknowledged renames not in the log: %s"
                            % (reg, sorted(missing)[:5]))

    # subscribers: no gap, no duplicate, the log's own order, all of it
    for sub in subs:
        if len(sub.seqs) < len(seqs):
            problems.append("subscriber %d got %d of %d events" % (sub.p, len(sub.seqs), len(seqs)))
        problems += ["subscriber %d: %s" % (sub.p, p)
                     for p in checks.stream_problems(sub.seqs, seqs)]
    # no crash, no broken invariant
    for n in nodes:
        with open(n.log_path, "rb") as f:
            bad = checks.crash_lines(f.read().decode(errors="replace"))
        problems += ["node %d log: %s" % (n.id, ln) for ln in bad[:5]]

    errors = []
    for n in nodes:
        with open(n.log_path, "rb") as f:
            errors.append([ln[ln.find(" ERROR ") + 7:][:90] for ln in
                           f.read().decode(errors="replace").splitlines() if " ERROR " in ln])
    for n, errs in zip(nodes, errors):
        for e in errs[:3]:
            print("node %d ERROR: %s" % (n.id, e), flush=True)
    counts = {t: sum(1 for r in hist.records if r["type"] == t)
              for t in ("invoke", "ok", "fail", "info")}
    print("ops %s; %d commands acknowledged; %d events; subscribers got %s events over %s "
          "connections; %d nemesis steps" %
          (counts, len({a["id"] for a in acked}), len(log), [len(x.seqs) for x in subs],
           [x.reconnects for x in subs], len(nem.log)), flush=True)
    check(len(acked) > 0 and counts["ok"] > 0, "the workload made progress")
    check(not problems, "\n".join(problems[:40]))


def inside(net):
    global NET
    NET = net
    Suite().run([test_nemesis])
    return 0


def take_options():
    """--seconds, --seed, --history out of argv (the rest is the Suite's)."""
    rest, argv = [sys.argv[0]], sys.argv[1:]
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--peer-tls":
            OPTS["peer_tls"] = True
            i += 1
            continue
        if a in ("--seconds", "--seed", "--history") and i + 1 < len(argv):
            v = argv[i + 1]
            OPTS[a[2:]] = float(v) if a == "--seconds" else int(v) if a == "--seed" else v
            i += 2
            continue
        rest.append(a)
        i += 1
    return rest


if __name__ == "__main__":
    if "--inside" in sys.argv:
        # netns re-runs this script: the options pass through after its own
        k = sys.argv.index("--inside")
        head, tail = sys.argv[:k + 5], sys.argv[k + 5:]
        sys.argv = head[:1] + tail
        rest = take_options()
        sys.argv = head + rest[1:]
    sys.exit(netns.main_inside(inside))
