"""Several mongrel2 front-ends, one wsgid (issue 15, item 1): two real
mongrel2 servers, one pool of two workers, in both dispatch modes. Each
request is answered through the mongrel2 that sent it, and one front-end
stopped and started again does not disturb the other."""

import json
import threading
import time

import pytest

from tests.support.http import Load, get
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import SEND_IDENT, SERVER_UUID, wait_for
from tests.support.wsgid import make_app_folder

pytestmark = [requires_mongrel2, pytest.mark.e2e]


def start_two(m2_factory, wsgid_factory, tmp_path, dispatch, **identity):
    """(front-end a, front-end b, wsgid serving both with 2 workers);
    ``identity``: the server UUID and send_ident both take, if any."""
    a, b = m2_factory(**identity), m2_factory(**identity)
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    d = wsgid_factory(a, app_path, "--wsgi-app", "e2e_app:app", "--workers", "2",
                      "--dispatch", dispatch, "--recv", b.request_spec, "--send", b.reply_spec)
    d.wait_workers(2)
    wait_for(lambda: answers(b), 20, what="front-end b to answer")
    return a, b, d


@pytest.fixture(params=["direct", "broker"])
def two_fronts(request, m2_factory, wsgid_factory, tmp_path):
    a, b, d = start_two(m2_factory, wsgid_factory, tmp_path, request.param)
    assert a.send_ident != b.send_ident and a.uuid != b.uuid
    return a, b, d


def answers(m2, path="/"):
    try:
        return get(m2.url, path, timeout=2)[0] == 200
    except OSError:
        return False


def check_echo(m2, path):
    """GET ``path`` through ``m2``: its answer must be the one for ``path``
    (the app echoes PATH_INFO and QUERY_STRING). Returns the worker's pid."""
    status, _, body = get(m2.url, path, timeout=10)
    assert status == 200, (path, status, body[:200])
    data = json.loads(body)
    assert "%s?%s" % (data["PATH_INFO"], data["QUERY_STRING"]) == path
    return data["pid"]


def check_interleaved(a, b, d):
    """Four clients on each front-end at once: each answer is the one for
    its request, and the two front-ends' requests were in flight together."""
    spans = {"a": [], "b": []}  # (start, end) of each request, per front-end
    pids = {"a": set(), "b": set()}
    errors = []

    def client(name, m2, thread):
        try:
            for n in range(30):
                started = time.monotonic()
                pid = check_echo(m2, "/front-%s/client-%d?n=%d" % (name, thread, n))
                spans[name].append((started, time.monotonic()))
                pids[name].add(pid)
        except Exception as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(name, m2, i))
               for name, m2 in (("a", a), ("b", b)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[:3]
    assert len(spans["a"]) == len(spans["b"]) == 4 * 30
    # Interleaved: requests of a were in flight while some of b were.
    overlapping = sum(1 for sa, ea in spans["a"] for sb, eb in spans["b"]
                      if sa < eb and sb < ea)
    assert overlapping > 0
    # One pool: the same workers served both front-ends.
    assert pids["a"] & pids["b"]
    assert pids["a"] | pids["b"] <= set(d.worker_pids())


def test_both_front_ends_answered_correctly_and_interleaved(two_fronts):
    check_interleaved(*two_fronts)


@pytest.mark.parametrize("dispatch", ["direct", "broker"])
def test_front_ends_sharing_one_config(m2_factory, wsgid_factory, tmp_path, dispatch):
    """Two mongrel2 with the same server UUID and a fixed send_ident (one
    config copied to two machines, recv_ident ''): only the socket tells
    their requests apart."""
    a, b, d = start_two(m2_factory, wsgid_factory, tmp_path, dispatch,
                        uuid=SERVER_UUID, send_ident=SEND_IDENT)
    assert (a.uuid, a.send_ident) == (b.uuid, b.send_ident)
    check_interleaved(a, b, d)


def test_a_front_end_restarting_does_not_disturb_the_other(two_fronts, capsys):
    a, b, d = two_fronts
    with Load(b, threads=2) as load:
        a.stop()
        assert not answers(a)
        done = load.ok
        wait_for(lambda: load.ok >= done + 30, 20, what="b serving while a is down")
        a.start()
        wait_for(lambda: answers(a), 20, what="a to serve again after its restart")
        done = load.ok
        wait_for(lambda: load.ok >= done + 30, 20, what="b serving after a's restart")
    with capsys.disabled():
        print("\n[%s] front-end b while a restarted: %d ok, %d failed"
              % (d.args[d.args.index("--dispatch") + 1], load.ok,
                 load.failed + load.bad_gateway))
    assert load.failed == load.bad_gateway == 0, load.other[:5]
    for n in range(10):  # the restarted front-end answers each request its own answer
        check_echo(a, "/again?n=%d" % n)
    assert d.log().count("ready to serve") == 2  # no worker was replaced
