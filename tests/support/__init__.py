"""What the tests and the benchmarks (bench/) share, one module a job:

- :mod:`tests.support.mongrel2`: a real mongrel2 on loopback, free ports;
- :mod:`tests.support.waiting`: ``wait_for``, a condition polled with a deadline;
- :mod:`tests.support.wsgid`: app folders, the ``wsgid`` command and :class:`Wsgid`,
  the one way to start it (foreground, daemonized, behind mongrel2 or a peer), and a
  master that does not answer ``status --verbose``;
- :mod:`tests.support.peer`: the test playing mongrel2 over ZeroMQ;
- :mod:`tests.support.wire`: raw mongrel2 messages and HTTP responses;
- :mod:`tests.support.fuzz`: random and hostile messages;
- :mod:`tests.support.http`: HTTP requests through mongrel2;
- :mod:`tests.support.downloads`: big downloads, their sha256 and a worker's peak RSS;
- :mod:`tests.support.procfs`: readings from /proc;
- :mod:`tests.support.inotify`: who touched a file.

bench/common.py puts the repository root on ``sys.path`` to import it.
"""

import os

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS)
APPS = os.path.join(TESTS, "apps")  # the WSGI apps the tests serve
