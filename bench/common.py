"""Helpers shared by the benchmark scripts of bench/ (gateway.py, dispatch.py,
reload.py): processes, HTTP on loopback, wrk, CPU accounting from /proc, and
wsgid itself (in the foreground or daemonized) behind a tests/mongrel2.py
Mongrel2.

Not a benchmark: import it, with bench/ on sys.path (the scripts are run as
``python bench/<script>.py``, which puts bench/ there).
"""

import glob
import http.client
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TESTS = os.path.join(ROOT, "tests")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from mongrel2 import Mongrel2, wait_for  # noqa: E402,F401  (tests/mongrel2.py)

TEST_APPS = os.path.join(TESTS, "apps")
BODY = b"Hello, world!\n"

# The hello-world app of the throughput runs (gateway.py, dispatch.py). The
# /upload path answers the sha256 of the body, read in 64 KiB blocks.
HELLO_APP = r'''
import hashlib

BODY = %r


def app(environ, start_response):
    if environ["PATH_INFO"] == "/upload":
        read = environ["wsgi.input"].read
        digest = hashlib.sha256()
        size = 0
        while True:
            block = read(65536)
            if not block:
                break
            size += len(block)
            digest.update(block)
        out = ("%%s %%d\n" %% (digest.hexdigest(), size)).encode("ascii")
    else:
        out = BODY
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(out)))])
    return [out]
''' % BODY


# -- mongrel2 ----------------------------------------------------------------------
def new_mongrel2(base_dir, **kwargs):
    """A tests/mongrel2.py Mongrel2, not started (its three ports distinct)."""
    return Mongrel2(base_dir, **kwargs)


# -- processes -----------------------------------------------------------------
def children_of(pid):
    kids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.split("/")[2]))
    return sorted(kids)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


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


def cpu_seconds(pid):
    """utime + stime of ``pid`` in seconds (0 once it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid):
    """Voluntary + involuntary context switches of all threads of ``pid``
    (/proc/<pid>/status counts only the main thread's)."""
    total = 0
    for path in glob.glob("/proc/%d/task/*/status" % pid):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:",
                                        "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total


def machine_cpu():
    """(busy, total) jiffies of all CPUs together, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return total - idle, total


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
def get(url, path="/", timeout=2.0):
    """One GET on a fresh connection: (status, body)."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_until_serving(url, server, what, timeout=30, path="/", expect=BODY):
    """Until the handler answers ``path`` with 200 (and ``expect`` as body,
    unless None): wsgid connects its PULL socket only once mongrel2
    subscribed, and requests sent before are held by mongrel2."""
    def answered():
        if server.failed():
            raise RuntimeError("%s exited before serving" % what)
        try:
            status, body = get(url, path, timeout=1.0)
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


# -- wsgid -----------------------------------------------------------------------
def make_app_folder(path, modules=None, copies=()):
    """An app folder at ``path`` whose app/ holds ``modules`` (name -> source)
    and copies of the files ``copies``."""
    app_dir = os.path.join(path, "app")
    os.makedirs(app_dir, exist_ok=True)
    for name, source in (modules or {}).items():
        with open(os.path.join(app_dir, name), "w") as f:
            f.write(source)
    for src in copies:
        shutil.copy(src, os.path.join(app_dir, os.path.basename(src)))
    return path


class Wsgid:
    """wsgid serving the app folder ``app_path`` behind ``m2``.

    ``daemon=False``: ``--no-daemon`` in a child process we own (it is the
    master; its output goes to ``out_path``). ``daemon=True``: started as in
    production (it daemonizes); the master is found by its pid file and
    stopped with ``wsgid stop``, then SIGKILL for what is left of the
    processes of this app folder. Either way wsgid logs to
    ``<app_path>/logs/wsgid.log``.

    ``workers``/``dispatch`` are passed as ``--workers``/``--dispatch`` when
    not None.
    """

    def __init__(self, m2, app_path, wsgi_app, workers=None, dispatch=None, daemon=False,
                 python=sys.executable, out_path=None, extra=()):
        self.m2, self.app_path, self.wsgi_app = m2, app_path, wsgi_app
        self.workers, self.dispatch, self.daemon = workers, dispatch, daemon
        self.python, self.extra = python, list(extra)
        self.out_path = out_path or os.path.join(os.path.dirname(app_path), "wsgid.out")
        self.log_path = os.path.join(app_path, "logs", "wsgid.log")
        self.proc = None
        self.master_pid = None
        self.seen = set()  # every wsgid pid met (daemon mode: what stop() may SIGKILL)

    def command(self, *args):
        return [self.python, "-m", "wsgid", *args]

    def run_command(self, *args, timeout=30):
        """``wsgid ARGS`` (start, reload, status, stop...), waited for."""
        return subprocess.run(self.command(*args), cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ, PYTHONPATH=ROOT))

    def start(self):
        args = ["--app-path", self.app_path, "--wsgi-app", self.wsgi_app,
                "--recv", self.m2.recv_spec, "--send", self.m2.send_spec,
                "--mongrel2-chroot", self.m2.chroot]
        if self.workers is not None:
            args += ["--workers", str(self.workers)]
        if self.dispatch is not None:
            args += ["--dispatch", self.dispatch]
        args += self.extra
        if self.daemon:
            proc = self.run_command(*args)
            if proc.returncode != 0:
                raise RuntimeError("wsgid start failed (%s): %s%s" % (
                    proc.returncode, proc.stdout, proc.stderr))
            pids = wait_for(lambda: [p for p in self.pid_files("master") if alive(p)], 10,
                            what="the wsgid master's pid file")
            self.master_pid = pids[0]
            self.seen.add(self.master_pid)
            return self
        cmd = self.command("--no-daemon", *args)
        self.out = open(self.out_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.out, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONPATH=ROOT))
        self.master_pid = self.proc.pid
        return self

    def pid_files(self, kind):
        """The pids of the pid files in ``<app>/pid/<kind>/``."""
        pids = []
        for path in glob.glob(os.path.join(self.app_path, "pid", kind, "*.pid")):
            try:
                pids.append(int(os.path.basename(path)[:-4]))
            except ValueError:
                continue
        return sorted(pids)

    def live_workers(self):
        """The live workers of the pid files."""
        pids = [p for p in self.pid_files("worker") if alive(p)]
        self.seen.update(pids)
        return pids

    def worker_pids(self):
        """pid/worker/*.pid of live workers; else the master's children;
        else (one in-process worker) the wsgid process itself."""
        pids = self.live_workers()
        if not pids and self.master_pid:
            pids = [p for p in children_of(self.master_pid) if alive(p)]
        return sorted(pids) or [self.master_pid]

    def failed(self):
        if self.proc is not None:
            return self.proc.poll() is not None
        return not alive(self.master_pid)

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, offset=0):
        """wsgid.log from byte ``offset`` on."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def output_tail(self, n=30):
        lines = []
        if self.proc is not None:
            try:
                with open(self.out_path, "rb") as f:
                    lines = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                pass
        if os.path.exists(self.log_path):
            lines += ["-- %s --" % self.log_path] + self.log_since().splitlines()
        return "\n".join(lines[-n:])

    def stop(self, timeout=10):
        if self.proc is not None:
            stop_process(self.proc, timeout)
            self.out.close()
            self.proc = None
            return
        if not self.daemon or self.master_pid is None:
            return
        self.seen.update(self.pid_files("master") + self.pid_files("worker"))
        if alive(self.master_pid):
            try:
                self.run_command("stop", "--app-path", self.app_path, timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:
            wait_for(lambda: not any(alive(p) for p in self.seen), timeout, interval=0.05)
        except TimeoutError:
            for pid in sorted(self.seen):  # only the processes of our app folder
                if alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
        self.master_pid = None


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
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for wsgid (default: this one)")
    parser.add_argument("--time-limit", type=float, default=110,
                        help="give up (and clean up) after this many seconds (default 110)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
