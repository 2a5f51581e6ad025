"""Logging set-up and a throttle for errors that can repeat thousands of times a second."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# How often a throttled error may be logged again.
LOG_INTERVAL_S = 5.0


def configure_logging(level: str) -> None:
    """Send `key=value` log lines to stderr at `level`. Later calls only change the level."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)


class Throttle:
    """Allows one log line per interval and counts the ones it held back."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.suppressed = 0
        self._next_allowed = 0.0

    def allow(self) -> int | None:
        """Return how many lines were held back since the last allowed one, or None to skip."""
        now = self.clock()
        if now < self._next_allowed:
            self.suppressed += 1
            return None
        self._next_allowed = now + self.interval_s
        held_back, self.suppressed = self.suppressed, 0
        return held_back
