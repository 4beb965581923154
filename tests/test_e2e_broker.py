"""Broker dispatch, the default mode (no --dispatch given here): nothing
lost on reload/restart/TTOU/TTIN, 502 for a worker that dies mid-request,
no request stuck behind a slow one, every worker used, several wsgid
masters sharing one mongrel2 by their number of workers, and the stop
paths."""

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from tests.support.http import Load, get
from tests.support.marks import requires_mongrel2
from tests.support.waiting import wait_for
from tests.support.wsgid import connections_to, make_app_folder
from tests.support.wsgid import run as wsgid
from tests.test_e2e_process import daemon_wsgid, live_workers

pytestmark = [requires_mongrel2, pytest.mark.e2e]


@pytest.fixture
def broker(m2_factory, tmp_path):
    m2 = m2_factory()
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    d = daemon_wsgid(m2, app_path, "--wsgi-app", "e2e_app:app", "--workers", "2")
    yield d
    d.stop()


def test_reload_restart_ttou_lose_nothing(broker, capsys):
    d = broker.start(workers=2)
    assert "broker dispatch" in d.log()
    with Load(d.m2) as load:
        before = set(live_workers(d.app_path))
        wsgid("reload", "--app-path", d.app_path)
        before = set(d.wait_workers(2, exclude=before))
        wsgid("restart", "--app-path", d.app_path)
        d.wait_workers(2, exclude=before)
        os.kill(d.master, signal.SIGTTOU)
        wait_for(lambda: len(live_workers(d.app_path)) == 1, 15, what="one worker left")
        done = load.ok
        wait_for(lambda: load.ok >= done + 30, 20, what="requests after TTOU")
    with capsys.disabled():
        print("\n[broker mode] reload+restart+TTOU under load: %d ok, %d failed"
              % (load.ok, load.failed + load.bad_gateway))
    assert load.failed == load.bad_gateway == 0


def test_max_requests_loses_nothing(m2_factory, tmp_path):
    m2 = m2_factory()
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    d = daemon_wsgid(m2, app_path, "--wsgi-app", "e2e_app:app", "--workers", "1",
                     "--max-requests", "5")
    try:
        d.start(workers=1)
        statuses = []

        def recycled():  # each worker serves on until its replacement is ready
            statuses.append(get(m2.url, "/sleep?0.01", timeout=5)[0])
            return d.log().count("reached 5 requests") >= 4
        wait_for(recycled, 30, interval=0, what="four recycled workers")
        assert statuses == [200] * len(statuses)
    finally:
        d.stop()


def test_worker_killed_mid_request_gets_502(broker, tmp_path):
    d = broker.start(workers=2)
    mark = tmp_path / "in-hand"
    result = {}

    def slow():
        result["r"] = get(d.m2.url, "/sleep?30&%s" % mark, timeout=20)
        result["t"] = time.monotonic()
    t = threading.Thread(target=slow)
    t.start()
    wait_for(mark.exists, 10, what="the slow request in hand")
    # The worker holding it: the one not answering fast requests.
    busy = [p for p in live_workers(d.app_path)
            if open("/proc/%d/wchan" % p).read() != "do_epoll_wait"] or live_workers(d.app_path)
    victim = _holder(d, busy)
    killed = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    t.join(10)
    assert result["r"][0] == 502
    assert result["t"] - killed < 1.0
    # Others unaffected.
    assert all(get(d.m2.url, "/after")[0] == 200 for _ in range(10))


def _holder(d, candidates):
    """The worker whose stack is in the app's time.sleep (via /proc)."""
    for pid in candidates:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rpartition(")")[2].split()[0]
        if state == "S" and "hrtimer" in open("/proc/%d/wchan" % pid).read():
            return pid
    # Fall back: ask which worker answers fast requests; the other holds it.
    fast = {int(get(d.m2.url, "/sleep?0")[2].split(b'"pid": ')[1].rstrip(b"}"))
            for _ in range(6)}
    return next(p for p in candidates if p not in fast)


def test_fast_requests_not_stuck_behind_slow(broker, tmp_path):
    d = broker.start(workers=2)
    mark = tmp_path / "slow"
    t = threading.Thread(target=lambda: get(d.m2.url, "/sleep?3&%s" % mark, timeout=10))
    t.start()
    wait_for(mark.exists, 10, what="the slow request in hand")
    durations = []
    for _ in range(20):
        t0 = time.monotonic()
        assert get(d.m2.url, "/fast", timeout=5)[0] == 200
        durations.append(time.monotonic() - t0)
    t.join(10)
    assert max(durations) < 1.5, durations  # one stuck behind the slow one waits ~3 s


def test_stream_stops_when_client_goes(broker, tmp_path):
    d = broker.start(workers=2)
    mark = tmp_path / "produced"
    with socket.create_connection(("127.0.0.1", d.m2.http_port), timeout=10) as s:
        s.sendall(b"GET /endless?%s HTTP/1.1\r\nHost: x\r\n\r\n" % str(mark).encode())
        got = 0
        while got < 2 << 20:
            got += len(s.recv(65536))
    wait_for(mark.exists, 10, what="the stream to stop")
    produced = int(mark.read_text())
    assert produced < 1 << 30  # far from the 16 GiB it would stream


def test_every_worker_used_with_one_connection_per_request(broker):
    """mongrel2 sends a disconnect notice after each closed connection and
    counts it as a turn of its round robin; the master hands out the
    requests itself, so both workers serve."""
    d = broker.start(workers=2)
    counts = {}
    for _ in range(24):
        status, _, body = get(d.m2.url, "/sleep?0", timeout=5)
        assert status == 200
        pid = int(body.split(b'"pid": ')[1].rstrip(b"}"))
        counts[pid] = counts.get(pid, 0) + 1
    assert sorted(counts) == sorted(live_workers(d.app_path))
    assert min(counts.values()) >= 6, counts


def test_six_clients_through_reload_restart_ttou_ttin_lose_nothing(broker, capsys):
    d = broker.start(workers=2)
    with Load(d.m2, threads=6) as load:
        def progress():
            done = load.ok
            wait_for(lambda: load.ok >= done + 20, 20, what="requests served")
        for command in ("reload", "restart", "reload"):
            before = set(live_workers(d.app_path))
            wsgid(command, "--app-path", d.app_path)
            d.wait_workers(2, exclude=before)
            progress()
        os.kill(d.master, signal.SIGTTOU)
        wait_for(lambda: len(live_workers(d.app_path)) == 1, 15, what="one worker left")
        progress()
        os.kill(d.master, signal.SIGTTIN)
        wait_for(lambda: len(live_workers(d.app_path)) == 2, 15, what="two workers again")
        before = set(live_workers(d.app_path))
        wsgid("restart", "--app-path", d.app_path)
        d.wait_workers(2, exclude=before)
        progress()
    with capsys.disabled():
        print("\n[broker mode] 6 clients through reload, restart, reload, TTOU, TTIN, "
              "restart: %d ok, %d failed" % (load.ok, load.failed + load.bad_gateway))
    assert load.failed == load.bad_gateway == 0


def test_two_masters_share_one_mongrel2_by_worker_count(m2_factory, tmp_path):
    """One connection to mongrel2 per worker: with 2 and 4 workers behind
    the same handler, the masters get about a third and two thirds."""
    m2 = m2_factory()
    small = daemon_wsgid(m2, make_app_folder(str(tmp_path / "a"), "e2e_app.py"),
                         "--wsgi-app", "e2e_app:app", "--workers", "2")
    large = daemon_wsgid(m2, make_app_folder(str(tmp_path / "b"), "e2e_app.py"),
                         "--wsgi-app", "e2e_app:app", "--workers", "4")
    try:
        small.start(workers=2)
        large.start(workers=4)
        owner = {pid: "small" for pid in live_workers(small.app_path)}
        owner.update({pid: "large" for pid in live_workers(large.app_path)})
        served = {"small": 0, "large": 0}
        for _ in range(120):
            body = get(m2.url, "/sleep?0", timeout=5)[2]
            served[owner[int(body.split(b'"pid": ')[1].rstrip(b"}"))]] += 1
        share = served["small"] / 120.0
        assert 0.2 <= share <= 0.45, served
    finally:
        small.stop()
        large.stop()


def _slow(d, mark, seconds, timeout):
    """A request of ``seconds`` in a thread; its (status, ...) or None in
    ``result["r"]`` (None: no answer within ``timeout``)."""
    result = {}

    def run():
        try:
            result["r"] = get(d.m2.url, "/sleep?%s&%s" % (seconds, mark), timeout=timeout)
        except OSError:
            result["r"] = None
        result["t"] = time.monotonic()
    thread = threading.Thread(target=run)
    thread.start()
    wait_for(mark.exists, 10, what="the slow request in hand")
    return thread, result


def test_a_worker_killed_at_the_graceful_deadline_gets_its_client_a_502(m2_factory, tmp_path):
    """A graceful stop whose worker does not finish in time: the worker is
    SIGKILLed, and its client is answered 502 at once, not left hanging."""
    m2 = m2_factory()
    d = daemon_wsgid(m2, make_app_folder(str(tmp_path), "e2e_app.py"), "--wsgi-app",
                     "e2e_app:app", "--workers", "1", "--graceful-timeout", "1")
    try:
        d.start(workers=1)
        thread, result = _slow(d, tmp_path / "in-hand", 30, timeout=10)
        stopped = time.monotonic()
        os.kill(d.master, signal.SIGTERM)
        thread.join(20)
        assert result["r"] is not None and result["r"][0] == 502, result
        assert result["t"] - stopped < 5
    finally:
        d.stop()


def test_after_a_stop_no_connection_to_mongrel2s_send_spec_stays_while_workers_finish(
        broker, tmp_path):
    """The master leaves mongrel2 at once on a graceful stop (mongrel2 then
    queues new requests for the next handler), and no worker keeps the
    master's connections open (inherited at the fork) for mongrel2 to push
    requests into that no one reads."""
    d = broker.start(workers=2)
    # One per worker, the master's, once a worker said it has no WebSocket handler.
    wait_for(lambda: len(connections_to(d.m2.send_port)) == 2, 5,
             what="two connections to mongrel2's send_spec")
    thread, result = _slow(d, tmp_path / "in-hand", 4, timeout=15)
    os.kill(d.master, signal.SIGTERM)
    wait_for(lambda: not connections_to(d.m2.send_port), 3,
             what="no connection to mongrel2's send_spec")
    assert "r" not in result  # the slow request still runs: workers live
    thread.join(20)
    assert result["r"][0] == 200


def test_a_direct_wsgid_serves_after_a_broker_one_answered_a_gone_client(m2_factory, tmp_path):
    """mongrel2 meets a reply to a connection it no longer has with a
    disconnect notice, sent blocking to its send_spec (PUSH) by the one task
    that reads the replies: while no handler is connected there, it reads
    nothing more -- not even a new handler's connection to its recv_spec,
    which it therefore never subscribes to. A broker wsgid leaves the
    send_spec before its workers finish, and answers 502 for one killed at
    the graceful deadline (here: whose client had gone). A direct wsgid
    started then must connect to the send_spec without waiting for
    mongrel2's subscription, or neither ever comes."""
    m2 = m2_factory()
    broker = daemon_wsgid(m2, make_app_folder(str(tmp_path), "e2e_app.py", name="broker"),
                          "--wsgi-app", "e2e_app:app", "--workers", "1",
                          "--graceful-timeout", "1")
    direct = daemon_wsgid(m2, make_app_folder(str(tmp_path), "e2e_app.py", name="direct"),
                          "--wsgi-app", "e2e_app:app", "--workers", "1", "--dispatch", "direct")
    mark = tmp_path / "in-hand"
    try:
        broker.start(workers=1)
        client = socket.create_connection(("127.0.0.1", m2.http_port), timeout=10)
        client.sendall(b"GET /sleep?30&%s HTTP/1.1\r\nHost: localhost\r\n\r\n"
                       % str(mark).encode())
        wait_for(mark.exists, 10, what="the slow request in hand")
        port = client.getsockname()[1]
        client.close()
        wait_for(lambda: not _mongrel2_has_client(port), 5, what="mongrel2 done with the client")
        os.kill(broker.master, signal.SIGTERM)
        wait_for(lambda: broker.failed() and not broker.workers(), 15, what="the broker gone")
        assert "answered 502" in broker.log()
        direct.start(workers=1)  # answers within 20 s
        assert get(m2.url, "/sleep?0", timeout=5)[0] == 200
    finally:
        broker.stop()
        direct.stop()


def _mongrel2_has_client(port):
    """Whether mongrel2 still holds the connection of the client at ``port``."""
    out = subprocess.run(["ss", "-tnp"], capture_output=True, text=True, check=True).stdout
    return any("mongrel2" in line and line.split()[4] == "127.0.0.1:%d" % port
               for line in out.splitlines())
