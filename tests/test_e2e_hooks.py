"""Lifecycle hooks of plugins through a real mongrel2 (issue 24 part 2):
each at its moment, in the process it belongs to, with why a worker exited;
a hook that raises is logged with its traceback and stops nothing."""

import os
import signal

import pytest

from tests.support.http import get
from tests.support.marks import requires_mongrel2
from tests.support.waiting import wait_for
from tests.support.wsgid import Wsgid, make_app_folder

pytestmark = [requires_mongrel2, pytest.mark.e2e]

RECORDER = '''
import os

RECORD = %r


def _say(*words):
    with open(RECORD, "a") as f:
        f.write(" ".join(str(w) for w in words) + "\\n")


def on_starting(master):
    _say("on_starting", os.getpid(), master.pid)


def when_ready(master):
    _say("when_ready", os.getpid(), len(master.workers))


def on_reload(master):
    _say("on_reload", os.getpid(), master.generation)


def post_fork(worker):
    _say("post_fork", os.getpid(), worker.pid)


def worker_exit(worker, reason):
    _say("worker_exit", os.getpid(), worker.pid, reason)
'''

RAISING = '''
def _boom(*args):
    raise RuntimeError("hook broke")

on_starting = when_ready = on_reload = post_fork = worker_exit = _boom
'''


def app_with_plugins(tmp_path, **plugins):
    app_path = make_app_folder(str(tmp_path), "e2e_app.py", folders=("plugins",))
    for name, text in plugins.items():
        with open(os.path.join(app_path, "plugins", name + ".py"), "w") as f:
            f.write(text)
    return app_path


class Record:
    def __init__(self, path):
        self.path = path

    def lines(self, hook=None):
        try:
            with open(self.path) as f:
                rows = [line.split() for line in f]
        except FileNotFoundError:
            return []
        return [row[1:] for row in rows if hook is None or row[0] == hook]

    def wait(self, hook, count):
        return wait_for(lambda: len(self.lines(hook)) >= count and self.lines(hook), 20,
                        what="%d %s hook calls" % (count, hook))


def test_hooks_run_at_their_moments_with_the_exit_reasons(m2_factory, tmp_path):
    record = Record(str(tmp_path / "hooks.txt"))
    m2 = m2_factory()
    proc = Wsgid(m2, app_with_plugins(tmp_path, recorder=RECORDER % record.path),
                 "--wsgi-app", "e2e_app:app", "--workers", "2", "--max-requests", "1000",
                 "--timeout", "2")
    proc.start()
    try:
        first = proc.wait_workers(2)
        master = proc.master
        assert record.lines("on_starting") == [[str(master), str(master)]]
        assert record.lines("when_ready") == [[str(master), "0"]]  # before any fork
        # post_fork runs in each worker (its own pid) for the master's record of it.
        assert sorted(record.lines("post_fork")) == sorted([[str(p), str(p)] for p in first])
        assert record.lines()[:2] == [[str(master), str(master)], [str(master), "0"]]

        os.kill(master, signal.SIGHUP)
        record.wait("worker_exit", 2)
        assert record.lines("on_reload") == [[str(master), "1"]]
        assert sorted(record.lines("worker_exit")) == sorted(
            [[str(master), str(p), "reload"] for p in first])
        second = proc.wait_workers(2, exclude=first)
        assert len(record.lines("post_fork")) == 4

        os.kill(second[0], signal.SIGKILL)  # a crash
        record.wait("worker_exit", 3)
        assert record.lines("worker_exit")[2] == [str(master), str(second[0]), "crash"]

        # --timeout: a worker stuck in a request is killed.
        proc.wait_workers(2, exclude=second[:1])
        try:
            get(m2.url, "/sleep?30", timeout=0.5)
        except OSError:  # the timeout: the worker keeps the request
            pass
        exits = record.wait("worker_exit", 4)
        assert exits[3][2] == "timeout"
        # Its replacement is forked after the hook ran: both stop below.
        proc.wait_workers(2, exclude=second[:1] + [int(exits[3][1])])
    finally:
        proc.stop()
    exits = record.lines("worker_exit")
    assert [row[2] for row in exits[4:]] == ["stop", "stop"]


def test_max_requests_exit_reason(m2_factory, tmp_path):
    record = Record(str(tmp_path / "hooks.txt"))
    m2 = m2_factory()
    proc = Wsgid(m2, app_with_plugins(tmp_path, recorder=RECORDER % record.path),
                 "--wsgi-app", "e2e_app:app", "--workers", "1", "--max-requests", "2")
    proc.start()
    try:
        first = proc.wait_workers(1)
        for _ in range(3):
            get(m2.url, "/")
        record.wait("worker_exit", 1)
        assert record.lines("worker_exit")[0][1:] == [str(first[0]), "max-requests"]
    finally:
        proc.stop()


def test_a_raising_hook_is_logged_and_stops_nothing(m2_factory, tmp_path):
    """Every hook raises, in a plugin read before one that records: the
    master and its workers serve, reload and stop as usual, the other
    plugin's hooks still run, and each failure is in the log with its
    traceback."""
    record = Record(str(tmp_path / "hooks.txt"))
    m2 = m2_factory()
    proc = Wsgid(m2, app_with_plugins(tmp_path, a_raising=RAISING,
                                      b_recorder=RECORDER % record.path),
                 "--wsgi-app", "e2e_app:app", "--workers", "1")
    proc.start()
    try:
        first = proc.wait_workers(1)
        assert get(m2.url, "/")[0] == 200
        os.kill(proc.master, signal.SIGHUP)
        record.wait("worker_exit", 1)
        proc.wait_workers(1, exclude=first)
        assert get(m2.url, "/")[0] == 200
        log = proc.log()
        for hook in ("on_starting", "when_ready", "on_reload", "post_fork", "worker_exit"):
            assert "Lifecycle hook %s:%s failed (ignored)" % (
                os.path.join(proc.app_path, "plugins", "a_raising.py"), hook) in log
            assert record.lines(hook), hook
        assert "Traceback" in log and "RuntimeError: hook broke" in log
        master = proc.proc
    finally:
        proc.stop()
    assert master.returncode == 0
