"""--max-body-size through a real mongrel2 (issue 24 part 3): a body over
the limit is answered 413 without the application being called; an async
upload over it is stopped at its start, and mongrel2 deletes the file."""

import http.client
import os
import select
import socket
import threading
import time

import pytest

from tests.support.marks import requires_mongrel2
from tests.support.waiting import wait_for
from tests.support.wsgid import Wsgid, make_app_folder

pytestmark = [requires_mongrel2, pytest.mark.e2e]

MiB = 1 << 20


@pytest.fixture(params=["broker", "direct"])
def limited(request, m2_factory, tmp_path):
    """mongrel2 spooling bodies over 20 KiB; wsgid with a 10 MiB limit."""
    m2 = m2_factory()
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    proc = Wsgid(m2, app_path, "--wsgi-app", "e2e_app:app", "--max-body-size", "10M",
                 dispatch=request.param)
    proc.start()
    yield m2, proc, str(tmp_path / "called")
    proc.stop()


def post(m2, path, body, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", m2.http_port, timeout=30)
    try:
        conn.request("POST", path, body=body, encode_chunked=chunked)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def spooled_bytes(folder):
    """Disk use of the files in mongrel2's upload folder."""
    total = 0
    for entry in os.scandir(folder):
        try:
            total += entry.stat(follow_symlinks=False).st_blocks * 512
        except FileNotFoundError:
            pass
    return total


class DiskWatch(threading.Thread):
    """The most the upload folder held while it ran."""

    def __init__(self, folder):
        super().__init__(daemon=True)
        self.folder, self.peak, self.seen_file = folder, 0, False
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.seen_file |= bool(os.listdir(self.folder))
            self.peak = max(self.peak, spooled_bytes(self.folder))
            self.stop.wait(0.002)

    def __exit__(self, *exc):
        self.stop.set()
        self.join()

    def __enter__(self):
        self.start()
        return self


def upload_until_answered(m2, path, size, rate=None):
    """Send ``size`` bytes of body, at ``rate`` bytes a second at most (None:
    as fast as the socket takes them), reading meanwhile; stop sending once
    an answer came or the server shut the connection. Returns (bytes sent,
    what the server answered)."""
    sock = socket.create_connection(("127.0.0.1", m2.http_port), timeout=30)
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n"
                 b"Content-Type: application/octet-stream\r\n\r\n" % (path.encode(), size))
    block, sent, answer = b"\x5a" * 65536, 0, b""
    started = time.monotonic()
    sock.setblocking(False)
    try:
        while sent < size and not answer:
            ahead = sent / rate - (time.monotonic() - started) if rate else 0
            readable, writable, _ = select.select([sock], [sock] if ahead <= 0 else [], [],
                                                  max(ahead, 0) or 30)
            if readable:
                answer += sock.recv(65536)
                break
            if writable:
                try:
                    sent += sock.send(block[:size - sent])
                except (BrokenPipeError, ConnectionResetError):
                    break
        sock.setblocking(True)
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
    finally:
        sock.close()
    return sent, answer


def test_body_in_memory_over_the_limit_gets_413_without_the_app(m2_factory, tmp_path):
    m2 = m2_factory(content_length=64 * 1024)  # bodies up to 64 KiB come in the message
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    proc = Wsgid(m2, app_path, "--wsgi-app", "e2e_app:app", "--max-body-size", "1K")
    proc.start()
    try:
        mark = str(tmp_path / "called")
        status, _ = post(m2, "/sleep?0&" + mark, b"x" * 1025)
        assert status == 413 and not os.path.exists(mark)
        status, body = post(m2, "/sleep?0&" + mark, b"x" * 1024)  # at the limit: served
        assert status == 200 and os.path.exists(mark)
        assert "over --max-body-size 1024" in proc.log()
    finally:
        proc.stop()


def test_50mb_upload_stopped_at_its_start(limited):
    """The 413 leaves as soon as mongrel2 says the upload starts: mongrel2
    stops reading, deletes its temp file, and its upload folder never holds
    the 10 MiB the limit allows, let alone the 50 MB sent at it. The client
    sends at 25 MB/s (200 Mbit/s), as one across a network: one faster
    than mongrel2 writes to disk keeps mongrel2 from reading the 413 until
    it has read the body (see the next test and docs/uploads.rst)."""
    m2, proc, mark = limited
    folder = m2.upload_dir()
    with DiskWatch(folder) as watch:
        sent, answer = upload_until_answered(m2, "/sleep?0&" + mark, 50 * 1000 * 1000,
                                             rate=25 * 1000 * 1000)
        wait_for(lambda: not os.listdir(folder), 10, what="mongrel2 to delete its upload file")
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert watch.peak < 10 * MiB, "the upload folder held %d bytes" % watch.peak
    assert sent < 10 * MiB
    assert not os.path.exists(mark)
    # The worker serves on, and an upload under the limit is served.
    status, body = post(m2, "/sha256", b"y" * (2 * MiB))
    assert status == 200 and b'"size": 2097152' in body
    wait_for(lambda: not os.listdir(folder), 10, what="wsgid to delete the upload file")


def test_upload_faster_than_mongrel2_reads_still_413_and_deleted(limited):
    """On loopback the client outruns mongrel2, which then reads its socket
    without ever yielding to the task that takes handler replies: the 413
    waits until the socket runs dry, at worst the whole body. The client
    still gets the 413, the app is not called and no file is left."""
    m2, proc, mark = limited
    sent, answer = upload_until_answered(m2, "/sleep?0&" + mark, 50 * 1000 * 1000)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    wait_for(lambda: not os.listdir(m2.upload_dir()), 10, what="the upload file deleted")
    assert not os.path.exists(mark)


def test_chunked_upload_over_the_limit_gets_413_when_done(limited):
    """A chunked body has no length at its start: mongrel2 spools it, and
    wsgid refuses it (and deletes the file) once it is done."""
    m2, proc, mark = limited
    chunks = (b"z" * 65536 for _ in range(11 * 16))  # mongrel2 takes chunks up to 100 KiB
    status, _ = post(m2, "/sleep?0&" + mark, chunks, chunked=True)
    assert status == 413 and not os.path.exists(mark)
    wait_for(lambda: not os.listdir(m2.upload_dir()), 10, what="the upload file deleted")
    status, _ = post(m2, "/sha256", (b"z" * 65536 for _ in range(3 * 16)), chunked=True)
    assert status == 200
