"""The master's side of broker dispatch (wsgid/broker.py), with fake
mongrel2 and fake workers on ipc:// sockets in a temp folder: the window, the
turns, what a worker hands back, what a dead worker leaves, notices, stop."""

import os

import pytest
import zmq

from tests.support.waiting import wait_for
from tests.support.wire import SENDER, disconnect, req
from wsgid import message, scheduler
from wsgid.broker import Broker
from wsgid.brokerproto import BACK, BYE, BYE_ACK, MORE, READY, WEBSOCKETS, WINDOW, Slot, unframe


class Rig:
    """A Broker between fake mongrel2 front-ends (PUSH in, SUB out; one by
    default) and fake workers (DEALERs), pumped by hand as the master's loop
    would."""

    def __init__(self, folder, fronts=1, connections=1):
        self.ctx = zmq.Context()
        self.pushes, self.subs, self.accepts = [], [], []
        for front in range(fronts):
            self.pushes.append(self.ctx.socket(zmq.PUSH))
            self.accepts.append(self.pushes[-1].get_monitor_socket(zmq.EVENT_ACCEPTED))
            self.pushes[-1].bind("ipc://%s/send%d" % (folder, front))
            self.subs.append(self.ctx.socket(zmq.SUB))
            self.subs[-1].bind("ipc://%s/recv%d" % (folder, front))
            self.subs[-1].setsockopt(zmq.SUBSCRIBE, b"")  # as mongrel2 does
        self.push, self.sub = self.pushes[0], self.subs[0]
        self.broker = Broker(["ipc://%s/send%d" % (folder, i) for i in range(fronts)],
                             ["ipc://%s/recv%d" % (folder, i) for i in range(fronts)],
                             connections, folder=str(folder))
        self.accepted = [0] * fronts  # the master's connections to each fake mongrel2
        # A bound SUB sends its subscription only while its thread uses it.
        for sub, pub in zip(self.subs, self.broker.pubs):
            wait_for(lambda: sub.poll(10) or pub.poll(0), 5,
                     what="the fake mongrel2's subscription")
        self.workers = {}

    def worker(self, pid, websockets=False):
        slot = Slot()
        self.broker.add(pid, slot)
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, b"%d" % pid)
        sock.connect(self.broker.spec)
        sock.send_multipart([READY, WEBSOCKETS] if websockets else [READY])
        self.workers[pid] = (sock, slot)
        wait_for(lambda: self.pump() or b"%d" % pid in self.broker.scheduler.workers, 5, what="READY")
        return sock, slot

    def connections(self, front=0):
        """The connections the fake mongrel2 ``front`` has accepted so far."""
        while self.accepts[front].poll(0):
            self.accepts[front].recv_multipart()
            self.accepted[front] += 1
        return self.accepted[front]

    def pump(self):
        poller = zmq.Poller()
        for sock in self.broker.sockets:
            poller.register(sock, zmq.POLLIN)
        events = dict(poller.poll(20))
        self.broker.handle(events)

    def feed(self, *messages, front=0):
        """Send ``messages`` as mongrel2 ``front``; wait until the master holds
        them all (waiting, or sent to a worker and not yet answered)."""
        for data in messages:
            self.pushes[front].send(data)
        wait_for(lambda: self.pump() or all((front, data) in self.unanswered() for data in messages),
                 5, what="the master to take them")

    def unanswered(self):
        unanswered = list(self.broker.scheduler.pending)
        for worker in self.broker.scheduler.workers.values():
            unanswered += [(item.front, item.request) for item in worker.out]
        return unanswered

    def got(self, pid):
        """What the fake worker ``pid`` has been sent so far: each message,
        or with several front-ends ``(front, message)``."""
        sock = self.workers[pid][0]
        messages = []
        tagged = len(self.pushes) > 1
        while sock.poll(50):
            for front, data in unframe(sock.recv_multipart(), tagged):
                messages.append((front, data) if tagged else data)
        return messages

    def replies(self, count, front=0):
        out, sub = [], self.subs[front]
        wait_for(lambda: self.pump() or (sub.poll(10) and out.append(sub.recv()))
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
        rig.workers[101][1].write(Slot.DONE, rig.broker.scheduler.workers[b"101"].sent)
        rig.workers[102][1].write(Slot.DONE, rig.broker.scheduler.workers[b"102"].sent)
    assert len(rig.got(101)) == len(rig.got(102)) == 3


def test_window_bounds_what_a_worker_holds(rig):
    rig.worker(101)
    rig.feed(*[req(conn) for conn in range(WINDOW + 5)])
    assert len(rig.got(101)) == WINDOW
    assert len(rig.broker.scheduler.pending) == 5
    assert rig.broker.waiting()
    assert rig.workers[101][1].waiting() == 1  # told: MORE is worth saying
    rig.workers[101][1].write(Slot.DONE, 3)   # three answered...
    rig.workers[101][0].send(MORE)            # ...and it says so
    wait_for(lambda: rig.pump() or len(rig.broker.scheduler.pending) == 2, 5, what="3 more sent")
    assert len(rig.got(101)) == 3


def test_handed_back_requests_go_to_another_worker_first(rig):
    sock, slot = rig.worker(101)
    rig.feed(req(1), req(2), req(3))
    assert len(rig.got(101)) == 3
    slot.write(Slot.STARTED, 1)  # stuck on the first
    sock.send_multipart([BACK, b"2", b"3"])
    rig.pump()
    assert rig.broker.scheduler.pending and len(rig.broker.scheduler.workers[b"101"].out) == 1
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
    wait_for(lambda: rig.pump() or (len(rig.broker.scheduler.pending) == 1
                                    and (0, b"3") not in rig.broker.scheduler.serving), 5,
             what="both notices taken")
    assert rig.broker.scheduler.pending[0][1].split(b" ")[1] == b"51"
    notices = rig.got(101)
    assert [m.split(b" ")[1] for m in notices] == [b"3"]  # 50 was nobody's yet


def test_bye_is_acknowledged_and_ends_the_work(rig):
    sock, slot = rig.worker(101)
    sock.send(BYE)
    rig.pump()
    assert rig.got(101) == [BYE_ACK]
    rig.feed(req(1))
    assert rig.got(101) == [] and len(rig.broker.scheduler.pending) == 1


def test_stop_taking_answers_what_mongrel2_sent_but_the_master_had_not_read(rig):
    """Leaving mongrel2 drops what a connection holds: it is read first."""
    rig.push.send(req(8))
    wait_for(lambda: rig.broker.pulls[0].sock.poll(10), 5, what="the request at the socket")
    rig.broker.stop_taking()
    assert rig.replies(2)[0].startswith(SENDER + b" 1:8, HTTP/1.1 503 Service Unavailable\r\n")


def test_stop_taking_answers_503_to_what_waits(rig):
    rig.feed(req(7))
    assert rig.broker.status() == {"waiting": 1, "answered_502": 0, "answered_503": 0}
    rig.broker.stop_taking()
    assert rig.broker.status() == {"waiting": 0, "answered_502": 0, "answered_503": 1}
    replies = rig.replies(2)
    assert replies[0].startswith(SENDER + b" 1:7, HTTP/1.1 503 Service Unavailable\r\n")
    assert replies[1] == SENDER + b" 1:7, "


# ------------------------------------------------ connections to mongrel2, WebSockets
# A PULL takes from its connections in turn: with two, two frames of one
# WebSocket could be taken in the wrong order.

def test_one_connection_while_the_workers_serve_websockets(tmp_path):
    rig = Rig(tmp_path, fronts=2, connections=3)
    try:
        wait_for(lambda: rig.connections(0) == rig.connections(1) == 1, 5,
                 what="one connection to each")
        rig.worker(101, websockets=True)
        rig.worker(102, websockets=True)
        rig.feed(req(1))
        assert [pull.connections for pull in rig.broker.pulls] == [1, 1]
        assert rig.connections(0) == rig.connections(1) == 1
    finally:
        rig.close()


def test_connections_grow_to_one_per_worker_once_a_worker_serves_none(tmp_path):
    rig = Rig(tmp_path, fronts=2, connections=3)
    try:
        wait_for(lambda: rig.connections(0) == rig.connections(1) == 1, 5,
                 what="one connection to each")
        rig.worker(101)
        wait_for(lambda: rig.connections(0) == rig.connections(1) == 3, 5,
                 what="three connections to each")
        rig.worker(102)
        rig.feed(req(1))
        assert [pull.connections for pull in rig.broker.pulls] == [3, 3]
    finally:
        rig.close()


def test_a_handler_after_the_growth_is_warned_about_once(tmp_path, caplog):
    rig = Rig(tmp_path, connections=2)
    try:
        rig.worker(101)
        assert not [r for r in caplog.records if "out of order" in r.getMessage()]
        rig.worker(102, websockets=True)  # a reload brought a WebSocket handler
        rig.worker(103, websockets=True)
        warned = [r for r in caplog.records if "out of order" in r.getMessage()]
        assert len(warned) == 1 and warned[0].levelname == "WARNING"
        assert "over 2 connections" in warned[0].getMessage()
        assert rig.broker.pulls[0].connections == 2  # never fewer: that would drop requests
    finally:
        rig.close()


# ---------------------------------------------------------------- several front-ends
# Both fake front-ends use the same sender UUID, as two mongrel2 servers with
# one config would, and the same connection ids: only the front-end tells
# their connections apart.

@pytest.fixture
def rig2(tmp_path):
    r = Rig(tmp_path, fronts=2)
    yield r
    r.close()


def test_each_request_reaches_a_worker_tagged_with_its_front_end(rig2):
    rig2.worker(101)
    rig2.feed(req(5), front=0)
    rig2.feed(req(5), front=1)
    assert rig2.got(101) == [(0, req(5)), (1, req(5))]


def test_notices_of_the_same_conn_id_go_to_the_worker_of_their_front_end(rig2):
    rig2.worker(101)
    rig2.worker(102)
    rig2.feed(req(5), front=0)
    got = {pid: rig2.got(pid) for pid in (101, 102)}
    first = 101 if got[101] else 102
    assert got[first] == [(0, req(5))]
    rig2.feed(req(5), front=1)  # to the other worker: it has more room
    second = 101 if first == 102 else 102
    assert rig2.got(second) == [(1, req(5))]
    rig2.pushes[1].send(disconnect(sender=SENDER, conn_id=b"5"))
    wait_for(lambda: rig2.pump() or (1, b"5") not in rig2.broker.scheduler.serving, 5,
             what="front-end 1's disconnect")
    assert rig2.got(second) == [(1, disconnect(sender=SENDER, conn_id=b"5"))]
    assert rig2.got(first) == []  # the same conn id of front-end 0 is another client
    rig2.pushes[0].send(disconnect(sender=SENDER, conn_id=b"5"))
    wait_for(lambda: rig2.pump() or not rig2.broker.scheduler.serving, 5, what="front-end 0's disconnect")
    assert rig2.got(first) == [(0, disconnect(sender=SENDER, conn_id=b"5"))]


def test_a_disconnect_drops_only_its_front_ends_waiting_request(rig2):
    rig2.feed(req(5), front=0)
    rig2.feed(req(5), front=1)
    rig2.pushes[1].send(disconnect(sender=SENDER, conn_id=b"5"))
    wait_for(lambda: rig2.pump() or len(rig2.broker.scheduler.pending) == 1, 5, what="the drop")
    assert list(rig2.broker.scheduler.pending) == [(0, req(5))]


def test_a_dead_workers_502_goes_to_the_front_end_of_its_request(rig2):
    sock, slot = rig2.worker(101)
    rig2.feed(req(2), front=1)
    slot.write(Slot.STARTED, 1)
    rig2.broker.worker_gone(101)
    replies = rig2.replies(2, front=1)
    assert replies[0].startswith(SENDER + b" 1:2, HTTP/1.1 502 Bad Gateway\r\n")
    assert not rig2.subs[0].poll(100)  # front-end 0 has no connection 2 of ours


def test_stop_taking_answers_each_front_end_its_own_503(rig2):
    rig2.feed(req(7), front=0)
    rig2.feed(req(8), front=1)
    rig2.broker.stop_taking()
    assert [r.split(b" ")[1] for r in rig2.replies(2, front=0)] == [b"1:7,"] * 2
    assert [r.split(b" ")[1] for r in rig2.replies(2, front=1)] == [b"1:8,"] * 2


# ---------------------------------------------------------------- stop, garbage, bounds

def test_requests_handed_back_after_stop_taking_get_503(rig):
    """A stalled worker hands back what it had not started after the
    master stopped taking: nobody else will serve them, each gets a 503."""
    sock, slot = rig.worker(101)
    rig.feed(req(1), req(2), req(3))
    assert len(rig.got(101)) == 3
    rig.broker.stop_taking()
    slot.write(Slot.STARTED, 1)
    sock.send_multipart([BACK, b"2", b"3"])
    replies = rig.replies(4)
    assert [r.split(b" ")[1] for r in replies] == [b"1:2,", b"1:2,", b"1:3,", b"1:3,"]
    assert b" 503 Service Unavailable\r\n" in replies[0] and replies[1] == SENDER + b" 1:2, "
    assert not rig.broker.scheduler.pending and rig.broker.status()["answered_503"] == 2


def test_a_dead_workers_unstarted_requests_after_stop_taking_get_503(rig):
    sock, slot = rig.worker(101)
    rig.feed(req(1), req(2))
    rig.broker.stop_taking()
    slot.write(Slot.STARTED, 1)
    slot.write(Slot.DONE, 1)
    rig.broker.worker_gone(101)
    replies = rig.replies(2)
    assert replies[0].startswith(SENDER + b" 1:2, HTTP/1.1 503 Service Unavailable\r\n")
    assert not rig.broker.scheduler.pending


def test_close_answers_what_still_waits(rig):
    """The master's loop may end without a stop (keep-alive off, the last
    worker gone): what waits is answered 503, not dropped."""
    rig.feed(req(9))
    rig.broker.close()
    rig.close = lambda: rig.ctx.destroy(linger=0)  # the broker is closed already
    assert rig.sub.poll(2000)
    assert rig.sub.recv().startswith(SENDER + b" 1:9, HTTP/1.1 503 Service Unavailable\r\n")


def test_garbage_in_a_dead_workers_window_leaves_the_master_standing(rig):
    """Whatever mongrel2 pushes ends in a worker's window as it is; the
    worker dies on it: the master answers what it can address, and lives."""
    import random

    from tests.support.fuzz import hostile_messages
    rng = random.Random(22)
    for round_ in range(12):
        pid = 200 + round_
        sock, slot = rig.worker(pid)
        messages = [m for m in hostile_messages(rng, WINDOW)
                    if not message.is_notice(m)]
        rig.feed(*messages)
        started = rng.randrange(len(messages) + 1)
        slot.write(Slot.STARTED, started)
        slot.write(Slot.HEAD, rng.randrange(started + 1))
        rig.broker.worker_gone(pid)
        sock.close(linger=0)
    rig.broker.scheduler.pending.clear()  # what no worker started: served by the next one
    rig.worker(999)
    rig.feed(req(77))
    assert rig.got(999) == [req(77)]


def test_any_frames_from_a_worker_leave_the_master_standing(rig):
    import random
    rng = random.Random(6)
    sock, slot = rig.worker(101)
    rig.feed(req(1), req(2))
    for _ in range(300):
        frames = [rng.choice((BACK, MORE, READY, BYE, b"", b"x" * rng.randrange(40),
                              bytes(rng.randrange(256) for _ in range(rng.randrange(12)))))
                  for _ in range(rng.randrange(1, 5))]
        sock.send_multipart(frames)
    for _ in range(10):
        rig.pump()
    rig.worker(102)
    rig.feed(req(3))
    assert any(m.split(b" ")[1] == b"3" for pid in (101, 102) for m in rig.got(pid)
               if isinstance(m, bytes) and m.startswith(SENDER))


def test_serving_stays_bounded_without_disconnect_notices(tmp_path, monkeypatch):
    """Connections come and go without their notices (a mongrel2
    restarted, notices lost) and workers die: the map of which worker
    serves a connection keeps only what a notice could still matter to."""
    monkeypatch.setattr(scheduler, "SERVING_MIN", 40, raising=False)
    rig = Rig(tmp_path)
    try:
        conn = 0
        for pid, rounds in ((101, 12), (102, 6)):
            sock, slot = rig.worker(pid)
            for _ in range(rounds):
                rig.feed(*[req(conn + i) for i in range(WINDOW)])
                conn += WINDOW
                slot.write(Slot.DONE, rig.broker.scheduler.workers[b"%d" % pid].sent)
            assert len(rig.broker.scheduler.serving) <= 2 * 40
            rig.broker.worker_gone(pid)  # its connections' notices matter to no one now
        assert len(rig.broker.scheduler.serving) <= 2 * 40
        assert all(entry[0] == b"102" for entry in rig.broker.scheduler.serving.values())
    finally:
        rig.close()
