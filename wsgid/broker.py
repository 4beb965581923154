"""Broker dispatch (``--dispatch broker``), run inside the master.

The master holds the connections to mongrel2's send_spec (one per worker, so
that mongrel2's round robin weights wsgid hosts by their number of workers)
and hands requests to its workers over a private DEALER/ROUTER pair.

Each worker may hold up to WINDOW requests not yet done (a bounded
prefetch: under load it takes requests in batches, not one round trip each);
the master sends to the worker with the fewest, never to one that is stalled
or leaving. A worker counts the requests it starts and answers in a small
shared memory :class:`Slot`, which the master reads, and says ``MORE`` when
half its window is free. A worker whose current request runs
longer than its reclaim bound hands back what it has not started (``BACK``),
and the master serves those elsewhere; a worker that leaves says ``BYE`` and
serves what it had been sent. When a worker dies, its slot tells which
request was in progress (answered ``502``, or closed once its head was
sent) and which it never started (served by another worker): none is lost,
none answered twice. Workers reply to mongrel2 directly; the master
PUBlishes only its own 502/503 answers.

Several mongrel2 front-ends (several ``--recv``/``--send`` pairs): the
master connects to each, and sends a worker the index of the front-end in a
frame before each request or notice, as the worker must answer on that
front-end's socket. Connection ids are unique within one mongrel2 only, so
the master knows a connection as ``(front, conn_id)``.

The workers reach the master over an ``ipc://`` socket in a folder of mode
0700 made after the drop of privileges: no other account can connect and
be handed requests (a TCP port on 127.0.0.1 would let any local user).
"""

import collections
import logging
import mmap
import os
import shutil
import struct
import tempfile
import time

import zmq

from wsgid import message
from wsgid.pulls import Pull
from wsgid.response import error_reply

log = logging.getLogger("wsgid")

_REASONS = {502: "502 Bad Gateway", 503: "503 Service Unavailable"}

# Worker -> master: "ready" (once), "more" (half its window is free, said
# only while requests wait at the master), "back" + the indexes handed
# back, "bye" (leaving). Master -> worker: requests and the notices of their
# connections, "bye-ack" (nothing follows), "gone" (the front-end's mongrel2
# went: what it sent before is dropped, see Broker._mongrel2_gone).
READY, MORE, BACK, BYE, BYE_ACK, GONE = b"READY", b"MORE", b"BACK", b"BYE", b"BYE-ACK", b"GONE"
WINDOW = 16
# The connection -> worker map is swept of what no notice matters to any more
# once it has doubled since the last sweep, and not below this size.
SERVING_MIN = 1024


def _drop_conn(queue, key, key_of):
    """Remove from ``queue``, in place, the requests of connection ``key``
    (``key_of(item)``: the connection of an item)."""
    kept = [item for item in queue if key_of(item) != key]
    queue.clear()
    queue.extend(kept)


class Slot:
    """A worker's counters in memory shared with the master: the index of
    the request it started last, of the one it answered last (written once
    the reply is sent), and of the one whose answer it began to send last,
    which only the worker writes; and whether requests wait at the master
    for room at a worker, which only the master writes. Indexes count the
    requests the master sent to that worker, from 1. No message per request."""

    _FORMAT = "qqqq"

    def __init__(self):
        self.mem = mmap.mmap(-1, struct.calcsize(self._FORMAT))

    def write(self, offset, index):
        struct.pack_into("q", self.mem, offset * 8, index)

    def read(self):
        """``(started, done, head_sent, waiting)``."""
        return struct.unpack_from(self._FORMAT, self.mem)

    def waiting(self):
        return struct.unpack_from("q", self.mem, self.WAITING * 8)[0]

    STARTED, DONE, HEAD, WAITING = 0, 1, 2, 3

    def close(self):
        self.mem.close()


class _Worker:
    """The master's view of one worker."""

    def __init__(self, slot):
        self.slot = slot
        self.sent = 0                       # requests sent, the last one's index
        self.out = collections.deque()      # (index, request, front), not known answered
        self.stalled = 0                    # handed work back while on this request
        self.leaving = False
        self.waiting = 0                    # told that requests wait at the master

    def held(self):
        """Forget what the worker has answered; return how many it holds."""
        out = self.out
        if out:
            done = self.slot.read()[1]
            while out and out[0][0] <= done:
                out.popleft()
        return len(out)

    def moved(self):
        """A stalled worker has answered the request it stalled on."""
        if self.slot.read()[1] >= self.stalled:
            self.stalled = 0
        return not self.stalled


def _conn_key(item):
    """The connection of a ``(front, request)`` item."""
    return item[0], message.envelope(item[1])[1]


class Broker:
    def __init__(self, recv_specs, send_specs, connections=1, folder=None):
        """``recv_specs`` and ``send_specs``: mongrel2's send_spec and
        recv_spec of each front-end; ``connections``: to each send_spec (one
        per worker); ``folder``: where to make the private folder of the
        workers' socket (default: the system's temp folder)."""
        self.context = zmq.Context(1)
        # One socket per mongrel2 start (wsgid.pulls): a request is known to
        # come from the start that sent it.
        self.pulls = [Pull(self.context, spec, connections) for spec in recv_specs]
        for pull in self.pulls:
            pull.start()
        self.recv_specs = recv_specs
        self.pubs = []
        for spec in send_specs:
            self.pubs.append(self.context.socket(zmq.XPUB))
            self.pubs[-1].connect(spec)
        self.tags = [b"%d" % front for front in range(len(recv_specs))] \
            if len(recv_specs) > 1 else None  # the frame before each message, if any
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.private = tempfile.mkdtemp(prefix="wsgid-broker-", dir=folder)
        self.spec = "ipc://%s" % os.path.join(self.private, "workers")
        self.router.bind(self.spec)
        self.workers = {}                  # identity -> _Worker, once READY
        self.slots = {}                    # identity -> Slot, from the fork on
        self.pending = collections.deque()  # (front, request) no worker holds
        self.serving = {}                  # (front, conn id) -> (worker, index) of its last request
        self._sweep_at = SERVING_MIN       # len(serving) that calls for a sweep
        self.taking = True
        self._turn = 0                     # which worker the next dispatch looks at first
        self.answered = {502: 0, 503: 0}   # what the master answered itself, by status
        for sock in (self.router, *self.pubs):
            sock.setsockopt(zmq.LINGER, 1000)

    @property
    def sockets(self):
        """What the master polls; changes with :attr:`version`."""
        return (*(pull.sock for pull in self.pulls), *(pull.monitor for pull in self.pulls),
                self.router, *self.pubs)

    @property
    def version(self):
        return sum(pull.generation for pull in self.pulls)

    def new_slot(self):
        """The shared counters for a worker about to be forked."""
        return Slot()

    def add(self, pid, slot):
        """``pid`` was forked with ``slot``: it may now say READY."""
        self.slots[b"%d" % pid] = slot

    def handle(self, events):
        """Take everything readable on :attr:`sockets` (``events``: a poll's
        result), then hand out what waits; with requests waiting, the
        workers' counters are looked at even when nothing came."""
        self._check_fronts()
        now = time.monotonic()
        for front, pull in enumerate(self.pulls):
            if pull.sock in events:
                self._from_mongrel2(front, pull.sock)
            pull.due(now)
        if self.router in events:
            self._from_workers()
        for pub in self.pubs:
            if pub in events:
                self._discard(pub)  # mongrel2's subscriptions
        self._dispatch()

    # -- mongrel2 -> workers -----------------------------------------------------
    def _from_mongrel2(self, front, pull):
        recv, pending = pull.recv, self.pending
        while True:
            try:
                data = recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if message.is_control_envelope(data):
                self._forward_notice(front, data)
            else:
                pending.append((front, data))

    def _forward_notice(self, front, data):
        """A notice goes to the worker sent that connection's last request; a
        disconnect also drops the connection's requests still waiting here."""
        key = (front, message.envelope(data)[1])
        disconnect = b'"disconnect"' in data or b"disconnect," in data
        entry = self.serving.pop(key, None) if disconnect else self.serving.get(key)
        if entry is not None and entry[0] in self.workers:
            self._send(entry[0], front, data)
        if disconnect and self.pending:
            _drop_conn(self.pending, key, _conn_key)

    def _mongrel2_gone(self, front):
        """mongrel2 ``front`` went (its socket was replaced): a new one
        numbers its connections anew, so nothing of the old one's may be
        answered. Its requests waiting here, or sent to a worker and not
        answered, are forgotten (no 502 for them either); each worker is
        told GONE after them, and drops those it holds (wsgid.sources)."""
        kept = [item for item in self.pending if item[0] != front]
        self.pending.clear()
        self.pending.extend(kept)
        for key in [key for key in self.serving if key[0] == front]:
            del self.serving[key]
        for identity, worker in self.workers.items():
            kept = [item for item in worker.out if item[2] != front]
            worker.out.clear()
            worker.out.extend(kept)
            self._send(identity, front, GONE)
        log.info("mongrel2 at %s went: its requests still here are dropped",
                 self.recv_specs[front])

    def _check_fronts(self):
        for front, pull in enumerate(self.pulls):
            if pull.check():
                self._mongrel2_gone(front)

    def waiting(self):
        """True while requests wait here for room at a worker, or a
        connection to mongrel2 is to be tried again: the master then looks
        again (:meth:`handle`) every millisecond."""
        return bool(self.pending) and self.taking or any(pull.retries for pull in self.pulls)

    def status(self):
        """For ``wsgid status``: the requests waiting here, the 502 and 503
        the master answered."""
        return {"waiting": len(self.pending), "answered_502": self.answered[502],
                "answered_503": self.answered[503]}

    def _dispatch(self):
        """Hand out what waits: each request to the worker with the most
        room (its counters read once for the lot); the rest waits, and the
        workers are told so (they say MORE when half their window is free)."""
        pending = self.pending
        if not pending:
            return
        rooms = []
        workers = list(self.workers.items())
        self._turn = turn = (self._turn + 1) % max(1, len(workers))
        for identity, worker in workers[turn:] + workers[:turn]:  # equals take turns
            if not worker.leaving and (not worker.stalled or worker.moved()):
                room = WINDOW - worker.held()
                if room > 0:
                    rooms.append([room, identity, worker])
        while pending and rooms:
            best = rooms[0]
            for entry in rooms:
                if entry[0] > best[0]:
                    best = entry
            front, data = item = pending.popleft()
            room, identity, worker = best
            worker.sent += 1
            worker.out.append((worker.sent, data, front))
            if not self._send(identity, front, data):
                worker.out.pop()
                pending.appendleft(item)
                rooms.remove(best)
                continue
            self.serving[(front, message.envelope(data)[1])] = (identity, worker.sent)
            if room == 1:
                rooms.remove(best)
            else:
                best[0] = room - 1
        if len(self.serving) > self._sweep_at:
            self._sweep_serving()
        if not self.taking:
            self._refuse_pending()  # a stop: nothing more comes to serve them
            return
        waiting = 1 if pending else 0
        for worker in self.workers.values():
            if worker.waiting != waiting:
                worker.waiting = waiting
                worker.slot.write(Slot.WAITING, waiting)

    def _sweep_serving(self):
        """Forget the connections whose requests are all answered, or whose
        worker has gone: their notices (which may never come: a mongrel2
        restarted) would tell no one anything. What is left is bounded by
        the requests in the workers' windows."""
        done = {identity: worker.slot.read()[Slot.DONE]
                for identity, worker in self.workers.items()}
        self.serving = {key: entry for key, entry in self.serving.items()
                        if done.get(entry[0], entry[1]) < entry[1]}
        self._sweep_at = max(SERVING_MIN, 2 * len(self.serving))

    def _send(self, identity, front, data):
        """Send ``data`` (of front-end ``front``; None: the master's own)."""
        try:
            if self.tags is None or front is None:
                self.router.send_multipart((identity, data), zmq.NOBLOCK)
            else:
                self.router.send_multipart((identity, self.tags[front], data), zmq.NOBLOCK)
            return True
        except zmq.ZMQError:  # gone (ROUTER_MANDATORY) or full: its exit is near
            return False

    # -- workers -> broker ---------------------------------------------------------
    def _from_workers(self):
        while True:
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 2:
                continue
            identity, what = frames[0], frames[1]
            worker = self.workers.get(identity)
            if what == MORE:
                pass  # room: the dispatch below reads the counters
            elif what == BACK and worker is not None:
                self._take_back(worker, frames[2:])
            elif what == READY and worker is None and identity in self.slots:
                self.workers[identity] = _Worker(self.slots[identity])
            elif what == BYE:
                if worker is not None:
                    worker.leaving = True
                self._send(identity, None, BYE_ACK)

    def _take_back(self, worker, indexes):
        """Serve elsewhere what a stalled worker handed back, first; send it
        nothing more until it has gone on from the request in hand."""
        worker.stalled = worker.slot.read()[0]
        back = {int(index) for index in indexes if index.isdigit()}
        kept = [item for item in worker.out if item[0] not in back]
        self.pending.extendleft(reversed([(front, data) for index, data, front in worker.out
                                          if index in back]))
        worker.out.clear()
        worker.out.extend(kept)

    # -- the master's side -----------------------------------------------------------
    def retire(self, pid):
        """Give no more work to ``pid`` (it is being stopped)."""
        worker = self.workers.get(b"%d" % pid)
        if worker is not None:
            worker.leaving = True

    def worker_gone(self, pid):
        """``pid`` exited. Of the requests it was sent and did not answer,
        those it started get a 502 (a close, once an answer had begun to
        leave), and those it never started go to another worker."""
        identity = b"%d" % pid
        self._check_fronts()  # no 502 for a mongrel2 that went
        slot = self.slots.pop(identity, None)
        worker = self.workers.pop(identity, None)
        if worker is not None:
            worker.held()
            started, done, head, _ = slot.read()
            for index, data, front in worker.out:
                if index > started:
                    self.pending.append((front, data))
                elif index == head:
                    self._answer(front, data, None, "Worker %d died answering" % pid)
                else:  # in hand, or its reply still in the worker (or its client gone)
                    self._answer(front, data, 502, "Worker %d died serving" % pid)
            self._dispatch()
        if slot is not None:
            slot.close()

    def _answer(self, front, data, status, why):
        """Answer the request ``data`` of front-end ``front`` with ``status``
        (502 or 503; None: only close its connection), saying ``why`` in the
        log; nothing for a message without a connection (garbage)."""
        sender, conn_id = message.envelope(data)
        if conn_id is None:
            return
        pub = self.pubs[front]
        if status is None:
            log.warning("%s connection %s: closed", why, conn_id.decode())
        else:
            log.warning("%s connection %s: answered %d", why, conn_id.decode(), status)
            self.answered[status] += 1
            pub.send(message.reply(sender, conn_id, error_reply(_REASONS[status])))
        pub.send(message.reply(sender, conn_id, message.CLOSE))

    def _refuse_pending(self):
        """503 to every request waiting here."""
        while self.pending:
            front, data = self.pending.popleft()
            self._answer(front, data, 503, "Stopping: nobody to serve")

    def stop_taking(self):
        """Leave mongrel2 (it holds new requests for the next handler) and
        answer 503 to those that were waiting here, and to any that come
        back here from now on (handed back, or left by a dead worker)."""
        self._check_fronts()  # no 503 for a mongrel2 that went
        if self.taking:
            for pull in self.pulls:
                pull.leave()
            self.taking = False
        self._refuse_pending()

    @staticmethod
    def _discard(sock):
        try:
            while True:
                sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            pass

    def close(self):
        """After the workers have gone (their requests answered, see
        :meth:`worker_gone`): what still waits is answered 503 first."""
        self.stop_taking()
        for pull in self.pulls:
            pull.close()
        for sock in (self.router, *self.pubs):
            sock.close()
        self.context.term()
        for slot in self.slots.values():
            slot.close()
        shutil.rmtree(self.private, ignore_errors=True)
