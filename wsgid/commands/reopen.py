"""``wsgid reopen``: send USR1 to every live master of the app folder: it
reopens its log file and has every worker reopen wsgid.log and the access
log (logrotate's postrotate, see examples/logrotate). Stale pid files are
removed."""

import signal

from wsgid import appfolder
from wsgid.commands import signal_command


def run(given):
    return signal_command(given, appfolder.MASTER, signal.SIGUSR1)
