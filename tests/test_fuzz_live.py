"""Hostile messages at a live worker, through sockets the test owns (it plays
mongrel2), and hostile clients through a real mongrel2.

* 10,000 random and mutated messages: the worker never exits, its memory
  stays flat, it still answers.
* Hostile async-upload paths: 4xx, nothing opened outside the chroot,
  nothing changed or left behind; with --mongrel2-chroot ("chroot") and
  without it, the upload folder shared at the same path ("shared").
"""

import contextlib
import hashlib
import os
import random
import signal
import socket
import stat
import time

import pytest

from tests.support import fuzz
from tests.support.http import get
from tests.support.inotify import IN_ALL_EVENTS, Inotify, touched, tree
from tests.support.marks import requires_bind_mount, requires_mongrel2
from tests.support.waiting import wait_for
from tests.support.peer import Peer, status_of
from tests.support.procfs import alive, fd_count, rss_kib
from tests.support.wire import get_headers, json_request
from tests.support.wsgid import Wsgid, make_app_folder

TOTAL = 10000
WARM_UP = 2000
RSS_SLACK_KIB = 5 * 1024


@contextlib.contextmanager
def live_wsgid(tmp_path, setup="chroot"):
    """wsgid against a Peer; mongrel2's chroot stands in ``chroot``: wsgid
    is told where with --mongrel2-chroot, or ("shared") not at all."""
    chroot = tmp_path / "m2chroot"
    (chroot / "tmp").mkdir(parents=True)
    if setup == "chroot":
        peer = Peer(chroot=chroot, upload_template="/tmp/upload.XXXXXX")
    else:
        peer = Peer(upload_template="%s/tmp/upload.XXXXXX" % chroot)
    wsgid = Wsgid(peer, make_app_folder(tmp_path, "e2e_app.py"), wsgi_app="e2e_app:app",
                  stop_signal=signal.SIGINT)
    wsgid.chroot = chroot
    try:
        wsgid.start(workers=1)
        yield wsgid
    finally:
        wsgid.stop()
        peer.close()


@pytest.fixture
def live(tmp_path):
    with live_wsgid(tmp_path) as wsgid:
        yield wsgid


_sync_ids = iter(range(987654321000, 987654329999))


def sync(live, timeout=30):
    """A valid request, answered: the single worker has handled everything
    sent before it (it serves its queue in order)."""
    conn_id = b"%d" % next(_sync_ids)
    live.m2.send(json_request(get_headers("/after"), conn_id=conn_id))
    bodies = live.m2.replies_for(conn_id, timeout=timeout)
    live.m2.received.clear()
    return bodies


def test_worker_survives_10000_hostile_messages(live, capsys):
    rng = random.Random(20240611)
    messages = fuzz.hostile_messages(rng, TOTAL)
    worker = live.workers()[0]
    assert status_of(sync(live)) == b"200"

    t0 = time.monotonic()
    for data in messages[:WARM_UP]:
        live.m2.send(data)
        live.m2.pump()
    assert status_of(sync(live)) == b"200"
    rss0, fds0 = rss_kib(worker), fd_count(worker)

    for i, data in enumerate(messages[WARM_UP:]):
        live.m2.send(data)
        if i % 16 == 0:
            live.m2.pump()
    bodies = sync(live)
    elapsed = time.monotonic() - t0
    rss1, fds1 = rss_kib(worker), fd_count(worker)
    with capsys.disabled():
        print("\n[fuzz] %d messages in %.1fs (%.0f/s); "
              "worker RSS %d -> %d KiB, fds %d -> %d"
              % (len(messages), elapsed, len(messages) / elapsed,
                 rss0, rss1, fds0, fds1))

    assert status_of(bodies) == b"200" and b'"PATH_INFO": "/after"' in b"".join(bodies)
    assert live.workers() == [worker], "the worker was replaced"
    assert live.proc.poll() is None
    log = live.output()
    assert log.count("Dropped a bad message") > TOTAL // 2  # they did reach the worker
    assert "Worker crashed" not in log and "died" not in log
    assert rss1 - rss0 < RSS_SLACK_KIB
    assert fds1 == fds0
    assert list(live.chroot.rglob("*")) == [live.chroot / "tmp"]  # nothing written there


def test_parser_crashers_do_not_kill_the_worker(live):
    worker = live.workers()[0]
    assert status_of(sync(live)) == b"200"
    for name, data in sorted(fuzz.PARSER_CRASHERS.items()):
        live.m2.send(data)
        try:
            bodies = sync(live, timeout=5)
        except TimeoutError:  # direct mode: the request queued at a dead worker is lost
            bodies = None
        assert alive(worker), "the worker died on %s" % name
        assert status_of(bodies) == b"200", name


# -- hostile async-upload paths -------------------------------------------------------
#
# mongrel2 names the temp file of a large upload in x-mongrel2-upload-start /
# -done (a path inside its chroot). Whatever those headers say, wsgid must
# answer 4xx, open nothing outside --mongrel2-chroot, and leave every file as
# it was (a refused path is not deleted either: that would let a client
# delete files by naming them). Without the option the same paths are
# reported as the host sees them (mongrel2's chroot shares its folders at
# the same path), and the same attacks are refused.

SETUPS = ["chroot", "shared"]

START, DONE = "x-mongrel2-upload-start", "x-mongrel2-upload-done"
SECRET = b"secret outside the chroot"


class UploadEnv:
    def __init__(self, live, base, setup):
        self.live = live
        self.chroot = live.chroot
        # What mongrel2 reports for its chroot's "/tmp/x": the same, or the host path.
        self.prefix = "" if setup == "chroot" else str(self.chroot)
        self.tmp = self.chroot / "tmp"
        (self.chroot / "static").mkdir()
        (self.chroot / "static" / "index.html").write_bytes(b"precious static file")
        (self.chroot / "run").mkdir()
        (self.chroot / "run" / "empty").write_bytes(b"")
        self.outside = base / "outside"
        self.outside.mkdir()
        self.secret = self.outside / "secret"
        self.secret.write_bytes(SECRET)
        st = os.stat(self.secret)
        # atime older than mtime: any read would move it (relatime).
        os.utime(self.secret, ns=(st.st_mtime_ns - 10 ** 12, st.st_mtime_ns))
        self.secret_stat = os.stat(self.secret)
        self.worker = live.workers()[0]
        self.conn = 100

    def arm(self):
        """Snapshot everything, start watching the outside folder."""
        # A request answered first: the worker's PULL connection (made in
        # libzmq's I/O thread after "ready") is open, so its fd is counted.
        sync(self.live)
        self.inotify = Inotify()
        self.inotify.watch(str(self.outside), IN_ALL_EVENTS)
        self.inotify.watch(str(self.secret), IN_ALL_EVENTS)
        self.before = tree(str(self.chroot))
        self.fds = fd_count(self.worker)

    def post(self, start=None, done=None, length=None, body=b"", path="/sha256", extra=None,
             send_start_first=False, between=None, timeout=10):
        """Send the done message (the start message first if asked, then
        ``between()``); return the bodies sent to its connection, once a
        later request was answered (the worker serves in order)."""
        self.conn += 1
        conn_id = b"%d" % self.conn
        start, done = self.reported(start), self.reported(done)
        headers = get_headers(path, METHOD="POST")
        if start is not None:
            headers[START] = start
        if length is not None:
            headers["content-length"] = length
        headers.update(extra or {})
        if send_start_first:
            self.live.m2.send(json_request(headers, conn_id=conn_id))
            self.barrier(timeout)
        if between:
            between()
        headers[DONE] = done
        self.live.m2.send(json_request(headers, body, conn_id=conn_id))
        self.barrier(timeout)
        bodies = [b for c, b in self.live.m2.received if c == conn_id]
        self.live.m2.received.clear()
        return bodies

    def reported(self, path):
        """The header value mongrel2 would send for ``path`` of its chroot."""
        if isinstance(path, list):
            return [self.reported(p) for p in path]
        return self.prefix + path if path and path.startswith("/") else path

    def barrier(self, timeout):
        conn_id = b"%d" % next(_sync_ids)
        self.live.m2.send(json_request(get_headers("/after"), conn_id=conn_id))
        self.live.m2.replies_for(conn_id, timeout=timeout)
        self.live.m2.forget(conn_id)

    def check_untouched(self, removed=()):
        events = touched(self.inotify.events())
        self.inotify.close()
        assert events == [], "something outside the chroot was opened/changed: %s" % events
        st = os.stat(self.secret)  # before reading it ourselves
        assert (st.st_atime_ns, st.st_mtime_ns, st.st_ino) == (
            self.secret_stat.st_atime_ns, self.secret_stat.st_mtime_ns, self.secret_stat.st_ino)
        assert self.secret.read_bytes() == SECRET
        expected = {k: v for k, v in self.before.items() if k not in removed}
        assert tree(str(self.chroot)) == expected, "files changed in the mongrel2 chroot"
        assert fd_count(self.worker) == self.fds, "the worker keeps a file open"
        assert self.live.workers() == [self.worker]


@pytest.fixture(params=SETUPS)
def uploads(request, tmp_path):
    with live_wsgid(tmp_path, request.param) as live:
        yield UploadEnv(live, tmp_path, request.param)


def _refused(bodies):
    assert bodies, "no answer at all"
    assert bodies[0][9:10] == b"4", bodies[0][:60]
    assert bodies[-1] == b"", "connection not closed"


def _setup_files(env, case):
    t, out = env.tmp, env.outside
    if case == "symlink-file":
        (t / "upload.lnk000").symlink_to(env.secret)
    elif case == "symlink-dir":
        (t / "linkdir").symlink_to(out)
    elif case == "symlink-chain":
        (t / "upload.bbbbbb").symlink_to(env.secret)
        (t / "upload.aaaaaa").symlink_to(t / "upload.bbbbbb")
    elif case == "symlink-relative":
        (t / "upload.rel000").symlink_to(os.path.relpath(env.secret, t))
    elif case == "symlink-inside":
        (t / "upload.real00").write_bytes(b"abcdef")
        (t / "upload.lnk000").symlink_to(t / "upload.real00")
    elif case in ("mismatch", "start-missing", "done-list", "size-bigger", "size-smaller",
                  "done-with-body", "vanished"):
        (t / "upload.AAAAAA").write_bytes(b"abcdef")
        (t / "upload.BBBBBB").write_bytes(b"abcdef")
    elif case == "directory":
        (t / "upload.dir000").mkdir()
        (t / "upload.dir000" / "inner").write_bytes(b"abcdef")


UPLOAD_CASES = {
    # case: (start, done, content-length, body)
    "dotdot": ("/tmp/../../outside/secret", "/tmp/../../outside/secret", "25", b""),
    "dotdot-deep": ("/" + "../" * 40 + "etc/passwd",) * 2 + ("6", b""),
    "absolute-outside": (None, None, "25", b""),    # the real path of the secret
    "symlink-file": ("/tmp/upload.lnk000", "/tmp/upload.lnk000", "25", b""),
    "symlink-dir": ("/tmp/linkdir/secret", "/tmp/linkdir/secret", "25", b""),
    "symlink-chain": ("/tmp/upload.aaaaaa", "/tmp/upload.aaaaaa", "25", b""),
    "symlink-relative": ("/tmp/upload.rel000", "/tmp/upload.rel000", "25", b""),
    "symlink-inside": ("/tmp/upload.lnk000", "/tmp/upload.lnk000", "6", b""),
    "mismatch": ("/tmp/upload.AAAAAA", "/tmp/upload.BBBBBB", "6", b""),
    "start-missing": (None, "/tmp/upload.AAAAAA", "6", b""),
    "done-list": ("/tmp/upload.AAAAAA", ["/tmp/upload.AAAAAA", "/tmp/upload.AAAAAA"], "6", b""),
    "missing": ("/tmp/upload.none00", "/tmp/upload.none00", "6", b""),
    "vanished": ("/tmp/upload.AAAAAA", "/tmp/upload.AAAAAA", "6", b""),
    "directory": ("/tmp/upload.dir000", "/tmp/upload.dir000", "4096", b""),
    "chroot-root": ("/", "/", "4096", b""),
    "size-bigger": ("/tmp/upload.AAAAAA", "/tmp/upload.AAAAAA", "7", b""),
    "size-smaller": ("/tmp/upload.AAAAAA", "/tmp/upload.AAAAAA", "5", b""),
    "size-not-a-number": ("/tmp/upload.AAAAAA", "/tmp/upload.AAAAAA", "six", b""),
    "done-with-body": ("/tmp/upload.AAAAAA", "/tmp/upload.AAAAAA", "6", b"abcdef"),
}


# Without --mongrel2-chroot any real path of the host but /proc, /sys and
# /dev is one mongrel2 may name: only the chroot set-up can refuse the
# secret's own path (a client cannot name it: forged headers are refused).
HOSTILE = [pytest.param(setup, case, id="%s-%s" % (setup, case))
           for setup in SETUPS for case in sorted(UPLOAD_CASES)
           if (setup, case) != ("shared", "absolute-outside")]


@pytest.mark.parametrize("uploads,case", HOSTILE, indirect=["uploads"])
def test_hostile_upload_path_refused(uploads, case):
    env = uploads
    start, done, length, body = UPLOAD_CASES[case]
    if case == "absolute-outside":  # the secret's host path, read under the chroot
        start = done = str(env.secret)
    if case == "size-not-a-number":
        (env.tmp / "upload.AAAAAA").write_bytes(b"abcdef")
    _setup_files(env, case)
    env.arm()
    between = None
    if case == "vanished":  # the file exists at the start message, is gone at done
        def between():
            os.unlink(env.tmp / "upload.AAAAAA")
            env.before.pop("tmp/upload.AAAAAA")
    bodies = env.post(start, done, length, body, send_start_first=start is not None,
                      between=between)
    _refused(bodies)
    env.check_untouched()


def test_legit_upload_removed_when_the_app_fails(uploads):
    env = uploads
    (env.tmp / "upload.Xxxxxx").write_bytes(b"abcdef")
    env.arm()
    bodies = env.post("/tmp/upload.Xxxxxx", "/tmp/upload.Xxxxxx", "6", path="/boom",
                      send_start_first=True)
    assert bodies[0].startswith(b"HTTP/1.1 500")
    env.check_untouched(removed={"tmp/upload.Xxxxxx"})


def test_legit_chunked_upload_served_and_removed(uploads):
    # mongrel2 writes every chunked body to a temp file; no Content-Length.
    env = uploads
    (env.tmp / "upload.Cccccc").write_bytes(b"0123456789")
    env.arm()
    bodies = env.post("/tmp/upload.Cccccc", "/tmp/upload.Cccccc", None, send_start_first=True,
                      extra={"transfer-encoding": "chunked"})
    assert bodies[0].startswith(b"HTTP/1.1 200")
    assert b'"size": 10' in bodies[0]
    env.check_untouched(removed={"tmp/upload.Cccccc"})


# A client can send x-mongrel2-upload-start/-done itself on a request without
# a body (mongrel2 passes client headers through): wsgid must not take that
# for an upload, or it serves the named file of mongrel2's chroot as
# wsgi.input and then deletes it. mongrel2 spools only a body over
# limits.content_length (so Content-Length > 0) or a Transfer-Encoding of
# exactly "chunked" (then its own headers collide with forged ones).
FORGED = [
    pytest.param("/static/index.html", None, None, id="no-length"),
    pytest.param("/static/index.html", "0", None, id="length-0"),
    pytest.param("/run/empty", "0", None, id="length-0-empty-file"),
    pytest.param("/static/index.html", None, "xchunked", id="te-xchunked"),
    pytest.param("/static/index.html", None, "gzip, chunked", id="te-gzip-chunked"),
    pytest.param("/static/index.html", None, "chunked, gzip", id="te-chunked-gzip"),
    pytest.param("/static/index.html", None, "identity", id="te-identity"),
]


@pytest.mark.parametrize("target,length,te", FORGED)
def test_forged_upload_headers_without_body_refused(uploads, target, length, te):
    env = uploads
    env.arm()
    bodies = env.post(target, target, length, path="/",  # "/" echoes the body
                      extra={"transfer-encoding": te} if te else None)
    assert b"precious" not in b"".join(bodies)
    _refused(bodies)
    env.check_untouched()


def test_upload_path_with_nul_byte_refused(uploads):
    env = uploads
    env.arm()
    bodies = env.post("/tmp/a\x00b", "/tmp/a\x00b", "6")
    _refused(bodies)
    env.check_untouched()


def test_upload_path_naming_a_fifo_refused(uploads):
    env = uploads
    fifo = env.tmp / "upload.fifo00"
    os.mkfifo(fifo)
    env.arm()
    try:
        bodies = env.post("/tmp/upload.fifo00", "/tmp/upload.fifo00", "6", timeout=5)
    finally:
        try:  # release a worker stuck in open()
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    _refused(bodies)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    env.check_untouched()


# -- the same attacks from a real client, through a real mongrel2 -------------------------

@pytest.fixture(params=["chroot", pytest.param("shared", marks=requires_bind_mount)])
def real(request, m2_factory, wsgid_factory, tmp_path):
    shared = str(tmp_path / "uploads") if request.param == "shared" else None
    m2 = m2_factory(shared_uploads=shared)
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    wsgid_factory(m2, app_path, "--wsgi-app", "e2e_app:app")
    return m2


@requires_mongrel2
@pytest.mark.e2e
@pytest.mark.parametrize("te", [
    pytest.param(None, id="no-te"),
    pytest.param("xchunked", id="te-xchunked"),
    pytest.param("gzip, chunked", id="te-gzip-chunked"),
    pytest.param("chunked, gzip", id="te-chunked-gzip"),
])
def test_client_forging_upload_headers_cannot_read_or_delete(real, te):
    # Through a real mongrel2: a request without a body, forged headers.
    victim = os.path.join(real.chroot, "static", "index.html")
    with open(victim, "wb") as f:
        f.write(b"precious static file")
    target = real.reported_path(victim)
    headers = {START: target, DONE: target}
    if te:
        headers["Transfer-Encoding"] = te
    status, _, body = get(real.url, "/", method="POST", headers=headers)
    assert os.path.exists(victim), "the client deleted a file of mongrel2's chroot"
    assert b"precious" not in body
    assert 400 <= status < 500


@requires_mongrel2
@pytest.mark.e2e
@pytest.mark.parametrize("length", [b"abc", b"-1"])
def test_client_bad_content_length_gets_400(real, length):
    with socket.create_connection(("127.0.0.1", real.http_port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n")
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:40]


def _raw_http(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while not (answer.endswith(b"}") or b"Bad Request" in answer):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


@requires_mongrel2
@pytest.mark.e2e
def test_real_chunked_upload_served_and_removed(real):
    # Every chunked body goes through mongrel2's temp file, with no
    # Content-Length: a guard for any fix of the forged-headers hole.
    body = b"0123456789" * 3000
    answer = _raw_http(real.http_port, b"POST /sha256 HTTP/1.1\r\nHost: x\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
                       % (len(body), body))
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert hashlib.sha256(body).hexdigest().encode() in answer
    wait_for(lambda: os.listdir(real.upload_dir()) == [], 5, what="the temp file removed")


@requires_mongrel2
@pytest.mark.e2e
def test_real_chunked_upload_with_forged_headers_refused(real):
    victim = os.path.join(real.chroot, "static", "index.html")
    with open(victim, "wb") as f:
        f.write(b"precious static file")
    target = real.reported_path(victim).encode()
    answer = _raw_http(real.http_port, b"POST / HTTP/1.1\r\nHost: x\r\n"
                       b"Transfer-Encoding: chunked\r\n%s: %s\r\n"
                       b"%s: %s\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                       % (START.encode(), target, DONE.encode(), target))
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"precious" not in answer
    with open(victim, "rb") as f:
        assert f.read() == b"precious static file"
