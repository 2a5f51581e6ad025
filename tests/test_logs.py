"""The log-line Throttle in counter.logs, driven by a fake clock."""

from __future__ import annotations

from counter.logs import Throttle

INTERVAL_S = 10.0


class FakeClock:
    """A monotonic clock that moves only when a test sets `now`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_throttle_allows_first_line() -> None:
    throttle = Throttle(INTERVAL_S, clock=FakeClock())

    assert throttle.allow() == 0


def test_throttle_allows_first_line_at_clock_zero() -> None:
    throttle = Throttle(INTERVAL_S, clock=FakeClock(now=0.0))

    assert throttle.allow() == 0


def test_throttle_suppresses_within_interval() -> None:
    clock = FakeClock()
    throttle = Throttle(INTERVAL_S, clock=clock)
    throttle.allow()

    clock.now += 1.0
    first = throttle.allow()
    clock.now += INTERVAL_S - 1.5
    second = throttle.allow()

    assert first is None
    assert second is None
    assert throttle.suppressed == 2


def test_throttle_reports_held_back_count() -> None:
    clock = FakeClock()
    throttle = Throttle(INTERVAL_S, clock=clock)
    throttle.allow()
    for _ in range(5):
        clock.now += 1.0
        throttle.allow()

    clock.now += INTERVAL_S
    held_back = throttle.allow()

    assert held_back == 5
    assert throttle.suppressed == 0


def test_throttle_allows_again_exactly_after_interval() -> None:
    clock = FakeClock()
    throttle = Throttle(INTERVAL_S, clock=clock)
    throttle.allow()

    clock.now += INTERVAL_S

    assert throttle.allow() == 0


def test_throttle_interval_restarts_at_each_allowed_line() -> None:
    clock = FakeClock()
    throttle = Throttle(INTERVAL_S, clock=clock)
    throttle.allow()
    clock.now += INTERVAL_S + 3.0
    throttle.allow()

    clock.now += INTERVAL_S - 1.0
    within = throttle.allow()
    clock.now += 1.0
    after = throttle.allow()

    assert within is None
    assert after == 1


def test_throttle_count_resets_between_windows() -> None:
    clock = FakeClock()
    throttle = Throttle(INTERVAL_S, clock=clock)
    reports = []
    for held_back in [3, 0, 2]:
        reports.append(throttle.allow())
        for _ in range(held_back):
            throttle.allow()
        clock.now += INTERVAL_S

    final = throttle.allow()

    assert reports == [0, 3, 0]
    assert final == 2
