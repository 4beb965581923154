"""Loaders find the WSGI application in an app folder.

A loader is any object with ``can_load(app_path) -> bool`` and
``load_app(app_path, name) -> callable``; ``name`` is ``--wsgi-app`` or None.
"""

import logging
import os
import sys

log = logging.getLogger("wsgid")


class LoaderError(Exception):
    """No application could be loaded: the message is one line for the user."""


def load(options):
    """Return the WSGI callable for ``options``, logging which loader served."""
    from wsgid.loaders.wsgiapp import WsgiAppLoader

    code_dir = os.path.join(options.app_path, "app")
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    if options.wsgi_app:
        loader = WsgiAppLoader()
    else:
        raise LoaderError("no loader can load the app folder %s" % options.app_path)
    app = loader.load_app(options.app_path, options.wsgi_app)
    log.info("Application loaded by %s", type(loader).__name__)
    return app
