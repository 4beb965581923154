"""Started as root: the master (after set-up) and every worker run as the
owner of the app folder; with --chroot the workers' root is the app folder.

The unprivileged user is ``nobody``/``nogroup``. The folders are made under a
traversable /tmp folder (pytest's tmp_path lives in a 0700 folder).
"""

import grp
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

import pytest

from conftest import ROOT, get, live_pids, requires_mongrel2, wsgid_command
from mongrel2 import wait_for
from support_live import ids
from wsgid import appfolder

pytestmark = [requires_mongrel2, pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

TINY_APP = '''\
def app(environ, start_response):
    # No imports: with --chroot this runs inside the app folder.
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
    return [b"tiny"]
'''


@pytest.fixture
def nobody():
    try:
        return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    except KeyError:
        pytest.skip("no nobody/nogroup on this machine")


@pytest.fixture
def base():
    path = tempfile.mkdtemp(prefix="wsgid-priv-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_app(base, owner, init=True):
    app_path = os.path.join(base, "appfolder")
    os.makedirs(os.path.join(app_path, "app"))
    with open(os.path.join(app_path, "app", "tiny.py"), "w") as f:
        f.write(TINY_APP)
    if init:
        subprocess.run(wsgid_command("init", "--app-path", app_path), cwd=ROOT, check=True)
    for folder, dirs, files in os.walk(app_path):
        for name in [folder] + [os.path.join(folder, n) for n in files]:
            os.chown(name, *owner)
    return app_path


def _blocking_ancestor(path, uid):
    """The first folder above ``path`` that ``uid`` (not root) cannot enter."""
    parts = os.path.abspath(path).split(os.sep)
    for i in range(2, len(parts)):
        folder = os.sep.join(parts[:i])
        st = os.stat(folder)
        if st.st_uid != uid and not st.st_mode & stat.S_IXOTH:
            return folder, parts[i]
    return None


def interpreter_prefix(base, uid):
    """A command prefix under which ``uid`` can read Python's stdlib.

    On this kind of machine the interpreter lives under /root (mode 0700):
    after the drop, any module not yet imported is unreadable -- not what a
    real install looks like. Then wsgid runs in a private mount namespace
    where that folder is replaced by a traversable one holding just the
    interpreter's tree (bind mounts; nothing changes outside the process)."""
    blocked = _blocking_ancestor(os.path.realpath(sys.base_prefix), uid)
    if blocked is None:
        return []
    folder, child = blocked
    if shutil.which("unshare") is None:
        pytest.skip("%s is not traversable by uid %d and unshare is missing" % (folder, uid))
    stand_in = os.path.join(base, "stand-in")
    os.makedirs(os.path.join(stand_in, child))
    os.chmod(stand_in, 0o755)
    script = 'mount --bind "$1" "$2" && mount --rbind "$3" "$4" && shift 4 && exec "$@"'
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
              os.path.join(folder, child), os.path.join(stand_in, child), stand_in, folder]
    probe = subprocess.run(prefix + ["true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot make the interpreter readable for uid %d: %s" % (uid, probe.stderr))
    return prefix


class RootWsgid:
    def __init__(self, m2, app_path, prefix, *extra):
        self.m2, self.app_path = m2, app_path
        self.log_path = os.path.join(os.path.dirname(app_path), "wsgid-output.log")
        self.cmd = prefix + wsgid_command(
            "--no-daemon", "--stdout", "--app-path", app_path, "--wsgi-app", "tiny:app",
            "--recv", m2.recv_spec, "--send", m2.send_spec, "--workers", "2", *extra)

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        return self

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("wsgid exited with %s:\n%s" % (self.proc.returncode,
                                                                self.output()))
        if "could not load the application" in self.output():
            raise AssertionError("a worker could not load the app:\n%s" % self.output())
        try:
            return get(self.m2.url, "/", timeout=2)
        except OSError:
            return None

    def workers(self):
        return live_pids(self.app_path, "worker")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                for pid in self.workers():
                    os.kill(pid, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _serve_and_check(m2, app_path, prefix, owner, *extra):
    w = RootWsgid(m2, app_path, prefix, *extra).start()
    try:
        try:
            answer = wait_for(w.answers, 20, interval=0.05, what="wsgid to answer")
        except TimeoutError:
            raise AssertionError("no answer; wsgid said:\n%s" % w.output()[-3000:])
        assert answer[0] == 200 and answer[2] == b"tiny", answer
        workers = wait_for(lambda: len(w.workers()) == 2 and w.workers(), 10,
                           what="2 workers")
        uid, gid = owner
        for pid in [w.proc.pid] + workers:
            uids, gids, groups = ids(pid)
            assert uids == [uid] * 4, (pid, uids)
            assert gids == [gid] * 4, (pid, gids)
            assert groups == [], (pid, groups)
        return w, workers
    except BaseException:
        w.stop()
        raise


def test_root_start_drops_to_app_folder_owner(m2_factory, base, nobody):
    m2 = m2_factory()
    app_path = make_app(base, nobody)
    w, workers = _serve_and_check(m2, app_path, interpreter_prefix(base, nobody[0]), nobody)
    try:
        assert "Running as uid=%d gid=%d" % nobody in w.output()
        for pid in [w.proc.pid] + workers:
            assert os.readlink("/proc/%d/root" % pid) == "/"
        # A worker replaced later runs as the owner too.
        os.kill(workers[0], signal.SIGKILL)
        after = wait_for(lambda: len(w.workers()) == 2 and workers[0] not in w.workers()
                         and w.workers(), 10, what="the worker replaced")
        for pid in after:
            assert ids(pid)[0] == [nobody[0]] * 4
    finally:
        w.stop()


def test_root_start_with_fresh_app_folder(m2_factory, base, nobody):
    m2 = m2_factory()
    # Only app/ exists: wsgid makes logs/ and pid/ as root, they must be
    # the owner's (else no pid file can be written after the drop).
    app_path = make_app(base, nobody, init=False)
    w, _ = _serve_and_check(m2, app_path, interpreter_prefix(base, nobody[0]), nobody)
    w.stop()


def test_chroot_workers_rooted_in_app_folder(m2_factory, base, nobody):
    m2 = m2_factory()
    app_path = make_app(base, nobody)
    w, workers = _serve_and_check(m2, app_path, interpreter_prefix(base, nobody[0]), nobody,
                                  "--chroot")
    try:
        for pid in [w.proc.pid] + workers:
            assert os.readlink("/proc/%d/root" % pid) == app_path
        assert appfolder.pids(app_path, "master") == [w.proc.pid]
    finally:
        w.stop()
