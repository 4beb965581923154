# Types for Cython when it compiles worker.py (see setup.py).
cimport cython

from wsgid.message cimport Request
from wsgid.response cimport Response
# cimported, so that their cpdef functions are called in C, not through Python.
from wsgid cimport environ as wsgi_environ
from wsgid cimport message
from wsgid cimport filters


cdef class Worker:
    cdef public object app, recv_spec, send_spec, broker_spec, access_log, mongrel2_chroot
    cdef public object spool, status, websocket_handler, websockets, shared
    cdef public object on_tick, on_ready, source, replies, broker_slot, score
    cdef public bint debug, alive, due, mongrel2_sendfile
    cdef public Py_ssize_t websocket_max_message, max_body_size, max_requests, max_rss_kib, requests, credit_window, tick_ms, ppid
    cdef public double next_tick

    @cython.locals(request=Request)
    cpdef _serve(self, data)

    cpdef Request parse(self, data)
    cpdef dispatch(self, Request request)

    @cython.locals(headers=dict)
    cpdef handle_request(self, Request request)

    cpdef _pacer(self, Request request)
    cpdef _check_memory(self)

    @cython.locals(headers=dict, response=Response)
    cpdef call_app(self, Request request, body)
