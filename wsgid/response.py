"""start_response, HTTP framing and streaming of one WSGI response.

mongrel2 adds nothing to a reply: the status line, every header and the
body framing are ours. It also drops a connection with more than 16
messages queued, so the body is coalesced: a small response leaves in one
message with a Content-Length; a streamed one in messages of up to
FLUSH_BYTES, flushed early only when FLUSH_SECONDS have passed since the
last one (so a slow generator's chunks still go out as they come).
"""

import re
import time

import wsgid

FLUSH_BYTES = 1 << 20
FLUSH_SECONDS = 0.02
X_WSGID = ("X-Wsgid", wsgid.__version__)
_bad_header_char = re.compile("[\r\n\0]").search  # no response splitting
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection", "x-wsgid"))


def _no_body_status(status):
    code = status[:3]
    return code in ("204", "304") or code.startswith("1")


class Response:
    """The response to one request; ``send(bytes)`` delivers to its client.

    Usage: ``start_response`` is given to the app, each body chunk goes to
    :meth:`write`, then :meth:`finish`. :attr:`close` tells the caller
    whether to close the connection afterwards.
    """

    def __init__(self, send, version, method, connection, max_message=FLUSH_BYTES):
        self._send = send
        self.max_message = max_message  # body bytes per message (flow control wants few)
        self.http10 = version == "HTTP/1.0"
        self.head = method == "HEAD"
        if isinstance(connection, list):  # the header repeated
            connection = ",".join(connection)
        connection = connection.lower() if isinstance(connection, str) else ""
        if self.http10:
            self.close = "keep-alive" not in connection
        else:
            self.close = "close" in connection
        self.status = None
        self.headers = None
        self.headers_sent = False
        self.length = None      # Content-Length given by the app
        self.written = 0        # body bytes accepted so far
        self.chunked = False
        self.no_body = False
        self._buffer = []
        self._buffered = 0
        self._mark = 0.0

    # -- the WSGI side -----------------------------------------------------
    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        if not isinstance(status, str) or len(status) < 4 or not status[:3].isdigit():
            raise ValueError("bad status %r" % (status,))
        kept = []
        length = None
        for name, value in headers:
            if not isinstance(name, str) or not isinstance(value, str) or \
                    _bad_header_char(name) or _bad_header_char(value):
                raise ValueError("bad response header %r: %r" % (name, value))
            lname = name.lower()
            if lname == "content-length":
                length = int(value)
            elif lname == "connection":
                if "close" in value.lower():
                    self.close = True
            elif lname not in _FRAMING:
                kept.append((name, value))
        self.status, self.headers, self.length = status, kept, length
        self.no_body = _no_body_status(status)  # 1xx/204/304: body never sent
        self._buffer, self._buffered, self.written = [], 0, 0
        return self.write

    def write(self, data):
        if self.status is None:
            raise AssertionError("write() before start_response()")
        if not data:
            return
        if self.length is not None:
            room = self.length - self.written
            if len(data) > room:  # never send more than the app announced
                data = data[:room]
                if not data:
                    return
        self.written += len(data)
        if self.head or self.no_body:
            return
        was_empty = not self._buffer
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= self.max_message:
            self._flush()
            return
        now = time.monotonic()
        if self.headers_sent or not was_empty:
            # _mark: the last flush, or when the first unsent chunk came.
            if now - self._mark >= FLUSH_SECONDS:
                self._flush()
        else:
            self._mark = now

    def finish(self):
        """Send what is left: headers with a Content-Length when the whole
        body is known, the chunked terminator, or nothing."""
        if self.status is None:
            raise AssertionError("the application did not call start_response()")
        if not self.headers_sent:
            if self.length is None and not _no_body_status(self.status):
                self.length = self.written
            self._send(self._head() + b"".join(self._buffer))
            self.headers_sent = True
        else:
            tail = self._frame(b"".join(self._buffer)) if self._buffer else b""
            if self.chunked:
                tail += b"0\r\n\r\n"
            if tail:
                self._send(tail)
        self._buffer = []
        if (self.length is not None and self.written < self.length
                and not self.head and not self.no_body):
            self.close = True  # the client waits for bytes that never come

    # -- framing -------------------------------------------------------------
    def _head(self):
        headers = self.headers
        if _no_body_status(self.status):
            self.no_body = True
        elif self.length is not None:
            headers = headers + [("Content-Length", str(self.length))]
        elif self.http10:
            self.close = True  # close-delimited body
        else:
            self.chunked = True
            headers = headers + [("Transfer-Encoding", "chunked")]
        if self.close:
            headers = headers + [("Connection", "close")]
        elif self.http10:
            headers = headers + [("Connection", "keep-alive")]
        lines = ["%s %s\r\n" % ("HTTP/1.0" if self.http10 else "HTTP/1.1", self.status)]
        lines.extend("%s: %s\r\n" % h for h in headers)
        lines.append("%s: %s\r\n\r\n" % X_WSGID)
        return "".join(lines).encode("latin-1")

    def _frame(self, data):
        if self.chunked:
            return b"%x\r\n%s\r\n" % (len(data), data)
        return data

    def _flush(self):
        data = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        head = b""
        if not self.headers_sent:
            head = self._head()
            self.headers_sent = True
        if self.max_message >= FLUSH_BYTES:
            self._send(head + self._frame(data))  # fewer, larger messages: mongrel2's 16 rule
        else:  # flow control: never more than a window's share in one message
            step = self.max_message
            for start in range(0, len(data), step):
                self._send(head + self._frame(data[start:start + step]))
                head = b""
        self._mark = time.monotonic()


def error_reply(status, version="HTTP/1.1", body=None):
    """A complete, connection-closing reply for errors wsgid answers itself."""
    body = body if body is not None else status.encode("latin-1") + b"\n"
    return (b"%s %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n%s: %s\r\n\r\n%s") % (
        b"HTTP/1.0" if version == "HTTP/1.0" else b"HTTP/1.1",
        status.encode("latin-1"), len(body), X_WSGID[0].encode(),
        X_WSGID[1].encode(), body)
