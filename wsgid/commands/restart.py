"""``wsgid restart``: send ``--send-signal`` (default 15, TERM) to every live
worker of the app folder; the master replaces them (the app is re-imported).
Stale pid files are removed."""

from wsgid import appfolder
from wsgid.commands import signal_command
from wsgid.options import BY_NAME


def run(given):
    signum = given.get("send_signal", BY_NAME["send_signal"].default)
    return signal_command(given, appfolder.WORKER, signum)
