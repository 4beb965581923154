"""wsgid.wsevents and wsgid.websocket, without sockets: mongrel2's messages
in, handler calls and reply frames out (fake replies, real shared memory)."""

import json

import pytest

from wsgid import message, websocket, wsframes
from wsgid.wsevents import Events
from wsgid.wsshared import Shared

SENDER = b"34f9ceee-cd52-4b7f-b197-88bf2f0ec378"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def msg(conn_id, method, body=b"", path="/ws", **headers):
    fields = {"PATH": path, "METHOD": method, "VERSION": "HTTP/1.1", "QUERY": "a=1",
              "REMOTE_ADDR": "10.0.0.1", "host": "localhost", "sec-websocket-key": KEY,
              "sec-websocket-version": "13", "cookie": "sessionid=x"}
    fields.update(headers)
    head = json.dumps(fields).encode()
    return message.parse(b"%s %d %s %d:%s,%d:%s," % (SENDER, conn_id, path.encode(), len(head),
                                                     head, len(body), body))


def handshake(conn_id, **headers):
    return msg(conn_id, "WEBSOCKET_HANDSHAKE", wsframes.accept(KEY).encode(), **headers)


def frame(conn_id, flags, body):
    return msg(conn_id, "WEBSOCKET", body, FLAGS=flags)


class FakeOutbox:
    def __init__(self):
        self.put_ = []

    def put(self, envelope, body, hold=False, limit=0):
        self.put_.append(envelope + body)


class FakeReplies:
    """What wsevents and websocket use of wsgid.replies.Replies."""

    def __init__(self):
        self.sent = []  # (conn_id, body) through sender()
        self.subscribed = [1]
        self.outboxes = [FakeOutbox()]
        self.gone = set()

    def sender(self, sender, conn_id):
        def send(body, hold=False, limit=0):
            self.sent.append((int(conn_id), body))
        return send

    def count_subscriptions(self):
        return 1

    def await_subscriber(self, front):
        pass


class Recorder:
    def __init__(self, open_result=None):
        self.calls = []
        self.open_result = open_result

    def open(self, conn, environ):
        self.calls.append(("open", conn, environ))
        if isinstance(self.open_result, Exception):
            raise self.open_result
        return self.open_result

    def message(self, conn, data):
        self.calls.append(("message", conn, data))
        if data == "boom":
            raise RuntimeError("boom")

    def close(self, conn, code):
        self.calls.append(("close", conn, code))


@pytest.fixture
def rig():
    def make(handler=None, max_message=0):
        handler = handler or Recorder()
        replies, shared = FakeReplies(), Shared(1)
        events = Events(handler, replies, shared, max_message)
        return events, handler, replies
    return make


def calls(handler, kind):
    return [call[1:] for call in handler.calls if call[0] == kind]


def test_handshake_accepted_with_environ(rig):
    events, handler, replies = rig()
    assert events.handle(handshake(7), 0) == "101 Switching Protocols"
    (conn, environ), = calls(handler, "open")
    assert isinstance(conn, websocket.Connection) and conn.conn_id == 7 and conn.front == 0
    assert environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"] == "/ws"
    assert environ["QUERY_STRING"] == "a=1" and environ["HTTP_COOKIE"] == "sessionid=x"
    assert environ["REMOTE_ADDR"] == "10.0.0.1" and "CONTENT_LENGTH" not in environ
    assert environ["wsgi.input"].read() == b""
    assert replies.sent == [(7, wsframes.handshake(KEY))]


def test_subprotocol_chosen(rig):
    events, _, replies = rig(Recorder("chat"))
    events.handle(handshake(7), 0)
    assert replies.sent == [(7, wsframes.handshake(KEY, "chat"))]


@pytest.mark.parametrize("result,status", [(websocket.Refuse(), 403), (websocket.Refuse(401), 401),
                                           (429, 429), (False, 403),
                                           (RuntimeError("bug"), 500)])
def test_handshake_refused_and_its_frames_dropped(rig, result, status):
    events, handler, replies = rig(Recorder(result))
    assert events.handle(handshake(7), 0).startswith("%d " % status)
    assert replies.sent[0][1].startswith(b"HTTP/1.1 %d " % status)
    assert replies.sent[1] == (7, message.CLOSE)
    events.handle(frame(7, "0x81", b"sneaked in"), 0)
    assert calls(handler, "message") == [] and calls(handler, "close") == []
    assert replies.sent[2:] == [(7, wsframes.close_frame(1011, "not open")), (7, message.CLOSE)]


def test_other_version_gets_426(rig):
    events, handler, replies = rig()
    assert events.handle(handshake(7, **{"sec-websocket-version": "8"}), 0).startswith("426")
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in replies.sent[0][1]
    assert calls(handler, "open") == []


def test_text_and_binary_messages(rig):
    events, handler, _ = rig()
    events.handle(handshake(7), 0)
    assert events.handle(frame(7, "0x81", "é".encode()), 0) == ""
    events.handle(frame(7, "0x82", b"\xff"), 0)
    assert [data for _, data in calls(handler, "message")] == ["é", b"\xff"]


@pytest.mark.parametrize("flags,body,code", [("0x81", b"\xc3", 1007), ("0x82", b"x" * 101, 1009),
                                             ("0x83", b"", 1002), ("0xC1", b"a", 1002),
                                             ("0x88", b"\x03", 1002), ("0x81", b"boom", 1011)])
def test_failures_close_with_their_code_once(rig, flags, body, code):
    events, handler, replies = rig(max_message=100)
    events.handle(handshake(7), 0)
    conn = calls(handler, "open")[0][0]
    events.handle(frame(7, flags, body), 0)
    closing = replies.sent[-2][1]
    assert closing[0] == 0x88 and closing[2:4] == code.to_bytes(2, "big")
    assert replies.sent[-1] == (7, message.CLOSE)
    events.disconnected(0, b"7")  # had mongrel2 told of it too: told once
    assert calls(handler, "close") == [(conn, code)]


def test_ping_answered_by_wsgid(rig):
    events, handler, replies = rig()
    events.handle(handshake(7), 0)
    events.handle(frame(7, "0x89", b"p"), 0)
    events.handle(frame(7, "0x8A", b"unasked pong"), 0)
    assert replies.sent[-1] == (7, wsframes.frame(wsframes.PONG, b"p"))
    assert calls(handler, "message") == []


def test_client_close_echoed_and_reported(rig):
    events, handler, replies = rig()
    events.handle(handshake(7), 0)
    events.handle(frame(7, "0x88", b"\x0f\xa1bye"), 0)
    assert replies.sent[-2:] == [(7, wsframes.close_frame(4001)), (7, message.CLOSE)]
    events.handle(frame(8, "0x88", b""), 0)  # never opened: not the handler's
    assert [code for _, code in calls(handler, "close")] == [4001]


def test_disconnect_notice_reported_once_and_http_ignored(rig):
    events, handler, _ = rig()
    events.handle(handshake(7), 0)
    events.disconnected(0, b"7")
    events.disconnected(0, b"7")
    events.disconnected(0, b"9")  # an HTTP connection
    assert [code for _, code in calls(handler, "close")] == [1006]


def _ids(reply):
    """The connection ids a reply message names."""
    size, rest = reply[len(SENDER) + 1:].split(b":", 1)
    return rest[:int(size)].split()


def test_send_packs_128_ids_a_message(rig):
    events, _, replies = rig()
    for conn_id in range(1, 301):
        events.handle(handshake(conn_id), 0)
    conns = [call[0] for call in calls(events.handler, "open")]
    websocket.send(conns, "hi")
    put = replies.outboxes[0].put_
    assert len(put) == 3
    ids = [_ids(m) for m in put]
    assert [len(i) for i in ids] == [128, 128, 44]
    assert sorted(int(i) for chunk in ids for i in chunk) == list(range(1, 301))
    assert all(m.startswith(SENDER + b" ") and m.endswith(wsframes.message("hi")) for m in put)
    websocket.send(str(conns[0]), b"one")  # a stored value
    assert put[-1].endswith(wsframes.message(b"one")) and b" 1:1, " in put[-1]


def test_server_close_reports_and_frames_the_close(rig):
    events, handler, replies = rig()
    events.handle(handshake(7), 0)
    conn = calls(handler, "open")[0][0]
    websocket.close(conn, 4002, "bye")
    put = replies.outboxes[0].put_
    assert put[-2].endswith(wsframes.close_frame(4002, "bye")) and put[-1].endswith(b", ")
    assert calls(handler, "close") == [(conn, 4002)]


def test_mongrel2_gone_drops_its_connections(rig):
    events, handler, replies = rig()
    events.handle(handshake(7), 0)
    old = calls(handler, "open")[0][0]
    events.front_gone(0)
    events.tick()
    assert calls(handler, "close") == [(old, 1006)]
    events.handle(handshake(7), 0)  # the new mongrel2's client of the same id
    new = calls(handler, "open")[1][0]
    assert new.conn_id == old.conn_id and new != old
    websocket.send([old], "for the old client")
    assert replies.outboxes[0].put_ == []
    websocket.send([new], "for the new one")
    assert len(replies.outboxes[0].put_) == 1


def test_connection_values():
    conn = websocket.Connection.make(1, 123456789, b"42")
    assert conn == "1:123456789:42" and websocket.Connection(str(conn)) == conn
    assert (conn.front, conn.generation, conn.conn_id) == (1, 123456789, 42)
    for bad in ("", "1:2", "1:2:3:4", "a:2:3", "1:-2:3", "1:2:3 ", "１:2:3"):
        with pytest.raises(ValueError):
            websocket.Connection(bad)
