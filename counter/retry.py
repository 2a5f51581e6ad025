"""Retry policy for daily-total delivery. Pure: no I/O.

Backoff is exponential with full jitter (the delay is drawn uniformly from zero up to
the exponential ceiling), so receivers that come back are not hit by synchronised waves.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

MAX_RETRY_AFTER_S = 3600.0
# 2**62 seconds is beyond any cap, and larger exponents would only cost big integers.
MAX_BACKOFF_EXPONENT = 62
TRANSIENT_4XX = frozenset({408, 425, 429})


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


def classify_status(status: int) -> Verdict:
    """Sort an HTTP status into delivered, retry later, or permanent failure.

    2xx is delivered. 408, 425, 429 and every 5xx are transient. Any other status,
    redirects included, means the request itself is wrong, so retrying cannot help.
    """
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status >= 500 or status in TRANSIENT_4XX:
        return Verdict.RETRY
    return Verdict.PERMANENT


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Parse a Retry-After header (RFC 9110, section 10.2.3) into seconds from `now`.

    Accepts delay-seconds or an HTTP-date. Returns None when absent or unparseable, and
    clamps the result to [0, MAX_RETRY_AFTER_S] so a bad header cannot stall delivery.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def backoff_delay_s(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Return the wait before retry number `attempt` (1 for the first retry)."""
    ceiling = min(cap_s, base_s * 2 ** min(attempt - 1, MAX_BACKOFF_EXPONENT))
    return rng.uniform(0.0, ceiling)


def retry_delay_s(
    attempt: int, retry_after_s: float | None, base_s: float, cap_s: float, rng: random.Random
) -> float:
    """Return the wait before the next try: at least the receiver's Retry-After, if it sent one.

    The backoff stays the floor, so `Retry-After: 0` or a date in the past cannot make
    every in-flight event retry in a tight loop.
    """
    backoff_s = backoff_delay_s(attempt, base_s, cap_s, rng)
    if retry_after_s is None:
        return backoff_s
    return max(retry_after_s, backoff_s)
