"""Logs an operator can use, behind a real mongrel2: the access log's
formats (checked against gunicorn's own line), USR1 reopening under load,
a daemon's stdout/stderr in wsgid.log, --log-level."""

import json
import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from tests.support import ROOT
from tests.support.http import get
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import free_port
from tests.support.waiting import wait_for
from tests.support.wsgid import Wsgid, make_app_folder
from tests.support.wsgid import run as wsgid

pytestmark = [requires_mongrel2, pytest.mark.e2e]

APP = '''import logging
import sys

logging.basicConfig(stream=sys.stderr, format="%(name)s: %(message)s")  # a "console" handler


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/say":
        print("printed by the app")
        logging.getLogger("myapp").error("logged by the app")
        environ["wsgi.errors"].write("written to wsgi.errors\\n")
    if path == "/boom":
        raise RuntimeError("boom for the log")
    body = b"hello"
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Reply", "r1"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''
HEADERS = {"User-Agent": "tester/1.0", "Referer": "http://ref/", "X-Custom": "c1",
           "Authorization": "Basic YWxpY2U6c2VjcmV0"}  # alice:secret
# Every atom with a value fixed by the request (not the time, nor the pid).
FIXED = ('%(h)s %(l)s %(u)s "%(r)s" %(s)s %(b)s %(B)s "%(f)s" "%(a)s" %(m)s %(U)s %(q)s %(H)s '
         '%({x-custom}i)s %({X-Custom}i)s %({x-reply}o)s %({content-type}o)s %({x-nothing}i)s '
         '%(nothing)s')
TIMED = "%(t)s %(T)s %(M)s %(D)s %(L)s %(p)s"


def start(m2_factory, tmp_path, *extra, daemon=True):
    app_path = make_app_folder(str(tmp_path), sources={"logapp.py": APP})
    d = Wsgid(m2_factory(), app_path, "--wsgi-app", "logapp:app", *extra, daemon=daemon,
              stop_signal=signal.SIGKILL)
    return d.start()


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def gunicorn_line(tmp_path, fmt, target):
    """The line gunicorn itself writes for the same app and request."""
    port = free_port()
    log = str(tmp_path / "gunicorn-access.log")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:%d" % port, "--workers", "1",
         "--chdir", str(tmp_path / "appfolder" / "app"), "--access-logfile", log,
         "--access-logformat", fmt, "logapp:app"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = "http://127.0.0.1:%d" % port

        def answers():
            try:
                return get(url, "/ready", timeout=1)[0] == 200
            except OSError:
                return False
        wait_for(answers, 20, what="gunicorn")
        assert get(url, target, headers=HEADERS)[0] == 200
        wait_for(lambda: len(lines(log)) >= 2, 10, what="gunicorn's access line")
        return lines(log)[1]
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("target", ["/a%20b/c?x=1&y=%22q%22", "/plain"])
def test_access_log_format_writes_what_gunicorn_writes(m2_factory, tmp_path, target):
    access = str(tmp_path / "access.log")
    d = start(m2_factory, tmp_path, "--access-log", access, "--access-log-format",
              FIXED + " " + TIMED)
    try:
        assert get(d.m2.url, target, headers=HEADERS)[0] == 200
        wait_for(lambda: len(lines(access)) >= 2, 10, what="the access line")
        ours = lines(access)[-1]
    finally:
        d.stop()
    theirs = gunicorn_line(tmp_path, FIXED + " " + TIMED, target)
    timed = re.compile(r" (\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]) (\d+) (\d+) (\d+) "
                       r"(\d+\.\d{6}) <(\d+)>$")
    ours_timed, theirs_timed = timed.search(ours), timed.search(theirs)
    assert ours_timed and theirs_timed, (ours, theirs)
    assert ours[:ours_timed.start()] == theirs[:theirs_timed.start()]
    assert 'alice "GET %s HTTP/1.1" 200 5 5 "http://ref/" "tester/1.0"' % target.replace(
        '"', '\\"') in ours
    t, seconds, milli, micro, decimal, pid = ours_timed.groups()
    assert int(micro) // 1000 == int(milli) and int(micro) // 1000000 == int(seconds)
    assert decimal == "%d.%06d" % divmod(int(micro), 1000000)
    assert int(pid) in d.seen


def test_default_and_json_access_log(m2_factory, tmp_path):
    plain, as_json = str(tmp_path / "plain.log"), str(tmp_path / "json.log")
    d = start(m2_factory, tmp_path, "--access-log", plain)
    try:
        get(d.m2.url, "/x?y=1", headers=HEADERS)
        wait_for(lambda: len(lines(plain)) >= 2, 10, what="the access line")
    finally:
        d.stop()
    # The combined log format, then the time taken in microseconds.
    assert re.match(r'^127\.0\.0\.1 - alice \[[^]]+\] "GET /x\?y=1 HTTP/1\.1" 200 5 '
                    r'"http://ref/" "tester/1\.0" \d+$', lines(plain)[-1]), lines(plain)
    d = start(m2_factory, tmp_path / "j", "--access-log", as_json, "--access-log-format", "json")
    try:
        get(d.m2.url, "/x?y=1", headers=HEADERS)
        wait_for(lambda: len(lines(as_json)) >= 2, 10, what="the access line")
    finally:
        d.stop()
    record = json.loads(lines(as_json)[-1])
    assert {k: record[k] for k in ("remote_addr", "user", "method", "target", "protocol",
                                   "status", "size", "referer", "user_agent")} == {
        "remote_addr": "127.0.0.1", "user": "alice", "method": "GET", "target": "/x?y=1",
        "protocol": "HTTP/1.1", "status": 200, "size": 5, "referer": "http://ref/",
        "user_agent": "tester/1.0"}
    assert record["duration_us"] >= 0 and record["pid"] in d.seen


def test_a_bad_access_log_format_is_one_line(tmp_path):
    app_path = make_app_folder(str(tmp_path), sources={"logapp.py": APP})
    proc = wsgid("--app-path", app_path, "--recv", "tcp://127.0.0.1:1", "--send",
                 "tcp://127.0.0.1:2", "--access-log", "-", "--access-log-format", "%(h)d %(",
                 check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("wsgid: error: --access-log-format: '%(h)d %(' is not an "
                                  "access log format")


def test_usr1_reopens_the_logs_under_load_losing_no_line(m2_factory, tmp_path):
    """As logrotate does without copytruncate: move the files, USR1 the
    master; every request answered has its access line, once, in one of
    the files; the new files get what comes after."""
    access = str(tmp_path / "access.log")
    d = start(m2_factory, tmp_path, "--workers", "2", "--access-log", access)
    wsgid_log = d.log_path
    done, running, lock = [], [True], threading.Lock()

    def client(name):
        n = 0
        while running[0]:
            n += 1
            target = "/r?%s-%d" % (name, n)
            try:
                if get(d.m2.url, target, timeout=5)[0] == 200:
                    with lock:
                        done.append(target)
            except OSError:
                pass
    threads = [threading.Thread(target=client, args=(name,)) for name in "ab"]
    try:
        for thread in threads:
            thread.start()
        for rotation in range(1, 4):
            wait_for(lambda: len(done) >= 20 * rotation, 20, what="requests answered")
            os.rename(access, "%s.%d" % (access, rotation))
            os.rename(wsgid_log, "%s.%d" % (wsgid_log, rotation))
            if rotation == 1:
                os.kill(d.master, signal.SIGUSR1)
            else:  # as examples/logrotate does
                wsgid("reopen", "--app-path", d.app_path)
            wait_for(lambda: os.path.exists(access) and os.path.exists(wsgid_log), 10,
                     what="the logs reopened")
        count = len(done)
        wait_for(lambda: len(done) >= count + 20, 20, what="requests after the last rotation")
        # The workers' own log lines go to the new wsgid.log too.
        assert get(d.m2.url, "/boom")[0] == 500
        wait_for(lambda: "boom for the log" in d.log(), 10, what="the worker's line")
    finally:
        running[0] = False
        for thread in threads:
            thread.join(10)
        d.stop()
    logged = [line.split('"')[1].split()[1] for i in range(4)
              for line in lines(access + (".%d" % i if i else ""))]
    assert sorted(target for target in logged if target.startswith("/r?")) == sorted(done)
    assert lines(access), "nothing written to the new access log"
    assert "Log files reopened" in lines(wsgid_log + ".1")[-1] or any(
        "Log files reopened" in line for line in lines(wsgid_log))


def test_a_daemons_stdout_stderr_and_wsgi_errors_go_to_wsgid_log(m2_factory, tmp_path):
    d = start(m2_factory, tmp_path, "--log-level", "warning")
    try:
        status, _, _ = get(d.m2.url, "/say")
        assert status == 200
        worker = d.workers()[0]
        tag = "- app [pid=%d] - " % worker
        for line in ("STDOUT - printed by the app", "STDERR - myapp: logged by the app",
                     "STDERR - written to wsgid.errors".replace("wsgid.", "wsgi.")):
            wait_for(lambda: tag + line in d.log(), 10, what=line)
        # --log-level warning: wsgid's INFO lines are left out, its errors kept.
        assert get(d.m2.url, "/boom")[0] == 500
        wait_for(lambda: "Error in the application" in d.log(), 10, what="the error")
        assert " - INFO - " not in d.log()
    finally:
        d.stop()
