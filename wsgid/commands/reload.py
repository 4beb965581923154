"""``wsgid reload``: graceful reload; send SIGHUP to every live master of the
app folder (fresh workers start; each old one retires, after its current
request, once its replacement is ready). Stale pid files are removed.

Then it waits, up to ``--wait`` seconds (0: not at all), until each master
says the reload is done -- exit 0 -- or failed, the new workers unable to
load the application -- exit 1, the error on stderr: a deploy script stops
there, while the old workers serve on.
"""

import signal
import sys
import time

from wsgid import appfolder, channel
from wsgid.commands import enter_app_folder, send_signal
from wsgid.options import BY_NAME

POLL = 0.2  # seconds between two questions to the masters


def run(given):
    app_path = enter_app_folder(given)
    wait = given.get("wait", BY_NAME["wait"].default)
    before = {}
    if wait:
        masters = [pid for pid, alive in appfolder.states(app_path, appfolder.MASTER) if alive]
        before = {pid: _generation(answer)
                  for pid, answer in channel.ask(app_path, masters).items()}
    status, signaled = send_signal(app_path, appfolder.MASTER, signal.SIGHUP)
    if not wait or not signaled:
        return status
    failed = [pid for pid in signaled if not _outcome(app_path, pid, before.get(pid), wait)]
    return 1 if failed or status else 0


def _generation(answer):
    generation = answer.get("generation")
    return generation if isinstance(generation, int) else None


def _outcome(app_path, pid, before, wait):
    """Wait for master ``pid``'s reload past generation ``before``; print
    how it went; True when it is done."""
    if before is None:
        print("wsgid: error: cannot follow the reload of master %d: it did not say its "
              "generation" % pid, file=sys.stderr)
        return False
    deadline = time.monotonic() + wait
    while True:
        answer = channel.ask(app_path, [pid]).get(pid, {})
        reload = answer.get("reload")
        if (isinstance(reload, dict) and isinstance(reload.get("generation"), int)
                and reload["generation"] > before and reload.get("outcome") != "pending"):
            break
        if time.monotonic() >= deadline:
            print("wsgid: error: the reload of master %d is not done after %g s (%s)"
                  % (pid, wait, answer.get("error", "new workers still starting")),
                  file=sys.stderr)
            return False
        time.sleep(POLL)
    if reload["outcome"] == "done":
        print("Reload of master %d done: generation %s serving" % (pid, reload["generation"]))
        return True
    serving = answer.get("serving")
    print("wsgid: error: the reload of master %d failed: %s; generation %s serving"
          % (pid, reload.get("error"),
             ", ".join(map(str, serving)) if isinstance(serving, list) and serving else "none"),
          file=sys.stderr)
    return False
