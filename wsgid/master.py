"""The master: forks the workers, keeps them alive, and acts on signals.

TERM: graceful stop (workers finish the request in hand). INT/QUIT: fast
stop. HUP: graceful reload (new workers first, then the old ones retired).
TTIN/TTOU: one worker more/less. USR1: reopen the log files (the master's,
and each worker's, told in turn). A worker silent for longer than
``--timeout`` is killed and replaced; one that keeps dying at start-up is
replaced with growing back-off.

A worker is retired (reload, ``--max-requests``, ``--max-rss``) only once
its replacement has said it is ready: while the application cannot load,
the workers that have it loaded keep serving, and the reload is reported
failed (:meth:`Master.state`, sd_notify's STATUS) with the error its
workers left (:mod:`wsgid.contract`), logged once with its traceback. ``wsgid status --verbose`` is answered
from the loop too (:mod:`wsgid.channel`), from what the workers write in
memory shared with the master (:mod:`wsgid.scoreboard`).
"""

import collections
import errno
import logging
import os
import random
import signal
import time

import zmq

from wsgid import (appfolder, channel, dispatch, hooks, inherited, notify, proctitle, scoreboard,
                   wsshared)
from wsgid import log as wsgid_log
from wsgid.contract import BOOT_ERROR, DUMP, DUMP_GRACE, read_boot_report, ready_pids

log = logging.getLogger("wsgid")

MAX_BACKOFF = 30.0
_SIGNALS = ("TERM", "INT", "QUIT", "HUP", "TTIN", "TTOU", "USR1", "CHLD")


class WorkerProc:
    """The master's record of one forked worker."""

    def __init__(self, pid, generation, fronts=1):
        self.pid = pid
        self.generation = generation
        self.started = time.monotonic()
        self.ready = False
        self.retiring = False
        self.exit_reason = None         # why it was retired (wsgid.hooks.EXIT_REASONS)
        self.replaces = None            # the worker it retires once ready (pid)
        self.stays_said = False         # logged: kept past its recycling, no replacement
        self.report_r = self.report_w = None  # its boot error report (contract)
        self.kill_at = 0.0              # stuck: SIGKILL then, once its traceback is out
        self.slot = None                # broker dispatch: counters shared with the worker
        self.shared = None              # WebSockets: wsgid.wsshared.Shared, the master's
        self.broker = None              # broker dispatch: the master's address (in the child)
        self.retire_deadline = 0.0      # retiring: killed past it (--graceful-timeout)
        self.score = scoreboard.Score(fronts)  # what it is doing, its heartbeat, its counts


class Master:
    """``run_worker(worker_proc, ready_fd)`` runs in the forked child and
    never returns; everything else here runs in the master."""

    def __init__(self, options, run_worker):
        self.options = options
        self.run_worker = run_worker
        self.app_path = options.app_path
        self.num_workers = options.workers
        self.workers = {}
        self.generation = 0
        self.shared = wsshared.Shared(len(options.recv))  # WebSockets: before any fork
        self.signals = []
        self.child_exited = False
        self.stopping = False
        self.failures = 0
        self.next_spawn = 0.0
        self.spawned = 0
        self.last_reload = None       # {"generation", "outcome", "error"} of the last HUP
        self.boot_error = None        # (error, detail) the last worker that failed left
        self.notified_ready = False   # systemd told we serve (again)
        self.channel = None           # wsgid status --verbose asks here
        self.metrics = None           # --metrics (wsgid.metrics.Metrics)
        self.exits = collections.Counter()  # workers exited, by reason (hooks.EXIT_REASONS)
        # Set by run(), in the master process:
        self.pid = self.pid_fd = None
        self.given = ()               # the sockets it was started with (wsgid.inherited)
        self.ready_r = self.ready_w = None  # workers say they are ready here
        self.wake_r = self.wake_w = None    # signals wake the loop here
        self.dispatcher = None        # wsgid.dispatch: direct, or the broker
        self.poller = self.watched = None  # and the dispatcher's version it polls (_watch)

    # -- set-up ------------------------------------------------------------------
    def run(self):
        self.pid = os.getpid()
        hooks.run("on_starting", self)
        self.given = inherited.sockets()  # what the master was started with, workers keep
        try:
            self.pid_fd = appfolder.claim(self.app_path, appfolder.MASTER)
        except OSError as exc:
            log.error("Master cannot write its pid file in %s: %s",
                      appfolder.pid_dir(self.app_path, appfolder.MASTER), exc)
            return 1
        proctitle.set("master %s" % self.app_path)
        self.ready_r, self.ready_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        for name in _SIGNALS:
            signal.signal(getattr(signal, "SIG" + name), self._queue_signal)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        self.dispatcher = dispatch.create(self.options, self.app_path)
        try:
            self.channel = channel.Listener(self.app_path, self.pid)
        except OSError as exc:
            self.channel = None
            log.warning("No status channel in %s (wsgid status --verbose will not be "
                        "answered): %s", channel.folder(self.app_path), exc)
        self._watch()
        # In broker mode the master is what reads mongrel2: say from where.
        log.info("Master process started (%d workers, %s dispatch%s)",
                 self.num_workers, self.options.dispatch,
                 ", recv " + ", ".join(self.options.recv) if self.options.dispatch == "broker" else "")
        try:
            if self.options.metrics and not self._serve_metrics():
                return 1
            hooks.run("when_ready", self)
            self._manage()
            self._loop()
        finally:
            if self.channel is not None:
                self.channel.close()
            if self.metrics is not None:
                self.metrics.endpoint.close()
            self.dispatcher.close()
            appfolder.remove_pid(self.app_path, appfolder.MASTER, self.pid)
            os.close(self.pid_fd)
            log.info("Master process exiting")
        return 0

    def _serve_metrics(self):
        """--metrics: bind its endpoint; False (logged) when it cannot."""
        from wsgid import endpoint, metrics  # prometheus_client: after on_starting
        try:
            self.metrics = metrics.Metrics(self, endpoint.address(self.options.metrics))
        except OSError as exc:
            log.error("Cannot serve --metrics on %s: %s", self.options.metrics, exc)
            return False
        self.metrics.endpoint.register(self.poller)
        log.info("Metrics served on http://%s/metrics", self.options.metrics)
        return True

    def _watch(self):
        """A poller for what the master waits on; made anew when the
        dispatcher's sockets change (a mongrel2 gone: see wsgid.pulls)."""
        self.poller = zmq.Poller()
        for fd in (self.wake_r, self.ready_r):
            self.poller.register(fd, zmq.POLLIN)
        for sock in self.dispatcher.sockets:
            self.poller.register(sock, zmq.POLLIN)
        if self.channel is not None:
            self.poller.register(self.channel.fileno(), zmq.POLLIN)
        if self.metrics is not None:
            self.metrics.endpoint.register(self.poller)
        self.watched = self.dispatcher.version

    def _queue_signal(self, signum, frame):
        if signum == signal.SIGCHLD:
            self.child_exited = True
        else:
            self.signals.append(signum)

    # -- the loop ------------------------------------------------------------------
    def _loop(self):
        """Broker traffic is handled as it comes; the housekeeping (reaping,
        signals, heartbeats, worker count) runs when a signal or a worker's
        readiness says so, and at least twice a second."""
        next_check = 0.0
        while True:
            events = self._sleep()
            now = time.monotonic()
            if not (self.signals or self.child_exited or now >= next_check
                    or self.ready_r in events or self.next_spawn and now >= self.next_spawn):
                continue
            next_check = now + 0.5
            self.child_exited = False
            self._reap()
            while self.signals:
                if self._handle_signal(self.signals.pop(0)):
                    return
            self._read_ready()
            self._murder_silent()
            if self.metrics is not None:
                self.metrics.endpoint.sweep()
            self._manage()
            if not self.workers and not self.options.keep_alive:
                log.info("All workers are gone and keep-alive is off")
                return

    def _sleep(self, timeout=1.0):
        """Wait for a signal, a worker's readiness or dispatch traffic; return
        the poll's events."""
        if self.next_spawn:
            timeout = max(0.0, min(timeout, self.next_spawn - time.monotonic()))
        if self.dispatcher.waiting():
            timeout = min(timeout, 0.001)  # room at a worker shows in its counters
        if self.dispatcher.version != self.watched:
            self._watch()
        try:
            events = dict(self.poller.poll(timeout * 1000))
        except zmq.ZMQError as exc:
            if exc.errno != errno.EINTR:
                raise
            return {}
        if self.wake_r in events:
            self._drain(self.wake_r)
        self.dispatcher.handle(events)
        if self.channel is not None and self.channel.fileno() in events:
            self.channel.answer(self.state)
        if self.metrics is not None:
            self.metrics.endpoint.handle(events)
        return events

    def state(self):
        """What ``wsgid status --verbose`` shows of this master and its
        workers (read from their scores: no worker is asked)."""
        now = time.monotonic()
        state = {"pid": self.pid, "dispatch": self.options.dispatch,
                 "generation": self.generation, "serving": self._serving(),
                 "reload": self.last_reload,
                 "boot_error": self.boot_error and self.boot_error[0]}
        state.update(self.dispatcher.status())
        state["workers"] = [scoreboard.describe(w.pid, w.score, w.started, now, w.retiring,
                                                w.generation)
                            for _, w in sorted(self.workers.items())]
        return state

    def _serving(self):
        """The generations of the workers serving (ready, not retiring)."""
        return sorted({w.generation for w in self.workers.values()
                       if w.ready and not w.retiring})

    def describe(self):
        """One line for sd_notify's STATUS."""
        serving = ", ".join(map(str, self._serving())) or "none"
        if self.last_reload and self.last_reload["outcome"] == "failed":
            return "Reload failed: %s; generation %s serving" % (self.last_reload["error"],
                                                                 serving)
        return "Serving (generation %s)" % serving

    @staticmethod
    def _drain(fd):
        try:
            return os.read(fd, 4096)
        except BlockingIOError:
            return b""

    def _handle_signal(self, signum):
        """Act on one signal; True when the master should exit now."""
        if signum == signal.SIGTERM:
            log.info("Graceful stop requested")
            self.stop(graceful=True)
            return True
        if signum in (signal.SIGINT, signal.SIGQUIT):
            log.info("Fast stop requested")
            self.stop(graceful=False)
            return True
        if signum == signal.SIGHUP:
            log.info("Graceful reload requested")
            self.reload()
        elif signum == signal.SIGTTIN:
            self.num_workers += 1
            log.info("Number of workers raised to %d", self.num_workers)
        elif signum == signal.SIGTTOU and self.num_workers > 1:
            self.num_workers -= 1
            log.info("Number of workers lowered to %d", self.num_workers)
        elif signum == signal.SIGUSR1:
            wsgid_log.reopen()
            log.info("Log files reopened (USR1); telling the workers")
            for pid in self.workers:
                self._kill(pid, signal.SIGUSR1)
        return False

    def _read_ready(self):
        for pid in ready_pids(self._drain(self.ready_r)):
            worker = self.workers.get(pid)
            if worker is None:
                continue
            worker.ready = True
            self.failures = 0
            self.boot_error = None
            old = self.workers.get(worker.replaces)
            worker.replaces = None
            if old is not None and not old.retiring:
                self._retire(old)
        reload = self.last_reload
        if reload and reload["outcome"] != "done" and self._renewed():
            reload["outcome"], reload["error"] = "done", None
            log.info("Reload done: generation %d serving", self.generation)
            self.notified_ready = False
        if not self.notified_ready and (reload["outcome"] != "pending" if reload else
                                        any(w.ready for w in self.workers.values())):
            self.notified_ready = True
            notify.ready(self.describe())

    def _renewed(self):
        """Every place held by a ready worker of the last generation."""
        serving = [w for w in self.workers.values() if not w.retiring]
        return (len(serving) >= self.num_workers and
                all(w.ready and w.generation == self.generation for w in serving))

    # -- workers ---------------------------------------------------------------------
    def _due(self, worker):
        """Why ``worker`` is to be replaced, or None: "reload" (made before
        the last reload), or what it asked for ("max-requests", "max-rss")."""
        if worker.generation != self.generation:
            return "reload"
        return worker.score.wants_replacement()

    def _manage(self):
        """Keep num_workers places held: a place is held by a worker that is
        not retiring and not a replacement still starting. A worker due for
        replacement gets one, and keeps its place until it is ready."""
        if self.stopping:
            return
        placed = [w for w in self.workers.values() if not w.retiring and w.replaces is None]
        if len(placed) > self.num_workers:
            extra = sorted(placed, key=lambda w: (not self._due(w), w.started))
            for worker in extra[:len(placed) - self.num_workers]:
                self._retire(worker)
            return
        due = [w for w in placed if self._due(w)]
        if not self.options.keep_alive:
            for worker in due:  # recycled, as without keep-alive, not replaced
                if worker.generation == self.generation:
                    self._retire(worker)
            due = [w for w in due if not w.retiring]
        replaced = {w.replaces for w in self.workers.values()}
        wanted = [w.pid for w in due if w.pid not in replaced]
        if self.options.keep_alive or not self.spawned:
            wanted += [None] * (self.num_workers - len(placed))
        if not wanted or time.monotonic() < self.next_spawn:
            return
        self.next_spawn = 0.0
        for pid in wanted:
            self._spawn(pid)

    def _spawn(self, replaces=None):
        worker = WorkerProc(0, self.generation, len(self.options.recv))
        worker.replaces = replaces
        worker.slot = self.dispatcher.new_slot()
        worker.shared = self.shared
        worker.report_r, worker.report_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            self._child(worker)
        os.close(worker.report_w)
        os.set_blocking(worker.report_r, False)
        worker.pid = pid
        self.workers[pid] = worker
        self.dispatcher.add(pid, worker.slot)
        self.spawned += 1
        if replaces is None:
            log.info("Worker created (pid=%d)", pid)
        else:
            log.info("Worker created (pid=%d) to replace worker %d", pid, replaces)
        return worker

    def _child(self, worker):
        status = 1
        try:
            worker.pid = os.getpid()
            signal.set_wakeup_fd(-1)
            for name in _SIGNALS:
                signal.signal(getattr(signal, "SIG" + name), signal.SIG_DFL)
            # USR1 (reopen the logs) noted while the application loads, not fatal.
            signal.signal(signal.SIGUSR1, wsgid_log.request_reopen)
            for fd in (self.wake_r, self.wake_w, self.ready_r, self.pid_fd, worker.report_r):
                os.close(fd)
            if self.channel is not None:
                self.channel.forget()
            # The master's own sockets (its connections to mongrel2 above
            # all): kept open here, they would outlive the master's leaving.
            inherited.close_sockets(keep=self.given)
            for other in self.workers.values():
                other.score.close()
                os.close(other.report_r)
                if other.slot is not None:
                    other.slot.close()
            try:
                appfolder.claim(self.app_path, appfolder.WORKER)
            except OSError as exc:
                log.error("Worker %d cannot write its pid file: %s", worker.pid, exc)
                raise SystemExit(BOOT_ERROR)
            random.seed()
            worker.broker = self.dispatcher.spec
            hooks.run("post_fork", worker)
            status = self.run_worker(worker, self.ready_w)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            log.exception("Worker crashed")
        finally:
            logging.shutdown()
            os._exit(status or 0)

    def _reap(self, flags=os.WNOHANG):
        """Account for the workers that exited (``flags=0``: wait for all)."""
        while True:
            try:
                pid, status = os.waitpid(-1, flags)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            appfolder.remove_pid(self.app_path, appfolder.WORKER, pid)
            self.dispatcher.worker_gone(pid)
            if worker is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            reason = self._exit_reason(worker, code)
            self.exits[reason] += 1
            if self.metrics is not None:
                self.metrics.worker_gone(worker.score)
            worker.score.close()
            report = read_boot_report(worker.report_r)
            os.close(worker.report_r)
            for other in self.workers.values():
                if other.replaces == pid:  # gone before it: it holds the place now
                    other.replaces = None
            hooks.run("worker_exit", worker, reason)
            if worker.retiring or self.stopping:
                log.info("Worker %d exited", pid)
            elif not worker.ready:
                self._failed_to_start(worker, code, report)
            else:
                log.log(logging.INFO if code == 0 else logging.WARNING,
                        "Worker %d %s%s", pid, "exited" if code == 0 else
                        "died (exit status %s)" % code,
                        "; replacing it" if self.options.keep_alive else "")

    def _exit_reason(self, worker, code):
        """Why a reaped worker exited (wsgid.hooks.EXIT_REASONS)."""
        if worker.kill_at:
            return "timeout"
        if worker.retiring:
            return worker.exit_reason
        if self.stopping:
            return "stop"
        if not worker.ready:
            return "boot-error"
        return "exit" if code == 0 else "crash"

    def _failed_to_start(self, worker, code, report):
        """A worker exited before it was ready: log why (its traceback once,
        not once per try), try again later, and say that the reload failed
        when it was one of its workers."""
        self.failures += 1
        delay = min(MAX_BACKOFF, 0.5 * 2 ** (self.failures - 1))
        self.next_spawn = time.monotonic() + delay
        if report is None:
            why = "exit status %s" % code
        elif self.boot_error is not None and report[1] == self.boot_error[1]:
            why = "exit status %s, the same error: %s" % (code, report[0])
        else:
            log.error("Worker %d could not load the application: %s", worker.pid, report[1])
            why = "exit status %s" % code
        self.boot_error = report or ("exit status %s" % code, "")
        log.error("Worker %d failed to start (%s); next try in %.1fs", worker.pid, why, delay)
        old = self.workers.get(worker.replaces)
        if old is not None and not old.stays_said:
            old.stays_said = True
            log.warning("Worker %d stays in service: its replacement cannot start (%s)",
                        old.pid, self.boot_error[0])
        reload = self.last_reload
        if worker.generation == self.generation and reload and reload["outcome"] == "pending":
            reload["outcome"], reload["error"] = "failed", self.boot_error[0]
            log.error("Reload failed: generation %d cannot start (%s); generation %s keeps "
                      "serving", self.generation, reload["error"],
                      ", ".join(map(str, self._serving())) or "none")
            self.notified_ready = True
            notify.ready(self.describe())

    def _retire(self, worker, sig=signal.SIGTERM):
        for other in list(self.workers.values()):  # its replacement still starting: no need
            if other.replaces == worker.pid and not other.retiring:
                self._retire(other)
        self.dispatcher.retire(worker.pid)
        worker.retiring = True
        worker.exit_reason = self._due(worker) or "scale-down"
        worker.retire_deadline = time.monotonic() + self.options.graceful_timeout
        self._kill(worker.pid, sig)

    def _kill(self, pid, sig):
        try:
            os.kill(pid, sig)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise

    def _murder_silent(self):
        now = time.monotonic()
        timeout = self.options.timeout
        for worker in list(self.workers.values()):
            if worker.retiring:
                if now > worker.retire_deadline:
                    log.warning("Worker %d did not finish in time, killing it", worker.pid)
                    self._kill(worker.pid, signal.SIGKILL)
                continue
            if worker.kill_at:
                if now >= worker.kill_at:
                    self._kill(worker.pid, signal.SIGKILL)
            elif timeout and now - worker.score.last_beat() > timeout:
                log.error("Worker %d silent for over %ds, killing it (its traceback follows)",
                          worker.pid, timeout)
                worker.ready = True  # it did serve: replace without back-off
                worker.kill_at = now + DUMP_GRACE
                self._kill(worker.pid, DUMP)

    # -- reload and stop ------------------------------------------------------------
    def reload(self):
        """Start a new generation: each worker gets a replacement (at once,
        whatever the back-off) and is retired when it is ready."""
        notify.reloading()
        self.notified_ready = False
        self.generation += 1
        self.last_reload = {"generation": self.generation, "outcome": "pending", "error": None}
        hooks.run("on_reload", self)
        self.failures, self.next_spawn = 0, 0.0
        for worker in list(self.workers.values()):
            if worker.replaces is not None and not worker.retiring:
                self._retire(worker)  # a replacement of the code before, still starting
        self._manage()

    def stop(self, graceful=True):
        notify.stopping()
        self.stopping = True
        self.dispatcher.stop_taking()
        sig = signal.SIGTERM if graceful else signal.SIGQUIT
        limit = self.options.graceful_timeout if graceful else 2
        for worker in self.workers.values():
            self._kill(worker.pid, sig)
        deadline = time.monotonic() + limit
        while self.workers and time.monotonic() < deadline:
            self._sleep(0.1)  # a broker still answers its workers' BYE
            self._reap()
        for pid in list(self.workers):
            log.warning("Worker %d did not stop in time, killing it", pid)
            self._kill(pid, signal.SIGKILL)
        self._reap(0)  # the dispatcher answers the requests they had started
