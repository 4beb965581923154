"""The Django loader.

**Detection.** It accepts the app folder when ``--django`` is given
(``"django": true`` in wsgid.json), or when some folder directly under
``<app>/app/`` is a Django project: a package (it has ``__init__.py``, and
its name is a Python identifier) with a ``settings.py`` module or a
``settings/`` package (``settings/__init__.py``). Folders are tried in
sorted order and those whose name starts with ``.`` (``.git``, ``.venv``)
are skipped; the first project found wins. The usual layout::

    <app>/app/manage.py
    <app>/app/mysite/__init__.py
    <app>/app/mysite/settings.py      (or mysite/settings/__init__.py)
    <app>/app/mysite/urls.py
    <app>/app/polls/...               (the project's apps, importable from app/)

**Settings module.** ``DJANGO_SETTINGS_MODULE`` is set to
``<project>.settings`` only when it is not already set, by the environment
wsgid was started in or by ``envs`` in wsgid.json (so a project can pick
``mysite.settings.production`` that way). ``<app>/app`` is first on
``sys.path``; ``<app>/app/<project>`` is appended to it as well, as wsgid
0.7 did, for older projects that import their modules without the project
prefix. With ``--django`` and no project folder, ``DJANGO_SETTINGS_MODULE``
must be set.

**django.json.** ``<app>/django.json``, when present, is a JSON object whose
keys are Django settings; it is applied onto the loaded settings before the
application is created, with the rules of wsgid 0.7:

- an object onto a dict setting: the dict is updated key by key (shallow);
- a list onto a list or tuple setting: the setting is extended (and keeps
  its type);
- anything else (or a setting that does not exist yet): replaced.

For instance ``{"DEBUG": false, "ALLOWED_HOSTS": ["example.org"],
"CACHES": {"default": {...}}}`` replaces ``DEBUG``, adds a host and
replaces only the ``default`` cache. A django.json that is not valid JSON,
or not a JSON object, is logged as an error and ignored: the settings are
then used as they are.

**Application.** The loader returns Django's own
``django.core.wsgi.get_wsgi_application()`` (which runs ``django.setup()``).
After it, the ``wsgid`` logger is re-enabled in case the project's
``LOGGING`` disabled existing loggers.

**Supported Django.** 4.2 LTS to 6.x, whatever the Python in use can
install: 4.2-5.2 on Python 3.10 and 3.11 (5.2 LTS is what installs there),
5.2 and 6.x on Python 3.12 and later. The tests run with 5.2 on Python 3.11
and, in CI where a Python 3.12 is found, with the newest release (6.1 when
this was written); 4.2 passed them too. Django is an optional dependency:
``pip install 'm2wsgid[django]'``.
"""

import logging
import os
import sys

from wsgid import appfolder
from wsgid.loaders.base import Loader, LoaderError

log = logging.getLogger("wsgid")

SETTINGS_ENV = "DJANGO_SETTINGS_MODULE"
OVERRIDES = "django.json"


def find_project(app_path):
    """The name of the first Django project folder under ``<app>/app``, or None."""
    code = os.path.join(app_path, "app")
    try:
        names = sorted(os.listdir(code))
    except (FileNotFoundError, NotADirectoryError):
        return None
    for name in names:
        if name.startswith(".") or not name.isidentifier():
            continue
        folder = os.path.join(code, name)
        if not os.path.isfile(os.path.join(folder, "__init__.py")):
            continue
        if (os.path.isfile(os.path.join(folder, "settings.py"))
                or os.path.isfile(os.path.join(folder, "settings", "__init__.py"))):
            return name
    return None


def read_overrides(app_path):
    """The settings of ``<app>/django.json`` as a dict; {} when absent, and
    {} (logged) when it is not a valid JSON object."""
    try:
        return appfolder.read_json_object(os.path.join(app_path, OVERRIDES))
    except ValueError as exc:
        log.error("Ignored %s", exc)
        return {}


def merge_value(current, value):
    """The 0.7 rule for one setting: dict onto dict updates, list onto list
    or tuple extends, anything else replaces."""
    if isinstance(value, dict) and isinstance(current, dict):
        merged = dict(current)
        merged.update(value)
        return merged
    if isinstance(value, list) and isinstance(current, (list, tuple)):
        return current + type(current)(value)
    return value


def apply_overrides(settings, overrides):
    """Apply ``overrides`` onto ``settings`` (any object with attributes,
    Django's ``django.conf.settings`` in practice)."""
    missing = object()
    for key, value in overrides.items():
        current = getattr(settings, key, missing)
        setattr(settings, key, value if current is missing else merge_value(current, value))


class DjangoLoader(Loader):
    def __init__(self, force=False):
        self.force = force

    def can_load(self, app_path):
        return self.force or find_project(app_path) is not None

    def load_app(self, app_path, name=None):
        project = find_project(app_path)
        if project is not None:
            project_dir = os.path.join(app_path, "app", project)
            if project_dir not in sys.path:
                sys.path.append(project_dir)
        if not os.environ.get(SETTINGS_ENV):
            if project is None:
                raise LoaderError("--django: no Django project (a package with settings) under "
                                  "%s and %s is not set" % (os.path.join(app_path, "app"),
                                                            SETTINGS_ENV))
            os.environ[SETTINGS_ENV] = project + ".settings"
        log.info("Django settings module: %s", os.environ[SETTINGS_ENV])
        try:
            import django
            from django.conf import settings
            from django.core.wsgi import get_wsgi_application
        except ImportError as exc:
            raise LoaderError("%s is a Django project but Django cannot be imported (%s); "
                              "pip install 'm2wsgid[django]'" % (app_path, exc)) from None
        overrides = read_overrides(app_path)
        if overrides:
            settings.INSTALLED_APPS  # noqa: B018 -- imports the settings module now
            apply_overrides(settings, overrides)
            log.info("Applied %s to the Django settings: %s", OVERRIDES,
                     ", ".join(sorted(overrides)))
        app = get_wsgi_application()
        wsgid_logger = logging.getLogger("wsgid")
        if wsgid_logger.disabled:
            wsgid_logger.disabled = False
            log.warning("The Django LOGGING setting disabled the wsgid logger; re-enabled it")
        log.info("Django %s", django.get_version())
        return app
