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

COMMANDS = ("start", "init", "config", "check", "status", "stop", "restart", "reload",
            "reopen")

_ADDRESS = re.compile(r"^(tcp://(\[[0-9a-fA-F:.]+\]|[^:/\s\[\]]+):\d{1,5}"
                      r"|(ipc|inproc|pgm|epgm)://\S+)$")


class OptionError(Exception):
    """A bad option value or wsgid.json: its message is one line for the user."""


class Kind:
    """What an option kind means, in one place: ``convert(setting, value,
    origin)`` checks a wsgid.json value (or a parsed flag) and returns it
    converted, raising ``ValueError`` when it is not one; ``expected`` names
    the value in that error; ``doc`` names it in the docs (None: the metavar
    says it all); ``action`` and ``flag_type`` are how argparse reads the flag
    (``flag_type`` None: the text as it is); ``save`` turns a value into
    what ``wsgid config`` writes (None: the value as it is)."""

    def __init__(self, convert, expected, doc, action="store", flag_type=None, save=None):
        self.convert = convert
        self.expected = expected
        self.doc = doc
        self.action = action
        self.flag_type = flag_type
        self.save = save


def _bool(setting, value, origin):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(value)


def _whole_number(setting, value, origin):
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ValueError(value)


def _whole_number_flag(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not an integer" % text) from None
    if value < 0:
        raise argparse.ArgumentTypeError("%r is negative" % text)
    return value


_SIZE = re.compile(r"(\d+)([KMG]?)\Z", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _size(setting, value, origin):
    """Bytes: a whole number, or one with K, M or G (binary units) after it."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(value)
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def _size_flag(text):
    try:
        return _size(None, text, None)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a size (as 100M: bytes, or K, M or G "
                                         "after a whole number)" % text) from None


def _str(setting, value, origin):
    if isinstance(value, str):
        return value
    raise ValueError(value)


def _address(setting, value, origin):
    if not _ADDRESS.match(_str(setting, value, origin)):
        raise OptionError("%s: %s is not a valid ZeroMQ address for %s "
                          "(tcp://host:port, ipc://, inproc://, pgm://, epgm://)"
                          % (origin, value, setting.flags[0]))
    return value


def _addresses(setting, value, origin):
    """One address (as wsgid 0.7 wrote it) or a list of them: a list."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise ValueError(value)
    return [_address(setting, v, origin) for v in values]


def _one_or_list(values):
    """A single address is written as a string, as wsgid 0.7 reads it."""
    return values[0] if len(values) == 1 else values


def _choice(setting, value, origin):
    if value in setting.choices:
        return value
    raise ValueError(value)


def _list(setting, value, origin):
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(value)


def _dict(setting, value, origin):
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return value
    raise ValueError(value)


KINDS = {
    "bool": Kind(_bool, "true or false",
                 "``true`` or ``false`` (the wsgid 0.7 strings ``\"True\"``/``\"False\"``, "
                 "any case, are read too)", action="store_true"),
    "int": Kind(_whole_number, "a whole number >= 0", "a whole number >= 0",
                flag_type=_whole_number_flag),
    "str": Kind(_str, "a string", None),
    "size": Kind(_size, "a size in bytes (a whole number, or as \"100M\")",
                 "a size: bytes, or a whole number followed by ``K``, ``M`` or ``G`` "
                 "(KiB, MiB, GiB), as ``100M``", flag_type=_size_flag),
    # Addresses are checked after parsing (parse_command_line): a one-line error.
    "addresses": Kind(_addresses, "a ZeroMQ address or a list of them",
                      "a ZeroMQ address: ``tcp://HOST:PORT``, ``ipc://PATH``, ``inproc://NAME``, "
                      "``pgm://...`` or ``epgm://...``; in wsgid.json one such string, or a "
                      "list of them for several front-ends", action="append", save=_one_or_list),
    "choice": Kind(_choice, None, None),  # expected and doc: the setting's choices
    "list": Kind(_list, "a list of strings", "a list of strings", action="append"),
    "dict": Kind(_dict, "an object of strings", "an object whose values are strings"),
}


class Setting:
    """One option: its command-line flags, its wsgid.json key, its default."""

    def __init__(self, name, flags, kind, default, help, meta=None, saved=True,
                 section="Serving", negation=None, choices=None):
        self.name = name          # the wsgid.json key and attribute name
        self.flags = flags
        self.kind = kind          # a key of KINDS
        self.default = default
        self.help = help
        self.meta = meta
        self.saved = saved        # stored in wsgid.json by `wsgid config`
        self.section = section
        self.negation = negation  # a flag that sets a bool False
        self.choices = choices    # the values a "choice" takes

    def convert(self, value, origin):
        """Check and convert a value from wsgid.json (or a parsed flag)."""
        try:
            return KINDS[self.kind].convert(self, value, origin)
        except ValueError:
            expected = " or ".join(self.choices) if self.choices else KINDS[self.kind].expected
            raise OptionError("%s: %r is not a valid value for %s (expected %s)"
                              % (origin, value, self.name, expected)) from None


SETTINGS = [
    Setting("app_path", ["--app-path"], "str", ".", "The app folder.", "DIR"),
    Setting("wsgi_app", ["--wsgi-app"], "str", None,
            "The WSGI callable, as pkg.mod.attr or pkg.mod:attr.", "NAME", section="Loading"),
    Setting("loader_dir", ["--loader-dir"], "list", [],
            "Extra folder of loader plugins; may be repeated.", "DIR", section="Loading"),
    Setting("django", ["--django"], "bool", False, "Force the Django loader.",
            section="Loading", negation="--no-django"),
    Setting("recv", ["--recv"], "addresses", None,
            "ZeroMQ address to PULL requests from (mongrel2's send_spec). Repeat it, with "
            "--send, for several mongrel2 front-ends: the n-th --recv pairs with the n-th "
            "--send.", "SPEC"),
    Setting("send", ["--send"], "addresses", None,
            "ZeroMQ address to PUBlish replies to (mongrel2's recv_spec); one per --recv, "
            "in the same order.", "SPEC"),
    Setting("dispatch", ["--dispatch"], "choice", "broker",
            "How requests reach workers: broker (the master hands the requests out: "
            "none stuck behind a slow one, none lost on reload, restart or worker "
            "death) or direct (every worker PULLs from mongrel2, as wsgid 0.7: a little "
            "faster, but requests queued at a worker that dies are lost; see "
            "docs/dispatch.rst).", "MODE", section="Processes", choices=("broker", "direct")),
    Setting("workers", ["--workers"], "int", 1, "Number of worker processes.", "N",
            section="Processes"),
    Setting("keep_alive", ["--keep-alive"], "bool", True, "Replace workers that die.",
            section="Processes", negation="--no-keep-alive"),
    Setting("timeout", ["--timeout"], "int", 30,
            "Seconds a worker may go silent (stuck in a request) before the master "
            "logs its traceback, kills and replaces it; 0 disables.", "SECONDS",
            section="Processes"),
    Setting("graceful_timeout", ["--graceful-timeout"], "int", 30,
            "Seconds workers get to finish their request on stop or reload before "
            "they are killed.", "SECONDS", section="Processes"),
    Setting("max_requests", ["--max-requests"], "int", 0,
            "Recycle a worker after this many requests; 0 disables.", "N",
            section="Processes"),
    Setting("max_requests_jitter", ["--max-requests-jitter"], "int", 0,
            "Add up to this many requests, at random, to --max-requests per worker, "
            "so workers do not all recycle at once.", "N", section="Processes"),
    Setting("max_rss", ["--max-rss"], "int", 0,
            "Recycle a worker once its peak resident memory passes this many MiB: "
            "checked after each request, which is answered first; 0 disables.", "MIB",
            section="Processes"),
    Setting("run_as_root", ["--run-as-root"], "bool", False,
            "Started as root, accept an app folder owned by root and run the application "
            "as root (refused without it; a folder of another account is run as that "
            "account in any case). Command line only.", saved=False, section="Processes"),
    Setting("chroot", ["--chroot"], "bool", False, "chroot into the app folder before serving.",
            section="Processes", negation="--no-chroot"),
    Setting("mongrel2_chroot", ["--mongrel2-chroot"], "str", None,
            "mongrel2's chroot: prefixed to async-upload file paths "
            "(without it they are read as they are: see uploads).", "DIR"),
    Setting("mongrel2_upload_dir", ["--mongrel2-upload-dir"], "str", None,
            "mongrel2's upload.temp_store, as in its config (/tmp/upload.XXXXXX; read "
            "under --mongrel2-chroot): async uploads are taken only from files so named "
            "in that folder, owned by its owner (mongrel2's account). Without it they "
            "are refused (see uploads).", "TEMPLATE"),
    Setting("websocket_handler", ["--websocket-handler"], "str", None,
            "The WebSocket handler, as pkg.mod:object (its open, message and close are "
            "called per event; a Django project may name it in its settings as "
            "WSGID_WEBSOCKET_HANDLER instead). Without one, WebSocket handshakes are "
            "answered 501 (see websockets).", "NAME", section="Loading"),
    Setting("websocket_max_message", ["--websocket-max-message"], "size", 1114112,
            "The largest WebSocket message a client may send; a larger one closes its "
            "socket with code 1009 (mongrel2 has read it whole by then: see websockets).",
            "SIZE"),
    Setting("max_body_size", ["--max-body-size"], "size", 0,
            "Answer 413 to a request whose body is larger, without calling the "
            "application; an async upload is stopped at its start, mongrel2 deleting "
            "its file (a chunked one once spooled: see uploads); 0 disables.", "SIZE"),
    Setting("forwarded_allow_ips", ["--forwarded-allow-ips"], "list", [],
            "Peers of mongrel2 (load balancers) whose X-Forwarded-For and secure-scheme "
            "headers are believed: addresses or networks (10.0.0.0/8), comma-separated or "
            "repeated, * for any. X-Forwarded-For reaches wsgid only with mongrel2's "
            "no_clobber_xff set (see deployment).", "ADDRESSES"),
    Setting("secure_scheme_header", ["--secure-scheme-header"], "list",
            ["X-FORWARDED-PROTOCOL=ssl", "X-FORWARDED-PROTO=https", "X-FORWARDED-SSL=on"],
            "A header and value by which a peer of --forwarded-allow-ips says the "
            "client's scheme is https (as gunicorn's secure_scheme_headers); repeated "
            "for several, replacing the default.", "NAME=VALUE"),
    Setting("mongrel2_sendfile", ["--mongrel2-sendfile"], "bool", False,
            "Hand files the app returns through wsgi.file_wrapper to mongrel2's "
            "sendfile plugin, which sends them itself: the worker is free at once "
            "(files inside --mongrel2-chroot only; mongrel2 needs the plugin: see "
            "responses).", negation="--no-mongrel2-sendfile"),
    Setting("no_daemon", ["--no-daemon"], "bool", False, "Stay in the foreground.",
            section="Processes", negation="--daemon"),
    Setting("stdout", ["--stdout"], "bool", False,
            "With --no-daemon, log to standard output instead of logs/wsgid.log.",
            section="Logging", negation="--no-stdout"),
    Setting("access_log", ["--access-log"], "str", None,
            "Write an access log to FILE ('-': standard output): by default the combined "
            "log format and the time taken in microseconds.", "FILE", section="Logging"),
    Setting("access_log_format", ["--access-log-format"], "str", None,
            "The access log's line, in gunicorn's format and atoms (%(h)s, %(r)s, %(s)s, "
            "%(D)s, %({header}i)s, %({header}o)s, ...: see deployment), or 'json': one "
            "JSON object per request.", "FORMAT", section="Logging"),
    Setting("metrics", ["--metrics"], "str", None,
            "Serve Prometheus metrics (requests, durations, workers, exits, reloads) on "
            "http://HOST:PORT/metrics from the master, as 127.0.0.1:9101; needs "
            "prometheus_client (see monitoring).", "HOST:PORT", section="Logging"),
    Setting("log_level", ["--log-level"], "choice", "info",
            "The least level wsgid's own log keeps (--debug: debug).", "LEVEL",
            section="Logging", choices=("debug", "info", "warning", "error")),
    Setting("debug", ["--debug"], "bool", False, "Log at DEBUG level; tracebacks in 500 replies.",
            section="Logging", negation="--no-debug"),
    Setting("send_signal", ["--send-signal"], "int", 15,
            "Signal number that stop and restart send.", "N", saved=False, section="Commands"),
    Setting("verbose", ["--verbose"], "bool", False,
            "status: after its three lines, what each running master says of itself "
            "and of each worker (idle or busy with which request, requests served, "
            "memory, uptime).", saved=False, section="Commands"),
    Setting("wait", ["--wait"], "int", 60,
            "reload: seconds to wait until each master says the reload is done (exit "
            "0) or failed, its new workers unable to load the application (exit 1, the "
            "error on stderr; the old workers serve on); 0: do not wait.", "SECONDS",
            saved=False, section="Commands"),
    Setting("json", ["--json"], "bool", False,
            "status: all of it as one JSON object, for scripts.", saved=False,
            section="Commands"),
    Setting("envs", [], "dict", {}, "Environment variables set in every worker before "
            "the application loads (wsgid.json only).", section="Loading"),
]
BY_NAME = {s.name: s for s in SETTINGS}


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
        shown = json.dumps(setting.default) if isinstance(setting.default, bool) \
            else setting.default
        default = "" if setting.default in (None, [], {}) else " (default: %s)" % shown
        kind = KINDS[setting.kind]
        takes = {}  # what the flag takes after it
        if setting.choices:
            takes["choices"] = setting.choices
        elif kind.action != "store_true":
            takes["metavar"] = setting.meta
        if kind.flag_type:
            takes["type"] = kind.flag_type
        group.add_argument(*setting.flags, dest=setting.name, action=kind.action,
                           help=(setting.help + default).replace("%", "%%"),  # not argparse's
                           **takes)
        if setting.negation:
            group.add_argument(setting.negation, dest=setting.name, action="store_false",
                               help=argparse.SUPPRESS)
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
        BY_NAME[name].convert(value, "command line")  # a bad address: one line
    return command, given


def front_ends(options):
    """The ``(recv, send)`` pair of each mongrel2 front-end: the n-th --recv
    goes with the n-th --send."""
    recv, send = options.recv or [], options.send or []
    if len(recv) != len(send):
        raise OptionError("--recv is given %d time(s) and --send %d: one of each per mongrel2 "
                          "front-end, in the same order" % (len(recv), len(send)))
    return list(zip(recv, send))


def json_path(app_path):
    return os.path.join(app_path, "wsgid.json")


def read_json(app_path, dir_fd=None):
    """The options stored in ``<app>/wsgid.json``, checked; {} when absent.
    ``dir_fd``: the app folder's descriptor, to read it beneath."""
    path = json_path(app_path)
    try:
        data = appfolder.read_json_object(path, dir_fd)
    except ValueError as exc:
        raise OptionError(str(exc)) from None
    values = {}
    for key, value in data.items():
        setting = BY_NAME.get(key)
        if setting is None or not setting.saved:
            raise OptionError("%s: unknown key %r" % (path, key))
        values[key] = setting.convert(value, "%s: key %r" % (path, key))
    return values


def saved_form(values):
    """Checked values as wsgid.json holds them (see Kind.save)."""
    return {key: (KINDS[BY_NAME[key].kind].save or (lambda v: v))(value)
            for key, value in values.items()}


def write_json(app_path, values):
    """Merge ``values`` into ``<app>/wsgid.json`` atomically (temp + rename)."""
    stored = read_json(app_path)
    stored.update((k, v) for k, v in values.items() if BY_NAME[k].saved and k != "app_path")
    path = json_path(app_path)
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(saved_form(stored), f, indent=2, sort_keys=True)
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


def resolve(given, use_json=True, folder=None):
    """Defaults, then wsgid.json, then the command line. ``folder``: the app
    folder as :func:`wsgid.privileges.enter` opened it, its wsgid.json read
    beneath its descriptor."""
    values = {s.name: (list(s.default) if isinstance(s.default, list) else
                       dict(s.default) if isinstance(s.default, dict) else s.default)
              for s in SETTINGS}
    app_path = os.path.abspath(given.get("app_path", values["app_path"]))
    if folder is not None:
        values.update(read_json(app_path, folder.fd))
    elif use_json and os.path.isdir(app_path):
        values.update(read_json(app_path))
    values.update(given)
    values["app_path"] = app_path
    return Options(values)
