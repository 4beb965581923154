"""wsgid.scoreboard: a worker's record as the master reads it, across a
fork, never half-written; the RSS of a process; what status shows."""

import os
import time
import types

from wsgid import scoreboard
from wsgid.contract import DUMP
from wsgid.scoreboard import Score


def test_a_new_score_is_idle():
    assert Score().read() == (0, 0.0, "", "")


def test_begin_then_end():
    score = Score()
    before = time.monotonic()
    score.begin("POST", b"/form")
    served, since, method, path = score.read()
    assert (served, method, path) == (0, "POST", "/form")
    assert before <= since <= time.monotonic()
    score.end()
    assert score.read() == (1, 0.0, "", "")
    score.begin("GET", b"/")
    assert score.read()[:1] == (1,)
    score.end()
    assert score.read() == (2, 0.0, "", "")


def test_requests_counted_by_front_end_status_class_and_duration(monkeypatch):
    """What --metrics sums: a worker's finished requests by front-end and
    status class, by duration bucket, and their total time; an upload's
    start message is no request of its own."""
    clock = [100.0]
    monkeypatch.setattr(scoreboard.time, "monotonic", lambda: clock[0])
    score = Score(2)
    for front, status, seconds in ((0, "200 OK", 0.003), (1, "404 Not Found", 0.3),
                                   (1, None, 20.0), (0, "", 1.0), (5, "503 Busy", 0.003)):
        score.begin("GET", b"/")
        clock[0] += seconds
        score.end(front, status)
    by_class, buckets, total, uploading = score.totals()
    # front 5 is past the two known: counted with the last
    assert by_class == [[0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]]
    assert buckets[0] == 2 and buckets[scoreboard.BUCKETS.index(0.5)] == 1
    assert buckets[-1] == 1 and sum(buckets) == 4
    assert abs(total - 20.306) < 1e-6 and not uploading
    score.uploading(True)
    assert score.totals()[3]


def test_long_method_and_path_are_truncated():
    score = Score()
    score.begin("M" * 40, b"/" + b"p" * 1000)
    _, _, method, path = score.read()
    assert method == "M" * (scoreboard.METHOD_SIZE - 1)
    assert path == "/" + "p" * (scoreboard.PATH_SIZE - 2)


def test_text_beyond_latin1_is_replaced_not_raised():
    score = Score()
    score.begin("G\u20acT", "/caf\u00e9".encode("latin-1"))
    assert score.read()[2:] == ("G?T", "/caf\u00e9")


def test_the_master_reads_what_a_forked_worker_writes():
    score = Score()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            score.begin("GET", b"/done")
            score.end()
            score.begin("PUT", b"/in-hand")
            os.write(w, b"x")
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"x"
    os.close(r)
    os.waitpid(pid, 0)
    served, since, method, path = score.read()
    assert (served, method, path) == (1, "PUT", "/in-hand") and since > 0


def test_never_a_half_written_record():
    """A worker writes two kinds of request as fast as it can; each record
    the master reads is whole: the path matches the method."""
    score = Score()
    kinds = {"AAAA": b"/" + b"a" * 200, "BBBB": b"/" + b"b" * 100}
    pid = os.fork()
    if pid == 0:
        try:
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                for method, path in kinds.items():
                    score.begin(method, path)
                    score.end()
        finally:
            os._exit(0)
    seen = set()
    try:
        reads = 0
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            served, since, method, path = score.read()
            reads += 1
            if since:
                assert path == kinds[method].decode(), (method, path)
                seen.add(method)
            else:
                assert (method, path) == ("", "")
    finally:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    assert reads > 100 and seen  # the reads did overlap the writes


def test_rss_of_a_live_and_a_gone_process():
    assert scoreboard.rss(os.getpid()) > 1 << 20
    gone = os.fork()
    if gone == 0:
        os._exit(0)
    os.waitpid(gone, 0)
    assert scoreboard.rss(gone) is None


def test_describe_idle_and_busy():
    score = Score()
    now = time.monotonic()
    idle = scoreboard.describe(os.getpid(), score, now - 12.34, now)
    assert idle == {"pid": os.getpid(), "state": "idle", "served": 0,
                    "rss": idle["rss"], "uptime": 12.3, "retiring": False, "generation": 0}
    assert idle["rss"] > 0
    score.begin("GET", b"/slow")
    busy = scoreboard.describe(os.getpid(), score, now - 5, time.monotonic() + 2,
                               retiring=True)
    assert (busy["state"], busy["method"], busy["path"], busy["retiring"]) == (
        "busy", "GET", "/slow", True)
    assert 2.0 <= busy["age"] < 3.0


# -- the heartbeat (--timeout) ---------------------------------------------------------

def _master_with_one_worker(timeout=5):
    from wsgid import children, master
    options = types.SimpleNamespace(app_path="/nonexistent", workers=1, timeout=timeout,
                                    graceful_timeout=5)
    m = master.Master(options, run_worker=None)
    proc = children.Child(4242, 0)
    m.workers = {proc.pid: proc}
    m.killed = []
    m._kill = lambda pid, sig: m.killed.append((pid, sig))
    return m, proc


def test_a_wall_clock_step_kills_no_worker(monkeypatch):
    """The heartbeat is on the monotonic clock, in the worker's score: a
    wall clock set forward by more than --timeout (NTP, an operator) is
    not a worker gone silent."""
    m, proc = _master_with_one_worker()
    proc.score.beat()
    wall = time.time
    monkeypatch.setattr(time, "time", lambda: wall() + 3600)
    m._murder_silent()
    assert m.killed == []


def test_a_worker_silent_past_timeout_is_dumped_then_killed(monkeypatch):
    m, proc = _master_with_one_worker(timeout=5)
    proc.score.beat()
    clock = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: clock() + 6)
    m._murder_silent()
    assert m.killed == [(4242, DUMP)]
