"""Broker dispatch (``--dispatch broker``), run inside the master.

The master holds the connections to mongrel2's send_spec (one per worker, so
that mongrel2's round robin weights wsgid hosts by their number of workers;
one only while the app may serve WebSockets, see :meth:`Broker._ready`)
and hands requests to its workers over a private DEALER/ROUTER pair.

Each worker may have up to WINDOW requests sent and not yet answered (a bounded
prefetch: under load it takes requests in batches, not one round trip each);
the master sends to the worker with the fewest, never to one that is stalled
or leaving (the decisions: :mod:`wsgid.scheduler`; the wire both sides
share: :mod:`wsgid.brokerproto`). A worker counts the requests it starts and answers in a small
shared memory :class:`Slot`, which the master reads, and says ``MORE`` when
half its window is free. A worker whose current request runs
longer than its reclaim bound hands back what it has not started (``BACK``),
and the master serves those elsewhere; a worker that leaves says ``BYE`` and
serves what it had been sent. When a worker dies, its slot tells which
request was in progress (answered ``502``, or closed once its head was
sent) and which it never started (served by another worker): none is lost,
none answered twice. Workers reply to mongrel2 directly; the master
sends only its own 502/503 answers and closes, on its own XPUB sockets.

Several mongrel2 front-ends (several ``--recv``/``--send`` pairs): the
master connects to each, and sends a worker the index of the front-end in a
frame before each request or notice, as the worker must answer on that
front-end's socket. Connection ids are unique within one mongrel2 only, so
the master knows a connection as ``(front, conn_id)``.

The workers reach the master over an ``ipc://`` socket in a folder of mode
0700 made after the drop of privileges: no other account can connect and
be handed requests (a TCP port on 127.0.0.1 would let any local user).
"""

import logging
import os
import shutil
import tempfile
import time

import zmq

from wsgid import message, wsframes
from wsgid.brokerproto import BACK, BYE, BYE_ACK, MORE, READY, WEBSOCKETS, Slot, backed, frames
from wsgid.pulls import Pull
from wsgid.response import error_reply
from wsgid.scheduler import Scheduler
from wsgid.zmqcalls import recv_all, recv_all_multipart, send_parts

log = logging.getLogger("wsgid")

_REASONS = {502: "502 Bad Gateway", 503: "503 Service Unavailable"}


def _websocket_frame(data):
    """Whether a request is a WebSocket frame (rare here: its worker died)."""
    try:
        return message.parse(data).headers["METHOD"] == "WEBSOCKET"
    except message.MessageError:
        return False


class Broker:
    """The sockets around a :class:`wsgid.scheduler.Scheduler`."""

    def __init__(self, request_specs, reply_specs, connections=1, folder=None):
        """``request_specs`` and ``reply_specs``: mongrel2's send_spec and
        recv_spec of each front-end; ``connections``: to each send_spec (one
        per worker) once a worker has said that its app has no WebSocket
        handler, one until then; ``folder``: where to make the private folder of the
        workers' socket (default: the system's temp folder)."""
        self.context = zmq.Context(1)
        # One socket per mongrel2 start (wsgid.pulls): a request is known to
        # come from the start that sent it.
        self.pulls = [Pull(self.context, spec) for spec in request_specs]
        self.connections = connections
        self.warned_order = False
        for pull in self.pulls:
            pull.start()
        self.request_specs = request_specs
        self.pubs = []
        for spec in reply_specs:
            self.pubs.append(self.context.socket(zmq.XPUB))
            self.pubs[-1].connect(spec)
        self.tags = [b"%d" % front for front in range(len(request_specs))] \
            if len(request_specs) > 1 else None  # the frame before each message, if any
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.private = tempfile.mkdtemp(prefix="wsgid-broker-", dir=folder)
        self.spec = "ipc://%s" % os.path.join(self.private, "workers")
        self.router.bind(self.spec)
        self.scheduler = Scheduler(self._send, self._answer)
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
        self.scheduler.add(b"%d" % pid, slot)

    def handle(self, events):
        """Take everything readable on :attr:`sockets` (``events``: a poll's
        result), then hand out what waits; with requests waiting, the
        workers' counters are looked at even when nothing came."""
        pulls = self.pulls
        if any(pull.monitor in events for pull in pulls):
            self._check_fronts()
        for front, pull in enumerate(pulls):
            if pull.sock in events:
                self._from_mongrel2(front, pull.sock)
            if pull.retries:
                pull.due(time.monotonic())
        if self.router in events:
            self._from_workers()
        for pub in self.pubs:
            if pub in events:
                self._discard(pub)  # mongrel2's subscriptions
        self.scheduler.dispatch()

    # -- mongrel2 -> workers -----------------------------------------------------
    def _from_mongrel2(self, front, pull):
        scheduler, is_notice, received = self.scheduler, message.is_notice, []
        recv_all(pull, received)
        for data in received:
            if is_notice(data):
                scheduler.notice(front, data, message.is_disconnect(data))
            else:
                scheduler.request(front, data)

    def _check_fronts(self):
        """A mongrel2 that went (its socket was replaced): see
        :meth:`wsgid.scheduler.Scheduler.front_gone`."""
        for front, pull in enumerate(self.pulls):
            if pull.check():
                self.scheduler.front_gone(front)
                log.info("mongrel2 at %s went: its requests still here are dropped",
                         self.request_specs[front])

    def waiting(self):
        """True while requests wait here for room at a worker, or a
        connection to mongrel2 is to be tried again: the master then looks
        again (:meth:`handle`) every millisecond."""
        return self.scheduler.waiting() or any(pull.retries for pull in self.pulls)

    def status(self):
        """For ``wsgid status``: the requests waiting here, the 502 and 503
        the master answered."""
        return {"waiting": len(self.scheduler.pending), "answered_502": self.answered[502],
                "answered_503": self.answered[503]}

    def _send(self, identity, items):
        """Send ``items`` (``(front, data)``; front None: the master's own)
        to worker ``identity`` in one message; False when it cannot take it
        (gone: ROUTER_MANDATORY, or full: its exit is near)."""
        return send_parts(self.router, [identity] + frames(self.tags, items))

    # -- workers -> broker ---------------------------------------------------------
    def _from_workers(self):
        scheduler, received = self.scheduler, []
        recv_all_multipart(self.router, received)
        for parts in received:
            if len(parts) < 2:
                continue
            identity, what = parts[0], parts[1]
            if what == MORE:
                pass  # room: the dispatch after reads the counters
            elif what == BACK:
                scheduler.back(identity, backed(parts[2:]))
            elif what == READY:
                scheduler.ready(identity)
                self._ready(parts[2:] == [WEBSOCKETS])
            elif what == BYE:
                scheduler.bye(identity)
                self._send(identity, [(None, BYE_ACK)])

    def _ready(self, websockets):
        """A worker is ready; ``websockets``: its app has a WebSocket handler.

        A PULL reads its connections in turn, so two frames of one WebSocket
        that mongrel2 sent on two of them could be taken in the wrong order:
        one connection to each mongrel2 while the app may serve WebSockets.
        Only the workers know (the handler may be named in Django's settings,
        which the master never reads). Without one, the connections grow to
        :attr:`connections`; they never shrink (closing one drops what it
        holds), so a reload that brings a handler is warned about."""
        if not websockets:
            for pull in self.pulls:
                pull.grow(self.connections)
        elif self.pulls[0].connections > 1 and not self.warned_order:
            self.warned_order = True
            log.warning("The application now has a WebSocket handler, but the master "
                        "reads each mongrel2 over %d connections since it started without "
                        "one: frames of one WebSocket may be served out of order until "
                        "wsgid restarts", self.pulls[0].connections)

    # -- the master's side -----------------------------------------------------------
    def retire(self, pid):
        """Give no more work to ``pid`` (it is being stopped)."""
        self.scheduler.retire(b"%d" % pid)

    def worker_gone(self, pid):
        """``pid`` exited: see :meth:`wsgid.scheduler.Scheduler.worker_gone`."""
        self._check_fronts()  # no 502 for a mongrel2 that went
        slot = self.scheduler.worker_gone(b"%d" % pid, "Worker %d died" % pid)
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
        elif _websocket_frame(data):  # no HTTP reply on a WebSocket: a close frame
            log.warning("%s connection %s: WebSocket closed 1011", why, conn_id.decode())
            pub.send(message.reply(sender, conn_id, wsframes.close_frame(
                wsframes.INTERNAL_ERROR, "worker lost")))
            self.scheduler.notice(front, message.disconnect_notice(sender, conn_id), True)
        else:
            log.warning("%s connection %s: answered %d", why, conn_id.decode(), status)
            self.answered[status] += 1
            pub.send(message.reply(sender, conn_id, error_reply(_REASONS[status])))
        pub.send(message.reply(sender, conn_id, message.CLOSE))

    def stop_taking(self):
        """Leave mongrel2 (it holds new requests for the next handler) and
        answer 503 to those that were waiting here, and to any that come
        back here from now on (handed back, or left by a dead worker)."""
        self._check_fronts()  # no 503 for a mongrel2 that went
        if self.scheduler.taking:
            for front, pull in enumerate(self.pulls):
                self._from_mongrel2(front, pull.sock)  # leaving drops what it holds
                pull.leave()
        self.scheduler.stop()

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
        for slot in self.scheduler.slots.values():
            slot.close()
        shutil.rmtree(self.private, ignore_errors=True)
