"""The PULL from one mongrel2 front-end's send_spec: one socket per mongrel2
start, so that every request is known to come from the start that sent it.

A restarted mongrel2 numbers its connections from 1 again: a reply to a
request of the one that went would reach the new one's client of that id.
ZeroMQ's PULL hides which connection a message came by, and a socket that
reconnects by itself queues the new mongrel2's requests right behind the old
one's, where nothing tells them apart (a socket monitor's events are not
ordered with the messages). So this socket never reconnects
(``RECONNECT_IVL`` -1): everything it ever receives is from the one mongrel2
it connected to. Once its monitor says that connection is gone, the socket is
closed with what it still holds (requests whose clients went with that
mongrel2) and a new one connects: :attr:`Pull.generation` counts them, and a
request's replies are sent only while the socket it came by is the current
one (:meth:`Pull.current`).

A connection that fails (no mongrel2 listening yet) is not retried by
ZeroMQ either: it is tried again after RETRY_SECONDS (:meth:`Pull.due`).
"""

import time

import zmq

RETRY_SECONDS = 0.1  # ZeroMQ's own reconnection interval


class Pull:
    """``connections`` connections to ``spec`` (the master's: one per
    worker, or one while WebSockets may be served, see wsgid.broker);
    :attr:`sock` is the current socket, replaced when a mongrel2 goes
    (:meth:`check`)."""

    def __init__(self, context, spec, connections=1):
        self.context, self.spec, self.connections = context, spec, connections
        self.generation = 0       # sockets opened so far: the current one's number
        self.sock = self.monitor = None
        self.retries = 0          # connections that failed, to try again
        self.retry_at = 0.0       # when (time.monotonic)
        self.open = False
        self.left = False         # left mongrel2 for good (leave)

    def start(self):
        self._renew()

    def _renew(self):
        self.close()
        sock = self.context.socket(zmq.PULL)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, -1)
        self.monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED)
        for _ in range(self.connections):
            sock.connect(self.spec)
        self.sock, self.retries, self.open = sock, 0, True
        self.generation += 1

    def check(self):
        """Read the monitor: a connection gone means its mongrel2 went, and
        the socket is replaced (True: :attr:`sock` changed); a connection
        that failed is tried again later."""
        if not self.open:
            return False
        gone = False
        try:
            while True:
                event = self.monitor.recv_multipart(zmq.NOBLOCK)[0]
                if int.from_bytes(event[:2], "little") == zmq.EVENT_DISCONNECTED:
                    gone = True
                else:  # EVENT_CLOSED: a connect failed, not retried by ZeroMQ
                    if not self.retries:
                        self.retry_at = time.monotonic() + RETRY_SECONDS
                    self.retries += 1
        except zmq.Again:
            pass
        if gone and not self.left:
            self._renew()
            return True
        return False

    def grow(self, connections):
        """Up to ``connections`` connections, now and after each renewal;
        never fewer (closing one would drop the requests it holds)."""
        extra = connections - self.connections
        if extra <= 0:
            return
        self.connections = connections
        if self.open and not self.left:
            for _ in range(extra):
                self.sock.connect(self.spec)

    def due(self, now):
        """Try the failed connections again once their time has come; the
        seconds until then (None: nothing waits)."""
        if not self.retries or self.left:
            return None
        if now < self.retry_at:
            return self.retry_at - now
        for _ in range(self.retries):
            self.sock.connect(self.spec)
        self.retries = 0
        return None

    def current(self, generation):
        """Whether a request received at ``generation`` still has its
        mongrel2 (as far as the monitor has said)."""
        self.check()
        return generation == self.generation

    def leave(self):
        """Connect no more, for good. ZeroMQ drops what the connections
        hold: read it first."""
        if self.open:
            self.retries, self.left = 0, True
            try:
                self.sock.disconnect(self.spec)
            except zmq.ZMQError:  # every connection had failed: nothing to end
                pass

    def close(self):
        if self.sock is not None:
            self.sock.disable_monitor()
            self.monitor.close(linger=0)
            self.sock.close(linger=0)
            self.sock = self.monitor = None
        self.open = False
