"""Property tests of the wire parser and the environ builder (hypothesis).

* ``message.parse``: any bytes give a Request or a MessageError, never any
  other exception; valid messages round-trip in both header encodings.
* ``environ.build``: any parsed request with METHOD and PATH gives an environ
  that PEP 3333 accepts (str values, latin-1 only; wsgiref's check_environ).

Runs are derandomized (same examples every run): a failure is reproducible.
"""

import io
import json
import random
import warnings
from wsgiref.validate import WSGIWarning, check_environ

import pytest
import tnetstring
from hypothesis import HealthCheck, example, given, settings, strategies as st

from tests.support import fuzz, wire
from wsgid import environ as wsgi_environ
from wsgid.message import MessageError, Request, parse

PROPERTY = settings(derandomize=True, deadline=None, max_examples=400,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Mutations draw three messages per example: fewer examples, same budget.
MUTATIONS = settings(PROPERTY, max_examples=150)

# -- strategies -----------------------------------------------------------------------

latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=40)
token = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
senders = st.binary(min_size=1, max_size=40).filter(lambda b: b" " not in b)
conn_ids = st.integers(0, 10 ** 12).map(lambda i: b"%d" % i)
envelope_paths = st.binary(max_size=40).filter(lambda b: b" " not in b)
MONGREL2_OPTIONAL = ("VERSION", "URI", "QUERY", "PATTERN", "URL_SCHEME", "REMOTE_ADDR")


@st.composite
def mongrel2_headers(draw, content_length=st.none()):
    """Headers shaped as mongrel2 sends them: its own upper-case keys with
    str values, client headers lower-cased, a repeated one as a list."""
    headers = {"METHOD": draw(st.one_of(st.sampled_from(["GET", "POST", "HEAD", "JSON"]),
                                        st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1,
                                                max_size=10))),
               "PATH": draw(st.one_of(st.just("/"), latin1.map(lambda s: "/" + s)))}
    for key in draw(st.lists(st.sampled_from(MONGREL2_OPTIONAL), unique=True)):
        headers[key] = draw(latin1)
    if draw(st.booleans()):
        headers["PATTERN"] = draw(st.sampled_from(["/", "/app", "/app/", "(/x)"]))
    client = draw(st.dictionaries(token.filter(lambda n: n not in ("content-length",)),
                                  st.one_of(latin1, st.lists(latin1, min_size=2, max_size=3)),
                                  max_size=6))
    headers.update(client)
    length = draw(content_length)
    if length is not None:
        headers["content-length"] = length
    return headers


@st.composite
def messages(draw, headers=mongrel2_headers()):
    head = draw(headers)
    body = draw(st.binary(max_size=64))
    protocol = draw(st.sampled_from(["json", "tnetstring"]))
    return (wire.request(head, body, protocol, sender=draw(senders), conn_id=draw(conn_ids),
                         path=draw(envelope_paths)), head, body)


@st.composite
def mutated(draw):
    raw, _, _ = draw(messages())
    others = [draw(messages())[0] for _ in range(2)]
    return fuzz.mutate(random.Random(draw(st.integers(0, 2 ** 32))), raw, others)


def assert_parses_or_refuses(data):
    try:
        request = parse(data)
    except MessageError:
        return None
    assert isinstance(request, Request)
    assert isinstance(request.headers, dict)
    assert isinstance(request.body, bytes)
    return request


# -- message.parse ----------------------------------------------------------------------

@PROPERTY
@given(st.one_of(st.binary(max_size=300),
                 st.binary(max_size=200).map(lambda b: fuzz.SENDER + b" 7 / " + b)))
def test_parse_any_bytes_request_or_message_error(data):
    assert_parses_or_refuses(data)


@MUTATIONS
@given(mutated())
def test_parse_mutated_messages_request_or_message_error(data):
    assert_parses_or_refuses(data)


@PROPERTY
@given(messages())
def test_parse_round_trips_headers_and_body(case):
    raw, headers, body = case
    request = parse(raw)
    assert request.headers == headers
    assert request.body == body
    sender, conn_id, path, _ = raw.split(b" ", 3)
    assert (request.sender, request.conn_id, request.path) == (sender, conn_id, path)


# Arbitrary JSON / tnetstring header structures: nesting, any key and value
# types. Not what mongrel2 sends, but what a broken or hostile peer may.
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), latin1),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(latin1, inner, max_size=3)), max_leaves=12)
tnet_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.binary(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.binary(max_size=8), inner, max_size=3)),
    max_leaves=12)


def _json_message(payload, body=b""):
    return fuzz._json_msg(payload, body)


def _tnet_message(payload, body=b""):
    return fuzz._tnet_msg(payload, body)


@PROPERTY
@given(st.dictionaries(latin1, json_values, max_size=5), st.booleans())
def test_parse_any_json_structure(headers, with_request_keys):
    if with_request_keys:
        headers.update(METHOD="GET", PATH="/")
    assert_parses_or_refuses(_json_message(json.dumps(headers).encode("latin-1", "replace")))


@PROPERTY
@given(st.dictionaries(st.binary(max_size=8), tnet_values, max_size=5), st.booleans())
def test_parse_any_tnetstring_structure(headers, with_request_keys):
    if with_request_keys:
        headers.update({b"METHOD": b"GET", b"PATH": b"/"})
    payload = tnetstring.dumps(headers)
    assert_parses_or_refuses(fuzz.SENDER + b" 1 / " + payload + b"0:,")


@pytest.mark.parametrize("name", sorted(fuzz.PARSER_CRASHERS))
def test_parse_hostile_structures_message_error(name):
    assert_parses_or_refuses(fuzz.PARSER_CRASHERS[name])


# -- environ.build ------------------------------------------------------------------------

def assert_pep3333(environ):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WSGIWarning)  # an unknown method is only a warning
        check_environ(environ)
    for key, value in environ.items():
        assert type(key) is str
        if "." not in key:
            assert type(value) is str, (key, value)
            value.encode("latin-1")  # PEP 3333: code points U+0000..U+00FF only
    assert environ["wsgi.url_scheme"] in ("http", "https")
    body = environ["wsgi.input"].read()
    assert isinstance(body, bytes)
    if environ.get("CONTENT_LENGTH"):
        assert int(environ["CONTENT_LENGTH"]) >= 0


def build_from(raw):
    request = parse(raw)
    if request.is_notice:
        return None
    return wsgi_environ.build(request, errors=io.StringIO())


@PROPERTY
@given(messages(mongrel2_headers(st.one_of(st.none(), st.integers(0, 10 ** 9).map(str)))))
def test_environ_of_mongrel2_messages_is_pep3333(case):
    raw, headers, body = case
    environ = build_from(raw)
    if environ is None:
        return
    assert_pep3333(environ)
    assert environ["REQUEST_METHOD"] == headers["METHOD"]
    path = environ["SCRIPT_NAME"] + environ["PATH_INFO"]
    assert path.startswith("/")


@MUTATIONS
@given(mutated())
def test_environ_of_mutated_messages_never_crashes(raw):
    # Whatever survives parse() after random edits builds an environ
    # without raising (PEP 3333 values are checked on well-formed ones above).
    try:
        environ = build_from(raw)
    except MessageError:
        return
    if environ is not None:
        assert isinstance(environ["PATH_INFO"], str)


@PROPERTY
@given(messages(mongrel2_headers(st.one_of(st.just("abc"), st.just("-1"), latin1))))
@example((wire.request({"METHOD": "GET", "PATH": "/", "content-length": "abc"}),
          None, b""))
def test_environ_hostile_content_length_is_pep3333(case):
    raw, _, _ = case
    try:
        environ = build_from(raw)
    except MessageError:
        return  # refused at parse time (the worker answers 400): fine
    if environ is not None:
        assert_pep3333(environ)


HOSTILE_HEADERS = {
    # JSON \u escapes (mongrel2 never writes them) decode to non-latin-1 str.
    "json-u20ac": _json_message(b'{"METHOD":"GET","PATH":"/","host":"\\u20ac"}'),
    "json-surrogate-path": _json_message(b'{"METHOD":"GET","PATH":"/\\ud800%41"}'),
    # mongrel2's own keys repeated (a list): build fails on them.
    "pattern-list": wire.request({"METHOD": "GET", "PATH": "/", "PATTERN": ["/", "/a"]}),
    "url-scheme-list": wire.request({"METHOD": "GET", "PATH": "/", "URL_SCHEME": ["http", "x"]},
                                    protocol="tnetstring"),
    "query-list": wire.request({"METHOD": "GET", "PATH": "/", "QUERY": ["a", "b"]}),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_HEADERS))
def test_environ_of_any_parsed_request_is_pep3333(name):
    try:
        environ = build_from(HOSTILE_HEADERS[name])
    except MessageError:
        return  # refused at parse time: fine
    assert_pep3333(environ)


@PROPERTY
@given(st.dictionaries(latin1, json_values, max_size=6))
def test_environ_of_any_parsed_json_structure(headers):
    """Any JSON header object with str METHOD/PATH that parse accepts builds
    a PEP 3333 environ (values are whatever JSON allows: numbers, lists,
    objects, null) -- upper-case keys excluded, covered above."""
    headers = {k: v for k, v in headers.items()
               if not k.isupper() and k != "content-length"}
    headers.update(METHOD="GET", PATH="/x")
    raw = _json_message(json.dumps(headers, ensure_ascii=False).encode("latin-1"))
    try:
        environ = build_from(raw)
    except MessageError:
        return
    if environ is not None:
        assert_pep3333(environ)


# -- the byte-loop JSON reader (mongrel2's usual headers) --------------------------------

json_texts = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), latin1),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(latin1, inner, max_size=4)),
    max_leaves=8).map(lambda value: json.dumps(value, separators=(",", ":")).encode("latin-1"))


def _json_of(data):
    try:
        return json.loads(data.decode("latin-1"), strict=False)
    except ValueError:
        return "not JSON"


@PROPERTY
@given(st.one_of(mongrel2_headers().map(wire.json_headers), json_texts, st.binary(max_size=80),
                 mongrel2_headers().map(lambda h: fuzz.mutate(
                     random.Random(len(h)), wire.json_headers(h)))))
@example(b'{"a":"b"}')
@example(b'{"a":[]}')
@example(b'{}')
@example(b'{"a":"b\\"c"}')
@example(b'{"a":"b" }')
@example(b'{"a":"b"')
@example(b'{"a":["b","c"],"d":"e"}')
@example(b'{"a":"b",')  # the span ends at a comma (it raised IndexError once)
def test_fast_json_reader_agrees_with_the_json_module(data):
    """It reads what mongrel2 writes exactly as the json module does, and
    leaves everything else (None) to it; it never raises."""
    from wsgid.message import _fast_json_headers
    headers = _fast_json_headers(data, 0, len(data))
    if headers is not None:
        assert headers == _json_of(data)


@PROPERTY
@given(mongrel2_headers())
def test_fast_json_reader_takes_every_escape_free_mongrel2_header_set(headers):
    from wsgid.message import _fast_json_headers
    data = wire.json_headers(headers)
    if b"\\" not in data:
        assert _fast_json_headers(data, 0, len(data)) == headers
