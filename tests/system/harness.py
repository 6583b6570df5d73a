"""Start real varastod processes on loopback and talk HTTP to them.

Python 3 standard library only. Every wait polls a condition with a deadline;
every process started is stopped when the test ends.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOKEN = "test-admin-token-0123456789"


_handed_out = set()


def write_token(path, token=TOKEN):
    """A token file as varastod takes it: mode 0600 (one readable by group
    or others is refused). Returns @path."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return path


def free_port():
    """A loopback port below the kernel's ephemeral range that binds now.
    A port the kernel picks for bind(0) is ephemeral: by the time a node
    binds it, an outgoing connection may hold it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(10000, max(low, 10001))
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise AssertionError("no free loopback port below %d" % low)


def wait_until(cond, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:200])


class Node:
    def __init__(self, varastod, workdir, node_id=1, extra=None, token_file=None):
        self.varastod = varastod
        self.id = node_id
        self.data_dir = os.path.join(workdir, "node%d" % node_id)
        self.http_port = free_port()
        self.raft_port = free_port()
        self.token_file = token_file
        self.extra = extra or []
        self.proc = None
        self.log_path = os.path.join(workdir, "node%d.log" % node_id)
        self.conn = None
        self.host = "127.0.0.1"  # where it listens (a fault test's namespace has its own)
        self.wrap = []           # a command prefix, e.g. ["ip", "netns", "exec", NS]
        self.ssl = None          # an ssl.SSLContext: the node serves HTTPS

    @property
    def http_addr(self):
        return "%s:%d" % (self.host, self.http_port)

    def args(self):
        a = [self.varastod, "--id", str(self.id), "--data-dir", self.data_dir,
             "--http", self.http_addr, "--raft", "%s:%d" % (self.host, self.raft_port)]
        if self.token_file:
            a += ["--token-file", self.token_file]
        return a + self.extra

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.wrap + self.args(), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("varastod exited with %s; log:\n%s" %
                                     (self.proc.returncode, self.read_log()))
            try:
                r = self.request("GET", "/api_v2/health", auth=False, timeout=1)
                return r.status == 200
            except OSError:
                self.close_conn()
                return False
        wait_until(ready, timeout, what="node %d to become ready" % self.id)

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-int(os.environ.get("VARASTO_LOG_TAIL", "4000")):]
        except OSError:
            return ""

    def client(self):
        """Another handle on this node with its own HTTP connection."""
        import copy
        c = copy.copy(self)
        c.conn = None
        return c

    def close_conn(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None, auth=True, token=None,
                timeout=10, raw=None):
        h = {}
        if auth:
            h["Authorization"] = "Bearer " + (token or TOKEN)
        if headers:
            h.update(headers)
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        for attempt in range(2):
            if self.conn is None and self.ssl is not None:
                self.conn = http.client.HTTPSConnection(self.host, self.http_port,
                                                        timeout=timeout, context=self.ssl)
            elif self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.http_port,
                                                       timeout=timeout)
            try:
                # the timeout of a kept-alive connection is its socket's
                self.conn.timeout = timeout
                if self.conn.sock is not None:
                    self.conn.sock.settimeout(timeout)
                self.conn.request(method, path, body=data, headers=h)
                resp = self.conn.getresponse()
                payload = resp.read()
                hdrs = {k.lower(): v for k, v in resp.getheaders()}
                return Response(resp.status, hdrs, payload)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # a kept-alive connection the server closed: retry once
                self.close_conn()
                if attempt == 1:
                    raise
            except Exception:
                self.close_conn()
                raise

    def command(self, name, body, key=None, **kw):
        headers = {"Idempotency-Key": key} if key else None
        return self.request("POST", "/command/" + name, body=body, headers=headers, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        self.close_conn()
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(5)
            raise AssertionError("node %d did not stop within %ss" % (self.id, timeout))
        self.log.close()
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)


class Suite:
    """Run test functions with fresh temp dirs; report and exit."""

    def __init__(self):
        p = argparse.ArgumentParser()
        p.add_argument("--varastod", required=True)
        p.add_argument("-k", default=None, help="run only tests whose name contains this")
        self.args = p.parse_args()
        self.varastod = os.path.abspath(self.args.varastod)
        self.failures = 0
        self.nodes = []

    def workdir(self):
        d = tempfile.mkdtemp(prefix="varasto-systest-")
        self.dirs.append(d)
        return d

    def token_file(self, workdir):
        return write_token(os.path.join(workdir, "token"))

    def node(self, workdir=None, node_id=1, extra=None, start=True):
        workdir = workdir or self.workdir()
        n = Node(self.varastod, workdir, node_id, extra, self.token_file(workdir))
        self.nodes.append(n)
        if start:
            n.start()
        return n

    def cluster(self, size=3, extra=None, start=True):
        """@size nodes formed with one --cluster list, started together."""
        workdir = self.workdir()
        token = self.token_file(workdir)
        nodes = [Node(self.varastod, workdir, i + 1, None, token) for i in range(size)]
        members = ",".join("%d=127.0.0.1:%d" % (n.id, n.raft_port) for n in nodes)
        for n in nodes:
            n.extra = ["--cluster", members] + (extra or [])
            self.nodes.append(n)
        if start:
            for n in nodes:
                n.start(wait=False)
            for n in nodes:
                n.wait_ready(30)
        return nodes

    def stop_all(self, timeout=20):
        """SIGTERM every running node at once (resuming paused ones first);
        returns [(node id, exit code)] for those that did not exit 0."""
        running = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        for n in running:
            n.close_conn()
            try:
                n.proc.send_signal(signal.SIGCONT)
                n.proc.send_signal(signal.SIGTERM)
            except OSError:
                pass
        unclean = []
        deadline = time.monotonic() + timeout
        for n in running:
            try:
                rc = n.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait(5)
                rc = "no exit within %ds" % timeout
            n.log.close()
            if rc != 0:
                unclean.append((n.id, rc))
        return unclean

    def run(self, tests):
        for t in tests:
            if self.args.k and self.args.k not in t.__name__:
                continue
            self.dirs = []
            self.nodes = []
            started = time.monotonic()
            failed = False
            try:
                t(self)
                print("ok   %s (%.1fs)" % (t.__name__, time.monotonic() - started), flush=True)
            except Exception as e:  # noqa: BLE001 - report every failure
                failed = True
                self.failures += 1
                print("FAIL %s: %r" % (t.__name__, e), flush=True)
                import traceback
                traceback.print_exc()
                for n in self.nodes:
                    print("---- log of node %d ----\n%s" % (n.id, n.read_log()), flush=True)
            finally:
                # Every node still running stops cleanly: SIGTERM ends it
                # with exit code 0, which under the sanitizers also means no
                # leak (LeakSanitizer exits non-zero) and every libuv handle
                # closed (varastod exits 1 when its loop does not close).
                unclean = self.stop_all()
                if unclean and not failed:
                    self.failures += 1
                    print("FAIL %s: nodes did not stop cleanly: %s" % (t.__name__, unclean),
                          flush=True)
                    for n in self.nodes:
                        print("---- log of node %d ----\n%s" % (n.id, n.read_log()), flush=True)
                if failed and os.environ.get("VARASTO_KEEP_DIRS"):
                    print("kept: %s" % " ".join(self.dirs), flush=True)
                else:
                    for d in self.dirs:
                        shutil.rmtree(d, ignore_errors=True)
        if self.failures:
            print("%d test(s) failed" % self.failures)
            sys.exit(1)
        print("all passed")


def leader_of(nodes):
    """The node that says it is the leader, or None (dead nodes skipped)."""
    for n in nodes:
        try:
            h = n.request("GET", "/api_v2/health", auth=False, timeout=2)
        except OSError:
            n.close_conn()
            continue
        if h.status == 200 and h.json()["Role"] == "leader":
            return n
    return None


def create_with_retries(clients, first, name, deadline_s=30, stop=None):
    """directory.Create @name with an Idempotency-Key, as a careful client
    does: on 503 or no answer, retry the same key on the next node. Returns
    the final response, or None if none came within @deadline_s."""
    deadline = time.monotonic() + deadline_s
    attempt = 0
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        c = clients[(first + attempt) % len(clients)]
        attempt += 1
        try:
            r = c.command("directory.Create", {"Parent": "root", "Name": name},
                          key="key-" + name, timeout=5)
        except OSError:
            c.close_conn()
            time.sleep(0.05)
            continue
        if r.status != 503:
            return r
        time.sleep(0.05)
    return None


def collect(next_event, count, timeout):
    """Up to @count results of next_event(timeout) within @timeout seconds."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        ev = next_event(max(0.05, deadline - time.monotonic()))
        if ev is None:
            break
        out.append(ev)
    return out


def check(cond, message="check failed"):
    if not cond:
        raise AssertionError(message)


def expect(resp, status, code=None):
    if resp.status != status:
        raise AssertionError("expected %d, got %r" % (status, resp))
    if code is not None:
        got = resp.json().get("Code")
        if got != code:
            raise AssertionError("expected Code %s, got %r" % (code, resp))
    return resp


def all_events(node, min_seq=0):
    """The node's whole event log, page by page (after it has applied
    min_seq)."""
    out, after = [], 0
    for _ in range(1000):
        page = expect(node.request("GET", "/api_v2/events?after=%d&limit=10000&min_seq=%d"
                                   % (after, min_seq)), 200).json()
        if not page:
            return out
        out += page
        after = page[-1]["Seq"]
    raise AssertionError("too many pages")
