"""Logging set-up: logs/wsgid.log in the wsgid 0.7 line format, or stdout.

A daemon's standard output and error -- the app's ``print``, a Django
``console`` handler, ``wsgi.errors`` -- go to wsgid.log too, each line
tagged with the time, the pid and ``STDOUT`` or ``STDERR``
(:class:`Lines`); writes below Python's (C code) land there untagged.
``USR1`` reopens the file (:func:`reopen`), for logrotate.
"""

import io
import logging
import os
import sys

from wsgid import environ
from wsgid.options import OptionError

FORMAT = "%(asctime)s - %(name)s [pid=%(process)d] - %(levelname)s - %(message)s"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}

logger = logging.getLogger("wsgid")
_requested = False  # USR1 came: reopen at the next chance (see request_reopen)


def setup(options):
    """Route the "wsgid" logger to stdout (``--no-daemon --stdout``) or to
    ``<app>/logs/wsgid.log``, and a daemon's stdout and stderr with it;
    return the handler's stream."""
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    if options.no_daemon and options.stdout:
        handler = logging.StreamHandler(sys.stdout)
    else:
        path = os.path.join(options.app_path, "logs", "wsgid.log")
        try:
            handler = logging.FileHandler(path)
        except OSError as exc:
            raise OptionError("cannot open the log file %s: %s"
                              % (path, exc.strerror or exc)) from None
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if options.debug else LEVELS[options.log_level])
    logger.propagate = False
    if not options.no_daemon:
        sys.stdout, sys.stderr = Lines(handler, "STDOUT", 1), Lines(handler, "STDERR", 2)
        environ.errors_to(sys.stderr)
        _point_fds(handler)
    return handler.stream


def _point_fds(handler):
    """fds 1 and 2 (a daemon's: /dev/null) to the log file."""
    for fd in (1, 2):
        os.dup2(handler.stream.fileno(), fd)


def request_reopen(signum=None, frame=None):
    """The USR1 handler: only a note (the handler may have come in the
    middle of a write to the file); :func:`reopen_if_requested` acts."""
    global _requested
    _requested = True


def reopen_if_requested():
    """Reopen when USR1 came since the last call; True then."""
    global _requested
    if not _requested:
        return False
    _requested = False
    reopen()
    return True


def reopen():
    """wsgid.log anew, where logrotate moved the old one (a daemon's fds 1
    and 2 too); on failure, the old one is kept, and says why."""
    for handler in logger.handlers:
        if not isinstance(handler, logging.FileHandler):
            continue
        with handler.lock:
            try:
                stream = handler._open()
            except OSError as exc:
                logger.error("Cannot reopen %s (logging on to the old file): %s",
                             handler.baseFilename, exc.strerror or exc)
                continue
            handler.stream, old = stream, handler.stream
            old.close()
            if isinstance(sys.stderr, Lines):
                _point_fds(handler)


class Lines(io.TextIOBase):
    """A daemon's ``sys.stdout`` or ``sys.stderr``: each line written
    becomes a line of wsgid.log, named ``app``, tagged with the pid of the
    process that wrote it and ``name``; whatever the log level."""

    def __init__(self, handler, name, fd):
        self.handler, self.name, self.fd = handler, name, fd
        self.pending = ""
        self.busy = False  # a failing handler reports to sys.stderr: this

    def writable(self):
        return True

    def fileno(self):
        """For code that writes below Python (faulthandler): the fd, which
        goes to the file untagged."""
        return self.fd

    def write(self, text):
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self):
        if self.pending:
            self._emit(self.pending)
            self.pending = ""

    def _emit(self, line):
        if self.busy:
            return
        self.busy = True
        try:
            record = logging.LogRecord("app", logging.INFO, "", 0, line, None, None)
            record.levelname = self.name
            self.handler.handle(record)
        finally:
            self.busy = False
