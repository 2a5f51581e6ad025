"""The daily-total event in counter.contract, checked against its published JSON Schema."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

import counter
from counter.contract import (
    EVENT_TYPE,
    SCHEMA_VERSION,
    OutboxRecord,
    build_event,
    encode_event,
    event_id,
)

SCHEMA_PATH = Path(counter.__file__).parent / "schemas" / "daily-total-event.v1.json"
# 2025-09-18T10:15:00.123Z in milliseconds since the Unix epoch.
COMPUTED_AT_MS = 1_758_190_500_123


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


SCHEMA = load_schema()
# The published schema lets later v1 events add fields. The events built here must
# carry exactly the published ones, so these tests also reject extra fields.
VALIDATOR = Draft202012Validator({**SCHEMA, "additionalProperties": False})


def record(**fields: Any) -> OutboxRecord:
    values: dict[str, Any] = {
        "account_id": "acc-1",
        "date": "2025-09-18",
        "total": 3,
        "message_id": "m-3",
        "computed_at_ms": COMPUTED_AT_MS,
    }
    values.update(fields)
    return OutboxRecord(**values)


def schema_errors(event: dict[str, Any]) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(event)]


def test_event_id_deterministic() -> None:
    first = event_id("acc-1", "2025-09-18", 3)
    second = event_id("acc-1", "2025-09-18", 3)

    assert first == second


def test_event_id_format() -> None:
    value = event_id("acc-1", "2025-09-18", 3)

    assert value.startswith("dt_")
    assert len(value) == 3 + 32
    assert set(value[3:]) <= set("0123456789abcdef")


def test_event_id_same_for_date_and_text() -> None:
    assert event_id("acc-1", date(2025, 9, 18), 3) == event_id("acc-1", "2025-09-18", 3)


@pytest.mark.parametrize(
    ("account_id", "day", "total"),
    [
        ("acc-2", "2025-09-18", 3),
        ("acc-1", "2025-09-19", 3),
        ("acc-1", "2025-09-18", 4),
    ],
    ids=["account", "date", "total"],
)
def test_event_id_differs_when_any_field_differs(account_id: str, day: str, total: int) -> None:
    assert event_id(account_id, day, total) != event_id("acc-1", "2025-09-18", 3)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a:1", "2025-01-01", 5), ("a", "1:2025-01-01", 5)),
        (("a", "2025-01-01:5", 1), ("a:2025-01-01", "5", 1)),
        (("1:a", "2025-01-01", 5), ("1", "a:2025-01-01", 5)),
    ],
    ids=["colon-in-account", "colon-in-date", "digit-prefix"],
)
def test_event_id_length_prefix_prevents_collisions(
    first: tuple[str, str, int], second: tuple[str, str, int]
) -> None:
    # Without the length prefix both triples hash the same text.
    assert event_id(*first) != event_id(*second)


def test_build_event_fields() -> None:
    event = build_event(record())

    assert event == {
        "event_id": event_id("acc-1", "2025-09-18", 3),
        "type": "daily_total.updated",
        "schema_version": 1,
        "account_id": "acc-1",
        "date": "2025-09-18",
        "total": 3,
        "message_id": "m-3",
        "computed_at": "2025-09-18T10:15:00.123Z",
    }
    assert EVENT_TYPE == "daily_total.updated"
    assert SCHEMA_VERSION == 1


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"total": 1},
        {"total": 2**53},
        {"account_id": "ü-konto", "message_id": "日本-1"},
        {"account_id": "a:1{x} y", "message_id": "m:{2}"},
        {"account_id": "a" * 256, "message_id": "m" * 256},
        {"date": "2024-02-29", "computed_at_ms": 0},
        {"computed_at_ms": 253_402_300_799_999},
    ],
    ids=[
        "typical",
        "first-message",
        "large-total",
        "non-ascii",
        "punctuation",
        "max-length-ids",
        "epoch",
        "year-9999",
    ],
)
def test_build_event_matches_schema(fields: dict[str, Any]) -> None:
    event = build_event(record(**fields))

    assert schema_errors(event) == []


def test_schema_rejects_malformed_events() -> None:
    # Shows that the validator applies the schema, so the empty error lists above mean something.
    event = build_event(record())

    assert schema_errors({**event, "total": 0})
    assert schema_errors({**event, "event_id": "dt_xyz"})
    assert schema_errors({**event, "computed_at": "2025-09-18T10:15:00Z"})
    assert schema_errors({**event, "unexpected": True})
    assert schema_errors({key: value for key, value in event.items() if key != "message_id"})


def test_schema_accepts_added_fields() -> None:
    event = build_event(record())
    published = Draft202012Validator(SCHEMA)

    assert list(published.iter_errors({**event, "added_later": 1})) == []


def test_encode_event_round_trips() -> None:
    event = build_event(record(account_id="ü-konto", message_id="日本-1"))

    encoded = encode_event(event)

    assert isinstance(encoded, bytes)
    assert orjson.loads(encoded) == event


def test_encode_event_writes_utf8_not_escapes() -> None:
    encoded = encode_event(build_event(record(account_id="ü")))

    assert '"account_id":"ü"'.encode() in encoded


@pytest.mark.parametrize(
    ("computed_at_ms", "expected"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (1_758_190_500_000, "2025-09-18T10:15:00.000Z"),
        (1_758_190_500_007, "2025-09-18T10:15:00.007Z"),
        (1_758_190_500_999, "2025-09-18T10:15:00.999Z"),
        (1_758_239_999_999, "2025-09-18T23:59:59.999Z"),
    ],
    ids=["epoch", "one-ms", "whole-second", "leading-zeros", "last-ms", "last-ms-of-day"],
)
def test_build_event_computed_at_milliseconds(computed_at_ms: int, expected: str) -> None:
    event = build_event(record(computed_at_ms=computed_at_ms))

    assert event["computed_at"] == expected


def test_build_event_computed_at_keeps_every_millisecond() -> None:
    # Float division by 1000 must not round any millisecond of a recent second down or up.
    base_ms = 1_758_190_500_000

    for offset_ms in range(1000):
        event = build_event(record(computed_at_ms=base_ms + offset_ms))
        assert event["computed_at"] == f"2025-09-18T10:15:00.{offset_ms:03d}Z"


def test_outbox_record_from_stream_fields() -> None:
    fields = {
        "account_id": "acc-1",
        "date": "2025-09-18",
        "total": "3",
        "message_id": "m-3",
        "computed_at": str(COMPUTED_AT_MS),
    }

    assert OutboxRecord.from_stream_fields(fields) == record()


def test_published_example_matches_schema_and_id() -> None:
    example_path = (
        Path(counter.__file__).resolve().parent.parent / "docs" / "daily-total-event.example.json"
    )
    example = json.loads(example_path.read_text())

    VALIDATOR.validate(example)
    assert example["event_id"] == event_id(example["account_id"], example["date"], example["total"])
