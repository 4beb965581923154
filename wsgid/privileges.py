"""Running as root: the app folder belongs to the account the application
runs as, which may be hostile, so root does nothing inside it.

Root looks at the folder itself (owner and mode), reads wsgid.json without
following links (:func:`wsgid.appfolder.read_json_object`), chroots into
the folder where asked, and drops to the folder's owner for good. Every
file in the folder (layout, log, pid files, plugins) is made, opened and
removed after that, with the owner's rights.
"""

import os
import stat

from wsgid.options import OptionError


def owner(app_path):
    """The app folder's ``os.stat``; OptionError for a folder owned by root
    that others can write (its content could not be trusted either)."""
    info = os.stat(app_path)
    others = stat.S_IWOTH | (stat.S_IWGRP if info.st_gid != 0 else 0)
    if info.st_uid == 0 and info.st_mode & others:
        raise OptionError("app folder %s is owned by root and writable by others (mode %o): "
                          "refused; chown it to the account the application runs as, "
                          "or chmod go-w" % (app_path, stat.S_IMODE(info.st_mode)))
    return info


def become_owner(app_path, chroot=False):
    """As root: chroot into the app folder when asked, then become its owner
    (uid, gid, no supplementary groups) for good. Return the app folder's
    path from now on. Nothing is imported or opened between the chroot and
    the drop: inside the chroot, every path is the owner's."""
    info = owner(app_path)
    if chroot:
        os.chroot(app_path)
        os.chdir("/")
        app_path = "/"
        here = os.stat("/")
        if (here.st_dev, here.st_ino) != (info.st_dev, info.st_ino):
            raise OptionError("the app folder was replaced while wsgid chrooted into it")
    if os.geteuid() == 0 and info.st_uid != 0:
        os.setgroups([])
        os.setgid(info.st_gid)
        os.setuid(info.st_uid)
    return app_path
