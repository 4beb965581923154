"""What each worker is doing, in memory it shares with the master.

The master makes one :class:`Score` per worker before the fork, in both
dispatch modes; the worker writes it at the start and end of each request
(three ``struct`` writes in all, no system call), and the master reads it
when ``wsgid status`` asks (see :mod:`wsgid.channel`): it never asks a worker,
which may be stuck in a request. (The broker's ``Slot`` holds the dispatch
counters: another concern, another owner.)
"""

import bisect
import mmap
import struct
import time

METHOD_SIZE, PATH_SIZE = 16, 256  # bytes kept of each (a Pascal string: one less)

# seq | begun | since | method | path. A seqlock guards the record: the
# worker makes ``seq`` odd (a write of the lot begins with it), writes, and
# makes it even again; the master takes what it read between two equal even
# readings. ``struct`` zeroes what it is about to write, so 0 is never a
# valid ``seq`` (a new record starts at 2). ``since`` (0.0: idle) alone is
# also written outside the lock, when a request ends: one value, and idle is
# then true whichever the master reads.
_RECORD = struct.Struct("=qqd%dp%dp" % (METHOD_SIZE, PATH_SIZE))
_SEQ = struct.Struct("=q")
_SINCE = struct.Struct("=d")
_SINCE_AT = 16
# The heartbeat, after the record: when the worker last said it is alive, on
# time.monotonic (one clock for every process: a step of the wall clock is
# no silence). One aligned 8-byte value, written whole.
_BEAT = struct.Struct("=d")
_BEAT_AT = _RECORD.size
# Set once by the worker when --max-requests or --max-rss is reached (the
# index of the reason in DUE_REASONS, from 1): it asks for a replacement,
# and keeps serving until one is ready (the master then retires it). One
# byte, written whole.
_DUE = struct.Struct("=b")
_DUE_AT = _BEAT_AT + _BEAT.size

DUE_REASONS = ("max-requests", "max-rss")
# Then, for --metrics (kept in any case: a few writes a request): whether
# the request in hand reads an async upload; the requests ended, by
# front-end and status class (none: no reply, the client gone); and their
# durations, counted by bucket (Prometheus' default bounds, then +Inf), with
# their sum. Each value written whole, by the worker alone.
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "none")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_COUNT = struct.Struct("=q")
_SUM = struct.Struct("=d")
_UPLOAD_AT = (_DUE_AT + _DUE.size + 7) // 8 * 8
_SUM_AT = _UPLOAD_AT + 8
_BUCKETS_AT = _SUM_AT + 8
_CLASSES_AT = _BUCKETS_AT + 8 * (len(BUCKETS) + 1)

_PAGE = mmap.PAGESIZE


class Score:
    """One worker's record: the requests it began, and the one in hand (its
    start on ``time.monotonic``, its method and path, truncated), if any;
    its heartbeat (``--timeout``); and what its requests ended with, for
    each of ``fronts`` front-ends."""

    def __init__(self, fronts=1):
        self.fronts = fronts
        self.mem = mmap.mmap(-1, _CLASSES_AT + 8 * len(CLASSES) * fronts)
        self.seq = 2
        self.begun = 0
        self.started = 0.0
        self.duration_sum = 0.0
        self.counts = [0] * (len(BUCKETS) + 1 + len(CLASSES) * fronts)  # as in memory
        _SEQ.pack_into(self.mem, 0, self.seq)
        self.beat()  # made just before the fork: alive until it says otherwise

    # -- in the worker -------------------------------------------------------------
    def begin(self, method, path):
        """A request starts: ``method`` a str, ``path`` bytes (a bad
        message: empty ones). Every begin has its :meth:`end`."""
        self.begun += 1
        self.seq += 2
        self.started = time.monotonic()
        _RECORD.pack_into(self.mem, 0, self.seq - 1, self.begun, self.started,
                          method.encode("latin-1", "replace"), path)
        _SEQ.pack_into(self.mem, 0, self.seq)

    def end(self, front=0, status=None):
        """The request in hand is done, answered with ``status`` (a status
        line, or None: no reply) to front-end ``front``; ``""``: not counted
        (an upload's start: its done message is the request)."""
        mem, counts = self.mem, self.counts
        _SINCE.pack_into(mem, _SINCE_AT, 0.0)
        if status == "":
            return
        duration = time.monotonic() - self.started
        self.duration_sum += duration
        _SUM.pack_into(mem, _SUM_AT, self.duration_sum)
        index = bisect.bisect_left(BUCKETS, duration)
        counts[index] += 1
        _COUNT.pack_into(mem, _BUCKETS_AT + 8 * index, counts[index])
        kind = "12345".find(status[:1]) if status else -1
        index = (len(BUCKETS) + 1 + len(CLASSES) * min(front, self.fronts - 1)
                 + (kind if kind >= 0 else 5))
        counts[index] += 1
        _COUNT.pack_into(mem, _BUCKETS_AT + 8 * index, counts[index])

    def uploading(self, flag):
        """The request in hand reads an async upload (True), or no more."""
        _COUNT.pack_into(self.mem, _UPLOAD_AT, int(flag))

    def beat(self):
        """I am alive (called at least every second, and after each request)."""
        _BEAT.pack_into(self.mem, _BEAT_AT, time.monotonic())

    def ask_replacement(self, reason):
        """I am due for recycling (``reason``: one of DUE_REASONS): replace me."""
        _DUE.pack_into(self.mem, _DUE_AT, DUE_REASONS.index(reason) + 1)

    # -- in the master -------------------------------------------------------------
    def read(self):
        """``(served, since, method, path)``: the requests done; the start
        of the one in hand (0.0 when idle), its method and path (str,
        latin-1; empty when idle)."""
        mem = self.mem
        for _ in range(1000):  # a write takes well under a microsecond
            seq, begun, since, method, path = _RECORD.unpack_from(mem)
            if seq and not seq & 1 and _SEQ.unpack_from(mem)[0] == seq:
                break
            time.sleep(0)
        if not since:
            return begun, 0.0, "", ""
        return begun - 1, since, method.decode("latin-1"), path.decode("latin-1")

    def last_beat(self):
        """When the worker last said it is alive (``time.monotonic``)."""
        return _BEAT.unpack_from(self.mem, _BEAT_AT)[0]

    def totals(self):
        """``(by_class, buckets, duration_sum, uploading)``: the requests
        ended, by front-end (a list each) and status class (CLASSES); by
        duration bucket (BUCKETS, then +Inf); the sum of their durations;
        and whether the one in hand reads an upload."""
        values = struct.unpack_from("=%dq" % len(self.counts), self.mem, _BUCKETS_AT)
        width, start = len(CLASSES), len(BUCKETS) + 1
        by_class = [list(values[start + width * f:start + width * (f + 1)])
                    for f in range(self.fronts)]
        return (by_class, list(values[:start]), _SUM.unpack_from(self.mem, _SUM_AT)[0],
                _COUNT.unpack_from(self.mem, _UPLOAD_AT)[0] == 1)

    def wants_replacement(self):
        """Why the worker asked to be replaced (:meth:`ask_replacement`), or
        None."""
        due = _DUE.unpack_from(self.mem, _DUE_AT)[0]
        return DUE_REASONS[due - 1] if 0 < due <= len(DUE_REASONS) else None

    def close(self):
        self.mem.close()


def rss(pid):
    """The resident memory of ``pid`` in bytes, from /proc/<pid>/statm (the
    master reads its own children's); None when it cannot be read (gone, or
    no /proc inside a chroot)."""
    try:
        with open("/proc/%d/statm" % pid, "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


def describe(pid, score, started, now, retiring=False, generation=0):
    """The state of worker ``pid`` as ``wsgid status`` shows it; ``started``
    and ``now`` on ``time.monotonic``; ``generation``: the reloads before it
    was made."""
    served, since, method, path = score.read()
    state = {"pid": pid, "state": "busy" if since else "idle"}
    if since:
        state.update(method=method, path=path, age=round(max(0.0, now - since), 3))
    state.update(served=served, rss=rss(pid), uptime=round(now - started, 1),
                 retiring=retiring, generation=generation)
    return state
