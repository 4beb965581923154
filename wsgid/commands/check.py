"""``wsgid check``: load the application exactly as a worker of ``wsgid
start`` would -- same wsgid.json, same entry of the app folder, same drop
to its owner and ``--chroot``, same plugins, filters and loader, same
``envs`` -- and call nothing. Exit 0 (``Application in DIR loads: ...``), or 1
with the error (its traceback when the application raised). Run it before
``wsgid reload`` (see docs/deployment.rst).

The application's code runs, so it runs as ``wsgid start --no-daemon``
does: outside root's terminal (:mod:`wsgid.session`).
"""

import logging
import sys
import traceback

from wsgid import options as opts, privileges, session
from wsgid.commands import app_path_given
from wsgid.commands.start import prepare
from wsgid.loaders import LoaderError
from wsgid.log import FORMAT
from wsgid.worker import load_app


def run(given):
    folder = privileges.enter(app_path_given(given), given.get("run_as_root", False))
    options = opts.resolve(given, folder=folder)
    return session.foreground(lambda: _check(options, folder))


def _check(options, folder):
    options.app_path = privileges.become_owner(folder, options.chroot)
    logger = logging.getLogger("wsgid")
    handler = logging.StreamHandler(sys.stderr)  # what the loaders say
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    found = prepare(options)  # LoaderError: one line, as ``start`` says it
    try:
        app = load_app(options, found)
    except LoaderError:
        raise
    except Exception:
        traceback.print_exc()
        print("wsgid: error: the application in %s does not load" % options.app_path,
              file=sys.stderr)
        return 1
    print("Application in %s loads: %r" % (options.app_path, app))
    return 0
