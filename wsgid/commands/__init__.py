"""One module per wsgid command, each with ``run(given) -> exit status``;
``given`` holds the options given on the command line.

The helpers below are shared by the commands that only look at the app
folder (status, stop, restart, reload): they read the command line alone,
never wsgid.json, so a broken wsgid.json cannot keep you from stopping wsgid.
"""

import os
import signal
import sys

from wsgid import appfolder, privileges
from wsgid.options import BY_NAME, OptionError


def app_path_given(given):
    """The absolute app folder named on the command line (default: the
    current directory)."""
    return os.path.abspath(given.get("app_path", BY_NAME["app_path"].default))


def enter_app_folder(given):
    """The app folder named on the command line, entered as
    :func:`wsgid.privileges.enter` does (OptionError when it does not exist
    or root may not trust it). As root, the command goes on as the folder's
    owner: what is inside is the owner's."""
    folder = privileges.enter(app_path_given(given), given.get("run_as_root", False))
    return privileges.become_owner(folder)


def signal_name(signum):
    try:
        return "%d (%s)" % (signum, signal.Signals(signum).name)
    except ValueError:
        return str(signum)


def check_signal(signum):
    if signum not in signal.valid_signals():
        raise OptionError("--send-signal: %d is not a valid signal number" % signum)
    return signum


def signal_live(app_path, kind, signum):
    """Send ``signum`` to every live ``kind`` process of the app folder.

    Only a process that holds its pid file's lock is signalled, through a
    pidfd taken before the check, so the signal reaches the process checked
    even if it exits and its pid is reused meanwhile. Other pid files (the
    process is gone, or the file was forged) are removed and skipped.
    Returns ``(signaled, refused)``: the pids signaled, and ``(pid, error)``
    for those the OS refused (EPERM).
    """
    signaled, refused = [], []
    for pid in appfolder.pids(app_path, kind):
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            appfolder.remove_pid(app_path, kind, pid)
            continue
        try:
            if not appfolder.owns(app_path, kind, pid):
                appfolder.remove_pid(app_path, kind, pid)
                continue
            signal.pidfd_send_signal(pidfd, signum)
        except ProcessLookupError:
            appfolder.remove_pid(app_path, kind, pid)
        except OSError as exc:
            refused.append((pid, exc))
        else:
            signaled.append(pid)
        finally:
            os.close(pidfd)
    return signaled, refused


def signal_command(given, kind, signum):
    """The body of stop and restart: see :func:`send_signal`."""
    return send_signal(enter_app_folder(given), kind, signum)[0]


def send_signal(app_path, kind, signum):
    """Signal, print one line per process signaled (stdout) or refused
    (stderr); ``(exit status, pids signaled)``, the status 1 only when the
    OS refused a signal."""
    check_signal(signum)
    signaled, refused = signal_live(app_path, kind, signum)
    for pid in signaled:
        print("Sent signal %s to %s %d" % (signal_name(signum), kind, pid))
    for pid, exc in refused:
        print("wsgid: error: cannot signal %s %d: %s" % (kind, pid, exc.strerror or exc),
              file=sys.stderr)
    if not signaled and not refused:
        print("No running %s for %s" % (kind, app_path))
    return (1 if refused else 0), signaled
