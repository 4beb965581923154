"""Logging set-up: logs/wsgid.log in the wsgid 0.7 line format, or stdout."""

import logging
import os
import sys

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
        logs = os.path.join(options.app_path, "logs")
        os.makedirs(logs, exist_ok=True)
        handler = logging.FileHandler(os.path.join(logs, "wsgid.log"))
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if options.debug else logging.INFO)
    logger.propagate = False
    return handler.stream
