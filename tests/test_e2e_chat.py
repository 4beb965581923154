"""The chat of the Django example (examples/django/app/chat) end to end:
real mongrel2, wsgid with 2 workers (broker dispatch), Django's auth through
the session cookie on the WebSocket handshake, the open sockets kept in the
database, a real WebSocket client (the ``websockets`` library)."""

import contextlib
import json
import os
import sqlite3
import statistics
import threading
import time
import urllib.parse

import pytest

from tests.support import djangosite
from tests.support.djangosite import cookie_header, header
from tests.support.marks import requires_mongrel2
from tests.support.waiting import wait_for
from tests.support.wsgid import connections_to

django = pytest.importorskip("django")
ws_client = pytest.importorskip("websockets.sync.client")
ws_exceptions = pytest.importorskip("websockets.exceptions")

pytestmark = [requires_mongrel2, pytest.mark.e2e]

SLOW_SECONDS = 4.0   # the slow view's sleep

# A slow view, added to the copy of the project the tests serve: it makes
# the file ``mark`` once under way, then sleeps ``s`` seconds.
SLOW_VIEW = '''

import time as _time

from django.http import HttpResponse as _HttpResponse


def _slow(request):
    open(request.GET["mark"], "a").close()
    _time.sleep(float(request.GET["s"]))
    return _HttpResponse("slept")


urlpatterns.append(path("slow/", _slow))
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    m2, app_path = djangosite.prepare(tmp_path_factory.mktemp("chat-e2e"),
                                      users=("alice", "bob", "carol"))
    with open(os.path.join(app_path, "app", "mysite", "urls.py"), "a") as f:
        f.write(SLOW_VIEW)
    with djangosite.serving(m2, app_path) as site:
        site.cookies = {name: site.login(name) for name in ("alice", "bob", "carol")}
        yield site


def connect(site, user=None, origin=None, path="/chat/ws"):
    """A WebSocket to the chat, with ``user``'s cookies."""
    headers = {"Cookie": cookie_header(site.cookies[user])} if user else None
    return ws_client.connect(site.ws_url(path), additional_headers=headers, origin=origin,
                             open_timeout=10, close_timeout=5)


def refused_status(site, **kwargs):
    with pytest.raises(ws_exceptions.InvalidStatus) as refused:
        connect(site, **kwargs).close()
    return refused.value.response.status_code


def receive(ws, timeout=10):
    return json.loads(ws.recv(timeout=timeout))


def open_sockets(site):
    """The chat's table of open sockets: [(conn, username)]."""
    db = sqlite3.connect(os.path.join(site.app_path, "db.sqlite3"), timeout=20)
    try:
        return db.execute("SELECT s.conn, u.username FROM chat_socket s "
                          "JOIN auth_user u ON u.id = s.user_id ORDER BY s.id").fetchall()
    finally:
        db.close()


def test_chat_page_needs_a_login(site):
    status, headers, _ = site.request("GET", "/chat/")
    assert status == 302
    assert header(headers, "Location") == "/accounts/login/?next=/chat/"


def test_chat_page_and_its_script_from_mongrel2(site):
    status, headers, body = site.request("GET", "/chat/", cookies=site.cookies["alice"])
    assert status == 200 and header(headers, "X-Wsgid")
    assert b'<strong id="me">alice</strong>' in body
    status, headers, script = site.request("GET", "/static/chat/chat.js")
    assert status == 200 and header(headers, "X-Wsgid") is None   # mongrel2's Dir route
    assert b'"/chat/ws"' in script


def test_anonymous_handshake_refused_403(site):
    assert refused_status(site) == 403
    # A session cookie that names no session: anonymous too.
    site.cookies["nobody"] = {"sessionid": "x" * 32}
    assert refused_status(site, user="nobody") == 403
    assert open_sockets(site) == []


def test_handshake_from_another_site_refused_403(site):
    """A page of another site opening a socket with this site's cookies
    (cross-site WebSocket hijacking): refused, its Origin is not this host."""
    assert refused_status(site, user="alice", origin="http://evil.example") == 403
    port = site.port
    with connect(site, user="alice", origin="http://127.0.0.1:%d" % port):
        pass


def test_other_paths_refused_404(site):
    assert refused_status(site, user="alice", path="/chat/other") == 404


def test_two_users_see_each_other_and_the_table_follows(site):
    with connect(site, "alice") as alice, connect(site, "bob") as bob:
        rows = wait_for(lambda: len(open_sockets(site)) == 2 and open_sockets(site), 10,
                        what="two open sockets in the table")
        assert sorted(user for _, user in rows) == ["alice", "bob"]
        alice.send("Hello Bob")
        for ws in (alice, bob):
            assert receive(ws) == {"user": "alice", "text": "Hello Bob"}
        bob.send("  Hi Alice, <b>é</b>  ")
        for ws in (alice, bob):
            assert receive(ws) == {"user": "bob", "text": "Hi Alice, <b>é</b>"}
        # Bob leaves: his row goes, Alice's stays.
        bob.close()
        wait_for(lambda: [u for _, u in open_sockets(site)] == ["alice"], 10,
                 what="bob's row removed")
        alice.send("still here")
        assert receive(alice) == {"user": "alice", "text": "still here"}
    wait_for(lambda: open_sockets(site) == [], 10, what="every row removed")


def test_master_reads_mongrel2_over_one_connection(site):
    """The handler is named only in Django's settings, which the master
    never reads: the workers tell it, and it keeps one connection to
    mongrel2's send_spec (over two, two frames of one socket could be taken
    in the wrong order)."""
    with connect(site, "alice") as alice:
        alice.send("one connection")
        assert receive(alice) == {"user": "alice", "text": "one connection"}
    assert len(connections_to(site.m2.send_port)) == 1


def test_binary_message_closes_1003(site):
    with connect(site, "carol") as carol:
        carol.send(b"\x00\x01")
        with pytest.raises(ws_exceptions.ConnectionClosed) as closed:
            carol.recv(timeout=10)
        assert closed.value.rcvd.code == 1003
    wait_for(lambda: open_sockets(site) == [], 10, what="carol's row removed")


def test_broadcast_reaches_every_socket_once(site):
    """Fifty sockets of three users: one message reaches each of them once."""
    users = ["alice", "bob", "carol"] * 17
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(connect(site, user)) for user in users[:50]]
        wait_for(lambda: len(open_sockets(site)) == 50, 20, what="50 open sockets")
        sockets[7].send("to everyone")
        for ws in sockets:
            assert receive(ws) == {"user": users[7], "text": "to everyone"}
        for ws in sockets:     # nothing more: each got it once
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.05)
    wait_for(lambda: open_sockets(site) == [], 20, what="every row removed")


class SlowClient(threading.Thread):
    """Keeps one request to the slow view in flight at all times."""

    def __init__(self, site, mark):
        super().__init__(daemon=True)
        self.site, self.mark, self.statuses = site, mark, []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            self.statuses.append(self.site.request(
                "GET", "/slow/?s=%g&mark=%s" % (SLOW_SECONDS, urllib.parse.quote(self.mark)),
                timeout=SLOW_SECONDS + 30)[0])


def round_trips(sender, receiver, count):
    """Seconds from ``sender``'s message to its arrival at ``receiver``."""
    times = []
    for i in range(count):
        text = "ping %d" % i
        t0 = time.monotonic()
        sender.send(text)
        while receive(receiver, timeout=SLOW_SECONDS * 3)["text"] != text:
            pass
        times.append(time.monotonic() - t0)
        while receive(sender, timeout=SLOW_SECONDS * 3)["text"] != text:   # its own copy
            pass
    return times


def test_slow_view_does_not_delay_chat_messages(site, tmp_path):
    """With a slow view (4 s) in a worker, chat messages are served by the
    other: none waits behind it (broker dispatch hands a frame to the worker
    holding the fewest; a worker in one request longer than 10 ms hands back
    what it had not started)."""
    with connect(site, "alice") as alice, connect(site, "bob") as bob:
        wait_for(lambda: len(open_sockets(site)) == 2, 10, what="two open sockets")
        quiet = round_trips(alice, bob, 20)
        mark = str(tmp_path / "slow-under-way")
        slow = SlowClient(site, mark)
        slow.start()
        try:
            wait_for(lambda: os.path.exists(mark), 10, what="the slow view under way")
            t0 = time.monotonic()
            busy = []
            while time.monotonic() - t0 < SLOW_SECONDS * 1.5:
                busy += round_trips(alice, bob, 5)
        finally:
            slow.stopping.set()
            slow.join(SLOW_SECONDS + 40)
        assert slow.statuses and set(slow.statuses) == {200}
        # Generous and relative: a message stuck behind the slow view would
        # take seconds; each took a small fraction of the slow view's time.
        assert max(busy) < SLOW_SECONDS / 4, (max(busy), statistics.median(quiet))
        assert statistics.median(busy) < max(0.2, 20 * statistics.median(quiet))


def test_rows_of_a_gone_generation_removed_at_open(site):
    """A row left by a mongrel2 or wsgid since restarted (its close could not
    be reported): the next handshake on that front-end removes it."""
    wait_for(lambda: open_sockets(site) == [], 10, what="the earlier tests' rows removed")
    db = sqlite3.connect(os.path.join(site.app_path, "db.sqlite3"), timeout=20)
    with db:
        db.execute("INSERT INTO chat_socket (conn, user_id, opened) SELECT '0:1:5', id, "
                   "'2026-01-01 00:00:00' FROM auth_user WHERE username = 'alice'")
    db.close()
    assert open_sockets(site) == [("0:1:5", "alice")]
    with connect(site, "bob"):
        rows = wait_for(lambda: open_sockets(site), 10, what="bob's row")
        assert [user for _, user in rows] == ["bob"]
        assert rows[0][0].startswith("0:") and rows[0][0] != "0:1:5"
    wait_for(lambda: open_sockets(site) == [], 10, what="every row removed")
