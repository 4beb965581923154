"""A file that grows while mongrel2 is about to send it: /grow/NAME serves
NAME from the folder ROOT (files_root.py beside this module) with
wsgi.file_wrapper, and stops mongrel2 (pid MONGREL2) meanwhile. The file's
close(), which the worker calls after it checked the file and sent the head
and the hand-off, appends GROWTH to it and lets mongrel2 go on: mongrel2
then opens a file longer than the Content-Length the worker sent. Anything
else gets "hello"."""

import io
import os
import signal

from files_root import MONGREL2, ROOT  # noqa: E402 (written by the test)

GROWTH = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"


class GrowingFile(io.FileIO):
    def close(self):
        if not self.closed:
            with open(self.name, "ab") as f:
                f.write(GROWTH)
            os.kill(MONGREL2, signal.SIGCONT)
        super().close()


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/grow/"):
        f = GrowingFile(os.path.join(ROOT, path[len("/grow/"):]))
        os.kill(MONGREL2, signal.SIGSTOP)
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](f)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello\n"]
