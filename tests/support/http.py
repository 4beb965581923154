"""HTTP on loopback, through mongrel2: one request, or a client in a loop."""

import http.client
import threading

from tests.support.waiting import wait_for


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
    """Clients (``threads`` of them) in a loop, one connection a request;
    counts 200s (``ok``), 502s (``bad_gateway``) and the rest (``failed``,
    each status or None in ``other``)."""

    def __init__(self, m2, threads=1, path="/sleep?0.01", timeout=3, warm=5):
        self.m2, self.path, self.timeout, self.warm = m2, path, timeout, warm
        self.ok = self.bad_gateway = self.failed = 0
        self.other = []
        self.running = True
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self):
        while self.running:
            try:
                status = get(self.m2.url, self.path, timeout=self.timeout)[0]
            except OSError:
                status = None
            with self.lock:
                if status == 200:
                    self.ok += 1
                elif status == 502:
                    self.bad_gateway += 1
                else:
                    self.failed += 1
                    self.other.append(status)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        wait_for(lambda: self.ok >= self.warm, 10, what="load running")
        return self

    def __exit__(self, *exc):
        self.running = False
        for thread in self.threads:
            thread.join(self.timeout + 5)
