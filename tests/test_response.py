"""wsgid.response: start_response, HTTP framing and streaming of one response."""

import sys

import pytest

from tests.support import wire
import wsgid
from wsgid.outbox import Outbox
from wsgid.response import FLUSH_BYTES, Response, error_reply

VERSION = wsgid.__version__


class Sender:
    """The worker's side of a response: each send recorded in ``calls`` as
    (data, hold, limit), and put in an outbox (its watchdog not started)
    whose messages :meth:`messages` flushes and returns."""

    def __init__(self):
        self.calls = []
        self.box = Outbox(wire.Pub())

    def __call__(self, data, hold=False, limit=0):
        self.calls.append((data, hold, limit))
        self.box.put(b"", data, hold, limit)

    def messages(self):
        self.box.flush()
        return self.box.sock.sent


def make(version="HTTP/1.1", method="GET", connection=None, hold_whole=False):
    send = Sender()
    return Response(send, version, method, connection, hold_whole=hold_whole), send


def run(app, version="HTTP/1.1", method="GET", connection=None):
    """Drive ``app`` the way the worker does; return (response, the messages
    sent once the outbox is flushed)."""
    resp, send = make(version, method, connection)
    result = app({}, resp.start_response)
    try:
        try:
            resp.one_block = len(result) == 1 and not resp.written
        except TypeError:
            pass
        for chunk in result:
            resp.write(chunk)
        resp.finish()
    finally:
        if hasattr(result, "close"):
            result.close()
    return resp, send.messages()


def simple_app(body_chunks, status="200 OK", headers=(("Content-Type", "text/plain"),)):
    def app(environ, start_response):
        start_response(status, list(headers))
        return list(body_chunks)
    return app


# -- small bodies ---------------------------------------------------------------------

def test_small_body_one_message_with_content_length():
    resp, sent = run(simple_app([b"hello"]))
    assert len(sent) == 1
    assert sent[0] == (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                       b"X-Wsgid: " + VERSION.encode() + b"\r\n\r\nhello")
    assert resp.closes_connection is False


def test_several_small_chunks_joined_in_one_chunked_message():
    """The length of several blocks is not known at the first: the body is
    chunked, and the pieces, held together, leave as one message."""
    chunks = [b"a" * 100, b"b" * 1000, b"", b"c" * 10000]
    resp, sent = run(simple_app(chunks))
    assert len(sent) == 1
    r = wire.parse_response(sent)
    assert r.status == 200
    assert r.get_all("Transfer-Encoding") == ["chunked"]
    assert "Content-Length" not in r
    assert "Connection" not in r
    assert r.body == b"".join(chunks)
    assert resp.closes_connection is False


def test_one_block_iterable_measured_even_if_not_a_list():
    class OneBlock:
        def __len__(self):
            return 1

        def __iter__(self):
            yield b"measured"

    def app(environ, start_response):
        start_response("200 OK", [])
        return OneBlock()
    resp, sent = run(app)
    assert len(sent) == 1
    r = wire.parse_response(sent)
    assert r.get_all("Content-Length") == ["8"] and "Transfer-Encoding" not in r
    assert r.body == b"measured"


def test_empty_body_gets_content_length_zero():
    resp, sent = run(simple_app([]))
    assert len(sent) == 1
    r = wire.parse_response(sent)
    assert r.get_all("Content-Length") == ["0"]
    assert r.raw_body == b""
    assert resp.closes_connection is False


def test_write_callable_and_iterable_both_count():
    """A one-block iterable after write(): two blocks, so no length measured."""
    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"via write;")
        return [b"via iterable"]
    resp, sent = run(app)
    assert len(sent) == 1
    r = wire.parse_response(sent)
    assert r.body == b"via write;via iterable"
    assert r.get_all("Transfer-Encoding") == ["chunked"]


def test_status_line_and_app_headers_kept_in_order():
    hdrs = [("Content-Type", "text/html; charset=utf-8"), ("Set-Cookie", "a=1"),
            ("X-Custom", "x"), ("Set-Cookie", "b=2")]
    resp, sent = run(simple_app([b"<p>"], status="404 Not Found", headers=hdrs))
    r = wire.parse_response(sent)
    assert r.status_line == "HTTP/1.1 404 Not Found"
    assert r.headers[:4] == hdrs
    assert r.get_all("Set-Cookie") == ["a=1", "b=2"]


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_status_line_version_follows_request(version):
    resp, sent = run(simple_app([b"x"]), version=version, connection="keep-alive")
    assert sent[0].startswith(version.encode() + b" 200 OK\r\n")


# -- Content-Length given by the app ---------------------------------------------------

@pytest.mark.parametrize("name", ["Content-Length", "content-length", "CONTENT-LENGTH"])
def test_app_content_length_not_duplicated(name):
    resp, sent = run(simple_app([b"hello"], headers=[(name, "5")]))
    assert len(sent) == 1
    r = wire.parse_response(sent)
    assert r.get_all("Content-Length") == ["5"]
    assert r.body == b"hello"
    assert resp.closes_connection is False


def test_bytes_beyond_app_content_length_not_sent():
    resp, sent = run(simple_app([b"hel", b"lo wor", b"ld", b"!!!"],
                                headers=[("Content-Length", "5")]))
    raw = b"".join(sent)
    assert raw.endswith(b"\r\n\r\nhello")
    r = wire.parse_response(sent)
    assert r.raw_body == b"hello"
    assert r.get_all("Content-Length") == ["5"]
    assert resp.closes_connection is False


def test_fewer_bytes_than_app_content_length_closes():
    resp, sent = run(simple_app([b"hello"], headers=[("Content-Length", "10")]))
    r = wire.parse_response(sent)
    assert r.get_all("Content-Length") == ["10"]
    assert r.raw_body == b"hello"
    assert resp.closes_connection is True


def test_large_body_with_app_content_length_is_not_chunked():
    piece = bytes(range(256)) * 256       # 64 KiB
    chunks = [piece] * 40                 # 2.5 MiB
    total = len(piece) * len(chunks)
    resp, sent = run(simple_app(chunks, headers=[("Content-Length", str(total))]))
    r = wire.parse_response(sent)
    assert "Transfer-Encoding" not in r
    assert r.get_all("Content-Length") == [str(total)]
    assert r.raw_body == b"".join(chunks)
    assert 2 <= len(sent) <= total // FLUSH_BYTES + 1
    assert resp.closes_connection is False


# -- streamed bodies --------------------------------------------------------------------

def test_large_streamed_body_is_chunked_in_few_messages():
    piece = bytes(range(256)) * 256       # 64 KiB
    chunks = [piece] * 48 + [b"tail" * 1000]
    body = b"".join(chunks)
    assert len(body) > 3 * FLUSH_BYTES
    resp, sent = run(simple_app(chunks))
    r = wire.parse_response(sent)
    assert r.status == 200
    assert r.get_all("Transfer-Encoding") == ["chunked"]
    assert "Content-Length" not in r
    assert r.body == body
    assert b"".join(sent).endswith(b"\r\n0\r\n\r\n")
    # coalesced: about one message per FLUSH_BYTES, far under mongrel2's 16
    assert 2 <= len(sent) <= len(body) // FLUSH_BYTES + 2
    # bounded memory: no message much bigger than FLUSH_BYTES
    assert max(map(len, sent)) < FLUSH_BYTES + len(piece) + 1024
    # every message after the first holds whole chunks; the last one ends the stream
    assert sent[-1].endswith(b"0\r\n\r\n")
    for data in sent[1:-1]:
        decoded, rest = wire.decode_chunked(data + b"0\r\n\r\n")
        assert decoded and rest == b""
    decoded, rest = wire.decode_chunked(sent[-1])
    assert rest == b""
    assert resp.closes_connection is False


def test_chunked_terminator_sent_exactly_once():
    chunks = [b"x" * (FLUSH_BYTES + 1), b"y" * 10]
    resp, sent = run(simple_app(chunks))
    raw = b"".join(sent)
    assert raw.count(b"\r\n0\r\n\r\n") == 1
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == (b"%x\r\n" % (FLUSH_BYTES + 1) + b"x" * (FLUSH_BYTES + 1) + b"\r\n"
                    + b"a\r\n" + b"y" * 10 + b"\r\n0\r\n\r\n")


def test_empty_writes_after_headers_do_not_end_the_chunked_stream():
    resp, send = make()
    write = resp.start_response("200 OK", [])
    write(b"z" * FLUSH_BYTES)
    assert len(send.calls) == 1
    write(b"")
    assert len(send.calls) == 1
    write(b"more")
    resp.finish()
    r = wire.parse_response(send.messages())
    assert r.body == b"z" * FLUSH_BYTES + b"more"


def test_http10_unknown_length_is_close_delimited():
    chunks = [b"q" * 65536] * 20          # 1.25 MiB: the head leaves before the end is known
    resp, sent = run(simple_app(chunks), version="HTTP/1.0")
    r = wire.parse_response(sent)
    assert r.status_line == "HTTP/1.0 200 OK"
    assert "Content-Length" not in r
    assert "Transfer-Encoding" not in r
    assert r.get_all("Connection") == ["close"]
    assert r.raw_body == b"".join(chunks)
    assert resp.closes_connection is True


def test_http10_small_body_without_keep_alive_closes():
    resp, sent = run(simple_app([b"hi"]), version="HTTP/1.0")
    r = wire.parse_response(sent)
    assert r.get_all("Content-Length") == ["2"]
    assert r.get_all("Connection") == ["close"]
    assert r.body == b"hi"
    assert resp.closes_connection is True


@pytest.mark.parametrize("connection", ["keep-alive", "Keep-Alive"])
def test_http10_keep_alive_with_known_length_stays_open(connection):
    resp, sent = run(simple_app([b"hello"]), version="HTTP/1.0", connection=connection)
    assert len(sent) == 1
    r = wire.parse_response(sent)
    assert r.get_all("Connection") == ["keep-alive"]
    assert r.get_all("Content-Length") == ["5"]
    assert r.body == b"hello"
    assert resp.closes_connection is False


def test_http10_keep_alive_with_app_content_length_and_large_body():
    chunks = [b"k" * 65536] * 20
    total = 65536 * 20
    resp, sent = run(simple_app(chunks, headers=[("Content-Length", str(total))]),
                     version="HTTP/1.0", connection="keep-alive")
    r = wire.parse_response(sent)
    assert r.get_all("Connection") == ["keep-alive"]
    assert r.get_all("Content-Length") == [str(total)]
    assert r.raw_body == b"".join(chunks)
    assert resp.closes_connection is False


def test_http10_keep_alive_but_unknown_length_closes():
    chunks = [b"u" * 65536] * 20
    resp, sent = run(simple_app(chunks), version="HTTP/1.0", connection="keep-alive")
    r = wire.parse_response(sent)
    assert r.get_all("Connection") == ["close"]
    assert "Content-Length" not in r and "Transfer-Encoding" not in r
    assert r.raw_body == b"".join(chunks)
    assert resp.closes_connection is True


@pytest.mark.parametrize("connection", ["close", "Close", "CLOSE"])
def test_connection_close_request_header(connection):
    resp, sent = run(simple_app([b"bye"]), connection=connection)
    assert len(sent) == 1
    r = wire.parse_response(sent)
    assert r.get_all("Connection") == ["close"]
    assert r.get_all("Content-Length") == ["3"]
    assert r.body == b"bye"
    assert resp.closes_connection is True


def test_connection_close_request_with_chunked_body():
    chunks = [b"c" * 65536] * 20
    resp, sent = run(simple_app(chunks), connection="close")
    r = wire.parse_response(sent)
    assert r.get_all("Connection") == ["close"]
    assert r.get_all("Transfer-Encoding") == ["chunked"]
    assert r.body == b"".join(chunks)
    assert resp.closes_connection is True


def test_app_connection_close_header():
    resp, sent = run(simple_app([b"x"], headers=[("Connection", "close")]))
    r = wire.parse_response(sent)
    assert r.get_all("Connection") == ["close"]
    assert resp.closes_connection is True


def test_app_connection_keep_alive_header_is_not_echoed_twice():
    resp, sent = run(simple_app([b"x"], headers=[("Connection", "keep-alive")]))
    r = wire.parse_response(sent)
    assert len(r.get_all("Connection")) <= 1
    assert "close" not in [v.lower() for v in r.get_all("Connection")]
    assert resp.closes_connection is False


def test_app_transfer_encoding_header_is_replaced_by_ours():
    resp, sent = run(simple_app([b"x" * (FLUSH_BYTES + 5), b"y"],
                                headers=[("Transfer-Encoding", "chunked")]))
    r = wire.parse_response(sent)
    assert r.get_all("Transfer-Encoding") == ["chunked"]
    assert r.body == b"x" * (FLUSH_BYTES + 5) + b"y"


# -- HEAD, 204, 304 -------------------------------------------------------------------------

def test_head_sends_no_body_but_computed_content_length():
    resp, sent = run(simple_app([b"0123456789", b"abc"]), method="HEAD")
    assert len(sent) == 1
    assert sent[0].endswith(b"\r\n\r\n")
    r = wire.parse_response(sent, head=True)
    assert r.get_all("Content-Length") == ["13"]
    assert r.raw_body == b""
    assert resp.closes_connection is False


def test_head_with_large_body_still_one_message_no_body():
    chunks = [b"h" * 65536] * 40
    resp, sent = run(simple_app(chunks), method="HEAD")
    assert len(sent) == 1
    r = wire.parse_response(sent, head=True)
    assert r.get_all("Content-Length") == [str(65536 * 40)]
    assert "Transfer-Encoding" not in r
    assert r.raw_body == b""
    assert resp.closes_connection is False


def test_head_with_app_content_length_and_no_body():
    resp, sent = run(simple_app([], headers=[("Content-Length", "1234")]), method="HEAD")
    r = wire.parse_response(sent, head=True)
    assert r.get_all("Content-Length") == ["1234"]
    assert r.raw_body == b""
    assert resp.closes_connection is False


def test_head_sends_the_head_once_the_body_is_known():
    resp, send = make(method="HEAD")
    write = resp.start_response("200 OK", [])
    for _ in range(5):
        write(b"abc")
    assert send.calls == []
    resp.finish()
    r = wire.parse_response(send.messages(), head=True)
    assert r.get("Content-Length") == "15"
    assert r.raw_body == b""


@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
@pytest.mark.parametrize("body", [[], [b"should not be sent"]])
def test_no_body_status(status, body):
    resp, sent = run(simple_app(body, status=status, headers=[("ETag", '"x"')]))
    assert len(sent) == 1
    assert sent[0].endswith(b"\r\n\r\n")
    r = wire.parse_response(sent)
    assert r.status_line == "HTTP/1.1 " + status
    assert r.raw_body == b""
    assert "Content-Length" not in r
    assert "Transfer-Encoding" not in r
    assert r.get("ETag") == '"x"'
    assert resp.closes_connection is False


def test_no_body_status_with_large_body_sends_nothing_of_it():
    resp, sent = run(simple_app([b"n" * (FLUSH_BYTES + 10)], status="204 No Content"))
    raw = b"".join(sent)
    assert raw.endswith(b"\r\n\r\n")
    assert b"n" not in raw.partition(b"\r\n\r\n")[2]
    assert b"nnn" not in raw
    assert resp.closes_connection is False


def test_304_with_app_content_length_keeps_connection():
    resp, sent = run(simple_app([], status="304 Not Modified",
                                headers=[("Content-Length", "100")]))
    r = wire.parse_response(sent)
    assert "Content-Length" not in r
    assert r.raw_body == b""
    assert resp.closes_connection is False


# -- X-Wsgid ----------------------------------------------------------------------------------

@pytest.mark.parametrize("app_headers", [
    [],
    [("X-Wsgid", "fake")],
    [("x-wsgid", "fake"), ("X-WSGID", "fake2")],
])
def test_x_wsgid_header_present_once(app_headers):
    resp, sent = run(simple_app([b"x"], headers=app_headers))
    r = wire.parse_response(sent)
    assert r.get_all("X-Wsgid") == [VERSION]
    assert b"fake" not in sent[0]


def test_x_wsgid_on_chunked_and_head_responses():
    for kwargs in ({}, {"method": "HEAD"}, {"version": "HTTP/1.0"}):
        resp, sent = run(simple_app([b"x" * (FLUSH_BYTES + 1), b"y"]), **kwargs)
        r = wire.parse_response(sent, head=kwargs.get("method") == "HEAD")
        assert r.get_all("X-Wsgid") == [VERSION], kwargs


# -- start_response rules -----------------------------------------------------------------

def test_start_response_twice_without_exc_info_raises():
    resp, send = make()
    resp.start_response("200 OK", [])
    with pytest.raises(AssertionError):
        resp.start_response("500 Internal Server Error", [])
    assert send.calls == []


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_start_response_with_exc_info_before_headers_sent_replaces_response(method):
    resp, send = make(method=method)
    write = resp.start_response("200 OK", [("X-First", "1")])
    if method == "HEAD":
        write(b"a body HEAD does not send: the head waits for its length")
    assert send.calls == []
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        write = resp.start_response("500 Internal Server Error",
                                    [("Content-Type", "text/plain")], sys.exc_info())
    write(b"error page")
    resp.finish()
    sent = send.messages()
    assert len(sent) == 1
    r = wire.parse_response(sent, head=method == "HEAD")
    assert r.status == 500
    assert "X-First" not in r
    if method == "HEAD":
        assert r.get("Content-Length") == "10" and r.raw_body == b""
    else:
        assert r.body == b"error page"


def test_start_response_with_exc_info_after_headers_sent_reraises():
    resp, send = make()
    write = resp.start_response("200 OK", [])
    write(b"x")  # sent at once: the head is out
    sent = send.messages()
    assert resp.headers_sent and len(sent) == 1
    error = ValueError("late failure")
    try:
        raise error
    except ValueError:
        info = sys.exc_info()
    with pytest.raises(ValueError) as raised:
        resp.start_response("500 Internal Server Error", [], info)
    assert raised.value is error
    assert raised.value.__traceback__ is not None
    assert len(sent) == 1                 # nothing more sent
    assert resp.status == "200 OK"


def test_write_before_start_response_raises():
    resp, send = make()
    with pytest.raises(AssertionError):
        resp.write(b"x")
    assert send.calls == []


def test_finish_without_start_response_raises():
    resp, send = make()
    with pytest.raises(AssertionError):
        resp.finish()
    assert send.calls == []


@pytest.mark.parametrize("status", ["OK", "", "20 OK", "abc Nope", None, 200])
def test_bad_status_raises(status):
    resp, send = make()
    with pytest.raises(ValueError):
        resp.start_response(status, [])
    assert send.calls == []


# -- no block waits for the next (PEP 3333) -------------------------------------------

def test_each_block_is_handed_over_as_it_comes_the_head_with_the_first():
    """Nothing stays in the response: each write passes its piece on, to be
    held (the outbox's watchdog bounds how long) and joined with its
    neighbours in messages of up to max_message bytes."""
    resp, send = make()
    write = resp.start_response("200 OK", [("Content-Type", "text/event-stream")])
    write(b"data: 1\n\n")
    assert len(send.calls) == 1
    data, hold, limit = send.calls[0]
    assert hold is True and limit == FLUSH_BYTES
    r = wire.parse_response(data + b"0\r\n\r\n")
    assert r.get_all("Transfer-Encoding") == ["chunked"]
    assert r.get("Content-Type") == "text/event-stream"
    assert r.body == b"data: 1\n\n"
    write(b"data: 2\n\n")
    assert send.calls[1] == (b"9\r\ndata: 2\n\n\r\n", True, FLUSH_BYTES)
    resp.finish()
    assert send.calls[2] == (b"0\r\n\r\n", True, FLUSH_BYTES)
    sent = send.messages()
    assert len(sent) == 1  # held together, they leave as one message
    assert wire.parse_response(sent).body == b"data: 1\n\ndata: 2\n\n"


def test_http10_stream_is_handed_over_close_delimited():
    resp, send = make(version="HTTP/1.0")
    write = resp.start_response("200 OK", [])
    write(b"one")
    write(b"two")
    assert [call[0].rpartition(b"\r\n\r\n")[2] for call in send.calls] == [b"one", b"two"]
    resp.finish()
    assert len(send.calls) == 2  # nothing ends a close-delimited body but the close
    r = wire.parse_response(send.messages())
    assert r.raw_body == b"onetwo"
    assert r.get_all("Connection") == ["close"] and "Content-Length" not in r
    assert resp.closes_connection is True


def test_first_block_completing_the_app_content_length_goes_whole():
    resp, send = make(hold_whole=True)
    write = resp.start_response("200 OK", [("Content-Length", "5")])
    write(b"hello")
    assert len(send.calls) == 1 and send.calls[0][1:] == (True, 0)
    assert send.calls[0][0].endswith(b"Content-Length: 5\r\nX-Wsgid: %s\r\n\r\nhello"
                                     % VERSION.encode())
    resp.finish()
    assert len(send.calls) == 1 and resp.closes_connection is False


def test_app_content_length_body_in_blocks_streams_with_that_length():
    resp, send = make()
    write = resp.start_response("200 OK", [("Content-Length", "10")])
    write(b"hello")
    assert len(send.calls) == 1 and send.calls[0][1:] == (True, FLUSH_BYTES)
    write(b"world")
    assert send.calls[1] == (b"world", True, FLUSH_BYTES)
    resp.finish()
    sent = send.messages()
    assert len(sent) == 1
    r = wire.parse_response(sent)
    assert r.get_all("Content-Length") == ["10"] and r.raw_body == b"helloworld"


def test_pieces_join_up_to_max_message():
    """With flow control a message holds at most max_message bytes: bigger
    blocks are cut, small ones joined up to it."""
    sender = Sender()
    resp = Response(sender, "HTTP/1.1", "GET", None, max_message=4096)
    write = resp.start_response("200 OK", [])
    write(b"a" * 10000)
    assert [len(data) for data, _, _ in sender.calls[1:]] == [8 + 4096, 7 + 1808]
    for _ in range(10):
        write(b"b" * 1000)
    resp.finish()
    sent = sender.messages()
    assert all(len(message) <= 4096 + 200 for message in sent)
    assert 5 <= len(sent) <= 8
    assert wire.parse_response(sent).body == b"a" * 10000 + b"b" * 10000


def test_one_message_reply_may_be_held_when_the_worker_says_so():
    """With hold_whole, the worker is told it may hold a whole reply a moment
    (see wsgid.outbox); without, it goes at once."""
    for hold_whole in (True, False):
        resp, send = make(hold_whole=hold_whole)
        resp.start_response("200 OK", [])
        resp.one_block = True
        resp.write(b"small")
        resp.finish()
        assert len(send.calls) == 1 and send.calls[0][0].endswith(b"\r\n\r\nsmall")
        assert send.calls[0][1:] == (hold_whole, 0)


# -- header values -------------------------------------------------------------------------

@pytest.mark.parametrize("value,sent", [
    (" sessionid=abc; Path=/", "sessionid=abc; Path=/"),
    ("\tv\t \t", "v"),
    ("in  side", "in  side"),
    ("   ", ""),
])
def test_header_values_stripped_of_spaces_and_tabs(value, sent):
    resp, raw = run(simple_app([b"x"], headers=[("Set-Cookie", value)]))
    assert b"\r\nSet-Cookie: %s\r\n" % sent.encode() in raw[0]
    assert wire.parse_response(raw).get_all("Set-Cookie") == [sent]


# -- error_reply -----------------------------------------------------------------------------------

def test_error_reply_format():
    assert error_reply("400 Bad Request") == (
        b"HTTP/1.1 400 Bad Request\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Length: 16\r\n"
        b"Connection: close\r\n"
        b"X-Wsgid: " + VERSION.encode() + b"\r\n"
        b"\r\n"
        b"400 Bad Request\n")


def test_error_reply_http10_and_custom_body():
    raw = error_reply("500 Internal Server Error", "HTTP/1.0", b"trace\nback")
    r = wire.parse_response(raw)
    assert r.status_line == "HTTP/1.0 500 Internal Server Error"
    assert r.get_all("Content-Length") == ["10"]
    assert r.get_all("Connection") == ["close"]
    assert r.get_all("X-Wsgid") == [VERSION]
    assert r.body == b"trace\nback"


@pytest.mark.parametrize("version", [None, "HTTP/1.1", "HTTP/2"])
def test_error_reply_defaults_to_http11(version):
    assert error_reply("501 Not Implemented", version).startswith(b"HTTP/1.1 501 Not Implemented\r\n")


@pytest.mark.parametrize("name,value", [("X-A", "v\r\nSet-Cookie: evil=1"), ("X-B\n", "v"),
                                        ("X-C", "a\0b")])
def test_header_injection_refused(name, value):
    from wsgid.response import Response
    response = Response(lambda data: None, "HTTP/1.1", "GET", None)
    with pytest.raises(ValueError):
        response.start_response("200 OK", [(name, value)])


def test_repeated_connection_header_with_close():
    from wsgid.response import Response
    response = Response(lambda data: None, "HTTP/1.1", "GET", ["keep-alive", "close"])
    assert response.closes_connection


# -- the ends a caller gives a response -------------------------------------------------

def test_abort_before_the_head_gives_the_error_reply_in_its_place():
    resp, send = make("HTTP/1.0")
    resp.start_response("200 OK", [])
    assert resp.abort("500 Internal Server Error", b"detail") == error_reply(
        "500 Internal Server Error", "HTTP/1.0", b"detail")
    assert resp.status == "500 Internal Server Error" and resp.closes_connection is True
    assert send.calls == []  # the caller sends it


def test_abort_after_the_head_only_closes():
    resp, send = make()
    resp.start_response("200 OK", [])
    resp.write(b"part")  # streamed: the head has gone
    assert resp.abort("500 Internal Server Error") is None
    assert resp.status == "200 OK" and resp.closes_connection is True


def test_client_gone_wants_no_close():
    resp, _ = make(connection="close")
    resp.start_response("200 OK", [])
    resp.client_gone()
    assert resp.closes_connection is False  # mongrel2 has closed it already


def test_force_close_says_so_in_the_head():
    resp, send = make()
    resp.start_response("200 OK", [("Content-Length", "2")])
    resp.force_close()
    resp.write(b"ok")
    r = wire.parse_response(send.messages())
    assert r.get_all("Connection") == ["close"] and resp.closes_connection is True


def test_finish_without_body_sends_the_head_of_the_length_announced():
    """A HEAD of known length: the body counted as written (the access log's
    size), no close for bytes that never come."""
    resp, send = make(method="HEAD")
    resp.start_response("200 OK", [("Content-Length", "1000")])
    resp.finish_without_body()
    r = wire.parse_response(send.messages(), head=True)
    assert r.get_all("Content-Length") == ["1000"] and r.raw_body == b""
    assert (resp.written, resp.closes_connection) == (1000, False)


def test_finish_without_body_of_a_length_found_later():
    """A file mongrel2 sends itself: its size is the body's length."""
    resp, send = make()
    resp.start_response("200 OK", [])
    resp.force_close()
    resp.finish_without_body(10)
    sent = send.messages()
    assert len(sent) == 1
    r = wire.parse_response(sent, head=True)
    assert r.get_all("Content-Length") == ["10"] and r.get_all("Connection") == ["close"]
    assert (resp.written, resp.length) == (10, 10)
