"""wsgid.channel: the master's end answers, the command's end asks, with
the limits that keep the channel private and the command quick. (Another
account being refused: tests/test_e2e_status.py, with a real master.)"""

import json
import re
import os
import select
import socket
import stat
import threading
import time

import pytest

from tests.support.wsgid import AS_ROOT, silent_master
from tests.test_cli import app  # noqa: F401 (the fixture: a fresh app folder)
from wsgid import appfolder, channel, cli

pytestmark = pytest.mark.one_mode  # see pyproject.toml


class Answering:
    """A Listener for this process, answered from a thread as the master's
    loop does."""

    def __init__(self, app_path, state, pid=None):
        self.listener = channel.Listener(app_path, pid or os.getpid())
        self.state = state
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while self.running:
            if select.select([self.listener.fileno()], [], [], 0.05)[0]:
                self.listener.answer(self.state)

    def close(self):
        self.running = False
        self.thread.join()
        self.listener.close()


def test_ask_gets_the_state(app):
    answering = Answering(app, lambda: {"pid": os.getpid(), "workers": [{"pid": 7}]})
    try:
        assert channel.ask(app, [os.getpid()]) == {
            os.getpid(): {"pid": os.getpid(), "workers": [{"pid": 7}]}}
        folder = channel.folder(app)
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert os.listdir(folder) == ["%d.sock" % os.getpid()]
    finally:
        answering.close()
    assert os.listdir(channel.folder(app)) == []  # close() removes its socket


def test_an_app_folder_path_longer_than_a_socket_path(tmp_path):
    app = str(tmp_path / ("x" * 100) / ("y" * 100))
    appfolder.create(app)
    assert len(os.path.join(channel.folder(app), "1.sock")) > 107
    answering = Answering(app, lambda: {"ok": True})
    try:
        assert channel.ask(app, [os.getpid()]) == {os.getpid(): {"ok": True}}
    finally:
        answering.close()


def test_no_socket(app):
    assert channel.ask(app, [os.getpid()]) == {
        os.getpid(): {"error": "cannot connect: No such file or directory"}}


def test_a_master_that_does_not_answer_in_time(app):
    listener = channel.Listener(app, os.getpid())  # nobody answers
    try:
        t0 = time.monotonic()
        assert channel.ask(app, [os.getpid()], timeout=0.3) == {
            os.getpid(): {"error": "no answer within 0.3 s"}}
        assert 0.3 <= time.monotonic() - t0 < 3  # it gives up: generous on a loaded machine
    finally:
        listener.close()


def test_silent_masters_cost_the_timeout_once(app):
    with silent_master(app) as first, silent_master(app) as second:
        t0 = time.monotonic()
        answers = channel.ask(app, [first, second], timeout=1)
        assert time.monotonic() - t0 < 2  # the timeout twice would be 2 s
    assert answers == {first: {"error": "no answer within 1 s"},
                       second: {"error": "no answer within 1 s"}}


def test_a_socket_held_by_another_process_is_not_believed(app):
    other = os.getppid()
    answering = Answering(app, lambda: {"pid": other}, pid=other)
    try:
        assert channel.ask(app, [other]) == {
            other: {"error": "cannot connect: the socket is held by pid %d" % os.getpid()}}
    finally:
        answering.close()


def test_a_failing_state_is_an_error_answer_and_the_listener_lives_on(app):
    listener = channel.Listener(app, os.getpid())
    path = os.path.join(channel.folder(app), "%d.sock" % os.getpid())

    def answer(state):
        with socket.socket(socket.AF_UNIX) as caller:
            caller.connect(path)
            listener.answer(state)
            return json.loads(caller.makefile("rb").read())

    def failing():
        raise RuntimeError("bug")
    try:
        assert answer(failing) == {
            "error": "the master failed to say its state (see its log)"}
        assert answer(lambda: {"fine": True}) == {"fine": True}
    finally:
        listener.close()


def test_the_folder_made_private_and_dead_masters_sockets_cleared(app):
    folder = channel.folder(app)
    os.mkdir(folder, 0o755)
    with silent_master(app) as live:
        gone = os.fork()
        if gone == 0:
            os._exit(0)
        os.waitpid(gone, 0)
        for pid in (gone, os.getpid()):
            open(os.path.join(folder, "%d.sock" % pid), "w").close()
        open(os.path.join(folder, "notes.txt"), "w").close()
        os.chmod(folder, 0o755)
        listener = channel.Listener(app, os.getpid())
        try:
            assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
            assert sorted(os.listdir(folder)) == sorted(
                ["%d.sock" % live, "%d.sock" % os.getpid(), "notes.txt"])
            assert stat.S_ISSOCK(os.stat(os.path.join(folder, "%d.sock" % os.getpid())).st_mode)
        finally:
            listener.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_a_folder_of_another_account_is_refused(app):
    folder = channel.folder(app)
    os.mkdir(folder, 0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(PermissionError):
        channel.Listener(app, os.getpid())
    assert os.listdir(folder) == []


HOSTILE = {"dispatch\x1b]0;owned\x07": "broker", "dispatch": "\x1b[2J\x1b[H\x9b31m\x7f",
           "answered_502": "\u202eevil\r\n", "workers": [
               {"pid": "7\x1b[1A\x1b[2K", "state": "busy", "age": 1, "method": "GET\x00",
                "path": "/\x1bP+q\x1b\\", "served": 1, "rss": 1, "uptime": 1}]}


def test_a_master_answering_escape_sequences_is_printed_escaped(app, capsys):
    """Every string a master answers, keys too, reaches root's terminal with
    its controls escaped: C0 (ESC, BEL, CR, LF, NUL), C1 (CSI), DEL, bidi
    overrides; --json too."""
    with silent_master(app, answer=json.dumps(HOSTILE).encode()) as pid:
        answer = channel.ask(app, [pid])[pid]
        assert cli.main(["status", "--verbose", "--app-path", app, *AS_ROOT]) == 0
        verbose = capsys.readouterr().out
        assert cli.main(["status", "--json", "--app-path", app, *AS_ROOT]) == 0
        as_json = capsys.readouterr().out
    assert "dispatch\\x1b]0;owned\\x07" in answer
    assert answer["dispatch"] == "\\x1b[2J\\x1b[H\\x9b31m\\x7f"
    assert answer["workers"][0]["method"] == "GET\\x00"
    for out in (verbose, as_json):
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]", out), out
    assert "\\x1b[2J" in verbose and "\\u202eevil\\r\\n" in verbose
    assert "Worker 7\\x1b[1A\\x1b[2K: busy 1.0s on GET\\x00 /\\x1bP+q\\x1b\\" in verbose


@pytest.mark.parametrize("answer, error", [
    (b'{"x": "' + b"a" * ((1 << 20) + 10) + b'"}', "answer larger than 1048576 bytes"),
    (b"[" * 200000 + b"]" * 200000, "not a valid answer"),
    (b'{"x":' * 100000 + b"1" + b"}" * 100000, "not a valid answer"),
    (b'{"workers": [1, "x"]}', None),
])
def test_a_huge_deep_or_odd_answer_is_one_line(app, capsys, answer, error):
    """An answer over MAX_ANSWER bytes is not read further; JSON nested too
    deep, or of another shape than a master's, is a one-line note."""
    with silent_master(app, answer=answer) as pid:
        if error:
            assert channel.ask(app, [pid]) == {pid: {"error": error}}
        assert cli.main(["status", "--verbose", "--app-path", app, *AS_ROOT]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[3].startswith("Master %d: " % pid), lines
    assert len(lines[3]) < 200
