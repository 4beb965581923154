"""Views of the example project: a page using the session, a form with CSRF
protection that writes the session (stored in SQLite), and a file upload that
answers the SHA-256 of what it received."""

import hashlib

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import redirect, render

from mysite.forms import NameForm, UploadForm


def site_title(request):
    """Template context processor: the SITE_TITLE setting (see django.json)."""
    return {"site_title": settings.SITE_TITLE}


def home(request):
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    return render(request, "mysite/home.html", {
        "name": request.session.get("name"),
        "visits": visits,
    })


def hello(request):
    if request.method == "POST":
        form = NameForm(request.POST)
        if form.is_valid():
            request.session["name"] = form.cleaned_data["name"]
            return redirect("home")
    else:
        form = NameForm()
    return render(request, "mysite/hello.html", {"form": form})


def upload(request):
    result = None
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            uploaded = form.cleaned_data["file"]
            digest = hashlib.sha256()
            for chunk in uploaded.chunks():
                digest.update(chunk)
            result = {"name": uploaded.name, "size": uploaded.size,
                      "sha256": digest.hexdigest()}
            if "application/json" in request.headers.get("Accept", ""):
                return JsonResponse(result)
    else:
        form = UploadForm()
    return render(request, "mysite/upload.html", {"form": form, "result": result})
