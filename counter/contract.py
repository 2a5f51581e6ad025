"""The daily-total event sent to the external service. Pure: no I/O.

The published JSON Schema is `counter/schemas/daily-total-event.v1.json`. An event states
"account A has counted T messages on date D so far". `total` only grows for one
(account_id, date), so a receiver that keeps the highest total is right whatever order
events arrive in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson

from counter.buckets import format_utc_ms

EVENT_TYPE = "daily_total.updated"
SCHEMA_VERSION = 1
EVENT_ID_PREFIX = "dt_"
EVENT_ID_HEX_CHARS = 32


@dataclass(frozen=True)
class OutboxRecord:
    """The fields the count script writes to the outbox stream for one counted message."""

    account_id: str
    date: str
    total: int
    message_id: str
    computed_at_ms: int

    @classmethod
    def from_stream_fields(cls, fields: Mapping[str, str]) -> OutboxRecord:
        return cls(
            account_id=fields["account_id"],
            date=fields["date"],
            total=int(fields["total"]),
            message_id=fields["message_id"],
            computed_at_ms=int(fields["computed_at"]),
        )


def event_id(account_id: str, day: date | str, total: int) -> str:
    """Derive the event id from (account_id, date, total), so every retry carries the same id.

    The account id is length-prefixed so that no two different triples hash the same input.
    """
    day_text = day.isoformat() if isinstance(day, date) else day
    digest = hashlib.sha256(f"{len(account_id)}:{account_id}:{day_text}:{total}".encode())
    return EVENT_ID_PREFIX + digest.hexdigest()[:EVENT_ID_HEX_CHARS]


def build_event(record: OutboxRecord) -> dict[str, Any]:
    """Build the event body for one outbox record."""
    computed_at = datetime.fromtimestamp(record.computed_at_ms / 1000, tz=UTC)
    return {
        "event_id": event_id(record.account_id, record.date, record.total),
        "type": EVENT_TYPE,
        "schema_version": SCHEMA_VERSION,
        "account_id": record.account_id,
        "date": record.date,
        "total": record.total,
        "message_id": record.message_id,
        "computed_at": format_utc_ms(computed_at),
    }


def encode_event(event: Mapping[str, Any]) -> bytes:
    return orjson.dumps(event)
