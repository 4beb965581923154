"""Waiting on a condition with a deadline: what the tests do instead of
sleeping (a fixed sleep is too short on a loaded machine and too long on an
idle one)."""

import time


def wait_for(condition, timeout, interval=0.02, what="condition"):
    """Poll ``condition`` until it returns a true value (returned) or
    ``timeout`` seconds pass (TimeoutError naming ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)
