"""Logging set-up: logs/wsgid.log in the wsgid 0.7 line format, or stdout."""

import logging
import os
import sys

from wsgid.options import OptionError

FORMAT = "%(asctime)s - %(name)s [pid=%(process)d] - %(levelname)s - %(message)s"


def setup(options):
    """Route the "wsgid" logger to stdout (``--no-daemon --stdout``) or to
    ``<app>/logs/wsgid.log``; return the handler's stream."""
    logger = logging.getLogger("wsgid")
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
    logger.setLevel(logging.DEBUG if options.debug else logging.INFO)
    logger.propagate = False
    return handler.stream
