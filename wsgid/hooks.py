"""Lifecycle hooks: plugin code run at the moments of the master's and the
workers' lives, with gunicorn's server hooks' names.

A plugin (see :mod:`wsgid.plugins`) defines any of these module-level
functions (an entry-point object: methods):

``on_starting(master)``
    In the master, as it starts: before its pid file, its sockets and any
    worker.
``when_ready(master)``
    In the master, once it is set up (pid file, dispatcher sockets bound,
    status channel), just before it forks the first workers.
``on_reload(master)``
    In the master, on a reload (``HUP``, ``wsgid reload``), before the new
    workers are forked.
``post_fork(worker)``
    In a new worker, just after the fork, before the application loads: the
    place for per-process set-up (a metrics client, an error reporter).
``worker_exit(worker, reason)``
    In the master, once a worker has exited and been reaped, so it runs for
    a worker killed or crashed as well (gunicorn runs its ``worker_exit`` in
    the worker, which a killed one never reaches; this is the moment of its
    ``child_exit``). ``reason`` is one of :data:`EXIT_REASONS`.

``master`` is the :class:`wsgid.master.Master` (``.pid``, ``.options``,
``.app_path``, ``.generation``, ``.workers``); ``worker`` the master's
record of the worker (:class:`wsgid.children.Child`: ``.pid``,
``.generation``). Master hooks run in the master's loop: keep them quick.

A hook that raises is logged with its traceback and the others run on: it
never stops the master, nor a worker.
"""

import logging

log = logging.getLogger("wsgid")

HOOKS = ("on_starting", "when_ready", "on_reload", "post_fork", "worker_exit")
#: Why a worker exited: retired by a reload, replaced after --max-requests or
#: --max-rss, killed by --timeout, died (crash), failed to load the
#: application (boot-error), retired for fewer workers (TTOU), stopped with
#: the master (stop), or exited of its own with status 0 (exit).
EXIT_REASONS = ("reload", "max-requests", "max-rss", "timeout", "crash", "boot-error",
                "scale-down", "stop", "exit")

_installed = {hook: [] for hook in HOOKS}


def table():
    """An empty hook table: a dict hook -> list of ``(name, callable)``."""
    return {hook: [] for hook in HOOKS}


def install(hook_table):
    """Make these hooks the ones that run."""
    global _installed
    _installed = hook_table


def run(hook, *args):
    """Call every ``hook`` installed, in plugin order; never raises."""
    for name, func in _installed[hook]:
        try:
            func(*args)
        except Exception:
            log.exception("Lifecycle hook %s failed (ignored)", name)
