"""The open chat sockets, listed in the admin."""

from django.contrib import admin

from chat.models import Socket


@admin.register(Socket)
class SocketAdmin(admin.ModelAdmin):
    list_display = ("conn", "user", "opened")
