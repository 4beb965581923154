# Types for Cython when it compiles outbox.py (see setup.py): the worker
# holds and sends each reply through C calls.

cdef class Outbox:
    cdef public object sock, lock
    cdef public list held
    cdef public double held_since
    cdef object _wake, _thread
    cdef public bint _parked
    cdef bint _stopping

    cpdef send(self, bytes frame)
    cpdef hold(self, bytes frame)
    cpdef before_request(self)
    cpdef flush(self)
    cdef _flush(self)
