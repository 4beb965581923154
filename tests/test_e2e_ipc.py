"""Handler sockets on ipc://, as the docs deploy them: mongrel2 binds
``ipc:///run/send.ipc`` and ``ipc:///run/recv.ipc`` inside its chroot, wsgid
connects to the same sockets by their host paths (CHROOT/run/...), and
requests are served in both dispatch modes. Another account cannot even
connect, where a TCP port on 127.0.0.1 takes any local account."""

import os
import socket

import pytest

from tests.support.http import get
from tests.support.marks import requires_mongrel2
from tests.support.wsgid import make_app_folder

pytestmark = [requires_mongrel2, pytest.mark.e2e]


@pytest.mark.parametrize("dispatch", ["direct", "broker"])
def test_served_over_ipc_handler_sockets(m2_factory, wsgid_factory, tmp_path, dispatch):
    m2 = m2_factory(ipc=True)
    assert m2.request_spec == "ipc://%s/run/send.ipc" % m2.chroot
    app_path = make_app_folder(str(tmp_path), "e2e_app.py")
    wsgid_factory(m2, app_path, "--wsgi-app", "e2e_app:app", "--workers", "2",
                  "--dispatch", dispatch)
    status, headers, body = get(m2.url, "/echo?x=1", method="POST", body=b"over ipc")
    assert status == 200 and "x-wsgid" in headers
    assert b"over ipc" in body
    if os.geteuid() == 0:
        assert stranger_connects(os.path.join(m2.chroot, "run", "send.ipc")) == "refused"


def stranger_connects(path):
    """Whether an account of its own (uid 65534, no groups) can connect to
    the unix socket at ``path``: "yes" or "refused"."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(path)
            os.write(write, b"yes")
        except PermissionError:
            os.write(write, b"refused")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with open(read, "rb") as f:
        return f.read().decode()
