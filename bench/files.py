#!/usr/bin/env python3
"""Benchmark a worker's busy time for a file download behind a real mongrel2.

Django's FileResponse (tests/apps/django_files.py) serves a file of --mib
MiB (default 100) from inside mongrel2's chroot, with download flow control
and broker dispatch, one worker. Three sides, in alternating order each
round:

``handoff``
    ``--mongrel2-sendfile``: the worker sends the head and hands the file to
    mongrel2's sendfile plugin;
``wrapper``
    the worker sends the file itself through ``wsgi.file_wrapper``
    (blocks of 1 MiB);
``blocks64k``
    the worker sends it from a plain iterator of 64 KiB blocks (Django's
    StreamingHttpResponse, no file_wrapper).

Per download: **busy**, the time from sending the request to the answer of a
second request (``/``) sent as soon as the download's head arrived -- with
one worker, that answer comes once the worker is free; **cpu**, the worker's
CPU time (user + system, ``/proc/<pid>/stat``) meanwhile; **download**, the
time until the client (reading as fast as it can, or at most
``--client-mib-per-s``) had the whole body;
**mongrel2 cpu**, mongrel2's CPU time meanwhile. Reported: the median and the
spread (min-max) of the rounds. The first download of each side is checked
against the file's sha256.

::

    .venv/bin/python bench/files.py [--rounds 5] [--mib 100]

Exit status: 0 when the hand-off's median busy time is under a tenth of the
wrapper's, 1 otherwise, 2 when something failed (a wrong body, no answer,
the time limit).
"""

import argparse
import hashlib
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402  (bench/common.py)
from common import Mongrel2, Wsgid, cpu_seconds, get, make_app_folder  # noqa: E402
from tests.support.mongrel2 import SENDFILE  # noqa: E402
from tests.support.wsgid import live_pids  # noqa: E402

SIDES = {"handoff": ("/files/", ["--mongrel2-sendfile"]),
         "wrapper": ("/files/", []),
         "blocks64k": ("/blocks/", [])}


class Side:
    """mongrel2 (sendfile plugin loaded) and wsgid with one worker serving
    the file ``name`` of the folder ``files`` (hard-linked into its chroot)."""

    def __init__(self, base, name, source, python):
        self.name = name
        self.url_path, options = SIDES[name]
        self.m2 = Mongrel2(os.path.join(base, "m2-" + name), xrequests=[SENDFILE],
                           settings={"download.flow_control": 1})
        files = os.path.join(self.m2.chroot, "files")
        os.makedirs(files)
        os.link(source, os.path.join(files, os.path.basename(source)))
        self.url_path += os.path.basename(source)
        app_path = make_app_folder(base, "django_files.py", name="app-" + name,
                                   sources={"files_root.py": "ROOT = %r\n" % files})
        self.m2.start()
        self.wsgid = Wsgid(self.m2, app_path, "--wsgi-app", "django_files:app", "--workers",
                           "1", "--dispatch", "broker", *options, python=python).start()
        self.worker = common.wait_for(lambda: live_pids(app_path, "worker"), 20,
                                      what="the worker's pid file")[0]

    def stop(self):
        self.wsgid.stop()
        self.m2.stop()


def measure(side, size, digest=None, rate=0):
    """One download on ``side`` (read at ``rate`` bytes/s, 0: as fast as
    possible): busy, cpu, download (s), mongrel2 cpu."""
    cpu0, m2cpu0 = cpu_seconds(side.worker), cpu_seconds(side.m2.proc.pid)
    conn = http.client.HTTPConnection("127.0.0.1", side.m2.http_port, timeout=120)
    t0 = time.monotonic()
    conn.request("GET", side.url_path)
    resp = conn.getresponse()
    probe = {}

    def second_request():
        probe["answer"] = get(side.m2.url, "/", timeout=120)
        probe["at"] = time.monotonic()
    prober = threading.Thread(target=second_request)
    prober.start()
    got, hashing = 0, hashlib.sha256() if digest else None
    while True:
        block = resp.read(1 << 16)
        if not block:
            break
        got += len(block)
        if hashing:
            hashing.update(block)
        if rate:
            time.sleep(max(0.0, got / rate - (time.monotonic() - t0)))
    done = time.monotonic()
    conn.close()
    prober.join()
    if resp.status != 200 or got != size or (digest and hashing.hexdigest() != digest):
        raise RuntimeError("%s: status %s, %d of %d bytes" % (side.name, resp.status, got, size))
    if probe["answer"][:1] != (200,):
        raise RuntimeError("%s: the second request got %r" % (side.name, probe["answer"][:1]))
    return {"busy": probe["at"] - t0, "cpu": cpu_seconds(side.worker) - cpu0,
            "download": done - t0, "m2cpu": cpu_seconds(side.m2.proc.pid) - m2cpu0}


def summary(results):
    print("\n%-10s %22s %22s %22s %22s" % ("side", "busy s", "worker cpu s", "download s",
                                           "mongrel2 cpu s"))
    for name, rounds in results.items():
        cells = []
        for key in ("busy", "cpu", "download", "m2cpu"):
            values = [r[key] for r in rounds]
            cells.append("%.3f (%.3f-%.3f)" % (statistics.median(values), min(values),
                                               max(values)))
        print("%-10s %22s %22s %22s %22s" % (name, *cells))
    print("(median (min-max) of %d rounds)" % len(next(iter(results.values()))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="downloads per side (default 5)")
    p.add_argument("--mib", type=int, default=100, help="file size in MiB (default 100)")
    p.add_argument("--sides", default=",".join(SIDES),
                   help="sides, in the first round's order (default %s)" % ",".join(SIDES))
    p.add_argument("--client-mib-per-s", type=float, default=0,
                   help="the client reads at most this fast (default 0: as fast as it can)")
    common.add_run_args(p, time_limit=300)
    args = p.parse_args(argv)
    names = args.sides.split(",")
    base = tempfile.mkdtemp(prefix="wsgid-bench-files-")
    size = args.mib << 20
    source = os.path.join(base, "file.bin")
    hashing = hashlib.sha256()
    with open(source, "wb") as f:
        for _ in range(args.mib):
            block = os.urandom(1 << 20)
            hashing.update(block)
            f.write(block)
    digest = hashing.hexdigest()
    sides, results = [], {name: [] for name in names}
    common.time_limit(args.time_limit)
    try:
        for name in names:
            sides.append(Side(base, name, source, args.python))
        for n in range(args.rounds):
            order = sides if n % 2 == 0 else sides[::-1]
            for side in order:
                result = measure(side, size, digest if n == 0 else None,
                                 args.client_mib_per_s * (1 << 20))
                results[side.name].append(result)
                print("round %d %-10s busy %.3f s, worker cpu %.3f s, download %.3f s, "
                      "mongrel2 cpu %.3f s" % (n + 1, side.name, result["busy"], result["cpu"],
                                                result["download"], result["m2cpu"]), flush=True)
    except Exception as exc:  # TimeLimit too: clean up, exit 2
        print("failed: %s" % exc, file=sys.stderr)
        return 2
    finally:
        common.time_limit(0)
        for side in sides:
            side.stop()
        common.remove_temp(args, base)
    summary(results)
    if "handoff" in results and "wrapper" in results:
        ratio = (statistics.median(r["busy"] for r in results["handoff"])
                 / statistics.median(r["busy"] for r in results["wrapper"]))
        print("busy time handoff/wrapper: %.3f (target < 0.1)" % ratio)
        return 0 if ratio < 0.1 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
