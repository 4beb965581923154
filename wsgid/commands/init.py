"""``wsgid init``: create the app folder layout (parents too); safe to run
again on an existing app folder, whose content is left alone. As root, an
existing folder is completed as its owner; a new one is made as root,
beneath folders checked as :func:`wsgid.privileges.enter` does."""

import os

from wsgid import appfolder, privileges
from wsgid.commands import app_path_given
from wsgid.options import OptionError


def run(given):
    app_path = app_path_given(given)
    try:
        folder = privileges.enter(app_path, given.get("run_as_root", False), create=True)
    except OSError as exc:
        raise OptionError("cannot create app folder %s: %s"
                          % (app_path, exc.strerror or exc)) from None
    privileges.become_owner(folder)  # as root: the layout is the owner's to make
    missing = [sub for sub in appfolder.FOLDERS
               if not os.path.isdir(os.path.join(app_path, sub))]
    try:
        appfolder.create(app_path)
    except OSError as exc:
        raise OptionError("cannot create app folder %s: %s"
                          % (app_path, exc.strerror or exc)) from None
    if missing:
        print("Created app folder %s" % app_path)
    else:
        print("App folder %s already exists, nothing to create" % app_path)
    return 0
