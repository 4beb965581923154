"""Sphinx configuration of the wsgid documentation.

Build the HTML site and the man page from the same source::

    sphinx-build -W -b html docs docs/_build/html
    sphinx-build -W -b man  docs docs/_build/man
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))      # the wsgid_options extension
sys.path.insert(0, os.path.dirname(HERE))            # the wsgid of this checkout

import wsgid  # noqa: E402

project = "wsgid"
author = "the wsgid developers"
copyright = "2011-2026, the wsgid developers"
version = release = wsgid.__version__

extensions = [
    "sphinx.ext.autodoc",
    "wsgid_options",
]

exclude_patterns = ["_build"]
root_doc = "index"
language = "en"
default_role = "literal"

# autodoc: only the module docstrings and interfaces named in loaders.rst.
autodoc_member_order = "bysource"
autodoc_default_options = {"undoc-members": False}

html_theme = "alabaster"
html_title = "wsgid %s" % release
html_theme_options = {
    "description": "A pre-fork WSGI gateway for mongrel2",
    "fixed_sidebar": True,
}

# One manual page, wsgid(1), from man.rst; it includes the same generated
# option reference as options.rst.
man_pages = [
    ("man", "wsgid", "a pre-fork WSGI gateway for the mongrel2 web server", [author], 1),
]
man_show_urls = True
