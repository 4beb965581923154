# Types for Cython when it compiles scheduler.py (see setup.py): the master
# runs dispatch on every wake-up, its attributes read in C, not looked up.
cimport cython


cdef class Window:
    cdef public object slot
    cdef public Py_ssize_t sent
    cdef public object out
    cdef public Py_ssize_t stalled
    cdef public bint leaving
    cdef public Py_ssize_t waiting

    cpdef Py_ssize_t unanswered(self) except -1
    cpdef bint moved(self) except -1


cdef class Scheduler:
    cdef public object send, answer
    cdef public dict workers, slots, serving, sockets
    cdef public object pending
    cdef public Py_ssize_t _sweep_at
    cdef public bint taking
    cdef public Py_ssize_t _turn

    @cython.locals(worker=Window, room=Py_ssize_t, turn=Py_ssize_t, waiting=Py_ssize_t,
                   rooms=list, batches=dict, keys=dict, best=list, entry=list)
    cpdef dispatch(self)

    @cython.locals(worker=Window)
    cpdef _send_batch(self, identity, Window worker, list batch, list keys)
