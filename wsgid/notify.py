"""systemd's sd_notify protocol: READY/RELOADING/STOPPING and STATUS to $NOTIFY_SOCKET.

With ``Type=notify`` (and ``--no-daemon``) systemd learns when the master
is serving, reloading or stopping; without NOTIFY_SOCKET this does nothing.
"""

import os
import socket
import time


def notify(*fields):
    """Send ``fields`` (``"READY=1"``, ...) as one datagram; True if sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(fields).encode(), address)
    except OSError:
        return False
    return True


def ready(status="Serving"):
    """Serving; after a reload too, failed or not (``status`` says which:
    the old workers serve on when the new ones cannot start)."""
    return notify("READY=1", "STATUS=%s" % status, "MAINPID=%d" % os.getpid())


def reloading():
    # MONOTONIC_USEC lets systemd >= 253 tie the reload to this request.
    return notify("RELOADING=1", "STATUS=Reloading",
                  "MONOTONIC_USEC=%d" % (time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000))


def stopping():
    return notify("STOPPING=1", "STATUS=Stopping")
