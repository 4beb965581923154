"""A one-module Django site serving files with FileResponse (which uses
wsgi.file_wrapper): /files/NAME from the folder named in files_root.py
beside this module, and / a small page."""

import os

import django
from django.conf import settings

settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
                   SECRET_KEY="wsgid-tests-only", MIDDLEWARE=[], INSTALLED_APPS=[])
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402 (after setup)
from django.http import FileResponse, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from files_root import ROOT  # noqa: E402 (written by the test)


def serve_file(request, name):
    return FileResponse(open(os.path.join(ROOT, name), "rb"))


def hello(request):
    return HttpResponse(b"hello\n", content_type="text/plain")


urlpatterns = [path("files/<str:name>", serve_file), path("", hello)]
app = get_wsgi_application()
