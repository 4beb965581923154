"""start_response, HTTP framing and streaming of one WSGI response.

mongrel2 adds nothing to a reply: the status line, every header and the
body framing are ours. Every block the application gives is handed to
``send`` at once (PEP 3333: none may wait for the next), the head with the
first. A response whose length is known by then (the app's Content-Length,
or an iterable of one block) is one message with a Content-Length; any
other is streamed, chunked or close-delimited, in pieces that the sender
may join into messages of up to ``max_message`` bytes (see wsgid.outbox):
mongrel2 drops a connection with more than 16 messages queued.
"""

import wsgid

FLUSH_BYTES = 1 << 20
X_WSGID = ("X-Wsgid", wsgid.__version__)
_HEAD_END = ("\r\n%s: %s\r\n\r\n" % X_WSGID).encode("latin-1")
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection", "x-wsgid"))
_FRAMING_NAMES = {}  # header name as the app spells it -> its lower case if framing, else ""


def _framing_name(name):
    """The lower-cased name of a header wsgid frames itself, else ""; memoized
    (apps use the same few names), bounded."""
    lower = name.lower()
    framing = lower if lower in _FRAMING else ""
    if len(_FRAMING_NAMES) < 4096:
        _FRAMING_NAMES[name] = framing
    return framing


def _no_body_status(status):
    code = status[:3]
    return code == "204" or code == "304" or code[0] == "1"


def _bad_header(status, headers):
    """The reason a status or header list cannot go out (checked once the
    quick test in start_response has failed), for the error message."""
    for item in [("status", status)] + list(headers):
        try:
            name, value = item
        except (TypeError, ValueError):
            return "bad response header %r" % (item,)
        for text in (name, value):
            if not isinstance(text, str):
                return "bad response header %r: %r (not str)" % (name, value)
            if "\r" in text or "\n" in text or "\0" in text:
                return "bad response header %r: %r (CR, LF or NUL)" % (name, value)
            try:
                text.encode("latin-1")
            except UnicodeEncodeError:
                return "bad response header %r: %r (not latin-1)" % (name, value)
    return "bad response header"


class Response:
    """The response to one request; ``send(bytes)`` delivers to its client.

    Usage: ``start_response`` is given to the app, each body chunk goes to
    :meth:`write`, then :meth:`finish` (or :meth:`finish_without_body`, or
    :meth:`abort`). :attr:`closes_connection` tells the caller whether to
    close the connection afterwards; :attr:`one_block` tells the response
    that the app's iterable has a single block.

    ``send(data, hold=False, limit=0)``: ``hold``, the message may wait a
    moment to leave with others; ``limit``, it is a streamed piece, which
    may share a message of up to that many bytes with its neighbours.
    """

    def __init__(self, send, version, method, connection, max_message=FLUSH_BYTES,
                 hold_whole=False):
        self._send = send
        # A reply in one message may wait a little: send(data, True) says so.
        self._hold_whole = hold_whole
        self.status = None
        self.headers_sent = False
        self.length = None      # Content-Length given by the app
        self.written = 0        # body bytes accepted so far
        self.chunked = False
        self.no_body = False    # 1xx/204/304 (and HEAD): the body is never sent
        self._bodiless = False  # 1xx/204/304: no body, nor a length or framing for one
        self.one_block = False
        self._block = b""
        self.max_message = max_message  # body bytes per message (flow control wants few)
        self.http10 = version == "HTTP/1.0"
        self.head = method == "HEAD"
        if connection is None:
            self.closes_connection = self.http10
        else:
            if isinstance(connection, list):  # the header repeated
                connection = ",".join(connection)
            connection = connection.lower() if isinstance(connection, str) else ""
            self.closes_connection = ("keep-alive" not in connection if self.http10
                                      else "close" in connection)

    # -- the WSGI side -----------------------------------------------------
    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
            self.written = 0  # nothing sent: HEAD counted a body that is not sent
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        if type(status) is not str or len(status) < 4 or not status[:3].isdigit():
            raise ValueError("bad status %r" % (status,))
        # The status line and the app's headers, framing ones left out (ours
        # come in _head), values without the spaces and tabs around them (a
        # Django cookie comes with one); a non-str name or value fails.
        parts = ["HTTP/1.0 " if self.http10 else "HTTP/1.1 ", status]
        length = None
        try:
            for name, value in headers:
                framing = _FRAMING_NAMES.get(name)
                if framing is None:
                    framing = _framing_name(name)
                if not framing:
                    parts += ("\r\n", name, ": ", value.strip(" \t"))
                elif type(value) is not str:
                    raise TypeError(value)
                elif framing == "content-length":
                    length = int(value)
                    if length < 0:
                        raise ValueError(value)
                elif framing == "connection" and "close" in value.lower():
                    self.closes_connection = True
            block = "".join(parts)
            # Only the separators may be CR or LF: no response splitting.
            lines = len(parts) // 4
            if block.count("\n") != lines or block.count("\r") != lines or "\0" in block:
                raise ValueError(block)
            self._block = block.encode("latin-1")
        except (TypeError, ValueError, AttributeError):
            raise ValueError(_bad_header(status, headers)) from None
        self.status, self.length = status, length
        self._bodiless = _no_body_status(status)
        self.no_body = self.head or self._bodiless
        return self.write

    def write(self, data):
        if self.status is None:
            raise AssertionError("write() before start_response()")
        if not data:
            return
        size = len(data)
        if self.length is None:
            if self.one_block and not self.written:
                self.length = size  # PEP 3333 lets the server measure a one-block iterable
        elif size > self.length - self.written:
            size = self.length - self.written  # never send more than the app announced
            if not size:
                return
            data = data[:size]
        self.written += size
        if self.no_body:
            return
        if self.headers_sent:
            self._stream(b"", data)
        elif self.written == self.length:  # the whole body at once: one message
            if self._hold_whole:
                self._send(self._head() + data, True)
            else:
                self._send(self._head() + data)
        else:
            self._stream(self._head(), data)

    def finish(self):
        """Send what is left: the head when no block was sent (HEAD, an empty
        body), or the chunked terminator."""
        if self.status is None:
            raise AssertionError("the application did not call start_response()")
        if not self.headers_sent:
            if self.length is None and not self._bodiless:
                self.length = self.written
            if self._hold_whole:
                self._send(self._head(), True)
            else:
                self._send(self._head())
        elif self.chunked:
            self._send(b"0\r\n\r\n", True, self.max_message)
        if self.length is not None and self.written < self.length and not self.no_body:
            self.closes_connection = True  # the client waits for bytes that never come

    def finish_without_body(self, length=None):
        """Send the head only, its body sent another way (mongrel2 sends a
        file itself) or never (HEAD): counted as written, for the access log
        and so that no close follows. ``length``: the body's size, when the
        app gave no Content-Length."""
        if length is not None:
            self.length = length
        self.written = self.length
        self.finish()

    def force_close(self):
        """Close the connection after this reply (the head, if still to go,
        says so)."""
        self.closes_connection = True

    def client_gone(self):
        """The client went away: mongrel2 has closed its connection already."""
        self.closes_connection = False

    def abort(self, status, body=None):
        """The reply cannot be completed (the application failed): the
        connection closes. When nothing was sent yet, returns the error
        reply to send in its place (``status``, then the reply's, and
        ``body``, see :func:`error_reply`); else None."""
        self.closes_connection = True
        if self.headers_sent:
            return None
        self.status = status
        return error_reply(status, "HTTP/1.0" if self.http10 else "HTTP/1.1", body)

    # -- framing -------------------------------------------------------------
    def _head(self):
        """The status line and headers, with ours; from now on they are sent."""
        framing = b""
        if self._bodiless:
            pass  # no length, no chunks
        elif self.length is not None:
            framing = b"\r\nContent-Length: %d" % self.length
        elif self.http10:
            self.closes_connection = True  # close-delimited body
        else:
            self.chunked = True
            framing = b"\r\nTransfer-Encoding: chunked"
        if self.closes_connection:
            framing += b"\r\nConnection: close"
        elif self.http10:
            framing += b"\r\nConnection: keep-alive"
        self.headers_sent = True
        return self._block + framing + _HEAD_END

    def _frame(self, data):
        if self.chunked:
            return b"%x\r\n%s\r\n" % (len(data), data)
        return data

    def _stream(self, head, data):
        """Send a streamed block as a piece (after ``head``, the first time)."""
        step = self.max_message
        if step >= FLUSH_BYTES or len(data) <= step:
            self._send(head + self._frame(data), True, step)
        else:  # flow control: never more than a window's share in one message
            for start in range(0, len(data), step):
                self._send(head + self._frame(data[start:start + step]), True, step)
                head = b""


def error_reply(status, version="HTTP/1.1", body=None):
    """A complete, connection-closing reply for errors wsgid answers itself."""
    body = body if body is not None else status.encode("latin-1") + b"\n"
    return (b"%s %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n%s: %s\r\n\r\n%s") % (
        b"HTTP/1.0" if version == "HTTP/1.0" else b"HTTP/1.1",
        status.encode("latin-1"), len(body), X_WSGID[0].encode(),
        X_WSGID[1].encode(), body)
