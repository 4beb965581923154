"""The reply side of a worker: its XPUB socket to mongrel2's recv_spec (one
per front-end).

Connecting, counting mongrel2's subscriptions (a reply PUBlished before
mongrel2 has subscribed would reach no one), holding a reply while mongrel2
restarts, dropping the replies of a mongrel2 that has gone (see
:meth:`Replies.sender`), framing each reply for its connection, and the
outbox that sends them (see wsgid.outbox). The request side is the source (wsgid.sources),
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


#: How stale the subscription counts may be when a reply is framed or sent:
#: far less than a mongrel2 takes to start and forward a request.
FRESH_SECONDS = 0.001


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
            # Queue only to a live connection: a reply for a mongrel2 that
            # stopped is dropped, not handed to the next one on reconnect.
            pub.setsockopt(zmq.IMMEDIATE, 1)
            # Every subscription and unsubscription, per pipe: a new mongrel2
            # subscribes to what the old one's pipe (not yet ended) still
            # holds, which a plain XPUB would not report (replies then waited
            # for it for good).
            pub.setsockopt(zmq.XPUB_VERBOSER, 1)
        # The unsubscription of a mongrel2 that went shows only after the
        # worker has traded commands with ZeroMQ's I/O thread (a busy worker
        # does not), maybe after the next one's subscription; the monitor's
        # event is readable at once.
        self.monitors = [pub.get_monitor_socket(zmq.EVENT_DISCONNECTED) for pub in self.pubs]
        self.source = source
        self.outboxes = [Outbox(pub, on_sent=source.answered) for pub in self.pubs]
        self.subscribed = [0] * len(self.pubs)  # subscriptions, per front-end
        self.generation = [0] * len(self.pubs)  # how many times a mongrel2 went, per front-end
        self.checked = 0.0  # when the counts were last read (time.monotonic)
        self.front = 0
        self.pub, self.outbox = self.pubs[0], self.outboxes[0]
        self.on_gone = None  # on_gone(front): a mongrel2 went (wsgid.wsevents), under the lock

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
        """Read what the sockets tell: a mongrel2 gone (the monitor), a
        subscription made or ended (XPUB: 1 or 0, then the topic). Returns
        how many front-ends listen now."""
        self.checked = time.monotonic()
        for front, outbox in enumerate(self.outboxes):
            with outbox.lock:
                self._count(front)
        return sum(1 for count in self.subscribed if count > 0)

    def _count(self, front):
        monitor = self.monitors[front]
        try:
            while True:
                monitor.recv_multipart(zmq.NOBLOCK)
                self.generation[front] += 1
                if self.on_gone is not None:
                    self.on_gone(front)
        except zmq.Again:
            pass
        pub = self.pubs[front]
        try:
            while True:
                self.subscribed[front] += 1 if pub.recv(zmq.NOBLOCK)[:1] == b"\x01" else -1
        except zmq.Again:
            pass

    def _fresh(self):
        if time.monotonic() - self.checked > FRESH_SECONDS:
            self.count_subscriptions()

    def await_subscriber(self, front, timeout=5.0):
        """mongrel2 ``front`` (re)started: hold the reply until it has
        subscribed, rather than PUBlish it to no one. The other front-ends'
        replies do not wait for it (each has its own socket)."""
        deadline = time.monotonic() + timeout
        with self.outboxes[front].lock:  # nor let the watchdog send what is held
            while self.subscribed[front] <= 0 and time.monotonic() < deadline:
                if self.pubs[front].poll(50):
                    self._count(front)

    def sender(self, sender, conn_id, extended=False):
        """``send(body, hold=False, limit=0)`` for one connection of the
        current front-end: the body framed for mongrel2 (``extended``: an
        extended reply, ``X`` before the connection id) and put in the
        outbox (see Outbox.put), unless the client is known to be gone. The
        source learns that an answer has begun (a master must not answer 502
        after it).

        A new mongrel2 numbers its connections from the start again: a reply
        to a request its predecessor sent would reach another client. So
        every frame of a request (reply, close, sendfile) goes only while the
        mongrel2 that sent it is there: the source's socket it came by is
        still the current one (see wsgid.pulls), and no mongrel2 has left
        the reply socket since it was taken (the monitor). Otherwise it is
        dropped, a body raising ClientGone; so is a reply held for a new
        mongrel2's subscription, once that has come."""
        envelope = message.reply(sender, b"X " + conn_id if extended else conn_id, b"")
        front = self.front
        key = (front, conn_id)
        stamp = self.source.stamp
        subscribed, generation, fresh = self.subscribed, self.generation, self._fresh
        fresh()
        born = generation[front]
        gone, live, outbox, begun = (self.source.gone, self.source.live, self.outbox,
                                        self.source.head_sent)

        def send(body, hold=False, limit=0):
            if subscribed[front] <= 0:
                self.await_subscriber(front)
            fresh()
            if generation[front] != born or not live(front, stamp):
                if body:
                    raise ClientGone()
                return  # nor close a connection of the new mongrel2
            if body and gone(key):
                raise ClientGone()
            outbox.put(envelope, body, hold, limit)
            begun(outbox)
        return send

    def send(self, sender, conn_id, body):
        self.sender(sender, conn_id)(body)

    def sendfile(self, sender, conn_id, path):
        """Have mongrel2's ``sendfile`` plugin stream the file at ``path`` (bytes,
        as mongrel2 sees it) to the connection, after what was sent to it: an
        extended reply holding the tnetstring list ``["sendfile", path]``."""
        items = b"8:sendfile,%d:%s," % (len(path), path)
        self.sender(sender, conn_id, extended=True)(b"%d:%s]" % (len(items), items))

    def refuse(self, sender, conn_id, status, version="HTTP/1.1"):
        """An error reply wsgid answers itself, then the connection closed."""
        self.send(sender, conn_id, error_reply(status, version))
        self.send(sender, conn_id, CLOSE)

    def close(self):
        for outbox, pub, monitor in zip(self.outboxes, self.pubs, self.monitors):
            outbox.stop()
            pub.disable_monitor()
            monitor.close()
            pub.close()
