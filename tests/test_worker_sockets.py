"""A live worker fed through ZeroMQ sockets the test owns (it plays mongrel2)."""

import os

import pytest

from tests.support.mongrel2 import wait_for
from tests.support.peer import Peer
from tests.support.wire import SENDER, Pub, get_headers, json_request
from tests.support.wsgid import Wsgid, make_app_folder


def request(headers, body=b"", conn_id=b"1", sender=SENDER):
    return json_request(headers, body, conn_id=conn_id, sender=sender)


@pytest.fixture
def fake_m2(tmp_path):
    """The test plays mongrel2 (its chroot: tmp_path) for a live worker."""
    m2 = Peer(chroot=tmp_path, upload_template="/tmp/upload.XXXXXX")
    wsgid = Wsgid(m2, make_app_folder(tmp_path, "e2e_app.py"), wsgi_app="e2e_app:app").spawn()
    m2.proc = wsgid.proc
    yield m2
    wsgid.stop()
    m2.close()


GARBAGE = [
    b"",
    b"garbage",
    b"a b c d",
    SENDER + b" 1 / 5:abc",                                # truncated netstring
    SENDER + b" 1 / 99999999999:x",                        # absurd length
    SENDER + b" 1 / 2:[],0:,",                             # headers not a dict
    SENDER + b" 1 / 3:1:a,0:,",                            # not a dict either
    SENDER + b" 1 / 13:{\"PATH\": \"/\"},0:,",             # no METHOD
    SENDER + b" 1 / 17:{\"METHOD\": \"GET\"},0:,",         # no PATH
    SENDER + b" x / 2:{},0:,",                             # bad conn id
    SENDER + b" 1 / 2:{}X0:,",                             # bad terminator
    SENDER + b" 1 / 2:{},5:ab,",                           # truncated body
    b"\xff\xfe\x00 1 / 2:{},0:,",
]


def test_worker_survives_garbage_then_serves(fake_m2):
    # The first valid request proves the worker is up (it waits for our SUB).
    fake_m2.send(request(get_headers("/warmup"), conn_id=b"1"))
    assert fake_m2.replies()[0][1].startswith(b"HTTP/1.1 200")
    for data in GARBAGE:
        fake_m2.send(data)
    fake_m2.send(request(get_headers("/after"), conn_id=b"42"))
    replies = fake_m2.replies()
    # Garbage whose envelope was readable got a 400 and a close; then ours.
    oks = [(ids, body) for ids, body in replies if body.startswith(b"HTTP/1.1 200")]
    while not oks:
        more = fake_m2.replies()
        assert more, "no answer to the valid request after garbage"
        replies += more
        oks = [(ids, body) for ids, body in more if body.startswith(b"HTTP/1.1 200")]
    assert oks[0][0] == b"2:42,"
    assert b'"PATH_INFO": "/after"' in oks[0][1]
    bad = [body for ids, body in replies if body.startswith(b"HTTP/1.1 400")]
    assert bad, "no 400 for malformed messages with a readable envelope"
    assert fake_m2.proc.poll() is None


def test_disconnect_and_control_messages_never_answered(fake_m2):
    fake_m2.send(request(get_headers("/warmup")))
    assert fake_m2.replies()
    disconnect = SENDER + b' 7 @* 16:6:METHOD,4:JSON,}21:{"type":"disconnect"},'
    fake_m2.send(disconnect)
    fake_m2.send(SENDER + b' 7 @* 17:{"METHOD":"JSON"},21:{"type":"disconnect"},')
    fake_m2.send(request(get_headers("/next"), conn_id=b"8"))
    replies = fake_m2.replies()
    assert [ids for ids, _ in replies] == [b"1:8,"]


def test_websocket_refused_cleanly(fake_m2):
    fake_m2.send(request(get_headers("/ws", METHOD="WEBSOCKET_HANDSHAKE"), conn_id=b"9"))
    replies = fake_m2.replies()
    assert replies[0][1].startswith(b"HTTP/1.1 501")
    assert replies[-1] == (b"1:9,", b"")


@pytest.mark.parametrize("done,start,status", [
    ("/../../etc/passwd", "/../../etc/passwd", b"400"),
    ("/etc/passwd", "/etc/passwd", b"400"),          # absolute, but inside the chroot: missing
    ("/tmp/upload.a", "/tmp/upload.b", b"400"),       # start/done differ
    ("/link", "/link", b"400"),                      # a symlink leading out
])
def test_hostile_upload_paths(fake_m2, tmp_path, done, start, status):
    outside = tmp_path.parent / ("outside-%s" % os.getpid())
    outside.write_bytes(b"secret")
    link = tmp_path / "link"
    if not link.exists():
        link.symlink_to(outside)
    headers = get_headers("/sha256", METHOD="POST", **{
        "x-mongrel2-upload-start": start, "x-mongrel2-upload-done": done,
        "content-length": "6"})
    fake_m2.send(request(headers, conn_id=b"5"))
    replies = fake_m2.replies()
    assert replies[0][1].startswith(b"HTTP/1.1 " + status), replies
    assert replies[-1] == (b"1:5,", b"")
    assert outside.read_bytes() == b"secret"
    outside.unlink()


def test_upload_inside_chroot_served_and_removed(fake_m2, tmp_path):
    (tmp_path / "tmp").mkdir()
    upload = tmp_path / "tmp" / "upload.XYZ123"
    upload.write_bytes(b"hello upload")
    headers = get_headers("/sha256", METHOD="POST", **{
        "x-mongrel2-upload-start": "/tmp/upload.XYZ123", "x-mongrel2-upload-done": "/tmp/upload.XYZ123",
        "content-length": "12"})
    fake_m2.send(request(headers, conn_id=b"6"))
    replies = fake_m2.replies()
    assert replies[0][1].startswith(b"HTTP/1.1 200")
    assert b'"size": 12' in replies[0][1]
    wait_for(lambda: not upload.exists(), 5, what="the upload's removal after the reply")


def test_internal_error_closes_the_connection(tmp_path):
    """A bug of wsgid's own (simulated: handle_request raises) is logged and
    the client's connection closed, not left hanging."""
    from wsgid import message
    from wsgid.replies import Replies
    from wsgid.request_handler import RequestHandler
    from wsgid.sources import Source

    class Buggy(RequestHandler):
        def handle_request(self, request):
            raise RuntimeError("a wsgid bug")

    source = Source()
    replies = Replies([Pub()], source)
    replies.subscribed = [True]
    Buggy(lambda environ, start_response: [], replies, source).dispatch(
        message.parse(request(get_headers("/x"), conn_id=b"77")))
    assert replies.pub.sent == [SENDER + b" 2:77, "]
