"""Request filters: plugin code run around every request.

A filter is plain Python code that wsgid runs in the worker around each call
of the application. Filters come from plugins (see :mod:`wsgid.plugins`
for where plugins are found): a plugin module defines one or more of these
module-level functions, under exactly these names:

``pre_request(request, environ)``
    Called before the application, with the parsed mongrel2 message
    (:class:`wsgid.message.Request`: ``.sender``, ``.conn_id``, ``.path``,
    ``.headers`` -- mongrel2's headers dict --, ``.body``) and the WSGI
    environ wsgid built for it. It may change ``environ`` in place, or return
    a new dict that replaces it; returning ``None`` keeps the (changed)
    environ.

``post_request(request, status, headers)``
    Called when the application calls ``start_response``, before anything is
    sent to the client: ``status`` is the status line (``"200 OK"``),
    ``headers`` a list of ``(name, value)`` tuples. Return ``None`` to keep
    them, or a ``(status, headers)`` pair to replace them (to add a header,
    return ``(status, headers + [("X-Name", "value")])``). The body is
    streamed, so a post-request filter does not see it. If the application
    calls ``start_response`` again with ``exc_info`` (PEP 3333), the filter
    is called again with the new status and headers.

``request_exception(request, exc)``
    Called when the application raises, while it is called or while its body
    is read (``exc`` is the exception); wsgid then answers
    ``500 Internal Server Error`` as usual. Its return value is ignored.

A plugin may define any subset of the three; several plugins may define the
same hook, and they run in plugin order (see :mod:`wsgid.plugins`),
each seeing the result of the one before. A filter may also be an object
(given by an entry point) with any of these as methods.

Isolation: a filter that raises is logged (with its traceback, in
``logs/wsgid.log``) and skipped; it never breaks the request. A
``pre_request`` filter works on a copy of the environ and a
``post_request`` filter on a copy of the header list, so the changes of a
filter that raised half way are dropped. A filter that returns something
other than what is described above (say a status that is not ``"NNN
Reason"``, or a header name or value that is not a string or holds a line
break) is logged and skipped too.

Example plugin, ``<app>/plugins/timing.py``::

    import time

    _started = {}

    def pre_request(request, environ):
        _started[request.conn_id] = time.monotonic()

    def post_request(request, status, headers):
        start = _started.pop(request.conn_id, None)
        if start is not None:
            ms = "%.1f ms" % ((time.monotonic() - start) * 1000)
            return status, headers + [("X-Response-Time", ms)]

    def request_exception(request, exc):
        _started.pop(request.conn_id, None)

Filters run in the worker process, once per request, in the worker's main
thread (the one that calls the application); keep them quick.
"""

import functools
import logging

log = logging.getLogger("wsgid")

HOOKS = ("pre_request", "post_request", "request_exception")


def table():
    """An empty filter table: a dict hook -> list of ``(name, callable)``."""
    return {hook: [] for hook in HOOKS}


def install(filter_table):
    """Make ``filter_table`` (see :func:`table`) the filters that run. It is
    used, not copied: :func:`register` adds to it."""
    global _REGISTRY, _pre, _post, _exception
    _REGISTRY = filter_table
    _pre = filter_table["pre_request"]
    _post = filter_table["post_request"]
    _exception = filter_table["request_exception"]


def clear():
    """Forget every registered filter (an empty table runs)."""
    install(table())


clear()  # the workers' filters come from the plugins (wsgid.plugins)


def register(hook, function, name=None):
    """Register ``function`` for ``hook`` (one of :data:`HOOKS`); ``name``
    is what the log calls it (default: its module and name)."""
    if hook not in _REGISTRY:
        raise ValueError("unknown filter hook %r (expected one of %s)" % (hook, ", ".join(HOOKS)))
    if not callable(function):
        raise TypeError("filter %r for %s is not callable" % (function, hook))
    _REGISTRY[hook].append((name or describe(function), function))


def registered(hook=None):
    """The registered filters as ``(name, callable)`` pairs: of one hook, or
    a dict of all hooks."""
    if hook is not None:
        return list(_REGISTRY[hook])
    return {h: list(f) for h, f in _REGISTRY.items()}


def active():
    """True when at least one filter is registered."""
    return bool(_pre or _post or _exception)


def describe(function):
    module = getattr(function, "__module__", None) or "?"
    name = getattr(function, "__qualname__", None) or type(function).__name__
    return "%s.%s" % (module, name)


# -- the runners the worker calls ---------------------------------------------------------
def run_pre_request(request, environ):
    """Run the pre-request filters; return the environ to give the app."""
    for name, function in _pre:
        copy = dict(environ)
        try:
            result = function(request, copy)
        except Exception:
            log.exception("Pre-request filter %s failed; skipped", name)
            continue
        if result is None:
            environ = copy
        elif isinstance(result, dict):
            environ = result
        else:
            log.error("Pre-request filter %s returned %s, not None or a dict; skipped",
                      name, type(result).__name__)
    return environ


def run_post_request(request, status, headers):
    """Run the post-request filters; return the ``(status, headers)`` to send."""
    for name, function in _post:
        try:
            result = function(request, status, list(headers))
        except Exception:
            log.exception("Post-request filter %s failed; skipped", name)
            continue
        if result is None:
            continue
        if _valid_post_result(result):
            status, headers = result[0], list(result[1])
        else:
            log.error("Post-request filter %s returned %r, not None or (status, headers); "
                      "skipped", name, _short(result))
    return status, headers


def wrap_start_response(request, start_response):
    """``start_response`` itself when there is no post-request filter, else a
    wrapper that runs them on the status and headers first."""
    if not _post:
        return start_response
    # A partial, not a closure: Cython compiles no closure in a cpdef function.
    return functools.partial(_filtered_start_response, request, start_response)


def _filtered_start_response(request, start_response, status, headers, exc_info=None):
    status, headers = run_post_request(request, status, headers)
    if exc_info is None:
        return start_response(status, headers)
    return start_response(status, headers, exc_info)


def run_request_exception(request, exc):
    """Tell the exception filters that the application raised ``exc``."""
    for name, function in _exception:
        try:
            function(request, exc)
        except Exception:
            log.exception("Request-exception filter %s failed; skipped", name)


def _valid_post_result(result):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return False
    status, headers = result
    if not (isinstance(status, str) and len(status) >= 4 and status[:3].isdigit()
            and status[3] == " " and _clean(status)):
        return False
    if not isinstance(headers, (list, tuple)):
        return False
    return all(isinstance(h, tuple) and len(h) == 2 and isinstance(h[0], str) and h[0]
               and isinstance(h[1], str) and _clean(h[0]) and _clean(h[1]) for h in headers)


def _clean(text):
    return "\r" not in text and "\n" not in text


def _short(value):
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
