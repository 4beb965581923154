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
import json
import os

FOLDERS = ("app", "logs", "pid/master", "pid/worker", "plugins")
MASTER, WORKER = "master", "worker"


def create(app_path):
    """Create the layout (parents too); safe to run again."""
    for sub in FOLDERS:
        os.makedirs(os.path.join(app_path, sub), exist_ok=True)


def pid_dir(app_path, kind):
    return os.path.join(app_path, "pid", kind)


def pid_path(app_path, kind, pid):
    return os.path.join(pid_dir(app_path, kind), "%d.pid" % pid)


def write_pid(app_path, kind, pid):
    """Write ``<pid>.pid`` holding the pid, atomically."""
    path = pid_path(app_path, kind, pid)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % pid)
    os.replace(tmp, path)
    return path


def remove_pid(app_path, kind, pid):
    try:
        os.unlink(pid_path(app_path, kind, pid))
    except FileNotFoundError:
        pass


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


def is_alive(pid):
    """True when a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return False
        # EPERM: it exists, owned by someone else
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def remove_stale(app_path, kind):
    """Delete the pid files of processes that are gone (a master killed by
    SIGKILL leaves its workers' behind); return the live pids."""
    live = []
    for pid in pids(app_path, kind):
        if is_alive(pid):
            live.append(pid)
        else:
            remove_pid(app_path, kind, pid)
    return live


def read_json_object(path):
    """The JSON object stored at ``path``; {} when there is no such file.
    Raises ValueError, naming the file, for bad JSON or another JSON type
    (wsgid.json makes that an error, django.json a logged warning)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise ValueError("%s: not valid JSON: %s" % (path, exc)) from None
    if not isinstance(data, dict):
        raise ValueError("%s: expected a JSON object, found %s" % (path, type(data).__name__))
    return data
