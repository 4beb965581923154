"""Every example mongrel2 config loads with m2sh; the hello example serves."""

import glob
import os
import re
import shutil
import subprocess
import uuid

import pytest

from tests.support import ROOT
from tests.support.http import get
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import Mongrel2

pytestmark = [pytest.mark.one_mode, requires_mongrel2]

CONFIGS = sorted(glob.glob(os.path.join(ROOT, "examples", "**", "mongrel2.conf*"), recursive=True))


def test_there_are_example_configs():
    assert len(CONFIGS) >= 2


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_example_config_loads_with_m2sh(path, tmp_path):
    text = open(path).read()
    # Templates (*.in) get their @NAME@ fields filled as their scripts do.
    text = text.replace("@IDENT@", str(uuid.uuid4()))  # a fresh one per start
    text = re.sub(r"@[A-Z_]*PORT@", "6767", text)
    text = re.sub(r"@[A-Z_]+@", str(tmp_path), text)
    conf = tmp_path / "mongrel2.conf"
    conf.write_text(text)
    db = tmp_path / "config.sqlite"
    proc = subprocess.run(["m2sh", "load", "-config", str(conf), "-db", str(db)],
                          capture_output=True, text=True, env=dict(os.environ, LOGNAME="root"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    servers = subprocess.run(["m2sh", "servers", "-db", str(db)], capture_output=True, text=True,
                             env=dict(os.environ, LOGNAME="root"))
    assert servers.returncode == 0 and re.search(r"[0-9a-f-]{36}", servers.stdout)


def test_systemd_unit_is_notify_and_foreground():
    unit = open(os.path.join(ROOT, "examples", "systemd", "wsgid@.service")).read()
    assert "Type=notify" in unit and "--no-daemon" in unit and "ExecReload=/bin/kill -HUP" in unit


def test_logrotate_example_moves_the_files_and_reopens():
    """No copytruncate (lines written between the copy and the truncation
    would be lost): wsgid reopens the files on USR1 (wsgid reopen)."""
    text = open(os.path.join(ROOT, "examples", "logrotate", "wsgid-myapp")).read()
    rules = [line.split("#")[0].strip() for line in text.splitlines()]
    assert "copytruncate" not in rules and "delaycompress" in rules
    assert "/usr/local/bin/wsgid reopen --app-path /srv/myapp >/dev/null" in rules


def test_hello_example_serves(m2_factory, wsgid_factory, tmp_path):
    m2 = m2_factory()
    app_path = str(tmp_path / "hello")  # a copy: serving writes logs/ and pid/
    shutil.copytree(os.path.join(ROOT, "examples", "hello"), app_path)
    wsgid_factory(m2, app_path, "--wsgi-app", "hello:application")
    status, headers, body = get(m2.url, "/")
    assert (status, body) == (200, b"Hello from wsgid!\n")


def test_example_plugins_loader_and_filter(m2_factory, wsgid_factory, tmp_path):
    """examples/plugins through --loader-dir: the loader finds app/wsgi.py,
    the filter adds a request id and security headers."""
    m2 = m2_factory()
    app_path = tmp_path / "site"
    (app_path / "app").mkdir(parents=True)
    (app_path / "app" / "wsgi.py").write_text(
        "def application(environ, start_response):\n"
        "    body = environ['HTTP_X_REQUEST_ID'].encode()\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [body]\n")
    proc = wsgid_factory(m2, str(app_path), "--loader-dir", os.path.join(ROOT, "examples", "plugins"))
    status, headers, body = get(m2.url, "/")
    assert status == 200 and re.fullmatch(rb"[0-9a-f]{32}", body)
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert "WsgiFileLoader" in proc.output()


PROMETHEUS_APP = '''
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, multiprocess

REQUESTS = Counter("app_requests", "Requests served")
LIVE = Gauge("app_live_workers", "Workers alive", multiprocess_mode="livesum")
LIVE.set(1)


def application(environ, start_response):
    if environ["PATH_INFO"] == "/metrics":
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        REQUESTS.inc()
        body = b"counted"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
'''


def test_prometheus_multiprocess_hooks_example(m2_factory, tmp_path):
    """examples/hooks/prometheus_multiprocess.py in plugins/: the requests
    of two workers add up in the app's /metrics, an earlier run's files are
    dropped at start, and a killed worker's live gauge leaves the sum."""
    pytest.importorskip("prometheus_client")
    import signal
    from tests.support.waiting import wait_for
    from tests.support.wsgid import Wsgid
    m2 = m2_factory()
    app_path = tmp_path / "site"
    (app_path / "app").mkdir(parents=True)
    (app_path / "plugins").mkdir()
    (app_path / "prometheus").mkdir()
    (app_path / "prometheus" / "counter_1.db").write_bytes(b"an earlier run's")
    (app_path / "app" / "site_app.py").write_text(PROMETHEUS_APP)
    shutil.copy(os.path.join(ROOT, "examples", "hooks", "prometheus_multiprocess.py"),
                app_path / "plugins")
    proc = Wsgid(m2, str(app_path), "--wsgi-app", "site_app:application", "--workers", "2")
    proc.start()
    try:
        pids = proc.wait_workers(2)
        assert not (app_path / "prometheus" / "counter_1.db").exists()

        def metric(name):
            body = get(m2.url, "/metrics")[2].decode()
            return float(re.search(r"^%s (\S+)$" % name, body, re.M).group(1))
        before = metric("app_requests_total")  # wsgid's start asked for / once
        for _ in range(10):
            assert get(m2.url, "/")[2] == b"counted"
        assert metric("app_requests_total") == before + 10
        assert metric("app_live_workers") == 2
        os.kill(pids[0], signal.SIGKILL)
        wait_for(lambda: not glob.glob(str(app_path / "prometheus" / ("gauge_live*_%d.db" % pids[0])))
                 or None, 10, what="the dead worker's live gauge dropped")
        proc.wait_workers(2, exclude=pids[:1])
        # The new worker's gauge (not the dead one's), which it may set after
        # its "ready" line: under load that came first once.
        wait_for(lambda: metric("app_live_workers") == 2, 10, what="two live workers counted")
    finally:
        proc.stop()


def test_error_reporter_hook_example_initialises_each_worker(m2_factory, tmp_path):
    """examples/hooks/error_reporter.py with a stand-in sentry_sdk: init is
    called once in each worker, with its pid, before the application loads."""
    from tests.support.wsgid import Wsgid
    m2 = m2_factory()
    record = tmp_path / "inits.txt"
    app_path = tmp_path / "site"
    (app_path / "app").mkdir(parents=True)
    (app_path / "plugins").mkdir()
    (app_path / "app" / "sentry_sdk.py").write_text(
        "import os, sys\n"
        "def init(dsn, server_name, release):\n"
        "    loaded = 'site_app' in sys.modules\n"
        "    with open(%r, 'a') as f:\n"
        "        f.write('%%d %%s %%s %%s\\n' %% (os.getpid(), dsn, server_name.split()[-1], loaded))\n"
        % str(record))
    (app_path / "app" / "site_app.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'ok']\n")
    shutil.copy(os.path.join(ROOT, "examples", "hooks", "error_reporter.py"),
                app_path / "plugins")
    os.environ["SENTRY_DSN"] = "https://key@errors.example/1"
    try:
        proc = Wsgid(m2, str(app_path), "--wsgi-app", "site_app:application", "--workers", "2")
        proc.start()
    finally:
        del os.environ["SENTRY_DSN"]
    try:
        pids = proc.wait_workers(2)
        lines = sorted(record.read_text().split("\n")[:-1])
        assert lines == sorted("%d https://key@errors.example/1 %d False" % (p, p) for p in pids)
    finally:
        proc.stop()
