"""The open chat sockets, kept in the database: any wsgid worker serves any
frame, so what one worker learns (a socket opened) must be where the others
find it."""

from django.conf import settings
from django.db import models


class Socket(models.Model):
    """An open WebSocket of the chat: wsgid's Connection value (a string) and
    the user who opened it. The row goes when the socket closes."""

    conn = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    opened = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return "%s (%s)" % (self.conn, self.user)
