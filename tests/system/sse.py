"""A small Server-Sent Events client over http.client (stdlib only)."""
import http.client
import json
import socket
import time

from harness import TOKEN, collect


class SSE:
    def __init__(self, node, path="/api_v2/events/stream", headers=None, timeout=10):
        self.conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=timeout)
        h = {"Authorization": "Bearer " + TOKEN, "Accept": "text/event-stream"}
        h.update(headers or {})
        self.conn.request("GET", path, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.comments = 0

    def next_event(self, timeout=10):
        """The next event as (id, type, data dict); None on timeout or end."""
        deadline = time.monotonic() + timeout
        ev_id = ev_type = data = None
        while time.monotonic() < deadline:
            self.conn.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                line = self.resp.readline()
            except (socket.timeout, TimeoutError):
                return None
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if data is not None:
                    return int(ev_id), ev_type, json.loads(data)
                continue
            if line.startswith(":"):
                self.comments += 1
            elif line.startswith("id: "):
                ev_id = line[4:]
            elif line.startswith("event: "):
                ev_type = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        return None

    def events(self, count, timeout=10):
        return collect(self.next_event, count, timeout)

    def close(self):
        self.conn.close()
