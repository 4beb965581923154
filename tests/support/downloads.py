"""Big downloads through mongrel2: a known byte pattern, its sha256, a
client that hashes (and may read slowly), and a worker's peak RSS meanwhile."""

import hashlib
import http.client
import threading
import time

from tests.support.procfs import rss_kib

PATTERN = bytes(range(256)) * 256  # what e2e_app's /download streams, repeated


def expected_digest(size):
    """sha256 of the first ``size`` bytes of PATTERN repeated."""
    digest = hashlib.sha256()
    for start in range(0, size, len(PATTERN)):
        digest.update(PATTERN[:min(len(PATTERN), size - start)])
    return digest.hexdigest()


def write_pattern_file(path, size):
    """A file of ``size`` bytes of PATTERN repeated (``expected_digest(size)``)."""
    block = PATTERN * 16
    with open(path, "wb") as f:
        for start in range(0, size, len(block)):
            f.write(block[:min(len(block), size - start)])


def download(m2, path, bytes_per_second=None, on_first_block=None, timeout=60):
    """GET ``path``, hashing as it comes, optionally reading slowly;
    ``on_first_block()`` is called once the first block arrived.
    Returns (bytes received, sha256, whether the body was complete)."""
    conn = http.client.HTTPConnection("127.0.0.1", m2.http_port, timeout=timeout)
    conn.request("GET", path)
    resp = conn.getresponse()
    length = resp.getheader("Content-Length")
    digest, got, complete = hashlib.sha256(), 0, True
    started = time.monotonic()
    try:
        while True:
            block = resp.read(65536)
            if not block:
                break
            digest.update(block)
            got += len(block)
            if on_first_block is not None:
                on_first_block()
                on_first_block = None
            if bytes_per_second:  # a slow reader: stay under the rate
                ahead = got / bytes_per_second - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    except http.client.IncompleteRead as exc:
        digest.update(exc.partial)
        got += len(exc.partial)
        complete = False
    finally:
        conn.close()
    return got, digest.hexdigest(), complete and (length is None or got == int(length))


class PeakRss:
    """``with PeakRss(pid) as peak:`` samples the RSS of ``pid`` every 50 ms;
    ``peak.growth`` is then the highest reading less the first, in KiB."""

    def __init__(self, pid):
        self.pid = pid
        self.before = self.peak = rss_kib(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self):
        while not self._done.wait(0.05):
            self.peak = max(self.peak, rss_kib(self.pid))

    @property
    def growth(self):
        return self.peak - self.before

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
