"""The loader interface and its error, apart so that the loaders import them
without importing :mod:`wsgid.loaders`, which imports the loaders."""


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
