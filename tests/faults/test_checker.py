"""The fault suite's checkers on hand-made histories: the linearizability
search says yes to every history a register allows and no to the ones it
does not, and the log checks catch lost, doubled and invented commands.
Needs nothing but Python."""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checks  # noqa: E402
import linearizable  # noqa: E402

failures = []


def expect(name, got, want):
    if bool(got) != want:
        failures.append("%s: got %r, want %r" % (name, got, want))


def w(value, call, ret, required=False):
    return {"f": "write", "value": value, "call": call, "ret": ret, "required": required}


def r(value, call, ret):
    return {"f": "read", "value": value, "call": call, "ret": ret}


def lin(ops, initial="init"):
    ok, _ = linearizable.check([dict(o) for o in ops], initial)
    return ok


def test_registers():
    expect("sequential", lin([w("a", 0, 1), r("a", 2, 3), w("b", 4, 5), r("b", 6, 7)]), True)
    expect("initial value", lin([r("init", 0, 1)]), True)
    expect("stale read", lin([w("a", 0, 1), w("b", 2, 3), r("a", 4, 5)]), False)
    expect("read before the write was called",
           lin([r("a", 0, 1), w("a", 2, 3)]), False)
    expect("value never written", lin([w("a", 0, 1), r("zz", 2, 3)]), False)
    # a read concurrent with a write may see either value ...
    expect("concurrent old", lin([w("a", 0, 10), r("init", 1, 2)]), True)
    expect("concurrent new", lin([w("a", 0, 10), r("a", 1, 2)]), True)
    # ... but once one read saw the new value, a later one cannot see the old
    expect("new then old while the write is open",
           lin([w("a", 0, 10), r("a", 1, 2), r("init", 3, 4)]), False)
    # two writers: the order the reads imply must be one order
    expect("two writers, consistent",
           lin([w("a", 0, 5), w("b", 0, 5), r("a", 6, 7), r("a", 8, 9)]), True)
    expect("two writers, flip-flop",
           lin([w("a", 0, 5), w("b", 0, 5), r("a", 6, 7), r("b", 8, 9), r("a", 10, 11)]), False)
    # an unknown write may have happened, or not, at any time after its call
    expect("unknown write not seen", lin([w("a", 0, None), r("init", 5, 6)]), True)
    expect("unknown write seen later", lin([w("a", 0, None), r("init", 5, 6), r("a", 7, 8)]),
           True)
    expect("unknown write seen, then gone",
           lin([w("a", 0, None), r("a", 1, 2), r("init", 3, 4)]), False)
    expect("unknown write seen before its call", lin([r("a", 0, 1), w("a", 2, None)]), False)
    # the log shows it: it took effect, some time after its call
    expect("required unknown write", lin([w("a", 0, None, True), r("init", 1, 2)]), True)
    expect("required unknown write before a completed one",
           lin([w("a", 0, None, True), w("b", 5, 6), r("b", 7, 8)]), True)
    # an unknown read says nothing
    expect("unknown read", lin([w("a", 0, 1), {"f": "read", "value": None, "call": 2,
                                                "ret": None}]), True)


def simulated(rng, n_ops, n_procs, unknown=0.0):
    """A history of a real atomic register: each operation takes effect at
    a random instant between its call and its return."""
    ops, t = [], 0.0
    events = []
    for k in range(n_ops):
        call = rng.uniform(0, n_ops)
        point = call + rng.uniform(0, 3)
        ret = point + rng.uniform(0, 3)
        f = "write" if rng.random() < 0.5 else "read"
        events.append((point, k, f, call, ret))
    events.sort()
    value = "init"
    for point, k, f, call, ret in events:
        if f == "write":
            value = "v%d" % k
            o = w(value, call, ret)
            if rng.random() < unknown:
                o["ret"] = None
            ops.append(o)
        else:
            ops.append(r(value, call, ret))
    del t, n_procs
    return ops


def test_random_histories():
    rng = random.Random(7)
    for round_ in range(60):
        ops = simulated(rng, 40, 5, unknown=0.2 if round_ % 2 else 0.0)
        expect("simulated register %d" % round_, lin(ops), True)
        # a read that returns a value written only after it returned is
        # impossible in any order
        reads = [o for o in ops if o["f"] == "read" and o["ret"] is not None]
        writes = [o for o in ops if o["f"] == "write"]
        later = [x for x in writes if reads and x["call"] > reads[0]["ret"]]
        if later:
            bad = [dict(o) for o in ops]
            i = ops.index(reads[0])
            bad[i]["value"] = later[-1]["value"]
            expect("read from the future %d" % round_, lin(bad), False)


def test_from_history():
    recs = [
        {"process": 1, "type": "invoke", "f": "write", "key": "k", "value": "a", "time": 0},
        {"process": 2, "type": "invoke", "f": "read", "key": "k", "time": 1},
        {"process": 1, "type": "ok", "f": "write", "key": "k", "value": "a", "time": 2},
        {"process": 2, "type": "ok", "f": "read", "key": "k", "value": "a", "time": 3},
        {"process": 1, "type": "invoke", "f": "write", "key": "k", "value": "b", "time": 4},
        {"process": 1, "type": "fail", "f": "write", "key": "k", "value": "b", "time": 5},
        {"process": 2, "type": "invoke", "f": "read", "key": "k", "time": 6},
        {"process": 2, "type": "ok", "f": "read", "key": "k", "value": "b", "time": 7},
    ]
    ops = linearizable.from_history(recs, "k")
    expect("failed write dropped", len(ops) == 3, True)
    expect("a failed write's value read", linearizable.check(ops, "init")[0], False)
    expect("without that read", linearizable.check(ops[:2], "init")[0], True)


def test_log_checks():
    acked = [{"id": "a", "seq": 1, "key": "k1"}, {"id": "b", "seq": 2, "key": "k2"}]
    invoked = {"a", "b", "c"}
    log = [{"Seq": 1, "Id": "a"}, {"Seq": 2, "Id": "b"}]
    expect("clean", not checks.command_problems(acked, invoked, log), True)
    expect("lost", checks.command_problems(acked, invoked, log[:1]), True)
    expect("doubled", checks.command_problems(acked, invoked, log + [{"Seq": 3, "Id": "b"}]),
           True)
    expect("invented", checks.command_problems(acked, invoked, log + [{"Seq": 3, "Id": "zz"}]),
           True)
    expect("unknown outcome applied", not checks.command_problems(
        acked, invoked, log + [{"Seq": 3, "Id": "c"}]), True)
    expect("wrong Seq", checks.command_problems([{"id": "a", "seq": 2, "key": "k1"}], invoked,
                                                log), True)
    expect("gap-free stream", not checks.stream_problems([1, 2, 3], [1, 2, 3]), True)
    expect("gap", checks.stream_problems([1, 3], [1, 2, 3]), True)
    expect("duplicate", checks.stream_problems([1, 2, 2, 3], [1, 2, 3]), True)
    expect("short", not checks.stream_problems([1, 2], [1, 2, 3]), True)
    expect("beyond the log", checks.stream_problems([1, 2, 3, 4], [1, 2, 3]), True)


if __name__ == "__main__":
    for t in (test_registers, test_random_histories, test_from_history, test_log_checks):
        t()
    for f in failures:
        print("FAIL", f)
    print("checker: %s" % ("%d failure(s)" % len(failures) if failures else "all checks passed"))
    sys.exit(1 if failures else 0)
