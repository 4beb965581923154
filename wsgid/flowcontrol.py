"""mongrel2's download flow control (``download.flow_control`` set to 1).

mongrel2 then allows at most ``DOWNLOAD_CREDITS`` bytes (100 KiB in 1.12,
announced on a connection's first request) written by the handler but not
yet sent to the client; a reply beyond that drops the connection. After
each write to the client it sends a ``{"type":"credits"}`` notice whose
``DOWNLOAD_CREDITS`` header says how many bytes went out. Pacing a stream by
those credits lets a slow client download any size intact.

The notices are PUSHed like requests: only broker dispatch can route them
to the worker that streams (direct dispatch cannot pace, see the docs).
"""

CREDITS = "DOWNLOAD_CREDITS"
#: How long a stream waits for credits before it gives the client up.
TIMEOUT = 30.0


def message_size(window):
    """Body bytes per message: half the window, less room for the head."""
    return max(4096, window // 2 - 4096)


class Pacer:
    """The bytes of one connection (``key``: see BrokerSource) not yet
    acknowledged by mongrel2.
    ``flush`` sends what the worker holds (see wsgid.outbox)."""

    def __init__(self, source, key, window, flush):
        self.source = source
        self.key = key  # the connection: (front-end, conn id)
        self.window = window
        self.flush = flush
        self.outstanding = 0

    def reserve(self, size):
        """Wait until ``size`` more bytes fit in the window; False when the
        client went away or mongrel2 granted nothing for TIMEOUT seconds."""
        while self.outstanding and self.outstanding + size > self.window:
            if not self._take():
                return False
        self.outstanding += size
        return True

    def drain(self):
        """Wait until mongrel2 has sent everything: the connection's next
        response (perhaps another worker's) starts with the whole window."""
        while self.outstanding > 0 and self._take():
            pass

    def _take(self):
        self.flush()  # mongrel2 grants credits only for what it has got
        granted = self.source.take_credits(self.key, TIMEOUT)
        self.outstanding -= granted
        return granted > 0
