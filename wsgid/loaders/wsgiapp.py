"""The ``--wsgi-app`` loader: import ``pkg.mod.attr`` or ``pkg.mod:attr``."""

import importlib

from wsgid.loaders.base import LoaderError


class WsgiAppLoader:
    def can_load(self, app_path):
        return False  # only used when --wsgi-app names the callable

    def load_app(self, app_path, name):
        return find_object(name, "--wsgi-app", "callable", callable)


def find_object(name, origin, what="object", fits=lambda found: found is not None):
    """The object ``pkg.mod.attr`` or ``pkg.mod:attr`` names; LoaderError
    (saying ``origin``, the option or setting) when there is none that
    ``fits``."""
    module_name, sep, attr = name.partition(":")
    if not sep:
        module_name, _, attr = name.rpartition(".")
    if not module_name or not attr:
        raise LoaderError("%s %s: expected pkg.mod.attr or pkg.mod:attr" % (origin, name))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LoaderError("%s %s: cannot import %s: %s"
                          % (origin, name, module_name, exc)) from None
    found = getattr(module, attr, None)
    if not fits(found):
        raise LoaderError("%s %s: %s has no %s %s" % (origin, name, module_name, what, attr))
    return found
