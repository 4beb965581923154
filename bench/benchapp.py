"""The hello-world app of the throughput runs (gateway.py, dispatch.py),
copied into each run's app folder as ``benchapp.py``. The /upload path
answers the sha256 of the body, read in 64 KiB blocks."""

import hashlib

BODY = b"Hello, world!\n"


def app(environ, start_response):
    if environ["PATH_INFO"] == "/upload":
        read = environ["wsgi.input"].read
        digest = hashlib.sha256()
        size = 0
        while True:
            block = read(65536)
            if not block:
                break
            size += len(block)
            digest.update(block)
        out = ("%s %d\n" % (digest.hexdigest(), size)).encode("ascii")
    else:
        out = BODY
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(out)))])
    return [out]
