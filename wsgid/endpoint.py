"""The ``--metrics`` endpoint: plain HTTP, ``GET /metrics`` only, served
in the master's own loop without ever blocking it: a non-blocking socket
polled with the rest, one request per connection, at most
:data:`MAX_CLIENTS` at once, each with :data:`DEADLINE` seconds to send
its request head (:data:`HEAD_LIMIT` bytes at most) and read the answer.
(A thread would be simpler, but the master forks: a thread holding a lock
at a fork leaves the worker with that lock held forever.) What it serves
is :mod:`wsgid.metrics`'; this module does not import prometheus_client, so
the options can be checked without it.
"""

import errno
import socket
import time

import zmq

MAX_CLIENTS = 8
DEADLINE = 5.0
HEAD_LIMIT = 8192
_ACCEPTS = 64  # accepted at most per wake-up: a flood of connects cannot starve the loop
_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def address(text):
    """``(host, port)`` of ``HOST:PORT`` (``[::1]:PORT`` for IPv6); ValueError."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("--metrics %r is not HOST:PORT (127.0.0.1:9101, [::1]:9101)" % text)
    return host, int(port)


def _reply(status, body, content_type="text/plain; charset=utf-8"):
    return (b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close"
            b"\r\n\r\n%s" % (status, content_type.encode(), len(body), body))


class _Client:
    def __init__(self, sock, now):
        self.sock = sock
        self.deadline = now + DEADLINE
        self.head = b""
        self.out = None  # the reply, once the head is read: what is left of it

    def events(self):
        return zmq.POLLOUT if self.out is not None else zmq.POLLIN


class Endpoint:
    """The listening socket and its clients; ``render()`` makes the
    exposition (bytes)."""

    def __init__(self, where, render):
        host, port = where
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        self.listener = socket.socket(info[0], socket.SOCK_STREAM | socket.SOCK_NONBLOCK
                                      | socket.SOCK_CLOEXEC)
        try:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(info[4])
            self.listener.listen(16)
        except OSError:
            self.listener.close()
            raise
        self.render = render
        self.clients = {}  # fd -> _Client
        self.poller = None

    def register(self, poller):
        """Be polled by ``poller`` (the master's, made anew at times)."""
        self.poller = poller
        poller.register(self.listener.fileno(), zmq.POLLIN)
        for fd, client in self.clients.items():
            poller.register(fd, client.events())

    def handle(self, events):
        now = time.monotonic()
        if self.listener.fileno() in events:
            self._accept(now)
        for fd in [fd for fd in self.clients if fd in events]:
            self._step(fd, self.clients[fd])

    def sweep(self):
        """Close the clients past their deadline."""
        now = time.monotonic()
        for fd, client in list(self.clients.items()):
            if now > client.deadline:
                self._close(fd)

    def _accept(self, now):
        for _ in range(_ACCEPTS):
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # out of descriptors, say: try at the next wake-up
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                return
            if len(self.clients) >= MAX_CLIENTS:
                sock.close()
                continue
            sock.setblocking(False)
            fd = sock.fileno()
            self.clients[fd] = _Client(sock, now)
            self.poller.register(fd, zmq.POLLIN)

    def _step(self, fd, client):
        try:
            if client.out is None:
                data = client.sock.recv(HEAD_LIMIT)
                if not data:
                    return self._close(fd)
                client.head += data
                if b"\r\n\r\n" not in client.head and b"\n\n" not in client.head:
                    if len(client.head) >= HEAD_LIMIT:
                        client.out = _reply(b"431 Request Header Fields Too Large", b"")
                        self.poller.register(fd, zmq.POLLOUT)
                    return None
                client.out = self._answer(client.head)
                self.poller.register(fd, zmq.POLLOUT)
            sent = client.sock.send(client.out)
            client.out = client.out[sent:]
            if not client.out:
                self._close(fd)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close(fd)
        return None

    def _answer(self, head):
        words = head.split(b"\r\n", 1)[0].split(b"\n", 1)[0].split()
        if len(words) != 3 or not words[2].startswith(b"HTTP/"):
            return _reply(b"400 Bad Request", b"Bad Request\n")
        if words[1].split(b"?", 1)[0] != b"/metrics":
            return _reply(b"404 Not Found", b"Only /metrics here\n")
        if words[0] != b"GET":
            return _reply(b"405 Method Not Allowed", b"GET only\n")
        return _reply(b"200 OK", self.render(), _TYPE)

    def _close(self, fd):
        client = self.clients.pop(fd)
        if self.poller is not None:
            self.poller.unregister(fd)
        client.sock.close()

    def close(self):
        for fd in list(self.clients):
            self._close(fd)
        self.listener.close()
