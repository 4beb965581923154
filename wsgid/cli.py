"""``wsgid [COMMAND] [OPTIONS]``: parse, resolve options, run the command."""

import importlib
import sys

from wsgid import options as opts
from wsgid.loaders.base import LoaderError


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        command, given = opts.parse_command_line(argv)
        module = importlib.import_module("wsgid.commands.%s" % command)
        return module.run(given) or 0
    except (opts.OptionError, LoaderError) as exc:
        print("wsgid: error: %s" % exc, file=sys.stderr)
        return 1
