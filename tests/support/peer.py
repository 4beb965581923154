"""The test plays mongrel2: ZeroMQ sockets bound where wsgid connects."""

import time

import zmq

from tests.support.mongrel2 import free_ports, wait_for


class Peer:
    """Binds PUSH (requests out) and SUB (replies in) like mongrel2 does.

    A bound SUB sends its subscription to a new peer only when its own
    thread uses the socket, so every wait here keeps polling it."""

    url = None  # no HTTP side: nothing to wait for an answer on

    def __init__(self, chroot=None, upload_template=None):
        self.chroot = chroot  # mongrel2's chroot, given to wsgid when not None
        # mongrel2's upload.temp_store, given to wsgid when not None.
        self.upload_template = upload_template
        self.context = zmq.Context()
        self.push = self.context.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.setsockopt(zmq.RCVHWM, 0)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.push_port, self.sub_port = free_ports(2)
        self.push.bind("tcp://127.0.0.1:%d" % self.push_port)
        self.sub.bind("tcp://127.0.0.1:%d" % self.sub_port)
        self.received = []   # (conn_id bytes, body) in arrival order

    @property
    def request_spec(self):
        return "tcp://127.0.0.1:%d" % self.push_port

    @property
    def reply_spec(self):
        return "tcp://127.0.0.1:%d" % self.sub_port

    def wsgid_args(self):
        """How wsgid finds the upload files."""
        args = ["--mongrel2-chroot", str(self.chroot)] if self.chroot else []
        if self.upload_template:
            args += ["--mongrel2-upload-dir", self.upload_template]
        return args

    def pump(self, timeout_ms=0):
        """Take every reply now available (waiting up to ``timeout_ms`` for one)."""
        got = 0
        while self.sub.poll(timeout_ms):
            msg = self.sub.recv()
            _, ids, body = msg.split(b" ", 2)
            self.received.append((ids.split(b":", 1)[1].rstrip(b","), body))
            got += 1
            timeout_ms = 0
        return got

    def send(self, data, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.push.send(data, zmq.NOBLOCK)
            except zmq.Again:
                if time.monotonic() > deadline:
                    raise TimeoutError("no worker took the message") from None
                self.pump(5)

    def replies_for(self, conn_id, timeout=10.0):
        """Wait for the reply to ``conn_id`` to end (a close, or a complete
        response): return its messages' bodies."""
        conn_id = conn_id if isinstance(conn_id, bytes) else str(conn_id).encode()

        def done():
            self.pump(20)
            bodies = [b for c, b in self.received if c == conn_id]
            if bodies and (bodies[-1] == b"" or _complete(b"".join(bodies))):
                return bodies
            return None
        return wait_for(done, timeout, interval=0, what="reply to connection %s" % conn_id)

    def replies(self, timeout=5.0):
        """(ids, body) of the replies until one closes the connection (empty
        body) or is a whole 200 that keeps it open; fewer after ``timeout``."""
        out = []
        while self.sub.poll(int(timeout * 1000)):
            _, ids, body = self.sub.recv().split(b" ", 2)
            out.append((ids, body))
            if body == b"":
                return out
            if body.startswith(b"HTTP/1.1 200") and b"Connection: close" not in body:
                return out
        return out

    def forget(self, conn_id):
        conn_id = conn_id if isinstance(conn_id, bytes) else str(conn_id).encode()
        self.received = [(c, b) for c, b in self.received if c != conn_id]

    def close(self):
        self.push.close(0)
        self.sub.close(0)
        self.context.term()


def _complete(data):
    """A full HTTP response with a Content-Length body."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def status_of(bodies):
    return bodies[0][9:12] if bodies and bodies[0].startswith(b"HTTP/") else None
