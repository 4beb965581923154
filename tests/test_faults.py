"""Faults: the start-up race, mongrel2 restarting under wsgid, a worker
SIGKILLed under load (direct and broker dispatch)."""

import os
import signal
import socket
import time

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from tests.support.http import Load, get
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import wait_for
from tests.support.peer import Peer, status_of
from tests.support.wire import get_headers, json_request
from tests.support.wsgid import Wsgid, live_pids, make_app_folder

DISPATCH = ["direct", "broker"]


# -- start-up race ---------------------------------------------------------------------

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
    mark = tmp_path / "in-hand"
    with socket.create_connection(("127.0.0.1", m2.http_port), timeout=20) as old:
        old.sendall(b"GET /sleep?1.5&%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % str(mark).encode())
        wait_for(mark.exists, 10, what="the slow request in hand")
        m2.stop()
        m2.start()
        status, _, body = get(m2.url, "/mine?x", timeout=10)
    assert status == 200 and b'"PATH_INFO": "/mine"' in body, body[:300]


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
