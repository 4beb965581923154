"""wsgid.framing: the requests whose body mongrel2 may have framed
otherwise than RFC 9112 says are refused (the live checks, through
mongrel2: test_e2e_uploads.py)."""

import pytest

from wsgid import framing

pytestmark = pytest.mark.one_mode  # see pyproject.toml


@pytest.mark.parametrize("headers,body_length,reason", [
    ({"transfer-encoding": "chunked", "content-length": "0"}, 0, "with Content-Length"),
    ({"transfer-encoding": "chunked", "content-length": "9"}, None, "with Content-Length"),
    ({"transfer-encoding": "gzip, chunked"}, 0, "decodes chunked alone"),
    ({"transfer-encoding": "xchunked"}, 0, "decodes chunked alone"),
    ({"transfer-encoding": "Chunked"}, 0, "decodes chunked alone"),
    ({"transfer-encoding": ["chunked", "chunked"]}, None, "decodes chunked alone"),
    ({"transfer-encoding": "chunked"}, 0, "not spooled"),
    ({"content-length": "2147483648"}, 0, "for a body of 0 bytes"),
    ({"content-length": "5"}, 4, "for a body of 4 bytes"),
])
def test_refused(headers, body_length, reason):
    assert reason in framing.refusal(headers, body_length)


@pytest.mark.parametrize("headers,body_length", [
    ({}, 0), ({}, 3), ({"content-length": "5"}, 5), ({"content-length": "007"}, 7),
    ({"transfer-encoding": "chunked"}, None), ({"content-length": "9"}, None),
])
def test_served(headers, body_length):
    assert framing.refusal(headers, body_length) is None
