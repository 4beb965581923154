"""prometheus_client's multiprocess mode, wired through wsgid's lifecycle
hooks: put this file in the app folder's ``plugins/`` (or a
``--loader-dir``).

Each worker is a process of its own, so the application's metrics
(``Counter``, ``Histogram``, ``Gauge``) live in files of a shared folder,
one set per process, and whatever serves ``/metrics`` adds them up. The
folder must start empty and be in the environment before *any* process
imports prometheus_client (``on_starting``, in the master), and a gauge of
a worker that has exited must stop counting (``worker_exit``, run by the
master for a worker killed or crashed as well).

No ``post_fork`` is needed: prometheus_client names its files by
``os.getpid()`` and notices a fork by itself. Setting the folder in
``post_fork`` instead would be a trap: prometheus_client picks its
single- or multi-process mode once, when it is first imported, and the
master imports it in ``worker_exit`` (and for ``--metrics``), so every
worker forked after that would count in memory only.

The application then serves its metrics with::

    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    def metrics(environ, start_response):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
        start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
        return [body]

(wsgid's own metrics, ``--metrics``, are the master's and need none of this.)
"""

import glob
import os

# A folder of the app account's, outside the app's code: app/../prometheus.
FOLDER = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "prometheus")


def on_starting(master):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = FOLDER
    os.makedirs(FOLDER, exist_ok=True)
    for path in glob.glob(os.path.join(FOLDER, "*.db")):  # an earlier run's
        os.unlink(path)


def worker_exit(worker, reason):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid, FOLDER)
