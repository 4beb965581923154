"""What every process of one wsgid shares about WebSockets, in memory the
master maps before it forks (so workers forked later, after a reload too,
see the same): per front-end the generation stamp of its mongrel2 and the
send_ident to address it with, and the table of open sockets.

**Generations.** mongrel2 numbers its connections from 1 again when it
restarts, so a stored connection id alone may name another client. The
stamp of a front-end is a number (nanoseconds of the wall clock when it
was set) that changes once per mongrel2 start the workers see go: the first
process whose reply socket's monitor reports the disconnection replaces it
(:meth:`Shared.gone`), under a lock, and only if the stamp is still the one
that process last knew -- so N workers seeing the same restart change it
once, and one that learns late adopts the new stamp instead of changing it
again. Each process keeps the stamp it last knew (:meth:`Shared.known`):
a handshake is stamped with it, not with the shared one, so a process that
has not yet seen mongrel2 go cannot stamp a connection of the old mongrel2
with the new generation. A connection is delivered to only while its stamp
equals the shared one, read after the sender's own monitor (a mongrel2 that
went is reported there before its successor can subscribe). Nothing of
mongrel2 itself identifies one of its starts, so the stamp is this wsgid's:
after a restart of wsgid (not a reload) or in another master it differs,
and stored connections are dropped -- never delivered to the wrong client.

**Open sockets.** A table of the accepted connections (front-end, id, stamp):
a socket's end is reported to the handler once, by whichever process takes
it out of the table (a close frame, a server close, mongrel2's disconnect
notice, or its mongrel2 gone); a disconnect notice for an HTTP connection
finds nothing. Open addressing, TABLE_SLOTS entries of 16 bytes; when full, a
socket still works but its close may go unreported (logged).
"""

import logging
import mmap
import multiprocessing
import struct
import time

log = logging.getLogger("wsgid")

SENDER_BYTES = 128  # a send_ident: mongrel2's are UUIDs
TABLE_SLOTS = 1 << 16
LOCK_SECONDS = 1.0  # a process killed holding the lock must not stop the others
_FRONT = struct.Struct("qB%ds" % (SENDER_BYTES - 1))  # stamp, sender length, sender
_ENTRY = struct.Struct("QQ")  # key (0: empty, 1: removed), stamp
_EMPTY, _REMOVED = 0, 1


def _key(front, conn_id):
    return ((front + 1) << 40) | conn_id


class Shared:
    """The shared memory for ``fronts`` front-ends; create it before forking."""

    def __init__(self, fronts):
        self.fronts = fronts
        self._table_at = _FRONT.size * fronts
        self.mem = mmap.mmap(-1, self._table_at + _ENTRY.size * TABLE_SLOTS)
        self.lock = multiprocessing.Lock()
        now = time.time_ns()
        for front in range(fronts):
            _FRONT.pack_into(self.mem, _FRONT.size * front, now + front, 0, b"")
        self._known = [now + front for front in range(fronts)]

    def _locked(self):
        return _Locked(self.lock)

    # -- generations ---------------------------------------------------------------
    def stamp(self, front):
        """The generation of ``front``'s current mongrel2, as shared."""
        return _FRONT.unpack_from(self.mem, _FRONT.size * front)[0]

    def known(self, front):
        """The generation this process last knew for ``front``."""
        return self._known[front]

    def adopt(self):
        """A new process (a worker after its fork) starts from the shared stamps."""
        self._known = [self.stamp(front) for front in range(self.fronts)]

    def gone(self, front):
        """This process saw ``front``'s mongrel2 go: a new generation, unless
        another process has made it already. Returns the stamp of the old
        one's sockets, for :meth:`drop_front`."""
        with self._locked():
            stamp = self.stamp(front)
            old = self._known[front]
            if stamp == old:
                stamp = max(time.time_ns(), old + 1)
                _, size, sender = _FRONT.unpack_from(self.mem, _FRONT.size * front)
                _FRONT.pack_into(self.mem, _FRONT.size * front, stamp, size, sender)
            self._known[front] = stamp
        return old

    def sender(self, front):
        """The send_ident ``front``'s mongrel2 listens to (bytes; b"": none seen)."""
        _, size, sender = _FRONT.unpack_from(self.mem, _FRONT.size * front)
        return sender[:size]

    def set_sender(self, front, sender):
        if self.sender(front) != sender and len(sender) < SENDER_BYTES:
            with self._locked():
                stamp = self.stamp(front)
                _FRONT.pack_into(self.mem, _FRONT.size * front, stamp, len(sender), sender)

    # -- open sockets ----------------------------------------------------------------
    def _find(self, key):
        """The slot holding ``key``, or the first free one on its path; -1
        when neither (the lock is held)."""
        base, mem = self._table_at, self.mem
        start = (key * 0x9E3779B97F4A7C15 >> 20) % TABLE_SLOTS
        free = -1
        for step in range(TABLE_SLOTS):
            slot = (start + step) % TABLE_SLOTS
            found = _ENTRY.unpack_from(mem, base + slot * _ENTRY.size)[0]
            if found == key:
                return slot
            if found == _EMPTY:
                return slot if free < 0 else free
            if found == _REMOVED and free < 0:
                free = slot
        return free

    def opened(self, front, conn_id, stamp):
        """Note an accepted socket; False when the table is full."""
        key = _key(front, conn_id)
        with self._locked():
            slot = self._find(key)
            if slot < 0:
                log.warning("WebSocket table full: the close of connection %d will not be "
                            "reported", conn_id)
                return False
            _ENTRY.pack_into(self.mem, self._table_at + slot * _ENTRY.size, key, stamp)
        return True

    def find(self, front, conn_id):
        """The stamp of an open socket, or None when it is not open."""
        key = _key(front, conn_id)
        with self._locked():
            slot = self._find(key)
            if slot < 0:
                return None
            found, stamp = _ENTRY.unpack_from(self.mem, self._table_at + slot * _ENTRY.size)
        return stamp if found == key else None

    def take(self, front, conn_id):
        """Remove an open socket: its stamp, or None when it was not there
        (an HTTP connection, or one another process has taken)."""
        key = _key(front, conn_id)
        with self._locked():
            slot = self._find(key)
            if slot < 0:
                return None
            at = self._table_at + slot * _ENTRY.size
            found, stamp = _ENTRY.unpack_from(self.mem, at)
            if found != key:
                return None
            _ENTRY.pack_into(self.mem, at, _REMOVED, 0)
        return stamp

    def drop_front(self, front, stamp):
        """Remove the sockets of ``front``'s mongrel2 of generation
        ``stamp`` (it went with them): their ids."""
        taken = []
        low, high = _key(front, 0), _key(front + 1, 0)
        with self._locked():
            for slot in range(TABLE_SLOTS):
                at = self._table_at + slot * _ENTRY.size
                key, found = _ENTRY.unpack_from(self.mem, at)
                if low <= key < high and found == stamp:
                    _ENTRY.pack_into(self.mem, at, _REMOVED, 0)
                    taken.append(key - low)
        return taken

    def close(self):
        self.mem.close()


class _Locked:
    """The lock, taken over after LOCK_SECONDS: its holder was killed inside
    (the critical sections are a few microseconds). The release at the end
    frees it for everyone again; a second one is ignored."""

    def __init__(self, lock):
        self.lock = lock

    def __enter__(self):
        if not self.lock.acquire(timeout=LOCK_SECONDS):
            log.warning("WebSocket shared lock held for %.0f s (its holder died?): taken over",
                        LOCK_SECONDS)

    def __exit__(self, *exc):
        try:
            self.lock.release()
        except ValueError:  # released already by another that took it over
            pass
