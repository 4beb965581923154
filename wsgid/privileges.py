"""Root start-up: chroot into the app folder, drop to the folder's owner."""

import logging
import os

log = logging.getLogger("wsgid")


def setup(app_path, chroot):
    """With ``chroot``, chroot into the app folder; as root, become its owner
    (uid/gid), as wsgid 0.7 did. Return the app folder's path from now on."""
    info = os.stat(app_path)
    if chroot:
        os.chroot(app_path)
        os.chdir("/")
        app_path = "/"
        log.info("Chrooted into the app folder")
    if os.getuid() == 0 and info.st_uid != 0:
        # What root made at start-up must stay usable by the owner: a log
        # handler that an app's logging set-up closes reopens the file.
        for sub in ("logs", "logs/wsgid.log", "pid", "pid/master", "pid/worker"):
            path = os.path.join(app_path, sub)
            if os.path.exists(path):
                os.chown(path, info.st_uid, info.st_gid)
        os.setgroups([])
        os.setgid(info.st_gid)
        os.setuid(info.st_uid)
        log.info("Running as uid=%d gid=%d (owner of the app folder)", info.st_uid, info.st_gid)
    return app_path
