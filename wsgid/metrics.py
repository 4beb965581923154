"""``--metrics HOST:PORT``: the master serves Prometheus' text exposition
on ``GET /metrics`` (through :mod:`wsgid.endpoint`), from what it has
already -- the workers' scores (:mod:`wsgid.scoreboard`), the dispatcher's
counters, its own record of reloads and worker exits. No worker is asked
anything. The exposition is prometheus_client's (``generate_latest``), from
a collector that reads the master's state at each scrape; the master
imports this module only with ``--metrics``, after ``on_starting`` (see
examples/hooks/prometheus_multiprocess.py).
"""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)

from wsgid import hooks, scoreboard
from wsgid.endpoint import Endpoint


class Collector:
    """The master's state as metric families, read at each scrape.
    :meth:`worker_gone` keeps the counts of a worker that exited, so the
    counters never go back."""

    def __init__(self, master):
        self.master = master
        self.fronts = list(master.options.recv)
        self.gone_classes = [[0] * len(scoreboard.CLASSES) for _ in self.fronts]
        self.gone_buckets = [0] * (len(scoreboard.BUCKETS) + 1)
        self.gone_sum = 0.0

    def worker_gone(self, score):
        by_class, buckets, total, _ = score.totals()
        for mine, theirs in zip(self.gone_classes, by_class):
            for i, n in enumerate(theirs):
                mine[i] += n
        for i, n in enumerate(buckets):
            self.gone_buckets[i] += n
        self.gone_sum += total

    def collect(self):
        master = self.master
        classes = [list(row) for row in self.gone_classes]
        buckets, total = list(self.gone_buckets), self.gone_sum
        states = dict.fromkeys(("idle", "busy", "starting", "leaving"), 0)
        uploads = 0
        for worker in master.workers.values():
            by_class, their_buckets, their_sum, uploading = worker.score.totals()
            for mine, theirs in zip(classes, by_class):
                for i, n in enumerate(theirs):
                    mine[i] += n
            for i, n in enumerate(their_buckets):
                buckets[i] += n
            total += their_sum
            uploads += uploading
            if worker.retiring:
                states["leaving"] += 1
            elif not worker.ready:
                states["starting"] += 1
            else:
                states["busy" if worker.score.read()[1] else "idle"] += 1

        requests = CounterMetricFamily(
            "wsgid_requests", "Requests the workers finished, by mongrel2 front-end (its "
            "send_spec) and status class (none: no reply, the client gone).",
            labels=["front_end", "status_class"])
        for front, row in zip(self.fronts, classes):
            for name, n in zip(scoreboard.CLASSES, row):
                requests.add_metric([front, name], n)
        yield requests

        duration = HistogramMetricFamily(
            "wsgid_request_duration_seconds", "Time a worker took over a request, "
            "from taking it to finishing its reply.")
        cumulative, running = [], 0
        for bound, n in zip([repr(b) for b in scoreboard.BUCKETS] + ["+Inf"], buckets):
            running += n
            cumulative.append((bound, running))
        duration.add_metric([], cumulative, total)
        yield duration

        workers = GaugeMetricFamily("wsgid_workers", "Worker processes by state.",
                                    labels=["state"])
        for name, n in states.items():
            workers.add_metric([name], n)
        yield workers

        status = master.dispatcher.status()
        if status["waiting"] is not None:
            yield GaugeMetricFamily("wsgid_broker_waiting_requests",
                                    "Requests waiting in the master for a free worker "
                                    "(broker dispatch).", value=status["waiting"])
        answered = CounterMetricFamily("wsgid_master_answered", "Requests the master "
                                       "answered itself: 502 (its worker died), 503 "
                                       "(stopping).", labels=["status"])
        for code in (502, 503):
            answered.add_metric([str(code)], status["answered_%d" % code])
        yield answered

        exits = CounterMetricFamily("wsgid_worker_exits", "Workers that exited, by reason.",
                                    labels=["reason"])
        for reason in hooks.EXIT_REASONS:
            exits.add_metric([reason], master.exits[reason])
        yield exits

        reload = master.last_reload or {}
        outcome = GaugeMetricFamily("wsgid_last_reload", "The last reload's outcome: 1 "
                                    "for the one it had (none before any reload).",
                                    labels=["outcome"])
        for name in ("pending", "done", "failed"):
            outcome.add_metric([name], int(reload.get("outcome") == name))
        yield outcome
        yield GaugeMetricFamily("wsgid_generation", "Reloads since the master started.",
                                value=master.generation)
        yield GaugeMetricFamily("wsgid_uploads_in_progress", "Requests with an async upload "
                                "body (mongrel2's temp file) in a worker's hands.",
                                value=uploads)


class Metrics:
    """The endpoint and the collector of one master."""

    def __init__(self, master, where):
        self.collector = Collector(master)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self.endpoint = Endpoint(where, lambda: generate_latest(self.registry))

    def worker_gone(self, score):
        self.collector.worker_gone(score)
