"""The contract between the master and each worker it forks, both halves:
the exit status of a worker whose application failed to load,
the line a worker writes when it is ready to serve, and the signal that
makes a stuck worker write its traceback before the master kills it. (The
heartbeat is in the worker's score: wsgid.scoreboard.)"""

import faulthandler
import logging
import os
import signal

BOOT_ERROR = 3  # a worker's exit status when the application failed to load
DUMP = signal.SIGUSR2  # a stuck worker: write every thread's traceback to the log
DUMP_GRACE = 0.5  # seconds the master gives it before SIGKILL


def say_ready(fd):
    """In the worker: one line, its pid, on the master's ready pipe."""
    os.write(fd, b"%d\n" % os.getpid())


def ready_pids(data):
    """In the master: the pids in what was read from the ready pipe."""
    return [int(line) for line in data.split()]


def dump_on_signal():
    """In the worker: on :data:`DUMP`, write every thread's Python traceback
    to wsgid's log (faulthandler does it from C, even while the worker is
    stuck in a C call such as time.sleep)."""
    for handler in logging.getLogger("wsgid").handlers:
        stream = getattr(handler, "stream", None)
        if stream is not None:
            stream.flush()
            faulthandler.register(DUMP, file=stream, all_threads=True)
            return
