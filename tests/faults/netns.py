"""Hosts for fault tests: each node in a network namespace of its own,
joined to a bridge that lives in a namespace of its own, where the test's
client runs too. Nothing is added to the root namespace. A node is
partitioned off by taking its link on the bridge down.

    with Network(3) as net:   # namespaces vsw-XXXX, vn1-XXXX, ...
        net.run_inside(argv)   # re-run a script in the bridge namespace
"""
import os
import random
import subprocess
import sys

SUBNET = "10.77.%d.%d"


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), check=check, capture_output=True, text=True)


def available():
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    try:
        name = "vprobe-%d" % os.getpid()
        ip("netns", "add", name)
        ip("netns", "del", name)
    except (OSError, subprocess.CalledProcessError) as e:
        return "cannot create a network namespace: %s" % e
    return None


class Network:
    def __init__(self, n_hosts):
        self.tag = "%04x" % random.randrange(0x10000)
        self.net = random.randrange(1, 250)
        self.switch = "vsw-" + self.tag
        self.hosts = ["vn%d-%s" % (i + 1, self.tag) for i in range(n_hosts)]
        self.made = []

    def address(self, i):
        """The address of host @i (0-based)."""
        return SUBNET % (self.net, i + 1)

    def __enter__(self):
        try:
            ip("netns", "add", self.switch)
            self.made.append(self.switch)
            ip("-n", self.switch, "link", "set", "lo", "up")
            ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            ip("-n", self.switch, "addr", "add", SUBNET % (self.net, 254) + "/24", "dev", "br0")
            ip("-n", self.switch, "link", "set", "br0", "up")
            for i, h in enumerate(self.hosts):
                ip("netns", "add", h)
                self.made.append(h)
                ip("-n", h, "link", "set", "lo", "up")
                ip("-n", h, "link", "add", "eth0", "type", "veth", "peer", "name", self.port(i),
                   "netns", self.switch)
                ip("-n", h, "addr", "add", self.address(i) + "/24", "dev", "eth0")
                ip("-n", h, "link", "set", "eth0", "up")
                ip("-n", self.switch, "link", "set", self.port(i), "master", "br0")
                ip("-n", self.switch, "link", "set", self.port(i), "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for ns in reversed(self.made):
            ip("netns", "del", ns, check=False)
        self.made = []

    def port(self, i):
        return "p%d" % (i + 1)

    def wrap(self, i):
        """The command prefix that runs a program on host @i."""
        return ["ip", "netns", "exec", self.hosts[i]]

    def isolate(self, i, reset=False):
        """Cut host @i off from every other host and the client: packets to
        and from it are dropped, and connections stay open (writes to it
        pile up). With @reset, the other hosts' connections to it are reset
        too, as a long partition's timeouts end them: new ones wait in
        connect."""
        ip("-n", self.switch, "link", "set", self.port(i), "down")
        for k, h in enumerate(self.hosts):
            if reset and k != i:
                subprocess.run(["ip", "netns", "exec", h, "ss", "-K", "dst", self.address(i)],
                               capture_output=True)

    def heal(self, i):
        ip("-n", self.switch, "link", "set", self.port(i), "up")

    def cut(self, i, j):
        """Drop packets between hosts @i and @j only (each routes the
        other's address to nowhere); both still reach the client."""
        ip("-n", self.hosts[i], "route", "add", "blackhole", self.address(j) + "/32")
        ip("-n", self.hosts[j], "route", "add", "blackhole", self.address(i) + "/32")

    def uncut(self, i, j):
        ip("-n", self.hosts[i], "route", "del", "blackhole", self.address(j) + "/32", check=False)
        ip("-n", self.hosts[j], "route", "del", "blackhole", self.address(i) + "/32", check=False)

    def run_inside(self, argv):
        """Run @argv in the bridge's namespace (where the client is); its
        exit code."""
        return subprocess.call(["ip", "netns", "exec", self.switch] + argv)


class SmallDisk:
    """A tmpfs of @mb MiB over @path, mounted in a mount namespace of its
    own that a sleeping process keeps (so that the disk outlives restarts of
    the node on it). Nothing is mounted where the rest of the machine sees
    it."""

    def __init__(self, path, mb):
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs -o size=%dm tmpfs "$0" && echo mounted && exec sleep 1000000' % mb,
             path], stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "mounted":
            self.proc.wait(5)
            raise RuntimeError("cannot mount a tmpfs on %s" % path)

    def wrap(self):
        """The command prefix that runs a program with this disk mounted."""
        return ["nsenter", "-t", str(self.proc.pid), "-m", "--"]

    def sh(self, script):
        return subprocess.run(self.wrap() + ["sh", "-c", script], capture_output=True, text=True)

    def fill(self):
        """Fill it up with a balloon file; returns `df` of it."""
        return self.sh('dd if=/dev/zero of="%s/.balloon" bs=1M 2>/dev/null; sync; df -k "%s"'
                       % (self.path, self.path)).stdout

    def empty(self):
        self.sh('rm -f "%s/.balloon"' % self.path)

    def wipe(self):
        self.sh('rm -rf "%s"/* "%s"/.balloon' % (self.path, self.path))

    def close(self):
        self.proc.kill()
        self.proc.wait(5)


def start_cluster(s, net, size=3, extra=None, http_port=8080, raft_port=9090, disks=None,
                  node_extra=None):
    """@size nodes of Suite @s, node i on host i of @net, formed with one
    --cluster list; returns them once each answers. @disks: {i: MiB} puts
    node i's data dir on a SmallDisk of that size (node.disk; closed by the
    caller). @node_extra(i): more flags for node i alone."""
    from harness import Node
    workdir = s.workdir()
    token = s.token_file(workdir)
    nodes = []
    for i in range(size):
        n = Node(s.varastod, workdir, i + 1, None, token)
        n.host = net.address(i)
        n.http_port = http_port
        n.raft_port = raft_port
        n.disk = None
        if disks and i in disks:
            n.disk = SmallDisk(n.data_dir, disks[i])
        n.wrap = (n.disk.wrap() if n.disk else []) + net.wrap(i)
        nodes.append(n)
    members = ",".join("%d=%s:%d" % (n.id, n.host, n.raft_port) for n in nodes)
    for n in nodes:
        n.extra = ["--cluster", members] + (extra or []) + \
            (node_extra(n.id - 1) if node_extra else [])
        s.nodes.append(n)
        n.start(wait=False)
    for n in nodes:
        n.wait_ready(30)
    return nodes


def main_inside(script_main):
    """For a test script: outside, make the network and re-run this script
    inside the bridge namespace (`--inside TAG NET N`); inside, run
    @script_main(network description). Returns the exit code."""
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        tag, net, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        sys.argv = [sys.argv[0]] + sys.argv[5:]
        desc = Network(n)
        desc.tag, desc.net = tag, net
        desc.switch = "vsw-" + tag
        desc.hosts = ["vn%d-%s" % (i + 1, tag) for i in range(n)]
        return script_main(desc)
    why = available()
    if why is not None:
        print("skipped: %s" % why)
        return 77
    n = 3
    with Network(n) as net:
        return net.run_inside([sys.executable, os.path.abspath(sys.argv[0]), "--inside",
                               net.tag, str(net.net), str(n)] + sys.argv[1:])
