"""``wsgid [start]``: check the options, daemonize, run the master."""

import logging
import os
import random

import daemon

from wsgid import appfolder, loaders, log, options as opts, privileges, proctitle, uploads
from wsgid.accesslog import AccessLog
from wsgid.master import BOOT_ERROR, Master
from wsgid.worker import Worker

logger = logging.getLogger("wsgid")


def check(options):
    """Refuse to start, with one line, on what would fail later."""
    if not os.path.isdir(options.app_path):
        raise opts.OptionError("app folder %s does not exist (run wsgid init)" % options.app_path)
    for name in ("recv", "send"):
        if not getattr(options, name):
            raise opts.OptionError("--%s is required to start" % name)
    if options.workers < 1:
        raise opts.OptionError("--workers must be at least 1")


def run_worker(options, found, proc, ready_fd):
    """The body of a forked worker: load the app (``found``: the plugins the
    master read), then serve."""
    proctitle.set("worker")
    pid = os.getpid()
    os.environ.update(options.envs)
    try:
        app = loaders.load(options, found)
    except Exception as exc:  # LoaderError or the app's own import error
        logger.error("Worker %d could not load the application: %s", pid, exc,
                     exc_info=not isinstance(exc, loaders.LoaderError))
        return BOOT_ERROR
    max_requests = options.max_requests
    if max_requests and options.max_requests_jitter:
        max_requests += random.randint(0, options.max_requests_jitter)
    heartbeat = proc.heartbeat.fileno()
    spin = [0]

    def tick():
        spin[0] ^= 1
        os.fchmod(heartbeat, spin[0])

    access_log = AccessLog(options.access_log) if options.access_log else None
    Worker(app, options.recv, options.send, options.mongrel2_chroot, options.debug,
           max_requests, on_tick=tick, broker=proc.broker, slot=proc.slot,
           access_log=access_log, on_ready=lambda: os.write(ready_fd, b"%d\n" % pid)).run()
    return 0


def run(given):
    options = opts.resolve(given)
    check(options)
    root = os.geteuid() == 0
    # Opened before a chroot hides /dev: the daemon's standard streams.
    devnull = None if options.no_daemon else open(os.devnull, "r+")
    options.app_path = privileges.become_owner(options.app_path, options.chroot)
    # From here on with the owner's rights only: the folder is the owner's.
    try:
        appfolder.create(options.app_path)
        for kind in (appfolder.MASTER, appfolder.WORKER):
            appfolder.remove_stale(options.app_path, kind)
    except OSError as exc:
        raise opts.OptionError("app folder %s: %s" % (options.app_path, exc)) from None
    stream = log.setup(options)
    if options.chroot:
        logger.info("Chrooted into the app folder")
    if root and os.getuid() != 0:
        logger.info("Running as uid=%d gid=%d (owner of the app folder)",
                    os.getuid(), os.getgid())
    logger.info(uploads.describe(options.mongrel2_chroot))
    # Plugins are read once, here, as the owner and before the fork; a folder
    # no loader accepts fails now, in one line, not in every worker.
    found = loaders.prepare(options)
    loaders.choose(options, found.loaders)
    if not options.no_daemon:
        cwd = os.getcwd()  # kept unless the owner may not enter it
        with daemon.DaemonContext(umask=0o022, files_preserve=[stream], detach_process=True,
                                  working_directory=cwd if os.access(cwd, os.X_OK)
                                  else options.app_path,
                                  stdin=devnull, stdout=devnull, stderr=devnull):
            return _serve(options, found)
    return _serve(options, found)


def _serve(options, found):
    return Master(options, lambda proc, fd: run_worker(options, found, proc, fd)).run()
