#!/usr/bin/env python3
"""Benchmark wsgid against a raw pyzmq handler behind a real mongrel2.

One run does, for each of ``--rounds`` rounds (default 9):

1. throughput: a hello-world WSGI app served by a fresh wsgid, loaded with
   ``wrk -t2 -c50 -d5s --latency`` (loopback only);
2. memory (first round only): the wsgid worker's RSS while it streams a
   1 GiB upload (mongrel2 spools it to a temp file; the app reads
   ``wsgi.input`` in 64 KiB blocks and answers its sha256);
3. throughput baseline: wsgid stopped, a minimal raw pyzmq handler (same
   number of processes) with a canned reply, same wrk run;

then a summary: req/s and p99 of the median round, the ratio wsgid/raw
(the median of the rounds'; target >= 0.7), and the upload's RSS delta
(target < 10 MiB above idle). Alternating the two sides makes the ratio
hold up on a machine whose speed drifts during the run.

Run it from anywhere with the venv's interpreter::

    /work/venv/bin/python bench/gateway.py [--processes N] [--duration 5]

Exit status: 0 when both targets are met, 1 when one is missed, 2 when
something failed (wsgid did not answer, wrong sha256, wrk errors, ...).
"""

import argparse
import hashlib
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402  (bench/common.py)
from common import BODY, stop_process, wait_for, wait_until_serving  # noqa: E402
from tests.support.procfs import status_kib  # noqa: E402

MiB = 1 << 20
RATIO_TARGET = 0.7
RSS_TARGET_MIB = 10.0
APP = common.HELLO_APP

RAW_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))


# -- the raw pyzmq handler (run in its own processes) ---------------------------
def raw_handler(request_spec, reply_spec):
    """PULL from mongrel2's send_spec (``request_spec``), PUB to its
    recv_spec (``reply_spec``), canned reply.

    XPUB only to wait for mongrel2's subscription before taking requests
    (as wsgid does), so that no reply of the warm-up is dropped; sending on
    it costs the same as on a PUB socket.
    """
    import zmq

    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    ctx = zmq.Context(1)
    pub = ctx.socket(zmq.XPUB)
    pub.connect(reply_spec)
    pub.recv()  # mongrel2's subscription
    pull = ctx.socket(zmq.PULL)
    pull.connect(request_spec)
    recv, send = pull.recv, pub.send
    while True:
        msg = recv()
        sender, conn_id, path, rest = msg.split(b" ", 3)
        if path == b"@*":  # disconnect notices: nothing to answer
            continue
        send(b"%s %d:%s, %s" % (sender, len(conn_id), conn_id, RAW_RESPONSE))


# -- processes -----------------------------------------------------------------
def start_wsgid(args, m2, base):
    """wsgid in the foreground serving the hello-world app (benchapp:app);
    ``--workers N`` only when ``--processes`` N > 1."""
    app_path = common.make_app_folder(base, name="wsgid-app", sources={"benchapp.py": APP})
    return common.Wsgid(m2, app_path, wsgi_app="benchapp:app",
                        workers=args.processes if args.processes > 1 else None,
                        stdout=False, python=args.python,
                        out_path=os.path.join(base, "wsgid.out")).spawn()


class RawHandlers:
    def __init__(self, args, m2):
        self.args, self.m2 = args, m2
        self.procs = []

    def start(self):
        for _ in range(self.args.processes):
            self.procs.append(subprocess.Popen(
                [self.args.python, os.path.abspath(__file__), "--raw-handler",
                 self.m2.request_spec, self.m2.reply_spec], stderr=subprocess.DEVNULL))
        return self

    def failed(self):
        return any(p.poll() is not None for p in self.procs)

    def stop(self):
        for p in self.procs:
            stop_process(p)


# -- wrk -----------------------------------------------------------------------
def run_wrk(args, url, handler_pids, m2_pid):
    """The measured wrk run; also the CPU the handler processes and mongrel2
    used meanwhile (100% = one core busy), to tell who the bottleneck is."""
    r = common.run_wrk(url + "/", args.threads, args.connections, args.duration, args.warmup,
                       cpu={"handler": list(handler_pids), "mongrel2": [m2_pid]})
    r["handler_cpu"], r["m2_cpu"] = r["cpu"]["handler"], r["cpu"]["mongrel2"]
    return r


# -- upload / RSS ----------------------------------------------------------------
def reset_hwm(pid):
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class RssSampler(threading.Thread):
    def __init__(self, pids, interval):
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.peak = {pid: 0 for pid in pids}
        self.samples = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            for pid in self.pids:
                try:
                    self.peak[pid] = max(self.peak[pid], status_kib(pid, "VmRSS") * 1024)
                except (OSError, KeyError):
                    pass
            self.samples += 1
            self.done.wait(self.interval)

    def stop(self):
        self.done.set()
        self.join()


def upload_body(size, digest, block=MiB):
    """Yield ``size`` bytes in ``block`` pieces, hashing them as they go:
    the 1 GiB body never exists in memory or on the client's disk."""
    base = bytearray(os.urandom(block))
    sent = 0
    n = 0
    while sent < size:
        base[:8] = n.to_bytes(8, "little")
        piece = bytes(base[:min(block, size - sent)])
        digest.update(piece)
        sent += len(piece)
        n += 1
        yield piece


def measure_upload(args, m2, wsgid):
    size = args.upload_mib * MiB
    pids = wsgid.worker_pids()
    time.sleep(0.5)  # settle after wrk
    idle = {pid: status_kib(pid, "VmRSS") * 1024 for pid in pids}
    hwm_ok = all(reset_hwm(pid) for pid in pids)
    sampler = RssSampler(pids, args.sample_interval)
    sampler.start()
    digest = hashlib.sha256()
    host, port = m2.url.split("//", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=args.upload_timeout)
    t0 = time.monotonic()
    try:
        conn.request("POST", "/upload", body=upload_body(size, digest),
                     headers={"Content-Length": str(size),
                              "Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        status, answer = resp.status, resp.read()
    finally:
        conn.close()
        elapsed = time.monotonic() - t0
        sampler.stop()
    hwm = {}
    if hwm_ok:
        for pid in pids:
            try:
                hwm[pid] = status_kib(pid, "VmHWM") * 1024
            except (OSError, KeyError):
                pass
    expected = "%s %d" % (digest.hexdigest(), size)
    got = answer.decode("latin-1").strip()
    # the worker that served it is the one whose memory moved most
    def peak_of(pid):
        return max(sampler.peak[pid], hwm.get(pid, 0))
    pid = max(pids, key=lambda p: peak_of(p) - idle[p])
    leftovers = os.listdir(m2.upload_dir())
    return {"status": status, "ok": status == 200 and got == expected,
            "answer": got, "expected": expected, "seconds": elapsed, "pid": pid,
            "idle": idle[pid], "peak_sampled": sampler.peak[pid],
            "peak_hwm": hwm.get(pid), "peak": peak_of(pid),
            "samples": sampler.samples, "leftovers": leftovers}


# -- main ----------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", type=int, default=1,
                   help="wsgid workers and raw handler processes (default 1); "
                        "--workers N is passed to wsgid only when N > 1")
    common.add_wrk_args(p)
    p.add_argument("--rounds", type=int, default=9,
                   help="wsgid and raw runs, alternating (default 9); the median ratio counts")
    p.add_argument("--upload-mib", type=int, default=1024,
                   help="upload size in MiB (default 1024 = 1 GiB, 0: skip)")
    p.add_argument("--upload-timeout", type=float, default=600)
    p.add_argument("--sample-interval", type=float, default=0.005,
                   help="RSS sampling period in seconds (default 0.005)")
    p.add_argument("--python", default=sys.executable,
                   help="interpreter for wsgid and the raw handler (default: this one)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    p.add_argument("--raw-handler", nargs=2, metavar=("RECV", "SEND"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def fmt_wrk(name, r):
    n = max(1, r["requests"])
    line = ("%-6s %9.1f req/s   p99 %7.2f ms   (%d requests; CPU: handler %.0f%%, "
            "mongrel2 %.0f%%; per request: handler %.1f us, %.2f context switches)" % (
                name, r["rps"], r["p99_ms"], r["requests"], r["handler_cpu"], r["m2_cpu"],
                r["handler_cpu"] / 100 * r["wall"] / n * 1e6, r["switches"]["handler"] / n))
    if r["errors"]:
        line += "   ERRORS: " + "; ".join(r["errors"])
    return line


def measure_wsgid(args, m2, base, failures, upload):
    """One wrk run against a fresh wsgid (and the upload when ``upload``)."""
    wsgid = start_wsgid(args, m2, base)
    try:
        try:
            wait_until_serving(m2.url, wsgid, "wsgid")
        except Exception as exc:
            raise RuntimeError("wsgid failed to serve: %s\n%s" % (exc, wsgid.output_tail()))
        try:
            wait_for(lambda: len(wsgid.worker_pids()) >= args.processes, 10, interval=0.1,
                     what="%d wsgid workers" % args.processes)
        except TimeoutError:
            pass
        pids = wsgid.worker_pids()
        if len(pids) != args.processes:
            print("WARNING: %d wsgid worker process(es) found, %d asked for: the comparison "
                  "with the raw handler is not like for like" % (len(pids), args.processes),
                  flush=True)
        result = run_wrk(args, m2.url, pids, m2.proc.pid)
        print(fmt_wrk("wsgid", result), flush=True)
        if upload:
            print("uploading %d MiB to wsgid ..." % args.upload_mib, flush=True)
            up = result["upload"] = measure_upload(args, m2, wsgid)
            if not up["ok"]:
                failures.append("upload: got %s %r, expected %r" % (
                    up["status"], up["answer"][:200], up["expected"]))
            if up["leftovers"]:
                failures.append("upload temp file(s) left in mongrel2's chroot: %s"
                                % up["leftovers"])
        if wsgid.failed():
            failures.append("wsgid exited during the run:\n" + wsgid.output_tail())
        return result
    finally:
        wsgid.stop()


def measure_raw(args, m2):
    raw = RawHandlers(args, m2).start()
    try:
        wait_until_serving(m2.url, raw, "raw handler")
        result = run_wrk(args, m2.url, [p.pid for p in raw.procs], m2.proc.pid)
        print(fmt_wrk("raw", result), flush=True)
        return result
    finally:
        raw.stop()


def main(argv=None):
    args = parse_args(argv)
    if args.raw_handler:
        raw_handler(*args.raw_handler)
        return 0
    base = tempfile.mkdtemp(prefix="wsgid-bench-")
    m2 = common.Mongrel2(os.path.join(base, "m2"))
    rounds = []   # (wsgid result, raw result) pairs
    failures = []
    try:
        m2.start()
        print("mongrel2 %s  (chroot %s), %d process(es), python %s" % (
            m2.url, m2.chroot, args.processes, args.python), flush=True)
        # wsgid and raw alternate, so that a machine getting busier or
        # quieter during the run moves both sides of every ratio alike.
        for n in range(args.rounds):
            print("round %d/%d: wrk against wsgid, then against the raw pyzmq handler ..."
                  % (n + 1, args.rounds), flush=True)
            try:
                w = measure_wsgid(args, m2, base, failures, upload=n == 0 and args.upload_mib)
            except RuntimeError as exc:
                print(exc)
                return 2
            rounds.append((w, measure_raw(args, m2)))
    finally:
        m2.stop()
        common.remove_temp(args, base)

    ratios = sorted(w["rps"] / r["rps"] for w, r in rounds)
    ratio = ratios[len(ratios) // 2]
    w, r = min(rounds, key=lambda pair: abs(pair[0]["rps"] / pair[1]["rps"] - ratio))
    print()
    print("=" * 72)
    print("wsgid gateway benchmark: %s, %d process(es), %d round(s)" % (
        w["cmd"], args.processes, len(rounds)))
    print("-" * 72)
    print(fmt_wrk("wsgid", w))
    print(fmt_wrk("raw", r))
    print("ratio wsgid/raw req/s: %.3f   (target >= %.2f)   %s" % (
        ratio, RATIO_TARGET, "PASS" if ratio >= RATIO_TARGET else "MISS"))
    if len(rounds) > 1:
        print("(the median round's; every round's: %s)" % ", ".join("%.3f" % x for x in ratios))
    print("p99 wsgid/raw: %.2f ms / %.2f ms" % (w["p99_ms"], r["p99_ms"]))
    for name, result in [("wsgid", w) for w, _ in rounds] + [("raw", r) for _, r in rounds]:
        if result["errors"]:
            failures.append("wrk against %s: %s" % (name, "; ".join(result["errors"])))
    rss_ok = True
    up = rounds[0][0].get("upload")
    if up:
        delta = (up["peak"] - up["idle"]) / MiB
        rss_ok = delta < RSS_TARGET_MIB
        print("-" * 72)
        print("upload %d MiB in %.1f s (%.0f MiB/s), HTTP %s, sha256 %s" % (
            args.upload_mib, up["seconds"], args.upload_mib / up["seconds"], up["status"],
            "matches" if up["ok"] else "WRONG"))
        print("wsgid worker pid %d RSS: idle %.1f MiB, peak %.1f MiB "
              "(sampled VmRSS %.1f MiB x%d samples, VmHWM %s)" % (
                  up["pid"], up["idle"] / MiB, up["peak"] / MiB, up["peak_sampled"] / MiB,
                  up["samples"],
                  "%.1f MiB" % (up["peak_hwm"] / MiB) if up["peak_hwm"] else "n/a"))
        print("RSS delta during upload: %+.1f MiB   (target < %.0f MiB)   %s" % (
            delta, RSS_TARGET_MIB, "PASS" if rss_ok else "MISS"))
    print("=" * 72)
    for f in failures:
        print("FAILURE: " + f)
    if failures:
        return 2
    return 0 if ratio >= RATIO_TARGET and rss_ok else 1


if __name__ == "__main__":
    sys.exit(main())
