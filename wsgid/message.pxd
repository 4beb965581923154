# Types for Cython when it compiles message.py (see setup.py).
cimport cython

@cython.locals(size=Py_ssize_t, limit=Py_ssize_t, length=Py_ssize_t, i=Py_ssize_t,
               c=Py_ssize_t, end=Py_ssize_t)
cpdef tuple _netstring(bytes data, Py_ssize_t start)

@cython.locals(text=str, converted=dict)
cpdef dict _decode_headers(bytes payload, Py_ssize_t terminator)

@cython.locals(start=Py_ssize_t, end=Py_ssize_t, headers=dict)
cpdef parse(data)
