# Types for Cython when it compiles message.py (see setup.py).
cimport cython

cdef Py_ssize_t _COMMA, _BRACE, _QUOTE, _BACKSLASH, _COLON, _OPEN, _LIST, _END_LIST

@cython.locals(size=Py_ssize_t, limit=Py_ssize_t, length=Py_ssize_t, i=Py_ssize_t,
               c=Py_ssize_t, end=Py_ssize_t)
cpdef tuple _netstring(bytes data, Py_ssize_t start)

@cython.locals(c=Py_ssize_t)
cdef Py_ssize_t _json_string_end(bytes data, Py_ssize_t i, Py_ssize_t end)

@cython.locals(i=Py_ssize_t, j=Py_ssize_t, headers=dict, values=list)
cpdef dict _fast_json_headers(bytes data, Py_ssize_t start, Py_ssize_t end)

@cython.locals(text=str, converted=dict, terminator=Py_ssize_t)
cpdef dict _decode_headers(bytes data, Py_ssize_t start, Py_ssize_t end)

@cython.locals(start=Py_ssize_t, end=Py_ssize_t, headers=dict)
cpdef parse(data)

cpdef bytes reply(sender, conn_ids, body)

cdef class Request:
    cdef public object sender, conn_id, path, body
    cdef public dict headers
