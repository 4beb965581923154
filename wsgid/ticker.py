"""A thread that looks in every so often while its owner has work, and
sleeps for good (parks) once it has had none for a while: the outbox's
watchdog (wsgid.outbox) and the broker source's reclaim (wsgid.sources).

Waking it is on the owner's hot path: one flag test, and an Event set only
when it was parked. Whether to park is decided under the owner's lock, so a
:meth:`Ticker.wake` made under that lock is never missed."""

import threading
import time


class Ticker:
    """Calls ``tick(now)`` every ``interval`` seconds while ``busy()``; after
    ``idle`` seconds without work it parks until :meth:`wake`."""

    def __init__(self, name, interval, idle, busy, tick, lock):
        self.name, self.interval, self.idle = name, interval, idle
        self.busy, self.tick, self.lock = busy, tick, lock
        self.parked = True
        self.stopping = False
        self._event = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self):
        """Work begins (call it under the owner's lock)."""
        if self.parked and self._thread is not None:
            self.parked = False
            self._event.set()

    def stop(self):
        self.stopping = True
        self._event.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self):
        idle_since = time.monotonic()
        while not self.stopping:
            if self.parked:
                self._event.wait()
                self._event.clear()
                idle_since = time.monotonic()
                continue
            time.sleep(self.interval)
            now = time.monotonic()
            if self.busy():
                idle_since = now
                self.tick(now)
            elif now - idle_since >= self.idle:
                with self.lock:
                    self.parked = not self.busy()
