"""The smallest WSGI application: serve it with

    wsgid --app-path examples/hello --wsgi-app hello:application \
          --recv tcp://127.0.0.1:9997 --send tcp://127.0.0.1:9996 --no-daemon --stdout
"""


def application(environ, start_response):
    body = b"Hello from wsgid!\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
