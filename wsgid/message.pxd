# Types for Cython when it compiles message.py (see setup.py).
cimport cython

@cython.locals(colon=Py_ssize_t, end=Py_ssize_t)
cpdef tuple _netstring(bytes data, Py_ssize_t start)

@cython.locals(start=Py_ssize_t, end=Py_ssize_t, headers=dict)
cpdef parse(data)
