"""Readings from /proc: is a process alive, its status fields, open files,
children, CPU time and listening sockets."""

import glob
import os


def _stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name (state first)."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rpartition(")")[2].split()


def state(pid):
    """The state letter of ``pid`` (R, S, T when stopped, Z a zombie...);
    "" when there is no such process."""
    try:
        return _stat_fields(pid)[0]
    except OSError:
        return ""


def alive(pid):
    """True when a process with this pid exists and is not a zombie."""
    return state(pid) not in ("", "Z")


def _status_file(path):
    with open(path) as f:
        return dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)


def status(pid):
    """/proc/<pid>/status as a dict of raw values."""
    return _status_file("/proc/%d/status" % pid)


def status_kib(pid, key):
    """A size field of /proc/<pid>/status (VmRSS, VmHWM...) in KiB."""
    return int(status(pid)[key].split()[0])


def rss_kib(pid):
    """VmRSS of ``pid`` in KiB."""
    return status_kib(pid, "VmRSS")


def bytes_read(pid):
    """``rchar`` of /proc/<pid>/io: the bytes ``pid`` has read, files and sockets."""
    return int(_status_file("/proc/%d/io" % pid)["rchar"])


def ids(pid):
    """(uids, gids, groups) of ``pid``: the real/effective/saved/fs ids."""
    fields = status(pid)
    return ([int(x) for x in fields["Uid"].split()], [int(x) for x in fields["Gid"].split()],
            [int(x) for x in fields["Groups"].split()])


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


def children(pid):
    """The child pids of ``pid`` (wsgid forks from its main thread), sorted."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return sorted(int(x) for x in f.read().split())
    except OSError:
        return []


def cpu_seconds(pid):
    """utime + stime of ``pid`` in seconds (0 once it is gone)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid):
    """Voluntary + involuntary context switches of all threads of ``pid``
    (/proc/<pid>/status counts only the main thread's)."""
    total = 0
    for path in glob.glob("/proc/%d/task/*/status" % pid):
        try:
            fields = _status_file(path)
            total += (int(fields["voluntary_ctxt_switches"])
                      + int(fields["nonvoluntary_ctxt_switches"]))
        except (OSError, ValueError, KeyError):
            continue
    return total


def machine_cpu():
    """(busy, total) jiffies of all CPUs together, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return total - idle, total


def listening_sockets(pid):
    """What ``pid`` listens on: ``[("tcp", port)]`` and ``[("unix", path)]``,
    from the kernel's socket tables matched to the process's descriptors."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[9] in inodes and fields[3] in ("0A", "07"):  # LISTEN, or UDP bound
                    found.append((table, int(fields[1].split(":")[1], 16)))
    with open("/proc/%d/net/unix" % pid) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[6] in inodes and len(fields) > 7 and fields[3] == "00010000":
                found.append(("unix", fields[7]))  # __SO_ACCEPTCON: a listener
    return found
