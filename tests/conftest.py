"""Fixtures: real mongrel2 servers and wsgid processes on loopback."""

import os
import shutil
import signal
import subprocess
import sys
import http.client

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from mongrel2 import Mongrel2, wait_for  # noqa: E402
from wsgid import appfolder  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

requires_mongrel2 = pytest.mark.skipif(
    shutil.which("mongrel2") is None or shutil.which("m2sh") is None,
    reason="mongrel2-core is not installed")

requires_bind_mount = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="the shared upload folder is bind-mounted into mongrel2's chroot "
           "(in a private mount namespace): that takes root and unshare(1)")


def make_app_folder(base, *modules):
    """An app folder with the named modules of tests/apps/ in its app/."""
    app_path = os.path.join(base, "appfolder")
    os.makedirs(os.path.join(app_path, "app"), exist_ok=True)
    for module in modules:
        shutil.copy(os.path.join(HERE, "apps", module), os.path.join(app_path, "app", module))
    return app_path


def alive(pid):
    """True when a process with this pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def live_pids(app_path, kind):
    """The pids whose process holds its ``kind`` pid file, as status counts them."""
    return [pid for pid, live in appfolder.states(app_path, kind) if live]


def forge_pid(app_path, kind, pid):
    """A pid file no process holds: stale, or forged by the folder's owner."""
    with open(appfolder.pid_path(app_path, kind, pid), "w") as f:
        f.write("%d\n" % pid)


def wsgid_command(*args):
    return [sys.executable, "-m", "wsgid", *args]


def get(url_base, path, method="GET", body=None, headers=None, timeout=10):
    """One request on a fresh connection: (status, headers dict, body bytes)."""
    host, port = url_base.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class WsgidProcess:
    """wsgid in the foreground (``--no-daemon --stdout``), logging to a file."""

    def __init__(self, m2, app_path, *extra, cwd=ROOT):
        self.m2 = m2
        self.app_path = app_path
        self.log_path = os.path.join(app_path, "stdout.log")
        self.args = ["--no-daemon", "--stdout", "--app-path", app_path,
                     "--recv", m2.recv_spec, "--send", m2.send_spec,
                     *m2.wsgid_args(), *extra]
        self.cwd = cwd
        self.proc = None

    def start(self, ready_path="/"):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(wsgid_command(*self.args), cwd=self.cwd,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if ready_path:
            wait_for(lambda: self._answers(ready_path), 20, interval=0.05,
                     what="wsgid to answer")
        return self

    def _answers(self, path):
        if self.proc.poll() is not None:
            raise RuntimeError("wsgid exited with %s:\n%s" % (self.proc.returncode, self.output()))
        try:
            return get(self.m2.url, path, timeout=2)[0] != 0
        except OSError:
            return False

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()


@pytest.fixture
def m2_factory(tmp_path):
    servers = []

    def start(**kwargs):
        m2 = Mongrel2(str(tmp_path / ("m2-%d" % len(servers))), **kwargs)
        servers.append(m2)
        return m2.start()
    yield start
    for m2 in servers:
        m2.stop()


@pytest.fixture
def wsgid_factory():
    procs = []

    def start(m2, app_path, *extra, ready_path="/"):
        proc = WsgidProcess(m2, app_path, *extra)
        procs.append(proc)
        return proc.start(ready_path)
    yield start
    for proc in procs:
        proc.stop()
