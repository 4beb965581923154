"""Request filters: the registry, the safe runners, and their hooks in the worker."""

import logging

import pytest

from tests.support import wire
from wsgid import filters, message
from wsgid.request_handler import RequestHandler
from wsgid.sources import Source


@pytest.fixture(autouse=True)
def no_filters():
    filters.clear()
    yield
    filters.clear()


REQUEST = object()  # the runners pass the request through untouched


def test_pre_request_changes_in_place_or_replaces():
    def add(request, environ):
        assert request is REQUEST
        environ["X_ADDED"] = "1"

    def replace(request, environ):
        return dict(environ, X_REPLACED=environ["X_ADDED"] + "2")

    filters.register("pre_request", add)
    filters.register("pre_request", replace)
    assert filters.run_pre_request(REQUEST, {"A": "a"}) == {"A": "a", "X_ADDED": "1",
                                                          "X_REPLACED": "12"}


def test_raising_pre_request_filter_is_logged_skipped_and_its_changes_dropped(caplog):
    def half_done(request, environ):
        environ["PATH_INFO"] = "/hijacked"
        raise RuntimeError("filter bug")

    def after(request, environ):
        environ["SEEN_PATH"] = environ["PATH_INFO"]

    filters.register("pre_request", half_done, "half_done")
    filters.register("pre_request", after)
    with caplog.at_level(logging.ERROR, logger="wsgid"):
        environ = filters.run_pre_request(REQUEST, {"PATH_INFO": "/"})
    assert environ == {"PATH_INFO": "/", "SEEN_PATH": "/"}
    assert "Pre-request filter half_done failed; skipped" in caplog.text
    assert "RuntimeError: filter bug" in caplog.text


def test_pre_request_bad_return_is_skipped(caplog):
    filters.register("pre_request", lambda request, environ: ["not", "a", "dict"], "bad")
    with caplog.at_level(logging.ERROR, logger="wsgid"):
        assert filters.run_pre_request(REQUEST, {"A": "a"}) == {"A": "a"}
    assert "Pre-request filter bad returned list" in caplog.text


def test_post_request_chain_sees_and_changes_status_and_headers():
    seen = []

    def first(request, status, headers):
        seen.append((status, list(headers)))
        return "201 Created", headers + [("X-First", "1")]

    def second(request, status, headers):
        seen.append((status, list(headers)))
        headers.append(("X-Ignored", "in-place changes of a copy, returned None"))

    def third(request, status, headers):
        return status, [h for h in headers if h[0] != "X-Drop"] + [("X-Third", "3")]

    for f in (first, second, third):
        filters.register("post_request", f)
    status, headers = filters.run_post_request(REQUEST, "200 OK",
                                               [("Content-Type", "text/plain"), ("X-Drop", "x")])
    assert status == "201 Created"
    assert headers == [("Content-Type", "text/plain"), ("X-First", "1"), ("X-Third", "3")]
    assert seen[1][0] == "201 Created"


@pytest.mark.parametrize("result", [
    "200 OK", ("200 OK",), ("OK", []), ("200OK", []), ("200 OK\r\nX-Evil: 1", []),
    ("200 OK", [("X-Evil", "a\r\nSet-Cookie: b")]), ("200 OK", [("X", 1)]),
    ("200 OK", "X: y"), ("200 OK", [("",  "v")]), (200, []),
])
def test_post_request_bad_results_are_skipped(result, caplog):
    filters.register("post_request", lambda request, status, headers: result, "bad")
    with caplog.at_level(logging.ERROR, logger="wsgid"):
        out = filters.run_post_request(REQUEST, "200 OK", [("A", "b")])
    assert out == ("200 OK", [("A", "b")])
    assert "Post-request filter bad returned" in caplog.text


def test_raising_post_request_filter_is_skipped(caplog):
    def broken(request, status, headers):
        headers.append(("X-Half", "done"))
        raise KeyError("oops")

    filters.register("post_request", broken, "broken")
    filters.register("post_request", lambda r, s, h: (s, h + [("X-Ok", "1")]))
    with caplog.at_level(logging.ERROR, logger="wsgid"):
        out = filters.run_post_request(REQUEST, "404 Not Found", [])
    assert out == ("404 Not Found", [("X-Ok", "1")])
    assert "Post-request filter broken failed; skipped" in caplog.text


def test_wrap_start_response():
    calls = []

    def start_response(status, headers, exc_info=None):
        calls.append((status, headers, exc_info))
        return "write"

    assert filters.wrap_start_response(REQUEST, start_response) is start_response
    filters.register("post_request", lambda r, s, h: ("202 Accepted", h))
    wrapped = filters.wrap_start_response(REQUEST, start_response)
    assert wrapped("200 OK", [("A", "b")]) == "write"
    info = (ValueError, ValueError("x"), None)
    wrapped("500 Oops", [], info)
    assert calls == [("202 Accepted", [("A", "b")], None), ("202 Accepted", [], info)]


def test_request_exception_filters_all_told_even_if_one_raises(caplog):
    told = []
    filters.register("request_exception", lambda r, exc: 1 / 0, "divides")
    filters.register("request_exception", lambda r, exc: told.append(exc))
    boom = RuntimeError("boom")
    with caplog.at_level(logging.ERROR, logger="wsgid"):
        filters.run_request_exception(REQUEST, boom)
    assert told == [boom]
    assert "Request-exception filter divides failed; skipped" in caplog.text


def test_register_checks():
    with pytest.raises(ValueError):
        filters.register("during_request", lambda: None)
    with pytest.raises(TypeError):
        filters.register("pre_request", "not callable")
    assert not filters.active()
    filters.register("request_exception", print)
    assert filters.active()
    assert filters.registered("request_exception") == [("builtins.print", print)]
    filters.clear()
    assert filters.registered() == {h: [] for h in filters.HOOKS}


# -- through the request handler ------------------------------------------------------------

def serve(app, path="/"):
    """Run one request through RequestHandler.call_app; return the parsed response."""
    sent = []

    class Recording:
        def sender(self, sender, conn_id):
            return lambda data, hold=False, limit=0: sent.append(data)

    handler = RequestHandler(app, Recording(), Source())
    handler.dispatch(message.parse(wire.request({
        "PATH": path, "METHOD": "GET", "VERSION": "HTTP/1.1", "URI": path, "PATTERN": "/",
        "host": "localhost"})))
    return wire.parse_response([s for s in sent if s])


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ.get("HTTP_X_FROM_FILTER", "none").encode()]


def test_worker_runs_the_filters_around_the_app():
    def pre(request, environ):
        assert request.headers["PATH"] == "/"
        environ["HTTP_X_FROM_FILTER"] = "pre"

    filters.register("pre_request", pre)
    filters.register("post_request", lambda r, s, h: ("203 Filtered", h + [("X-Post", "1")]))
    response = serve(hello)
    assert response.status_line == "HTTP/1.1 203 Filtered"
    assert ("X-Post", "1") in response.headers
    assert response.body == b"pre"


def test_worker_isolates_broken_filters(caplog):
    def broken_pre(request, environ):
        raise RuntimeError("pre is broken")

    def broken_post(request, status, headers):
        raise RuntimeError("post is broken")

    filters.register("pre_request", broken_pre)
    filters.register("post_request", broken_post)
    filters.register("request_exception", lambda r, e: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="wsgid"):
        response = serve(hello)
    assert response.status == 200 and response.body == b"none"
    assert "pre is broken" in caplog.text and "post is broken" in caplog.text


def test_worker_tells_filters_about_app_exceptions():
    told = []

    def failing(environ, start_response):
        raise LookupError("app bug")

    def failing_in_body(environ, start_response):
        start_response("200 OK", [("Content-Length", "10")])
        yield b"12345"
        raise LookupError("body bug")

    filters.register("request_exception", lambda request, exc: told.append(str(exc)))
    assert serve(failing).status == 500
    serve(failing_in_body)
    assert told == ["app bug", "body bug"]
