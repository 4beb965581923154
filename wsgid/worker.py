"""The serving loop of one worker: socket -> message -> request handler -> socket.

A worker is a unit the master forks: it creates its own ZeroMQ context and
takes requests from its source (:mod:`wsgid.sources`: a PULL on mongrel2's
send_spec in direct dispatch, a DEALER to the master's broker in broker
dispatch), and sends its replies on XPUB sockets to mongrel2's recv_spec
(:mod:`wsgid.replies`). The loop (signals, poll, ticks, recycling, the requests left at the end) is
here; each message is answered by a :class:`wsgid.request_handler.RequestHandler`.
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

import zmq

from wsgid import environ as wsgi_environ
from wsgid import loaders, message, proctitle, proxies, uploads, wsevents, wsshared
from wsgid import log as wsgid_log
from wsgid.accesslog import AccessLog
from wsgid.direct_source import direct
from wsgid.contract import BOOT_ERROR, dump_on_signal, report_boot_error, say_ready
from wsgid.replies import Replies
from wsgid.request_handler import RequestHandler
from wsgid.sources import BrokerSource
from wsgid.scoreboard import Score

log = logging.getLogger("wsgid")


class Worker:
    """Serve ``app`` on the given mongrel2 addresses until told to stop.

    Requests come from ``request_specs`` (mongrel2's send_specs, a list:
    one per front-end), or from the master's broker when ``broker`` is its
    address; replies go to the ``reply_specs`` of the same front-end
    (mongrel2's recv_specs, in the same order).
    ``on_tick`` is called at least every ``tick`` seconds and after each
    request (the master's heartbeat hangs on it); ``on_ready`` once, when
    requests start to be taken. ``score`` (a :class:`wsgid.scoreboard.Score`
    the master reads) says which request is in hand. ``handling``: the
    keyword arguments of the :class:`RequestHandler` that answers each
    message (``access_log``, ``debug``, ``spool``, ...). With a
    ``websocket_handler``, WebSocket messages are its (wsgid.wsevents), in
    the memory ``shared`` with the other workers (wsgid.wsshared).
    ``master``: the pid of the master, taken before the fork (default: the
    parent now); once it is no longer the parent, the worker leaves.
    """

    def __init__(self, app, request_specs, reply_specs, max_requests=0, on_tick=None,
                 on_ready=None, tick=1.0, broker=None, slot=None, max_rss=0, score=None,
                 websocket_handler=None, websocket_max_message=0, shared=None, master=None,
                 **handling):
        self.app = app
        self.request_specs = request_specs
        self.reply_specs = reply_specs
        self.broker_spec = broker
        self.broker_slot = slot  # shared with the master (wsgid.brokerproto.Slot)
        self.score = score if score is not None else Score()
        self.handling = handling
        self.websocket_handler = websocket_handler  # None: WebSocket messages answered 501
        self.websocket_max_message = websocket_max_message
        self.shared = shared  # the master's wsgid.wsshared.Shared (None: this worker's own)
        self.websockets = None  # wsgid.wsevents.Events, once running with a handler
        self.source = self.replies = self.handler = None  # made by run(), in the worker
        self.max_requests = max_requests
        self.max_rss_kib = max_rss * 1024  # getrusage counts KiB
        self.on_tick = on_tick or (lambda: None)
        self.on_ready = on_ready or (lambda: None)
        self.tick_ms = int(tick * 1000)
        self.alive = True
        self.due = False  # asked to be replaced (--max-requests, --max-rss)
        self.requests = 0
        self.next_tick = 0.0
        # Not the parent now: a master killed while the application loaded
        # has left this worker to init, which would then pass for its master.
        self.ppid = os.getppid() if master is None else master

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
        if self.broker_spec:  # the master's broker, as this pid, with its slot
            self.source = BrokerSource(context, self.broker_spec, b"%d" % os.getpid(),
                                       self.broker_slot, tagged=len(self.reply_specs) > 1)
        else:  # mongrel2's send_specs, directly
            self.source = direct(context, self.request_specs)
        self.replies = Replies([context.socket(zmq.XPUB) for _ in self.reply_specs], self.source)
        self.handler = RequestHandler(self.app, self.replies, self.source, self.score,
                                      **self.handling)
        if self.websocket_handler is not None:
            self.websockets = wsevents.Events(
                self.websocket_handler, self.replies,
                self.shared or wsshared.Shared(len(self.reply_specs)), self.websocket_max_message)
            self.handler.websockets = self.websockets
            self.replies.on_gone = self.websockets.front_gone
            self.source.departed = collections.deque()
        try:
            self._check_parent()  # gone while the application loaded: connect to no one
            if self.alive:
                self.replies.connect(self.reply_specs)
                self.source.connect()
                self._wait_for_subscriber(wakeup_r)
            if self.alive:
                self.source.start(websockets=self.websocket_handler is not None)
                log.info("Worker ready to serve requests (%s, send %s)",
                         self.source.describe(), ", ".join(self.reply_specs))
                self.on_ready()
                self.replies.start()
                self._loop(wakeup_r)
                # Also with the master gone: the replies go to mongrel2 directly.
                for data in self.source.leftovers(master=os.getppid() == self.ppid):
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
                log.info("Waiting for mongrel2 to connect at %s", ", ".join(self.reply_specs))

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
            if self.source.prefetched or not events.keys().isdisjoint(socks):
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
        handler = self.handler
        request = handler.parse(data)
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
            handler.dispatch(request)
        if work:
            self.score.end(self.source.front, handler.status)
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
            if self.handler.access_log is not None:
                self.handler.access_log.reopen()
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


def load_app(options, found):
    """The application, loaded as every worker loads it (``wsgid check``
    too): ``envs`` in the environment, then the loader (``found``: the
    plugins the master read)."""
    os.environ.update(options.envs)
    return loaders.load(options, found)


def run_worker(options, found, child, ready_fd):
    """The body of a forked worker (``child``: the master's record of it):
    load the app (``found``: the plugins the master read), then serve.
    Returns the exit status (contract.BOOT_ERROR: the app failed to load)."""
    proctitle.set("worker")
    dump_on_signal()
    try:
        app = load_app(options, found)
        websocket_handler = loaders.websocket_handler(options)
    except Exception as exc:  # LoaderError or the app's own import error: the master logs it
        report_boot_error(child.report_w, exc, detail=not isinstance(exc, loaders.LoaderError))
        return BOOT_ERROR
    max_requests = options.max_requests
    if max_requests and options.max_requests_jitter:
        max_requests += random.randint(0, options.max_requests_jitter)
    wsgi_environ.trust(proxies.proxies(options))
    access_log = (AccessLog(options.access_log, options.access_log_format)
                  if options.access_log else None)
    Worker(app, options.recv, options.send, max_requests, on_tick=child.score.beat,
           on_ready=lambda: say_ready(ready_fd), broker=child.broker, slot=child.slot,
           max_rss=options.max_rss, score=child.score, access_log=access_log,
           debug=options.debug, mongrel2_chroot=options.mongrel2_chroot,
           mongrel2_sendfile=options.mongrel2_sendfile, spool=uploads.spool(options),
           max_body_size=options.max_body_size, websocket_handler=websocket_handler,
           websocket_max_message=options.websocket_max_message,
           shared=child.shared, master=child.master).run()
    return 0
