"""The contract between the master and each worker it forks, both halves:
the exit status of a worker whose application failed to load and the
report it leaves the master (why, and the traceback: the master logs it
once, and ``wsgid status`` says why a reload failed),
the line a worker writes when it is ready to serve, and the signal that
makes a stuck worker write its traceback before the master kills it. (The
heartbeat is in the worker's score: wsgid.scoreboard.)"""

import faulthandler
import json
import logging
import os
import signal
import traceback

BOOT_ERROR = 3  # a worker's exit status when the application failed to load
DUMP = signal.SIGUSR2  # a stuck worker: write every thread's traceback to the log
DUMP_GRACE = 0.5  # seconds the master gives it before SIGKILL
REPORT_MAX = 32768  # bytes of a boot report at most: less than a pipe holds, never blocks
_DETAIL_MAX = 4000  # characters of the traceback sent (its end): JSON-escaped, < REPORT_MAX


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


def report_boot_error(fd, exc, detail=True):
    """In the worker whose application failed to load: write ``exc`` to
    ``fd`` (its own pipe to the master) as ``{"error": its last line, the
    exception's, "detail": the traceback}`` (``detail`` False: the message
    alone, for a LoaderError, which says all in one line)."""
    why = traceback.format_exception_only(type(exc), exc)[-1].strip()
    if not detail:
        why = str(exc).strip().split("\n")[0]
    text = traceback.format_exc() if detail else why
    os.write(fd, json.dumps({"error": why[:500], "detail": text[-_DETAIL_MAX:]}).encode())


def read_boot_report(fd):
    """In the master, once the worker has exited: ``(error, detail)`` from
    its report, or None when it left none (it failed another way)."""
    data = b""
    try:
        while len(data) < REPORT_MAX:
            chunk = os.read(fd, REPORT_MAX)
            if not chunk:
                break
            data += chunk
    except BlockingIOError:
        pass  # a process the app forked still holds the pipe: what is there
    try:
        report = json.loads(data)
        return str(report["error"]), str(report["detail"])
    except (ValueError, KeyError, TypeError):
        return None
