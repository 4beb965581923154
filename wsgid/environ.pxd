# Types for Cython when it compiles environ.py (see setup.py).
cimport cython

cdef dict _KEYS, _SERVER_NAMES

@cython.locals(headers=dict, environ=dict, path=str, keys=dict)
cpdef dict build(object request, object wsgi_input=*, object errors=*)
