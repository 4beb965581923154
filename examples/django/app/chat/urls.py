"""URLs of the chat: the page, and the login and logout pages it sends
anonymous users to. The WebSocket path (/chat/ws) is not here: mongrel2
hands its handshake and frames to wsgid, which calls the WebSocket handler
(settings.WSGID_WEBSOCKET_HANDLER), not a view."""

from django.contrib.auth import views as auth_views
from django.urls import path

from chat import views

urlpatterns = [
    path("chat/", views.room, name="chat"),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="chat/login.html"),
         name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
