"""A worker's replies to mongrel2: held briefly and sent together.

Sending on a ZeroMQ socket wakes libzmq's I/O thread when it sleeps, and under
load that wake-up (a context switch, often an inter-processor interrupt) costs
a small request about as much as wsgid's own Python. So while a worker serves
requests that are already queued, it holds the one-message replies it
finishes and sends them together when the queue is empty, when HOLD_COUNT of
them wait, or before anything that must go out at once (a close), in order.

A streamed response's pieces are held too, and the pieces of one response
held one after the other join in one message (up to a size the response
sets): a fast stream leaves in few large messages, within mongrel2's limit of
16 messages queued per connection, and a slow one piece by piece.

Nothing held waits for the application's next move: a watchdog thread sends
what has been held for HOLD_SECONDS. It is the only other thread that touches
the socket, and only under :attr:`Outbox.lock` while something is held: the
worker takes the lock for anything else it does with the socket, and holds
nothing while it polls it, so the poll never races a send.
"""

import threading
import time

from wsgid.ticker import Ticker

HOLD_COUNT = 32          # replies held at most: a batch, not a backlog
HOLD_SECONDS = 0.005     # the longest a held reply waits (plus the GIL's hand-over)
PARK_SECONDS = 1.0       # the watchdog sleeps for good after this long without work
_COPY_THRESHOLD = 1 << 16  # below this pyzmq copies faster than it tracks


class Outbox:
    """The worker's PUB socket to mongrel2, with the held replies."""

    def __init__(self, sock, on_sent=None):
        """``on_sent(mark)`` is called (under :attr:`lock`, from whichever
        thread sends) once what was put before :meth:`mark` has been sent."""
        self.sock = sock
        self.on_sent = on_sent
        self.lock = threading.Lock()
        # Messages in order; the last may be a list of parts that later
        # pieces of its response join (_open is then that response's envelope).
        self.held = []
        self.held_since = 0.0
        self._open = None
        self._open_size = 0
        self.ticker = Ticker("wsgid-outbox", HOLD_SECONDS, PARK_SECONDS,
                             self._holding, self._send_old, self.lock)

    def put(self, envelope, body, hold=False, limit=0):
        """Send the reply message ``envelope + body`` after what is held, or
        with ``hold`` queue it (HOLD_SECONDS at most). With ``limit`` too, it
        is a streamed piece: it joins the piece of its response held just
        before it while the message stays within ``limit`` body bytes."""
        with self.lock:
            held = self.held
            if limit and self._open is envelope:
                if self._open_size + len(body) <= limit:
                    held[-1].append(body)
                    self._open_size += len(body)
                    return
                self._flush()  # the open message is full: it goes, this one starts the next
            if not hold or (limit and len(body) >= limit):
                held.append(envelope + body)
                self._flush()
                return
            if not held:
                self.held_since = time.monotonic()
                self.ticker.wake()  # the watchdog must see to it
            if limit:
                held.append([envelope, body])
                self._open, self._open_size = envelope, len(body)
            else:
                held.append(envelope + body)
                self._open = None
            if len(held) >= HOLD_COUNT:
                self._flush()

    def mark(self, mark):
        """Call ``on_sent(mark)`` once what is held now has been sent: at
        once when nothing is held."""
        with self.lock:
            if self.held:
                self.held.append(mark)  # an int among the messages
                self._open = None
            else:
                self.on_sent(mark)

    def flush(self):
        if self.held:
            with self.lock:
                self._flush()

    def _flush(self):
        # Each frame leaves the list before it is sent: a fast stop's
        # SystemExit raised here (the worker's SIGINT handler) leaves only
        # the unsent ones for the last flush, none sent twice.
        send, held = self.sock.send, self.held
        self._open = None
        while held:
            frame = held.pop(0)
            if type(frame) is int:
                self.on_sent(frame)
                continue
            if type(frame) is list:
                frame = b"".join(frame)
            send(frame, copy=len(frame) < _COPY_THRESHOLD)

    # -- the watchdog ------------------------------------------------------------
    def start(self):
        self.ticker.start()

    def stop(self):
        """Send what is held and end the watchdog."""
        self.ticker.stop()
        self.flush()

    def _holding(self):
        return bool(self.held)

    def _send_old(self, now):
        """What has been held for HOLD_SECONDS goes."""
        if now - self.held_since >= HOLD_SECONDS:
            with self.lock:
                if self.held and now - self.held_since >= HOLD_SECONDS:
                    self._flush()
