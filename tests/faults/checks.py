"""Checks of the fault suite over what the clients saw and what the nodes
hold (see test_checker.py for them on hand-made input)."""
from collections import Counter


def command_problems(acked, invoked, log):
    """@acked: commands answered 200, dicts with id (the client's unique
    name for it) and seq (the Seq of the answer; every answer for one
    Idempotency-Key, so one id may come several times); @invoked: every id a
    client sent; @log: the log's events for these commands, dicts with Seq
    and Id. Returns a list of problems: an acknowledged command missing or
    applied twice, answers for one key with different Seqs, an event no
    client asked for."""
    problems = []
    count = Counter(e["Id"] for e in log)
    seq_of = {e["Id"]: e["Seq"] for e in log}
    answered = {}
    for a in acked:
        answered.setdefault(a["id"], set()).add(a["seq"])
    for cid, seqs in sorted(answered.items()):
        if count[cid] == 0:
            problems.append("acknowledged but not in the log: %s (Seq %s)" % (cid, sorted(seqs)))
        if len(seqs) > 1:
            problems.append("one key, different answers: %s got Seqs %s" % (cid, sorted(seqs)))
        elif cid in seq_of and seq_of[cid] not in seqs:
            problems.append("%s answered Seq %s, the log has it at %d"
                            % (cid, sorted(seqs), seq_of[cid]))
    for cid, k in sorted(count.items()):
        if k > 1:
            problems.append("applied %d times: %s" % (k, cid))
        if cid not in invoked:
            problems.append("in the log, asked by no one: %s" % cid)
    return problems


def stream_problems(got, log_seqs):
    """@got: the Seqs a subscriber was handed, in order, across its
    reconnections; @log_seqs: the log's Seqs from the subscriber's start.
    A subscriber may lag behind; it may not skip, repeat or invent."""
    problems = []
    for i, seq in enumerate(got):
        if i >= len(log_seqs):
            problems.append("Seq %d beyond the log (which ends at %s)"
                            % (seq, log_seqs[-1] if log_seqs else None))
            break
        if seq != log_seqs[i]:
            kind = "repeated" if seq in got[:i] else "out of order or skipped to"
            problems.append("event %d: Seq %d %s, the log has %d" % (i, seq, kind, log_seqs[i]))
            break
    return problems


def crash_lines(log_text):
    """Lines of a node's log that say it crashed or broke an invariant."""
    marks = ("Assertion", "assertion", "SIGSEGV", "AddressSanitizer", "runtime error:",
             "LeakSanitizer", "Segmentation fault", "stopping (a restart", "abort")
    return [ln for ln in log_text.splitlines() if any(m in ln for m in marks)]
