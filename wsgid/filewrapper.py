"""``wsgi.file_wrapper`` (PEP 3333, "Optional Platform-Specific File
Handling"), and the hand-off of a wrapped file to mongrel2.

The wrapper reads its file in blocks of at least BLOCK bytes, whatever
smaller size the application suggests (Django's FileResponse asks for 4 KiB):
few, large blocks, never the whole file in memory. A response that returns
the wrapper unchanged may instead be handed to mongrel2's ``sendfile``
extended reply (``--mongrel2-sendfile``, see :func:`handoff_path`): the
worker sends the head and the file's path, and mongrel2 streams the file
itself.
"""

import os
import stat

BLOCK = 1 << 20


class FileWrapper:
    """An iterable over ``filelike``'s blocks; :meth:`close` closes it."""

    def __init__(self, filelike, block_size=BLOCK):
        self.filelike = filelike
        self.block_size = max(block_size, BLOCK)

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.block_size)
        if data:
            return data
        raise StopIteration

    def close(self):
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


def handoff_path(wrapper, response, mongrel2_chroot):
    """The path, as mongrel2 sees it, of the file ``wrapper`` would send in
    full, and its size (the response's Content-Length) -- or None when
    mongrel2 cannot send exactly that: the file must be a regular file read
    from its start, inside ``mongrel2_chroot`` (after symlinks), the very
    file its name names now, and the response must send all of it and
    nothing else (no body sent yet, a body to send, the app's
    Content-Length, if any, equal to the file's size)."""
    filelike = wrapper.filelike
    name = getattr(filelike, "name", None)
    if (not isinstance(name, str) or response.headers_sent or response.written
            or response.no_body):
        return None
    try:
        fileno = filelike.fileno()
        if filelike.tell() != 0:
            return None
        opened = os.fstat(fileno)
        real = os.path.realpath(name)
        named = os.stat(real)
    except (AttributeError, OSError, ValueError):
        return None  # not a file of the OS, or closed, or gone
    if (not stat.S_ISREG(opened.st_mode)
            or (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino)):
        return None
    if response.length is not None and response.length != opened.st_size:
        return None
    root = os.path.realpath(mongrel2_chroot)
    if os.path.commonpath((root, real)) != root or real == root:
        return None
    return "/" + os.path.relpath(real, root), opened.st_size
