"""Time arithmetic for counting: RFC 3339 parsing, hour buckets and the counting day."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

ONE_HOUR = timedelta(hours=1)
ONE_DAY = timedelta(days=1)

# RFC 3339, section 5.6: date-time = full-date "T" full-time, with "t" and "z" allowed in
# lower case (section 5.6, note on case) and a space allowed in place of "T" (section 5.6,
# the note below the grammar). The offset is required.
RFC3339_PATTERN = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:(?P<second>[0-9]{2})(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?P<offset_hour>[0-9]{2}):(?P<offset_minute>[0-9]{2}))"
)


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp, which always carries an offset, and return it in UTC.

    Raises ValueError saying what is wrong. A time without an offset is rejected because it
    would be counted in whatever zone the sender happened to mean. Digits beyond
    microseconds are dropped, because Python's datetime stops there.
    """
    match = RFC3339_PATTERN.fullmatch(text)
    if match is None:
        raise ValueError("not in the form YYYY-MM-DDTHH:MM:SS[.fraction] with Z, +HH:MM or -HH:MM")
    if match["second"] == "60":
        raise ValueError("a leap second (:60) cannot be counted; send :59 of that minute instead")
    if match["offset_hour"] is not None and int(match["offset_hour"]) > 23:
        raise ValueError("the offset hours must be 00 to 23")
    if match["offset_minute"] is not None and int(match["offset_minute"]) > 59:
        raise ValueError("the offset minutes must be 00 to 59")
    normalised = text.upper().replace(" ", "T").replace("Z", "+00:00")
    head, dot, rest = normalised.partition(".")
    if dot:
        digits = rest[: len(rest) - 6]
        normalised = f"{head}.{digits[:6].ljust(6, '0')}{rest[-6:]}"
    try:
        parsed = datetime.fromisoformat(normalised)
    except ValueError as exc:
        raise ValueError(f"not a valid date or time: {exc}") from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("outside years 0001-9999 once converted to UTC") from None


def hour_bucket(moment: datetime) -> datetime:
    """Return the start of the UTC hour that contains `moment`."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def counting_day(moment: datetime) -> date:
    """Return the calendar day whose total `moment` adds to: the UTC date.

    Every place that needs "the day of a message" calls this function, so the day's
    time zone can become a setting by changing it alone.
    """
    return moment.astimezone(UTC).date()


def days_overlapping(start: datetime, end: datetime) -> Iterator[date]:
    """Yield each UTC date that contains at least one hour overlapping [start, end)."""
    if end <= start:
        return
    day = start.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    while day <= last:
        yield day
        if day == date.max:
            return
        day += ONE_DAY


def format_utc(moment: datetime) -> str:
    """Format a UTC datetime as RFC 3339 with a `Z` suffix and no fractional seconds."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="seconds") + "Z"


def format_utc_ms(moment: datetime) -> str:
    """Format a UTC datetime as RFC 3339 with milliseconds and a `Z` suffix."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def epoch_us(moment: datetime) -> int:
    """Return `moment` as whole microseconds since the Unix epoch, exact for any offset."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
