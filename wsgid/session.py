"""``wsgid start`` leaves root's terminal before the app account's code runs.

Plugins, loaders and the application are the app account's code. Before
any of it runs, the process that will run it is in a session of its own,
without a controlling terminal, and none of its fds 0-2 is a terminal: it
can neither push input into root's shell (``TIOCSTI``) nor reach the
terminal another way. The process started stays root, in the foreground,
and runs none of that code:

- daemon mode (:func:`daemonize`): it forks the daemon before the drop and
  waits for one line from it over a pipe: ``ready`` once the plugins are
  read and a loader accepts the folder (exit 0), or the error that stopped
  it (printed as any other, exit 1).
- ``--no-daemon`` (:func:`foreground`): stdin is ``/dev/null``. Where stdout
  or stderr is a terminal, or wsgid cannot leave its session itself (it
  leads a process group, as a shell's job does, and has a controlling
  terminal), it forks: the child serves in a new session, its output on
  pipes that the parent copies to the terminal (as sudo's use_pty); the
  parent passes on the signals a terminal sends (INT, QUIT, HUP, and TERM)
  and exits with the child's status. Else (under systemd, or with output
  to files) it calls ``setsid`` and serves itself.
"""

import errno
import logging
import os
import select
import signal
import sys
import termios

import daemon

from wsgid.loaders.base import LoaderError
from wsgid.options import OptionError

logger = logging.getLogger("wsgid")

READY = b"ready"
WORD_MAX = 4096  # bytes of the daemon's line read at most: the app's code could write it
FORWARDED = (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM)


def daemonize(set_up, serve, keep=()):
    """Run ``serve(set_up())`` in a daemon: ``set_up`` (the drop, the
    plugins, the loader's choice) reports to this process, which returns 0
    once it is done and raises OptionError with its message if it fails.
    ``keep``: descriptors the daemon keeps."""
    sys.stdout.flush()
    sys.stderr.flush()
    word_r, word_w = os.pipe()
    devnull = open(os.devnull, "r+")  # before a chroot hides /dev
    pid = os.fork()
    if pid:
        os.close(word_w)
        devnull.close()
        word = _read_line(word_r)
        os.close(word_r)
        os.waitpid(pid, 0)  # it exits at once, leaving the daemon (python-daemon's forks)
        if word == READY:
            return 0
        raise OptionError(_printable(word.decode("utf-8", "replace")) if word else
                          "wsgid exited before it was ready (see logs/wsgid.log)")
    os.close(word_r)
    with daemon.DaemonContext(umask=0o022, detach_process=True, working_directory=os.getcwd(),
                              files_preserve=[word_w, *keep],
                              stdin=devnull, stdout=devnull, stderr=devnull):
        try:
            found = set_up()
        except (OptionError, LoaderError) as exc:
            _write_line(word_w, str(exc).encode("utf-8", "replace"))
            return 1
        except Exception as exc:
            logger.exception("wsgid could not start")
            _write_line(word_w, ("%s: %s" % (type(exc).__name__, exc)).encode("utf-8", "replace"))
            return 1
        _write_line(word_w, READY)
        return serve(found)


def _write_line(fd, data):
    try:
        os.write(fd, data[:WORD_MAX - 1] + b"\n")
    finally:
        os.close(fd)


def _read_line(fd):
    """The first line written to ``fd`` (at most WORD_MAX bytes), without its end."""
    data = b""
    while b"\n" not in data and len(data) < WORD_MAX:
        chunk = os.read(fd, WORD_MAX - len(data))
        if not chunk:
            break
        data += chunk
    return data.partition(b"\n")[0]


def _printable(text):
    """``text`` with control characters escaped: it goes to root's terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode()
                   for c in text)


def foreground(run):
    """``--no-daemon``: return ``run()``'s exit status, ``run`` called in a
    session of its own with no terminal on fds 0-2 (see the module's
    docstring); in this process when it can leave its session, else in a
    child whose output this process relays."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    ttys = [fd for fd in (1, 2) if os.isatty(fd)]
    if not ttys:
        try:
            os.setsid()
        except PermissionError:  # it leads its process group: a job of a shell, or systemd's
            if _has_terminal():
                return _relay(run, ttys)
        return run()
    return _relay(run, ttys)


def _has_terminal():
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def _relay(run, ttys):
    """Fork: the child runs ``run`` in a new session, its ``ttys`` (of fds
    1 and 2) on pipes this process copies to them; return its exit status."""
    sys.stdout.flush()
    sys.stderr.flush()
    pipes = {fd: os.pipe() for fd in ttys}
    pid = os.fork()
    if pid == 0:
        os.setsid()
        for fd, (read_end, write_end) in pipes.items():
            os.dup2(write_end, fd)
            os.close(read_end)
            os.close(write_end)
        return run()
    for sig in FORWARDED:
        signal.signal(sig, lambda signum, frame: os.kill(pid, signum))  # not reaped yet: ours
    copies = {}
    for fd, (read_end, write_end) in pipes.items():
        os.close(write_end)
        copies[read_end] = fd
    exited = os.pidfd_open(pid)
    while copies:
        readable, _, _ = select.select([exited, *copies], [], [])
        for read_end in readable:
            if read_end != exited:
                _copy(read_end, copies)
        if exited in readable:
            for read_end in list(copies):  # what is there now; a worker left behind may hold it
                os.set_blocking(read_end, False)
                _copy(read_end, copies)
            break
    for sig in FORWARDED:  # the child is reaped next: its pid is no longer ours
        signal.signal(sig, signal.SIG_IGN)
    os.close(exited)
    for read_end in copies:
        os.close(read_end)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    for fd in ttys:
        try:  # answers the terminal typed to escape sequences, never read by the shell
            termios.tcflush(fd, termios.TCIFLUSH)
        except termios.error:
            pass
    return status if status >= 0 else 128 - status


def _copy(read_end, copies):
    """Copy what ``read_end`` holds now to its terminal; drop it at its end."""
    while True:
        try:
            data = os.read(read_end, 65536)
        except BlockingIOError:
            return
        if not data:
            os.close(read_end)
            del copies[read_end]
            return
        try:
            _write_all(copies[read_end], data)
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EPIPE):  # the terminal is gone: read on
                raise
        if os.get_blocking(read_end):
            return


def _write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]
