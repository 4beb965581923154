"""``wsgid reload``: graceful reload; send SIGHUP to every live master of the
app folder (fresh workers start, the old ones retire after their current
request). Stale pid files are removed."""

import signal

from wsgid import appfolder
from wsgid.commands import signal_command


def run(given):
    return signal_command(given, appfolder.MASTER, signal.SIGHUP)
