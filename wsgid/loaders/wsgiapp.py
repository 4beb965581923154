"""The ``--wsgi-app`` loader: import ``pkg.mod.attr`` or ``pkg.mod:attr``."""

import importlib

from wsgid.loaders.base import LoaderError


class WsgiAppLoader:
    def can_load(self, app_path):
        return False  # only used when --wsgi-app names the callable

    def load_app(self, app_path, name):
        module_name, sep, attr = name.partition(":")
        if not sep:
            module_name, _, attr = name.rpartition(".")
        if not module_name or not attr:
            raise LoaderError("--wsgi-app %s: expected pkg.mod.attr or pkg.mod:attr" % name)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise LoaderError("--wsgi-app %s: cannot import %s: %s"
                              % (name, module_name, exc)) from None
        app = getattr(module, attr, None)
        if not callable(app):
            raise LoaderError("--wsgi-app %s: %s has no callable %s" % (name, module_name, attr))
        return app
