"""wsgid.ticker: ticks while its owner is busy, parks when idle, wakes."""

import threading

import pytest

from tests.support.waiting import wait_for
from wsgid.ticker import Ticker

pytestmark = pytest.mark.one_mode  # see pyproject.toml


class Owner:
    def __init__(self):
        self.lock = threading.Lock()
        self.work = 0
        self.ticks = []
        self.ticker = Ticker("test-ticker", 0.001, 0.02, lambda: self.work > 0,
                             self.ticks.append, self.lock)


def test_ticks_while_busy_parks_when_idle_and_wakes():
    owner = Owner()
    ticker = owner.ticker
    ticker.wake()  # before start: nothing to wake
    assert ticker.parked
    ticker.start()
    with owner.lock:
        owner.work = 1
        ticker.wake()
    wait_for(lambda: len(owner.ticks) >= 3, 5, interval=0.001, what="ticks while busy")
    owner.work = 0
    wait_for(lambda: ticker.parked, 5, interval=0.001, what="parking once idle")
    parked_at = len(owner.ticks)
    with owner.lock:
        owner.work = 1
        ticker.wake()
    wait_for(lambda: len(owner.ticks) > parked_at, 5, interval=0.001, what="ticks after waking")
    ticker.stop()
    assert ticker._thread is None


def test_never_parks_while_busy():
    owner = Owner()
    owner.work = 1
    owner.ticker.start()
    owner.ticker.wake()
    wait_for(lambda: len(owner.ticks) >= 30, 5, interval=0.001, what="30 ticks")  # > idle
    assert not owner.ticker.parked
    owner.ticker.stop()
