"""The broker master's socket calls on its hot path: take everything a
socket holds, send one message, without a Python exception for "nothing
more" (``zmq.Again``: a few microseconds each, on every wake-up).

These are the plain pyzmq versions. Where the compiled helper
``wsgid._zmqcalls`` was built (setup.py's ``HELPERS``), the same functions
call libzmq straight from C -- the library pyzmq loaded, found by address,
never a second copy -- and replace these; without it (plain Python, no C
compiler, a libzmq that cannot be found) these serve. Both take pyzmq
sockets and behave the same; ``tests/test_zmqcalls.py`` runs them both.
"""

import zmq


def recv_all(sock, out):
    """Append to ``out`` every frame waiting on ``sock`` (each mongrel2
    message is one frame); return how many."""
    return _drain(sock.recv, out)


def recv_all_multipart(sock, out):
    """Append to ``out`` every message waiting on ``sock``, each a list of
    frames; return how many."""
    return _drain(sock.recv_multipart, out)


def _drain(recv, out):
    count = 0
    try:
        while True:
            out.append(recv(zmq.NOBLOCK))
            count += 1
    except zmq.Again:
        return count


def send_parts(sock, parts):
    """Send ``parts`` (bytes) as one message without waiting; False when
    the socket cannot take it (full, or a ROUTER_MANDATORY peer gone)."""
    try:
        sock.send_multipart(parts, zmq.NOBLOCK)
        return True
    except zmq.ZMQError:
        return False


#: The plain versions, whichever serve (the tests run both).
PLAIN = {"recv_all": recv_all, "recv_all_multipart": recv_all_multipart,
         "send_parts": send_parts}
COMPILED = False
try:
    from wsgid._zmqcalls import recv_all, recv_all_multipart, send_parts  # noqa: F811
    COMPILED = True
except ImportError:
    pass
