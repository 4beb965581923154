"""Broker dispatch (``--dispatch broker``), run inside the master.

The master holds the only connection to mongrel2's send_spec and hands each
request to an idle worker (the load-balancing broker pattern): a worker
says READY when it wants work and BYE when it leaves, so nothing is ever
queued at a busy or departing worker. Workers still reply to mongrel2
directly; the broker PUBlishes only its own 502/503 answers.

The workers reach the master over an ``ipc://`` socket in a folder of mode
0700 made after the drop of privileges: no other account can connect and
be handed requests (a TCP port on 127.0.0.1 would let any local user).
"""

import collections
import logging
import os
import shutil
import tempfile

import zmq

from wsgid import message
from wsgid.response import error_reply
from wsgid.sources import BYE, BYE_ACK, READY

log = logging.getLogger("wsgid")


def _envelope(data):
    """(sender, conn_id) of a raw message, or (None, None) for garbage."""
    parts = data.split(b" ", 2)
    if len(parts) == 3 and parts[0] and parts[1].isdigit():
        return parts[0], parts[1]
    return None, None


class Broker:
    def __init__(self, recv_spec, send_spec, folder=None):
        """``folder``: where to make the private folder of the workers'
        socket (default: the system's temp folder)."""
        self.context = zmq.Context(1)
        self.pull = self.context.socket(zmq.PULL)
        self.pull.connect(recv_spec)
        self.recv_spec = recv_spec
        self.pub = self.context.socket(zmq.XPUB)
        self.pub.connect(send_spec)
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.private = tempfile.mkdtemp(prefix="wsgid-broker-", dir=folder)
        self.spec = "ipc://%s" % os.path.join(self.private, "workers")
        self.router.bind(self.spec)
        self.idle = collections.OrderedDict()   # worker id -> None, in READY order
        self.busy = {}                          # worker id -> (sender, conn_id)
        self.leaving = set()                    # said BYE, or being retired
        self.pending = collections.deque()      # requests waiting for an idle worker
        self.taking = True
        for sock in (self.pull, self.pub, self.router):
            sock.setsockopt(zmq.LINGER, 1000)

    @property
    def sockets(self):
        return (self.pull, self.router, self.pub)

    def handle(self, sock):
        """Take everything now readable on ``sock`` (one of :attr:`sockets`)."""
        if sock is self.pull:
            self._from_mongrel2()
        elif sock is self.router:
            self._from_workers()
        else:
            self._discard(self.pub)  # mongrel2's subscriptions
        self._dispatch()

    # -- mongrel2 -> workers -----------------------------------------------------
    def _from_mongrel2(self):
        while True:
            try:
                data = self.pull.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if message.is_control_envelope(data):
                self._forward_notice(data)
            else:
                self.pending.append(data)

    def _forward_notice(self, data):
        """A disconnect (or credit) notice goes to the worker serving that
        connection; a disconnect also drops requests still waiting for it."""
        conn_id = _envelope(data)[1]
        for worker, (_, busy_conn) in self.busy.items():  # a handful: a scan is cheap
            if busy_conn == conn_id:
                self._send(worker, data)
                return
        if b'"disconnect"' in data and self.pending:
            self.pending = collections.deque(
                m for m in self.pending if _envelope(m)[1] != conn_id)

    def _dispatch(self):
        while self.pending and self.idle:
            worker, _ = self.idle.popitem(last=False)
            data = self.pending.popleft()
            if self._send(worker, data):
                self.busy[worker] = _envelope(data)
            else:
                self.pending.appendleft(data)

    def _send(self, worker, data):
        try:
            self.router.send_multipart((worker, data), zmq.NOBLOCK)
            return True
        except zmq.ZMQError:  # gone (ROUTER_MANDATORY) or full
            self.idle.pop(worker, None)
            return False

    # -- workers -> broker ---------------------------------------------------------
    def _from_workers(self):
        while True:
            try:
                worker, what = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.busy.pop(worker, None)
            if what == READY:
                if worker not in self.leaving:
                    self.idle[worker] = None
            elif what == BYE:
                self.leaving.add(worker)
                self.idle.pop(worker, None)
                self._send(worker, BYE_ACK)

    # -- the master's side -----------------------------------------------------------
    def retire(self, pid):
        """Give no more work to ``pid`` (it is being stopped)."""
        worker = b"%d" % pid
        self.leaving.add(worker)
        self.idle.pop(worker, None)

    def worker_gone(self, pid):
        """``pid`` exited: answer its client 502 if it died mid-request."""
        worker = b"%d" % pid
        self.idle.pop(worker, None)
        self.leaving.discard(worker)
        sender, conn_id = self.busy.pop(worker, None) or (None, None)
        if conn_id is not None:
            log.warning("Worker %d died serving connection %s: answered 502",
                        pid, conn_id.decode("latin-1"))
            self.reply(sender, conn_id, "502 Bad Gateway")

    def reply(self, sender, conn_id, status):
        self.pub.send(message.reply(sender, conn_id, error_reply(status)))
        self.pub.send(message.reply(sender, conn_id, message.CLOSE))

    def stop_taking(self):
        """Leave mongrel2 (it holds new requests for the next handler) and
        answer 503 to those that were waiting here."""
        if self.taking:
            self.pull.disconnect(self.recv_spec)
            self.taking = False
        while self.pending:
            sender, conn_id = _envelope(self.pending.popleft())
            if conn_id is not None:
                self.reply(sender, conn_id, "503 Service Unavailable")

    @staticmethod
    def _discard(sock):
        try:
            while True:
                sock.recv(zmq.NOBLOCK)
        except zmq.Again:
            pass

    def close(self):
        for sock in self.sockets:
            sock.close()
        self.context.term()
        shutil.rmtree(self.private, ignore_errors=True)
