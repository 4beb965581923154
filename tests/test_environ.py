"""wsgid.environ.build: a mongrel2 request turned into a PEP 3333 environ."""

import io
import sys
import warnings
import wsgiref.validate

import pytest

from tests.support import wire
import wsgid
from wsgid import environ as wsgi_environ
from wsgid.message import parse

PROTOCOLS = ["json", "tnetstring"]


def headers(**extra):
    """The headers mongrel2 1.12 sends for ``GET /`` on route ``/``."""
    base = {
        "PATH": "/",
        "host": "localhost:6767",
        "user-agent": "curl/8.5.0",
        "accept": "*/*",
        "x-forwarded-for": "127.0.0.1",
        "METHOD": "GET",
        "VERSION": "HTTP/1.1",
        "URI": "/",
        "PATTERN": "/",
        "URL_SCHEME": "http",
        "REMOTE_ADDR": "127.0.0.1",
    }
    for name, value in extra.items():
        name = name if name.isupper() else name.replace("_", "-")
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def build(hdrs, body=b"", protocol="json", **kwargs):
    return wsgi_environ.build(parse(wire.request(hdrs, body, protocol)), **kwargs)


def check_with_wsgiref(environ):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wsgiref.validate.check_environ(environ)


# -- the PEP 3333 keys ----------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_basic_environ(protocol):
    errors = io.StringIO()
    env = build(headers(PATH="/hello", URI="/hello"), protocol=protocol, errors=errors)
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/hello"
    assert env["QUERY_STRING"] == ""
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_SOFTWARE"] == "wsgid/%s" % wsgid.__version__
    assert env["SERVER_NAME"] == "localhost"
    assert env["SERVER_PORT"] == "6767"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_HOST"] == "localhost:6767"
    assert env["HTTP_USER_AGENT"] == "curl/8.5.0"
    assert env["HTTP_ACCEPT"] == "*/*"
    assert env["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.input"].read() == b""
    assert env["wsgi.errors"] is errors
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is True
    assert env["wsgi.run_once"] is False
    assert env.get("CONTENT_LENGTH", "") == ""
    check_with_wsgiref(env)


def test_default_errors_stream_is_stderr():
    assert build(headers())["wsgi.errors"] is sys.stderr


def test_all_cgi_values_are_native_strings():
    env = build(headers(PATH="/a%20b", QUERY="q=1", x_latin=b"caf\xe9",
                        x_multi=["1", "2"]), b"abc")
    for key, value in env.items():
        if not key.startswith("wsgi."):
            assert type(value) is str, key


def test_mongrel2_keys_are_not_client_headers():
    env = build(headers(PATH="/x", QUERY="a=1", URI="/x?a=1"))
    for name in ("METHOD", "PATH", "URI", "QUERY", "PATTERN", "VERSION", "URL_SCHEME",
                 "REMOTE_ADDR"):
        assert "HTTP_" + name not in env
    http_keys = sorted(k for k in env if k.startswith("HTTP_"))
    assert http_keys == ["HTTP_ACCEPT", "HTTP_HOST", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR"]


def test_json_and_tnetstring_give_the_same_environ():
    hdrs = headers(METHOD="POST", PATH="/app/p%C3%A9", PATTERN="/app/", QUERY="a=b",
                   content_type="text/plain", content_length="3",
                   x_multi=["a", "b"], x_bin=b"\xe9\x01")
    a = build(hdrs, b"abc", "json")
    b = build(hdrs, b"abc", "tnetstring")
    assert a.pop("wsgi.input").read() == b.pop("wsgi.input").read() == b"abc"
    assert a == b


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_request_method(method):
    assert build(headers(METHOD=method))["REQUEST_METHOD"] == method


def test_server_protocol_http10():
    env = build(headers(VERSION="HTTP/1.0"))
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


# -- SCRIPT_NAME / PATH_INFO ----------------------------------------------------------

@pytest.mark.parametrize("pattern, path, script_name, path_info", [
    ("/", "/", "", "/"),
    ("/", "/a/b", "", "/a/b"),
    ("/app/", "/app/", "/app", "/"),
    ("/app/", "/app/x/y", "/app", "/x/y"),
    ("/app", "/app", "/app", ""),
    ("/app", "/app/x", "/app", "/x"),
    ("/app/", "/app", "/app", ""),
    ("/deep/route/", "/deep/route/z", "/deep/route", "/z"),
    # a prefix that is not a whole path segment is not a SCRIPT_NAME
    ("/app", "/application", "", "/application"),
    # a regex route cannot be a SCRIPT_NAME
    ("/(.*)", "/foo", "", "/foo"),
    (None, "/foo", "", "/foo"),
])
def test_script_name_and_path_info(pattern, path, script_name, path_info):
    env = build(headers(PATTERN=pattern, PATH=path))
    assert env["SCRIPT_NAME"] == script_name
    assert env["PATH_INFO"] == path_info
    assert env["SCRIPT_NAME"] + env["PATH_INFO"] == path
    check_with_wsgiref(env)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("path, path_info", [
    ("/p%C3%A9", "/p\xc3\xa9"),          # UTF-8 bytes, decoded latin-1
    ("/caf%E9", "/caf\xe9"),              # a latin-1 byte
    ("/a%20b", "/a b"),
    ("/a%2Fb", "/a/b"),
    ("/%25", "/%"),
    ("/a+b", "/a+b"),                     # '+' is only special in queries
    ("/%7e%7E", "/~~"),
    ("/%zz", "/%zz"),                     # not an escape: kept
])
def test_path_info_percent_decoded_as_latin1(protocol, path, path_info):
    env = build(headers(PATH=path), protocol=protocol)
    assert env["PATH_INFO"] == path_info


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_path_info_raw_non_ascii_bytes(protocol):
    # mongrel2's parser lets raw bytes >= 0x80 through in the path (Mongrel's
    # "national" characters); they reach us latin-1 decoded and must stay
    # the same bytes, not be re-encoded as UTF-8.
    raw = wire.request(headers(PATH=b"/caf\xe9/%C3%A9"), protocol=protocol)
    env = wsgi_environ.build(parse(raw))
    assert env["PATH_INFO"] == "/caf\xe9/\xc3\xa9"
    assert env["PATH_INFO"].encode("latin-1") == b"/caf\xe9/\xc3\xa9"


def test_script_name_with_percent_encoded_path():
    env = build(headers(PATTERN="/app/", PATH="/app/%41%20b"))
    assert env["SCRIPT_NAME"] == "/app"
    assert env["PATH_INFO"] == "/A b"


# -- QUERY_STRING ----------------------------------------------------------------------

@pytest.mark.parametrize("query", ["a=1", "a=1&b=%20x&c=%C3%A9", "x=a+b&y", "%zz=&="])
def test_query_string_is_raw(query):
    assert build(headers(QUERY=query))["QUERY_STRING"] == query


def test_query_string_absent_is_empty():
    env = build(headers(QUERY=None))
    assert env["QUERY_STRING"] == ""


def test_query_string_not_in_path_info():
    env = build(headers(PATH="/s", QUERY="q=1", URI="/s?q=1"))
    assert env["PATH_INFO"] == "/s"
    assert env["QUERY_STRING"] == "q=1"


# -- CONTENT_TYPE / CONTENT_LENGTH ---------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_content_type_and_length_have_no_http_prefix(protocol):
    body = b"a=1&b=2"
    env = build(headers(METHOD="POST", content_type="application/x-www-form-urlencoded",
                        content_length=str(len(body))), body, protocol)
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == "7"
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env
    assert env["wsgi.input"].read() == body
    check_with_wsgiref(env)


def test_content_length_from_body_when_header_missing():
    env = build(headers(METHOD="POST"), b"12345")
    assert env["CONTENT_LENGTH"] == "5"
    assert env["wsgi.input"].read() == b"12345"


def test_no_body_no_content_length():
    env = build(headers())
    assert env.get("CONTENT_LENGTH", "") == ""
    assert "CONTENT_TYPE" not in env or env["CONTENT_TYPE"] == ""


def test_wsgi_input_is_readable_in_parts():
    body = bytes(range(256)) * 4
    env = build(headers(METHOD="PUT", content_length=str(len(body))), body)
    stream = env["wsgi.input"]
    assert stream.read(10) == body[:10]
    assert stream.readline() == body[10:body.index(b"\n", 10) + 1]
    assert stream.read() == body[body.index(b"\n", 10) + 1:]


def test_wsgi_input_file_for_uploads(tmp_path):
    upload = tmp_path / "upload.XXXXXX"
    data = b"x" * 10000 + b"end"
    upload.write_bytes(data)
    with open(upload, "rb") as f:
        # a chunked upload: no content-length header at all
        env = build(headers(METHOD="POST", transfer_encoding="chunked",
                            x_mongrel2_upload_start="/tmp/upload.XXXXXX",
                            x_mongrel2_upload_done="/tmp/upload.XXXXXX"),
                    b"", wsgi_input=f)
        assert env["wsgi.input"] is f
        assert env["CONTENT_LENGTH"] == str(len(data))
        assert env["wsgi.input"].read() == data
        check_with_wsgiref(env)


def test_wsgi_input_file_length_wins_over_header(tmp_path):
    upload = tmp_path / "up"
    upload.write_bytes(b"abc")
    with open(upload, "rb") as f:
        env = build(headers(METHOD="POST", content_length="999999"), b"", wsgi_input=f)
        assert env["CONTENT_LENGTH"] == "3"


# -- HTTP_ headers ------------------------------------------------------------------------

def test_http_names():
    env = build(headers(x_custom_header="v1", accept_language="fr", dnt="1",
                        x_latin=b"caf\xe9"))
    assert env["HTTP_X_CUSTOM_HEADER"] == "v1"
    assert env["HTTP_ACCEPT_LANGUAGE"] == "fr"
    assert env["HTTP_DNT"] == "1"
    assert env["HTTP_X_LATIN"] == "caf\xe9"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_repeated_values_joined_with_comma(protocol):
    env = build(headers(x_multi=["a", "b", "c"], accept=["text/html", "*/*"]),
                protocol=protocol)
    assert env["HTTP_X_MULTI"] == "a,b,c"
    assert env["HTTP_ACCEPT"] == "text/html,*/*"


def test_header_with_underscore_is_dropped():
    hdrs = headers(x_forwarded_for="10.0.0.1")
    hdrs["x_forwarded_for"] = "6.6.6.6"           # posing as X-Forwarded-For
    hdrs["x_only_underscore"] = "evil"
    for protocol in PROTOCOLS:
        env = build(hdrs, protocol=protocol)
        assert env["HTTP_X_FORWARDED_FOR"] == "10.0.0.1"
        assert "HTTP_X_ONLY_UNDERSCORE" not in env
        assert "6.6.6.6" not in env.values()
        assert "evil" not in env.values()


def test_underscore_header_alone_is_dropped():
    hdrs = headers(x_forwarded_for=None)
    hdrs["x_forwarded_for"] = "6.6.6.6"
    env = build(hdrs)
    assert "HTTP_X_FORWARDED_FOR" not in env


def test_upload_marker_headers_are_dropped():
    env = build(headers(METHOD="POST", x_mongrel2_upload_start="/tmp/upload.1",
                        x_mongrel2_upload_done="/tmp/upload.1"), b"")
    assert not [k for k in env if "MONGREL2" in k]
    assert "/tmp/upload.1" not in env.values()


# -- SERVER_NAME / SERVER_PORT / url_scheme -------------------------------------------------

@pytest.mark.parametrize("host, scheme, name, port", [
    ("example.com:8080", "http", "example.com", "8080"),
    ("example.com", "http", "example.com", "80"),
    ("example.com", "https", "example.com", "443"),
    ("example.com:80", "https", "example.com", "80"),
    ("127.0.0.1:6767", "http", "127.0.0.1", "6767"),
    ("[::1]:8443", "https", "[::1]", "8443"),
    ("[::1]", "https", "[::1]", "443"),
    ("[::1]", "http", "[::1]", "80"),
    ("[2001:db8::1]:81", "http", "[2001:db8::1]", "81"),
])
def test_server_name_and_port(host, scheme, name, port):
    env = build(headers(host=host, URL_SCHEME=scheme))
    assert env["SERVER_NAME"] == name
    assert env["SERVER_PORT"] == port
    assert env["wsgi.url_scheme"] == scheme
    assert env["HTTP_HOST"] == host


def test_no_host_header():
    env = build(headers(host=None, URL_SCHEME="https"))
    assert "HTTP_HOST" not in env
    assert env["SERVER_NAME"]  # never empty (wsgiref.validate requires it)
    assert env["SERVER_PORT"] == "443"
    check_with_wsgiref(env)


@pytest.mark.parametrize("scheme, expected", [("http", "http"), ("https", "https"), (None, "http")])
def test_url_scheme(scheme, expected):
    assert build(headers(URL_SCHEME=scheme))["wsgi.url_scheme"] == expected


def test_remote_addr():
    assert build(headers(REMOTE_ADDR="10.1.2.3"))["REMOTE_ADDR"] == "10.1.2.3"


# -- the whole thing through wsgiref's validator ----------------------------------------------

def test_validator_accepts_an_app_run_on_the_environ(tmp_path):
    seen = {}

    def app(environ, start_response):
        seen["body"] = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    validated = wsgiref.validate.validator(app)
    env = build(headers(METHOD="POST", PATH="/app/x", PATTERN="/app/", QUERY="a=1",
                        content_type="text/plain", content_length="4"), b"data")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = validated(env, lambda status, hdrs, exc_info=None: None)
        assert list(result) == [b"ok"]
        result.close()
    assert seen["body"] == b"data"


def test_repeated_cookie_headers_joined_with_semicolon():
    from wsgid import environ as env_mod, message
    raw = wire.request({"PATH": "/", "METHOD": "GET", "VERSION": "HTTP/1.1",
                        "cookie": ["a=1", "b=2"]})
    environ = env_mod.build(message.parse(raw))
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
