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
memory shared with the master (:mod:`wsgid.scoreboard`). What is done to
one worker process (fork, reap, retire, kill) is :mod:`wsgid.children`.
"""

import collections
import errno
import logging
import os
import signal
import time

import zmq

from wsgid import appfolder, channel, dispatch, hooks, inherited, notify, proctitle, scoreboard
from wsgid import log as wsgid_log
from wsgid.children import SIGNALS, Children
from wsgid.contract import ready_pids

log = logging.getLogger("wsgid")

class Master(Children):
    """``run_worker(child, ready_fd)`` runs in the forked child and
    never returns; everything else here runs in the master."""

    def __init__(self, options, run_worker):
        self.options = options
        self.run_worker = run_worker
        self.app_path = options.app_path
        self.num_workers = options.workers
        self.workers = {}
        self.generation = 0
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
        self.shared = None            # WebSockets: wsgid.wsshared.Shared, at the first fork
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
        for name in SIGNALS:
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
        """Every place filled by a ready worker of the last generation."""
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
        """Keep num_workers places filled: a place is filled by a worker that is
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
