"""wsgid: a pre-fork WSGI gateway for the mongrel2 web server."""

__version__ = "0.8.0"
