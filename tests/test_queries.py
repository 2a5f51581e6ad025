"""Validation of the GET /counts query string in counter.queries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from counter.errors import FieldError, InvalidInput
from counter.queries import CountsQuery, invalid_utf8_parameters, parse_counts_query

MAX_RANGE_DAYS = 31
VALID = {
    "account_id": "acc-1",
    "from": "2025-09-18T00:00:00Z",
    "to": "2025-09-19T00:00:00Z",
}


def with_params(**params: str) -> dict[str, str]:
    return {**VALID, **params}


def without(name: str) -> dict[str, str]:
    return {key: value for key, value in VALID.items() if key != name}


def errors_of(params: dict[str, str], max_range_days: int = MAX_RANGE_DAYS) -> dict[str, str]:
    """Return parameter -> detail of the InvalidInput that parse_counts_query raises."""
    with pytest.raises(InvalidInput) as caught:
        parse_counts_query(params, max_range_days)
    return {error.field: error.detail for error in caught.value.errors}


def test_parse_counts_query_valid() -> None:
    query = parse_counts_query(VALID, MAX_RANGE_DAYS)

    assert query == CountsQuery(
        account_id="acc-1",
        start=datetime(2025, 9, 18, tzinfo=UTC),
        end=datetime(2025, 9, 19, tzinfo=UTC),
    )


def test_parse_counts_query_converts_to_utc() -> None:
    params = with_params(**{"from": "2025-09-18T01:30:00+05:30", "to": "2025-09-18T22:10:00-03:00"})

    query = parse_counts_query(params, MAX_RANGE_DAYS)

    assert query.start == datetime(2025, 9, 17, 20, 0, tzinfo=UTC)
    assert query.end == datetime(2025, 9, 19, 1, 10, tzinfo=UTC)
    assert query.start.tzinfo is UTC
    assert query.end.tzinfo is UTC


def test_parse_counts_query_ignores_unknown_params() -> None:
    query = parse_counts_query(with_params(page="2"), MAX_RANGE_DAYS)

    assert query.account_id == "acc-1"


def test_parse_counts_query_requires_account_id() -> None:
    errors = errors_of(without("account_id"))

    assert errors == {"account_id": "is required"}


@pytest.mark.parametrize("name", ["from", "to"], ids=["from", "to"])
def test_parse_counts_query_requires_bound(name: str) -> None:
    errors = errors_of(without(name))

    assert list(errors) == [name]
    assert errors[name].startswith("is required and must be an RFC 3339 timestamp")


def test_parse_counts_query_no_params_reports_all() -> None:
    errors = errors_of({})

    assert list(errors) == ["account_id", "from", "to"]


@pytest.mark.parametrize(
    ("account_id", "fragment"),
    [
        ("", "must not be empty"),
        ("  ", "must not be empty"),
        ("a" * 257, "must be at most 256 characters"),
        ("acc\n1", "must not contain control characters"),
    ],
    ids=["empty", "spaces", "too-long", "control-char"],
)
def test_parse_counts_query_rejects_bad_account_id(account_id: str, fragment: str) -> None:
    errors = errors_of(with_params(account_id=account_id))

    assert list(errors) == ["account_id"]
    assert fragment in errors["account_id"]


@pytest.mark.parametrize("name", ["from", "to"], ids=["from", "to"])
@pytest.mark.parametrize(
    "value",
    ["2025-09-18T00:00:00", "2025-09-18", "yesterday", ""],
    ids=["no-offset", "date-only", "garbage", "empty"],
)
def test_parse_counts_query_rejects_bad_bound(name: str, value: str) -> None:
    errors = errors_of(with_params(**{name: value}))

    assert list(errors) == [name]
    assert errors[name].startswith("must be an RFC 3339 timestamp with a UTC offset")
    assert f"got {value!r}" in errors[name]
    assert "%2B" not in errors[name]


def test_parse_counts_query_hints_plus_sent_as_space() -> None:
    # An unencoded '+' in a query string is decoded as a space.
    errors = errors_of(with_params(**{"from": "2025-09-18T00:00:00 05:30"}))

    assert list(errors) == ["from"]
    assert "a '+' in a query string must be sent as %2B" in errors["from"]


def test_parse_counts_query_rejects_to_before_from() -> None:
    params = with_params(**{"from": "2025-09-18T10:00:00Z", "to": "2025-09-18T09:59:59Z"})

    errors = errors_of(params)

    assert errors == {"to": "must not be earlier than from"}


def test_parse_counts_query_accepts_to_equal_to_from() -> None:
    params = with_params(**{"from": "2025-09-18T10:00:00Z", "to": "2025-09-18T10:00:00Z"})

    query = parse_counts_query(params, MAX_RANGE_DAYS)

    assert query.start == query.end


def test_parse_counts_query_compares_bounds_in_utc() -> None:
    # 10:00+02:00 is 08:00Z, so `to` is an hour after `from` despite the smaller wall time.
    params = with_params(**{"from": "2025-09-18T07:00:00Z", "to": "2025-09-18T10:00:00+02:00"})

    query = parse_counts_query(params, MAX_RANGE_DAYS)

    assert query.end == datetime(2025, 9, 18, 8, 0, tzinfo=UTC)


def test_parse_counts_query_accepts_exactly_max_range() -> None:
    params = with_params(**{"from": "2025-09-01T00:00:00Z", "to": "2025-10-02T00:00:00Z"})

    query = parse_counts_query(params, MAX_RANGE_DAYS)

    assert (query.end - query.start).days == MAX_RANGE_DAYS


def test_parse_counts_query_rejects_over_max_range() -> None:
    params = with_params(**{"from": "2025-09-01T00:00:00Z", "to": "2025-10-02T00:00:00.000001Z"})

    errors = errors_of(params)

    assert list(errors) == ["to"]
    assert errors["to"] == f"must be at most {MAX_RANGE_DAYS} days after from; split the query"


def test_parse_counts_query_max_range_is_a_parameter() -> None:
    params = with_params(**{"from": "2025-09-01T00:00:00Z", "to": "2025-09-03T00:00:00Z"})

    assert parse_counts_query(params, 2).end == datetime(2025, 9, 3, tzinfo=UTC)
    assert "to" in errors_of(params, max_range_days=1)


def test_parse_counts_query_reports_all_errors() -> None:
    params = {"account_id": "", "from": "soon", "to": "later"}

    errors = errors_of(params)

    assert list(errors) == ["account_id", "from", "to"]


@pytest.mark.parametrize(
    ("query_string", "fields"),
    [
        (b"account_id=acc-%C3%BC&from=x", []),
        (b"account_id=%FF", ["account_id"]),
        (b"account_id=%ED%A0%80", ["account_id"]),
        (b"account_id=a&to=%C3", ["to"]),
    ],
    ids=["valid-utf8", "invalid-byte", "surrogate", "truncated-sequence"],
)
def test_invalid_utf8_parameters_named(query_string: bytes, fields: list[str]) -> None:
    errors = invalid_utf8_parameters(query_string)

    assert errors == [FieldError(field, "must be percent-encoded UTF-8") for field in fields]
