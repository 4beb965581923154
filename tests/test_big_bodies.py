"""Big bodies: a 1 GiB upload through mongrel2's temp file, and big and
slow downloads. mongrel2 drops a connection it cannot write fast
enough (more than 16 queued messages, or with download.flow_control more
than its credit window). In broker mode wsgid paces a stream by mongrel2's
credits, so any size reaches any client intact; in direct mode it cannot,
and the stream ends in a clean close, never a corrupted body."""

import hashlib
import http.client

import pytest

from tests.support.downloads import PATTERN as BLOCK, PeakRss, download, expected_digest
from tests.support.marks import requires_mongrel2
from tests.support.procfs import rss_kib, status_kib
from tests.support.wsgid import Wsgid, make_app_folder
from wsgid import appfolder

pytestmark = [requires_mongrel2, pytest.mark.e2e]

@pytest.fixture
def broker_fc(m2_factory, tmp_path):
    m2 = m2_factory(settings={"download.flow_control": 1})
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    proc = Wsgid(m2, app_path, "--wsgi-app", "e2e_app:app", "--workers", "1",
                 "--dispatch", "broker")
    proc.start()
    yield m2, proc
    proc.stop()


def test_slow_client_gets_the_whole_stream(broker_fc):
    m2, _ = broker_fc
    size = 20 << 20
    got, digest, complete = download(m2, "/download?%d" % size, bytes_per_second=5 << 20)
    assert (got, digest, complete) == (size, expected_digest(size), True)


def test_1gib_download_intact_with_flat_worker_rss(broker_fc):
    m2, proc = broker_fc
    worker = appfolder.pids(proc.app_path, "worker")[0]
    size = 1 << 30
    with PeakRss(worker) as rss:
        got, digest, complete = download(m2, "/download?%d" % size)
    assert (got, digest, complete) == (size, expected_digest(size), True)
    assert rss.growth < 10 * 1024, "worker RSS grew by %d KiB" % rss.growth


def test_direct_mode_overrun_ends_in_a_clean_close(m2_factory, wsgid_factory, tmp_path):
    """No flow control to pace by: mongrel2 drops the connection, and what
    arrived is an exact prefix of the body (the client sees it incomplete).
    mongrel2 may fill its 16-message queue before writing even the head, so
    an empty prefix (no status line at all) is a clean close too. The same
    worker then serves the next request."""
    m2 = m2_factory()
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    wsgid_factory(m2, app_path, "--wsgi-app", "e2e_app:app")
    size = 256 << 20
    conn = http.client.HTTPConnection("127.0.0.1", m2.http_port, timeout=60)
    conn.request("GET", "/download?%d" % size)
    received = bytearray()
    try:
        resp = conn.getresponse()
        while True:
            block = resp.read(65536)
            if not block:
                break
            received += block
    except http.client.IncompleteRead as exc:
        received += exc.partial
    except http.client.RemoteDisconnected:
        pass  # dropped before the head was written: nothing arrived
    conn.close()
    expected_prefix = (BLOCK * (len(received) // len(BLOCK) + 1))[:len(received)]
    assert bytes(received) == expected_prefix
    assert download(m2, "/download?%d" % (1 << 16)) == (1 << 16, expected_digest(1 << 16), True)
    if len(received) == size:
        pytest.skip("the client kept up this time: nothing was dropped")


def test_1gib_upload_intact_with_flat_worker_rss(broker_fc):
    """mongrel2 spools the body to its temp file; the worker streams it to
    the app as wsgi.input (never into memory) and deletes it afterwards."""
    m2, proc = broker_fc
    worker = appfolder.pids(proc.app_path, "worker")[0]
    before = rss_kib(worker)
    size, digest = 1 << 30, hashlib.sha256()

    def body():
        for start in range(0, size, len(BLOCK)):
            digest.update(BLOCK)
            yield BLOCK
    conn = http.client.HTTPConnection("127.0.0.1", m2.http_port, timeout=120)
    conn.request("POST", "/sha256", body=body(),
                 headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"})
    resp = conn.getresponse()
    answer = resp.read()
    conn.close()
    assert resp.status == 200
    assert b'"sha256": "%s"' % digest.hexdigest().encode() in answer
    peak = status_kib(worker, "VmHWM")  # the kernel's own peak
    assert peak - before < 10 * 1024, "worker peak RSS %d KiB over %d" % (peak, before)
