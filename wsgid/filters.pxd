# Types for Cython when it compiles filters.py (see setup.py): the worker
# calls the runners in C: without filters, they cost a request next to nothing.

cdef list _pre, _post, _exception

cpdef run_pre_request(request, environ)
cpdef wrap_start_response(request, start_response)
