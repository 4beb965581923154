"""The master's worker processes: forking one (and what the child does
before it runs the worker), reaping those that exited and saying why,
retiring them, and killing those that stay silent or do not finish in time.

:class:`Children` is a part of :class:`wsgid.master.Master` (its base
class): the master's loop, signals, places and reloads are there, what is
done to one worker process here. :class:`Child` is the master's record of
one.
"""

import errno
import logging
import os
import random
import signal
import time

from wsgid import appfolder, hooks, inherited, notify, scoreboard, wsshared
from wsgid import log as wsgid_log
from wsgid.contract import BOOT_ERROR, DUMP, DUMP_GRACE, read_boot_report

log = logging.getLogger("wsgid")

MAX_BACKOFF = 30.0
#: The signals the master acts on (a forked child puts them back to default).
SIGNALS = ("TERM", "INT", "QUIT", "HUP", "TTIN", "TTOU", "USR1", "CHLD")


class Child:
    """The master's record of one worker process it forked (its child)."""

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
        self.master = None              # the master's pid (in the child): its parent, until gone
        self.retire_deadline = 0.0      # retiring: killed past it (--graceful-timeout)
        self.score = scoreboard.Score(fronts)  # what it is doing, its heartbeat, its counts


class Children:
    """Forking, reaping, retiring and killing the master's workers; the
    master's table of them is ``self.workers`` (pid -> :class:`Child`)."""

    def _spawn(self, replaces=None):
        worker = Child(0, self.generation, len(self.options.recv))
        worker.replaces = replaces
        worker.slot = self.dispatcher.new_slot()
        if self.shared is None:  # made before the first fork: every worker shares it
            self.shared = wsshared.Shared(len(self.options.recv))
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
            for name in SIGNALS:
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
            worker.master = self.pid
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
                if other.replaces == pid:  # gone before it: it fills the place now
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
