"""A full disk under a node's data dir: a tmpfs of its own, mounted in a
mount namespace made for the node (nothing is mounted where the rest of the
machine sees it), filled with a balloon file. Needs root; exits 77
(skipped) when it cannot make the namespace."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "system"))

from harness import Suite, check, expect, wait_until  # noqa: E402

TMPFS_MB = 160  # raft preallocates three 32 MiB segments; the rest is the read model's


def usable():
    if os.geteuid() != 0:
        return "needs root (a mount namespace and tmpfs)"
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return "cannot make a mount namespace: %s" % r.stderr.strip()
    return None


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


if __name__ == "__main__":
    why = usable()
    if why is not None:
        print("skipped: %s" % why)
        sys.exit(77)
    Suite().run([test_full_disk_refuses_commands_and_recovers])
