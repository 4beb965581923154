"""Helpers shared by the benchmark scripts of bench/ (gateway.py, dispatch.py,
reload.py, files.py): wrk, time limits, and what the tests use too, from tests/support/
(mongrel2, wsgid in the foreground or daemonized, /proc readers, HTTP).

Not a benchmark: the scripts are run as ``python bench/<script>.py``, which
puts bench/ on sys.path, and import it; it puts the repository root there
once, so that ``tests.support`` imports as in the tests.
"""

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.support.http import get  # noqa: E402
from tests.support.mongrel2 import Mongrel2, free_port  # noqa: E402,F401
from tests.support.procfs import context_switches, cpu_seconds, machine_cpu  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402,F401
from tests.support.wsgid import Wsgid, make_app_folder, run  # noqa: E402,F401

from benchapp import BODY  # noqa: E402,F401  (bench/ is on sys.path: see above)

# The hello-world app (bench/benchapp.py), as the text of a module to put in
# an app folder.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchapp.py")) as _f:
    HELLO_APP = _f.read()


# -- processes -----------------------------------------------------------------
def stop_process(proc, timeout=10):
    """SIGTERM (graceful), then SIGKILL; only the process we started."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class TimeLimit(Exception):
    """The script ran past its time limit (see :func:`time_limit`)."""


def time_limit(seconds):
    """Raise :class:`TimeLimit` in the main thread after ``seconds`` (SIGALRM),
    so that a stuck run still goes through its ``finally`` clean-up; 0
    cancels it."""
    def expired(signum, frame):
        raise TimeLimit("time limit of %ss reached" % seconds)
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(int(seconds))


def remove_temp(args, base):
    """Delete the run's temp folder, unless --keep asked to keep it."""
    if args.keep:
        print("kept %s" % base)
    else:
        shutil.rmtree(base, ignore_errors=True)


# -- HTTP ----------------------------------------------------------------------
def wait_until_serving(url, server, what, timeout=30, path="/", expect=BODY):
    """Until the handler answers ``path`` with 200 (and ``expect`` as body,
    unless None): wsgid connects its PULL socket only once mongrel2
    subscribed, and requests sent before are held by mongrel2."""
    def answered():
        if server.failed():
            raise RuntimeError("%s exited before serving" % what)
        try:
            status, _, body = get(url, path, timeout=1.0)
        except OSError:
            return False
        if status != 200 or (expect is not None and body != expect):
            raise RuntimeError("%s answered %s %r" % (what, status, body[:200]))
        return True
    wait_for(answered, timeout, interval=0.1, what="%s to answer" % what)
    for _ in range(20):  # every process up, a few warm requests
        get(url, path, timeout=5.0)


# -- wrk -----------------------------------------------------------------------
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(value, unit):
    return float(value) * _UNITS[unit]


def parse_wrk(out):
    """req/s, latency percentiles (ms), max, request count and errors from
    the output of ``wrk --latency``."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {}
    for m in re.finditer(r"^\s*(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M):
        pct[int(m.group(1))] = _ms(m.group(2), m.group(3))
    m = re.search(r"^\s*Latency\s+([\d.]+)(us|ms|s|m)\s+([\d.]+)(us|ms|s|m)\s+"
                  r"([\d.]+)(us|ms|s|m)", out, re.M)
    avg, max_ = (_ms(m.group(1), m.group(2)), _ms(m.group(5), m.group(6))) if m else (None, None)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = []
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors.append("%s non-2xx/3xx responses" % m.group(1))
    m = re.search(r"Socket errors:(.*)", out)
    if m:
        errors.append("socket errors:" + m.group(1))
    return {"rps": rps, "p50_ms": pct.get(50), "p99_ms": pct.get(99), "avg_ms": avg,
            "max_ms": max_, "requests": total, "errors": errors, "output": out}


def run_wrk(url, threads=2, connections=50, duration=5, warmup=1, cpu=None, timeout=None):
    """``wrk -tT -cC -dDs --latency url``, after ``warmup`` seconds of
    unmeasured wrk. ``cpu`` maps a name to a list of pids: the result's
    ``cpu`` maps it to the CPU they used during the measured run, in % of
    one core (100% = one core busy), read from /proc/<pid>/stat; ``machine``
    is how busy all CPUs together were (100% = every core busy); ``cpu["wrk"]``
    wrk's own CPU (from getrusage of the children waited for meanwhile);
    ``switches`` maps each name to its threads' context switches meanwhile."""
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration,
           "--latency"]
    if timeout:
        cmd.append("--timeout=%ds" % timeout)
    cmd.append(url)
    if warmup:
        subprocess.run(cmd[:3] + ["-d%ds" % warmup, url], check=True,
                       stdout=subprocess.DEVNULL, timeout=warmup + 30)
    groups = dict(cpu or {})
    before = {name: [cpu_seconds(p) for p in pids] for name, pids in groups.items()}
    switches = {name: [context_switches(p) for p in pids] for name, pids in groups.items()}
    busy0, total0 = machine_cpu()
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         timeout=duration + 30).stdout
    wall = time.monotonic() - t0
    busy1, total1 = machine_cpu()
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = {name: 100 * sum(cpu_seconds(p) - b for p, b in zip(pids, before[name])) / wall
            for name, pids in groups.items()}
    switches = {name: sum(context_switches(p) - b for p, b in zip(pids, switches[name]))
                for name, pids in groups.items()}
    result = parse_wrk(out)
    used["wrk"] = 100 * ((kids1.ru_utime + kids1.ru_stime)
                         - (kids0.ru_utime + kids0.ru_stime)) / wall
    result.update(cmd=" ".join(cmd), cpu=used, switches=switches, wall=wall,
                  machine=100.0 * (busy1 - busy0) / max(1, total1 - total0))
    return result


def add_wrk_args(parser, part=""):
    """The wrk options of a throughput measurement (``part`` labels it in
    the help, e.g. "(a) ")."""
    parser.add_argument("--threads", type=int, default=2, help="%swrk -t (default 2)" % part)
    parser.add_argument("--connections", type=int, default=50,
                        help="%swrk -c (default 50)" % part)
    parser.add_argument("--duration", type=int, default=5,
                        help="%swrk -d seconds (default 5)" % part)
    parser.add_argument("--warmup", type=int, default=1,
                        help="%sseconds of unmeasured wrk before each run (default 1, 0: none)"
                        % part)


def add_mode_args(parser):
    """The options reload.py and dispatch.py share."""
    parser.add_argument("--modes", default="direct,broker",
                        help="dispatch modes, in order (default direct,broker)")
    add_run_args(parser)


def add_run_args(parser, time_limit=110):
    """--python, --time-limit and --keep."""
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for wsgid (default: this one)")
    parser.add_argument("--time-limit", type=float, default=time_limit,
                        help="give up (and clean up) after this many seconds (default %g)"
                        % time_limit)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
