"""The chat of the example project: a page (/chat/) whose users see each
other's messages live, over WebSockets served by wsgid's workers (the
handler is in :mod:`chat.websocket`)."""
