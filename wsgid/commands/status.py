"""``wsgid status``: three lines on stdout::

    Status: Running
    Master pid(s): 4711
    Worker pid(s): 4712, 4713, 4714(dead)

``Running`` when at least one worker is alive. A fourth line follows when
a live master's last reload failed (or is still under way)::

    Reload: failed (SyntaxError: invalid syntax (views.py, line 3)); generation 1 serving

 Pids sorted numerically; a pid
file whose process is gone, or that names a process not holding the file's
lock (a forged file, a reused pid), is marked ``(dead)`` (masters too). An empty list
leaves nothing after the ``": "``. Read only: no pid file is removed.

``--verbose`` adds what each live master answers over its private channel
(:mod:`wsgid.channel`), one line for it and one per worker; ``--json``
prints all of it as one JSON object instead. A master that does not answer
within a second gets a one-line note; the exit status stays 0. An answer is
the app account's words: the channel caps its size and escapes its
non-printable characters, and one that does not have the expected shape
gets a one-line note too.
"""

import json

from wsgid import appfolder, channel
from wsgid.commands import enter_app_folder


def pid_list(states):
    return ", ".join("%d" % pid if alive else "%d(dead)" % pid for pid, alive in states)


def run(given):
    app_path = enter_app_folder(given)
    masters = appfolder.states(app_path, appfolder.MASTER)
    workers = appfolder.states(app_path, appfolder.WORKER)
    running = any(alive for _, alive in workers)
    answers = channel.ask(app_path, [pid for pid, alive in masters if alive])
    if given.get("json"):
        print(json.dumps({
            "status": "Running" if running else "Stopped",
            "masters": [{"pid": pid, "live": alive, **answers.get(pid, {})}
                        for pid, alive in masters],
            "worker_pids": [{"pid": pid, "live": alive} for pid, alive in workers],
        }, indent=2))
        return 0
    print("Status: %s" % ("Running" if running else "Stopped"))
    print("Master pid(s): %s" % pid_list(masters))
    print("Worker pid(s): %s" % pid_list(workers))
    for pid in sorted(answers):
        line = reload_line(answers[pid])
        if line:
            print(line)
    if not given.get("verbose"):
        return 0
    for pid in sorted(answers):
        for line in describe(pid, answers[pid]):
            print(line)
    return 0


def reload_line(state):
    """The line on a master's last reload when it failed or is under way
    (None: done, none, or an answer not of the expected shape)."""
    reload = state.get("reload")
    if not isinstance(reload, dict) or reload.get("outcome") not in ("failed", "pending"):
        return None
    serving = state.get("serving")
    serving = ", ".join(map(str, serving)) if isinstance(serving, list) and serving else "none"
    if reload["outcome"] == "pending":
        return "Reload: generation %s starting; generation %s serving" % (
            reload.get("generation"), serving)
    return "Reload: failed (%s); generation %s serving" % (reload.get("error"), serving)


def describe(pid, state):
    """The lines ``--verbose`` prints for master ``pid`` and its workers."""
    try:
        return _describe(pid, state)
    except (AttributeError, TypeError, ValueError):  # e.g. a worker that is not an object
        return ["Master %d: its answer has not the expected shape" % pid]


def _describe(pid, state):
    if "error" in state:
        return ["Master %d: %s; only its pid files are known" % (pid, state["error"])]
    waiting = state.get("waiting")
    lines = ["Master %d: %s dispatch, %s, answered 502: %s, 503: %s%s" % (
        pid, state.get("dispatch"),
        "requests waiting: n/a" if waiting is None else "%s request(s) waiting" % waiting,
        state.get("answered_502"), state.get("answered_503"),
        "" if state.get("generation") is None else ", generation %s" % state["generation"])]
    for worker in state.get("workers", ()):
        if worker.get("state") == "busy":
            doing = "busy %.1fs on %s %s" % (worker.get("age", 0), worker.get("method"),
                                             worker.get("path"))
        else:
            doing = "idle"
        lines.append("  Worker %s: %s; %s served, RSS %s, up %s%s" % (
            worker.get("pid"), doing, worker.get("served"), mib(worker.get("rss")),
            duration(worker.get("uptime", 0)), " (retiring)" if worker.get("retiring") else ""))
    return lines


def mib(size):
    return "?" if size is None else "%.1f MiB" % (size / 1048576)


def duration(seconds):
    """``42s``, ``12m05s``, ``3h04m``, ``2d03h``."""
    seconds = int(seconds)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60),
                                      ("m", 60, "s", 1)):
        if seconds >= size:
            return "%d%s%02d%s" % (seconds // size, unit, seconds % size // sub_size, sub)
    return "%ds" % seconds
