"""The reply side (wsgid/replies.py) with several mongrel2 front-ends: fake
mongrel2 SUB sockets on ipc:// subscribe to everything, as mongrel2 does, so
each reply must go out on its own front-end's socket only."""

import threading
import time

import pytest
import zmq

from tests.support.waiting import wait_for
from tests.support.wire import SENDER, Pub
from wsgid.replies import ClientGone, Replies
from wsgid.sources import Source as BaseSource


class Source(BaseSource):
    stamp = 1  # the generation of the request side's socket


def mongrel2_sub(ctx, spec):
    sub = ctx.socket(zmq.SUB)
    sub.bind(spec)
    sub.setsockopt(zmq.SUBSCRIBE, b"")  # mongrel2 subscribes to every reply
    return sub


def replies_for(ctx, specs):
    replies = Replies([ctx.socket(zmq.XPUB) for _ in specs], Source())
    replies.connect(specs)
    return replies


def test_each_reply_reaches_only_its_front_end(ctx, tmp_path):
    specs = ["ipc://%s/recv%d" % (tmp_path, front) for front in (0, 1)]
    subs = [mongrel2_sub(ctx, spec) for spec in specs]
    replies = replies_for(ctx, specs)
    # A bound SUB sends its subscription only while its thread uses it.
    wait_for(lambda: [sub.poll(10) for sub in subs] and replies.count_subscriptions() == 2, 5,
             what="both subscriptions")
    replies.sender(SENDER, b"5")(b"for a")
    replies.follow(1)
    replies.sender(SENDER, b"5")(b"for b")  # the same conn id: another client
    assert subs[0].recv() == SENDER + b" 1:5, for a"
    assert subs[1].recv() == SENDER + b" 1:5, for b"
    assert not subs[0].poll(100) and not subs[1].poll(0)
    replies.close()


def test_a_front_end_not_listening_holds_only_its_own_replies(ctx, tmp_path):
    specs = ["ipc://%s/recv%d" % (tmp_path, front) for front in (0, 1)]
    sub = mongrel2_sub(ctx, specs[0])  # front-end 1 is down
    replies = replies_for(ctx, specs)
    wait_for(lambda: sub.poll(10) or replies.count_subscriptions() == 1, 5,
             what="front-end 0's subscription")
    started = time.monotonic()
    replies.sender(SENDER, b"1")(b"at once")
    assert sub.recv() == SENDER + b" 1:1, at once"
    assert time.monotonic() - started < 1  # not held by front-end 1 being down
    # Front-end 1 comes back: its reply waits for its subscription, then leaves.
    got = []

    def front_end_1():
        # Up once the reply waits for it (await_subscriber holds that lock).
        wait_for(lambda: replies.outboxes[1].lock.locked(), 5, what="the reply held")
        late = mongrel2_sub(ctx, specs[1])
        if late.poll(5000):
            got.append(late.recv())
        late.close()

    thread = threading.Thread(target=front_end_1)
    thread.start()
    replies.follow(1)
    replies.sender(SENDER, b"1")(b"held")
    thread.join(10)
    assert got == [SENDER + b" 1:1, held"]
    assert not sub.poll(100)  # nothing of front-end 1's reached front-end 0
    replies.close()


def test_following_another_front_end_sends_what_the_last_one_held_first():
    """A broker reads a request as answered once its mark has left the
    outbox: the marks of two front-ends' outboxes must not overtake."""
    answered = []
    source = Source()
    source.answered = answered.append
    replies = Replies([Pub(), Pub()], source)
    replies.subscribed = [True, True]
    replies.sender(SENDER, b"1")(b"held", hold=True)
    replies.outbox.mark(1)
    assert answered == [] and replies.pubs[0].sent == []
    replies.follow(1)
    assert replies.pubs[0].sent == [SENDER + b" 1:1, held"] and answered == [1]
    replies.sender(SENDER, b"1")(b"at once")
    replies.outbox.mark(2)
    assert replies.pubs[1].sent == [SENDER + b" 1:1, at once"] and answered == [1, 2]


def test_replies_of_a_mongrel2_that_went_never_reach_the_next_one(ctx, tmp_path):
    """A new mongrel2 at the same address numbers its connections anew: what
    was meant for its predecessor's connection 5 is dropped (a body raising
    ClientGone, a close silently), while a request of the new one is answered."""
    spec = "ipc://%s/recv" % tmp_path
    sub = mongrel2_sub(ctx, spec)
    replies = replies_for(ctx, [spec])
    wait_for(lambda: sub.poll(10) is not None and replies.count_subscriptions() == 1, 5,
             what="the subscription")
    old = replies.sender(SENDER, b"5")  # a request of the first mongrel2, in hand
    sub.close(linger=0)  # that mongrel2 stops...
    sub = mongrel2_sub(ctx, spec)  # ...and the next one starts

    def went():
        # The count alone cannot tell the new subscription from the old one
        # not yet ended: a probe that arrives shows the new one is in place.
        replies.pubs[0].send(SENDER + b" probe")
        replies.count_subscriptions()
        return replies.generation[0] == 1 and sub.poll(10)
    wait_for(went, 5, what="the restart seen")
    while sub.poll(50):
        sub.recv()  # the probes
    with pytest.raises(ClientGone):
        old(b"the old answer")
    old(b"")  # its close: not sent either
    replies.sender(SENDER, b"5")(b"the new answer")
    assert sub.poll(5000), "the new answer never came"
    assert sub.recv() == SENDER + b" 1:5, the new answer"
    assert not sub.poll(100)
    replies.close()


def test_a_subscriber_still_there_when_another_leaves_is_still_counted(ctx, tmp_path):
    """Subscriptions are counted per pipe (XPUB_VERBOSER): two SUBs on the
    one front-end take the same topic, as an old and a new mongrel2 do
    while the old one's pipe has not ended yet. When one leaves, the other
    still listens, and a reply goes at once (a plain XPUB reports the
    second subscription to no one: every reply then waited 5 s)."""
    specs = ["ipc://%s/recv-a" % tmp_path, "ipc://%s/recv-b" % tmp_path]
    old, new = mongrel2_sub(ctx, specs[0]), mongrel2_sub(ctx, specs[1])
    replies = replies_for(ctx, specs[:1])
    replies.pubs[0].connect(specs[1])
    wait_for(lambda: [old.poll(10), new.poll(10)] and replies.count_subscriptions()
             and replies.subscribed[0] == 2, 5, what="both subscriptions counted")
    old.close(linger=0)

    def left():
        new.poll(10)
        replies.count_subscriptions()
        return replies.subscribed[0] == 1 and replies.generation[0] == 1
    wait_for(left, 5, what="the old one gone")
    started = time.monotonic()
    replies.sender(SENDER, b"3")(b"at once")
    assert new.recv() == SENDER + b" 1:3, at once"
    assert time.monotonic() - started < 1
    replies.close()
