"""The contract between the master and each worker it forks, both halves:
the heartbeat, the exit status of a worker whose application failed to load,
the line a worker writes when it is ready to serve, and the signal that
makes a stuck worker write its traceback before the master kills it."""

import faulthandler
import logging
import os
import signal
import tempfile

BOOT_ERROR = 3  # a worker's exit status when the application failed to load
DUMP = signal.SIGUSR2  # a stuck worker: write every thread's traceback to the log
DUMP_GRACE = 0.5  # seconds the master gives it before SIGKILL


class Heartbeat:
    """A temp file the master makes before the fork: the worker flips its
    mode (a metadata change, so its ctime moves), the master reads the
    ctime to tell a worker that is stuck (``--timeout``)."""

    def __init__(self):
        self.file = tempfile.TemporaryFile(prefix="wsgid-heartbeat-")
        self._mode = 0

    def beat(self):
        """In the worker: I am alive."""
        self._mode ^= 1
        os.fchmod(self.file.fileno(), self._mode)

    def last(self):
        """In the master: when the worker last said so (epoch seconds)."""
        return os.fstat(self.file.fileno()).st_ctime

    def close(self):
        self.file.close()


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
