"""Where a worker takes its requests from: a :class:`Source`.

``direct`` (wsgid 0.7's way): every worker PULLs from mongrel2's
send_spec, and mongrel2 round-robins blindly among them
(:mod:`wsgid.direct_source`). ``broker`` (the default): the master holds
the connections to mongrel2 and hands requests to its workers over a
private DEALER/ROUTER pair; the worker's side is :class:`BrokerSource`,
here, the master's :mod:`wsgid.broker`. The worker asks its source, never
which mode it is in.
"""

import collections
import threading
import time

import zmq

from wsgid import message
from wsgid.brokerproto import (BYE, BYE_ACK, GONE, MORE, READY, WEBSOCKETS, WINDOW, Sent, Slot,
                               back, drop_conn, unframe)
from wsgid.flowcontrol import CREDITS
from wsgid.ticker import Ticker


class Source:
    """What a worker takes requests from, and what it tells it. The mode's
    policy is here: whether requests are read ahead (:attr:`prefetched`), whether
    a request's answer is reported to anyone (:meth:`done`,
    :meth:`head_sent`, :meth:`answered`), whether credits are paced
    (:attr:`paces`). The defaults are those of a source that tells no one
    (direct dispatch); test fakes start from them too."""

    prefetched = ()  # requests read ahead, not started: served without a poll
    front = 0        # the front-end the last request came from
    stamp = 0        # the generation of the socket it came by (see live)
    version = 0      # changes when a socket to poll is replaced
    socks = ()       # the sockets whose readiness means a request may wait
    #: Whether credit notices reach the worker serving their connection.
    paces = False
    #: With WebSockets served (the worker sets a deque): ``(front, conn_id)``
    #: of the disconnect notices a source reads itself (a broker's).
    departed = None

    def pollables(self):
        """What to poll (:attr:`socks`, and anything else that needs a look)."""
        return list(self.socks)

    def maintain(self, now):
        """Look after the connections; the seconds until this must be
        called again (None: no hurry)."""
        return None

    def connect(self):
        """Connect where requests come from, before mongrel2 has subscribed
        to the replies (nothing is read before :meth:`start`)."""

    def start(self, websockets=False):
        """Connect: requests may come from now on (``websockets``: the app
        has a WebSocket handler)."""

    def describe(self):
        """Where requests come from, for the log."""
        return ""

    def recv_nowait(self):
        """The next request (or notice); zmq.Again when none waits."""
        raise zmq.Again()

    def live(self, front, generation):
        """Whether the mongrel2 that sent a request (``front``, at
        ``generation``) is still there: its replies go only then."""
        return True

    def gone(self, key):
        """Whether the client of connection ``key`` (``(front, conn_id)``)
        is known to have gone."""
        return False

    def done(self, outbox):
        """The request in hand is answered (its reply is in ``outbox``)."""

    def head_sent(self, outbox):
        """A piece of the request in hand's answer has been put in ``outbox``."""

    def answered(self, mark):
        """``outbox`` has sent what came before a mark :meth:`done` or
        :meth:`head_sent` put there."""

    def leave(self):
        """Stop taking requests (a graceful exit)."""

    def leftovers(self, master=True):
        """After the loop: the requests already here, to be served (they are
        answered to mongrel2 directly, whether or not ``master`` is still
        there)."""
        return ()

    def close(self):
        pass


class BrokerSource(Source):
    """A DEALER to the master's ROUTER (see :mod:`wsgid.broker`).

    Requests arrive ahead, up to the master's window, into :attr:`prefetched`; the
    worker counts in its shared ``slot`` each one it starts and answers,
    and asks for more when half the window is free. While a request runs
    longer than ``reclaim`` seconds, a watchdog thread hands back what has
    not started, so that an idle worker serves it. The socket is shared with
    that thread under :attr:`lock`; the worker polls it only while idle,
    when the watchdog leaves it alone.

    With several front-ends (``tagged``) the master sends the index of the
    front-end before each message (see :mod:`wsgid.broker`); connection ids
    are only unique within one front-end, so a connection is known by
    ``(front, conn_id)``.
    """

    def __init__(self, context, spec, identity, slot, reclaim=0.01, tagged=False):
        self.sock = context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, identity)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.socks = (self.sock,)
        self.spec = spec
        self.slot = slot
        self.reclaim = reclaim
        self.tagged = tagged
        self.lock = threading.Lock()
        self.prefetched = collections.deque()  # Sent received, not started
        self.received = 0                # index of the last request received
        self.current = 0                 # index of the request in hand, 0: none
        self.head = 0                    # the last request whose answer was put in an outbox
        self.front = 0                   # the front-end it came from
        self.since = 0.0                 # when it started
        self.looked = 0.0                # when the socket was last read
        self.disconnected = set()        # (front, conn id) of the request in hand, once gone
        self.credits = {}                # (front, conn id) -> bytes granted, not yet taken
        self.asked = False               # MORE sent, no request since
        self.acked = False               # the master said BYE-ACK: nothing follows
        self.generations = {}            # front -> how many times its mongrel2 went (GONE)
        self.stamp = 0                   # the request in hand's front's generation then
        # Every reclaim / 2 seconds while requests come; parked (woken by
        # the next request) after a second without any.
        self.ticker = Ticker("wsgid-reclaim", reclaim / 2, 1.0, self._serving, self._reclaim,
                             self.lock)

    # Its socket is never replaced, nothing to maintain: the master
    # watches mongrel2 (Source's defaults).

    def describe(self):
        return "broker %s" % self.spec

    def live(self, front, generation):
        """Whether the mongrel2 that sent the request in hand is still there
        (the master says GONE after the last request of one that went; the
        socket is looked at once a millisecond at most)."""
        if time.monotonic() - self.looked > 0.001:
            with self.lock:
                self._take()
        return generation == self.generations.get(front, 0)

    def start(self, websockets=False):
        self.sock.connect(self.spec)
        self.sock.send_multipart([READY, WEBSOCKETS] if websockets else [READY])
        self.ticker.start()

    def recv_nowait(self):
        """The next request, counted as started; zmq.Again when none. What
        the master sent is read when nothing is prefetched, else at most every
        millisecond: a look at the socket costs about as much as the rest."""
        with self.lock:
            if not self.prefetched or time.monotonic() - self.looked > 0.001:
                self._take()
            if not self.prefetched:
                raise zmq.Again()
            self.since = time.monotonic()  # before current: the watchdog reads them so
            self.current, data, self.front = self.prefetched.popleft()  # a Sent
            self.stamp = self.generations.get(self.front, 0)
            self.slot.write(Slot.STARTED, self.current)
            self.ticker.wake()
        return data

    def done(self, outbox):
        """The request in hand is answered; the slot says so once its reply
        has left the outbox (:meth:`answered`): a held reply dies with the
        worker, and the master then answers 502 (as to the request in hand:
        a crash is a crash)."""
        outbox.mark(self.current)
        self.current = 0
        self.disconnected.clear()
        self.credits.clear()
        if not self.asked and len(self.prefetched) <= WINDOW // 2 and self.slot.waiting():
            with self.lock:
                self.sock.send(MORE)
            self.asked = True

    def answered(self, mark):
        """The outbox has sent what came before ``mark``: the reply of
        request ``mark``, or (``-index``) the first message of request
        ``index``'s answer (see :meth:`head_sent`)."""
        if mark > 0:
            self.slot.write(Slot.DONE, mark)
        else:
            self.slot.write(Slot.HEAD, -mark)

    def head_sent(self, outbox):
        """The answer of the request in hand has been put in ``outbox``
        (called after each piece): once its first message has left, if this
        worker dies the master closes the connection, as a 502 would follow
        bytes the client already has."""
        if self.head != self.current:
            self.head = self.current
            outbox.mark(-self.current)

    def leave(self):
        """Nothing now: the BYE goes out once the request in hand is done."""

    def leftovers(self, master=True):
        """Say BYE, then serve what the broker sent before it heard it. With
        the master gone no BYE-ACK comes, and what the watchdog handed back
        would reach no one: it stops, and what is here already is served."""
        if master:
            with self.lock:
                self.sock.send(BYE)
        else:
            self.ticker.stop()
        while True:
            try:
                yield self.recv_nowait()
            except zmq.Again:
                if not master or self.acked or not self.sock.poll(5000):
                    return

    #: The broker forwards a connection's notices to the worker serving it.
    paces = True

    def _take(self):
        """Read what the master sent meanwhile (the lock is taken): requests
        are prefetched; a disconnect drops that connection's prefetched ones and
        marks the one in hand; credits are counted."""
        sock = self.sock
        self.looked = time.monotonic()
        while sock.get(zmq.EVENTS) & zmq.POLLIN:
            for front, data in unframe(sock.recv_multipart(), self.tagged):
                if data == BYE_ACK:
                    self.acked = True
                elif data == GONE:  # what came before from that front-end: no one to answer
                    self.generations[front] = self.generations.get(front, 0) + 1
                    drop_conn(self.prefetched, front, lambda item: item.front)
                    # nor are its notices about the next one's clients of the same ids
                    self.disconnected = {key for key in self.disconnected if key[0] != front}
                    self.credits = {key: n for key, n in self.credits.items() if key[0] != front}
                elif not message.is_notice(data):
                    self.received += 1
                    self.prefetched.append(Sent(self.received, data, front))
                    self.asked = False
                else:
                    self._notice(data, front)

    def _notice(self, data, front):
        try:
            notice = message.parse(data)
        except message.MessageError:
            return
        key = (front, notice.conn_id)
        if notice.is_disconnect:
            self.disconnected.add(key)
            if self.departed is not None:
                self.departed.append(key)
            if self.prefetched:  # a request queued before the notice: its client is gone
                drop_conn(self.prefetched, key,
                          lambda item: (item.front, message.envelope(item.request)[1]))
        elif notice.control().get("type") == "credits":
            granted = notice.headers.get(CREDITS, "")
            if granted.isdigit():
                self.credits[key] = self.credits.get(key, 0) + int(granted)

    def gone(self, key):
        """True once the broker has forwarded mongrel2's disconnect notice
        for connection ``key`` (``(front, conn_id)``): a streamed response can
        stop early (the socket is looked at once a millisecond at most)."""
        if time.monotonic() - self.looked > 0.001:
            with self.lock:
                self._take()
        return key in self.disconnected

    def take_credits(self, key, timeout):
        """The bytes mongrel2 has sent on since last asked, waiting up to
        ``timeout`` for some; 0 when the client went away or none came. The
        wait is cut in short polls, so the watchdog gets its turns."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                self._take()
                granted = self.credits.pop(key, 0)
                if granted or key in self.disconnected:
                    return granted
                left = deadline - time.monotonic()
                if left <= 0:
                    return 0
                self.sock.poll(min(left, self.reclaim / 2) * 1000)

    # -- the watchdog ----------------------------------------------------------------
    def _serving(self):
        return self.current != 0

    def _reclaim(self, now):
        """Hand back what is prefetched if the request in hand has run past
        ``reclaim``."""
        current, since = self.current, self.since
        if not current or now - since < self.reclaim:
            return
        with self.lock:
            if self.current == current and not self.ticker.stopping:
                self._take()
                if self.prefetched:
                    self.sock.send_multipart(back([item.index for item in self.prefetched]))
                    self.prefetched.clear()

    def close(self):
        self.ticker.stop()
        self.sock.close()
