"""The Django example project (examples/django) served for real: its app
folder inside a real mongrel2's chroot, migrated, its static files collected
(mongrel2 serves them), wsgid in front with the Django loader finding the
project on its own; and what its tests do with it (log in, cookies, CSRF
tokens, the chat's WebSocket)."""

import contextlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import urllib.parse

from tests.support import ROOT
from tests.support.mongrel2 import Mongrel2, wait_for
from tests.support.wsgid import Wsgid, wsgid_command

EXAMPLE = os.path.join(ROOT, "examples", "django")
USERS_PASSWORD = "wsgid-e2e-Chat-42"   # the chat's demo users' (manage.py chatusers)


def clean_env(**extra):
    env = dict(os.environ, **extra)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def manage(app_path, *args, env=None):
    proc = subprocess.run([sys.executable, os.path.join("app", "manage.py"), *args],
                          cwd=app_path, env=env or clean_env(), capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, "manage.py %s: %s%s" % (args, proc.stdout, proc.stderr)
    return proc


def prepare(base, content_length=20480, users=("alice", "bob")):
    """A mongrel2 (not started) whose chroot holds the example's app folder
    ``site``, migrated, with its static files collected and the chat's
    ``users`` (password :data:`USERS_PASSWORD`): (m2, app_path)."""
    m2 = Mongrel2(str(base / "m2"), content_length=content_length, static_base="site/static/")
    app_path = os.path.join(m2.chroot, "site")
    subprocess.run(wsgid_command("init", "--app-path", app_path), cwd=ROOT, check=True,
                   capture_output=True, timeout=30)
    shutil.copytree(os.path.join(EXAMPLE, "app"), os.path.join(app_path, "app"),
                    dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(EXAMPLE, "django.json"), app_path)
    shutil.copy(os.path.join(EXAMPLE, "plugins", "timing.py"), os.path.join(app_path, "plugins"))
    manage(app_path, "migrate", "--noinput")
    manage(app_path, "collectstatic", "--noinput")
    if users:
        manage(app_path, "chatusers", "--password", USERS_PASSWORD, *users)
    return m2, app_path


@contextlib.contextmanager
def serving(m2, app_path, *extra, workers=2):
    """mongrel2 and wsgid (``workers`` workers, ``extra`` options) serving
    the app folder: yields a :class:`Site`."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_no_settings_module())
        m2.start()
        stack.callback(m2.stop)
        # No --wsgi-app, no --django: the loader must find the project itself.
        # No --stdout: the log goes to <app>/logs/wsgid.log.
        proc = Wsgid(m2, app_path, "--workers", str(workers), *extra, stdout=False)
        stack.callback(proc.stop)
        site = Site(m2, app_path, proc)
        try:
            proc.start(ready_path="/")
            wait_for(lambda: site.log().count("ready to serve") >= workers, 30,
                     what="the workers ready")
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError("%s\n%s" % (exc, site.log())) from None
        yield site


@contextlib.contextmanager
def _no_settings_module():
    """wsgid's Django loader, not the environment, names the settings."""
    saved = os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    try:
        yield None
    finally:
        if saved is not None:
            os.environ["DJANGO_SETTINGS_MODULE"] = saved


class Site:
    def __init__(self, m2, app_path, proc):
        self.m2, self.app_path, self.proc = m2, app_path, proc
        self.port = m2.http_port

    def request(self, method, path, body=None, headers=None, cookies=None, timeout=60):
        """(status, [(name, value), ...], body)"""
        headers = dict(headers or {})
        if cookies:
            headers["Cookie"] = cookie_header(cookies)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def log(self):
        try:
            with open(os.path.join(self.app_path, "logs", "wsgid.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def login(self, username, password=USERS_PASSWORD, path="/accounts/login/"):
        """Log in through the chat's login page: the cookies (sessionid, csrftoken)."""
        status, headers, body = self.request("GET", path)
        assert status == 200, body[:300]
        cookies = set_cookies(headers)
        form = urllib.parse.urlencode({"username": username, "password": password,
                                       "csrfmiddlewaretoken": csrf_token(body)})
        status, headers, body = self.request(
            "POST", path, form, {"Content-Type": "application/x-www-form-urlencoded"},
            cookies=cookies)
        assert status == 302, (status, body[:300])
        cookies.update(set_cookies(headers))
        assert cookies.get("sessionid"), headers
        return cookies

    def ws_url(self, path="/chat/ws"):
        return "ws://127.0.0.1:%d%s" % (self.port, path)


def cookie_header(cookies):
    return "; ".join("%s=%s" % kv for kv in cookies.items())


def header(headers, name):
    values = [v for k, v in headers if k.lower() == name.lower()]
    return values[0] if values else None


def set_cookies(headers):
    found = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            key, _, rest = value.partition("=")
            found[key.strip()] = rest.split(";")[0]
    return found


def csrf_token(html):
    return re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1).decode()
