"""No import cycle in wsgid: every module can be read without its own importers.

The graph is built from the source (``import`` and ``from ... import``
statements anywhere in a module, function-level ones included, and the
``cimport`` lines of the .pxd files), so a cycle hidden by a late import
still counts."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "wsgid")
CIMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+cimport\s+([\w, ]+?)(?:\s+as\s+\w+)?"
                     r"|cimport\s+([\w.]+))\s*(?:#.*)?$", re.M)


def module_files():
    """``{module name: [source files]}`` for every module of the package."""
    files = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            stem, ext = os.path.splitext(name)
            if ext not in (".py", ".pxd"):
                continue
            parts = os.path.relpath(os.path.join(folder, stem), ROOT).split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            files.setdefault(".".join(parts), []).append(os.path.join(folder, name))
    return files


def targets(base, names, modules):
    """What ``from base import names`` depends on: each name that is a module
    of the package, else ``base`` itself."""
    return {"%s.%s" % (base, n) if "%s.%s" % (base, n) in modules else base for n in names}


def imports(module, path, modules):
    """The modules of the package that ``path`` (a file of ``module``) imports."""
    with open(path) as f:
        text = f.read()
    found = set()
    if path.endswith(".pxd"):
        for base, names, plain in CIMPORT.findall(text):
            found |= {plain} if plain else targets(base, [n.strip() for n in names.split(",")],
                                                   modules)
    else:
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(text, path)):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = anchor + ("." + base if base else "")
                found |= targets(base, [alias.name for alias in node.names], modules)
    return {name for name in found if name in modules and name != module}


def graph():
    modules = module_files()
    return {module: set().union(*(imports(module, path, modules) for path in paths))
            for module, paths in modules.items()}


def cycle(edges):
    """One import cycle as a list of modules, or None."""
    state = {}  # module -> "open" while on the path, "done" after

    def visit(module, path):
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[module] = "done"
        return None

    for module in sorted(edges):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_the_graph_sees_the_modules_and_their_imports():
    edges = graph()
    assert {"wsgid.cli", "wsgid.worker", "wsgid.loaders", "wsgid.loaders.base",
            "wsgid.plugins", "wsgid.commands.start"} <= set(edges)
    assert "wsgid.loaders.base" in edges["wsgid.loaders.django"]   # from ... import
    assert "wsgid.loaders.django" in edges["wsgid.loaders"]        # from package import module
    assert "wsgid.plugins" in edges["wsgid.loaders"]               # from package import module
    assert imports("wsgid.request_handler", os.path.join(PACKAGE, "request_handler.pxd"),
                   edges) == {"wsgid.message", "wsgid.response", "wsgid.environ", "wsgid.filters"}


def test_a_cycle_is_found():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_in_wsgid():
    assert cycle(graph()) is None
