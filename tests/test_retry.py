"""Status classification, Retry-After parsing and backoff in counter.retry."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest

from counter.retry import (
    MAX_RETRY_AFTER_S,
    Verdict,
    backoff_delay_s,
    classify_status,
    parse_retry_after,
    retry_delay_s,
)

NOW = datetime(2025, 9, 18, 10, 15, 0, tzinfo=UTC)
BASE_S = 0.5
CAP_S = 300.0
DRAWS_PER_ATTEMPT = 200


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (299, Verdict.DELIVERED),
        (408, Verdict.RETRY),
        (425, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (599, Verdict.RETRY),
        (100, Verdict.PERMANENT),
        (301, Verdict.PERMANENT),
        (307, Verdict.PERMANENT),
        (400, Verdict.PERMANENT),
        (401, Verdict.PERMANENT),
        (404, Verdict.PERMANENT),
        (410, Verdict.PERMANENT),
        (422, Verdict.PERMANENT),
    ],
    ids=lambda value: str(value),
)
def test_classify_status(status: int, verdict: Verdict) -> None:
    assert classify_status(status) is verdict


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 30 ", 30.0),
        ("3600", 3600.0),
        ("3601", MAX_RETRY_AFTER_S),
        ("99999999999999999999", MAX_RETRY_AFTER_S),
        ("9" * 400, MAX_RETRY_AFTER_S),
    ],
    ids=["zero", "seconds", "padded", "at-max", "over-max", "huge", "overflows-float"],
)
def test_parse_retry_after_seconds(header: str, expected: float) -> None:
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Thu, 18 Sep 2025 10:17:00 GMT", 120.0),
        ("Thu, 18 Sep 2025 12:17:00 +0200", 120.0),
        ("Thu, 18 Sep 2025 10:17:00 -0000", 120.0),
        ("Thu, 18 Sep 2025 10:15:00 GMT", 0.0),
        ("Thu, 18 Sep 2025 10:00:00 GMT", 0.0),
        ("Wed, 01 Jan 2020 00:00:00 GMT", 0.0),
        ("Thu, 18 Sep 2025 11:15:00 GMT", 3600.0),
        ("Fri, 19 Sep 2025 10:15:00 GMT", MAX_RETRY_AFTER_S),
    ],
    ids=[
        "future-gmt",
        "future-offset",
        "future-unknown-zone",
        "now",
        "past",
        "long-past",
        "at-max",
        "over-max",
    ],
)
def test_parse_retry_after_http_date(header: str, expected: float) -> None:
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    "header",
    ["", "soon", "-5", "1.5", "1e3", "Thu, 99 Sep 2025 10:17:00 GMT", "²"],
    ids=[
        "empty",
        "word",
        "negative",
        "fraction",
        "exponent",
        "bad-date",
        "superscript-digit",
    ],
)
def test_parse_retry_after_garbage_is_none(header: str) -> None:
    # "²" passes str.isdigit() but float() rejects it. RFC 9110 delay-seconds are ASCII digits.
    assert parse_retry_after(header, NOW) is None


def test_parse_retry_after_absent_is_none() -> None:
    assert parse_retry_after(None, NOW) is None


@pytest.mark.parametrize(
    "attempt", [1, 2, 3, 5, 10, 11, 30, 63, 64, 1000], ids=lambda n: f"try-{n}"
)
def test_backoff_delay_within_ceiling(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(CAP_S, BASE_S * 2 ** (attempt - 1))

    delays = [backoff_delay_s(attempt, BASE_S, CAP_S, rng) for _ in range(DRAWS_PER_ATTEMPT)]

    assert min(delays) >= 0.0
    assert max(delays) <= ceiling


@pytest.mark.parametrize("attempt", [1, 2, 4, 8, 10, 20], ids=lambda n: f"try-{n}")
def test_backoff_delay_uses_full_jitter(attempt: int) -> None:
    # Full jitter spreads draws over the whole [0, ceiling], not just near the top.
    rng = random.Random(attempt)
    ceiling = min(CAP_S, BASE_S * 2 ** (attempt - 1))

    delays = [backoff_delay_s(attempt, BASE_S, CAP_S, rng) for _ in range(DRAWS_PER_ATTEMPT)]

    assert min(delays) < ceiling * 0.1
    assert max(delays) > ceiling * 0.9


def test_backoff_ceiling_grows_then_caps() -> None:
    # Random.uniform(0, ceiling) is ceiling * random(), so with one seed every attempt's
    # delay is its ceiling times the same draw.
    draw = random.Random(7).random()
    expected = {1: 0.5, 2: 1.0, 3: 2.0, 4: 4.0, 9: 128.0, 10: 256.0, 11: 300.0, 20: 300.0}

    for attempt, ceiling in expected.items():
        delay = backoff_delay_s(attempt, BASE_S, CAP_S, random.Random(7))
        assert delay == pytest.approx(ceiling * draw), attempt


@pytest.mark.parametrize(
    "attempt", [10**6, 10**18, 2**64], ids=["million", "10-pow-18", "2-pow-64"]
)
def test_backoff_huge_attempt_does_not_overflow(attempt: int) -> None:
    delay = backoff_delay_s(attempt, BASE_S, CAP_S, random.Random(1))

    assert math.isfinite(delay)
    assert 0.0 <= delay <= CAP_S


def test_backoff_seeded_rng_repeats() -> None:
    first = [backoff_delay_s(n, BASE_S, CAP_S, random.Random(42)) for n in range(1, 12)]
    second = [backoff_delay_s(n, BASE_S, CAP_S, random.Random(42)) for n in range(1, 12)]

    assert first == second


@pytest.mark.parametrize("retry_after_s", [10.0, 3600.0], ids=["seconds", "max"])
def test_retry_delay_honours_retry_after(retry_after_s: float) -> None:
    delay = retry_delay_s(5, retry_after_s, BASE_S, CAP_S, random.Random(1))

    assert delay == retry_after_s


@pytest.mark.parametrize("retry_after_s", [0.0, 0.001], ids=["zero", "tiny"])
def test_retry_delay_keeps_backoff_floor(retry_after_s: float) -> None:
    delay = retry_delay_s(5, retry_after_s, BASE_S, CAP_S, random.Random(1))

    assert delay == backoff_delay_s(5, BASE_S, CAP_S, random.Random(1))
    assert delay > retry_after_s


def test_retry_delay_falls_back_to_backoff() -> None:
    delay = retry_delay_s(3, None, BASE_S, CAP_S, random.Random(9))

    assert delay == backoff_delay_s(3, BASE_S, CAP_S, random.Random(9))
