"""The WebSocket test app: a WSGI app and an echo/broadcast handler
(--websocket-handler ws_app:handler).

Every accepted connection is appended to ``conns.txt`` beside this module,
every close to ``closes.txt`` (``conn code``), so that any worker can
broadcast and the tests can read what the handler was told. A text message
``cmd:...`` is a command (see :meth:`Handler.message`); anything else is
echoed.
"""

import fcntl
import json
import os
import time
from urllib.parse import parse_qs

from wsgid import websocket

HERE = os.path.dirname(os.path.abspath(__file__))
CONNS = os.path.join(HERE, "conns.txt")
CLOSES = os.path.join(HERE, "closes.txt")


def _append(path, line):
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line + "\n")


def _lines(path):
    try:
        with open(path) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


class Handler:
    def open(self, conn, environ):
        path = environ["PATH_INFO"]
        if path == "/refuse":
            raise websocket.Refuse(403)
        if path == "/refuse-int":
            return 401
        if path == "/boom":
            raise RuntimeError("open failed")
        query = parse_qs(environ["QUERY_STRING"])
        seen = {key: environ.get(key) for key in (
            "REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "HTTP_COOKIE", "REMOTE_ADDR")}
        with open(os.path.join(HERE, "environ-%s.json" % conn.conn_id), "w") as f:
            json.dump(seen, f)  # any worker may serve the next message
        _append(CONNS, conn)
        if "protocol" in query:
            offered = environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "").split(",")
            return offered[-1].strip()
        return None

    def message(self, conn, data):
        if not isinstance(data, str) or not data.startswith("cmd:"):
            websocket.send(conn, data)
            return
        _, name, arg = (data + ":").split(":", 2)
        arg = arg[:-1]
        if name == "whoami":
            websocket.send(conn, conn)
        elif name == "environ":
            with open(os.path.join(HERE, "environ-%s.json" % conn.conn_id)) as f:
                websocket.send(conn, f.read())
        elif name == "close":
            websocket.close(conn, int(arg), "bye")
        elif name == "broadcast":
            websocket.send(_lines(CONNS), arg)
        elif name == "send":  # send:CONN:TEXT, to a stored connection
            target, text = arg.split(" ", 1)
            websocket.send(websocket.Connection(target), text)
        elif name == "boom":
            raise RuntimeError("message failed")
        elif name == "hold":  # hold:MARKFILE: say so (this pid), then take long
            with open(arg + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(arg + ".tmp", arg)
            time.sleep(30)
            websocket.send(conn, "held")
        elif name == "seq":  # seq:N: the order seen, kept in seq-CONN_ID.txt
            _append(os.path.join(HERE, "seq-%d.txt" % conn.conn_id), arg)
            websocket.send(conn, "seq:%s:%d" % (arg, os.getpid()))

    def close(self, conn, code):
        _append(CLOSES, "%s %d" % (conn, code))


handler = Handler()


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/seq/"):  # /seq/CONN_ID: what the handler saw, in order
        body = " ".join(_lines(os.path.join(HERE, "seq-%s.txt" % path[5:])))
    elif path == "/closes":
        body = "\n".join(" ".join(pair) for pair in zip(_lines(CLOSES)[::2], _lines(CLOSES)[1::2]))
    elif path == "/broadcast":  # from an ordinary view
        websocket.send(_lines(CONNS), environ["QUERY_STRING"])
        body = "sent"
    else:
        body = "ok"
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
