"""Started as root: the master (after set-up) and every worker run as the
owner of the app folder; with --chroot the workers' root is the app folder.

The unprivileged user is ``nobody``/``nogroup``. The folders are made under a
traversable /tmp folder (pytest's tmp_path lives in a 0700 folder).
"""

import errno
import grp
import json
import os
import pwd
import pty
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

import pytest
import zmq

from tests.support import ROOT
from tests.support.http import get
from tests.support.inotify import IN_OPEN, Inotify
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import wait_for
from tests.support.procfs import ids, listening_sockets
from tests.support.wsgid import Wsgid, wsgid_command
from tests.support.wsgid import run as wsgid_run
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


def _serve_and_check(m2, app_path, prefix, owner, *extra):
    """wsgid started as root through ``prefix`` (2 workers, tiny:app): once
    it answers, every process runs as ``owner``. Returns (wsgid, workers)."""
    w = Wsgid(m2, app_path, "--workers", "2", *extra, wsgi_app="tiny:app",
              prefix=prefix).spawn()

    def answers():
        if w.failed() or "could not load the application" in w.output():
            raise AssertionError("wsgid failed:\n%s" % w.output())
        try:
            return get(m2.url, "/", timeout=2)
        except OSError:
            return None
    try:
        try:
            answer = wait_for(answers, 20, interval=0.05, what="wsgid to answer")
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


def live_state(prefix, app_path, master, owner):
    """``wsgid status --json`` run as root (it becomes the owner): the
    master's answer, checked to come through the owner's private folder."""
    info = os.stat(os.path.join(app_path, "pid", "status"))
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (*owner, 0o700)
    (state,) = json.loads(wsgid_run("status", "--app-path", app_path, "--json",
                                    prefix=prefix).stdout)["masters"]
    assert state["pid"] == master and "error" not in state, state
    return state


def test_root_start_drops_to_app_folder_owner(m2_factory, base, nobody):
    m2 = m2_factory()
    app_path = make_app(base, nobody)
    prefix = interpreter_prefix(base, nobody[0])
    w, workers = _serve_and_check(m2, app_path, prefix, nobody)
    try:
        assert "Running as uid=%d gid=%d" % nobody in w.output()
        for pid in [w.proc.pid] + workers:
            assert os.readlink("/proc/%d/root" % pid) == "/"
        state = live_state(prefix, app_path, w.proc.pid, nobody)
        assert sorted(worker["pid"] for worker in state["workers"]) == sorted(workers)
        assert all(worker["rss"] > 0 for worker in state["workers"])
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
    prefix = interpreter_prefix(base, nobody[0])
    w, workers = _serve_and_check(m2, app_path, prefix, nobody, "--chroot")
    try:
        for pid in [w.proc.pid] + workers:
            assert os.readlink("/proc/%d/root" % pid) == app_path
        assert appfolder.pids(app_path, "master") == [w.proc.pid]
        # The status socket is in the chroot's pid/ too; no /proc there: no RSS.
        state = live_state(prefix, app_path, w.proc.pid, nobody)
        assert sorted(worker["pid"] for worker in state["workers"]) == sorted(workers)
        assert [worker["rss"] for worker in state["workers"]] == [None, None]
    finally:
        w.stop()


# -- a hostile app folder owner (the security checks of a root start) -------------------

VICTIM = b"root's secret\n"


def victim_file(base, name):
    """A root-owned 0600 file outside the app folder, for links to point at."""
    path = os.path.join(base, name)
    with open(path, "wb") as f:
        f.write(VICTIM)
    os.chmod(path, 0o600)
    return path


def fingerprint(path):
    """What root must never change: owner, mode and content (a folder: its
    owner, mode and the fingerprint of each entry)."""
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        inside = {name: fingerprint(os.path.join(path, name)) for name in os.listdir(path)}
        return st.st_uid, st.st_gid, st.st_mode, inside
    with open(path, "rb") as f:
        return st.st_uid, st.st_gid, st.st_mode, f.read()


def plant(link, target, owner):
    """A link the folder's owner made (lchown: it is the owner's, as if made
    by that account)."""
    os.symlink(target, link)
    os.lchown(link, *owner)


def next_pids(count=2000):
    with open("/proc/sys/kernel/ns_last_pid") as f:
        last = int(f.read())
    return range(last + 1, last + 1 + count)


def start_fails(app_path, prefix, m2, *extra):
    """``wsgid start`` in the foreground: (exit status, stderr), expected to fail."""
    proc = subprocess.run(prefix + wsgid_command(
        "--no-daemon", "--app-path", app_path, "--wsgi-app", "tiny:app",
        "--recv", m2.request_spec, "--send", m2.reply_spec, *extra),
        cwd=ROOT, capture_output=True, text=True, timeout=30)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("where", ["logs/wsgid.log", "logs", "pid/master", "pid/worker"])
def test_root_start_refuses_links_to_root_files(m2_factory, base, nobody, where):
    """A link the owner planted where wsgid keeps its log or pid files: the
    start fails in one line (the owner may not write there), the target is
    untouched. A stale pid file in a linked pid folder is not removed."""
    m2 = m2_factory()
    app_path = make_app(base, nobody)
    path = os.path.join(app_path, where)
    if os.path.isdir(path):
        shutil.rmtree(path)
    if where == "logs/wsgid.log":
        target = victim_file(base, "victim")
    else:
        target = os.path.join(base, "victim-folder")
        os.makedirs(target)
        os.chmod(target, 0o755)
        victim_file(target, "%d.pid" % next_pids()[0])
        victim_file(target, "wsgid.log")
    before = fingerprint(target)
    plant(path, target, nobody)
    status, err = start_fails(app_path, interpreter_prefix(base, nobody[0]), m2)
    assert status == 1
    line, = err.splitlines()
    assert line.startswith("wsgid: error: ") and "Permission denied" in line, err
    assert fingerprint(target) == before


def test_root_start_replaces_planted_pid_file_links(m2_factory, base, nobody):
    """Links at the names of the next pids, and at the temporary names wsgid
    0.7 and earlier versions used: each is replaced by the real pid file (a
    rename in the owner's folder), never written through; commands after the
    start do not follow them either."""
    m2 = m2_factory()
    app_path = make_app(base, nobody)
    target = victim_file(base, "victim")
    before = fingerprint(target)
    planted = next_pids()
    for kind in ("master", "worker"):
        for pid in planted:
            path = appfolder.pid_path(app_path, kind, pid)
            plant(path, target, nobody)
            plant(path + ".tmp", target, nobody)
    prefix = interpreter_prefix(base, nobody[0])
    w, workers = _serve_and_check(m2, app_path, prefix, nobody)
    try:
        for kind, pid in [("master", w.proc.pid)] + [("worker", p) for p in workers]:
            assert pid in planted, "the pid was not one of the planted names"
            path = appfolder.pid_path(app_path, kind, pid)
            st = os.lstat(path)
            assert stat.S_ISREG(st.st_mode) and st.st_uid == nobody[0], (path, st)
        for command in ("status", "reload", "restart"):
            subprocess.run(prefix + wsgid_command(command, "--app-path", app_path),
                           cwd=ROOT, check=True, capture_output=True, timeout=30)
        assert fingerprint(target) == before
    finally:
        w.stop()
    assert fingerprint(target) == before


def test_root_start_reads_no_wsgid_json_link(base, nobody):
    app_path = make_app(base, nobody)
    target = victim_file(base, "victim.json")
    before = fingerprint(target)
    plant(os.path.join(app_path, "wsgid.json"), target, nobody)
    proc = subprocess.run(wsgid_command("--app-path", app_path), cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stderr == ("wsgid: error: %s/wsgid.json: cannot be read: a symbolic link\n"
                           % app_path)
    assert fingerprint(target) == before


@pytest.mark.parametrize("command", ["start", "status", "stop", "config", "init"])
def test_root_owned_app_folder_writable_by_others_is_refused(base, command):
    app_path = os.path.join(base, "shared")
    os.makedirs(app_path)
    os.chmod(app_path, 0o777)
    proc = subprocess.run(wsgid_command(command, "--app-path", app_path,
                                        "--recv", "tcp://127.0.0.1:1", "--send",
                                        "tcp://127.0.0.1:2"),
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == ("wsgid: error: app folder %s is owned by root and writable by "
                           "others (mode 777): refused; chown it to the account the "
                           "application runs as, or chmod go-w\n" % app_path)
    assert os.listdir(app_path) == []


def test_commands_signal_no_process_a_forged_pid_file_names(m2_factory, base, nobody):
    """Pid files the owner wrote for processes that are not wsgid's (root's
    and the owner's own ``sleep``): status marks them dead, reload, restart
    and stop signal only the real master and workers, and remove them."""
    m2 = m2_factory()
    app_path = make_app(base, nobody)
    prefix = interpreter_prefix(base, nobody[0])
    w, workers = _serve_and_check(m2, app_path, prefix, nobody)
    strangers = [subprocess.Popen(["sleep", "600"]),
                 subprocess.Popen(["sleep", "600"], user=nobody[0], group=nobody[1],
                                  extra_groups=[])]
    try:
        for proc in strangers:
            for kind in ("master", "worker"):
                path = appfolder.pid_path(app_path, kind, proc.pid)
                with open(path, "w") as f:
                    f.write("%d\n" % proc.pid)
                os.chown(path, *nobody)

        def wsgid(*args):
            return subprocess.run(prefix + wsgid_command(*args, "--app-path", app_path),
                                  cwd=ROOT, capture_output=True, text=True, timeout=30)

        lines = wsgid("status").stdout.splitlines()
        assert lines[0] == "Status: Running"
        for proc in strangers:
            assert "%d(dead)" % proc.pid in lines[1] and "%d(dead)" % proc.pid in lines[2]
        assert "%d," % w.proc.pid in lines[1] + "," and "(dead)" not in lines[1].replace(
            "%d(dead)" % strangers[0].pid, "").replace("%d(dead)" % strangers[1].pid, "")
        reload = wsgid("reload")
        assert reload.stdout == ("Sent signal 1 (SIGHUP) to master %d\n"
                                 "Reload of master %d done: generation 1 serving\n"
                                 % (w.proc.pid, w.proc.pid))
        renewed = wait_for(lambda: not set(workers) & set(w.workers()) and
                           len(w.workers()) == 2 and w.workers(), 20, what="the reload")
        restart = wsgid("restart")
        assert restart.stdout == "".join("Sent signal 15 (SIGTERM) to worker %d\n" % pid
                                         for pid in sorted(renewed))
        stop = wsgid("stop")
        assert stop.stdout == "Sent signal 15 (SIGTERM) to master %d\n" % w.proc.pid
        assert w.proc.wait(20) == 0
        for proc in strangers:
            assert proc.poll() is None, "a stranger was signalled"
            for kind in ("master", "worker"):
                assert not os.path.exists(appfolder.pid_path(app_path, kind, proc.pid))
    finally:
        w.stop()
        for proc in strangers:
            proc.kill()
            proc.wait()


def test_broker_hands_no_request_to_a_stranger(m2_factory, base, nobody):
    """In broker dispatch, another local account connects to whatever the
    master listens on and says READY like a worker: it cannot connect, and
    the real workers serve every request."""
    m2 = m2_factory()
    app_path = make_app(base, nobody)
    w, workers = _serve_and_check(m2, app_path, interpreter_prefix(base, nobody[0]), nobody,
                                  "--dispatch", "broker")
    try:
        listening = listening_sockets(w.proc.pid)
        assert [kind for kind, _ in listening] == ["unix", "unix"], listening
        # The broker's; the other is the status channel's (tests/test_e2e_status.py).
        (path,) = [path for _, path in listening if path != "%d.sock" % w.proc.pid]
        report_r, report_w = os.pipe()
        done_r, done_w = os.pipe()
        child = os.fork()
        if child == 0:  # the stranger: neither root nor the app folder's owner
            code = 1
            try:
                os.setgroups([])
                os.setgid(nobody[1] - 7)
                os.setuid(nobody[0] - 7)
                sock = socket.socket(socket.AF_UNIX)
                try:
                    sock.connect(path)
                    os.write(report_w, b"connected")
                except PermissionError:
                    os.write(report_w, b"refused")
                ctx = zmq.Context()
                dealer = ctx.socket(zmq.DEALER)
                dealer.connect("ipc://" + path)
                dealer.send(b"READY")
                os.read(done_r, 1)
                code = 3 if dealer.poll(0) else 0
            finally:
                os._exit(code)
        assert os.read(report_r, 64) == b"refused"
        for _ in range(20):
            assert get(m2.url, "/", timeout=5)[2] == b"tiny"
        os.write(done_w, b"x")
        assert os.waitpid(child, 0)[1] == 0, "the stranger got a request"
    finally:
        w.stop()


# -- the app folder is named once (issue 21, finding 2) ------------------------------------

PLUGIN_PROOF = '''\
import os
# Run by wsgid as a plugin: records whom it runs as, then ends the start.
with open(%r, "w") as f:
    f.write("%%d" %% os.getuid())
os._exit(3)
'''


def refused(command, app_path, *extra, as_root=True, prefix=()):
    """``wsgid COMMAND`` as root, expected to be refused: its one error line."""
    proc = subprocess.run(list(prefix) + wsgid_command(
        command, "--app-path", app_path, "--recv", "tcp://127.0.0.1:1",
        "--send", "tcp://127.0.0.1:2", *extra, as_root=as_root),
        cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and proc.stdout == "", (proc.returncode, proc.stdout,
                                                        proc.stderr)
    line, = proc.stderr.splitlines()
    assert line.startswith("wsgid: error: ")
    return line[len("wsgid: error: "):]


COMMANDS = ["start", "status", "stop", "restart", "reload", "config", "init"]


@pytest.mark.parametrize("shape", ["owned", "sticky"])
def test_link_race_above_the_app_folder_gives_no_root(base, nobody, shape):
    """The app account can change the entry ``site`` of the folder above the
    app folder (it owns that folder, or its own link in a sticky folder):
    it points ``site`` at a root-owned folder while root checks, and back
    at its own folder, with a plugin, once root has decided to stay root
    (driven by inotify: the swap follows root's look into the root-owned
    folder's pid/worker/). wsgid walks the path once without following a
    link and checks the folders above: refused at once, the plugin never
    runs, the root-owned folder is untouched."""
    home = os.path.join(base, "home")
    os.makedirs(home)
    if shape == "owned":
        os.chown(home, *nobody)
    else:
        os.chmod(home, 0o1777)
    root_site = os.path.join(base, "root-site")
    for sub in appfolder.FOLDERS:
        os.makedirs(os.path.join(root_site, sub))
    os.makedirs(os.path.join(home, "appfolder", "plugins"))
    own = make_app(home, nobody, init=False)
    proof = os.path.join(home, "proof")
    with open(os.path.join(own, "plugins", "take.py"), "w") as f:
        f.write(PLUGIN_PROOF % proof)
    link = os.path.join(home, "site")
    plant(link, root_site, nobody)
    plant(link + ".next", own, nobody)
    before = fingerprint(root_site)
    watch = Inotify()
    watch.watch(os.path.join(root_site, "pid", "worker"), IN_OPEN)
    swapped = threading.Event()

    def swap():  # the app account's move, right after root looked
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not swapped.is_set():
            if select.select([watch.fd], [], [], 0.1)[0] and watch.events():
                os.rename(link + ".next", link)
                swapped.set()
    racer = threading.Thread(target=swap, daemon=True)
    racer.start()
    try:
        proc = subprocess.run(wsgid_command("--no-daemon", "--stdout", "--app-path", link,
                                            "--wsgi-app", "tiny:app", "--recv",
                                            "tcp://127.0.0.1:1", "--send", "tcp://127.0.0.1:2"),
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        swapped.set()
        racer.join()
        watch.close()
    assert not os.path.exists(proof), "the app account's plugin ran as uid %s" % open(
        proof).read()
    above = "owned by uid %d" % nobody[0] if shape == "owned" else "a symbolic link"
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("wsgid: error: app folder %s: " % link), proc.stderr
    assert above in proc.stderr
    assert fingerprint(root_site) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_a_link_anywhere_in_the_path_is_refused(base, nobody, command):
    """Root's own links too: the path is walked without following any."""
    app_path = make_app(base, nobody)
    above, last = os.path.join(base, "here"), os.path.join(base, "site")
    os.symlink(base, above)
    os.symlink(app_path, last)
    for via, link in ((os.path.join(above, "appfolder"), above), (last, last)):
        assert refused(command, via) == "app folder %s: %s is a symbolic link: refused" % (
            via, link)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_above_that_others_can_write_is_refused(base, nobody, command):
    """Above the app folder: another account's folder, a group-writable one,
    one whose ACL lets another account write; a sticky root-owned folder
    (as /tmp) is accepted (the tests' own folders are below /tmp)."""
    app_path = make_app(base, nobody)
    base_mode = stat.S_IMODE(os.stat(base).st_mode)
    os.chown(base, nobody[0], 0)
    assert refused(command, app_path) == (
        "app folder %s: %s, above it, is owned by uid %d: refused; every folder above the "
        "app folder must be root's" % (app_path, base, nobody[0]))
    os.chown(base, 0, 0)
    os.chmod(base, 0o775)
    assert refused(command, app_path) == (
        "app folder %s: %s, above it, is writable by others (mode 775): refused; "
        "chmod go-w it" % (app_path, base))
    os.chmod(base, base_mode)
    grant_write_by_acl(base, nobody[0])
    assert refused(command, app_path) == (
        "app folder %s: %s, above it, is writable by others (its ACL grants write): "
        "refused; chmod go-w it" % (app_path, base))


def grant_write_by_acl(path, uid):
    """A POSIX ACL (system.posix_acl_access) granting ``uid`` rwx; the mask
    (r-x) keeps the mode's group bits as they are."""
    def entry(tag, perm, ident=0xFFFFFFFF):
        return struct.pack("<HHI", tag, perm, ident)
    acl = struct.pack("<I", 2) + entry(0x01, 7) + entry(0x02, 7, uid) + entry(0x04, 5) \
        + entry(0x10, 5) + entry(0x20, 5)
    try:
        os.setxattr(path, "system.posix_acl_access", acl)
    except OSError as exc:
        pytest.skip("no POSIX ACLs on %s: %s" % (path, exc))
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o022 == 0


@pytest.mark.parametrize("command", COMMANDS)
def test_root_owned_app_folder_needs_run_as_root(base, command):
    app_path = os.path.join(base, "rootsite")
    os.makedirs(app_path)
    assert refused(command, app_path, as_root=False) == (
        "app folder %s is owned by root: refused; chown it to the account the "
        "application runs as, or give --run-as-root" % app_path)
    assert os.listdir(app_path) == []
    grant_write_by_acl(app_path, 65534)
    assert refused(command, app_path, "--run-as-root") == (
        "app folder %s is owned by root and writable by others (its ACL grants write): "
        "refused; chown it to the account the application runs as, or chmod go-w"
        % app_path)
    assert os.listdir(app_path) == []


def test_root_owned_app_folder_runs_with_run_as_root(base):
    app_path = os.path.join(base, "rootsite")
    os.makedirs(app_path)
    proc = subprocess.run(wsgid_command("status", "--app-path", app_path, "--run-as-root",
                                        as_root=False),
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert proc.stdout.startswith("Status: Stopped\n")


def test_group_comes_from_the_passwd_entry_never_the_folder(m2_factory, base, nobody):
    """An app folder of nobody's whose group is root's (gid 0): the
    processes run with nobody's passwd group, never gid 0."""
    m2 = m2_factory()
    app_path = make_app(base, (nobody[0], 0))
    assert pwd.getpwuid(nobody[0]).pw_gid == nobody[1]
    w, _ = _serve_and_check(m2, app_path, interpreter_prefix(base, nobody[0]), nobody)
    w.stop()


@pytest.mark.parametrize("entry", ["group 0", "no entry"])
def test_owner_without_a_group_of_its_own_is_refused(base, entry):
    """Owners seen through a passwd file of the test's own (bind-mounted in a
    private mount namespace): one whose passwd group is root's, one with no
    passwd entry at all. Both refused before any drop."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is missing")
    uid = 4242
    app_path = os.path.join(base, "site")
    os.makedirs(app_path)
    os.chown(app_path, uid, 4242)
    passwd = os.path.join(base, "passwd")
    with open("/etc/passwd") as f:
        text = f.read()
    if entry == "group 0":
        text += "wsgidzero:x:%d:0::/nonexistent:/usr/sbin/nologin\n" % uid
    with open(passwd, "w") as f:
        f.write(text)
    os.chmod(passwd, 0o644)
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
              'mount --bind "$1" /etc/passwd && shift && exec "$@"', "sh", passwd]
    expected = ("app folder %s: its owner wsgidzero has group 0 (root's) in the passwd file: "
                "refused; give the account a group of its own" % app_path
                if entry == "group 0" else
                "app folder %s is owned by uid %d, which has no passwd entry: refused"
                % (app_path, uid))
    for command in ("status", "start"):
        assert refused(command, app_path, prefix=prefix) == expected


def test_oversize_wsgid_json_is_refused_in_one_line(base, nobody):
    app_path = make_app(base, nobody)
    path = os.path.join(app_path, "wsgid.json")
    with open(path, "w") as f:
        json.dump({"envs": {"PAD": "x" * appfolder.JSON_MAX}}, f)
    os.chown(path, *nobody)
    for command in ("start", "config"):
        assert refused(command, app_path) == (
            "%s: larger than %d bytes: refused" % (path, appfolder.JSON_MAX))


# -- root's terminal (issue 21, finding 3) ---------------------------------------------------

PLUGIN_TIOCSTI = '''\
import fcntl, json, os, sys, termios
# Run by wsgid as a plugin: says hello, then tries to type a command into the
# terminal wsgid was started from, through fds 0-2 and /dev/tty.
print("hello from the plugin", flush=True)
seen = {"sid": os.getsid(0), "ttys": [fd for fd in (0, 1, 2) if os.isatty(fd)], "typed": []}
fds = [0, 1, 2]
try:
    fds.append(os.open("/dev/tty", os.O_RDWR))
    seen["tty"] = "opened"
except OSError as exc:
    seen["tty"] = exc.errno
for fd in fds:
    try:
        for c in b"echo pwned\\n":
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([c]))
        seen["typed"].append(fd)
    except OSError:
        pass
with open(%r, "w") as f:
    json.dump(seen, f)
'''

SHELL = '''\
import json, os, signal, subprocess, sys, termios
# A shell's part, on a terminal of its own (pty.fork): run wsgid as a job in
# the foreground, then read what was typed meanwhile, as a shell would.
argv, result = json.loads(sys.argv[1]), sys.argv[2]
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
job = subprocess.Popen(argv, process_group=0)
os.tcsetpgrp(0, job.pid)
status = job.wait()
os.tcsetpgrp(0, os.getpgrp())
attrs = termios.tcgetattr(0)
attrs[3] &= ~(termios.ICANON | termios.ECHO)
attrs[6][termios.VMIN] = attrs[6][termios.VTIME] = 0
termios.tcsetattr(0, termios.TCSANOW, attrs)
with open(result, "w") as f:
    json.dump({"status": status, "typed": os.read(0, 4096).decode("latin-1")}, f)
'''


@pytest.mark.parametrize("mode", ["daemon", "no-daemon"])
def test_plugin_types_nothing_into_roots_terminal(m2_factory, base, nobody, mode):
    """``wsgid start`` run by root from a shell on a (pseudo-)terminal; the
    app folder's plugin tries TIOCSTI on fds 0-2 and /dev/tty. Nothing
    reaches the shell, and the plugin finds itself in a session of its own,
    with no controlling terminal and no terminal on fds 0-2. With
    --no-daemon its output still reaches the terminal."""
    if not hasattr(termios, "TIOCSTI"):
        pytest.skip("no TIOCSTI here")
    m2 = m2_factory()
    app_path = make_app(base, nobody)
    report = os.path.join(app_path, "report.json")
    plugin = os.path.join(app_path, "plugins", "type.py")
    with open(plugin, "w") as f:
        f.write(PLUGIN_TIOCSTI % report)
    os.chown(plugin, *nobody)
    prefix = interpreter_prefix(base, nobody[0])
    argv = prefix + wsgid_command("--app-path", app_path, "--wsgi-app", "tiny:app",
                                  "--recv", m2.request_spec, "--send", m2.reply_spec,
                                  *(["--no-daemon"] if mode == "no-daemon" else []))
    result = os.path.join(base, "shell.json")
    log = os.path.join(app_path, "logs", "wsgid.log")
    shell, terminal = pty.fork()
    if shell == 0:
        try:
            os.chdir(ROOT)
            os.environ["PYTHONPATH"] = ROOT
            os.execv(sys.executable, [sys.executable, "-c", SHELL, json.dumps(argv), result])
        finally:
            os._exit(127)
    output = b""
    interrupted = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if select.select([terminal], [], [], 0.05)[0]:
                try:
                    data = os.read(terminal, 65536)
                except OSError:  # EIO: the shell is gone
                    data = b""
                if not data:
                    break
                output += data
            if mode == "no-daemon" and not interrupted and "ready to serve" in _read(log):
                os.write(terminal, b"\x03")  # Ctrl-C, as the operator would
                interrupted = True
        else:
            raise AssertionError("the shell did not finish: %r" % output[-2000:])
        assert os.waitpid(shell, 0)[1] == 0, output
    finally:
        os.close(terminal)
        for kind in ("master", "worker"):
            for pid in appfolder.pids(app_path, kind):
                if appfolder.owns(app_path, kind, pid):
                    os.kill(pid, signal.SIGKILL)
    with open(result) as f:
        shell_saw = json.load(f)
    with open(report) as f:
        plugin_saw = json.load(f)
    assert shell_saw["typed"] == "", "the plugin typed %r into root's shell" % shell_saw["typed"]
    assert plugin_saw["typed"] == [] and plugin_saw["ttys"] == [], plugin_saw
    assert plugin_saw["tty"] == errno.ENXIO, plugin_saw
    assert plugin_saw["sid"] != shell, plugin_saw
    assert shell_saw["status"] == 0, (shell_saw, output[-2000:])
    if mode == "no-daemon":
        assert b"hello from the plugin" in output


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
