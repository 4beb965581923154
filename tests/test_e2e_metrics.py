"""--metrics through a real mongrel2, scraped by a real Prometheus (issue
24 part 1); and the endpoint against slow and hostile clients: it binds
only where told, serves only GET /metrics, and never holds the master up."""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from tests.support.http import get
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import free_port, wait_for
from tests.support.wsgid import Wsgid, make_app_folder
from wsgid import endpoint

pytestmark = [requires_mongrel2, pytest.mark.e2e]

requires_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="Debian's prometheus package is not installed (scripts/mongrel2-install.sh "
           "installs it)")


@pytest.fixture
def served(m2_factory, tmp_path):
    """mongrel2, and wsgid (broker dispatch: the master is on every
    request's path) with 2 workers and --metrics on a loopback port."""
    m2 = m2_factory()
    port = free_port()
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    proc = Wsgid(m2, app_path, "--wsgi-app", "e2e_app:app", "--workers", "2",
                 "--metrics", "127.0.0.1:%d" % port, dispatch="broker")
    proc.start()
    proc.wait_workers(2)
    yield m2, proc, port
    proc.stop()


def scrape(port, method="GET", path="/metrics"):
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        conn.sendall(b"%s %s HTTP/1.1\r\nHost: x\r\n\r\n" % (method.encode(), path.encode()))
        data = b""
        while True:
            block = conn.recv(65536)
            if not block:
                return data
            data += block
    finally:
        conn.close()


def answers(port):
    """Whether /metrics answers now (over its client limit it closes)."""
    try:
        return scrape(port).startswith(b"HTTP/1.1 200 ")
    except OSError:
        return False


class Prometheus:
    """A Prometheus server scraping ``target`` every second."""

    def __init__(self, base, target):
        self.port = free_port()
        os.makedirs(base, exist_ok=True)
        config = os.path.join(base, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: wsgid\n    static_configs:\n"
                    "      - targets: ['%s']\n" % target)
        self.log = open(os.path.join(base, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            ["prometheus", "--config.file", config, "--storage.tsdb.path",
             os.path.join(base, "data"), "--web.listen-address", "127.0.0.1:%d" % self.port],
            stdout=self.log, stderr=subprocess.STDOUT)

    def query(self, expr):
        """The value of an instant query's single sample, None without one."""
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (
            self.port, urllib.parse.urlencode({"query": expr}))
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                result = json.load(resp)["data"]["result"]
        except OSError:
            return None
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def wait(self, expr, expected, timeout=60):
        return wait_for(lambda: self.query(expr) == expected, timeout, interval=0.5,
                        what="Prometheus to see %s == %s (last: %s)"
                             % (expr, expected, self.query(expr)))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log.close()


@requires_prometheus
def test_prometheus_scrapes_the_master(served, tmp_path):
    m2, proc, port = served
    for _ in range(5):
        assert get(m2.url, "/")[0] == 200
    for _ in range(3):
        assert get(m2.url, "/boom")[0] == 500
    prometheus = Prometheus(str(tmp_path / "prometheus"), "127.0.0.1:%d" % port)
    try:
        prometheus.wait('up{job="wsgid"}', 1.0)
        front = 'front_end="%s"' % m2.request_spec
        prometheus.wait('wsgid_requests_total{status_class="5xx",%s}' % front, 3.0)
        # 5, and wsgid's start asked for / at least once.
        assert prometheus.query('wsgid_requests_total{status_class="2xx"}') >= 5
        assert prometheus.query("wsgid_request_duration_seconds_count") >= 8
        assert prometheus.query('wsgid_workers{state="idle"}') == 2
        assert prometheus.query('wsgid_worker_exits_total{reason="crash"}') == 0
        assert prometheus.query("wsgid_broker_waiting_requests") == 0
        # A worker killed: Prometheus sees the exit, the counts stay.
        os.kill(proc.workers()[0], 9)
        prometheus.wait('wsgid_worker_exits_total{reason="crash"}', 1.0)
        proc.wait_workers(2)
        prometheus.wait('wsgid_workers{state="idle"}', 2.0)
        assert prometheus.query('wsgid_requests_total{status_class="5xx",%s}' % front) == 3
        os.kill(proc.master, 1)  # a reload
        prometheus.wait('wsgid_last_reload{outcome="done"}', 1.0)
        assert prometheus.query('wsgid_worker_exits_total{reason="reload"}') == 2
    finally:
        prometheus.stop()


def test_only_get_metrics_is_served(served):
    _, _, port = served
    text = scrape(port).decode()
    assert text.startswith("HTTP/1.1 200 OK\r\n")
    assert "text/plain; version=0.0.4" in text
    assert "# TYPE wsgid_requests_total counter" in text
    assert scrape(port, path="/").startswith(b"HTTP/1.1 404 ")
    assert scrape(port, path="/metrics/../status").startswith(b"HTTP/1.1 404 ")
    assert scrape(port, method="POST").startswith(b"HTTP/1.1 405 ")
    assert scrape(port, method="DELETE").startswith(b"HTTP/1.1 405 ")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"y" * 20000)
        assert conn.recv(100).startswith(b"HTTP/1.1 431 ")


def test_binds_only_where_told(served):
    _, _, port = served
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=5)  # loopback, not the address
    with open("/proc/net/tcp") as f:
        listening = [line.split()[1] for line in f if line.split()[3] == "0A"]
    assert "0100007F:%04X" % port in listening
    assert "00000000:%04X" % port not in listening


def test_slow_and_hostile_clients_do_not_hold_the_master(served):
    """Clients that send half a head and wait, others that connect in a
    flood, one that never reads: requests through mongrel2 (which go
    through the master in broker dispatch) are served meanwhile, and once
    the slow ones are dropped (their deadline) /metrics answers again."""
    m2, proc, port = served
    slow = []
    for _ in range(endpoint.MAX_CLIENTS + 4):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /metr")
        slow.append(sock)
    flood = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(50)]
    deaf = socket.create_connection(("127.0.0.1", port), timeout=10)
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    deaf.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    try:
        started = time.monotonic()
        for _ in range(20):
            assert get(m2.url, "/", timeout=5)[0] == 200
        assert time.monotonic() - started < endpoint.DEADLINE
        wait_for(lambda: answers(port), endpoint.DEADLINE * 4, interval=0.5,
                 what="/metrics to answer again")
        # The slow clients were closed (those over the limit at once, the
        # others at their deadline), reset when they had left bytes unread.
        for sock in slow:
            sock.settimeout(endpoint.DEADLINE * 2)
            try:
                assert sock.recv(100) == b""
            except ConnectionResetError:
                pass
    finally:
        for sock in slow + flood + [deaf]:
            sock.close()
    assert not proc.failed()


def test_a_bad_address_is_one_line(tmp_path):
    from tests.support.wsgid import run
    proc = run("--no-daemon", "--app-path", make_app_folder(str(tmp_path), "e2e_app.py"),
               "--recv", "tcp://127.0.0.1:1", "--send", "tcp://127.0.0.1:2",
               "--metrics", "9101", check=False)
    assert proc.returncode == 1 and "--metrics" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
