"""The broker's decisions, without sockets (sans-I/O): which worker gets
which request, what a stalled or dead worker leaves, what a stop refuses,
what a mongrel2 that went leaves behind. :class:`wsgid.broker.Broker` reads
the sockets, calls these methods, and does what they ask through the two
callables it gives: ``send(identity, items)`` (to a worker, in one message,
each item ``(front, data)``; False when it cannot take it) and ``answer(front, data, status, why)`` (the
master's own 502/503, or a close).

Each worker may have up to WINDOW requests sent and not yet answered; a request goes to
the worker with the most room, never to one that is stalled or leaving; the
workers' counters (:class:`wsgid.brokerproto.Slot`) say what they started
and answered.
"""

import collections

from wsgid import message
from wsgid.brokerproto import GONE, WINDOW, Sent, Slot, Waiting, drop_conn

# The connection -> worker map is swept of what no notice matters to any more
# once it has doubled since the last sweep, and not below this size.
SERVING_MIN = 1024
# WebSockets remembered for their disconnect notice (oldest forgotten first).
SOCKETS_MAX = 1 << 16


class Window:
    """One worker's window, as the scheduler sees it: the requests sent to
    it and not known answered, and whether it may be sent more."""

    def __init__(self, slot):
        self.slot = slot
        self.sent = 0                       # requests sent, the last one's index
        self.out = collections.deque()      # Sent, not known answered
        self.stalled = 0                    # handed work back while on this request
        self.leaving = False
        self.waiting = 0                    # told that requests wait at the master

    def unanswered(self):
        """Forget what the worker has answered; return how many are left."""
        out = self.out
        if out:
            done = self.slot.get(Slot.DONE)
            while out and out[0].index <= done:
                out.popleft()
        return len(out)

    def moved(self):
        """A stalled worker has answered the request it stalled on."""
        if self.slot.get(Slot.DONE) >= self.stalled:
            self.stalled = 0
        return not self.stalled


def _conn_key(item):
    """The connection of a :class:`Waiting` item."""
    return item.front, message.envelope(item.request)[1]


class Scheduler:
    def __init__(self, send, answer):
        self.send, self.answer = send, answer
        self.workers = {}                  # identity -> Window, once READY
        self.slots = {}                    # identity -> Slot, from the fork on
        self.pending = collections.deque()  # Waiting
        self.serving = {}                  # (front, conn id) -> (identity, index) of its last request
        self.sockets = {}                  # (front, conn id) of WebSockets, oldest first
        self._sweep_at = SERVING_MIN       # len(serving) that calls for a sweep
        self.taking = True
        self._turn = 0                     # which worker the next dispatch looks at first

    # -- workers come and go -------------------------------------------------------
    def add(self, identity, slot):
        """A worker was forked with ``slot``: it may now say READY."""
        self.slots[identity] = slot

    def ready(self, identity):
        if identity not in self.workers and identity in self.slots:
            self.workers[identity] = Window(self.slots[identity])

    def bye(self, identity):
        """The worker leaves: nothing more goes to it."""
        worker = self.workers.get(identity)
        if worker is not None:
            worker.leaving = True

    retire = bye

    def worker_gone(self, identity, why):
        """The worker exited. Of the requests it was sent and did not answer,
        those it started get a 502 (a close, once an answer had begun to
        leave), and those it never started go to another worker. Returns its
        slot (to close), or None."""
        slot = self.slots.pop(identity, None)
        worker = self.workers.pop(identity, None)
        if worker is not None:
            worker.unanswered()
            counters = slot.read()
            again = []  # first: a connection's later requests may wait here already
            for item in worker.out:
                if item.index > counters.started:
                    again.append(Waiting(item.front, item.request))
                elif item.index == counters.head:
                    self.answer(item.front, item.request, None, why + " answering")
                else:  # in hand, or its reply still in the worker (or its client gone)
                    self.answer(item.front, item.request, 502, why + " serving")
            self.pending.extendleft(reversed(again))
            self.dispatch()
        return slot

    # -- what comes in ---------------------------------------------------------------
    def request(self, front, data):
        self.pending.append(Waiting(front, data))
        if message.is_handshake(data):
            sockets = self.sockets
            sockets[(front, message.envelope(data)[1])] = True
            if len(sockets) > SOCKETS_MAX:  # closed by wsgid: no notice came for them
                del sockets[next(iter(sockets))]

    def notice(self, front, data, disconnect):
        """A notice goes to the worker sent that connection's last request; a
        disconnect also drops the connection's requests still waiting here.
        A WebSocket's disconnect goes to some worker when that one has gone
        (a reload): the handler must hear of it."""
        key = (front, message.envelope(data)[1])
        entry = self.serving.pop(key, None) if disconnect else self.serving.get(key)
        socket = disconnect and self.sockets.pop(key, False)
        if entry is not None and entry[0] in self.workers:
            self.send(entry[0], [(front, data)])
        elif socket:
            for identity, worker in self.workers.items():
                if not worker.leaving and self.send(identity, [(front, data)]):
                    break
        if disconnect and self.pending:
            drop_conn(self.pending, key, _conn_key)

    def front_gone(self, front):
        """mongrel2 ``front`` went: a new one numbers its connections anew,
        so nothing of the old one's may be answered. Its requests waiting
        here, or sent to a worker and not answered, are forgotten (no 502
        for them either); each worker is told GONE after them, and drops
        those it has prefetched (wsgid.sources)."""
        drop_conn(self.pending, front, lambda item: item.front)
        for table in (self.serving, self.sockets):
            for key in [key for key in table if key[0] == front]:
                del table[key]
        for identity, worker in self.workers.items():
            drop_conn(worker.out, front, lambda item: item.front)
            self.send(identity, [(front, GONE)])

    def back(self, identity, indexes):
        """Serve elsewhere, first, what a stalled worker handed back; send it
        nothing more until it has gone on from the request in hand."""
        worker = self.workers.get(identity)
        if worker is None:
            return
        worker.stalled = worker.slot.get(Slot.STARTED)
        kept = [item for item in worker.out if item.index not in indexes]
        self.pending.extendleft(reversed([Waiting(item.front, item.request)
                                          for item in worker.out if item.index in indexes]))
        worker.out.clear()
        worker.out.extend(kept)

    # -- what goes out -----------------------------------------------------------------
    def waiting(self):
        """True while requests wait here for room at a worker."""
        return bool(self.pending) and self.taking

    def dispatch(self):
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
                room = WINDOW - worker.unanswered()
                if room > 0:
                    rooms.append([room, identity, worker])
        batches = {}  # identity -> [Waiting]: one message each
        keys = {}     # identity -> the connections of its batch, in order
        room_of = {entry[1]: entry for entry in rooms}
        owners = {}  # connection -> worker, for what this dispatch hands out
        later = []   # waits for the worker that holds its connection's previous request
        while pending and rooms:
            item = pending.popleft()
            key = _conn_key(item)
            owner = owners.get(key) or self._owner(key)
            if owner is None:
                best = rooms[0]
                for entry in rooms:
                    if entry[0] > best[0]:
                        best = entry
            else:
                best = room_of.get(owner)
                if best is None or best[0] == 0:
                    later.append(item)
                    continue
            owners[key] = best[1]
            batches.setdefault(best[1], []).append(item)
            keys.setdefault(best[1], []).append(key)
            if best[0] == 1:
                best[0] = 0
                rooms.remove(best)
            else:
                best[0] -= 1
        pending.extendleft(reversed(later))
        for identity, batch in batches.items():
            self._send_batch(identity, self.workers[identity], batch, keys[identity])
        if len(self.serving) > self._sweep_at:
            self._sweep_serving()
        if not self.taking:
            self.refuse_pending()  # a stop: nothing more comes to serve them
            return
        waiting = 1 if pending else 0
        for worker in self.workers.values():
            if worker.waiting != waiting:
                worker.waiting = waiting
                worker.slot.write(Slot.WAITING, waiting)

    def _owner(self, key):
        """The worker holding an unfinished request of connection ``key``
        (its next one must go there too: a WebSocket's frames are served
        in order), or None."""
        entry = self.serving.get(key)
        if entry is None:
            return None
        worker = self.workers.get(entry[0])
        if worker is None or not worker.unanswered() or worker.out[0].index > entry[1]:
            return None
        for sent in worker.out:  # it may have handed that request back
            if sent.front == key[0] and message.envelope(sent.request)[1] == key[1]:
                return entry[0]
        return None

    def _send_batch(self, identity, worker, batch, keys):
        """Send ``batch`` to one worker in one message; back to the head of
        the queue, in order, if it cannot take it. ``keys``: its requests'
        connections, found once by dispatch."""
        if not self.send(identity, batch):
            self.pending.extendleft(reversed(batch))
            return
        serving, out = self.serving, worker.out
        for item, key in zip(batch, keys):
            worker.sent += 1
            out.append(Sent(worker.sent, item.request, item.front))
            serving[key] = (identity, worker.sent)

    def _sweep_serving(self):
        """Forget the connections whose requests are all answered, or whose
        worker has gone: their notices (which may never come: a mongrel2
        restarted) would tell no one anything. What is left is bounded by
        the requests in the workers' windows."""
        done = {identity: worker.slot.get(Slot.DONE)
                for identity, worker in self.workers.items()}
        self.serving = {key: entry for key, entry in self.serving.items()
                        if done.get(entry[0], entry[1]) < entry[1]}
        self._sweep_at = max(SERVING_MIN, 2 * len(self.serving))

    # -- stop ----------------------------------------------------------------------------
    def refuse_pending(self):
        """503 to every request waiting here."""
        while self.pending:
            item = self.pending.popleft()
            self.answer(item.front, item.request, 503, "Stopping: nobody to serve")

    def stop(self):
        """Take nothing more: 503 to what waits, and to what comes back here
        from now on (handed back, or left by a dead worker)."""
        self.taking = False
        self.refuse_pending()
