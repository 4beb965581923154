"""URLs of the example project."""

from django.contrib import admin
from django.urls import include, path

from mysite import views

urlpatterns = [
    path("", views.home, name="home"),
    path("hello/", views.hello, name="hello"),
    path("upload/", views.upload, name="upload"),
    path("", include("chat.urls")),
    path("admin/", admin.site.urls),
]
