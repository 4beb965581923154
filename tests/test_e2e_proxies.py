"""Trusted proxies through a real mongrel2 (issue 24 part 4): X-Forwarded-For
and a secure-scheme header set REMOTE_ADDR and wsgi.url_scheme only when the
peer mongrel2 saw (here 127.0.0.1) is in --forwarded-allow-ips; from any
other peer a forged header changes nothing."""

import http.client
import json

import pytest

from tests.support.marks import requires_mongrel2
from tests.support.wsgid import Wsgid, make_app_folder, run
from wsgid.proxies import Proxies

pytestmark = [requires_mongrel2, pytest.mark.e2e]

FORGED = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"),
          ("X-Forwarded-Ssl", "on"), ("X-Forwarded-Protocol", "ssl")]
UNTOUCHED = {"REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "SERVER_PORT": "80"}


def seen(m2, headers, keys=tuple(UNTOUCHED)):
    """What the app's environ said of the client."""
    conn = http.client.HTTPConnection("127.0.0.1", m2.http_port, timeout=20)
    try:
        conn.putrequest("GET", "/", skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", "localhost")
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 200
        data = json.loads(resp.read())
    finally:
        conn.close()
    data.update(data.pop("headers"))
    return {k: data.get(k) for k in keys}


@pytest.fixture
def serve(m2_factory, tmp_path):
    """mongrel2 (with ``settings``) and wsgid with ``extra`` options."""
    procs = []

    def start(settings, *extra):
        m2 = m2_factory(settings=settings)
        app_path = make_app_folder(str(tmp_path / str(len(procs))), "e2e_app.py")
        procs.append(Wsgid(m2, app_path, "--wsgi-app", "e2e_app:app", *extra).start())
        return m2
    yield start
    for proc in procs:
        proc.stop()


PASS_XFF = {"no_clobber_xff": 1}  # mongrel2 passes the client's X-Forwarded-For on


@pytest.mark.parametrize("extra", [(), ("--forwarded-allow-ips", "10.0.0.1,192.168.0.0/16")],
                         ids=["none-allowed", "other-peers-allowed"])
def test_forged_headers_from_a_peer_not_allowed_change_nothing(serve, extra):
    m2 = serve(PASS_XFF, *extra)
    assert seen(m2, FORGED, ["HTTP_X_FORWARDED_FOR"]) == {"HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    assert seen(m2, FORGED) == UNTOUCHED
    assert seen(m2, [("X-Forwarded-For", "6.6.6.6, 127.0.0.1")]) == UNTOUCHED


def test_an_allowed_peer_says_the_client_and_the_scheme(serve):
    m2 = serve(PASS_XFF, "--forwarded-allow-ips", "127.0.0.1", "--forwarded-allow-ips",
               "10.0.0.0/8")
    assert seen(m2, FORGED[:2]) == {"REMOTE_ADDR": "203.0.113.7", "wsgi.url_scheme": "https",
                                    "SERVER_PORT": "443"}
    # Through two balancers (10.0.0.2 trusted): the client is the one before
    # them; what the client wrote first is not believed.
    chain = [("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.0.0.2")]
    assert seen(m2, chain)["REMOTE_ADDR"] == "203.0.113.7"
    assert seen(m2, [])["REMOTE_ADDR"] == "127.0.0.1"  # no header: the peer
    # Contradicting scheme headers leave the scheme as mongrel2 gave it.
    assert seen(m2, [("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off")]) \
        ["wsgi.url_scheme"] == "http"


def test_secure_scheme_header_replaces_the_defaults(serve):
    m2 = serve(PASS_XFF, "--forwarded-allow-ips", "*", "--secure-scheme-header", "X-Scheme=HTTPS")
    assert seen(m2, [("X-Scheme", "https")])["wsgi.url_scheme"] == "https"
    assert seen(m2, [("X-Forwarded-Proto", "https")])["wsgi.url_scheme"] == "http"


def test_mongrel2_replaces_the_clients_forwarded_for_by_default(serve):
    """Without no_clobber_xff mongrel2 1.12 writes its peer's address over
    the client's X-Forwarded-For: even a trusted peer's header is lost."""
    m2 = serve({}, "--forwarded-allow-ips", "127.0.0.1")
    assert seen(m2, FORGED[:1])["REMOTE_ADDR"] == "127.0.0.1"


def test_a_bad_address_stops_start_in_one_line(tmp_path):
    proc = run("--no-daemon", "--app-path", make_app_folder(str(tmp_path), "e2e_app.py"),
               "--recv", "tcp://127.0.0.1:1", "--send", "tcp://127.0.0.1:2",
               "--forwarded-allow-ips", "127.0.0.1,nowhere", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "--forwarded-allow-ips" in proc.stderr


@pytest.mark.parametrize("allow, secure", [(["10.0.0.300"], []), (["nowhere"], []),
                                           (["*"], ["X-Proto"]), (["*"], ["=https"])])
def test_bad_values_are_refused(allow, secure):
    with pytest.raises(ValueError):
        Proxies(allow, secure)
