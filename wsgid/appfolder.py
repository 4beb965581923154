"""The app folder: its layout and its pid files.

::

    <app>/app/           the application's code (added to sys.path)
    <app>/logs/          wsgid.log
    <app>/pid/master/    <pid>.pid for each master
    <app>/pid/worker/    <pid>.pid for each worker
    <app>/plugins/       *.py loader/filter plugins
    <app>/wsgid.json     options saved by `wsgid config`
"""

import errno
import fcntl
import json
import os
import stat
import struct
import tempfile
import time

FOLDERS = ("app", "logs", "pid/master", "pid/worker", "plugins")
MASTER, WORKER = "master", "worker"
JSON_MAX = 65536  # bytes of wsgid.json (and django.json) read at most
_FLOCK = "hhqqi4x"  # struct flock on 64-bit Linux: type, whence, start, len, pid


def create(app_path):
    """Create the layout (parents too); safe to run again."""
    for sub in FOLDERS:
        os.makedirs(os.path.join(app_path, sub), exist_ok=True)


def pid_dir(app_path, kind):
    return os.path.join(app_path, "pid", kind)


def pid_path(app_path, kind, pid):
    return os.path.join(pid_dir(app_path, kind), "%d.pid" % pid)


def claim(app_path, kind):
    """Write ``<pid>.pid`` for this process and hold a lock on it for the
    process's life; return the file's descriptor (keep it open).

    The file says ``PID STAMP`` (:func:`_stamp`): a time after this
    process's start, which a chrooted process tells without /proc. The
    temp file is made with O_EXCL (never through a planted link), then
    renamed over the final name. :func:`owns` says what it proves."""
    pid = os.getpid()
    folder = pid_dir(app_path, kind)
    fd, tmp = tempfile.mkstemp(prefix=".%d." % pid, suffix=".tmp", dir=folder)
    try:
        os.write(fd, b"%d %d\n" % (pid, _stamp()))
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(tmp, pid_path(app_path, kind, pid))
    except BaseException:
        os.close(fd)
        remove(tmp)
        raise
    return fd


def owns(app_path, kind, pid):
    """True when process ``pid`` is the one that claimed its ``kind`` pid
    file (:func:`claim`) and still runs.

    Anyone who can write the folder can write a pid file, so it takes all of:
    the kernel reports the file's lock under ``pid`` (only the locker gets
    its pid there, and a dead process's lock goes -- unless the lock was
    taken by a ``clone(CLONE_FILES)`` child, whose lock outlives it in the
    descriptor table it shared); the file names ``pid``; the process is not
    a zombie, started in an earlier clock tick than the file's STAMP (a
    process that got the pid since started later), and runs as the file's
    owner. Only a regular file is
    looked at (no link is followed, a FIFO does not block). Never call it
    from the process that holds the lock: closing any descriptor of the file
    would release it."""
    try:
        fd = os.open(pid_path(app_path, kind, pid),
                     os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return False
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        kind_, _, _, _, holder = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))
        if kind_ == fcntl.F_UNLCK or holder != pid:
            return False
        said = os.read(fd, 64).split()
    finally:
        os.close(fd)
    if len(said) != 2 or said[0] != b"%d" % pid or not said[1].isdigit():
        return False
    process = _process(pid)
    return (process is not None and process[0] not in "ZX" and process[2] == info.st_uid
            and process[1] < int(said[1]) // _tick())


def _process(pid):
    """``(state, start time in clock ticks since boot, real uid)`` of process
    ``pid`` from /proc, or None (gone, or no /proc)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            fields = f.read().rpartition(b")")[2].split()  # the name may hold anything
        with open("/proc/%d/status" % pid, "rb") as f:
            uid = next(line.split()[1] for line in f if line.startswith(b"Uid:"))
        return fields[0].decode("ascii", "replace"), int(fields[19]), int(uid)
    except (OSError, IndexError, StopIteration, ValueError):
        return None


def _tick():
    """Nanoseconds in a clock tick, the unit of start times in /proc."""
    return 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _stamp():
    """Now, in nanoseconds since boot (``CLOCK_BOOTTIME``, the clock of start
    times in /proc), once the current clock tick is over (a wait of at most
    one tick, 10 ms): the calling process started in an earlier tick than
    the stamp's, a process started after the stamp in its tick or a later
    one."""
    tick = _tick()
    begun = time.clock_gettime_ns(time.CLOCK_BOOTTIME) // tick
    while True:
        now = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        if now // tick != begun:
            return now
        time.sleep((tick - now % tick) / 1e9)


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_pid(app_path, kind, pid):
    remove(pid_path(app_path, kind, pid))


def pids(app_path, kind):
    """The pids that have a pid file, sorted; other names are ignored."""
    try:
        names = os.listdir(pid_dir(app_path, kind))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        stem, dot, ext = name.partition(".")
        if ext == "pid" and stem.isascii() and stem.isdigit() and 0 < int(stem) < 2 ** 31:
            found.append(int(stem))
    return sorted(found)


def states(app_path, kind):
    """``[(pid, live)]`` for the ``kind`` pid files, sorted by pid: live when
    the process holds its file's lock (:func:`owns`)."""
    return [(pid, owns(app_path, kind, pid)) for pid in pids(app_path, kind)]


def remove_stale(app_path, kind):
    """Delete the pid files no live process holds (a master killed by
    SIGKILL leaves its workers' behind, a forged file names a stranger);
    return the live pids."""
    live = []
    for pid, alive in states(app_path, kind):
        if alive:
            live.append(pid)
        else:
            remove_pid(app_path, kind, pid)
    return live


def read_json_object(path, dir_fd=None):
    """The JSON object stored at ``path``; {} when there is no such file.
    Raises ValueError, naming the file, for bad JSON or another JSON type
    (wsgid.json makes that an error, django.json a logged warning), for
    anything but a regular file, or for one over JSON_MAX bytes. As root
    (wsgid.json is read before the drop) it is opened beneath ``dir_fd``, the
    app folder's descriptor, no link is followed, and the file must be
    root's or the folder owner's: a hard link to another account's file is
    not read."""
    root = os.geteuid() == 0
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOFOLLOW if root else 0)
    try:
        fd = os.open(path if dir_fd is None else os.path.basename(path), flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        reason = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise ValueError("%s: cannot be read: %s" % (path, reason)) from None
    with open(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("%s: not a regular file" % path)
        folder = os.fstat(dir_fd) if dir_fd is not None else os.stat(os.path.dirname(path))
        if root and info.st_uid not in (0, folder.st_uid):
            raise ValueError("%s: owned by uid %d, not by the folder's owner"
                             % (path, info.st_uid))
        try:
            text = f.read(JSON_MAX + 1)  # at most: it may grow after the fstat
        except OSError as exc:
            raise ValueError("%s: cannot be read: %s" % (path, exc.strerror)) from None
        if len(text) > JSON_MAX:
            raise ValueError("%s: larger than %d bytes: refused" % (path, JSON_MAX))
    try:
        data = json.loads(text.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError("%s: not valid JSON: %s" % (path, exc)) from None
    if not isinstance(data, dict):
        raise ValueError("%s: expected a JSON object, found %s" % (path, type(data).__name__))
    return data
