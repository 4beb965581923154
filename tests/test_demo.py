"""The README's demo command, for real: from a copy of the working tree (what
a fresh clone would hold, plus files not committed yet) in a clean
environment, with a fresh venv. Starts it, fetches the home page and an admin
stylesheet, checks mongrel2 and wsgid talk through unix sockets in the app
folder, then stops it as Ctrl-C would and checks that nothing is left. Then
again from a folder too deep for a unix socket's path."""

import http.client
import os
import re
import shutil
import signal
import stat
import subprocess
import sys

import pytest

from tests.support import ROOT
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import free_port
from tests.support.waiting import wait_for
from tests.support.procfs import alive
from wsgid import appfolder

pytestmark = [pytest.mark.one_mode, requires_mongrel2, pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("git") is None, reason="needs git")]

# Set WSGID_DEMO_TEST_VENV to an existing venv to skip the fresh install (faster
# when iterating); by default the demo creates its own venv in the copy.
REUSE_VENV = os.environ.get("WSGID_DEMO_TEST_VENV")


def copy_tree(dest):
    """The tracked and untracked (not ignored) files of the working tree."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True, capture_output=True).stdout.split(b"\0")
    for name in filter(None, names):
        src = os.path.join(ROOT, os.fsdecode(name))
        if not os.path.isfile(src):      # deleted in the working tree
            continue
        target = os.path.join(dest, os.fsdecode(name))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(src, target)


def clean_env(**extra):
    """The environment of a fresh shell: no venv, no Python or Django variables."""
    venv_bins = {os.path.join(p, "bin") for p in (sys.prefix, os.environ.get("VIRTUAL_ENV"))
                 if p and p != sys.base_prefix}
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "DJANGO_SETTINGS_MODULE")
           and not k.startswith(("WSGID_", "PYTEST_"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and p not in venv_bins)
    env.update(extra)
    return env


def fetch(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def restore_sigint():
    # A script started from a shell's background job inherits SIGINT ignored,
    # and bash cannot trap an ignored signal: give it the default, as a
    # terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_demo(clone, state, out_path):
    """The demo run from ``clone`` with its state in ``state``: its site,
    its static files and its handler sockets checked, then stopped as Ctrl-C
    would. The folder wsgid connects to the handler sockets in."""
    port = free_port()
    # The demo's install builds the compiled modules: unoptimized here (the
    # test checks that the demo works, not how fast), in a sixth of the time.
    env = clean_env(WSGID_DEMO_DIR=str(state), WSGID_DEMO_PORT=str(port), CFLAGS="-O0 -g0")
    if REUSE_VENV:
        env["WSGID_VENV"] = REUSE_VENV
    with open(out_path, "wb") as out:
        demo = subprocess.Popen(["bash", "scripts/demo.sh"], cwd=str(clone), env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=restore_sigint)

    def output():
        return out_path.read_text(errors="replace")

    servers = []
    try:
        def up():
            if demo.poll() is not None:
                raise AssertionError("the demo exited with %s:\n%s" % (demo.returncode, output()))
            return "Press Ctrl-C to stop." in output()
        wait_for(up, 600, interval=0.2, what="the demo to come up")
        text = output()
        url = re.search(r"The demo is up:\s+(http://127\.0\.0\.1:(\d+)/)", text)
        assert url, text
        assert int(url.group(2)) == port

        status, headers, body = fetch(port, "/")
        assert status == 200, body[:500]
        assert "x-wsgid" in headers
        assert b"Hello, stranger!" in body
        assert b"<title>Django on mongrel2 + wsgid</title>" in body
        status, headers, css = fetch(port, "/static/admin/css/base.css")
        assert status == 200 and "x-wsgid" not in headers and css
        status, headers, _ = fetch(port, "/chat/")   # the chat, for logged-in users
        assert status == 302 and headers["location"] == "/accounts/login/?next=/chat/"

        app = str(state / "site")
        with open(os.path.join(app, "run", "mongrel2.pid")) as f:
            m2_pid = int(f.read().strip())
        masters = appfolder.pids(app, "master")
        workers = appfolder.pids(app, "worker")
        assert len(masters) == 1 and len(workers) == 2
        servers += [m2_pid] + masters + workers
        assert all(alive(p) for p in servers)
        with open(os.path.join(app, "logs", "wsgid.log")) as f:
            log = f.read()
        assert "Application loaded by DjangoLoader" in log
        assert "WebSocket handler: chat.websocket:handler" in log

        # The handler sockets: unix sockets in <app>/handlers/ (mode 0700),
        # which wsgid connects to (through a link when the path is too long).
        handlers = os.path.join(app, "handlers")
        assert stat.S_IMODE(os.stat(handlers).st_mode) == 0o700
        assert all(stat.S_ISSOCK(os.stat(os.path.join(handlers, name)).st_mode)
                   for name in ("send.ipc", "recv.ipc"))
        # (In broker dispatch, the default, the master reads mongrel2.)
        recv = re.search(r"Master process started \(.*, recv ipc://(\S+)/send\.ipc\)", log)
        send = re.search(r"Worker ready to serve requests \(.*, send ipc://(\S+)/recv\.ipc\)", log)
        assert recv and send and recv.group(1) == send.group(1), log
        assert os.path.realpath(send.group(1)) == os.path.realpath(handlers)

        # Ctrl-C: SIGINT to the script's process group.
        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(timeout=60) == 0, output()
        wait_for(lambda: not any(alive(p) for p in servers), 10, what="servers gone")
        assert "[demo] stopped" in output()
        assert appfolder.pids(app, "master") == [] and appfolder.pids(app, "worker") == []
        with pytest.raises(OSError):
            fetch(port, "/")
        return send.group(1)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGTERM)
            try:
                demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
        for pid in servers:   # the servers run in sessions of their own
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_demo_from_a_fresh_copy(tmp_path):
    clone = tmp_path / "clone"
    copy_tree(str(clone))
    state = tmp_path / "demo-state"
    handlers = run_demo(clone, state, tmp_path / "demo.out")
    if not REUSE_VENV:
        assert (clone / ".venv" / "bin" / "python").exists()
    direct = str(state / "site" / "handlers")
    if len(os.fsencode(direct + "/send.ipc")) <= 107:   # a unix socket's path
        assert handlers == direct

    # Again (with the venv made above) from a folder too deep for a unix
    # socket's path: wsgid goes through a link in a private folder of /tmp,
    # removed when the demo stops.
    deep = tmp_path / ("demo-state-" + "d" * 100)
    handlers = run_demo(clone, deep, tmp_path / "demo-deep.out")
    assert re.fullmatch(r"/tmp/wsgid-demo\.\w+/handlers", handlers), handlers
    assert not os.path.exists(os.path.dirname(handlers))
