"""A one-module Django site serving files with FileResponse (which uses
wsgi.file_wrapper): /files/NAME from the folder named in files_root.py
beside this module; /blocks/NAME, the same file in 64 KiB blocks of a
plain iterator (no file_wrapper); and / a small page."""

import os

import django
from django.conf import settings

settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
                   SECRET_KEY="wsgid-tests-only", MIDDLEWARE=[], INSTALLED_APPS=[])
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402 (after setup)
from django.http import FileResponse, HttpResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from files_root import ROOT  # noqa: E402 (written by the test)


def serve_file(request, name):
    return FileResponse(open(os.path.join(ROOT, name), "rb"))


def serve_blocks(request, name):
    path = os.path.join(ROOT, name)

    def blocks():
        with open(path, "rb") as f:
            yield from iter(lambda: f.read(65536), b"")
    response = StreamingHttpResponse(blocks(), content_type="application/octet-stream")
    response["Content-Length"] = os.path.getsize(path)
    return response


def hello(request):
    return HttpResponse(b"hello\n", content_type="text/plain")


urlpatterns = [path("files/<str:name>", serve_file), path("blocks/<str:name>", serve_blocks),
               path("", hello)]
app = get_wsgi_application()
