"""The master's private status channel: how ``wsgid status --verbose`` (or
``--json``) learns from each running master what it and its workers do.

A unix stream socket, ``<app>/pid/status/<master pid>.sock``, in a folder of
mode 0700 the master makes after dropping privileges: only the app folder's
owner (and root) can enter it, so only they can connect -- never a TCP port
or an abstract socket, which any local account reaches. Connecting is the
question; the answer is one JSON object, then the master closes. The
command checks the answer comes from that master (``SO_PEERCRED``).

The answer is the app account's words, printed to root's terminal: it is
read up to :data:`MAX_ANSWER` bytes (more is an error answer), and every
string in it, keys too, has its non-printable characters escaped
(:func:`printable`) -- C0 and C1 controls, DEL, and so every ESC sequence.

Sockets are bound and connected by a path relative to their folder: a unix
socket's path is limited to 107 bytes, an app folder's is not.
"""

import json
import logging
import os
import selectors
import socket
import stat
import struct
import time

from wsgid import appfolder

log = logging.getLogger("wsgid")

TIMEOUT = 1.0  # seconds ``wsgid status`` waits for the masters' answers
MAX_ANSWER = 1 << 20  # bytes of a master's answer read (a worker takes ~300)
_SUFFIX = ".sock"
_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def folder(app_path):
    return os.path.join(app_path, "pid", "status")


def _name(pid):
    return "%d%s" % (pid, _SUFFIX)


def _in_folder(path, call):
    """``call()`` with ``path`` as the working directory, then back."""
    here = os.open(".", os.O_PATH | os.O_CLOEXEC)
    try:
        os.chdir(path)
        return call()
    finally:
        os.fchdir(here)
        os.close(here)


class Listener:
    """The master's end: made in the master (after the drop of privileges),
    answered from its loop (:meth:`answer` when :meth:`fileno` is readable)."""

    def __init__(self, app_path, pid):
        self.path = folder(app_path)
        self.name = _name(pid)
        try:
            os.mkdir(self.path, 0o700)
        except FileExistsError:
            pass
        self.sock = socket.socket(socket.AF_UNIX,
                                  socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            _in_folder(self.path, lambda: self._bind(app_path, pid))
            self.sock.listen(16)
        except BaseException:
            self.sock.close()
            raise

    def _bind(self, app_path, pid):
        """In the folder: check it is ours and private, clear the sockets of
        masters that are gone (a master killed by SIGKILL leaves its own),
        bind."""
        info = os.stat(".")
        if info.st_uid != os.geteuid():
            raise PermissionError("%s belongs to uid %d" % (self.path, info.st_uid))
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(".", 0o700)
        for entry in os.listdir("."):
            stem = entry[:-len(_SUFFIX)]
            if entry.endswith(_SUFFIX) and stem.isdigit() and (
                    int(stem) == pid or not appfolder.owns(app_path, appfolder.MASTER, int(stem))):
                appfolder.remove(entry)
        self.sock.bind(self.name)

    def fileno(self):
        """What the master polls (readable: a caller waits)."""
        return self.sock.fileno()

    def answer(self, state):
        """Answer every caller waiting with ``state()`` (a dict), as JSON;
        nothing a caller does, nor a failure of ``state``, stops the master."""
        payload = None
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            if payload is None:
                payload = _payload(state)
            with conn:
                conn.settimeout(0.2)  # the answer fits the socket's buffer
                try:
                    conn.sendall(payload)
                except OSError:
                    pass  # the caller gave up

    def forget(self):
        """In a forked worker: close the master's socket, leave its file."""
        self.sock.close()

    def close(self):
        self.sock.close()
        try:
            _in_folder(self.path, lambda: appfolder.remove(self.name))
        except OSError:
            pass


def _payload(state):
    try:
        return json.dumps(state()).encode() + b"\n"
    except Exception:
        log.exception("The status channel could not say the master's state")
        return b'{"error": "the master failed to say its state (see its log)"}\n'


def ask(app_path, pids, timeout=TIMEOUT):
    """Ask each master of ``pids`` at once; ``{pid: answer}`` within
    ``timeout`` seconds: its state (a dict), or ``{"error": why}``."""
    answers, waiting = {}, {}
    selector = selectors.DefaultSelector()
    for pid in pids:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            _in_folder(folder(app_path), lambda: sock.connect(_name(pid)))
            peer = _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                _CRED.size))[0]
            if peer != pid:
                raise ConnectionRefusedError("the socket is held by pid %d" % peer)
        except OSError as exc:
            sock.close()
            answers[pid] = _error("cannot connect: %s" % (exc.strerror or exc))
            continue
        sock.setblocking(False)
        waiting[sock] = (pid, [])
        selector.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while waiting:
        left = deadline - time.monotonic()
        events = selector.select(left) if left > 0 else []
        if not events:
            break
        for key, _ in events:
            pid, chunks = waiting[key.fileobj]
            try:
                data = key.fileobj.recv(65536)
            except OSError as exc:
                data, answers[pid] = b"", _error("read failed: %s" % (exc.strerror or exc))
            if data:
                chunks.append(data)
                if sum(map(len, chunks)) <= MAX_ANSWER:
                    continue
                answers[pid] = _error("answer larger than %d bytes" % MAX_ANSWER)
            selector.unregister(key.fileobj)
            key.fileobj.close()
            del waiting[key.fileobj]
            if pid not in answers:
                answers[pid] = _decode(b"".join(chunks))
    for sock, (pid, _) in waiting.items():
        sock.close()
        answers[pid] = _error("no answer within %g s" % timeout)
    selector.close()
    return answers


def _error(why):
    return {"error": why}


def _decode(data):
    try:
        state = json.loads(data)
        if isinstance(state, dict):
            return _clean(state)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        pass
    return _error("not a valid answer")


def _clean(value):
    """``value`` (decoded JSON) with :func:`printable` strings, keys too."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {printable(key): _clean(item) for key, item in value.items()}
    return value


def printable(text):
    """``text`` with each non-printable character (``str.isprintable``: C0
    and C1 controls, DEL, line and paragraph separators, format characters
    such as bidi overrides) written as its Python escape, ``\\x1b``."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
