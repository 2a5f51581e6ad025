"""Time arithmetic for counting: RFC 3339 parsing, hour buckets and the counting day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

ONE_HOUR = timedelta(hours=1)
ONE_DAY = timedelta(days=1)


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 / ISO 8601 timestamp that carries an offset, and return it in UTC.

    Raises ValueError when the text is not a timestamp or has no offset, because a
    naive time would be counted in whatever zone the sender happened to mean.
    """
    if not text or not text[0].isdigit() or len(text) > 64:
        raise ValueError("not an ISO 8601 timestamp")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("timestamp has no UTC offset")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("timestamp is outside years 1-9999 in UTC") from exc


def hour_bucket(moment: datetime) -> datetime:
    """Return the start of the UTC hour that contains `moment`."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def counting_day(moment: datetime) -> date:
    """Return the calendar day whose total `moment` adds to: the UTC date.

    Every place that needs "the day of a message" calls this function, so the day's
    time zone can become a setting by changing it alone.
    """
    return moment.astimezone(UTC).date()


def hours_overlapping(start: datetime, end: datetime) -> Iterator[datetime]:
    """Yield each UTC hour whose span [hour, hour + 1h) overlaps [start, end)."""
    if end <= start:
        return
    hour = hour_bucket(start)
    while hour < end:
        yield hour
        hour += ONE_HOUR


def days_overlapping(start: datetime, end: datetime) -> Iterator[date]:
    """Yield each UTC date that contains at least one hour overlapping [start, end)."""
    if end <= start:
        return
    day = start.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    while day <= last:
        yield day
        day += ONE_DAY


def format_utc(moment: datetime) -> str:
    """Format a UTC datetime as RFC 3339 with a `Z` suffix and no fractional seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_utc_ms(moment: datetime) -> str:
    """Format a UTC datetime as RFC 3339 with milliseconds and a `Z` suffix."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def epoch_us(moment: datetime) -> int:
    """Return `moment` as whole microseconds since the Unix epoch, exact for any offset."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
