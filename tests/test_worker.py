"""wsgid.worker.Worker's own decisions, without sockets (the serving loop
itself is tested through a fake mongrel2 in test_worker_sockets.py)."""

import resource

from wsgid.sources import Source as BaseSource
from wsgid.worker import Worker


class Source(BaseSource):
    left = False

    def leave(self):
        self.left = True


def worker(max_rss_mib):
    w = Worker(lambda environ, start_response: [], "tcp://127.0.0.1:1", "tcp://127.0.0.1:2",
               max_rss=max_rss_mib)
    w.source = Source()
    return w


def test_max_rss_asks_for_a_replacement_once_the_peak_passes_the_limit():
    """It serves on (never leaves by itself: the application may no longer
    load), and asks the master, which retires it once a replacement is ready."""
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    below, above = worker(peak_mib - 1), worker(peak_mib + 64)
    below._check_memory()
    above._check_memory()
    assert (below.alive, below.due, below.score.wants_replacement()) == (True, True, "max-rss")
    assert (above.alive, above.due, above.score.wants_replacement()) == (True, False, None)
    assert not below.source.left


def test_max_rss_off_by_default():
    assert worker(0).max_rss_kib == 0
    assert Worker(None, "tcp://127.0.0.1:1", "tcp://127.0.0.1:2").max_rss_kib == 0
