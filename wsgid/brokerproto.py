"""What the master's broker and its workers share (``--dispatch broker``):
the words they say, how a message is framed, the queue items, and the
counters a worker keeps in memory shared with the master (:class:`Slot`).

Worker -> master: ``READY`` (once; ``READY`` ``WEBSOCKETS`` when its app
has a WebSocket handler), ``MORE`` (half its window is free, said
only while requests wait at the master), ``BACK`` + the indexes handed back,
``BYE`` (leaving). Master -> worker: requests and the notices of their
connections, ``BYE-ACK`` (nothing follows), ``GONE`` (the front-end's
mongrel2 went: what it sent before is dropped).

One message from the master may carry several requests (a batch: one send,
one wake-up of the worker). With several mongrel2 front-ends the master
sends the index of the front-end in a frame before each request, notice or
GONE (:func:`frames`): the worker answers on that front-end's socket.
"""

import collections
import mmap
import struct

READY, MORE, BACK, BYE, BYE_ACK, GONE = b"READY", b"MORE", b"BACK", b"BYE", b"BYE-ACK", b"GONE"
WEBSOCKETS = b"WEBSOCKETS"
#: Requests a worker may have been sent and not answered (a bounded prefetch).
WINDOW = 16

#: A request waiting at the master, sent to no worker.
Waiting = collections.namedtuple("Waiting", "front request")
#: A request sent to a worker: ``index`` counts what that worker was sent, from 1.
Sent = collections.namedtuple("Sent", "index request front")
#: What :meth:`Slot.read` tells.
Counters = collections.namedtuple("Counters", "started done head waiting")


def frames(tags, items):
    """The frames of one message to a worker carrying ``items``, each
    ``(front, data)`` (front None: the master's own): several requests go in
    one message when the master has a batch for that worker. With ``tags``
    (several front-ends) each is preceded by its front-end's index."""
    if tags is None:
        return [data for _, data in items]
    parts = []
    for front, data in items:
        parts.append(tags[front or 0])
        parts.append(data)
    return parts


def unframe(parts, tagged):
    """The ``(front, data)`` items of a message :func:`frames` made."""
    if not tagged:
        return [(0, data) for data in parts]
    return [(int(parts[i]), parts[i + 1]) for i in range(0, len(parts) - 1, 2)]


def back(indexes):
    """The frames of a BACK handing back requests ``indexes``."""
    return [BACK] + [b"%d" % index for index in indexes]


def backed(parts):
    """The indexes a BACK's ``parts`` (after the word) name; garbage ignored."""
    return {int(index) for index in parts if index.isdigit()}


def drop_conn(queue, key, key_of):
    """Remove from ``queue``, in place, the items of connection ``key``
    (``key_of(item)``: the connection of an item)."""
    kept = [item for item in queue if key_of(item) != key]
    queue.clear()
    queue.extend(kept)


class Slot:
    """A worker's counters in memory shared with the master (a
    :class:`Counters`): the index of the request it started last, of the one
    it answered last (written once the reply is sent), and of the one whose
    answer it began to send last, which only the worker writes; and whether
    requests wait at the master for room at a worker, which only the master
    writes. Indexes count the requests the master sent to that worker, from
    1. No message per request."""

    _FORMAT = "qqqq"
    STARTED, DONE, HEAD, WAITING = 0, 1, 2, 3

    def __init__(self):
        self.mem = mmap.mmap(-1, struct.calcsize(self._FORMAT))
        # Indexed as 64-bit integers: a few times cheaper than struct's
        # calls, and the master reads them on every hand-out.
        self.counters = memoryview(self.mem).cast("q")

    def write(self, offset, index):
        self.counters[offset] = index

    def read(self):
        return Counters._make(self.counters.tolist())

    def get(self, offset):
        """One counter (``Slot.DONE`` ...)."""
        return self.counters[offset]

    def waiting(self):
        return self.get(self.WAITING)

    def close(self):
        self.counters.release()  # else the map cannot close
        self.mem.close()
