"""wsgid.outbox: replies held while requests are queued, sent together, and
never left waiting behind a slow request."""

import time

import pytest

from mongrel2 import wait_for
from support_live import LiveWsgid, Peer, get_headers, json_request
from wsgid import outbox as outbox_mod
from wsgid.outbox import HOLD_COUNT, HOLD_SECONDS, Outbox


class FakeSocket:
    def __init__(self):
        self.sent = []

    def send(self, frame, copy=True):
        self.sent.append(frame)


@pytest.fixture
def box():
    box = Outbox(FakeSocket())
    yield box
    box.stop()


def test_held_replies_wait_for_flush_and_keep_their_order(box):
    box.hold(b"a")
    box.hold(b"b")
    assert box.sock.sent == []
    box.flush()
    assert box.sock.sent == [b"a", b"b"]
    box.flush()
    assert box.sock.sent == [b"a", b"b"]


def test_send_goes_at_once_after_what_is_held(box):
    box.send(b"alone")
    assert box.sock.sent == [b"alone"]
    box.hold(b"a")
    box.send(b"b")
    assert box.sock.sent == [b"alone", b"a", b"b"]


def test_a_batch_leaves_when_full(box):
    for n in range(HOLD_COUNT - 1):
        box.hold(b"%d" % n)
    assert box.sock.sent == []
    box.hold(b"last")
    assert len(box.sock.sent) == HOLD_COUNT and box.sock.sent[-1] == b"last"


def test_stop_sends_what_is_held(box):
    box.start()
    box.hold(b"a")
    box.stop()
    assert box.sock.sent == [b"a"]


def test_without_the_watchdog_held_replies_wait(box):
    """A broker-mode worker never starts the watchdog: nothing is sent behind
    its back (and before_request does not block)."""
    box.hold(b"a")
    box.before_request()
    assert box._parked and box.sock.sent == []


def test_watchdog_sends_a_reply_held_behind_a_request(box):
    box.start()
    started = time.monotonic()
    box.hold(b"a")
    box.before_request()  # the worker is busy with the next request now
    wait_for(lambda: box.sock.sent, 5, interval=0.001, what="the watchdog's flush")
    assert box.sock.sent == [b"a"]
    assert time.monotonic() - started >= HOLD_SECONDS


def test_watchdog_parks_when_idle_and_wakes_again(box, monkeypatch):
    monkeypatch.setattr(outbox_mod, "PARK_SECONDS", 0.05)
    box.start()
    box.hold(b"a")
    box.before_request()
    wait_for(lambda: box.sock.sent == [b"a"], 5, interval=0.001, what="the first flush")
    wait_for(lambda: box._parked, 5, interval=0.005, what="the watchdog to park")
    box.hold(b"b")
    box.before_request()
    wait_for(lambda: box.sock.sent == [b"a", b"b"], 5, interval=0.001,
             what="the flush after waking")


def test_reply_is_not_held_behind_the_next_slow_request(tmp_path):
    """A live worker: request A is in hand when B (fast) and C (3 s) queue
    behind it, in that order. B's reply, held while the worker goes on to C,
    reaches mongrel2 long before C ends."""
    peer = Peer()
    live = LiveWsgid(tmp_path, peer)
    try:
        live.start()
        mark = tmp_path / "a-in-hand"
        peer.send(json_request(get_headers("/sleep", QUERY="0.3&%s" % mark), conn_id=b"1"))
        wait_for(mark.exists, 10, interval=0.005, what="request A in the app")
        started = time.monotonic()
        peer.send(json_request(get_headers("/"), conn_id=b"2"))
        peer.send(json_request(get_headers("/sleep", QUERY="3"), conn_id=b"3"))
        a = peer.replies_for(b"1", timeout=10)
        b = peer.replies_for(b"2", timeout=10)
        b_after = time.monotonic() - started
        assert a[0].startswith(b"HTTP/1.1 200") and b[0].startswith(b"HTTP/1.1 200")
        assert b_after < 1.5, "B's reply waited %.2f s: held behind C" % b_after
        c = peer.replies_for(b"3", timeout=10)
        assert c[0].startswith(b"HTTP/1.1 200")
    finally:
        live.stop()
        peer.close()
