"""docs/quickstart.rst, run step by step: mongrel2's folders made and its
config loaded with m2sh and started by the page's own commands, `wsgid init`,
a new Django project in app/, the page's `wsgid config`, start, status, a
request, reload, stop. Temp folders and a free port replace /srv/... and
6767; the app user (and the handler folder's group) is the one running the
tests, root: mongrel2 chroots, and so finds its ipc:// handler sockets in
its folder, only as root."""

import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys

import pytest

from tests.support import ROOT
from tests.support.http import get
from tests.support.marks import requires_mongrel2
from tests.support.mongrel2 import free_port, port_open
from tests.support.waiting import wait_for
from tests.support.wsgid import AS_ROOT, wsgid_command

pytestmark = [pytest.mark.one_mode, requires_mongrel2, pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0, reason="mongrel2 chroots only as root")]

DOCS = os.path.join(ROOT, "docs", "quickstart.rst")
USER = pwd.getpwuid(os.geteuid()).pw_name
GROUP = grp.getgrgid(os.getegid()).gr_name

# The page's sudo, here: the command as the test's user.
SUDO = 'sudo() { if [ "$1" = -u ]; then shift 2; fi; env "$@"; }\n'


def localize(text, chroot, app):
    """The page's text with this test's folders, user and group."""
    text = text.replace("/srv/mongrel2", chroot).replace("/srv/myapp", app)
    return re.sub(r"\bmyapp\b", USER, text.replace("chgrp myapp", "chgrp " + GROUP)
                  .replace("root myapp", "root " + GROUP))


def step(number):
    """Step ``number`` of the page: ``(command, output lines)`` for each
    ``$`` line of its console blocks (continued lines joined)."""
    text = open(DOCS).read()
    body = re.search(r"^%d\. [^\n]*\n-+\n(.*?)(?=^\d+\. [^\n]*\n-+\n|\Z)" % number, text,
                     re.M | re.S).group(1)
    commands = []
    for block in re.findall(r"\.\. code-block:: console\n\n((?:   .*\n|\n)+)", body):
        for line in block.rstrip().splitlines():
            line = line[3:]
            if line.startswith("$ "):
                commands.append([line[2:], []])
            elif commands[-1][0].endswith("\\"):
                commands[-1][0] += "\n" + line
            else:
                commands[-1][1].append(line)
    return commands


def conf_from_docs(chroot, app, http_port):
    """The mongrel2.conf block of the quickstart, with this test's folders and port."""
    text = open(DOCS).read()
    block = re.search(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+?)\n\S", text).group(1)
    conf = "\n".join(line[3:] for line in block.splitlines())
    assert "send_spec='ipc:///handlers/send.ipc'" in conf and "port=6767" in conf
    return (localize(conf, chroot, app).replace("6767", str(http_port))
            .replace('bind_addr="0.0.0.0"', 'bind_addr="127.0.0.1"'))


def run(*args, cwd=None):
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, LOGNAME="root", PYTHONPATH=ROOT))
    assert proc.returncode == 0, "%s: %s%s" % (args, proc.stdout, proc.stderr)
    return proc.stdout


def shell(commands, cwd, out_path):
    """The page's ``commands`` run by bash, one script, with this checkout's
    wsgid on the PATH; their output. (Into a file: mongrel2's daemon keeps
    inherited pipes open.)"""
    bin_path = os.path.join(cwd, "bin")
    os.makedirs(bin_path, exist_ok=True)
    with open(os.path.join(bin_path, "wsgid"), "w") as f:
        f.write('#!/bin/sh\nexec "%s" -m wsgid "$@" %s\n' % (sys.executable, " ".join(AS_ROOT)))
    os.chmod(os.path.join(bin_path, "wsgid"), 0o755)
    with open(out_path, "w+") as out:
        proc = subprocess.run(["bash", "-ec", SUDO + "\n".join(commands)], cwd=cwd,
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                              timeout=60, env=dict(os.environ, LOGNAME="root", PYTHONPATH=ROOT,
                                                   PATH=bin_path + os.pathsep + os.environ["PATH"]))
        out.seek(0)
        text = out.read()
    assert proc.returncode == 0, "%s: %s" % (commands, text)
    return text


def wsgid(*args, cwd):
    return run(*wsgid_command(*args), cwd=cwd)


def test_quickstart(tmp_path):
    django_admin = shutil.which("django-admin", path=os.path.dirname(sys.executable))
    if django_admin is None:
        pytest.skip("django-admin not installed next to this python")
    http_port = free_port()
    m2 = tmp_path / "mongrel2"
    app = tmp_path / "site"  # not "myapp": the user's name in the page

    # 3. mongrel2: its folders, config, m2sh load, start (it daemonizes), by
    # the page's commands; then its handler sockets as the page lists them.
    commands = step(3)
    listing = [out for command, out in commands if command.startswith("ls -l")]
    commands = [localize(command, str(m2), str(app)) for command, _ in commands
                if not command.startswith(("cat ", "ls "))]
    assert commands[0].startswith("sudo mkdir -p %s/" % m2)
    shell(commands[:1], tmp_path, tmp_path / "step3.out")
    (m2 / "mongrel2.conf").write_text(conf_from_docs(str(m2), str(app), http_port))
    shell(commands[1:], tmp_path, tmp_path / "step3.out")
    pid_file = m2 / "run" / "mongrel2.pid"
    try:
        wait_for(lambda: pid_file.exists() and port_open(http_port), 10, what="mongrel2")
        wait_for(lambda: len(os.listdir(m2 / "handlers")) == 2, 10, what="the handler sockets")
        expected = [localize(line, str(m2), str(app)).split() for line in listing[0][1:]]
        seen = run("ls", "-l", str(m2 / "handlers")).splitlines()[1:]
        assert [(f[0], f[2], f[3], f[-1]) for f in map(str.split, seen)] == \
            [(f[0], f[2], f[3], f[-1]) for f in expected]
        assert expected[0][0] == "srwxrwx---"

        # 4. the app folder; 5. a new Django project in app/.
        assert wsgid("init", "--app-path", str(app), cwd=tmp_path).strip() == \
            "Created app folder %s" % app
        run(django_admin, "startproject", "mysite", str(app / "app"))
        assert (app / "app" / "mysite" / "settings.py").exists()

        # 6. the page's wsgid config and its answers, then the rest with no
        # option but the folder (cwd).
        commands = step(6)
        assert "--recv ipc://%s/handlers/send.ipc" % "/srv/mongrel2" in commands[1][0]
        out = shell([localize(command, str(m2), str(app)) for command, _ in commands],
                    tmp_path, tmp_path / "step6.out")
        assert out == "".join(localize(line, str(m2), str(app)) + "\n"
                              for _, lines in commands for line in lines)

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
