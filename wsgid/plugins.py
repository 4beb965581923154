"""Plugins: loaders and request filters that live outside wsgid.

A plugin is a plain Python module. wsgid finds plugins in three places and
reads them in this order:

1. ``<app>/plugins/*.py`` of the app folder, sorted by file name;
2. each ``--loader-dir DIR`` (the option may be repeated; ``loader_dir`` in
   ``wsgid.json`` is a list), in the order given, its ``*.py`` files sorted
   by name;
3. the entry points of installed distributions in the group
   ``wsgid.plugins`` (:data:`ENTRY_POINT_GROUP`), sorted by entry-point
   name. In a ``setup.py``::

       entry_points={"wsgid.plugins": ["myloader = mypkg.wsgid_plugin"]}

   or in ``pyproject.toml``::

       [project.entry-points."wsgid.plugins"]
       myloader = "mypkg.wsgid_plugin"

Files whose name starts with ``_`` or ``.`` are skipped. A plugin file is
imported as a module of its own (``__name__`` is ``wsgid_plugin_<N>_<stem>``),
with ``<app>/app`` already on ``sys.path``. The same file reached twice (say
through ``plugins/`` and a ``--loader-dir``) is read once.

What a plugin module may define:

- **Loaders**: every class *defined in the module* (not one imported into it)
  that has both a ``can_load`` and a ``load_app`` method is instantiated
  once, without arguments; a module-level object with both methods is used
  as it is. Names starting with ``_`` are ignored. The interface is
  described in :mod:`wsgid.loaders`; plugin loaders are asked after the
  built-in PyRoutes and Django loaders, in the order above and, within a
  module, in the order of definition.
- **Request filters**: module-level functions named ``pre_request``,
  ``post_request`` and ``request_exception``; see :mod:`wsgid.filters`.
- **Lifecycle hooks**: module-level functions named ``on_starting``,
  ``when_ready``, ``on_reload``, ``post_fork`` and ``worker_exit``; see
  :mod:`wsgid.hooks`.

An entry point names either a module (read like a plugin file), a loader
class or object (``mypkg.loaders:MyLoader``), or a filter or hook object:
any object with one or more of the methods ``pre_request``,
``post_request``, ``request_exception`` or of the hooks' names.

A plugin that cannot be imported (syntax error, missing dependency, ...) is
logged with its traceback and skipped: the other plugins and the built-in
loaders still work. A ``--loader-dir`` that is not a folder is an error
(:func:`wsgid.loaders.prepare` raises :class:`~wsgid.loaders.LoaderError`);
a missing ``<app>/plugins/`` is not.

Plugins are read once, by the master at start-up, before it chroots
(``--chroot``), drops privileges and forks the workers, which inherit them
(:func:`wsgid.loaders.prepare`): a plugin may live outside the chroot, in a
``--loader-dir`` or in site-packages. A changed plugin is therefore picked
up by a stop and start of wsgid; ``wsgid restart`` and ``wsgid reload``
re-import the application, not the plugins. Plugin code runs in the master
at import time: keep the module's top level light, and import the
application in ``load_app``, not at module level.
"""

import importlib.util
import inspect
import logging
import os
import sys
import types
from importlib import metadata

from wsgid import filters, hooks

log = logging.getLogger("wsgid")

ENTRY_POINT_GROUP = "wsgid.plugins"


class Plugins:
    """What discovery found: ``loaders`` (objects), ``filters`` (a
    :func:`wsgid.filters.table`) and ``hooks`` (a :func:`wsgid.hooks.table`),
    each in plugin order."""

    def __init__(self):
        self.loaders = []
        self.filters = filters.table()
        self.hooks = hooks.table()
        self.sources = []  # where each plugin came from, for the log

    def install(self):
        """Make these filters and hooks the ones that run (replacing any
        before)."""
        filters.install(self.filters)
        hooks.install(self.hooks)


def plugin_dirs(app_path, loader_dirs=()):
    """The folders searched for plugin files, in order: ``<app>/plugins``
    then each ``--loader-dir``. Raises ``NotADirectoryError`` naming a
    ``--loader-dir`` that is not a folder."""
    dirs = [os.path.join(app_path, "plugins")]
    for folder in loader_dirs or ():
        path = os.path.abspath(folder)
        if not os.path.isdir(path):
            raise NotADirectoryError("--loader-dir %s is not a folder" % folder)
        dirs.append(path)
    return dirs


def plugin_files(folder):
    """The plugin files of ``folder``, sorted by name; [] when it is missing."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [os.path.join(folder, name) for name in sorted(names)
            if name.endswith(".py") and not name.startswith(("_", "."))
            and os.path.isfile(os.path.join(folder, name))]


def discover(app_path, loader_dirs=(), entry_points=True):
    """Import every plugin (see the module docstring) and return a
    :class:`Plugins`. Does not install the filters and hooks: call
    :meth:`Plugins.install` for that."""
    found = Plugins()
    seen = set()
    for folder in plugin_dirs(app_path, loader_dirs):
        for path in plugin_files(folder):
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            module = _import_file(path, len(seen))
            if module is not None:
                _scan_module(module, path, found)
    if entry_points:
        for ep in _entry_points():
            origin = "entry point %s = %s" % (ep.name, ep.value)
            try:
                obj = ep.load()
            except Exception:
                log.exception("Plugin %s could not be loaded; skipped", origin)
                continue
            _add_object(obj, origin, found)
    return found


def _entry_points():
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:
        log.exception("Could not list the %s entry points", ENTRY_POINT_GROUP)
        return []
    unique = {}
    for ep in eps:  # a distribution seen twice on sys.path lists its entry points twice
        unique.setdefault((ep.name, ep.value), ep)
    return [unique[key] for key in sorted(unique)]


def _import_file(path, number):
    stem = os.path.splitext(os.path.basename(path))[0]
    safe = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
    name = "wsgid_plugin_%d_%s" % (number, safe)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except Exception:
        sys.modules.pop(name, None)
        log.exception("Plugin %s could not be imported; skipped", path)
        return None
    return module


def is_loader(obj):
    return callable(getattr(obj, "can_load", None)) and callable(getattr(obj, "load_app", None))


def _scan_module(module, origin, found):
    found.sources.append(origin)
    for attr, obj in list(vars(module).items()):
        if attr.startswith("_") or isinstance(obj, types.ModuleType):
            continue
        if inspect.isclass(obj):
            if obj.__module__ == module.__name__ and is_loader(obj):
                _add_loader_class(obj, origin, found)
        elif attr in filters.HOOKS and callable(obj):
            found.filters[attr].append(("%s:%s" % (origin, attr), obj))
        elif attr in hooks.HOOKS and callable(obj):
            found.hooks[attr].append(("%s:%s" % (origin, attr), obj))
        elif is_loader(obj):
            found.loaders.append(obj)
            _tag(obj, origin)


def _add_loader_class(cls, origin, found):
    try:
        loader = cls()
    except Exception:
        log.exception("Loader %s of plugin %s could not be created; skipped",
                      cls.__name__, origin)
        return
    _tag(loader, origin)
    found.loaders.append(loader)


def _add_object(obj, origin, found):
    if isinstance(obj, types.ModuleType):
        _scan_module(obj, origin, found)
        return
    found.sources.append(origin)
    if is_loader(obj):
        if inspect.isclass(obj):
            _add_loader_class(obj, origin, found)
        else:
            _tag(obj, origin)
            found.loaders.append(obj)
        return
    tables = {h: found.filters[h] for h in filters.HOOKS}
    tables.update((h, found.hooks[h]) for h in hooks.HOOKS)
    names = [h for h in tables if callable(getattr(obj, h, None))]
    if inspect.isclass(obj) and names:
        try:
            obj = obj()
        except Exception:
            log.exception("Filter %s of plugin %s could not be created; skipped",
                          obj.__name__, origin)
            return
    for name in names:
        tables[name].append(("%s:%s" % (origin, name), getattr(obj, name)))
    if not names:
        log.warning("Plugin %s is neither a module, a loader, a filter nor a hook object; "
                    "skipped", origin)


def _tag(loader, origin):
    try:
        loader.wsgid_plugin = origin
    except Exception:  # an object that refuses new attributes: only the log is poorer
        pass
