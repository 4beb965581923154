"""Files through wsgi.file_wrapper, end to end: Django's FileResponse behind
a real mongrel2 with download flow control (broker dispatch, one worker).
The worker sends a 1 GiB file intact with flat memory; with
--mongrel2-sendfile mongrel2's sendfile plugin sends it and the worker is
free at once."""

import os
import socket

import pytest

from tests.support.downloads import PeakRss, download, expected_digest, write_pattern_file
from tests.support.http import get
from tests.support.marks import requires_cc, requires_mongrel2
from tests.support.mongrel2 import SENDFILE
from tests.support.procfs import bytes_read
from tests.support.wsgid import live_pids, make_app_folder

pytest.importorskip("django")

pytestmark = [requires_mongrel2, pytest.mark.e2e]


@pytest.fixture
def file_site(m2_factory, wsgid_factory, tmp_path):
    """``start(*wsgid_options, dispatch="broker", **mongrel2_options)``:
    mongrel2 (with download flow control for broker dispatch) and wsgid with
    one worker serving tests/apps/django_files.py, whose files are in the
    folder ``files`` inside mongrel2's chroot; returns (m2, that folder,
    worker pid)."""
    def start(*extra, dispatch="broker", **m2_options):
        flow_control = {"download.flow_control": 1} if dispatch == "broker" else {}
        m2 = m2_factory(settings=flow_control, **m2_options)
        files = os.path.join(m2.chroot, "files")
        os.makedirs(files)
        app_path = make_app_folder(str(tmp_path), "django_files.py",
                                   sources={"files_root.py": "ROOT = %r\n" % files})
        wsgid_factory(m2, app_path, "--wsgi-app", "django_files:app", "--workers", "1",
                      "--dispatch", dispatch, *extra)
        return m2, files, live_pids(app_path, "worker")[0]
    return start


def test_1gib_file_response_intact_with_flat_worker_rss(file_site):
    m2, files, worker = file_site()
    size = 1 << 30
    write_pattern_file(os.path.join(files, "big.bin"), size)
    with PeakRss(worker) as rss:
        got, digest, complete = download(m2, "/files/big.bin")
    assert (got, digest, complete) == (size, expected_digest(size), True)
    assert rss.growth < 10 * 1024, "worker RSS grew by %d KiB" % rss.growth
    # A HEAD gives the length without reading the file.
    read_before = bytes_read(worker)
    status, headers, body = get(m2.url, "/files/big.bin", method="HEAD")
    assert (status, headers["content-length"], body) == (200, str(size), b"")
    assert bytes_read(worker) - read_before < 1 << 20


@requires_cc
@pytest.mark.parametrize("dispatch", ["broker", "direct"])
def test_sendfile_hand_off_frees_the_worker_at_once(file_site, dispatch):
    """mongrel2 sends the file: while the client has read only its first
    block, the one worker answers another request, and it never read the
    file. In direct dispatch too, where a stream this size from the worker
    would overrun mongrel2 (no flow control there)."""
    m2, files, worker = file_site("--mongrel2-sendfile", dispatch=dispatch,
                                  xrequests=[SENDFILE])
    size = 256 << 20
    write_pattern_file(os.path.join(files, "big.bin"), size)
    read_before = bytes_read(worker)
    meanwhile = []
    got, digest, complete = download(
        m2, "/files/big.bin",
        on_first_block=lambda: meanwhile.append(get(m2.url, "/", timeout=5)))
    assert (got, digest, complete) == (size, expected_digest(size), True)
    status, headers, body = meanwhile[0]
    assert (status, body) == (200, b"hello\n") and "x-wsgid" in headers
    assert bytes_read(worker) - read_before < 1 << 20


@requires_cc
def test_sendfile_refuses_a_file_outside_the_chroot(file_site, tmp_path):
    """A symlink in the files folder leads out of mongrel2's chroot: the
    worker sends the file itself, intact."""
    m2, files, worker = file_site("--mongrel2-sendfile", xrequests=[SENDFILE])
    size = 8 << 20
    write_pattern_file(str(tmp_path / "outside.bin"), size)
    os.symlink(str(tmp_path / "outside.bin"), os.path.join(files, "link.bin"))
    read_before = bytes_read(worker)
    assert download(m2, "/files/link.bin") == (size, expected_digest(size), True)
    assert bytes_read(worker) - read_before >= size


@requires_cc
@pytest.mark.parametrize("dispatch", ["broker", "direct"])
def test_after_a_hand_off_the_connection_is_closed(m2_factory, wsgid_factory, tmp_path,
                                                   dispatch):
    """mongrel2 opens a handed-off file by its path after the worker checked
    it: here the file grows in between (tests/apps/grown_file.py holds
    mongrel2 still meanwhile), and mongrel2 sends more than the head's
    Content-Length -- the growth reads as a forged response. The head says
    ``Connection: close`` and the connection ends after the file: the
    client's next request on it is never answered from the desynced stream."""
    m2 = m2_factory(xrequests=[SENDFILE])
    files = os.path.join(m2.chroot, "files")
    os.makedirs(files)
    with open(os.path.join(files, "f.bin"), "wb") as f:
        f.write(b"x" * 1000)
    app_path = make_app_folder(str(tmp_path), "grown_file.py", sources={
        "files_root.py": "ROOT = %r\nMONGREL2 = %d\n" % (files, m2.proc.pid)})
    wsgid_factory(m2, app_path, "--wsgi-app", "grown_file:app", "--workers", "1",
                  "--dispatch", dispatch, "--mongrel2-sendfile")
    with socket.create_connection(("127.0.0.1", m2.http_port), timeout=5) as sock:
        sock.sendall(b"GET /grow/f.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        stream = sock.makefile("rb", buffering=0)
        head = []
        while head[-1:] != [b"\r\n"]:
            head.append(stream.readline())
        assert head[0].startswith(b"HTTP/1.1 200") and b"Content-Length: 1000\r\n" in head
        body = b""
        while len(body) < 1000:
            body += stream.read(1000 - len(body))
        assert body == b"x" * 1000
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        except OSError:
            pass  # closed already
        rest, closed = b"", False
        try:
            while not closed:
                data = sock.recv(65536)
                rest, closed = rest + data, not data
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            pass  # still open
    # What mongrel2 sent past the Content-Length (the growth), then the end.
    assert b"hello" not in rest and closed, rest
    assert b"Connection: close\r\n" in head
