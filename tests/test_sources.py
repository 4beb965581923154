"""Where a worker takes its requests from (wsgid/sources.py): mongrel2
directly, or the master over its private socket, with fake peers on ipc://
sockets in a temp folder."""

import time

import pytest
import zmq

from tests.support.waiting import wait_for
from tests.support.wire import SENDER, Pub, disconnect, req, request
from wsgid.brokerproto import BACK, BYE, BYE_ACK, GONE, MORE, READY, WEBSOCKETS, WINDOW, Slot
from wsgid.direct_source import DirectSource, FrontEnds, direct
from wsgid.outbox import Outbox
from wsgid.sources import BrokerSource


@pytest.fixture
def master(ctx, tmp_path):
    """(ROUTER as the master binds it, a BrokerSource connected, its slot)."""
    router = ctx.socket(zmq.ROUTER)
    router.bind("ipc://%s/workers" % tmp_path)
    slot = Slot()
    source = BrokerSource(ctx, "ipc://%s/workers" % tmp_path, b"42", slot, reclaim=0.05)
    source.start()
    assert router.recv_multipart() == [b"42", READY]
    yield router, source, slot
    source.close()


def test_ready_says_whether_the_app_serves_websockets(ctx, tmp_path):
    router = ctx.socket(zmq.ROUTER)
    router.bind("ipc://%s/workers" % tmp_path)
    source = BrokerSource(ctx, "ipc://%s/workers" % tmp_path, b"43", Slot())
    source.start(websockets=True)
    assert router.recv_multipart() == [b"43", READY, WEBSOCKETS]
    source.close()


def next_request(source, timeout=5):
    return wait_for(lambda: _try(source.recv_nowait), timeout, what="a request")


def _try(recv):
    try:
        return recv()
    except zmq.Again:
        return None


def test_direct_source_pulls_from_mongrel2(ctx, tmp_path):
    push = ctx.socket(zmq.PUSH)
    push.bind("ipc://%s/send" % tmp_path)
    source = DirectSource(ctx, ["ipc://%s/send" % tmp_path])
    source.start()
    push.send(req(1))
    assert next_request(source) == req(1)
    assert not source.gone((0, b"1")) and not source.paces  # notices go to any worker
    source.close()


def test_counts_started_and_answered_in_the_slot(master):
    router, source, slot = master
    router.send_multipart([b"42", req(1)])
    router.send_multipart([b"42", req(2)])
    assert next_request(source) == req(1)
    assert slot.read()[:2] == (1, 0)
    outbox = Outbox(Pub(), on_sent=source.answered)
    outbox.put(b"env ", b"reply", hold=True)
    source.done(outbox)
    assert slot.read()[1] == 0  # the reply is still held: not answered yet
    outbox.flush()
    assert slot.read()[1] == 1
    assert next_request(source) == req(2)
    outbox.put(b"env ", b"head", hold=True, limit=100)
    source.head_sent(outbox)
    assert slot.read() == (2, 1, 0, 0)  # held: no byte of it has left
    outbox.put(b"env ", b"more", hold=True, limit=100)
    source.head_sent(outbox)
    outbox.flush()
    assert slot.read() == (2, 1, 2, 0)
    assert outbox.sock.sent == [b"env reply", b"env head", b"env more"]


def test_says_more_only_while_the_master_waits(master):
    router, source, slot = master
    outbox = Outbox(Pub(), on_sent=source.answered)
    for conn in range(2):
        router.send_multipart([b"42", req(conn)])
    next_request(source)
    source.done(outbox)
    assert not router.poll(100)  # nobody waits at the master
    slot.write(Slot.WAITING, 1)
    next_request(source)
    source.done(outbox)
    assert router.recv_multipart() == [b"42", MORE]
    assert WINDOW >= 2


def test_disconnect_drops_a_held_request_and_marks_the_one_in_hand(master):
    router, source, slot = master
    for conn in (1, 2, 3):
        router.send_multipart([b"42", req(conn)])
    assert next_request(source) == req(1)
    router.send_multipart([b"42", disconnect(sender=SENDER, conn_id=b"2")])
    router.send_multipart([b"42", disconnect(sender=SENDER, conn_id=b"1")])
    wait_for(lambda: source.gone((0, b"1")), 5, what="the notice")
    assert not source.gone((0, b"3"))
    source.done(Outbox(Pub(), on_sent=source.answered))
    assert next_request(source) == req(3)  # 2's client had gone


def test_hands_back_what_waits_behind_a_long_request(master):
    router, source, slot = master
    for conn in (1, 2, 3):
        router.send_multipart([b"42", req(conn)])
    assert next_request(source) == req(1)
    started = time.monotonic()
    assert router.poll(5000)
    assert router.recv_multipart() == [b"42", BACK, b"2", b"3"]
    assert time.monotonic() - started >= 0.05  # not before the reclaim bound
    assert _try(source.recv_nowait) is None  # they are the master's again


def test_no_hand_back_for_a_quick_request(master):
    router, source, slot = master
    for conn in (1, 2):
        router.send_multipart([b"42", req(conn)])
    assert next_request(source) == req(1)
    source.done(Outbox(Pub(), on_sent=source.answered))
    assert next_request(source) == req(2)
    source.done(Outbox(Pub(), on_sent=source.answered))
    assert not router.poll(200)


def test_leftovers_say_bye_and_serve_until_acknowledged(master):
    router, source, slot = master
    router.send_multipart([b"42", req(1)])
    wait_for(lambda: source.sock.poll(10), 5, what="the request queued")
    served = []
    for data in source.leftovers():
        served.append(data)
        if len(served) == 1:
            assert router.recv_multipart() == [b"42", BYE]
            router.send_multipart([b"42", req(2)])  # sent before the master heard BYE
            router.send_multipart([b"42", BYE_ACK])
    assert served == [req(1), req(2)]


def test_leftovers_without_a_master_serve_what_is_here_and_hand_nothing_back(master):
    """The master is gone: no BYE (no one to answer it), no wait for a
    BYE-ACK, and the watchdog hands back nothing (no one would take it)."""
    router, source, slot = master
    router.send_multipart([b"42", req(1)])
    router.send_multipart([b"42", req(2)])
    wait_for(lambda: source.sock.poll(10), 5, what="the requests queued")
    started = time.monotonic()
    served = []
    for data in source.leftovers(master=False):
        served.append(data)
        time.sleep(source.reclaim * 4)  # a long request: the watchdog's bound passed
    assert served == [req(1), req(2)]
    assert time.monotonic() - started < 2  # not the 5 s a BYE-ACK is waited for
    assert not router.poll(200)  # neither BYE nor BACK


def test_credits_reach_the_response_in_hand(master):
    router, source, slot = master
    router.send_multipart([b"42", req(5)])
    next_request(source)
    credits = request({"METHOD": "JSON", "DOWNLOAD_CREDITS": "4096"},
                      b'{"type":"credits"}', sender=SENDER, conn_id=b"5", path=b"@*")
    router.send_multipart([b"42", credits])
    assert source.take_credits((0, b"5"), 5) == 4096


# ---------------------------------------------------------------- several front-ends

def test_direct_source_takes_from_every_front_end_in_turn(ctx, tmp_path):
    specs = ["ipc://%s/send%d" % (tmp_path, front) for front in (0, 1)]
    pushes = [ctx.socket(zmq.PUSH) for _ in specs]
    for push, spec in zip(pushes, specs):
        push.bind(spec)
    source = direct(ctx, specs)
    assert isinstance(source, FrontEnds)
    source.start()
    for conn in (1, 2, 3):  # the same conn ids on both
        for push in pushes:
            push.send(req(conn))
    wait_for(lambda: all(sock.poll(10) for sock in source.socks), 5, what="both queued")
    taken = []
    while len(taken) < 6:
        data = next_request(source)
        taken.append((source.front, data))
    assert sorted(taken) == sorted((front, req(conn)) for front in (0, 1) for conn in (1, 2, 3))
    # In turn: both had one queued (the wait above), so the first two differ.
    assert {front for front, _ in taken[:2]} == {0, 1}
    source.close()
    assert type(direct(ctx, specs[:1])) is DirectSource  # one front-end: as before


@pytest.fixture
def tagged(ctx, tmp_path):
    """As ``master``, for a worker of a wsgid with several front-ends."""
    router = ctx.socket(zmq.ROUTER)
    router.bind("ipc://%s/workers" % tmp_path)
    source = BrokerSource(ctx, "ipc://%s/workers" % tmp_path, b"42", Slot(), reclaim=1,
                          tagged=True)
    source.start()
    assert router.recv_multipart() == [b"42", READY]
    yield router, source
    source.close()


def credits(conn_id, granted):
    return request({"METHOD": "JSON", "DOWNLOAD_CREDITS": str(granted)},
                   b'{"type":"credits"}', sender=SENDER, conn_id=conn_id, path=b"@*")


def test_same_conn_id_on_two_front_ends_are_two_clients(tagged):
    router, source = tagged
    for front, conn in ((0, 5), (1, 5), (1, 6)):
        router.send_multipart([b"42", b"%d" % front, req(conn)])
    assert (next_request(source), source.front) == (req(5), 0)
    router.send_multipart([b"42", b"1", disconnect(sender=SENDER, conn_id=b"5")])
    wait_for(lambda: source.gone((1, b"5")), 5, what="front-end 1's notice")
    assert not source.gone((0, b"5"))  # the request in hand: its client is still there
    source.done(Outbox(Pub(), on_sent=source.answered))
    # front-end 1's connection 5 was dropped from what was held, not 0's
    assert (next_request(source), source.front) == (req(6), 1)
    router.send_multipart([b"42", b"0", credits(b"6", 4096)])
    router.send_multipart([b"42", b"1", credits(b"6", 1000)])
    assert source.take_credits((1, b"6"), 5) == 1000
    assert source.take_credits((0, b"6"), 5) == 4096


def test_tagged_source_still_reads_the_masters_own_messages(tagged):
    router, source = tagged
    router.send_multipart([b"42", b"1", req(1)])
    served = []
    for data in source.leftovers():
        served.append((source.front, data))
        assert router.recv_multipart() == [b"42", BYE]
        router.send_multipart([b"42", b"0", BYE_ACK])  # the master's own: any tag
    assert served == [(1, req(1))] and source.acked


def _serve_until(source, timeout=5):
    """The next request, the source looked after meanwhile (as the worker's
    loop does: a gone mongrel2 noticed, a failed connection tried again)."""
    def take():
        source.maintain(time.monotonic())
        return _try(source.recv_nowait)
    return wait_for(take, timeout, interval=0.005, what="a request")


def _push(source, push, data):
    """Send once a connection takes it (PUSH blocks without one), the
    source looked after meanwhile (it may have to connect again)."""
    def sent():
        source.maintain(time.monotonic())
        try:
            return push.send(data, zmq.NOBLOCK) or True
        except zmq.Again:
            return False
    wait_for(sent, 5, interval=0.005, what="a connection to send on")


def test_direct_source_drops_what_a_gone_mongrel2_sent_and_reads_the_next_ones(ctx, tmp_path):
    """mongrel2 A sent three requests and went; B, at the same address,
    numbers its connections anew. A's two queued requests are never read
    (they would be answered to B's clients of those ids), B's are, and the
    one of A's in hand is no longer live."""
    spec = "ipc://%s/send" % tmp_path
    a = ctx.socket(zmq.PUSH)
    a.bind(spec)
    source = DirectSource(ctx, [spec])
    source.start()
    a.send(req(1))
    assert _serve_until(source) == req(1)
    in_hand = source.stamp
    assert source.live(0, in_hand)
    a.send(req(2))
    a.send(req(3))
    wait_for(lambda: source.sock.poll(0), 5, what="A's requests queued at the source")
    a.close(linger=0)  # A goes (from the socket's view: its connection ends)...
    b = ctx.socket(zmq.PUSH)
    b.bind(spec)  # ...and B starts at its address, before the source looked
    _push(source, b, req(2))
    _push(source, b, req(9))
    assert _serve_until(source) == req(2) and source.stamp != in_hand  # B's
    assert _serve_until(source) == req(9)
    assert not source.live(0, in_hand) and source.live(0, source.stamp)
    assert _try(source.recv_nowait) is None  # A's 2 and 3: never read
    source.close()


def test_direct_source_retries_a_connection_refused(ctx, tmp_path):
    """The socket does not reconnect by itself (each is one mongrel2's):
    no mongrel2 listening yet, the source tries again itself."""
    spec = "ipc://%s/send" % tmp_path
    source = DirectSource(ctx, [spec])
    source.start()
    wait_for(lambda: source.maintain(time.monotonic()) is not None, 5,
             what="the refused connection noticed")
    push = ctx.socket(zmq.PUSH)
    push.bind(spec)
    _push(source, push, req(4))
    assert _serve_until(source) == req(4)
    source.close()


def test_gone_from_the_master_drops_what_it_sent_before(master):
    """The master says GONE after the last request of a mongrel2 that went:
    those held are dropped, the one in hand is no longer live, and what
    follows (the next mongrel2's) is served."""
    router, source, slot = master
    router.send_multipart([b"42", req(1)])
    router.send_multipart([b"42", req(2)])
    assert next_request(source) == req(1)
    in_hand = source.stamp
    assert source.live(0, in_hand)
    router.send_multipart([b"42", GONE])
    router.send_multipart([b"42", req(2)])  # the next mongrel2's connection 2
    wait_for(lambda: not source.live(0, in_hand), 5, what="GONE read")
    assert next_request(source) == req(2)
    assert source.live(0, source.stamp)
    assert _try(source.recv_nowait) is None  # the first req(2) was dropped


def test_gone_forgets_the_notices_of_the_mongrel2_that_went(master):
    """A disconnect notice the old mongrel2 sent for its client 2 as it
    stopped must not stop the reply to the next one's client 2."""
    router, source, slot = master
    router.send_multipart([b"42", req(2)])
    assert next_request(source) == req(2)
    source.done(Outbox(Pub(), on_sent=source.answered))
    router.send_multipart([b"42", disconnect(sender=SENDER, conn_id=b"2")])
    wait_for(lambda: source.gone((0, b"2")), 5, what="the notice")
    router.send_multipart([b"42", GONE])
    router.send_multipart([b"42", req(2)])  # the next mongrel2's connection 2
    assert next_request(source) == req(2)
    assert not source.gone((0, b"2"))
