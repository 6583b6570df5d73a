"""Every error row of SPEC §2 on a real node, and bad startup settings."""
import json
import os
import socket
import subprocess

from harness import TOKEN, Suite, check, expect, free_port, wait_until, write_token


def error_body(resp):
    b = resp.json()
    check(set(b) == {"Error", "Code"} and b["Error"], b)
    check(resp.header("content-type") == "application/json")
    check(resp.header("x-varasto-seq") is not None)
    return b


def test_400_bad_request(s):
    n = s.node()
    cases = [
        (b'{"Parent": "root", "Name": ', "malformed JSON"),
        (b'[1, 2]', "JSON object"),
        (b'{"Parent": "root"}', "'Name'"),
        (b'{"Parent": "root", "Name": 3}', "'Name'"),
        (b'{"Parent": "root", "Name": "a", "Colour": "red"}', "'Colour'"),
        (b'{"Parent": "root", "Name": "' + b"x" * 300 + b'"}', "'Name'"),
        (b'', "malformed JSON"),
        # SPEC 7.3: one JSON value of UTF-8 text, no NUL in a string
        (b'{"Parent": "root", "Name": "g"} GARBAGE', "follows the value"),
        (b'{"Parent": "root", "Name": "a\\u0000b"}', "u0000"),
        (b'{"Parent": "root", "Name": "a\x00b"}', "control character"),
        (b'{"Parent": "root", "Name": "\xff\xfe"}', "UTF-8"),
        (b'{"Parent": "root", "Name": "\xed\xa0\x80"}', "UTF-8"),
    ]
    for raw, fragment in cases:
        r = n.request("POST", "/command/directory.Create", raw=raw)
        expect(r, 400, "bad_request")
        check(fragment in error_body(r)["Error"], (raw[:40], r))
    r = n.command("collection.Rate", {"Collection": "x", "Rating": 9})
    expect(r, 400, "bad_request")
    check("Rating" in error_body(r)["Error"])
    r = n.command("directory.SetType", {"Id": "root", "Type": "books"})
    expect(r, 400, "bad_request")
    for key in ("", "x" * 129, "tab\there"):
        r = n.request("POST", "/command/directory.Create", body={"Parent": "root", "Name": "k"},
                      headers={"Idempotency-Key": key})
        expect(r, 400, "bad_request")
    # numbers out of range (2^64-1 used to wrap to 0) and malformed paths
    for path in ("/api_v2/events?after=18446744073709551615",
                 "/api_v2/events?after=9223372036854775808",
                 "/api_v2/events?after=99999999999999999999999",
                 "/api_v2/directories/root?min_seq=18446744073709551616",
                 "/api_v2/events/stream?after=18446744073709551615",
                 "/api_v2/directories/%FF", "/api_v2/directories/a%00b",
                 "/api_v2/directories/%ED%A0%80"):
        error_body(expect(n.request("GET", path), 400, "bad_request"))
    expect(n.request("GET", "/api_v2/events?after=9223372036854775807"), 200)
    # nothing was applied by any of these
    check(n.request("GET", "/api_v2/events").json() == [])


def test_401_unauthorized(s):
    n = s.node()
    for path in ("/api_v2/directories/root", "/api_v2/events", "/api_v2/events/stream"):
        error_body(expect(n.request("GET", path, auth=False), 401, "unauthorized"))
        expect(n.request("GET", path, token="wrong-token-wrong-token"), 401, "unauthorized")
        # the admin token's prefix, or more than it, is no admin token
        expect(n.request("GET", path, token=TOKEN[:-1]), 401, "unauthorized")
        expect(n.request("GET", path, token=TOKEN + "x"), 401, "unauthorized")
    expect(n.request("GET", "/api_v2/directories/root",
                     headers={"Authorization": "Basic " + TOKEN}, auth=False), 401)
    expect(n.command("directory.Create", {"Parent": "root", "Name": "a"}, auth=False), 401)
    expect(n.request("GET", "/api_v2/health", auth=False), 200)


def test_404_not_found(s):
    n = s.node()
    error_body(expect(n.request("GET", "/api_v2/directories/nope"), 404, "not_found"))
    expect(n.request("GET", "/api_v2/collections/nope"), 404, "not_found")
    expect(n.command("directory.Frobnicate", {}), 404, "not_found")
    expect(n.command("collection.CommitChangeset", {}), 404, "not_found")
    expect(n.request("GET", "/nope"), 404, "not_found")
    expect(n.request("DELETE", "/api_v2/directories/root"), 404, "not_found")
    expect(n.command("directory.Rename", {"Id": "nope", "Name": "x"}), 404, "not_found")
    expect(n.command("directory.Create", {"Parent": "nope", "Name": "x"}), 404, "not_found")


def test_409_conflict(s):
    n = s.node()
    d = n.command("directory.Create", {"Parent": "root", "Name": "a"}).json()["Id"]
    n.command("directory.Create", {"Parent": d, "Name": "b"})
    error_body(expect(n.command("directory.Create", {"Parent": "root", "Name": "a"}), 409, "conflict"))
    expect(n.command("directory.Delete", {"Id": d}), 409, "conflict")
    expect(n.command("directory.Delete", {"Id": "root"}), 409, "conflict")
    expect(n.command("directory.Move", {"Id": d, "Directory": d}), 409, "conflict")


def raw_post(n, path, length, body=b""):
    """POST @path announcing @length bytes and sending @body (as much as the
    node takes before it answers); returns (head, body) of the answer."""
    sock = socket.create_connection(("127.0.0.1", n.http_port), timeout=5)
    got = b""
    try:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                     % (path.encode(), TOKEN.encode(), length) + body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # answered and closed before taking it all: what we test
    try:
        while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    sock.close()
    head, _, rest = got.partition(b"\r\n\r\n")
    return head, rest


def test_413_too_large(s):
    n = s.node()
    big = b'{"Parent": "root", "Name": "a", "Pad": "' + b"x" * (1024 * 1024) + b'"}'
    head, body = raw_post(n, "/command/directory.Create", len(big), big)
    check(head.startswith(b"HTTP/1.1 413"), head)
    check(json.loads(body) == {"Error": "request body over 1048576 bytes", "Code": "too_large"},
          body)
    # exactly at the limit is not "too large" (it fails later, as unknown field)
    body = b'{"Parent": "root", "Name": "a", "Pad": "'
    body += b"x" * (1024 * 1024 - len(body) - 2) + b'"}'
    check(len(body) == 1024 * 1024)
    expect(n.request("POST", "/command/directory.Create", raw=body), 400, "bad_request")
    check(n.request("GET", "/api_v2/events").json() == [])
    # refused as soon as it is known to pass 1 MiB, before the rest is read:
    # a 64 MiB Content-Length gets the JSON 413 with none of its body sent
    for path in ("/command/directory.Create", "/internal/apply", "/api_v2/nodes"):
        head, body = raw_post(n, path, 64 << 20)
        check(head.startswith(b"HTTP/1.1 413"), head)
        check(b'"Code":"too_large"' in body, body)
    # the node goes on
    expect(n.command("directory.Create", {"Parent": "root", "Name": "after"}), 200)


def test_422_idempotency_mismatch(s):
    n = s.node()
    n.command("directory.Create", {"Parent": "root", "Name": "a"}, key="K")
    r = n.command("directory.Create", {"Parent": "root", "Name": "b"}, key="K")
    error_body(expect(r, 422, "idempotency_mismatch"))


def test_504_timeout(s):
    n = s.node(extra=["--min-seq-timeout-ms", "200"])
    r = n.request("GET", "/api_v2/events?min_seq=10")
    error_body(expect(r, 504, "timeout"))


def run_bad(s, args, fragment):
    p = subprocess.run([s.varastod] + args, capture_output=True, timeout=20)
    err = p.stderr.decode()
    check(p.returncode != 0, (args, "exit code 0"))
    check(fragment in err, (args, err))
    # one clear line, the last thing the node says
    last = err.strip().splitlines()[-1]
    check(last.startswith("varastod: ") and fragment in last, err)


def test_bad_settings(s):
    w = s.workdir()
    d = os.path.join(w, "data")
    base = ["--data-dir", d, "--raft", "127.0.0.1:%d" % free_port()]
    run_bad(s, base + ["--cluster", "1=127.0.0.1"], "--cluster")
    run_bad(s, base + ["--id", "4", "--cluster", "1=127.0.0.1:7001"], "not in --cluster")
    run_bad(s, base + ["--http", "localhost"], "HOST:PORT")
    run_bad(s, base + ["--nope", "1"], "unknown option")
    run_bad(s, base + ["--max-connections", "0"], "--max-connections")
    run_bad(s, base + ["--config", os.path.join(w, "missing.conf")], "cannot open")
    short = write_token(os.path.join(w, "short-token"), "short")
    run_bad(s, base + ["--token-file", short], "at least 16")
    # SPEC 7: a token file others may read is refused
    shared = write_token(os.path.join(w, "shared-token"))
    os.chmod(shared, 0o644)
    run_bad(s, base + ["--token-file", shared], "readable by group or others")
    os.chmod(shared, 0o640)
    run_bad(s, base + ["--token-file", shared], "chmod 600")
    run_bad(s, base + ["--token-file", os.path.join(w, "none")], "token file")
    # a data dir that cannot be created
    blocker = os.path.join(w, "file")
    open(blocker, "w").close()
    run_bad(s, ["--data-dir", os.path.join(blocker, "sub")], "data dir")
    # the HTTP port in use
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        run_bad(s, base + ["--http", "127.0.0.1:%d" % port], "address already in use")


def test_no_cleartext_http2(s):
    """SPEC 7.2: without TLS the node speaks HTTP/1.1 only: an Upgrade to
    h2c is not taken, and a client that starts with the HTTP/2 preface gets
    no HTTP/2 (it used to: h2c was served)."""
    n = s.node()
    with socket.create_connection(("127.0.0.1", n.http_port), timeout=5) as c:
        c.sendall(b"GET /api_v2/health HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                  b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
        head = c.recv(4096)
        check(head.startswith(b"HTTP/1.1 200"), head[:80])
    with socket.create_connection(("127.0.0.1", n.http_port), timeout=5) as c:
        c.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
        try:
            got = c.recv(4096)
        except (ConnectionResetError, socket.timeout):
            got = b""
        # an HTTP/2 server answers with a SETTINGS frame (type 4)
        check(not (len(got) >= 9 and got[3] == 4), got[:40])
    expect(n.request("GET", "/api_v2/health", auth=False), 200)


def test_connection_cap(s):
    """SPEC 7.3: past --max-connections a new connection is closed at once
    (it used to be kept, as 300 idle ones were); the node serves the
    connections it holds, and takes a new one once one of them is gone."""
    n = s.node(extra=["--max-connections", "4"])
    n.close_conn()
    held = []
    for _ in range(4):
        c = socket.create_connection(("127.0.0.1", n.http_port), timeout=5)
        c.sendall(b"GET /api_v2/health HTTP/1.1\r\nHost: x\r\n\r\n")
        check(b"200" in c.recv(4096).split(b"\r\n")[0])
        held.append(c)
    extra = socket.create_connection(("127.0.0.1", n.http_port), timeout=5)
    try:
        extra.sendall(b"GET /api_v2/health HTTP/1.1\r\nHost: x\r\n\r\n")
        got = extra.recv(4096)
    except ConnectionResetError:
        got = b""
    check(got == b"", got)
    extra.close()
    held[0].sendall(b"GET /api_v2/health HTTP/1.1\r\nHost: x\r\n\r\n")
    check(b"200" in held[0].recv(4096).split(b"\r\n")[0])
    held.pop().close()

    def taken():  # once the node has seen the close
        try:
            return n.request("GET", "/api_v2/health", auth=False).status == 200
        except OSError:
            n.close_conn()
            return False
    wait_until(taken, 5, interval=0.05, what="a connection taken again")
    check("closing new ones" in n.read_log(), n.read_log())
    for c in held:
        c.close()


if __name__ == "__main__":
    Suite().run([test_400_bad_request, test_401_unauthorized, test_404_not_found,
                 test_409_conflict, test_413_too_large, test_422_idempotency_mismatch,
                 test_504_timeout, test_bad_settings, test_connection_cap,
                 test_no_cleartext_http2])
