"""The command line: commands, options, wsgid.json and the pid-file commands.

Processes named in pid files are real processes this module spawns: a small
Python script that claims its pid file as wsgid does (holding its lock) and
may record the signals it gets; a plain ``sleep`` stands for an unrelated
process named by a forged pid file. Stale pid files name processes it started
and reaped. No sleeps as synchronization: every wait is on a condition with a
deadline.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import wsgid
from wsgid import appfolder, cli, options as opts
from wsgid.commands import status as status_command
from tests.support import ROOT
from tests.support.waiting import wait_for
from tests.support.wsgid import AS_ROOT, forge_pid, silent_master, wsgid_command

pytestmark = pytest.mark.one_mode  # see pyproject.toml

MAX_PID = 2 ** 31 - 1
GOOD = ["--recv", "tcp://127.0.0.1:5999", "--send", "tcp://127.0.0.1:5998"]

HOLDER = textwrap.dedent("""\
    import signal, sys
    from wsgid import appfolder
    app, kind, out = sys.argv[1:]
    fd = appfolder.claim(app, kind)

    def record(signum, frame):
        with open(out, "a") as f:
            f.write("%d\\n" % signum)
        if signum == signal.SIGTERM:
            sys.exit(0)

    if out != "-":
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(s, record)
        with open(out, "a") as f:
            f.write("ready\\n")
    while True:
        signal.pause()
""")


# ---------------------------------------------------------------- helpers

def wsgid_run(*args, cwd=None, timeout=30):
    """``python -m wsgid ARGS`` in a subprocess: (exit status, stdout, stderr)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(wsgid_command(*args), cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def wsgid_main(capsys):
    """wsgid.cli.main in this process: (exit status, stdout, stderr)."""
    def run(*args):
        try:
            status = cli.main(list(args) + AS_ROOT)
        except SystemExit as exc:
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err
    return run


def one_error_line(err):
    """The single line of stderr, checked to be a wsgid error and no traceback."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wsgid: error: "), err
    return lines[0]


@pytest.fixture
def app(tmp_path):
    path = str(tmp_path / "app")
    appfolder.create(path)
    return path


class Children:
    """Processes spawned for a test, all killed and reaped at teardown."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.procs = []

    def sleeper(self):
        """An unrelated process: it holds no pid file."""
        proc = subprocess.Popen(["sleep", "600"])
        self.procs.append(proc)
        return proc

    def holder(self, app, kind):
        """A process that claims its ``kind`` pid file as wsgid's do."""
        return self._claimer(app, kind, "-")[0]

    def recorder(self, app, kind):
        """A process that claims its ``kind`` pid file and records the
        signals it gets; returns (proc, read)."""
        return self._claimer(app, kind, str(self.tmp_path / ("signals-%d" % len(self.procs))))

    def _claimer(self, app, kind, out):
        env = dict(os.environ, PYTHONPATH=ROOT)
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, app, kind, out], env=env)
        self.procs.append(proc)

        def read():
            try:
                with open(out) as f:
                    return f.read().split()
            except FileNotFoundError:
                return []
        wait_for(lambda: appfolder.owns(app, kind, proc.pid) and (out == "-" or "ready" in read()),
                 20, what="the process to claim its pid file")
        return proc, read

    def stale_pid(self):
        """The pid of a process that was started and reaped: nobody has it."""
        proc = subprocess.Popen(["true"])
        proc.wait()
        assert not os.path.exists("/proc/%d" % proc.pid)
        return proc.pid

    def cleanup(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.fixture
def children(tmp_path):
    kids = Children(tmp_path)
    yield kids
    kids.cleanup()


JUNK = ["abc.pid", "12.pid.tmp", "12.txt", "README", ".pid", "0.pid", "-5.pid",
        "%d.pid" % (MAX_PID + 1), "99999999999999999999999.pid"]


def add_junk(app_path, kind):
    for name in JUNK:
        with open(os.path.join(appfolder.pid_dir(app_path, kind), name), "w") as f:
            f.write("1\n")  # junk files never count, whatever they hold
    os.mkdir(os.path.join(appfolder.pid_dir(app_path, kind), "77.pid.d"))


def pid_files(app_path, kind):
    return sorted(os.listdir(appfolder.pid_dir(app_path, kind)))


def exited(proc, timeout=10):
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


# ---------------------------------------------------------------- command line

def test_version_short_and_long():
    for flag in ("-v", "--version"):
        status, out, err = wsgid_run(flag)
        assert (status, out, err) == (0, "wsgid %s\n" % wsgid.__version__, "")


def test_help_lists_commands_and_options(wsgid_main):
    status, out, _ = wsgid_main("--help")
    assert status == 0
    for word in ("init", "config", "status", "stop", "restart", "reload",
                 "--app-path", "--recv", "--send", "--workers", "--send-signal"):
        assert word in out


@pytest.mark.parametrize("args", [["bogus"], ["--bogus"], ["status", "--bogus"],
                                  ["stop", "extra-word"], ["--workers", "x"],
                                  ["--workers", "-1"]])
def test_unknown_word_or_option_is_a_usage_error(args, tmp_path):
    status, out, err = wsgid_run(*args, cwd=str(tmp_path))
    assert status == 2
    assert out == ""
    assert err.startswith("usage: wsgid [COMMAND] [OPTIONS]\n")
    assert "wsgid: error: " in err
    assert "Traceback" not in err


@pytest.mark.parametrize("flag", ["--recv", "--send"])
@pytest.mark.parametrize("address", ["foo", "tcp://127.0.0.1", "http://127.0.0.1:80",
                                     "tcp://:80", "tcp://host:port", ""])
def test_bad_address_is_one_line_naming_the_option(flag, address, app, tmp_path):
    args = dict(zip(GOOD[::2], GOOD[1::2]))
    args[flag] = address
    argv = ["--no-daemon", "--app-path", app]
    for name, value in args.items():
        argv += [name, value]
    status, out, err = wsgid_run(*argv, cwd=str(tmp_path))
    assert status != 0
    line = one_error_line(err)
    assert flag in line and "address" in line
    # nothing started: no pid file, no log
    assert pid_files(app, appfolder.MASTER) == pid_files(app, appfolder.WORKER) == []
    assert os.listdir(os.path.join(app, "logs")) == []


def test_bad_address_is_not_saved_by_config(app, wsgid_main):
    status, _, err = wsgid_main("config", "--app-path", app, "--recv", "tcp://nowhere")
    assert status == 1
    assert "--recv" in one_error_line(err)
    assert not os.path.exists(opts.json_path(app))


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9999", "tcp://[::1]:9999",
                                     "tcp://*:9999", "ipc:///tmp/wsgid.sock",
                                     "inproc://x", "pgm://eth0;239.192.1.1:5555",
                                     "epgm://eth0;239.192.1.1:5555"])
def test_good_addresses_are_accepted(address):
    _, given = opts.parse_command_line(["config", "--recv", address, "--send", address])
    assert given["recv"] == given["send"] == [address]


@pytest.mark.parametrize("text, size", [("0", 0), ("512", 512), ("10K", 10 << 10),
                                        ("100M", 100 << 20), ("2g", 2 << 30)])
def test_sizes_read_in_binary_units(text, size):
    _, given = opts.parse_command_line(["config", "--max-body-size", text])
    assert given["max_body_size"] == size


@pytest.mark.parametrize("command", ["start", "status", "config", "check", "stop",
                                     "restart", "reload"])
def test_missing_app_folder_is_one_line(command, tmp_path):
    missing = str(tmp_path / "nowhere")
    argv = ([] if command == "start" else [command]) + ["--app-path", missing]
    if command == "start":
        argv += GOOD + ["--no-daemon"]
    status, out, err = wsgid_run(*argv, cwd=str(tmp_path))
    assert status == 1
    assert out == ""
    assert missing in one_error_line(err)
    assert not os.path.exists(missing)


def test_start_without_a_command_word_is_start(wsgid_main, tmp_path):
    """No command word runs start (here it stops at the missing app folder)."""
    missing = str(tmp_path / "nowhere")
    for argv in (["--app-path", missing], ["start", "--app-path", missing]):
        status, _, err = wsgid_main(*argv, *GOOD)
        assert status == 1 and missing in one_error_line(err)


# ---------------------------------------------------------------- init

def test_init_creates_layout_with_parents(tmp_path):
    app_path = str(tmp_path / "a" / "b" / "app")
    status, out, err = wsgid_run("init", "--app-path", app_path)
    assert (status, out, err) == (0, "Created app folder %s\n" % app_path, "")
    for sub in ("app", "logs", "pid/master", "pid/worker", "plugins"):
        assert os.path.isdir(os.path.join(app_path, sub))


def test_init_twice_is_safe_and_keeps_content(tmp_path, wsgid_main):
    app_path = str(tmp_path / "app")
    assert wsgid_main("init", "--app-path", app_path)[0] == 0
    with open(os.path.join(app_path, "app", "mine.py"), "w") as f:
        f.write("x = 1\n")
    with open(opts.json_path(app_path), "w") as f:
        f.write('{"workers": 4}\n')
    status, out, err = wsgid_main("init", "--app-path", app_path)
    assert status == 0 and err == ""
    assert out == "App folder %s already exists, nothing to create\n" % app_path
    with open(os.path.join(app_path, "app", "mine.py")) as f:
        assert f.read() == "x = 1\n"
    assert opts.read_json(app_path) == {"workers": 4}


def test_init_completes_a_partial_folder(tmp_path, wsgid_main):
    app_path = str(tmp_path / "app")
    os.makedirs(os.path.join(app_path, "app"))
    status, out, _ = wsgid_main("init", "--app-path", app_path)
    assert (status, out) == (0, "Created app folder %s\n" % app_path)
    assert os.path.isdir(os.path.join(app_path, "pid", "worker"))


def test_init_defaults_to_current_directory(tmp_path):
    status, out, _ = wsgid_run("init", cwd=str(tmp_path))
    assert status == 0
    assert out == "Created app folder %s\n" % tmp_path
    assert os.path.isdir(str(tmp_path / "pid" / "master"))


def test_init_relative_path_is_made_absolute(tmp_path):
    status, out, _ = wsgid_run("init", "--app-path", "rel/app", cwd=str(tmp_path))
    assert status == 0
    assert out == "Created app folder %s\n" % (tmp_path / "rel" / "app")


def test_init_on_a_file_is_one_line(tmp_path, wsgid_main):
    path = str(tmp_path / "file")
    open(path, "w").close()
    status, out, err = wsgid_main("init", "--app-path", path)
    assert status == 1 and out == ""
    assert path in one_error_line(err)


# ---------------------------------------------------------------- config

def test_config_writes_real_json_booleans(app, wsgid_main):
    status, out, err = wsgid_main("config", "--app-path", app, "--debug", "--no-keep-alive",
                                  "--workers", "3", *GOOD)
    assert status == 0 and err == ""
    assert out == "Saved debug, keep_alive, recv, send, workers to %s\n" % opts.json_path(app)
    with open(opts.json_path(app)) as f:
        data = json.load(f)
    assert data == {"debug": True, "keep_alive": False, "workers": 3,
                    "recv": GOOD[1], "send": GOOD[3]}
    assert "app_path" not in data


def test_config_merges_into_existing_file(app, wsgid_main):
    with open(opts.json_path(app), "w") as f:
        json.dump({"send": "tcp://127.0.0.1:7000", "debug": "True", "workers": 2,
                   "envs": {"A": "1"}}, f)
    assert wsgid_main("config", "--app-path", app, "--workers", "5", "--no-debug")[0] == 0
    with open(opts.json_path(app)) as f:
        data = json.load(f)
    assert data == {"send": "tcp://127.0.0.1:7000", "debug": False, "workers": 5,
                    "envs": {"A": "1"}}


def test_config_never_leaves_a_temp_file(app, wsgid_main):
    for workers in ("1", "2", "3"):
        assert wsgid_main("config", "--app-path", app, "--workers", workers)[0] == 0
    assert sorted(os.listdir(app)) == ["app", "logs", "pid", "plugins", "wsgid.json"]


def test_config_refuses_to_merge_into_a_broken_file(app, wsgid_main):
    with open(opts.json_path(app), "w") as f:
        f.write("{broken")
    status, _, err = wsgid_main("config", "--app-path", app, "--workers", "2")
    assert status == 1
    assert opts.json_path(app) in one_error_line(err)
    with open(opts.json_path(app)) as f:
        assert f.read() == "{broken"
    assert sorted(os.listdir(app)) == ["app", "logs", "pid", "plugins", "wsgid.json"]


def test_config_saves_repeated_loader_dirs_as_a_list(app, wsgid_main):
    assert wsgid_main("config", "--app-path", app, "--loader-dir", "/a",
                      "--loader-dir", "/b")[0] == 0
    assert opts.read_json(app) == {"loader_dir": ["/a", "/b"]}


FRONT_B = ["--recv", "tcp://127.0.0.1:6999", "--send", "tcp://127.0.0.1:6998"]


def test_config_saves_front_end_pairs_as_lists_and_one_as_a_string(app, wsgid_main):
    assert wsgid_main("config", "--app-path", app, *GOOD, *FRONT_B)[0] == 0
    with open(opts.json_path(app)) as f:
        assert json.load(f) == {"recv": [GOOD[1], FRONT_B[1]], "send": [GOOD[3], FRONT_B[3]]}
    status, out, _ = wsgid_main("config", "--app-path", app)
    assert json.loads(out) == {"recv": [GOOD[1], FRONT_B[1]], "send": [GOOD[3], FRONT_B[3]]}
    options = opts.resolve({"app_path": app})
    assert opts.front_ends(options) == [(GOOD[1], GOOD[3]), (FRONT_B[1], FRONT_B[3])]
    # Back to one front-end: written as wsgid 0.7 wrote it, a string.
    assert wsgid_main("config", "--app-path", app, *GOOD)[0] == 0
    with open(opts.json_path(app)) as f:
        assert json.load(f) == {"recv": GOOD[1], "send": GOOD[3]}
    assert json.loads(wsgid_main("config", "--app-path", app)[1]) == {"recv": GOOD[1],
                                                                       "send": GOOD[3]}


def test_old_json_with_one_address_reads_as_one_front_end(app):
    write_json_text(app, json.dumps({"recv": GOOD[1], "send": GOOD[3]}))
    assert opts.front_ends(opts.resolve({"app_path": app})) == [(GOOD[1], GOOD[3])]


@pytest.mark.parametrize("value", [[], ["tcp://127.0.0.1:1", "nowhere"], ["tcp://127.0.0.1:1", 5],
                                   {"a": "tcp://127.0.0.1:1"}])
def test_bad_address_list_in_json_is_one_line(app, value):
    write_json_text(app, json.dumps({"recv": value}))
    status, out, err = wsgid_run("config", "--app-path", app)
    assert status == 1 and out == ""
    line = one_error_line(err)
    assert opts.json_path(app) in line and "recv" in line


@pytest.mark.parametrize("argv", [GOOD + FRONT_B[:2], GOOD + FRONT_B[2:]])
def test_unpaired_recv_and_send_is_one_line(argv, app, tmp_path):
    status, out, err = wsgid_run("--no-daemon", "--app-path", app, *argv, cwd=str(tmp_path))
    assert status == 1 and out == ""
    line = one_error_line(err)
    assert "--recv" in line and "--send" in line and "front-end" in line
    assert pid_files(app, appfolder.MASTER) == []


def test_unpaired_json_and_command_line_is_one_line(app, tmp_path):
    """--recv on the command line replaces the saved list, --send does not."""
    write_json_text(app, json.dumps({"recv": [GOOD[1], FRONT_B[1]],
                                     "send": [GOOD[3], FRONT_B[3]]}))
    status, _, err = wsgid_run("--no-daemon", "--app-path", app, "--recv", GOOD[1],
                               cwd=str(tmp_path))
    assert status == 1
    assert "--recv is given 1 time(s) and --send 2" in one_error_line(err)


def test_config_does_not_save_send_signal(app, wsgid_main):
    assert wsgid_main("config", "--app-path", app, "--workers", "2",
                      "--send-signal", "9", "--verbose", "--json")[0] == 0
    assert opts.read_json(app) == {"workers": 2}


def test_config_without_options_prints_the_file(app, wsgid_main):
    status, out, _ = wsgid_main("config", "--app-path", app)
    assert (status, json.loads(out)) == (0, {})
    assert not os.path.exists(opts.json_path(app))  # printing creates nothing
    with open(opts.json_path(app), "w") as f:
        json.dump({"workers": 2, "debug": "true"}, f)
    status, out, _ = wsgid_main("config", "--app-path", app)
    assert status == 0
    assert json.loads(out) == {"workers": 2, "debug": True}


def test_config_in_current_directory(app):
    status, _, _ = wsgid_run("config", "--workers", "7", cwd=app)
    assert status == 0
    assert opts.read_json(app) == {"workers": 7}
    status, out, _ = wsgid_run("config", cwd=app)
    assert (status, json.loads(out)) == (0, {"workers": 7})


# ---------------------------------------------------------------- wsgid.json

def write_json_text(app_path, text):
    with open(opts.json_path(app_path), "w") as f:
        f.write(text)


def test_invalid_json_is_one_line_naming_the_file(app):
    write_json_text(app, '{"workers": 2,')
    # start reads wsgid.json first; it must stop there, one line, nothing started
    status, out, err = wsgid_run("--app-path", app, "--no-daemon", *GOOD)
    assert status == 1 and out == ""
    line = one_error_line(err)
    assert opts.json_path(app) in line and "JSON" in line
    assert pid_files(app, appfolder.MASTER) == []


@pytest.mark.parametrize("key, value", [("workers", "x"), ("workers", True),
                                        ("workers", 2.5), ("debug", "yes"),
                                        ("keep_alive", 1), ("recv", "nowhere"),
                                        ("recv", 5), ("loader_dir", [1]),
                                        ("envs", {"A": 1}), ("envs", "A=1"),
                                        ("max_body_size", "10X"), ("max_body_size", -1)])
def test_wrong_type_names_file_and_key(app, key, value):
    write_json_text(app, json.dumps({key: value}))
    status, out, err = wsgid_run("config", "--app-path", app)
    assert status == 1 and out == ""
    line = one_error_line(err)
    assert opts.json_path(app) in line and key in line


@pytest.mark.parametrize("text", ['[1, 2]', '"x"', '{"no_such_option": 1}',
                                  '{"send_signal": 9}', '{"app_path": 1}'])
def test_other_bad_content_names_the_file(app, text):
    write_json_text(app, text)
    status, _, err = wsgid_run("config", "--app-path", app)
    assert status == 1
    assert opts.json_path(app) in one_error_line(err)


def test_both_boolean_forms_are_read(app):
    write_json_text(app, json.dumps({"debug": "True", "keep_alive": "false",
                                     "chroot": "TRUE", "no_daemon": "FaLsE",
                                     "django": True, "stdout": False}))
    assert opts.read_json(app) == {"debug": True, "keep_alive": False, "chroot": True,
                                   "no_daemon": False, "django": True, "stdout": False}


def test_missing_json_reads_as_empty(app):
    assert opts.read_json(app) == {}


def test_command_line_beats_json_beats_default(app):
    write_json_text(app, json.dumps({"workers": 4, "debug": "True", "recv": GOOD[1],
                                     "keep_alive": False}))
    options = opts.resolve({"app_path": app, "workers": 8, "keep_alive": True})
    assert options.workers == 8              # command line over wsgid.json
    assert options.keep_alive is True        # command line over wsgid.json, bool
    assert options.debug is True             # wsgid.json over default
    assert options.recv == [GOOD[1]]         # wsgid.json over default (None)
    assert options.send is None              # default
    assert options.send_signal == 15         # default
    assert options.app_path == app
    # a command-line False beats a wsgid.json True too
    assert opts.resolve({"app_path": app, "debug": False}).debug is False


def test_resolve_parsed_command_line(app, monkeypatch):
    write_json_text(app, json.dumps({"workers": 4, "stdout": True}))
    monkeypatch.chdir(app)
    _, given = opts.parse_command_line(["start", "--workers", "2", "--no-stdout"])
    assert given == {"workers": 2, "stdout": False}  # only what was given
    options = opts.resolve(given)
    assert (options.workers, options.stdout, options.app_path) == (2, False, app)


# ---------------------------------------------------------------- status

def test_status_exact_lines(app, children):
    live_masters = [children.holder(app, appfolder.MASTER).pid]
    live_workers = [children.holder(app, appfolder.WORKER).pid for _ in range(3)]
    stale_master = children.stale_pid()
    stale_workers = [children.stale_pid(), MAX_PID]
    forged_master, forged_worker = children.sleeper().pid, children.sleeper().pid
    forge_pid(app, appfolder.MASTER, stale_master)
    forge_pid(app, appfolder.MASTER, forged_master)
    for pid in stale_workers + [forged_worker]:
        forge_pid(app, appfolder.WORKER, pid)
    add_junk(app, appfolder.MASTER)
    add_junk(app, appfolder.WORKER)
    before = (pid_files(app, appfolder.MASTER), pid_files(app, appfolder.WORKER))

    def listing(live, dead):
        return ", ".join("%d" % pid if pid in live else "%d(dead)" % pid
                         for pid in sorted(live + dead))

    status, out, err = wsgid_run("status", "--app-path", app)
    assert (status, err) == (0, "")
    assert out == ("Status: Running\n"
                   "Master pid(s): %s\n"
                   "Worker pid(s): %s\n" % (
                       listing(live_masters, [stale_master, forged_master]),
                       listing(live_workers, stale_workers + [forged_worker])))
    # status only looks: nothing removed
    assert (pid_files(app, appfolder.MASTER), pid_files(app, appfolder.WORKER)) == before


def test_status_sorts_numerically(app, monkeypatch, wsgid_main):
    for pid in (100, 9, 10, 1000):
        forge_pid(app, appfolder.WORKER, pid)
    forge_pid(app, appfolder.MASTER, 20)
    forge_pid(app, appfolder.MASTER, 3)
    monkeypatch.setattr(appfolder, "owns", lambda app, kind, pid: pid in (3, 10, 1000))
    status, out, _ = wsgid_main("status", "--app-path", app)
    assert status == 0
    assert out == ("Status: Running\n"
                   "Master pid(s): 3, 20(dead)\n"
                   "Worker pid(s): 9(dead), 10, 100(dead), 1000\n")


def test_status_empty_app_folder(app):
    status, out, err = wsgid_run("status", "--app-path", app)
    assert (status, err) == (0, "")
    assert out == "Status: Stopped\nMaster pid(s): \nWorker pid(s): \n"


def test_status_folder_without_pid_dirs(tmp_path, wsgid_main):
    status, out, _ = wsgid_main("status", "--app-path", str(tmp_path))
    assert status == 0
    assert out == "Status: Stopped\nMaster pid(s): \nWorker pid(s): \n"


def test_status_stopped_when_only_the_master_lives(app, children, wsgid_main):
    master = children.holder(app, appfolder.MASTER).pid
    dead = children.stale_pid()
    forge_pid(app, appfolder.WORKER, dead)
    status, out, _ = wsgid_main("status", "--app-path", app)
    assert status == 0
    assert out == ("Status: Stopped\nMaster pid(s): %d\nWorker pid(s): %d(dead)\n"
                   % (master, dead))


def test_status_counts_a_zombie_as_dead(app, children, wsgid_main):
    worker = children.holder(app, appfolder.WORKER)
    worker.kill()  # not reaped yet: a zombie until cleanup
    wait_for(lambda: not appfolder.owns(app, appfolder.WORKER, worker.pid), 10,
             what="the zombie")
    status, out, _ = wsgid_main("status", "--app-path", app)
    assert out.splitlines() == ["Status: Stopped", "Master pid(s): ",
                                "Worker pid(s): %d(dead)" % worker.pid]


def test_status_ignores_non_ascii_digit_names(app, wsgid_main):
    open(os.path.join(appfolder.pid_dir(app, appfolder.WORKER), "\u00b2.pid"), "w").close()
    status, out, _ = wsgid_main("status", "--app-path", app)
    assert out == "Status: Stopped\nMaster pid(s): \nWorker pid(s): \n"


def test_status_does_not_follow_a_pid_file_link(app, children, tmp_path, wsgid_main):
    """A link named after a live holder's pid, to the file it holds, is not
    its pid file: only the real file under the real name counts."""
    elsewhere = str(tmp_path / "elsewhere")
    appfolder.create(elsewhere)
    holder = children.holder(elsewhere, appfolder.MASTER)
    os.symlink(appfolder.pid_path(elsewhere, appfolder.MASTER, holder.pid),
               appfolder.pid_path(app, appfolder.MASTER, holder.pid))
    status, out, _ = wsgid_main("status", "--app-path", app)
    assert out.splitlines()[1] == "Master pid(s): %d(dead)" % holder.pid


@pytest.mark.parametrize("flag", ["--verbose", "--json"])
def test_status_flags_ask_no_dead_master(app, children, flag, wsgid_main):
    stale = children.stale_pid()
    forge_pid(app, appfolder.MASTER, stale)
    worker = children.holder(app, appfolder.WORKER).pid
    status, out, err = wsgid_main("status", "--app-path", app, flag)
    assert (status, err) == (0, "")
    if flag == "--verbose":
        assert out == ("Status: Running\nMaster pid(s): %d(dead)\nWorker pid(s): %d\n"
                       % (stale, worker))
    else:
        assert json.loads(out) == {"status": "Running",
                                   "masters": [{"pid": stale, "live": False}],
                                   "worker_pids": [{"pid": worker, "live": True}]}


def test_status_verbose_notes_a_master_without_channel(app, children, wsgid_main):
    master = children.holder(app, appfolder.MASTER).pid
    status, out, _ = wsgid_main("status", "--app-path", app, "--verbose")
    assert status == 0
    assert out.splitlines() == [
        "Status: Stopped", "Master pid(s): %d" % master, "Worker pid(s): ",
        "Master %d: cannot connect: No such file or directory; only its pid files are known"
        % master]


def test_status_verbose_notes_a_master_that_does_not_answer(app, wsgid_main):
    with silent_master(app) as master:
        t0 = time.monotonic()
        status, out, _ = wsgid_main("status", "--app-path", app, "--verbose")
        assert 1.0 <= time.monotonic() - t0 < 5  # the 1 s timeout, not a hang
        json_out = json.loads(wsgid_main("status", "--app-path", app, "--json")[1])
    assert status == 0
    assert out.splitlines() == [
        "Status: Stopped", "Master pid(s): %d" % master, "Worker pid(s): ",
        "Master %d: no answer within 1 s; only its pid files are known" % master]
    assert json_out["masters"] == [{"pid": master, "live": True,
                                    "error": "no answer within 1 s"}]


def test_status_verbose_lines():
    state = {"pid": 10, "dispatch": "broker", "waiting": 3, "answered_502": 1,
             "answered_503": 0, "workers": [
                 {"pid": 11, "state": "busy", "method": "POST", "path": "/upload",
                  "age": 2.345, "served": 7, "rss": 31457280, "uptime": 7384.2,
                  "retiring": False},
                 {"pid": 12, "state": "idle", "served": 0, "rss": None, "uptime": 5.0,
                  "retiring": True}]}
    assert status_command.describe(10, state) == [
        "Master 10: broker dispatch, 3 request(s) waiting, answered 502: 1, 503: 0",
        "  Worker 11: busy 2.3s on POST /upload; 7 served, RSS 30.0 MiB, up 2h03m",
        "  Worker 12: idle; 0 served, RSS ?, up 5s (retiring)"]
    state.update(dispatch="direct", waiting=None, answered_502=0, workers=[])
    assert status_command.describe(10, state) == [
        "Master 10: direct dispatch, requests waiting: n/a, answered 502: 0, 503: 0"]


@pytest.mark.parametrize("seconds, shown", [(0, "0s"), (59.9, "59s"), (60, "1m00s"),
                                            (3599, "59m59s"), (3600, "1h00m"),
                                            (86399, "23h59m"), (90061, "1d01h")])
def test_status_durations(seconds, shown):
    assert status_command.duration(seconds) == shown


# ---------------------------------------------------------------- stop / restart / reload

def test_stop_signals_every_live_master_and_skips_stale(app, children):
    (m1, read1), (m2, read2) = (children.recorder(app, appfolder.MASTER),
                                children.recorder(app, appfolder.MASTER))
    stale = children.stale_pid()
    forge_pid(app, appfolder.MASTER, stale)
    worker = children.holder(app, appfolder.WORKER)
    add_junk(app, appfolder.MASTER)

    status, out, err = wsgid_run("stop", "--app-path", app)
    assert (status, err) == (0, "")
    assert out == "".join("Sent signal 15 (SIGTERM) to master %d\n" % pid
                          for pid in sorted((m1.pid, m2.pid)))
    assert exited(m1) and exited(m2)
    assert read1() == read2() == ["ready", "15"]
    # the stale file is removed, the live ones are the master's to remove
    names = pid_files(app, appfolder.MASTER)
    assert "%d.pid" % stale not in names
    assert "%d.pid" % m1.pid in names and "%d.pid" % m2.pid in names
    assert set(JUNK) <= set(names)  # junk is left alone
    # workers are not stop's business
    assert worker.poll() is None
    assert pid_files(app, appfolder.WORKER) == ["%d.pid" % worker.pid]


def test_stop_terminates_a_plain_process(app, children, wsgid_main):
    master = children.holder(app, appfolder.MASTER)
    status, out, _ = wsgid_main("stop", "--app-path", app)
    assert status == 0
    assert out == "Sent signal 15 (SIGTERM) to master %d\n" % master.pid
    assert exited(master) and master.returncode == -signal.SIGTERM


@pytest.mark.parametrize("command", ["stop", "restart", "reload"])
def test_a_forged_pid_file_is_never_signalled(app, children, command, wsgid_main):
    """A pid file naming a process that does not hold it (an unrelated
    process, or a reused pid) is stale: removed, never signalled."""
    stranger = children.sleeper()
    for kind in (appfolder.MASTER, appfolder.WORKER):
        forge_pid(app, kind, stranger.pid)
    kind = appfolder.WORKER if command == "restart" else appfolder.MASTER
    assert wsgid_main(command, "--app-path", app) == (
        0, "No running %s for %s\n" % (kind, app), "")
    assert stranger.poll() is None
    assert not os.path.exists(appfolder.pid_path(app, kind, stranger.pid))


# A process whose clone(CLONE_FILES) child claims a master pid file and exits:
# the lock lives on in the descriptor table they shared, reported under the
# child's pid. ARGV: app folder, "zombie" (the child left unreaped) or "reaped".
CLONE_FILES_FORGER = r"""
import ctypes, os, platform, sys
from wsgid import appfolder
SYS_CLONE = {"x86_64": 56, "aarch64": 220}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
child = libc.syscall(ctypes.c_long(SYS_CLONE), ctypes.c_ulong(0x400 | 17),  # CLONE_FILES|SIGCHLD
                     None, None, None, ctypes.c_ulong(0))
if child == 0:
    appfolder.claim(sys.argv[1], appfolder.MASTER)
    os._exit(0)
os.waitid(os.P_PID, child, os.WEXITED | (os.WNOWAIT if sys.argv[2] == "zombie" else 0))
print(child, flush=True)
sys.stdin.read()
"""

# A process that blocks SIGTERM, so that a SIGTERM sent to it stays pending.
TERM_BLOCKER = ("import signal, sys; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}); "
                "print('ready', flush=True); sys.stdin.read()")


def forger(app, mode):
    proc = subprocess.Popen([sys.executable, "-c", CLONE_FILES_FORGER, app, mode], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def term_pending(pid):
    with open("/proc/%d/status" % pid) as f:
        return any(int(line.split()[1], 16) & 1 << (signal.SIGTERM - 1)
                   for line in f if line.startswith(("SigPnd:", "ShdPnd:")))


def spawn_at(pid, argv):
    """``argv`` started as process ``pid`` (root: through ns_last_pid), or
    None when other processes kept taking that pid."""
    for _ in range(100):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write("%d" % (pid - 1))
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if proc.pid == pid:
            return proc
        proc.kill()
        proc.wait()
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (ns_last_pid)")
@pytest.mark.parametrize("mode", ["zombie", "reaped"])
def test_a_lock_left_by_a_clone_files_child_is_no_proof(app, wsgid_main, mode):
    """The lock of a CLONE_FILES child outlives it and is still reported
    under its pid: the child dead (a zombie), or its pid reused by another
    process (here one that blocks SIGTERM, so a signal sent stays pending).
    status shows it dead, stop signals nothing."""
    proc, child = forger(app, mode)
    victim = None
    try:
        if mode == "reaped":
            victim = spawn_at(child, [sys.executable, "-c", TERM_BLOCKER])
            if victim is None:
                pytest.skip("pid %d kept being taken by other processes" % child)
            assert victim.stdout.readline() == "ready\n"
        _, out, _ = wsgid_main("status", "--app-path", app)
        assert out.splitlines()[1] == "Master pid(s): %d(dead)" % child
        assert wsgid_main("stop", "--app-path", app) == (
            0, "No running master for %s\n" % app, "")
        if victim is not None:
            assert victim.poll() is None and not term_pending(victim.pid)
    finally:
        for p in (victim, proc):
            if p is not None:
                p.kill()
                p.communicate()


def test_stop_with_send_signal(app, children, wsgid_main):
    master, read = children.recorder(app, appfolder.MASTER)
    status, out, _ = wsgid_main("stop", "--app-path", app, "--send-signal",
                                str(int(signal.SIGUSR1)))
    assert status == 0
    assert out == "Sent signal %d (SIGUSR1) to master %d\n" % (signal.SIGUSR1, master.pid)
    wait_for(lambda: read() == ["ready", str(int(signal.SIGUSR1))], 10, what="SIGUSR1")
    assert master.poll() is None


def test_stop_with_only_stale_pids(app, children):
    stale = [children.stale_pid(), children.stale_pid(), MAX_PID]
    for pid in stale:
        forge_pid(app, appfolder.MASTER, pid)
    add_junk(app, appfolder.MASTER)
    status, out, err = wsgid_run("stop", "--app-path", app)
    assert (status, out, err) == (0, "No running master for %s\n" % app, "")
    assert sorted(pid_files(app, appfolder.MASTER)) == sorted(JUNK + ["77.pid.d"])


def test_stop_with_nothing_running(app, wsgid_main):
    assert wsgid_main("stop", "--app-path", app) == (0, "No running master for %s\n" % app, "")


def test_stop_in_current_directory(app, children):
    master = children.holder(app, appfolder.MASTER)
    status, out, _ = wsgid_run("stop", cwd=app)
    assert (status, out) == (0, "Sent signal 15 (SIGTERM) to master %d\n" % master.pid)
    assert exited(master)


def test_stop_process_gone_between_check_and_kill(app, children, monkeypatch, wsgid_main):
    stale = children.stale_pid()
    forge_pid(app, appfolder.MASTER, stale)
    monkeypatch.setattr(appfolder, "owns", lambda app, kind, pid: True)  # it dies "just after"
    assert wsgid_main("stop", "--app-path", app) == (0, "No running master for %s\n" % app, "")
    assert pid_files(app, appfolder.MASTER) == []


def test_stop_refused_by_the_os(app, children, monkeypatch, wsgid_main):
    mine, theirs = children.holder(app, appfolder.MASTER), children.holder(app, appfolder.MASTER)
    real_send = signal.pidfd_send_signal
    theirs_fd = []

    def send(pidfd, sig):
        if _pidfd_pid(pidfd) == theirs.pid:
            theirs_fd.append(pidfd)
            raise PermissionError(1, "Operation not permitted")
        return real_send(pidfd, sig)
    monkeypatch.setattr(signal, "pidfd_send_signal", send)
    status, out, err = wsgid_main("stop", "--app-path", app)
    assert status == 1 and theirs_fd
    assert out == "Sent signal 15 (SIGTERM) to master %d\n" % mine.pid
    assert one_error_line(err) == ("wsgid: error: cannot signal master %d: "
                                   "Operation not permitted" % theirs.pid)
    assert exited(mine)
    assert theirs.poll() is None
    assert "%d.pid" % theirs.pid in pid_files(app, appfolder.MASTER)


def _pidfd_pid(pidfd):
    """The pid a pidfd refers to (the kernel's ``Pid:`` line in its fdinfo)."""
    with open("/proc/self/fdinfo/%d" % pidfd) as f:
        return int(next(line for line in f if line.startswith("Pid:")).split()[1])


@pytest.mark.parametrize("command", ["stop", "restart"])
@pytest.mark.parametrize("number", ["999", "0"])
def test_invalid_signal_number(app, children, command, number, wsgid_main):
    master = children.holder(app, appfolder.MASTER)
    worker = children.holder(app, appfolder.WORKER)
    status, out, err = wsgid_main(command, "--app-path", app, "--send-signal", number)
    assert status == 1 and out == ""
    assert "--send-signal" in one_error_line(err)
    assert master.poll() is None and worker.poll() is None


def test_restart_signals_every_live_worker_only(app, children):
    master = children.holder(app, appfolder.MASTER)
    (w1, read1), (w2, read2) = (children.recorder(app, appfolder.WORKER),
                                children.recorder(app, appfolder.WORKER))
    stale = children.stale_pid()
    forge_pid(app, appfolder.WORKER, stale)
    add_junk(app, appfolder.WORKER)

    status, out, err = wsgid_run("restart", "--app-path", app)
    assert (status, err) == (0, "")
    assert out == "".join("Sent signal 15 (SIGTERM) to worker %d\n" % pid
                          for pid in sorted((w1.pid, w2.pid)))
    assert exited(w1) and exited(w2)
    assert read1() == read2() == ["ready", "15"]
    assert "%d.pid" % stale not in pid_files(app, appfolder.WORKER)
    assert master.poll() is None


def test_restart_with_send_signal(app, children, wsgid_main):
    worker, read = children.recorder(app, appfolder.WORKER)
    status, out, _ = wsgid_main("restart", "--app-path", app, "--send-signal", "1")
    assert (status, out) == (0, "Sent signal 1 (SIGHUP) to worker %d\n" % worker.pid)
    wait_for(lambda: read() == ["ready", "1"], 10, what="SIGHUP")


def test_restart_with_no_live_worker(app, children, wsgid_main):
    forge_pid(app, appfolder.WORKER, children.stale_pid())
    children.holder(app, appfolder.MASTER)
    assert wsgid_main("restart", "--app-path", app) == (
        0, "No running worker for %s\n" % app, "")
    assert pid_files(app, appfolder.WORKER) == []


def test_reload_sends_hup_to_every_live_master(app, children):
    (m1, read1), (m2, read2) = (children.recorder(app, appfolder.MASTER),
                                children.recorder(app, appfolder.MASTER))
    worker, wread = children.recorder(app, appfolder.WORKER)
    stale = children.stale_pid()
    forge_pid(app, appfolder.MASTER, stale)
    add_junk(app, appfolder.MASTER)

    # --wait 0: these masters only record their signals (a master that
    # cannot say how its reload went: test_reload_cannot_follow_a_mute_master).
    status, out, err = wsgid_run("reload", "--app-path", app, "--wait", "0")
    assert (status, err) == (0, "")
    assert out == "".join("Sent signal 1 (SIGHUP) to master %d\n" % pid
                          for pid in sorted((m1.pid, m2.pid)))
    wait_for(lambda: read1() == read2() == ["ready", "1"], 10, what="SIGHUP")
    assert m1.poll() is None and m2.poll() is None  # HUP is not a stop
    assert wread() == ["ready"]
    assert "%d.pid" % stale not in pid_files(app, appfolder.MASTER)


def test_reload_cannot_follow_a_mute_master(app, wsgid_main):
    """A master that does not say its generation: signalled, then exit 1
    with why -- a deploy script must not go on as if the reload were done."""
    with silent_master(app, answer=b'{"pid": 1}') as master:
        status, out, err = wsgid_main("reload", "--app-path", app, "--wait", "1")
    assert status == 1
    assert out == "Sent signal 1 (SIGHUP) to master %d\n" % master
    assert err == ("wsgid: error: cannot follow the reload of master %d: it did not say its "
                   "generation\n" % master)


def test_reload_with_nothing_running(app, children, wsgid_main):
    forge_pid(app, appfolder.MASTER, children.stale_pid())
    assert wsgid_main("reload", "--app-path", app) == (0, "No running master for %s\n" % app, "")
    assert pid_files(app, appfolder.MASTER) == []


@pytest.mark.parametrize("command", ["status", "stop", "restart", "reload"])
def test_pid_commands_ignore_a_broken_wsgid_json(app, command, wsgid_main):
    """A broken wsgid.json must not keep you from seeing or stopping wsgid."""
    write_json_text(app, "{broken")
    status, _, err = wsgid_main(command, "--app-path", app)
    assert (status, err) == (0, "")


@pytest.mark.parametrize("daemon", [True, False])
def test_start_fails_in_one_line_when_no_loader_accepts_the_folder(tmp_path, daemon):
    """The daemon reads the plugins after it left the terminal: its error
    still reaches ``wsgid start``, one line, exit status 1, no daemon left."""
    app = str(tmp_path / "app-folder")
    os.makedirs(os.path.join(app, "app"))
    with open(os.path.join(app, "app", "lib.py"), "w") as f:
        f.write("x = 1\n")
    status, out, err = wsgid_run("--app-path", app, *GOOD,
                                 *([] if daemon else ["--no-daemon"]))
    assert status == 1 and out == ""
    assert one_error_line(err).startswith("wsgid: error: no loader can load the app folder %s"
                                          % app)
    assert pid_files(app, appfolder.MASTER) == []
