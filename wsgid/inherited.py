"""The sockets a forked worker must not keep: the master's.

A worker is forked after the master made its sockets (broker dispatch: its
connections to mongrel2, its workers' socket), and a fork copies every file
descriptor. ZeroMQ's threads do not survive the fork, so nothing in the
worker uses them, but while a worker holds them they stay open: a master
that leaves mongrel2 (a stop) would still look connected, and mongrel2 would
push requests into them that no one reads. So the worker closes, at once,
every socket and every ZeroMQ wake-up (eventfd, epoll) it did not get from
whoever started the master.
"""

import os
import stat

_MAX_FDS = 65536  # where /proc is missing (a chroot): the fds looked at


def _fds():
    try:
        return [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return range(min(os.sysconf("SC_OPEN_MAX"), _MAX_FDS))


def _kind(fd):
    """``(st_dev, st_ino)`` of a socket or an anonymous inode (eventfd,
    epoll: no file type), None for anything else or a closed fd."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if stat.S_ISSOCK(st.st_mode) or not stat.S_IFMT(st.st_mode):
        return st.st_dev, st.st_ino
    return None


def sockets():
    """What identifies the sockets open now (in the master, at its start)."""
    return {key for key in map(_kind, _fds()) if key is not None}


def close_sockets(keep):
    """In a forked worker: close every socket and anonymous inode but those
    of ``keep`` (:func:`sockets` of the master at its start) and stdio."""
    for fd in _fds():
        if fd > 2:
            key = _kind(fd)
            if key is not None and key not in keep:
                os.close(fd)
