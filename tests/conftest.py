"""Fixtures: real mongrel2 servers and wsgid processes on loopback (the
helpers they use are in tests/support/)."""

import socket
import uuid

import pytest
import zmq

from tests.support.mongrel2 import Mongrel2
from tests.support.wsgid import Wsgid


@pytest.fixture
def m2_factory(tmp_path):
    """Starts mongrel2 servers; the second and later get a server UUID of
    their own, as separate front-ends have (each start has its own
    send_ident: see tests.support.mongrel2.Mongrel2)."""
    servers = []

    def start(**kwargs):
        if servers:
            kwargs.setdefault("uuid", str(uuid.uuid4()))
        m2 = Mongrel2(str(tmp_path / ("m2-%d" % len(servers))), **kwargs)
        servers.append(m2)
        return m2.start()
    yield start
    for m2 in servers:
        m2.stop()


@pytest.fixture
def wsgid_factory():
    procs = []

    def start(m2, app_path, *extra, ready_path="/"):
        proc = Wsgid(m2, app_path, *extra)
        procs.append(proc)
        return proc.start(ready_path=ready_path)
    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """systemd's notify socket, as wsgid finds it (NOTIFY_SOCKET): read
    what wsgid tells with ``recv`` (20 s at most each)."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield sock
    sock.close()


@pytest.fixture
def ctx():
    """A ZeroMQ context of the test's own, destroyed after it."""
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


# Files that take minutes, scheduled first: under pytest-xdist (files go to the
# processes in collection order) one then runs beside the others, not alone
# at the end.
SLOWEST_FIRST = ("test_demo.py",)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name not in SLOWEST_FIRST)
