"""Loaders find the WSGI application in an app folder.

:func:`load` is the one entry point: each worker calls it once, after the
fork, with the resolved options, and serves the callable it returns.

**Plugins** (see :mod:`wsgid.loaders.plugins`) are read once by the master
with :func:`prepare`, before it chroots, drops privileges and forks, and
their request filters (see :mod:`wsgid.filters`) installed; the workers
inherit both. (Without a :func:`prepare`, :func:`load` reads them itself.)

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

log = logging.getLogger("wsgid")


class LoaderError(Exception):
    """No application could be loaded: the message is one line for the user."""


class Loader:
    """The loader interface (subclassing it is optional)."""

    def can_load(self, app_path):
        """True when this loader recognises the app folder ``app_path``."""
        return False

    def load_app(self, app_path, name):
        """Return the WSGI callable of the app folder ``app_path``."""
        raise NotImplementedError


def builtin_loaders(options):
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
    for loader in builtin_loaders(options) + list(plugin_loaders):
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
    Without this call, :func:`load` reads the plugins in each worker.

    Returns the :class:`~wsgid.loaders.plugins.Plugins` found. Raises
    :class:`LoaderError` for a ``--loader-dir`` that is not a folder."""
    global _prepared
    _add_code_dir(options.app_path)
    found = _discover(options)
    found.install_filters()
    _prepared = found
    return found


def load(options):
    """Return the WSGI callable for ``options``, logging which loader served.

    Also reads the plugins (unless :func:`prepare` did already) and installs
    their request filters."""
    _add_code_dir(options.app_path)
    found = _prepared if _prepared is not None else _discover(options)
    found.install_filters()
    loader = choose(options, found.loaders)
    app = loader.load_app(options.app_path, options.wsgi_app)
    if not callable(app):
        raise LoaderError("%s returned %r, not a WSGI callable" % (describe(loader), app))
    log.info("Application loaded by %s", describe(loader))
    return app


def forget_prepared():
    """Drop what :func:`prepare` found (the next :func:`load` reads the plugins again)."""
    global _prepared
    _prepared = None


_prepared = None


def _add_code_dir(app_path):
    code_dir = os.path.join(app_path, "app")
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)


def _discover(options):
    try:
        found = plugins.discover(options.app_path, getattr(options, "loader_dir", None) or ())
    except NotADirectoryError as exc:
        raise LoaderError(str(exc)) from None
    for hook, installed in found.filters.items():
        for name, _ in installed:
            log.info("Request filter %s: %s", hook, name)
    return found


# Imported now, not when a worker loads: by then the worker may be chrooted or
# no longer allowed to read the interpreter's files.
from wsgid.loaders import django, plugins, pyroutes, wsgiapp  # noqa: E402,F401
from wsgid.loaders.django import DjangoLoader  # noqa: E402
from wsgid.loaders.pyroutes import PyRoutesLoader  # noqa: E402
from wsgid.loaders.wsgiapp import WsgiAppLoader  # noqa: E402
