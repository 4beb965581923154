"""The reply side of a worker: its XPUB socket to mongrel2's recv_spec (one
per front-end).

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
    """Owns ``socks`` (XPUBs, one per mongrel2 front-end, in the order of
    the send_specs) from now on; ``source`` is the worker's.

    mongrel2 subscribes to everything its recv_spec gets and writes each
    reply to its own connection of that id: a reply must reach only the
    front-end that sent the request, hence a socket (and an outbox) per
    front-end, :attr:`front` the current one (see :meth:`follow`)."""

    def __init__(self, socks, source):
        self.pubs = list(socks)
        for pub in self.pubs:
            pub.setsockopt(zmq.LINGER, 2000)
        self.source = source
        on_sent = getattr(source, "answered", None)
        self.outboxes = [Outbox(pub, on_sent=on_sent) for pub in self.pubs]
        self.subscribed = [0] * len(self.pubs)  # mongrel2 SUB sockets listening, per front-end
        self.front = 0
        self.pub, self.outbox = self.pubs[0], self.outboxes[0]

    def connect(self, specs):
        for pub, spec in zip(self.pubs, specs):
            pub.connect(spec)

    def start(self):
        for outbox in self.outboxes:
            outbox.start()

    def follow(self, front):
        """The next replies go to front-end ``front``. What the previous one
        holds leaves first: a broker reads a request as answered once its
        mark has left an outbox (BrokerSource.done), so marks stay in order."""
        self.outbox.flush()
        self.front = front
        self.pub, self.outbox = self.pubs[front], self.outboxes[front]

    def count_subscriptions(self):
        """XPUB tells (un)subscriptions: 1 then the topic, 0 when a SUB side
        (mongrel2 stopping) goes. Returns how many front-ends listen now."""
        for front, outbox in enumerate(self.outboxes):
            with outbox.lock:
                self._count(front)
        return sum(1 for count in self.subscribed if count > 0)

    def _count(self, front):
        pub = self.pubs[front]
        try:
            while True:
                self.subscribed[front] += 1 if pub.recv(zmq.NOBLOCK)[:1] == b"\x01" else -1
        except zmq.Again:
            pass

    def await_subscriber(self, front, timeout=5.0):
        """mongrel2 ``front`` (re)started: hold the reply until it has
        subscribed, rather than PUBlish it to no one. The other front-ends'
        replies do not wait for it (each has its own socket)."""
        deadline = time.monotonic() + timeout
        with self.outboxes[front].lock:  # nor let the watchdog send what is held
            while self.subscribed[front] <= 0 and time.monotonic() < deadline:
                if self.pubs[front].poll(50):
                    self._count(front)

    def sender(self, sender, conn_id):
        """``send(body, hold=False, limit=0)`` for one connection of the
        current front-end: the body framed for mongrel2 and put in the
        outbox (see Outbox.put), unless the client is known to be gone. The
        source learns that an answer has begun (a master must not answer 502
        after it)."""
        envelope = message.reply(sender, conn_id, b"")
        front = self.front
        key = (front, conn_id)
        subscribed = self.subscribed
        gone, outbox, begun = self.source.gone, self.outbox, self.source.head_sent

        def send(body, hold=False, limit=0):
            if body and gone(key):
                raise ClientGone()
            if subscribed[front] <= 0:
                self.await_subscriber(front)
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
        for outbox, pub in zip(self.outboxes, self.pubs):
            outbox.stop()
            pub.close()
