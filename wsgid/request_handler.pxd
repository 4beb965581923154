# Types for Cython when it compiles request_handler.py (see setup.py).
cimport cython

from wsgid.message cimport Request
from wsgid.response cimport Response
# cimported, so that their cpdef functions are called in C, not through Python.
from wsgid cimport environ as wsgi_environ
from wsgid cimport message
from wsgid cimport filters


cdef class RequestHandler:
    cdef public object app, replies, source, score, access_log, mongrel2_chroot, spool, status
    cdef public object websockets
    cdef public bint debug, mongrel2_sendfile
    cdef public Py_ssize_t max_body_size, credit_window

    cpdef Request parse(self, data)
    cpdef dispatch(self, Request request)

    @cython.locals(headers=dict)
    cpdef handle_request(self, Request request)

    cpdef _pacer(self, Request request)

    @cython.locals(headers=dict, response=Response)
    cpdef call_app(self, Request request, body)
