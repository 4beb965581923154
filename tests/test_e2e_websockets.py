"""WebSockets end to end: a real mongrel2, wsgid with tests/apps/ws_app.py's
handler, and the ``websockets`` client library (a raw socket where that
library will not send what RFC 6455 forbids)."""

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import struct

import pytest
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.support.http import get
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import SEND_IDENT, wait_for
from tests.support.wsgid import make_app_folder

pytestmark = [requires_mongrel2, pytest.mark.e2e]

HANDLER = ["--wsgi-app", "ws_app:app", "--websocket-handler", "ws_app:handler"]
MAX_MESSAGE = (1 << 20) + (64 << 10)  # the default --websocket-max-message


@pytest.fixture
def served(m2_factory, wsgid_factory, tmp_path):
    """``start(workers=2, *extra, **m2_options)``: mongrel2 and wsgid with
    the test handler; returns (m2, wsgid, ws:// base URL)."""
    def start(*extra, workers=2, dispatch=None, **m2_options):
        m2 = m2_factory(**m2_options)
        app_path = make_app_folder(str(tmp_path), "ws_app.py")
        args = HANDLER + ["--workers", str(workers)] + list(extra)
        if dispatch:
            args += ["--dispatch", dispatch]
        w = wsgid_factory(m2, app_path, *args)
        w.wait_workers(workers)
        return m2, w, "ws://127.0.0.1:%d" % m2.http_port
    return start


def closes(m2):
    """What the handler's close was told: {conn: code}."""
    lines = get(m2.url, "/closes", timeout=5)[2].decode().split("\n")
    return {line.split()[0]: int(line.split()[1]) for line in lines if line}


def closed_code(ws, timeout=10):
    """The code of the close frame the server sent ``ws``, once it came."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=timeout)
    return info.value.rcvd.code if info.value.rcvd else None


def test_handshake_accepted_with_subprotocol_and_environ(served):
    m2, _, url = served()
    with connect(url + "/chat?protocol=1&x=%C3%A9", subprotocols=["chat", "superchat"],
                 additional_headers={"Cookie": "sessionid=abc"}, open_timeout=10) as ws:
        assert ws.subprotocol == "superchat"
        assert ws.response.headers["Sec-WebSocket-Accept"] == base64.b64encode(
            __import__("hashlib").sha1(ws.request.headers["Sec-WebSocket-Key"].encode()
                                       + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        ).decode()
        ws.send("cmd:environ")
        environ = json.loads(ws.recv(timeout=10))
    assert environ == {"REQUEST_METHOD": "GET", "PATH_INFO": "/chat",
                       "QUERY_STRING": "protocol=1&x=%C3%A9", "HTTP_COOKIE": "sessionid=abc",
                       "REMOTE_ADDR": "127.0.0.1"}


@pytest.mark.parametrize("path,status", [("/refuse", 403), ("/refuse-int", 401),
                                         ("/boom", 500)])
def test_handshake_refused_with_the_status(served, path, status):
    m2, _, url = served(workers=1)
    with pytest.raises(InvalidStatus) as info:
        connect(url + path, open_timeout=10)
    assert info.value.response.status_code == status
    with connect(url + "/after", open_timeout=10) as ws:  # the worker serves on
        ws.send("still")
        assert ws.recv(timeout=10) == "still"


def test_echo_text_and_binary_up_to_1mib(served):
    _, _, url = served()
    with connect(url + "/echo", max_size=None, open_timeout=10) as ws:
        for size in (0, 1, 125, 126, 65535, 65536, 1 << 20):
            text = "é" * (size // 2) + "x" * (size % 2)
            ws.send(text)
            assert ws.recv(timeout=20) == text
            data = os.urandom(size)
            ws.send(data)
            assert ws.recv(timeout=20) == data


def test_fragmented_message_arrives_whole(served):
    _, _, url = served()
    with connect(url + "/echo", open_timeout=10) as ws:
        ws.send(iter(["frag", "ment", "ed"]))
        assert ws.recv(timeout=10) == "fragmented"
        ws.send(iter([b"\x00", b"\x01"]))
        assert ws.recv(timeout=10) == b"\x00\x01"


def test_ping_answered_with_pong(served):
    _, _, url = served()
    with connect(url + "/echo", open_timeout=10) as ws:
        assert ws.ping(b"are you there").wait(10)
        ws.send("after")
        assert ws.recv(timeout=10) == "after"


def test_client_close_with_code(served):
    m2, _, url = served()
    with connect(url + "/echo", open_timeout=10) as ws:
        ws.send("cmd:whoami")
        conn = ws.recv(timeout=10)
        ws.close(4001, "done")
    assert ws.protocol.close_rcvd.code == 4001  # echoed: the close handshake completed
    wait_for(lambda: closes(m2).get(conn) == 4001, 10, what="close 4001 reported")


def test_server_close_with_code(served):
    m2, _, url = served()
    with connect(url + "/echo", open_timeout=10) as ws:
        ws.send("cmd:whoami")
        conn = ws.recv(timeout=10)
        ws.send("cmd:close:4002")
        assert closed_code(ws) == 4002
    assert closes(m2)[conn] == 4002


def test_invalid_utf8_text_closes_1007(served):
    m2, _, url = served()
    with connect(url + "/echo", open_timeout=10) as ws:
        ws.send("cmd:whoami")
        conn = ws.recv(timeout=10)
        ws.send(b"caf\xc3", text=True)  # cut inside a UTF-8 sequence
        assert closed_code(ws) == 1007
    wait_for(lambda: closes(m2).get(conn) == 1007, 10, what="close 1007 reported")


def test_oversize_message_closes_1009(served):
    _, _, url = served()
    with connect(url + "/echo", max_size=None, open_timeout=10) as ws:
        ws.send(b"x" * MAX_MESSAGE)
        assert len(ws.recv(timeout=20)) == MAX_MESSAGE  # the limit itself passes
        ws.send(b"x" * (MAX_MESSAGE + 1))
        assert closed_code(ws, timeout=20) == 1009


def _raw_socket(m2, path="/raw"):
    """A socket past its handshake, for frames the library will not send."""
    sock = socket.create_connection(("127.0.0.1", m2.http_port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def _masked(first_byte, payload):
    mask = os.urandom(4)
    return (bytes([first_byte, 0x80 | len(payload)]) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _read_close(sock):
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data[0] == 0x88, data
    return struct.unpack("!H", data[2:4])[0]


@pytest.mark.parametrize("first_byte", [0x83, 0x8B, 0xC1], ids=["opcode-3", "opcode-B", "rsv1"])
def test_reserved_opcode_or_bits_close_1002(served, first_byte):
    m2, _, _ = served()
    sock = _raw_socket(m2)
    with sock:
        sock.sendall(_masked(first_byte, b"hi"))
        assert _read_close(sock) == 1002


def test_client_gone_without_close_reported_1006(served):
    m2, _, _ = served()
    sock = _raw_socket(m2, "/vanish")
    with sock:
        sock.sendall(_masked(0x81, b"cmd:whoami"))
        head = sock.recv(2)
        conn = sock.recv(head[1]).decode()
    wait_for(lambda: closes(m2).get(conn) == 1006, 10, what="close 1006 reported")


def test_handler_error_closes_1011_and_worker_serves_on(served):
    _, w, url = served(workers=1)
    pid = w.workers()[0]
    with connect(url + "/echo", open_timeout=10) as ws:
        ws.send("cmd:boom")
        assert closed_code(ws) == 1011
    with connect(url + "/echo", open_timeout=10) as ws:
        ws.send("again")
        assert ws.recv(timeout=10) == "again"
    assert w.workers() == [pid]


def test_frames_of_a_connection_served_in_order(served):
    # In rounds of 12 frames: mongrel2 drops a connection with more than 16
    # messages queued for it.
    m2, _, url = served()
    with connect(url + "/echo", open_timeout=10) as ws:
        ws.send("cmd:whoami")
        conn_id = ws.recv(timeout=10).split(":")[2]
        for start in range(0, 600, 12):
            for i in range(start, start + 12):
                ws.send("cmd:seq:%d" % i)
            for _ in range(12):
                ws.recv(timeout=20)
    seen = [int(i) for i in get(m2.url, "/seq/" + conn_id, timeout=5)[2].split()]
    assert seen == list(range(600))


def with_sockets(url, count, body):
    """``await body(sockets)`` with ``count`` sockets open (closed after),
    its result."""
    async def run():
        sockets = []
        try:
            for i in range(count):
                sockets.append(await aconnect("%s/many/%d" % (url, i), open_timeout=20))
            return await body(sockets)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
    return asyncio.run(asyncio.wait_for(run(), 120))


def test_broadcast_to_300_sockets_reaches_each_once(served):
    m2, _, url = served()

    async def broadcast(sockets):
        await sockets[0].send("cmd:broadcast:hello")
        got = await asyncio.gather(*(ws.recv() for ws in sockets))
        status = get(m2.url, "/broadcast?end", timeout=10)[0]  # from a WSGI view
        return got, status, await asyncio.gather(*(ws.recv() for ws in sockets))
    got, status, after = with_sockets(url, 300, broadcast)
    assert got == ["hello"] * 300
    assert status == 200
    assert after == ["end"] * 300  # not a second hello


def test_worker_killed_while_handling_a_frame(served, tmp_path):
    m2, w, url = served()
    with contextlib.ExitStack() as stack:
        others = [stack.enter_context(connect(url + "/other/%d" % i, open_timeout=10))
                  for i in range(4)]
        conn = _kill_while_handling(w, url, str(tmp_path / "holding"))
        for i, ws in enumerate(others):
            ws.send("still %d" % i)
            assert ws.recv(timeout=20) == "still %d" % i
    wait_for(lambda: closes(m2).get(conn) == 1006, 10, what="the victim's close reported")


def _kill_while_handling(w, url, mark):
    """SIGKILL the worker handling a frame of a new socket: it must be
    closed with 1011; its connection."""
    with connect(url + "/victim", open_timeout=10) as victim:
        victim.send("cmd:whoami")
        conn = victim.recv(timeout=10)
        victim.send("cmd:hold:" + mark)
        wait_for(lambda: os.path.exists(mark) and os.path.getsize(mark), 10,
                 what="the frame in hand")
        with open(mark) as f:
            os.kill(int(f.read()), signal.SIGKILL)
        assert closed_code(victim) == 1011
    return conn


def test_reload_with_100_sockets_open_loses_none(served):
    m2, w, url = served()

    async def echo(sockets, text):
        for i, ws in enumerate(sockets):
            await ws.send("%s %d" % (text, i))
        return await asyncio.gather(*(ws.recv() for ws in sockets))

    async def reload(sockets):
        before_reload = await echo(sockets, "before reload")
        old = set(w.workers())
        os.kill(w.master, signal.SIGHUP)
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: w.wait_workers(2, exclude=old))
        return before_reload, await echo(sockets, "after reload")
    before, after = with_sockets(url, 100, reload)
    assert before == ["before reload %d" % i for i in range(100)]
    assert after == ["after reload %d" % i for i in range(100)]


def test_stored_connection_not_delivered_after_mongrel2_restart(served):
    # A fixed send_ident subscribed to every reply: mongrel2 itself cannot
    # tell the starts apart, wsgid must.
    m2, w, url = served(send_ident=SEND_IDENT)
    with connect(url + "/old", open_timeout=10) as old:
        old.send("cmd:whoami")
        stored = old.recv(timeout=10)
        old.send("cmd:send:%s before" % stored)
        assert old.recv(timeout=10) == "before"  # the stored value works meanwhile
        m2.stop()
        m2.start()
        with pytest.raises(ConnectionClosed):
            old.recv(timeout=10)
    with contextlib.ExitStack() as stack:
        for _ in range(50):  # until a client of the new mongrel2 has the old one's id
            new = stack.enter_context(connect(url + "/new", open_timeout=10))
            new.send("cmd:whoami")
            mine = new.recv(timeout=10)
            if mine.split(":")[2] == stored.split(":")[2]:
                break
        else:
            raise AssertionError("no new client got id %s" % stored)
        assert mine != stored  # another generation
        new.send("cmd:send:%s meant-for-the-old-client" % stored)
        new.send("cmd:send:%s marker" % mine)
        assert new.recv(timeout=10) == "marker"
    wait_for(lambda: closes(m2).get(stored) == 1006, 10, what="the old socket's close")


def test_direct_mode_serves_websockets(served):
    _, _, url = served(dispatch="direct")
    with connect(url + "/echo", open_timeout=10) as ws:
        ws.send("direct")
        assert ws.recv(timeout=10) == "direct"
        ws.close(4003)
    assert ws.protocol.close_rcvd.code == 4003

