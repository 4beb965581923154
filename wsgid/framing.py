"""Request framing: the requests whose body mongrel2 may have framed
otherwise than the client or a proxy in front meant, refused with 400 and
the connection closed (RFC 9112 section 6.3).

mongrel2 1.12 decodes a ``Transfer-Encoding`` of exactly ``chunked`` and
nothing else, takes the first ``Content-Length`` even beside
``Transfer-Encoding``, and reads a ``Content-Length`` it cannot parse (or
above 2**31-1) as 0. It passes every such header on, so the message says
which case it was.
"""


def refusal(headers, body_length):
    """Why the request is refused, or None. ``body_length``: the bytes of
    body in the message, None when mongrel2 spooled the body to a file."""
    encoding = headers.get("transfer-encoding")
    length = headers.get("content-length")  # digits, or refused by message.parse
    if encoding is not None:
        if length is not None:
            return "Transfer-Encoding with Content-Length"
        if encoding != "chunked":
            return "Transfer-Encoding %r: mongrel2 decodes chunked alone" % (encoding,)
        if body_length is not None:  # mongrel2 spools every chunked body
            return "chunked body not spooled"
    elif length is not None and body_length is not None and int(length) != body_length:
        return "Content-Length %s for a body of %d bytes" % (length, body_length)
    return None
