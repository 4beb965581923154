"""The smallest WSGI application: serve it with

    wsgid --app-path examples/hello --wsgi-app hello:application \
          --recv ipc:///srv/m2/handlers/send.ipc --send ipc:///srv/m2/handlers/recv.ipc \
          --no-daemon --stdout

(the handler sockets of examples/hello/mongrel2.conf.in, mongrel2 chrooted in /srv/m2)
"""


def application(environ, start_response):
    body = b"Hello from wsgid!\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
