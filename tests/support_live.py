"""Helpers for the reliability tests: a live wsgid fed through ZeroMQ sockets
the test owns (it plays mongrel2), readings from /proc, and an inotify watch.

Not a test module: imported by test_fuzz_live, test_faults, test_leaks, ...
"""

import ctypes
import os
import signal
import stat
import struct
import subprocess
import time

import zmq

from conftest import live_pids, make_app_folder, wsgid_command
from mongrel2 import free_ports, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SENDER = b"54c6755b-9628-40a4-9a2d-cc82a816345e"


# -- /proc ------------------------------------------------------------------------

def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)


def rss_kib(pid):
    """VmRSS of ``pid`` in KiB."""
    return int(proc_status(pid)["VmRSS"].split()[0])


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_targets(pid):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return sorted(out)


def ids(pid):
    """(uids, gids, groups) of ``pid``: the real/effective/saved/fs ids."""
    status = proc_status(pid)
    return ([int(x) for x in status["Uid"].split()], [int(x) for x in status["Gid"].split()],
            [int(x) for x in status["Groups"].split()])


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


# -- inotify (ctypes): did anyone open or read a file? ----------------------------

IN_ACCESS, IN_MODIFY, IN_ATTRIB = 0x1, 0x2, 0x4
IN_OPEN, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x20, 0x200, 0x400, 0x800
IN_ALL_EVENTS = 0xFFF
_EVENT = struct.Struct("iIII")


class Inotify:
    """Watches files/folders; :meth:`events` returns (path, mask, name) seen so far."""

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.paths = {}

    def watch(self, path, mask=IN_ALL_EVENTS):
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch %s" % path)
        self.paths[wd] = path

    def events(self):
        out = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            offset = 0
            while offset < len(data):
                wd, mask, _, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size:offset + _EVENT.size + length].rstrip(b"\0")
                out.append((self.paths.get(wd), mask, name.decode()))
                offset += _EVENT.size + length

    def close(self):
        os.close(self.fd)


def touched(events, mask=IN_OPEN | IN_ACCESS | IN_MODIFY | IN_DELETE | IN_DELETE_SELF
            | IN_MOVE_SELF | IN_ATTRIB):
    return [e for e in events if e[1] & mask]


def tree(root):
    """Every path under ``root`` with (type, size, mtime_ns) -- a snapshot
    (folders: type only, their mtime moves when an entry goes)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                out[os.path.relpath(path, root)] = (st.st_mode >> 12,)
            else:
                out[os.path.relpath(path, root)] = (st.st_mode >> 12, st.st_size, st.st_mtime_ns)
    return out


# -- wire -------------------------------------------------------------------------

def json_request(headers, body=b"", conn_id=b"1", sender=SENDER, path=None):
    import wire
    return wire.request(headers, body, "json", sender=sender, conn_id=conn_id, path=path)


def get_headers(path="/", **extra):
    headers = {"PATH": path, "METHOD": "GET", "VERSION": "HTTP/1.1", "URI": path,
               "PATTERN": "/", "host": "localhost", "REMOTE_ADDR": "127.0.0.1"}
    headers.update(extra)
    return headers


class Peer:
    """Binds PUSH (requests out) and SUB (replies in) like mongrel2 does.

    A bound SUB sends its subscription to a new peer only when its own
    thread uses the socket, so every wait here keeps polling it."""

    def __init__(self):
        self.context = zmq.Context()
        self.push = self.context.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.setsockopt(zmq.RCVHWM, 0)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.push_port, self.sub_port = free_ports(2)
        self.push.bind("tcp://127.0.0.1:%d" % self.push_port)
        self.sub.bind("tcp://127.0.0.1:%d" % self.sub_port)
        self.received = []   # (conn_id bytes, body) in arrival order

    @property
    def recv_spec(self):
        return "tcp://127.0.0.1:%d" % self.push_port

    @property
    def send_spec(self):
        return "tcp://127.0.0.1:%d" % self.sub_port

    def pump(self, timeout_ms=0):
        """Take every reply now available (waiting up to ``timeout_ms`` for one)."""
        got = 0
        while self.sub.poll(timeout_ms):
            msg = self.sub.recv()
            _, ids, body = msg.split(b" ", 2)
            self.received.append((ids.split(b":", 1)[1].rstrip(b","), body))
            got += 1
            timeout_ms = 0
        return got

    def send(self, data, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.push.send(data, zmq.NOBLOCK)
            except zmq.Again:
                if time.monotonic() > deadline:
                    raise TimeoutError("no worker took the message") from None
                self.pump(5)

    def replies_for(self, conn_id, timeout=10.0):
        """Wait for the reply to ``conn_id`` to end (a close, or a complete
        response): return its messages' bodies."""
        conn_id = conn_id if isinstance(conn_id, bytes) else str(conn_id).encode()

        def done():
            self.pump(20)
            bodies = [b for c, b in self.received if c == conn_id]
            if bodies and (bodies[-1] == b"" or _complete(b"".join(bodies))):
                return bodies
            return None
        return wait_for(done, timeout, interval=0, what="reply to connection %s" % conn_id)

    def forget(self, conn_id):
        conn_id = conn_id if isinstance(conn_id, bytes) else str(conn_id).encode()
        self.received = [(c, b) for c, b in self.received if c != conn_id]

    def close(self):
        self.push.close(0)
        self.sub.close(0)
        self.context.term()


def _complete(data):
    """A full HTTP response with a Content-Length body."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def status_of(bodies):
    return bodies[0][9:12] if bodies and bodies[0].startswith(b"HTTP/") else None


class LiveWsgid:
    """``wsgid --no-daemon`` against a :class:`Peer`, output to a log file."""

    def __init__(self, base, peer, *extra, app_module="e2e_app.py", wsgi_app="e2e_app:app",
                 mongrel2_chroot=None):
        self.base = str(base)
        self.peer = peer
        self.app_path = make_app_folder(self.base, app_module)
        self.log_path = os.path.join(self.base, "wsgid-output.log")
        args = ["--no-daemon", "--stdout", "--app-path", self.app_path,
                "--wsgi-app", wsgi_app, "--recv", peer.recv_spec, "--send", peer.send_spec]
        if mongrel2_chroot:
            args += ["--mongrel2-chroot", str(mongrel2_chroot)]
        self.args = args + list(extra)
        self.proc = None

    def spawn(self):
        """Start wsgid; do not wait for anything."""
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(wsgid_command(*self.args), cwd=os.path.dirname(HERE),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def start(self, workers=1):
        self.spawn()
        self.wait_workers(workers)
        return self

    def workers(self):
        return live_pids(self.app_path, "worker")

    def wait_workers(self, n, exclude=()):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("wsgid exited:\n" + self.output())
            pids = self.workers()
            if len(pids) == n and not set(pids) & set(exclude) and \
                    self.output().count("ready to serve") >= n:
                return pids
            self.peer.pump(5)  # let the SUB send its subscription
            return None
        return wait_for(ready, 20, interval=0, what="%d ready workers" % n)

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                for pid in self.workers():
                    os.kill(pid, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

