"""Direct dispatch's sources (``--dispatch direct``, wsgid 0.7's way):
every worker PULLs from mongrel2's send_spec itself, and mongrel2
round-robins blindly among them. One :class:`wsgid.pulls.Pull` per
front-end; with several, :class:`FrontEnds` reads them in turn.
"""

import zmq

from wsgid.pulls import Pull
from wsgid.sources import Source


class DirectSource(Source):
    """PULL from mongrel2's send_spec: one :class:`wsgid.pulls.Pull` per
    front-end (``specs``); :attr:`front` is the index of the one the last
    request came from, :attr:`stamp` the generation of its socket (see
    :meth:`current`)."""

    def __init__(self, context, specs):
        self.pulls = [Pull(context, spec) for spec in specs]
        self.specs = specs
        self.connected = False

    @property
    def socks(self):
        return [pull.sock for pull in self.pulls]

    @property
    def sock(self):
        return self.pulls[0].sock

    @property
    def version(self):
        """Changes when a socket is replaced (a poller must be made anew)."""
        return sum(pull.generation for pull in self.pulls)

    def pollables(self):
        """What to poll: the sockets, and their monitors (a mongrel2 gone)."""
        return [pull.sock for pull in self.pulls] + [pull.monitor for pull in self.pulls]

    def connect(self):
        """Connect at once, not after mongrel2's subscription: a mongrel2
        that met a reply to a connection gone while no handler was connected
        here waits to tell one (a blocking send) in the task that reads the
        replies, and so subscribes to no one until a handler connects here.
        Requests queue meanwhile; the worker reads none before it is ready."""
        if not self.connected:
            for pull in self.pulls:
                pull.start()
            self.connected = True

    def start(self, websockets=False):
        self.connect()

    def describe(self):
        return "recv %s" % ", ".join(self.specs)

    def maintain(self, now):
        """Read the monitors, try failed connections again; the seconds
        until the next try (None: none waits)."""
        soonest = None
        for pull in self.pulls:
            pull.check()
            wait = pull.due(now)
            if wait is not None and (soonest is None or wait < soonest):
                soonest = wait
        return soonest

    def recv_nowait(self):
        pull = self.pulls[0]
        pull.check()  # before: what a gone mongrel2 sent is not even read
        data = pull.sock.recv(zmq.NOBLOCK)
        self.stamp = pull.generation
        return data

    def live(self, front, generation):
        """Whether the mongrel2 that sent a request ``front``'s socket
        received at ``generation`` is still there: its replies go only then."""
        return self.pulls[front].current(generation)

    def leave(self):
        """Disconnect now, so that mongrel2 queues nothing more here."""
        if self.connected:
            for pull in self.pulls:
                pull.leave()
            self.connected = False

    def leftovers(self, master=True):
        """What was already queued here, taken before mongrel2 is left
        (leaving drops what a connection holds), then served."""
        taken = []
        for front, pull in enumerate(self.pulls):
            while pull.sock.poll(0):
                taken.append((front, pull.generation, pull.sock.recv()))
        self.leave()
        for front, stamp, data in taken:
            self.front, self.stamp = front, stamp
            yield data

    # Nothing to tell on answers (mongrel2 pushes regardless); disconnect
    # and credit notices reach a random worker: no pacing (Source's defaults).

    def close(self):
        for pull in self.pulls:
            pull.close()


class FrontEnds(DirectSource):
    """Direct dispatch from several mongrel2 front-ends: their sockets are
    read in turn, so that a busy one does not starve the others."""

    _next = 0

    def recv_nowait(self):
        pulls = self.pulls
        count = len(pulls)
        for step in range(count):
            front = (self._next + step) % count
            pull = pulls[front]
            pull.check()
            try:
                data = pull.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                continue
            self._next = (front + 1) % count
            self.front, self.stamp = front, pull.generation
            return data
        raise zmq.Again()


def direct(context, specs):
    """The direct source for mongrel2's send_specs (one per front-end)."""
    return (DirectSource if len(specs) == 1 else FrontEnds)(context, specs)
