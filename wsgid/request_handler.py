"""The handling of one request: message -> environ -> app -> response -> reply side.

A :class:`RequestHandler` answers each message a worker's loop
(:mod:`wsgid.worker`) takes from its source: it refuses what cannot be
served (a bad message, a WebSocket frame, a body over --max-body-size),
calls the application with the request's environ and body (an upload
mongrel2 spooled, too), frames its response (:mod:`wsgid.response`) to the
reply side, hands a file to mongrel2 with --mongrel2-sendfile, paces a
reply by mongrel2's credits, and writes the access log. Nothing a request
carries makes it raise.
"""

import logging
import os
import time
import traceback

from wsgid import environ as wsgi_environ
from wsgid import filters, flowcontrol, framing, message, uploads
from wsgid.accesslog import record_headers
from wsgid.filewrapper import FileWrapper, handoff_path
from wsgid.flowcontrol import CREDITS
from wsgid.message import CLOSE
from wsgid.replies import ClientGone
from wsgid.response import Response
from wsgid.scoreboard import Score
from wsgid.uploads import DONE as UPLOAD_DONE, START as UPLOAD_START

log = logging.getLogger("wsgid")

_WEBSOCKET = ("WEBSOCKET_HANDSHAKE", "WEBSOCKET")


class RequestHandler:
    """Answer the requests of one worker with ``app``.

    ``replies`` is the reply side (a :class:`wsgid.replies.Replies`),
    ``source`` where the requests come from (a :class:`wsgid.sources.Source`:
    whether credits are paced, and the pacer's notices), ``score`` the
    worker's :class:`wsgid.scoreboard.Score` (an upload in hand). After each
    message :attr:`status` is the status line of its reply (None: none
    given, "": not a request of its own).
    """

    def __init__(self, app, replies, source, score=None, access_log=None, debug=False,
                 mongrel2_chroot=None, mongrel2_sendfile=False, spool=None, max_body_size=0):
        self.app = app
        self.replies = replies
        self.source = source
        self.score = score if score is not None else Score()
        self.access_log = access_log
        self.debug = debug
        self.mongrel2_chroot = mongrel2_chroot
        self.mongrel2_sendfile = mongrel2_sendfile  # hand wsgi.file_wrapper files to mongrel2
        self.spool = spool  # mongrel2's upload folder (uploads.Spool), None: uploads refused
        self.max_body_size = max_body_size  # bytes; 0: no limit
        self.status = None
        self.credit_window = 0  # mongrel2's download flow control window, once seen
        self.websockets = None  # wsgid.wsevents.Events, set by a worker with a WebSocket handler

    def parse(self, data):
        """The parsed request, or None for a bad message (answered 400 when
        its connection is known). A new message: no reply given yet."""
        self.status = None
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
        """Answer one parsed request. Never raises for anything it carries."""
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
        if headers["METHOD"] in _WEBSOCKET:
            self.handle_websocket(request)
        elif UPLOAD_DONE in headers:
            self.call_app_with_upload(request)
        elif UPLOAD_START in headers:  # the done message is answered, unless refused now
            self._stop_upload_over_limit(request)
        else:
            reason = framing.refusal(headers, len(request.body))
            if reason is not None:
                self.refuse(request, "400 Bad Request", reason)
            elif not self._refused_over_limit(request, len(request.body)):
                self.call_app(request, None)

    def handle_websocket(self, request):
        """A WebSocket handshake or frame (mongrel2's METHOD says which):
        the WebSocket handler's (wsgid.wsevents), or without one answered 501."""
        if self.websockets is not None:
            self.status = self.websockets.handle(request, self.source.front)
            return
        log.debug("Refused a WebSocket message on connection %s", request.conn_id)
        self.replies.refuse(request.sender, request.conn_id, "501 Not Implemented")

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
            response.client_gone()
            gone = True
        except Exception as exc:
            filters.run_request_exception(request, exc)
            log.exception("Error in the application for %s %s",
                          headers.get("METHOD"), headers.get("URI", headers.get("PATH")))
            detail = None
            if self.debug and not response.headers_sent:
                detail = (b"500 Internal Server Error\n\n"
                          + traceback.format_exc().encode("utf-8", "replace"))
            reply = response.abort("500 Internal Server Error", detail)
            if reply is not None:
                try:
                    send(reply)
                except ClientGone:  # its mongrel2 has gone
                    response.client_gone()
                    gone = True
        finally:
            if hasattr(result, "close"):
                try:
                    result.close()
                except Exception:
                    log.exception("Error in the application's close()")
        self.status = None if gone else response.status
        if response.closes_connection:
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
        if response.no_body and response.length is not None and not response.written:
            response.finish_without_body()
            return True
        if not self.mongrel2_sendfile:
            return False
        handoff = handoff_path(wrapper, response, self.mongrel2_chroot or "/")
        if handoff is None:
            return False
        path, size = handoff
        # mongrel2 opens the file by its path later: one grown or replaced
        # meanwhile would not match the Content-Length, and what follows
        # on a kept-alive connection would be read as the next response.
        response.force_close()  # so the head says so, and CLOSE follows the file
        response.finish_without_body(size)
        self.replies.sendfile(request.sender, request.conn_id, os.fsencode(path))
        return True
