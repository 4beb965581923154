#!/usr/bin/env python3
"""Benchmark wsgid's broker dispatch against direct dispatch behind a real mongrel2.

For each dispatch mode (direct, then broker), in one run, on the same
mongrel2, wsgid in the foreground with the same number of workers (default
2), loopback only:

a. throughput: the hello-world app of gateway.py loaded with
   ``wrk -t2 -c50 -d5s --latency`` after a 1 s unmeasured warm-up; req/s,
   p99, and the CPU the master, the workers, mongrel2 and wrk used meanwhile
   (from /proc/<pid>/stat, 100% = one core busy); then the ratio
   broker/direct req/s (target >= 0.85, issue 22);
b. fast requests behind a slow one: a client thread keeps one
   ``/sleep?1`` request (tests/apps/e2e_app.py) in flight at all times while
   ``wrk -t2 -c4 -d5s --latency`` measures hello-world requests; p50, p99
   and max latency. Direct dispatch queues some fast requests at the worker
   busy sleeping; broker dispatch should not (target: broker max < 20 ms);
c. a Django view: the example project's ``/hello/`` (a form rendered from a
   template) loaded with ``wrk -t2 -c32`` for the same duration; req/s and
   p99 of both modes (targets: broker >= 0.97 of direct's req/s, its p99 no
   higher).

Run it with the project's venv (.venv, which scripts/test.sh makes), here from
the repository root::

    .venv/bin/python bench/dispatch.py [--workers 2] [--duration 5]

Exit status: 0 when every target is met, 1 when one is missed, 2 when
something failed (wsgid did not answer, wrk errors, a slow request failed,
the time limit was reached).
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402  (bench/common.py)
from common import get, wait_for  # noqa: E402

# Issue 22's targets for the default mode, broker, against direct.
RATIO_TARGET = 0.85         # (a) hello world req/s
BROKER_MAX_TARGET_MS = 20.0  # (b) the slowest fast request behind a slow one
DJANGO_RATIO_TARGET = 0.97  # (c) Django req/s, with a p99 no higher than direct's

# Hello world (gateway.py's app) everywhere but /sleep, which e2e_app serves.
DISPATCH_APP = '''
from benchapp import app as hello
from e2e_app import app as e2e


def app(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        return e2e(environ, start_response)
    return hello(environ, start_response)
'''


class Scraper(threading.Thread):
    """GETs wsgid's /metrics (--metrics) every second, as Prometheus would."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.scrapes = url, 0
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.wait(1.0):
            if get(self.url, "/metrics", timeout=5)[0] == 200:
                self.scrapes += 1

    def stop(self):
        self.stopping.set()
        self.join(10)


class SlowClient(threading.Thread):
    """Keeps one ``/sleep?SECONDS&MARK`` request in flight at all times."""

    def __init__(self, url, seconds, mark):
        super().__init__(daemon=True)
        self.url, self.seconds, self.mark = url, seconds, mark
        self.durations, self.errors = [], []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            t0 = time.monotonic()
            try:
                status = get(self.url, "/sleep?%g&%s" % (self.seconds, self.mark),
                             timeout=self.seconds + 10)[0]
                if status != 200:
                    self.errors.append("HTTP %d" % status)
            except Exception as exc:
                self.errors.append("%s: %s" % (type(exc).__name__, exc))
            self.durations.append(time.monotonic() - t0)

    def stop(self):
        self.stopping.set()
        self.join(self.seconds + 15)


def run_mode(args, m2, base, mode):
    app_path = common.make_app_folder(
        base, "e2e_app.py", name="app-" + mode,
        sources={"benchapp.py": common.HELLO_APP, "dispatchapp.py": DISPATCH_APP})
    metrics = "127.0.0.1:%d" % common.free_port() if args.metrics else None
    wsgid = common.Wsgid(m2, app_path, *(["--metrics", metrics] if metrics else []),
                         wsgi_app="dispatchapp:app", workers=args.workers,
                         dispatch=mode, stdout=False, python=args.python,
                         out_path=os.path.join(base, "wsgid-%s.out" % mode))
    result = {"mode": mode}
    try:
        wsgid.spawn()
        common.wait_until_serving(m2.url, wsgid, "wsgid (%s)" % mode)
        try:
            wait_for(lambda: len(wsgid.workers()) >= args.workers, 10, interval=0.1)
        except TimeoutError:
            pass
        workers = wsgid.worker_pids()
        if len(workers) != args.workers:
            raise RuntimeError("%d workers found, %d asked for" % (len(workers), args.workers))
        print("[%s] master %d, workers %s" % (mode, wsgid.master,
                                              ", ".join(map(str, workers))), flush=True)

        # (a) throughput
        cpu = {"master": [wsgid.master], "mongrel2": [m2.proc.pid]}
        cpu.update(("worker %d" % p, [p]) for p in workers)
        scraper = Scraper("http://" + metrics) if metrics else None
        if scraper:
            scraper.start()
        try:
            r = result["wrk"] = common.run_wrk(m2.url + "/", args.threads, args.connections,
                                               args.duration, args.warmup, cpu=cpu)
        finally:
            if scraper:
                scraper.stop()
                print("[%s] (a) /metrics scraped %d times meanwhile" % (mode, scraper.scrapes))
        r["workers_cpu"] = sum(v for k, v in r["cpu"].items() if k.startswith("worker "))
        print("[%s] (a) %s" % (mode, fmt_wrk(r)), flush=True)

        # (b) fast requests while a slow one is in flight
        mark = os.path.join(base, "slow-%s" % mode)
        slow = SlowClient(m2.url, args.slow, mark)
        slow.start()
        try:
            wait_for(lambda: os.path.exists(mark), 10, what="the slow request in hand")
            lat = result["lat"] = common.run_wrk(
                m2.url + "/", args.lat_threads, args.lat_connections, args.lat_duration,
                warmup=0, timeout=max(10, int(args.slow * 5)))
        finally:
            slow.stop()
        result["slow"] = slow
        print("[%s] (b) fast: p50 %s  p99 %s  max %s  (%d requests, %.1f req/s); "
              "slow /sleep?%g: %d done, %s" % (
                  mode, fmt_ms(lat["p50_ms"]), fmt_ms(lat["p99_ms"]), fmt_ms(lat["max_ms"]),
                  lat["requests"], lat["rps"], args.slow, len(slow.durations),
                  "errors: %s" % slow.errors if slow.errors else "no error"), flush=True)
        if wsgid.failed():
            raise RuntimeError("wsgid exited during the run:\n" + wsgid.output_tail())
    except Exception:
        print(wsgid.output_tail(), file=sys.stderr)
        raise
    finally:
        wsgid.stop()
    result["django"] = run_django(args, m2, base, mode)
    return result


def run_django(args, m2, base, mode):
    """(c): the example Django project (found by wsgid's Django loader)."""
    app_path = os.path.join(base, "django-" + mode)
    shutil.copytree(os.path.join(common.ROOT, "examples", "django"), app_path)
    wsgid = common.Wsgid(m2, app_path, workers=args.workers, dispatch=mode, stdout=False,
                         python=args.python,
                         out_path=os.path.join(base, "wsgid-django-%s.out" % mode))
    try:
        wsgid.spawn()
        common.wait_until_serving(m2.url, wsgid, "wsgid (%s, Django)" % mode,
                                  path="/hello/", expect=None)
        r = common.run_wrk(m2.url + "/hello/", args.threads, args.django_connections,
                           args.duration, args.warmup)
        print("[%s] (c) Django /hello/: %9.1f req/s   p99 %s" % (
            mode, r["rps"], fmt_ms(r["p99_ms"])), flush=True)
        return r
    except Exception:
        print(wsgid.output_tail(), file=sys.stderr)
        raise
    finally:
        wsgid.stop()


def fmt_ms(ms):
    if ms is None:
        return "n/a"
    return "%.0f ms" % ms if ms >= 100 else "%.2f ms" % ms


def fmt_wrk(r):
    cpu = r["cpu"]
    workers = [v for k, v in sorted(cpu.items()) if k.startswith("worker ")]
    line = ("%9.1f req/s   p99 %8s   (%d requests)   CPU: master %3.0f%%, workers %3.0f%% "
            "(%s), mongrel2 %3.0f%%, wrk %3.0f%%, machine %3.0f%%" % (
                r["rps"], fmt_ms(r["p99_ms"]), r["requests"], cpu["master"], sum(workers),
                " + ".join("%.0f" % w for w in workers), cpu["mongrel2"], cpu["wrk"],
                r["machine"]))
    if r["errors"]:
        line += "   ERRORS: " + "; ".join(r["errors"])
    return line


def per_request(r):
    """CPU microseconds and context switches per request of (a)'s run, by
    process: master, workers (together), mongrel2, and all CPUs of the
    machine (everything, wrk and the kernel included)."""
    n = max(1, r["requests"])
    cpu_us = {k: v / 100.0 * r["wall"] * 1e6 / n for k, v in r["cpu"].items()}
    sw = {k: v / n for k, v in r["switches"].items()}
    workers = [k for k in cpu_us if k.startswith("worker ")]
    return {"master": (cpu_us["master"], sw["master"]),
            "workers": (sum(cpu_us[k] for k in workers), sum(sw[k] for k in workers)),
            "mongrel2": (cpu_us["mongrel2"], sw["mongrel2"]),
            "machine": (r["machine"] / 100.0 * (os.cpu_count() or 1) * r["wall"] * 1e6 / n,
                        None)}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2, help="wsgid --workers (default 2)")
    common.add_wrk_args(p, "(a) ")
    p.add_argument("--metrics", action="store_true",
                   help="run wsgid with --metrics, scraped every second during (a)")
    p.add_argument("--slow", type=float, default=1.0,
                   help="(b) seconds the slow request sleeps (default 1)")
    p.add_argument("--lat-threads", type=int, default=2, help="(b) wrk -t (default 2)")
    p.add_argument("--lat-connections", type=int, default=4, help="(b) wrk -c (default 4)")
    p.add_argument("--lat-duration", type=int, default=5,
                   help="(b) wrk -d seconds (default 5)")
    p.add_argument("--django-connections", type=int, default=32,
                   help="(c) wrk -c against the Django view (default 32)")
    common.add_mode_args(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    common.time_limit(args.time_limit)
    base = tempfile.mkdtemp(prefix="wsgid-bench-dispatch-")
    m2 = common.Mongrel2(os.path.join(base, "m2"))
    results = {}
    failure = None
    try:
        m2.start()
        print("mongrel2 %s, %d workers per mode, python %s" % (
            m2.url, args.workers, args.python), flush=True)
        for mode in modes:
            results[mode] = run_mode(args, m2, base, mode)
    except (Exception, common.TimeLimit) as exc:
        failure = "%s: %s" % (type(exc).__name__, exc)
    finally:
        try:
            m2.stop()
        finally:
            common.time_limit(0)
            common.remove_temp(args, base)

    failures = [failure] if failure else []
    print()
    print("=" * 78)
    print("wsgid dispatch benchmark: %d workers, direct vs broker" % args.workers)
    print("-" * 78)
    print("(a) throughput, wrk -t%d -c%d -d%ds --latency, hello world:" % (
        args.threads, args.connections, args.duration))
    for mode, r in results.items():
        print("  %-6s %s" % (mode, fmt_wrk(r["wrk"])))
        if r["wrk"]["errors"]:
            failures.append("wrk against %s: %s" % (mode, "; ".join(r["wrk"]["errors"])))
    print("  per request (CPU us / context switches):")
    for mode, r in results.items():
        pr = per_request(r["wrk"])
        print("  %-6s %s" % (mode, "   ".join(
            "%s %5.1f us" % (k, cpu) + (" / %4.2f cs" % sw if sw is not None else "")
            for k, (cpu, sw) in pr.items())))
    ratio = None
    if "direct" in results and "broker" in results:
        ratio = results["broker"]["wrk"]["rps"] / results["direct"]["wrk"]["rps"]
        print("ratio broker/direct req/s: %.3f   (target >= %.2f)   %s" % (
            ratio, RATIO_TARGET, "PASS" if ratio >= RATIO_TARGET else "MISS"))
        print("p99 broker/direct: %s / %s" % (fmt_ms(results["broker"]["wrk"]["p99_ms"]),
                                             fmt_ms(results["direct"]["wrk"]["p99_ms"])))
    print("-" * 78)
    print("(b) fast requests (wrk -t%d -c%d -d%ds) while one /sleep?%g is always in flight:"
          % (args.lat_threads, args.lat_connections, args.lat_duration, args.slow))
    for mode, r in results.items():
        lat, slow = r["lat"], r["slow"]
        print("  %-6s p50 %9s   p99 %9s   max %9s   (%d requests, %.1f req/s; %d slow done)"
              % (mode, fmt_ms(lat["p50_ms"]), fmt_ms(lat["p99_ms"]), fmt_ms(lat["max_ms"]),
                 lat["requests"], lat["rps"], len(slow.durations)))
        if lat["errors"]:
            failures.append("wrk (b) against %s: %s" % (mode, "; ".join(lat["errors"])))
        if slow.errors:
            failures.append("slow requests against %s: %s" % (mode, slow.errors[:5]))
    max_ok = None
    if "broker" in results:
        broker_max = results["broker"]["lat"]["max_ms"]
        max_ok = broker_max < BROKER_MAX_TARGET_MS
        print("broker max fast-request latency: %s   (target < %.0f ms)   %s" % (
            fmt_ms(broker_max), BROKER_MAX_TARGET_MS, "PASS" if max_ok else "MISS"))
    print("-" * 78)
    print("(c) a Django view, wrk -t%d -c%d -d%ds, /hello/ of examples/django:" % (
        args.threads, args.django_connections, args.duration))
    for mode, r in results.items():
        d = r["django"]
        print("  %-6s %9.1f req/s   p99 %9s" % (mode, d["rps"], fmt_ms(d["p99_ms"])))
        if d["errors"]:
            failures.append("wrk (c) against %s: %s" % (mode, "; ".join(d["errors"])))
    django_ok = None
    if "direct" in results and "broker" in results:
        d, b = results["direct"]["django"], results["broker"]["django"]
        django_ok = (b["rps"] / d["rps"] >= DJANGO_RATIO_TARGET and None not in
                     (b["p99_ms"], d["p99_ms"]) and b["p99_ms"] <= d["p99_ms"])
        print("Django broker/direct: req/s %.3f, p99 %s / %s   (target >= %.2f, p99 no "
              "higher)   %s" % (b["rps"] / d["rps"], fmt_ms(b["p99_ms"]), fmt_ms(d["p99_ms"]),
                                DJANGO_RATIO_TARGET, "PASS" if django_ok else "MISS"))
    print("=" * 78)
    for f in failures:
        print("FAILURE: " + f)
    if failures:
        return 2
    return 0 if ratio is not None and ratio >= RATIO_TARGET and max_ok and django_ok else 1


if __name__ == "__main__":
    sys.exit(main())
