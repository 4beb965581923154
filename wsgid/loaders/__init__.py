"""Loaders find the WSGI application in an app folder.

**Plugins** (see :mod:`wsgid.plugins`) are read once by the master with
:func:`prepare`, before it chroots, drops privileges and forks, and their
request filters (see :mod:`wsgid.filters`) and lifecycle hooks
(:mod:`wsgid.hooks`) installed; the workers inherit
both. Each worker then calls :func:`load` once, after the fork, with the
resolved options and those plugins, and serves the callable it returns.

**Order.** ``<app>/app`` is put first on ``sys.path``; then the application
comes from

1. ``--wsgi-app NAME`` when given: ``pkg.mod.attr`` (the 0.7 form) or
   ``pkg.mod:attr`` (:mod:`wsgid.loaders.wsgiapp`); no other loader is asked;
2. else, with ``--django``, the Django loader, forced;
3. else the first loader whose ``can_load`` accepts the app folder, asked in
   this order: PyRoutes (``app/pyroutes_settings.py`` exists,
   :mod:`wsgid.loaders.pyroutes`), Django (a Django project under ``app/``,
   :mod:`wsgid.loaders.django`), then the plugin loaders in plugin order
   (``<app>/plugins/``, each ``--loader-dir``, then the ``wsgid.plugins``
   entry points).

When no loader accepts the folder, :class:`LoaderError` says so in one line
naming the app folder. ``logs/wsgid.log`` gets the line ``Application loaded
by <LoaderClass>`` (with the plugin it came from, for plugin loaders).

**The loader interface.** A loader is any object with two methods:

``can_load(app_path) -> bool``
    Whether this loader recognises the app folder. ``app_path`` is the
    absolute path of the app folder (``--app-path``), not of its ``app/``
    sub-folder: look for the code under ``os.path.join(app_path, "app")``.
    It must be cheap and must not import the application. A ``can_load``
    that raises is logged and counts as "no".

``load_app(app_path, name) -> callable``
    Import the application and return its WSGI callable. ``app_path`` as
    above; ``name`` is the ``--wsgi-app`` value (``None`` unless the
    ``--wsgi-app`` loader is used). Raise :class:`LoaderError` with a
    one-line message for a problem the user must fix; any other exception is
    logged with its traceback. Either way the worker exits and is replaced
    with growing back-off.

Subclassing :class:`Loader` is optional; it only documents the interface.
Loaders run in the worker, after the fork and after ``envs`` from
wsgid.json have been put into ``os.environ``.
"""

import logging
import os
import sys

from wsgid import plugins
# The loaders are imported now, not when a worker loads: by then the worker
# may be chrooted or no longer allowed to read the interpreter's files.
from wsgid.loaders.base import Loader, LoaderError
from wsgid.loaders.django import DjangoLoader
from wsgid.loaders.pyroutes import PyRoutesLoader
from wsgid.loaders.wsgiapp import WsgiAppLoader, find_object

__all__ = ["Loader", "LoaderError", "builtin_loaders", "choose", "load", "prepare"]

log = logging.getLogger("wsgid")


def builtin_loaders():
    """The built-in auto-detecting loaders, in the order they are asked."""
    return [PyRoutesLoader(), DjangoLoader()]


def describe(loader):
    origin = getattr(loader, "wsgid_plugin", None)
    name = type(loader).__name__
    return "%s (plugin %s)" % (name, origin) if origin else name


def choose(options, plugin_loaders=()):
    """The loader for ``options``: see the order in the module docstring."""
    if options.wsgi_app:
        return WsgiAppLoader()
    if getattr(options, "django", False):
        return DjangoLoader(force=True)
    for loader in builtin_loaders() + list(plugin_loaders):
        try:
            if loader.can_load(options.app_path):
                return loader
        except Exception:
            log.exception("Loader %s failed in can_load; skipped", describe(loader))
    raise LoaderError("no loader can load the app folder %s: no --wsgi-app, no "
                      "app/pyroutes_settings.py, no Django project under app/, and no plugin "
                      "loader accepts it" % options.app_path)


def prepare(options):
    """Read the plugins now, in the master, before it chroots or drops
    privileges and forks (SPEC: the master loads plugins): the workers
    inherit them, so a ``--loader-dir`` outside the chroot and plugins
    installed in site-packages keep working. Their filters are installed.

    Returns the :class:`~wsgid.plugins.Plugins` found, for :func:`load`.
    Raises :class:`LoaderError` for a ``--loader-dir`` that is not a folder."""
    _add_code_dir(options.app_path)
    try:
        found = plugins.discover(options.app_path, getattr(options, "loader_dir", None) or ())
    except NotADirectoryError as exc:
        raise LoaderError(str(exc)) from None
    for kind, table in (("Request filter", found.filters), ("Lifecycle hook", found.hooks)):
        for hook, installed in table.items():
            for name, _ in installed:
                log.info("%s %s: %s", kind, hook, name)
    found.install()
    return found


def load(options, found):
    """Return the WSGI callable for ``options``, logging which loader served.

    ``found`` is what :func:`prepare` returned: its loaders are asked after
    the built-in ones, and its request filters are (re)installed."""
    _add_code_dir(options.app_path)
    found.install()
    loader = choose(options, found.loaders)
    app = loader.load_app(options.app_path, options.wsgi_app)
    if not callable(app):
        raise LoaderError("%s returned %r, not a WSGI callable" % (describe(loader), app))
    log.info("Application loaded by %s", describe(loader))
    return app


def websocket_handler(options):
    """The WebSocket handler (see wsgid.wsevents) after :func:`load`:
    ``--websocket-handler``, else a Django project's WSGID_WEBSOCKET_HANDLER
    setting; None when neither names one."""
    name, origin = getattr(options, "websocket_handler", None), "--websocket-handler"
    if not name and "django.conf" in sys.modules:
        settings = sys.modules["django.conf"].settings
        if settings.configured:
            name, origin = getattr(settings, "WSGID_WEBSOCKET_HANDLER", None), \
                "WSGID_WEBSOCKET_HANDLER"
    if not name:
        return None
    handler = find_object(name, origin)
    log.info("WebSocket handler: %s", name)
    return handler


def _add_code_dir(app_path):
    code_dir = os.path.join(app_path, "app")
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
