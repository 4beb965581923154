"""Loaders: detection, order, plugin discovery, django.json merging.

In-process tests never import Django (its settings are global to a process);
the ones that load a Django or PyRoutes app run in a subprocess."""

import json
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import types

import pytest

from tests.support import ROOT
from tests.support.wsgid import make_app_folder
from wsgid import filters, loaders, options as opts, plugins
from wsgid.loaders import LoaderError
from wsgid.loaders.django import (DjangoLoader, apply_overrides, find_project, merge_value,
                                  read_overrides)
from wsgid.loaders.pyroutes import PyRoutesLoader


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """Each test gets back sys.path, sys.modules, the environment and no filters."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    modules = set(sys.modules)
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    filters.clear()
    yield
    filters.clear()
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def write(path, text=""):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "w") as f:
        f.write(textwrap.dedent(text))
    return str(path)


def app_folder(tmp_path, name="appfolder"):
    return pathlib.Path(make_app_folder(tmp_path, name=name, folders=("plugins", "logs")))


def options(app_path, **given):
    given["app_path"] = str(app_path)
    return opts.resolve(given, use_json=False)


def load(resolved):
    """What the master and a worker do: read the plugins, then load."""
    return loaders.load(resolved, loaders.prepare(resolved))


def django_project(app, name="mysite", package=False):
    write(app / "app" / name / "__init__.py")
    if package:
        write(app / "app" / name / "settings" / "__init__.py", "X = 1\n")
    else:
        write(app / "app" / name / "settings.py", "X = 1\n")


def loader_plugin(path, cls, accepts=True, marker=None):
    """A plugin file defining loader class ``cls``."""
    return write(path, """
        def _app(environ, start_response):
            start_response("200 OK", [])
            return [b"%(marker)s"]

        class %(cls)s:
            def can_load(self, app_path):
                return %(accepts)r

            def load_app(self, app_path, name):
                return _app
        """ % {"cls": cls, "accepts": accepts, "marker": marker or cls})


def body_of(app):
    return b"".join(app({}, lambda status, headers: None))


# -- Django detection -------------------------------------------------------------------------

def test_django_detects_a_settings_module(tmp_path):
    app = app_folder(tmp_path)
    assert find_project(str(app)) is None
    assert not DjangoLoader().can_load(str(app))
    django_project(app)
    assert find_project(str(app)) == "mysite"
    assert DjangoLoader().can_load(str(app))


def test_django_detects_a_settings_package(tmp_path):
    app = app_folder(tmp_path)
    django_project(app, "proj", package=True)
    assert find_project(str(app)) == "proj"


@pytest.mark.parametrize("files", [
    ["mysite/settings.py"],                          # no __init__.py: not a package
    ["mysite/__init__.py", "mysite/urls.py"],        # no settings
    ["mysite/__init__.py", "mysite/settings/base.py"],   # settings/ is not a package
    [".hidden/__init__.py", ".hidden/settings.py"],  # dot-folders skipped
    ["my-site/__init__.py", "my-site/settings.py"],  # not importable
    ["settings.py", "__init__.py"],                  # files directly in app/
])
def test_django_not_detected(tmp_path, files):
    app = app_folder(tmp_path)
    for name in files:
        write(app / "app" / name)
    assert find_project(str(app)) is None


def test_django_detection_sorted_whatever_listdir_says(tmp_path, monkeypatch):
    app = app_folder(tmp_path)
    for name in ("zsite", "asite", "msite"):
        django_project(app, name)
    write(app / "app" / "aaa" / "__init__.py")     # a package, not a project
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p: list(reversed(sorted(real(p)))))
    assert find_project(str(app)) == "asite"


def test_django_missing_app_folder(tmp_path):
    assert find_project(str(tmp_path / "nothing")) is None
    assert DjangoLoader(force=True).can_load(str(tmp_path / "nothing"))


# -- order ------------------------------------------------------------------------------------

def test_no_loader_one_clear_error_naming_the_folder(tmp_path):
    app = app_folder(tmp_path)
    write(app / "app" / "lib.py", "x = 1\n")
    with pytest.raises(LoaderError) as info:
        load(options(app))
    message = str(info.value)
    assert "\n" not in message
    assert "no loader can load the app folder %s" % app in message


@pytest.mark.parametrize("name", ["e2e_mod.sub.app", "e2e_mod.sub:app"])
def test_wsgi_app_wins_over_everything(tmp_path, name, caplog):
    app = app_folder(tmp_path)
    django_project(app)
    write(app / "app" / "pyroutes_settings.py")
    loader_plugin(app / "plugins" / "greedy.py", "Greedy")
    write(app / "app" / "e2e_mod" / "__init__.py")
    write(app / "app" / "e2e_mod" / "sub.py", """
        def app(environ, start_response):
            start_response("200 OK", [])
            return [b"wsgi-app"]
        """)
    with caplog.at_level(logging.INFO, logger="wsgid"):
        loaded = load(options(app, wsgi_app=name, django=True))
    assert body_of(loaded) == b"wsgi-app"
    assert "Application loaded by WsgiAppLoader" in caplog.text


@pytest.mark.parametrize("name, error", [
    ("nodots", "expected pkg.mod.attr or pkg.mod:attr"),
    ("missing_mod:app", "cannot import missing_mod"),
    ("os.path:nothing_here", "has no callable nothing_here"),
])
def test_wsgi_app_errors(tmp_path, name, error):
    with pytest.raises(LoaderError, match=error):
        load(options(app_folder(tmp_path), wsgi_app=name))


def test_pyroutes_before_django_before_plugins(tmp_path):
    app = app_folder(tmp_path)
    loader_plugin(app / "plugins" / "greedy.py", "Greedy")
    assert type(loaders.choose(options(app), plugins.discover(str(app)).loaders)).__name__ \
        == "Greedy"
    django_project(app)
    assert isinstance(loaders.choose(options(app), plugins.discover(str(app)).loaders),
                      DjangoLoader)
    write(app / "app" / "pyroutes_settings.py")
    assert isinstance(loaders.choose(options(app), plugins.discover(str(app)).loaders),
                      PyRoutesLoader)
    # --django forces Django, even over PyRoutes.
    chosen = loaders.choose(options(app, django=True))
    assert isinstance(chosen, DjangoLoader) and chosen.force


def test_plugin_order_folder_then_loader_dirs_then_entry_points(tmp_path, monkeypatch, caplog):
    app = app_folder(tmp_path)
    dir1, dir2 = tmp_path / "dir1", tmp_path / "dir2"
    loader_plugin(app / "plugins" / "b_refuses.py", "FolderRefuses", accepts=False)
    loader_plugin(dir1 / "x.py", "Dir1Refuses", accepts=False)
    loader_plugin(dir2 / "a.py", "Dir2Accepts")
    loader_plugin(dir2 / "b.py", "Dir2AcceptsToo")
    fake_distribution(tmp_path / "site", monkeypatch)
    found = plugins.discover(str(app), [str(dir1), str(dir2)])
    names = [type(loader).__name__ for loader in found.loaders]
    assert names == ["FolderRefuses", "Dir1Refuses", "Dir2Accepts", "Dir2AcceptsToo",
                     "EpLoader", "ModuleLoader"]
    with caplog.at_level(logging.INFO, logger="wsgid"):
        loaded = load(options(app, loader_dir=[str(dir1), str(dir2)]))
    assert body_of(loaded) == b"Dir2Accepts"
    assert "Application loaded by Dir2Accepts (plugin %s)" % (dir2 / "a.py") in caplog.text


# -- plugin discovery -----------------------------------------------------------------------------

def test_folder_plugins_sorted_and_private_files_skipped(tmp_path):
    app = app_folder(tmp_path)
    loader_plugin(app / "plugins" / "20_second.py", "Second")
    loader_plugin(app / "plugins" / "10_first.py", "First")
    loader_plugin(app / "plugins" / "_private.py", "Private")
    loader_plugin(app / "plugins" / ".hidden.py", "Hidden")
    write(app / "plugins" / "notes.txt", "not python")
    (app / "plugins" / "folder.py").mkdir()
    found = plugins.discover(str(app), entry_points=False)
    assert [type(loader).__name__ for loader in found.loaders] == ["First", "Second"]


def test_repeatable_loader_dir(tmp_path):
    app = app_folder(tmp_path)
    dirs = []
    for i in range(3):
        dirs.append(str(tmp_path / ("dir%d" % i)))
        loader_plugin(tmp_path / ("dir%d" % i) / "plugin.py", "FromDir%d" % i)
    found = plugins.discover(str(app), [dirs[2], dirs[0], dirs[1]], entry_points=False)
    assert [type(loader).__name__ for loader in found.loaders] == ["FromDir2", "FromDir0",
                                                                 "FromDir1"]


def test_loader_dir_on_the_command_line_and_in_wsgid_json(tmp_path):
    _, given = opts.parse_command_line(["--loader-dir", "a", "--loader-dir", "b"])
    assert given["loader_dir"] == ["a", "b"]
    app = app_folder(tmp_path)
    write(app / "wsgid.json", json.dumps({"loader_dir": [str(tmp_path / "d")]}))
    loader_plugin(tmp_path / "d" / "p.py", "FromJson")
    loaded = load(opts.resolve({"app_path": str(app)}))
    assert body_of(loaded) == b"FromJson"


def test_missing_loader_dir_is_an_error(tmp_path):
    with pytest.raises(LoaderError, match="--loader-dir .*nowhere is not a folder"):
        load(options(app_folder(tmp_path), loader_dir=[str(tmp_path / "nowhere")]))


def test_same_file_twice_is_read_once(tmp_path):
    app = app_folder(tmp_path)
    loader_plugin(app / "plugins" / "once.py", "Once")
    found = plugins.discover(str(app), [str(app / "plugins")], entry_points=False)
    assert [type(loader).__name__ for loader in found.loaders] == ["Once"]


def test_what_a_plugin_module_exposes(tmp_path):
    app = app_folder(tmp_path)
    write(app / "plugins" / "mixed.py", """
        from wsgid.loaders.django import DjangoLoader      # imported: not this plugin's
        from wsgid.loaders.pyroutes import PyRoutesLoader as Renamed

        class Helper:                                       # not a loader
            def can_load(self, app_path):
                return True

        class _Private:
            def can_load(self, app_path):
                return True

            def load_app(self, app_path, name):
                return None

        class ByClass:
            def can_load(self, app_path):
                return False

            def load_app(self, app_path, name):
                return None

        class _Impl:
            def can_load(self, app_path):
                return False

            def load_app(self, app_path, name):
                return None

        by_instance = _Impl()

        def pre_request(request, environ):
            pass

        def post_request(request, status, headers):
            pass

        def request_exception(request, exc):
            pass

        def other_function(request, environ):
            pass
        """)
    found = plugins.discover(str(app), entry_points=False)
    assert [type(loader).__name__ for loader in found.loaders] == ["ByClass", "_Impl"]
    assert {hook: [name.rsplit(":", 1)[1] for name, _ in funcs]
            for hook, funcs in found.filters.items()} == {
        "pre_request": ["pre_request"], "post_request": ["post_request"],
        "request_exception": ["request_exception"]}


def test_broken_plugin_logged_and_skipped(tmp_path, caplog):
    app = app_folder(tmp_path)
    write(app / "plugins" / "a_syntax.py", "def broken(:\n")
    write(app / "plugins" / "b_import.py", "import no_such_module_here\n")
    write(app / "plugins" / "c_init.py", """
        class NeedsArgs:
            def __init__(self, required):
                pass

            def can_load(self, app_path):
                return True

            def load_app(self, app_path, name):
                return None
        """)
    loader_plugin(app / "plugins" / "d_fine.py", "Fine")
    with caplog.at_level(logging.ERROR, logger="wsgid"):
        loaded = load(options(app))
    assert body_of(loaded) == b"Fine"
    assert "a_syntax.py could not be imported; skipped" in caplog.text
    assert "b_import.py could not be imported; skipped" in caplog.text
    assert "Loader NeedsArgs of plugin" in caplog.text


def test_can_load_that_raises_is_skipped(tmp_path, caplog):
    app = app_folder(tmp_path)
    write(app / "plugins" / "a.py", """
        class Raises:
            def can_load(self, app_path):
                raise OSError("cannot look")

            def load_app(self, app_path, name):
                return None
        """)
    loader_plugin(app / "plugins" / "b.py", "Next")
    with caplog.at_level(logging.ERROR, logger="wsgid"):
        assert body_of(load(options(app))) == b"Next"
    assert "Loader Raises (plugin %s) failed in can_load; skipped" % (app / "plugins" / "a.py") \
        in caplog.text


def test_loader_returning_no_callable(tmp_path):
    app = app_folder(tmp_path)
    write(app / "plugins" / "none.py", """
        class GivesNone:
            def can_load(self, app_path):
                return True

            def load_app(self, app_path, name):
                return None
        """)
    with pytest.raises(LoaderError, match="GivesNone .* returned None, not a WSGI callable"):
        load(options(app))


def test_plugin_loader_sees_the_app_folder_and_its_code_on_sys_path(tmp_path):
    app = app_folder(tmp_path)
    write(app / "app" / "mycode.py", "VALUE = b'from app/'\n")
    write(app / "plugins" / "p.py", """
        import os

        class UsesAppCode:
            def can_load(self, app_path):
                return os.path.isfile(os.path.join(app_path, "app", "mycode.py"))

            def load_app(self, app_path, name):
                import mycode
                return lambda environ, start_response: [mycode.VALUE]
        """)
    assert body_of(load(options(app))) == b"from app/"


def test_load_installs_plugin_filters(tmp_path):
    app = app_folder(tmp_path)
    loader_plugin(app / "plugins" / "loader.py", "L")
    write(app / "plugins" / "f.py", """
        def pre_request(request, environ):
            environ["seen"] = True
        """)
    filters.register("post_request", print)    # left from before: replaced
    load(options(app))
    assert [name for name, _ in filters.registered("pre_request")] == [
        "%s:pre_request" % (app / "plugins" / "f.py")]
    assert filters.registered("post_request") == []
    assert filters.run_pre_request(None, {}) == {"seen": True}


def test_prepare_reads_plugins_once_for_the_workers(tmp_path):
    app = app_folder(tmp_path)
    loader_dir = tmp_path / "outside"
    loader_plugin(loader_dir / "p.py", "Prepared")
    write(app / "plugins" / "f.py", "def pre_request(request, environ):\n    return {'f': 1}\n")
    found = loaders.prepare(options(app, loader_dir=[str(loader_dir)]))
    assert [type(loader).__name__ for loader in found.loaders] == ["Prepared"]
    assert filters.run_pre_request(None, {}) == {"f": 1}      # installed in the master
    # Then the worker is chrooted: the plugin files are out of its reach.
    shutil.rmtree(str(loader_dir))
    os.unlink(str(app / "plugins" / "f.py"))
    filters.clear()
    assert body_of(loaders.load(options(app, loader_dir=[str(loader_dir)]), found)) == b"Prepared"
    assert filters.run_pre_request(None, {}) == {"f": 1}


def test_prepare_refuses_a_missing_loader_dir(tmp_path):
    with pytest.raises(LoaderError, match="is not a folder"):
        loaders.prepare(options(app_folder(tmp_path), loader_dir=[str(tmp_path / "none")]))


def test_load_imports_nothing_of_wsgid_or_the_stdlib_in_the_worker(tmp_path):
    """With --chroot (or after dropping privileges) a worker may no longer read
    the interpreter's files: everything load() needs is imported by the master."""
    app = app_folder(tmp_path)
    loader_plugin(app / "plugins" / "p.py", "P")
    write(app / "app" / "mysite" / "__init__.py")   # detection looks, imports nothing
    script = textwrap.dedent("""
        import sys
        import wsgid.commands.start
        from wsgid import loaders, options
        before = set(sys.modules)
        for given in ({"app_path": sys.argv[1], "loader_dir": [sys.argv[2]]},
                      {"app_path": sys.argv[1], "wsgi_app": "os.path:join"}):
            resolved = options.resolve(given, use_json=False)
            loaders.load(resolved, loaders.prepare(resolved))
        print(" ".join(sorted(set(sys.modules) - before)))
        """)
    proc = subprocess.run([sys.executable, "-c", script, str(app), str(app / "plugins")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["wsgid_plugin_1_p"]


# -- entry points ------------------------------------------------------------------------------

def fake_distribution(site, monkeypatch):
    """An installed distribution with wsgid.plugins entry points, on sys.path."""
    write(site / "fakeplug-1.0.dist-info" / "METADATA",
          "Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n")
    write(site / "fakeplug-1.0.dist-info" / "entry_points.txt", """
        [wsgid.plugins]
        b_loader = fakeplug_loaders:EpLoader
        c_module = fakeplug_module
        a_filters = fakeplug_loaders:FILTERS
        d_broken = fakeplug_missing:Nothing
        e_useless = fakeplug_loaders:USELESS

        [console_scripts]
        unrelated = fakeplug_loaders:main
        """)
    write(site / "fakeplug_loaders.py", """
        class EpLoader:
            def can_load(self, app_path):
                return True

            def load_app(self, app_path, name):
                return lambda environ, start_response: [b"entry point"]

        class _Filters:
            def pre_request(self, request, environ):
                environ["ep"] = "pre"

            def request_exception(self, request, exc):
                pass

        FILTERS = _Filters()
        USELESS = 42
        """)
    write(site / "fakeplug_module.py", """
        class ModuleLoader:
            def can_load(self, app_path):
                return False

            def load_app(self, app_path, name):
                return None

        def post_request(request, status, headers):
            return status, headers + [("X-Ep", "1")]
        """)
    monkeypatch.syspath_prepend(str(site))


def test_entry_point_plugins(tmp_path, monkeypatch, caplog):
    fake_distribution(tmp_path / "site", monkeypatch)
    app = app_folder(tmp_path)
    with caplog.at_level(logging.INFO, logger="wsgid"):
        loaded = load(options(app))
    assert body_of(loaded) == b"entry point"
    assert "Application loaded by EpLoader (plugin entry point b_loader = " \
           "fakeplug_loaders:EpLoader)" in caplog.text
    assert "d_broken = fakeplug_missing:Nothing could not be loaded; skipped" in caplog.text
    assert "e_useless = fakeplug_loaders:USELESS is neither" in caplog.text
    assert filters.run_pre_request(None, {}) == {"ep": "pre"}
    assert filters.run_post_request(None, "200 OK", []) == ("200 OK", [("X-Ep", "1")])
    assert len(filters.registered("request_exception")) == 1


def test_folder_plugins_come_before_entry_points(tmp_path, monkeypatch):
    fake_distribution(tmp_path / "site", monkeypatch)
    app = app_folder(tmp_path)
    loader_plugin(app / "plugins" / "mine.py", "Mine")
    assert body_of(load(options(app))) == b"Mine"


# -- django.json ---------------------------------------------------------------------------------

@pytest.mark.parametrize("current, value, merged", [
    ({"a": 1, "b": {"x": 1}}, {"b": {"y": 2}, "c": 3}, {"a": 1, "b": {"y": 2}, "c": 3}),
    (["a"], ["b", "c"], ["a", "b", "c"]),
    (("a",), ["b"], ("a", "b")),
    ("string", ["b"], ["b"]),
    (["a"], "replaced", "replaced"),
    ({"a": 1}, ["x"], ["x"]),
    (["a"], {"x": 1}, {"x": 1}),
    (True, False, False),
    (None, {"k": "v"}, {"k": "v"}),
])
def test_merge_rules(current, value, merged):
    result = merge_value(current, value)
    assert result == merged and type(result) is type(merged)


def test_merge_does_not_modify_the_original():
    original = {"a": 1}
    merge_value(original, {"b": 2})
    assert original == {"a": 1}


def test_apply_overrides_onto_settings():
    settings = types.SimpleNamespace(INSTALLED_APPS=("a",), DEBUG=True,
                                     DATABASES={"default": {"NAME": "x"}})
    apply_overrides(settings, {"INSTALLED_APPS": ["b"], "DEBUG": False, "NEW": 1,
                               "DATABASES": {"other": {"NAME": "y"}}})
    assert settings.INSTALLED_APPS == ("a", "b")
    assert settings.DEBUG is False and settings.NEW == 1
    assert settings.DATABASES == {"default": {"NAME": "x"}, "other": {"NAME": "y"}}


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('["a", "list"]', "expected a JSON object, found list"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_bad_django_json_logged_and_ignored(tmp_path, text, message, caplog):
    path = tmp_path / "django.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with caplog.at_level(logging.ERROR, logger="wsgid"):
        assert read_overrides(str(tmp_path)) == {}
    assert "Ignored %s: %s" % (path, message) in caplog.text


def test_no_django_json(tmp_path):
    assert read_overrides(str(tmp_path)) == {}


# -- real loads, in a subprocess ----------------------------------------------------------------

LOAD_SCRIPT = """
import json, logging, os, sys
from wsgiref.util import setup_testing_defaults
from wsgid import loaders, options
handler = logging.StreamHandler(sys.stderr)
logging.getLogger("wsgid").addHandler(handler)
logging.getLogger("wsgid").setLevel(logging.INFO)
resolved = options.resolve(json.loads(sys.argv[1]))
os.environ.update(resolved.envs)   # as run_worker does
app = loaders.load(resolved, loaders.prepare(resolved))
environ = {"PATH_INFO": sys.argv[2], "HTTP_HOST": sys.argv[3]}
setup_testing_defaults(environ)
out = {}
def start_response(status, headers, exc_info=None):
    out["status"] = status
body = b"".join(app(environ, start_response))
out.update(app=type(app).__name__, body=body.decode("utf-8", "replace")[:200],
           env=os.environ.get("DJANGO_SETTINGS_MODULE"))
if "django" in sys.modules:
    from django.conf import settings
    for name in ("ALLOWED_HOSTS", "EXTRA", "CACHES", "DEBUG", "MY_STR", "NEW", "MARK"):
        value = getattr(settings, name, None)
        out[name] = [type(value).__name__, list(value) if isinstance(value, tuple) else value]
logging.getLogger("wsgid").info("still logging after load")
print(json.dumps(out))
"""


def run_load(app, given=None, path="/", host="b.example"):
    given = dict(given or {}, app_path=str(app))
    proc = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, json.dumps(given), path, host],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items()
                               if k != "DJANGO_SETTINGS_MODULE"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def tiny_django(app, logging_setting=""):
    write(app / "app" / "site1" / "__init__.py")
    write(app / "app" / "site1" / "urls.py", """
        from django.http import HttpResponse
        from django.urls import path
        urlpatterns = [path("", lambda request: HttpResponse("tiny django"))]
        """)
    write(app / "app" / "site1" / "settings.py", """
        SECRET_KEY = "test-" + "k" * 50
        ALLOWED_HOSTS = ("a.example",)
        INSTALLED_APPS = ["django.contrib.contenttypes"]
        ROOT_URLCONF = "site1.urls"
        EXTRA = ["one"]
        CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
                  "other": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        DEBUG = True
        MY_STR = "old"
        """ + logging_setting)
    write(app / "app" / "site1" / "other.py", "from site1.settings import *\nMARK = 'other'\n")


def test_django_load_with_django_json(tmp_path):
    pytest.importorskip("django")
    app = app_folder(tmp_path)
    tiny_django(app)
    write(app / "django.json", json.dumps({
        "ALLOWED_HOSTS": ["b.example"], "EXTRA": ["two"], "DEBUG": False,
        "CACHES": {"other": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}},
        "MY_STR": ["now", "a list"], "NEW": {"k": 1}}))
    out, log = run_load(app)
    assert out["status"] == "200 OK" and out["body"] == "tiny django"   # b.example allowed
    assert out["app"] == "WSGIHandler"
    assert out["env"] == "site1.settings"
    assert out["ALLOWED_HOSTS"] == ["tuple", ["a.example", "b.example"]]
    assert out["EXTRA"] == ["list", ["one", "two"]]
    assert out["DEBUG"] == ["bool", False]
    assert out["MY_STR"] == ["list", ["now", "a list"]]
    assert out["NEW"] == ["dict", {"k": 1}]
    caches = out["CACHES"][1]
    assert caches["default"]["BACKEND"].endswith("LocMemCache")
    assert caches["other"]["BACKEND"].endswith("DummyCache")
    assert "Application loaded by DjangoLoader" in log
    assert "Django settings module: site1.settings" in log


def test_django_settings_module_from_envs_is_kept(tmp_path):
    pytest.importorskip("django")
    app = app_folder(tmp_path)
    tiny_django(app)
    write(app / "wsgid.json", json.dumps({"envs": {"DJANGO_SETTINGS_MODULE": "site1.other"}}))
    out, log = run_load(app, host="a.example")
    assert out["env"] == "site1.other" and out["MARK"] == ["str", "other"]
    assert out["status"] == "200 OK"
    assert "Django settings module: site1.other" in log


def test_django_invalid_json_ignored_and_logging_kept(tmp_path):
    pytest.importorskip("django")
    app = app_folder(tmp_path)
    # A LOGGING without disable_existing_loggers disables every logger Django
    # did not configure: the loader turns wsgid's back on.
    tiny_django(app, logging_setting="LOGGING = {'version': 1}\n")
    write(app / "django.json", "{broken")
    out, log = run_load(app, host="a.example")
    assert out["status"] == "200 OK" and out["DEBUG"] == ["bool", True]
    assert "Ignored %s: not valid JSON" % (app / "django.json") in log
    assert "re-enabled it" in log
    assert "still logging after load" in log


def test_forced_django_without_project_or_settings_module(tmp_path):
    with pytest.raises(LoaderError, match="--django: no Django project .* DJANGO_SETTINGS_MODULE "
                                          "is not set"):
        load(options(app_folder(tmp_path), django=True))


def test_pyroutes_load(tmp_path):
    pytest.importorskip("pyroutes")
    app = app_folder(tmp_path)
    write(app / "app" / "pyroutes_settings.py", "DEBUG = False\n")
    write(app / "app" / "hello" / "__init__.py", """
        from pyroutes import route
        from pyroutes.http.response import Response

        @route("/")
        def index(request, name="world"):
            return Response("Hello %s!" % name)
        """)
    write(app / "app" / "tests" / "__init__.py", "raise ImportError('tests are not imported')\n")
    assert PyRoutesLoader().route_modules(str(app)) == ["hello"]
    out, log = run_load(app, path="/bob")
    assert out["status"] == "200 OK" and out["body"] == "Hello bob!"
    assert "Application loaded by PyRoutesLoader" in log


def test_pyroutes_missing_package(tmp_path, monkeypatch):
    app = app_folder(tmp_path)
    write(app / "app" / "pyroutes_settings.py")
    monkeypatch.setitem(sys.modules, "pyroutes", None)   # import fails
    with pytest.raises(LoaderError, match="pyroutes package cannot be imported"):
        load(options(app))


def test_websocket_handler_from_the_option_else_the_django_setting(tmp_path, monkeypatch):
    import os.path
    monkeypatch.delitem(sys.modules, "django.conf", raising=False)
    assert loaders.websocket_handler(options(str(tmp_path))) is None
    named = options(str(tmp_path), websocket_handler="os.path:join")
    assert loaders.websocket_handler(named) is os.path.join
    settings = types.SimpleNamespace(configured=True, WSGID_WEBSOCKET_HANDLER="os.path:split")
    monkeypatch.setitem(sys.modules, "django.conf", types.SimpleNamespace(settings=settings))
    assert loaders.websocket_handler(options(str(tmp_path))) is os.path.split
    assert loaders.websocket_handler(named) is os.path.join  # the option first
    settings.WSGID_WEBSOCKET_HANDLER = "os.path:nothing_here"
    with pytest.raises(LoaderError, match="WSGID_WEBSOCKET_HANDLER os.path:nothing_here"):
        loaders.websocket_handler(options(str(tmp_path)))
    settings.configured = False
    assert loaders.websocket_handler(options(str(tmp_path))) is None
