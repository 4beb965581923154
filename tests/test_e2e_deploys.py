"""A broken deploy is no outage: reload, --max-requests and ``wsgid check``
with an application that no longer loads, behind a real mongrel2."""

import json
import os
import signal

import pytest

from tests.support.http import Load, get
from tests.support.marks import requires_mongrel2
from tests.support.waiting import wait_for
from tests.support.wsgid import Wsgid, live_pids, make_app_folder
from tests.support.wsgid import run as wsgid

pytestmark = [requires_mongrel2, pytest.mark.e2e]

GOOD = '''import os

VERSION = %r


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%%s %%d" %% (VERSION, os.getpid())).encode()]
'''
BROKEN = "import os\n\ndef app(environ, start_response)\n    return []\n"  # no colon


def deploy(app_path, text):
    """Replace the application's module, as a deploy does (a new file)."""
    path = os.path.join(app_path, "app", "deployed.py")
    with open(path + ".new", "w") as f:
        f.write(text)
    os.replace(path + ".new", path)
    cached = os.path.join(app_path, "app", "__pycache__")
    if os.path.isdir(cached):  # same size and second: a stale .pyc would be taken
        for name in os.listdir(cached):
            os.unlink(os.path.join(cached, name))


def version(m2):
    status, _, body = get(m2.url, "/", timeout=5)
    assert status == 200, (status, body)
    return body.decode().split()[0]


@pytest.fixture
def site(m2_factory, tmp_path):
    """wsgid daemonized on deployed.py (version v1), 2 workers; a short
    --graceful-timeout, which no longer bounds how long the old ones serve."""
    app_path = make_app_folder(str(tmp_path), sources={"deployed.py": GOOD % "v1"})
    d = Wsgid(m2_factory(), app_path, "--wsgi-app", "deployed:app", "--workers", "2",
              "--graceful-timeout", "1", daemon=True, stop_signal=signal.SIGKILL)
    yield d
    d.stop()


def status_json(app_path):
    return json.loads(wsgid("status", "--app-path", app_path, "--json").stdout)["masters"][0]


def test_a_broken_deploy_keeps_the_old_workers_serving(site):
    d = site.start(workers=2)
    old = set(live_pids(d.app_path, "worker"))
    deploy(d.app_path, BROKEN)
    with Load(d.m2, threads=2, path="/") as load:
        proc = wsgid("reload", "--app-path", d.app_path, "--wait", "30", check=False)
        # reload says it failed, and why, and exits non-zero: a deploy script stops.
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "the reload of master %d failed: SyntaxError: " % d.master in proc.stderr
        assert "generation 0 serving" in proc.stderr
        # Three rounds of two failed workers later (back-off 1 s, then 4 s):
        # past --graceful-timeout and the 5 s wsgid once gave a reload, the
        # old workers still serve, no new one having been ready.
        wait_for(lambda: d.log().count("failed to start") >= 6, 40, what="three tries")
        assert set(live_pids(d.app_path, "worker")) >= old
        assert version(d.m2) == "v1"
    assert load.ok > 0 and (load.failed, load.bad_gateway) == (0, 0), load.other
    log = d.log()
    # The boot error with its traceback, once; each later try one line.
    assert log.count("could not load the application") == 1
    assert log.count("Traceback (most recent call last)") == 1
    assert "the same error: SyntaxError" in log
    assert "Reload failed: generation 1 cannot start (SyntaxError: " in log
    # status, text and JSON: the last reload failed, why, who serves.
    lines = wsgid("status", "--app-path", d.app_path).stdout.splitlines()
    assert lines[3].startswith("Reload: failed (SyntaxError: ")
    assert lines[3].endswith("); generation 0 serving")
    master = status_json(d.app_path)
    assert master["reload"]["outcome"] == "failed"
    assert master["reload"]["error"].startswith("SyntaxError: ")
    assert master["serving"] == [0] and master["generation"] == 1

    # The fixed deploy: reload succeeds, the new code answers, the old retire.
    deploy(d.app_path, GOOD % "v2")
    proc = wsgid("reload", "--app-path", d.app_path, "--wait", "30", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Reload of master %d done: generation 2 serving" % d.master in proc.stdout
    assert version(d.m2) == "v2"
    wait_for(lambda: not set(live_pids(d.app_path, "worker")) & old, 10, what="old retired")
    master = status_json(d.app_path)
    assert (master["reload"]["outcome"], master["serving"]) == ("done", [2])
    assert len(wsgid("status", "--app-path", d.app_path).stdout.splitlines()) == 3


def test_max_requests_keeps_a_worker_that_cannot_be_replaced(m2_factory, tmp_path):
    """--max-requests reached while the application no longer loads: the
    worker serves on (the log says so) until a replacement is ready."""
    app_path = make_app_folder(str(tmp_path), sources={"deployed.py": GOOD % "v1"})
    d = Wsgid(m2_factory(), app_path, "--wsgi-app", "deployed:app", "--workers", "1",
              "--max-requests", "3", daemon=True, stop_signal=signal.SIGKILL)
    try:
        d.start(workers=1)
        first = live_pids(app_path, "worker")
        deploy(app_path, BROKEN)
        for _ in range(3):
            assert version(d.m2) == "v1"
        wait_for(lambda: "stays in service: its replacement cannot start (SyntaxError"
                 in d.log(), 10, what="the worker kept")
        for _ in range(10):
            assert version(d.m2) == "v1"
        assert live_pids(app_path, "worker") == first
        deploy(app_path, GOOD % "v2")  # the next try loads it
        wait_for(lambda: version(d.m2) == "v2", 40, what="the replacement")
        wait_for(lambda: first[0] not in live_pids(app_path, "worker"), 10, what="retired")
    finally:
        d.stop()


def test_check_loads_the_app_as_a_worker_would(tmp_path):
    app_path = make_app_folder(str(tmp_path), sources={"deployed.py": GOOD % "v1"})
    with open(os.path.join(app_path, "wsgid.json"), "w") as f:
        json.dump({"wsgi_app": "deployed:app"}, f)  # read as start reads it
    good = wsgid("check", "--app-path", app_path, check=False)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Application in %s loads" % app_path in good.stdout
    assert "Application loaded by WsgiAppLoader" in good.stderr
    deploy(app_path, BROKEN)
    bad = wsgid("check", "--app-path", app_path, check=False)
    assert bad.returncode == 1
    assert "Traceback (most recent call last)" in bad.stderr
    assert "SyntaxError" in bad.stderr and "deployed.py" in bad.stderr
    assert bad.stderr.rstrip().endswith("wsgid: error: the application in %s does not load"
                                        % app_path)


def test_sd_notify_status_says_the_reload_failed(m2_factory, tmp_path, notify_socket):
    sock = notify_socket
    app_path = make_app_folder(str(tmp_path), sources={"deployed.py": GOOD % "v1"})
    d = Wsgid(m2_factory(), app_path, "--wsgi-app", "deployed:app")
    try:
        d.start()

        def fields():
            return dict(line.split("=", 1) for line in sock.recv(4096).decode().split("\n"))
        assert fields()["STATUS"] == "Serving (generation 0)"
        deploy(app_path, BROKEN)
        os.kill(d.master, signal.SIGHUP)
        assert "RELOADING" in fields()
        failed = fields()
        # systemctl reload is over (READY), and the status says how.
        assert failed["READY"] == "1"
        assert failed["STATUS"].startswith("Reload failed: SyntaxError: ")
        assert failed["STATUS"].endswith("; generation 0 serving")
        assert version(d.m2) == "v1"
        deploy(app_path, GOOD % "v2")
        os.kill(d.master, signal.SIGHUP)
        assert "RELOADING" in fields()
        assert fields()["STATUS"] == "Serving (generation 2)"
    finally:
        d.stop()
