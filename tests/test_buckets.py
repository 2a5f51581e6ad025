"""Timestamp parsing, hour buckets, counting days and range iteration in counter.buckets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from counter.buckets import (
    counting_day,
    days_overlapping,
    epoch_us,
    format_utc,
    format_utc_ms,
    hour_bucket,
    parse_timestamp,
)


def utc(text: str) -> datetime:
    """Build an aware UTC datetime from `YYYY-MM-DDTHH:MM[:SS[.ffffff]]` without parse_timestamp."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-09-18T10:15:00Z", utc("2025-09-18T10:15:00")),
        ("2025-09-18T10:15:00+00:00", utc("2025-09-18T10:15:00")),
        ("2025-09-18T10:15:00+05:30", utc("2025-09-18T04:45:00")),
        ("2025-09-18T10:15:00-03:00", utc("2025-09-18T13:15:00")),
        ("2025-09-18T10:15:00.5Z", utc("2025-09-18T10:15:00.500000")),
        ("2025-09-18T10:15:00.123456Z", utc("2025-09-18T10:15:00.123456")),
        ("2025-09-18T10:15:00.123456+01:00", utc("2025-09-18T09:15:00.123456")),
    ],
    ids=["z", "plus-zero", "plus-0530", "minus-0300", "tenths", "micros", "micros-with-offset"],
)
def test_parse_timestamp_returns_utc(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)

    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2025-09-18",
        "2025-09-18T10:15:00",
        "2025-09-18T10:15:00.5",
        "yesterday",
        "T10:15:00Z",
        "2025-13-01T00:00:00Z",
        "2025-09-18T25:00:00Z",
        "2025-09-18T10:15:00+24:00",
        "2025-09-18T10:15:00 05:30",
        "1" * 65,
        "",
    ],
    ids=[
        "date-only",
        "naive",
        "naive-fraction",
        "word",
        "time-only",
        "month-13",
        "hour-25",
        "offset-24h",
        "plus-as-space",
        "over-64-chars",
        "empty",
    ],
)
def test_parse_timestamp_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


@pytest.mark.parametrize(
    "text",
    ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"],
    ids=["before-year-1-in-utc", "after-year-9999-in-utc"],
)
def test_parse_timestamp_overflow_raises_value_error(text: str) -> None:
    # Callers catch only ValueError and report the field, so any other
    # exception here becomes a 500 response instead of a 422 response.
    with pytest.raises(ValueError):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("text", "hour", "day"),
    [
        ("2025-09-18T10:15:00Z", utc("2025-09-18T10:00"), date(2025, 9, 18)),
        ("2025-09-18T01:30:00+05:30", utc("2025-09-17T20:00"), date(2025, 9, 17)),
        ("2025-09-18T22:10:00-03:00", utc("2025-09-19T01:00"), date(2025, 9, 19)),
        ("2025-09-18T10:45:00+00:30", utc("2025-09-18T10:00"), date(2025, 9, 18)),
        ("2025-09-18T00:00:00Z", utc("2025-09-18T00:00"), date(2025, 9, 18)),
        ("2025-09-18T23:59:59.999999Z", utc("2025-09-18T23:00"), date(2025, 9, 18)),
        ("2024-12-31T21:00:00-03:00", utc("2025-01-01T00:00"), date(2025, 1, 1)),
    ],
    ids=[
        "utc",
        "plus-0530-previous-day",
        "minus-0300-next-day",
        "half-hour-offset",
        "midnight",
        "last-microsecond",
        "next-year",
    ],
)
def test_hour_bucket_and_counting_day_use_utc(text: str, hour: datetime, day: date) -> None:
    moment = parse_timestamp(text)

    assert hour_bucket(moment) == hour
    assert counting_day(moment) == day


def test_hour_bucket_converts_other_offsets() -> None:
    moment = datetime(2025, 9, 18, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))

    bucket = hour_bucket(moment)

    assert bucket == utc("2025-09-17T20:00")
    assert bucket.tzinfo is UTC


def test_counting_day_converts_other_offsets() -> None:
    moment = datetime(2025, 9, 18, 22, 10, tzinfo=timezone(timedelta(hours=-3)))

    assert counting_day(moment) == date(2025, 9, 19)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2025-09-18T10:00", "2025-09-18T11:00", [18]),
        ("2025-09-18T23:30", "2025-09-19T00:00", [18]),
        ("2025-09-18T23:30", "2025-09-19T00:00:00.000001", [18, 19]),
        ("2025-09-18T00:00", "2025-09-21T00:00", [18, 19, 20]),
        ("2025-09-18T12:00", "2025-09-20T12:00", [18, 19, 20]),
        ("2025-09-18T00:00", "2025-09-18T00:00", []),
        ("2025-09-18T12:00", "2025-09-18T12:00", []),
    ],
    ids=[
        "within-one-day",
        "end-at-midnight",
        "end-past-midnight",
        "whole-days",
        "mid-day-both-ends",
        "empty-at-midnight",
        "empty-mid-day",
    ],
)
def test_days_overlapping_edges(start: str, end: str, expected: list[int]) -> None:
    days = list(days_overlapping(utc(start), utc(end)))

    assert days == [date(2025, 9, day) for day in expected]


def test_days_overlapping_uses_utc_dates() -> None:
    minus_three = timezone(timedelta(hours=-3))
    start = datetime(2025, 9, 18, 22, 0, tzinfo=minus_three)
    end = datetime(2025, 9, 18, 23, 0, tzinfo=minus_three)

    days = list(days_overlapping(start, end))

    assert days == [date(2025, 9, 19)]


@pytest.mark.parametrize(
    "text",
    [
        "2025-09-18T10:15:00.123456+05:30",
        "2025-09-18T01:45:00.123456-03:00",
        "2025-09-18T04:45:00.123456+00:00",
    ],
    ids=["plus-0530", "minus-0300", "utc"],
)
def test_epoch_us_same_for_same_instant(text: str) -> None:
    moment = datetime.fromisoformat(text)

    assert epoch_us(moment) == 1_758_170_700_123_456


def test_epoch_us_counts_from_unix_epoch() -> None:
    assert epoch_us(utc("1970-01-01T00:00")) == 0
    assert epoch_us(utc("1970-01-01T00:00:00.000001")) == 1
    assert epoch_us(utc("1969-12-31T23:59:59.999999")) == -1


def test_epoch_us_exact_for_far_dates() -> None:
    # A float timestamp would lose the last microsecond this far from 1970.
    moment = utc("9999-12-31T23:59:59.999999")

    assert epoch_us(moment) == 253_402_300_799_999_999


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc("2025-09-18T10:15:00"), "2025-09-18T10:15:00Z"),
        (utc("2025-09-18T10:15:07.999999"), "2025-09-18T10:15:07Z"),
        (
            datetime(2025, 9, 18, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2025-09-17T20:00:00Z",
        ),
    ],
    ids=["whole-seconds", "drops-fraction", "converts-offset"],
)
def test_format_utc_rfc3339(moment: datetime, expected: str) -> None:
    assert format_utc(moment) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc("2025-09-18T10:15:00"), "2025-09-18T10:15:00.000Z"),
        (utc("2025-09-18T10:15:00.007"), "2025-09-18T10:15:00.007Z"),
        (utc("2025-09-18T10:15:00.123999"), "2025-09-18T10:15:00.123Z"),
        (utc("2025-09-18T10:15:59.999999"), "2025-09-18T10:15:59.999Z"),
        (
            datetime(2025, 9, 18, 22, 10, 0, 250_000, tzinfo=timezone(timedelta(hours=-3))),
            "2025-09-19T01:10:00.250Z",
        ),
    ],
    ids=["zero-ms", "leading-zeros", "truncates", "last-ms", "converts-offset"],
)
def test_format_utc_ms_three_digits(moment: datetime, expected: str) -> None:
    assert format_utc_ms(moment) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-09-18t10:15:00z", datetime(2025, 9, 18, 10, 15, tzinfo=UTC)),
        ("2025-09-18 10:15:00+05:30", datetime(2025, 9, 18, 4, 45, tzinfo=UTC)),
        ("2025-09-18T10:15:00.123456789Z", datetime(2025, 9, 18, 10, 15, 0, 123456, tzinfo=UTC)),
        (
            "2025-09-18T10:15:00.123456789012-03:00",
            datetime(2025, 9, 18, 13, 15, 0, 123456, tzinfo=UTC),
        ),
    ],
    ids=["lowercase", "space-separator", "nanoseconds-truncated", "picoseconds-truncated"],
)
def test_parse_timestamp_accepts_rfc3339_variants(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2025-W38-4T10:15:00Z", "not in the form"),
        ("20250918T101500Z", "not in the form"),
        ("2025-09-18T10Z", "not in the form"),
        ("2025-09-18T10:15:00,5Z", "not in the form"),
        ("2025-09-18T10:15:00+05:30:15", "not in the form"),
        ("2025-02-30T00:00:00Z", "day is out of range"),
        ("2025-09-18T24:00:00Z", "hour must be in"),
        ("2025-09-18T23:59:60Z", "leap second"),
        ("2025-09-18T10:15:00+24:00", "offset hours must be 00 to 23"),
        ("2025-09-18T10:15:00+05:60", "offset minutes must be 00 to 59"),
        ("0001-01-01T00:30:00+01:00", "outside years 0001-9999"),
    ],
    ids=[
        "week-date",
        "basic-format",
        "hour-only",
        "comma-fraction",
        "offset-seconds",
        "february-30",
        "hour-24",
        "leap-second",
        "offset-24h",
        "offset-minute-60",
        "before-year-1",
    ],
)
def test_parse_timestamp_rejects_with_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_timestamp(text)


def test_days_overlapping_stops_at_last_day() -> None:
    start = datetime(9999, 12, 30, tzinfo=UTC)
    end = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)

    days = list(days_overlapping(start, end))

    assert days == [date(9999, 12, 30), date(9999, 12, 31)]


def test_format_utc_pads_early_years() -> None:
    moment = datetime(1, 1, 1, 0, 30, 0, 250000, tzinfo=UTC)

    assert format_utc(moment) == "0001-01-01T00:30:00Z"
    assert format_utc_ms(moment) == "0001-01-01T00:30:00.250Z"
