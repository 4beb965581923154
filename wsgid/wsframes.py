"""RFC 6455 on the server's side, as far as wsgid writes and checks it:
the handshake's answer, the frames a server sends (never masked), and the
close payload's rules.

mongrel2 reads the client's frames itself: it unmasks them, joins the
fragments of a message and hands each whole message (or control frame) to
the handler with its first frame's flags, FIN set, in the ``FLAGS`` header
(``0x81``). See docs/websockets.rst, "What mongrel2 does and what wsgid
does".
"""

import base64
import hashlib
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
VERSION = "13"

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
FIN = 0x80
RSV = 0x70  # no extension is ever negotiated: these bits must be clear

# Close codes (RFC 6455 7.4.1).
NORMAL, GOING_AWAY, PROTOCOL_ERROR, NO_STATUS, ABNORMAL = 1000, 1001, 1002, 1005, 1006
INVALID_DATA, TOO_BIG, INTERNAL_ERROR = 1007, 1009, 1011

MAX_REASON = 123  # a control frame's payload is at most 125 bytes, 2 of them the code


class ProtocolError(ValueError):
    """What a client sent that RFC 6455 says to fail the connection for:
    ``code`` is the close code to send."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code


def accept(key):
    """The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key (str)."""
    digest = hashlib.sha1(key.strip().encode("latin-1") + GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def handshake(key, protocol=None):
    """The 101 response accepting the handshake of ``key``, with the chosen
    subprotocol if any."""
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Accept: " + accept(key)]
    if protocol:
        lines.append("Sec-WebSocket-Protocol: " + protocol)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def frame(opcode, payload):
    """One unfragmented, unmasked frame."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", FIN | opcode, size)
    elif size < 65536:
        head = struct.pack("!BBH", FIN | opcode, 126, size)
    else:
        head = struct.pack("!BBQ", FIN | opcode, 127, size)
    return head + payload


def message(data):
    """The frame of a message: ``str`` as text (UTF-8), bytes-like as binary."""
    if isinstance(data, str):
        return frame(TEXT, data.encode("utf-8"))
    if isinstance(data, (bytes, bytearray, memoryview)):
        return frame(BINARY, bytes(data))
    raise TypeError("a WebSocket message is str or bytes, not %s" % type(data).__name__)


def valid_code(code):
    """Whether ``code`` may be sent in a close frame (RFC 6455 7.4)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def close_frame(code=NORMAL, reason=""):
    """A close frame with ``code`` (None: no payload) and ``reason`` (cut to
    fit, never inside a UTF-8 sequence)."""
    if code is None:
        return frame(CLOSE, b"")
    if not valid_code(code):
        raise ValueError("%r is not a close code a server may send" % (code,))
    text = reason.encode("utf-8")[:MAX_REASON].decode("utf-8", "ignore").encode("utf-8")
    return frame(CLOSE, struct.pack("!H", code) + text)


def parse_close(payload):
    """``(code, reason)`` of a client's close frame (code 1005 when it gave
    none); ProtocolError for a bad one."""
    if not payload:
        return NO_STATUS, ""
    if len(payload) == 1:
        raise ProtocolError(PROTOCOL_ERROR, "a close payload of one byte")
    code = struct.unpack("!H", payload[:2])[0]
    if not valid_code(code):
        raise ProtocolError(PROTOCOL_ERROR, "close code %d" % code)
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(INVALID_DATA, "a close reason that is not UTF-8") from None
    return code, reason


def flags(value):
    """The opcode of mongrel2's ``FLAGS`` header (``0x81``); ProtocolError
    for reserved bits set, a reserved opcode or a header that is not one."""
    try:
        bits = int(value, 16)
    except (TypeError, ValueError):
        raise ProtocolError(PROTOCOL_ERROR, "bad FLAGS %r" % (value,)) from None
    if not 0 <= bits <= 0xFF:
        raise ProtocolError(PROTOCOL_ERROR, "bad FLAGS %r" % (value,))
    if bits & RSV:
        raise ProtocolError(PROTOCOL_ERROR, "reserved bits set without an extension")
    opcode = bits & 0x0F
    if opcode not in (TEXT, BINARY, CLOSE, PING, PONG):
        raise ProtocolError(PROTOCOL_ERROR, "opcode 0x%X" % opcode)
    return opcode
