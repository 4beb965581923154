"""Random mongrel2 messages, valid and hostile, from a seeded random.Random.

Used by the live fuzz test (fast, no hypothesis) and as explicit examples in
the property tests.
"""

from tests.support import wire
from tests.support.wire import SENDER

METHODS = ("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH")
# Paths of tests/apps/e2e_app.py that answer at once (never /sleep, /endless,
# /download: a mutated message must not make the worker sleep or stream).
PATHS = ("/", "/gen", "/write", "/boom", "/sha256", "/a/b%20c", "/caf%C3%A9")
HEADER_NAMES = ("host", "accept", "user-agent", "cookie", "x-forwarded-for", "content-type",
                "accept-encoding", "x-custom", "x_underscore", "connection")


def _text(rng, alphabet=None, size=12):
    n = rng.randrange(size)
    if alphabet is None:
        return "".join(chr(rng.randrange(256)) for _ in range(n))
    return "".join(rng.choice(alphabet) for _ in range(n))


def valid_headers(rng, path=None, body=b""):
    path = path or rng.choice(PATHS)
    method = rng.choice(METHODS)
    headers = {"PATH": path, "METHOD": method, "VERSION": rng.choice(("HTTP/1.1", "HTTP/1.0")),
               "URI": path, "PATTERN": "/", "URL_SCHEME": "http", "REMOTE_ADDR": "127.0.0.1",
               "host": "localhost:%d" % rng.randrange(1, 65536)}
    if rng.random() < 0.3:
        headers["QUERY"] = _text(rng, "abc=&%20")
        headers["URI"] += "?" + headers["QUERY"]
    for _ in range(rng.randrange(4)):
        name = rng.choice(HEADER_NAMES)
        if name in ("connection",):
            value = rng.choice(("close", "keep-alive"))
        else:
            value = _text(rng)
        if rng.random() < 0.15:
            value = [value, _text(rng)]
        headers[name] = value
    if body:
        headers["content-length"] = str(len(body))
    return headers


def valid_message(rng, conn_id=None, protocol=None, path=None):
    body = bytes(rng.randrange(256) for _ in range(rng.choice((0, 0, 3, 40))))
    headers = valid_headers(rng, path, body)
    return wire.request(headers, body, protocol or rng.choice(("json", "tnetstring")),
                        sender=SENDER, conn_id=b"%d" % (conn_id if conn_id is not None
                                                        else rng.randrange(1, 10 ** 6)))


def control_message(rng):
    body = rng.choice((b'{"type":"disconnect"}', b'{"type":"credits","credits":4096}', b"{}",
                       b"not json"))
    return wire.control(body, rng.choice(("json", "tnetstring")), sender=SENDER,
                        conn_id=b"%d" % rng.randrange(1, 10 ** 6))


def mutate(rng, data, others=()):
    """One to four random edits: bit flips, truncation, splices, insertions,
    deletions, duplicated spans, digits changed in a length prefix."""
    data = bytearray(data)
    for _ in range(rng.randrange(1, 5)):
        op = rng.randrange(8)
        n = len(data)
        if op == 0 and n:                                  # bit flip
            i = rng.randrange(n)
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:                                # truncate
            del data[rng.randrange(n):]
        elif op == 2 and others:                           # splice with another message
            other = rng.choice(others)
            cut = rng.randrange(n + 1)
            data = data[:cut] + other[rng.randrange(len(other) + 1):]
        elif op == 3:                                      # insert random bytes
            i = rng.randrange(n + 1)
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        elif op == 4 and n:                                # delete a span
            i = rng.randrange(n)
            del data[i:i + rng.randrange(1, 16)]
        elif op == 5 and n:                                # duplicate a span
            i = rng.randrange(n)
            data[i:i] = data[i:i + rng.randrange(1, 32)]
        elif op == 6:                                      # change a length prefix
            colons = [i for i, c in enumerate(data) if c == ord(":")]
            if colons:
                i = rng.choice(colons)
                data[i:i] = str(rng.choice((0, 1, 9, 99, 10 ** 9, 10 ** 12))).encode()
        elif op == 7 and n:                                # swap a byte for a delimiter
            data[rng.randrange(n)] = rng.choice(b" :,}]~!^#{")
    return bytes(data)


def random_bytes(rng):
    n = rng.choice((0, 1, 5, 30, 200, 2000))
    raw = bytes(rng.randrange(256) for _ in range(n))
    if rng.random() < 0.5:  # a plausible envelope in front of garbage
        raw = SENDER + b" %d / " % rng.randrange(10 ** 6) + raw
    return raw


def hostile_messages(rng, count):
    """``count`` messages: mostly mutated valid ones, some pure garbage, some
    valid and control messages among them."""
    pool = [valid_message(rng) for _ in range(64)]
    out = []
    for _ in range(count):
        r = rng.random()
        if r < 0.6:
            out.append(mutate(rng, rng.choice(pool), pool))
        elif r < 0.8:
            out.append(random_bytes(rng))
        elif r < 0.9:
            out.append(control_message(rng))
        else:
            out.append(valid_message(rng))
    return out


# -- messages that break the parser itself (found by these tests) -----------------

def _json_msg(payload, body=b""):
    return SENDER + b" 1 / %d:%s,%d:%s," % (len(payload), payload, len(body), body)


def _tnet_msg(payload, body=b""):
    return SENDER + b" 1 / %d:%s}%d:%s," % (len(payload), payload, len(body), body)


def _deep_tnet(depth):
    x = b"0:]"
    for _ in range(depth):
        x = b"%d:%s]" % (len(x), x)
    return x


PARSER_CRASHERS = {
    # JSON nested deeper than the recursion limit: RecursionError
    "deep-json-array": _json_msg(b"[" * 100000),
    "deep-json-object": _json_msg(b'{"a":' * 100000),
    # tnetstring dict whose key is a list or dict: TypeError (unhashable)
    "tnet-list-key": _tnet_msg(b"0:]0:~"),
    "tnet-dict-key": _tnet_msg(b"0:}0:~"),
    # tnetstring nested deeper than tnetstring's limit: RecursionError
    "deep-tnet": _tnet_msg(b"1:a," + _deep_tnet(3000)),
}

