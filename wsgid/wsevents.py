"""mongrel2's WebSocket messages turned into calls of the application's
WebSocket handler (--websocket-handler), and the protocol duties wsgid does
itself: the 101 (or the refusal), pongs, the close handshake, and closing
with the RFC 6455 code for what it says to reject.

The handler is any object with ``open(conn, environ)``, ``message(conn,
data)`` and ``close(conn, code)``, each optional (see docs/websockets.rst).
Any worker may serve any message: what a socket's messages need to know
across processes (is it open, its generation) is in :mod:`wsgid.wsshared`.
"""

import http.client
import io
import logging

from wsgid import environ as wsgi_environ
from wsgid import websocket, wsframes
from wsgid.message import CLOSE
from wsgid.replies import ClientGone
from wsgid.response import error_reply
from wsgid.websocket import Connection, Refuse

log = logging.getLogger("wsgid")

DEFAULT_MAX_MESSAGE = (1 << 20) + (64 << 10)  # 1 MiB, and room for framing around it


def _status(code):
    return "%d %s" % (code, http.client.responses.get(code, "Refused"))


class Events:
    """The WebSocket side of one worker."""

    def __init__(self, handler, replies, shared, max_message=DEFAULT_MAX_MESSAGE):
        self.handler = handler
        self.replies = replies
        self.shared = shared
        self.max_message = max_message or DEFAULT_MAX_MESSAGE
        self.context = websocket.bind(replies, shared, handler)
        self.fronts_gone = []  # fronts whose mongrel2 this process saw go, sockets to close
        shared.adopt()

    def front_gone(self, front):
        """Replies saw ``front``'s mongrel2 go (called under its locks: no
        application code here): a new generation; the old one's sockets are
        reported closed at the next :meth:`tick`."""
        self.fronts_gone.append((front, self.shared.gone(front)))

    def tick(self):
        while self.fronts_gone:
            front, stamp = self.fronts_gone.pop(0)
            for conn_id in self.shared.drop_front(front, stamp):
                self._call("close", Connection.make(front, stamp, conn_id), wsframes.ABNORMAL)

    def handle(self, request, front):
        """Serve one WEBSOCKET_HANDSHAKE or WEBSOCKET message; the status line
        for the scoreboard ("" for a frame: not a request)."""
        self.tick()
        # A mongrel2 gone is known before the sender is made (a generation
        # change after it drops its replies) and before a stamp is read.
        self.replies.count_subscriptions()
        send = self.replies.sender(request.sender, request.conn_id)
        try:
            if request.headers["METHOD"] == "WEBSOCKET_HANDSHAKE":
                return self._handshake(request, front, send)
            self._frame(request, front, send)
        except ClientGone:  # its mongrel2 went meanwhile (see Replies.sender)
            log.info("WebSocket message of connection %s dropped: its mongrel2 went",
                     request.conn_id.decode())
            self.context.closed(front, int(request.conn_id), wsframes.ABNORMAL)
        return ""

    def disconnected(self, front, conn_id):
        """mongrel2's disconnect notice (for any connection: an HTTP one is
        not in the table, and nothing happens)."""
        self.tick()
        self.context.closed(front, int(conn_id), wsframes.ABNORMAL)

    # -- the handshake ---------------------------------------------------------------
    def _handshake(self, request, front, send):
        headers = request.headers
        key = headers.get("sec-websocket-key")
        if headers.get("sec-websocket-version") != wsframes.VERSION or not isinstance(key, str):
            send(error_reply("426 Upgrade Required").replace(
                b"\r\n\r\n", b"\r\nSec-WebSocket-Version: 13\r\n\r\n", 1))
            send(CLOSE)
            return "426 Upgrade Required"
        self.shared.set_sender(front, request.sender)
        stamp = self.shared.known(front)
        conn = Connection.make(front, stamp, request.conn_id)
        environ = wsgi_environ.build(request)  # its body: mongrel2's accept key, not the client's
        environ["REQUEST_METHOD"] = "GET"
        environ["wsgi.input"] = io.BytesIO(b"")
        environ.pop("CONTENT_LENGTH", None)
        opener = getattr(self.handler, "open", None)
        try:
            result = opener(conn, environ) if opener is not None else None
        except Refuse as exc:
            result = exc.status
        except Exception:
            log.exception("Error in the WebSocket handler's open()")
            result = 500
        if result is None or result is True:
            protocol = None
        elif isinstance(result, str):
            protocol = result
        else:
            status = _status(result if type(result) is int else 403)
            send(error_reply(status, headers.get("VERSION", "HTTP/1.1")))
            send(CLOSE)
            return status
        self.shared.opened(front, int(request.conn_id), stamp)
        send(wsframes.handshake(key, protocol))
        return "101 Switching Protocols"

    # -- frames ------------------------------------------------------------------------
    def _frame(self, request, front, send):
        conn_id = int(request.conn_id)
        stamp = self.shared.find(front, conn_id)
        if stamp is None:  # refused, closed, or taken for a mongrel2 gone's: not left hanging
            log.debug("WebSocket frame of connection %d, not open: closed", conn_id)
            send(wsframes.close_frame(wsframes.INTERNAL_ERROR, "not open"))
            send(CLOSE)
            return
        conn = Connection.make(front, stamp, conn_id)
        body = request.body
        try:
            opcode = wsframes.flags(request.headers.get("FLAGS"))
            if opcode == wsframes.TEXT or opcode == wsframes.BINARY:
                if len(body) > self.max_message:
                    raise wsframes.ProtocolError(wsframes.TOO_BIG, "a message of %d bytes"
                                                 % len(body))
                if opcode == wsframes.TEXT:
                    try:
                        body = body.decode("utf-8")
                    except UnicodeDecodeError:
                        raise wsframes.ProtocolError(wsframes.INVALID_DATA,
                                                     "a text message not UTF-8") from None
                if not self._call("message", conn, body):
                    self._fail(front, conn_id, send, wsframes.INTERNAL_ERROR, "")
            elif opcode == wsframes.PING:
                send(wsframes.frame(wsframes.PONG, body))
            elif opcode == wsframes.CLOSE:
                code, _ = wsframes.parse_close(body)
                send(wsframes.close_frame(None if code == wsframes.NO_STATUS else code))
                send(CLOSE)
                self.context.closed(front, conn_id, code)
        except wsframes.ProtocolError as exc:
            log.info("WebSocket connection %d failed: %s", conn_id, exc)
            self._fail(front, conn_id, send, exc.code, str(exc))

    def _fail(self, front, conn_id, send, code, reason):
        send(wsframes.close_frame(code, reason))
        send(CLOSE)
        self.context.closed(front, conn_id, code)

    def _call(self, name, *args):
        """The handler's method ``name`` (if it has one) with ``args``; False
        when it raised (logged): the worker serves on."""
        method = getattr(self.handler, name, None)
        if method is None:
            return True
        try:
            method(*args)
        except Exception:
            log.exception("Error in the WebSocket handler's %s()", name)
            return False
        return True
