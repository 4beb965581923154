"""HTTP on loopback, through mongrel2: one request, or a client in a loop."""

import http.client
import threading

from tests.support.mongrel2 import wait_for


def get(url_base, path, method="GET", body=None, headers=None, timeout=10):
    """One request on a fresh connection: (status, headers dict, body bytes)."""
    host, port = url_base.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class Load:
    """A client sending requests in a loop; counts what failed."""

    def __init__(self, m2):
        self.m2, self.ok, self.failed, self.running = m2, 0, 0, True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while self.running:
            try:
                status = get(self.m2.url, "/sleep?0.01", timeout=3)[0]
            except OSError:
                status = None
            if status == 200:
                self.ok += 1
            else:
                self.failed += 1

    def __enter__(self):
        self.thread.start()
        wait_for(lambda: self.ok >= 5, 10, what="load running")
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join(10)
