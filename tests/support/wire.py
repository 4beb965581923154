"""Build raw mongrel2 messages and take raw HTTP responses apart, for tests.

``request()`` writes a message the way mongrel2 1.12 does, in either handler
protocol: JSON headers escape only ``"`` and ``\\`` (every other byte, control
or not, goes through raw), tnetstring headers are a tnetstring dict.

``parse_response()`` splits the bytes wsgid sent to one connection (join the
messages first) into status line, headers and body, decoding a chunked body.
"""

import tnetstring
import zmq

__all__ = ["SENDER", "request", "req", "json_request", "get_headers", "control", "disconnect",
           "json_headers", "parse_response", "decode_chunked", "Response", "Pub"]

SENDER = b"54c6755b-9628-40a4-9a2d-cc82a816345e"  # the mongrel2 the tests play


class Pub:
    """Stands in for a worker's PUB socket to mongrel2: keeps what is sent."""

    def __init__(self):
        self.sent = []

    def send(self, frame, copy=True):
        self.sent.append(frame)

    def setsockopt(self, option, value):
        pass

    def recv(self, flags=0):
        raise zmq.Again()  # no (un)subscription to tell

    def get_monitor_socket(self, events):
        return _Silent()

    def disable_monitor(self):
        pass

    def close(self):
        pass


class _Silent:
    """A monitor socket with no event to tell."""

    def recv_multipart(self, flags=0):
        raise zmq.Again()

    def close(self):
        pass


def _bytes(value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("latin-1")


def _json_string(value):
    """A JSON string the way mongrel2 writes one: only '"' and '\\' escaped."""
    return b'"' + _bytes(value).replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def json_headers(headers):
    """The JSON header payload (without its netstring frame) for ``headers``."""
    items = []
    for name, value in headers.items():
        if isinstance(value, (list, tuple)):
            encoded = b"[" + b",".join(_json_string(v) for v in value) + b"]"
        else:
            encoded = _json_string(value)
        items.append(_json_string(name) + b":" + encoded)
    return b"{" + b",".join(items) + b"}"


def _tnet_headers(headers):
    converted = {}
    for name, value in headers.items():
        if isinstance(value, (list, tuple)):
            converted[_bytes(name)] = [_bytes(v) for v in value]
        else:
            converted[_bytes(name)] = _bytes(value)
    return tnetstring.dumps(converted)


def netstring(payload):
    return b"%d:%s," % (len(payload), payload)


def request(headers, body=b"", protocol="json", sender=b"UUID", conn_id=b"7", path=None):
    """One raw mongrel2 request message.

    ``headers`` maps names to str/bytes values or lists of them (a header the
    client repeated). ``path`` defaults to the PATH header (or ``/``).
    ``protocol`` is ``"json"`` or ``"tnetstring"``.
    """
    if path is None:
        path = headers.get("PATH", "/")
    if protocol == "json":
        head = netstring(json_headers(headers))
    elif protocol in ("tnetstring", "tnet"):
        head = _tnet_headers(headers)
    else:
        raise ValueError("unknown protocol %r" % (protocol,))
    return b" ".join((_bytes(sender), _bytes(conn_id), _bytes(path), head + netstring(body)))


def json_request(headers, body=b"", conn_id=b"1", sender=SENDER, path=None):
    return request(headers, body, "json", sender=sender, conn_id=conn_id, path=path)


def req(conn_id):
    """A bare ``GET /x`` from :data:`SENDER` on connection ``conn_id`` (an
    int): the request of the broker's and sources' tests."""
    return request({"METHOD": "GET", "PATH": "/x", "VERSION": "HTTP/1.1"},
                   sender=SENDER, conn_id=b"%d" % conn_id)


def get_headers(path="/", **extra):
    """The headers mongrel2 sends for ``GET path``, with ``extra`` added."""
    headers = {"PATH": path, "METHOD": "GET", "VERSION": "HTTP/1.1", "URI": path,
               "PATTERN": "/", "host": "localhost", "REMOTE_ADDR": "127.0.0.1"}
    headers.update(extra)
    return headers


def control(body, protocol="json", sender=b"UUID", conn_id=b"7"):
    """A ``METHOD: JSON`` control message, as mongrel2 sends it (path ``@*``,
    no PATH header)."""
    return request({"METHOD": "JSON"}, body, protocol, sender, conn_id, path=b"@*")


def disconnect(protocol="json", sender=b"UUID", conn_id=b"7"):
    return control(b'{"type":"disconnect"}', protocol, sender, conn_id)


# -- responses -----------------------------------------------------------------

def decode_chunked(data):
    """Decode a complete chunked body; return (body, bytes after the terminator).

    Raises ValueError on any framing error or a missing terminator.
    """
    out = []
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            raise ValueError("chunk size line not terminated at %d" % pos)
        size_text = data[pos:eol].split(b";", 1)[0].strip()
        if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise ValueError("bad chunk size %r at %d" % (data[pos:eol], pos))
        size = int(size_text, 16)
        start = eol + 2
        if size == 0:
            if data[start:start + 2] != b"\r\n":
                raise ValueError("bad chunked terminator %r" % data[start:start + 10])
            return b"".join(out), data[start + 2:]
        end = start + size
        if len(data) < end + 2:
            raise ValueError("truncated chunk at %d" % pos)
        if data[end:end + 2] != b"\r\n":
            raise ValueError("chunk data not followed by CRLF at %d" % end)
        out.append(data[start:end])
        pos = end + 2


class Response:
    """A parsed HTTP response: ``status_line``, ``version``, ``status`` (int),
    ``reason``, ``headers`` (list of (name, value) in order), ``raw_body``
    (bytes after the head) and ``body`` (de-chunked when chunked)."""

    def __init__(self, status_line, headers, raw_body, body, chunked):
        self.status_line = status_line
        self.version, _, rest = status_line.partition(" ")
        code, _, self.reason = rest.partition(" ")
        self.status = int(code)
        self.headers = headers
        self.raw_body = raw_body
        self.body = body
        self.chunked = chunked

    def get_all(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def get(self, name, default=None):
        values = self.get_all(name)
        return values[0] if values else default

    def __contains__(self, name):
        return bool(self.get_all(name))

    def __repr__(self):
        return "<Response %r %r %d body bytes>" % (self.status_line, self.headers, len(self.body))


def parse_response(data, head=False):
    """Parse raw HTTP response bytes (all messages of one response joined).

    A chunked body is decoded strictly (ValueError on bad framing or on bytes
    after the terminator). ``head=True``: the response to a HEAD request, no
    body is decoded.
    """
    if isinstance(data, (list, tuple)):
        data = b"".join(data)
    head_bytes, sep, raw_body = data.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("no end of headers in %r" % data[:200])
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ValueError("bad header line %r" % line)
        headers.append((name, value.strip()))
    chunked = any(n.lower() == "transfer-encoding" and "chunked" in v.lower()
                  for n, v in headers)
    body = raw_body
    if chunked and not head:
        body, rest = decode_chunked(raw_body)
        if rest:
            raise ValueError("%d bytes after the chunked terminator" % len(rest))
    return Response(lines[0], headers, raw_body, body, chunked)
