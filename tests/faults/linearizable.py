"""A linearizability checker for register histories, Wing & Gong's search
with Lowe's just-in-time ordering and a memo of visited states (the method
Porcupine and Knossos use).

An operation is a dict: f "read" or "write", value (written, or read),
call and ret (times; ret None when the outcome is unknown, "info"), and
required (for an unknown write: the log shows it took effect). Failed
operations are left out by the caller: they did not happen. A read whose
outcome is unknown constrains nothing and is left out too.

check(ops, initial) -> (True, None) or (False, explanation). Registers are
independent, so a history of several is checked one register at a time
(linearizability is local)."""

INF = float("inf")


def check(ops, initial, budget=2000000):
    ops = [o for o in ops if not (o["f"] == "read" and o.get("ret") is None)]
    ops.sort(key=lambda o: o["call"])
    n = len(ops)
    rets = [INF if o.get("ret") is None else o["ret"] for o in ops]
    # an operation must be linearized if it completed, or if the log shows it
    must = 0
    for i, o in enumerate(ops):
        if o.get("ret") is not None or o.get("required"):
            must |= 1 << i
    seen = set()
    # depth-first: (linearized bitmask, register value, next candidate to try)
    stack = [(0, initial, 0)]
    best = (0, 0)
    steps = 0
    while stack:
        done, value, start = stack.pop()
        steps += 1
        if steps > budget:
            return False, "search budget of %d steps exceeded (%d operations)" % (budget, n)
        if done & must == must:
            return True, None
        # the earliest return among operations not yet linearized: only
        # operations called before it can go next
        horizon = INF
        for i in range(n):
            if not done >> i & 1 and rets[i] < horizon:
                horizon = rets[i]
        count = bin(done).count("1")
        if count > best[0]:
            best = (count, done)
        for i in range(start, n):
            if ops[i]["call"] > horizon:
                break
            if done >> i & 1:
                continue
            o = ops[i]
            if o["f"] == "write":
                nxt = o["value"]
            elif o["value"] == value:
                nxt = value
            else:
                continue
            state = (done | 1 << i, nxt)
            if state in seen:
                continue
            seen.add(state)
            # come back for the next candidate after this branch
            stack.append((done, value, i + 1))
            stack.append((done | 1 << i, nxt, 0))
            break
    done = best[1]
    stuck = [o for i, o in enumerate(ops) if not done >> i & 1 and must >> i & 1]
    stuck.sort(key=lambda o: rets[ops.index(o)])
    return False, ("no linearization: %d of %d operations placed at most; the first that "
                   "cannot be: %r" % (best[0], n, stuck[:3]))


def from_history(records, key):
    """Operations on register @key from history records (dicts with
    process, type invoke/ok/fail/info, f, key, value, time). A process has
    one operation in flight at a time."""
    open_ops, ops = {}, []
    for r in records:
        if r.get("key") != key or r["f"] not in ("read", "write"):
            continue
        if r["type"] == "invoke":
            open_ops[r["process"]] = {"f": r["f"], "value": r.get("value"), "call": r["time"],
                                      "ret": None, "id": r.get("id")}
            continue
        o = open_ops.pop(r["process"], None)
        if o is None:
            continue
        if r["type"] == "fail":
            continue
        if r["type"] == "ok":
            o["ret"] = r["time"]
            if o["f"] == "read":
                o["value"] = r.get("value")
        ops.append(o)
    ops.extend(open_ops.values())  # never answered: unknown
    return ops
