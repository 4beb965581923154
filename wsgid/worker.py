"""The serving loop of one worker: socket -> message -> environ -> app -> response -> socket.

A worker is a unit the master forks: it creates its own ZeroMQ context, PULLs
requests from mongrel2's send_spec and PUBlishes replies to its recv_spec.
Nothing a request carries can make it exit.
"""

import collections
import logging
import os
import random
import resource
import signal
import sys
import time
import traceback

import zmq

from wsgid import environ as wsgi_environ
from wsgid import (filters, flowcontrol, framing, loaders, message, proctitle, proxies, sources,
                   uploads, wsevents, wsshared)
from wsgid import log as wsgid_log
from wsgid.accesslog import AccessLog, record_headers
from wsgid.contract import BOOT_ERROR, dump_on_signal, report_boot_error, say_ready
from wsgid.filewrapper import FileWrapper, handoff_path
from wsgid.flowcontrol import CREDITS
from wsgid.message import CLOSE
from wsgid.replies import ClientGone, Replies
from wsgid.response import Response, error_reply
from wsgid.scoreboard import Score
from wsgid.uploads import DONE as UPLOAD_DONE, START as UPLOAD_START

log = logging.getLogger("wsgid")

_WEBSOCKET = ("WEBSOCKET_HANDSHAKE", "WEBSOCKET")


class Worker:
    """Serve ``app`` on the given mongrel2 addresses until told to stop.

    Requests come from mongrel2's send_specs (``recv``, a list: one per
    front-end), or from the master's broker when ``broker`` is its address;
    replies go to the recv_spec of the same front-end (``send``, in the same
    order).
    ``on_tick`` is called at least every ``tick`` seconds and after each
    request (the master's heartbeat hangs on it); ``on_ready`` once, when
    requests start to be taken. ``score`` (a :class:`wsgid.scoreboard.Score`
    the master reads) says which request is in hand.
    """

    def __init__(self, app, recv, send, mongrel2_chroot=None, debug=False,
                 max_requests=0, on_tick=None, on_ready=None, tick=1.0, broker=None,
                 access_log=None, slot=None, mongrel2_sendfile=False, max_rss=0, score=None,
                 spool=None, max_body_size=0, websocket_handler=None, websocket_max_message=0,
                 shared=None):
        self.app = app
        self.recv_spec = recv
        self.send_spec = send
        self.broker_spec = broker
        self.broker_slot = slot  # shared with the master (wsgid.brokerproto.Slot)
        self.score = score if score is not None else Score()
        self.access_log = access_log
        self.mongrel2_chroot = mongrel2_chroot
        self.spool = spool  # mongrel2's upload folder (uploads.Spool), None: uploads refused
        self.max_body_size = max_body_size  # bytes; 0: no limit
        self.websocket_handler = websocket_handler  # None: WebSocket messages answered 501
        self.websocket_max_message = websocket_max_message
        self.shared = shared  # the master's wsgid.wsshared.Shared (None: this worker's own)
        self.websockets = None  # wsgid.wsevents.Events, once running with a handler
        self.mongrel2_sendfile = mongrel2_sendfile  # hand wsgi.file_wrapper files to mongrel2
        self.debug = debug
        self.max_requests = max_requests
        self.max_rss_kib = max_rss * 1024  # getrusage counts KiB
        self.on_tick = on_tick or (lambda: None)
        self.on_ready = on_ready or (lambda: None)
        self.tick_ms = int(tick * 1000)
        self.alive = True
        self.due = False  # asked to be replaced (--max-requests, --max-rss)
        self.requests = 0
        self.status = None  # the status line of the last reply, None: none given
        self.credit_window = 0  # mongrel2's download flow control window, once seen
        self.next_tick = 0.0
        self.ppid = os.getppid()

    # -- lifecycle -------------------------------------------------------------
    def _install_signals(self, wakeup_w):
        def graceful(signum, frame):
            self.alive = False

        def fast(signum, frame):
            sys.exit(0)

        signal.signal(signal.SIGTERM, graceful)
        signal.signal(signal.SIGINT, fast)
        signal.signal(signal.SIGQUIT, fast)
        signal.signal(signal.SIGUSR1, wsgid_log.request_reopen)  # acted on in the loop
        for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)
        signal.set_wakeup_fd(wakeup_w, warn_on_full_buffer=False)

    def run(self):
        wakeup_r, wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._install_signals(wakeup_w)
        context = zmq.Context(1)
        self.source = sources.create(context, self.recv_spec, self.broker_spec,
                                     b"%d" % os.getpid(), self.broker_slot, len(self.send_spec))
        self.replies = Replies([context.socket(zmq.XPUB) for _ in self.send_spec], self.source)
        if self.websocket_handler is not None:
            self.websockets = wsevents.Events(
                self.websocket_handler, self.replies,
                self.shared or wsshared.Shared(len(self.send_spec)), self.websocket_max_message)
            self.replies.on_gone = self.websockets.front_gone
            self.source.departed = collections.deque()
        try:
            self.replies.connect(self.send_spec)
            self._wait_for_subscriber(wakeup_r)
            if self.alive:
                self.source.start()
                log.info("Worker ready to serve requests (%s, send %s)",
                         self.source.describe(), ", ".join(self.send_spec))
                self.on_ready()
                self.replies.start()
                self._loop(wakeup_r)
                if os.getppid() == self.ppid:
                    for data in self.source.leftovers():
                        self._serve(data)
        finally:
            signal.set_wakeup_fd(-1)
            self.replies.close()
            self.source.close()
            context.term()
            os.close(wakeup_r)
            os.close(wakeup_w)

    def _wait_for_subscriber(self, wakeup_r):
        """Take no request before a mongrel2 SUB side has subscribed: a reply
        PUBlished earlier would be dropped and its client left hanging. With
        several front-ends, one is enough: a reply to another waits for its
        own (Replies.await_subscriber), and one that is down stops no one."""
        poller = zmq.Poller()
        for pub in self.replies.pubs:
            poller.register(pub, zmq.POLLIN)
        poller.register(wakeup_r, zmq.POLLIN)
        waited = 0
        while self.alive:
            events = dict(poller.poll(self.tick_ms))
            if not events.keys().isdisjoint(self.replies.pubs) \
                    and self.replies.count_subscriptions() > 0:
                return
            self._drain(wakeup_r)
            self._check_parent()
            self.on_tick()
            waited += 1
            if waited == 5:
                log.info("Waiting for mongrel2 to connect at %s", ", ".join(self.send_spec))

    def _loop(self, wakeup_r):
        pubs = self.replies.pubs
        version = socks = poller = None
        self._reopen_logs()  # a USR1 that came while the application loaded
        while self.alive:
            wait = self.source.maintain(time.monotonic())  # a mongrel2 gone, a connect to retry
            if self.source.version != version:  # a socket replaced: poll the new one
                version = self.source.version
                poller = zmq.Poller()
                for each in (*self.source.pollables(), *pubs, wakeup_r):
                    poller.register(each, zmq.POLLIN)
                socks = self.source.socks
            timeout = self.tick_ms if wait is None else min(self.tick_ms, int(wait * 1000) + 1)
            events = dict(poller.poll(timeout))
            if self.source.held or not events.keys().isdisjoint(socks):
                self._serve_available()
            if not events.keys().isdisjoint(pubs):
                self.replies.count_subscriptions()  # mongrel2 restarting
            if wakeup_r in events:
                self._drain(wakeup_r)
                self._reopen_logs()
            self._tick()

    def _serve_available(self):
        """Serve every request already queued, without a poll for each; the
        replies held meanwhile leave once the queue is empty."""
        while self.alive:
            try:
                data = self.source.recv_nowait()
            except zmq.Again:
                break
            self._serve(data)
            self._tick()
        departed = self.source.departed
        while departed:  # WebSockets gone, told the broker's way
            self.websockets.disconnected(*departed.popleft())
        self.replies.outbox.flush()

    def _serve(self, data):
        """Serve one message; tell the source when it was work, not a notice."""
        if self.source.front != self.replies.front:  # several front-ends
            self.replies.follow(self.source.front)
        self.status = None
        request = self.parse(data)
        work = not message.is_notice(data)
        if work:
            self.requests += 1
            if request is None:
                self.score.begin("", b"")
            else:
                self.score.begin(request.headers["METHOD"], request.path)
            if self.max_requests and self.requests >= self.max_requests and not self.due:
                self._ask_replacement("reached %d requests" % self.requests, "max-requests")
        if request is not None:
            self.dispatch(request)
        if work:
            self.score.end(self.source.front, self.status)
            self.source.done(self.replies.outbox)
            if self.max_rss_kib and not self.due:
                self._check_memory()

    def _check_memory(self):
        """--max-rss: ask to be replaced once the peak resident memory has
        passed the limit. The peak (one getrusage call, no /proc, so it
        works in a chroot too) is what this process has had to hold at
        once: a request that needed the memory for a moment is as much a
        reason to recycle as one that keeps it."""
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if peak > self.max_rss_kib:
            self._ask_replacement("reached %.1f MiB of resident memory (--max-rss %d)"
                                  % (peak / 1024.0, self.max_rss_kib // 1024), "max-rss")

    def _ask_replacement(self, why, reason):
        """--max-requests, --max-rss: ask the master for a replacement and
        serve on; the master retires this worker (TERM: a graceful exit)
        once the replacement is ready -- never while the application cannot
        load, which would leave no one to serve."""
        log.info("Worker %s, asking to be replaced", why)
        self.due = True
        self.score.ask_replacement(reason)

    def _reopen_logs(self):
        """After USR1: wsgid.log, the access log, and the traceback dump's
        file, anew."""
        if wsgid_log.reopen_if_requested():
            if self.access_log is not None:
                self.access_log.reopen()
            dump_on_signal()

    def _tick(self):
        now = time.monotonic()
        if now >= self.next_tick:
            self.next_tick = now + self.tick_ms / 2000.0
            self._check_parent()
            self.on_tick()
            if self.websockets is not None:
                self.websockets.tick()

    @staticmethod
    def _drain(fd):
        try:
            while os.read(fd, 512):
                pass
        except BlockingIOError:
            pass

    def _check_parent(self):
        if os.getppid() != self.ppid:
            log.warning("Master process is gone, worker exiting")
            self.alive = False

    # -- one message ------------------------------------------------------------
    def handle(self, data):
        """Answer one raw message. Never raises for anything it carries."""
        request = self.parse(data)
        if request is not None:
            self.dispatch(request)

    def parse(self, data):
        """The parsed request, or None for a bad message (answered 400 when
        its connection is known)."""
        try:
            return message.parse(data)
        except message.MessageError as exc:
            log.warning("Dropped a bad message (%s): %r", exc, data[:120])
            if exc.sender and exc.conn_id:
                self.status = "400 Bad Request"
                self.replies.refuse(exc.sender, exc.conn_id, self.status)
            return None
        except Exception:  # a parser bug must not kill the worker either
            log.exception("Dropped a message the parser failed on: %r", data[:120])
            return None

    def dispatch(self, request):
        try:
            self.handle_request(request)
        except Exception:  # a bug of ours must not kill the worker either
            log.exception("Internal error while handling a request")
            try:  # nor leave the client hanging (a close is safe at any point)
                self.replies.send(request.sender, request.conn_id, CLOSE)
            except Exception:
                log.exception("Could not close connection %s", request.conn_id)

    def handle_request(self, request):
        headers = request.headers
        if request.is_notice:  # disconnect, credits: the source has read them
            if self.websockets is not None and request.is_disconnect:
                self.websockets.disconnected(self.source.front, request.conn_id)
            return
        method = headers["METHOD"]
        if method in _WEBSOCKET:
            if self.websockets is not None:
                self.status = self.websockets.handle(request, self.source.front)
                return
            log.debug("Refused a WebSocket message on connection %s", request.conn_id)
            self.replies.refuse(request.sender, request.conn_id, "501 Not Implemented")
            return
        if UPLOAD_DONE in headers:
            self.call_app_with_upload(request)
        elif UPLOAD_START in headers:  # the done message is answered, unless refused now
            self._stop_upload_over_limit(request)
        else:
            reason = framing.refusal(headers, len(request.body))
            if reason is not None:
                self.refuse(request, "400 Bad Request", reason)
            elif not self._refused_over_limit(request, len(request.body)):
                self.call_app(request, None)

    def _refused_over_limit(self, request, size):
        """--max-body-size: answer 413 to a body of ``size`` bytes over it
        (the connection closed); True when answered."""
        if not self.max_body_size or size <= self.max_body_size:
            return False
        self.refuse(request, "413 Content Too Large",
                    "a body of %d bytes, over --max-body-size %d" % (size, self.max_body_size))
        return True

    def _stop_upload_over_limit(self, request):
        """An upload starting with a Content-Length over --max-body-size:
        mongrel2 writes its 413, and the close that follows it shuts the
        client's socket, so mongrel2's read fails, it stops spooling and
        deletes the file itself (upload.c, Upload_file's error path). A
        chunked upload has no length yet: it is measured when done."""
        self.status = ""  # not a request of its own (scoreboard.Score.end)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit():  # else refused when done (uploads.py)
            self._refused_over_limit(request, int(length))

    def refuse(self, request, status, reason):
        log.warning("Refused %s %s: %s", request.headers["METHOD"],
                    request.headers.get("URI", request.headers.get("PATH")), reason)
        self.status = status
        self.replies.refuse(request.sender, request.conn_id, status,
                            request.headers.get("VERSION"))

    def call_app_with_upload(self, request):
        try:
            upload = uploads.Upload(self.spool, request.headers, request.body)
        except uploads.UploadRefused as exc:
            self.refuse(request, exc.status, "async upload: %s" % exc)
            return
        try:  # a file mongrel2 spooled: deleted even when its request is refused
            reason = framing.refusal(request.headers, None)
            if reason is not None:
                self.refuse(request, "400 Bad Request", reason)
            elif not self._refused_over_limit(request, os.fstat(upload.file.fileno()).st_size):
                self.score.uploading(True)
                self.call_app(request, upload.file)
        finally:
            self.score.uploading(False)
            upload.remove()

    def _pacer(self, request):
        """A Pacer when mongrel2 runs with download flow control (its first
        request on a connection says so, with the window) and the source
        routes credit notices here."""
        window = request.headers.get(CREDITS)
        if window is not None and window.isdigit():
            self.credit_window = int(window)
        if self.credit_window and self.source.paces:
            return flowcontrol.Pacer(self.source, (self.replies.front, request.conn_id),
                                     self.credit_window,
                                     self.replies.outbox.flush)
        return None

    @staticmethod
    def _paced(pacer, send):
        """``send`` that waits for mongrel2's credits first."""
        def paced_send(data, hold=False, limit=0):
            if not pacer.reserve(len(data)):
                raise ClientGone()
            send(data, hold, limit)
        return paced_send

    def call_app(self, request, body):
        headers = request.headers
        version = headers.get("VERSION", "HTTP/1.1")
        send = self.replies.sender(request.sender, request.conn_id)
        pacer = self._pacer(request)
        if pacer is None:
            # A whole reply may wait a moment in the outbox, in both modes: one
            # held when the worker is killed dies with it, and a broker then
            # answers its client 502 (see BrokerSource.done).
            response = Response(send, version, headers["METHOD"], headers.get("connection"),
                                hold_whole=True)
        else:
            response = Response(self._paced(pacer, send), version, headers["METHOD"],
                                headers.get("connection"), flowcontrol.message_size(pacer.window))
        conn_id = request.conn_id
        result = environ = None
        gone = False
        started = time.perf_counter()
        reply_headers = []  # the app's, kept when the access log shows some
        try:
            environ = filters.run_pre_request(request, wsgi_environ.build(request, body))
            start_response = filters.wrap_start_response(request, response.start_response)
            if self.access_log is not None and self.access_log.reply_headers:
                start_response = record_headers(start_response, reply_headers)
            result = self.app(environ, start_response)
            if not (type(result) is FileWrapper and self._send_file(request, result, response)):
                try:
                    response.one_block = len(result) == 1 and not response.written
                except TypeError:
                    pass  # a generator: its length is not known
                for chunk in result:
                    response.write(chunk)
                response.finish()
        except ClientGone:
            log.debug("Client of connection %s went away, response stopped", conn_id)
            response.close = False  # mongrel2 has closed it already
            gone = True
        except Exception as exc:
            filters.run_request_exception(request, exc)
            log.exception("Error in the application for %s %s",
                          headers.get("METHOD"), headers.get("URI", headers.get("PATH")))
            response.close = True
            if not response.headers_sent:
                detail = traceback.format_exc().encode("utf-8", "replace") if self.debug else None
                response.status = "500 Internal Server Error"
                try:
                    send(error_reply(response.status, version,
                                     detail and b"500 Internal Server Error\n\n" + detail))
                except ClientGone:  # its mongrel2 has gone
                    response.close = False
                    gone = True
        finally:
            if hasattr(result, "close"):
                try:
                    result.close()
                except Exception:
                    log.exception("Error in the application's close()")
        self.status = None if gone else response.status
        if response.close:
            send(CLOSE)
        elif pacer is not None:
            pacer.drain()
        if self.access_log is not None and environ is not None:
            self.access_log.write(environ, headers.get("URI", headers["PATH"]),
                                  response.status, response.written, reply_headers,
                                  time.perf_counter() - started)

    def _send_file(self, request, wrapper, response):
        """The quick ways with a wsgi.file_wrapper the app returned as it is:
        a HEAD of known length reads nothing of the file; with
        --mongrel2-sendfile, the head goes and mongrel2 sends the file itself
        (when it qualifies, see filewrapper.handoff_path), and then closes the
        connection. True when done,
        False when the file is to be sent as any iterable."""
        path = None
        if not (response.no_body and response.length is not None and not response.written):
            if not self.mongrel2_sendfile:
                return False
            path = handoff_path(wrapper, response, self.mongrel2_chroot or "/")
            if path is None:
                return False
            # mongrel2 opens the file by its path later: one grown or replaced
            # meanwhile would not match the Content-Length, and what follows
            # on a kept-alive connection would be read as the next response.
            response.close = True  # so the head says so, and CLOSE follows the file
        response.written = response.length  # as if sent: the access log's size, no close
        response.finish()
        if path is not None:
            self.replies.sendfile(request.sender, request.conn_id, os.fsencode(path))
        return True


def load_app(options, found):
    """The application, loaded as every worker loads it (``wsgid check``
    too): ``envs`` in the environment, then the loader (``found``: the
    plugins the master read)."""
    os.environ.update(options.envs)
    return loaders.load(options, found)


def run_worker(options, found, proc, ready_fd):
    """The body of a forked worker (``proc``: the master's record of it):
    load the app (``found``: the plugins the master read), then serve.
    Returns the exit status (contract.BOOT_ERROR: the app failed to load)."""
    proctitle.set("worker")
    dump_on_signal()
    try:
        app = load_app(options, found)
        websocket_handler = loaders.websocket_handler(options)
    except Exception as exc:  # LoaderError or the app's own import error: the master logs it
        report_boot_error(proc.report_w, exc, detail=not isinstance(exc, loaders.LoaderError))
        return BOOT_ERROR
    max_requests = options.max_requests
    if max_requests and options.max_requests_jitter:
        max_requests += random.randint(0, options.max_requests_jitter)
    wsgi_environ.trust(proxies.proxies(options))
    access_log = (AccessLog(options.access_log, options.access_log_format)
                  if options.access_log else None)
    Worker(app, options.recv, options.send, options.mongrel2_chroot, options.debug,
           max_requests, on_tick=proc.score.beat, broker=proc.broker, slot=proc.slot,
           score=proc.score, access_log=access_log, on_ready=lambda: say_ready(ready_fd),
           mongrel2_sendfile=options.mongrel2_sendfile, max_rss=options.max_rss,
           spool=uploads.spool(options), max_body_size=options.max_body_size,
           websocket_handler=websocket_handler,
           websocket_max_message=options.websocket_max_message,
           shared=getattr(proc, "shared", None)).run()
    return 0
