"""``wsgid [start]``: check the options, daemonize, run the master."""

import logging
import os

import daemon

from wsgid import appfolder, loaders, log, options as opts, privileges, uploads
from wsgid.master import Master
from wsgid.worker import run_worker

logger = logging.getLogger("wsgid")


def check(options):
    """Refuse to start, with one line, on what would fail later."""
    if not os.path.isdir(options.app_path):
        raise opts.OptionError("app folder %s does not exist (run wsgid init)" % options.app_path)
    for name in ("recv", "send"):
        if not getattr(options, name):
            raise opts.OptionError("--%s is required to start" % name)
    opts.front_ends(options)
    if options.workers < 1:
        raise opts.OptionError("--workers must be at least 1")
    try:
        uploads.spool(options)
    except ValueError as exc:
        raise opts.OptionError(str(exc)) from None


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
    spool = uploads.spool(options)
    if spool is None:
        logger.warning(uploads.OFF)
    else:
        logger.info(spool.describe())
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
