"""wsgid on "another host": its workers in one network namespace, mongrel2 in
another, joined by a veth pair that lives only inside those two namespaces
(both made, and always removed, by the test). The client talks to mongrel2
inside mongrel2's namespace.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from tests.support import mongrel2 as m2mod
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import Mongrel2
from tests.support.wsgid import Wsgid, live_pids, make_app_folder

pytestmark = [requires_mongrel2, pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(shutil.which("ip") is None, reason="no ip(8)")]

M2_ADDR, WORKER_ADDR = "10.200.0.1", "10.200.0.2"   # a /30 inside the test's namespaces

CLIENT = r'''
import http.client, json, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 30
while True:  # wait (with a deadline) for mongrel2 and a handler behind it
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/ready")
        r = c.getresponse(); r.read(); c.close()
        if r.status == 200:
            break
    except OSError:
        pass
    if time.monotonic() > deadline:
        print(json.dumps({"error": "no answer"})); sys.exit(1)
    time.sleep(0.05)
out = []
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for i in range(count):
    if i % 4 == 3:
        body = b"x" * (1000 + i)
        c.request("POST", "/sha256", body=body)
    else:
        c.request("GET", "/item?%d" % i)
    r = c.getresponse()
    data = json.loads(r.read())
    out.append({"status": r.status, "pid": data.get("pid"),
                "remote": data.get("REMOTE_ADDR"), "size": data.get("size"),
                "query": data.get("QUERY_STRING")})
print(json.dumps(out))
'''


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=20)


def ns_inode(name):
    return os.stat("/run/netns/%s" % name).st_ino


def proc_ns_inode(pid):
    return os.stat("/proc/%d/ns/net" % pid).st_ino


@pytest.fixture
def namespaces():
    tag = "%d" % (os.getpid() % 100000)
    ns_m2, ns_worker = "wsgid-m2-" + tag, "wsgid-wk-" + tag
    veth_m2, veth_worker = "wm" + tag, "ww" + tag
    made = []
    try:
        for ns in (ns_m2, ns_worker):
            result = ip("netns", "add", ns, check=False)
            if result.returncode != 0:
                pytest.skip("ip netns add not permitted: %s" % result.stderr.strip())
            made.append(ns)
        # Created inside ns_m2, its peer inside ns_worker: never in the host's namespace.
        ip("-n", ns_m2, "link", "add", veth_m2, "type", "veth", "peer", "name", veth_worker,
           "netns", ns_worker)
        for ns, dev, addr in ((ns_m2, veth_m2, M2_ADDR), (ns_worker, veth_worker, WORKER_ADDR)):
            ip("-n", ns, "addr", "add", addr + "/30", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield ns_m2, ns_worker
    finally:
        for ns in made:
            ip("netns", "del", ns, check=False)


class NetnsMongrel2(Mongrel2):
    """mongrel2 run inside ``ns``; its handler sockets bound to ``zmq_host``
    (the fixture's ``tcp_host``), the rest of its config as usual."""

    def __init__(self, base_dir, ns, zmq_host):
        super().__init__(base_dir)
        self.ns, self.tcp_host = ns, zmq_host

    def start(self, timeout=10):
        db = self.write_config()
        pid_file = os.path.join(self.chroot, "run", "mongrel2.pid")
        if os.path.exists(pid_file):
            os.unlink(pid_file)
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "mongrel2", db,
                                      m2mod.SERVER_UUID], cwd=self.base,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self


def _stop(proc, sig=signal.SIGTERM, timeout=10):
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_workers_in_another_network_namespace(namespaces, tmp_path, capsys):
    ns_m2, ns_worker = namespaces
    m2 = NetnsMongrel2(str(tmp_path / "m2"), ns_m2, M2_ADDR)
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    wsgid = Wsgid(m2, app_path, wsgi_app="e2e_app:app", workers=2,
                  prefix=["ip", "netns", "exec", ns_worker])
    try:
        m2.start()
        wsgid.spawn()
        client = subprocess.run(["ip", "netns", "exec", ns_m2, sys.executable, "-c", CLIENT,
                                 str(m2.http_port), "40"],
                                capture_output=True, text=True, timeout=60)
        assert client.returncode == 0, (client.stdout, client.stderr, wsgid.output()[-2000:])
        results = json.loads(client.stdout)

        workers = live_pids(app_path, "worker")
        with capsys.disabled():
            print("\n[netns] %d requests from %s via mongrel2 (%s) to workers %s in %s"
                  % (len(results), ns_m2, M2_ADDR, workers, ns_worker))
        assert [r["status"] for r in results] == [200] * 40
        assert {r["pid"] for r in results} <= set(workers)
        assert all(r["remote"] == "127.0.0.1" for r in results if r["size"] is None)
        assert [r["size"] for r in results if r["size"] is not None] == \
            [1000 + i for i in range(40) if i % 4 == 3]
        # Where everything ran: workers and master in the worker namespace,
        # mongrel2 in its own; the handler port unreachable from the host.
        for pid in [wsgid.master] + workers:
            assert proc_ns_inode(pid) == ns_inode(ns_worker)
        assert proc_ns_inode(m2.proc.pid) == ns_inode(ns_m2)
        assert ns_inode(ns_worker) != proc_ns_inode(os.getpid())
        with pytest.raises(OSError):
            socket.create_connection((M2_ADDR, m2.send_port), timeout=0.5).close()
    finally:
        wsgid.stop()
        _stop(m2.proc, signal.SIGINT)
