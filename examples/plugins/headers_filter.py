"""A wsgid request-filter plugin: a request id in, security headers out.

- ``pre_request`` may change the environ before the application sees it;
- ``post_request`` sees the status and headers the application gave and may
  return new ones;
- ``request_exception`` is told when the application raised.

A filter that raises is logged and skipped; the request goes on.
"""

import logging
import uuid

log = logging.getLogger("wsgid")


def pre_request(request, environ):
    environ.setdefault("HTTP_X_REQUEST_ID", uuid.uuid4().hex)
    return environ


def post_request(request, status, headers):
    names = {name.lower() for name, _ in headers}
    extra = [(name, value) for name, value in (("X-Content-Type-Options", "nosniff"),
                                               ("X-Frame-Options", "DENY"))
             if name.lower() not in names]
    return status, headers + extra


def request_exception(request, exc):
    log.warning("Request for %s failed: %r", request.headers.get("PATH"), exc)
