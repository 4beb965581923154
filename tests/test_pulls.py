"""The master's PULL from one mongrel2 (wsgid/pulls.py), against a fake
mongrel2 (a bound PUSH on ipc://, whose monitor counts the connections it
accepts): how many connections, a failed one tried again, a new socket when
the mongrel2 goes."""

import pytest
import zmq

from tests.support.waiting import wait_for
from wsgid.pulls import Pull


class Front:
    """A fake mongrel2: a bound PUSH that counts the connections it accepts."""

    def __init__(self, ctx, spec):
        self.ctx, self.spec, self.accepted = ctx, spec, 0
        self.bind()

    def bind(self):
        self.push = self.ctx.socket(zmq.PUSH)
        self.monitor = self.push.get_monitor_socket(zmq.EVENT_ACCEPTED)
        self.push.bind(self.spec)
        self.accepted = 0

    def connections(self):
        while self.monitor.poll(0):
            self.monitor.recv_multipart()
            self.accepted += 1
        return self.accepted

    def stop(self):
        self.push.disable_monitor()
        self.monitor.close(linger=0)
        self.push.close(linger=0)


def look_after(pull):
    """What the master's loop does for ``pull``: read its monitor, and try
    the failed connections again (here without waiting for their time)."""
    pull.check()
    pull.due(float("inf"))


@pytest.fixture
def rig(tmp_path):
    ctx = zmq.Context()
    spec = "ipc://%s/send" % tmp_path
    front = Front(ctx, spec)
    yield ctx, spec, front
    ctx.destroy(linger=0)


def test_grows_now_and_after_a_new_mongrel2_never_shrinks(rig):
    ctx, spec, front = rig
    pull = Pull(ctx, spec)
    pull.start()
    wait_for(lambda: front.connections() == 1, 5, what="one connection")
    pull.grow(3)
    wait_for(lambda: front.connections() == 3, 5, what="three connections")
    pull.grow(2)
    assert pull.connections == 3
    front.push.send(b"one")
    assert pull.sock.recv() == b"one"

    front.stop()  # mongrel2 went: a new socket, as many connections
    wait_for(lambda: pull.check(), 5, what="the socket renewed")
    assert pull.generation == 2
    front.bind()
    wait_for(lambda: look_after(pull) or front.connections() == 3, 5,
             what="three connections to the new mongrel2")
    pull.close()


def test_a_left_pull_does_not_grow(rig):
    ctx, spec, front = rig
    pull = Pull(ctx, spec)
    pull.start()
    wait_for(lambda: front.connections() == 1, 5, what="one connection")
    pull.leave()
    pull.grow(3)
    front.push.send(b"after")  # no connection takes it: nothing was connected again
    assert not pull.sock.poll(200)
    assert front.connections() == 1
    pull.close()


def test_a_failed_connection_is_tried_again(tmp_path):
    ctx = zmq.Context()
    spec = "ipc://%s/send" % tmp_path
    try:
        pull = Pull(ctx, spec, 2)
        pull.start()  # nothing listens yet
        wait_for(lambda: pull.check() or pull.retries == 2, 5, what="both failed")
        front = Front(ctx, spec)
        wait_for(lambda: look_after(pull) or front.connections() == 2, 5,
                 what="both tried again")
        pull.close()
    finally:
        ctx.destroy(linger=0)
