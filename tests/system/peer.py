"""What a node says to another node, in Python (stdlib only), to test that
nodes refuse whoever cannot say it: the peer keys derived from the cluster
token (HKDF-SHA256), signed HTTP requests, the raft port's handshake, and
raft messages as libraft encodes them (src/peer_auth.h)."""
import hashlib
import hmac
import os
import socket
import struct

SALT = b"varasto peer keys v1"


def keys(token):
    """(raft handshake key, http request key) of a cluster token."""
    prk = hmac.new(SALT, token.encode(), hashlib.sha256).digest()
    return tuple(hmac.new(prk, info + b"\x01", hashlib.sha256).digest()
                 for info in (b"raft handshake", b"http request"))


class Signer:
    """Signs requests as node @node_id of the cluster of @token would."""

    def __init__(self, token, node_id):
        self.key = keys(token)[1]
        self.id = node_id
        self.boot = int.from_bytes(os.urandom(8), "big") or 1
        self.counter = 0

    def sign(self, method, path, body=b"", nonce="0" * 32):
        self.counter += 1
        digest = hashlib.sha256(body).hexdigest()
        text = "varasto peer request v1\n%s\n%s\n%d\n%016x\n%d\n%s\n%s" % (
            method, path, self.id, self.boot, self.counter, nonce, digest)
        mac = hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()
        return "VarastoPeer %d.%016x.%d.%s.%s" % (self.id, self.boot, self.counter, nonce, mac)


def signed_request(node, signer, path, raw=b"", method="POST"):
    """@path on @node signed by @signer: first for no nonce, which the node
    answers with its own (401), then again for that nonce. Returns
    (response, the Authorization value of the request that was answered)."""
    auth = signer.sign(method, path, raw)
    r = node.request(method, path, raw=raw, auth=False, headers={"Authorization": auth})
    nonce = r.headers.get("x-varasto-peer-nonce")
    if r.status == 401 and nonce:
        auth = signer.sign(method, path, raw, nonce)
        r = node.request(method, path, raw=raw, auth=False, headers={"Authorization": auth})
    return r, auth


# ---- the raft port --------------------------------------------------------------

def raft_uv_tcp_hello(node_id, address):
    """libraft's own transport's first bytes: protocol 1, id, address."""
    a = address.encode() + b"\0"
    a += b"\0" * (-len(a) % 8)
    return struct.pack("<QQQ", 1, node_id, len(a)) + a


def request_vote(term, candidate, last_index, last_term, disrupt=True):
    """A RequestVote (type 3, version 2) as libraft encodes it."""
    body = struct.pack("<QQQQQ", term, candidate, last_index, last_term, 1 if disrupt else 0)
    return struct.pack("<BBBBIQ", 3, 0, 2, 0, 0, len(body)) + body


def hello(token_key, from_id, to_id, address):
    """Our handshake's hello: (bytes, nonce)."""
    nonce = os.urandom(32)
    a = address.encode()
    return (b"VRSTPEER" + bytes([1, 0]) + struct.pack(">QQ", from_id, to_id) + nonce +
            struct.pack(">H", len(a)) + b"\0\0" + a), nonce


def handshake(host, port, token, from_id, to_id, address, timeout=5):
    """Run the connector's side of the handshake with the cluster key of
    @token. Returns the socket after a proof was sent, or None when the
    node did not answer as a holder of the key (or closed)."""
    key = keys(token)[0]
    s = socket.create_connection((host, port), timeout=timeout)
    h, _ = hello(key, from_id, to_id, address)
    s.sendall(h)
    answer = b""
    while len(answer) < 82:
        chunk = s.recv(82 - len(answer))
        if not chunk:
            s.close()
            return None
        answer += chunk
    acceptor, anonce, mac = answer[10:18], answer[18:50], answer[50:82]
    transcript = h + acceptor + anonce
    want = hmac.new(key, b"A" + transcript, hashlib.sha256).digest()
    if not hmac.compare_digest(want, mac):
        s.close()
        return None
    s.sendall(hmac.new(key, b"C" + transcript, hashlib.sha256).digest())
    return s


def closed_within(sock, seconds):
    """Whether the peer closes @sock within @seconds (reading and dropping
    anything it sends)."""
    sock.settimeout(seconds)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    finally:
        sock.close()
