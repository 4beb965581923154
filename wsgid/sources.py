"""Where a worker takes its requests from.

``direct`` (wsgid 0.7's way, the default): every worker PULLs from mongrel2's
send_spec, and mongrel2 round-robins blindly among them. ``broker``: the
master holds the only connection to mongrel2 and hands each request to an
idle worker over a local DEALER/ROUTER pair; see :mod:`wsgid.broker`.
"""

import collections

import zmq

from wsgid import message

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

    def start(self):
        self.sock.connect(self.spec)
        self.sock.send(READY)

    def recv_nowait(self):
        if self.held:
            return self.held.popleft()
        return self.sock.recv(zmq.NOBLOCK)

    def done(self):
        self.disconnected.clear()
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

    def gone(self, conn_id):
        """True once the broker has forwarded mongrel2's disconnect notice
        for ``conn_id``: a streamed response can stop early."""
        while self.sock.get(zmq.EVENTS) & zmq.POLLIN:
            data = self.sock.recv()
            if message.is_control_envelope(data):
                if b'"disconnect"' in data:
                    self.disconnected.add(data.split(b" ", 2)[1])
            else:
                self.held.append(data)
        return conn_id in self.disconnected

    def close(self):
        self.sock.close()
