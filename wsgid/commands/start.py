"""``wsgid [start]``: check the options, leave root's terminal, drop to the
app folder's owner, read the plugins, run the master."""

import importlib.util
import logging
import os

from wsgid import (accesslog, appfolder, endpoint, loaders, log, options as opts, privileges,
                   proxies, session, uploads)
from wsgid.commands import app_path_given
from wsgid.master import Master
from wsgid.worker import run_worker

logger = logging.getLogger("wsgid")


def check(options):
    """Refuse to start, with one line, on what would fail later."""
    for name in ("recv", "send"):
        if not getattr(options, name):
            raise opts.OptionError("--%s is required to start" % name)
    opts.front_ends(options)
    if options.workers < 1:
        raise opts.OptionError("--workers must be at least 1")
    try:
        uploads.spool(options)
        proxies.proxies(options)
    except ValueError as exc:
        raise opts.OptionError(str(exc)) from None
    if options.metrics:
        _check_metrics(options.metrics)
    if options.access_log_format:
        why = accesslog.check_format(options.access_log_format)
        if why:
            raise opts.OptionError("--access-log-format: %s" % why)


def _check_metrics(where):
    try:
        endpoint.address(where)
    except ValueError as exc:
        raise opts.OptionError(str(exc)) from None
    if importlib.util.find_spec("prometheus_client") is None:
        raise opts.OptionError("--metrics needs prometheus_client (pip install "
                               "'wsgid[metrics]')")


def run(given):
    # The app folder is named once: its wsgid.json is read beneath it, the
    # chroot and the drop go by its descriptor (wsgid.privileges).
    folder = privileges.enter(app_path_given(given), given.get("run_as_root", False))
    options = opts.resolve(given, folder=folder)
    check(options)
    # No code of the app account runs before wsgid.session has left root's terminal.
    if options.no_daemon:
        return session.foreground(lambda: _serve(options, _set_up(options, folder)))
    return session.daemonize(lambda: _set_up(options, folder),
                             lambda found: _serve(options, found), keep=[folder.fd])


def _set_up(options, folder):
    """Become the owner, make the layout, log, read the plugins and choose a
    loader: what must work before ``wsgid start`` says it started."""
    dropping = os.geteuid() == 0 and folder.uid != 0
    options.app_path = privileges.become_owner(folder, options.chroot)
    # From here on with the owner's rights only: the folder is the owner's.
    try:
        appfolder.create(options.app_path)
        for kind in (appfolder.MASTER, appfolder.WORKER):
            appfolder.remove_stale(options.app_path, kind)
    except OSError as exc:
        raise opts.OptionError("app folder %s: %s" % (options.app_path, exc)) from None
    log.setup(options)
    if options.chroot:
        logger.info("Chrooted into the app folder")
    if dropping:
        logger.info("Running as uid=%d gid=%d (owner of the app folder)", folder.uid, folder.gid)
    spool = uploads.spool(options)
    if spool is None:
        logger.warning(uploads.OFF)
    else:
        logger.info(spool.describe())
    return prepare(options)


def prepare(options):
    """Read the plugins (and install their filters) and choose the loader,
    as the owner: once, before the fork, by the master (and ``wsgid
    check``). A folder no loader accepts fails now, in one line, not in
    every worker."""
    found = loaders.prepare(options)
    loaders.choose(options, found.loaders)
    return found


def _serve(options, found):
    return Master(options, lambda proc, fd: run_worker(options, found, proc, fd)).run()
