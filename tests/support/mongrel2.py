"""A real mongrel2 on 127.0.0.1 for tests and benchmarks.

Each instance gets free loopback ports and a fresh chroot, is loaded with
``m2sh load`` and started directly, so that it can be stopped by pid.

With ``shared_uploads`` (a host folder) mongrel2 writes its upload files
there, at the same absolute path as on the host: the folder is bind-mounted
into its chroot, in a mount namespace of its own (root only), so the mount
goes away with the process. wsgid then runs without --mongrel2-chroot.

With ``ipc`` the handler sockets are unix sockets in the chroot's run/
folder, as the docs deploy them (mongrel2 resolves an ``ipc://`` path inside
its chroot: it binds ``ipc:///run/send.ipc``, wsgid connects to
``ipc://CHROOT/run/send.ipc``); otherwise TCP ports on 127.0.0.1, quicker
to set up.

``xrequests`` lists extended-reply plugins to load (:data:`SENDFILE`); see
:data:`TASKMAIN_SHIM` for what Debian's build of them needs. (The sendfile
plugin also needs the /static/ Dir route: mongrel2 1.12 reads the block size
it sends files in only when it creates a Dir.)
"""

import os
import signal
import socket
import subprocess
import time
import uuid as uuids

SENDFILE = "/usr/lib/mongrel2/filters/sendfile.so"  # Debian's sendfile extended reply
SERVER_UUID = "f400bf85-4538-4f7a-8908-67e313d515c2"
SEND_IDENT = "34f9ceee-cd52-4b7f-b197-88bf2f0ec378"  # a fixed one, for tests that need it

CONFIG = """
app = Handler(send_spec='{m2_send_spec}',
              send_ident='{send_ident}',
              recv_spec='{m2_recv_spec}', recv_ident='{recv_ident}',
              protocol='{protocol}')

main = Server(
    uuid="{uuid}", name="test",
    chroot="{chroot}",
    access_log="/logs/access.log", error_log="/logs/error.log",
    pid_file="/run/mongrel2.pid", default_host="localhost",
    bind_addr="127.0.0.1", port={http_port},
    hosts=[Host(name="localhost", routes={{
        '{route}': app,
        '/static/': Dir(base='{static_base}', index_file='index.html',
                        default_ctype='text/plain')}})]{xrequests})

settings = {{"server.daemonize": 0, "zeromq.threads": 1,
            "limits.content_length": {content_length},
            "upload.temp_store": "{upload_template}",
            "upload.temp_store_mode": "0644"{extra}}}
servers = [main]
"""


# Debian's mongrel2 plugins (the sendfile one) each carry a copy of mongrel2's
# core, whose libtask main() calls taskmain(): the mongrel2 binary exports no
# symbol, and the plugins are linked with BIND_NOW, so dlopen() refuses them
# ("undefined symbol: taskmain"). Preloading a library that defines it (never
# called) lets them load.
TASKMAIN_SHIM = "void taskmain(int argc, char **argv) { (void)argc; (void)argv; }\n"


def taskmain_shim(folder):
    """Build the taskmain shim in ``folder`` (needs a C compiler); its path."""
    source, library = os.path.join(folder, "taskmain.c"), os.path.join(folder, "taskmain.so")
    with open(source, "w") as f:
        f.write(TASKMAIN_SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", library, source], check=True)
    return library


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count):
    """``count`` distinct free ports (sockets held open together, so the
    kernel cannot hand out one twice)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for(condition, timeout, interval=0.02, what="condition"):
    """Poll ``condition`` until it returns a true value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Mongrel2:
    """``uuid``: the server's UUID. ``send_ident``: its handler's send_ident
    (the first field of each request). By default a fresh one at each start,
    with ``recv_ident`` equal to it, as docs/deployment.rst says: mongrel2
    then subscribes to replies carrying that start's UUID only, so a reply
    to a request of an earlier start never reaches it. A fixed one is given
    with ``recv_ident=''`` (subscribed to every reply): wsgid alone must
    then tell the starts apart."""

    def __init__(self, base_dir, protocol="json", content_length=20480, route="/",
                 settings=None, static_base="static/", shared_uploads=None, xrequests=(),
                 uuid=SERVER_UUID, send_ident=None, ipc=False):
        self.base = os.path.abspath(base_dir)
        self.chroot = os.path.join(self.base, "chroot")
        self.protocol = protocol
        self.content_length = content_length
        self.route = route
        self.settings = settings or {}
        self.static_base = static_base  # the /static/ Dir route's folder, inside the chroot
        self.shared_uploads = shared_uploads and os.path.abspath(shared_uploads)
        self.xrequests = xrequests  # paths of mongrel2's extended-reply plugins (.so)
        self.uuid, self.fixed_ident = uuid, send_ident
        self.send_ident = send_ident  # this start's, once started
        self.http_port, self.send_port, self.recv_port = free_ports(3)
        self.ipc = ipc
        self.tcp_host = "127.0.0.1"  # where TCP handler sockets are bound
        self.proc = None

    def _spec(self, name, port, root):
        """A handler socket's address as seen from ``root`` ("" for the host)."""
        if self.ipc:
            return "ipc://%s/run/%s.ipc" % (root, name)
        return "tcp://%s:%d" % (self.tcp_host, port)

    @property
    def request_spec(self):
        """Where wsgid PULLs requests from (mongrel2's send_spec, --recv)."""
        return self._spec("send", self.send_port, self.chroot)

    @property
    def reply_spec(self):
        """Where wsgid sends replies to (mongrel2's recv_spec, --send)."""
        return self._spec("recv", self.recv_port, self.chroot)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.http_port

    def upload_dir(self):
        return self.shared_uploads or os.path.join(self.chroot, "tmp")

    @property
    def upload_template(self):
        """mongrel2's upload.temp_store (a path inside its chroot)."""
        return (self.shared_uploads or "/tmp") + "/upload.XXXXXX"

    def wsgid_args(self):
        """How wsgid finds the upload files."""
        chroot = [] if self.shared_uploads else ["--mongrel2-chroot", self.chroot]
        return chroot + ["--mongrel2-upload-dir", self.upload_template]

    def reported_path(self, host_path):
        """The path mongrel2 would report for a file at ``host_path``."""
        if self.shared_uploads:
            return host_path
        return "/" + os.path.relpath(host_path, self.chroot)

    def _xrequests(self):
        if not self.xrequests:
            return ""
        return ",\n    xrequests=[%s]" % ", ".join(
            "Xrequest(name='%s', settings={})" % path for path in self.xrequests)

    def write_config(self):
        for sub in ("logs", "run", "tmp", "static"):
            os.makedirs(os.path.join(self.chroot, sub), exist_ok=True)
        if self.shared_uploads:
            os.makedirs(self.shared_uploads, exist_ok=True)
            os.makedirs(self.chroot + self.shared_uploads, exist_ok=True)  # the mount point
        self.send_ident = self.fixed_ident or str(uuids.uuid4())
        recv_ident = "" if self.fixed_ident else self.send_ident
        extra = "".join(', "%s": %s' % (k, v) for k, v in self.settings.items())
        conf = CONFIG.format(m2_send_spec=self._spec("send", self.send_port, ""),
                             m2_recv_spec=self._spec("recv", self.recv_port, ""),
                             send_ident=self.send_ident, recv_ident=recv_ident, uuid=self.uuid,
                             chroot=self.chroot,
                             http_port=self.http_port, protocol=self.protocol,
                             content_length=self.content_length, route=self.route,
                             static_base=self.static_base, extra=extra,
                             upload_template=self.upload_template,
                             xrequests=self._xrequests())
        path = os.path.join(self.base, "mongrel2.conf")
        with open(path, "w") as f:
            f.write(conf)
        db = os.path.join(self.base, "config.sqlite")
        if os.path.exists(db):
            os.unlink(db)
        subprocess.run(["m2sh", "load", "-config", path, "-db", db], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, LOGNAME="root"))
        return db

    def start(self, timeout=10):
        db = self.write_config()
        pid_file = os.path.join(self.chroot, "run", "mongrel2.pid")
        if os.path.exists(pid_file):
            os.unlink(pid_file)
        command = ["mongrel2", db, self.uuid]
        if self.shared_uploads:  # sh execs mongrel2: self.proc is mongrel2 still
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-ec",
                       'mount --bind "$0" "$1"; shift; exec "$@"', self.shared_uploads,
                       self.chroot + self.shared_uploads] + command
        env = dict(os.environ, LD_PRELOAD=taskmain_shim(self.base)) if self.xrequests else None
        self.proc = subprocess.Popen(command, cwd=self.base, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.proc.poll() is not None or port_open(self.http_port), timeout,
                 what="mongrel2 on port %d" % self.http_port)
        if self.proc.poll() is not None:
            raise RuntimeError("mongrel2 exited at start with %s" % self.proc.returncode)
        return self

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def connections(self, timeout=5):
        """mongrel2's connection ids given so far (its control port's
        ``status what=net``): an id is given once a request has been read,
        whether or not a handler has taken it."""
        import tnetstring
        import zmq
        context = zmq.Context.instance()
        with context.socket(zmq.REQ) as req:
            req.setsockopt(zmq.LINGER, 0)
            req.connect("ipc://%s/run/control" % self.chroot)
            req.send(b"26:6:status,13:4:what,3:net,}]")
            if not req.poll(timeout * 1000):
                raise TimeoutError("mongrel2's control port did not answer")
            rows = tnetstring.loads(req.recv())[b"rows"]
        return sorted(row[0] for row in rows if row[0] >= 0)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
