"""The WSGI app the end-to-end tests serve, wrapped in wsgiref's validator."""

import hashlib
import json
import os
import resource
import time
from wsgiref.validate import validator

_KEPT = []  # what /hog allocated: kept for the worker's life

STR_KEYS = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
            "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR",
            "wsgi.url_scheme")


def _json(start_response, data, status="200 OK"):
    body = json.dumps(data).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/gen":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def chunks():
            for i in range(3):
                yield b"chunk-%d\n" % i
        return chunks()
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written;")
        return [b"returned"]
    if path == "/sha256":
        digest, size = hashlib.sha256(), 0
        stream = environ["wsgi.input"]
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
        while remaining:
            block = stream.read(min(65536, remaining))
            if not block:
                break
            digest.update(block)
            size += len(block)
            remaining -= len(block)
        return _json(start_response, {"sha256": digest.hexdigest(), "size": size,
                                      "pid": os.getpid()})
    if path == "/download":
        size = int(environ["QUERY_STRING"] or 0)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        block = bytes(range(256)) * 256

        def body():
            left = size
            while left > 0:
                yield block[:left]
                left -= len(block)
        return body()
    if path == "/endless":
        # Streams until the client goes; the mark file gets the bytes produced.
        mark = environ["QUERY_STRING"]
        start_response("200 OK", [("Content-Type", "application/octet-stream")])

        def body():
            produced = 0
            try:
                while produced < 1 << 34:
                    produced += 65536
                    time.sleep(0.001)
                    yield b"x" * 65536
            finally:
                with open(mark, "w") as f:
                    f.write(str(produced))
        return body()
    if path == "/ticks":
        # ?COUNT&SECONDS: COUNT server-sent events SECONDS apart, each carrying
        # time.monotonic() as it is yielded (the test reads the same clock).
        count, _, seconds = environ["QUERY_STRING"].partition("&")
        start_response("200 OK", [("Content-Type", "text/event-stream")])

        def events():
            for n in range(int(count)):
                if n:
                    time.sleep(float(seconds))
                yield b"data: %.6f\n\n" % time.monotonic()
        return events()
    if path == "/hog":
        # 50 MiB written (so resident, unlike calloc'd zeros) and kept.
        _KEPT.append(b"\x01" * (50 << 20))
        return _json(start_response, {"pid": os.getpid(),
                                      "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})
    if path == "/sleep":
        # ?SECONDS[&MARKFILE]: the mark file tells a test the request is in hand.
        seconds, _, mark = environ["QUERY_STRING"].partition("&")
        if mark:
            open(mark, "w").close()
        time.sleep(float(seconds or 1))
        return _json(start_response, {"slept": True, "pid": os.getpid()})
    data = {k: environ.get(k) for k in STR_KEYS}
    data["headers"] = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data["body"] = environ["wsgi.input"].read(length).decode("latin-1") if length else ""
    data["pid"] = os.getpid()
    data["multiprocess"] = environ["wsgi.multiprocess"]
    return _json(start_response, data)


app = validator(_app)
