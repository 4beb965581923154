"""The process model in daemon mode, behind a real mongrel2."""

import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from tests.support.http import Load, get
from tests.support.marks import requires_mongrel2
from tests.support.waiting import wait_for
from tests.support.procfs import alive
from tests.support.wsgid import Wsgid, forge_pid, live_pids, make_app_folder
from tests.support.wsgid import run as wsgid
from wsgid import appfolder

pytestmark = [requires_mongrel2, pytest.mark.e2e]


def status(app_path):
    return wsgid("status", "--app-path", app_path, check=False).stdout.splitlines()


def live_workers(app_path):
    return live_pids(app_path, "worker")


def served_pids(m2, count=30):
    """The pids of the workers that answered ``count`` requests."""
    return {int(get(m2.url, "/sleep?0", timeout=2)[2].split(b'"pid": ')[1].rstrip(b"}")) for _ in range(count)}


def daemon_wsgid(m2, app_path, *extra):
    """wsgid daemonized as in production; stop() kills what is left at once."""
    return Wsgid(m2, app_path, *extra, daemon=True, stop_signal=signal.SIGKILL)


@pytest.fixture
def e2e_daemon(m2_factory, tmp_path):
    """``start(*options)``: a daemon_wsgid serving e2e_app through a mongrel2
    of its own (not started yet); stopped after the test."""
    made = []

    def make(*extra):
        app_path = make_app_folder(str(tmp_path), "e2e_app.py", name="app%d" % len(made))
        made.append(daemon_wsgid(m2_factory(), app_path, "--wsgi-app", "e2e_app:app", *extra))
        return made[-1]
    yield make
    for d in made:
        d.stop()


@pytest.fixture
def daemon(e2e_daemon):
    return e2e_daemon("--workers", "3")


def test_daemon_status_kill_restart_reload_stop(daemon, capsys):
    d = daemon.start(workers=3)
    lines = status(d.app_path)
    workers = live_workers(d.app_path)
    assert lines == ["Status: Running", "Master pid(s): %d" % d.master,
                     "Worker pid(s): %s" % ", ".join(map(str, workers))]
    assert len(workers) == 3
    assert "Master process started" in d.log()

    # kill -9 of a worker: replaced within 5 s, requests keep succeeding.
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    t0 = time.monotonic()
    after = d.wait_workers(3, exclude=[victim])
    assert time.monotonic() - t0 < 5
    assert victim not in after
    assert all(get(d.m2.url, "/k")[0] == 200 for _ in range(10))

    # restart: every worker pid new.
    before = set(after)
    wsgid("restart", "--app-path", d.app_path)
    renewed = d.wait_workers(3, exclude=before)
    assert not set(renewed) & before

    # reload under load: the test reports how many requests failed.
    before = set(renewed)
    with Load(d.m2) as load:
        wsgid("reload", "--app-path", d.app_path)
        reloaded = d.wait_workers(3, exclude=before)
        wait_for(lambda: load.ok >= 30, 20, what="requests after reload")
    with capsys.disabled():
        print("\n[default mode] reload under load: %d ok, %d failed"
              % (load.ok, load.failed + load.bad_gateway))
    assert not set(reloaded) & before
    assert served_pids(d.m2) <= set(reloaded)

    # stop: processes and pid files gone, status says Stopped.
    all_pids = [d.master] + reloaded
    wsgid("stop", "--app-path", d.app_path)
    wait_for(lambda: not any(alive(p) for p in all_pids), 35, what="all exited")
    assert appfolder.pids(d.app_path, "master") == []
    assert appfolder.pids(d.app_path, "worker") == []
    assert status(d.app_path) == ["Status: Stopped", "Master pid(s): ", "Worker pid(s): "]


def test_ttin_ttou(daemon):
    d = daemon.start(workers=3)
    os.kill(d.master, signal.SIGTTIN)
    d.wait_workers(4)
    os.kill(d.master, signal.SIGTTOU)
    d.wait_workers(3)
    os.kill(d.master, signal.SIGTTOU)  # (signals sent at once would coalesce)
    d.wait_workers(2)


def test_stale_pid_files(daemon):
    d = daemon.start(workers=3)
    dead = subprocess.Popen(["true"])
    dead.wait()
    forge_pid(d.app_path, "worker", dead.pid)
    forge_pid(d.app_path, "master", dead.pid)
    lines = status(d.app_path)
    assert lines[0] == "Status: Running"
    assert "%d(dead)" % dead.pid in lines[1] and "%d(dead)" % dead.pid in lines[2]
    proc = wsgid("stop", "--app-path", d.app_path)
    assert proc.returncode == 0
    wait_for(lambda: not alive(d.master), 35, what="master exit")


def test_graceful_stop_finishes_request_in_hand(daemon, tmp_path):
    d = daemon.start(workers=3)
    result = {}
    mark = tmp_path / "in-hand"
    t = threading.Thread(target=lambda: result.update(
        r=get(d.m2.url, "/sleep?1.5&%s" % mark, timeout=10)))
    t.start()
    wait_for(mark.exists, 10, what="the request in a worker's hands")
    os.kill(d.master, signal.SIGTERM)
    t.join(15)
    assert result["r"][0] == 200
    wait_for(lambda: not alive(d.master), 35, what="master exit")


def test_crash_looping_app_backs_off(m2_factory, tmp_path):
    m2 = m2_factory()
    app_path = make_app_folder(str(tmp_path))
    with open(os.path.join(app_path, "app", "broken.py"), "w") as f:
        f.write("raise ImportError('this app cannot load')\n")
    d = daemon_wsgid(m2, app_path, "--wsgi-app", "broken:app", "--workers", "1")
    d.spawn()
    try:
        wait_for(lambda: d.log().count("failed to start") >= 3, 15, what="three tries")
        log = d.log()
        assert "next try in 0.5s" in log and "next try in 1.0s" in log and "next try in 2.0s" in log
        assert log.count("this app cannot load") == log.count("failed to start") or \
            log.count("could not load") >= 3
        # Growing back-off: far fewer than a tight loop would make.
        assert log.count("failed to start") < 6
    finally:
        d.stop()


def test_stuck_worker_killed_after_timeout(e2e_daemon, tmp_path):
    d = e2e_daemon("--workers", "1", "--timeout", "2").start(workers=1)
    stuck = live_workers(d.app_path)[0]
    mark = tmp_path / "stuck"
    threading.Thread(target=lambda: _swallow(get, d.m2.url, "/sleep?60&%s" % mark, timeout=30),
                     daemon=True).start()
    wait_for(mark.exists, 10, what="the stuck request in hand")
    t0 = time.monotonic()
    d.wait_workers(1, exclude=[stuck])
    assert time.monotonic() - t0 < 6
    log = d.log()
    assert "silent for over 2s" in log
    # Its traceback first: the thread stuck in the app's function.
    dump = log[log.index("silent for over 2s"):]
    assert re.search(r'File ".*e2e_app\.py", line \d+ in _app', dump), dump[-2000:]
    assert get(d.m2.url, "/after")[0] == 200


def test_max_requests_recycles_workers(e2e_daemon):
    d = e2e_daemon("--workers", "1", "--max-requests", "5").start(workers=1)
    first = live_workers(d.app_path)[0]
    pids = set()

    def recycled():  # none lost (direct dispatch: docs/dispatch.rst)
        pids.update(served_pids(d.m2, 1))
        return len(pids) >= 2
    # It serves on until its replacement is ready, then retires.
    wait_for(recycled, 20, what="a replacement serving")
    assert first in pids
    assert "reached 5 requests, asking to be replaced" in d.log()
    wait_for(lambda: first not in live_workers(d.app_path), 10, what="the first retired")


def hog(m2):
    """Have a worker allocate 50 MiB and keep it: (its pid, its peak RSS in MiB)."""
    status, _, body = get(m2.url, "/hog", timeout=5)
    assert status == 200
    answer = json.loads(body)
    return answer["pid"], answer["peak_kib"] / 1024.0


MAX_RSS_LINE = r"Worker reached 1\d\d\.\d MiB of resident memory \(--max-rss 100\)"


def test_max_rss_replaces_the_worker_after_its_request(e2e_daemon):
    d = e2e_daemon("--workers", "1", "--max-rss", "100").start(workers=1)
    first_pid, first_peak = hog(d.m2)
    assert first_peak < 100
    assert get(d.m2.url, "/")[0] == 200  # under the limit: still serving
    pid, peak = hog(d.m2)  # the request that passes the limit is answered
    assert pid == first_pid and peak > 100
    d.wait_workers(1, exclude={first_pid})
    assert re.search(MAX_RSS_LINE, d.log())
    status, _, body = get(d.m2.url, "/")
    assert status == 200 and json.loads(body)["pid"] != first_pid


def test_max_rss_under_load_loses_nothing_with_broker(e2e_daemon):
    """Both workers pass the limit while two clients keep asking: each is
    replaced and not one request fails (direct dispatch would lose those in
    flight at the disconnect, as for --max-requests: docs/dispatch.rst)."""
    d = e2e_daemon("--workers", "2", "--dispatch", "broker", "--max-rss", "100")
    d.start(workers=2)
    first = set(live_workers(d.app_path))
    over = set()
    with Load(d.m2, threads=2, path="/sleep?0.005") as load:
        for _ in range(40):  # until both first workers passed (the broker picks)
            pid, peak = hog(d.m2)
            if peak > 100:
                over.add(pid)
            if first <= over:
                break
        d.wait_workers(2, exclude=over)
    assert first <= over and load.ok > 0
    assert (load.failed, load.bad_gateway) == (0, 0), load.other
    assert len(re.findall(MAX_RSS_LINE, d.log())) == len(over)


def test_workers_exit_when_master_dies(daemon):
    d = daemon.start(workers=3)
    workers = live_workers(d.app_path)
    os.kill(d.master, signal.SIGKILL)
    wait_for(lambda: not any(alive(p) for p in workers), 5, what="orphans to exit")


# An application that takes as long to load as the test says: it writes
# loading-<pid> beside itself, then waits for the file "go" (30 s at most).
SLOW_LOAD = """
import os, time
here = os.path.dirname(os.path.abspath(__file__))
open(os.path.join(here, "loading-%d" % os.getpid()), "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(os.path.join(here, "go")) and time.monotonic() < deadline:
    time.sleep(0.05)
from e2e_app import app
"""


@pytest.mark.parametrize("dispatch", ["direct", "broker"])
def test_a_worker_whose_master_died_while_it_loaded_exits(m2_factory, tmp_path, dispatch):
    """The master is SIGKILLed while its worker loads the application, and
    mongrel2 stops (as after a test): the worker, once loaded, must not wait
    on for a mongrel2 to subscribe. (With mongrel2 there, it would die of
    telling the dead master it is ready.)"""
    m2 = m2_factory()
    app_path = make_app_folder(str(tmp_path), "e2e_app.py", sources={"slow_load.py": SLOW_LOAD})
    d = daemon_wsgid(m2, app_path, "--wsgi-app", "slow_load:app", "--workers", "1",
                     "--dispatch", dispatch)
    folder = os.path.join(app_path, "app")
    try:
        d.spawn()
        (worker,) = wait_for(lambda: live_workers(app_path), 20, what="the worker")
        mark = os.path.join(folder, "loading-%d" % worker)
        wait_for(lambda: os.path.exists(mark), 20, what="the worker loading the app")
        os.kill(d.master, signal.SIGKILL)
        wait_for(lambda: not alive(d.master), 5, what="the master gone")
        m2.stop()
        open(os.path.join(folder, "go"), "w").close()
        wait_for(lambda: not alive(worker), 10, what="the orphaned worker to exit")
        assert "Master process is gone, worker exiting" in d.log()
    finally:
        d.stop()


def test_requests_queued_at_a_worker_whose_master_died_are_answered(m2_factory, tmp_path):
    """Direct dispatch, one worker busy with a slow request when its master
    is SIGKILLed; three more requests reach it meanwhile. Its replies go to
    mongrel2 directly: it answers them before it exits, none is left
    hanging."""
    m2 = m2_factory()
    d = daemon_wsgid(m2, make_app_folder(str(tmp_path), "e2e_app.py"), "--wsgi-app",
                     "e2e_app:app", "--workers", "1", "--dispatch", "direct")
    results = []

    def fetch(path):
        try:
            results.append(get(m2.url, path, timeout=20)[0])
        except OSError as exc:
            results.append(exc)
    try:
        d.start(workers=1)
        (worker,) = live_workers(d.app_path)
        mark = tmp_path / "in-hand"
        threads = [threading.Thread(target=fetch, args=("/sleep?3&%s" % mark,))]
        threads[0].start()
        wait_for(mark.exists, 10, what="the slow request in hand")
        os.kill(d.master, signal.SIGKILL)
        threads += [threading.Thread(target=fetch, args=("/sleep?0",)) for _ in range(3)]
        for thread in threads[1:]:
            thread.start()
        wait_for(lambda: len(m2.connections()) >= 4, 10, what="mongrel2 to read all four")
        for thread in threads:
            thread.join(30)
        assert results == [200] * 4, d.log()[-3000:]
        wait_for(lambda: not alive(worker), 10, what="the worker to exit")
    finally:
        d.stop()


def _swallow(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except OSError:
        pass


def test_start_removes_stale_pid_files(daemon):
    dead = subprocess.Popen(["true"])
    dead.wait()
    os.makedirs(os.path.join(daemon.app_path, "pid", "worker"), exist_ok=True)
    forge_pid(daemon.app_path, "worker", dead.pid)
    d = daemon.start(workers=3)
    assert dead.pid not in appfolder.pids(d.app_path, "worker")


def test_no_keep_alive_leaves_dead_workers_dead(e2e_daemon):
    d = e2e_daemon("--workers", "2", "--no-keep-alive").start(workers=2)
    first, second = live_workers(d.app_path)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: "Worker %d died" % first in d.log(), 5, what="the master to reap it")
    # Keep-alive would have forked a replacement in that same pass: none.
    assert live_workers(d.app_path) == [second] and alive(d.master)
    os.kill(second, signal.SIGKILL)
    # With every worker gone and keep-alive off, the master exits too.
    wait_for(lambda: not alive(d.master), 10, what="the master to exit")
    assert appfolder.pids(d.app_path, "master") == []
