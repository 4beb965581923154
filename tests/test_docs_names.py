"""docs/internals.rst names only what exists: a module, class, function or
method it names that is renamed or removed fails here (the rule is written
in internals.rst's opening)."""

import builtins
import importlib
import os
import pkgutil
import re

import wsgid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTERNALS = os.path.join(ROOT, "docs", "internals.rst")

_ROLE = re.compile(r":(?:mod|class|func|meth|attr|data):`~?([\w.]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.\w+)*$")


def modules():
    """Every module of the package, by its name under ``wsgid.``."""
    found = {}
    for info in pkgutil.walk_packages(wsgid.__path__, "wsgid."):
        if info.name != "wsgid.__main__":
            found[info.name[len("wsgid."):]] = importlib.import_module(info.name)
    return found


def resolves(obj, attrs):
    for attr in attrs:
        if not hasattr(obj, attr):
            return False
        obj = getattr(obj, attr)
    return True


def stale_names(text, mods):
    """The names of ``text`` that do not exist: ``wsgid/...`` paths; role
    targets (``:class:`wsgid.x.Y```); and ``double-backquoted`` dotted names
    whose first part is a module of wsgid (``message.parse``) or a class of
    one (``Worker._loop``, looked up in every module)."""
    classes = {}
    for module in mods.values():
        for name, value in vars(module).items():
            if isinstance(value, type) and getattr(value, "__module__", "").startswith("wsgid"):
                classes.setdefault(name, []).append(value)
    stale = []
    for target in _ROLE.findall(text):
        parts = target.split(".")
        if parts[0] != "wsgid":
            stale.append(target)
            continue
        for cut in range(len(parts), 1, -1):
            name = ".".join(parts[1:cut])
            if name in mods:
                if not resolves(mods[name], parts[cut:]):
                    stale.append(target)
                break
        else:
            stale.append(target)
    for literal in _LITERAL.findall(text):
        if literal.startswith("wsgid/"):
            if not os.path.exists(os.path.join(ROOT, literal)):
                stale.append(literal)
            continue
        if not _DOTTED.match(literal):
            continue
        first, *rest = literal.split(".")
        if first in mods:
            if not resolves(mods[first], rest):
                stale.append(literal)
        elif first[0].isupper() and not first.isupper() and not hasattr(builtins, first):
            if not any(resolves(cls, rest) for cls in classes.get(first, ())):
                stale.append(literal)
    return stale


def test_internals_names_only_what_exists():
    with open(INTERNALS, encoding="utf-8") as f:
        text = f.read()
    assert stale_names(text, modules()) == []


def test_a_name_gone_is_found():
    """The check itself can fail: one of each kind of name, gone."""
    text = ("``wsgid/nothere.py``, :class:`wsgid.worker.Nothere`, :mod:`wsgid.nothere`, "
            "``message.nothere``, ``Worker._nothere``, ``Nothere``; kept: "
            "``wsgid/worker.py``, ``Worker._loop``, ``message.parse``, ``AttributeError``")
    assert stale_names(text, modules()) == [
        "wsgid.worker.Nothere", "wsgid.nothere", "wsgid/nothere.py", "message.nothere",
        "Worker._nothere", "Nothere"]
