"""The PyRoutes loader: apps written with the ``pyroutes`` micro-framework.

Accepts an app folder whose ``app/`` holds a ``pyroutes_settings.py`` (the
file pyroutes reads its settings from). Loading imports the application's
code so that its ``@route`` decorators register its routes, then returns
``pyroutes.application``. The code imported is every package (a folder with
``__init__.py``) and every module (``*.py``) directly in ``app/``, sorted
by name, except ``pyroutes_settings.py`` itself, names starting with ``.``
or ``_``, ``setup.py``, ``manage.py`` and the ``tests``/``test`` and
``templates`` folders. With ``--wsgi-app`` the named callable is used
instead and this loader is not asked.

It needs the ``pyroutes`` package (``pip install m2wsgid[pyroutes]``; the
0.5 series on PyPI runs on Python 3). Without it, loading fails with one
clear error.
"""

import importlib
import os

from wsgid.loaders.base import Loader, LoaderError

SETTINGS = "pyroutes_settings.py"
_NOT_ROUTES = {"tests", "test", "templates", "setup", "manage", "pyroutes_settings"}


class PyRoutesLoader(Loader):
    def can_load(self, app_path):
        return os.path.isfile(os.path.join(app_path, "app", SETTINGS))

    @staticmethod
    def route_modules(app_path):
        """The names of the modules and packages imported for their routes."""
        code = os.path.join(app_path, "app")
        names = []
        for entry in sorted(os.listdir(code)):
            path = os.path.join(code, entry)
            stem, ext = os.path.splitext(entry)
            if entry.startswith((".", "_")):
                continue
            if os.path.isdir(path):
                if os.path.isfile(os.path.join(path, "__init__.py")) and entry.isidentifier():
                    stem = entry
                else:
                    continue
            elif ext != ".py" or not stem.isidentifier():
                continue
            if stem not in _NOT_ROUTES:
                names.append(stem)
        return names

    def load_app(self, app_path, name=None):
        try:
            import pyroutes
        except ImportError as exc:
            raise LoaderError("%s/app has %s but the pyroutes package cannot be imported "
                              "(%s); pip install 'm2wsgid[pyroutes]'"
                              % (app_path, SETTINGS, exc)) from None
        for module in self.route_modules(app_path):
            importlib.import_module(module)
        return pyroutes.application
