"""wsgid for the tests and the benchmarks: app folders, the ``wsgid``
command, and :class:`Wsgid`, the one way to start it."""

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys

from tests.support import APPS, ROOT
from tests.support.http import get
from tests.support.waiting import wait_for
from tests.support.procfs import alive, children, state
from wsgid import appfolder, channel


def make_app_folder(base, *modules, name="appfolder", sources=None, folders=()):
    """The app folder ``base/name`` (a str): its app/ holds copies of the named
    modules of tests/apps/ and the files of ``sources`` (name -> text);
    ``folders`` (plugins, logs...) are made beside app/."""
    app_path = os.path.join(str(base), name)
    for folder in ("app", *folders):
        os.makedirs(os.path.join(app_path, folder), exist_ok=True)
    for module in modules:
        shutil.copy(os.path.join(APPS, module), os.path.join(app_path, "app", module))
    for file_name, text in (sources or {}).items():
        with open(os.path.join(app_path, "app", file_name), "w") as f:
            f.write(text)
    return app_path


def live_pids(app_path, kind):
    """The pids whose process holds its ``kind`` pid file, as status counts them."""
    return [pid for pid, live in appfolder.states(app_path, kind) if live]


def forge_pid(app_path, kind, pid):
    """A pid file no process holds: stale, or forged by the folder's owner."""
    with open(appfolder.pid_path(app_path, kind, pid), "w") as f:
        f.write("%d\n" % pid)


@contextlib.contextmanager
def silent_master(app_path, answer=None):
    """A master that does not answer ``wsgid status --verbose``: a forked
    process that claims its master pid file and listens on the status
    channel, but never answers -- or answers every caller with the raw bytes
    ``answer``; yields its pid."""
    ready_r, ready_w = os.pipe()
    stop_r, stop_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            appfolder.claim(app_path, appfolder.MASTER)
            listener = channel.Listener(app_path, os.getpid())
            os.write(ready_w, b"x")
            while answer is not None and select.select(
                    [stop_r, listener.sock], [], [])[0] != [stop_r]:
                conn, _ = listener.sock.accept()
                with conn:
                    conn.setblocking(True)
                    try:
                        conn.sendall(answer)
                    except OSError:
                        pass  # the caller stopped reading
            os.read(stop_r, 1)
            listener.close()
        finally:
            os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"x"
        yield pid
    finally:
        os.write(stop_w, b"x")
        os.waitpid(pid, 0)
        for fd in (ready_r, ready_w, stop_r, stop_w):
            os.close(fd)


# The tests' app folders are root's when the tests run as root: wsgid
# refuses them then unless told to run the application as root.
AS_ROOT = ["--run-as-root"] if os.geteuid() == 0 else []


def wsgid_command(*args, python=sys.executable, as_root=True):
    """``wsgid ARGS``, with --run-as-root when the tests run as root (unless
    ``as_root`` is False)."""
    return [python, "-m", "wsgid", *args, *(AS_ROOT if as_root else [])]


def _env():
    """This source tree first, for any ``python`` (bench --python)."""
    return dict(os.environ, PYTHONPATH=ROOT)


def run(*args, check=True, python=sys.executable, timeout=30, prefix=()):
    """``wsgid ARGS`` (start, reload, status, stop...), waited for; with
    ``check`` a non-zero exit raises AssertionError with its output.
    ``prefix`` runs it through another command, as for :class:`Wsgid`."""
    proc = subprocess.run(list(prefix) + wsgid_command(*args, python=python), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=_env())
    if check and proc.returncode != 0:
        raise AssertionError("wsgid %s failed: %s%s" % (args, proc.stdout, proc.stderr))
    return proc


class Wsgid:
    """wsgid serving the app folder ``app_path`` for ``m2``: a
    :class:`~tests.support.mongrel2.Mongrel2`, or a
    :class:`~tests.support.peer.Peer` that plays it.

    ``daemon=False``: ``--no-daemon`` in a child process we own (the master),
    its output in ``out_path`` (default ``<app_path>.out``), where it also
    logs with ``stdout`` (``--stdout``, the default), else in
    ``<app_path>/logs/wsgid.log``. ``daemon=True``: started as in production
    (it daemonizes; the master is found by its pid file), logging to
    ``logs/wsgid.log``. ``prefix`` runs the command through another
    (``unshare ...``, ``ip netns exec ...``). ``wsgi_app``, ``workers`` and
    ``dispatch`` are passed as their options when given, ``extra`` as is.

    :meth:`stop` sends ``stop_signal`` to the master (SIGTERM graceful,
    SIGINT fast, SIGKILL waits for nothing), then SIGKILL to what is left of
    the app folder's processes.
    """

    def __init__(self, m2, app_path, *extra, wsgi_app=None, workers=None, dispatch=None,
                 daemon=False, stdout=True, prefix=(), python=sys.executable, out_path=None,
                 stop_signal=signal.SIGTERM):
        self.m2, self.app_path, self.daemon = m2, app_path, daemon
        self.prefix, self.python, self.stop_signal = list(prefix), python, stop_signal
        self.out_path = out_path or str(app_path).rstrip("/") + ".out"
        logs_there = stdout and not daemon
        self.log_path = self.out_path if logs_there else os.path.join(app_path, "logs",
                                                                        "wsgid.log")
        args = ["--app-path", app_path, "--recv", m2.request_spec, "--send", m2.reply_spec,
                *m2.wsgid_args()]
        if wsgi_app is not None:
            args += ["--wsgi-app", wsgi_app]
        if workers is not None:
            args += ["--workers", str(workers)]
        if dispatch is not None:
            args += ["--dispatch", dispatch]
        if not daemon:
            args = ["--no-daemon"] + (["--stdout"] if logs_there else []) + args
        self.args = args + list(extra)
        self.proc = None
        self.master = None
        self.seen = set()  # every wsgid pid met: what stop() may SIGKILL

    def spawn(self):
        """Start wsgid; wait for nothing but a daemon's master pid file."""
        if self.daemon:
            run(*self.args, python=self.python)  # returns once daemonized
            self.master = wait_for(lambda: live_pids(self.app_path, "master"), 10,
                                   what="the wsgid master's pid file")[0]
        else:
            self.out = open(self.out_path, "ab")
            cmd = self.prefix + wsgid_command(*self.args, python=self.python)
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.out, stderr=subprocess.STDOUT,
                                         env=_env())
            self.master = self.proc.pid
        self.seen.add(self.master)
        return self

    def start(self, workers=None, ready_path="/"):
        """:meth:`spawn`, then wait for ``workers`` ready workers (when given)
        and for an answer to ``ready_path`` through mongrel2 (unless None, or
        ``m2`` is a peer)."""
        self.spawn()
        if workers:
            self.wait_workers(workers)
        if ready_path and self.m2.url:
            wait_for(lambda: self._answers(ready_path), 20, interval=0.05,
                     what="wsgid to answer")
        return self

    def _check_running(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError("wsgid exited with %s:\n%s" % (self.proc.returncode,
                                                              self.output_tail(200)))

    def _answers(self, path):
        self._check_running()
        try:
            return get(self.m2.url, path, timeout=2)[0] != 0
        except OSError:
            return False

    def wait_workers(self, n, exclude=()):
        """Until ``n`` live workers, none in ``exclude``, and ``n`` "ready"
        lines in the log: return their pids."""
        pump = getattr(self.m2, "pump", None)  # a peer's SUB subscribes while polled

        def ready():
            self._check_running()
            pids = self.workers()
            if (len(pids) == n and not set(pids) & set(exclude)
                    and self.log().count("ready to serve") >= n):
                return pids
            if pump:
                pump(5)
            return None
        return wait_for(ready, 20, interval=0 if pump else 0.02,
                        what="%d ready workers" % n)

    def workers(self):
        """The live workers (holding their pid files)."""
        pids = live_pids(self.app_path, "worker")
        self.seen.update(pids)
        return pids

    def worker_pids(self):
        """The live workers; else the master's children; else (one
        in-process worker) the master itself."""
        pids = self.workers() or [p for p in children(self.master) if alive(p)]
        return sorted(pids) or [self.master]

    def _hold(self):
        """Stop the master (SIGSTOP) and note its children and the live
        workers: one it forked since they were last looked at (a worker
        replaced, one still loading the app: no pid file yet) would
        otherwise outlive the test."""
        try:
            os.kill(self.master, signal.SIGSTOP)
            wait_for(lambda: not alive(self.master) or state(self.master) == "T", 5,
                     interval=0.005, what="the master stopped")
        except (OSError, TimeoutError):
            pass
        self.seen.update(children(self.master))
        self.workers()

    def failed(self):
        if self.proc is not None:
            return self.proc.poll() is not None
        return not alive(self.master)

    def output(self):
        """What the foreground process wrote (its log too, with ``--stdout``)."""
        return _read(self.out_path)

    def log(self, offset=0):
        """wsgid's log from byte ``offset`` on."""
        return _read(self.log_path, offset)

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def output_tail(self, n=30):
        """The last ``n`` lines of the output, then of the log when apart."""
        lines = [] if self.daemon else self.output().splitlines()
        if self.log_path != self.out_path:
            lines += ["-- %s --" % self.log_path] + self.log().splitlines()
        return "\n".join(lines[-n:])

    def stop(self, sig=None, timeout=10):
        """``sig`` (default ``stop_signal``) to the master; SIGKILL to whatever
        is left after ``timeout`` (at once after a SIGKILL)."""
        if self.master is None:
            return
        sig = self.stop_signal if sig is None else sig
        if sig == signal.SIGKILL:
            self._hold()
        else:
            self.workers()
            if alive(self.master):
                os.kill(self.master, sig)
            try:
                wait_for(lambda: not any(alive(p) for p in self.seen), timeout, interval=0.02)
            except TimeoutError:
                self._hold()
        for pid in sorted(self.seen):  # only the processes of this app folder
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if self.proc is not None:
            self.proc.wait()
            self.out.close()
            self.proc = None
        self.master = None


def _read(path, offset=0):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def connections_to(port):
    """The lines of ``ss -xtnp`` of wsgid processes' connections to ``port``
    on 127.0.0.1 (a master's to mongrel2's send_spec, say)."""
    out = subprocess.run(["ss", "-xtnp"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines()
            if " 127.0.0.1:%d " % port in line + " " and "wsgid" in line
            and line.split()[5] == "127.0.0.1:%d" % port]
