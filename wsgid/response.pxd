# Types for Cython when it compiles response.py (see setup.py); the .py
# module runs as it is without them.

cdef dict _FRAMING_NAMES

cpdef bint _no_body_status(str status)

cdef class Response:
    cdef public object status
    cdef public bint headers_sent
    cdef public object length
    cdef public Py_ssize_t written
    cdef public bint chunked
    cdef public bint no_body
    cdef bint _bodiless
    cdef public bint closes_connection
    cdef public bint http10
    cdef public bint head
    cdef public Py_ssize_t max_message
    cdef object _send
    cdef bint _hold_whole
    cdef public bint one_block
    cdef bytes _block
    cpdef write(self, data)
    cpdef finish(self)
    cpdef finish_without_body(self, length=*)
    cpdef force_close(self)
    cpdef client_gone(self)
    cpdef bytes abort(self, status, body=*)
    cdef bytes _head(self)
    cdef _frame(self, data)
    cdef _stream(self, bytes head, data)
