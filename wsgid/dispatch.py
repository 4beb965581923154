"""The master's side of ``--dispatch``: one object with one interface,
whichever the mode (see docs/dispatch.rst)."""

import os

from wsgid.broker import Broker


class Direct:
    """``direct``: every worker PULLs from mongrel2 itself; the master has
    no socket and nothing to do for a request."""

    sockets = ()
    version = 0  # the sockets never change
    spec = None  # what a worker connects to instead of mongrel2: nothing

    def new_slot(self):
        return None

    def add(self, pid, slot):
        pass

    def handle(self, events):
        pass

    def waiting(self):
        return False

    def status(self):
        """No requests wait in the master; it answers none itself."""
        return {"waiting": None, "answered_502": 0, "answered_503": 0}

    def retire(self, pid):
        pass

    def worker_gone(self, pid):
        pass

    def stop_taking(self):
        pass

    def close(self):
        pass


def create(options, app_path):
    """The dispatcher for ``options.dispatch``, made in the master."""
    if options.dispatch == "broker":
        # One connection to mongrel2 per worker (mongrel2's round robin then
        # weights the masters sharing it by their workers), once the workers
        # say their app serves no WebSockets (Broker._ready). In a chroot the
        # system's temp folder may not exist, the private folder goes in pid/.
        return Broker(options.recv, options.send, options.workers,
                      folder=os.path.join(app_path, "pid") if options.chroot else None)
    return Direct()
