# Types for Cython when it compiles outbox.py (see setup.py): the worker
# puts each reply through a C call.

cdef class Outbox:
    cdef public object sock, lock, on_sent
    cdef public list held
    cdef public double held_since
    cdef public object ticker
    cdef object _open
    cdef Py_ssize_t _open_size

    cpdef put(self, bytes envelope, bytes body, bint hold=*, Py_ssize_t limit=*)
    cpdef flush(self)
    cpdef mark(self, mark)
    cdef _flush(self)
