"""The mongrel2 wire format: requests in, reply frames out.

A request is ``UUID SP CONN_ID SP PATH SP HEADERS BODY`` where HEADERS is a
JSON netstring (``LEN:{...},``) or a tnetstring dict (``LEN:...}``),
depending on the handler's ``protocol`` in mongrel2, and BODY a netstring.
"""

import json

import tnetstring

try:
    import cython
    _COMPILED = cython.compiled
except ImportError:  # plain Python, without Cython installed
    _COMPILED = False

__all__ = ["MessageError", "Request", "parse", "reply", "CLOSE"]

#: The body of a reply that makes mongrel2 close the connection.
CLOSE = b""
#: The path of mongrel2's own notices (disconnect, credits).
NOTICE_PATH = b"@*"


class MessageError(ValueError):
    """A message that is not a well-formed mongrel2 request.

    ``sender`` and ``conn_id`` are set when the envelope could be read, so
    that the caller can still answer the client with an error.
    """

    def __init__(self, reason, sender=None, conn_id=None):
        super().__init__(reason)
        self.sender = sender
        self.conn_id = conn_id


class Request:
    """One parsed mongrel2 message.

    ``headers`` maps names to ``str`` values (latin-1 decoded, as PEP 3333
    wants them), or to lists of ``str`` for a header the client repeated.
    mongrel2's own keys (METHOD, PATH, ...) are upper-case; client header
    names arrive lower-cased.
    """

    __slots__ = ("sender", "conn_id", "path", "headers", "body")

    def __init__(self, sender, conn_id, path, headers, body):
        self.sender = sender
        self.conn_id = conn_id
        self.path = path
        self.headers = headers
        self.body = body

    @property
    def method(self):
        return self.headers.get("METHOD")

    @property
    def is_notice(self):
        """mongrel2's own notice (disconnect, credits): never a request. Told
        by the path mongrel2 gives them, which no HTTP request has (its
        METHOD, ``JSON``, is the client's to send too)."""
        return self.path == NOTICE_PATH

    def control(self):
        """The decoded JSON body of a control message, or ``{}``."""
        try:
            value = json.loads(self.body.decode("latin-1"), strict=False)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def is_disconnect(self):
        return self.is_notice and self.control().get("type") == "disconnect"


def _netstring(data, start):
    """Find ``LEN:PAYLOAD`` at ``start``: the payload's start and end (its
    terminator is the byte at the end). A loop over the bytes, which Cython
    turns into C."""
    size = len(data)
    limit = min(start + 10, size)  # at most 10 digits
    length = 0
    i = start
    while i < limit:
        c = data[i]
        if c < 48 or c > 57:  # not 0-9
            break
        length = length * 10 + c - 48
        i += 1
    if i == start or i >= size or data[i] != 58:  # b":"
        raise MessageError("bad netstring length")
    end = i + 1 + length
    if end >= size:
        raise MessageError("truncated netstring")
    return i + 1, end


def _text(value):
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _header_value(value):
    if isinstance(value, list):
        return [_text(v) for v in value]
    return _text(value)


# mongrel2 escapes only '"' and '\' in JSON headers: raw control and
# non-UTF-8 bytes pass through, hence latin-1 and a non-strict decoder.
_JSON = json.JSONDecoder(strict=False)
_scan_json = _JSON.scan_once  # decode() without its white space handling (in Python)


def _latin1(headers):
    """True when every name and value is latin-1 text (PEP 3333)."""
    try:
        for name, value in headers.items():
            name.encode("latin-1")
            for v in value if isinstance(value, list) else (value,):
                v.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


_COMMA, _BRACE = b",}"
_QUOTE, _BACKSLASH, _COLON, _OPEN, _LIST, _END_LIST = b'"\\:{[]'


def _json_string_end(data, i, end):
    """Where the JSON string opened at ``data[i]`` closes, or -1 when it has
    an escape or does not close before ``end``."""
    i += 1
    while i < end:
        c = data[i]
        if c == _QUOTE:
            return i
        if c == _BACKSLASH:
            return -1
        i += 1
    return -1


def _fast_json_headers(data, start, end):
    """The headers dict of mongrel2's usual JSON at ``data[start:end]`` --
    string keys, string or list-of-strings values, no white space, no escape
    -- or None for anything else, which the json module then decodes. Once
    compiled, a byte loop about twice as fast as the json module; the
    result is the same."""
    headers = {}
    i = start
    if end - i < 2 or data[i] != _OPEN:
        return None
    i += 1
    if data[i] == _BRACE:
        return headers if i + 1 == end else None
    while True:
        if i >= end or data[i] != _QUOTE:  # a comma may close the span
            return None
        j = _json_string_end(data, i, end)
        if j < 0 or j + 2 >= end or data[j + 1] != _COLON:
            return None
        name = data[i + 1:j].decode("latin-1")
        i = j + 2
        if data[i] == _QUOTE:
            j = _json_string_end(data, i, end)
            if j < 0:
                return None
            headers[name] = data[i + 1:j].decode("latin-1")
            i = j + 1
        elif data[i] == _LIST:
            values = []
            i += 1
            if i < end and data[i] == _END_LIST:
                i += 1
            else:
                while True:
                    if i >= end or data[i] != _QUOTE:
                        return None
                    j = _json_string_end(data, i, end)
                    if j < 0 or j + 1 >= end:
                        return None
                    values.append(data[i + 1:j].decode("latin-1"))
                    i = j + 1
                    if data[i] == _END_LIST:
                        i += 1
                        break
                    if data[i] != _COMMA:
                        return None
                    i += 1
            headers[name] = values
        else:
            return None
        if i >= end:
            return None
        if data[i] == _BRACE:
            return headers if i + 1 == end else None
        if data[i] != _COMMA:
            return None
        i += 1


def _decode_headers(data, start, end):
    """The headers dict of the JSON (terminated by ",") or tnetstring ("}")
    payload at ``data[start:end]``."""
    # Deep nesting raises RecursionError, a tnetstring dict keyed by a list
    # or a dict TypeError: a bad message all the same.
    terminator = data[end]
    if terminator == _COMMA:
        headers = _fast_json_headers(data, start, end) if _COMPILED else None
        escaped = False
        if headers is None:
            text = data[start:end].decode("latin-1")
            try:
                try:
                    headers, stop = _scan_json(text, 0)
                except StopIteration:
                    stop = -1
                if stop != len(text):  # white space or garbage around it: the full decoder says
                    headers = _JSON.decode(text)
            except (ValueError, RecursionError) as exc:
                raise MessageError("headers are not valid JSON: %s" % exc) from None
            if not isinstance(headers, dict):
                raise MessageError("headers are not a dict")
            # Only a \u escape (mongrel2 writes none) gives text beyond latin-1.
            escaped = "\\u" in text
        if not escaped:
            for value in headers.values():
                if type(value) is not str:
                    break
            else:
                return headers  # the usual case: nothing to convert
    elif terminator == _BRACE:
        try:
            headers = tnetstring.loads(b"%d:%s}" % (end - start, data[start:end]))
        except (ValueError, TypeError, RecursionError) as exc:
            raise MessageError("headers are not a valid tnetstring: %s" % exc) from None
        if not isinstance(headers, dict):
            raise MessageError("headers are not a dict")
    else:
        raise MessageError("headers are neither JSON nor a tnetstring dict")
    converted = {}
    for name, value in headers.items():
        name, value = _text(name), _header_value(value)
        if isinstance(value, list) and name.isupper():
            raise MessageError("mongrel2's own header %s repeated" % name)
        converted[name] = value
    if terminator == _COMMA and not _latin1(converted):
        raise MessageError("header text beyond latin-1")
    return converted


def parse(data):
    """Parse one raw mongrel2 message into a :class:`Request`."""
    parts = data.split(b" ", 3)
    if len(parts) != 4:
        raise MessageError("not a mongrel2 message")
    sender, conn_id, path, rest = parts
    if not conn_id.isdigit() or not sender:
        raise MessageError("bad sender or connection id")
    try:
        start, end = _netstring(rest, 0)
        headers = _decode_headers(rest, start, end)
        start, end = _netstring(rest, end + 1)
        if rest[end] != _COMMA:
            raise MessageError("body is not a netstring")
        method = headers.get("METHOD")
        if type(method) is not str:
            raise MessageError("METHOD header missing")
        if type(headers.get("PATH")) is not str and method != "JSON":
            raise MessageError("PATH header missing")
        length = headers.get("content-length")
        if length is not None and not (type(length) is str and length.isascii()
                                       and length.isdigit()):
            raise MessageError("bad Content-Length")
    except MessageError as exc:
        exc.sender, exc.conn_id = sender, conn_id
        raise
    return Request(sender, conn_id, path, headers, rest[start:end])


def envelope(data):
    """``(sender, conn_id)`` of a raw message without parsing it, or
    ``(None, None)`` for garbage."""
    parts = data.split(b" ", 2)
    if len(parts) == 3 and parts[0] and parts[1].isdigit():
        return parts[0], parts[1]
    return None, None


def is_notice(data):
    """True for mongrel2's own notices (path ``@*``, see
    :attr:`Request.is_notice`), told apart from requests without parsing the
    whole message."""
    second = data.find(b" ", data.find(b" ") + 1)  # no copy of the body
    return second > 0 and data.startswith(NOTICE_PATH + b" ", second + 1)


def is_disconnect(data):
    """For a notice (:func:`is_notice`): whether it says its client went,
    without parsing it."""
    return b'"disconnect"' in data or b"disconnect," in data


def is_handshake(data):
    """For a request: whether it is a WebSocket handshake, without parsing
    it (its body is mongrel2's 28-byte accept key: a cheap test first)."""
    return data[-32:-29] == b"28:" and b"WEBSOCKET_HANDSHAKE" in data


def disconnect_notice(sender, conn_id):
    """A disconnect notice as mongrel2 sends it (JSON protocol), for a
    connection closed for want of a worker."""
    return b'%s %s %s 17:{"METHOD":"JSON"},21:{"type":"disconnect"},' % (
        sender, conn_id, NOTICE_PATH)


def reply(sender, conn_ids, body):
    """Frame ``body`` for mongrel2, addressed to one or several connections.

    ``conn_ids`` is one id or a sequence of them (bytes, str or int). An
    empty ``body`` (:data:`CLOSE`) closes those connections.
    """
    if type(conn_ids) is not bytes:  # one bytes id, as parse() gives it, is ready
        if isinstance(conn_ids, (bytes, str, int)):
            conn_ids = (conn_ids,)
        conn_ids = b" ".join([i if isinstance(i, bytes) else str(i).encode() for i in conn_ids])
    return b"%s %d:%s, %s" % (sender, len(conn_ids), conn_ids, body)
