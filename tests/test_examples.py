"""Every example mongrel2 config loads with m2sh; the hello example serves."""

import glob
import os
import re
import shutil
import subprocess
import uuid

import pytest

from tests.support import ROOT
from tests.support.http import get
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import Mongrel2

pytestmark = requires_mongrel2

CONFIGS = sorted(glob.glob(os.path.join(ROOT, "examples", "**", "mongrel2.conf*"), recursive=True))


def test_there_are_example_configs():
    assert len(CONFIGS) >= 2


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_example_config_loads_with_m2sh(path, tmp_path):
    text = open(path).read()
    # Templates (*.in) get their @NAME@ fields filled as their scripts do.
    text = text.replace("@IDENT@", str(uuid.uuid4()))  # a fresh one per start
    text = re.sub(r"@[A-Z_]*PORT@", "6767", text)
    text = re.sub(r"@[A-Z_]+@", str(tmp_path), text)
    conf = tmp_path / "mongrel2.conf"
    conf.write_text(text)
    db = tmp_path / "config.sqlite"
    proc = subprocess.run(["m2sh", "load", "-config", str(conf), "-db", str(db)],
                          capture_output=True, text=True, env=dict(os.environ, LOGNAME="root"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    servers = subprocess.run(["m2sh", "servers", "-db", str(db)], capture_output=True, text=True,
                             env=dict(os.environ, LOGNAME="root"))
    assert servers.returncode == 0 and re.search(r"[0-9a-f-]{36}", servers.stdout)


def test_systemd_unit_is_notify_and_foreground():
    unit = open(os.path.join(ROOT, "examples", "systemd", "wsgid@.service")).read()
    assert "Type=notify" in unit and "--no-daemon" in unit and "ExecReload=/bin/kill -HUP" in unit


def test_logrotate_example_moves_the_files_and_reopens():
    """No copytruncate (lines written between the copy and the truncation
    would be lost): wsgid reopens the files on USR1 (wsgid reopen)."""
    text = open(os.path.join(ROOT, "examples", "logrotate", "wsgid-myapp")).read()
    rules = [line.split("#")[0].strip() for line in text.splitlines()]
    assert "copytruncate" not in rules and "delaycompress" in rules
    assert "/usr/local/bin/wsgid reopen --app-path /srv/myapp >/dev/null" in rules


def test_hello_example_serves(m2_factory, wsgid_factory, tmp_path):
    m2 = m2_factory()
    app_path = str(tmp_path / "hello")  # a copy: serving writes logs/ and pid/
    shutil.copytree(os.path.join(ROOT, "examples", "hello"), app_path)
    wsgid_factory(m2, app_path, "--wsgi-app", "hello:application")
    status, headers, body = get(m2.url, "/")
    assert (status, body) == (200, b"Hello from wsgid!\n")


def test_example_plugins_loader_and_filter(m2_factory, wsgid_factory, tmp_path):
    """examples/plugins through --loader-dir: the loader finds app/wsgi.py,
    the filter adds a request id and security headers."""
    m2 = m2_factory()
    app_path = tmp_path / "site"
    (app_path / "app").mkdir(parents=True)
    (app_path / "app" / "wsgi.py").write_text(
        "def application(environ, start_response):\n"
        "    body = environ['HTTP_X_REQUEST_ID'].encode()\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [body]\n")
    proc = wsgid_factory(m2, str(app_path), "--loader-dir", os.path.join(ROOT, "examples", "plugins"))
    status, headers, body = get(m2.url, "/")
    assert status == 200 and re.fullmatch(rb"[0-9a-f]{32}", body)
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert "WsgiFileLoader" in proc.output()
