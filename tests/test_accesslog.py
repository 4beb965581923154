"""wsgid.accesslog: the request line shows the target as the client sent it."""

import re

import pytest

from wsgid.accesslog import AccessLog

pytestmark = pytest.mark.one_mode  # see pyproject.toml

ENVIRON = {"REMOTE_ADDR": "127.0.0.1", "REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1",
           "HTTP_USER_AGENT": "tester/1.0"}
LINE = re.compile(r'^127\.0\.0\.1 - - \[[^]]+\] "GET (.*) HTTP/1\.1" 200 5 "-" "tester/1\.0" 1234$')


def logged(tmp_path, target, environ=ENVIRON):
    path = tmp_path / "access.log"
    log = AccessLog(str(path))
    log.write(dict(environ), target, "200 OK", 5, [], 0.001234)
    log.stream.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    match = LINE.match(lines[0])
    assert match, lines[0]
    return match.group(1)


@pytest.mark.parametrize("target", ["/a%3Fb?x=1", "/a%20b", "/caf%C3%A9/x?q=%22", "/plain"])
def test_percent_encoded_target_logged_as_sent(tmp_path, target):
    """Not the decoded path: /a%3Fb?x=1 would read /a?b?x=1, /a%20b would
    split the line's fields."""
    environ = dict(ENVIRON, PATH_INFO="/decoded differs", QUERY_STRING="x=1")
    assert logged(tmp_path, target, environ) == target


@pytest.mark.parametrize("target,shown", [("/caf\xc3\xa9", "/caf\\xc3\\xa9"),
                                          ('/a"b\nc', '/a\\"b\\nc')])
def test_non_ascii_target_escaped_on_one_line(tmp_path, target, shown):
    """Raw bytes a client sent (mongrel2 hands them over as latin-1
    characters) are escaped, as are quotes and line breaks."""
    assert logged(tmp_path, target) == shown
