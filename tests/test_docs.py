"""The documentation builds warning-free (HTML and man page), and its option
reference is generated from wsgid.options.SETTINGS, not written by hand."""

import html
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("sphinx", reason="Sphinx is not installed (the 'docs' extra)")

from wsgid import options  # noqa: E402

pytestmark = pytest.mark.one_mode  # see pyproject.toml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")


def sphinx_build(builder, out):
    """Run ``sphinx-build -W`` (warnings are errors) into ``out``."""
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-E",
         "-b", builder, "-d", str(out / ("doctrees-" + builder)), DOCS, str(out / builder)],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, "sphinx-build -b %s failed:\n%s%s" % (
        builder, result.stdout, result.stderr)
    return out / builder


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    return {"html": sphinx_build("html", out), "man": sphinx_build("man", out)}


def every_flag():
    flags = []
    for setting in options.SETTINGS:
        flags.extend(setting.flags)
        if setting.negation:
            flags.append(setting.negation)
    return flags


def text_of(path):
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def test_option_reference_lists_every_flag_and_key(built):
    page = text_of(built["html"] / "options.html")
    assert every_flag(), "wsgid.options.SETTINGS has no flags?"
    for flag in every_flag():
        assert flag in page, "%s missing from the option reference" % flag
    for setting in options.SETTINGS:
        if setting.saved and setting.name != "app_path":
            assert '"%s"' % setting.name in page, "wsgid.json key %s missing" % setting.name
        assert setting.section in page


def test_option_reference_is_generated(built):
    """Each flag has its own entry (the ``option`` directive's anchor), which
    only the generating extension writes."""
    raw = (built["html"] / "options.html").read_text(encoding="utf-8")
    for flag in every_flag():
        anchor = r'id="cmdoption-wsgid-+%s"' % re.escape(flag.lstrip("-"))
        assert re.search(anchor, raw), "no option entry for %s" % flag


def test_man_page_exists_and_has_the_options(built):
    page = built["man"] / "wsgid.1"
    assert page.is_file()
    text = page.read_text(encoding="utf-8").replace("\\-", "-")
    assert text.startswith(".\\\"") or ".TH" in text
    assert ".TH" in text and "WSGID" in text.upper()
    for flag in every_flag():
        assert flag in text, "%s missing from the man page" % flag
