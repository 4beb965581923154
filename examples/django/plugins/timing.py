"""A wsgid request-filter plugin: adds ``X-Response-Time`` to every response.

wsgid reads every ``*.py`` of the app folder's ``plugins/`` folder; module
functions named ``pre_request``, ``post_request`` and ``request_exception``
become request filters (see ``wsgid.filters``).
"""

import time

_started = {}


def pre_request(request, environ):
    _started[request.conn_id] = time.monotonic()


def post_request(request, status, headers):
    started = _started.pop(request.conn_id, None)
    if started is not None:
        elapsed = "%.1f ms" % ((time.monotonic() - started) * 1000)
        return status, headers + [("X-Response-Time", elapsed)]
    return None


def request_exception(request, exc):
    _started.pop(request.conn_id, None)
