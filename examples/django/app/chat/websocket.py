"""The chat's WebSocket handler, named in settings.WSGID_WEBSOCKET_HANDLER.

wsgid calls it once per event, in whichever worker takes the event: no
worker holds a socket, so everything the handler knows between events is in
the database (:class:`chat.models.Socket`). Around each event the database
connections are handled as Django's request signals would handle them
(``close_old_connections``), since no request starts or finishes here.
"""

import contextlib
import json
from importlib import import_module
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user
from django.core.exceptions import DisallowedHost
from django.db import close_old_connections
from django.http import HttpRequest, parse_cookie

from chat.models import Socket
from wsgid import websocket

PATH = "/chat/ws"
MAX_CHARS = 2000          # longer messages are cut (the whole frame is --websocket-max-message)
UNSUPPORTED_DATA = 1003   # RFC 6455: a binary message to a text-only endpoint


@contextlib.contextmanager
def event():
    """As Django's request_started and request_finished signals do: no
    connection past its CONN_MAX_AGE or broken is used, or kept."""
    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()


def handshake_user(environ):
    """The user whose session cookie came with the handshake (AnonymousUser
    without one); DisallowedHost when the Host header is not in
    ALLOWED_HOSTS, or a browser's Origin is another site (a page elsewhere
    opening a socket with this site's cookies)."""
    request = HttpRequest()
    request.META = environ
    host = request.get_host()
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None and urlsplit(origin).netloc != host:
        raise DisallowedHost("WebSocket from origin %r to %r" % (origin, host))
    cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(cookies.get(settings.SESSION_COOKIE_NAME))
    return get_user(request)


class ChatHandler:
    def open(self, conn, environ):
        if environ.get("PATH_INFO") != PATH:
            raise websocket.Refuse(404)
        with event():
            try:
                user = handshake_user(environ)
            except DisallowedHost:
                raise websocket.Refuse(403) from None
            if not user.is_authenticated:
                raise websocket.Refuse(403)
            # Rows of an earlier generation of this front-end (a mongrel2 or a
            # wsgid since restarted, which could not report their closes) name
            # sockets that are gone: send() would drop them anyway.
            Socket.objects.filter(conn__startswith="%d:" % conn.front).exclude(
                conn__startswith="%d:%d:" % (conn.front, conn.generation)).delete()
            Socket.objects.create(conn=conn, user=user)

    def message(self, conn, data):
        with event():
            if not isinstance(data, str):
                websocket.close(conn, UNSUPPORTED_DATA, "text messages only")
                return
            text = data.strip()[:MAX_CHARS]
            sender = Socket.objects.filter(conn=conn).values_list("user__username",
                                                                  flat=True).first()
            if not text or sender is None:
                return
            everyone = list(Socket.objects.values_list("conn", flat=True))
            # One call: wsgid packs up to 128 sockets in each message to mongrel2.
            websocket.send(everyone, json.dumps({"user": sender, "text": text}))

    def close(self, conn, code):
        with event():
            Socket.objects.filter(conn=conn).delete()


handler = ChatHandler()
