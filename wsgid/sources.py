"""Where a worker takes its requests from.

``direct`` (wsgid 0.7's way, the default): every worker PULLs from mongrel2's
send_spec, and mongrel2 round-robins blindly among them. ``broker``: the
master holds the only connection to mongrel2 and hands each request to an
idle worker over a local DEALER/ROUTER pair; see :mod:`wsgid.broker`.
"""

import collections
import time

import zmq

from wsgid import message
from wsgid.flowcontrol import CREDITS

# Worker -> broker: "give me work"; "I am leaving". Broker -> worker: "gone".
READY, BYE, BYE_ACK = b"READY", b"BYE", b"BYE-ACK"


class DirectSource:
    """PULL from mongrel2's send_spec."""

    held = ()  # never reads ahead

    def __init__(self, context, spec):
        self.sock = context.socket(zmq.PULL)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.spec = spec
        self.connected = False

    def start(self):
        self.sock.connect(self.spec)
        self.connected = True

    def recv_nowait(self):
        return self.sock.recv(zmq.NOBLOCK)

    def done(self):
        """Nothing to tell: mongrel2 pushes regardless."""

    def leave(self):
        """Disconnect now, so that mongrel2 queues nothing more here."""
        if self.connected:
            self.sock.disconnect(self.spec)
            self.connected = False

    def leftovers(self):
        """After :meth:`leave`: what was already queued here (else lost)."""
        self.leave()
        while self.sock.poll(50):
            yield self.sock.recv()

    def gone(self, conn_id):
        """Disconnect notices reach a random worker: nothing to learn here."""
        return False

    #: Credit notices reach a random worker too: no pacing in direct mode.
    paces = False

    def close(self):
        self.sock.close(linger=0)


class BrokerSource:
    """A DEALER to the master's ROUTER; asks for one request at a time."""

    def __init__(self, context, spec, identity):
        self.sock = context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, identity)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.spec = spec
        self.held = collections.deque()  # work read early while looking for notices
        self.disconnected = set()
        self.credits = {}  # conn id -> bytes granted, not yet taken

    def start(self):
        self.sock.connect(self.spec)
        self.sock.send(READY)

    def recv_nowait(self):
        if self.held:
            return self.held.popleft()
        return self.sock.recv(zmq.NOBLOCK)

    def done(self):
        self.disconnected.clear()
        self.credits.clear()
        self.sock.send(READY)

    def leave(self):
        """Nothing now: the BYE goes out once the request in hand is done."""

    def leftovers(self):
        """Say BYE, then serve what the broker sent before it heard it."""
        yield from self.held
        self.held.clear()
        self.sock.send(BYE)
        while self.sock.poll(5000):
            data = self.sock.recv()
            if data == BYE_ACK:
                return
            yield data

    #: The broker forwards a connection's notices to the worker serving it.
    paces = True

    def _take_notices(self):
        """Read what the broker sent meanwhile: notices are noted, work is
        held for later."""
        while self.sock.get(zmq.EVENTS) & zmq.POLLIN:
            data = self.sock.recv()
            if not message.is_control_envelope(data):
                self.held.append(data)
                continue
            try:
                notice = message.parse(data)
            except message.MessageError:
                continue
            if notice.is_disconnect:
                self.disconnected.add(notice.conn_id)
            elif notice.control().get("type") == "credits":
                granted = notice.headers.get(CREDITS, "")
                if granted.isdigit():
                    self.credits[notice.conn_id] = self.credits.get(notice.conn_id, 0) + int(granted)

    def gone(self, conn_id):
        """True once the broker has forwarded mongrel2's disconnect notice
        for ``conn_id``: a streamed response can stop early."""
        self._take_notices()
        return conn_id in self.disconnected

    def take_credits(self, conn_id, timeout):
        """The bytes mongrel2 has sent on since last asked, waiting up to
        ``timeout`` for some; 0 when the client went away or none came."""
        deadline = time.monotonic() + timeout
        while True:
            self._take_notices()
            granted = self.credits.pop(conn_id, 0)
            if granted or conn_id in self.disconnected:
                return granted
            left = deadline - time.monotonic()
            if left <= 0:
                return 0
            self.sock.poll(left * 1000)

    def close(self):
        self.sock.close()
