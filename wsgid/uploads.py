"""mongrel2 async uploads: the temp file mongrel2 wrote, checked and opened.

For a body over ``limits.content_length`` mongrel2 sends the headers twice:
first with ``x-mongrel2-upload-start: PATH`` (ignored here), then with
``x-mongrel2-upload-done: PATH`` once the file is complete. PATH is inside
mongrel2's chroot: wsgid reads it under ``--mongrel2-chroot``, or without
that option as it is (the upload folder mounted at the same path for both).
"""

import logging
import os
import stat

log = logging.getLogger("wsgid")

START = "x-mongrel2-upload-start"
DONE = "x-mongrel2-upload-done"
# Not where mongrel2 spools: an upload path into them is refused.
KERNEL_TREES = ("/proc", "/sys", "/dev")


class UploadRefused(Exception):
    """The upload cannot be served: ``status`` is the HTTP reply to give."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status


def resolve(headers, mongrel2_chroot):
    """Return the real path of a finished upload, or raise UploadRefused.

    Start and done must name the same file. With ``mongrel2_chroot`` the path
    is read under it; without, as a path of this host (see :func:`_on_host`).
    """
    start, done = headers.get(START), headers.get(DONE)
    if not isinstance(done, str) or start != done:
        raise UploadRefused("400 Bad Request", "upload start and done paths differ")
    if "\0" in done:
        raise UploadRefused("400 Bad Request", "upload path holds a NUL byte")
    if mongrel2_chroot:
        return _in_chroot(done, mongrel2_chroot)
    return _on_host(done)


def _in_chroot(done, mongrel2_chroot):
    """The path must stay inside ``mongrel2_chroot`` once every ``..`` and
    symlink is resolved."""
    root = os.path.realpath(mongrel2_chroot)
    path = os.path.normpath(os.path.join(root, done.lstrip("/")))
    for candidate in (path, os.path.realpath(path)):
        if os.path.commonpath((root, candidate)) != root or candidate == root:
            raise UploadRefused("400 Bad Request",
                                "upload path %r is outside the mongrel2 chroot" % done)
    return path


def _on_host(done):
    """mongrel2 and wsgid see the upload folder at the same absolute path (a
    shared mount): the path is used as it is. mongrel2 reports its
    ``upload.temp_store`` folder plus a file name, so a path that is not its
    own real path (``..``, ``.``, a symlink anywhere along it) is refused,
    and so is one in the kernel's file systems."""
    if not done.startswith("/"):
        raise UploadRefused("400 Bad Request", "upload path %r is not absolute" % done)
    real = os.path.realpath(done)
    for candidate in (os.path.normpath(done), real):
        for top in KERNEL_TREES:
            if os.path.commonpath((top, candidate)) == top:
                raise UploadRefused("400 Bad Request", "upload path %r is in %s" % (done, top))
    if real != done:
        raise UploadRefused("400 Bad Request",
                            "upload path %r is not a real path (.. or a symlink)" % done)
    return done


def describe(mongrel2_chroot):
    """The start-up line saying how upload paths are read."""
    if mongrel2_chroot:
        return "Async uploads: paths read under mongrel2's chroot %s" % mongrel2_chroot
    return ("Async uploads: paths read as absolute paths of this host "
            "(no --mongrel2-chroot: the upload folder is shared at the same path)")


def open_upload(path, headers, body):
    """Open the upload for reading; a symlink (mongrel2 writes none) is
    refused, even one swapped in since :func:`resolve` looked.

    mongrel2 passes client headers through, so a client can send its own
    upload headers: the real done message has an empty body and a file of
    exactly Content-Length bytes (a chunked body has none to compare; a
    client that fakes the headers on one gets mongrel2's own pair too, and
    the repeated header is refused by :func:`resolve`).
    """
    if body:
        raise UploadRefused("400 Bad Request", "upload done message with a body")
    # mongrel2 spools a Transfer-Encoding of exactly "chunked" (it passes
    # "xchunked" or "gzip, chunked" through, with the client's own headers),
    # or a body over limits.content_length: never Content-Length 0.
    chunked = headers.get("transfer-encoding") == "chunked"
    if not chunked and headers.get("content-length") in (None, "0"):
        raise UploadRefused("400 Bad Request", "upload headers on a request without a body")
    try:
        # O_NONBLOCK: a FIFO must not block the worker (S_ISREG refuses it).
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise UploadRefused("400 Bad Request", "upload file unusable: %s" % exc.strerror) from None
    info = os.fstat(fd)
    if chunked:
        length = str(info.st_size)  # mongrel2 spools every chunked body
    else:
        length = headers.get("content-length")
    if not stat.S_ISREG(info.st_mode) or str(info.st_size) != length:
        os.close(fd)
        raise UploadRefused("400 Bad Request",
                            "upload file is not a regular file of Content-Length bytes")
    return os.fdopen(fd, "rb")


def remove(path):
    """Delete the upload once its request is over; never raises."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.error("Could not delete upload file %s: %s", path, exc.strerror)
