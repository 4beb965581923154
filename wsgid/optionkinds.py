"""The kinds of option values (``bool``, ``size``, ``addresses``...), in one
table (:data:`KINDS`): how each is read from ``wsgid.json`` and the command
line, named in an error and in the docs, and written back by ``wsgid
config``. The options themselves are :mod:`wsgid.options`' table.
"""

import argparse
import re


class OptionError(Exception):
    """A bad option value or wsgid.json: its message is one line for the user."""


_ADDRESS = re.compile(r"^(tcp://(\[[0-9a-fA-F:.]+\]|[^:/\s\[\]]+):\d{1,5}"
                      r"|(ipc|inproc|pgm|epgm)://\S+)$")


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
