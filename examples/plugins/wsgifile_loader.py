"""A wsgid loader plugin: serve ``app/wsgi.py``'s ``application``.

Put this file in an app folder's ``plugins/`` or pass its folder with
``--loader-dir examples/plugins``. wsgid asks it after the built-in
PyRoutes and Django loaders, so any app folder whose ``app/wsgi.py`` defines
``application`` is served without ``--wsgi-app``.
"""

import importlib
import os


class WsgiFileLoader:
    def can_load(self, app_path):
        # Cheap, and without importing the application.
        return os.path.isfile(os.path.join(app_path, "app", "wsgi.py"))

    def load_app(self, app_path, name):
        # <app>/app is on sys.path already.
        return importlib.import_module("wsgi").application
