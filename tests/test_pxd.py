"""Every attribute a ``cdef class`` of a .pxd gets in its .py file is
declared in the .pxd: a compiled extension type has no ``__dict__``, so an
undeclared attribute fails only in the compiled build, at its first use
(a plain-Python run cannot see it; this check reads the source, in both)."""

import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "wsgid")
CDEF_CLASS = re.compile(r"^cdef class (\w+)\b[^:]*:\s*$")
ATTRIBUTES = re.compile(r"^\s+cdef (?:public |readonly )?(?:[\w.]+\s+)+?(\w+(?:\s*,\s*\w+)*)\s*$")


def declared(pxd):
    """``{class: set of attribute names}`` of the cdef classes of ``pxd``."""
    classes, current = {}, None
    with open(pxd) as f:
        for line in f:
            line = line.split("#")[0].rstrip()
            match = CDEF_CLASS.match(line)
            if match:
                current = classes.setdefault(match.group(1), set())
            elif line and not line[0].isspace():
                current = None
            elif current is not None and "(" not in line:
                match = ATTRIBUTES.match(line)
                if match:
                    current.update(n.strip() for n in match.group(1).split(","))
    return classes


def assigned(source, name):
    """The attributes the methods of class ``name`` assign on ``self``."""
    tree = ast.parse(source)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == name:
            for target in ast.walk(node):
                if (isinstance(target, ast.Attribute) and isinstance(target.ctx, ast.Store)
                        and isinstance(target.value, ast.Name) and target.value.id == "self"):
                    found.add(target.attr)
    return found


def pairs():
    for name in sorted(os.listdir(PACKAGE)):
        if name.endswith(".pxd") and os.path.exists(os.path.join(PACKAGE, name[:-4] + ".py")):
            yield name[:-4]


@pytest.mark.parametrize("module", list(pairs()))
def test_every_assigned_attribute_is_declared(module):
    with open(os.path.join(PACKAGE, module + ".py")) as f:
        source = f.read()
    for cls, names in declared(os.path.join(PACKAGE, module + ".pxd")).items():
        missing = assigned(source, cls) - names
        assert not missing, "%s.%s sets %s, not declared in %s.pxd" % (
            module, cls, sorted(missing), module)


def test_the_check_sees_an_undeclared_attribute(tmp_path):
    pxd = tmp_path / "m.pxd"
    pxd.write_text("cdef class A:\n    cdef public object x, y\n    cdef public bint z\n"
                   "    cpdef f(self)\n")
    assert declared(str(pxd)) == {"A": {"x", "y", "z"}}
    assert assigned("class A:\n    def __init__(self):\n        self.x = self.w = 1\n",
                    "A") == {"x", "w"}
