"""The core gateway through a real mongrel2, for both handler protocols."""

import hashlib
import http.client
import json
import os
import re
import socket
import time

import pytest

from tests.support import wire
from tests.support.http import get
from tests.support.marks import requires_bind_mount, requires_mongrel2
from tests.support.mongrel2 import Mongrel2
from tests.support.waiting import wait_for
from tests.support.wsgid import Wsgid, make_app_folder

pytestmark = [requires_mongrel2, pytest.mark.e2e]


def serve(base, protocol, settings=None, *extra, shared_uploads=None):
    """mongrel2 with the given handler protocol and settings, and wsgid
    serving e2e_app behind it, until the generator is closed."""
    m2 = Mongrel2(str(base / "m2"), protocol=protocol, settings=settings,
                  shared_uploads=shared_uploads).start()
    app_path = make_app_folder(str(base), "e2e_app.py")
    proc = Wsgid(m2, app_path, "--wsgi-app", "e2e_app:app", *extra)
    try:
        proc.start()
        yield m2, proc
    finally:
        proc.stop()
        m2.stop()


@pytest.fixture(scope="module", params=[
    "json", "tnetstring",
    # Uploads without --mongrel2-chroot: the folder shared at the same path.
    pytest.param("json-shared", marks=requires_bind_mount)])
def served(request, tmp_path_factory):
    base = tmp_path_factory.mktemp("gw-%s" % request.param)
    protocol, _, shared = request.param.partition("-")
    yield from serve(base, protocol, shared_uploads=str(base / "uploads") if shared else None)


@pytest.fixture(scope="module", params=["json", "tnetstring"])
def served_paced(request, tmp_path_factory):
    """Broker dispatch with mongrel2's download flow control: streams paced."""
    yield from serve(tmp_path_factory.mktemp("fc-%s" % request.param), request.param,
                     {"download.flow_control": 1}, "--dispatch", "broker")


def raw_exchange(port, data, until_close=True, timeout=10):
    """Send raw bytes; read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            block = s.recv(65536)
            if not block:
                return b"".join(chunks)
            chunks.append(block)


def test_get_with_query(served):
    m2, _ = served
    status, headers, body = get(m2.url, "/some/where?a=1&b=%20x&c")
    assert status == 200
    data = json.loads(body)
    assert data["REQUEST_METHOD"] == "GET"
    assert data["PATH_INFO"] == "/some/where"
    assert data["QUERY_STRING"] == "a=1&b=%20x&c"
    assert data["SCRIPT_NAME"] == ""
    assert data["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert data["REMOTE_ADDR"] == "127.0.0.1"
    assert data["SERVER_NAME"] == "127.0.0.1" and data["SERVER_PORT"] == str(m2.http_port)
    assert data["wsgi.url_scheme"] == "http"
    assert headers["x-wsgid"]
    assert int(headers["content-length"]) == len(body)


def test_percent_encoded_utf8_path(served):
    m2, _ = served
    data = json.loads(get(m2.url, "/caf%C3%A9/na%20me")[2])
    assert data["PATH_INFO"] == "/caf\xc3\xa9/na me"
    assert data["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/na me"


def test_custom_headers(served):
    m2, _ = served
    data = json.loads(get(m2.url, "/", headers={"X-Custom-Thing": "v1", "X_Sneaky": "no"})[2])
    assert data["headers"]["HTTP_X_CUSTOM_THING"] == "v1"
    assert "HTTP_X_SNEAKY" not in data["headers"]


def test_repeated_header_joined(served):
    m2, _ = served
    data = raw_exchange(m2.http_port, b"GET /rep HTTP/1.1\r\nHost: x\r\nX-Dup: a\r\nX-Dup: b\r\n"
                                      b"Connection: close\r\n\r\n")
    body = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert body["headers"]["HTTP_X_DUP"] == "a,b"


def test_post_body(served):
    m2, _ = served
    status, _, body = get(m2.url, "/post", method="POST", body=b"a=1&b=two",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    data = json.loads(body)
    assert status == 200
    assert data["REQUEST_METHOD"] == "POST"
    assert data["body"] == "a=1&b=two"
    assert data["CONTENT_LENGTH"] == "9"
    assert data["CONTENT_TYPE"] == "application/x-www-form-urlencoded"


def test_head_has_no_body(served):
    m2, _ = served
    status, headers, body = get(m2.url, "/gen", method="HEAD")
    assert status == 200 and body == b""
    assert headers["content-length"] == str(len(b"chunk-0\n") * 3)
    # The raw bytes too: nothing after the header block.
    data = raw_exchange(m2.http_port, b"HEAD /head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert data.endswith(b"\r\n\r\n")


def test_http10_closes(served):
    m2, _ = served
    data = raw_exchange(m2.http_port, b"GET /ten HTTP/1.0\r\n\r\n")
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.0 200")
    assert json.loads(body)["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_connection_close_header_closes(served):
    m2, _ = served
    data = raw_exchange(m2.http_port, b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"\r\nConnection: close\r\n" in data.split(b"\r\n\r\n")[0]


def test_two_requests_on_one_keepalive_connection(served):
    m2, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", m2.http_port, timeout=10)
    try:
        conn.request("GET", "/first")
        r1 = conn.getresponse()
        first = json.loads(r1.read())
        sock = conn.sock
        conn.request("GET", "/second")
        second = json.loads(conn.getresponse().read())
        assert conn.sock is sock  # the same TCP connection
    finally:
        conn.close()
    assert (first["PATH_INFO"], second["PATH_INFO"]) == ("/first", "/second")


def test_generator_three_chunks(served):
    m2, _ = served
    status, headers, body = get(m2.url, "/gen")
    assert status == 200
    assert body == b"chunk-0\nchunk-1\nchunk-2\n"


def test_write_callable(served):
    m2, _ = served
    assert get(m2.url, "/write")[2] == b"written;returned"


def test_exception_gives_500_then_next_request_served(served):
    m2, proc = served
    status, headers, body = get(m2.url, "/boom")
    assert status == 500
    assert b"Traceback" not in body
    status, _, body = get(m2.url, "/after")
    assert status == 200 and json.loads(body)["PATH_INFO"] == "/after"
    assert "RuntimeError: boom" in proc.output()


def test_large_streamed_download(served):
    m2, _ = served
    size = 8 * 1024 * 1024 + 123
    status, headers, body = get(m2.url, "/download?%d" % size, timeout=30)
    assert status == 200
    assert headers.get("transfer-encoding") == "chunked"
    expected = (bytes(range(256)) * 256 * (size // 65536 + 1))[:size]
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(expected).hexdigest()


def test_30mb_post_through_temp_file(served):
    m2, proc = served
    size = 30 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()

    def body():
        for _ in range(size // len(block)):
            digest.update(block)
            yield block
    status, _, resp = get(m2.url, "/sha256", method="POST", body=body(),
                          headers={"Content-Length": str(size),
                                   "Content-Type": "application/octet-stream"}, timeout=60)
    assert status == 200
    data = json.loads(resp)
    assert data == {"sha256": digest.hexdigest(), "size": size, "pid": data["pid"]}
    # The temp file is deleted once the request is over.
    wait_for(lambda: os.listdir(m2.upload_dir()) == [], 5, what="upload temp file removal")
    folder = m2.upload_dir() if m2.shared_uploads else m2.chroot + "/tmp"
    assert proc.output().count("INFO - Async uploads: files named upload.XXXXXX in %s, "
                               % folder) == 1


# -- no block waits for the application's next one (PEP 3333) ---------------------------

def timed_get(port, target, version):
    """GET ``target`` on a raw socket, noting when each read returned.
    Returns the raw response and the times each event of e2e_app's /ticks
    was yielded (in the body) and arrived (its last byte read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET %s %s\r\nHost: localhost\r\n\r\n" % (target, version))
        raw, reads = b"", []
        while not (version == b"HTTP/1.1" and raw.endswith(b"\r\n0\r\n\r\n")):
            block = s.recv(65536)
            if not block:
                break
            raw += block
            reads.append((time.monotonic(), len(raw)))
    events = [(float(m.group(1)), next(t for t, size in reads if size >= m.end()))
              for m in re.finditer(rb"data: (\d+\.\d+)\n\n", raw)]
    assert reads[0][0] >= events[0][0], "bytes sent before the first block was yielded"
    return raw, events


def body_of(raw, version):
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(version + b" 200 OK\r\n") and b"Content-Length" not in head
    if version == b"HTTP/1.0":
        assert b"\r\nConnection: close\r\n" in head  # close-delimited
        return body
    assert b"\r\nTransfer-Encoding: chunked\r\n" in head
    decoded, rest = wire.decode_chunked(body)
    assert rest == b""
    return decoded


def check_first_block_comes_before_the_pause(m2, version):
    """A block, a second's pause, another: the head and the first block
    arrive as soon as they are yielded, not after the pause."""
    raw, events = timed_get(m2.http_port, b"/ticks?2&1", version)
    assert body_of(raw, version) == b"".join(b"data: %.6f\n\n" % y for y, _ in events)
    (yielded, arrived), (yielded2, arrived2) = events
    assert yielded2 - yielded >= 1
    # Not held back until the next yield, a second later.
    assert arrived < yielded2, "the first block arrived %.3f s after its yield" % (
        arrived - yielded)
    assert arrived2 - yielded2 < 0.5


def check_events_arrive_as_yielded(m2, spacing=0.5):
    """Server-sent events ``spacing`` s apart: each arrives before the next
    is yielded, not held back until it (a bound on the delay itself flaked:
    a loaded machine stalled one by 0.33 s)."""
    raw, events = timed_get(m2.http_port, b"/ticks?5&%g" % spacing, b"HTTP/1.1")
    assert len(events) == 5
    assert body_of(raw, b"HTTP/1.1").count(b"data: ") == 5
    late = ["%.3f" % (arrived - yielded) for yielded, arrived in events]
    assert all(arrived < next_yielded for (_, arrived), (next_yielded, _)
               in zip(events, events[1:])), late


@pytest.mark.parametrize("version", [b"HTTP/1.1", b"HTTP/1.0"])
def test_first_block_comes_before_the_pause(served, version):
    check_first_block_comes_before_the_pause(served[0], version)


def test_events_arrive_as_yielded(served):
    check_events_arrive_as_yielded(served[0])


@pytest.mark.parametrize("version", [b"HTTP/1.1", b"HTTP/1.0"])
def test_first_block_comes_before_the_pause_with_flow_control(served_paced, version):
    check_first_block_comes_before_the_pause(served_paced[0], version)


def test_events_arrive_as_yielded_with_flow_control(served_paced):
    check_events_arrive_as_yielded(served_paced[0])
