# cython: language_level=3
"""The compiled helper of :mod:`wsgid.zmqcalls` (see there): the same
functions, calling libzmq from C. libzmq is the copy pyzmq loaded, found
among the process's mapped files and reached by its functions' addresses
(``ctypes``): pyzmq ships no header to compile against, and a second copy
would not know pyzmq's sockets. Importing this fails (ImportError) when
that copy cannot be told for sure; the plain versions then serve."""

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.errno cimport EAGAIN, EINTR
from libc.stdint cimport uintptr_t

import zmq

cdef extern from *:
    """
    /* zmq_msg_t as zmq.h has it: 64 bytes, pointer-aligned. */
    typedef union { unsigned char _[64]; void *p; } wsgid_zmq_msg_t;
    """
    ctypedef struct wsgid_zmq_msg_t:
        pass

ctypedef int (*msg_init_t)(wsgid_zmq_msg_t *) noexcept nogil
ctypedef int (*msg_recv_t)(wsgid_zmq_msg_t *, void *, int) noexcept nogil
ctypedef void *(*msg_data_t)(wsgid_zmq_msg_t *) noexcept nogil
ctypedef size_t (*msg_size_t)(wsgid_zmq_msg_t *) noexcept nogil
ctypedef int (*msg_close_t)(wsgid_zmq_msg_t *) noexcept nogil
ctypedef int (*msg_more_t)(wsgid_zmq_msg_t *) noexcept nogil
ctypedef int (*send_t)(void *, const void *, size_t, int) noexcept nogil
ctypedef int (*errno_t)() noexcept nogil

cdef int DONTWAIT = 1, SNDMORE = 2  # zmq.h's ZMQ_DONTWAIT, ZMQ_SNDMORE

cdef msg_init_t msg_init
cdef msg_recv_t msg_recv
cdef msg_data_t msg_data
cdef msg_size_t msg_size
cdef msg_close_t msg_close
cdef msg_more_t msg_more
cdef send_t zsend
cdef errno_t zerrno


def _library():
    """The path of the one libzmq mapped in this process (pyzmq's)."""
    paths = set()
    try:
        with open("/proc/self/maps") as maps:  # none in a chroot without /proc
            for line in maps:
                path = line.rstrip("\n").partition("/")[2]
                if path and path.rpartition("/")[2].startswith("libzmq"):
                    paths.add("/" + path)
    except OSError as exc:
        raise ImportError("cannot list the mapped files: %s" % exc)
    if len(paths) != 1:
        raise ImportError("not one libzmq mapped: %s" % sorted(paths))
    return paths.pop()


cdef uintptr_t _address(lib, name) except 0:
    import ctypes
    try:
        address = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
    except AttributeError:
        address = 0
    if not address:
        raise ImportError("no %s in libzmq" % name)
    return address


def _load():
    import ctypes
    import os
    global msg_init, msg_recv, msg_data, msg_size, msg_close, msg_more, zsend, zerrno
    try:
        lib = ctypes.CDLL(_library(), mode=os.RTLD_NOLOAD | os.RTLD_NOW)
    except OSError as exc:
        raise ImportError(str(exc))

    major = ctypes.c_int()
    minor = ctypes.c_int()
    patch = ctypes.c_int()
    lib.zmq_version(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(patch))
    if (major.value, minor.value, patch.value) != zmq.zmq_version_info():
        raise ImportError("the libzmq found is not pyzmq's")
    msg_init = <msg_init_t>_address(lib, "zmq_msg_init")
    msg_recv = <msg_recv_t>_address(lib, "zmq_msg_recv")
    msg_data = <msg_data_t>_address(lib, "zmq_msg_data")
    msg_size = <msg_size_t>_address(lib, "zmq_msg_size")
    msg_close = <msg_close_t>_address(lib, "zmq_msg_close")
    msg_more = <msg_more_t>_address(lib, "zmq_msg_more")
    zsend = <send_t>_address(lib, "zmq_send")
    zerrno = <errno_t>_address(lib, "zmq_errno")


_load()


cdef inline void *handle(sock) except NULL:
    cdef uintptr_t address = sock.underlying
    if not address:  # closed, as pyzmq says
        raise zmq.ZMQError(zmq.ENOTSOCK)
    return <void *>address


cdef object _frame(void *sock, bint *more):
    """The next frame of ``sock``, None when none waits."""
    cdef wsgid_zmq_msg_t msg
    cdef int err = EINTR
    msg_init(&msg)
    while msg_recv(&msg, sock, DONTWAIT) < 0:
        err = zerrno()
        if err != EINTR:
            msg_close(&msg)
            if err == EAGAIN:
                return None
            raise zmq.ZMQError(err)
    try:
        more[0] = msg_more(&msg)
        return PyBytes_FromStringAndSize(<char *>msg_data(&msg), msg_size(&msg))
    finally:
        msg_close(&msg)


def recv_all(sock, list out):
    return _drain(sock, out, False)


def recv_all_multipart(sock, list out):
    return _drain(sock, out, True)


cdef int _drain(sock, list out, bint multipart) except -1:
    cdef void *s = handle(sock)
    cdef bint more = 0
    cdef int count = 0
    while True:
        data = _frame(s, &more)
        if data is None:
            return count
        if multipart:
            parts = [data]
            while more:  # the rest of a message is there with its first frame
                parts.append(_frame(s, &more))
            data = parts
        out.append(data)
        count += 1


def send_parts(sock, list parts):
    cdef void *s = handle(sock)
    cdef Py_ssize_t i, last = len(parts) - 1
    cdef bytes part
    for i in range(last + 1):
        part = parts[i]
        if zsend(s, <char *>part, len(part), DONTWAIT | (SNDMORE if i < last else 0)) < 0:
            return False
    return True
