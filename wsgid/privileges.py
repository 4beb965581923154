"""Running as root: the app folder belongs to the account the application
runs as, which may be hostile, so root does nothing inside it.

Root names the app folder once (:func:`enter`): it walks the path from ``/``
one folder at a time without following a link, checks every folder above
the app folder (root's, writable by root alone, as sshd's StrictModes
wants), and keeps a descriptor of the app folder. Whom to run as comes from
``fstat`` on that descriptor, wsgid.json is read beneath it
(:func:`wsgid.appfolder.read_json_object`), ``--chroot`` is ``fchdir`` then
``chroot(".")``, and the drop follows (:func:`become_owner`). Every file in
the folder (layout, log, pid files, plugins) is made, opened and removed
after that, with the owner's rights. Since no folder above it can change
but by root, the app folder's path leads where the descriptor does.

A sticky folder that others can write (``/tmp``, mode 1777) is accepted
above the app folder when it is root's: there only an entry's owner (or
root) may rename or remove it, and the entry the walk goes into next is
root's in turn (checked at the next step) or the app folder itself, whose
owner is whom wsgid runs as anyway.
"""

import errno
import os
import pwd
import stat
import struct

from wsgid.options import OptionError

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# system.posix_acl_access: a version word, then (tag, perm, id) entries.
_ACL = "system.posix_acl_access"
_ACL_ENTRY = struct.Struct("<HHI")
_ACL_NAMED_USER, _ACL_NAMED_GROUP, _ACL_MASK, _ACL_WRITE = 0x02, 0x08, 0x10, 0x02


class AppFolder:
    """The app folder as :func:`enter` found it: ``path`` (absolute, as
    named), ``fd`` (a descriptor of it, open until :func:`become_owner`),
    and the ``uid`` and ``gid`` to run as."""

    def __init__(self, path, fd, uid, gid):
        self.path, self.fd, self.uid, self.gid = path, fd, uid, gid


def acl_grants_write(fd):
    """True when the folder's POSIX ACL lets a named user or group write,
    or its mask allows writing: such a folder is writable by others."""
    try:
        acl = os.getxattr(fd, _ACL)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.EOPNOTSUPP):
            return False
        raise
    for offset in range(4, len(acl) - _ACL_ENTRY.size + 1, _ACL_ENTRY.size):
        tag, perm, _ = _ACL_ENTRY.unpack_from(acl, offset)
        if tag in (_ACL_NAMED_USER, _ACL_NAMED_GROUP, _ACL_MASK) and perm & _ACL_WRITE:
            return True
    return False


def _writable_by_others(fd, info):
    """'' when only the owner may write the folder, else why not (for a message)."""
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "mode %o" % stat.S_IMODE(info.st_mode)
    if acl_grants_write(fd):
        return "its ACL grants write"
    return ""


def enter(app_path, run_as_root=False, create=False):
    """The app folder ``app_path`` (absolute), opened once: an
    :class:`AppFolder`. OptionError, in one line, for a folder that does not
    exist and any folder wsgid started as root may not trust (see the
    module's docstring). ``create``: make the missing folders (as root,
    beneath the descriptor of the last folder walked: root's new folder).

    As root the folder's owner is run as, with the group of its passwd
    entry (never gid 0); a folder of root's own only with ``run_as_root``.
    Anyone else runs as themselves: the path is opened as it is."""
    if os.geteuid() != 0:
        return _enter_as_user(app_path, create)
    fd = os.open("/", _FOLDER)
    try:
        made = False
        names = [name for name in app_path.split("/") if name]
        for depth, name in enumerate(names):
            _check_above(app_path, "/" + "/".join(names[:depth]), fd)
            try:
                child = os.open(name, _FOLDER, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise OptionError("app folder %s does not exist (run wsgid init)"
                                      % app_path) from None
                os.mkdir(name, 0o755, dir_fd=fd)  # EEXIST if planted meanwhile: refused
                child = os.open(name, _FOLDER, dir_fd=fd)
                made = True
            except NotADirectoryError:
                raise OptionError("app folder %s: %s is %s: refused" % (
                    app_path, "/" + "/".join(names[:depth + 1]), _what(name, fd))) from None
            os.close(fd)
            fd = child
        return _app_folder(app_path, fd, run_as_root or made)
    except BaseException:
        os.close(fd)
        raise


def _what(name, fd):
    """What stands at ``name`` (beneath ``fd``) instead of a folder."""
    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    return "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a folder"


def _check_above(app_path, above, fd):
    """Refuse the folder ``above`` the app folder (its descriptor ``fd``)
    unless it is root's and writable by root alone, or sticky: the next
    folder walked into is checked to be root's in turn, or is the app folder."""
    info = os.fstat(fd)
    if info.st_uid != 0:
        raise OptionError("app folder %s: %s, above it, is owned by uid %d: refused; every "
                          "folder above the app folder must be root's" % (app_path, above,
                                                                           info.st_uid))
    writable = _writable_by_others(fd, info)
    if writable and not info.st_mode & stat.S_ISVTX:
        raise OptionError("app folder %s: %s, above it, is writable by others (%s): refused; "
                          "chmod go-w it" % (app_path, above, writable))


def _app_folder(app_path, fd, run_as_root):
    """The checks on the app folder itself (its descriptor ``fd``), as root."""
    info = os.fstat(fd)
    if info.st_uid == 0:
        writable = _writable_by_others(fd, info)
        if writable:
            raise OptionError("app folder %s is owned by root and writable by others (%s): "
                              "refused; chown it to the account the application runs as, "
                              "or chmod go-w" % (app_path, writable))
        if not run_as_root:
            raise OptionError("app folder %s is owned by root: refused; chown it to the "
                              "account the application runs as, or give --run-as-root"
                              % app_path)
        return AppFolder(app_path, fd, 0, 0)
    try:
        account = pwd.getpwuid(info.st_uid)
    except KeyError:
        raise OptionError("app folder %s is owned by uid %d, which has no passwd entry: "
                          "refused" % (app_path, info.st_uid)) from None
    if account.pw_gid == 0:
        raise OptionError("app folder %s: its owner %s has group 0 (root's) in the passwd "
                          "file: refused; give the account a group of its own"
                          % (app_path, account.pw_name))
    return AppFolder(app_path, fd, info.st_uid, account.pw_gid)


def _enter_as_user(app_path, create):
    try:
        if create:
            os.makedirs(app_path, exist_ok=True)
        fd = os.open(app_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise OptionError("app folder %s does not exist (run wsgid init)" % app_path) from None
    return AppFolder(app_path, fd, os.getuid(), os.getgid())


def become_owner(folder, chroot=False):
    """As root: chroot into the app folder (:class:`AppFolder`) when asked,
    then become its owner (uid, passwd gid, no supplementary groups) for
    good; the folder's descriptor is closed. Return the app folder's path
    from now on. A current folder the owner may not enter is left for the
    app folder."""
    try:
        path = folder.path
        if chroot:
            os.fchdir(folder.fd)
            os.chroot(".")
            path = "/"
        if os.geteuid() == 0 and folder.uid != 0:
            os.setgroups([])
            os.setgid(folder.gid)
            os.setuid(folder.uid)
        if not os.access(".", os.X_OK):
            os.fchdir(folder.fd)
    finally:
        os.close(folder.fd)
    return path
