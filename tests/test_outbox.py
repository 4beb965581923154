"""wsgid.outbox: replies held while requests are queued, sent together,
streamed pieces joined, and nothing left waiting for the application."""

import signal
import time

import pytest

from tests.support.waiting import wait_for
from tests.support.peer import Peer
from tests.support.wire import Pub, get_headers, json_request
from tests.support.wsgid import Wsgid, make_app_folder
from wsgid.outbox import HOLD_COUNT, HOLD_SECONDS, Outbox

A, B = b"A ", b"B "  # two connections' envelopes


@pytest.fixture
def box():
    box = Outbox(Pub())
    yield box
    box.stop()


def test_held_replies_wait_for_flush_and_keep_their_order(box):
    box.put(A, b"a", True)
    box.put(A, b"b", True)
    assert box.sock.sent == []
    box.flush()
    assert box.sock.sent == [b"A a", b"A b"]
    box.flush()
    assert box.sock.sent == [b"A a", b"A b"]


def test_unheld_reply_goes_at_once_after_what_is_held(box):
    box.put(A, b"alone")
    assert box.sock.sent == [b"A alone"]
    box.put(A, b"a", True)
    box.put(B, b"b")
    assert box.sock.sent == [b"A alone", b"A a", b"B b"]


def test_a_batch_leaves_when_full(box):
    for n in range(HOLD_COUNT - 1):
        box.put(A, b"%d" % n, True)
    assert box.sock.sent == []
    box.put(A, b"last", True)
    assert len(box.sock.sent) == HOLD_COUNT and box.sock.sent[-1] == b"A last"


def test_pieces_of_one_response_join_up_to_their_limit(box):
    for piece in (b"1234", b"56", b"7890"):
        box.put(A, piece, True, 10)
    assert box.sock.sent == []
    box.put(A, b"x", True, 10)   # 11 bytes would be too many: the 10 go
    assert box.sock.sent == [b"A 1234567890"]
    box.put(A, b"y", True, 10)
    box.flush()
    assert box.sock.sent == [b"A 1234567890", b"A xy"]


def test_pieces_join_only_their_own_response(box):
    box.put(A, b"a1", True, 100)
    box.put(B, b"b1", True, 100)
    box.put(A, b"a2", True, 100)  # not behind A's first piece any more
    box.put(A, b"whole", True)    # a whole reply joins nothing, nor is joined
    box.put(A, b"a3", True, 100)
    box.put(A, b"")               # a close: at once, after the rest
    assert box.sock.sent == [b"A a1", b"B b1", b"A a2", b"A whole", b"A a3", b"A "]


def test_a_piece_as_big_as_its_limit_goes_at_once(box):
    box.put(A, b"small", True, 8)
    box.put(B, b"12345678", True, 8)
    assert box.sock.sent == [b"A small", b"B 12345678"]


def test_stop_sends_what_is_held(box):
    box.start()
    box.put(A, b"a", True)
    box.stop()
    assert box.sock.sent == [b"A a"]


class _ExitAfterSend(Pub):
    """A fast stop's SystemExit (SIGINT's handler) raised in the worker's
    thread right after one send returned, as the signal lands then."""

    def __init__(self, after):
        super().__init__()
        self.after = after

    def send(self, frame, copy=True):
        super().send(frame, copy)
        self.after -= 1
        if not self.after:
            raise SystemExit(0)


@pytest.mark.parametrize("after", [1, 2, 3])
def test_a_fast_stop_in_a_flush_sends_nothing_twice(after):
    """The worker's exit flushes the outbox again (Replies.close): what a
    flush cut short by SystemExit had sent must not go a second time
    (duplicate bytes on a keep-alive connection), what it had not must."""
    box = Outbox(_ExitAfterSend(after), on_sent=lambda mark: box.sock.sent.append(mark))
    box.put(A, b"a", True)
    box.mark(1)
    box.put(B, b"b", True)
    box.put(A, b"c", True)
    with pytest.raises(SystemExit):
        box.flush()
    box.stop()
    assert box.sock.sent == [b"A a", 1, b"B b", b"A c"]


def test_without_the_watchdog_held_replies_wait(box):
    """Before start() (in unit tests) nothing is sent behind the caller's back."""
    box.put(A, b"a", True, 100)
    assert box.ticker.parked and box.sock.sent == []


@pytest.mark.parametrize("limit", [0, 1 << 20])
def test_watchdog_sends_what_is_held_while_the_worker_is_busy(box, limit):
    """Whether a whole reply or a streamed piece, what is held leaves after
    HOLD_SECONDS without any other call: the application producing its next
    block (here: nothing) delays nothing."""
    box.start()
    started = time.monotonic()
    box.put(A, b"a", True, limit)
    wait_for(lambda: box.sock.sent, 5, interval=0.001, what="the watchdog's flush")
    assert box.sock.sent == [b"A a"]
    assert time.monotonic() - started >= HOLD_SECONDS


def test_watchdog_parks_when_idle_and_wakes_again(box):
    box.ticker.idle = 0.05
    box.start()
    box.put(A, b"a", True)
    wait_for(lambda: box.sock.sent == [b"A a"], 5, interval=0.001, what="the first flush")
    wait_for(lambda: box.ticker.parked, 5, interval=0.005, what="the watchdog to park")
    box.put(A, b"b", True, 100)
    wait_for(lambda: box.sock.sent == [b"A a", b"A b"], 5, interval=0.001,
             what="the flush after waking")


def test_reply_is_not_held_behind_the_next_slow_request(tmp_path):
    """A live worker: request A is in hand when B (fast) and C (3 s) queue
    behind it, in that order. B's reply, held while the worker goes on to C,
    reaches mongrel2 long before C ends."""
    peer = Peer()
    live = Wsgid(peer, make_app_folder(tmp_path, "e2e_app.py"), wsgi_app="e2e_app:app",
                 stop_signal=signal.SIGINT)
    try:
        live.start(workers=1)
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
