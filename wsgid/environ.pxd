# Types for Cython when it compiles environ.py (see setup.py).
cimport cython

@cython.locals(headers=dict, environ=dict, path=str)
cpdef dict build(object request, object wsgi_input=*, object errors=*)
