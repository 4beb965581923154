"""wsgid.zmqcalls: the plain versions and, where built, the compiled helper
that calls libzmq from C behave the same on real sockets."""

import os

import pytest
import zmq

from wsgid import zmqcalls

IMPLEMENTATIONS = [pytest.param(zmqcalls.PLAIN, id="plain")]
if zmqcalls.COMPILED:
    IMPLEMENTATIONS.append(pytest.param(vars(zmqcalls), id="compiled"))


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def _pair(context, kind_a, kind_b, name, identity=None):
    a, b = context.socket(kind_a), context.socket(kind_b)
    if identity:
        b.setsockopt(zmq.IDENTITY, identity)
    a.bind("inproc://" + name)
    b.connect("inproc://" + name)
    return a, b


def _settle(sock, count):
    """Until ``sock`` has something to read (inproc delivers at once, but
    not necessarily before the call returns)."""
    assert sock.poll(5000) or count == 0


def test_the_compiled_helper_serves_in_a_compiled_run():
    expect = os.environ.get("WSGID_EXPECT_COMPILED")
    if expect is None:
        pytest.skip("WSGID_EXPECT_COMPILED not set")
    assert zmqcalls.COMPILED == (expect == "1")


@pytest.mark.parametrize("calls", IMPLEMENTATIONS)
def test_recv_all_takes_every_frame_waiting_and_nothing_when_none(context, calls):
    pull, push = _pair(context, zmq.PULL, zmq.PUSH, "recv-all")
    out = [b"before"]
    assert calls["recv_all"](pull, out) == 0 and out == [b"before"]
    messages = [b"", b"a" * 100000, b"\x00 binary \xff"] + [b"%d" % i for i in range(50)]
    for data in messages:
        push.send(data)
    _settle(pull, 1)
    while len(out) < len(messages) + 1:
        calls["recv_all"](pull, out)
    assert out == [b"before"] + messages
    assert calls["recv_all"](pull, out) == 0


@pytest.mark.parametrize("calls", IMPLEMENTATIONS)
def test_recv_all_multipart_keeps_each_message_whole(context, calls):
    router, dealer = _pair(context, zmq.ROUTER, zmq.DEALER, "multipart", b"w1")
    sent = [[b"READY"], [b"BACK", b"3", b"4"], [b"MORE"]]
    for parts in sent:
        dealer.send_multipart(parts)
    _settle(router, 1)
    out = []
    while len(out) < len(sent):
        calls["recv_all_multipart"](router, out)
    assert out == [[b"w1"] + parts for parts in sent]


@pytest.mark.parametrize("calls", IMPLEMENTATIONS)
def test_send_parts_says_whether_the_peer_took_it(context, calls):
    router, dealer = _pair(context, zmq.ROUTER, zmq.DEALER, "send", b"w1")
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)
    dealer.send(b"READY")
    assert router.recv_multipart() == [b"w1", b"READY"]
    assert calls["send_parts"](router, [b"w1", b"one", b"two"]) is True
    assert dealer.recv_multipart() == [b"one", b"two"]
    assert calls["send_parts"](router, [b"nobody", b"x"]) is False  # ROUTER_MANDATORY


@pytest.mark.parametrize("calls", IMPLEMENTATIONS)
def test_send_parts_is_false_when_the_peer_is_full(context, calls):
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 1)
    assert calls["send_parts"](push, [b"no peer"]) is False  # PUSH without a peer blocks
    pull = context.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 1)
    push.bind("inproc://full")
    pull.connect("inproc://full")
    assert push.poll(5000, zmq.POLLOUT)
    results = [calls["send_parts"](push, [b"x"]) for _ in range(20)]
    assert results[0] is True and results[-1] is False


@pytest.mark.parametrize("calls", IMPLEMENTATIONS)
def test_a_closed_socket_is_an_error_not_a_crash(context, calls):
    sock = context.socket(zmq.PULL)
    sock.close()
    with pytest.raises(zmq.ZMQError):
        calls["recv_all"](sock, [])
