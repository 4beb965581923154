"""Deployment conventions: sd_notify messages, process titles, access log."""

import os
import signal

import pytest

from tests.support.http import get
from tests.support.marks import requires_mongrel2
from tests.support.waiting import wait_for
from tests.support.wsgid import Wsgid, make_app_folder
from wsgid import appfolder

pytestmark = [requires_mongrel2, pytest.mark.e2e]


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().replace(b"\0", b" ").strip().decode()


def test_notify_socket_titles_and_access_log(m2_factory, tmp_path, notify_socket):
    sock = notify_socket
    m2 = m2_factory()
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    access = tmp_path / "access.log"
    proc = Wsgid(m2, app_path, "--wsgi-app", "e2e_app:app", "--workers", "2",
                 "--access-log", str(access))
    try:
        proc.start()
        fields = sock.recv(4096).decode().split("\n")
        assert "READY=1" in fields and "MAINPID=%d" % proc.proc.pid in fields

        # Process titles, as ps shows them.
        assert cmdline(proc.proc.pid) == "wsgid: master %s" % app_path
        workers = appfolder.pids(app_path, "worker")
        assert len(workers) == 2 and all(cmdline(p) == "wsgid: worker" for p in workers)

        # Access log lines for a GET, a POST and a target as the client sent it.
        get(m2.url, "/path?q=1", headers={"User-Agent": "tester/1.0", "Referer": "http://r/"})
        get(m2.url, "/form", method="POST", body=b"a=1",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        get(m2.url, "/a%3Fb%20c?x=1")
        wait_for(lambda: access.exists() and len(access.read_text().splitlines()) >= 4, 10,
                 what="access log lines")
        lines = access.read_text().splitlines()[-3:]
        import re
        combined = re.compile(r'^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
                              r'"(\S+) (\S+) HTTP/1\.1" (\d{3}) (\d+) "([^"]*)" "([^"]*)" '
                              r'(\d+)$')
        # Each worker writes its line after its reply: they may come in any order.
        matches = [combined.match(line) for line in lines]
        assert all(matches), lines
        by_target = {match.group(2): match for match in matches}
        get_line, post_line = by_target["/path?q=1"], by_target["/form"]
        encoded_line = by_target.get("/a%3Fb%20c?x=1")
        assert encoded_line, lines
        assert get_line.groups()[:3] == ("GET", "/path?q=1", "200")
        assert get_line.group(5, 6) == ("http://r/", "tester/1.0")
        assert post_line.groups()[:3] == ("POST", "/form", "200")
        assert int(post_line.group(4)) > 0
        assert encoded_line.group(2) == "/a%3Fb%20c?x=1"

        os.kill(proc.proc.pid, signal.SIGHUP)
        assert sock.recv(4096).decode().split("\n")[0] == "RELOADING=1"
        assert sock.recv(4096).decode().split("\n")[0] == "READY=1"
        os.kill(proc.proc.pid, signal.SIGTERM)
        assert sock.recv(4096).decode().split("\n")[0] == "STOPPING=1"
        proc.proc.wait(15)
    finally:
        proc.stop()
