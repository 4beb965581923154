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
    """Clients (``threads`` of them) sending requests in a loop, one
    connection each; counts what failed."""

    def __init__(self, m2, threads=1):
        self.m2, self.ok, self.failed, self.running = m2, 0, 0, True
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        while self.running:
            try:
                status = get(self.m2.url, "/sleep?0.01", timeout=3)[0]
            except OSError:
                status = None
            with self.lock:
                if status == 200:
                    self.ok += 1
                else:
                    self.failed += 1

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        wait_for(lambda: self.ok >= 5, 10, what="load running")
        return self

    def __exit__(self, *exc):
        self.running = False
        for thread in self.threads:
            thread.join(10)
