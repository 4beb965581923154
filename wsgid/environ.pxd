# Types for Cython when it compiles environ.py (see setup.py).
cimport cython

from wsgid.message cimport Request

cdef dict _KEYS, _SERVER_NAMES, _TEMPLATE

cdef str _script_name(pattern, str path_info)

@cython.locals(headers=dict, environ=dict, path=str, keys=dict)
cpdef dict build(Request request, object wsgi_input=*, object errors=*)
