"""A mongrel2 request turned into a PEP 3333 environ."""

from io import BytesIO
import os
import sys
from urllib.parse import unquote_to_bytes

import wsgid
from wsgid.filewrapper import FileWrapper

SERVER_SOFTWARE = "wsgid/%s" % wsgid.__version__
DEFAULT_PORTS = {"http": "80", "https": "443"}

# mongrel2's own keys and the upload markers are not client headers.
_NOT_CLIENT_HEADERS = frozenset(("x-mongrel2-upload-start", "x-mongrel2-upload-done"))
_CGI_NAMES = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


# Memos, bounded since clients choose header names and hosts (plain dicts:
# a dict subclass is slower to index).
_KEYS = {}          # header name -> environ key, "" for a name that is no client header
_SERVER_NAMES = {}  # (Host header, scheme) -> (SERVER_NAME, SERVER_PORT)
_MEMO_SIZE = 4096


def _environ_key(name):
    if not name.islower() or "_" in name or name in _NOT_CLIENT_HEADERS:
        # Upper-case keys are mongrel2's; a name holding "_" could pose as
        # another header once dashes become underscores.
        key = ""
    else:
        key = _CGI_NAMES.get(name) or "HTTP_" + name.upper().replace("-", "_")
    if len(_KEYS) < _MEMO_SIZE:
        _KEYS[name] = key
    return key


def _server_name_port(host_scheme):
    host, scheme = host_scheme
    if host.startswith("["):  # IPv6 literal
        name, _, port = host.partition("]")
        name, port = name + "]", port.lstrip(":")
    else:
        name, _, port = host.partition(":")
    value = name or "localhost", port or DEFAULT_PORTS.get(scheme, "80")
    if len(_SERVER_NAMES) < _MEMO_SIZE:
        _SERVER_NAMES[host_scheme] = value
    return value


def _script_name(pattern, path_info):
    """SCRIPT_NAME is the route without its trailing slash, when it prefixes
    the path literally (a regex route leaves SCRIPT_NAME empty)."""
    if not pattern or pattern == "/":  # no route, or the root one: the usual case
        return ""
    script = pattern.rstrip("/")
    if script and (path_info == script or path_info.startswith(script + "/")):
        return script
    return ""


# What every environ starts from: copying it is cheaper than building a dict
# key by key, and the copy comes with room for a few headers before it grows.
_TEMPLATE = dict.fromkeys(("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
                           "SERVER_PROTOCOL", "REMOTE_ADDR", "wsgi.url_scheme", "wsgi.input"))
_TEMPLATE.update({
    "SERVER_SOFTWARE": SERVER_SOFTWARE,
    "wsgi.version": (1, 0),
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
    "wsgi.file_wrapper": FileWrapper,
})


_proxies = None  # wsgid.proxies.Proxies: the peers believed, None: none


def trust(proxies):
    """The trusted proxies (--forwarded-allow-ips) from now on."""
    global _proxies
    _proxies = proxies


def errors_to(stream):
    """wsgi.errors from now on (a daemon's: wsgid.log, see wsgid.log)."""
    _TEMPLATE["wsgi.errors"] = stream


def build(request, wsgi_input=None, errors=None):
    """Return the WSGI environ for ``request``.

    ``wsgi_input`` is the body stream (an open upload file); by default the
    in-message body. ``errors`` is wsgi.errors; by default sys.stderr.
    """
    headers = request.headers
    # PATH is latin-1 decoded bytes: encode back the same way (unquote_to_bytes
    # would encode a str as UTF-8 and mangle raw bytes >= 0x80).
    path = headers["PATH"]
    if "%" in path:
        path = unquote_to_bytes(path.encode("latin-1")).decode("latin-1")
    script_name = _script_name(headers.get("PATTERN"), path)
    scheme = headers.get("URL_SCHEME", "http")
    if scheme != "http" and scheme != "https":
        scheme = "http"
    remote = headers.get("REMOTE_ADDR", "")
    if _proxies is not None and _proxies.trusts(remote):
        scheme = _proxies.scheme(headers, scheme)
        remote = _proxies.client(headers, remote)
    environ = _TEMPLATE.copy()
    environ["REQUEST_METHOD"] = headers["METHOD"]
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = path[len(script_name):]
    environ["QUERY_STRING"] = headers.get("QUERY", "")
    environ["SERVER_PROTOCOL"] = headers.get("VERSION", "HTTP/1.1")
    environ["REMOTE_ADDR"] = remote
    environ["wsgi.url_scheme"] = scheme
    environ["wsgi.input"] = wsgi_input if wsgi_input is not None else BytesIO(request.body)
    if errors is not None:
        environ["wsgi.errors"] = errors
    keys = _KEYS
    for name, value in headers.items():
        key = keys.get(name)
        if key is None:
            key = _environ_key(name)
        if key:
            if type(value) is list:
                value = ("; " if name == "cookie" else ",").join(value)
            environ[key] = value
    host_scheme = environ.get("HTTP_HOST", ""), scheme
    server = _SERVER_NAMES.get(host_scheme)
    environ["SERVER_NAME"], environ["SERVER_PORT"] = server or _server_name_port(host_scheme)
    if wsgi_input is not None:  # an upload file: chunked bodies have no length
        environ["CONTENT_LENGTH"] = str(os.fstat(wsgi_input.fileno()).st_size)
    elif "CONTENT_LENGTH" not in environ and request.body:
        environ["CONTENT_LENGTH"] = str(len(request.body))
    return environ
