"""mongrel2 async uploads: the temp file mongrel2 spooled, proven its own,
opened, and deleted after the request.

For a body over ``limits.content_length``, or a chunked one, mongrel2
writes the body to a file it makes with ``mkstemp`` from its
``upload.temp_store`` template (``/tmp/upload.XXXXXX``), then sends the
request twice: with ``x-mongrel2-upload-start: PATH`` (ignored here), and
with ``x-mongrel2-upload-done: PATH`` too once the file is complete.

mongrel2 passes a client's own headers through, so these headers prove
nothing. A file is taken only when it is one mongrel2 wrote for this
request: named as the template names files (the operator gives the template
with ``--mongrel2-upload-dir``), directly in that folder, opened beneath a
descriptor of the folder without following a link, a regular file with a
single link, owned by the folder's owner (the account mongrel2 runs as),
and of the request's size. Anything else is refused and touches nothing.
"""

import logging
import os
import re
import stat

log = logging.getLogger("wsgid")

START = "x-mongrel2-upload-start"
DONE = "x-mongrel2-upload-done"
OPTION = "--mongrel2-upload-dir"
# What glibc's mkstemp puts in place of the template's six X.
_SUFFIX = re.compile(r"[A-Za-z0-9]{6}\Z")


class UploadRefused(Exception):
    """The upload cannot be served: ``status`` is the HTTP reply to give."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status


def _bad_request(reason):
    return UploadRefused("400 Bad Request", reason)


class Spool:
    """mongrel2's upload folder, from its ``upload.temp_store`` template
    (read under ``mongrel2_chroot`` when given). ValueError for a template
    mongrel2 could not use."""

    def __init__(self, template, mongrel2_chroot=None):
        folder, name = os.path.split(template)
        if not template.startswith("/") or not name.endswith("XXXXXX") or "\0" in template:
            raise ValueError("%s %r is not mongrel2's upload.temp_store: an absolute path "
                             "ending in XXXXXX, as /tmp/upload.XXXXXX" % (OPTION, template))
        self.template = template
        self.prefix = name[:-6]
        self.folder = os.path.join(mongrel2_chroot, folder.lstrip("/")) if mongrel2_chroot \
            else folder

    def name_of(self, path):
        """The file name in the folder of a path mongrel2 made from the template."""
        if (len(path) != len(self.template) or not path.startswith(self.template[:-6])
                or not _SUFFIX.match(path, len(path) - 6)):
            raise _bad_request("upload path %r is not one mongrel2 makes from %s"
                               % (path, self.template))
        return self.prefix + path[-6:]  # one component: no "/" in it

    def describe(self):
        """The start-up line saying where uploads are taken from."""
        return ("Async uploads: files named %s in %s, owned by the folder's owner"
                % (os.path.basename(self.template), self.folder))


#: The start-up warning without the option.
OFF = ("Async uploads: off until %s names mongrel2's upload.temp_store "
       "(each is answered 500)" % OPTION)


def spool(options):
    """The :class:`Spool` the options name, or None (uploads off)."""
    if not options.mongrel2_upload_dir:
        return None
    return Spool(options.mongrel2_upload_dir, options.mongrel2_chroot)


def expected_size(headers):
    """The size of the file mongrel2 spooled for these headers, None for a
    chunked body (any size); UploadRefused when mongrel2 spools none."""
    length = headers.get("content-length")
    if length is not None:  # mongrel2 spools by Content-Length when there is one
        if not length.isdigit() or int(length) == 0:
            raise _bad_request("upload headers on a request without a body")
        return int(length)
    encoding = headers.get("transfer-encoding")
    if isinstance(encoding, list):  # mongrel2 reads the first (the request is refused)
        encoding = encoding[0]
    if encoding != "chunked":
        raise _bad_request("upload headers on a request without a body")
    return None


class Upload:
    """An open upload file; :meth:`remove` closes it and deletes it."""

    def __init__(self, spool, headers, body):
        """Raise UploadRefused unless the done message names a file
        mongrel2 spooled (see the module's docstring)."""
        if spool is None:
            raise UploadRefused("500 Internal Server Error",
                                "%s is not set (mongrel2's upload.temp_store)" % OPTION)
        start, done = headers.get(START), headers.get(DONE)
        if not isinstance(done, str) or start != done:
            raise _bad_request("upload start and done paths differ")
        if body:
            raise _bad_request("upload done message with a body")
        size = expected_size(headers)
        self.name = spool.name_of(done)
        self.inode = None  # (st_dev, st_ino) of the file opened: what remove() deletes
        try:
            self.folder = os.open(spool.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise UploadRefused("500 Internal Server Error", "upload folder %s: %s"
                                % (spool.folder, exc.strerror)) from None
        try:
            self.file = self._open(size)
        except BaseException:
            os.close(self.folder)
            raise

    def _open(self, size):
        # The name is one component: O_NOFOLLOW refuses a link at it, and
        # there is no other to follow (openat2 would add nothing).
        # O_NONBLOCK: a FIFO must not block the worker (S_ISREG refuses it).
        try:
            fd = os.open(self.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
                         | os.O_NOCTTY, dir_fd=self.folder)
        except OSError as exc:
            raise _bad_request("upload file %s unusable: %s" % (self.name, exc.strerror)) from None
        info, owner = os.fstat(fd), os.fstat(self.folder).st_uid
        # One link: not a link planted to another file of mongrel2's account.
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_uid != owner \
                or (size is not None and info.st_size != size):
            os.close(fd)
            raise _bad_request("upload file %s is not a regular file of the upload folder's "
                               "owner (uid %d), with one link, of the request's size"
                               % (self.name, owner))
        self.inode = (info.st_dev, info.st_ino)
        return os.fdopen(fd, "rb")

    def remove(self):
        """Close and delete the file, if its name is still the inode opened;
        never raises."""
        try:
            self.file.close()
            info = os.stat(self.name, dir_fd=self.folder, follow_symlinks=False)
            if (info.st_dev, info.st_ino) == self.inode:
                os.unlink(self.name, dir_fd=self.folder)
            else:
                log.error("Upload file %s was replaced during its request: left alone",
                          self.name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("Could not delete upload file %s: %s", self.name, exc.strerror)
        finally:
            os.close(self.folder)
