# Types for Cython when it compiles worker.py (see setup.py).
cimport cython

from wsgid.message cimport Request
from wsgid.request_handler cimport RequestHandler
# cimported, so that its cpdef functions are called in C, not through Python.
from wsgid cimport message


cdef class Worker:
    cdef public object app, recv_spec, send_spec, broker_spec
    cdef public object on_tick, on_ready, source, replies, broker_slot, score
    cdef public object websocket_handler, websockets, shared
    cdef public dict handling
    cdef public RequestHandler handler
    cdef public bint alive, due
    cdef public Py_ssize_t websocket_max_message, max_requests, max_rss_kib, requests, tick_ms, ppid
    cdef public double next_tick

    @cython.locals(request=Request, handler=RequestHandler)
    cpdef _serve(self, data)

    cpdef _check_memory(self)
