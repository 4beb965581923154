"""The optional access log (``--access-log FILE``, ``-`` for stdout), one
line per request. By default the combined log format and the time the
request took in microseconds::

    127.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "GET /x?a=1 HTTP/1.1" 200 14 "-" "curl/8.0" 1234

``--access-log-format`` takes gunicorn's format: its atoms (``%(h)s``,
``%(r)s``, ``%(D)s``, ``%({header}i)s``... :data:`ATOMS`), with the names
and values gunicorn gives them; or ``json``, one JSON object per line.
``USR1`` reopens the file (:meth:`AccessLog.reopen`).
"""

import base64
import binascii
import json
import os
import sys
import time

# gunicorn's default access log format, and the time taken (microseconds).
DEFAULT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'
JSON = "json"
ATOMS = {  # as gunicorn's docs name them
    "h": "remote address", "l": "'-'", "u": "user name (HTTP basic auth)",
    "t": "date of the request", "r": "status line (GET /x HTTP/1.1)", "m": "request method",
    "U": "URL path without query string", "q": "query string", "H": "protocol",
    "s": "status", "B": "response length", "b": "response length or '-' (CLF format)",
    "f": "referer", "a": "user agent", "T": "request time in seconds",
    "M": "request time in milliseconds", "D": "request time in microseconds",
    "L": "request time in decimal seconds", "p": "process ID",
    "{header}i": "request header", "{header}o": "response header",
    "{variable}e": "environment variable",
}


def check_format(fmt):
    """The one-line reason ``fmt`` is not a format gunicorn's atoms fill,
    or None."""
    if fmt == JSON:
        return None
    try:
        fmt % _Atoms({})
    except (ValueError, TypeError, KeyError) as exc:
        return "%r is not an access log format (%s)" % (fmt, exc)
    return None


class AccessLog:
    def __init__(self, target, fmt=None):
        self.target = target
        self.format = fmt or DEFAULT
        self.json = self.format == JSON
        # Response headers are kept for the log only when it shows some.
        self.reply_headers = "}o" in self.format
        self.stream = sys.stdout if target == "-" else self._open()

    def _open(self):
        return open(self.target, "a", buffering=1)

    def reopen(self):
        """USR1: the file anew (logrotate moved it); stdout stays."""
        if self.target != "-":
            old, self.stream = self.stream, self._open()
            old.close()

    def write(self, environ, target, status, size, reply_headers, duration):
        """``target``: the request target as the client sent it (mongrel2's
        ``URI``), not the path decoded for the app, which hides what was
        asked (``/a%3Fb`` would read ``/a?b``). ``reply_headers``: the
        app's (when :attr:`reply_headers`); ``duration`` in seconds."""
        if self.json:
            line = json.dumps(_record(environ, target, status, size, duration))
        else:
            line = self.format % _Atoms(_atoms(environ, target, status, size, reply_headers,
                                               duration))
        self.stream.write(line + "\n")
        self.stream.flush()


def record_headers(start_response, seen):
    """``start_response`` that also keeps the app's headers in ``seen``."""
    def start(status, headers, exc_info=None):
        seen[:] = headers
        return start_response(status, headers, exc_info)
    return start


def _atoms(environ, target, status, size, reply_headers, duration):
    micro = round(duration * 1000000)
    atoms = {
        "h": environ.get("REMOTE_ADDR") or "-", "l": "-", "u": _user(environ) or "-",
        "t": time.strftime("[%d/%b/%Y:%H:%M:%S %z]"),
        "r": "%s %s %s" % (environ.get("REQUEST_METHOD", "-"), target,
                           environ.get("SERVER_PROTOCOL", "-")),
        "s": status[:3] if status else "-", "m": environ.get("REQUEST_METHOD"),
        "U": environ.get("PATH_INFO"), "q": environ.get("QUERY_STRING"),
        "H": environ.get("SERVER_PROTOCOL"), "b": str(size), "B": size,
        "f": environ.get("HTTP_REFERER", "-"), "a": environ.get("HTTP_USER_AGENT", "-"),
        "T": micro // 1000000, "D": micro, "M": micro // 1000,
        "L": "%d.%06d" % divmod(micro, 1000000), "p": "<%d>" % os.getpid(),
    }
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            atoms["{%s}i" % key[5:].lower().replace("_", "-")] = value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            atoms["{%s}i" % key.lower().replace("_", "-")] = value
        atoms["{%s}e" % key.lower()] = value
    for name, value in reply_headers:
        atoms["{%s}o" % name.lower()] = value
    return atoms


def _record(environ, target, status, size, duration):
    """The ``json`` format's object for one request."""
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "remote_addr": environ.get("REMOTE_ADDR") or None, "user": _user(environ),
            "method": environ.get("REQUEST_METHOD"), "target": target,
            "protocol": environ.get("SERVER_PROTOCOL"),
            "status": int(status[:3]) if status else None, "size": size,
            "referer": environ.get("HTTP_REFERER"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "duration_us": round(duration * 1000000), "pid": os.getpid()}


def _user(environ):
    """The user name of HTTP basic auth, as gunicorn reads it."""
    auth = environ.get("HTTP_AUTHORIZATION")
    if not (isinstance(auth, str) and auth.lower().startswith("basic")):
        return None
    parts = auth.split(" ", 1)
    if len(parts) != 2:
        return None
    try:
        return base64.b64decode(parts[1].strip().encode()).split(b":", 1)[0].decode()
    except (binascii.Error, UnicodeError):
        return None


class _Atoms(dict):
    """Each atom as gunicorn fills it: '-' when unknown, ``{...}`` names in
    any case; strings :func:`_quote`-d, so that a request stays on one line."""

    def __init__(self, atoms):
        super().__init__((key, _quote(value) if isinstance(value, str) else value)
                         for key, value in atoms.items())

    def __missing__(self, key):
        if key.startswith("{") and key.lower() in self:
            return self[key.lower()]
        return "-"


def _quote(text):
    """Keep one request on one line, whatever bytes the client sent."""
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
