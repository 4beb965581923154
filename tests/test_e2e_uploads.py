"""Hostile clients against async uploads and request framing, through a
real mongrel2 (issue 21, finding 1).

mongrel2 passes a client's own x-mongrel2-upload-start/-done headers on
whenever it does not spool the body itself; wsgid must take only files
mongrel2 spooled (in --mongrel2-upload-dir, of its name shape, owned by the
folder's owner, single-linked, of the request's size) and refuse the
framings mongrel2 reads otherwise than RFC 9112 does.
"""

import http.client
import os

import pytest

from tests.support.marks import requires_bind_mount, requires_mongrel2
from tests.support.waiting import wait_for
from tests.support.wsgid import Wsgid, make_app_folder

pytestmark = [requires_mongrel2, pytest.mark.e2e]

START, DONE = "x-mongrel2-upload-start", "x-mongrel2-upload-done"
NOBODY = 65534
BIG = 2 ** 31  # above INT_MAX: mongrel2 reads such a Content-Length as 0


def exchange(m2, headers, body=b"", method="POST", path="/sleep?0"):
    """One request with exactly ``headers`` (a list: repeats allowed):
    (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", m2.http_port, timeout=20)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders(body or None)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def forged(path):
    return [(START, path), (DONE, path)]


class Victim:
    """A file a client must neither read nor delete."""

    def __init__(self, path, data, owner=None):
        self.path = path
        with open(path, "wb") as f:
            f.write(data)
        if owner is not None:
            os.chown(path, owner, owner)
        self.stat = os.lstat(path)
        self.data = data

    def assert_intact(self):
        assert os.path.lexists(self.path), "the client deleted %s" % self.path
        st = os.lstat(self.path)
        assert (st.st_ino, st.st_size, st.st_mtime_ns) == (
            self.stat.st_ino, self.stat.st_size, self.stat.st_mtime_ns)
        with open(self.path, "rb") as f:
            assert f.read(len(self.data) + 1) == self.data


@pytest.fixture(params=["chroot", pytest.param("shared", marks=requires_bind_mount)])
def m2(request, m2_factory, wsgid_factory, tmp_path):
    shared = str(tmp_path / "uploads") if request.param == "shared" else None
    server = m2_factory(shared_uploads=shared)
    wsgid_factory(server, make_app_folder(str(tmp_path), "e2e_app.py"), "--wsgi-app",
                  "e2e_app:app")
    return server


# -- forged upload headers on a body mongrel2 did not spool ----------------------------

@pytest.mark.parametrize("data", [b"precious static file", b""], ids=["file", "empty-file"])
@pytest.mark.parametrize("framing", [
    pytest.param([("Transfer-Encoding", "chunked"), ("Content-Length", "0")], id="te-chunked-cl-0"),
    pytest.param([("Content-Length", "0"), ("Transfer-Encoding", "chunked")], id="cl-0-te-chunked"),
    pytest.param([("Content-Length", "0")], id="cl-0"),
])
def test_forged_upload_of_a_file_of_the_chroot(m2, data, framing):
    victim = Victim(os.path.join(m2.chroot, "static", "index.html"), data)
    status, body = exchange(m2, framing + forged(m2.reported_path(victim.path)), path="/")
    assert status == 400
    assert data not in body or not data
    victim.assert_intact()


def _planted(m2, kind):
    """The file (and the file it links to) a client names in mongrel2's
    upload folder: BIG bytes (sparse), as if mongrel2 spooled them."""
    folder = m2.upload_dir()
    name, target = os.path.join(folder, "upload.Pl4nt" + kind[0]), None
    if kind == "wrong-name":  # mongrel2's owner, but not a name the template makes
        name = os.path.join(folder, "database.sqlite3")
    if kind in ("hard-link", "symlink"):  # a second name of a file of mongrel2's account
        target = os.path.join(folder, "mongrel2-own.db")
        Victim(target, b"")
        os.truncate(target, BIG)
        (os.link if kind == "hard-link" else os.symlink)(target, name)
    else:
        Victim(name, b"", owner=NOBODY if kind == "other-owner" else None)
        os.truncate(name, BIG)
    return name, target


@pytest.mark.parametrize("kind", ["other-owner", "hard-link", "symlink", "wrong-name"])
def test_forged_upload_of_a_planted_file_refused(m2, kind):
    # A Content-Length above INT_MAX: mongrel2 reads 0 and spools nothing,
    # so a client's headers reach wsgid with a length that is not 0.
    name, target = _planted(m2, kind)
    before = {p: os.lstat(p) for p in (name, target) if p}
    status, _ = exchange(m2, [("Content-Length", str(BIG))] + forged(m2.reported_path(name)))
    assert status == 400
    for path, st in before.items():
        assert os.path.lexists(path), "the client deleted %s" % path
        now = os.lstat(path)
        assert (now.st_ino, now.st_size, now.st_nlink) == (st.st_ino, st.st_size, st.st_nlink)


# -- framings mongrel2 reads otherwise (RFC 9112 section 6.3) --------------------------

@pytest.mark.parametrize("headers", [
    pytest.param([("Transfer-Encoding", "chunked"), ("Content-Length", "5")], id="te-and-cl"),
    pytest.param([("Transfer-Encoding", "gzip, chunked"), ("Content-Length", "5")],
                 id="te-gzip-chunked-and-cl"),
    pytest.param([("Transfer-Encoding", "xchunked")], id="te-xchunked"),
    pytest.param([("Transfer-Encoding", "gzip, chunked")], id="te-gzip-chunked"),
    pytest.param([("Transfer-Encoding", "Chunked")], id="te-capitalised"),
    pytest.param([("Transfer-Encoding", "identity")], id="te-identity"),
    pytest.param([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
                 id="te-twice"),
    pytest.param([("Content-Length", "5"), ("Content-Length", "5")], id="cl-twice"),
    pytest.param([("Content-Length", str(BIG))], id="cl-above-int-max"),
    pytest.param([("Content-Length", "99999999999999999999999")], id="cl-overflow"),
])
def test_bad_framing_refused(m2, headers):
    body = b"hello" if ("Content-Length", "5") in headers else b""
    if headers[0] == ("Transfer-Encoding", "chunked") and len(headers) == 2 \
            and headers[1][0] == "Transfer-Encoding":
        body = b"5\r\nhello\r\n0\r\n\r\n"  # mongrel2 reads the first: it spools
    status, _ = exchange(m2, headers, body, path="/")
    assert status == 400
    wait_for(lambda: os.listdir(m2.upload_dir()) == [], 5, what="a spooled body removed")


# -- genuine uploads, and none without the option --------------------------------------

def test_genuine_uploads_served_and_removed(m2):
    size = m2.content_length * 3
    status, body = exchange(m2, [("Content-Length", str(size))], b"x" * size, path="/")
    assert status == 200 and b'"CONTENT_LENGTH": "%d"' % size in body
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (size, b"y" * size)
    status, body = exchange(m2, [("Transfer-Encoding", "chunked")], chunked, path="/")
    assert status == 200 and b"yyyy" in body
    wait_for(lambda: os.listdir(m2.upload_dir()) == [], 5, what="the temp files removed")


def test_without_the_option_uploads_are_refused_with_500(m2_factory, tmp_path):
    m2 = m2_factory()
    proc = Wsgid(m2, make_app_folder(str(tmp_path), "e2e_app.py"), wsgi_app="e2e_app:app")
    at = proc.args.index("--mongrel2-upload-dir")
    del proc.args[at:at + 2]
    try:
        proc.start()
        size = m2.content_length * 2
        status, _ = exchange(m2, [("Content-Length", str(size))], b"x" * size, path="/")
        assert status == 500
        wait_for(lambda: "--mongrel2-upload-dir is not set" in proc.output(), 5,
                 what="the log line")
        assert proc.output().count("WARNING - Async uploads: off until "
                                   "--mongrel2-upload-dir") == 1
        assert exchange(m2, [], path="/")[0] == 200  # the rest is served
    finally:
        proc.stop()
