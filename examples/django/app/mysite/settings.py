"""Settings of the example project.

The project lives in a wsgid app folder::

    <app>/app/manage.py
    <app>/app/mysite/settings.py   (this file)
    <app>/app/chat/                the chat (/chat/) and its WebSocket handler
    <app>/db.sqlite3               sessions, users, open chat sockets
                                   (created by ``manage.py migrate``)
    <app>/static/                  ``manage.py collectstatic`` puts the admin's files here;
                                   mongrel2 serves them (a Dir route on /static/)
    <app>/secret_key               made on first use, readable by its owner only
    <app>/django.json              overrides merged in by wsgid's Django loader

so everything it writes stays in the app folder.
"""

import os
from pathlib import Path

CODE_DIR = Path(os.path.abspath(__file__)).parent.parent   # <app>/app
APP_FOLDER = CODE_DIR.parent                                # <app>


def _secret_key(path=APP_FOLDER / "secret_key"):
    """The key in ``path``; made there, atomically, on first use."""
    from django.core.management.utils import get_random_secret_key

    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    tmp = path.with_name("%s.%d" % (path.name, os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(get_random_secret_key())
    try:
        os.link(tmp, path)   # the first process to get here wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _secret_key()
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

# Shown on every page; django.json overrides it (a demo of wsgid's django.json).
SITE_TITLE = "Example site"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "mysite",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "mysite.views.site_title",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": APP_FOLDER / "db.sqlite3",
        # Several wsgid workers write sessions: wait for the lock, do not fail.
        "OPTIONS": {"timeout": 20},
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Served by mongrel2, not by Django: mongrel2.conf has a Dir route for /static/.
STATIC_URL = "/static/"
STATIC_ROOT = APP_FOLDER / "static"

# Uploads bigger than this go to a temporary file, not to memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2621440

# The chat's WebSocket handler (chat/websocket.py): wsgid's Django loader
# finds it here, as --websocket-handler would name it.
WSGID_WEBSOCKET_HANDLER = "chat.websocket:handler"
LOGIN_REDIRECT_URL = "/chat/"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "WARNING"}},
}
