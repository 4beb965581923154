"""Faults: the start-up race, mongrel2 restarting under wsgid, a worker
SIGKILLed under load (direct and broker dispatch)."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import time

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from tests.support.http import Load, get
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import SEND_IDENT
from tests.support.waiting import wait_for
from tests.support.peer import Peer, status_of
from tests.support.wire import get_headers, json_request
from tests.support.wsgid import Wsgid, live_pids, make_app_folder

DISPATCH = ["direct", "broker"]


# -- start-up race ---------------------------------------------------------------------

@contextlib.contextmanager
def _restart_in_hand(m2, tmp_path, seconds):
    """Restart mongrel2 while a request of ``seconds`` is in hand at wsgid;
    its client stays connected to the old mongrel2 within the block."""
    mark = tmp_path / "in-hand"
    with socket.create_connection(("127.0.0.1", m2.http_port), timeout=20) as slow:
        slow.sendall(b"GET /sleep?%g&%s HTTP/1.1\r\nHost: localhost\r\n\r\n"
                     % (seconds, str(mark).encode()))
        wait_for(mark.exists, 10, what="the slow request in hand")
        m2.stop()
        m2.start()
        yield


def _first_peer(peer, timeout=20):
    """Wait until the PUSH socket has a connected peer (polling the SUB
    meanwhile, so that its subscription goes out), without sleeping."""
    monitor = peer.push.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    poller = zmq.Poller()
    poller.register(monitor, zmq.POLLIN)
    poller.register(peer.sub, zmq.POLLIN)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            events = dict(poller.poll(10))
            if peer.sub in events:
                peer.pump()
            if monitor in events and \
                    recv_monitor_message(monitor)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return
        raise TimeoutError("no peer connected to the PUSH socket")
    finally:
        peer.push.disable_monitor()
        monitor.close(0)


def _push_now(peer, data):
    """PUSH at once: spin (no sleep, no SUB poll) until the pipe takes it."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return peer.push.send(data, zmq.NOBLOCK)
        except zmq.Again:
            if time.monotonic() > deadline:
                raise


@pytest.mark.parametrize("dispatch", DISPATCH)
@pytest.mark.parametrize("workers", [1, 3])
def test_first_request_at_connect_is_answered(tmp_path, dispatch, workers):
    peer = Peer()
    live = Wsgid(peer, make_app_folder(tmp_path, "e2e_app.py"), wsgi_app="e2e_app:app",
                 workers=workers, dispatch=dispatch, stop_signal=signal.SIGINT)
    try:
        live.spawn()
        _first_peer(peer)
        conn_ids = [b"%d" % (500 + i) for i in range(workers)]
        for conn_id in conn_ids:
            _push_now(peer, json_request(get_headers("/first"), conn_id=conn_id))
        for conn_id in conn_ids:
            bodies = peer.replies_for(conn_id, timeout=15)
            assert status_of(bodies) == b"200", bodies
            assert b'"PATH_INFO": "/first"' in bodies[0]
    finally:
        live.stop()
        peer.close()


@requires_mongrel2
@pytest.mark.e2e
@pytest.mark.parametrize("dispatch", DISPATCH)
def test_request_held_by_mongrel2_before_wsgid_starts_is_answered(m2_factory, wsgid_factory,
                                                                 tmp_path, dispatch):
    m2 = m2_factory()
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    with socket.create_connection(("127.0.0.1", m2.http_port), timeout=20) as s:
        # Sent (and held by mongrel2: no handler yet) before wsgid starts.
        s.sendall(b"GET /early HTTP/1.1\r\nHost: localhost\r\n\r\n")
        wsgid_factory(m2, app_path, "--wsgi-app", "e2e_app:app", "--dispatch", dispatch,
                      ready_path=None)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            assert chunk, "connection closed without an answer"
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"PATH_INFO": "/early"' in answer


# -- mongrel2 restarted under a running wsgid ----------------------------------------------

def _workers(app_path):
    return sorted(live_pids(app_path, "worker"))


@requires_mongrel2
@pytest.mark.e2e
@pytest.mark.parametrize("dispatch", DISPATCH)
def test_mongrel2_restart_served_again_without_wsgid_restart(m2_factory, wsgid_factory,
                                                             tmp_path, dispatch, capsys):
    m2 = m2_factory()
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    w = wsgid_factory(m2, app_path, "--wsgi-app", "e2e_app:app", "--workers", "2",
                      "--dispatch", dispatch)
    assert all(get(m2.url, "/before")[0] == 200 for _ in range(5))
    workers = _workers(app_path)
    master = w.proc.pid

    for cycle in range(2):
        m2.stop()
        m2.start()
        t0 = time.monotonic()

        def answered():
            try:
                return get(m2.url, "/again", timeout=2)[0] == 200
            except OSError:
                return False
        wait_for(answered, 20, interval=0.05, what="an answer after mongrel2 restart")
        with capsys.disabled():
            print("\n[%s] mongrel2 restart %d: served again after %.2fs"
                  % (dispatch, cycle + 1, time.monotonic() - t0))
        # Then every request is answered, by the same processes.
        statuses = [get(m2.url, "/after-%d" % i, timeout=5)[0] for i in range(30)]
        assert statuses == [200] * 30
    assert w.proc.poll() is None and w.proc.pid == master
    assert _workers(app_path) == workers, "workers were replaced"


@requires_mongrel2
@pytest.mark.e2e
@pytest.mark.parametrize("dispatch", DISPATCH)
def test_reply_for_a_stopped_mongrel2_never_reaches_its_successors_client(
        m2_factory, wsgid_factory, tmp_path, dispatch):
    """mongrel2 restarts while the one worker is in a request: the new
    mongrel2 numbers its connections from the start again, so its first
    client has the id the old request's client had. That client must get
    its own answer, not the old request's reply."""
    m2 = m2_factory()
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    wsgid_factory(m2, app_path, "--wsgi-app", "e2e_app:app", "--dispatch", dispatch)
    m2.stop()
    m2.start()  # a fresh mongrel2: the slow request below is its first connection
    wait_for(lambda: _answers(m2, "/warm"), 20, interval=0.05, what="mongrel2 to serve")
    m2.stop()
    m2.start()
    with _restart_in_hand(m2, tmp_path, 1.5):
        status, _, body = get(m2.url, "/mine?x", timeout=10)
    assert status == 200 and b'"PATH_INFO": "/mine"' in body, body[:300]


def _delivered(m2):
    """The bytes mongrel2 has pushed to wsgid so far (what the kernel counted
    on wsgid's connections to its send_spec): grows once a request has been
    handed to wsgid, though no worker has started it."""
    out = subprocess.run(["ss", "-tinH", "state", "established",
                          "( dport = :%d )" % m2.send_port],
                         capture_output=True, text=True, check=True).stdout
    return sum(int(n) for n in re.findall(r"bytes_received:(\d+)", out))


def _send_and_wait_delivered(m2, sock, request):
    before = _delivered(m2)
    sock.sendall(request)
    wait_for(lambda: _delivered(m2) >= before + len(request) // 2, 10,
             what="the request handed to wsgid")


def _read_response(sock):
    """One response of known length (the e2e app's JSON) from ``sock``."""
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _full_length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _full_length(data):
    head, _, _ = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    return len(head) + 4 + int(length.group(1)) if length else len(data) + 1


@requires_mongrel2
@pytest.mark.e2e
@pytest.mark.parametrize("ident", ["static", "per-start"])
@pytest.mark.parametrize("dispatch", DISPATCH)
def test_request_queued_when_mongrel2_restarts_never_answers_its_successors_client(
        m2_factory, wsgid_factory, tmp_path, dispatch, ident):
    """One worker, in a slow request; a second request waits behind it (at
    the worker, or in the master) when mongrel2 restarts. The new mongrel2
    numbers its connections from the start again: its second client has the
    queued request's connection id. That client must get its own answer,
    soon after the worker is free (no wait on a subscription), never the
    queued request's; so must the replies after it.

    ``static``: one send_ident for every start, recv_ident '' (mongrel2
    takes every reply): wsgid alone tells the starts apart. ``per-start``:
    a fresh send_ident each start, recv_ident equal to it (the documented
    deployment): mongrel2 itself takes only replies to its own requests."""
    m2 = m2_factory(**({"send_ident": SEND_IDENT} if ident == "static" else {}))
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    wsgid_factory(m2, app_path, "--wsgi-app", "e2e_app:app", "--dispatch", dispatch)
    m2.stop()
    m2.start()  # a fresh mongrel2: the two requests below are its first connections
    mark = tmp_path / "in-hand"
    slow = 3.0
    with socket.create_connection(("127.0.0.1", m2.http_port), timeout=20) as first, \
            socket.create_connection(("127.0.0.1", m2.http_port), timeout=20) as queued:
        first.sendall(b"GET /sleep?%.1f&%s HTTP/1.1\r\nHost: localhost\r\n\r\n"
                      % (slow, str(mark).encode()))
        wait_for(mark.exists, 10, what="the slow request in hand")
        freed_at = time.monotonic() + slow
        _send_and_wait_delivered(m2, queued, b"GET /theirs?secret HTTP/1.1\r\n"
                                 b"Host: localhost\r\nCookie: session=THEIRS\r\n\r\n")
        ids = m2.connections()
        assert len(ids) == 2
        m2.stop()
    m2.start()
    with socket.create_connection(("127.0.0.1", m2.http_port), timeout=20) as one, \
            socket.create_connection(("127.0.0.1", m2.http_port), timeout=20) as two:
        # Their connection ids are the first two again: the queued one's is two's.
        # (Read by mongrel2 in that order; wsgid may take them only once the
        # worker is free.)
        for count, (sock, path) in enumerate(((one, b"/one"), (two, b"/two")), 1):
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path)
            wait_for(lambda: len(m2.connections()) == count, 10, what="mongrel2 read " + str(path))
        assert m2.connections() == ids
        assert time.monotonic() < freed_at, "too slow: the worker was free already"
        answers = [_read_response(one), _read_response(two)]
        answered_at = time.monotonic()
    for path, answer in zip((b"/one", b"/two"), answers):
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert b'"PATH_INFO": "%s"' % path in answer, answer[:300]
        assert b"THEIRS" not in answer and b"/theirs" not in answer
    # Promptly: well before a 5 s wait for a subscription would have ended.
    assert answered_at - freed_at < 3.0, answered_at - freed_at
    for n in range(3):  # and every later reply as fast
        started = time.monotonic()
        status, _, body = get(m2.url, "/later-%d" % n, timeout=10)
        assert status == 200 and b"/later-%d" % n in body
        assert time.monotonic() - started < 3.0


@requires_mongrel2
@pytest.mark.e2e
@pytest.mark.parametrize("dispatch", DISPATCH)
def test_mongrel2_restarted_while_the_worker_is_busy_leaves_no_wait_on_replies(
        m2_factory, wsgid_factory, tmp_path, dispatch):
    """mongrel2 restarts (same send_ident, recv_ident '': the new one
    subscribes to the topic the old one's pipe still holds) while the one
    worker is in a request and does not touch its sockets. Every later
    reply must go at once, not after a wait for a subscription."""
    m2 = m2_factory(send_ident=SEND_IDENT)
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    wsgid_factory(m2, app_path, "--wsgi-app", "e2e_app:app", "--dispatch", dispatch)
    quick = []
    for n in range(3):
        started = time.monotonic()
        assert get(m2.url, "/before-%d" % n, timeout=10)[0] == 200
        quick.append(time.monotonic() - started)
    with _restart_in_hand(m2, tmp_path, 2):
        pass
    wait_for(lambda: _answers(m2, "/again"), 20, interval=0.05, what="mongrel2 to serve")
    for n in range(5):
        started = time.monotonic()
        status, _, body = get(m2.url, "/after-%d" % n, timeout=10)
        took = time.monotonic() - started
        assert status == 200 and b"/after-%d" % n in body
        assert took < max(1.0, 10 * max(quick)), (took, quick)  # a 5 s wait shows


def _answers(m2, path):
    try:
        return get(m2.url, path, timeout=2)[0] == 200
    except OSError:
        return False


# -- a worker SIGKILLed under load ----------------------------------------------------------

@requires_mongrel2
@pytest.mark.e2e
@pytest.mark.parametrize("dispatch", DISPATCH)
def test_worker_sigkilled_under_load(m2_factory, wsgid_factory, tmp_path, dispatch, capsys):
    m2 = m2_factory()
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    w = wsgid_factory(m2, app_path, "--wsgi-app", "e2e_app:app", "--workers", "3",
                      "--dispatch", dispatch)
    wait_for(lambda: len(_workers(app_path)) == 3, 15, what="3 workers")
    before = _workers(app_path)
    victim = before[0]
    with Load(m2, threads=4, path="/sleep?0.005", timeout=2, warm=20) as load:
        done = load.ok
        wait_for(lambda: load.ok >= done + 20, 10, what="load before the kill")
        os.kill(victim, signal.SIGKILL)
        killed_at = load.ok

        def replaced():
            now = _workers(app_path)
            return len(now) == 3 and victim not in now and now
        after = wait_for(replaced, 10, what="the victim replaced")
        wait_for(lambda: w.output().count("ready to serve") >= 4, 10, what="replacement ready")
        done = load.ok
        wait_for(lambda: load.ok >= done + 100, 20, what="requests after the replacement")
    with capsys.disabled():
        print("\n[%s] worker SIGKILLed under load: %d ok (%d before the kill), %d x 502, "
              "%d lost (timeouts/errors: %s)" % (dispatch, load.ok, killed_at, load.bad_gateway,
                                                  load.failed, load.other[:5]))
    assert set(before) - {victim} <= set(after)
    assert "died" in w.output()
    if dispatch == "broker":
        # The promise of the default mode: every request answered 200 or 502
        # (the one the victim was running, and those whose replies it still
        # held: a crash is a crash), none hanging, none lost.
        assert load.failed == 0
    else:
        # Direct mode: requests queued at the victim are lost (counted above);
        # at most what the victim held plus what mongrel2 had queued for it.
        assert load.bad_gateway == 0
        assert load.failed <= len(load.threads)
