"""docs/quickstart.rst, run step by step: mongrel2 configured and loaded with
m2sh, `wsgid init`, a new Django project in app/, `wsgid config`, start,
status, a request, reload, stop. Temp folders and free ports replace
/srv/... and 6767/9996/9997; the app user is the one running the tests."""

import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from tests.support import ROOT
from tests.support.http import get
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import free_ports, port_open, wait_for
from tests.support.wsgid import wsgid_command

pytestmark = [requires_mongrel2, pytest.mark.e2e]

DOCS = os.path.join(ROOT, "docs", "quickstart.rst")


def conf_from_docs(chroot, http_port, send_port, recv_port):
    """The mongrel2.conf block of the quickstart, with this test's paths/ports."""
    text = open(DOCS).read()
    block = re.search(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+?)\n\S", text).group(1)
    conf = "\n".join(line[3:] for line in block.splitlines())
    assert "send_spec='tcp://127.0.0.1:9997'" in conf and "port=6767" in conf
    return (conf.replace("9997", str(send_port)).replace("9996", str(recv_port))
            .replace("6767", str(http_port)).replace("/srv/mongrel2", chroot)
            .replace('bind_addr="0.0.0.0"', 'bind_addr="127.0.0.1"'))


def run(*args, cwd=None):
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, LOGNAME="root", PYTHONPATH=ROOT))
    assert proc.returncode == 0, "%s: %s%s" % (args, proc.stdout, proc.stderr)
    return proc.stdout


def wsgid(*args, cwd):
    return run(*wsgid_command(*args), cwd=cwd)


def test_quickstart(tmp_path):
    django_admin = shutil.which("django-admin", path=os.path.dirname(sys.executable))
    if django_admin is None:
        pytest.skip("django-admin not installed next to this python")
    http_port, send_port, recv_port = free_ports(3)
    m2 = tmp_path / "mongrel2"
    app = tmp_path / "myapp"

    # 3. mongrel2: folders, config, m2sh load, start (it daemonizes).
    for sub in ("logs", "run", "tmp", "static"):
        (m2 / sub).mkdir(parents=True)
    (m2 / "mongrel2.conf").write_text(conf_from_docs(str(m2), http_port, send_port, recv_port))
    run("m2sh", "load", "-config", "mongrel2.conf", "-db", "config.sqlite", cwd=m2)
    # (Its daemon keeps inherited pipes open: give it none.)
    subprocess.run(["mongrel2", "config.sqlite", "f400bf85-4538-4f7a-8908-67e313d515c2"],
                   cwd=m2, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   timeout=30)
    pid_file = m2 / "run" / "mongrel2.pid"
    try:
        wait_for(lambda: pid_file.exists() and port_open(http_port), 10, what="mongrel2")

        # 4. the app folder; 5. a new Django project in app/.
        assert wsgid("init", "--app-path", str(app), cwd=tmp_path).strip() == \
            "Created app folder %s" % app
        run(django_admin, "startproject", "mysite", str(app / "app"))
        assert (app / "app" / "mysite" / "settings.py").exists()

        # 6. wsgid config, then the rest with no option but the folder (cwd).
        out = wsgid("config", "--recv", "tcp://127.0.0.1:%d" % send_port,
                    "--send", "tcp://127.0.0.1:%d" % recv_port, "--workers", "4",
                    "--mongrel2-chroot", str(m2), "--mongrel2-upload-dir", "/tmp/upload.XXXXXX",
                    cwd=app)
        assert out.strip() == ("Saved mongrel2_chroot, mongrel2_upload_dir, recv, send, workers "
                               "to %s/wsgid.json" % app)

        # 7. start, status, a request, reload, stop.
        wsgid("start", cwd=app)
        wait_for(lambda: wsgid("status", cwd=app).count(",") == 3 and
                 "Running" in wsgid("status", cwd=app), 20, what="4 workers")
        lines = wsgid("status", cwd=app).splitlines()
        assert lines[0] == "Status: Running" and len(lines[2].split(",")) == 4
        status, headers, body = wait_for(lambda: get("http://127.0.0.1:%d" % http_port, "/"),
                                         20, what="Django's answer")
        assert status == 200 and headers["x-wsgid"] and b"Django" in body
        assert "Application loaded by DjangoLoader" in (app / "logs" / "wsgid.log").read_text()

        before = set(lines[2].split(": ")[1].split(", "))
        assert wsgid("reload", cwd=app).startswith("Sent signal 1 (SIGHUP) to master ")
        wait_for(lambda: not before & set(
            wsgid("status", cwd=app).splitlines()[2].split(": ")[1].split(", ")), 20,
            what="new workers")

        assert wsgid("stop", cwd=app).startswith("Sent signal 15 (SIGTERM) to master ")
        wait_for(lambda: wsgid("status", cwd=app).splitlines() ==
                 ["Status: Stopped", "Master pid(s): ", "Worker pid(s): "], 35, what="stopped")
    finally:
        for kind in ("master", "worker"):
            for name in os.listdir(app / "pid" / kind) if (app / "pid" / kind).exists() else ():
                try:
                    os.kill(int(name.split(".")[0]), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        if pid_file.exists():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGINT)
            wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                     open("/proc/%d/stat" % pid).read().split(") ")[1][0] == "Z", 10,
                     what="mongrel2 to exit")
