"""TLS (SPEC 7.1, 7.2): HTTPS for clients with HTTP/2 by ALPN, client
certificates, and mutual TLS between nodes with a peer from another CA
refused; the cluster keeps working throughout, commands forwarded between
nodes included."""
import os
import socket
import ssl
import subprocess

import peer
from harness import TOKEN, Suite, check, expect, free_port, leader_of, wait_until
from pki import CA


def tls_cluster(s, size=3, client_ca=None):
    """@size nodes, each with its own certificate from one cluster CA for
    both HTTPS and peer TLS; with @client_ca (a CA), clients must present a
    certificate it signed. Returns (nodes, cluster CA)."""
    ca = CA(s.workdir(), "cluster")
    nodes = s.cluster(size, start=False)
    for n in nodes:
        cert, key = ca.issue("node%d" % n.id)
        n.extra += ["--tls-cert", cert, "--tls-key", key, "--peer-tls-cert", cert,
                    "--peer-tls-key", key, "--peer-tls-ca", ca.cert]
        if client_ca is not None:
            n.extra += ["--tls-client-ca", client_ca.cert]
        n.ssl = ssl.create_default_context(cafile=ca.cert)
    if client_ca is not None:
        cert, key = client_ca.issue("app")
        for n in nodes:
            n.ssl.load_cert_chain(cert, key)
    for n in nodes:
        n.start(wait=False)
    for n in nodes:
        n.wait_ready(30)
    return nodes, ca


def tls_socket(node, context, alpn=None):
    if alpn:
        context.set_alpn_protocols(alpn)
    raw = socket.create_connection(("127.0.0.1", node.http_port), timeout=5)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def refused(make):
    """Whether a TLS connection made by @make is refused: the handshake
    fails, or (TLS 1.3: the server checks the client's certificate after the
    client has finished) the first read gets an alert or the end."""
    try:
        sock = make()
        sock.settimeout(5)
        sock.sendall(b"GET /api_v2/health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = sock.recv(100)
        sock.close()
        return not data.startswith(b"HTTP/1.1 200")
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True


def still_works(nodes, name):
    for n in nodes:
        expect(n.command("directory.Create", {"Parent": "root", "Name": "%s-%d" % (name, n.id)}),
               200)
    leader = leader_of(nodes)
    names = [d["Name"] for d in leader.request(
        "GET", "/api_v2/directories/root?consistency=linearizable").json()["SubDirectories"]]
    check(all("%s-%d" % (name, n.id) in names for n in nodes), names)


def test_https_and_peer_tls(s):
    nodes, ca = tls_cluster(s)
    leader = leader_of(nodes)
    followers = [n for n in nodes if n is not leader]
    # commands through every node: a follower forwards over HTTPS with its
    # peer certificate, raft replicates over mutual TLS
    still_works(nodes, "tls")
    # the leader hears every member over raft's TLS connections
    wait_until(lambda: (lambda m: len(m) == 3 and all(x["Reachable"] for x in m))(
        leader.request("GET", "/api_v2/cluster").json()["Members"]), 5,
        what="the leader to hear from everyone")
    # events over HTTPS, read on a follower after its own write
    r = expect(followers[0].command("directory.Create", {"Parent": "root", "Name": "f"}), 200)
    page = expect(followers[0].request("GET", "/api_v2/events?after=0&limit=100"), 200).json()
    check(any(e["Seq"] == r.json()["Seq"] for e in page), page)

    # HTTP/2 and HTTP/1.1 by ALPN; TLS 1.2 still served
    ctx = ssl.create_default_context(cafile=ca.cert)
    sock = tls_socket(leader, ctx, ["h2", "http/1.1"])
    check(sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol())
    sock.close()
    ctx = ssl.create_default_context(cafile=ca.cert)
    sock = tls_socket(leader, ctx, ["http/1.1"])
    check(sock.selected_alpn_protocol() == "http/1.1", sock.selected_alpn_protocol())
    sock.close()
    ctx = ssl.create_default_context(cafile=ca.cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    sock = tls_socket(leader, ctx)
    check(sock.version() == "TLSv1.2", sock.version())
    sock.close()

    # nothing in cleartext on the HTTPS port
    with socket.create_connection(("127.0.0.1", leader.http_port), timeout=5) as plain:
        plain.sendall(b"GET /api_v2/health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = plain.recv(100)
        except ConnectionResetError:
            data = b""
        check(not data.startswith(b"HTTP/"), data)
    still_works(nodes, "after")


def test_peer_from_another_ca_is_refused(s):
    nodes, ca = tls_cluster(s)
    leader = leader_of(nodes)
    stranger = CA(s.workdir(), "stranger")
    cert, key = stranger.issue("intruder")

    # 1. TLS with a certificate another CA signed: refused, one WARN line
    def foreign():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(cert, key)
        raw = socket.create_connection(("127.0.0.1", leader.raft_port), timeout=5)
        return ctx.wrap_socket(raw)
    try:
        sock = foreign()
        check(peer.closed_within(sock, 2), "a peer from another CA stayed connected")
    except (ssl.SSLError, ConnectionResetError):
        pass
    wait_until(lambda: "refused a raft connection from 127.0.0.1" in leader.read_log() and
               "TLS" in leader.read_log(), 5, what="a WARN line for the foreign certificate")

    # 2. no certificate at all
    def anonymous():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", leader.raft_port), timeout=5)
        return ctx.wrap_socket(raw)
    try:
        check(peer.closed_within(anonymous(), 2), "a peer without a certificate stayed connected")
    except (ssl.SSLError, ConnectionResetError):
        pass

    # 3. the cluster token without TLS: TLS is not optional
    check(peer.handshake("127.0.0.1", leader.raft_port, TOKEN, 2, leader.id,
                         "127.0.0.1:%d" % nodes[1].raft_port) is None)
    still_works(nodes, "probed")


def test_client_certificates(s):
    clients = CA(s.workdir(), "clients")
    nodes, ca = tls_cluster(s, client_ca=clients)
    leader = leader_of(nodes)
    # a client with a certificate the client CA signed: served (the nodes'
    # wait_ready used it); a follower's forwarded command passes too
    still_works(nodes, "mtls")

    def without():
        return tls_socket(leader, ssl.create_default_context(cafile=ca.cert))
    check(refused(without), "a client without a certificate was served")
    stranger = CA(s.workdir(), "stranger")
    cert, key = stranger.issue("app")

    def foreign():
        ctx = ssl.create_default_context(cafile=ca.cert)
        ctx.load_cert_chain(cert, key)
        return tls_socket(leader, ctx)
    check(refused(foreign), "a client with another CA's certificate was served")
    still_works(nodes, "after")


def test_tls_settings(s):
    w = s.workdir()
    ca = CA(w, "cluster")
    cert, key = ca.issue("node1")
    _, other_key = ca.issue("node2")
    base = ["--data-dir", os.path.join(w, "data"), "--raft", "127.0.0.1:%d" % free_port(),
            "--http", "127.0.0.1:%d" % free_port()]
    peer_flags = ["--peer-tls-cert", cert, "--peer-tls-key", key, "--peer-tls-ca", ca.cert]

    def bad(args, fragment):
        p = subprocess.run([s.varastod] + base + args, capture_output=True, timeout=20)
        err = p.stderr.decode()
        check(p.returncode != 0, (args, "exit code 0"))
        last = err.strip().splitlines()[-1] if err.strip() else ""
        check(last.startswith("varastod: ") and fragment in last, (args, err))

    bad(["--tls-cert", cert], "--tls-cert and --tls-key go together")
    bad(["--peer-tls-cert", cert, "--peer-tls-key", key], "go together")
    bad(["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca.cert], "--tls-client-ca needs")
    bad(["--tls-cert", os.path.join(w, "missing.pem"), "--tls-key", key], "missing.pem")
    bad(["--tls-cert", cert, "--tls-key", other_key], "does not match")
    bad(peer_flags[:4] + ["--peer-tls-ca", os.path.join(w, "no-ca.pem")], "no-ca.pem")
    junk = os.path.join(w, "junk.pem")
    with open(junk, "w") as f:
        f.write("not a certificate\n")
    bad(["--tls-cert", junk, "--tls-key", key], "junk.pem")


if __name__ == "__main__":
    Suite().run([test_https_and_peer_tls, test_peer_from_another_ca_is_refused,
                 test_client_certificates, test_tls_settings])
