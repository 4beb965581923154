"""wsgid.message: the mongrel2 wire format (requests in, reply frames out)."""

import json

import pytest
import tnetstring

from tests.support import wire
from wsgid import message
from wsgid.message import CLOSE, MessageError, Request, parse, reply

PROTOCOLS = ["json", "tnetstring"]

BASE = {
    "PATH": "/hello/world",
    "x-forwarded-for": "127.0.0.1",
    "host": "localhost:6767",
    "accept": "*/*",
    "user-agent": "curl/8.5.0",
    "METHOD": "GET",
    "VERSION": "HTTP/1.1",
    "URI": "/hello/world?x=1",
    "QUERY": "x=1",
    "PATTERN": "/hello",
    "URL_SCHEME": "http",
    "REMOTE_ADDR": "127.0.0.1",
}


# -- the helper itself produces what mongrel2 produces ---------------------------

def test_wire_json_matches_mongrel2_layout():
    raw = wire.request({"METHOD": "GET", "PATH": "/"}, b"", sender=b"S", conn_id=b"12")
    assert raw == b'S 12 / 27:{"METHOD":"GET","PATH":"/"},0:,'


def test_wire_tnetstring_matches_mongrel2_layout():
    raw = wire.request({"METHOD": "GET", "PATH": "/"}, b"ab", protocol="tnetstring",
                       sender=b"S", conn_id=b"12")
    headers = tnetstring.dumps({b"METHOD": b"GET", b"PATH": b"/"})
    assert raw == b"S 12 / " + headers + b"2:ab,"
    assert headers.endswith(b"}")


def test_wire_control_is_byte_exact_to_real_mongrel2():
    raw = wire.disconnect("tnetstring", sender=b"34f9ceee-cd52-4b7f-b197-88bf2f0ec378",
                          conn_id=b"2")
    assert raw == (b'34f9ceee-cd52-4b7f-b197-88bf2f0ec378 2 @* '
                   b'16:6:METHOD,4:JSON,}21:{"type":"disconnect"},')


# -- well-formed requests ----------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_parse_request(protocol):
    raw = wire.request(BASE, b"", protocol, sender=b"f400bf85-uuid", conn_id=b"42")
    req = parse(raw)
    assert isinstance(req, Request)
    assert req.sender == b"f400bf85-uuid"
    assert req.conn_id == b"42"
    assert req.path == b"/hello/world"
    assert req.body == b""
    assert req.headers == BASE
    assert all(type(k) is str and type(v) is str for k, v in req.headers.items())
    assert req.method == "GET"
    assert req.is_notice is False
    assert req.is_disconnect is False


def test_both_encodings_give_identical_requests():
    body = b"name=value&x=%20"
    headers = dict(BASE, METHOD="POST", **{"content-length": str(len(body)),
                                           "content-type": "application/x-www-form-urlencoded"})
    a = parse(wire.request(headers, body, "json"))
    b = parse(wire.request(headers, body, "tnetstring"))
    assert (a.sender, a.conn_id, a.path, a.headers, a.body) == \
           (b.sender, b.conn_id, b.path, b.headers, b.body)
    assert a.body == body
    assert a.method == "POST"


def test_encodings_may_alternate_message_by_message():
    for i, protocol in enumerate(PROTOCOLS * 3):
        req = parse(wire.request(dict(BASE, PATH="/%d" % i), b"x" * i, protocol,
                                 conn_id=str(i).encode()))
        assert req.headers["PATH"] == "/%d" % i
        assert req.conn_id == str(i).encode()
        assert req.body == b"x" * i


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_repeated_header_arrives_as_list(protocol):
    headers = dict(BASE, **{"x-multi": ["one", "two", "three"], "cookie": ["a=1", "b=2"]})
    req = parse(wire.request(headers, protocol=protocol))
    assert req.headers["x-multi"] == ["one", "two", "three"]
    assert req.headers["cookie"] == ["a=1", "b=2"]
    assert all(type(v) is str for v in req.headers["x-multi"])
    assert req.headers["host"] == "localhost:6767"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_body_with_netstring_lookalikes_and_binary(protocol):
    body = b'3:abc, 5:{}}}}, "\x00\xff\r\n,}' + bytes(range(256))
    req = parse(wire.request(BASE, body, protocol))
    assert req.body == body
    assert req.headers["PATH"] == "/hello/world"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_large_body(protocol):
    body = bytes(range(256)) * 8192  # 2 MiB
    req = parse(wire.request(dict(BASE, METHOD="PUT"), body, protocol))
    assert len(req.body) == len(body)
    assert req.body == body


def test_json_headers_with_raw_control_bytes():
    value = b"a\x01b\tc\x1fd\x7fe"
    raw = wire.request(dict(BASE, **{"x-ctl": value}), protocol="json")
    # the helper really puts raw control bytes on the wire, as mongrel2 does
    assert b"a\x01b\tc\x1fd\x7fe" in raw
    with pytest.raises(ValueError):
        json.loads(wire.json_headers(dict(BASE, **{"x-ctl": value})).decode("latin-1"))
    req = parse(raw)
    assert req.headers["x-ctl"] == "a\x01b\tc\x1fd\x7fe"


def test_json_headers_with_non_utf8_bytes_are_latin1():
    raw = wire.request(dict(BASE, **{"x-latin": b"caf\xe9", "x-utf8": b"caf\xc3\xa9",
                                     "x-high": bytes(range(0x80, 0x100))}),
                       protocol="json")
    req = parse(raw)
    assert req.headers["x-latin"] == "caf\xe9"
    # UTF-8 on the wire stays bytes-as-latin-1, as PEP 3333 wants
    assert req.headers["x-utf8"] == "caf\xc3\xa9"
    assert req.headers["x-high"] == bytes(range(0x80, 0x100)).decode("latin-1")


def test_json_headers_with_escaped_quote_and_backslash():
    raw = wire.request(dict(BASE, **{"x-q": 'say "hi" \\o/'}), protocol="json")
    assert b'"say \\"hi\\" \\\\o/"' in raw
    assert parse(raw).headers["x-q"] == 'say "hi" \\o/'


def test_tnetstring_headers_with_binary_values_are_latin1():
    raw = wire.request(dict(BASE, **{"x-bin": b"\x00\xe9\xff,}:"}), protocol="tnetstring")
    assert parse(raw).headers["x-bin"] == "\x00\xe9\xff,}:"


def test_json_unicode_escapes_are_decoded():
    payload = b'{"METHOD":"GET","PATH":"/","x-u":"\\u00e9"}'
    req = parse(b"U 1 / " + wire.netstring(payload) + b"0:,")
    assert req.headers["x-u"] == "\xe9"


# -- control messages ---------------------------------------------------------------

REAL_DISCONNECT = (b'34f9ceee-cd52-4b7f-b197-88bf2f0ec378 2 @* '
                   b'16:6:METHOD,4:JSON,}21:{"type":"disconnect"},')


def test_real_mongrel2_disconnect_message():
    req = parse(REAL_DISCONNECT)
    assert req.sender == b"34f9ceee-cd52-4b7f-b197-88bf2f0ec378"
    assert req.conn_id == b"2"
    assert req.path == b"@*"
    assert req.headers == {"METHOD": "JSON"}
    assert "PATH" not in req.headers
    assert req.body == b'{"type":"disconnect"}'
    assert req.method == "JSON"
    assert req.is_notice is True
    assert req.is_disconnect is True
    assert req.control() == {"type": "disconnect"}


def test_disconnect_with_json_headers():
    raw = wire.disconnect("json", sender=b"UU", conn_id=b"99")
    assert raw == b'UU 99 @* 17:{"METHOD":"JSON"},21:{"type":"disconnect"},'
    req = parse(raw)
    assert (req.sender, req.conn_id, req.path) == (b"UU", b"99", b"@*")
    assert req.is_disconnect is True


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_credits_control_message_is_notice_but_not_disconnect(protocol):
    req = parse(wire.control(b'{"type":"credits","credits":8192}', protocol))
    assert req.is_notice is True
    assert req.is_disconnect is False
    assert req.control() == {"type": "credits", "credits": 8192}


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"disconnect"', b"", b"\xff\xfe"])
def test_control_with_odd_body_never_crashes(body):
    req = parse(wire.control(body, "tnetstring"))
    assert req.is_notice is True
    assert req.control() == {}
    assert req.is_disconnect is False


def test_request_that_is_not_control():
    req = parse(wire.request(dict(BASE, METHOD="POST"), b'{"type":"disconnect"}'))
    assert req.is_notice is False
    assert req.is_disconnect is False


# -- malformed input ------------------------------------------------------------

UNREADABLE = [
    b"",
    b"garbage",
    b"garbage with spaces",
    b"\x00\x01\x02\x03",
    b"UUID 7 /",
    b"UUID abc / 27:{\"METHOD\":\"GET\",\"PATH\":\"/\"},0:,",   # non-numeric conn id
    b"UUID -7 / 27:{\"METHOD\":\"GET\",\"PATH\":\"/\"},0:,",    # negative conn id
    b"UUID  / 27:{\"METHOD\":\"GET\",\"PATH\":\"/\"},0:,",      # empty conn id
    b" 7 / 27:{\"METHOD\":\"GET\",\"PATH\":\"/\"},0:,",         # empty sender
]


@pytest.mark.parametrize("raw", UNREADABLE)
def test_unreadable_envelope(raw):
    with pytest.raises(MessageError) as info:
        parse(raw)
    assert isinstance(info.value, ValueError)
    assert info.value.sender is None
    assert info.value.conn_id is None


GOOD_HEAD = wire.netstring(b'{"METHOD":"GET","PATH":"/"}')
TNET_HEAD = tnetstring.dumps({b"METHOD": b"GET", b"PATH": b"/"})

BAD_AFTER_ENVELOPE = {
    "truncated headers": b'100:{"METHOD":"GET","PATH":"/"},0:,',
    "headers cut short": b'27:{"METHOD":"GET","PATH":"/"',
    "nothing after path": b"",
    "no length": b'{"METHOD":"GET","PATH":"/"},0:,',
    "empty length": b':{"METHOD":"GET","PATH":"/"},0:,',
    "alpha length": b'2x:{"METHOD":"GET","PATH":"/"},0:,',
    "negative length": b'-27:{"METHOD":"GET","PATH":"/"},0:,',
    "plus length": b'+27:{"METHOD":"GET","PATH":"/"},0:,',
    "hex length": b"0x1b:{},0:,",
    "huge length": b"99999999999999999999:{},0:,",
    "length too short": b'20:{"METHOD":"GET","PATH":"/"},0:,',
    "wrong headers terminator": b'27:{"METHOD":"GET","PATH":"/"}]0:,',
    "headers terminator missing": b'27:{"METHOD":"GET","PATH":"/"}',
    "invalid json": b'6:{"a":},0:,',
    "json list": b'6:["a",1],0:,',
    "json string": b'5:"GET",0:,',
    "json number": b"2:42,0:,",
    "json null": b"4:null,0:,",
    "invalid tnetstring dict": b"7:3:abc,X}0:,",
    "tnetstring dict odd items": b"6:3:abc,}0:,",
    "no body": GOOD_HEAD,
    "truncated body": GOOD_HEAD + b"10:abc,",
    "body without terminator": GOOD_HEAD + b"3:abc",
    "body wrong terminator": GOOD_HEAD + b"3:abc}",
    "body bad length": GOOD_HEAD + b"x:abc,",
    "body no length": GOOD_HEAD + b"abc,",
    "tnet body truncated": TNET_HEAD + b"5:ab,",
    "missing METHOD json": wire.netstring(b'{"PATH":"/"}') + b"0:,",
    "missing METHOD tnet": tnetstring.dumps({b"PATH": b"/"}) + b"0:,",
    "METHOD a list": wire.netstring(b'{"METHOD":["GET","POST"],"PATH":"/"}') + b"0:,",
    "missing PATH json": wire.netstring(b'{"METHOD":"GET"}') + b"0:,",
    "missing PATH tnet": tnetstring.dumps({b"METHOD": b"GET"}) + b"0:,",
    "PATH a list": wire.netstring(b'{"METHOD":"GET","PATH":["/a","/b"]}') + b"0:,",
    "empty headers": b"2:{},0:,",
}


@pytest.mark.parametrize("rest", list(BAD_AFTER_ENVELOPE.values()), ids=list(BAD_AFTER_ENVELOPE))
def test_malformed_after_readable_envelope(rest):
    raw = b"SENDER-UUID 31 / " + rest
    with pytest.raises(MessageError) as info:
        parse(raw)
    assert info.value.sender == b"SENDER-UUID"
    assert info.value.conn_id == b"31"
    assert str(info.value)  # carries a reason


@pytest.mark.parametrize("protocol", ["json", "tnetstring"])
def test_every_truncation_of_a_valid_message_is_an_error(protocol):
    raw = wire.request(BASE, b"some body", protocol, sender=b"S", conn_id=b"5")
    assert parse(raw).body == b"some body"
    for cut in range(len(raw)):
        with pytest.raises(MessageError):
            parse(raw[:cut])


def test_message_error_is_value_error_with_attributes():
    exc = MessageError("why", b"S", b"1")
    assert isinstance(exc, ValueError)
    assert (str(exc), exc.sender, exc.conn_id) == ("why", b"S", b"1")
    assert MessageError("why").sender is None


# -- reply framing ----------------------------------------------------------------------

@pytest.mark.parametrize("conn_id", [b"7", "7", 7])
def test_reply_one_id_any_type(conn_id):
    assert reply(b"UUID", conn_id, b"HTTP/1.1 200 OK\r\n\r\n") == \
        b"UUID 1:7, HTTP/1.1 200 OK\r\n\r\n"


def test_reply_multi_digit_id_length():
    assert reply(b"S", 123456, b"x") == b"S 6:123456, x"


@pytest.mark.parametrize("ids", [[b"1", b"22", b"333"], (1, 22, 333), ["1", 22, b"333"]])
def test_reply_several_ids(ids):
    assert reply(b"UUID", ids, b"body") == b"UUID 8:1 22 333, body"


def test_reply_close_message():
    assert CLOSE == b""
    assert reply(b"UUID", b"7", CLOSE) == b"UUID 1:7, "
    assert reply(b"UUID", [1, 2], message.CLOSE) == b"UUID 3:1 2, "


def test_reply_body_is_passed_through_untouched():
    body = bytes(range(256)) + b" 1:7, "
    assert reply(b"S", b"7", body) == b"S 1:7, " + body


def test_unreadable_cases_differ_from_a_valid_message_only_in_the_envelope():
    req = parse(b'UUID 7 / 27:{"METHOD":"GET","PATH":"/"},0:,')
    assert (req.sender, req.conn_id, req.headers) == (b"UUID", b"7", {"METHOD": "GET", "PATH": "/"})
