"""A worker's replies to mongrel2: small whole ones held briefly and sent together.

Sending on a ZeroMQ socket wakes libzmq's I/O thread when it sleeps, and under
load that wake-up (a context switch, often an inter-processor interrupt) costs
a small request about as much as wsgid's own Python. So while a worker serves
requests that are already queued, it holds the one-message replies it
finishes and sends them together when the queue is empty, when HOLD_COUNT of
them wait, or before anything that must go out at once (a streamed piece, a
close), in order. A reply never waits behind a slow request for long: a
watchdog thread sends what has been held for HOLD_SECONDS.

The watchdog is the only other thread that touches the socket, and only under
:attr:`Outbox.lock` while replies are held: the worker takes the lock for
anything else it does with the socket, and holds no reply while it polls it,
so the poll never races a send.
"""

import threading
import time

import zmq

HOLD_COUNT = 32          # replies held at most: a batch, not a backlog
HOLD_SECONDS = 0.005     # the longest a held reply waits (plus the GIL's hand-over)
PARK_SECONDS = 1.0       # the watchdog sleeps for good after this long without work
_COPY_THRESHOLD = 1 << 16  # below this pyzmq copies faster than it tracks


class Outbox:
    """The worker's PUB socket to mongrel2, with the held replies."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()
        self.held = []
        self.held_since = 0.0
        self._wake = threading.Event()
        self._parked = True
        self._stopping = False
        self._thread = None

    def send(self, frame):
        """Send ``frame`` now, after what is held."""
        with self.lock:
            self.held.append(frame)
            self._flush()

    def hold(self, frame):
        """Queue ``frame``; it leaves with the next :meth:`flush` or send."""
        with self.lock:
            held = self.held
            if not held:
                self.held_since = time.monotonic()
            held.append(frame)
            if len(held) >= HOLD_COUNT:
                self._flush()

    def before_request(self):
        """The worker starts on another request: what is held waits for it,
        so the watchdog must be awake."""
        if self.held and self._parked and self._thread is not None:
            with self.lock:
                self._parked = False
                self._wake.set()

    def flush(self):
        if self.held:
            with self.lock:
                self._flush()

    def _flush(self):
        send = self.sock.send
        for frame in self.held:
            send(frame, copy=len(frame) < _COPY_THRESHOLD)
        self.held = []

    # -- the watchdog ------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._watch, name="wsgid-outbox", daemon=True)
        self._thread.start()

    def stop(self):
        """Send what is held and end the watchdog."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def _watch(self):
        idle_since = time.monotonic()
        while not self._stopping:
            if self._parked:
                self._wake.wait()
                self._wake.clear()
                idle_since = time.monotonic()
                continue
            time.sleep(HOLD_SECONDS)
            now = time.monotonic()
            if self.held:
                idle_since = now
                if now - self.held_since >= HOLD_SECONDS:
                    with self.lock:
                        if self.held and now - self.held_since >= HOLD_SECONDS:
                            self._flush()
            elif now - idle_since >= PARK_SECONDS:
                with self.lock:
                    self._parked = not self.held
