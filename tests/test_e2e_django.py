"""The Django example project (examples/django) end to end, through a real
mongrel2 and wsgid, with the Django loader finding the project on its own
(no --wsgi-app). One mongrel2 + wsgid serves the whole module."""

import hashlib
import json
import os
import re
import urllib.parse

import pytest

from tests.support import djangosite
from tests.support.djangosite import clean_env, csrf_token, header, manage, set_cookies
from tests.support.marks import requires_mongrel2
from tests.support.waiting import wait_for

django = pytest.importorskip("django")

pytestmark = [requires_mongrel2, pytest.mark.e2e]

CONTENT_LENGTH = 8 * 1024 * 1024   # bodies over this go through mongrel2's temp file
MB = 1024 * 1024
ADMIN_PASSWORD = "wsgid-e2e-Secret-42"

# A test plugin: a pre-request filter notes whether the body came from
# mongrel2's async-upload temp file, a post-request filter reports it.
PROBE_PLUGIN = '''
_seen = {}

def pre_request(request, environ):
    _seen[request.conn_id] = "x-mongrel2-upload-done" in request.headers
    environ["wsgid.test.probe"] = True

def post_request(request, status, headers):
    async_upload = _seen.pop(request.conn_id, None)
    if async_upload is not None:
        return status, headers + [("X-Async-Upload", "yes" if async_upload else "no")]
'''


def multipart(fields, files, boundary="wsgid-e2e-boundary-7MA4YWxkTrZu0gW"):
    parts = []
    for name, value in fields.items():
        parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                      % (boundary, name, value)).encode())
    for name, (filename, data) in files.items():
        parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                      'Content-Type: application/octet-stream\r\n\r\n'
                      % (boundary, name, filename)).encode())
        parts.append(data)
        parts.append(b"\r\n")
    parts.append(("--%s--\r\n" % boundary).encode())
    return b"".join(parts), "multipart/form-data; boundary=%s" % boundary


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    m2, app_path = djangosite.prepare(tmp_path_factory.mktemp("django-e2e"),
                                      content_length=CONTENT_LENGTH, users=())
    with open(os.path.join(app_path, "plugins", "probe.py"), "w") as f:
        f.write(PROBE_PLUGIN)
    manage(app_path, "createsuperuser", "--noinput", "--username", "admin",
           "--email", "admin@example.org",
           env=clean_env(DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD))
    with djangosite.serving(m2, app_path) as site:
        yield site


def test_home_page_through_the_django_loader(site):
    status, headers, body = site.request("GET", "/")
    assert status == 200
    assert header(headers, "X-Wsgid")                      # answered by wsgid
    assert b"Hello, stranger!" in body
    # SITE_TITLE comes from django.json, merged by the Django loader.
    assert b"<title>Django on mongrel2 + wsgid</title>" in body
    # The example's plugins/timing.py post-request filter added its header.
    assert header(headers, "X-Response-Time").endswith(" ms")
    assert "sessionid" in set_cookies(headers)


def test_log_names_the_loader(site):
    log = site.log()
    assert "Application loaded by DjangoLoader" in log
    assert "Django settings module: mysite.settings" in log
    assert "Applied django.json to the Django settings: ALLOWED_HOSTS, SITE_TITLE" in log
    assert "Django %s" % django.get_version() in log
    assert "Request filter post_request: " in log and "timing.py" in log
    assert log.count("ready to serve requests") >= 2


def test_django_json_extends_lists(site):
    # ALLOWED_HOSTS from settings.py still work, and django.json added one.
    for host in ("localhost", "localhost.localdomain"):
        status, _, _ = site.request("GET", "/", headers={"Host": "%s:%d" % (host, site.port)})
        assert status == 200, host
    status, _, _ = site.request("GET", "/", headers={"Host": "evil.example:%d" % site.port})
    assert status == 400


def test_form_post_with_csrf_and_session(site):
    status, headers, body = site.request("GET", "/hello/")
    assert status == 200
    cookies = set_cookies(headers)
    token = csrf_token(body)
    assert cookies["csrftoken"]

    form = urllib.parse.urlencode({"name": "Ada", "csrfmiddlewaretoken": token})
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}

    # Without the token: refused by Django's CSRF protection.
    status, _, _ = site.request("POST", "/hello/", urllib.parse.urlencode({"name": "Eve"}),
                                form_type, cookies={"csrftoken": cookies["csrftoken"]})
    assert status == 403

    status, headers, _ = site.request("POST", "/hello/", form, form_type,
                                      cookies={"csrftoken": cookies["csrftoken"]})
    assert status == 302
    assert header(headers, "Location") == "/"
    session = set_cookies(headers)["sessionid"]

    # The session (in SQLite) is seen by whichever worker answers next.
    visits = []
    for _ in range(4):
        status, _, body = site.request("GET", "/", cookies={"sessionid": session})
        assert status == 200
        assert b"Hello, Ada!" in body
        visits.append(int(re.search(rb'id="visits">(\d+)<', body).group(1)))
    assert visits == [1, 2, 3, 4]


@pytest.mark.parametrize("size_mb, async_upload", [(5, "no"), (50, "yes")])
def test_multipart_upload_sha256(site, size_mb, async_upload):
    status, headers, body = site.request("GET", "/upload/")
    assert status == 200
    cookie = set_cookies(headers)["csrftoken"]
    data = os.urandom(size_mb * MB)
    payload, content_type = multipart({"csrfmiddlewaretoken": csrf_token(body)},
                                      {"file": ("blob-%dmb.bin" % size_mb, data)})
    assert (len(payload) > CONTENT_LENGTH) == (async_upload == "yes")
    status, headers, body = site.request(
        "POST", "/upload/", payload,
        {"Content-Type": content_type, "Accept": "application/json"},
        cookies={"csrftoken": cookie}, timeout=120)
    assert status == 200, body[:500]
    result = json.loads(body)
    assert result == {"name": "blob-%dmb.bin" % size_mb, "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()}
    assert header(headers, "X-Async-Upload") == async_upload
    # wsgid removed mongrel2's temp file after the request.
    wait_for(lambda: not os.listdir(site.m2.upload_dir()), 5, what="upload temp file removed")


def test_admin_login_page_and_its_css_from_mongrel2(site):
    status, headers, body = site.request("GET", "/admin/login/?next=/admin/")
    assert status == 200
    assert header(headers, "X-Wsgid")
    assert b"csrfmiddlewaretoken" in body
    stylesheets = re.findall(rb'<link rel="stylesheet" href="([^"]+\.css)"', body)
    assert b"/static/admin/css/base.css" in stylesheets
    for href in stylesheets:
        status, css_headers, css = site.request("GET", href.decode())
        assert status == 200, href
        assert header(css_headers, "X-Wsgid") is None      # served by mongrel2's Dir route
        assert header(css_headers, "Content-Type").startswith("text/css")
        on_disk = os.path.join(site.app_path, "static", href.decode()[len("/static/"):])
        with open(on_disk, "rb") as f:
            assert css == f.read()

    # And the admin works: log in with the CSRF token, see the index.
    cookies = set_cookies(headers)
    form = urllib.parse.urlencode({"username": "admin", "password": ADMIN_PASSWORD,
                                   "next": "/admin/", "csrfmiddlewaretoken": csrf_token(body)})
    status, headers, _ = site.request("POST", "/admin/login/?next=/admin/", form,
                                      {"Content-Type": "application/x-www-form-urlencoded"},
                                      cookies={"csrftoken": cookies["csrftoken"]})
    assert status == 302 and header(headers, "Location") == "/admin/"
    logged_in = set_cookies(headers)
    status, _, body = site.request("GET", "/admin/", cookies={
        "sessionid": logged_in["sessionid"], "csrftoken": logged_in.get("csrftoken",
                                                                        cookies["csrftoken"])})
    assert status == 200
    assert b"Site administration" in body
