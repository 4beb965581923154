"""``wsgid status``: three lines on stdout::

    Status: Running
    Master pid(s): 4711
    Worker pid(s): 4712, 4713, 4714(dead)

``Running`` when at least one worker is alive. Pids sorted numerically; a pid
file whose process is gone, or that names a process not holding the file's
lock (a forged file, a reused pid), is marked ``(dead)`` (masters too). An empty list
leaves nothing after the ``": "``. Read only: no pid file is removed.
"""

from wsgid import appfolder
from wsgid.commands import enter_app_folder


def pid_list(states):
    return ", ".join("%d" % pid if alive else "%d(dead)" % pid for pid, alive in states)


def run(given):
    app_path = enter_app_folder(given)
    masters = appfolder.states(app_path, appfolder.MASTER)
    workers = appfolder.states(app_path, appfolder.WORKER)
    running = any(alive for _, alive in workers)
    print("Status: %s" % ("Running" if running else "Stopped"))
    print("Master pid(s): %s" % pid_list(masters))
    print("Worker pid(s): %s" % pid_list(workers))
    return 0
