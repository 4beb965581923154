"""An inotify watch (ctypes): did anyone open, read or change a file?"""

import ctypes
import os
import stat
import struct

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
