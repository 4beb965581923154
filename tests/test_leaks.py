"""Leaks: 10,000 requests through a real mongrel2 (uploads through its temp
file, exceptions, streamed bodies), then the worker's open file descriptors,
the temp files in mongrel2's chroot and the worker's RSS are back where they
started."""

import hashlib
import http.client
import os
import threading
import time

import pytest

from tests.support.marks import requires_mongrel2
from tests.support.waiting import wait_for
from tests.support.procfs import alive, fd_count, fd_targets, rss_kib
from tests.support.wsgid import live_pids, make_app_folder

pytestmark = [requires_mongrel2, pytest.mark.e2e]

TOTAL = 10000
WARM_UP = 600
THREADS = 2
RSS_SLACK_KIB = 3 * 1024
CONTENT_LENGTH = 4096           # mongrel2's limits.content_length (4096 is the safe minimum)
UPLOAD = bytes(range(256)) * 40  # 10 KiB: over the limit, so through the temp file
UPLOAD_SHA = hashlib.sha256(UPLOAD).hexdigest().encode()


def _plan(count, offset=0):
    """A fixed mix: 1 in 8 an upload, 1 in 10 an exception, 1 in 20 a
    generator body, the rest small GETs."""
    out = []
    for i in range(offset, offset + count):
        if i % 8 == 3:
            out.append(("POST", "/sha256", UPLOAD, 200))
        elif i % 10 == 7:
            out.append(("GET", "/boom", None, 500))
        elif i % 20 == 11:
            out.append(("GET", "/gen", None, 200))
        else:
            out.append(("GET", "/?n=%d" % i, None, 200))
    return out


class Client(threading.Thread):
    """One keep-alive connection (reopened after a close), sending its share."""

    def __init__(self, port, plan):
        super().__init__(daemon=True)
        self.port, self.plan = port, plan
        self.errors = []
        self.done = 0

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            for method, path, body, expected in self.plan:
                conn.request(method, path, body=body)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != expected or (path == "/sha256" and UPLOAD_SHA not in data):
                    self.errors.append((path, resp.status, data[:100]))
                if resp.will_close:
                    conn.close()
                self.done += 1
        except Exception as exc:  # reported by the test
            self.errors.append(("exception", repr(exc)))
        finally:
            conn.close()


def run_plan(port, plan):
    clients = [Client(port, plan[i::THREADS]) for i in range(THREADS)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(120)
    errors = [e for c in clients for e in c.errors]
    assert not errors, errors[:5]
    assert sum(c.done for c in clients) == len(plan)


def temp_files(m2):
    return sorted(os.listdir(m2.upload_dir()))


@pytest.mark.parametrize("dispatch", ["direct", "broker"])
def test_10000_requests_leave_no_fd_temp_file_or_memory_behind(m2_factory, wsgid_factory,
                                                               tmp_path, capsys, dispatch):
    m2 = m2_factory(content_length=CONTENT_LENGTH)
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    master = wsgid_factory(m2, app_path, "--wsgi-app", "e2e_app:app", "--workers", "1",
                           "--dispatch", dispatch).proc.pid
    worker = wait_for(lambda: live_pids(app_path, "worker"), 10, what="the worker")[0]

    run_plan(m2.http_port, _plan(WARM_UP))
    wait_for(lambda: temp_files(m2) == [], 5, what="warm-up temp files gone")
    fds0, targets0, rss0 = fd_count(worker), fd_targets(worker), rss_kib(worker)
    master_fds0, master_rss0 = fd_count(master), rss_kib(master)

    t0 = time.monotonic()
    run_plan(m2.http_port, _plan(TOTAL, WARM_UP))
    elapsed = time.monotonic() - t0
    # The last upload's file is closed and removed just after its response
    # went out: give the worker a moment (a deadline, not a sleep).
    try:
        wait_for(lambda: temp_files(m2) == [] and fd_count(worker) == fds0, 5,
                 what="the worker back to its start values")
    except TimeoutError:
        pass  # the assertions below say what is off
    fds1, targets1, rss1 = fd_count(worker), fd_targets(worker), rss_kib(worker)
    master_fds1, master_rss1 = fd_count(master), rss_kib(master)
    left = temp_files(m2)
    with capsys.disabled():
        print("\n[leaks, %s] %d requests (%d uploads via temp file, %d exceptions) in %.1fs "
              "= %.0f req/s; worker fds %d -> %d, RSS %d -> %d KiB, temp files left %d; "
              "master fds %d -> %d, RSS %d -> %d KiB"
              % (dispatch, TOTAL, sum(1 for p in _plan(TOTAL, WARM_UP) if p[1] == "/sha256"),
                 sum(1 for p in _plan(TOTAL, WARM_UP) if p[1] == "/boom"), elapsed,
                 TOTAL / elapsed, fds0, fds1, rss0, rss1, len(left), master_fds0, master_fds1,
                 master_rss0, master_rss1))
    assert alive(worker)
    assert left == [], "upload temp files left in mongrel2's chroot: %s" % left[:5]
    assert fds1 == fds0, (targets0, targets1)
    assert rss1 - rss0 < RSS_SLACK_KIB
    assert master_fds1 == master_fds0
    assert master_rss1 - master_rss0 < RSS_SLACK_KIB
