"""The broker's decisions (wsgid/scheduler.py) without sockets: what the
scheduler asks to send and to answer is recorded, the workers' counters are
plain shared-memory slots written by the test."""

from tests.support.wire import disconnect, req
from wsgid.brokerproto import GONE, WINDOW, Slot, Waiting, drop_conn
from wsgid.scheduler import Scheduler, _conn_key


def conn(data):
    return int(data.split(b" ")[1])


class Rig:
    def __init__(self, *workers, full=()):
        self.sent, self.answers, self.messages = [], [], []
        self.full = set(full)  # identities whose send fails (gone or full)
        self.s = Scheduler(self.send, self.answer)
        self.slots = {}
        for identity in workers:
            self.add(identity)

    def add(self, identity):
        self.slots[identity] = slot = Slot()
        self.s.add(identity, slot)
        self.s.ready(identity)

    def send(self, identity, items):
        if identity in self.full:
            return False
        self.sent.extend((identity, front, data) for front, data in items)
        self.messages.append(identity)
        return True

    def answer(self, front, data, status, why):
        self.answers.append((front, conn(data), status))

    def feed(self, *conns, front=0):
        for c in conns:
            self.s.request(front, req(c))
        self.s.dispatch()

    def to(self, identity):
        return [conn(data) for who, _, data in self.sent if who == identity and data != GONE]


def test_drop_conn_keeps_order():
    queue = [Waiting(0, req(1)), Waiting(0, req(2)), Waiting(1, req(1)), Waiting(0, req(1)),
             Waiting(0, req(3))]
    drop_conn(queue, (0, b"1"), _conn_key)
    assert [(item.front, conn(item.request)) for item in queue] == [(0, 2), (1, 1), (0, 3)]


def test_idle_workers_take_turns():
    rig = Rig(b"a", b"b")
    for c in range(4):
        rig.feed(c)
        rig.slots[rig.sent[-1][0]].write(Slot.DONE, rig.s.workers[rig.sent[-1][0]].sent)
    assert sorted(len(rig.to(w)) for w in (b"a", b"b")) == [2, 2]


def test_the_window_bounds_what_a_worker_holds_and_the_rest_waits():
    rig = Rig(b"a")
    rig.feed(*range(WINDOW + 3))
    assert len(rig.to(b"a")) == WINDOW and len(rig.s.pending) == 3 and rig.s.waiting()
    assert rig.slots[b"a"].waiting() == 1  # told: MORE is worth saying
    rig.slots[b"a"].write(Slot.DONE, 2)
    rig.s.dispatch()
    assert len(rig.to(b"a")) == WINDOW + 2 and len(rig.s.pending) == 1


def test_a_request_goes_to_the_worker_with_most_room():
    rig = Rig(b"a", b"b")
    rig.feed(*range(6))
    assert sorted(len(rig.to(w)) for w in (b"a", b"b")) == [3, 3]


def test_handed_back_requests_are_served_first_elsewhere_and_the_stalled_worker_waits():
    rig = Rig(b"a")
    rig.feed(1, 2, 3)
    rig.slots[b"a"].write(Slot.STARTED, 1)
    rig.s.back(b"a", {2, 3})
    assert [conn(item.request) for item in rig.s.pending] == [2, 3]
    rig.feed(4)
    assert rig.to(b"a") == [1, 2, 3]  # stalled: nothing more
    rig.add(b"b")
    rig.s.dispatch()
    assert rig.to(b"b") == [2, 3, 4]
    rig.slots[b"a"].write(Slot.DONE, 1)  # it went on
    rig.feed(5)
    assert rig.to(b"a") == [1, 2, 3, 5]


def test_a_dead_worker_in_hand_gets_502_head_sent_a_close_unstarted_go_elsewhere():
    rig = Rig(b"a", b"b")
    rig.s.bye(b"b")
    rig.feed(1, 2, 3, 4)
    slot = rig.slots[b"a"]
    slot.write(Slot.DONE, 1)
    slot.write(Slot.HEAD, 2)
    slot.write(Slot.STARTED, 3)
    rig.add(b"c")
    assert rig.s.worker_gone(b"a", "Worker died") is slot
    assert rig.answers == [(0, 2, None), (0, 3, 502)]
    assert rig.to(b"c") == [4]
    assert rig.s.worker_gone(b"a", "Worker died") is None


def test_a_failed_send_keeps_the_request_and_the_workers_numbering():
    rig = Rig(b"a", full={b"a"})
    rig.feed(1)
    assert list(rig.s.pending) == [Waiting(0, req(1))] and rig.s.workers[b"a"].sent == 0
    rig.full.clear()
    rig.s.dispatch()
    assert rig.s.workers[b"a"].out[0].index == 1  # as the worker counts what it receives


def test_a_notice_follows_its_connection_and_a_disconnect_drops_what_waits():
    rig = Rig(b"a", b"b")
    rig.feed(7)
    serving = rig.sent[-1][0]
    rig.s.bye(b"a")
    rig.s.bye(b"b")
    rig.feed(7, 8)
    rig.s.notice(0, disconnect(conn_id=b"7"), True)
    assert rig.sent[-1] == (serving, 0, disconnect(conn_id=b"7"))
    assert [conn(item.request) for item in rig.s.pending] == [8]
    assert (0, b"7") not in rig.s.serving


def test_a_mongrel2_gone_forgets_its_requests_and_says_gone_to_every_worker():
    rig = Rig(b"a")
    rig.feed(1, front=0)
    rig.feed(2, front=1)
    rig.s.bye(b"a")
    rig.feed(3, front=0)
    rig.feed(4, front=1)
    rig.s.front_gone(0)
    assert [(i.front, conn(i.request)) for i in rig.s.pending] == [(1, 4)]
    assert [conn(i.request) for i in rig.s.workers[b"a"].out] == [2]
    assert rig.sent[-1] == (b"a", 0, GONE)
    assert all(key[0] == 1 for key in rig.s.serving)


def test_stop_refuses_what_waits_and_what_comes_back():
    rig = Rig(b"a")
    rig.feed(*range(WINDOW + 1))
    rig.s.stop()
    assert rig.answers == [(0, WINDOW, 503)] and not rig.s.waiting()
    rig.slots[b"a"].write(Slot.STARTED, 1)
    rig.s.back(b"a", {WINDOW})  # handed back after the stop
    rig.s.dispatch()
    assert rig.answers[-1] == (0, WINDOW - 1, 503)
    rig.s.worker_gone(b"a", "Worker died")  # its unstarted ones: nobody left to serve them
    assert [status for _, _, status in rig.answers].count(503) == WINDOW
    assert rig.answers.count((0, 0, 502)) == 1


def test_a_batch_for_one_worker_goes_in_one_message():
    rig = Rig(b"a", b"b")
    rig.feed(*range(6))
    assert sorted(rig.messages) == [b"a", b"b"]
    assert sorted(rig.to(b"a") + rig.to(b"b")) == list(range(6))
    assert [item.index for item in rig.s.workers[b"a"].out] == [1, 2, 3]


def test_a_connections_next_request_goes_to_the_worker_holding_its_previous_one():
    rig = Rig(b"a", b"b")
    rig.feed(7)
    holder = rig.sent[-1][0]
    for _ in range(3):  # the other worker has more room, but 7 is in hand here
        rig.feed(7)
    assert rig.to(holder) == [7, 7, 7, 7]
    rig.slots[holder].write(Slot.DONE, rig.s.workers[holder].sent)  # all answered
    rig.feed(7, 8)
    assert len(rig.to(b"a")) + len(rig.to(b"b")) == 6
