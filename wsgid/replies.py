"""The reply side of a worker: its XPUB socket to mongrel2's recv_spec.

Connecting, counting mongrel2's subscriptions (a reply PUBlished before
mongrel2 has subscribed would reach no one), holding a reply while mongrel2
restarts, framing each reply for its connection, and the outbox that sends
them (see wsgid.outbox). The request side is the source (wsgid.sources),
which also tells whether a client has gone.
"""

import time

import zmq

from wsgid import message
from wsgid.message import CLOSE
from wsgid.outbox import Outbox
from wsgid.response import error_reply


class ClientGone(Exception):
    """mongrel2 said the client went away while its response streamed."""


class Replies:
    """Owns ``sock`` (an XPUB) from now on; ``source`` is the worker's."""

    def __init__(self, sock, source):
        self.pub = sock
        self.pub.setsockopt(zmq.LINGER, 2000)
        self.source = source
        self.outbox = Outbox(sock, on_sent=getattr(source, "answered", None))
        self.subscribed = 0  # mongrel2 SUB sockets listening to our replies

    def connect(self, spec):
        self.pub.connect(spec)

    def count_subscriptions(self):
        """XPUB tells (un)subscriptions: 1 then the topic, 0 when a SUB side
        (mongrel2 stopping) goes. Returns how many listen now."""
        with self.outbox.lock:
            self._count()
        return self.subscribed

    def _count(self):
        try:
            while True:
                self.subscribed += 1 if self.pub.recv(zmq.NOBLOCK)[:1] == b"\x01" else -1
        except zmq.Again:
            pass

    def await_subscriber(self, timeout=5.0):
        """mongrel2 restarted: hold the reply until it has subscribed again,
        rather than PUBlish it to no one."""
        deadline = time.monotonic() + timeout
        with self.outbox.lock:  # nor let the watchdog send what is held
            while self.subscribed <= 0 and time.monotonic() < deadline:
                if self.pub.poll(50):
                    self._count()

    def sender(self, sender, conn_id):
        """``send(body, hold=False, limit=0)`` for one connection: the body
        framed for mongrel2 and put in the outbox (see Outbox.put), unless
        the client is known to be gone. The source learns that an answer
        has begun (a master must not answer 502 after it)."""
        envelope = message.reply(sender, conn_id, b"")
        gone, outbox, begun = self.source.gone, self.outbox, self.source.head_sent

        def send(body, hold=False, limit=0):
            if body and gone(conn_id):
                raise ClientGone()
            if self.subscribed <= 0:
                self.await_subscriber()
            begun()
            outbox.put(envelope, body, hold, limit)
        return send

    def send(self, sender, conn_id, body):
        self.sender(sender, conn_id)(body)

    def sendfile(self, sender, conn_id, path):
        """Have mongrel2's ``sendfile`` plugin stream the file at ``path`` (bytes,
        as mongrel2 sees it) to the connection, after what was sent to it: an
        extended reply (``X`` before the connection id) holding the
        tnetstring list ``["sendfile", path]``."""
        items = b"8:sendfile,%d:%s," % (len(path), path)
        self.outbox.put(message.reply(sender, b"X " + conn_id, b""),
                        b"%d:%s]" % (len(items), items))

    def refuse(self, sender, conn_id, status, version="HTTP/1.1"):
        """An error reply wsgid answers itself, then the connection closed."""
        self.send(sender, conn_id, error_reply(status, version))
        self.send(sender, conn_id, CLOSE)

    def close(self):
        self.outbox.stop()
        self.pub.close()
