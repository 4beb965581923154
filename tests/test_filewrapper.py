"""wsgid.filewrapper: wsgi.file_wrapper, and which files mongrel2 may send itself."""

import io
import os

import pytest

from tests.support import wire
from wsgid import message
from wsgid.filewrapper import BLOCK, FileWrapper, handoff_path
from wsgid.request_handler import RequestHandler
from wsgid.response import Response
from wsgid.sources import Source


class Closing(io.BytesIO):
    """A file-like object (no fileno) that counts its close() calls."""
    closes = 0

    def close(self):
        self.closes += 1
        super().close()


def test_blocks_are_large_whatever_the_app_suggests():
    data = os.urandom(2 * BLOCK + 123)
    blocks = list(FileWrapper(io.BytesIO(data), 4096))  # Django's FileResponse asks for 4 KiB
    assert [len(b) for b in blocks] == [BLOCK, BLOCK, 123]
    assert b"".join(blocks) == data


def test_a_larger_block_size_is_kept():
    data = os.urandom(3 * BLOCK)
    blocks = list(FileWrapper(io.BytesIO(data), 2 * BLOCK))
    assert [len(b) for b in blocks] == [2 * BLOCK, BLOCK]


def test_close_closes_the_file():
    filelike = Closing(b"x")
    wrapper = FileWrapper(filelike)
    wrapper.close()
    assert filelike.closes == 1 and filelike.closed


def test_an_object_without_close_is_wrapped_too():
    class Reader:  # read() only, as PEP 3333 allows
        def __init__(self):
            self.left = [b"ab", b"c"]

        def read(self, size):
            return self.left.pop(0) if self.left else b""
    wrapper = FileWrapper(Reader())
    assert list(wrapper) == [b"ab", b"c"]
    wrapper.close()  # nothing to close: no error


# -- which files mongrel2 may send itself --------------------------------------

def response(method="GET", headers=()):
    resp = Response(lambda *args: None, "HTTP/1.1", method, None)
    resp.start_response("200 OK", list(headers))
    return resp


@pytest.fixture
def chroot(tmp_path):
    root = tmp_path / "chroot"
    (root / "files").mkdir(parents=True)
    (root / "files" / "blob.bin").write_bytes(b"0123456789")
    return root


def test_a_regular_file_inside_the_chroot_is_handed_off(chroot):
    resp = response()
    with open(chroot / "files" / "blob.bin", "rb") as f:
        # the path as mongrel2 sees it, and the Content-Length its bytes need
        assert handoff_path(FileWrapper(f), resp, str(chroot)) == ("/files/blob.bin", 10)
    assert resp.length is None  # a query: the response is left as it was


def test_the_apps_content_length_must_be_the_files_size(chroot):
    with open(chroot / "files" / "blob.bin", "rb") as f:
        assert handoff_path(FileWrapper(f), response(headers=[("Content-Length", "4")]),
                            str(chroot)) is None
        assert handoff_path(FileWrapper(f), response(headers=[("Content-Length", "10")]),
                            str(chroot)) == ("/files/blob.bin", 10)


def test_not_handed_off(chroot, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"secret")
    os.symlink(outside, chroot / "files" / "link.bin")
    root = str(chroot)
    with open(outside, "rb") as f:
        assert handoff_path(FileWrapper(f), response(), root) is None          # outside
    with open(chroot / "files" / "link.bin", "rb") as f:
        assert handoff_path(FileWrapper(f), response(), root) is None          # leads outside
    with open(chroot / "files" / "blob.bin", "rb") as f:
        f.seek(3)
        assert handoff_path(FileWrapper(f), response(), root) is None          # not from its start
        f.seek(0)
        assert handoff_path(FileWrapper(f), response("HEAD"), root) is None    # no body to send
        started = response()
        started.write(b"x")
        assert handoff_path(FileWrapper(f), started, root) is None             # a body began
        os.rename(chroot / "files" / "blob.bin", chroot / "files" / "moved.bin")
        (chroot / "files" / "blob.bin").write_bytes(b"another")
        assert handoff_path(FileWrapper(f), response(), root) is None          # name, other file
    assert handoff_path(FileWrapper(io.BytesIO(b"abc")), response(), root) is None  # no fileno
    with open(os.devnull, "rb") as f:
        assert handoff_path(FileWrapper(f), response(), "/") is None           # not regular


# -- through the request handler ------------------------------------------------

class Replies:
    """The handler's reply side, recorded: messages and sendfile hand-offs."""

    def __init__(self):
        self.sent, self.handed = [], []

    def sender(self, sender, conn_id):
        return lambda data, hold=False, limit=0: self.sent.append(data)

    def sendfile(self, sender, conn_id, path):
        self.handed.append(path)


def serve(app, chroot=None, sendfile=False, method="GET"):
    replies = Replies()
    handler = RequestHandler(app, replies, Source(), mongrel2_chroot=chroot,
                             mongrel2_sendfile=sendfile)
    handler.dispatch(message.parse(wire.request({
        "PATH": "/", "METHOD": method, "VERSION": "HTTP/1.1", "URI": "/", "PATTERN": "/",
        "host": "localhost"})))
    return replies


def file_app(path, headers=()):
    opened = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")] + list(headers))
        opened.append(open(path, "rb"))
        return environ["wsgi.file_wrapper"](opened[0], 4096)
    return app, opened


def test_worker_sends_the_file_in_large_blocks_and_closes_it(chroot):
    data = os.urandom(3 * BLOCK)
    (chroot / "big.bin").write_bytes(data)
    app, opened = file_app(chroot / "big.bin")
    replies = serve(app)
    answer = wire.parse_response([s for s in replies.sent if s])
    assert answer.body == data and answer.get("Transfer-Encoding") == "chunked"
    assert len(replies.sent) == 4  # three 1 MiB blocks and the terminator, not 768 of 4 KiB
    assert opened[0].closed and replies.handed == []


def test_worker_never_sends_more_than_the_apps_content_length(chroot):
    app, opened = file_app(chroot / "files" / "blob.bin", [("Content-Length", "4")])
    replies = serve(app, str(chroot), sendfile=True)
    answer = wire.parse_response([s for s in replies.sent if s])
    assert (answer.get("Content-Length"), answer.body) == ("4", b"0123")
    assert replies.handed == [] and opened[0].closed


def test_worker_hands_the_file_to_mongrel2(chroot):
    app, opened = file_app(chroot / "files" / "blob.bin")
    replies = serve(app, str(chroot), sendfile=True)
    assert replies.handed == [b"/files/blob.bin"]
    head = wire.parse_response([replies.sent[0]])
    assert head.get("Content-Length") == "10" and head.body == b""
    assert head.get("Content-Type") == "application/octet-stream"
    # mongrel2 opens the file later, by its path: the connection ends after it.
    assert head.get("Connection") == "close" and replies.sent[1:] == [b""]
    assert opened[0].closed


def test_worker_sends_a_file_outside_the_chroot_itself(chroot, tmp_path):
    (tmp_path / "out.bin").write_bytes(b"outside")
    app, _ = file_app(tmp_path / "out.bin")
    replies = serve(app, str(chroot), sendfile=True)
    assert replies.handed == []
    assert wire.parse_response([s for s in replies.sent if s]).body == b"outside"


def test_worker_reads_nothing_for_a_head_of_known_length():
    class Unread(io.BytesIO):
        def read(self, size=-1):
            raise AssertionError("the file was read")

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "1073741824")])
        return environ["wsgi.file_wrapper"](Unread())
    replies = serve(app, method="HEAD")
    head = wire.parse_response(replies.sent, head=True)
    assert head.get("Content-Length") == "1073741824" and head.raw_body == b""
    assert len(replies.sent) == 1  # the head only: no close
