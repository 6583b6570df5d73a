"""What the benchmark scripts share: run a load generator against servers
and report throughput, latency and where the CPU went.

On a machine where the servers and the load generator share two cores,
requests per second move with the host's load from run to run; the CPU
time each side spends per request moves much less, so every row reports
both: the servers' CPU (all their processes and threads, from /proc) and
the load generator's, in microseconds per request.
"""
import os
import re
import resource
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """User plus system CPU seconds the processes @pids have used so far."""
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def children_cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class Measure:
    """CPU of the servers and of waited-for children between start and stop."""

    def __init__(self, pids):
        self.pids = list(pids)
        self.server0 = cpu_seconds(self.pids)
        self.client0 = children_cpu_seconds()

    def per_request_us(self, requests):
        server = cpu_seconds(self.pids) - self.server0
        client = children_cpu_seconds() - self.client0
        n = max(requests, 1)
        return server * 1e6 / n, client * 1e6 / n


def wrk(url, script, conns, duration, env=None, pids=()):
    """Run wrk with bench/@script; returns a dict with rps, p50, p99 (as wrk
    prints them), requests, server_us and client_us (CPU per request).
    Any non-2xx answer or socket error stops the benchmark."""
    threads = 1 if conns == 1 else 2
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration, "--latency",
           "-s", os.path.join(HERE, script), url]
    m = Measure(pids)
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {})),
                         timeout=duration + 60)
    if out.returncode != 0:
        raise SystemExit("wrk failed: " + out.stderr)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    sock = re.search(r"Socket errors: .*", out.stdout)
    if bad or sock:
        raise SystemExit("the benchmark saw errors (send one request by hand to see why):\n"
                         + out.stdout)
    requests = int(re.search(r"(\d+) requests in", out.stdout).group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out.stdout, re.M))
    server_us, client_us = m.per_request_us(requests)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1)),
            "p50": lat.get("50"), "p99": lat.get("99"), "requests": requests,
            "server_us": server_us, "client_us": client_us}


HEADER = ("| operation | connections | per second | p50 | p99 | server CPU/request "
          "| load generator CPU/request |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |")


def row(label, conns, r):
    return "| %s | %d | %.0f | %s | %s | %.0f µs | %.0f µs |" % (
        label, conns, r["rps"], r["p50"], r["p99"], r["server_us"], r["client_us"])
