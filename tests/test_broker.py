"""The master's side of broker dispatch (wsgid/broker.py), with fake
mongrel2 and fake workers on ipc:// sockets in a temp folder: the window, the
turns, what a worker hands back, what a dead worker leaves, notices, stop."""

import os

import pytest
import zmq

from tests.support.mongrel2 import wait_for
from tests.support.wire import SENDER, disconnect, request
from wsgid import broker as broker_mod
from wsgid.broker import BACK, BYE, BYE_ACK, MORE, READY, WINDOW, Broker, Slot


def req(conn_id):
    return request({"METHOD": "GET", "PATH": "/x", "VERSION": "HTTP/1.1"},
                   sender=SENDER, conn_id=b"%d" % conn_id)


class Rig:
    """A Broker between a fake mongrel2 (PUSH in, SUB out) and fake workers
    (DEALERs), pumped by hand as the master's loop would."""

    def __init__(self, folder):
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.bind("ipc://%s/send" % folder)
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.bind("ipc://%s/recv" % folder)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.broker = Broker("ipc://%s/send" % folder, "ipc://%s/recv" % folder,
                             folder=str(folder))
        # A bound SUB sends its subscription only while its thread uses it.
        wait_for(lambda: self.sub.poll(10) or self.broker.pub.poll(0), 5,
                 what="the fake mongrel2's subscription")
        self.workers = {}

    def worker(self, pid):
        slot = Slot()
        self.broker.add(pid, slot)
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, b"%d" % pid)
        sock.connect(self.broker.spec)
        sock.send(READY)
        self.workers[pid] = (sock, slot)
        wait_for(lambda: self.pump() or b"%d" % pid in self.broker.workers, 5, what="READY")
        return sock, slot

    def pump(self):
        poller = zmq.Poller()
        for sock in self.broker.sockets:
            poller.register(sock, zmq.POLLIN)
        events = dict(poller.poll(20))
        self.broker.handle(events)

    def feed(self, *messages):
        """Send ``messages`` as mongrel2; wait until the master holds them all
        (waiting, or sent to a worker and not yet answered)."""
        for data in messages:
            self.push.send(data)
        wait_for(lambda: self.pump() or all(data in self.held() for data in messages), 5,
                 what="the master to take them")

    def held(self):
        held = list(self.broker.pending)
        for worker in self.broker.workers.values():
            held += [data for _, data in worker.out]
        return held

    def got(self, pid):
        """What the fake worker ``pid`` has been sent so far."""
        sock = self.workers[pid][0]
        messages = []
        while sock.poll(50):
            messages.append(sock.recv())
        return messages

    def replies(self, count):
        out = []
        wait_for(lambda: self.pump() or (self.sub.poll(10) and out.append(self.sub.recv()))
                 or len(out) >= count, 5, what="%d replies" % count)
        return out

    def close(self):
        self.broker.close()
        self.ctx.destroy(linger=0)


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()


def test_private_socket_in_a_0700_folder(rig):
    path = rig.broker.spec[len("ipc://"):]
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700


def test_requests_alternate_between_idle_workers(rig):
    rig.worker(101)
    rig.worker(102)
    for conn in range(6):
        rig.feed(req(conn))
        rig.workers[101][1].write(Slot.DONE, rig.broker.workers[b"101"].sent)
        rig.workers[102][1].write(Slot.DONE, rig.broker.workers[b"102"].sent)
    assert len(rig.got(101)) == len(rig.got(102)) == 3


def test_window_bounds_what_a_worker_holds(rig):
    rig.worker(101)
    rig.feed(*[req(conn) for conn in range(WINDOW + 5)])
    assert len(rig.got(101)) == WINDOW
    assert len(rig.broker.pending) == 5
    assert rig.broker.waiting()
    assert rig.workers[101][1].waiting() == 1  # told: MORE is worth saying
    rig.workers[101][1].write(Slot.DONE, 3)   # three answered...
    rig.workers[101][0].send(MORE)            # ...and it says so
    wait_for(lambda: rig.pump() or len(rig.broker.pending) == 2, 5, what="3 more sent")
    assert len(rig.got(101)) == 3


def test_handed_back_requests_go_to_another_worker_first(rig):
    sock, slot = rig.worker(101)
    rig.feed(req(1), req(2), req(3))
    assert len(rig.got(101)) == 3
    slot.write(Slot.STARTED, 1)  # stuck on the first
    sock.send_multipart([BACK, b"2", b"3"])
    rig.pump()
    assert rig.broker.pending and len(rig.broker.workers[b"101"].out) == 1
    rig.worker(102)
    rig.pump()
    assert [m.split(b" ")[1] for m in rig.got(102)] == [b"2", b"3"]
    rig.feed(req(4))
    assert [m.split(b" ")[1] for m in rig.got(102)] == [b"4"]  # 101 stays stalled
    slot.write(Slot.DONE, 1)  # done with the long one: it takes work again
    rig.feed(req(5))
    assert len(rig.got(101)) + len(rig.got(102)) == 1


def test_dead_worker_in_hand_gets_502_unstarted_go_elsewhere(rig):
    sock, slot = rig.worker(101)
    rig.feed(req(1), req(2), req(3))
    slot.write(Slot.DONE, 1)
    slot.write(Slot.STARTED, 2)
    rig.worker(102)
    rig.broker.worker_gone(101)
    replies = rig.replies(2)
    assert replies[0].startswith(SENDER + b" 1:2, HTTP/1.1 502 Bad Gateway\r\n")
    assert replies[1] == SENDER + b" 1:2, "  # and closed
    assert [m.split(b" ")[1] for m in rig.got(102)] == [b"3"]
    assert rig.broker.status() == {"waiting": 0, "answered_502": 1, "answered_503": 0}


def test_dead_worker_whose_answer_had_begun_gets_a_close(rig):
    sock, slot = rig.worker(101)
    rig.feed(req(1))
    slot.write(Slot.STARTED, 1)
    slot.write(Slot.HEAD, 1)
    rig.broker.worker_gone(101)
    assert rig.replies(1) == [SENDER + b" 1:1, "]
    assert rig.broker.status()["answered_502"] == 0  # a close is no 502


def test_disconnect_drops_waiting_requests_and_reaches_the_worker(rig):
    rig.worker(101)
    rig.feed(*[req(conn) for conn in range(WINDOW)])
    rig.feed(req(50), req(51))  # no room: they wait
    rig.got(101)
    rig.push.send(disconnect(sender=SENDER, conn_id=b"50"))
    rig.push.send(disconnect(sender=SENDER, conn_id=b"3"))
    wait_for(lambda: rig.pump() or len(rig.broker.pending) == 1, 5, what="the drop")
    assert rig.broker.pending[0].split(b" ")[1] == b"51"
    notices = rig.got(101)
    assert [m.split(b" ")[1] for m in notices] == [b"3"]  # 50 was nobody's yet


def test_bye_is_acknowledged_and_ends_the_work(rig):
    sock, slot = rig.worker(101)
    sock.send(BYE)
    rig.pump()
    assert rig.got(101) == [BYE_ACK]
    rig.feed(req(1))
    assert rig.got(101) == [] and len(rig.broker.pending) == 1


def test_stop_taking_answers_503_to_what_waits(rig):
    rig.feed(req(7))
    assert rig.broker.status() == {"waiting": 1, "answered_502": 0, "answered_503": 0}
    rig.broker.stop_taking()
    assert rig.broker.status() == {"waiting": 0, "answered_502": 0, "answered_503": 1}
    replies = rig.replies(2)
    assert replies[0].startswith(SENDER + b" 1:7, HTTP/1.1 503 Service Unavailable\r\n")
    assert replies[1] == SENDER + b" 1:7, "


def test_drop_conn_keeps_order():
    queue = [req(1), req(2), req(1), req(3)]
    broker_mod._drop_conn(queue, b"1", lambda m: m)
    assert [m.split(b" ")[1] for m in queue] == [b"2", b"3"]
