"""The optional access log (``--access-log FILE``, ``-`` for stdout), one
line per request in the combined log format::

    127.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "GET /x?a=1 HTTP/1.1" 200 14 "-" "curl/8.0"
"""

import sys
import time


class AccessLog:
    def __init__(self, target):
        self.stream = sys.stdout if target == "-" else open(target, "a", buffering=1)

    def write(self, environ, target, status, size):
        """``target``: the request target as the client sent it (mongrel2's
        ``URI``), not the path decoded for the app, which hides what was
        asked (``/a%3Fb`` would read ``/a?b``)."""
        self.stream.write('%s - %s [%s] "%s %s %s" %s %s "%s" "%s"\n' % (
            environ.get("REMOTE_ADDR") or "-",
            environ.get("REMOTE_USER") or "-",
            time.strftime("%d/%b/%Y:%H:%M:%S %z"),
            environ.get("REQUEST_METHOD", "-"), _quote(target),
            environ.get("SERVER_PROTOCOL", "-"),
            status[:3] if status else "-",
            size if size else "-",
            _quote(environ.get("HTTP_REFERER", "-")),
            _quote(environ.get("HTTP_USER_AGENT", "-"))))
        self.stream.flush()


def _quote(text):
    """Keep one request on one line, whatever bytes the client sent."""
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
