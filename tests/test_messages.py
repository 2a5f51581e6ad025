"""Validation of message webhook bodies in counter.messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from counter.errors import InvalidInput
from counter.messages import MAX_ID_LENGTH, Message, parse_message

VALID: dict[str, Any] = {
    "message_id": "m-1",
    "account_id": "acc-1",
    "created_at": "2025-09-18T10:15:00Z",
}


def with_fields(**fields: Any) -> dict[str, Any]:
    return {**VALID, **fields}


def without(field: str) -> dict[str, Any]:
    return {name: value for name, value in VALID.items() if name != field}


def errors_of(payload: Any) -> dict[str, str]:
    """Return field -> detail of the InvalidInput that parse_message raises for `payload`."""
    with pytest.raises(InvalidInput) as caught:
        parse_message(payload)
    return {error.field: error.detail for error in caught.value.errors}


def test_parse_message_valid() -> None:
    message = parse_message(VALID)

    assert message == Message(
        message_id="m-1",
        account_id="acc-1",
        created_at=datetime(2025, 9, 18, 10, 15, tzinfo=UTC),
    )


def test_parse_message_converts_created_at_to_utc() -> None:
    message = parse_message(with_fields(created_at="2025-09-18T01:30:00+05:30"))

    assert message.created_at == datetime(2025, 9, 17, 20, 0, tzinfo=UTC)
    assert message.created_at.tzinfo is UTC


def test_parse_message_ignores_unknown_fields() -> None:
    message = parse_message(with_fields(text="hello", channel={"id": 7}, extra=None))

    assert message.message_id == "m-1"
    assert message.account_id == "acc-1"


@pytest.mark.parametrize(
    "metadata",
    [None, {}, {"source": "ios", "nested": {"a": [1, 2]}}],
    ids=["null", "empty-object", "object"],
)
def test_parse_message_accepts_metadata(metadata: Any) -> None:
    message = parse_message(with_fields(metadata=metadata))

    assert message.message_id == "m-1"


def test_parse_message_metadata_optional() -> None:
    assert "metadata" not in VALID

    message = parse_message(VALID)

    assert message.account_id == "acc-1"


@pytest.mark.parametrize(
    "field",
    ["message_id", "account_id"],
    ids=["message-id", "account-id"],
)
@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("\t\n", "must not be empty"),
        (42, "must be a string, not a number"),
        (1.5, "must be a string, not a number"),
        (True, "must be a string, not a boolean"),
        (None, "must be a string, not null"),
        (["m-1"], "must be a string, not an array"),
        ({"id": "m-1"}, "must be a string, not an object"),
        ("x" * (MAX_ID_LENGTH + 1), "must be at most 256 characters, not 257"),
        ("m\n1", "must not contain control characters"),
        ("m\x001", "must not contain control characters"),
        ("m\x7f", "must not contain control characters"),
        ("m\x85", "must not contain control characters"),
    ],
    ids=[
        "empty",
        "spaces",
        "whitespace",
        "int",
        "float",
        "bool",
        "null",
        "array",
        "object",
        "257-chars",
        "newline",
        "nul",
        "delete",
        "c1-control",
    ],
)
def test_parse_message_rejects_bad_id(field: str, value: Any, fragment: str) -> None:
    errors = errors_of(with_fields(**{field: value}))

    assert list(errors) == [field]
    assert fragment in errors[field]


@pytest.mark.parametrize(
    "field",
    ["message_id", "account_id"],
    ids=["message-id", "account-id"],
)
def test_parse_message_requires_id(field: str) -> None:
    errors = errors_of(without(field))

    assert errors == {field: "is required"}


@pytest.mark.parametrize(
    "field",
    ["message_id", "account_id"],
    ids=["message-id", "account-id"],
)
def test_parse_message_id_length_limit(field: str) -> None:
    at_limit = "x" * MAX_ID_LENGTH

    message = parse_message(with_fields(**{field: at_limit}))

    assert MAX_ID_LENGTH == 256
    assert getattr(message, field) == at_limit
    assert field in errors_of(with_fields(**{field: at_limit + "x"}))


@pytest.mark.parametrize(
    "value",
    ["ü-konto", "日本", "🙂", "a b", "a:1{x}"],
    ids=["latin", "cjk", "emoji", "inner-space", "punctuation"],
)
def test_parse_message_accepts_unusual_ids(value: str) -> None:
    message = parse_message(with_fields(message_id=value, account_id=value))

    assert message.message_id == value
    assert message.account_id == value


def test_parse_message_counts_id_length_in_characters() -> None:
    # 256 characters of 3 bytes each are 768 bytes in UTF-8, still within the limit.
    value = "日" * MAX_ID_LENGTH

    message = parse_message(with_fields(account_id=value))

    assert message.account_id == value


def test_parse_message_requires_created_at() -> None:
    errors = errors_of(without("created_at"))

    assert list(errors) == ["created_at"]
    assert errors["created_at"].startswith("is required")
    assert "2025-09-18T10:15:00Z" in errors["created_at"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (1758190500, "not a number"),
        (None, "not null"),
        (["2025-09-18T10:15:00Z"], "not an array"),
        ("2025-09-18T10:15:00", "got '2025-09-18T10:15:00'"),
        ("2025-09-18", "got '2025-09-18'"),
        ("next tuesday", "got 'next tuesday'"),
        ("", "got ''"),
    ],
    ids=["number", "null", "array", "no-offset", "date-only", "garbage", "empty"],
)
def test_parse_message_rejects_bad_created_at(value: Any, fragment: str) -> None:
    errors = errors_of(with_fields(created_at=value))

    assert list(errors) == ["created_at"]
    assert errors["created_at"].startswith("must be an RFC 3339 timestamp with a UTC offset")
    assert fragment in errors["created_at"]


def test_parse_message_truncates_echoed_created_at() -> None:
    value = "x" * 1000

    errors = errors_of(with_fields(created_at=value))

    assert "x" * 64 in errors["created_at"]
    assert "x" * 65 not in errors["created_at"]


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ("tag", "not a string"),
        (3, "not a number"),
        (False, "not a boolean"),
        ([{"a": 1}], "not an array"),
    ],
    ids=["string", "number", "bool", "array"],
)
def test_parse_message_rejects_non_object_metadata(metadata: Any, fragment: str) -> None:
    errors = errors_of(with_fields(metadata=metadata))

    assert list(errors) == ["metadata"]
    assert errors["metadata"].startswith("must be a JSON object")
    assert fragment in errors["metadata"]


@pytest.mark.parametrize(
    "payload",
    [[VALID], "message", 42, None, True],
    ids=["array", "string", "number", "null", "bool"],
)
def test_parse_message_rejects_non_object_body(payload: Any) -> None:
    errors = errors_of(payload)

    assert errors == {"body": "must be a JSON object"}


def test_parse_message_reports_every_error_at_once() -> None:
    payload = {"message_id": "", "account_id": 7, "created_at": "soon", "metadata": []}

    errors = errors_of(payload)

    assert list(errors) == ["message_id", "account_id", "created_at", "metadata"]
    assert errors["message_id"] == "must not be empty"
    assert errors["account_id"] == "must be a string, not a number"
    assert "got 'soon'" in errors["created_at"]
    assert errors["metadata"] == "must be a JSON object, not an array"


def test_parse_message_empty_object_all_required() -> None:
    errors = errors_of({})

    assert list(errors) == ["message_id", "account_id", "created_at"]


def test_invalid_input_message_joins_field_errors() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_message({"message_id": "m-1", "account_id": ""})

    text = str(caught.value)
    assert "account_id: must not be empty" in text
    assert "created_at: is required" in text
