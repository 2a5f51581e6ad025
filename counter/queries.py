"""Validation of the GET /counts query string. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from counter.buckets import parse_timestamp
from counter.errors import FieldError, InvalidInput
from counter.messages import TIMESTAMP_EXPECTED, check_id_text


@dataclass(frozen=True)
class CountsQuery:
    """A validated /counts query: hours overlapping [start, end), both in UTC."""

    account_id: str
    start: datetime
    end: datetime


def parse_counts_query(params: Mapping[str, str], max_range_days: int) -> CountsQuery:
    """Validate `account_id`, `from` and `to`. Raises InvalidInput naming each bad parameter."""
    errors: list[FieldError] = []

    account_id = params.get("account_id")
    if account_id is None:
        errors.append(FieldError("account_id", "is required"))
    else:
        problem = check_id_text(account_id)
        if problem is not None:
            errors.append(FieldError("account_id", problem))

    start = _parse_bound(params, "from", errors)
    end = _parse_bound(params, "to", errors)
    if start is not None and end is not None:
        _check_range(start, end, max_range_days, errors)

    if errors or account_id is None or start is None or end is None:
        raise InvalidInput(errors)
    return CountsQuery(account_id=account_id, start=start, end=end)


def invalid_utf8_parameters(query_string: bytes) -> list[FieldError]:
    """Name each parameter whose percent-decoded value is not valid UTF-8.

    A lenient decoder would turn such bytes into U+FFFD and query another account.
    """
    pairs = parse_qsl(query_string.decode("latin-1"), errors="surrogateescape")
    errors = []
    for name, value in pairs:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            field = name.encode("utf-8", "replace").decode("utf-8")
            errors.append(FieldError(field, "must be percent-encoded UTF-8"))
    return errors


def _parse_bound(params: Mapping[str, str], name: str, errors: list[FieldError]) -> datetime | None:
    expected = TIMESTAMP_EXPECTED
    raw = params.get(name)
    if raw is None:
        errors.append(FieldError(name, f"is required and {expected}"))
        return None
    try:
        return parse_timestamp(raw)
    except ValueError as exc:
        hint = " (a '+' in a query string must be sent as %2B)" if " " in raw else ""
        errors.append(FieldError(name, f"{expected}; got {raw[:64]!r}, {exc}{hint}"))
        return None


def _check_range(
    start: datetime, end: datetime, max_range_days: int, errors: list[FieldError]
) -> None:
    if end < start:
        errors.append(FieldError("to", "must not be earlier than from"))
    elif end - start > timedelta(days=max_range_days):
        errors.append(
            FieldError("to", f"must be at most {max_range_days} days after from; split the query")
        )
