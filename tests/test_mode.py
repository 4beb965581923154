"""The suite runs in the mode it was asked for: compiled or plain Python.

The modules listed in setup.py's ``COMPILED`` are built by Cython where a C
compiler is, and installed as plain Python otherwise (or with
``WSGID_PURE_PYTHON=1``); the tests must pass both ways. The switch is the
environment variable ``WSGID_EXPECT_COMPILED``: ``1`` (scripts/test.sh) or
``0`` (the plain-Python run of .ci/run). A plain run that picked up built
modules left in the tree, or a compiled run that fell back to the .py files,
fails here instead of passing in the wrong mode. Unset, the check is skipped.

Run as a script, it prints the problem in one line and exits non-zero.
"""

import ast
import importlib
import importlib.machinery
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWITCH = "WSGID_EXPECT_COMPILED"


def compiled_modules():
    """The module names of setup.py's ``COMPILED`` list, read without running setup.py."""
    with open(os.path.join(ROOT, "setup.py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["COMPILED"]:
            paths = ast.literal_eval(node.value)
            return [os.path.splitext(path)[0].replace("/", ".") for path in paths]
    raise AssertionError("setup.py has no COMPILED list")


def is_compiled(module):
    return module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def problem(expect_compiled):
    """A one-line description of the modules in the wrong mode, or None."""
    wrong = [m.__name__ + " (" + os.path.basename(m.__file__) + ")"
             for m in map(importlib.import_module, compiled_modules())
             if is_compiled(m) != expect_compiled]
    if not wrong:
        return None
    return "%s=%d, but these run %s: %s" % (
        SWITCH, expect_compiled, "as plain Python (building them needs Cython, a C compiler "
        "and the Python headers)" if expect_compiled else "compiled (built modules left in "
        "the tree for this Python?)", ", ".join(wrong))


def test_compiled_modules_are_read_from_setup_py():
    modules = compiled_modules()
    assert "wsgid.message" in modules and "wsgid.worker" in modules
    assert all(os.path.isfile(os.path.join(ROOT, *m.split(".")) + ".py") for m in modules)


def test_the_problem_names_the_modules_in_the_wrong_mode():
    actual = is_compiled(importlib.import_module("wsgid.message"))
    assert problem(not actual).startswith("%s=%d, but these run" % (SWITCH, not actual))
    assert "wsgid.message" in problem(not actual)


@pytest.mark.skipif(os.environ.get(SWITCH) not in ("0", "1"),
                    reason="%s is not set (scripts/test.sh sets 1, .ci/run's plain run 0)"
                    % SWITCH)
def test_the_suite_runs_in_the_expected_mode():
    assert problem(os.environ[SWITCH] == "1") is None


if __name__ == "__main__":
    sys.exit(problem(os.environ.get(SWITCH, "1") == "1"))
