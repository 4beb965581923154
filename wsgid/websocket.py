"""WebSockets through mongrel2: the API an application uses, from its
WebSocket handler and from ordinary WSGI views alike.

A :class:`Connection` is a plain string the application may store (a
database row, a cache key): ``"<front>:<generation>:<conn_id>"``, naming the
mongrel2 front-end (its index in --send/--recv), the generation of that
mongrel2 (which start of it: see :mod:`wsgid.wsshared` for what the stamp is
and why it means the same in every process of this wsgid), and mongrel2's
connection id. :func:`send` and :func:`close` deliver to the connections of
the current generation only: those of a mongrel2 that has gone are dropped
silently, never delivered to a new client that reuses the id. mongrel2
takes up to 128 connection ids in one reply message, so a broadcast to
1,000 sockets is 8 messages.

They work in a wsgid worker (:func:`bind` is called when it starts);
elsewhere they raise RuntimeError.
"""

import collections
import logging

from wsgid import message, wsframes

log = logging.getLogger("wsgid")

__all__ = ["Connection", "Refuse", "send", "close"]

#: Connection ids mongrel2 takes in one reply (its limits.handler_targets).
MAX_TARGETS = 128


class Connection(str):
    """``Connection(stored)`` parses a stored value back (ValueError when it
    is not one); :meth:`make` names a new one."""

    __slots__ = ()

    def __new__(cls, value):
        parts = str(value).split(":")
        if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
            raise ValueError("not a WebSocket connection: %r" % (value,))
        return super().__new__(cls, ":".join(str(int(p)) for p in parts))

    @classmethod
    def make(cls, front, generation, conn_id):
        return cls("%d:%d:%d" % (front, generation, int(conn_id)))

    @property
    def front(self):
        return int(self.split(":")[0])

    @property
    def generation(self):
        return int(self.split(":")[1])

    @property
    def conn_id(self):
        return int(self.split(":")[2])


class Refuse(Exception):
    """Raised in the handler's ``open``: refuse the handshake with ``status``."""

    def __init__(self, status=403):
        super().__init__(status)
        self.status = status


_context = None  # the worker's Context, once bound


class Context:
    """What :func:`send` needs in a worker: its replies (the sockets to each
    front-end), the shared memory (wsgid.wsshared) and the handler, whose
    ``close`` is told of a close made here."""

    def __init__(self, replies, shared, handler=None):
        self.replies, self.shared, self.handler = replies, shared, handler

    def live(self, conns):
        """``conns`` grouped by front-end: ``{front: [conn_id bytes]}``, only
        those of the current generation (after this process's own look at
        its sockets, which may start a new one: see wsgid.wsshared)."""
        self.replies.count_subscriptions()
        shared = self.shared
        by_front = collections.defaultdict(list)
        for conn in _many(conns):
            front = conn.front
            if front < shared.fronts and conn.generation == shared.stamp(front):
                by_front[front].append(b"%d" % conn.conn_id)
        return by_front

    def deliver(self, by_front, *bodies):
        """Each body in turn to every connection of ``by_front``, at most
        MAX_TARGETS ids a message."""
        replies = self.replies
        for front, ids in by_front.items():
            sender = self.shared.sender(front)
            if not sender:
                continue
            if replies.subscribed[front] <= 0:
                replies.await_subscriber(front)
            outbox = replies.outboxes[front]
            for start in range(0, len(ids), MAX_TARGETS):
                chunk = ids[start:start + MAX_TARGETS]
                for body in bodies:
                    outbox.put(message.reply(sender, chunk, b""), body)


    def closed(self, front, conn_id, code):
        """A socket has closed: the handler's ``close`` is called if this
        process is the one that takes it out of the open sockets (once per
        socket in all processes)."""
        stamp = self.shared.take(front, conn_id)
        handler_close = getattr(self.handler, "close", None)
        if stamp is None or handler_close is None:
            return
        try:
            handler_close(Connection.make(front, stamp, conn_id), code)
        except Exception:
            log.exception("Error in the WebSocket handler's close()")


def bind(replies, shared, handler=None):
    """Make :func:`send` and :func:`close` work in this process."""
    global _context
    _context = Context(replies, shared, handler)
    return _context


def _bound():
    if _context is None:
        raise RuntimeError("wsgid.websocket works in a wsgid worker only")
    return _context


def _many(conns):
    if isinstance(conns, str):
        conns = (conns,)
    return [conn if type(conn) is Connection else Connection(conn) for conn in conns]


def send(conns, data):
    """Send a message to one connection or to many: ``str`` as a text
    message, ``bytes`` as binary. Connections of a mongrel2 that has gone are
    dropped. (Not to a connection from its own ``open``: its 101 has not
    gone yet.)"""
    frame = wsframes.message(data)
    context = _bound()
    context.deliver(context.live(conns), frame)


def close(conns, code=wsframes.NORMAL, reason=""):
    """Close connections with ``code`` and ``reason``: the close frame, then
    mongrel2 closes the socket. The handler's ``close`` is told (here), once
    per socket still open."""
    frame = wsframes.close_frame(code, reason)
    context = _bound()
    by_front = context.live(conns)
    context.deliver(by_front, frame, message.CLOSE)
    for front, ids in by_front.items():
        for conn_id in ids:
            context.closed(front, int(conn_id), code)
