"""``wsgid [start]``: serve the app folder."""

import os

from wsgid import log, options as opts
from wsgid.loaders import load
from wsgid.worker import Worker


def check(options):
    """Refuse to start, with one line, on what would fail later."""
    if not os.path.isdir(options.app_path):
        raise opts.OptionError("app folder %s does not exist (run wsgid init)" % options.app_path)
    for name in ("recv", "send"):
        if not getattr(options, name):
            raise opts.OptionError("--%s is required to start" % name)


def run(given):
    options = opts.resolve(given)
    check(options)
    log.setup(options)
    os.environ.update(options.envs)
    app = load(options)
    Worker(app, options.recv, options.send, options.mongrel2_chroot,
           options.debug, options.max_requests).run()
    return 0
