"""wsgid.wsshared: generations and open sockets as processes share them."""

import os

from wsgid.wsshared import Shared


def _in_child(fn):
    """Run ``fn`` in a forked child (a worker); its exit status."""
    pid = os.fork()
    if pid == 0:
        try:
            fn()
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_one_restart_seen_by_many_processes_is_one_generation():
    shared = Shared(2)
    first = shared.stamp(0)
    assert shared.known(0) == first
    assert _in_child(lambda: (shared.adopt(), shared.gone(0))) == 0
    second = shared.stamp(0)
    assert second != first and shared.stamp(1) != second
    # this process (a worker that saw the same restart later) adopts it
    assert shared.gone(0) == first
    assert shared.stamp(0) == second == shared.known(0)
    # the next restart is a new generation again
    shared.gone(0)
    assert shared.stamp(0) not in (first, second)


def test_a_late_process_stamps_with_what_it_knows():
    shared = Shared(1)
    known = shared.known(0)
    assert _in_child(lambda: (shared.adopt(), shared.gone(0))) == 0
    assert shared.stamp(0) != known and shared.known(0) == known  # not seen here yet


def test_sender_shared():
    shared = Shared(1)
    assert shared.sender(0) == b""
    assert _in_child(lambda: shared.set_sender(0, b"uuid-1")) == 0
    assert shared.sender(0) == b"uuid-1"
    shared.set_sender(0, b"x" * 200)  # not a send_ident: ignored
    assert shared.sender(0) == b"uuid-1"


def test_open_sockets_taken_once_across_processes():
    shared = Shared(2)
    for conn_id in range(1, 2001):
        assert shared.opened(conn_id % 2, conn_id, 5)
    assert shared.find(1, 1) == 5 and shared.find(0, 1) is None
    assert _in_child(lambda: None if shared.take(1, 1) == 5 else 1 / 0) == 0
    assert shared.take(1, 1) is None
    assert shared.find(0, 2) == 5  # past the removed entry
    assert sorted(shared.drop_front(0, 5)) == list(range(2, 2001, 2))
    assert shared.find(0, 2) is None and shared.find(1, 3) == 5
    assert shared.drop_front(0, 5) == []


def test_generation_kept_apart_in_the_table():
    shared = Shared(1)
    shared.opened(0, 7, 1)
    shared.opened(0, 8, 2)
    assert shared.drop_front(0, 1) == [7]
    assert shared.find(0, 8) == 2


def test_lock_of_a_killed_holder_taken_over(monkeypatch):
    from wsgid import wsshared
    monkeypatch.setattr(wsshared, "LOCK_SECONDS", 0.05)
    shared = Shared(1)
    assert _in_child(lambda: shared.lock.acquire()) == 0  # exits holding it
    shared.opened(0, 1, 9)  # after the wait, not for good
    assert shared.find(0, 1) == 9 and shared.lock.acquire(timeout=0)
