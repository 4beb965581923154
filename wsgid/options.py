"""The one table of wsgid's options.

It drives the argparse parser, the reading and writing of ``wsgid.json``
and the option reference in the docs. Precedence when starting: command
line, then wsgid.json, then the default.
"""

import argparse
import json
import os
import re

import wsgid
from wsgid import appfolder

COMMANDS = ("start", "init", "config", "status", "stop", "restart", "reload")

_ADDRESS = re.compile(r"^(tcp://(\[[0-9a-fA-F:.]+\]|[^:/\s\[\]]+):\d{1,5}"
                      r"|(ipc|inproc|pgm|epgm)://\S+)$")


class OptionError(Exception):
    """A bad option value or wsgid.json: its message is one line for the user."""


class Setting:
    """One option: its command-line flags, its wsgid.json key, its default."""

    def __init__(self, name, flags, kind, default, help, meta=None, saved=True,
                 section="Serving", negation=None, choices=None):
        self.name = name          # the wsgid.json key and attribute name
        self.flags = flags
        self.kind = kind          # "str", "int", "bool", "list", "address", "dict"
        self.default = default
        self.help = help
        self.meta = meta
        self.saved = saved        # stored in wsgid.json by `wsgid config`
        self.section = section
        self.negation = negation  # a flag that sets a bool False
        self.choices = choices    # the values a "choice" takes

    def convert(self, value, origin):
        """Check and convert a value from wsgid.json (or a parsed flag)."""
        kind = self.kind
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
        elif kind == "int":
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
        elif kind == "float":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif kind in ("str", "address"):
            if isinstance(value, str):
                if kind == "address" and not _ADDRESS.match(value):
                    raise OptionError("%s: %s is not a valid ZeroMQ address for %s "
                                      "(tcp://host:port, ipc://, inproc://, pgm://, epgm://)"
                                      % (origin, value, self.flags[0]))
                return value
        elif kind == "choice":
            if value in self.choices:
                return value
        elif kind == "list":
            if isinstance(value, str):
                return [value]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        elif kind == "dict":
            if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
                return value
        expected = " or ".join(self.choices) if kind == "choice" else _KIND_NAMES[kind]
        raise OptionError("%s: %r is not a valid value for %s (expected %s)"
                          % (origin, value, self.name, expected))


_KIND_NAMES = {"bool": "true or false", "int": "a whole number >= 0", "float": "a number",
               "str": "a string", "address": "a ZeroMQ address", "list": "a list of strings",
               "dict": "an object of strings"}

SETTINGS = [
    Setting("app_path", ["--app-path"], "str", ".", "The app folder.", "DIR"),
    Setting("wsgi_app", ["--wsgi-app"], "str", None,
            "The WSGI callable, as pkg.mod.attr or pkg.mod:attr.", "NAME", section="Loading"),
    Setting("loader_dir", ["--loader-dir"], "list", [],
            "Extra folder of loader plugins; may be repeated.", "DIR", section="Loading"),
    Setting("django", ["--django"], "bool", False, "Force the Django loader.",
            section="Loading", negation="--no-django"),
    Setting("recv", ["--recv"], "address", None,
            "ZeroMQ address to PULL requests from (mongrel2's send_spec).", "SPEC"),
    Setting("send", ["--send"], "address", None,
            "ZeroMQ address to PUBlish replies to (mongrel2's recv_spec).", "SPEC"),
    Setting("dispatch", ["--dispatch"], "choice", "direct",
            "How requests reach workers: direct (every worker PULLs from mongrel2, as "
            "wsgid 0.7) or broker (the master hands each request to an idle worker: "
            "none lost on reload, restart or worker death).", "MODE",
            section="Processes", choices=("direct", "broker")),
    Setting("workers", ["--workers"], "int", 1, "Number of worker processes.", "N",
            section="Processes"),
    Setting("keep_alive", ["--keep-alive"], "bool", True, "Replace workers that die.",
            section="Processes", negation="--no-keep-alive"),
    Setting("timeout", ["--timeout"], "int", 30,
            "Seconds a worker may go silent (stuck in a request) before the master "
            "kills and replaces it; 0 disables.", "SECONDS", section="Processes"),
    Setting("graceful_timeout", ["--graceful-timeout"], "int", 30,
            "Seconds workers get to finish their request on stop or reload before "
            "they are killed.", "SECONDS", section="Processes"),
    Setting("max_requests", ["--max-requests"], "int", 0,
            "Recycle a worker after this many requests; 0 disables.", "N",
            section="Processes"),
    Setting("max_requests_jitter", ["--max-requests-jitter"], "int", 0,
            "Add up to this many requests, at random, to --max-requests per worker, "
            "so workers do not all recycle at once.", "N", section="Processes"),
    Setting("chroot", ["--chroot"], "bool", False, "chroot into the app folder before serving.",
            section="Processes", negation="--no-chroot"),
    Setting("mongrel2_chroot", ["--mongrel2-chroot"], "str", None,
            "mongrel2's chroot: prefixed to async-upload file paths "
            "(without it they are read as they are: see uploads).", "DIR"),
    Setting("no_daemon", ["--no-daemon"], "bool", False, "Stay in the foreground.",
            section="Processes", negation="--daemon"),
    Setting("stdout", ["--stdout"], "bool", False,
            "With --no-daemon, log to standard output instead of logs/wsgid.log.",
            section="Logging", negation="--no-stdout"),
    Setting("access_log", ["--access-log"], "str", None,
            "Write an access log in the combined log format to FILE ('-': standard "
            "output).", "FILE", section="Logging"),
    Setting("debug", ["--debug"], "bool", False, "Log at DEBUG level; tracebacks in 500 replies.",
            section="Logging", negation="--no-debug"),
    Setting("send_signal", ["--send-signal"], "int", 15,
            "Signal number that stop and restart send.", "N", saved=False, section="Commands"),
    Setting("envs", [], "dict", {}, "Environment variables set in every worker before "
            "the application loads (wsgid.json only).", section="Loading"),
]
BY_NAME = {s.name: s for s in SETTINGS}


def _flag_type(setting):
    def convert(text):
        if setting.kind == "int":
            try:
                value = int(text)
            except ValueError:
                raise argparse.ArgumentTypeError("%r is not an integer" % text) from None
            if value < 0:
                raise argparse.ArgumentTypeError("%r is negative" % text)
            return value
        return text  # addresses are checked by parse_command_line: one-line error
    convert.__name__ = setting.kind
    return convert


def build_parser():
    parser = argparse.ArgumentParser(
        prog="wsgid", usage="wsgid [COMMAND] [OPTIONS]",
        description="Run a WSGI application behind mongrel2. COMMAND is one of: %s "
                    "(default: start)." % ", ".join(COMMANDS),
        argument_default=argparse.SUPPRESS)
    parser.add_argument("-v", "--version", action="version", version="wsgid %s" % wsgid.__version__)
    groups = {}
    for setting in SETTINGS:
        if not setting.flags:
            continue
        group = groups.get(setting.section) or groups.setdefault(
            setting.section, parser.add_argument_group(setting.section))
        default = "" if setting.default in (None, [], {}) else " (default: %s)" % (
            str(setting.default).lower() if setting.kind == "bool" else setting.default)
        if setting.kind == "bool":
            group.add_argument(*setting.flags, dest=setting.name, action="store_true",
                               help=setting.help + default)
            group.add_argument(setting.negation, dest=setting.name, action="store_false",
                               help=argparse.SUPPRESS)
        elif setting.kind == "list":
            group.add_argument(*setting.flags, dest=setting.name, action="append",
                               metavar=setting.meta, help=setting.help)
        elif setting.kind == "choice":
            group.add_argument(*setting.flags, dest=setting.name, choices=setting.choices,
                               help=setting.help + default)
        else:
            group.add_argument(*setting.flags, dest=setting.name, metavar=setting.meta,
                               type=_flag_type(setting), help=setting.help + default)
    return parser


def parse_command_line(argv):
    """Return ``(command, given)``: the command and the options given on the
    command line only (defaults and wsgid.json are merged by :func:`resolve`)."""
    argv = list(argv)
    command = "start"
    if argv and argv[0] in COMMANDS:
        command = argv.pop(0)
    given = vars(build_parser().parse_args(argv))
    for name, value in given.items():
        if BY_NAME[name].kind == "address":
            BY_NAME[name].convert(value, "command line")  # OptionError: one line
    return command, given


def json_path(app_path):
    return os.path.join(app_path, "wsgid.json")


def read_json(app_path):
    """The options stored in ``<app>/wsgid.json``, checked; {} when absent."""
    path = json_path(app_path)
    try:
        data = appfolder.read_json_object(path)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    values = {}
    for key, value in data.items():
        setting = BY_NAME.get(key)
        if setting is None or not setting.saved:
            raise OptionError("%s: unknown key %r" % (path, key))
        values[key] = setting.convert(value, "%s: key %r" % (path, key))
    return values


def write_json(app_path, values):
    """Merge ``values`` into ``<app>/wsgid.json`` atomically (temp + rename)."""
    stored = read_json(app_path)
    stored.update((k, v) for k, v in values.items() if BY_NAME[k].saved and k != "app_path")
    path = json_path(app_path)
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(stored, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return stored


class Options:
    """Resolved options: attribute per setting name."""

    def __init__(self, values):
        self.__dict__.update(values)

    def __repr__(self):
        return "Options(%r)" % self.__dict__


def resolve(given, use_json=True):
    """Defaults, then wsgid.json, then the command line."""
    values = {s.name: (list(s.default) if isinstance(s.default, list) else
                       dict(s.default) if isinstance(s.default, dict) else s.default)
              for s in SETTINGS}
    app_path = os.path.abspath(given.get("app_path", values["app_path"]))
    if use_json and os.path.isdir(app_path):
        values.update(read_json(app_path))
    values.update(given)
    values["app_path"] = app_path
    return Options(values)
