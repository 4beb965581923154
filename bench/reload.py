#!/usr/bin/env python3
"""Benchmark wsgid's graceful reload behind a real mongrel2, direct vs broker dispatch.

For each dispatch mode (direct, then broker), wsgid daemonized with 3
workers serving tests/apps/e2e_app.py behind a fresh mongrel2 (loopback
only):

a. reload time: 5 x ``wsgid reload`` on an idle server, one after the
   other; for each, the time from launching the command until every new
   worker logged "Worker ready to serve requests" (new ready), and until
   every live worker pid (pid/worker/*.pid) is a new one that logged ready,
   the old ones gone (all replaced); the median of the 5;
b. requests lost during reloads under load: client threads GET
   ``/sleep?0.01`` in a loop (http.client, a fresh connection each, 2 s
   timeout) while 5 reloads are done one after the other; ok/failed counts.

Run it with the project's venv (.venv, which scripts/test.sh makes), here from
the repository root::

    .venv/bin/python bench/reload.py [--workers 3] [--reloads 5] [--clients 8]

Exit status: 0 when broker dispatch lost no request, 1 when it lost some,
2 when something failed (wsgid did not start or answer, a reload did not
complete in time, the time limit was reached).
"""

import argparse
import collections
import http.client
import os
import re
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402  (bench/common.py)
from common import get, wait_for  # noqa: E402

READY_RE = re.compile(r"\[pid=(\d+)\] - \w+ - Worker ready to serve requests")
DONE_RE = re.compile(r"Reload done: generation (\d+) serving")


# -- one reload ------------------------------------------------------------------
def reload_once(wsgid, workers, timeout=20.0, poll=0.002):
    """``wsgid reload`` and wait until all workers are replaced. Times in ms
    from launching the command: ``command`` (it returned: the signal is
    sent), ``ready`` (every new worker logged ready), ``replaced`` (only new,
    ready workers are alive)."""
    old = set(wsgid.workers())
    offset = wsgid.log_size()
    t0 = time.monotonic()
    proc = common.run("reload", "--app-path", wsgid.app_path, check=False, python=wsgid.python)
    t_cmd = time.monotonic()
    if proc.returncode != 0 or "Sent signal" not in proc.stdout:
        raise RuntimeError("wsgid reload failed (%s): %s%s" % (
            proc.returncode, proc.stdout, proc.stderr))
    ready_at = None
    deadline = t0 + timeout
    while True:
        now = time.monotonic()
        ready = {int(p) for p in READY_RE.findall(wsgid.log(offset))}
        live = set(wsgid.workers())
        if ready_at is None and len(ready) >= workers:
            ready_at = now
        if (ready_at is not None and len(live) == workers and not live & old
                and live <= ready):
            break
        if now > deadline:
            raise RuntimeError("reload not complete after %.0f s: old %s, live %s, ready %s"
                               % (timeout, sorted(old), sorted(live), sorted(ready)))
        time.sleep(poll)
    done = DONE_RE.search(wsgid.log(offset))
    return {"command": 1000 * (t_cmd - t0), "ready": 1000 * (ready_at - t0),
            "replaced": 1000 * (now - t0), "old": sorted(old), "new": sorted(live),
            "generation": int(done.group(1)) if done else None}


# -- client load -------------------------------------------------------------------
class Load:
    """``clients`` threads GETting ``path`` in a loop, a fresh connection
    each time; counts what succeeded (200) and why the rest failed."""

    def __init__(self, url, path, clients, timeout):
        self.url, self.path, self.timeout = url, path, timeout
        self.ok = 0
        self.failed = collections.Counter()
        self.latencies = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]

    def run(self):
        while not self.stopping.is_set():
            t0 = time.monotonic()
            try:
                status = get(self.url, self.path, timeout=self.timeout)[0]
                why = None if status == 200 else "HTTP %d" % status
            except TimeoutError:
                why = "timeout (> %g s)" % self.timeout
            except (OSError, http.client.HTTPException) as exc:
                why = type(exc).__name__
            elapsed = time.monotonic() - t0
            with self.lock:
                if why is None:
                    self.ok += 1
                    self.latencies.append(elapsed)
                else:
                    self.failed[why] += 1

    def start(self):
        for t in self.threads:
            t.start()
        wait_for(lambda: self.ok >= 20, 10, what="the client load to run")
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(self.timeout + 5)


# -- one mode ----------------------------------------------------------------------
def run_mode(args, base, mode):
    """(a) then (b) for one dispatch mode, on its own mongrel2 and app folder."""
    result = {"mode": mode}
    m2 = common.Mongrel2(os.path.join(base, "m2-" + mode))
    wsgid = None
    try:
        m2.start()
        app_path = common.make_app_folder(base, "e2e_app.py", name="app-" + mode)
        wsgid = common.Wsgid(m2, app_path, wsgi_app="e2e_app:app", workers=args.workers,
                             dispatch=mode, daemon=True, python=args.python)
        wsgid.spawn()
        wait_for(lambda: (len(wsgid.workers()) == args.workers
                          and len(READY_RE.findall(wsgid.log())) >= args.workers),
                 15, interval=0.05, what="%d ready workers" % args.workers)
        common.wait_until_serving(m2.url, wsgid, "wsgid", path="/sleep?0", expect=None)
        print("[%s] wsgid master %d, workers %s (mongrel2 %s)" % (
            mode, wsgid.master, ", ".join(map(str, wsgid.workers())), m2.url),
            flush=True)

        # (a) idle reloads
        result["idle"] = []
        for i in range(args.reloads):
            time.sleep(args.pause)
            r = reload_once(wsgid, args.workers)
            result["idle"].append(r)
            print("[%s] (a) reload %d: command %4.0f ms, new ready %4.0f ms, "
                  "all replaced %4.0f ms  (generation %s: %s -> %s)" % (
                      mode, i + 1, r["command"], r["ready"], r["replaced"], r["generation"],
                      ",".join(map(str, r["old"])), ",".join(map(str, r["new"]))), flush=True)

        # (b) reloads under load
        load = Load(m2.url, args.path, args.clients, args.timeout).start()
        result["loaded"] = []
        try:
            time.sleep(args.pause)
            for i in range(args.reloads):
                result["loaded"].append(reload_once(wsgid, args.workers))
                time.sleep(args.pause)
        finally:
            load.stop()
        result["load"] = load
        print("[%s] (b) %d reloads under load: %d ok, %d failed %s" % (
            mode, args.reloads, load.ok, sum(load.failed.values()),
            dict(load.failed) or ""), flush=True)

        status = common.run("status", "--app-path", app_path, check=False,
                            python=args.python).stdout.splitlines()
        print("[%s] wsgid status: %s" % (mode, " | ".join(status)), flush=True)
        result["status"] = status
        if wsgid.failed():
            raise RuntimeError("the wsgid master exited:\n" + wsgid.output_tail())
    except Exception:
        if wsgid is not None:
            print(wsgid.output_tail(), file=sys.stderr)
        raise
    finally:
        if wsgid is not None:
            wsgid.stop()
        m2.stop()
    return result


# -- main ----------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=3, help="wsgid --workers (default 3)")
    p.add_argument("--reloads", type=int, default=5,
                   help="reloads per measurement (default 5)")
    p.add_argument("--clients", type=int, default=8,
                   help="client threads of the load (default 8)")
    p.add_argument("--path", default="/sleep?0.01",
                   help="what the load GETs (default /sleep?0.01: 10 ms in the app)")
    p.add_argument("--timeout", type=float, default=2.0,
                   help="client timeout in seconds; slower counts as failed (default 2)")
    p.add_argument("--pause", type=float, default=0.5,
                   help="seconds between two reloads (default 0.5)")
    common.add_mode_args(p)
    return p.parse_args(argv)


def ms_range(values):
    return "%.0f-%.0f" % (min(values), max(values))


def main(argv=None):
    args = parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    common.time_limit(args.time_limit)
    base = tempfile.mkdtemp(prefix="wsgid-bench-reload-")
    results = []
    failure = None
    print("wsgid reload benchmark: %d workers, daemon mode, e2e_app, python %s" % (
        args.workers, args.python), flush=True)
    try:
        for mode in modes:
            results.append(run_mode(args, base, mode))
    except (Exception, common.TimeLimit) as exc:
        failure = "%s: %s" % (type(exc).__name__, exc)
    finally:
        common.time_limit(0)
        common.remove_temp(args, base)

    print()
    print("=" * 78)
    print("wsgid reload: %d workers, %d reloads per mode" % (args.workers, args.reloads))
    print("-" * 78)
    print("(a) idle reload, ms from launching `wsgid reload`, median of %d (min-max):"
          % args.reloads)
    print("    %-7s %14s %18s %20s" % ("mode", "command", "new ready", "all replaced"))
    for r in results:
        idle = r["idle"]
        cols = []
        for key in ("command", "ready", "replaced"):
            values = [x[key] for x in idle]
            cols.append("%5.0f (%s)" % (statistics.median(values), ms_range(values)))
        print("    %-7s %14s %18s %20s" % (r["mode"], *cols))
    print("(b) %d reloads under load: %d client threads, GET %s, %g s timeout:"
          % (args.reloads, args.clients, args.path, args.timeout))
    broker_lost = None
    for r in results:
        load = r["load"]
        failed = sum(load.failed.values())
        lat = sorted(load.latencies)
        replaced = statistics.median(x["replaced"] for x in r["loaded"])
        print("    %-7s ok %6d   failed %4d %-28s slowest ok %5.0f ms   "
              "reload (all replaced) median %4.0f ms" % (
                  r["mode"], load.ok, failed,
                  "(%s)" % ", ".join("%s: %d" % kv for kv in sorted(load.failed.items()))
                  if failed else "", 1000 * lat[-1] if lat else 0, replaced))
        if r["mode"] == "broker":
            broker_lost = failed
    if broker_lost is not None:
        print("broker requests lost during reloads: %d   (target 0)   %s" % (
            broker_lost, "PASS" if broker_lost == 0 else "MISS"))
    print("=" * 78)
    if failure:
        print("FAILURE: " + failure)
        return 2
    return 1 if broker_lost else 0


if __name__ == "__main__":
    sys.exit(main())
